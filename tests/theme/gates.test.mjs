// The default theme's quality gates, against the built example site served the way it is in
// production: static files with their real `_headers` and the real Worker for /api/* under
// `wrangler dev` (tests/worker/harness.mjs). Run through tests/theme/run.sh, which builds first.
//
//   - Lighthouse (npm lighthouse, Debian chromium): 100 in Performance, Accessibility, Best
//     Practices and SEO on the home page, /projects/ and a project page with a demo, with both
//     the mobile (default) and the desktop preset: every category but Performance on every
//     run, Performance in the best of up to three runs. Reports: tests/theme/artifacts/lighthouse-*.json.
//   - axe-core: no violations on every kind of page, in the light and in the dark theme.
//   - Nu HTML checker (npm vnu-jar): no errors in any HTML file of the build, nor in the
//     contact page as the Worker fills it (a fresh token; the errors of a post, text kept).
//   - The home page weighs under 50 KB transferred (every request of the load, as served, at a
//     1280×720 desktop viewport), and the CSP needs no 'unsafe-inline' for scripts.
//   - No console errors or CSP violations on any page; on a missing page (the 404 page,
//     status 404), nothing but the browser's note of that status.
//
// FOLIO_THEME_GATES=lighthouse,axe,vnu,weight picks a subset (all by default).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { PUBLIC_DIR, newSecret, readManifest, startWorker } from "../worker/harness.mjs";
import { mintContactToken } from "../contact/mail.mjs";
import {
  ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, LIGHTHOUSE_CATEGORIES, ROOT, lighthouseFailures, lighthouseScores,
} from "./lib.mjs";

const GATES = new Set((process.env.FOLIO_THEME_GATES ?? "lighthouse,axe,vnu,weight").split(","));
const LIGHTHOUSE_PAGES = ["/", "/projects/", "/projects/minirt/"];
const ALL_PAGES = [
  "/", "/projects/", "/projects/minirt/", "/projects/kvlog/", "/about/", "/cv/", "/tags/",
  "/tags/rust/", "/404.html", "/contact/", "/thanks/",
];
const HOME_BUDGET = 50 * 1024;
const RUNS = Number(process.env.FOLIO_LIGHTHOUSE_RUNS ?? 3);

mkdirSync(ARTIFACTS, { recursive: true });
const slug = (p) => (p === "/" ? "home" : p.replace(/^\/|\/$/g, "").replace(/[/.]/g, "-"));

let worker;
let browser;
let secret;
before(async () => {
  // No terminal origin is needed: the gates never start a terminal. The `bench` environment:
  // its rate limits are out of the way. The gates visit dozens of pages from one address in a
  // minute (Lighthouse loads each page several times), which the test environment's small API
  // limit answers with 429 on the counter's fetch, a console error that Best Practices counts.
  secret = newSecret();
  worker = await startWorker({ terminalOrigin: "http://127.0.0.1:9", secret, env: "bench" });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
after(async () => {
  await browser?.close();
  await worker?.stop();
});

/**
 * Opens a page and collects its console errors, page errors and CSP violations, each as
 * `{ text, url }` (`url`: the resource a console error is about, when the browser says).
 */
async function open(context, url) {
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push({ text: `console: ${m.text()}`, url: m.location()?.url ?? "" });
  });
  page.on("pageerror", (e) => problems.push({ text: `page error: ${e.message}`, url: "" }));
  const response = await page.goto(url, { waitUntil: "networkidle" });
  const violations = await page.evaluate(() => window.__cspViolations ?? []);
  return { page, response, problems: problems.concat(violations.map((text) => ({ text, url: "" }))) };
}

