//! The deployable Cloudflare Worker: folio's Worker code (`folio-worker`) wired to the
//! runtime — the fetch entry point and the two Durable Object classes `wrangler.toml` binds.
//!
//! This file is the whole crate, here and in every site `folio new` writes (it copies this
//! file): the logic is in `folio-worker`, so upgrading folio upgrades the edge.

#![cfg(target_arch = "wasm32")]
// `#[event]` and `#[durable_object]` generate undocumented wasm-bindgen exports.
#![allow(missing_docs, unreachable_pub)]

use worker::{
    durable_object, event, Context, DurableObject, Env, Request, Response, Result, State,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    folio_worker::fetch(req, env, ctx).await
}

/// One page's exact view count.
#[durable_object]
pub struct ViewCounter(folio_worker::ViewCounter);

impl DurableObject for ViewCounter {
    fn new(state: State, env: Env) -> Self {
        Self(folio_worker::ViewCounter::new(state, env))
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        self.0.fetch(req).await
    }
}

/// The cap on concurrent terminal sessions.
#[durable_object]
pub struct SessionLimiter(folio_worker::SessionLimiter);

impl DurableObject for SessionLimiter {
    fn new(state: State, env: Env) -> Self {
        Self(folio_worker::SessionLimiter::new(state, env))
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        self.0.fetch(req).await
    }
}

/// The contact form's outbox: each message sent once, kept and retried on failure.
#[durable_object]
pub struct ContactOutbox(folio_worker::ContactOutbox);

impl DurableObject for ContactOutbox {
    fn new(state: State, env: Env) -> Self {
        Self(folio_worker::ContactOutbox::new(state, env))
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        self.0.fetch(req).await
    }

    async fn alarm(&self) -> Result<Response> {
        self.0.alarm().await
    }
}
