// Resumable terminal sessions through the real Worker under `wrangler dev` and the real
// folio-pty in its sandbox (docs/terminal-protocol.md, "Resuming a session"): a connection
// cut mid-session (the TCP socket destroyed, no close frame) is resumed with the origin's
// resume token through the Worker and finds the same shell and the output it missed; the
// token is single-use and bound to the visitor's address; the Worker's lease is per
// connection, so a resume is not counted twice and nothing is left once the grace expires.
// Also `GET /api/terminal/status`: live/busy/down, cached 30 s.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { freePort, newSecret, readManifest, startPty, startWorker } from "./harness.mjs";

const manifest = readManifest();
// A demo whose command is the default interactive shell.
const DEMO = manifest.demos.includes("minirt") ? "minirt" : manifest.demos[0];
const GRACE = 6;

let pty;
let worker;
let dir;
const secret = newSecret();
const ua = `folio-e2e/resume/${randomBytes(4).toString("hex")}`;
const visitor = (ip) => ({ "CF-Connecting-IP": ip, "User-Agent": ua });

before(async () => {
  assert.ok(DEMO, "the example site declares no demo");
  dir = mkdtempSync(path.join(os.tmpdir(), "folio-resume-e2e-"));
  const secretFile = path.join(dir, "secret");
  writeFileSync(secretFile, secret, { mode: 0o600 });
  pty = await startPty(secretFile, undefined, undefined, ["--resume-grace", String(GRACE)]);
  worker = await startWorker({
    terminalOrigin: `http://127.0.0.1:${pty.port}`, secret,
    // One session per visitor: a resume counted twice would be refused.
    vars: { MAX_SESSIONS_PER_VISITOR: 1 },
  });
});

after(async () => {
  await worker?.stop();
  await pty?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A terminal client through the Worker: output, notices, the last resume token, the close. */
function terminal(headers, { resume } = {}) {
  const url = `${worker.base.replace(/^http/, "ws")}/terminal/${DEMO}${resume ? "?resume=1" : ""}`;
  const ws = new WebSocket(url, { origin: worker.base, headers });
  ws.binaryType = "nodebuffer";
  const t = { ws, output: Buffer.alloc(0), notices: [], token: null, close: null };
  t.closed = new Promise((r) => ws.once("close", (code, reason) => {
    t.close = { code, reason: reason.toString() };
    r(t.close);
  }));
  ws.on("message", (data, isBinary) => {
    if (!isBinary || !data.length) return;
    if (data[0] === 0x00) t.output = Buffer.concat([t.output, data.subarray(1)]);
    if (data[0] === 0x02) t.notices.push(data.subarray(1).toString());
    if (data[0] === 0x03) t.token = JSON.parse(data.subarray(1).toString()).token;
  });
  t.opened = new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
  t.hello = async (extra = {}) => {
    await t.opened;
    ws.send(JSON.stringify({ cols: 80, rows: 24, ...extra }));
  };
  t.type = (text) => ws.send(Buffer.concat([Buffer.from([0x00]), Buffer.from(text)]));
  t.until = (pred, what, ms = 20_000) => new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`${what} not seen; output:\n${t.output.toString().slice(-2000)}\nclose: ${JSON.stringify(t.close)}`));
      setTimeout(tick, 50);
    };
    tick();
  });
  t.expect = (needle) => t.until(() => t.output.toString().includes(needle), JSON.stringify(needle));
  return t;
}

/** Starts a session, sets a variable, starts a command that prints later, and cuts the TCP connection. */
async function startAndCut(headers) {
  const t = terminal(headers);
  await t.hello();
  await t.until(() => t.token, "a resume token");
  t.type("export RESUME_MARK=plum-$((6*7)); echo set-$((2*2))\n");
  await t.expect("set-4");
  // The line has reached the shell once `go-2` is printed; `away-42` comes 2 s later.
  t.type("echo go-$((1+1)); sleep 2; echo away-$((20+22))\n");
  await t.expect("go-2");
  const state = { token: t.token, received: t.output.length };
  t.ws.terminate(); // no close frame: the network went away
  await t.closed;
  return state;
}

/**
 * Resumes the session `state` names. The Worker gives a dropped connection's lease back once
 * it has noticed the drop, a moment after this side's socket closed: a resume that comes
 * sooner is refused with 4429 (a refusal of the Worker's own, which leaves the token unspent)
 * and tries again, as the page does. Any other outcome is the caller's to check.
 */
async function resume(headers, state) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const t = terminal(headers, { resume: true });
    await t.hello({ resume: state.token, received: state.received });
    await t.until(() => t.token || t.close, "a fresh resume token or a close");
    if (t.close?.code !== 4429 || Date.now() > deadline) return t;
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("a connection cut mid-session resumes the same shell through the Worker, with what it missed", { timeout: 90_000 }, async () => {
  const me = visitor("203.0.113.41");
  const state = await startAndCut(me);
  await new Promise((r) => setTimeout(r, 3000)); // "away-42" is printed while nobody is connected
  const t = await resume(me, state);
  await t.expect("away-42");
  await t.until(() => t.token && t.token !== state.token, "a fresh resume token");
  t.type("echo mark=$RESUME_MARK\n");
  await t.expect("mark=plum-42");
  // Cut again: the session waits for a resume once more, and its Worker lease is free.
  await new Promise((r) => setTimeout(r, 300));
  const fresh = { token: t.token, received: t.output.length };
  t.ws.terminate();
  await t.closed;
  // The spent token, even from the same visitor, is refused...
  const again = await resume(me, state);
  assert.equal((await again.closed).code, 4410);
  // ...and that refusal did not harm the session: the fresh token resumes it.
  const t2 = await resume(me, fresh);
  t2.type("echo alive-$((3+4)) $RESUME_MARK\n");
  await t2.expect("alive-7 plum-42");
  t2.ws.close(1000);
  await t2.closed;
});

