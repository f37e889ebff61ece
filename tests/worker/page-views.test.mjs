// A view count belongs to a page, not a slug (docs/security-edge.md, "Page keys"): the real
// Worker under `wrangler dev` over a site `folio build` makes here, where a project and a blog
// post share the slug `twin`. Each counts apart under its own page key; the bare slug is
// refused. And a count kept under an old slug key (by a Worker and a build from before page
// keys, simulated by serving that build's manifest on the same Miniflare state) is shown for
// the page until it is counted, then carried over, once.
// Run through tests/worker/run.sh (or: FOLIO_WORKER_PREBUILT=1 node --test tests/worker/page-views.test.mjs).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, newSecret, startWorker } from "./harness.mjs";

const FOLIO = path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target"), "debug/folio");
let dir;
let site;
let state;
let worker;
const secret = newSecret();
const visitorSecret = newSecret();

function write(rel, text) {
  const p = path.join(site, rel);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
}

let seq = 0;
function visitor() {
  seq += 1;
  return { "CF-Connecting-IP": `203.0.113.${seq}`, "User-Agent": `folio-page-views/${seq}` };
}

const post = async (key, headers = visitor()) => {
  const r = await fetch(`${worker.base}/api/views/${key}`, { method: "POST", headers });
  return { status: r.status, body: await r.json() };
};
const read = async (key) => (await (await fetch(`${worker.base}/api/views/${key}`, { headers: visitor() })).json()).views;

/** KV is written through after the response (at most once a second): wait until a read shows `n`. */
async function readEventually(key, n) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const got = await read(key);
    if (got === n || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 300));
  }
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "folio-page-views-"));
  site = path.join(dir, "site");
  state = path.join(dir, "state");
  mkdirSync(state, { recursive: true });
  write("folio.toml", 'title = "Twins"\nbase_url = "https://twins.example"\n');
  write("content/_index.md", '+++\ntitle = "Home"\n+++\n');
  write("content/projects/_index.md", '+++\ntitle = "Projects"\n+++\n');
  write("content/projects/twin.md", '+++\ntitle = "Twin the project"\ndate = 2025-01-02\n+++\nA tool.\n');
  write("content/blog/_index.md", '+++\ntitle = "Blog"\n+++\n');
  write("content/blog/twin.md", '+++\ntitle = "Twin the post"\ndate = 2025-02-03\n+++\nA story.\n');
  write("content/blog/lonely.md", '+++\ntitle = "Lonely"\ndate = 2025-03-04\n+++\nOnly one of me.\n');
  const r = spawnSync(FOLIO, ["build", "--quiet", "--root", site, "--output", path.join(site, "public")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
}, { timeout: 120_000 });

after(async () => {
  await worker?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const manifestFile = () => path.join(site, "public/_folio/edge.json");

test("the build lists page keys, not slugs, and the pages carry them", () => {
  const m = JSON.parse(readFileSync(manifestFile(), "utf8"));
  assert.deepEqual(m.pages, ["blog.lonely", "blog.twin", "projects.twin"]);
  assert.deepEqual(m.legacy, { "blog.lonely": "lonely" }, "only a slug that was one page's carries over");
  assert.match(readFileSync(path.join(site, "public/blog/twin/index.html"), "utf8"), /data-views="?blog\.twin\b/);
  assert.match(readFileSync(path.join(site, "public/projects/twin/index.html"), "utf8"), /data-views="?projects\.twin\b/);
});

test("an old slug count is shown, then carried over once", { timeout: 240_000 }, async () => {
  // The build from before page keys: its manifest listed slugs (and `lonely` was counted so).
  const current = readFileSync(manifestFile(), "utf8");
  const old = JSON.parse(current);
  old.pages = ["lonely", "twin"];
  delete old.legacy;
  writeFileSync(manifestFile(), JSON.stringify(old));
  worker = await startWorker({ terminalOrigin: "http://127.0.0.1:9", secret, visitorSecret, state, assets: path.join(site, "public") });
  for (let i = 1; i <= 3; i++) assert.equal((await post("lonely")).body.views, i);
  assert.equal(await readEventually("lonely", 3), 3, "KV has the old count");
  await worker.stop();

  // This build, on the same state.
  writeFileSync(manifestFile(), current);
  worker = await startWorker({ terminalOrigin: "http://127.0.0.1:9", secret, visitorSecret, state, assets: path.join(site, "public") });
  assert.equal((await post("lonely")).status, 404, "the old slug is not a page now");
  assert.equal(await read("blog.lonely"), 3, "read before any visit: the old count");
  const batch = await (await fetch(`${worker.base}/api/views?slugs=blog.lonely,blog.twin`, { headers: visitor() })).json();
  assert.deepEqual(batch.views, { "blog.lonely": 3, "blog.twin": 0 });
  assert.equal((await post("blog.lonely")).body.views, 4, "the first visit starts from it");
  assert.equal((await post("blog.lonely")).body.views, 5, "and adds it only once");
  assert.equal(await readEventually("blog.lonely", 5), 5);
});

test("two pages with one slug count apart; the bare slug is refused", { timeout: 120_000 }, async () => {
  const a = visitor();
  const b = visitor();
  assert.deepEqual((await post("projects.twin", a)).body, { slug: "projects.twin", views: 1, counted: true });
  assert.deepEqual((await post("projects.twin", a)).body, { slug: "projects.twin", views: 1, counted: false });
  assert.equal((await post("blog.twin", a)).body.views, 1, "the same visitor on the other twin counts there");
  assert.equal((await post("blog.twin", b)).body.views, 2);
  assert.equal((await post("projects.twin", b)).body.views, 2);
  assert.equal((await post("blog.twin", visitor())).body.views, 3);
  const twin = await post("twin");
  assert.equal(twin.status, 404);
  assert.equal(twin.body.error, "unknown_slug");
  assert.equal((await post("blog..twin")).status, 400);
  assert.equal(await readEventually("blog.twin", 3), 3);
  assert.equal(await readEventually("projects.twin", 2), 2);
  const batch = await (await fetch(`${worker.base}/api/views?slugs=projects.twin,blog.twin`, { headers: visitor() })).json();
  assert.deepEqual(batch.views, { "blog.twin": 3, "projects.twin": 2 });
});