describe("security headers", () => {
  test("the CSP has no 'unsafe-inline' for scripts, and pages run without violations", async () => {
    const r = await fetch(`${worker.base}/`);
    await r.arrayBuffer();
    const csp = r.headers.get("content-security-policy");
    assert.ok(csp, "a Content-Security-Policy header");
    const scriptSrc = csp.split(";").map((d) => d.trim()).find((d) => d.startsWith("script-src"));
    assert.ok(scriptSrc, `script-src in ${csp}`);
    assert.ok(!scriptSrc.includes("unsafe-inline"), scriptSrc);
    assert.ok(!csp.includes("unsafe-eval"), csp);
    const context = await browser.newContext();
    await context.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener("securitypolicyviolation", (e) =>
        window.__cspViolations.push(`CSP: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`));
    });
    const show = (problems) => problems.map((m) => `${m.text}${m.url ? ` (${m.url})` : ""}`);
    for (const p of ALL_PAGES) {
      const { page, problems } = await open(context, `${worker.base}${p}`);
      assert.deepEqual(show(problems), [], `${p}: ${show(problems).join("\n")}`);
      await page.close();
    }
    // A page that does not exist: the 404 page, with status 404. The browser reports that
    // status for the document itself, and that one message is all that may be reported: a
    // missing asset on the 404 page is a 404 too, and fails.
    const missing = `${worker.base}/no-such-page-${Date.now()}/`;
    const { page, response, problems } = await open(context, missing);
    assert.equal(response.status(), 404);
    assert.match(await page.title(), /not found|404/i, "the 404 page is served");
    const own = (m) => m.url === missing && /status of 404/.test(m.text);
    assert.ok(problems.filter(own).length <= 1, show(problems).join("\n"));
    const real = problems.filter((m) => !own(m));
    assert.deepEqual(show(real), [], `${missing}: ${show(real).join("\n")}`);
    await page.close();
    await context.close();
  });
});

describe("page weight", { skip: !GATES.has("weight") }, () => {
  test(`the home page transfers under ${HOME_BUDGET / 1024} KB`, async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    const requests = [];
    page.on("requestfinished", (req) => requests.push(req));
    await page.goto(`${worker.base}/`, { waitUntil: "networkidle" });
    let total = 0;
    const rows = [];
    for (const req of requests) {
      const s = await req.sizes();
      const res = await req.response();
      const bytes = s.responseBodySize + s.responseHeadersSize;
      total += bytes;
      rows.push(`${String(bytes).padStart(7)}  ${res?.headers()["content-encoding"] ?? "-"}  ${req.url().replace(worker.base, "")}`);
    }
    const report = `home page: ${requests.length} requests, ${total} bytes transferred\n${rows.join("\n")}\n`;
    writeFileSync(path.join(ARTIFACTS, "home-weight.txt"), report);
    console.log(report);
    assert.ok(requests.every((r) => r.url().startsWith(worker.base)), "no third-party request");
    assert.ok(total < HOME_BUDGET, `home page is ${total} bytes (budget ${HOME_BUDGET})`);
    await context.close();
  });
});

describe("axe-core", { skip: !GATES.has("axe") }, () => {
  const axeSource = readFileSync(path.join(ROOT, "node_modules/axe-core/axe.min.js"), "utf8");
  for (const scheme of ["light", "dark"]) {
    test(`no violations, ${scheme} theme`, async () => {
      // axe is injected by the test, so its own script may bypass the site's CSP.
      const context = await browser.newContext({ colorScheme: scheme, bypassCSP: true, viewport: { width: 1280, height: 800 } });
      const failures = [];
      for (const p of ALL_PAGES) {
        const page = await context.newPage();
        await page.goto(`${worker.base}${p}`, { waitUntil: "networkidle" });
        await page.evaluate(axeSource);
        const result = await page.evaluate(() =>
          // eslint-disable-next-line no-undef
          axe.run(document, { resultTypes: ["violations"] }));
        for (const v of result.violations) {
          failures.push(`${p} [${scheme}] ${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 4).map((n) => `${n.target.join(" ")} ${n.failureSummary?.split("\n").slice(1, 2).join("") ?? ""}`).join("\n    ")}`);
        }
        await page.screenshot({ path: path.join(ARTIFACTS, `${slug(p)}-${scheme}.png`), fullPage: true });
        await page.close();
      }
      await context.close();
      assert.deepEqual(failures, [], failures.join("\n"));
    });
  }
});

