//! The contact form under `folio serve`, with the Worker's rules (`folio_edge::contact`):
//! the contact page gets a fresh form token, `POST /api/contact` runs the same checks and
//! limits, and an accepted message is written as an `.eml` file under `.folio/outbox/`
//! (named after the token's nonce, so a retry never writes a second one), whose path the
//! terminal prints. Nothing is sent anywhere.

use std::path::PathBuf;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use folio_edge::api::ApiError;
use folio_edge::contact::{self as rules, Checked, ContactManifest, FormState, Refusal, SentBody};

use super::request::{internal, now_unix, Ctx};
use super::views::random_bytes;
use super::Shared;

type ApiResult<T> = Result<T, ApiError>;

/// The local stand-in for the outbox and the per-address limit.
pub(crate) struct Local {
    secret: Vec<u8>,
    dir: PathBuf,
    /// (address key, unix secs) of each accepted message.
    sent: Mutex<Vec<(String, u64)>>,
}

impl Local {
    /// The outbox under `root/.folio/outbox`, and a secret for this run's tokens.
    pub(crate) fn new(root: &std::path::Path) -> Self {
        Self {
            secret: random_bytes(32).unwrap_or_else(|_| b"folio serve contact".to_vec()),
            dir: root.join(".folio").join("outbox"),
            sent: Mutex::new(Vec::new()),
        }
    }

    fn token(&self) -> String {
        let mut nonce = [0u8; 16];
        if let Ok(b) = random_bytes(16) {
            nonce.copy_from_slice(&b);
        }
        rules::mint_token(&self.secret, now_unix(), nonce)
    }
}

fn settings(shared: &Shared) -> Option<ContactManifest> {
    shared
        .snapshot()
        .and_then(|s| s.manifest.as_ref().and_then(|m| m.contact.clone()))
}

/// The contact page's HTML with a fresh token, if `key` (an output path) is that page.
pub(super) fn fill_page(shared: &Shared, key: &str, html: &[u8]) -> Option<Vec<u8>> {
    let cfg = settings(shared)?;
    if key != format!("{}index.html", cfg.page.trim_start_matches('/')) {
        return None;
    }
    let state = FormState {
        token: shared.contact.token(),
        ..FormState::default()
    };
    Some(rules::render_form(&String::from_utf8_lossy(html), &state).into_bytes())
}

fn json(status: u16, body: String, retry_after: Option<u64>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(s) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// `POST /api/contact`.
pub(super) async fn submit(shared: &Shared, ctx: &Ctx, req: Request) -> ApiResult<Response> {
    let cfg = settings(shared).ok_or_else(rules::not_enabled)?;
    let (as_json, content_type) = {
        let hv = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        (
            rules::wants_json(hv(header::ACCEPT).as_deref()),
            hv(header::CONTENT_TYPE),
        )
    };
    let body = match axum::body::to_bytes(req.into_body(), rules::MAX_BODY_BYTES + 1).await {
        Ok(b) => b.to_vec(),
        Err(_) => vec![0; rules::MAX_BODY_BYTES + 1],
    };
    let local = &shared.contact;
    let now = now_unix();
    let checked = rules::check_submission(
        &cfg,
        &local.secret,
        now,
        ctx.origin.as_deref(),
        &ctx.allowed_origins,
        content_type.as_deref(),
        &body,
    );
    let result: Result<SentBody, Refusal> = match checked {
        Ok(Checked::Honeypot) => Ok(SentBody::sent()),
        Ok(Checked::Accept { key, raw, .. }) => {
            // The address key every limit counts on (`visitor::address_key`, as at the edge).
            let address = folio_edge::visitor::hex(&ctx.client);
            deliver(local, &cfg, &key, &address, &raw, now)?.map_err(|error| Refusal {
                error,
                fields: Vec::new(),
                keep: rules::parse_form(&body),
                fresh_token: false,
            })
        }
        Err(r) => Err(r),
    };
    Ok(match result {
        Ok(sent) if as_json => json(
            200,
            serde_json::to_string(&sent).map_err(|e| internal("serialise", e))?,
            None,
        ),
        Ok(_) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&cfg.thanks) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Err(r) if as_json || r.error.status == 403 || r.error.status == 415 => {
            json(r.error.status, r.json_body(), r.error.retry_after)
        }
        Err(r) => {
            let snap = shared.snapshot();
            let page = format!("{}index.html", cfg.page.trim_start_matches('/'));
            let html = snap
                .as_ref()
                .and_then(|s| s.files.get(&page).cloned())
                .ok_or_else(|| internal("contact_page", "the contact page is not built"))?;
            let state = FormState {
                token: if r.fresh_token {
                    local.token()
                } else {
                    r.keep.token.clone()
                },
                form_error: Some(r.error.message.clone()),
                errors: r.fields,
                fields: r.keep,
            };
            let filled = rules::render_form(&String::from_utf8_lossy(&html), &state);
            let mut resp = Response::new(Body::from(filled));
            *resp.status_mut() =
                StatusCode::from_u16(r.error.status).unwrap_or(StatusCode::BAD_REQUEST);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            if let Some(s) = r.error.retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            resp
        }
    })
}

/// The outbox: the same limits as the Durable Object, one `.eml` per key.
fn deliver(
    local: &Local,
    cfg: &ContactManifest,
    key: &str,
    address: &str,
    raw: &str,
    now: u64,
) -> ApiResult<Result<SentBody, ApiError>> {
    let file = local.dir.join(format!("{key}.eml"));
    let mut sent = local.sent.lock().expect("outbox lock");
    if file.exists() {
        return Ok(Ok(SentBody::sent()));
    }
    sent.retain(|(_, at)| *at + rules::DAY_WINDOW_SECS > now);
    let mine: Vec<u64> = sent
        .iter()
        .filter(|(a, at)| a == address && *at + rules::ADDRESS_WINDOW_SECS > now)
        .map(|(_, at)| *at)
        .collect();
    let day: Vec<u64> = sent.iter().map(|(_, at)| *at).collect();
    if let Some(e) = rules::limit_decision(
        cfg,
        now,
        mine.len() as u64,
        mine.iter().min().copied(),
        day.len() as u64,
        day.iter().min().copied(),
    ) {
        return Ok(Err(e));
    }
    std::fs::create_dir_all(&local.dir).map_err(|e| internal("outbox", e))?;
    let envelope = format!(
        "X-Folio-Envelope-From: {}\r\nX-Folio-Envelope-To: {}\r\n",
        cfg.sender, cfg.recipient
    );
    if let Err(e) = std::fs::write(&file, format!("{envelope}{raw}")) {
        eprintln!("error: contact outbox: {e}");
        return Ok(Err(rules::delivery_failed()));
    }
    sent.push((address.to_string(), now));
    println!(
        "  contact: message to {} saved in {}",
        cfg.recipient,
        file.display()
    );
    Ok(Ok(SentBody::sent()))
}
