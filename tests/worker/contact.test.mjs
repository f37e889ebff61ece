// The contact form end to end under `wrangler dev`: POST /api/contact through the real
// Worker, the ContactOutbox Durable Object and Miniflare's send_email binding (which writes
// each message to an .eml file). Every bad input gets its own error; a good message is
// delivered once, even when the client retries.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import os from "node:os";
import path from "node:path";
import { ROOT, newSecret, readManifest, startWorker } from "./harness.mjs";
import { findEmails, mintContactToken, parseEmail } from "../contact/mail.mjs";

const manifest = readManifest();
const contact = manifest.contact;
let worker;
let secret;
const started = Date.now();

before(async () => {
  assert.ok(contact, "the example site enables [contact]");
  secret = newSecret();
  worker = await startWorker({ terminalOrigin: "http://127.0.0.1:9", secret });
});
after(async () => { await worker?.stop(); });

/**
 * The messages this run delivered that hold `marker`. Miniflare writes each one to its
 * temporary folder and mirrors it into the project's; copies of one message are one
 * delivery (Miniflare gives each delivery its own Message-ID, so a second one differs).
 */
function delivered(marker) {
  const dirs = [path.join(ROOT, ".wrangler"), os.tmpdir()];
  const seen = new Map();
  for (const m of findEmails(dirs, started).map(parseEmail)) {
    if (m.body.includes(marker)) seen.set(m.raw, m);
  }
  return [...seen.values()];
}

let ua = 0;
/**
 * Posts the form; each call its own User-Agent, which changes nothing: every limit counts on
 * the address (the burst test below relies on it). This file stays under the API limit.
 */
function post(fields, { json = true, origin = worker.base, headers = {}, body } = {}) {
  return fetch(`${worker.base}/api/contact`, {
    method: "POST",
    redirect: "manual",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      "User-Agent": `contact-test-${ua++}`,
      ...(origin ? { Origin: origin } : {}),
      ...(json ? { Accept: "application/json" } : {}),
      ...headers,
    },
    body: body ?? new URLSearchParams(fields),
  });
}

const good = (marker, extra = {}) => ({
  name: "Zoé Müller", email: "zoe@example.org", subject: "Hello from the tests",
  message: `Bonjour Ada — ça va ? 你好 ${marker}`, page: "/contact/",
  token: mintContactToken(secret), ...extra,
});

async function waitFor(fn, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v.length || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("the contact page carries a fresh signed token and form-action 'self'", async () => {
  const r = await fetch(`${worker.base}/contact/`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-security-policy"), /form-action 'self'/);
  const html = await r.text();
  assert.match(html, /<input value="v1\.\d+\.[0-9a-f]{32}\.[0-9a-f]{64}"/);
});

test("a good message is delivered once, with the right To, Reply-To, Subject and UTF-8 body", async () => {
  const marker = `m-${Date.now()}-good`;
  const fields = good(marker);
  const r = await post(fields);
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal((await r.json()).ok, true);
  const [mail, ...more] = await waitFor(() => delivered(marker));
  assert.ok(mail, "Miniflare wrote the message to a file");
  assert.equal(more.length, 0);
  assert.match(mail.headers.to, /ada@example\.dev/);
  assert.match(mail.headers.from, /contact@ada\.example\.dev/);
  assert.doesNotMatch(mail.headers.from, /zoe@/);
  assert.equal(mail.headers["reply-to"], "Zoé Müller <zoe@example.org>");
  assert.equal(mail.headers.subject, "[ada.example.dev] Hello from the tests");
  assert.ok(mail.body.includes(`Bonjour Ada — ça va ? 你好 ${marker}`), mail.body);

  // The client retries (same token): accepted, never delivered twice.
  const again = await post(fields);
  assert.equal(again.status, 200);
  await new Promise((res) => setTimeout(res, 800));
  assert.equal(delivered(marker).length, 1);
});

test("each bad input gets its error", async () => {
  const marker = `m-${Date.now()}-bad`;
  const cases = [
    [{ ...good(marker), name: "" }, 400, "invalid_fields", "name"],
    [{ ...good(marker), email: "not an address" }, 400, "invalid_fields", "email"],
    [{ ...good(marker), name: "Eve\r\nBcc: victim@example.com" }, 400, "invalid_fields", "name"],
    [{ ...good(marker), subject: "Hi\nBcc: victim@example.com" }, 400, "invalid_fields", "subject"],
    [{ ...good(marker), message: "see http://a.example http://b.example http://c.example http://d.example" }, 400, "invalid_fields", "message"],
    [{ ...good(marker), token: mintContactToken(secret, 0) }, 400, "too_fast"],
    [{ ...good(marker), token: mintContactToken(secret, contact.max_age_secs + 60) }, 400, "form_expired"],
    [{ ...good(marker), token: mintContactToken("not the secret, but long enough.....") }, 400, "invalid_token"],
  ];
  for (const [fields, status, code, field] of cases) {
    const r = await post(fields);
    const body = await r.json();
    assert.equal(r.status, status, JSON.stringify(body));
    assert.equal(body.error, code);
    if (field) assert.ok(body.fields[field], JSON.stringify(body));
  }
  const big = await post(null, { body: `message=${"a".repeat(100 * 1024)}` });
  assert.equal(big.status, 413);
  assert.equal((await big.json()).error, "body_too_large");
  const foreign = await post(good(marker), { origin: "https://evil.example" });
  assert.equal(foreign.status, 403);
  assert.equal((await foreign.json()).error, "forbidden_origin");
  const noOrigin = await post(good(marker), { origin: null });
  assert.equal(noOrigin.status, 403);
  await new Promise((res) => setTimeout(res, 500));
  assert.equal(delivered(marker).length, 0, "nothing bad was delivered");
});

test("a filled honeypot gets an accepted-looking answer and nothing is delivered", async () => {
  const marker = `m-${Date.now()}-honeypot`;
  const r = await post({ ...good(marker), website: "http://spam.example" });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).ok, true);
  await new Promise((res) => setTimeout(res, 800));
  assert.equal(delivered(marker).length, 0);
});

test("without JavaScript: 303 to the thank-you page, or the form again with errors and text kept", async () => {
  const marker = `m-${Date.now()}-nojs`;
  const ok = await post(good(marker), { json: false });
  assert.equal(ok.status, 303);
  assert.equal(ok.headers.get("location"), contact.thanks);
  assert.equal((await waitFor(() => delivered(marker))).length, 1);

  const bad = await post({ ...good(`${marker}-x`), email: "nope" }, { json: false });
  assert.equal(bad.status, 400);
  const html = await bad.text();
  assert.match(html, /aria-invalid="true"[^>]*data-folio-invalid=email|aria-invalid="true" aria-describedby=contact-email-error/);
  assert.ok(html.includes(`${marker}-x`), "the message is kept");
  assert.match(html, /value="nope"/);
  assert.match(html, /does not look like an email address/);
});

test("a burst over the per-address limit is a 429 with Retry-After, whatever the User-Agent", async () => {
  let last;
  for (let i = 0; i < contact.per_address_per_hour + 1; i++) {
    last = await post(good(`m-${Date.now()}-burst-${i}`));
    if (last.status === 429) break;
    assert.equal(last.status, 200, await last.text());
  }
  assert.equal(last.status, 429);
  assert.ok(Number(last.headers.get("retry-after")) > 0);
  assert.equal((await last.json()).error, "contact_rate_limited");
});
