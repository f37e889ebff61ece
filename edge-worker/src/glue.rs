//! The Workers-runtime glue: the fetch handler, the two Durable Object classes and the
//! WebSocket relay loop. Compiled for `wasm32` only. Every decision is delegated to the
//! plain modules (`routes`, `counter`, `visitor`, `limits`, `headers`, `relay`, `token`);
//! this file only moves data between them and the runtime.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::{future::Either, StreamExt};
use wasm_bindgen::{JsCast, JsValue};
use worker::{
    console_error, console_log, durable_object, event, Context, Date, Delay, DurableObject, Env,
    Fetch, Headers, Method as HttpMethod, Request, RequestInit, Response, State, WebSocket,
    WebSocketPair, WebsocketEvent,
};

use crate::api::{ApiError, HealthBody, ViewsBatchBody, ViewsBody};
use crate::config::{self, EdgeManifest, Settings, MANIFEST_PATH};
use crate::counter::{self, VisitOutcome, VisitRequest, WriteThrough};
use crate::headers;
use crate::limits::{self, LeaseOutcome, LeaseRequest};
use crate::relay::{self, FrameAction, Side};
use crate::routes::{self, Method, Route};
use crate::token;
use crate::visitor;

/// Binding names, as in `wrangler.toml`.
mod binding {
    pub const ASSETS: &str = "ASSETS";
    pub const VIEWS: &str = "VIEWS";
    pub const COUNTER: &str = "COUNTER";
    pub const SESSIONS: &str = "SESSIONS";
    pub const API_LIMITER: &str = "API_LIMITER";
    pub const TERMINAL_LIMITER: &str = "TERMINAL_LIMITER";
}

type ApiResult<T> = std::result::Result<T, ApiError>;

/// Logs a runtime failure as one JSON line (what, and the error) and turns it into a
/// generic 500: details stay in the log, never in a response.
fn internal(what: &str, err: impl std::fmt::Display) -> ApiError {
    console_error!(
        "{}",
        serde_json::json!({"level": "error", "event": what, "error": err.to_string()})
    );
    ApiError::internal()
}

fn now_unix() -> u64 {
    Date::now().as_millis() / 1000
}

fn env_string(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .or_else(|| env.secret(name).ok().map(|v| v.to_string()))
        .filter(|s| !s.is_empty())
}

fn random_bytes<const N: usize>() -> ApiResult<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).map_err(|e| internal("getrandom", e))?;
    Ok(buf)
}

thread_local! {
    /// The edge manifest, loaded once per isolate. Assets and Worker are deployed
    /// together, and a deploy starts new isolates, so it can never be stale.
    static MANIFEST: RefCell<Option<Rc<EdgeManifest>>> = const { RefCell::new(None) };
}

/// The site's edge manifest, read from the static assets (`/_folio/edge.json`) on the
/// first request of an isolate and kept.
///
/// Why read it at run time rather than embed it in the wasm at build time: the assets are
/// the one thing `folio build` writes, so the headers Cloudflare's asset layer sends (from
/// `_headers`) and the ones this Worker sends come from the same deploy by construction;
/// an embedded copy could drift whenever the site is rebuilt without rebuilding the
/// Worker, and would force a wasm rebuild for every content change. The cost is one
/// in-process assets fetch per isolate.
async fn manifest(env: &Env) -> Result<Rc<EdgeManifest>, String> {
    if let Some(m) = MANIFEST.with(|m| m.borrow().clone()) {
        return Ok(m);
    }
    let assets = env.assets(binding::ASSETS).map_err(|e| e.to_string())?;
    let mut resp = assets
        .fetch(format!("https://assets.invalid{MANIFEST_PATH}"), None)
        .await
        .map_err(|e| format!("fetching {MANIFEST_PATH}: {e}"))?;
    if resp.status_code() != 200 {
        return Err(format!(
            "fetching {MANIFEST_PATH}: status {}",
            resp.status_code()
        ));
    }
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let parsed = Rc::new(EdgeManifest::parse(&text).map_err(|e| e.to_string())?);
    MANIFEST.with(|m| *m.borrow_mut() = Some(parsed.clone()));
    Ok(parsed)
}

