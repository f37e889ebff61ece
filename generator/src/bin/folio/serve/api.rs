//! `/api/*` and `/terminal/*`, wired like the Worker's glue (`edge-worker/src/glue.rs`):
//! the same routing (`routes::route`), the same origin rules and CORS (`headers`), the same
//! visitor keys (`visitor`), the same JSON bodies and errors (`api`), the same headers on
//! every response (`headers::response_headers` over the build's edge manifest). Only the
//! storage differs: [`super::views`] instead of Durable Objects and KV.
//!
//! Not mirrored: Cloudflare's rate-limit bindings (there is no limiter to ask locally;
//! the Worker lets requests through when its limiter is missing, and so does this).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use folio_edge::api::{ApiError, HealthBody, ViewsBatchBody, ViewsBody};
use folio_edge::config::{self};
use folio_edge::headers;
use folio_edge::routes::{self, Method, Route};
use folio_edge::visitor;

use super::request::{internal, now_unix, Ctx};
use super::{relay, Shared};

type ApiResult<T> = Result<T, ApiError>;

fn header_str(req: &Request, name: HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Answers an `/api/*` or `/terminal/*` request.
pub(super) async fn handle(shared: Arc<Shared>, peer: SocketAddr, req: Request) -> Response {
    let manifest = shared.snapshot().and_then(|s| s.manifest.clone());
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let host = header_str(&req, header::HOST).unwrap_or_else(|| peer.to_string());
    let request_url = format!("http://{host}{path}");
    let origin = header_str(&req, header::ORIGIN);
    let allowed_origins = headers::allowed_origins(
        manifest.as_deref(),
        &request_url,
        &shared.settings.extra_origins,
    );
    // The visitor key (daily salt over IP and User-Agent; counts views) and the address
    // key (IP only; what the caps count on). Locally the IP is the peer's (there is no
    // CF-Connecting-IP to trust).
    let ua = header_str(&req, header::USER_AGENT).unwrap_or_default();
    let ip = peer.ip().to_string();
    let now = now_unix();
    let (visitor, today) = shared
        .views
        .visitor(visitor::client_ip(Some(&ip)), &ua, now);
    let client = shared.views.client(visitor::client_ip(Some(&ip)), now);

    let method = Method::parse(req.method().as_str());
    let routed = routes::route(method, &path, &query);
    let preflight = matches!(routed, Ok(Route::Preflight));
    let status_route = matches!(routed, Ok(Route::TerminalStatus));
    let cors = if path.starts_with("/api/") {
        headers::cors_headers(origin.as_deref(), &allowed_origins, preflight)
    } else {
        Vec::new()
    };
    let ctx = Ctx {
        manifest,
        allowed_origins,
        origin,
        visitor,
        client,
        today,
    };
    let result = match routed {
        Ok(Route::Contact) => super::contact::submit(&shared, &ctx, req).await,
        Ok(route) => dispatch(&shared, &ctx, req, route, method).await,
        Err(e) => Err(e),
    };
    let mut resp = result.unwrap_or_else(|e| error_response(&e));
    for (name, value) in headers::response_headers(ctx.manifest.as_deref(), &cors) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    // The terminal status is the one API answer meant to be cached (30 s).
    if status_route && resp.status() == StatusCode::OK {
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(folio_edge::terminal_status::STATUS_CACHE_CONTROL),
        );
    }
    resp
}

/// An [`ApiError`] as the Worker sends it.
pub(super) fn error_response(e: &ApiError) -> Response {
    let mut resp = Response::new(Body::from(e.body()));
    *resp.status_mut() =
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(s) = e.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    for (name, value) in &e.extra_headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.insert(n, v);
        }
    }
    resp
}

