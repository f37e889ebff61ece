// `folio serve` in chromium: the real binary (`--port 0`) over a temporary copy of the
// example portfolio, edited on disk while a tab is open. An edited page reloads by itself
// (a tab showing another page does not); a broken edit shows an accessible error overlay
// (file:line:col) over the last good page and a fix clears it; a stylesheet edit applies
// without a reload (the content-hashed sheet relinked, the terminal's own sheet kept); the
// view counter counts one visitor once; a site whose first build fails says so and reloads
// when fixed; a tab reloads when serve comes back after a restart. Throughout: no CSP
// violation, no console error, and the HTML carries the same security headers as a
// production `folio build`'s `_headers`.
//
//   cargo build -p folio && node --test tests/browser/serve.test.mjs   (or tests/browser/run.sh)
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ARTIFACTS, ROOT, consoleError, launchBrowser, startServe } from "./stack.mjs";

const FOLIO = path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target"), "debug/folio");
const AXE = path.join(ROOT, "node_modules/axe-core/axe.min.js");
/** A guard against hanging, not a speed requirement. */
const PATIENCE = 60_000;

let tmp; // the site's copy (and a production build of it)
let site; // the copy's folder
let server; // { child, url, log }
let browser;
/** Every CSP violation and console error of every tab, across reloads. */
const violations = [];
const errors = [];

/** A copy of the example portfolio's sources: what `folio serve` watches, nothing else. */
function copySite(to) {
  for (const part of ["folio.toml", "content", "data", "static", "themes", "templates"]) {
    const from = path.join(ROOT, part);
    if (existsSync(from)) cpSync(from, path.join(to, part), { recursive: true });
  }
}

