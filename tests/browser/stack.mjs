// The real parts the browser tests click through: the Worker under `wrangler dev` over a
// real `folio build` (tests/worker/harness.mjs, FOLIO_PUBLIC_DIR), the real terminal origin
// folio-pty with its sandbox, and Debian's chromium driven by playwright-core.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { ROOT, PUBLIC_DIR, newSecret, readManifest, startPty, startWorker } from "../worker/harness.mjs";

export { ROOT, PUBLIC_DIR, readManifest };
export const ARTIFACTS = path.join(ROOT, "tests/browser/artifacts");
/** The `folio` binary the tests run (a debug build). */
export const FOLIO = path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target"), "debug/folio");

/**
 * Starts `folio serve` over `root` (on any free port by default); resolves once it has printed
 * its URL and finished its first build (a failed first build rejects when `failOnBuildError`).
 * `env` defaults to this process's with the repository's node_modules for xterm.js.
 */
export function startServe(root, { port = 0, args = [], env, failOnBuildError = false, patience = 60_000 } = {}) {
  const child = spawn(FOLIO, ["serve", "--port", String(port), ...args, "--root", root], {
    env: env ?? { ...process.env, FOLIO_NODE_MODULES: path.join(ROOT, "node_modules") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  return new Promise((resolve, reject) => {
    let url = null;
    const timer = setTimeout(() => reject(new Error(`folio serve not up:\n${log.join("")}`)), patience);
    const onData = (chunk) => {
      log.push(chunk.toString());
      const text = log.join("");
      url ??= text.match(/^Serving (http:\/\/\S+?)\/? /m)?.[1] ?? null;
      if (failOnBuildError && /build failed/.test(text)) {
        clearTimeout(timer);
        reject(new Error(`folio serve: build failed:\n${text}`));
      } else if (url && /^Built |build failed/m.test(text)) {
        clearTimeout(timer);
        resolve({ child, url, log });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`folio serve exited with ${code}:\n${log.join("")}`));
    });
  });
}

/** Launches Debian's chromium headless. */
export async function launchBrowser() {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.FOLIO_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

let visitorSeq = 0;

/**
 * A browser context that is its own visitor: its own User-Agent (the Worker counts a view once
 * per IP + User-Agent) and its own address (every limit counts per address: `wrangler dev`
 * takes it from `CF-Connecting-IP`, which the context sends on every request, WebSockets
 * included). CSP violations and page errors are recorded in `window.__folio` and `errors` so
 * tests can assert there are none.
 */
export async function newVisitor(browser, ua, options = {}) {
  visitorSeq += 1;
  const context = await browser.newContext({
    userAgent: `Mozilla/5.0 (X11; Linux x86_64) folio-browser-test/${ua}`,
    viewport: { width: 1280, height: 900 },
    extraHTTPHeaders: { "CF-Connecting-IP": `198.18.${(visitorSeq >> 8) & 255}.${visitorSeq & 255}` },
    ...options,
  });
  await context.addInitScript(() => {
    window.__folio = { csp: [] };
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__folio.csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  const errors = [];
  context.on("page", (page) => trackErrors(page, errors));
  return { context, errors };
}

function trackErrors(page, errors) {
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(consoleError(m));
  });
}

/**
 * A console message as a test reports it. A failed load's message names its resource only in
 * its location: kept, so a failure says which request it was.
 */
export function consoleError(m) {
  const at = m.location()?.url;
  return `console: ${m.text()}${at ? ` (${at})` : ""}`;
}

/** CSP violations seen by the page so far. */
export function cspViolations(page) {
  return page.evaluate(() => window.__folio.csp);
}

/** folio-pty + the Worker relaying to it. `stop()` ends both. */
export async function startStack() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "folio-browser-"));
  const secret = newSecret();
  const secretFile = path.join(dir, "secret");
  writeFileSync(secretFile, secret, { mode: 0o600 });
  let pty = await startPty(secretFile);
  const worker = await startWorker({ terminalOrigin: `http://127.0.0.1:${pty.port}`, secret });
  return {
    base: worker.base,
    worker,
    get pty() { return pty; },
    /** Kills folio-pty (SIGKILL: no goodbye to the sessions). */
    async killPty() { await pty.kill("SIGKILL"); },
    /** Starts folio-pty again on the same port. */
    async restartPty() { pty = await startPty(secretFile, pty.port); },
    async stop() {
      await worker.stop();
      await pty.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts only the Worker (its terminal origin points nowhere). */
export async function startWorkerOnly() {
  return startWorker({ terminalOrigin: "http://127.0.0.1:9", secret: newSecret() });
}
