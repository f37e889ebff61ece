// End-to-end tests of the edge Worker: the real Worker (wasm) under `wrangler dev`, with
// Miniflare's local KV, Durable Objects and rate limits, the site `folio build` wrote to
// public/, and a real WebSocket origin that verifies tokens with terminal-protocol.
// Run through tests/worker/run.sh.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import * as terminalToken from "./token.mjs";
import { ROOT, newSecret, readManifest, startEchoOrigin, startWorker } from "./harness.mjs";

const manifest = readManifest();
const secret = newSecret();
let origin;
let worker;

// The test environment's API limit, read from wrangler.toml so the test follows it.
const wranglerToml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
const API_LIMIT = Number(
  wranglerToml.match(/\[\[env\.test\.ratelimits\]\]\s*name = "API_LIMITER"[^\[]*?limit = (\d+)/)[1],
);
const TERMINAL_LIMIT = Number(
  wranglerToml.match(/\[\[env\.test\.ratelimits\]\]\s*name = "TERMINAL_LIMITER"[^\[]*?limit = (\d+)/)[1],
);
const TERMINAL_PERIOD = Number(
  wranglerToml.match(/\[env\.test\.vars\][^\[]*?TERMINAL_RATE_PERIOD_SECS = "(\d+)"/)[1],
);
const MAX_PER_VISITOR = Number(
  wranglerToml.match(/\[env\.test\.vars\][^\[]*?MAX_SESSIONS_PER_VISITOR = "(\d+)"/)[1],
);

const PAGE = manifest.pages.includes("cv") ? "cv" : manifest.pages[0];
const DEMO = manifest.demos[0];
const run = randomBytes(4).toString("hex");
let visitorSeq = 0;
/** Headers that make a distinct visitor (wrangler dev passes CF-Connecting-IP through). */
function visitor(tag = "v") {
  visitorSeq += 1;
  const n = visitorSeq;
  return {
    "CF-Connecting-IP": `198.51.${(n >> 8) & 255}.${n & 255}`,
    "User-Agent": `folio-e2e/${run}/${tag}/${n}`,
  };
}

/** Every Worker and asset response carries exactly the policy folio build wrote. */
function assertPolicy(headers, what) {
  const get = (n) => (typeof headers.get === "function" ? headers.get(n) : headers[n.toLowerCase()]);
  assert.ok(manifest.headers.length > 0, "the manifest has a policy");
  for (const [name, value] of manifest.headers) {
    assert.equal(get(name), value, `${what}: header ${name}`);
  }
}

before(async () => {
  origin = await startEchoOrigin(secret);
  worker = await startWorker({ terminalOrigin: origin.url, secret });
});

after(async () => {
  await worker?.stop();
  await origin?.stop();
});

describe("view counter", () => {
  test("200 concurrent POSTs raise the count by exactly the number of distinct visitors; KV only ever moves up to it", async () => {
    const url = `${worker.base}/api/views/${PAGE}`;
    const read = async () => (await (await fetch(url, { headers: visitor("read") })).json()).views;
    const before = await read();
    const distinct = 40;
    const target = before + distinct;
    // Reads come from KV, written through by the Durable Object after the responses, at
    // most once a second per page (KV's limit). One reader, one read after another, from
    // before the first POST until KV has held the exact count for longer than a write
    // interval (so a write still in flight would have landed): every read is at least the
    // one before it (KV never goes backwards, e.g. two writes landing out of order) and at
    // most the exact count.
    const seen = [];
    let done = false;
    const reader = (async () => {
      let exactSince = null;
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const v = await read();
        seen.push(v);
        if (v === target && done) {
          exactSince ??= Date.now();
          if (Date.now() - exactSince > 2_500) return;
        } else {
          exactSince = null;
        }
        await new Promise((r) => setTimeout(r, 40));
      }
    })();
    const people = Array.from({ length: distinct }, () => visitor("crowd"));
    const requests = Array.from({ length: 200 }, (_, i) => people[i % distinct]);
    const responses = await Promise.all(
      requests.map((headers) => fetch(url, { method: "POST", headers }).then(async (r) => {
        assert.equal(r.status, 200, await r.clone().text());
        assertPolicy(r.headers, "POST /api/views");
        return r.json();
      })),
    );
    done = true;
    assert.equal(responses.filter((r) => r.counted).length, distinct, "each visitor counted once");
    const exact = Math.max(...responses.map((r) => r.views));
    assert.equal(exact, target, "the Durable Object's count is exact");
    await reader;
    const backwards = seen.findIndex((v, i) => i > 0 && v < seen[i - 1]);
    assert.equal(backwards, -1, `KV went backwards at read ${backwards}: ${seen.join(" ")}`);
    assert.ok(seen.every((v) => v <= target), `KV overshot: ${seen.join(" ")}`);
    assert.equal(seen.at(-1), target, `KV never reached the exact count: ${seen.join(" ")}`);
    assert.ok(seen[0] >= before, `KV went below the count read before: ${before}, then ${seen.join(" ")}`);
    assert.deepEqual(await (await fetch(url, { headers: visitor("read") })).json(), { slug: PAGE, views: target });
    const batch = await (await fetch(`${worker.base}/api/views?slugs=${PAGE}`, { headers: visitor("read") })).json();
    assert.equal(batch.views[PAGE], target);
  });

  test("a visitor counts once per page per day", async () => {
    const me = visitor("once");
    const url = `${worker.base}/api/views/${PAGE}`;
    const first = await (await fetch(url, { method: "POST", headers: me })).json();
    const second = await (await fetch(url, { method: "POST", headers: me })).json();
    assert.equal(first.counted, true);
    assert.equal(second.counted, false);
    assert.equal(second.views, first.views);
    const otherUa = await (await fetch(url, { method: "POST", headers: { ...me, "User-Agent": `${me["User-Agent"]}-b` } })).json();
    assert.equal(otherUa.counted, true, "another browser is another visitor");
  });

  test("unknown slug is 404, malformed slug 400, foreign Origin 403 — all JSON with the policy", async () => {
    const cases = [
      ["POST", "/api/views/no-such-page-here", 404, "unknown_slug"],
      ["GET", "/api/views/no-such-page-here", 404, "unknown_slug"],
      ["POST", "/api/views/Not_A_Slug!", 400, "malformed_slug"],
      ["GET", "/api/views?slugs=a,B%20", 400, "malformed_slug"],
      ["GET", "/api/nothing", 404, "not_found"],
      ["DELETE", `/api/views/${PAGE}`, 405, "method_not_allowed"],
    ];
    for (const [method, p, status, code] of cases) {
      const r = await fetch(`${worker.base}${p}`, { method, headers: visitor("err") });
      assert.equal(r.status, status, `${method} ${p}`);
      assert.match(r.headers.get("content-type"), /application\/json/);
      assertPolicy(r.headers, `${method} ${p}`);
      assert.equal((await r.json()).error, code);
    }
    const r = await fetch(`${worker.base}/api/views/${PAGE}`, {
      method: "POST", headers: { ...visitor("csrf"), Origin: "https://evil.example" },
    });
    assert.equal(r.status, 403);
    assert.equal(r.headers.get("access-control-allow-origin"), null);
    assertPolicy(r.headers, "403");
  });

  test("CORS only for the site's own origin", async () => {
    const own = new URL(manifest.base_url).origin;
    const ok = await fetch(`${worker.base}/api/views/${PAGE}`, { method: "OPTIONS", headers: { Origin: own } });
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get("access-control-allow-origin"), own);
    const no = await fetch(`${worker.base}/api/views/${PAGE}`, { method: "OPTIONS", headers: { Origin: "https://evil.example" } });
    assert.equal(no.headers.get("access-control-allow-origin"), null);
    assertPolicy(no.headers, "preflight");
  });
});

describe("rate limits", () => {
  test(`N+1 requests in the window give 429 with Retry-After (N = ${API_LIMIT})`, async () => {
    // Local windows are aligned to the wall clock: do not straddle a boundary.
    const toBoundary = 60_000 - (Date.now() % 60_000);
    if (toBoundary < 8_000) await new Promise((r) => setTimeout(r, toBoundary + 250));
    const me = visitor("limit");
    for (let i = 0; i < API_LIMIT; i++) {
      const r = await fetch(`${worker.base}/api/views/${PAGE}`, { headers: me });
      await r.arrayBuffer();
      assert.equal(r.status, 200, `request ${i + 1} of ${API_LIMIT} is allowed`);
    }
    const r = await fetch(`${worker.base}/api/views/${PAGE}`, { headers: me });
    assert.equal(r.status, 429);
    const retry = Number(r.headers.get("retry-after"));
    assert.ok(Number.isInteger(retry) && retry > 0, `Retry-After: ${r.headers.get("retry-after")}`);
    assertPolicy(r.headers, "429");
    const body = await r.json();
    assert.equal(body.error, "rate_limited");
    assert.equal(body.retry_after, retry);
    // Someone else is not affected.
    const other = await fetch(`${worker.base}/api/views/${PAGE}`, { headers: visitor("limit-other") });
    assert.equal(other.status, 200);
  });
});

describe("security headers on static assets", () => {
  test("static HTML and the static 404 page carry the policy", async () => {
    const home = await fetch(`${worker.base}/`);
    assert.equal(home.status, 200);
    assert.match(home.headers.get("content-type"), /text\/html/);
    assertPolicy(home.headers, "GET /");
    const missing = await fetch(`${worker.base}/no/such/page-${run}/`);
    assert.equal(missing.status, 404);
    assertPolicy(missing.headers, "static 404");
    const health = await fetch(`${worker.base}/api/health`);
    assert.equal(health.status, 200);
    assertPolicy(health.headers, "health");
    const h = await health.json();
    assert.equal(h.kv, "ok");
    assert.equal(h.origin, "ok");
    assert.equal(h.manifest, true);
    assert.match(h.version, /^\d+\.\d+\.\d+/);
  });
});

// ---------------------------------------------------------------------------------------

const wsBase = () => worker.base.replace(/^http/, "ws");
const ownOrigin = () => worker.base;

/** Opens a WebSocket through the Worker; rejects with {status, headers, body} on refusal. */
function openWs(p, { origin = ownOrigin(), headers = visitor("ws") } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsBase()}${p}`, { origin, headers, maxPayload: 4 << 20 });
    ws.binaryType = "nodebuffer";
    // The 101's headers (a session, or a refusal sent as a close right after it).
    ws.once("upgrade", (res) => { ws.upgradeHeaders = res.headers; });
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_req, res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), {
        status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString(),
      })));
    });
    ws.once("error", reject);
  });
}

// Opens a terminal and proves the session is real (the echo origin answers `whoami`), so a
// refusal (accepted, then closed at once) is never mistaken for a session.
async function openSession(p, opts) {
  const ws = await openWs(p, opts);
  ws.send("whoami");
  await nextMessage(ws);
  return ws;
}

function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    ws.once("message", (data, isBinary) => resolve({ data, isBinary }));
    ws.once("close", (code) => reject(new Error(`closed ${code} before a message`)));
  });
}

function closed(ws) {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe("terminal relay", () => {
  test("the origin sees a token it verifies, for the demo asked; the 101 carries the policy", async () => {
    const ws = await openWs(`/terminal/${DEMO}`);
    assertPolicy(ws.upgradeHeaders, "101 (a session)");
    ws.send("whoami");
    const { data, isBinary } = await nextMessage(ws);
    assert.equal(isBinary, false);
    const who = JSON.parse(data.toString());
    assert.equal(who.verified, true);
    assert.equal(who.demo, DEMO);
    assert.ok(who.expires_in > 0 && who.expires_in <= 60, `token lifetime ${who.expires_in}s`);
    const accepted = origin.events().filter((e) => e.event === "accepted");
    assert.ok(accepted.some((e) => e.demo === DEMO));
    // The origin learns who the visitor is only as an opaque daily key, never an IP.
    assert.ok(accepted.every((e) => /^[0-9a-f]{64}$/.test(e.visitor)), JSON.stringify(accepted));
    ws.close(1000);
    await closed(ws);
  });

  test("1 MiB of binary frames passes both ways intact, and text frames too", async () => {
    const ws = await openWs(`/terminal/${DEMO}`);
    const frames = Array.from({ length: 16 }, () => randomBytes(64 * 1024));
    const got = [];
    const done = new Promise((resolve, reject) => {
      ws.on("message", (data, isBinary) => {
        if (!isBinary) return;
        got.push(Buffer.from(data));
        if (got.length === frames.length) resolve();
      });
      ws.once("close", (code) => reject(new Error(`closed ${code}`)));
    });
    for (const f of frames) ws.send(f);
    await done;
    ws.removeAllListeners("message");
    ws.removeAllListeners("close");
    assert.equal(Buffer.concat(got).length, 1 << 20);
    assert.ok(Buffer.concat(got).equals(Buffer.concat(frames)), "echoed bytes are identical, in order");
    // One frame of exactly the maximum, from the origin to the client.
    ws.send(`send:${1 << 20}`);
    const big = await nextMessage(ws);
    assert.equal(big.isBinary, true);
    assert.equal(big.data.length, 1 << 20);
    assert.ok(big.data.every((b) => b === 0x5a));
    ws.send("héllo, terminal");
    const text = await nextMessage(ws);
    assert.equal(text.isBinary, false);
    assert.equal(text.data.toString(), "héllo, terminal");
    ws.close(1000);
    await closed(ws);
  });

  test("close codes and reasons pass through both ways", async () => {
    const a = await openWs(`/terminal/${DEMO}`);
    a.send("close:4321:origin says bye");
    assert.deepEqual(await closed(a), { code: 4321, reason: "origin says bye" });
    const b = await openWs(`/terminal/${DEMO}`);
    b.close(4001, "client says bye");
    await closed(b);
    const deadline = Date.now() + 3000;
    while (!origin.events().some((e) => e.event === "closed" && e.code === 4001)) {
      assert.ok(Date.now() < deadline, "the origin received the client's close code");
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(origin.events().some((e) => e.event === "closed" && e.code === 4001 && e.reason === "client says bye"));
  });

  test("a frame over 1 MiB closes with 1009, either way", async () => {
    const a = await openWs(`/terminal/${DEMO}`);
    a.send(Buffer.alloc((1 << 20) + 1));
    assert.equal((await closed(a)).code, 1009);
    const b = await openWs(`/terminal/${DEMO}`);
    b.send(`send:${(1 << 20) + 1}`);
    assert.equal((await closed(b)).code, 1009);
  });

  test("refuses a foreign or missing Origin (403), unknown demo (404), plain GET (426)", async () => {
    for (const o of ["https://evil.example", "null"]) {
      const e = await openWs(`/terminal/${DEMO}`, { origin: o }).then(() => null, (err) => err);
      assert.equal(e?.status, 403, `Origin ${o}`);
      assertPolicy(e.headers, "403");
      assert.equal(JSON.parse(e.body).error, "forbidden_origin");
    }
    const noOrigin = await new Promise((resolve) => {
      const ws = new WebSocket(`${wsBase()}/terminal/${DEMO}`);
      ws.once("unexpected-response", (_q, res) => resolve(res.statusCode));
      ws.once("open", () => { ws.close(); resolve(101); });
      ws.once("error", () => {});
    });
    assert.equal(noOrigin, 403);
    const unknown = await openWs("/terminal/no-such-demo").then(() => null, (err) => err);
    assert.equal(unknown?.status, 404);
    assertPolicy(unknown.headers, "404");
    const plain = await fetch(`${worker.base}/terminal/${DEMO}`, { headers: visitor("plain") });
    assert.equal(plain.status, 426);
    // The Worker sets `Upgrade: websocket` on the 426; workerd drops it as a hop-by-hop
    // header, so the body says it instead.
    assert.equal((await plain.clone().json()).error, "upgrade_required");
    assertPolicy(plain.headers, "426");
  });

  test(`caps concurrent sessions per visitor (${MAX_PER_VISITOR}): refused with close 4429 + retry_after, freed on close`, async () => {
    const me = visitor("cap");
    const open = [];
    for (let i = 0; i < MAX_PER_VISITOR; i++) open.push(await openSession(`/terminal/${DEMO}`, { headers: me }));
    // A browser cannot read the status of a refused handshake, so the Worker accepts and
    // closes at once with 4000 + status and a reason saying when to retry.
    const refused = await openWs(`/terminal/${DEMO}`, { headers: me });
    assertPolicy(refused.upgradeHeaders, "101 (a refusal: 429)");
    const c = await closed(refused);
    assert.equal(c.code, 4429);
    assert.match(c.reason, /^too_many_sessions; retry_after=\d+$/);
    assert.ok(Number(c.reason.split("=")[1]) > 0);
    // Someone else still gets in.
    const other = await openSession(`/terminal/${DEMO}`);
    other.close(1000);
    // Closing one frees a slot (the lease is returned asynchronously).
    open[0].close(1000);
    await closed(open[0]);
    // Each try is a start the per-address rate limit counts: back off (0.1 s, 0.2 s, …).
    let again = null;
    for (let wait = 100; wait <= 6_400 && !again; wait *= 2) {
      again = await openSession(`/terminal/${DEMO}`, { headers: me }).catch(() => null);
      if (!again) await new Promise((r) => setTimeout(r, wait));
    }
    assert.ok(again, "a slot is free again after a close");
    again.close(1000);
    open[1].close(1000);
  });

  test(`N+1 terminals started in the window: the last is refused with 4429 rate_limited and retry_after (N = ${TERMINAL_LIMIT})`, async () => {
    // Local windows are aligned to the wall clock: do not straddle a boundary.
    const toBoundary = 60_000 - (Date.now() % 60_000);
    if (toBoundary < 15_000) await new Promise((r) => setTimeout(r, toBoundary + 250));
    const me = visitor("terminal-rate");
    // Each start passes the rate limit; the session cap (MAX_PER_VISITOR open at once) may
    // still refuse one whose predecessor's lease is being returned: that start counted too.
    // Returns the close that refused it, or null for a session (closed again at once).
    const start = async () => {
      const ws = await openWs(`/terminal/${DEMO}`, { headers: me });
      const end = closed(ws);
      ws.send("whoami");
      const refusal = await Promise.race([
        new Promise((r) => ws.once("message", () => r(null))),
        end,
      ]);
      if (refusal) return { ws, refusal };
      ws.close(1000);
      await end;
      return { ws, refusal: null };
    };
    for (let i = 0; i < TERMINAL_LIMIT; i++) {
      const { refusal } = await start();
      assert.ok(refusal === null || /^too_many_sessions;/.test(refusal.reason),
        `start ${i + 1} of ${TERMINAL_LIMIT} is allowed: ${JSON.stringify(refusal)}`);
    }
    const over = await start();
    assertPolicy(over.ws.upgradeHeaders, "101 (a refusal: rate limit)");
    assert.deepEqual(over.refusal, { code: 4429, reason: `rate_limited; retry_after=${TERMINAL_PERIOD}` },
      "the start over the limit is refused");
    // Someone else is not affected.
    const other = await openSession(`/terminal/${DEMO}`);
    other.close(1000);
    await closed(other);
  });

  // (That folio-pty itself refuses them is tests/worker/folio-pty.test.mjs and
  // pty-origin/tests/it/auth.rs: this shows the stand-in the tests above use is as strict.)
  test("the echo stand-in origin, like folio-pty, refuses connections without a token signed with the secret", async () => {
    const direct = (headers) => new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${origin.port}/terminal/${DEMO}`, { headers });
      ws.once("unexpected-response", (_q, res) => resolve(res.statusCode));
      ws.once("open", () => { ws.close(); resolve(101); });
      ws.once("error", () => resolve("error"));
    });
    assert.equal(await direct({}), 401, "no token");
    const forged = terminalToken.mintWith("x".repeat(32), DEMO);
    assert.equal(await direct({ Authorization: `Bearer ${forged}` }), 401, "token signed with another secret");
  });

  test("origin down: the browser gets close 4502 origin_unavailable (not a 500, not a bare failure)", async () => {
    await origin.stop();
    const ws = await openWs(`/terminal/${DEMO}`);
    // The Worker's 502 reaches the site's page as this 101 and the close: it carries the
    // policy too.
    assertPolicy(ws.upgradeHeaders, "101 (a refusal: 502)");
    const c = await closed(ws);
    assert.equal(c.code, 4502);
    assert.equal(c.reason, "origin_unavailable");
    const health = await (await fetch(`${worker.base}/api/health`)).json();
    assert.equal(health.origin, "down");
  });
});
