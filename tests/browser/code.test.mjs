// Write-ups' code blocks, callouts and math in chromium (issue 13): a site written here (not the
// example portfolio) built and served by the real `folio serve` (`--port 0`), with Chromium's
// clipboard permissions granted. The copy button is a real <button> reached with Tab, works
// with Enter and Space, says "Copied" in a live region, and puts the code on the clipboard
// without line numbers, diff markers or hidden lines; a mouse-style selection of a numbered
// block copied with Ctrl+C holds only code too. Highlighted lines are visibly highlighted,
// in light and dark; axe finds nothing in either (its colour-contrast rule covers the
// highlighted lines, the diff lines and the callouts); formulas are MathML laid out by the
// browser; no CSP violation, no console error.
//
//   cargo build -p folio && node --test tests/browser/code.test.mjs   (or tests/browser/run.sh)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ARTIFACTS, ROOT, consoleError, launchBrowser, startServe } from "./stack.mjs";

const AXE = path.join(ROOT, "node_modules/axe-core/axe.min.js");
/** A guard against hanging, not a speed requirement. */
const PATIENCE = 60_000;
const serveSite = (root) => startServe(root, { env: process.env });

const GO = [
  "package main",
  "",
  "import \"fmt\"",
  "",
  "func main() {",
  "\tfmt.Println(\"hi\") // say it",
  "}",
];
const PAGE = `+++
title = "Bench notes"
date = 2023-05-06
+++
A short note with code. Cost is $3 or $4 per run, and the mean is $\\bar{x} = \\frac{1}{n}\\sum_i x_i$.

$$\\sigma^2 = \\frac{1}{n}\\sum_{i=1}^{n} (x_i - \\bar{x})^2$$

\`\`\`go,linenos,linenostart=40,hl_lines=5-6,hide_lines=2-3,name=cmd/bench/main.go
${GO.join("\n")}
\`\`\`

> [!CAUTION]
> The numbers below are from a laptop.

\`\`\`diff-python,name=report.py
 def mean(xs):
-    return sum(xs) / len(xs)
+    return statistics.fmean(xs)
\`\`\`

\`\`\`
plain block, no language
\`\`\`

> [!TIP]
> Run it twice.
`;

