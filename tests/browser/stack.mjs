// The real parts the browser tests click through: the Worker under `wrangler dev` over a
// real `folio build` (tests/worker/harness.mjs, FOLIO_PUBLIC_DIR), the real terminal origin
// folio-pty with its sandbox, and Debian's chromium driven by playwright-core.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { ROOT, PUBLIC_DIR, newSecret, readManifest, startPty, startWorker } from "../worker/harness.mjs";

export { ROOT, PUBLIC_DIR, readManifest };
export const ARTIFACTS = path.join(ROOT, "tests/browser/artifacts");

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
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
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