/// What every handler needs to know about the request and the deployment.
struct Ctx {
    env: Env,
    manifest: Option<Rc<EdgeManifest>>,
    settings: Settings,
    allowed_origins: Vec<String>,
    origin: Option<String>,
    visitor: String,
    today: String,
    salt_configured: bool,
}

/// The Worker's entry point. Cloudflare's asset layer serves everything else; this runs
/// for `/api/*` and `/terminal/*` only (`run_worker_first` in `wrangler.toml`).
#[event(fetch)]
pub async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    match serve(req, env).await {
        Ok(resp) => Ok(resp),
        // Only the runtime itself failing gets here (e.g. a header it refuses): still
        // answer with JSON and the strict fallback policy rather than a bare 500.
        Err(e) => {
            let mut resp = error_response(&internal("fetch", e))?;
            for (name, value) in headers::response_headers(None, &[]) {
                resp.headers_mut().set(&name, &value)?;
            }
            Ok(resp)
        }
    }
}

async fn serve(req: Request, env: Env) -> worker::Result<Response> {
    let url = req.url()?;
    let manifest = match manifest(&env).await {
        Ok(m) => Some(m),
        Err(e) => {
            console_error!(
                "{}",
                serde_json::json!({"level": "error", "event": "manifest", "error": e})
            );
            None
        }
    };
    let settings = Settings::from_lookup(|k| env_string(&env, k));
    let origin = req.headers().get("Origin")?;
    let allowed_origins =
        headers::allowed_origins(manifest.as_deref(), url.as_str(), &settings.extra_origins);

    // The visitor key: daily salt (from a secret) over IP and User-Agent. Never the IP.
    let now = now_unix();
    let today = visitor::utc_day(now);
    let secret = env_string(&env, "VISITOR_SECRET").or_else(|| env_string(&env, "TERMINAL_SECRET"));
    let salt = visitor::daily_salt(secret.as_deref().unwrap_or("").as_bytes(), &today);
    let ip_header = req.headers().get("CF-Connecting-IP")?;
    let ua = req.headers().get("User-Agent")?.unwrap_or_default();
    let visitor = visitor::hex(&visitor::visitor_key(
        &salt,
        visitor::client_ip(ip_header.as_deref()),
        &ua,
    ));

    let method = Method::parse(req.method().as_ref());
    let routed = routes::route(method, url.path(), url.query().unwrap_or(""));
    let preflight = matches!(routed, Ok(Route::Preflight));
    let cors = if url.path().starts_with("/api/") {
        headers::cors_headers(origin.as_deref(), &allowed_origins, preflight)
    } else {
        Vec::new()
    };
    let ctx = Ctx {
        env,
        manifest,
        settings,
        allowed_origins,
        origin,
        visitor,
        today,
        salt_configured: secret.is_some(),
    };

    let result = match routed {
        Ok(route) => handle(&ctx, req, route, method).await,
        Err(e) => Err(e),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => error_response(&e)?,
    };
    for (name, value) in headers::response_headers(ctx.manifest.as_deref(), &cors) {
        resp.headers_mut().set(&name, &value)?;
    }
    Ok(resp)
}

fn error_response(e: &ApiError) -> worker::Result<Response> {
    let mut resp = Response::from_bytes(e.body().into_bytes())?.with_status(e.status);
    let h = resp.headers_mut();
    h.set("Content-Type", "application/json; charset=utf-8")?;
    if let Some(s) = e.retry_after {
        h.set("Retry-After", &s.to_string())?;
    }
    for (name, value) in &e.extra_headers {
        h.set(name, value)?;
    }
    Ok(resp)
}

fn json_response<T: serde::Serialize>(body: &T) -> ApiResult<Response> {
    Response::from_json(body).map_err(|e| internal("serialise", e))
}

