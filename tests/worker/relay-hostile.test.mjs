// Hostile clients of the Worker's terminal relay (issue 11), through the real Worker under
// `wrangler dev` and the real folio-pty (sandboxed) on a small site of its own with short
// timeouts:
//   threat 5: a client that starts a flood and stops reading. The relay must pause the
//             origin (it reads the origin eagerly and would otherwise queue the flood in the
//             isolate's memory without bound), and the session must end at folio-pty's idle
//             deadline, giving the lease back;
//   threat 6: a lease granted to a request that then fails must be given back, on every path.
// Fails (never skips) when folio-pty is not built or bubblewrap is missing.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { PTY_BIN, ROOT, freePort, newSecret, readManifest, startWorker } from "./harness.mjs";

const manifest = readManifest();
// Demo ids must be ones the Worker's manifest lists; folio-pty's own site defines the first
// (a shell with short timeouts) and not the second, which it therefore refuses (404).
const FLOOD = manifest.demos[0];
const REFUSED = manifest.demos.find((d) => d !== FLOOD);
const IDLE_SECS = 8;
const wranglerToml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
const MAX_PER_VISITOR = Number(
  wranglerToml.match(/\[env\.test\.vars\][^\[]*?MAX_SESSIONS_PER_VISITOR = "(\d+)"/)[1],
);

let dir;
let pty;
let worker;

const run = randomBytes(4).toString("hex");
let seq = 0;
/** A distinct visitor: its own address and User-Agent. */
function visitor(tag) {
  seq += 1;
  return { "CF-Connecting-IP": `203.0.113.${seq}`, "User-Agent": `folio-hostile/${run}/${tag}/${seq}` };
}

async function startOwnPty(site, secretFile, state) {
  assert.ok(existsSync(PTY_BIN), `${PTY_BIN} is not built: run \`cargo build -p folio-pty\``);
  assert.equal(spawnSync("sh", ["-c", "command -v bwrap"]).status, 0,
    "bubblewrap (bwrap) is not installed: apt-get install bubblewrap");
  const port = await freePort();
  const child = spawn(PTY_BIN, ["serve", "--site", site, "--listen", `127.0.0.1:${port}`,
    "--secret-file", secretFile, "--state-dir", state, "--runtime-dir", path.dirname(state)],
  { stdio: ["ignore", "pipe", "pipe"] });
  const log = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`folio-pty not listening:\n${log.join("")}`)), 120_000);
    const onData = (d) => {
      log.push(d.toString());
      if (log.join("").includes('"event":"listening"')) { clearTimeout(timer); resolve(); }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`folio-pty exited ${code}:\n${log.join("")}`)); });
  });
  child.removeAllListeners("exit");
  const get = async (p) => (await fetch(`http://127.0.0.1:${port}${p}`)).text();
  return {
    port,
    log: () => log.join(""),
    async metric(name) {
      const line = (await get("/metrics")).split("\n").find((l) => l.startsWith(`${name} `));
      return line ? Number(line.split(" ")[1]) : undefined;
    },
    async active() { return JSON.parse(await get("/healthz")).active; },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await gone;
    },
  };
}

before(async () => {
  assert.ok(FLOOD && REFUSED, `the site needs two demos, has ${JSON.stringify(manifest.demos)}`);
  dir = mkdtempSync(path.join(os.tmpdir(), "folio-relay-hostile-"));
  // The sandbox runs as other uids (per session, when folio-pty is root): they must be able
  // to reach the runtime directory under here.
  chmodSync(dir, 0o755);
  const site = path.join(dir, "site");
  const write = (rel, text) => {
    mkdirSync(path.dirname(path.join(site, rel)), { recursive: true });
    writeFileSync(path.join(site, rel), text);
  };
  write("folio.toml", 'title = "hostile relay"\nbase_url = "https://hostile.example"\n\n' +
    // No resume grace: a vanished client's session ends at once, so these tests see the
    // Worker's leases alone (a session kept for resuming holds an origin slot by design;
    // tests/worker/resume.test.mjs covers leases across a resume).
    "[terminal]\nmax_sessions = 8\nmax_sessions_per_client = 4\nresume_grace = 0\n");
  write("content/_index.md", '+++\ntitle = "Home"\n+++\n');
  write("content/projects/_index.md", '+++\ntitle = "Projects"\n+++\n');
  write(`content/projects/${FLOOD}/index.md`, `+++\ntitle = "Flood"\n\n[demo]\n` +
    `command = "/bin/bash --norc --noprofile"\nworkdir = "files"\n` +
    `idle_timeout = ${IDLE_SECS}\ntimeout = 60\n+++\nA shell with a short idle timeout.\n`);
  write(`content/projects/${FLOOD}/files/hello.txt`, "hi\n");
  const secret = newSecret();
  const secretFile = path.join(dir, "secret");
  writeFileSync(secretFile, secret, { mode: 0o600 });
  mkdirSync(path.join(dir, "run"), { mode: 0o755 });
  pty = await startOwnPty(site, secretFile, path.join(dir, "run", "state"));
  worker = await startWorker({ terminalOrigin: `http://127.0.0.1:${pty.port}`, secret });
});