test("another visitor's address cannot use a resume token", { timeout: 90_000 }, async () => {
  const me = visitor("203.0.113.42");
  const state = await startAndCut(me);
  const thief = await resume(visitor("198.51.100.77"), state);
  assert.equal((await thief.closed).code, 4410);
  assert.equal(thief.output.length, 0, "the thief saw output");
  // The refusal did not spend the token: its owner resumes.
  const t = await resume(me, state);
  t.type("echo mark=$RESUME_MARK\n");
  await t.expect("mark=plum-42");
  t.ws.close(1000);
  await t.closed;
});

test("leases: a resumed session holds one lease, and none is left after the grace expires", { timeout: 120_000 }, async () => {
  // MAX_SESSIONS_PER_VISITOR is 1: if the dropped connection's lease were still counted once
  // the Worker has noticed the drop, the resume would be refused (4429, past resume()'s 10 s of
  // retries); if the expired session's lease leaked, so would the next start.
  const me = visitor("203.0.113.43");
  const state = await startAndCut(me);
  const t = await resume(me, state);
  t.type("echo mark=$RESUME_MARK\n");
  await t.expect("mark=plum-42");
  // A second session of this visitor is refused while the resumed one runs.
  const second = terminal(me);
  await second.hello();
  const refused = await second.closed;
  assert.equal(refused.code, 4429, JSON.stringify(refused));
  // Cut again and let the grace run out.
  await t.until(() => t.token, "token");
  t.ws.terminate();
  await t.closed;
  const deadline = Date.now() + (GRACE + 15) * 1000;
  while (!pty.log().includes('"reason":"grace_expired"')) {
    assert.ok(Date.now() < deadline, `grace did not expire:\n${pty.log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const late = await resume(me, { token: t.token, received: t.output.length });
  assert.equal((await late.closed).code, 4410);
  const fresh = terminal(me);
  await fresh.hello();
  fresh.type("echo fresh-$((5+5))\n");
  await fresh.expect("fresh-10");
  fresh.ws.close(1000);
  await fresh.closed;
});

test("GET /api/terminal/status: live through folio-pty, cached 30 s, with the security headers", async () => {
  const r = await fetch(`${worker.base}/api/terminal/status`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { live: true, reason: "ok" });
  assert.equal(r.headers.get("cache-control"), "public, max-age=30");
  assert.ok(r.headers.get("content-security-policy"), "security headers missing");
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
});

test("status: busy when the Worker's own site-wide cap is full (MAX_SESSIONS), though folio-pty has room", { timeout: 120_000 }, async () => {
  const w = await startWorker({ terminalOrigin: `http://127.0.0.1:${pty.port}`, secret, vars: { MAX_SESSIONS: 1 } });
  try {
    const headers = visitor("203.0.113.44");
    const ws = new WebSocket(`${w.base.replace(/^http/, "ws")}/terminal/${DEMO}`, { origin: w.base, headers });
    ws.binaryType = "nodebuffer";
    await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
    ws.send(JSON.stringify({ cols: 80, rows: 24 }));
    // The session runs once the origin issued its resume token.
    await new Promise((resolve) => ws.on("message", (d, bin) => { if (bin && d[0] === 0x03) resolve(); }));
    const r = await fetch(`${w.base}/api/terminal/status`);
    assert.deepEqual(await r.json(), { live: false, reason: "busy" });
    const closed = new Promise((r2) => ws.once("close", r2));
    ws.close(1000);
    await closed;
  } finally {
    await w.stop();
  }
});

/** A stand-in origin that counts probes and answers as folio-pty's probe does. */
async function countingOrigin(answer) {
  const port = await freePort();
  let probes = 0;
  const srv = http.createServer((req, res) => {
    probes++;
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(answer()));
  });
  await new Promise((r) => srv.listen(port, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${port}`, probes: () => probes, close: () => new Promise((r) => srv.close(r)) };
}

test("status: busy, then down once the origin stops; one probe per 30 s however many pages ask", { timeout: 120_000 }, async () => {
  const fake = await countingOrigin(() => ({ status: "busy", active: 8, capacity: 8 }));
  const w = await startWorker({ terminalOrigin: fake.url, secret });
  try {
    // (Starting the Worker polled /api/health, which probes the origin too.)
    const before = fake.probes();
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${w.base}/api/terminal/status`);
      assert.deepEqual(await r.json(), { live: false, reason: "busy" });
    }
    assert.equal(fake.probes() - before, 1, "the Worker probed the origin more than once in 30 s");
  } finally {
    await w.stop();
    await fake.close();
  }
  // An origin that is not running at all: down (the port was freed above).
  const w2 = await startWorker({ terminalOrigin: fake.url, secret });
  try {
    const r = await fetch(`${w2.base}/api/terminal/status`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { live: false, reason: "down" });
  } finally {
    await w2.stop();
  }
});
