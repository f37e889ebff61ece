// Issue 11, threat 2 (every limit was keyed on something the visitor controls) and threat 9
// (the client the origin caps on was not covered by the token's MAC), against the real
// Worker under `wrangler dev` and the echo origin, which verifies tokens with
// terminal-protocol. `wrangler dev` takes the client's address from `CF-Connecting-IP`, so
// each test plays one address with a new User-Agent on every request.
// Run through tests/worker/run.sh.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import { ROOT, newSecret, readManifest, startEchoOrigin, startWorker } from "./harness.mjs";

const manifest = readManifest();
const PAGE = manifest.pages.includes("cv") ? "cv" : manifest.pages[0];
const DEMO = manifest.demos[0];

// The test environment's limits, read from wrangler.toml so the tests follow it.
const toml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
const limitOf = (name) => Number(
  toml.match(new RegExp(`\\[\\[env\\.test\\.ratelimits\\]\\]\\s*name = "${name}"[^\\[]*?limit = (\\d+)`))[1],
);
const testVar = (name) => Number(toml.match(new RegExp(`\\[env\\.test\\.vars\\][^\\[]*?${name} = "(\\d+)"`))[1]);
const API_LIMIT = limitOf("API_LIMITER");
const TERMINAL_LIMIT = limitOf("TERMINAL_LIMITER");
const MAX_PER_CLIENT = testVar("MAX_SESSIONS_PER_VISITOR");
const MAX_SESSIONS = testVar("MAX_SESSIONS");
// The start cap of the second Worker below (MAX_SESSION_STARTS_PER_MINUTE overridden):
// small, and under the concurrent cap so that only the start cap can refuse.
const START_CAP = 4;
assert.ok(START_CAP < MAX_SESSIONS);

const run = randomBytes(4).toString("hex");
let uaSeq = 0;
/** A User-Agent never sent before: what a visitor rotating identities sends. */
const newUa = () => `folio-hostile/${run}/${++uaSeq}`;
let v4Seq = 0;
/** An IPv4 address no other test used (TEST-NET-3). */
const newV4 = () => `203.0.113.${++v4Seq}`;
/** An IPv6 /64 no other test used (documentation prefix), as "2001:db8:x:y". */
const newV6Prefix = () => `2001:db8:${randomBytes(2).toString("hex")}:${randomBytes(2).toString("hex")}`;
const as = (ip) => ({ "CF-Connecting-IP": ip, "User-Agent": newUa() });

/** Waits for the next wall-clock minute when less than `ms` remain (local rate-limit windows are aligned to it). */
async function notNearAWindowBoundary(ms = 15_000) {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < ms) await new Promise((r) => setTimeout(r, left + 250));
}

/**
 * Opens a terminal through `worker` as the site's page would. Resolves `{ ws, who }` once the
 * origin answered `whoami` (a real session), or `{ refused: { code, reason } }` when the Worker
 * accepted and closed at once (how a browser learns of a refusal).
 */
