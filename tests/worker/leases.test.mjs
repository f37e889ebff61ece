// Session leases that are never returned (docs/security-edge.md, leaked leases): the Worker
// takes a lease in the `SessionLimiter` Durable Object before it connects a terminal and
// returns it when the session ends; an isolate evicted mid-session never returns it. Such a
// lease must stop counting after MAX_SESSION_SECS, the longest the relay lets a session last
// (it closes older ones with 4008), so the per-visitor cap heals by itself.
//
// The eviction is real: wrangler and workerd are killed (SIGKILL) with a session open, and a
// new Worker starts on the same persisted Durable Object state.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { newSecret, readManifest, startEchoOrigin, startWorker } from "./harness.mjs";

const DEMO = readManifest().demos[0];
// Longer than a Worker takes to start again on this machine, so the leaked lease is seen
// still counting before it expires.
const TTL = 45;
const secret = newSecret();
const visitorSecret = randomBytes(32).toString("hex");
const me = { "CF-Connecting-IP": "203.0.113.9", "User-Agent": `folio-e2e/leases/${randomBytes(4).toString("hex")}` };
let origin;
let worker;
let state;

const start = () => startWorker({
  terminalOrigin: origin.url, secret, visitorSecret, state,
  vars: { MAX_SESSION_SECS: TTL, MAX_SESSIONS_PER_VISITOR: 1 },
});

function open(headers = me) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${worker.base.replace(/^http/, "ws")}/terminal/${DEMO}`, { origin: worker.base, headers });
    const closed = new Promise((r) => ws.once("close", (code, reason) => r({ code, reason: reason.toString() })));
    ws.once("open", () => resolve({ ws, closed }));
    ws.once("error", reject);
  });
}

/** Opens a terminal: the session (the echo origin answered) or the close that refused it. */
async function session(headers) {
  const { ws, closed } = await open(headers);
  ws.send("whoami");
  const answered = await Promise.race([new Promise((r) => ws.once("message", () => r(true))), closed.then(() => false)]);
  return answered ? { ws, closed } : { refused: await closed };
}

before(async () => {
  assert.ok(DEMO, "the example site declares no demo");
  state = mkdtempSync(path.join(os.tmpdir(), "folio-worker-leases-"));
  origin = await startEchoOrigin(secret);
  worker = await start();
});

after(async () => {
  await worker?.stop();
  await origin?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

test(`a lease an evicted Worker never returned stops counting after MAX_SESSION_SECS (${TTL} s); the relay closes sessions at that age (4008)`, { timeout: 4 * TTL * 1000 }, async () => {
  const first = await session();
  assert.ok(first.ws, `the first session opens: ${JSON.stringify(first.refused)}`);
  const leased = Date.now();
  // While it is open, the visitor is at the cap (1 in this test's Worker).
  const second = await session();
  assert.match(second.refused?.reason ?? "", /^too_many_sessions;/, "one session at a time");

  // The Worker dies with the session open: nothing returns the lease.
  await worker.crash();
  await first.closed;
  worker = await start();
  const restarted = (Date.now() - leased) / 1000;
  assert.ok(restarted < TTL - 5, `the Worker took ${restarted} s to start again: raise TTL`);

  // The lease is still there: the visitor is refused, with no session of theirs open.
  const leaked = await session();
  assert.match(leaked.refused?.reason ?? "", /^too_many_sessions;/, `the unreturned lease counts: ${JSON.stringify(leaked)}`);

  // Someone else's session, opened now, is closed by the relay at MAX_SESSION_SECS.
  // Another address (limits are keyed on the address, not the User-Agent).
  const other = await session({ ...me, "CF-Connecting-IP": "203.0.113.10" });
  assert.ok(other.ws, `another visitor gets in: ${JSON.stringify(other.refused)}`);
  const otherOpened = Date.now();

  // Once MAX_SESSION_SECS have passed since it was taken, the lease no longer counts.
  await new Promise((r) => setTimeout(r, Math.max(0, leased + TTL * 1000 + 1000 - Date.now())));
  const healed = await session();
  assert.ok(healed.ws, `the cap healed after ${TTL} s: ${JSON.stringify(healed.refused)}`);
  healed.ws.close(1000);
  await healed.closed;

  const c = await other.closed;
  const age = (Date.now() - otherOpened) / 1000;
  assert.equal(c.code, 4008, `the relay's close at the time limit: ${JSON.stringify(c)}`);
  assert.ok(age >= TTL - 1 && age < TTL + 10, `closed after ${age} s`);
});