async fn handle(ctx: &Ctx, req: Request, route: Route, method: Method) -> ApiResult<Response> {
    if let Route::Preflight = route {
        return Response::empty()
            .map(|r| r.with_status(204))
            .map_err(|e| internal("preflight", e));
    }
    if let Route::Terminal(demo) = &route {
        // The site's own page asking for a terminal: refusals reach it as close codes.
        let upgrade = req.headers().get("Upgrade").ok().flatten();
        let browser_upgrade = ctx
            .origin
            .as_deref()
            .is_some_and(|o| headers::origin_allowed(o, &ctx.allowed_origins))
            && relay::wants_websocket(upgrade.as_deref());
        return match terminal(ctx, req, demo).await {
            Err(e) if browser_upgrade => match relay::refusal_close(&e) {
                Some((code, reason)) => refuse_over_websocket(code, &reason),
                None => Err(e),
            },
            other => other,
        };
    }
    // A browser on a foreign site may not make visitors' browsers count views (CSRF).
    headers::check_write_origin(
        method == Method::Post,
        ctx.origin.as_deref(),
        &ctx.allowed_origins,
    )?;
    if !rate_limit(ctx, binding::API_LIMITER).await {
        return Err(limits::api_rate_limited(ctx.settings.api_rate_period_secs));
    }
    match route {
        Route::CountView(slug) => count_view(ctx, slug).await,
        Route::ReadView(slug) => read_view(ctx, slug).await,
        Route::ReadViews(slugs) => read_views(ctx, slugs).await,
        Route::Health => health(ctx).await,
        Route::Preflight | Route::Terminal(_) => unreachable!("handled above"),
    }
}

/// Asks a rate-limit binding whether this visitor may go on. A missing binding or a
/// runtime failure lets the request through (and is logged): the counter and the session
/// cap protect themselves, and an outage of the limiter should not take the site's API
/// down with it.
async fn rate_limit(ctx: &Ctx, name: &str) -> bool {
    let limiter = match ctx.env.rate_limiter(name) {
        Ok(l) => l,
        Err(e) => {
            internal("rate_limit_binding", e);
            return true;
        }
    };
    match limiter.limit(ctx.visitor.clone()).await {
        Ok(outcome) => outcome.success,
        Err(e) => {
            internal("rate_limit", e);
            true
        }
    }
}

fn require_page(ctx: &Ctx, slug: &str) -> ApiResult<()> {
    config::require_page(ctx.manifest.as_deref(), slug)
}

async fn count_view(ctx: &Ctx, slug: String) -> ApiResult<Response> {
    require_page(ctx, &slug)?;
    if !ctx.salt_configured {
        return Err(ApiError::misconfigured(
            "set VISITOR_SECRET or TERMINAL_SECRET (wrangler secret put)",
        ));
    }
    let ns = ctx
        .env
        .durable_object(binding::COUNTER)
        .map_err(|e| internal("counter_binding", e))?;
    let stub = ns
        .id_from_name(&slug)
        .and_then(|id| id.get_stub())
        .map_err(|e| internal("counter_stub", e))?;
    let body = serde_json::to_string(&VisitRequest {
        slug: slug.clone(),
        visitor: ctx.visitor.clone(),
        day: ctx.today.clone(),
    })
    .map_err(|e| internal("serialise", e))?;
    let mut init = RequestInit::new();
    init.with_method(HttpMethod::Post)
        .with_body(Some(JsValue::from_str(&body)));
    let req = Request::new_with_init("https://counter.invalid/visit", &init)
        .map_err(|e| internal("counter_request", e))?;
    let mut resp = stub
        .fetch_with_request(req)
        .await
        .map_err(|e| internal("counter_fetch", e))?;
    if resp.status_code() != 200 {
        let text = resp.text().await.unwrap_or_default();
        return Err(internal(
            "counter_status",
            format!("{}: {text}", resp.status_code()),
        ));
    }
    let outcome: VisitOutcome = resp.json().await.map_err(|e| internal("counter_body", e))?;
    json_response(&ViewsBody {
        slug,
        views: outcome.views,
        counted: Some(outcome.counted),
    })
}

