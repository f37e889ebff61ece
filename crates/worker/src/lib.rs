//! folio's Cloudflare Worker code: the Workers-runtime glue around the rules in `folio-edge`.
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
//! Why a library: a deployable Worker is a `cdylib` whose entry point and Durable Object
//! classes must be declared in that crate. folio's own `edge-worker` and every site that
//! `folio new` writes are that thin crate (the same file, `edge-worker/src/lib.rs`), and all
//! the logic lives here, so an author's site holds no copy of it to fall behind. Every
//! decision is made by `folio-edge` (plain Rust, tested natively); this crate compiles to
//! nothing but for `wasm32`. One file per concern: `fetch` (entry point and API handlers),
//! `terminal` (the relay), `view_counter` and `session_limiter` (the Durable Objects'
//! behaviour), `runtime` (what they share).

#![cfg(target_arch = "wasm32")]

mod contact;
mod fetch;
mod outbox;
mod runtime;
mod session_limiter;
mod terminal;
mod view_counter;

pub use fetch::fetch;
pub use outbox::ContactOutbox;
pub use session_limiter::SessionLimiter;
pub use view_counter::ViewCounter;