function attempt(worker, headers) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${worker.base.replace(/^http/, "ws")}/terminal/${DEMO}`, {
      origin: worker.base, headers,
    });
    const timer = setTimeout(() => { ws.terminate(); reject(new Error("no answer within 10 s")); }, 10_000);
    ws.once("open", () => ws.send("whoami"));
    ws.once("message", (data) => { clearTimeout(timer); resolve({ ws, who: JSON.parse(data.toString()) }); });
    ws.once("close", (code, reason) => { clearTimeout(timer); resolve({ refused: { code, reason: reason.toString() } }); });
    ws.once("unexpected-response", (_q, res) => { clearTimeout(timer); reject(new Error(`HTTP ${res.statusCode}`)); });
    ws.once("error", (e) => { clearTimeout(timer); reject(e); });
  });
}

async function session(worker, headers, what) {
  const r = await attempt(worker, headers);
  assert.ok(r.ws, `${what}: expected a session, was refused ${JSON.stringify(r.refused)}`);
  return r;
}

async function refusal(worker, headers, what) {
  const r = await attempt(worker, headers);
  if (r.ws) r.ws.close(1000);
  assert.ok(r.refused, `${what}: expected a refusal, got a session`);
  return r.refused;
}

async function closeAll(sessions) {
  await Promise.all(sessions.map(({ ws }) => new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once("close", resolve);
    ws.close(1000);
  })));
}

const secret = newSecret();
let origin;

before(async () => {
  origin = await startEchoOrigin(secret);
});

after(async () => {
  await origin?.stop();
});

describe("threat 2: limits are keyed on the address, not on the User-Agent", () => {
  let worker;
  before(async () => {
    worker = await startWorker({ terminalOrigin: origin.url, secret });
  });
  after(async () => {
    await worker?.stop();
  });

  test(`threat 2: a new User-Agent on every request from one address stays within the per-address session cap (${MAX_PER_CLIENT}); threat 9: the origin gets one signed client for it`, async () => {
    const ip = newV4();
    const open = [];
    for (let i = 0; i < MAX_PER_CLIENT; i++) open.push(await session(worker, as(ip), `session ${i + 1}`));
    const refused = await refusal(worker, as(ip), "one more with yet another User-Agent");
    assert.equal(refused.code, 4429);
    assert.match(refused.reason, /^too_many_sessions; retry_after=\d+$/);
    // Another address is not capped by the first: the refusal was the per-address cap.
    const other = await session(worker, as(newV4()), "another address");
    // The origin caps on the client claim signed into the token: the same for every
    // User-Agent of one address, another for another address; no X-Folio-Visitor header.
    for (const { who } of [...open, other]) {
      assert.match(String(who.client), /^[0-9a-f]{64}$/, JSON.stringify(who));
      assert.equal(who.x_folio_visitor, null, "the Worker no longer sends X-Folio-Visitor");
    }
    assert.equal(open[0].who.client, open[1].who.client, "one address, one client claim");
    assert.notEqual(other.who.client, open[0].who.client, "another address, another client claim");
    await closeAll([...open, other]);
  });

  test("threat 2: an IPv6 /64 is one address; the IPv4-mapped form of an address is that address", async () => {
    const p = newV6Prefix();
    const open = [
      await session(worker, as(`${p}::1`), "first host of the /64"),
      await session(worker, as(`${p}:ffff:1:2:3`), "second host of the /64"),
    ];
    const refused = await refusal(worker, as(`${p}:abcd::9`), "a third host of the same /64");
    assert.equal(refused.code, 4429);
    assert.match(refused.reason, /^too_many_sessions; /);
    open.push(await session(worker, as(`${newV6Prefix()}::1`), "a host of another /64"));
    const v4 = newV4();
    open.push(await session(worker, as(`::ffff:${v4}`), "IPv4-mapped form"));
    open.push(await session(worker, as(v4), "plain form"));
    const mapped = await refusal(worker, as(`::ffff:${v4}`), "a third from the same IPv4 address");
    assert.match(mapped.reason, /^too_many_sessions; /);
    await closeAll(open);
  });

  test(`threat 2: the API rate limit (${API_LIMIT}/min) holds when every request has a new User-Agent`, async () => {
    await notNearAWindowBoundary();
    const ip = newV4();
    for (let i = 0; i < API_LIMIT; i++) {
      const r = await fetch(`${worker.base}/api/views/${PAGE}`, { headers: as(ip) });
      await r.arrayBuffer();
      assert.equal(r.status, 200, `request ${i + 1} of ${API_LIMIT} is allowed`);
    }
    const r = await fetch(`${worker.base}/api/views/${PAGE}`, { headers: as(ip) });
    assert.equal(r.status, 429, "request N+1 from the same address, with yet another User-Agent");
    assert.ok(Number(r.headers.get("retry-after")) > 0);
    assert.equal((await r.json()).error, "rate_limited");
    const other = await fetch(`${worker.base}/api/views/${PAGE}`, { headers: as(newV4()) });
    assert.equal(other.status, 200, "another address is not limited");
  });

  test(`threat 2: the terminal rate limit (${TERMINAL_LIMIT}/min) holds when every attempt has a new User-Agent`, async () => {
    await notNearAWindowBoundary(30_000);
    const ip = newV4();
    const open = [];
    for (let i = 0; i < TERMINAL_LIMIT; i++) {
      const r = await attempt(worker, as(ip));
      if (i < MAX_PER_CLIENT) {
        assert.ok(r.ws, `attempt ${i + 1}: a session`);
        open.push(r);
      } else {
        if (r.ws) r.ws.close(1000);
        assert.match(r.refused?.reason ?? "a session", /^too_many_sessions; /, `attempt ${i + 1}`);
      }
    }
    const limited = await refusal(worker, as(ip), `attempt ${TERMINAL_LIMIT + 1}`);
    assert.equal(limited.code, 4429);
    assert.match(limited.reason, /^rate_limited; retry_after=\d+$/);
    await closeAll(open);
  });
});

describe(`threat 2: a global cap on session starts per minute (${START_CAP} here)`, () => {
  let worker;
  before(async () => {
    worker = await startWorker({
      terminalOrigin: origin.url, secret, vars: { MAX_SESSION_STARTS_PER_MINUTE: String(START_CAP) },
    });
  });
  after(async () => {
    await worker?.stop();
  });

  test("threat 2: starts from many addresses trip the start cap: close 4429 too_many_starts with the time until a start frees", async () => {
    // Every session ends before the next starts, so neither the concurrent cap nor any
    // per-address limit is near: only the number of starts in the last minute counts.
    for (let i = 0; i < START_CAP; i++) {
      const s = await session(worker, as(newV4()), `start ${i + 1} of ${START_CAP}`);
      await closeAll([s]);
    }
    const t0 = Date.now();
    const refused = await refusal(worker, as(newV4()), `start ${START_CAP + 1} from yet another address`);
    assert.equal(refused.code, 4429);
    const m = refused.reason.match(/^too_many_starts; retry_after=(\d+)$/);
    assert.ok(m, refused.reason);
    const retry = Number(m[1]);
    assert.ok(retry >= 1 && retry <= 60, `retry_after ${retry}`);
    // The start cap is global: an IPv6 visitor is refused the same way.
    const v6 = await refusal(worker, as(`${newV6Prefix()}::1`), "an IPv6 address");
    assert.match(v6.reason, /^too_many_starts; /);
    assert.ok(Date.now() - t0 < 30_000);
  });
});