let tmp;
let server;
let browser;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "folio-code-"));
  const w = (rel, text) => {
    mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
    writeFileSync(path.join(tmp, rel), text);
  };
  w("folio.toml", 'title = "Code test"\nbase_url = "https://code.example"\nauthor = "Cy"\n');
  w("content/_index.md", "+++\ntitle = \"Home\"\n+++\nHello.\n");
  w("content/projects/_index.md", "+++\ntitle = \"Work\"\n+++\n");
  w("content/projects/bench.md", PAGE);
  server = await serveSite(tmp);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server && server.child.exitCode === null) {
    const exited = new Promise((r) => server.child.once("exit", r));
    server.child.kill("SIGINT");
    await exited;
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A tab with clipboard access that records CSP violations and console errors. */
async function open(colorScheme = "light") {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, colorScheme });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(consoleError(m)); });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => console.error(`CSP ${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(`${server.url}/projects/bench/`);
  await page.waitForSelector(".copy-code");
  return { context, page, problems };
}

const clipboard = (page) => page.evaluate(() => navigator.clipboard.readText());

/** Presses Tab until the copy button of the `n`th code block has the focus. */
async function tabTo(page, n) {
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press("Tab");
    const here = await page.evaluate((n) => {
      const b = document.querySelectorAll(".code-block")[n]?.querySelector(".copy-code");
      return b !== null && document.activeElement === b;
    }, n);
    if (here) return;
  }
  assert.fail(`Tab never reached the copy button of block ${n}`);
}

test("the copy button works from the keyboard, says Copied, and copies only the code", async () => {
  const { context, page, problems } = await open();
  try {
    const buttons = await page.$$eval(".copy-code", (bs) => bs.map((b) => ({ tag: b.tagName, type: b.type, label: b.getAttribute("aria-label") })));
    assert.equal(buttons.length, 3);
    assert.deepEqual(buttons[0], { tag: "BUTTON", type: "button", label: "Copy code of cmd/bench/main.go" });

    await page.evaluate(() => navigator.clipboard.writeText("before"));
    await tabTo(page, 0);
    await page.keyboard.press("Enter");
    // Both at once: the label goes back to "Copy" after a while, and a slow machine may take
    // that long between two separate reads.
    await page.waitForFunction(() => document.querySelector("[role=status][aria-live=polite]")?.textContent === "Copied"
      && document.querySelector(".copy-code")?.textContent === "Copied");
    // Lines 2-3 hidden; no numbers (40…) anywhere.
    const expected = [GO[0], ...GO.slice(3)].join("\n") + "\n";
    assert.equal(await clipboard(page), expected);

    // diff-python, with Space: the code after the change, without the markers.
    await tabTo(page, 1);
    await page.keyboard.press("Space");
    await page.waitForFunction(() => document.querySelectorAll(".copy-code")[1].textContent === "Copied");
    assert.equal(await clipboard(page), "def mean(xs):\n    return statistics.fmean(xs)\n");

    await tabTo(page, 2);
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelectorAll(".copy-code")[2].textContent === "Copied");
    assert.equal(await clipboard(page), "plain block, no language\n");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a selection of a numbered block copies code, not its line numbers", async () => {
  const { context, page, problems } = await open();
  try {
    // The numbers are on screen…
    const shown = await page.$$eval(".linenos .line", (ls) => ls.map((l) => getComputedStyle(l, "::before").content));
    assert.deepEqual(shown, ['"40"', '"43"', '"44"', '"45"', '"46"']);
    // …but a select-all of the block and Ctrl+C leaves them behind.
    await page.evaluate(() => {
      const code = document.querySelector(".linenos code");
      const r = document.createRange();
      r.selectNodeContents(code);
      const s = getSelection();
      s.removeAllRanges();
      s.addRange(r);
    });
    await page.keyboard.press("Control+C");
    const copied = await clipboard(page);
    assert.equal(copied.replace(/\n+$/, ""), [GO[0], ...GO.slice(3)].join("\n"));
    assert.doesNotMatch(copied, /4[0-6]/);
    // Each line is one line on screen (no blank line between): five lines, five line boxes.
    const heights = await page.$$eval(".linenos .line", (ls) => ls.map((l) => l.getBoundingClientRect().height));
    const lh = parseFloat(await page.$eval(".linenos", (p) => getComputedStyle(p).lineHeight));
    for (const h of heights) assert.ok(Math.abs(h - lh) < 2, `line box ${h}px, line height ${lh}px`);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

for (const scheme of ["light", "dark"]) {
  test(`highlighted lines, diff lines, callouts and math in ${scheme}: visible, axe-clean`, async () => {
    const { context, page, problems } = await open(scheme);
    try {
      const bg = await page.evaluate(() => {
        const hl = document.querySelector(".line.hl");
        const plain = document.querySelector(".linenos .line:not(.hl)");
        return {
          hl: getComputedStyle(hl).backgroundColor,
          plain: getComputedStyle(plain).backgroundColor,
          pre: getComputedStyle(hl.closest("pre")).backgroundColor,
          ins: getComputedStyle(document.querySelector(".line.ins")).backgroundColor,
          del: getComputedStyle(document.querySelector(".line.del")).backgroundColor,
          hlCount: document.querySelectorAll(".line.hl").length,
        };
      });
      assert.equal(bg.hlCount, 2, "hl_lines=5-6");
      assert.notEqual(bg.hl, bg.pre, "a highlighted line has its own background");
      assert.equal(bg.plain, "rgba(0, 0, 0, 0)");
      assert.notEqual(bg.ins, bg.del);
      const callouts = await page.$$eval(".callout", (cs) => cs.map((c) => [c.className, c.getAttribute("role"), c.querySelector(".callout-title").textContent]));
      assert.deepEqual(callouts, [["callout callout-caution", "note", "Caution"], ["callout callout-tip", "note", "Tip"]]);
      // MathML laid out by the browser: a real fraction box, display formula on its own line.
      const math = await page.evaluate(() => {
        const block = document.querySelector('math[display="block"]');
        const frac = block.querySelector("mfrac").getBoundingClientRect();
        return { n: document.querySelectorAll("math").length, fracH: frac.height, blockW: block.getBoundingClientRect().width };
      });
      assert.equal(math.n, 2, "two formulas; the prices stay text");
      assert.ok(math.fracH > 20, `the fraction is stacked (${math.fracH}px)`);
      assert.match(await page.textContent(".prose p"), /\$3 or \$4 per run/);
      await page.screenshot({ path: path.join(ARTIFACTS, `code-${scheme}.png`), fullPage: true });

      await page.evaluate(readFileSync(AXE, "utf8"));
      const violations = await page.evaluate(async () => {
        const r = await window.axe.run(document);
        return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
      });
      assert.deepEqual(violations, []);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
}
