// The measuring half of bench/search/run.sh: for each `name=folioDir,pagefindDir,query`, the
// size of both indexes on disk (raw and gzip -9, file by file as a CDN compresses them) and,
// in headless chromium, what one first query transfers through each tool's own client:
// folio's search box (its script, the manifest, the shards, the stores of the results shown),
// Pagefind's JS API (pagefind.js, its wasm, entry, meta, the index chunks, the fragments of the
// first ten results: what its UI fetches too). Both are served by the same local server, which
// gzips what a CDN would (HTML, JS, CSS, JSON; Pagefind's own files are compressed already).
import http from "node:http";
import { readFileSync, readdirSync, statSync, existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { chromium } from "playwright-core";

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".json": "application/json", ".css": "text/css", ".svg": "image/svg+xml", ".xml": "application/xml",
};
const COMPRESSIBLE = new Set(Object.keys(TYPES));

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out); else out.push(p);
  }
  return out;
}

/** Files, raw bytes, and bytes as served (gzip -9 where a CDN would compress). */
function sizeOf(files) {
  let raw = 0, served = 0;
  for (const f of files) {
    const b = readFileSync(f);
    raw += b.length;
    served += COMPRESSIBLE.has(path.extname(f)) ? zlib.gzipSync(b, { level: 9 }).length : b.length;
  }
  return { files: files.length, raw, served };
}

const BENCH_PAGE = (q) => `<!doctype html><html><head><meta charset="utf-8"><title>pagefind bench</title></head><body>
<script type="module">
const pf = await import("/pagefind/pagefind.js");
await pf.options({});
const s = await pf.search(${JSON.stringify(q)});
const data = await Promise.all(s.results.slice(0, 10).map((r) => r.data()));
window.__done = { count: s.results.length, shown: data.length, first: data[0]?.url ?? null };
</script></body></html>`;

function serve(dir, query) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/__pagefind-bench.html") {
      res.writeHead(200, { "content-type": TYPES[".html"] });
      res.end(BENCH_PAGE(query));
      return;
    }
    let p = path.join(dir, decodeURIComponent(url.pathname));
    if (!p.startsWith(dir)) { res.writeHead(403); res.end(); return; }
    if (existsSync(p) && statSync(p).isDirectory()) p = path.join(p, "index.html");
    if (!existsSync(p)) { res.writeHead(404); res.end(); return; }
    let body = readFileSync(p);
    const ext = path.extname(p);
    const headers = { "content-type": TYPES[ext] ?? "application/octet-stream" };
    if (COMPRESSIBLE.has(ext) && /\bgzip\b/.test(req.headers["accept-encoding"] ?? "")) {
      body = zlib.gzipSync(body, { level: 9 });
      headers["content-encoding"] = "gzip";
    }
    headers["content-length"] = body.length;
    res.writeHead(200, headers);
    res.end(body);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** Runs `act` on a fresh page and returns the requests made during it, with their sizes. */
async function recording(browser, base, goto, act) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(base + goto);
  await page.waitForLoadState("networkidle");
  const seen = [];
  page.on("requestfinished", (r) => seen.push(r));
  const result = await act(page);
  await page.waitForLoadState("networkidle");
  await page.waitForTimeout(300);
  const files = [];
  for (const r of seen) {
    const s = await r.sizes();
    files.push({ path: new URL(r.url()).pathname, body: s.responseBodySize, headers: s.responseHeadersSize });
  }
  await context.close();
  return { result, files, body: files.reduce((a, f) => a + f.body, 0) };
}

async function folioQuery(browser, base, q) {
  return recording(browser, base, "/", async (page) => {
    await page.locator("button.search-open").click();
    await page.locator("#search-q").fill(q);
    await page.locator("#search-status", { hasText: /result/i }).waitFor({ timeout: 60_000 });
    return (await page.locator("#search-status").textContent()).trim();
  });
}

