//! `POST /api/contact` and the contact page (served with a fresh form token): the
//! runtime side of `folio_edge::contact`. Accepted messages go to the `ContactOutbox`
//! Durable Object, which sends them once and keeps them for retry on failure.

use wasm_bindgen::JsValue;
use worker::{Method as HttpMethod, Request, RequestInit, Response};

use crate::runtime::{binding, env_string, internal, now_unix, random_bytes, ApiResult, Ctx};
use folio_edge::api::ApiError;
use folio_edge::contact::{
    self as rules, Checked, ContactManifest, FormState, OutboxOutcome, OutboxSubmit, Refusal,
    SentBody,
};

fn settings(ctx: &Ctx) -> ApiResult<&ContactManifest> {
    ctx.manifest
        .as_deref()
        .and_then(|m| m.contact.as_ref())
        .ok_or_else(rules::not_enabled)
}

/// The form token's key: `CONTACT_SECRET`, else the visitor or terminal secret.
fn secret(ctx: &Ctx) -> ApiResult<String> {
    ["CONTACT_SECRET", "VISITOR_SECRET", "TERMINAL_SECRET"]
        .iter()
        .find_map(|k| env_string(&ctx.env, k))
        .ok_or_else(|| {
            ApiError::misconfigured("set CONTACT_SECRET or VISITOR_SECRET (wrangler secret put)")
        })
}

fn fresh_token(secret: &str) -> ApiResult<String> {
    Ok(rules::mint_token(
        secret.as_bytes(),
        now_unix(),
        random_bytes::<16>()?,
    ))
}

async fn form_page(
    ctx: &Ctx,
    cfg: &ContactManifest,
    state: &FormState,
    status: u16,
) -> ApiResult<Response> {
    let assets = ctx
        .env
        .assets(binding::ASSETS)
        .map_err(|e| internal("assets_binding", e))?;
    let mut resp = assets
        .fetch(
            format!(
                "https://assets.invalid{}{}",
                ctx.settings.base_path, cfg.page
            ),
            None,
        )
        .await
        .map_err(|e| internal("contact_page", e))?;
    if resp.status_code() != 200 {
        return Err(internal(
            "contact_page",
            format!("status {}", resp.status_code()),
        ));
    }
    let html = resp.text().await.map_err(|e| internal("contact_page", e))?;
    Response::from_html(rules::render_form(&html, state))
        .map(|r| r.with_status(status))
        .map_err(|e| internal("contact_page", e))
}

/// `GET` of the contact page: the built page with a fresh token in it.
pub(crate) async fn page(ctx: &Ctx) -> ApiResult<Response> {
    let cfg = settings(ctx)?;
    let state = FormState {
        token: fresh_token(&secret(ctx)?)?,
        ..FormState::default()
    };
    form_page(ctx, cfg, &state, 200).await
}

/// Whether `path` is the contact page (with or without its `index.html`).
pub(crate) fn is_page(ctx: &Ctx, path: &str) -> bool {
    settings(ctx).is_ok_and(|c| path == c.page || path == format!("{}index.html", c.page))
}

fn see_other(location: &str) -> ApiResult<Response> {
    let mut r = Response::empty()
        .map_err(|e| internal("redirect", e))?
        .with_status(303);
    r.headers_mut()
        .set("Location", location)
        .map_err(|e| internal("redirect", e))?;
    Ok(r)
}

fn json(status: u16, body: String, retry_after: Option<u64>) -> ApiResult<Response> {
    let mut r = Response::from_bytes(body.into_bytes())
        .map_err(|e| internal("contact_json", e))?
        .with_status(status);
    let h = r.headers_mut();
    h.set("Content-Type", "application/json; charset=utf-8")
        .ok();
    if let Some(s) = retry_after {
        h.set("Retry-After", &s.to_string()).ok();
    }
    Ok(r)
}

