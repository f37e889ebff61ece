// A dropped connection, end to end: chromium → a TCP proxy this test cuts → the real Worker
// (`wrangler dev`) → the real folio-pty in its sandbox. The socket is cut mid-session and the
// network stays down for a few seconds while the shell prints; the page reconnects by itself
// with its resume token, says "Reconnected — resumed", the variable set before the drop is
// still set, and the output produced while away is on the screen. Ending the session
// dispatches `folio-terminal-ended`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { ARTIFACTS, cspViolations, launchBrowser, newVisitor, readManifest, startStack } from "./stack.mjs";
import { cutProxy } from "./cutproxy.mjs";

const SHELL = "life"; // [demo] without a command: an interactive bash
let stack;
let browser;
let proxy;

before(async () => {
  assert.ok(readManifest().demos.includes(SHELL), `the example site should declare the ${SHELL} demo`);
  stack = await startStack();
  proxy = await cutProxy(stack.worker.port);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await proxy?.close();
  await stack?.stop();
});

async function waitForLine(page, re, what) {
  try {
    await page.waitForFunction((src) => {
      const re = new RegExp(src);
      return [...document.querySelectorAll("[data-terminal] .xterm-rows > div")]
        .some((r) => re.test(r.textContent.replace(/\u00a0/g, " ")));
    }, re.source, { timeout: 60_000 });
  } catch (e) {
    const rows = await page.$$eval("[data-terminal] .xterm-rows > div", (rs) => rs.map((r) => r.textContent));
    throw new Error(`${what}: no row matching ${re}:\n${rows.join("\n")}`);
  }
}

test("a socket cut mid-session: the page resumes the same shell and shows what it missed", { timeout: 180_000 }, async () => {
  const { context } = await newVisitor(browser, "term-resume");
  await context.addInitScript(() => {
    window.__folioEnded = [];
    window.__folioStates = [];
    document.addEventListener("folio-terminal-ended", (e) => window.__folioEnded.push(e.detail), true);
    new MutationObserver((ms) => {
      for (const m of ms) {
        if (m.attributeName === "data-terminal-state") window.__folioStates.push(m.target.getAttribute("data-terminal-state"));
      }
    }).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-terminal-state"] });
  });
  const page = await context.newPage();
  const sockets = [];
  page.on("websocket", (ws) => { if (ws.url().includes("/terminal/")) sockets.push(ws.url()); });
  await page.goto(`${proxy.base}/projects/${SHELL}/`);
  const section = page.locator("[data-terminal]");
  await page.locator("[data-terminal-start]").click();
  await page.waitForFunction(() => document.querySelector("[data-terminal]").getAttribute("data-terminal-state") === "running");
  await waitForLine(page, /life: try/, "motd");
  await page.locator("[data-terminal] .xterm-helper-textarea").focus();
  await page.keyboard.type("export RESUME_MARK=fig-$((6*7)); echo set-$((2+2))\n");
  await waitForLine(page, /^set-4\s*$/, "the variable set");
  // The whole line must reach the shell before the cut (each key is a frame of its own):
  // `go-2` printed says it has, and `away-42` comes 2 s later, while the network is down.
  await page.keyboard.type("echo go-$((1+1)); sleep 2; echo away-$((20+22))\n");
  await waitForLine(page, /^go-2\s*$/, "the line reached the shell");

  // The network goes away for 5 s: every connection is destroyed, new ones refused.
  proxy.cut(5000);
  await page.waitForFunction(() => window.__folioStates.includes("reconnecting"), null, { timeout: 30_000 });
  assert.match(await section.locator("[data-terminal-status]").textContent(), /Reconnecting/);
  await page.waitForFunction(
    () => /Reconnected/.test(document.querySelector("[data-terminal-status]").textContent),
    null, { timeout: 60_000 });
  assert.match(await section.locator("[data-terminal-status]").textContent(), /Reconnected \u2014 resumed/);
  // Printed while the page was disconnected (2 s after the cut, the network down for 5 s):
  // replayed from the origin's buffer.
  await waitForLine(page, /^away-42\s*$/, "the output produced while away");
  assert.ok(sockets.some((u) => /[?&]resume=1/.test(u)), `no resume connection: ${sockets}`);
  await page.keyboard.type("echo mark=$RESUME_MARK\n");
  await waitForLine(page, /^mark=fig-42\s*$/, "the same shell after the resume");
  await section.screenshot({ path: path.join(ARTIFACTS, "terminal-resumed.png") });
  assert.deepEqual(await page.evaluate(() => window.__folioEnded), [], "no ending while resuming");

  // Stop: the session ends for good, and says so to whoever listens.
  await section.locator("[data-terminal-stop]").click();
  await page.waitForFunction(() => window.__folioEnded.length > 0);
  const [ended] = await page.evaluate(() => window.__folioEnded);
  assert.equal(ended.reason, "ended");
  assert.equal(ended.retryAfter, null);
  assert.match(ended.message, /Stopped/);
  assert.deepEqual(await cspViolations(page), []);
  await context.close();
});
