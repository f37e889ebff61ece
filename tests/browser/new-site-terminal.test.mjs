// A `folio new` site with a `[demo]`, and no node_modules anywhere near it, runs its live
// terminal in chromium: `folio serve --terminal` (the real binary, its local folio-pty and
// sandbox) gets xterm.js from a registry — here a local one started by this test, serving
// npm-style tarballs it builds from the repository's @xterm packages, with their integrity
// given to the (debug) binary as the pins — into a fresh cache folder. The page loads the
// hashed xterm files, a click starts the terminal, and a typed command's output comes back.
//
//   cargo build -p folio -p folio-pty && node --test tests/browser/new-site-terminal.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { ARTIFACTS, ROOT, launchBrowser, startServe } from "./stack.mjs";

const TARGET = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target");
const FOLIO = path.join(TARGET, "debug/folio");
// Every wait below ends on an event (folio serve's "Built" line, an element appearing, the
// output row rendered, folio serve exiting); these caps only bound a wait that would otherwise hang. They
// are generous because a loaded 2-core machine runs this debug build's first build (xterm.js
// fetched, the site built, the search index written) and starts the sandbox slowly.
const PATIENCE = 240_000;
const FIRST_BUILD_PATIENCE = 300_000;
const serveSite = (root, env) => startServe(root, { args: ["--terminal"], env, patience: FIRST_BUILD_PATIENCE });

/** `promise`, or a rejection with folio serve's log as soon as it exits (nothing a test waits
 * for can come then). */
async function whileServing(promise) {
  let onExit;
  const exited = new Promise((_, reject) => {
    onExit = (code) => reject(new Error(`folio serve exited (${code}):\n${serve.log.join("")}`));
    if (serve.child.exitCode !== null) onExit(serve.child.exitCode);
    else serve.child.once("exit", onExit);
  });
  promise.catch(() => {}); // if folio serve exits first, the abandoned wait fails later, unheard
  try {
    return await Promise.race([promise, exited]);
  } finally {
    serve.child.off("exit", onExit);
  }
}
const PACKAGES = [
  ["@xterm/xterm", "6.0.0", ["package.json", "lib/xterm.mjs", "css/xterm.css"]],
  ["@xterm/addon-fit", "0.11.0", ["package.json", "lib/addon-fit.mjs"]],
  ["@xterm/addon-web-links", "0.12.0", ["package.json", "lib/addon-web-links.mjs"]],
];

let tmp;
let registry;
let serve;
let browser;

