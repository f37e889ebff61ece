// The default theme's quality gates on sites shaped unlike the example, written here: a blog
// with nothing else (no projects, no data, no menu, paginated posts, view counts off) and a
// site with three sections of other names (a post list, two card lists, a CV from cv.toml with
// no talks.csv, a long menu). Each is built with the real folio binary (the built-in theme)
// and served by the real Worker under `wrangler dev`, as gates.test.mjs serves the example.
//
// Only the pages these shapes add are gated (the example's gates cover the rest): Lighthouse
// (100 in all four categories, mobile and desktop) on each site's home and one list page, axe
// (light and dark) and the Nu checker on every page that differs. Plus, at a 390 px wide
// viewport, the header stays compact.
//
// Run through tests/theme/run.sh (FOLIO_BIN: the folio binary; FOLIO_THEME_GATES as there).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { newSecret, startWorker } from "../worker/harness.mjs";
import { ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, startLighthouse } from "./lib.mjs";

const GATES = new Set((process.env.FOLIO_THEME_GATES ?? "lighthouse,axe,vnu,weight").split(","));
const FOLIO = process.env.FOLIO_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target"), "debug/folio");

mkdirSync(ARTIFACTS, { recursive: true });
const work = mkdtempSync(path.join(os.tmpdir(), "folio-shapes-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** Writes `files` (path → text) under a new site folder `name`, builds it, returns its output folder. */
function buildSite(name, files) {
  const dir = path.join(work, name);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  }
  const out = path.join(dir, "public");
  execFileSync(FOLIO, ["build", "--root", dir, "--output", out], { stdio: ["ignore", "pipe", "pipe"] });
  return out;
}

const words = (n) => Array.from({ length: n }, (_, i) => ["tin", "flux", "joint", "wick", "iron"][i % 5]).join(" ");

/** A blog and nothing else. */
function blogOnly() {
  const files = {
    "folio.toml": 'title = "Solder log"\nbase_url = "https://solder.test"\nauthor = "Ines Ito"\ndescription = "Notes from the bench."\n\n[edge]\nviews = false\n',
    "content/_index.md": '+++\ntitle = "Solder log"\ndescription = "Notes from the bench."\n+++\nWhat I learn at the bench, one evening at a time.\n',
    "content/log/_index.md": '+++\ntitle = "Log"\ndescription = "Every entry, newest first."\nsort_by = "date"\npaginate_by = 3\n\n[extra]\nlayout = "posts"\n+++\n',
  };
  for (let d = 1; d <= 8; d++) {
    files[`content/log/entry-${d}.md`] =
      `+++\ntitle = "Evening ${d}: ${["flux", "wick", "tips", "joints"][d % 4]}"\ndate = 2025-0${1 + (d % 9)}-1${d % 10}\n` +
      `description = "What went right and wrong on evening ${d}."\ntags = ["${d % 2 ? "smd" : "through-hole"}"]\n+++\n` +
      `${words(d * 90)}\n\n## Next time\n\n${words(40)}\n`;
  }
  return buildSite("blog-only", files);
}

/** Three sections named unlike the example, a CV from data without talks, a long menu. */
function threeSections() {
  const menu = ["Notes", "Lab", "Talks", "CV", "About"]
    .map((n) => `{ name = "${n}", url = "/${n.toLowerCase()}/" }`).join(", ");
  const files = {
    "folio.toml": `title = "Workshop"\nbase_url = "https://workshop.test"\nauthor = "Ode Varga"\ndescription = "Firmware, talks and lab notes."\n\n[extra]\ntagline = "Firmware for small machines."\nmenu = [${menu}]\n`,
    "content/_index.md": '+++\ntitle = "Ode Varga"\n\n[extra]\nsections = ["lab", "notes", "talks"]\nintro = "Firmware engineer: clocks, meters, tiny radios."\n+++\n',
    "content/about.md": '+++\ntitle = "About"\ndescription = "Who writes this."\n+++\nI write firmware.\n',
    "content/notes/_index.md": '+++\ntitle = "Notes"\ndescription = "Short notes."\nsort_by = "date"\n\n[extra]\nlayout = "posts"\n+++\n',
    "content/lab/_index.md": '+++\ntitle = "Lab"\ndescription = "Experiments with hardware."\nsort_by = "weight"\n+++\n',
    "content/talks/_index.md": '+++\ntitle = "Talks"\ndescription = "Slides and recordings."\nsort_by = "date"\n+++\n',
    "content/talks/gc-in-anger/index.md":
      '+++\ntitle = "GC in anger"\ndate = 2024-10-10\ndescription = "Garbage collection on a microcontroller."\ncover = "slide.svg"\n\n[extra]\ncover_alt = "The title slide: a heap diagram"\n+++\nSlides and notes.\n',
    "content/talks/gc-in-anger/slide.svg":
      '<svg xmlns="http://www.w3.org/2000/svg" width="1440" height="810" viewBox="0 0 16 9"><rect width="16" height="9" fill="#2b4a6f"/><rect x="2" y="2" width="5" height="5" fill="#9cc3e6"/></svg>',
    "content/cv.md": '+++\ntitle = "CV"\ndescription = "Experience and skills."\ntemplate = "cv.html"\n+++\nAvailable from spring.\n',
    "data/cv.toml":
      '[person]\nname = "Ode Varga"\nheadline = "Firmware engineer"\nlocation = "Ghent"\n\n[[experience]]\nrole = "Firmware engineer"\norg = "Tick Ltd"\nstart = "2020-01"\nhighlights = ["Shipped a meter that runs ten years on a coin cell."]\n\n[[skills]]\ngroup = "Languages"\nitems = ["C", "Zig", "Rust"]\n',
  };
  ["Ropes", "Tries", "Heaps"].forEach((t, i) => {
    files[`content/notes/${t.toLowerCase()}.md`] =
      `+++\ntitle = "${t}"\ndate = 2024-0${i + 1}-15\ntags = ["data structures"]\n+++\nA summary of ${t.toLowerCase()}.\n\n<!-- more -->\n\n${words(300)}\n`;
  });
  ["Oscilloscope clock", "Nixie thermometer"].forEach((t, i) => {
    files[`content/lab/${t.toLowerCase().replace(/ /g, "-")}.md`] =
      `+++\ntitle = "${t}"\nweight = ${i + 1}\ndate = 2023-0${i + 4}-02\ndescription = "A ${t.toLowerCase()}, built from parts."\ntags = ["hardware"]\n+++\n${words(200)}\n`;
  });
  return buildSite("three-sections", files);
}

const SITES = [
  {
    name: "blog-only",
    build: blogOnly,
    lighthouse: ["/", "/log/"],
    pages: ["/", "/log/", "/log/page/2/", "/log/entry-8/", "/tags/", "/tags/smd/", "/404.html"],
  },
  {
    name: "three-sections",
    build: threeSections,
    lighthouse: ["/", "/notes/"],
    pages: ["/", "/notes/", "/lab/", "/talks/", "/talks/gc-in-anger/", "/notes/heaps/", "/cv/"],
  },
];

const RUNS = Number(process.env.FOLIO_LIGHTHOUSE_RUNS ?? 3);

for (const site of SITES) {
  describe(site.name, () => {
    let publicDir;
    let worker;
    let browser;
    before(async () => {
      publicDir = site.build();
      // The `bench` environment, as gates.test.mjs: rate limits out of the way of a burst of visits.
      worker = await startWorker({ terminalOrigin: "http://127.0.0.1:9", secret: newSecret(), assets: publicDir, env: "bench" });
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    });
    after(async () => {
      await browser?.close();
      await worker?.stop();
    });

    test("every page loads with no console error or CSP violation", async () => {
      const context = await browser.newContext();
      const problems = [];
      for (const p of site.pages) {
        const page = await context.newPage();
        page.on("console", (m) => { if (m.type() === "error") problems.push(`${p}: ${m.text()}`); });
        page.on("pageerror", (e) => problems.push(`${p}: ${e.message}`));
        const r = await page.goto(`${worker.base}${p}`, { waitUntil: "networkidle" });
        assert.equal(r.status(), 200, `${p} is served`);
        await page.close();
      }
      await context.close();
      assert.deepEqual(problems, [], problems.join("\n"));
    });

    test("at 390 px wide the header is compact", async () => {
      const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true });
      const page = await context.newPage();
      await page.goto(`${worker.base}/`, { waitUntil: "networkidle" });
      const h = await page.$eval(".site-header", (e) => e.getBoundingClientRect().height);
      await page.screenshot({ path: path.join(ARTIFACTS, `shape-${site.name}-390.png`) });
      assert.ok(h <= 100, `the header is ${h}px tall at 390px`);
      // Nothing makes the page scroll sideways (a long menu scrolls within itself).
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(wide <= 390, `the page is ${wide}px wide at 390px`);
      await context.close();
    });

    test("axe: no violations, light and dark", { skip: !GATES.has("axe") }, async () => {
      const axeSource = readFileSync(path.join(ROOT, "node_modules/axe-core/axe.min.js"), "utf8");
      const failures = [];
      for (const scheme of ["light", "dark"]) {
        const context = await browser.newContext({ colorScheme: scheme, bypassCSP: true, viewport: { width: 1280, height: 800 } });
        for (const p of site.pages) {
          const page = await context.newPage();
          await page.goto(`${worker.base}${p}`, { waitUntil: "networkidle" });
          await page.evaluate(axeSource);
          // eslint-disable-next-line no-undef
          const result = await page.evaluate(() => axe.run(document, { resultTypes: ["violations"] }));
          for (const v of result.violations) {
            failures.push(`${p} [${scheme}] ${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
          }
          await page.close();
        }
        await context.close();
      }
      assert.deepEqual(failures, [], failures.join("\n"));
    });

    test("Nu HTML checker: no errors", { skip: !GATES.has("vnu") }, () => {
      const files = site.pages.map((p) => path.join(publicDir, p.endsWith(".html") ? p : `${p}index.html`));
      let out = "";
      try {
        execFileSync("java", ["-jar", path.join(ROOT, "node_modules/vnu-jar/build/dist/vnu.jar"),
          "--errors-only", "--format", "text", ...files], { stdio: ["ignore", "pipe", "pipe"] });
      } catch (e) {
        out = `${e.stdout}${e.stderr}`;
      }
      writeFileSync(path.join(ARTIFACTS, `vnu-${site.name}.txt`), out || `no errors in ${files.length} files\n`);
      assert.equal(out.trim(), "", out);
    });

    describe("Lighthouse", { skip: !GATES.has("lighthouse") }, () => {
      let lh;
      before(async () => { lh = await startLighthouse(); });
      after(async () => { await lh?.stop(); });
      for (const preset of ["mobile", "desktop"]) {
        for (const p of site.lighthouse) {
          test(`${preset} ${p}: 100 in every category`, async () => {
            const failures = await lh.bestOf(`${worker.base}${p}`, preset, RUNS, `shape-${site.name}`);
            assert.deepEqual(failures, [], failures.join("\n"));
          });
        }
      }
    });
  });
}