fn json_response<T: serde::Serialize>(body: &T) -> ApiResult<Response> {
    let bytes = serde_json::to_vec(body).map_err(|e| internal("serialise", e))?;
    let mut r = Response::new(Body::from(bytes));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

async fn dispatch(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    req: Request,
    route: Route,
    method: Method,
) -> ApiResult<Response> {
    if let Route::Preflight = route {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        return Ok(r);
    }
    if let Route::Terminal(demo) = &route {
        return relay::terminal(shared, ctx, req, demo).await;
    }
    // Cross-site request forgery: as at the edge, a browser on a foreign site may not
    // count views.
    headers::check_write_origin(
        method == Method::Post,
        ctx.origin.as_deref(),
        &ctx.allowed_origins,
    )?;
    match route {
        Route::CountView(slug) => count_view(shared, ctx, slug),
        Route::ReadView(slug) => read_view(shared, ctx, slug),
        Route::ReadViews(slugs) => read_views(shared, ctx, slugs),
        Route::Health => health(shared, ctx).await,
        Route::TerminalStatus => terminal_status(shared, ctx).await,
        Route::Preflight | Route::Terminal(_) | Route::Contact => unreachable!("handled above"),
    }
}

/// Checks `key` against the manifest; returns the page's old slug key when its count is
/// carried over from there (as the Worker does).
fn require_page<'c>(ctx: &'c Ctx, key: &str) -> ApiResult<Option<&'c str>> {
    config::require_page(ctx.manifest.as_deref(), key)
}

fn count_view(shared: &Shared, ctx: &Ctx, slug: String) -> ApiResult<Response> {
    let legacy = require_page(ctx, &slug)?;
    let outcome = shared
        .views
        .visit(&slug, legacy, &ctx.visitor, &ctx.today)
        .map_err(|e| internal("counter", e))?;
    json_response(&ViewsBody {
        slug,
        views: outcome.views,
        counted: Some(outcome.counted),
    })
}

fn read_view(shared: &Shared, ctx: &Ctx, slug: String) -> ApiResult<Response> {
    let legacy = require_page(ctx, &slug)?;
    let views = shared
        .views
        .read(&slug, legacy)
        .map_err(|e| internal("counter", e))?;
    json_response(&ViewsBody {
        slug,
        views,
        counted: None,
    })
}

fn read_views(shared: &Shared, ctx: &Ctx, slugs: Vec<String>) -> ApiResult<Response> {
    let mut views = std::collections::BTreeMap::new();
    let mut legacy = Vec::with_capacity(slugs.len());
    for slug in &slugs {
        legacy.push(require_page(ctx, slug)?);
    }
    for (s, l) in slugs.into_iter().zip(legacy) {
        let n = shared
            .views
            .read(&s, l)
            .map_err(|e| internal("counter", e))?;
        views.insert(s, n);
    }
    json_response(&ViewsBatchBody { views })
}

/// `GET /api/terminal/status`, as the Worker answers it: one probe of the origin at most
/// every 30 s, its answer reused meanwhile.
async fn terminal_status(shared: &Shared, ctx: &Ctx) -> ApiResult<Response> {
    use folio_edge::terminal_status::{self as rule, StatusReason, TerminalStatus};
    let first_demo = ctx
        .manifest
        .as_deref()
        .and_then(|m| m.demos.first().cloned());
    let (Some(t), Some(demo)) = (&shared.terminal, first_demo) else {
        return json_response(&TerminalStatus::of(StatusReason::Disabled));
    };
    let fresh = std::time::Duration::from_secs(rule::STATUS_MAX_AGE_SECS);
    let cached = *shared.terminal_status.lock().expect("status lock");
    if let Some((_, st)) = cached.filter(|(at, _)| at.elapsed() < fresh) {
        return json_response(&st);
    }
    let answer = relay::probe_answer(&t.url, &demo).await;
    let relay_full =
        shared.leases.lock().expect("lease lock").len() >= shared.settings.max_sessions as usize;
    let st = rule::with_relay_cap(
        rule::from_probe(answer.as_ref().map(|(c, b)| (*c, b.as_str()))),
        relay_full,
    );
    *shared.terminal_status.lock().expect("status lock") = Some((std::time::Instant::now(), st));
    json_response(&st)
}

async fn health(shared: &Shared, ctx: &Ctx) -> ApiResult<Response> {
    let first_demo = ctx
        .manifest
        .as_deref()
        .and_then(|m| m.demos.first().cloned());
    let origin = match (&shared.terminal, first_demo) {
        (Some(t), Some(demo)) => {
            if relay::probe(&t.url, &demo).await {
                "ok"
            } else {
                "down"
            }
        }
        _ => "not_configured",
    };
    json_response(&HealthBody {
        ok: origin != "down" && ctx.manifest.is_some(),
        version: folio_edge::VERSION,
        // The local store stands in for KV.
        kv: "ok",
        origin,
        manifest: ctx.manifest.is_some(),
    })
}