async fn kv_count(ctx: &Ctx, slug: &str) -> ApiResult<u64> {
    let kv = ctx
        .env
        .kv(binding::VIEWS)
        .map_err(|e| internal("kv_binding", e))?;
    let stored = kv
        .get(&counter::kv_key(slug))
        .text()
        .await
        .map_err(|e| internal("kv_get", e))?;
    Ok(counter::parse_kv_count(stored.as_deref()))
}

async fn read_view(ctx: &Ctx, slug: String) -> ApiResult<Response> {
    require_page(ctx, &slug)?;
    let views = kv_count(ctx, &slug).await?;
    json_response(&ViewsBody {
        slug,
        views,
        counted: None,
    })
}

async fn read_views(ctx: &Ctx, slugs: Vec<String>) -> ApiResult<Response> {
    for slug in &slugs {
        require_page(ctx, slug)?;
    }
    let kv = ctx
        .env
        .kv(binding::VIEWS)
        .map_err(|e| internal("kv_binding", e))?;
    let keys: Vec<String> = slugs.iter().map(|s| counter::kv_key(s)).collect();
    let got = kv
        .get_bulk(&keys)
        .text()
        .await
        .map_err(|e| internal("kv_get_bulk", e))?;
    let views = slugs
        .into_iter()
        .map(|s| {
            let n =
                counter::parse_kv_count(got.get(&counter::kv_key(&s)).and_then(|v| v.as_deref()));
            (s, n)
        })
        .collect();
    json_response(&ViewsBatchBody { views })
}

