// A token in terminal-protocol's format (v2: demo, expiry, nonce, client claim), minted in
// JS with a chosen secret: used only to show that the origin refuses tokens not signed with
// the shared secret.
import { createHmac, randomBytes } from "node:crypto";

export function mintWith(secret, demo, ttl = 30, client = randomBytes(32)) {
  const expires = String(Math.floor(Date.now() / 1000) + ttl);
  const nonce = randomBytes(16).toString("base64url");
  const clientB64 = Buffer.from(client).toString("base64url");
  const sig = createHmac("sha256", secret)
    .update(["folio-terminal-v2", demo, expires, nonce, clientB64].join("\0"))
    .digest("base64url");
  return ["v2", demo, expires, nonce, clientB64, sig].join(".");
}
