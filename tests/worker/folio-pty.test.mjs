// The relay through the real terminal origin, folio-pty (pty-origin/): the Worker mints a
// token that folio-pty verifies, and a demo's PTY answers through both. Skipped only when
// folio-pty has not been built (run.sh builds it).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { PTY_BIN, newSecret, readManifest, startPty, startWorker } from "./harness.mjs";

const manifest = readManifest();
const DEMO = manifest.demos.includes("tinylisp") ? "tinylisp" : manifest.demos[0];
const skip = !existsSync(PTY_BIN) ? `${PTY_BIN} not built` : !DEMO ? "the site declares no demo" : false;

let pty;
let worker;
let dir;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(os.tmpdir(), "folio-pty-e2e-"));
  const secret = newSecret();
  const secretFile = path.join(dir, "secret");
  writeFileSync(secretFile, secret, { mode: 0o600 });
  // The sandbox (bubblewrap) is folio-pty's business and tested there; if this machine
  // cannot set it up, startPty relays through an unsandboxed folio-pty rather than none.
  pty = await startPty(secretFile);
  worker = await startWorker({ terminalOrigin: `http://127.0.0.1:${pty.port}`, secret });
});

after(async () => {
  await worker?.stop();
  await pty?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(`a demo's PTY answers through the Worker and folio-pty (${DEMO})`, { skip, timeout: 60_000 }, async () => {
  const ws = new WebSocket(`${worker.base.replace("http", "ws")}/terminal/${DEMO}`, {
    origin: worker.base,
    headers: { "User-Agent": "folio-e2e/pty" },
  });
  ws.binaryType = "nodebuffer";
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
  let output = "";
  const saw = (needle) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${JSON.stringify(needle)} in output:\n${output}`)), 20_000);
    const check = () => { if (output.includes(needle)) { clearTimeout(timer); ws.off("message", onMsg); resolve(); } };
    const onMsg = (data, isBinary) => {
      if (isBinary && data[0] === 0x00) output += data.subarray(1).toString("utf8");
      check();
    };
    ws.on("message", onMsg);
    check();
  });
  ws.send(JSON.stringify({ cols: 80, rows: 24 }));
  const input = DEMO === "tinylisp" ? "(* 6 7)\n" : "echo $((6*7))\n";
  ws.send(Buffer.concat([Buffer.from([0x00]), Buffer.from(input)]));
  await saw("42");
  const closed = new Promise((r) => ws.once("close", (code) => r(code)));
  ws.close(1000);
  assert.ok([1000, 1005].includes(await closed));
});

test("/api/health sees folio-pty answer", { skip }, async () => {
  const health = await (await fetch(`${worker.base}/api/health`)).json();
  assert.equal(health.origin, "ok");
  assert.equal(health.ok, true);
});

test("folio-pty refuses a connection that bypasses the Worker", { skip }, async () => {
  const status = await new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${pty.port}/terminal/${DEMO}`);
    ws.once("unexpected-response", (_q, res) => resolve(res.statusCode));
    ws.once("open", () => { ws.close(); resolve(101); });
    ws.once("error", () => resolve("error"));
  });
  assert.equal(status, 401);
});
