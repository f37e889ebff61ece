//! The rules of folio's edge, apart from any runtime: what the Cloudflare Worker
//! (`edge-worker`, a thin wasm glue) decides, and what `folio serve` decides the same way
//! locally.
//!
//! * [`routes`] — which request is which route; [`api`] — the JSON bodies and errors;
//! * [`counter`] — one visit counts once, the Durable Object's SQL, the write-through to KV;
//! * [`limits`] — the session caps (concurrent, per client, starts per minute);
//!   [`visitor`] — the visitor key (counts a view) and the address key (every limit);
//! * [`headers`] — the security policy on every response;
//! * [`relay`] — what the terminal relay admits, forwards and closes with; [`token`] — the
//!   origin token as the Worker mints it; [`terminal_status`] — whether a live session
//!   could start now (the page's "live" badge);
//! * [`config`] — the one typed edge manifest (`_folio/edge.json`), written by `folio build`
//!   and read by the Worker with the same type, and the deployment's settings.
//!
//! Time and randomness come in as arguments, so every rule runs natively in tests and in
//! wasm alike.

#![deny(missing_docs)]

pub mod api;
pub mod config;
pub mod contact;
pub mod counter;
pub mod headers;
pub mod limits;
pub mod relay;
pub mod routes;
pub mod terminal_status;
pub mod token;
pub mod visitor;

/// The edge's version, reported by `/api/health` so an operator can tell which build
/// answers.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
