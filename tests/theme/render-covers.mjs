// One-off tool: renders a project's cover.svg into a 1440×810 cover.jpg with Chromium, so the
// example portfolio has raster covers that exercise folio's responsive-image pipeline. The JPEG
// is content (committed beside the write-up); run again only when a cover's design changes:
//   node tests/theme/render-covers.mjs content/projects/tern [more bundle folders…]
// and the site's default social card (og:image of pages without a cover), 1200×630 PNG:
//   node tests/theme/render-covers.mjs --social static/images/social.png "Name" "Tagline" "host"
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS } from "./lib.mjs";

const args = process.argv.slice(2);
const social = args[0] === "--social" ? args.splice(0, 5).slice(1) : null;
const dirs = args;
if (dirs.length === 0 && !social) {
  console.error("usage: node tests/theme/render-covers.mjs <bundle folder>…");
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
const page = await browser.newPage({ viewport: { width: 1440, height: 810 } });
for (const dir of dirs) {
  const svg = readFileSync(path.join(dir, "cover.svg"), "utf8");
  const url = `data:image/svg+xml;base64,${Buffer.from(svg).toString("base64")}`;
  await page.setContent(
    `<!doctype html><body style="margin:0"><img src="${url}" width="1440" height="810" style="display:block"></body>`,
  );
  await page.waitForFunction(() => document.images[0].complete);
  const jpg = await page.screenshot({ type: "jpeg", quality: 86, clip: { x: 0, y: 0, width: 1440, height: 810 } });
  writeFileSync(path.join(dir, "cover.jpg"), jpg);
  console.log(`${dir}/cover.jpg: ${jpg.length} bytes`);
}
if (social) {
  const [out, name, tagline, host] = social;
  const esc = (t) => t.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  await page.setViewportSize({ width: 1200, height: 630 });
  await page.setContent(`<!doctype html><html><body style="margin:0;width:1200px;height:630px;
    background:#111315;color:#ebe8e2;font-family:system-ui,sans-serif;display:flex;flex-direction:column;
    justify-content:center;padding:0 96px;box-sizing:border-box;position:relative;overflow:hidden">
    <div style="position:absolute;right:-120px;top:-120px;width:520px;height:520px;border-radius:50%;
      background:radial-gradient(circle at 35% 35%,#5fd1bb,#0b6b5d 60%,#111315 72%);opacity:.55"></div>
    <div style="font-family:ui-monospace,monospace;color:#5fd1bb;font-size:40px;font-weight:600">~/${esc(host)}</div>
    <div style="font-size:96px;font-weight:800;letter-spacing:-3px;margin:18px 0 12px">${esc(name)}</div>
    <div style="font-size:40px;color:#a9a59c;max-width:900px;line-height:1.3">${esc(tagline)}</div>
    </body></html>`);
  const png = await page.screenshot({ type: "png", clip: { x: 0, y: 0, width: 1200, height: 630 } });
  writeFileSync(out, png);
  console.log(`${out}: ${png.length} bytes`);
}
await browser.close();
