// The relay through the real terminal origin, folio-pty (pty-origin/), in its real sandbox:
// the Worker mints a token that folio-pty verifies, and a demo's PTY answers through both.
// Never skipped: without folio-pty built (run.sh builds it), bubblewrap or a demo in the
// example site, every test here fails and says which.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { newSecret, readManifest, startPty, startWorker } from "./harness.mjs";
import * as terminalToken from "./token.mjs";

const manifest = readManifest();
const DEMO = manifest.demos.includes("tinylisp") ? "tinylisp" : manifest.demos[0];

let pty;
let worker;
let dir;
let secret;

before(async () => {
  assert.ok(DEMO, "the example site declares no demo");
  dir = mkdtempSync(path.join(os.tmpdir(), "folio-pty-e2e-"));
  secret = newSecret();
  const secretFile = path.join(dir, "secret");
  writeFileSync(secretFile, secret, { mode: 0o600 });
  pty = await startPty(secretFile);
  worker = await startWorker({ terminalOrigin: `http://127.0.0.1:${pty.port}`, secret });
});

after(async () => {
  await worker?.stop();
  await pty?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(`a demo's PTY answers through the Worker and folio-pty (${DEMO})`, { timeout: 60_000 }, async () => {
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

test("/api/health sees folio-pty answer", async () => {
  const health = await (await fetch(`${worker.base}/api/health`)).json();
  assert.equal(health.origin, "ok");
  assert.equal(health.ok, true);
});

test("folio-pty refuses a connection that bypasses the Worker (no token, or one not signed with the secret)", async () => {
  const direct = (headers) => new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${pty.port}/terminal/${DEMO}`, { headers });
    ws.once("unexpected-response", (_q, res) => resolve(res.statusCode));
    ws.once("open", () => { ws.close(); resolve(101); });
    ws.once("error", () => resolve("error"));
  });
  const refused = async () => {
    const m = (await (await fetch(`http://127.0.0.1:${pty.port}/metrics`)).text())
      .match(/^folio_pty_sessions_refused_total\{reason="unauthorized"\} (\d+)$/m);
    return m ? Number(m[1]) : 0;
  };
  const before = await refused();
  assert.equal(await direct({}), 401, "no token");
  const forged = terminalToken.mintWith("x".repeat(32), DEMO);
  assert.equal(await direct({ Authorization: `Bearer ${forged}` }), 401, "token signed with another secret");
  assert.equal(await refused(), before + 2, "folio-pty counted both as unauthorized");
  // The same token format signed with the shared secret is accepted: the two refusals
  // above are the signature check, not a malformed request.
  const genuine = terminalToken.mintWith(secret, DEMO);
  assert.equal(await direct({ Authorization: `Bearer ${genuine}` }), 101, "token signed with the shared secret");
});
