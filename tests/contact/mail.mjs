// Shared by the contact form's end-to-end tests (tests/worker/contact.test.mjs, and the
// folio serve checks): minting form tokens as folio-edge does, finding and reading the
// .eml files a run wrote.
import { createHmac, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

/** A form token `v1.<issued>.<nonce>.<mac>`, issued `age` seconds ago. */
export function mintContactToken(secret, age = 10, nonce = randomBytes(16).toString("hex")) {
  const issued = String(Math.floor(Date.now() / 1000) - age);
  const mac = createHmac("sha256", secret)
    .update(Buffer.concat([Buffer.from("folio contact form v1\0"), Buffer.from(issued), Buffer.from("\0"), Buffer.from(nonce)]))
    .digest("hex");
  return `v1.${issued}.${nonce}.${mac}`;
}

/** Every .eml under `dirs` (recursively, to a small depth) modified since `since` ms. */
export function findEmails(dirs, since = 0, depth = 7) {
  const out = [];
  const walk = (dir, d) => {
    let entries;
    try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && d > 0) walk(p, d - 1);
      else if (e.isFile() && e.name.endsWith(".eml")) {
        try { if (statSync(p).mtimeMs >= since) out.push(p); } catch { /* gone */ }
      }
    }
  };
  for (const dir of dirs) walk(dir, depth);
  return [...new Set(out)];
}

/** Decodes RFC 2047 B-encoded words. */
function decodeWords(s) {
  return s
    .replace(/(\?=)\s+(?==\?)/g, "$1")
    .replace(/=\?UTF-8\?B\?([^?]*)\?=/gi, (_, b) => Buffer.from(b, "base64").toString("utf8"));
}

/** Headers (lower-cased names, unfolded, decoded) and the base64 body decoded as UTF-8. */
export function parseEmail(file) {
  const raw = readFileSync(file, "utf8");
  const sep = raw.indexOf("\r\n\r\n");
  const head = raw.slice(0, sep).replace(/\r\n[ \t]/g, " ");
  const headers = {};
  for (const line of head.split("\r\n")) {
    const i = line.indexOf(":");
    headers[line.slice(0, i).toLowerCase()] = decodeWords(line.slice(i + 1).trim());
  }
  const body = Buffer.from(raw.slice(sep + 4).replace(/\s+/g, ""), "base64").toString("utf8");
  return { raw, headers, body };
}