async fn with_timeout<T>(
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

fn access_credentials(env: &Env) -> Option<token::AccessCredentials> {
    token::AccessCredentials::from_parts(
        env_string(env, "CF_ACCESS_CLIENT_ID"),
        env_string(env, "CF_ACCESS_CLIENT_SECRET"),
    )
}

async fn health(ctx: &Ctx) -> ApiResult<Response> {
    let kv_ok = matches!(
        with_timeout(
            async {
                match ctx.env.kv(binding::VIEWS) {
                    Ok(kv) => kv.get("health:probe").text().await.is_ok(),
                    Err(_) => false,
                }
            },
            Duration::from_secs(3)
        )
        .await,
        Some(true)
    );
    let first_demo = ctx
        .manifest
        .as_deref()
        .and_then(|m| m.demos.first().cloned());
    let probe = ctx
        .settings
        .terminal_origin
        .as_deref()
        .zip(first_demo)
        .and_then(|(o, demo)| relay::probe_url(o, &demo));
    let origin = match probe {
        None => "not_configured",
        Some(url) => {
            let probe = async {
                let headers = Headers::new();
                if let Some(a) = access_credentials(&ctx.env) {
                    headers.set("CF-Access-Client-Id", &a.client_id).ok();
                    headers
                        .set("CF-Access-Client-Secret", &a.client_secret)
                        .ok();
                }
                let mut init = RequestInit::new();
                init.with_headers(headers);
                let req = Request::new_with_init(&url, &init).ok()?;
                Fetch::Request(req)
                    .send()
                    .await
                    .ok()
                    .map(|r| r.status_code())
            };
            match with_timeout(probe, Duration::from_secs(3)).await.flatten() {
                Some(status) if relay::origin_answered(status) => "ok",
                _ => "down",
            }
        }
    };
    json_response(&HealthBody {
        ok: kv_ok && origin != "down" && ctx.manifest.is_some(),
        version: crate::VERSION,
        kv: if kv_ok { "ok" } else { "error" },
        origin,
        manifest: ctx.manifest.is_some(),
    })
}

// ---------------------------------------------------------------------------------------
// Terminal relay
// ---------------------------------------------------------------------------------------

async fn session_limiter(env: &Env, msg: &LeaseRequest) -> worker::Result<LeaseOutcome> {
    let stub = env
        .durable_object(binding::SESSIONS)?
        .id_from_name("global")?
        .get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(HttpMethod::Post)
        .with_body(Some(JsValue::from_str(&serde_json::to_string(msg)?)));
    let req = Request::new_with_init("https://sessions.invalid/lease", &init)?;
    let mut resp = stub.fetch_with_request(req).await?;
    if resp.status_code() != 200 {
        return Err(worker::Error::RustError(format!(
            "session limiter answered {}",
            resp.status_code()
        )));
    }
    resp.json().await
}

async fn release_lease(env: &Env, id: String) {
    if let Err(e) = session_limiter(env, &LeaseRequest::Release { id }).await {
        internal("lease_release", e);
    }
}

fn set_arraybuffer(ws: &WebSocket) {
    // With current compatibility dates binary messages arrive as Blob, which the `worker`
    // crate reads as empty: ask for ArrayBuffer on both sockets of the relay.
    let _ = js_sys::Reflect::set(
        ws.as_ref(),
        &JsValue::from_str("binaryType"),
        &JsValue::from_str("arraybuffer"),
    );
}

async fn terminal(ctx: &Ctx, req: Request, demo: &str) -> ApiResult<Response> {
    let upgrade = req.headers().get("Upgrade").ok().flatten();
    relay::admit(
        ctx.manifest.as_deref(),
        demo,
        upgrade.as_deref(),
        ctx.origin.as_deref(),
        &ctx.allowed_origins,
    )?;
    if !rate_limit(ctx, binding::TERMINAL_LIMITER).await {
        return Err(limits::terminal_rate_limited(
            ctx.settings.terminal_rate_period_secs,
        ));
    }
    let secret = env_string(&ctx.env, "TERMINAL_SECRET").unwrap_or_default();
    let terminal_origin = ctx
        .settings
        .terminal_origin
        .clone()
        .ok_or_else(|| ApiError::misconfigured("TERMINAL_ORIGIN is not set"))?;
    let url = relay::upstream_url(&terminal_origin, demo)?;
    let nonce = random_bytes::<{ terminal_protocol::NONCE_LEN }>()?;
    let now = now_unix();
    let token = token::mint_for(secret.as_bytes(), demo, now, nonce)
        .map_err(|e| ApiError::misconfigured(e.to_string()))?;

    let lease_id = visitor::hex(&random_bytes::<32>()?);
    let outcome = session_limiter(
        &ctx.env,
        &LeaseRequest::Acquire {
            id: lease_id.clone(),
            visitor: ctx.visitor.clone(),
            now,
            ttl: ctx.settings.max_session_secs,
            max_total: ctx.settings.max_sessions,
            max_per_visitor: ctx.settings.max_sessions_per_visitor,
        },
    )
    .await
    .map_err(|e| internal("lease_acquire", e))?;
    if let Some(refusal) = outcome.refusal() {
        return Err(refusal);
    }

    let access = access_credentials(&ctx.env);
    let connect = connect_upstream(&url, &token, &ctx.visitor, access.as_ref());
    let connected = with_timeout(connect, UPSTREAM_CONNECT_TIMEOUT)
        .await
        .unwrap_or_else(|| {
            Err(ApiError::bad_gateway(
                "the terminal origin did not answer in time",
            ))
        });
    let origin_ws = match connected {
        Ok(ws) => ws,
        Err(e) => {
            release_lease(&ctx.env, lease_id).await;
            return Err(e);
        }
    };
    let pair = WebSocketPair::new().map_err(|e| internal("websocket_pair", e))?;
    set_arraybuffer(&origin_ws);
    set_arraybuffer(&pair.server);
    origin_ws
        .accept()
        .map_err(|e| internal("accept_origin", e))?;
    pair.server
        .accept()
        .map_err(|e| internal("accept_client", e))?;

    let env = ctx.env.clone();
    let max = Duration::from_secs(ctx.settings.max_session_secs);
    let demo_log = demo.to_string();
    let server = pair.server;
    wasm_bindgen_futures::spawn_local(async move {
        relay_frames(server, origin_ws, max).await;
        release_lease(&env, lease_id).await;
        console_log!(
            "{}",
            serde_json::json!({"level": "info", "event": "session_end", "demo": demo_log})
        );
    });
    console_log!(
        "{}",
        serde_json::json!({"level": "info", "event": "session_start", "demo": demo})
    );
    let resp = Response::from_websocket(pair.client).map_err(|e| internal("upgrade", e))?;
    Ok(resp)
}

/// How long the relay waits for the origin to accept the upgrade before answering 502.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the upstream WebSocket. Any failure (connection refused, tunnel down, a non-101
/// answer such as 401 from a token the origin refused) is a 502 with the reason.
async fn connect_upstream(
    url: &str,
    token: &str,
    visitor: &str,
    access: Option<&token::AccessCredentials>,
) -> ApiResult<WebSocket> {
    let headers = Headers::new();
    for (name, value) in token::upstream_headers(token, visitor, access) {
        headers
            .set(name, &value)
            .map_err(|e| internal("upstream_headers", e))?;
    }
    let mut init = RequestInit::new();
    init.with_headers(headers);
    let req = Request::new_with_init(url, &init).map_err(|e| internal("upstream_request", e))?;
    let resp = match Fetch::Request(req).send().await {
        Ok(r) => r,
        Err(e) => {
            console_error!(
                "{}",
                serde_json::json!({"level": "warn", "event": "origin_unreachable", "error": e.to_string()})
            );
            return Err(ApiError::bad_gateway("the terminal origin is unreachable"));
        }
    };
    let status = resp.status_code();
    let retry_after = resp.headers().get("Retry-After").ok().flatten();
    resp.websocket()
        .ok_or_else(|| relay::origin_refusal(status, retry_after.as_deref()))
}

/// Answers a terminal request the relay refused with an accepted WebSocket closed at once
/// with the refusal's code and reason ([`relay::refusal_close`]): the only way a browser can
/// read why it was refused and when to retry.
fn refuse_over_websocket(code: u16, reason: &str) -> ApiResult<Response> {
    let pair = WebSocketPair::new().map_err(|e| internal("websocket_pair", e))?;
    pair.server
        .accept()
        .map_err(|e| internal("accept_refusal", e))?;
    close_quietly(&pair.server, Some(code), reason);
    Response::from_websocket(pair.client).map_err(|e| internal("refusal_response", e))
}

fn close_quietly(ws: &WebSocket, code: Option<u16>, reason: &str) {
    let _ = ws.close(code, Some(reason));
}

/// Moves frames both ways until either side closes, a frame breaks the size rule, a send
/// fails or the session reaches its time limit. Binary frames are forwarded as the same
/// `ArrayBuffer` they arrived in (no copy into wasm memory); text as strings.
async fn relay_frames(client: WebSocket, origin: WebSocket, max: Duration) {
    let (client_events, origin_events) = match (client.events(), origin.events()) {
        (Ok(c), Ok(o)) => (c, o),
        _ => {
            close_quietly(&client, Some(relay::CLOSE_INTERNAL), "relay failed");
            close_quietly(&origin, Some(relay::CLOSE_INTERNAL), "relay failed");
            return;
        }
    };
    let mut events = futures_util::stream::select(
        client_events.map(|e| (Side::Client, e)),
        origin_events.map(|e| (Side::Origin, e)),
    );
    let mut deadline = std::pin::pin!(Delay::from(max));
    loop {
        let next = match futures_util::future::select(events.next(), deadline.as_mut()).await {
            Either::Left((next, _)) => next,
            Either::Right(_) => {
                close_quietly(
                    &client,
                    Some(relay::CLOSE_SESSION_TIME_LIMIT),
                    "session time limit",
                );
                close_quietly(&origin, Some(1000), "session time limit");
                return;
            }
        };
        let Some((side, event)) = next else { return };
        let (from, to) = match side {
            Side::Client => (&client, &origin),
            Side::Origin => (&origin, &client),
        };
        match event {
            Ok(WebsocketEvent::Message(msg)) => {
                let data = msg.as_ref().data();
                // A string longer than the limit in UTF-16 units is over it in UTF-8 bytes
                // too: refuse it before copying it into wasm memory.
                if let Some(js) = data.dyn_ref::<js_sys::JsString>() {
                    if let FrameAction::CloseBoth(code, reason) =
                        relay::frame_action(js.length() as usize)
                    {
                        close_quietly(from, Some(code), reason);
                        close_quietly(to, Some(code), reason);
                        return;
                    }
                }
                let (len, text, buf) = if let Some(text) = data.as_string() {
                    (text.len(), Some(text), None)
                } else if let Some(buf) = data.dyn_ref::<js_sys::ArrayBuffer>() {
                    (buf.byte_length() as usize, None, Some(buf.clone()))
                } else {
                    // binaryType is arraybuffer on both sockets: nothing else can arrive.
                    close_quietly(from, Some(1003), "unsupported frame");
                    close_quietly(to, Some(relay::CLOSE_INTERNAL), "relay error");
                    return;
                };
                if let FrameAction::CloseBoth(code, reason) = relay::frame_action(len) {
                    close_quietly(from, Some(code), reason);
                    close_quietly(to, Some(code), reason);
                    return;
                }
                let sent = match (text, buf) {
                    (Some(text), _) => to.send_with_str(&text).is_ok(),
                    (None, Some(buf)) => to.as_ref().send_with_array_buffer(&buf).is_ok(),
                    (None, None) => false,
                };
                if !sent {
                    close_quietly(from, Some(relay::CLOSE_INTERNAL), "peer gone");
                    return;
                }
            }
            Ok(WebsocketEvent::Close(close)) => {
                let (code, reason) = relay::passthrough_close(close.code(), &close.reason());
                close_quietly(to, code, &reason);
                return;
            }
            Err(e) => {
                internal("relay_socket", e);
                close_quietly(from, Some(relay::CLOSE_INTERNAL), "socket error");
                close_quietly(to, Some(relay::CLOSE_INTERNAL), "socket error");
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Durable Objects
// ---------------------------------------------------------------------------------------

fn exec_schema(state: &State, schema: &str) {
    let sql = state.storage().sql();
    for stmt in schema.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        if let Err(e) = sql.exec(stmt, None) {
            internal("schema", e);
        }
    }
}

#[derive(serde::Deserialize)]
struct CountRow {
    n: u64,
}

/// One page's exact view count (a SQLite-backed Durable Object, one per slug). See
/// [`crate::counter`] for the rules.
#[durable_object]
pub struct ViewCounter {
    state: State,
    env: Env,
    write_through: Rc<RefCell<WriteThrough>>,
}

fn read_count(sql: &worker::SqlStorage) -> worker::Result<u64> {
    let rows: Vec<CountRow> = sql.exec(counter::SQL_READ, None)?.to_array()?;
    Ok(rows.first().map_or(0, |r| r.n))
}

/// Writes the count through to KV until KV holds the latest count, at most one write per
/// [`counter::MIN_KV_WRITE_INTERVAL_MS`] (see [`WriteThrough`]). Runs after the response.
async fn flush_to_kv(
    sql: worker::SqlStorage,
    kv: worker::kv::KvStore,
    write_through: Rc<RefCell<WriteThrough>>,
    key: String,
    mut value: u64,
) {
    let mut last_start: Option<u64> = None;
    loop {
        let wait = counter::kv_write_delay_ms(last_start, Date::now().as_millis());
        if wait > 0 {
            Delay::from(Duration::from_millis(wait)).await;
            // Write the newest count, not the one that was current a second ago.
            value = read_count(&sql).unwrap_or(value).max(value);
        }
        last_start = Some(Date::now().as_millis());
        let put = match kv.put(&key, value.to_string()) {
            Ok(p) => p.execute().await,
            Err(e) => Err(e),
        };
        if let Err(e) = put {
            internal("kv_put", e);
            write_through.borrow_mut().failed();
            return;
        }
        let current = match read_count(&sql) {
            Ok(c) => c,
            Err(e) => {
                internal("sql_read", e);
                write_through.borrow_mut().failed();
                return;
            }
        };
        let next = write_through.borrow_mut().landed(value, current);
        match next {
            Some(n) => value = n,
            None => return,
        }
    }
}

impl ViewCounter {
    fn current(&self) -> worker::Result<u64> {
        read_count(&self.state.storage().sql())
    }

    /// Starts a write-through unless one is already running (it will pick this count up).
    fn schedule_flush(&self, slug: &str, value: u64) {
        if !self.write_through.borrow_mut().begin() {
            return;
        }
        let kv = match self.env.kv(binding::VIEWS) {
            Ok(kv) => kv,
            Err(e) => {
                internal("kv_binding", e);
                self.write_through.borrow_mut().failed();
                return;
            }
        };
        self.state.wait_until(flush_to_kv(
            self.state.storage().sql(),
            kv,
            self.write_through.clone(),
            counter::kv_key(slug),
            value,
        ));
    }

    async fn visit(&self, mut req: Request) -> worker::Result<Response> {
        let visit: VisitRequest = req.json().await?;
        if !visitor::is_key_hex(&visit.visitor)
            || visit.day.len() != 10
            || !routes::is_valid_slug(&visit.slug)
        {
            return Response::error("bad visit", 400);
        }
        let sql = self.state.storage().sql();
        sql.exec(counter::SQL_FORGET_OLD_DAYS, vec![visit.day.clone().into()])?;
        let new: Vec<serde_json::Value> = sql
            .exec(
                counter::SQL_MARK_SEEN,
                vec![visit.day.into(), visit.visitor.into()],
            )?
            .to_array()?;
        let counted = !new.is_empty();
        let views = if counted {
            let rows: Vec<CountRow> = sql.exec(counter::SQL_INCREMENT, None)?.to_array()?;
            rows.first().map_or(0, |r| r.n)
        } else {
            self.current()?
        };
        if self.write_through.borrow().written() != Some(views) {
            self.schedule_flush(&visit.slug, views);
        }
        Response::from_json(&VisitOutcome { views, counted })
    }
}

impl DurableObject for ViewCounter {
    fn new(state: State, env: Env) -> Self {
        exec_schema(&state, counter::SQL_SCHEMA);
        Self {
            state,
            env,
            write_through: Rc::new(RefCell::new(WriteThrough::default())),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        self.visit(req).await
    }
}

#[derive(serde::Deserialize)]
struct LeaseCounts {
    total: u64,
    mine: u64,
}

/// The cap on concurrent terminal sessions (one SQLite-backed Durable Object named
/// `"global"`). See [`crate::limits`].
#[durable_object]
pub struct SessionLimiter {
    state: State,
}

impl DurableObject for SessionLimiter {
    fn new(state: State, _env: Env) -> Self {
        exec_schema(&state, limits::SQL_SCHEMA);
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let msg: LeaseRequest = req.json().await?;
        let sql = self.state.storage().sql();
        // No await between counting and inserting: the check and the lease are atomic.
        let outcome = match msg {
            LeaseRequest::Acquire {
                id,
                visitor,
                now,
                ttl,
                max_total,
                max_per_visitor,
            } => {
                let now = now as i64;
                sql.exec(limits::SQL_EXPIRE, vec![now.into()])?;
                let counts: LeaseCounts = sql
                    .exec(limits::SQL_COUNT, vec![visitor.clone().into()])?
                    .one()?;
                let outcome = limits::decide(counts.total, counts.mine, max_total, max_per_visitor);
                if outcome == LeaseOutcome::Granted {
                    sql.exec(
                        limits::SQL_INSERT,
                        vec![id.into(), visitor.into(), (now + ttl as i64).into()],
                    )?;
                }
                outcome
            }
            LeaseRequest::Release { id } => {
                sql.exec(limits::SQL_DELETE, vec![id.into()])?;
                LeaseOutcome::Granted
            }
        };
        Response::from_json(&outcome)
    }
}
