// Benchmark (not a test) of the edge Worker under `wrangler dev` on loopback:
//   1. rps and p50/p99 of GET /api/views/<page> (Worker + KV read) and of a static page
//      (asset layer only), with wrk;
//   2. WebSocket echo round trip through the relay vs directly to the origin;
//   3. the release .wasm size, raw and gzipped.
// Usage: bash bench/worker/run.sh   (results also in bench/out/worker.json)
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import WebSocket from "ws";
import { ROOT, newSecret, readManifest, startEchoOrigin, startWorker } from "../../tests/worker/harness.mjs";
import { mintWith } from "../../tests/worker/token.mjs";

const DURATION = process.env.BENCH_DURATION ?? "10s";
const CONNECTIONS = process.env.BENCH_CONNECTIONS ?? "16";
const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 2000);

function wrk(url, connections = CONNECTIONS) {
  const r = spawnSync("wrk", ["-t1", `-c${connections}`, `-d${DURATION}`, "--latency", url], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const out = r.stdout;
  const toMs = (s) => {
    const m = s.match(/([\d.]+)(us|ms|s)/);
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  return {
    rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]),
    p50_ms: toMs(out.match(/\s50%\s+(\S+)/)[1]),
    p99_ms: toMs(out.match(/\s99%\s+(\S+)/)[1]),
    requests: Number(out.match(/(\d+) requests in/)[1]),
    non2xx,
  };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function echoRoundTrips(url, options) {
  const ws = new WebSocket(url, options);
  ws.binaryType = "nodebuffer";
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
  const frame = Buffer.from([0x00, 0x61]); // a keystroke: input frame, "a"
  const times = [];
  for (let i = 0; i < ROUND_TRIPS + 100; i++) {
    const t0 = process.hrtime.bigint();
    const got = new Promise((resolve) => ws.once("message", resolve));
    ws.send(frame);
    await got;
    if (i >= 100) times.push(Number(process.hrtime.bigint() - t0) / 1e6); // 100 warm-up
  }
  ws.close(1000);
  times.sort((a, b) => a - b);
  return { p50_ms: percentile(times, 50), p99_ms: percentile(times, 99), n: times.length };
}

const manifest = readManifest();
const page = manifest.pages.includes("cv") ? "cv" : manifest.pages[0];
const demo = manifest.demos[0];
const secret = newSecret();
const origin = await startEchoOrigin(secret);
const worker = await startWorker({ terminalOrigin: origin.url, secret, env: "bench" });
const results = {};
try {
  // Seed the counter so the read returns a real value.
  await fetch(`${worker.base}/api/views/${page}`, { method: "POST" });
  results.api_views_get = wrk(`${worker.base}/api/views/${page}`);
  results.static_page = wrk(`${worker.base}/`);
  // One connection: the latency of a single request, without queueing behind others.
  results.api_views_get_1conn = wrk(`${worker.base}/api/views/${page}`, 1);
  results.static_page_1conn = wrk(`${worker.base}/`, 1);
  const wsOrigin = worker.base;
  results.ws_relay = await echoRoundTrips(`${worker.base.replace("http", "ws")}/terminal/${demo}`, { origin: wsOrigin });
  results.ws_direct = await echoRoundTrips(`ws://127.0.0.1:${origin.port}/terminal/${demo}`, {
    headers: { Authorization: `Bearer ${mintWith(secret, demo)}` },
  });
  results.relay_overhead_p50_ms = results.ws_relay.p50_ms - results.ws_direct.p50_ms;
} finally {
  await worker.stop();
  await origin.stop();
}
const wasm = readFileSync(path.join(ROOT, "edge-worker/build/index_bg.wasm"));
results.wasm = { raw_bytes: wasm.length, gzip_bytes: gzipSync(wasm, { level: 9 }).length };
results.setup = { duration: DURATION, connections: Number(CONNECTIONS), round_trips: ROUND_TRIPS, node: process.version };

mkdirSync(path.join(ROOT, "bench/out"), { recursive: true });
writeFileSync(path.join(ROOT, "bench/out/worker.json"), JSON.stringify(results, null, 2));
const f = (n) => n.toFixed(2);
console.log(`
| what (wrangler dev, loopback, ${CONNECTIONS} connections, ${DURATION}) | rps | p50 | p99 |
|---|---:|---:|---:|
| GET /api/views/${page} (Worker + KV) | ${results.api_views_get.rps.toFixed(0)} | ${f(results.api_views_get.p50_ms)} ms | ${f(results.api_views_get.p99_ms)} ms |
| GET / (static asset) | ${results.static_page.rps.toFixed(0)} | ${f(results.static_page.p50_ms)} ms | ${f(results.static_page.p99_ms)} ms |
| GET /api/views/${page}, 1 connection | ${results.api_views_get_1conn.rps.toFixed(0)} | ${f(results.api_views_get_1conn.p50_ms)} ms | ${f(results.api_views_get_1conn.p99_ms)} ms |
| GET /, 1 connection | ${results.static_page_1conn.rps.toFixed(0)} | ${f(results.static_page_1conn.p50_ms)} ms | ${f(results.static_page_1conn.p99_ms)} ms |

| WebSocket echo round trip (${ROUND_TRIPS} keystrokes) | p50 | p99 |
|---|---:|---:|
| through the Worker relay | ${f(results.ws_relay.p50_ms)} ms | ${f(results.ws_relay.p99_ms)} ms |
| directly to the origin | ${f(results.ws_direct.p50_ms)} ms | ${f(results.ws_direct.p99_ms)} ms |
| relay overhead (p50) | ${f(results.relay_overhead_p50_ms)} ms | |

wasm: ${results.wasm.raw_bytes} bytes raw, ${results.wasm.gzip_bytes} bytes gzipped
non-2xx responses during load: api ${results.api_views_get.non2xx}, static ${results.static_page.non2xx}
`);
