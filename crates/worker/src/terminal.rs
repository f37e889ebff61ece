//! `/terminal/<demo>`: checks, the session lease, the token, and the WebSocket relay loop.

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures_util::{future::Either, StreamExt};
use wasm_bindgen::{JsCast, JsValue};
use worker::{
    console_error, console_log, Cache, Context, Delay, Env, Fetch, Headers, Method as HttpMethod,
    Request, RequestInit, Response, WebSocket, WebSocketPair, WebsocketEvent,
};

use crate::runtime::{
    access_credentials, binding, env_string, internal, now_unix, random_bytes, rate_limit,
    with_timeout, ApiResult, Ctx,
};
use folio_edge::api::ApiError;
use folio_edge::limits::{self, LeaseOutcome, LeaseRequest};
use folio_edge::relay::{self, ClientFlow, FlowControl, FlowSignal, FrameAction, Side};
use folio_edge::terminal_status::{self, StatusReason, TerminalStatus};
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

/// Runs `fut` to its end even after the response is sent: it starts at once as a task and
/// is registered with the request's `waitUntil`, so the runtime does not cancel it when the
/// request (or the last socket) ends. Should the runtime refuse the registration, it is
/// logged and the task still runs.
pub(crate) fn keep_alive(exec: &Context, fut: impl Future<Output = ()> + 'static) {
    let promise = wasm_bindgen_futures::future_to_promise(async move {
        fut.await;
        Ok(JsValue::UNDEFINED)
    });
    if let Err(e) = exec.as_ref().wait_until(&promise) {
        internal("wait_until", format!("{e:?}"));
    }
}

/// A granted session lease, given back exactly once on every path out of the request:
/// dropping the guard releases it, whether the relay ended or an error returned early
/// anywhere between the grant and the relay's start (`WebSocketPair::new`, `accept()`, the
/// upstream connection). `Drop` cannot await, so the release runs as its own task, kept
/// alive with `waitUntil` ([`keep_alive`]).
struct LeaseGuard {
    env: Env,
    exec: Rc<Context>,
    id: String,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let (env, id) = (self.env.clone(), std::mem::take(&mut self.id));
        keep_alive(&self.exec, async move { release_lease(&env, id).await });
    }
}

