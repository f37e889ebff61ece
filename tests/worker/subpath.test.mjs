// A site deployed under a subpath (`base_url = https://ada.example.dev/blog/`), laid out as
// docs/deploy-cloudflare.md ("Under a subpath") says — the site's files under public/blog/,
// `_headers`/`_redirects` at the top, `run_worker_first` on /blog/api/* and /blog/terminal/*,
// `BASE_PATH = "/blog"` — served by the real Worker under `wrangler dev`: pages and hashed
// assets under /blog/ with the `_headers` rules applied, the API answering under /blog/api/
// (reading the manifest from /blog/_folio/edge.json), and nothing of the Worker's outside it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, newSecret, startWorker } from "./harness.mjs";

const FOLIO = path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target"), "debug/folio");
const ORIGIN = "https://ada.example.dev";

let dir;
let worker;

/** This repository's wrangler.toml's test environment, moved under /blog for a site in `dir`. */
function subpathWranglerToml() {
  let t = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
  t = t.replace(/^main = .*$/m, `main = ${JSON.stringify(path.join(ROOT, "edge-worker/build/index.js"))}`);
  t = t.replace(/^\[build\][\s\S]*?(?=^\[assets\])/m, "");
  t = t.replace(/^run_worker_first = .*$/m, 'run_worker_first = ["/blog/api/*", "/blog/terminal/*", "/blog/contact/"]');
  assert.match(t, /\/blog\/api\/\*/, "run_worker_first not rewritten");
  return t;
}

before(async () => {
  assert.ok(existsSync(FOLIO), `${FOLIO} not built (cargo build -p folio)`);
  dir = mkdtempSync(path.join(os.tmpdir(), "folio-subpath-worker-"));
  const out = path.join(dir, "public/blog");
  const r = spawnSync(FOLIO, ["build", "--quiet", "--root", ROOT, "--base-url", `${ORIGIN}/blog/`, "--output", out], {
    env: { ...process.env, FOLIO_NODE_MODULES: path.join(ROOT, "node_modules") },
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  for (const f of ["_headers", "_redirects"]) {
    if (existsSync(path.join(out, f))) renameSync(path.join(out, f), path.join(dir, "public", f));
  }
  writeFileSync(path.join(dir, "wrangler.toml"), subpathWranglerToml());
  worker = await startWorker({
    terminalOrigin: "http://127.0.0.1:9",
    secret: newSecret(),
    cwd: dir,
    assets: path.join(dir, "public"),
    vars: { BASE_PATH: "/blog" },
  });
});

after(async () => {
  await worker?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("pages and hashed assets are served under /blog/ with the _headers rules", async () => {
  const home = await fetch(`${worker.base}/blog/`);
  assert.equal(home.status, 200);
  const html = await home.text();
  assert.match(html, /<meta (content=\/blog\/ name=folio-base|name=folio-base content=\/blog\/|name="folio-base" content="\/blog\/")>/);
  assert.match(home.headers.get("content-security-policy") ?? "", /default-src 'none'/, "the /blog/* rule applies");
  const css = html.match(/href=(\/blog\/css\/site\.[0-9a-f]+\.css)/)?.[1];
  assert.ok(css, "no prefixed stylesheet link");
  const sheet = await fetch(`${worker.base}${css}`);
  assert.equal(sheet.status, 200);
  assert.match(sheet.headers.get("cache-control") ?? "", /immutable/, "the prefixed immutable rule applies");
  await sheet.arrayBuffer();
});

test("the Worker answers under /blog/api/ and reads the manifest from under /blog/", async () => {
  const health = await fetch(`${worker.base}/blog/api/health`);
  assert.equal(health.status, 200, await health.clone().text());
  await health.arrayBuffer();
  const slug = JSON.parse(readFileSync(path.join(dir, "public/blog/_folio/edge.json"), "utf8")).pages[0];
  // A slug of the build's pages counts: the manifest was found under /blog/.
  const post = await fetch(`${worker.base}/blog/api/views/${slug}`, {
    method: "POST",
    headers: { Origin: ORIGIN, "User-Agent": "folio-subpath-test" },
  });
  const body = await post.json();
  assert.equal(post.status, 200, JSON.stringify(body));
  assert.equal(body.slug, slug);
  assert.ok(body.views >= 1, JSON.stringify(body));
  const unknown = await fetch(`${worker.base}/blog/api/views/not-a-page-of-this-site`);
  assert.equal(unknown.status, 404);
  await unknown.arrayBuffer();
});

test("nothing of the Worker answers outside /blog/", async () => {
  for (const p of ["/api/health", "/api/views/x"]) {
    const r = await fetch(`${worker.base}${p}`);
    const text = await r.text();
    assert.equal(r.status, 404, `${p}: ${r.status}`);
    assert.doesNotMatch(text, /"status"\s*:\s*"ok"/, p);
  }
});
