//! folio's edge Worker: the Workers-runtime glue around the rules in `folio-edge`.
//!
//! * `/api/views/*` — an exact view counter (one Durable Object per page, written through
//!   to KV, read from KV) that counts a visitor once per page per day without storing IPs;
//! * `/api/*` rate limits (the `[[ratelimits]]` binding) and a Durable Object capping
//!   concurrent terminal sessions;
//! * the security headers `folio build` wrote into `_headers`, on every Worker response;
//! * `/terminal/<demo>` — a WebSocket relay to the self-hosted terminal origin
//!   (`folio-pty` behind a Cloudflare Tunnel) with a short-lived HMAC token;
//! * `/api/health`.
//!
//! Every decision lives in `folio-edge` (plain Rust, unit-tested natively, shared with
//! `folio serve`). This crate is the deployable `cdylib` only and compiles to nothing but
//! for `wasm32`: one file per concern, each a thin translation between the runtime and the
//! rules — [`fetch`](crate) (entry point and API handlers), `terminal` (the relay),
//! `view_counter` and `session_limiter` (the Durable Objects), `runtime` (what they share).

#![cfg(target_arch = "wasm32")]
// `#[durable_object]` and `#[event]` generate undocumented wasm-bindgen exports.
#![allow(missing_docs, unreachable_pub)]

mod fetch;
mod runtime;
mod session_limiter;
mod terminal;
mod view_counter;
