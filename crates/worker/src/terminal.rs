//! `/terminal/<demo>`: checks, the session lease, the token, and the WebSocket relay loop.

use std::time::Duration;

use futures_util::{future::Either, StreamExt};
use wasm_bindgen::{JsCast, JsValue};
use worker::{
    console_error, console_log, Delay, Env, Fetch, Headers, Method as HttpMethod, Request,
    RequestInit, Response, WebSocket, WebSocketPair, WebsocketEvent,
};

use crate::runtime::{
    access_credentials, binding, env_string, internal, now_unix, random_bytes, rate_limit,
    with_timeout, ApiResult, Ctx,
};
use folio_edge::api::ApiError;
use folio_edge::limits::{self, LeaseOutcome, LeaseRequest};
use folio_edge::relay::{self, FrameAction, Side};
use folio_edge::token;
use folio_edge::visitor;

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

pub(crate) async fn terminal(ctx: &Ctx, req: Request, demo: &str) -> ApiResult<Response> {
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
    let token = token::mint_for(secret.as_bytes(), demo, now, nonce, &ctx.client_key)
        .map_err(|e| ApiError::misconfigured(e.to_string()))?;

    let lease_id = visitor::hex(&random_bytes::<32>()?);
    let outcome = session_limiter(
        &ctx.env,
        &LeaseRequest::Acquire {
            id: lease_id.clone(),
            visitor: ctx.client.clone(),
            now,
            ttl: ctx.settings.max_session_secs,
            max_total: ctx.settings.max_sessions,
            max_per_visitor: ctx.settings.max_sessions_per_visitor,
            max_starts_per_minute: ctx.settings.max_session_starts_per_minute,
        },
    )
    .await
    .map_err(|e| internal("lease_acquire", e))?;
    if let Some(refusal) = outcome.refusal() {
        return Err(refusal);
    }

    let access = access_credentials(&ctx.env);
    let connect = connect_upstream(&url, &token, access.as_ref());
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
    access: Option<&token::AccessCredentials>,
) -> ApiResult<WebSocket> {
    let headers = Headers::new();
    for (name, value) in token::upstream_headers(token, access) {
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
pub(crate) fn refuse_over_websocket(code: u16, reason: &str) -> ApiResult<Response> {
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
