//! folio's edge Worker: the dynamic parts of a static portfolio served by Cloudflare.
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
//! Every decision lives in plain Rust modules that compile and unit-test natively
//! (`cargo test -p edge-worker`). The only code that touches the Workers runtime is in
//! [`glue`] (compiled for `wasm32` only), which stays a thin translation layer.

#![deny(missing_docs)]

pub mod api;
pub mod config;
pub mod counter;
pub mod headers;
pub mod limits;
pub mod relay;
pub mod routes;
pub mod token;
pub mod visitor;

#[cfg(target_arch = "wasm32")]
// `#[durable_object]` generates undocumented wasm-bindgen exports.
#[allow(missing_docs)]
pub mod glue;

/// The Worker's version, reported by `/api/health` so an operator can tell which build
/// answers.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
