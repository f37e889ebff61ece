//! What every part of the Worker shares with the runtime: binding names, the deployment's
//! variables, the edge manifest (loaded once per isolate), the per-request context, and the
//! one way a runtime failure becomes a logged, generic 500.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::Either;
use worker::{
    console_error, Date, Delay, Env, Fetch, Headers, Request, RequestInit, Response, State,
};

use folio_edge::api::ApiError;
use folio_edge::config::{EdgeManifest, Settings};
use folio_edge::token;

/// Binding names, as in `wrangler.toml`.
pub(crate) mod binding {
    pub(crate) const ASSETS: &str = "ASSETS";
    pub(crate) const VIEWS: &str = "VIEWS";
    pub(crate) const COUNTER: &str = "COUNTER";
    pub(crate) const SESSIONS: &str = "SESSIONS";
    pub(crate) const API_LIMITER: &str = "API_LIMITER";
    pub(crate) const TERMINAL_LIMITER: &str = "TERMINAL_LIMITER";
    pub(crate) const OUTBOX: &str = "OUTBOX";
    pub(crate) const CONTACT_EMAIL: &str = "CONTACT_EMAIL";
}

pub(crate) type ApiResult<T> = std::result::Result<T, ApiError>;

/// Logs a runtime failure as one JSON line (what, and the error) and turns it into a
/// generic 500: details stay in the log, never in a response.
pub(crate) fn internal(what: &str, err: impl std::fmt::Display) -> ApiError {
    console_error!(
        "{}",
        serde_json::json!({"level": "error", "event": what, "error": err.to_string()})
    );
    ApiError::internal()
}

pub(crate) fn now_unix() -> u64 {
    Date::now().as_millis() / 1000
}

pub(crate) fn env_string(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .or_else(|| env.secret(name).ok().map(|v| v.to_string()))
        .filter(|s| !s.is_empty())
}

pub(crate) fn random_bytes<const N: usize>() -> ApiResult<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).map_err(|e| internal("getrandom", e))?;
    Ok(buf)
}

thread_local! {
    /// The edge manifest, loaded once per isolate. Assets and Worker are deployed
    /// together, and a deploy starts new isolates, so it can never be stale.
    static MANIFEST: RefCell<Option<Rc<EdgeManifest>>> = const { RefCell::new(None) };
}

/// The site's edge manifest, read from the static assets (`<BASE_PATH>/_folio/edge.json`) on the
/// first request of an isolate and kept.
///
/// Why read it at run time rather than embed it in the wasm at build time: the assets are
/// the one thing `folio build` writes, so the headers Cloudflare's asset layer sends (from
/// `_headers`) and the ones this Worker sends come from the same deploy by construction;
/// an embedded copy could drift whenever the site is rebuilt without rebuilding the
/// Worker, and would force a wasm rebuild for every content change. The cost is one
/// in-process assets fetch per isolate.
pub(crate) async fn manifest(env: &Env, settings: &Settings) -> Result<Rc<EdgeManifest>, String> {
    if let Some(m) = MANIFEST.with(|m| m.borrow().clone()) {
        return Ok(m);
    }
    let path = settings.manifest_path();
    let assets = env.assets(binding::ASSETS).map_err(|e| e.to_string())?;
    let mut resp = assets
        .fetch(format!("https://assets.invalid{path}"), None)
        .await
        .map_err(|e| format!("fetching {path}: {e}"))?;
    if resp.status_code() != 200 {
        return Err(format!("fetching {path}: status {}", resp.status_code()));
    }
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let parsed = Rc::new(EdgeManifest::parse(&text).map_err(|e| e.to_string())?);
    MANIFEST.with(|m| *m.borrow_mut() = Some(parsed.clone()));
    Ok(parsed)
}

/// What every handler needs to know about the request and the deployment.
pub(crate) struct Ctx {
    pub(crate) env: Env,
    /// The request's execution context (`waitUntil`), shared with tasks that outlive it.
    pub(crate) exec: Rc<worker::Context>,
    pub(crate) manifest: Option<Rc<EdgeManifest>>,
    pub(crate) settings: Settings,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) origin: Option<String>,
    /// The visitor key (IP and User-Agent), hex: counts a view once, nothing else.
    pub(crate) visitor: String,
    /// The address key (IPv4, or IPv6 /64), hex: what every limit and cap counts on.
    pub(crate) client: String,
    /// The same key as bytes: the client claim signed into the origin's token.
    pub(crate) client_key: folio_edge::visitor::VisitorKey,
    pub(crate) today: String,
    pub(crate) salt_configured: bool,
}

/// Runs a `;`-separated schema on a Durable Object's SQLite storage (each statement is
/// idempotent: `CREATE … IF NOT EXISTS`); a failure is logged, and the first query reports it.
pub(crate) fn exec_schema(state: &State, schema: &str) {
    let sql = state.storage().sql();
    for stmt in schema.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        if let Err(e) = sql.exec(stmt, None) {
            internal("schema", e);
        }
    }
}

/// Asks a rate-limit binding whether this client (address key) may go on. A missing binding or a
/// runtime failure lets the request through (and is logged): the counter and the session
/// cap protect themselves, and an outage of the limiter should not take the site's API
/// down with it.
pub(crate) async fn rate_limit(ctx: &Ctx, name: &str) -> bool {
    let limiter = match ctx.env.rate_limiter(name) {
        Ok(l) => l,
        Err(e) => {
            internal("rate_limit_binding", e);
            return true;
        }
    };
    match limiter.limit(ctx.client.clone()).await {
        Ok(outcome) => outcome.success,
        Err(e) => {
            internal("rate_limit", e);
            true
        }
    }
}

pub(crate) async fn with_timeout<T>(
    fut: impl std::future::Future<Output = T>,
    timeout: Duration,
) -> Option<T> {
    let fut = std::pin::pin!(fut);
    let delay = std::pin::pin!(Delay::from(timeout));
    match futures_util::future::select(fut, delay).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

/// A plain GET of a URL on the terminal origin, carrying the Cloudflare Access service token
/// when one is configured (the tunnel refuses anything else): the health check's and the
/// terminal status's probes. `None` when the request cannot be made or sent.
pub(crate) async fn origin_get(env: &Env, url: &str) -> Option<Response> {
    let headers = Headers::new();
    if let Some(a) = access_credentials(env) {
        headers.set("CF-Access-Client-Id", &a.client_id).ok();
        headers
            .set("CF-Access-Client-Secret", &a.client_secret)
            .ok();
    }
    let mut init = RequestInit::new();
    init.with_headers(headers);
    let req = Request::new_with_init(url, &init).ok()?;
    Fetch::Request(req).send().await.ok()
}

pub(crate) fn access_credentials(env: &Env) -> Option<token::AccessCredentials> {
    token::AccessCredentials::from_parts(
        env_string(env, "CF_ACCESS_CLIENT_ID"),
        env_string(env, "CF_ACCESS_CLIENT_SECRET"),
    )
}
