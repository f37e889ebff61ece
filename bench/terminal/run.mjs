// The figures a visitor feels, through the real stack (chromium → wrangler dev → folio-pty in
// its sandbox): click "Run it live" → first output on the screen, and a dropped connection →
// "Reconnected — resumed". Measured in the page with performance.now(): the click is taken
// from a capture-phase listener on the start button, the first output from a MutationObserver
// on xterm's rows (the first row with text), the drop from the page's own state change to
// "reconnecting" and the resume from its status line. Prints median and p95 of each.
//
//   node bench/terminal/run.mjs [--runs N] [--demo ID]
import path from "node:path";
import { launchBrowser, newVisitor, readManifest, startStack } from "../../tests/browser/stack.mjs";
import { cutProxy } from "../../tests/browser/cutproxy.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const RUNS = Number(opt("runs", 15));
const manifest = readManifest();
const DEMO = opt("demo", manifest.demos.includes("life") ? "life" : manifest.demos[0]);

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.ceil(q * s.length) - 1);
  return s[Math.max(0, i)];
}
const fmt = (xs) => `median ${quantile(xs, 0.5).toFixed(0)} ms, p95 ${quantile(xs, 0.95).toFixed(0)} ms (n=${xs.length}, min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;

const stack = await startStack();
const proxy = await cutProxy(stack.worker.port);
const browser = await launchBrowser();
const firstOutput = [];
const resume = [];
try {
  for (let i = 0; i < RUNS; i++) {
    // Each run is its own visitor (the per-visitor caps), and a fresh page (xterm loaded cold
    // from the browser's HTTP cache as a returning visitor would: the context is new).
    const { context } = await newVisitor(browser, `bench-${i}`);
    await context.addInitScript(() => {
      window.__bench = {};
      document.addEventListener("click", (e) => {
        if (e.target.closest && e.target.closest("[data-terminal-start]") && !window.__bench.click) {
          window.__bench.click = performance.now();
        }
      }, true);
      new MutationObserver(() => {
        const b = window.__bench;
        const sec = document.querySelector("[data-terminal]");
        if (!sec) return;
        const st = sec.getAttribute("data-terminal-state");
        if (st === "reconnecting" && !b.drop) b.drop = performance.now();
        const status = document.querySelector("[data-terminal-status]");
        if (b.drop && !b.resumed && status && /Reconnected/.test(status.textContent)) b.resumed = performance.now();
        if (!b.first && b.click) {
          const rows = document.querySelectorAll("[data-terminal] .xterm-rows > div");
          for (const r of rows) {
            if (r.textContent.trim()) { b.first = performance.now(); break; }
          }
        }
      }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    const page = await context.newPage();
    await page.goto(`${proxy.base}/projects/${DEMO}/`);
    await page.locator("[data-terminal-start]").click();
    await page.waitForFunction(() => window.__bench.first, null, { timeout: 60_000 });
    const b1 = await page.evaluate(() => window.__bench);
    firstOutput.push(b1.first - b1.click);
    await page.waitForFunction(() => document.querySelector("[data-terminal]").getAttribute("data-terminal-state") === "running");
    proxy.cut(0);
    await page.waitForFunction(() => window.__bench.resumed, null, { timeout: 60_000 });
    const b2 = await page.evaluate(() => window.__bench);
    resume.push(b2.resumed - b2.drop);
    await page.locator("[data-terminal-stop]").click();
    await page.waitForFunction(() => document.querySelector("[data-terminal]").getAttribute("data-terminal-state") === "exited");
    await context.close();
    process.stderr.write(`run ${i + 1}/${RUNS}: first output ${(b1.first - b1.click).toFixed(0)} ms, resume ${(b2.resumed - b2.drop).toFixed(0)} ms\n`);
  }
  console.log(`demo ${DEMO}, ${RUNS} runs, chromium → wrangler dev → folio-pty (sandboxed), through a local TCP proxy`);
  console.log(`click "Run it live" → first output on screen: ${fmt(firstOutput)}`);
  console.log(`connection dropped → "Reconnected — resumed": ${fmt(resume)}`);
} finally {
  await browser.close();
  await proxy.close();
  await stack.stop();
}