/** A ustar archive of `files` ([name, Buffer]), gzipped: the layout of an npm tarball. */
function tgz(files) {
  const blocks = [];
  for (const [name, body] of files) {
    const h = Buffer.alloc(512);
    h.write(name, 0, 100, "utf8");
    h.write("0000644\0", 100);
    h.write("0000000\0", 108);
    h.write("0000000\0", 116);
    h.write(body.length.toString(8).padStart(11, "0") + "\0", 124);
    h.write("00000000000\0", 136);
    h.write("        ", 148); // checksum field counts as spaces
    h.write("0", 156);
    h.write("ustar\0", 257);
    h.write("00", 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return zlib.gzipSync(Buffer.concat(blocks));
}

/** Starts the local registry; resolves to { url, pins, hits, close }. */
function startRegistry() {
  const served = new Map();
  const pins = [];
  for (const [name, version, files] of PACKAGES) {
    const body = tgz(files.map((f) => [`package/${f}`, readFileSync(path.join(ROOT, "node_modules", name, f))]));
    const base = name.split("/").pop();
    served.set(`/${name}/-/${base}-${version}.tgz`, body);
    pins.push(`${name}@${version}=sha512-${createHash("sha512").update(body).digest("base64")}`);
  }
  const hits = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url);
    const body = served.get(req.url);
    res.writeHead(body ? 200 : 404, { "Content-Type": "application/octet-stream" });
    res.end(body ?? "");
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    pins: pins.join(","),
    hits,
    close: () => new Promise((r) => server.close(r)),
  })));
}

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "folio-new-terminal-"));
  const site = path.join(tmp, "site");
  const made = spawnSync(FOLIO, ["new", site], { encoding: "utf8" });
  assert.equal(made.status, 0, made.stderr);
  const page = path.join(site, "content/projects/hello-folio/index.md");
  const text = readFileSync(page, "utf8");
  const end = text.indexOf("+++", 3);
  writeFileSync(page, `${text.slice(0, end)}[demo]\ncommand = "/bin/sh"\n${text.slice(end)}`);
  for (let d = site; d !== path.dirname(d); d = path.dirname(d)) {
    assert.ok(!existsSync(path.join(d, "node_modules")), `a node_modules at ${d}`);
  }
  registry = await startRegistry();
  const env = { ...process.env, FOLIO_CACHE_DIR: path.join(tmp, "cache"), FOLIO_NPM_REGISTRY: registry.url,
    FOLIO_TEST_NPM_INTEGRITY: registry.pins, PATH: `${path.join(TARGET, "debug")}:${process.env.PATH}` };
  delete env.FOLIO_NODE_MODULES;
  serve = await serveSite(site, env);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (serve && serve.child.exitCode === null) {
    const exited = new Promise((r) => serve.child.once("exit", r));
    serve.child.kill("SIGINT");
    await exited;
  }
  await registry?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test("a folio new site with a [demo] runs its terminal with no node_modules anywhere", { timeout: 2 * PATIENCE + 60_000 }, async () => {
  const log = serve.log.join("");
  assert.doesNotMatch(log, /live terminal needs/, log);
  assert.equal(registry.hits.length, PACKAGES.length, `one download per package: ${registry.hits}`);
  assert.ok(existsSync(path.join(tmp, "cache/npm/@xterm+xterm@6.0.0/lib/xterm.mjs")), "xterm.js not cached");

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(PATIENCE);
  context.setDefaultNavigationTimeout(PATIENCE);
  const page = await context.newPage();
  const violations = [];
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  await page.goto(`${serve.url}/projects/hello-folio/`);
  const section = page.locator("[data-terminal]");
  const xtermJs = await section.getAttribute("data-xterm-js");
  assert.match(xtermJs, /^\/vendor\/xterm\/xterm\.[0-9a-f]+\.mjs$/);
  const served = await page.request.get(`${serve.url}${xtermJs}`);
  assert.equal(served.status(), 200);
  assert.deepEqual(Buffer.from(await served.body()),
    readFileSync(path.join(ROOT, "node_modules/@xterm/xterm/lib/xterm.mjs")), "the served xterm.js is the package's");

  await page.locator("[data-terminal-start]").click();
  await whileServing(page.waitForSelector("[data-terminal] .xterm-rows", { timeout: PATIENCE }));
  // Keys typed before the session's socket is open are dropped by the page (terminal.js sends
  // input only after its hello), and on a loaded machine the sandbox starts slowly: wait until
  // the section says it runs, and fail at once (with its status text) if it was refused or lost.
  const state = await whileServing(page.waitForFunction(() => {
    const s = document.querySelector("[data-terminal]").getAttribute("data-terminal-state");
    return ["running", "refused", "lost", "exited"].includes(s) && s;
  }, null, { timeout: PATIENCE }));
  assert.equal(await state.jsonValue(), "running",
    `${await page.evaluate(() => document.querySelector("[data-terminal-status]")?.textContent)}\n`
    + `--- folio serve:\n${serve.log.join("")}`);
  await page.locator("[data-terminal] .xterm-helper-textarea").focus();
  // Type at the prompt, as a visitor does. Typed sooner, the line waits in the PTY and is
  // echoed before the shell starts: /bin/sh's `$ ` then lands before the output, on its line.
  try {
    await whileServing(page.waitForFunction(() => [...document.querySelectorAll("[data-terminal] .xterm-rows > div")]
      .some((r) => r.textContent.replace(/\u00a0/g, " ").trim() === "$"), null, { timeout: PATIENCE }));
    await page.keyboard.type("echo new-site-$((6*7))\n");
    // Checked on every animation frame (xterm renders output as DOM rows); the cap only bounds it.
    await whileServing(page.waitForFunction(() => [...document.querySelectorAll("[data-terminal] .xterm-rows > div")]
      .some((r) => /^new-site-42\s*$/.test(r.textContent.replace(/\u00a0/g, " ").trim())), null,
    { timeout: PATIENCE }));
  } catch (e) {
    await page.screenshot({ path: path.join(ARTIFACTS, "new-site-terminal.png") });
    const rows = await page.$$eval("[data-terminal] .xterm-rows > div", (rs) => rs.map((r) => r.textContent));
    throw new Error(`no prompt, or no output line new-site-42 (${e.message}):\n${rows.join("\n")}\n--- folio serve:\n${serve.log.join("")}`);
  }
  assert.deepEqual(violations, []);
  await context.close();
});
