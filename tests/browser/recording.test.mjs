// Recorded demos end to end: chromium → the real Worker (`wrangler dev`) → the real folio-pty,
// on the example portfolio, whose three demos ship recordings made with `folio record`.
// The poster (rendered by `folio build`) is there with JavaScript off; the recording plays,
// pauses and speeds up under the strict CSP; a stopped origin and a refused session (one
// visitor's third) fall back to the recording with the reason; under touch emulation the
// key bar's sticky Ctrl sends Ctrl-C to a running program and its arrows reach the shell;
// axe finds nothing in each state (poster, playing, live, fallback).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { ARTIFACTS, ROOT, cspViolations, launchBrowser, newVisitor, startStack } from "./stack.mjs";

const AXE = path.join(ROOT, "node_modules/axe-core/axe.min.js");
const LISP = "tinylisp";
const SHELL = "life"; // an interactive bash in the demo's sources

let stack;
let browser;

before(async () => {
  stack = await startStack();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const url = (p) => `${stack.base}${p}`;

/**
 * Console errors, less the one a missing GET /api/terminal/status gives (the page says
 * nothing then: progressive enhancement; Chromium still logs the 404).
 */
async function realErrors(page, errors) {
  const r = await page.request.get(url("/api/terminal/status"));
  if (r.status() !== 404) return errors;
  return errors.filter((e) => !/status of 404/.test(e));
}

/** axe's violations in the demo's element (the states this file drives). */
async function axe(page) {
  await page.evaluate(readFileSync(AXE, "utf8"));
  return page.evaluate(async () => {
    const r = await window.axe.run(document.querySelector("[data-terminal]"));
    return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  });
}

/** What the recording in `casts` says the last screen shows (from the .cast file itself). */
function castText(demo) {
  const text = readFileSync(path.join(ROOT, `content/projects/${demo}/demo.cast`), "utf8");
  return text.split("\n").slice(1).filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e[1] === "o").map((e) => e[2]).join("");
}

function playerText(page) {
  return page.$$eval("[data-cast-player] .xterm-rows > div", (rows) => rows.map((r) => r.textContent.replace(/\u00a0/g, " ")).join("\n"));
}

function liveText(page) {
  return page.$$eval("[data-terminal-screen] .xterm-rows > div", (rows) => rows.map((r) => r.textContent.replace(/\u00a0/g, " ")).join("\n"));
}

async function waitFor(page, fn, arg, what, timeout = 60_000) {
  try {
    await page.waitForFunction(fn, arg, { timeout });
  } catch (e) {
    throw new Error(`${what}: ${e.message}`);
  }
}

async function waitLive(page, re, what) {
  try {
    await page.waitForFunction(([src, flags]) => new RegExp(src, flags).test([...document.querySelectorAll("[data-terminal-screen] .xterm-rows > div")]
      .map((r) => r.textContent.replace(/\u00a0/g, " ")).join("\n")), [re.source, re.flags], { timeout: 60_000 });
  } catch (e) {
    throw new Error(`${what}: no ${re} on the screen:\n${await liveText(page)}`);
  }
}

describe("recorded demos", () => {
  test("the poster is on the page without JavaScript: the recording's last screen, a fixed box", { timeout: 60_000 }, async () => {
    const { context } = await newVisitor(browser, "rec-nojs", { javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(url(`/projects/${LISP}/`));
    const poster = page.locator("[data-cast-poster]");
    assert.ok(await poster.isVisible(), "the poster is visible");
    const text = await poster.textContent();
    const lines = text.split("\n");
    assert.equal(lines.length, 24, "24 rows, as recorded");
    assert.ok(lines.every((l) => [...l].length === 80), "every row is 80 cells");
    // The last thing the recording printed (its final answer) is on the poster.
    const last = castText(LISP).split("\r\n").map((l) => l.trim()).filter((l) => l && l !== ">").pop();
    assert.ok(text.includes(last), `the last screen: ${JSON.stringify(last)} in\n${text}`);
    assert.equal(await page.locator("[data-cast-play]").isVisible(), false, "no play button without JavaScript");
    // The chosen moment: minirt's poster (poster = 3) is not its last screen.
    await page.goto(url("/projects/minirt/"));
    const minirt = await page.locator("[data-cast-poster]").textContent();
    assert.ok(minirt.includes("minirt -w 78"), "the first render's command");
    assert.ok(!minirt.includes("minirt -a"), "the poster is earlier than the second command");
    await page.screenshot({ path: path.join(ARTIFACTS, "recording-poster-nojs.png"), fullPage: true });
    await context.close();
  });

  test("playback: plays, pauses, changes speed, ends on the poster's screen; strict CSP; axe clean", { timeout: 120_000 }, async () => {
    const { context, errors } = await newVisitor(browser, "rec-play");
    const page = await context.newPage();
    const loaded = [];
    page.on("request", (r) => { if (/player|recordings|xterm/.test(r.url())) loaded.push(r.url()); });
    await page.goto(url(`/projects/${LISP}/`));
    assert.deepEqual(await axe(page), [], "axe: the poster");
    assert.deepEqual(loaded, [], "nothing of the player loads before the click");
    const section = page.locator("[data-terminal]");
    const play = page.locator("[data-cast-play]");
    await play.click();
    await waitFor(page, () => document.querySelector("[data-terminal]").getAttribute("data-cast-state") === "playing", null, "playing");
    assert.ok(loaded.some((u) => /player\.[0-9a-f]+\.js/.test(u)), `player.js loaded: ${loaded}`);
    assert.ok(loaded.some((u) => /recordings\/tinylisp/.test(u)), `the cast loaded: ${loaded}`);
    assert.equal(await play.textContent(), "Pause");
    await waitFor(page, () => /\(define \(sq/.test(document.querySelector("[data-cast-player]")?.textContent ?? ""), null, "the replay types");
    assert.deepEqual(await axe(page), [], "axe: playing");

    await play.click();
    assert.equal(await section.getAttribute("data-cast-state"), "paused");
    // xterm parses writes asynchronously: output written just before the pause may still
    // reach the screen. Let it settle, then nothing may move.
    let paused = await playerText(page);
    for (let settled = false; !settled;) {
      await page.waitForTimeout(300);
      const again = await playerText(page);
      settled = again === paused;
      paused = again;
    }
    await page.waitForTimeout(1500);
    assert.equal(await playerText(page), paused, "nothing moves while paused");
    assert.equal(await play.textContent(), "Play the recording");

    const speed = page.locator("[data-cast-speed]");
    await speed.click();
    assert.equal(await speed.textContent(), "Speed 2×");
    await play.click();
    await waitFor(page, () => document.querySelector("[data-terminal]").getAttribute("data-cast-state") === "ended", null, "the replay ends");
    assert.equal(await play.textContent(), "Replay");
    // The last writes may still be parsing (xterm writes asynchronously): wait for the screen.
    await waitFor(page, () => {
      const t = document.querySelector("[data-cast-player]")?.textContent ?? "";
      return /\(1 2 3 4 5 6 7 8 9 10 11 12\)/.test(t) && /cells live of 200000/.test(t);
    }, null, "the replay's last screen").catch(() => {});
    const end = await playerText(page);
    assert.match(end, /\(1 2 3 4 5 6 7 8 9 10 11 12\)/, end);
    assert.match(end, /cells live of 200000/, end);
    assert.deepEqual(await cspViolations(page), []);
    assert.deepEqual(await realErrors(page, errors), []);
    await section.screenshot({ path: path.join(ARTIFACTS, "recording-played.png") });
    await context.close();
  });

  test("a stopped origin: \"Run it live\" falls back to the recording with the reason", { timeout: 180_000 }, async () => {
    const { context } = await newVisitor(browser, "rec-down");
    const page = await context.newPage();
    await page.goto(url(`/projects/${LISP}/`));
    await stack.killPty();
    try {
      await page.locator("[data-terminal-start]").click();
      await waitFor(page, () => document.querySelector("[data-terminal]").getAttribute("data-terminal-state") === "lost"
        && !document.querySelector("[data-cast-why]").hidden, null, "the fallback");
      const section = page.locator("[data-terminal]");
      assert.equal(await section.getAttribute("data-demo-view"), "recording");
      assert.ok(await page.locator("[data-cast-poster]").isVisible(), "the recording is shown again");
      assert.equal(await page.locator("[data-terminal-screen]").isVisible(), false, "the dead terminal is not");
      const why = await page.locator("[data-cast-why]").textContent();
      assert.match(why, /not reachable/, why);
      assert.match(why, /try again/i, why);
      assert.ok(await page.locator("[data-terminal-again]").isVisible(), "a way to try again");
      assert.deepEqual(await axe(page), [], "axe: fallback");
      await section.screenshot({ path: path.join(ARTIFACTS, "recording-fallback-down.png") });
    } finally {
      await stack.restartPty();
    }
    // Back up: trying again turns the element into the live terminal.
    let state;
    for (let i = 0; i < 10; i++) {
      await page.locator("[data-terminal-again]").click();
      await waitFor(page, () => ["running", "lost", "refused"].includes(document.querySelector("[data-terminal]").getAttribute("data-terminal-state"))
        && document.querySelector("[data-terminal]").getAttribute("data-terminal-state") !== "connecting", null, "retry");
      state = await page.locator("[data-terminal]").getAttribute("data-terminal-state");
      if (state === "running") break;
    }
    assert.equal(state, "running");
    assert.equal(await page.locator("[data-terminal]").getAttribute("data-demo-view"), "live");
    assert.equal(await page.locator("[data-cast-poster]").isVisible(), false);
    await waitLive(page, /tinylisp: try/, "live after the origin came back");
    assert.deepEqual(await axe(page), [], "axe: live");
    await context.close();
  });

  test("a refused session (one visitor's third) falls back to the recording and says when to retry", { timeout: 180_000 }, async () => {
    const { context, errors } = await newVisitor(browser, "rec-cap");
    const pages = [];
    for (let i = 0; i < 3; i++) {
      const page = await context.newPage();
      await page.goto(url(`/projects/${LISP}/`));
      pages.push(page);
    }
    for (const page of pages.slice(0, 2)) {
      await page.locator("[data-terminal-start]").click();
      await waitLive(page, /tinylisp: try/, "one of the first two sessions");
    }
    const c = pages[2];
    await c.locator("[data-terminal-start]").click();
    await waitFor(c, () => !document.querySelector("[data-cast-why]").hidden, null, "the third falls back");
    const section = c.locator("[data-terminal]");
    assert.equal(await section.getAttribute("data-terminal-state"), "refused");
    assert.equal(await section.getAttribute("data-demo-view"), "recording");
    const why = await c.locator("[data-cast-why]").textContent();
    assert.match(why, /showing the recording/, why);
    assert.match(why, /try again in \d+ s/, why);
    assert.ok(await c.locator("[data-cast-poster]").isVisible());
    // The recording still plays in the fallback.
    await c.locator("[data-cast-play]").click();
    await waitFor(c, () => document.querySelector("[data-terminal]").getAttribute("data-cast-state") === "playing", null, "plays in the fallback");
    assert.deepEqual(await axe(c), [], "axe: fallback, playing");
    assert.deepEqual(await cspViolations(c), []);
    assert.deepEqual(await realErrors(c, errors), []);
    await context.close();
  });

  test("touch: the key bar's sticky Ctrl sends Ctrl-C to a running program; its arrows reach the shell", { timeout: 180_000 }, async () => {
    const { context, errors } = await newVisitor(browser, "rec-touch", {
      hasTouch: true, isMobile: true, viewport: { width: 412, height: 915 },
    });
    const page = await context.newPage();
    const sent = [];
    page.on("websocket", (ws) => ws.on("framesent", (f) => { if (typeof f.payload !== "string") sent.push(Buffer.from(f.payload)); }));
    await page.goto(url(`/projects/${SHELL}/`));
    assert.ok(await page.evaluate(() => matchMedia("(pointer: coarse)").matches), "the emulated screen is a touch screen");
    await page.locator("[data-terminal-start]").tap();
    await waitLive(page, /\$ $|\$\s*$/m, "the shell prompt");
    const bar = page.getByRole("toolbar", { name: "Terminal keys" });
    assert.ok(await bar.isVisible(), "the key bar shows on a touch screen");
    for (const name of ["Esc", "Tab", "Ctrl", "Left arrow", "Up arrow", "Down arrow", "Right arrow", "Pipe", "Tilde", "Slash"]) {
      assert.ok(await bar.getByRole("button", { name }).isVisible(), name);
    }
    // A program that would print "finished-42" unless interrupted.
    await page.keyboard.type("sleep 600; echo finished-$((6*7))\n");
    await page.waitForTimeout(500);
    const ctrl = bar.getByRole("button", { name: "Ctrl", exact: true });
    await ctrl.tap();
    assert.equal(await ctrl.getAttribute("aria-pressed"), "true");
    await page.keyboard.type("c");
    assert.equal(await ctrl.getAttribute("aria-pressed"), "false", "Ctrl applies to one key");
    await waitLive(page, /\^C/, "the interrupt is echoed");
    assert.ok(sent.some((b) => b.length === 2 && b[0] === 0x00 && b[1] === 0x03), "0x03 went to the PTY");
    await page.keyboard.type("echo back-$((6*7))\n");
    await waitLive(page, /^back-42\s*$/m, "the shell is back: sleep was interrupted");
    const screen = await liveText(page);
    assert.ok(!/finished-42/.test(screen), "the interrupted command did not finish");
    // Up arrow from the bar recalls the last command; Enter runs it again.
    await bar.getByRole("button", { name: "Up arrow" }).tap();
    await page.keyboard.press("Enter");
    await waitFor(page, () => ([...document.querySelectorAll("[data-terminal-screen] .xterm-rows > div")]
      .filter((r) => /^back-42\s*$/.test(r.textContent.replace(/\u00a0/g, " "))).length >= 2), null, "history via the Up key");
    // Pipe, tilde and slash go through as typed.
    for (const name of ["Slash"]) await bar.getByRole("button", { name }).tap();
    await page.keyboard.type("bin/echo x ");
    await bar.getByRole("button", { name: "Pipe" }).tap();
    await page.keyboard.type(" tr x y\n");
    await waitLive(page, /^y\s*$/m, "/bin/echo x | tr x y");
    assert.deepEqual(await axe(page), [], "axe: live on a phone, with the key bar");
    await page.screenshot({ path: path.join(ARTIFACTS, "recording-touch-keys.png"), fullPage: true });
    assert.deepEqual(await cspViolations(page), []);
    assert.deepEqual(await realErrors(page, errors), []);
    await context.close();
  });

  // GET /api/terminal/status is wt-resume's (the Worker and folio serve); the page's side is
  // tested here against the contract, the answer given by the browser context.
  test("the demo's state before the click: the page and the project cards say live or recording; nothing when the endpoint fails", { timeout: 60_000 }, async () => {
    const { context } = await newVisitor(browser, "rec-status");
    let answer = { live: false, reason: "busy" };
    await context.route("**/api/terminal/status", (route) => answer
      ? route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(answer) })
      : route.fulfill({ status: 503, body: "down" }));
    const page = await context.newPage();
    await page.goto(url(`/projects/${LISP}/`));
    const badge = page.locator("[data-demo-state]");
    await waitFor(page, () => !document.querySelector("[data-demo-state]").hidden, null, "the state badge");
    assert.equal(await badge.textContent(), "recording only right now");
    await page.goto(url("/projects/"));
    await waitFor(page, () => document.querySelector("[data-demo-badge]")?.getAttribute("data-live") === "false", null, "card badges");
    const cards = await page.locator("[data-demo-badge]").allTextContents();
    assert.ok(cards.length >= 3 && cards.every((t) => /recording for now/.test(t)), JSON.stringify(cards));

    answer = { live: true, reason: "ok" };
    await page.goto(url(`/projects/${LISP}/`));
    await waitFor(page, () => !document.querySelector("[data-demo-state]").hidden, null, "the state badge");
    assert.equal(await badge.textContent(), "live now");
    await page.goto(url("/projects/"));
    await waitFor(page, () => document.querySelector("[data-demo-badge]")?.getAttribute("data-live") === "true", null, "card badges");
    assert.ok((await page.locator("[data-demo-badge]").allTextContents()).every((t) => /Live demo/.test(t)));

    answer = null; // the endpoint fails: nothing new is said
    await page.goto(url(`/projects/${LISP}/`));
    await page.waitForLoadState("networkidle");
    assert.equal(await badge.isVisible(), false);
    await page.goto(url("/projects/"));
    await page.waitForLoadState("networkidle");
    const plain = await page.locator("[data-demo-badge]").evaluateAll((els) => els.map((e) => [e.textContent, e.getAttribute("data-live")]));
    assert.ok(plain.every(([t, live]) => /Live demo/.test(t) && live === null), JSON.stringify(plain));
    await context.close();
  });

  test("a link printed in the live terminal opens in a new tab without access to this one (noopener)", { timeout: 120_000 }, async () => {
    const { context, errors } = await newVisitor(browser, "rec-links");
    // No network here: the linked site is answered by the browser context.
    await context.route("https://folio.example/**", (route) => route.fulfill({ status: 200, contentType: "text/html", body: "<title>linked</title>" }));
    const page = await context.newPage();
    await page.goto(url(`/projects/${SHELL}/`));
    await page.locator("[data-terminal-start]").click();
    await waitLive(page, /\$\s*$/m, "the shell prompt");
    await page.keyboard.type("echo https://folio.example/docs-$((6*7))\n");
    await waitLive(page, /^https:\/\/folio\.example\/docs-42\s*$/m, "the link is printed");
    const box = await page.evaluate(() => {
      const row = [...document.querySelectorAll("[data-terminal-screen] .xterm-rows > div")]
        .find((r) => /^https:\/\/folio\.example\/docs-42/.test(r.textContent.replace(/\u00a0/g, " ")));
      const r = row.getBoundingClientRect();
      return { x: r.left, y: r.top + r.height / 2 };
    });
    // Over the link's text (its 10th cell), then a click.
    const cell = await page.evaluate(() => document.querySelector("[data-terminal-screen] .xterm-screen").getBoundingClientRect().width
      / document.querySelector("[data-terminal-screen] .xterm-rows > div").textContent.length);
    await page.mouse.move(box.x + cell * 10, box.y);
    await page.mouse.move(box.x + cell * 12, box.y);
    const popup = context.waitForEvent("page", { timeout: 20_000 });
    await page.mouse.click(box.x + cell * 12, box.y);
    const opened = await popup;
    await opened.waitForLoadState();
    assert.equal(opened.url(), "https://folio.example/docs-42");
    assert.equal(await opened.evaluate(() => window.opener), null, "no window.opener");
    assert.deepEqual(await realErrors(page, errors), []);
    await context.close();
  });
});