/// `POST /api/contact`.
pub(crate) async fn submit(ctx: &Ctx, mut req: Request) -> ApiResult<Response> {
    let cfg = settings(ctx)?;
    let secret = secret(ctx)?;
    let as_json = rules::wants_json(req.headers().get("Accept").ok().flatten().as_deref());
    let content_type = req.headers().get("Content-Type").ok().flatten();
    let declared: Option<usize> = req
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse().ok());
    let body = if declared.is_some_and(|n| n > rules::MAX_BODY_BYTES) {
        // Not read at all: the size alone refuses it.
        vec![0; rules::MAX_BODY_BYTES + 1]
    } else {
        req.bytes().await.map_err(|e| internal("contact_body", e))?
    };
    let now = now_unix();
    let checked = rules::check_submission(
        cfg,
        secret.as_bytes(),
        now,
        ctx.origin.as_deref(),
        &ctx.allowed_origins,
        content_type.as_deref(),
        &body,
    );
    let result: Result<SentBody, Refusal> = match checked {
        Ok(Checked::Honeypot) => Ok(SentBody::sent()),
        Ok(Checked::Accept { key, raw, .. }) => {
            // The address key every limit counts on (`visitor::address_key`, computed once
            // per request in fetch.rs).
            let address = ctx.client.clone();
            let outcome = deliver(
                ctx,
                &OutboxSubmit {
                    key,
                    address,
                    now,
                    raw,
                    from: cfg.sender.clone(),
                    to: cfg.recipient.clone(),
                    per_address_per_hour: cfg.per_address_per_hour,
                    per_day: cfg.per_day,
                },
            )
            .await?;
            outcome.answer().map_err(|error| Refusal {
                error,
                fields: Vec::new(),
                keep: rules::parse_form(&body),
                fresh_token: false,
            })
        }
        Err(r) => Err(r),
    };
    match result {
        Ok(sent) if as_json => json(
            200,
            serde_json::to_string(&sent).map_err(|e| internal("serialise", e))?,
            None,
        ),
        Ok(_) => see_other(&format!("{}{}", ctx.settings.base_path, cfg.thanks)),
        Err(r) if as_json || r.error.status == 403 || r.error.status == 415 => {
            json(r.error.status, r.json_body(), r.error.retry_after)
        }
        Err(r) => {
            let token = if r.fresh_token {
                fresh_token(&secret)?
            } else {
                r.keep.token.clone()
            };
            let state = FormState {
                token,
                form_error: Some(r.error.message.clone()),
                errors: r.fields,
                fields: r.keep,
            };
            let mut resp = form_page(ctx, cfg, &state, r.error.status).await?;
            if let Some(s) = r.error.retry_after {
                resp.headers_mut().set("Retry-After", &s.to_string()).ok();
            }
            Ok(resp)
        }
    }
}

async fn deliver(ctx: &Ctx, msg: &OutboxSubmit) -> ApiResult<OutboxOutcome> {
    let ns = ctx
        .env
        .durable_object(binding::OUTBOX)
        .map_err(|e| internal("outbox_binding", e))?;
    let stub = ns
        .id_from_name("outbox")
        .and_then(|id| id.get_stub())
        .map_err(|e| internal("outbox_stub", e))?;
    let body = serde_json::to_string(msg).map_err(|e| internal("serialise", e))?;
    let mut init = RequestInit::new();
    init.with_method(HttpMethod::Post)
        .with_body(Some(JsValue::from_str(&body)));
    let req = Request::new_with_init("https://outbox.invalid/submit", &init)
        .map_err(|e| internal("outbox_request", e))?;
    let mut resp = stub
        .fetch_with_request(req)
        .await
        .map_err(|e| internal("outbox_fetch", e))?;
    if resp.status_code() != 200 {
        let text = resp.text().await.unwrap_or_default();
        return Err(internal(
            "outbox_status",
            format!("{}: {text}", resp.status_code()),
        ));
    }
    resp.json().await.map_err(|e| internal("outbox_body", e))
}