/** The `/*` block of a production build's `_headers`: the headers every page gets. */
function productionHeaders(root, out) {
  const r = spawnSync(FOLIO, ["build", "--quiet", "--root", root, "--output", out], {
    env: { ...process.env, FOLIO_NODE_MODULES: path.join(ROOT, "node_modules") },
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `folio build failed:\n${r.stderr}`);
  const headers = {};
  let inAll = false;
  for (const line of readFileSync(path.join(out, "_headers"), "utf8").split("\n")) {
    if (line.startsWith("#") || !line.trim()) continue;
    if (!/^\s/.test(line)) { inAll = line.trim() === "/*"; continue; }
    if (!inAll) continue;
    const at = line.indexOf(":");
    headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  return headers;
}

/** Stops a server started by `startServe` (Ctrl-C, as an author would). */
async function stopServe(srv) {
  if (!srv || srv.child.exitCode !== null) return;
  const exited = new Promise((r) => srv.child.once("exit", r));
  srv.child.kill("SIGINT");
  await exited;
}

const url = (p) => `${server.url}${p}`;
const file = (rel) => path.join(site, rel);
const read = (rel) => readFileSync(file(rel), "utf8");
const write = (rel, text) => writeFileSync(file(rel), text);

/**
 * A visitor (its own User-Agent, so its own counter visitor) whose CSP violations and
 * console errors land in `violations`/`errors` (or the arrays given), surviving the tab's
 * reloads.
 */
async function visitor(name, sink = { violations, errors }) {
  const context = await browser.newContext({
    userAgent: `Mozilla/5.0 (X11; Linux x86_64) folio-serve-test/${name}`,
    viewport: { width: 1280, height: 900 },
  });
  await context.exposeBinding("__folioCsp", ({ page }, v) => sink.violations.push(`${name} ${page.url()}: ${v}`));
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__folioCsp(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  context.on("page", (page) => {
    page.on("pageerror", (e) => sink.errors.push(`${name} pageerror: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") sink.errors.push(`${name} ${consoleError(m)} on ${page.url()}`);
    });
  });
  return context;
}

/** Opens `p` and waits until its reload socket is connected (it then hears every rebuild). */
async function openLive(context, p) {
  const page = await context.newPage();
  // The tab's current reload socket (a reload opens a new one).
  page.on("websocket", (ws) => { if (ws.url().endsWith("/__folio/ws")) page.__folioWs = ws; });
  const hello = nextHello(page);
  await page.goto(url(p));
  await hello;
  return page;
}

/**
 * Resolves when the next reload socket `page` opens (its next document's) has said hello:
 * from then on that socket hears every rebuild. Call it before what opens the socket. The
 * frame listener is attached in the same event as the socket, so a hello that arrives at
 * once is not missed.
 */
function nextHello(page) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no hello on the tab's reload socket")), PATIENCE);
    const onSocket = (ws) => {
      if (!ws.url().endsWith("/__folio/ws")) return;
      page.off("websocket", onSocket);
      ws.on("framereceived", (f) => {
        if (String(f.payload).includes('"hello"')) { clearTimeout(timer); resolve(); }
      });
    };
    page.on("websocket", onSocket);
  });
}

/** Resolves on the next message the tab's reload socket receives that mentions `text`. */
function frameMentioning(page, text) {
  return page.__folioWs.waitForEvent("framereceived",
    { predicate: (f) => String(f.payload).includes(text), timeout: PATIENCE });
}

/** A test that edits `rels`: if it fails, the files are put back, for the next tests. */
function editing(rels, body) {
  return async (t) => {
    const saved = rels.map((rel) => [rel, read(rel)]);
    try {
      await body(t);
    } catch (e) {
      for (const [rel, text] of saved) if (read(rel) !== text) write(rel, text);
      throw e;
    }
  };
}

/** Marks the document: a full reload loses the mark, an in-place update keeps it. */
async function mark(page) {
  const token = `m${Math.random().toString(36).slice(2)}`;
  await page.evaluate((t) => { window.__folioMark = t; }, token);
  return token;
}
const markOf = (page) => page.evaluate(() => window.__folioMark ?? null);

before(async () => {
  assert.ok(existsSync(FOLIO), `${FOLIO} is missing: cargo build -p folio`);
  tmp = mkdtempSync(path.join(os.tmpdir(), "folio-serve-browser-"));
  site = path.join(tmp, "site");
  copySite(site);
  server = await startServe(site);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopServe(server);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("folio serve in the browser", () => {
  let context; // the author's visitor: one tab kept open across edits
  before(async () => { context = await visitor("author"); });
  after(async () => { await context?.close(); });

  test("an edited page reloads by itself and shows the new text", editing(["content/about.md", "content/cv.md"], async () => {
    const page = await openLive(context, "/about/");
    const before = read("content/about.md");
    const text = `Edited while serving ${Date.now()}`;
    await mark(page);
    const reloaded = page.waitForEvent("load", { timeout: PATIENCE });
    const listening = nextHello(page);
    write("content/about.md", before.replace(/\n\+\+\+\n/, `\n+++\n\n${text}\n`));
    await reloaded;
    await page.locator("main").getByText(text).waitFor({ timeout: PATIENCE });
    // The reloaded document's socket hears the next rebuild only once it has said hello.
    await listening;
    assert.equal(await markOf(page), null, "the tab reloaded (a fresh document)");
    // Another page's edit leaves this tab alone.
    const token = await mark(page);
    const other = read("content/cv.md");
    let requests = 0;
    page.on("request", (r) => { if (r.isNavigationRequest()) requests += 1; });
    const heard = frameMentioning(page, "cv/index.html");
    write("content/cv.md", other.replace(/\n\+\+\+\n/, "\n+++\n\nAn edit elsewhere.\n"));
    await heard;
    // The message has been handled (same task as its delivery); a reload would be under way.
    await page.evaluate(() => new Promise((r) => setTimeout(r, 50)));
    assert.equal(requests, 0, "a tab showing another page is not reloaded");
    assert.equal(await markOf(page), token);
    await page.close();
  }));

  test("a broken edit shows an accessible overlay over the last good page; the fix clears it", editing(["content/about.md"], async () => {
    const page = await openLive(context, "/about/");
    const good = read("content/about.md");
    const heading = await page.locator("h1").first().textContent();
    const token = await mark(page);

    // Line 2 is `title = "About"`: an unterminated string.
    const lines = good.split("\n");
    assert.match(lines[1], /^title = "/, "content/about.md starts with its title");
    lines[1] = 'title = "About';
    write("content/about.md", lines.join("\n"));

    const overlay = page.getByRole("alertdialog");
    await overlay.waitFor({ timeout: PATIENCE });
    // The broken file's error (pages linking to it fail too, and are listed as well).
    const where = await overlay.locator("li strong").allTextContents();
    assert.ok(where.some((w) => /^content\/about\.md:2:\d+$/.test(w)),
      `the overlay names content/about.md:2:col (${where.join(", ")})`);
    assert.match(await overlay.textContent(), /content\/about\.md:2:\d+: \S/, "…and the message");
    assert.match(await overlay.locator("h2").textContent(), /still showing the last good version/);
    assert.equal(await markOf(page), token, "no reload: the last good page is still underneath");
    assert.equal(await page.locator("h1").first().textContent(), heading);
    const served = await page.request.get(url("/about/"));
    assert.equal(served.status(), 200, "the server still serves the last good page");
    assert.ok((await served.text()).includes(heading.trim()));

    // Accessible: named, focused, found clean by axe, dismissed by the keyboard.
    assert.match(await overlay.getAttribute("aria-labelledby") ?? "", /\S/);
    assert.ok(await overlay.evaluate((el) => el.contains(document.activeElement)), "focus is in the overlay");
    await page.keyboard.press("Tab");
    assert.ok(await overlay.evaluate((el) => el.contains(document.activeElement)), "Tab stays in the overlay");
    await page.keyboard.press("Shift+Tab");
    assert.ok(await overlay.evaluate((el) => el.contains(document.activeElement)), "Shift+Tab stays in the overlay");
    await page.evaluate(readFileSync(AXE, "utf8"));
    const axe = await page.evaluate(async () => {
      const r = await window.axe.run(document);
      return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
    });
    assert.deepEqual(axe, [], "axe finds nothing with the overlay open");
    await page.screenshot({ path: path.join(ARTIFACTS, "serve-error-overlay.png") });
    await page.keyboard.press("Escape");
    await overlay.waitFor({ state: "detached" });
    assert.equal(await markOf(page), token);

    // A tab opened while the build is broken shows the overlay at once.
    const late = await openLive(context, "/");
    await late.getByRole("alertdialog").waitFor({ timeout: PATIENCE });

    // The fix: the overlay goes (also in the tab that dismissed it) and the page reloads.
    const fixed = `Fixed ${Date.now()}`;
    const lateGone = late.getByRole("alertdialog").waitFor({ state: "detached", timeout: PATIENCE });
    const reloaded = page.waitForEvent("load", { timeout: PATIENCE });
    write("content/about.md", good.replace(/\n\+\+\+\n/, `\n+++\n\n${fixed}\n`));
    await reloaded;
    await lateGone;
    await page.locator("main").getByText(fixed).waitFor({ timeout: PATIENCE });
    assert.equal(await page.getByRole("alertdialog").count(), 0);
    await late.close();
    await page.close();
  }));

  test("a stylesheet edit applies without a full reload", editing(["themes/folio/static/css/site.css"], async () => {
    // A project page, with its terminal's stylesheet added by a page script (xterm.css): the
    // swap must leave what it did not rebuild alone.
    const page = await openLive(context, "/projects/tinylisp/");
    await page.locator("[data-terminal-start]").first().click();
    await page.waitForFunction(() => [...document.styleSheets].some((s) => /xterm/.test(s.href ?? "")),
      null, { timeout: PATIENCE });
    const sheets = () => page.evaluate(() =>
      [...document.querySelectorAll('link[rel~="stylesheet"]')].map((l) => new URL(l.href).pathname));
    const siteSheets = async () => (await sheets()).filter((p) => p.startsWith("/css/site."));
    const xtermSheets = async () => (await sheets()).filter((p) => /xterm/.test(p));
    const xterm = await xtermSheets();
    const [first] = await siteSheets();
    assert.ok(first, "the page links the theme's stylesheet");
    const offset = () => page.evaluate(() => getComputedStyle(document.body).outlineOffset);
    assert.notEqual(await offset(), "13px");
    const token = await mark(page);
    let loads = 0;
    page.on("load", () => { loads += 1; });

    const css = "themes/folio/static/css/site.css";
    const original = read(css);
    let previous = first;
    // Twice: the second swap renames the sheet the first one linked.
    for (const px of [13, 14]) {
      // This edit's message names the sheet (a late one of an earlier rebuild does not).
      const heard = frameMentioning(page, "css/site.");
      write(css, `${original}\nbody { outline-offset: ${px}px; }\n`);
      const msg = JSON.parse(String((await heard).payload));
      assert.equal(msg.css_only, true, "the rebuild says only CSS changed");
      await page.waitForFunction((v) => getComputedStyle(document.body).outlineOffset === v, `${px}px`,
        { timeout: PATIENCE });
      // The old sheet goes once the new one has loaded.
      await page.waitForFunction(() => document.querySelectorAll('link[rel~="stylesheet"][href*="/css/site."]').length === 1,
        null, { timeout: PATIENCE });
      const [now] = await siteSheets();
      assert.notEqual(now, previous, "the page links the renamed (content-hashed) stylesheet");
      assert.deepEqual(msg.css_renames, [[previous, now]], "the server sent the rename the tab applied");
      const built = await (await page.request.get(url("/projects/tinylisp/"))).text();
      assert.ok(built.includes(now), `the rebuilt page links ${now}, as the tab now does`);
      previous = now;
    }
    assert.equal(await markOf(page), token, "the document survived: no reload");
    assert.equal(loads, 0, "no load event");
    assert.deepEqual(await xtermSheets(), xterm, "the terminal's stylesheet is still there");
    await page.close();
  }));

  test("a stylesheet no page links leaves the tabs alone", async () => {
    // A site stylesheet nothing links yet (content-hashed like every static CSS file).
    write("static/unlinked.css", "body { outline-offset: 21px; }\n");
    // Served before the tab opens, so the tab does not hear of that rebuild.
    for (const deadline = Date.now() + PATIENCE; ;) {
      const files = await (await context.request.get(url("/__folio/files"))).json();
      if (files.some((f) => /^unlinked\.[0-9a-f]{10}\.css$/.test(f))) break;
      assert.ok(Date.now() < deadline, "the new stylesheet is served");
      await new Promise((r) => setTimeout(r, 20));
    }
    const page = await openLive(context, "/about/");
    const token = await mark(page);
    let navigations = 0;
    page.on("request", (r) => { if (r.isNavigationRequest()) navigations += 1; });
    const heard = frameMentioning(page, "unlinked.");
    write("static/unlinked.css", "body { outline-offset: 22px; }\n");
    const msg = JSON.parse(String((await heard).payload));
    assert.equal(msg.css_only, true, "only CSS changed");
    assert.equal(msg.css_renames.length, 1, "the sheet was renamed");
    // The message has been handled (same task as its delivery); a reload would be under way.
    await page.evaluate(() => new Promise((r) => setTimeout(r, 50)));
    assert.equal(navigations, 0, "not reloaded");
    assert.equal(await markOf(page), token);
    await page.close();
  });

  test("the view counter counts each visitor once", async () => {
    const slug = "tern";
    const shown = async (page) => {
      const counter = page.locator(`[data-views="projects.${slug}"][data-views-count]`);
      await counter.waitFor({ state: "visible", timeout: PATIENCE });
      return Number((await counter.locator("[data-views-n]").textContent()).replace(/\D/g, ""));
    };
    const first = await context.newPage();
    await first.goto(url(`/projects/${slug}/`));
    const n = await shown(first);
    assert.ok(n >= 1, `a project page shows its count (${n})`);

    const other = await visitor("second-visitor");
    const second = await other.newPage();
    await second.goto(url(`/projects/${slug}/`));
    assert.equal(await shown(second), n + 1, "another visitor adds one");
    await second.reload();
    assert.equal(await shown(second), n + 1, "the same visitor again does not");
    const api = await (await second.request.get(url(`/api/views/projects.${slug}`))).json();
    assert.equal(api.views, n + 1, "the API agrees");
    await other.close();
    await first.close();
  });

  test("HTML carries the production security headers; no CSP violation or console error anywhere", async () => {
    const prod = productionHeaders(site, path.join(tmp, "public"));
    assert.ok(prod["content-security-policy"], "a production build has a CSP");
    const page = await context.newPage();
    // The 404 outside the tab: chromium logs every 404 navigation as a console error.
    const pages = [["/", 200], ["/projects/tinylisp/", 200], ["/no/such/page/", 404]];
    for (const [p, status] of pages) {
      const response = status === 200 ? await page.goto(url(p)) : await page.request.get(url(p));
      assert.equal(response.status(), status, p);
      const got = response.headers();
      assert.match(got["content-type"], /^text\/html/, p);
      for (const [name, value] of Object.entries(prod)) {
        if (name === "cache-control") continue;
        assert.equal(got[name], value, `${p}: ${name} as in production`);
      }
      assert.equal(got["cache-control"], "no-cache", p);
    }
    // What the pages fetch after `load` (the counter, the terminal's status, the favicon) is
    // checked too: wait until it is done.
    await page.waitForLoadState("networkidle", { timeout: PATIENCE });
    assert.deepEqual(violations, [], "no CSP violation");
    assert.deepEqual(errors, [], "no console error");

    // The listeners above do see a violation when there is one: an inline script.
    await page.evaluate(() => {
      const s = document.createElement("script");
      s.textContent = "window.__folioInline = 1";
      document.head.append(s);
    });
    for (const deadline = Date.now() + PATIENCE; !violations.length && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await page.evaluate(() => window.__folioInline ?? null), null, "the CSP blocks inline scripts");
    assert.equal(violations.length, 1, `the CSP listener reports it (${violations})`);
    assert.match(violations[0], /script-src/);
    await page.close();
  });
});

describe("folio serve when the site does not build, and across a restart", () => {
  let root;
  let srv;
  const seen = { violations: [], errors: [] };
  before(async () => {
    root = path.join(tmp, "broken-site");
    copySite(root);
  });
  after(async () => { await stopServe(srv); });

  test("a first build that fails: the tab says so, shows the overlay, and reloads once fixed",
    async () => {
      const about = path.join(root, "content/about.md");
      const good = readFileSync(about, "utf8");
      writeFileSync(about, good.replace(/^title = "About"$/m, 'title = "About'));
      srv = await startServe(root);
      const context = await visitor("first-build", seen);
      const page = await context.newPage();
      const response = await page.goto(`${srv.url}/about/`);
      assert.equal(response.status(), 503, "no site yet");
      const overlay = page.getByRole("alertdialog");
      await overlay.waitFor({ timeout: PATIENCE });
      assert.match(await overlay.textContent(), /content\/about\.md:2:\d+: \S/);
      assert.match(await overlay.locator("h2").textContent(), /has not built yet/);
      assert.match(response.headers()["content-security-policy"], /default-src 'none'/,
        "a strict policy even before there is a site");

      const reloaded = page.waitForEvent("load", { timeout: PATIENCE });
      writeFileSync(about, good);
      await reloaded;
      await page.locator("h1", { hasText: "About" }).first().waitFor({ timeout: PATIENCE });
      assert.equal(await page.getByRole("alertdialog").count(), 0);

      // Ctrl-C and start again on the same port: the tab reconnects, then reloads (the
      // site may have changed while the server was down).
      const port = new URL(srv.url).port;
      const token = await mark(page);
      // The page still fetches what it loads after `load` (its favicon, the counter): Ctrl-C
      // in the middle of one resets it, as any server's would. What is tested is the restart,
      // so stop once the tab is idle; a load that fails while serve is down still fails this.
      await page.waitForLoadState("networkidle", { timeout: PATIENCE });
      await stopServe(srv);
      const edited = `Edited while the server was down ${Date.now()}`;
      writeFileSync(about, good.replace(/\n\+\+\+\n/, `\n+++\n\n${edited}\n`));
      const back = page.waitForEvent("load", { timeout: PATIENCE });
      srv = await startServe(root, { port });
      await back;
      await page.locator("main").getByText(edited).waitFor({ timeout: PATIENCE });
      assert.notEqual(await markOf(page), token, "reloaded");
      await context.close();

      assert.deepEqual(seen.violations, [], "no CSP violation");
      // Expected: the 503 of the unbuilt site, and the socket failing while serve was down.
      const unexpected = seen.errors.filter((e) =>
        !/status of 503/.test(e) && !/WebSocket connection to '[^']*\/__folio\/ws' failed/.test(e));
      assert.deepEqual(unexpected, [], "no other console error");
    });
});
