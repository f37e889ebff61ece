// "Run it live" end to end: chromium → the real Worker (`wrangler dev`) → the real
// folio-pty with its sandbox, running the example portfolio's demos. Starts with the
// keyboard, types into the demo and reads its output from the terminal, under the site's
// strict CSP (no violations); resizes (the PTY sees the new size); floods (pause/resume on
// the wire); shows the exit status; refuses a visitor's third terminal and says when to
// retry; loses the origin and reconnects.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { ARTIFACTS, cspViolations, launchBrowser, newVisitor, readManifest, startStack } from "./stack.mjs";

const manifest = readManifest();
const LISP = "tinylisp";
const SHELL = "life"; // its [demo] has no command: an interactive bash in its sources
const TRUECOLOR = "minirt";
// Never skipped: if the example site lost one of these demos, every test fails and says so.
const missingDemos = [LISP, SHELL, TRUECOLOR].filter((d) => !manifest.demos.includes(d));

let stack;
let browser;

before(async () => {
  assert.deepEqual(missingDemos, [], `the example site should declare the ${LISP}, ${SHELL} and ${TRUECOLOR} demos (has ${manifest.demos})`);
  stack = await startStack();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const url = (p) => `${stack.base}${p}`;

/** Records the terminal WebSocket's frames both ways (as the wire carries them). */
function wire(page) {
  const w = { sent: [], received: [], closed: 0, waiters: [] };
  page.on("websocket", (ws) => {
    if (!ws.url().includes("/terminal/")) return;
    ws.on("framesent", (f) => {
      w.sent.push(f.payload);
      w.waiters = w.waiters.filter(([pred, resolve]) => !(pred(f.payload) && (resolve(f.payload), true)));
    });
    ws.on("framereceived", (f) => w.received.push(f.payload));
    ws.on("close", () => { w.closed++; });
  });
  w.hello = () => JSON.parse(w.sent.find((p) => typeof p === "string"));
  w.typed = (t) => w.sent.filter((p) => typeof p !== "string" && p[0] === t);
  /** The first frame sent (already, or from now on) that `pred` accepts. */
  w.sentFrame = (pred) => {
    const seen = w.sent.find(pred);
    return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => w.waiters.push([pred, resolve]));
  };
  return w;
}

async function openDemo(context, demo) {
  const page = await context.newPage();
  const w = wire(page);
  await page.goto(url(`/projects/${demo}/`));
  return { page, w, section: page.locator("[data-terminal]") };
}

function state(page) {
  return page.locator("[data-terminal]").getAttribute("data-terminal-state");
}

async function waitState(page, want) {
  await page.waitForFunction((s) => {
    const st = document.querySelector("[data-terminal]").getAttribute("data-terminal-state");
    return s.includes(st);
  }, [].concat(want), { timeout: 60_000 });
  return state(page);
}

/** The terminal's visible text, one string per row. */
function screenLines(page) {
  return page.$$eval("[data-terminal] .xterm-rows > div", (rows) => rows.map((r) => r.textContent));
}

async function waitForLine(page, re, what) {
  try {
    await page.waitForFunction((src) => {
      const re = new RegExp(src);
      return [...document.querySelectorAll("[data-terminal] .xterm-rows > div")]
        .some((r) => re.test(r.textContent.replace(/\u00a0/g, " ")));
    }, re.source, { timeout: 60_000 });
  } catch (e) {
    throw new Error(`${what}: no row matching ${re} on the screen:\n${(await screenLines(page)).join("\n")}`);
  }
}

async function start(page, { keyboard = false } = {}) {
  const button = page.locator("[data-terminal-start]");
  if (keyboard) {
    await button.focus();
    await page.keyboard.press("Enter");
  } else {
    await button.click();
  }
  return waitState(page, ["running", "refused", "lost"]);
}

describe("the live terminal", () => {
  test(`${LISP}: start with the keyboard, type, read the answer; strict CSP holds`, { timeout: 120_000 }, async () => {
    const { context, errors } = await newVisitor(browser, "term-lisp");
    const { page, w, section } = await openDemo(context, LISP);
    const xtermRequests = [];
    page.on("request", (r) => { if (/xterm|addon-fit/.test(r.url())) xtermRequests.push(r.url()); });
    assert.ok(await section.locator("[data-terminal-start]").isVisible());
    assert.deepEqual(xtermRequests, [], "xterm is not loaded before the visitor asks");

    assert.equal(await start(page, { keyboard: true }), "running");
    assert.equal(xtermRequests.length, 4, `xterm.mjs, addon-fit.mjs, addon-web-links.mjs, xterm.css: ${xtermRequests}`);
    // Focus is in the terminal: typing goes to the demo.
    assert.ok(await page.evaluate(() => document.activeElement.classList.contains("xterm-helper-textarea")));
    await waitForLine(page, /tinylisp: try/, "motd");
    await page.keyboard.type("(* 6 7)");
    await page.keyboard.press("Enter");
    await waitForLine(page, /^\s*(>\s*)?42\s*$/, "(* 6 7)");
    await page.keyboard.type("(define (sq x) (* x x))");
    await page.keyboard.press("Enter");
    await page.keyboard.type("(sq 12)");
    await page.keyboard.press("Enter");
    await waitForLine(page, /^\s*(>\s*)?144\s*$/, "(sq 12)");

    // The strict CSP (no 'unsafe-inline' for styles) held, and xterm's styles still apply.
    const csp = (await page.request.get(url(`/projects/${LISP}/`))).headers()["content-security-policy"];
    assert.ok(csp && !/unsafe-inline/.test(csp.match(/style-src[^;]*/)[0]), `strict style-src: ${csp}`);
    assert.deepEqual(await cspViolations(page), []);
    const hello = w.hello();
    const dims = await page.evaluate(() => {
      const sec = document.querySelector("[data-terminal]");
      const screen = sec.querySelector(".xterm-screen").getBoundingClientRect();
      // The screen box's content area (inside its padding and border).
      const boxEl = sec.querySelector("[data-terminal-screen]");
      const r = boxEl.getBoundingClientRect();
      const cs = getComputedStyle(boxEl);
      const px = (p) => parseFloat(cs.getPropertyValue(p)) || 0;
      const box = {
        left: r.left + px("padding-left") + px("border-left-width"),
        top: r.top + px("padding-top") + px("border-top-width"),
        right: r.right - px("padding-right") - px("border-right-width"),
        bottom: r.bottom - px("padding-bottom") - px("border-bottom-width"),
      };
      const rows = [...sec.querySelectorAll(".xterm-rows > div")];
      const span = sec.querySelector(".xterm-rows span");
      return {
        rows: rows.length,
        rowHeight: rows[0].getBoundingClientRect().height,
        screen: { w: screen.width, h: screen.height, left: screen.left, top: screen.top, right: screen.right, bottom: screen.bottom },
        box,
        spanDisplay: span && getComputedStyle(span).display,
        adopted: document.adoptedStyleSheets.map((s) => [...s.cssRules].map((r) => r.cssText).join("\n")).join("\n"),
        inlineStyles: document.querySelectorAll("style").length,
      };
    });
    assert.equal(dims.rows, hello.rows, "as many rows on screen as the PTY was told");
    assert.ok(hello.cols >= 20 && hello.rows >= 5, `a usable size: ${JSON.stringify(hello)}`);
    assert.ok(dims.rowHeight > 8, `rows have a height (${dims.rowHeight})`);
    assert.ok(Math.abs(dims.screen.h - dims.rows * dims.rowHeight) < 2, JSON.stringify(dims.screen));
    const inside = ["left", "top"].every((k) => dims.screen[k] >= dims.box[k] - 1) &&
      ["right", "bottom"].every((k) => dims.screen[k] <= dims.box[k] + 1);
    assert.ok(dims.screen.w > 0 && inside, `the terminal fits inside its box: ${JSON.stringify({ screen: dims.screen, box: dims.box })}`);
    // And fills it: less than one cell of slack each way (the fit addon's job).
    const cellW = dims.screen.w / hello.cols;
    assert.ok(dims.box.bottom - dims.screen.bottom < dims.rowHeight + 1, `fills the height: ${JSON.stringify(dims)}`);
    assert.ok(dims.box.right - dims.screen.right < cellW + 16, `fills the width (less a scrollbar): ${JSON.stringify(dims)}`);
    assert.equal(dims.spanDisplay, "inline-block", "xterm's per-cell style (its <style> elements) applies");
    assert.match(dims.adopted, /xterm-dom-renderer-owner/);
    assert.equal(dims.inlineStyles, 0, "no live <style> element for CSP to block");
    await section.screenshot({ path: path.join(ARTIFACTS, "terminal-running.png") });
    await page.screenshot({ path: path.join(ARTIFACTS, "project-terminal-running.png"), fullPage: true });

    // The way out of the terminal with the keyboard: Shift+Tab, to the terminal's buttons.
    await page.keyboard.press("Shift+Tab");
    const out = await page.evaluate(() => {
      const a = document.activeElement;
      return { tag: a.tagName, inSection: !!a.closest("[data-terminal]"), text: a.textContent };
    });
    assert.equal(out.tag, "BUTTON", `focus left the terminal: ${JSON.stringify(out)}`);
    assert.ok(out.inSection);
    assert.ok(!w.typed(0x00).some((p) => p.subarray(1).toString() === "\x1b[Z"), "Shift+Tab was not sent");
    // xterm's screen-reader mode, from the keyboard: the output becomes readable text.
    await page.locator("[data-terminal-sr]").focus();
    await page.keyboard.press("Enter");
    assert.equal(await page.locator("[data-terminal-sr]").getAttribute("aria-pressed"), "true");
    await page.waitForFunction(() => /144/.test(document.querySelector("[data-terminal] .xterm-accessibility-tree")?.textContent ?? ""));
    await page.keyboard.press("Tab");
    assert.ok(await page.evaluate(() => document.activeElement.classList.contains("xterm-helper-textarea")), "Tab goes back in");

    // Stop, reachable by keyboard.
    await page.locator("[data-terminal-stop]").focus();
    await page.keyboard.press("Enter");
    assert.equal(await waitState(page, ["exited"]), "exited");
    assert.match(await section.locator("[data-terminal-status]").textContent(), /Stopped/);
    assert.ok(await section.locator("[data-terminal-again]").isVisible());
    assert.deepEqual(await cspViolations(page), []);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test(`${SHELL}: resize reaches the PTY, a flood pauses and resumes, the exit status shows`, { timeout: 180_000 }, async () => {
    const { context, errors } = await newVisitor(browser, "term-shell");
    const { page, w, section } = await openDemo(context, SHELL);
    assert.equal(await start(page), "running");
    const hello = w.hello();
    await page.keyboard.type("stty size\n");
    await waitForLine(page, new RegExp(`^${hello.rows} ${hello.cols}\\s*$`), "stty size, first");

    // Narrower window: the fit addon picks fewer columns, the resize frame says so, and the
    // program in the PTY sees it.
    await page.setViewportSize({ width: 640, height: 900 });
    const resize = (p) => typeof p !== "string" && p[0] === 0x01 && JSON.parse(p.subarray(1).toString()).cols < hello.cols;
    const resized = JSON.parse((await w.sentFrame(resize)).subarray(1).toString());
    await page.keyboard.type("clear; stty size\n");
    await waitForLine(page, new RegExp(`^${resized.rows} ${resized.cols}\\s*$`), "stty size, after resize");
    const rowsOnScreen = (await screenLines(page)).length;
    assert.equal(rowsOnScreen, resized.rows);

    // A flood of output: the client pauses the origin when xterm falls behind, resumes
    // when it catches up, and nothing is lost (the marker after it arrives).
    await page.keyboard.type("head -c 6000000 /dev/zero | tr '\\0' x; echo flood-$((40+2))\n");
    await waitForLine(page, /flood-42\s*$/, "after the flood");
    const pauses = w.typed(0x02).length;
    const resumes = w.typed(0x03).length;
    assert.ok(pauses >= 1, "paused at least once");
    assert.equal(resumes, pauses, "every pause was followed by a resume");
    await page.setViewportSize({ width: 1280, height: 900 });

    await page.keyboard.type("exit 3\n");
    assert.equal(await waitState(page, ["exited"]), "exited");
    assert.match(await section.locator("[data-terminal-status]").textContent(), /exited with status 3/);
    const again = section.locator("[data-terminal-again]");
    assert.equal(await again.textContent(), "Start again");
    assert.ok(await page.evaluate(() => document.activeElement.matches("[data-terminal-again]")),
      "focus moves from the ended terminal to Start again");
    assert.deepEqual(await cspViolations(page), []);
    assert.deepEqual(errors, []);
    await context.close();
  });

  // xterm colours 24-bit cells with setAttribute("style"), which a strict style-src blocks
  // unless terminal.js turns it into CSSOM. minirt draws its picture in 24-bit colour.
  test(`${TRUECOLOR}: a 24-bit colour picture renders under the strict CSP`, { timeout: 120_000 }, async () => {
    const { context, errors } = await newVisitor(browser, "term-rt");
    const { page, section } = await openDemo(context, TRUECOLOR);
    assert.equal(await start(page), "running");
    await waitForLine(page, /miniRT: try/, "motd");
    await page.keyboard.type("./minirt scenes/demo.rt; echo rendered-$((1+1))\n");
    await waitForLine(page, /^rendered-2\s*$/, "minirt");
    const coloured = await page.$$eval("[data-terminal] .xterm-rows span",
      (spans) => spans.filter((s) => /(^|;)\s*(background-)?color:/.test(s.getAttribute("style") ?? "")).length);
    assert.ok(coloured > 100, `cells with their own 24-bit colour: ${coloured}`);
    assert.deepEqual(await cspViolations(page), []);
    await section.screenshot({ path: path.join(ARTIFACTS, "terminal-truecolor.png") });
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("refused: one visitor's third terminal says when to retry, and retrying works", { timeout: 180_000 }, async () => {
    const { context, errors } = await newVisitor(browser, "term-cap");
    const a = await openDemo(context, LISP);
    const b = await openDemo(context, LISP);
    const c = await openDemo(context, LISP);
    assert.equal(await start(a.page), "running");
    assert.equal(await start(b.page), "running");
    assert.equal(await start(c.page), "refused", "MAX_SESSIONS_PER_VISITOR is 2 under --env test");
    // The Worker closes the refused WebSocket with 4429 "too_many_sessions; retry_after=30".
    const said = await c.section.locator("[data-terminal-status]").textContent();
    assert.match(said, /most terminals one visitor may open/);
    assert.match(said, /Try again in 30 s/);
    assert.ok(await c.section.locator("[data-terminal-again]").isVisible());
    await c.section.screenshot({ path: path.join(ARTIFACTS, "terminal-refused.png") });

    // One ends; the refused one gets its turn once the Worker has returned the lease.
    await a.page.locator("[data-terminal-stop]").click();
    await waitState(a.page, ["exited"]);
    // Each try is a start the per-address rate limit counts: back off (0.25 s, 0.5 s, 1 s, …)
    // rather than spend them all while the lease is on its way back.
    let outcome;
    for (let wait = 250; wait <= 16_000; wait *= 2) {
      await c.section.locator("[data-terminal-again]").click();
      outcome = await waitState(c.page, ["running", "refused", "lost"]);
      if (outcome === "running") break;
      await c.page.waitForTimeout(wait);
    }
    assert.equal(outcome, "running");
    await waitForLine(c.page, /tinylisp: try/, "motd after the retry");
    // A refusal is a clean close, not a failed handshake: nothing in the console.
    assert.deepEqual(errors, []);
    assert.deepEqual(await cspViolations(c.page), []);
    await context.close();
  });

  test("lost: the origin dies mid-session; reconnect when it is back", { timeout: 240_000 }, async () => {
    const { context, errors } = await newVisitor(browser, "term-lost");
    const { page, section } = await openDemo(context, LISP);
    assert.equal(await start(page), "running");
    await waitForLine(page, /tinylisp: try/, "motd");
    await stack.killPty();
    assert.equal(await waitState(page, ["lost", "exited", "refused"]), "lost");
    assert.match(await section.locator("[data-terminal-status]").textContent(), /lost/i);
    const again = section.locator("[data-terminal-again]");
    assert.equal(await again.textContent(), "Reconnect");
    assert.ok(await page.evaluate(() => document.activeElement.matches("[data-terminal-again]")));
    await section.screenshot({ path: path.join(ARTIFACTS, "terminal-lost.png") });

    // Still down: the Worker closes with 4502 origin_unavailable; the page says so.
    await again.click();
    assert.equal(await waitState(page, ["lost", "refused", "running"]), "lost");
    assert.match(await section.locator("[data-terminal-status]").textContent(), /not reachable/);

    await stack.restartPty();
    await again.click();
    assert.equal(await waitState(page, ["running", "lost", "refused"]), "running");
    await waitForLine(page, /tinylisp: try/, "motd after reconnecting");
    await page.keyboard.type("(+ 40 2)\n");
    await waitForLine(page, /^\s*(>\s*)?42\s*$/, "after reconnecting");
    assert.deepEqual(errors, []);
    await context.close();
  });

  // The origin's own refusal (folio-pty's 503 with its Retry-After) reaches the page as 4503
  // with that time; folio-pty is not made to refuse here, so the test answers for the Worker.
  test("a 4503 refusal shows the retry time the origin gave", { timeout: 60_000 }, async () => {
    const { context } = await newVisitor(browser, "term-proposal");
    const page = await context.newPage();
    await page.routeWebSocket(/\/terminal\//, (ws) => { ws.close({ code: 4503, reason: "sessions_full; retry_after=17" }); });
    await page.goto(url(`/projects/${LISP}/`));
    assert.equal(await start(page), "refused");
    assert.match(await page.locator("[data-terminal-status]").textContent(), /All terminal sessions are in use\. Try again in 17 s/);
    await context.close();
  });
});
