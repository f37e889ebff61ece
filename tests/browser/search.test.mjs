// Full-text search in chromium (docs/search.md), on the example portfolio served by the real
// `folio serve` (the same build as `folio build`, the same security headers): a word that only
// one project's body holds (not its title, description or tags: the words are read from the
// markdown files here, not from the index) finds that project, its excerpt marks the word and
// the result names its section; `/` opens the search, the arrows move through the results,
// Enter follows one, Escape closes; the search script loads only on first use; axe finds
// nothing on the open search; no CSP violation, no console error.
//
//   cargo build -p folio && node --test tests/browser/search.test.mjs   (or tests/browser/run.sh)
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { ARTIFACTS, FOLIO, ROOT, cspViolations, launchBrowser, newVisitor, startServe } from "./stack.mjs";

const AXE = path.join(ROOT, "node_modules/axe-core/axe.min.js");
/** A guard against hanging, not a speed requirement. */
const PATIENCE = 60_000;
const serveSite = (root) => startServe(root, { failOnBuildError: true });

let server;
let browser;

/** Every markdown file under content/, as [path under content/, text]. */
function contentFiles(dir = path.join(ROOT, "content"), out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) contentFiles(p, out);
    else if (name.endsWith(".md")) out.push([path.relative(path.join(ROOT, "content"), p), readFileSync(p, "utf8")]);
  }
  return out;
}

/** Front matter and prose of a markdown file: code, link targets, HTML and comments dropped. */
function split(text) {
  const m = text.match(/^(\+\+\+|---)\n([\s\S]*?)\n\1\n([\s\S]*)$/);
  const front = m ? m[2] : "";
  const body = (m ? m[3] : text)
    .replace(/^(```|~~~)[\s\S]*?^\1\s*$/gm, " ")
    .replace(/`[^`]*`/g, " ")
    .replace(/\]\([^)]*\)/g, "] ")
    .replace(/<!--[\s\S]*?-->/g, " ")
    .replace(/<[^>]+>/g, " ");
  return { front, body };
}

const words = (s) => new Set(s.toLowerCase().match(/[a-z]{6,}/g) ?? []);

/**
 * A word that only one project write-up's prose holds: in no other content file at all, and
 * not in that project's front matter (title, description, tags). Returns the word and the
 * project's file.
 */
function bodyOnlyWord() {
  const files = contentFiles();
  const everywhere = new Map(); // word -> files holding it anywhere
  for (const [f, text] of files) {
    for (const w of words(text)) everywhere.set(w, (everywhere.get(w) ?? 0) + 1);
  }
  for (const [f, text] of files) {
    if (!f.startsWith("projects/") || f.endsWith("_index.md")) continue;
    const { front, body } = split(text);
    const inFront = words(front);
    const pick = [...words(body)].sort().find((w) => everywhere.get(w) === 1 && !inFront.has(w));
    if (pick) return { word: pick, file: f };
  }
  throw new Error("no word only one project's body holds");
}

async function axe(page) {
  await page.evaluate(readFileSync(AXE, "utf8"));
  return page.evaluate(async () => {
    const r = await window.axe.run(document);
    return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  });
}

before(async () => {
  server = await serveSite(ROOT);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) {
    server.child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 500));
    server.child.kill("SIGKILL");
  }
});