describe("Nu HTML checker", { skip: !GATES.has("vnu") }, () => {
  test("no errors in any HTML file, nor in the contact page as the Worker serves it", async () => {
    const files = [];
    const walk = (d) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(".html")) files.push(p);
      }
    };
    walk(PUBLIC_DIR);
    assert.ok(files.length > 10, `HTML files in ${PUBLIC_DIR}`);
    // The contact page as the Worker serves it (a token put in), and as it answers a post
    // without JavaScript that has errors (messages shown, the text kept): HTML the build
    // does not hold.
    const contact = readManifest().contact;
    if (contact) {
      const served = await (await fetch(`${worker.base}${contact.page}`)).text();
      const errors = await fetch(`${worker.base}/api/contact`, {
        method: "POST",
        redirect: "manual",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: worker.base },
        body: new URLSearchParams({
          name: "Zoé <b>&amp;</b>", email: "not an address", subject: "Hi \"there\"",
          message: "A </textarea> & <script>x</script>", page: contact.page, token: mintContactToken(secret),
        }),
      });
      assert.equal(errors.status, 400);
      for (const [name, html] of [["contact-served", served], ["contact-errors", await errors.text()]]) {
        const file = path.join(ARTIFACTS, `${name}.html`);
        writeFileSync(file, html);
        files.push(file);
      }
    }
    let out = "";
    try {
      execFileSync("java", ["-jar", path.join(ROOT, "node_modules/vnu-jar/build/dist/vnu.jar"),
        "--errors-only", "--format", "text", ...files], { stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      out = `${e.stdout}${e.stderr}`;
    }
    writeFileSync(path.join(ARTIFACTS, "vnu.txt"), out || `no errors in ${files.length} files\n`);
    assert.equal(out.trim(), "", out);
  });
});

describe("Lighthouse", { skip: !GATES.has("lighthouse") }, () => {
  let chrome;
  let lighthouse;
  let desktopConfig;
  before(async () => {
    lighthouse = (await import("lighthouse")).default;
    desktopConfig = (await import("lighthouse/core/config/desktop-config.js")).default;
    const launcher = await import("chrome-launcher");
    chrome = await launcher.launch({
      chromePath: CHROMIUM,
      chromeFlags: CHROMIUM_ARGS,
    });
  });
  after(async () => {
    await chrome?.kill();
  });
  const summary = [];
  after(() => {
    const text = summary.join("\n") + "\n";
    writeFileSync(path.join(ARTIFACTS, "lighthouse-scores.txt"), text);
    console.log(text);
  });
  for (const preset of ["mobile", "desktop"]) {
    for (const p of LIGHTHOUSE_PAGES) {
      test(`${preset} ${p}: 100 in every category`, async () => {
        const flags = { port: chrome.port, output: "json", logLevel: "error", onlyCategories: LIGHTHOUSE_CATEGORIES };
        // Up to RUNS runs, until Performance scores 100: Performance is measured on a shared,
        // busy machine, so its best run counts (as Lighthouse CI's "best of n"); every other
        // category must score 100 on every run (lighthouseFailures). Every run is printed
        // and its report saved (the best Performance run also as the page's report).
        const runs = [];
        let bestPerf = -1;
        for (let run = 1; run <= RUNS; run++) {
          const result = await lighthouse(`${worker.base}${p}`, flags, preset === "desktop" ? desktopConfig : undefined);
          const lhr = result.lhr;
          runs.push(lhr);
          const name = `lighthouse-${preset}-${slug(p)}`;
          writeFileSync(path.join(ARTIFACTS, `${name}-run${run}.json`), result.report);
          const perf = Math.round((lhr.categories.performance.score ?? 0) * 100);
          if (perf > bestPerf) {
            bestPerf = perf;
            writeFileSync(path.join(ARTIFACTS, `${name}.json`), result.report);
          }
          summary.push(`${preset.padEnd(8)}${p.padEnd(20)}run ${run}: ${lighthouseScores(lhr)}`);
          if (perf === 100) break;
        }
        const failures = lighthouseFailures(runs);
        assert.deepEqual(failures, [], failures.join("\n"));
      });
    }
  }
});