after(async () => {
  await worker?.stop();
  await pty?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A masked client frame (RFC 6455). */
function frame(opcode, payload) {
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  assert.ok(payload.length < 126);
  const head = Buffer.from([0x80 | opcode, 0x80 | payload.length]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([head, mask, body]);
}

/** Opens a terminal over a raw TCP socket and returns it once the 101 is read (nothing more). */
function rawTerminal(demo, headers) {
  const { port } = new URL(worker.base);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port: Number(port) }, () => {
      const lines = [`GET /terminal/${demo} HTTP/1.1`, `Host: 127.0.0.1:${port}`, "Upgrade: websocket",
        "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        `Origin: ${worker.base}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      s.write(`${lines.join("\r\n")}\r\n\r\n`);
    });
    let head = Buffer.alloc(0);
    const onData = (d) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      s.off("data", onData);
      s.pause(); // from here on this client reads nothing
      const text = head.subarray(0, end).toString();
      if (!text.startsWith("HTTP/1.1 101")) reject(new Error(text));
      else resolve(s);
    };
    s.on("data", onData);
    s.once("error", reject);
  });
}

/** A terminal as the site's page opens it; resolves with the socket once `needle` shows. */
function session(demo, headers, input, needle) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${worker.base.replace("http", "ws")}/terminal/${demo}`, { origin: worker.base, headers });
    ws.binaryType = "nodebuffer";
    let output = "";
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no ${needle} in ${JSON.stringify(output)}`)); }, 20_000);
    ws.once("open", () => {
      ws.send(JSON.stringify({ cols: 80, rows: 24 }));
      ws.send(Buffer.concat([Buffer.from([0x00]), Buffer.from(input)]));
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary && data[0] === 0x00) output += data.subarray(1).toString("utf8");
      if (output.includes(needle)) { clearTimeout(timer); resolve(ws); }
    });
    ws.once("close", (code, reason) => { clearTimeout(timer); reject(new Error(`closed ${code} ${reason}`)); });
    ws.once("unexpected-response", (_q, res) => { clearTimeout(timer); reject(new Error(`status ${res.statusCode}`)); });
    ws.once("error", (e) => { clearTimeout(timer); reject(e); });
  });
}

/** Opens the visitor's full quota of sessions at once (retrying briefly: leases come back
 * asynchronously); each must run a command. */