/// Test-only fault injection: with `TEST_FAULTS` set (only `wrangler.toml`'s test
/// environment sets it) and the request header `X-Folio-Test-Fault: after-lease`, the
/// request fails right after its lease is granted, as a failing `WebSocketPair::new` or
/// `accept()` would. It lets the end-to-end tests show the lease is still given back.
fn test_fault(ctx: &Ctx, req: &Request) -> bool {
    env_string(&ctx.env, "TEST_FAULTS").is_some()
        && req
            .headers()
            .get("X-Folio-Test-Fault")
            .ok()
            .flatten()
            .is_some_and(|v| v == "after-lease")
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
    // `?resume=1`: the page reconnects to a dropped session (its resume token travels in
    // the hello frame); the origin attaches instead of starting. The Worker's lease is per
    // connection: the dropped connection's lease was given back when its relay ended, so a
    // resumed session holds exactly one again, and a session left in its grace period
    // holds none here (folio-pty counts it against its own caps until the grace expires).
    let query = req
        .url()
        .map(|u| u.query().unwrap_or("").to_owned())
        .unwrap_or_default();
    let url = relay::upstream_url_for(&terminal_origin, demo, &query)?;
    let nonce = random_bytes::<{ terminal_protocol::NONCE_LEN }>()?;
    let now = now_unix();
    let token = token::mint_for(secret.as_bytes(), demo, now, nonce, &ctx.client_key)
        .map_err(|e| ApiError::misconfigured(e.to_string()))?;

    let fault = test_fault(ctx, &req);
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
    // From here on every way out gives the lease back.
    let lease = LeaseGuard {
        env: ctx.env.clone(),
        exec: ctx.exec.clone(),
        id: lease_id,
    };
    if fault {
        return Err(internal("test_fault", "after-lease (TEST_FAULTS)"));
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
    let origin_ws = connected?;
    let pair = WebSocketPair::new().map_err(|e| internal("websocket_pair", e))?;
    set_arraybuffer(&origin_ws);
    set_arraybuffer(&pair.server);
    origin_ws
        .accept()
        .map_err(|e| internal("accept_origin", e))?;
    pair.server
        .accept()
        .map_err(|e| internal("accept_client", e))?;

    let max = Duration::from_secs(ctx.settings.max_session_secs);
    let demo_log = demo.to_string();
    let server = pair.server;
    wasm_bindgen_futures::spawn_local(async move {
        relay_frames(server, origin_ws, max).await;
        drop(lease);
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

/// `GET /api/terminal/status`: could a live session start now. Answered from the Cache API
/// when a probe ran in the last [`terminal_status::STATUS_MAX_AGE_SECS`]; otherwise one
/// plain `GET` of the first demo's terminal path on the origin, bounded by
/// [`terminal_status::PROBE_TIMEOUT_MS`] (no answer in time: down), and the answer cached.
pub(crate) async fn status(ctx: &Ctx, req: &Request) -> ApiResult<Response> {
    let first_demo = ctx
        .manifest
        .as_deref()
        .and_then(|m| m.demos.first().cloned());
    let secret_ok = env_string(&ctx.env, "TERMINAL_SECRET")
        .is_some_and(|s| s.len() >= terminal_protocol::MIN_SECRET_LEN);
    let probe = ctx
        .settings
        .terminal_origin
        .as_deref()
        .zip(first_demo)
        .filter(|_| secret_ok)
        .and_then(|(o, demo)| relay::probe_url(o, &demo));
    let Some(url) = probe else {
        return status_response(TerminalStatus::of(StatusReason::Disabled));
    };
    // The cache key is this endpoint's own URL (without query: one answer per site).
    let key = req
        .url()
        .map(|mut u| {
            u.set_query(None);
            u.to_string()
        })
        .map_err(|e| internal("status_url", e))?;
    let cache = Cache::default();
    if let Ok(Some(mut hit)) = cache.get(key.as_str(), true).await {
        // A cached response's headers are immutable: answer with a fresh copy of its body.
        if let Ok(st) = hit.json::<TerminalStatus>().await {
            return status_response(st);
        }
    }
    let answer = async {
        let mut resp = crate::runtime::origin_get(&ctx.env, &url).await?;
        let code = resp.status_code();
        let body = resp.text().await.unwrap_or_default();
        Some((code, body))
    };
    let answer = with_timeout(
        answer,
        Duration::from_millis(terminal_status::PROBE_TIMEOUT_MS),
    )
    .await
    .flatten();
    let mut st = terminal_status::from_probe(answer.as_ref().map(|(c, b)| (*c, b.as_str())));
    if st.live {
        // The Worker's own site-wide cap (the lease table) may be full while the origin is not.
        let probe = LeaseRequest::Probe {
            now: now_unix(),
            max_total: ctx.settings.max_sessions,
        };
        match session_limiter(&ctx.env, &probe).await {
            Ok(outcome) => {
                st = terminal_status::with_relay_cap(st, outcome == LeaseOutcome::GlobalCap);
            }
            Err(e) => {
                internal("status_leases", e);
            }
        }
    }
    let mut resp = status_response(st)?;
    match resp.cloned() {
        Ok(copy) => {
            if let Err(e) = cache.put(key.as_str(), copy).await {
                internal("status_cache", e);
            }
        }
        Err(e) => {
            internal("status_clone", e);
        }
    }
    Ok(resp)
}

fn status_response(st: TerminalStatus) -> ApiResult<Response> {
    let resp = Response::from_json(&st).map_err(|e| internal("serialise", e))?;
    resp.headers()
        .set("Cache-Control", terminal_status::STATUS_CACHE_CONTROL)
        .map_err(|e| internal("status_headers", e))?;
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

/// Bytes sent on `ws` that the runtime has not yet written to the network.
fn backlog(ws: &WebSocket) -> usize {
    ws.as_ref().buffered_amount() as usize
}

/// Moves frames both ways until either side closes, a frame breaks the size rule, a send
/// fails or the session reaches its time limit. Binary frames are forwarded as the same
/// `ArrayBuffer` they arrived in (no copy into wasm memory); text as strings.
///
/// Flow control ([`FlowControl`]): after each frame sent to the client the client socket's
/// `bufferedAmount` is read; above the high-water mark the relay pauses the origin, and
/// while it holds it paused it looks again every [`relay::FLOW_POLL_MS`] ms to resume it
/// under the low-water mark. The client's own pause and resume frames are folded in, so a
/// client cannot resume what the relay paused. Toward the origin, input the origin does not
/// take (a demo that does not read its input) may queue up to
/// [`relay::INPUT_BACKLOG_LIMIT`]; beyond it the session is closed.
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
    let mut flow = FlowControl::default();
    let signal = |sig: FlowSignal| origin.send_with_bytes(sig.frame()).is_ok();
    loop {
        let watching = flow.relay_paused();
        let poll = std::pin::pin!(async move {
            if watching {
                Delay::from(Duration::from_millis(relay::FLOW_POLL_MS)).await
            } else {
                futures_util::future::pending::<()>().await
            }
        });
        let next = match futures_util::future::select(
            futures_util::future::select(events.next(), poll),
            deadline.as_mut(),
        )
        .await
        {
            Either::Left((Either::Left((next, _)), _)) => next,
            Either::Left((Either::Right(_), _)) => {
                if let Some(sig) = flow.backlog(backlog(&client)) {
                    if !signal(sig) {
                        close_quietly(&client, Some(relay::CLOSE_INTERNAL), "peer gone");
                        return;
                    }
                }
                continue;
            }
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
                // A pause or resume from the client: the relay's flow control decides
                // what the origin is told.
                if let (Side::Client, Some(buf), 1) = (side, &buf, len) {
                    let first = js_sys::Uint8Array::new(buf).get_index(0);
                    if let ClientFlow::Replace(sig) = flow.client_frame(Some(first), len) {
                        if sig.is_some_and(|sig| !signal(sig)) {
                            close_quietly(from, Some(relay::CLOSE_INTERNAL), "peer gone");
                            return;
                        }
                        continue;
                    }
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
                match side {
                    Side::Origin => {
                        if let Some(sig) = flow.backlog(backlog(&client)) {
                            if !signal(sig) {
                                close_quietly(&client, Some(relay::CLOSE_INTERNAL), "peer gone");
                                return;
                            }
                        }
                    }
                    Side::Client => {
                        if let FrameAction::CloseBoth(code, reason) =
                            relay::input_backlog_action(backlog(&origin))
                        {
                            close_quietly(&client, Some(code), reason);
                            close_quietly(&origin, Some(code), reason);
                            return;
                        }
                    }
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
