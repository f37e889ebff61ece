//! The fetch entry point and the `/api/*` handlers: the counter's reads and writes, health.

use std::time::Duration;

use wasm_bindgen::JsValue;
use worker::{console_error, Context, Env, Method as HttpMethod, Request, RequestInit, Response};

use crate::runtime::{
    binding, env_string, internal, manifest, now_unix, rate_limit, with_timeout, ApiResult, Ctx,
};
use crate::terminal::{refuse_over_websocket, terminal};
use folio_edge::api::{ApiError, HealthBody, ViewsBatchBody, ViewsBody};
use folio_edge::config::{self, Settings};
use folio_edge::counter::{self, VisitOutcome, VisitRequest};
use folio_edge::headers;
use folio_edge::limits;
use folio_edge::relay;
use folio_edge::routes::{self, Method, Route};
use folio_edge::visitor;

/// The Worker's entry point. Cloudflare's asset layer serves everything else; this runs
/// for `/api/*` and `/terminal/*` only (`run_worker_first` in `wrangler.toml`).
/// The Worker's fetch handler; the deployable crate's `#[event(fetch)]` calls it.
pub async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    match serve(req, env, ctx).await {
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

async fn serve(req: Request, env: Env, exec: Context) -> worker::Result<Response> {
    let url = req.url()?;
    let settings = Settings::from_lookup(|k| env_string(&env, k));
    let manifest = match manifest(&env, &settings).await {
        Ok(m) => Some(m),
        Err(e) => {
            console_error!(
                "{}",
                serde_json::json!({"level": "error", "event": "manifest", "error": e})
            );
            None
        }
    };
    let origin = req.headers().get("Origin")?;
    let allowed_origins =
        headers::allowed_origins(manifest.as_deref(), url.as_str(), &settings.extra_origins);

    // Two keys under a daily salt (from a secret), never the IP itself: the visitor key
    // (IP and User-Agent) counts a view once; the address key (IPv4, or IPv6 /64) is what
    // every limit counts on, since the User-Agent is the visitor's to choose.
    let now = now_unix();
    let today = visitor::utc_day(now);
    let secret = env_string(&env, "VISITOR_SECRET").or_else(|| env_string(&env, "TERMINAL_SECRET"));
    let salt = visitor::daily_salt(secret.as_deref().unwrap_or("").as_bytes(), &today);
    let ip_header = req.headers().get("CF-Connecting-IP")?;
    let ip = visitor::client_ip(ip_header.as_deref());
    let ua = req.headers().get("User-Agent")?.unwrap_or_default();
    let visitor = visitor::hex(&visitor::visitor_key(&salt, ip, &ua));
    let client_key = visitor::address_key(&salt, ip);

    let method = Method::parse(req.method().as_ref());
    let contact_page = matches!(method, Method::Get | Method::Head);
    // Under a subpath deploy (BASE_PATH), routes are matched on the path inside the site;
    // a request outside it matches nothing (a 404).
    let path = settings.site_path(url.path()).unwrap_or("/");
    let routed = routes::route(method, path, url.query().unwrap_or(""));
    let preflight = matches!(routed, Ok(Route::Preflight));
    let status_route = matches!(routed, Ok(Route::TerminalStatus));
    let cors = if path.starts_with("/api/") {
        headers::cors_headers(origin.as_deref(), &allowed_origins, preflight)
    } else {
        Vec::new()
    };
    let ctx = Ctx {
        env,
        exec: std::rc::Rc::new(exec),
        manifest,
        settings,
        allowed_origins,
        origin,
        visitor,
        client: visitor::hex(&client_key),
        client_key,
        today,
        salt_configured: secret.is_some(),
    };

    let result = match routed {
        // The contact page, with a fresh form token (run_worker_first lists its path).
        Err(_) if contact_page && crate::contact::is_page(&ctx, path) => {
            crate::contact::page(&ctx).await
        }
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
    // The terminal status is the one API answer meant to be cached (30 s).
    if status_route && resp.status_code() == 200 {
        resp.headers_mut().set(
            "Cache-Control",
            folio_edge::terminal_status::STATUS_CACHE_CONTROL,
        )?;
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
    // The terminal status is exempt: it reads one cached answer (the origin is probed at most
    // once per 30 s however many ask) and touches no Durable Object or KV, so limiting it
    // saves nothing, while a page that lists demos would spend the visitor's API budget on it.
    if !matches!(route, Route::TerminalStatus) && !rate_limit(ctx, binding::API_LIMITER).await {
        return Err(limits::api_rate_limited(ctx.settings.api_rate_period_secs));
    }
    match route {
        Route::CountView(slug) => count_view(ctx, slug).await,
        Route::ReadView(slug) => read_view(ctx, slug).await,
        Route::ReadViews(slugs) => read_views(ctx, slugs).await,
        Route::Health => health(ctx).await,
        Route::TerminalStatus => crate::terminal::status(ctx, &req).await,
        Route::Contact => crate::contact::submit(ctx, req).await,
        Route::Preflight | Route::Terminal(_) => unreachable!("handled above"),
    }
}

/// Checks `key` against the manifest; returns the page's old slug key when its count is
/// carried over from there (docs/security-edge.md, "Page keys").
fn require_page<'c>(ctx: &'c Ctx, key: &str) -> ApiResult<Option<&'c str>> {
    config::require_page(ctx.manifest.as_deref(), key)
}

async fn count_view(ctx: &Ctx, slug: String) -> ApiResult<Response> {
    let legacy = require_page(ctx, &slug)?;
    if !ctx.salt_configured {
        return Err(ApiError::misconfigured(
            "set VISITOR_SECRET or TERMINAL_SECRET (wrangler secret put)",
        ));
    }
    // What the page had under its old slug key; the counter adds it on its first visit only.
    let seed = match legacy {
        Some(old) => counter::parse_kv_count(kv_stored(ctx, old).await?.as_deref()),
        None => 0,
    };
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
        seed,
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

/// The count stored in KV under a page key (or an old slug key), if any.
async fn kv_stored(ctx: &Ctx, key: &str) -> ApiResult<Option<String>> {
    let kv = ctx
        .env
        .kv(binding::VIEWS)
        .map_err(|e| internal("kv_binding", e))?;
    kv.get(&counter::kv_key(key))
        .text()
        .await
        .map_err(|e| internal("kv_get", e))
}

async fn read_view(ctx: &Ctx, slug: String) -> ApiResult<Response> {
    let legacy = require_page(ctx, &slug)?;
    let mut stored = kv_stored(ctx, &slug).await?;
    // Migration on read: a page not counted under its own key yet shows its old count.
    if let (None, Some(old)) = (&stored, legacy) {
        stored = kv_stored(ctx, old).await?;
    }
    json_response(&ViewsBody {
        slug,
        views: counter::parse_kv_count(stored.as_deref()),
        counted: None,
    })
}

async fn read_views(ctx: &Ctx, slugs: Vec<String>) -> ApiResult<Response> {
    let mut legacy = Vec::with_capacity(slugs.len());
    for slug in &slugs {
        legacy.push(require_page(ctx, slug)?);
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
    let stored = |s: &str| got.get(&counter::kv_key(s)).and_then(|v| v.clone());
    // Migration on read, as in `read_view`: one more bulk read for the pages not counted
    // under their own key yet.
    let old_keys: Vec<String> = slugs
        .iter()
        .zip(&legacy)
        .filter(|(s, _)| stored(s).is_none())
        .filter_map(|(_, l)| l.map(counter::kv_key))
        .collect();
    let old = if old_keys.is_empty() {
        Default::default()
    } else {
        kv.get_bulk(&old_keys)
            .text()
            .await
            .map_err(|e| internal("kv_get_bulk", e))?
    };
    let views = slugs
        .iter()
        .zip(&legacy)
        .map(|(s, l)| {
            let value = stored(s)
                .or_else(|| l.and_then(|l| old.get(&counter::kv_key(l)).and_then(|v| v.clone())));
            (s.clone(), counter::parse_kv_count(value.as_deref()))
        })
        .collect();
    json_response(&ViewsBatchBody { views })
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
                crate::runtime::origin_get(&ctx.env, &url)
                    .await
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
        version: folio_edge::VERSION,
        kv: if kv_ok { "ok" } else { "error" },
        origin,
        manifest: ctx.manifest.is_some(),
    })
}
