// A token in terminal-protocol's format, minted in JS with a chosen secret: used only to
// show that the origin refuses tokens not signed with the shared secret.
import { createHmac, randomBytes } from "node:crypto";

export function mintWith(secret, demo, ttl = 30) {
  const expires = String(Math.floor(Date.now() / 1000) + ttl);
  const nonce = randomBytes(16).toString("base64url");
  const sig = createHmac("sha256", secret)
    .update(["folio-terminal-v1", demo, expires, nonce].join("\0"))
    .digest("base64url");
  return ["v1", demo, expires, nonce, sig].join(".");
}