async function pagefindQuery(browser, base, q) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = [];
  page.on("requestfinished", (r) => seen.push(r));
  await page.goto(base + "/__pagefind-bench.html");
  await page.waitForFunction(() => window.__done, null, { timeout: 60_000 });
  await page.waitForLoadState("networkidle");
  const result = await page.evaluate(() => window.__done);
  const files = [];
  for (const r of seen) {
    const p = new URL(r.url()).pathname;
    if (p === "/__pagefind-bench.html") continue;
    const s = await r.sizes();
    files.push({ path: p, body: s.responseBodySize, headers: s.responseHeadersSize });
  }
  await context.close();
  return { result: `${result.count} results`, files, body: files.reduce((a, f) => a + f.body, 0) };
}

const kb = (n) => (n / 1024).toFixed(1).padStart(8) + " KB";

const args = process.argv.slice(2);
let jsonOut = null;
if (args[0] === "--json") { jsonOut = args[1]; args.splice(0, 2); }
const browser = await chromium.launch({
  executablePath: process.env.FOLIO_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const report = {};
try {
  for (const spec of args) {
    const [name, rest] = spec.split("=");
    const [folioDir, pagefindDir, query] = rest.split(",");
    const folioIndex = sizeOf(walk(path.join(folioDir, "search")));
    const folioClient = sizeOf(walk(path.join(folioDir, "js")).filter((f) => /\/search\.[0-9a-f]+\.js$/.test(f)));
    const pfAll = walk(path.join(pagefindDir, "pagefind"));
    const pfIndex = sizeOf(pfAll.filter((f) => !/\.(js|css)$/.test(f) && !/wasm\./.test(f)));
    const pfClient = sizeOf(pfAll.filter((f) => /\/pagefind\.js$/.test(f) || /wasm\.[a-z-]+\.pagefind$/.test(f)));
    const pfTotal = sizeOf(pfAll);
    const pages = walk(folioDir).filter((f) => f.endsWith(".html")).length;

    let server = await serve(path.resolve(folioDir), query);
    const fq = await folioQuery(browser, `http://127.0.0.1:${server.address().port}`, query);
    server.close();
    server = await serve(path.resolve(pagefindDir), query);
    const pq = await pagefindQuery(browser, `http://127.0.0.1:${server.address().port}`, query);
    server.close();

    report[name] = { query, htmlFiles: pages, folio: { index: folioIndex, client: folioClient, firstQuery: fq },
      pagefind: { index: pfIndex, client: pfClient, total: pfTotal, firstQuery: pq } };
    console.log(`\n${name}: ${pages} HTML files, query "${query}"`);
    console.log(`                         files        raw     served`);
    console.log(`  folio index         ${String(folioIndex.files).padStart(7)} ${kb(folioIndex.raw)} ${kb(folioIndex.served)}`);
    console.log(`  pagefind index      ${String(pfIndex.files).padStart(7)} ${kb(pfIndex.raw)} ${kb(pfIndex.served)}   (whole pagefind/ ${kb(pfTotal.raw)})`);
    console.log(`  folio client        ${String(folioClient.files).padStart(7)} ${kb(folioClient.raw)} ${kb(folioClient.served)}`);
    console.log(`  pagefind client     ${String(pfClient.files).padStart(7)} ${kb(pfClient.raw)} ${kb(pfClient.served)}   (pagefind.js + wasm)`);
    console.log(`  first query, folio:    ${fq.files.length} files, ${kb(fq.body)} transferred (${fq.result})`);
    for (const f of fq.files) console.log(`      ${kb(f.body)}  ${f.path}`);
    console.log(`  first query, pagefind: ${pq.files.length} files, ${kb(pq.body)} transferred (${pq.result})`);
    for (const f of pq.files) console.log(`      ${kb(f.body)}  ${f.path}`);
  }
} finally {
  await browser.close();
}
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(report, null, 2));