async function fullQuota(headers, what) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const open = [];
    try {
      for (let i = 0; i < MAX_PER_VISITOR; i++) {
        open.push(await session(FLOOD, headers, `echo M-$((6*${7 + i}))\r`, `M-${6 * (7 + i)}`));
      }
      return open;
    } catch (e) {
      for (const ws of open) ws.terminate();
      if (Date.now() > deadline) throw new Error(`${what}: ${e.message}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("threat 5: a client that stops reading is paused by the relay and loses its slot at the idle deadline", { timeout: 90_000 }, async () => {
  const me = visitor("stops-reading");
  const s = await rawTerminal(FLOOD, me);
  const startedOut = await pty.metric("folio_pty_bytes_out_total") ?? 0;
  s.write(frame(0x1, [...Buffer.from('{"cols":80,"rows":24}')]));
  s.write(frame(0x2, [0x00, ...Buffer.from("yes folio-flood-$((6*7))\r")]));
  const started = Date.now();
  // The flood runs against a client that reads nothing. Without flow control in the relay,
  // folio-pty would send as fast as `yes` writes (the Worker reads it eagerly); with it, the
  // origin is paused once the client socket's backlog passes the high-water mark.
  // The sandbox takes a moment to start on a loaded machine, and the buffers on the way
  // (PTY, sockets, the Worker's) take a moment to fill: the 1.2 s window starts once the
  // flood is under way and has stopped growing (or 2 s later, when it never stops). It must
  // end while the session is alive: one ended at its idle deadline sends nothing either,
  // which would pass for a pause.
  const sent = async () => (await pty.metric("folio_pty_bytes_out_total")) - startedOut;
  let early;
  while ((early = await sent()) <= 64 * 1024) {
    assert.ok(Date.now() - started < (IDLE_SECS - 4.5) * 1000,
      `the flood never started (${early} bytes):\n${pty.log()}`);
    await sleep(50);
  }
  const flowingAt = Date.now() - started;
  for (const settleBy = Date.now() + 2_000; Date.now() < settleBy;) {
    await sleep(200);
    const now = await sent();
    const stopped = now - early < 64 * 1024;
    early = now;
    if (stopped) break;
  }
  const windowAt = Date.now() - started;
  await sleep(1_200);
  const later = await sent();
  const alive = await pty.active();
  console.log(`# folio-pty: the flood under way after ${flowingAt} ms; ${early} bytes sent by ` +
    `${windowAt} ms, ${later} 1.2 s later, to a client that reads nothing`);
  assert.ok(alive >= 1, "the session was still running when the window closed");
  assert.ok(later < 48 << 20, `folio-pty sent ${later} bytes toward a client that reads nothing`);
  assert.ok(later - early < 1 << 20,
    `the origin was not paused: it sent ${later - early} more bytes in 1.2 s to a client that reads nothing`);
  // folio-pty ends the session at its idle deadline (no input since the flood began).
  while ((await pty.active()) > 0) {
    assert.ok(Date.now() - started < (IDLE_SECS + 8) * 1000, `the session outlived its idle deadline:\n${pty.log()}`);
    await sleep(200);
  }
  assert.ok(Date.now() - started >= (IDLE_SECS - 0.5) * 1000, "ended before the idle deadline");
  assert.match(pty.log(), /"event":"session_end"[^\n]*"reason":"idle"|"reason":"idle"[^\n]*"event":"session_end"/);
  // …and the Worker gave the lease back: the same visitor has its full quota again.
  const open = await fullQuota(me, "the lease of the client that stopped reading was not given back");
  for (const ws of open) ws.close(1000);
  s.destroy();
});

test("threat 6: a lease is given back on every path out of a request that got one", { timeout: 120_000 }, async () => {
  const me = visitor("lease");
  const attempts = MAX_PER_VISITOR + 1;
  // 1. The request fails right after the lease is granted (TEST_FAULTS: what a failing
  //    WebSocketPair::new or accept() would do; it used to return through `?`).
  for (let i = 0; i < attempts; i++) {
    const got = await new Promise((resolve) => {
      const ws = new WebSocket(`${worker.base.replace("http", "ws")}/terminal/${FLOOD}`, {
        origin: worker.base, headers: { ...me, "X-Folio-Test-Fault": "after-lease" },
      });
      ws.once("unexpected-response", (_q, res) => resolve(`status ${res.statusCode}`));
      // Accepted: refused at once with a close code (a lease cap), or a session.
      ws.once("close", (code, reason) => resolve(`close ${code} ${reason}`));
      ws.once("error", () => resolve("error"));
    });
    assert.equal(got, "status 500",
      `failed request ${i + 1} of ${attempts} after its lease was granted` +
      (got.startsWith("close 4429") ? ": the earlier ones kept their leases" : ""));
  }
  // 2. The origin refuses (folio-pty has no such demo: 404, the browser sees 4502).
  for (let i = 0; i < attempts; i++) {
    const close = await new Promise((resolve, reject) => {
      const ws = new WebSocket(`${worker.base.replace("http", "ws")}/terminal/${REFUSED}`, { origin: worker.base, headers: me });
      ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
      ws.once("unexpected-response", (_q, res) => reject(new Error(`status ${res.statusCode}`)));
    });
    assert.deepEqual(close, { code: 4502, reason: "origin_unavailable" });
  }
  // 3. The client vanishes mid-session (no close frame). Each next one may have to wait for
  //    the previous lease to come back (asynchronously).
  for (let i = 0; i < attempts; i++) {
    let ws;
    for (const until = Date.now() + 10_000; !ws;) {
      ws = await session(FLOOD, me, "echo M-$((5*5))\r", "M-25").catch((e) => {
        if (Date.now() > until) throw e;
        return sleep(300);
      });
    }
    ws._socket.destroy();
  }
  const open = await fullQuota(me, "a lease was not given back");
  for (const ws of open) ws.close(1000);
});