describe("full-text search", () => {
  test("a word only a project's body holds finds it, excerpt marked, section named; keyboard only", async () => {
    const { word, file } = bodyOnlyWord();
    const projects = await (await fetch(`${server.url}/projects.json`)).json();
    const slug = path.basename(file, ".md") === "index" ? path.basename(path.dirname(file)) : path.basename(file, ".md");
    const project = projects.find((p) => p.slug === slug);
    assert.ok(project, `${file} is a published project`);
    const target = project.path;
    for (const field of [project.title, project.description ?? "", (project.tags ?? []).join(" ")]) {
      assert.ok(!field.toLowerCase().includes(word), `${word} is not in ${project.slug}'s title, description or tags`);
    }

    const { context, errors } = await newVisitor(browser, "search");
    const page = await context.newPage();
    const fetched = [];
    page.on("request", (r) => fetched.push(new URL(r.url()).pathname));
    await page.goto(`${server.url}/`);
    assert.ok(!fetched.some((p) => /\/js\/search\.|\/search\//.test(p)), `nothing of search loads before use: ${fetched}`);
    const opener = page.locator("button.search-open");
    assert.equal(await opener.isVisible(), true, "the search button shows with JavaScript");

    // `/` opens it with the field focused.
    await page.locator("body").press("/");
    const dialog = page.locator("dialog.search-dialog");
    await dialog.waitFor({ state: "visible", timeout: PATIENCE });
    assert.equal(await page.evaluate(() => document.activeElement?.id), "search-q");
    await page.keyboard.type(word);
    const hit = page.locator(`.search-results a[href="${target}"]`);
    await hit.waitFor({ timeout: PATIENCE });
    // Search runs as the visitor types (debounced) and matches prefixes: on a slow machine a
    // prefix's results may show the page first, marked with the prefix. Wait for the word's.
    let marks = [];
    for (const until = Date.now() + PATIENCE; Date.now() < until; await page.waitForTimeout(50)) {
      marks = await hit.locator(".search-hit-excerpt mark").allTextContents();
      if (marks.length > 0 && marks.every((m) => m.toLowerCase() === word)) break;
    }
    assert.ok(marks.length > 0 && marks.every((m) => m.toLowerCase() === word), `excerpt marks ${word}: ${marks}`);
    const section = await hit.locator(".search-hit-section").textContent();
    const sectionTitle = split(readFileSync(path.join(ROOT, "content/projects/_index.md"), "utf8")).front
      .match(/^title\s*=\s*"([^"]*)"/m)?.[1];
    assert.equal(section, sectionTitle, "the result names its section");
    const statusText = await page.locator("#search-status").textContent();
    assert.match(statusText, /^\d+ results?/, "the live region says how many");
    await page.screenshot({ path: path.join(ARTIFACTS, "search-open.png") });

    // axe on the open search, with results.
    assert.deepEqual(await axe(page), []);

    // Arrows: down into the results, up back to the field.
    const links = page.locator(".search-results a");
    const n = await links.count();
    await page.keyboard.press("ArrowDown");
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("href")), await links.nth(0).getAttribute("href"));
    if (n > 1) {
      await page.keyboard.press("ArrowDown");
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("href")), await links.nth(1).getAttribute("href"));
      await page.keyboard.press("ArrowUp");
    }
    await page.keyboard.press("ArrowUp");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "search-q");

    // Escape closes, and focus goes back to the page.
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden", timeout: PATIENCE });
    // Escape then `/` in the same instant, before the browser has moved focus off the closed
    // dialog's field: the `/` still opens it (it once went nowhere, and CI caught it).
    const quick = await page.evaluate(() => {
      const d = document.querySelector("dialog.search-dialog");
      const q = document.getElementById("search-q");
      d.showModal();
      q.focus();
      q.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true, cancelable: true }));
      const closed = !d.open;
      q.dispatchEvent(new KeyboardEvent("keydown", { key: "/", bubbles: true, cancelable: true }));
      return { closed, open: d.open, focused: document.activeElement?.id };
    });
    assert.deepEqual(quick, { closed: true, open: true, focused: "search-q" });
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden", timeout: PATIENCE });
    // `/` opens it again (the script is loaded now), the query kept; Enter on a result follows it.
    await page.locator("body").press("/");
    await dialog.waitFor({ state: "visible", timeout: PATIENCE });
    const index = await links.evaluateAll((as, t) => as.findIndex((a) => a.getAttribute("href") === t), target);
    assert.ok(index >= 0);
    for (let i = 0; i <= index; i++) await page.keyboard.press("ArrowDown");
    await Promise.all([page.waitForURL((u) => u.pathname === target, { timeout: PATIENCE }), page.keyboard.press("Enter")]);
    // The page followed to is checked whole, with what it fetches after `load`.
    await page.waitForLoadState("networkidle", { timeout: PATIENCE });

    const searchFiles = fetched.filter((p) => p.includes("/search/"));
    assert.ok(searchFiles.includes("/search/index.json"));
    assert.ok(searchFiles.some((p) => /\/search\/s\/[0-9a-f]+-[0-9a-f]{8}\.gz$/.test(p)), `a shard was fetched: ${searchFiles}`);
    assert.ok(searchFiles.some((p) => /\/search\/p-[0-9a-f]{8}\/\d+-\d+\.gz$/.test(p)), `a store bundle was fetched: ${searchFiles}`);
    assert.deepEqual(await cspViolations(page), []);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("a word in no page says so; one letter asks for more", async () => {
    const { context, errors } = await newVisitor(browser, "search-none");
    const page = await context.newPage();
    await page.goto(`${server.url}/projects/`);
    await page.locator("button.search-open").click();
    const input = page.locator("#search-q");
    await input.waitFor({ timeout: PATIENCE });
    await input.fill("zqxjvw");
    await page.locator("#search-status", { hasText: "No results." }).waitFor({ timeout: PATIENCE });
    assert.equal(await page.locator(".search-results li").count(), 0);
    await input.fill("q");
    await page.locator("#search-status", { hasText: "at least 2" }).waitFor({ timeout: PATIENCE });
    assert.deepEqual(await cspViolations(page), []);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("page text is shown as text: markup in a title or body never runs", async () => {
    // A site of its own: a title and a body holding markup-looking text.
    const dir = mkdtempSync(path.join(os.tmpdir(), "folio-search-xss-"));
    const write = (rel, text) => {
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      writeFileSync(path.join(dir, rel), text);
    };
    write("folio.toml", 'title = "Marks"\nbase_url = "https://marks.example"\n');
    write("content/_index.md", '+++\ntitle = "Home"\n+++\n');
    write("content/projects/_index.md", '+++\ntitle = "Notes"\n+++\n');
    const title = '<img src=x onerror="window.__xss=1">Quixotic & <b>bold</b>';
    write("content/projects/odd.md", `+++\ntitle = ${JSON.stringify(title)}\n+++\nThe quixotic text \\<script>window.__xss=2\\</script> stays text.\n`);
    const own = await serveSite(dir);
    try {
      const { context, errors } = await newVisitor(browser, "search-xss");
      const page = await context.newPage();
      await page.goto(`${own.url}/`);
      await page.locator("body").press("/");
      await page.locator("#search-q").waitFor({ timeout: PATIENCE });
      await page.keyboard.type("quixotic");
      const hit = page.locator('.search-results a[href="/projects/odd/"]');
      await hit.waitFor({ timeout: PATIENCE });
      assert.equal(await hit.locator(".search-hit-title").textContent(), title);
      assert.match(await hit.locator(".search-hit-excerpt").textContent(), /<script>window.__xss=2<\/script>/);
      assert.equal(await page.locator(".search-results img, .search-results script, .search-results b").count(), 0);
      assert.equal(await page.evaluate(() => window.__xss), undefined);
      assert.deepEqual(await cspViolations(page), []);
      assert.deepEqual(errors, []);
      await context.close();
    } finally {
      own.child.kill("SIGINT");
      await new Promise((r) => setTimeout(r, 500));
      own.child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a tab that read the index before a rebuild reads the manifest again and shows the right pages", async () => {
    // A site built by `folio build` and served as plain files (read at each request, so a
    // rebuild shows at once, as a deploy does); no live reload to hide the stale tab.
    const dir = mkdtempSync(path.join(os.tmpdir(), "folio-search-stale-"));
    const write = (rel, text) => {
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      writeFileSync(path.join(dir, rel), text);
    };
    write("folio.toml", 'title = "Ledger"\nbase_url = "https://ledger.example"\n');
    write("content/_index.md", '+++\ntitle = "Home"\n+++\n');
    write("content/log/_index.md", '+++\ntitle = "Log"\n+++\n');
    // Forty entries of a few KB of made-up words each: the stores fill several bundles.
    let seed = 7;
    const letter = () => String.fromCharCode(97 + ((seed = (seed * 1103515245 + 12345) % 2147483648) >> 16) % 26);
    const prose = () => Array.from({ length: 400 }, () => Array.from({ length: 7 }, letter).join("")).join(" ");
    const names = Array.from({ length: 40 }, (_, i) => `n${String(i).padStart(2, "0")}`);
    for (const [i, n] of names.entries()) {
      write(`content/log/m${n}.md`, `+++\ntitle = "Entry ${n}"\n+++\nThe kestrel${n} flew over the ${n} moor. ${prose()}\n`);
    }
    const build = () => execFileSync(FOLIO, ["build", "--root", dir], { stdio: "pipe" });
    build();
    const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json", ".gz": "application/gzip" };
    const fetched = [];
    const files = http.createServer((req, res) => {
      let rel = decodeURIComponent(new URL(req.url, "http://x").pathname);
      fetched.push(rel);
      if (rel.endsWith("/")) rel += "index.html";
      try {
        const body = readFileSync(path.join(dir, "public", rel));
        res.writeHead(200, { "content-type": types[path.extname(rel)] ?? "application/octet-stream" });
        res.end(body);
      } catch {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise((r) => files.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${files.address().port}`;
    try {
      const { context, errors } = await newVisitor(browser, "search-stale");
      const page = await context.newPage();
      await page.goto(`${url}/`);
      await page.locator("body").press("/");
      const input = page.locator("#search-q");
      await input.waitFor({ timeout: PATIENCE });
      // The first entry: the manifest, its shard and its store bundle are read now.
      await input.fill("kestreln00");
      await page.locator('.search-results a[href="/log/mn00/"]').waitFor({ timeout: PATIENCE });
      const manifests = () => fetched.filter((p) => p === "/search/index.json").length;
      assert.equal(manifests(), 1);
      const oldStores = fetched.filter((p) => p.startsWith("/search/p-"));
      assert.ok(oldStores.length > 0, `${fetched}`);

      // Rebuilt with a page whose path sorts first: every id moves up by one, the stores move
      // to another folder; the tab still holds the old manifest and the old shard.
      write("content/log/a0.md", '+++\ntitle = "Entry zero"\n+++\nThe kestrelzero flew too.\n');
      build();
      // The last entry: in another bundle, which the old manifest names in the old folder.
      await input.fill("kestreln39");
      const hit = page.locator('.search-results a[href="/log/mn39/"]');
      await hit.waitFor({ timeout: PATIENCE });
      assert.equal(await page.locator(".search-results li").count(), 1);
      assert.equal(await hit.locator(".search-hit-title").textContent(), "Entry n39");
      assert.equal(manifests(), 2, "the manifest was read again, once");
      // The bundle was asked for in the old folder (gone), then in the new one.
      const oldDir = oldStores[0].replace(/[^/]*$/, "");
      const later = fetched.filter((p) => p.startsWith("/search/p-") && !oldStores.includes(p));
      assert.ok(later.length === 2 && later[0].startsWith(oldDir) && !later[1].startsWith(oldDir), `${later}`);
      // The new page is found too, and nothing more is re-read.
      await input.fill("kestrelzero");
      await page.locator("#search-status", { hasText: /^1 result\.$/ }).waitFor({ timeout: PATIENCE });
      await page.locator('.search-results a[href="/log/a0/"]').waitFor({ timeout: PATIENCE });
      assert.equal(manifests(), 2);
      // The gone bundle's 404 is the browser's own log line; nothing else.
      assert.deepEqual(errors.filter((e) => !/status of 404/.test(e)), [], `${errors}`);
      await context.close();
    } finally {
      files.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
