//! The HTTP side of the origin: `/terminal/<demo>` (token check, session caps, WebSocket
//! upgrade), `/healthz`, `/metrics`, and graceful shutdown.
//!
//! Every refusal happens before the upgrade and before any process exists: unknown demo
//! 404, any token problem 401, capacity 503 (global) or 429 (per client), both with
//! `Retry-After`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use terminal_protocol::{is_valid_demo_id, MAX_FRAME_BYTES};
use tokio::sync::{watch, Notify};

use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::prepare::PreparedDemo;
use crate::replay::ReplayCache;
use crate::resume::{Attach, Registry};
use crate::sandbox::Sandbox;
use crate::secret::{now_unix, session_id};
use crate::session::{self, ResumeCtx, SessionCtx};

/// How `folio-pty serve` was asked to run.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Site root (with `folio.toml`).
    pub site: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The shared HMAC secret.
    pub secret: Vec<u8>,
    /// Run demos unconfined (loopback development only).
    pub no_sandbox: bool,
    /// Where the runtime directory is created.
    pub runtime_base: PathBuf,
    /// When running as root: first host uid of the per-session pool.
    pub uid_base: u32,
    /// Use rlimits only, even where cgroups are writable (exercises the fallback).
    pub no_cgroups: bool,
    /// How long shutdown waits for sessions to end after telling them.
    pub shutdown_grace: Duration,
    /// Where used token nonces are kept across restarts (`None`: in memory only).
    pub state_dir: Option<PathBuf>,
    /// How long a session whose connection dropped is kept for a resume (`None`: the
    /// site's `[terminal] resume_grace`; zero: sessions are not resumable).
    pub resume_grace: Option<Duration>,
}

/// Concurrent sessions, globally and per client.
#[derive(Default)]
struct Caps {
    total: usize,
    per_client: HashMap<String, usize>,
}

struct AppState {
    demos: HashMap<String, Arc<PreparedDemo>>,
    secret: Arc<Vec<u8>>,
    registry: Arc<Registry>,
    grace: Duration,
    replay: ReplayCache,
    metrics: Arc<Metrics>,
    sandbox: Arc<Sandbox>,
    caps: Mutex<Caps>,
    max_sessions: usize,
    max_per_client: usize,
    shutting_down: AtomicBool,
    shutdown_rx: watch::Receiver<bool>,
    idle: Notify,
}

/// A reserved session slot; released (and shutdown notified) on drop.
struct SlotGuard {
    state: Arc<AppState>,
    client: String,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut caps = self.state.caps.lock().unwrap_or_else(|e| e.into_inner());
        caps.total -= 1;
        if let Some(n) = caps.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                caps.per_client.remove(&self.client);
            }
        }
        self.state
            .metrics
            .active
            .store(caps.total as u64, Ordering::Relaxed);
        if caps.total == 0 {
            self.state.idle.notify_waiters();
        }
    }
}

/// Loads the site, prepares the sandbox and the demos, and serves until SIGTERM/SIGINT.
pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let site = folio_content::demo::load(&opts.site)
        .map_err(|d| anyhow::anyhow!("{d}"))
        .with_context(|| format!("loading demos of the site at {}", opts.site.display()))?;
    if !site.terminal.enabled {
        bail!("[terminal] enabled = false in folio.toml: nothing to serve");
    }
    let bwrap = if opts.no_sandbox {
        if !opts.listen.ip().is_loopback() {
            bail!(
                "--insecure-no-sandbox is for loopback development only; refusing to listen on {}",
                opts.listen
            );
        }
        crate::warn!("no_sandbox", None, {"message": "demos run UNCONFINED (--insecure-no-sandbox); never expose this origin"});
        None
    } else {
        Some(crate::sandbox::find_bwrap()?)
    };
    let runtime = opts
        .runtime_base
        .join(format!("folio-pty-{}", std::process::id()));
    let limits = Limits::from(&site.terminal);
    let sandbox = Arc::new(
        Sandbox::new(
            bwrap,
            runtime.clone(),
            limits,
            site.terminal.max_sessions,
            opts.uid_base,
            !opts.no_cgroups,
        )
        .context("setting up the sandbox")?,
    );
    if let crate::limits::CgroupMode::Unavailable(why) = &sandbox.cgroups {
        crate::warn!("cgroups_unavailable", None, {"reason": why, "fallback": "rlimits only: RLIMIT_NPROC per session user namespace, RLIMIT_AS per process"});
    }
    let mut demos = HashMap::new();
    for spec in &site.demos {
        let prepared = crate::prepare::prepare(&sandbox, spec).await?;
        demos.insert(spec.id.clone(), Arc::new(prepared));
    }
    let replay = match &opts.state_dir {
        Some(dir) => ReplayCache::persistent(dir, now_unix()).with_context(|| {
            format!(
                "loading the used tokens from the state directory {}",
                dir.display()
            )
        })?,
        None => {
            crate::warn!("replay_cache_in_memory", None, {"message": "no state directory: a restart forgets which tokens were used, so a token captured in the last 60 s could be used once more after one (set --state-dir or StateDirectory=)"});
            ReplayCache::in_memory()
        }
    };
    let grace = opts
        .resume_grace
        .unwrap_or(Duration::from_secs(site.terminal.resume_grace));
    if grace.as_secs() > terminal_protocol::resume::MAX_GRACE_SECS {
        bail!(
            "the resume grace period is {} s; at most {} s",
            grace.as_secs(),
            terminal_protocol::resume::MAX_GRACE_SECS
        );
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = Arc::new(AppState {
        demos,
        secret: Arc::new(opts.secret),
        registry: Arc::new(Registry::default()),
        grace,
        replay,
        metrics: Arc::new(Metrics::default()),
        sandbox: sandbox.clone(),
        caps: Mutex::new(Caps::default()),
        max_sessions: site.terminal.max_sessions,
        max_per_client: site.terminal.max_sessions_per_client,
        shutting_down: AtomicBool::new(false),
        shutdown_rx,
        idle: Notify::new(),
    });
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/terminal/{demo}", get(terminal))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("listening on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let mut ids: Vec<&String> = state.demos.keys().collect();
    ids.sort();
    crate::info!("listening", None, {
        "addr": addr.to_string(), "demos": ids, "sandbox": sandbox.is_enabled(),
        "limits": sandbox.cgroups.name(), "runtime": runtime.display().to_string(),
        "state": opts.state_dir.as_ref().map(|d| d.display().to_string()),
    });

    let st = state.clone();
    let grace = opts.shutdown_grace;
    let shutdown = async move {
        wait_for_signal().await;
        st.shutting_down.store(true, Ordering::SeqCst);
        let active = st.caps.lock().unwrap_or_else(|e| e.into_inner()).total;
        crate::info!("shutdown", None, {"active": active});
        let _ = shutdown_tx.send(true);
        let wait_idle = async {
            loop {
                let notified = st.idle.notified();
                if st.caps.lock().unwrap_or_else(|e| e.into_inner()).total == 0 {
                    break;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(grace, wait_idle).await;
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving")?;
    crate::limits::cleanup(&sandbox.cgroups);
    let _ = std::fs::remove_dir_all(&runtime);
    crate::info!("stopped", None, {});
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    let active = st.caps.lock().unwrap_or_else(|e| e.into_inner()).total;
    let down = st.shutting_down.load(Ordering::SeqCst);
    let mut demos: Vec<&String> = st.demos.keys().collect();
    demos.sort();
    let body = serde_json::json!({
        "status": if down { "shutting_down" } else { "ok" },
        "active": active,
        "capacity": st.max_sessions,
        "available": st.max_sessions.saturating_sub(active),
        "demos": demos,
        "sandbox": if st.sandbox.is_enabled() { "bubblewrap" } else { "none" },
        "limits": st.sandbox.cgroups.name(),
    });
    let code = if down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /terminal/<demo>` without an upgrade: `{"status":"ok"|"busy","active":n,
/// "capacity":n}` (sessions in grace count as active). Cheap: one lock, no I/O.
fn status_answer(st: &AppState) -> Response {
    let active = st.caps.lock().unwrap_or_else(|e| e.into_inner()).total;
    let body = serde_json::json!({
        "status": if active >= st.max_sessions { "busy" } else { "ok" },
        "active": active,
        "capacity": st.max_sessions,
    });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(st.max_sessions),
    )
        .into_response()
}

fn refuse(st: &AppState, code: StatusCode, reason: &str, detail: &str, client: &str) -> Response {
    st.metrics.refused(reason);
    crate::warn!("refused", None, {"reason": reason, "detail": detail, "client": client, "status": code.as_u16()});
    let mut resp = (
        code,
        format!("{}\n", code.canonical_reason().unwrap_or("refused")),
    )
        .into_response();
    if matches!(
        code,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
    }
    if code == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    resp
}

/// Who a request comes from, for the log of refusals before a token verified:
/// `CF-Connecting-IP` when the connection comes from the local tunnel (`cloudflared`
/// connects over loopback), otherwise the peer address. The header is never trusted from a
/// non-loopback peer, where anybody could set it. The per-client cap does not use this:
/// it counts on the token's client claim ([`client_of_claims`]).
fn client_of(peer: SocketAddr, headers: &HeaderMap) -> String {
    if peer.ip().is_loopback() {
        if let Some(ip) = headers
            .get("cf-connecting-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
        {
            return ip.to_string();
        }
    }
    peer.ip().to_string()
}

/// The client a verified token admits, as the per-client cap counts it: the token's signed
/// client claim (the Worker's daily key of the visitor's address). Behind the Worker every
/// request comes from the Worker's address, so the claim is what tells visitors apart; being
/// under the token's MAC, nobody without the secret can choose or alter it. No header
/// (`X-Folio-Visitor`, `CF-Connecting-IP`) plays any part in the cap.
fn client_of_claims(claims: &terminal_protocol::Claims) -> String {
    format!("client:{}", terminal_protocol::hex(&claims.client))
}

/// The token: `Authorization: Bearer` only. A token in the URL would end up in logs (the
/// tunnel's, a proxy's, an access log), so the origin never takes one from there.
fn token_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Whether the request asks to resume a session (`?resume=1`): then no new slot is
/// reserved (the session already holds one) and the hello must carry a resume token.
fn resume_requested(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|p| p == "resume=1"))
}

/// Whether the query string carries a `token` parameter (refused, spent or not).
fn token_in_url(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&')
            .any(|p| p.split('=').next().is_some_and(|k| k == "token"))
    })
}

async fn terminal(
    State(st): State<Arc<AppState>>,
    UrlPath(demo): UrlPath<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let client = client_of(peer, &headers);
    if st.shutting_down.load(Ordering::SeqCst) {
        return refuse(
            &st,
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "origin is shutting down",
            &client,
        );
    }
    // An unsandboxed (development) origin must never be what a tunnel exposes.
    if let Some(why) = st.sandbox.refuse_tunnel_request(&headers) {
        return refuse(
            &st,
            StatusCode::FORBIDDEN,
            "unsandboxed_tunnel",
            why,
            &client,
        );
    }
    let Some(prepared) = is_valid_demo_id(&demo)
        .then(|| st.demos.get(&demo))
        .flatten()
        .cloned()
    else {
        return refuse(
            &st,
            StatusCode::NOT_FOUND,
            "not_found",
            "no such demo",
            &client,
        );
    };
    // A plain GET (no upgrade, no token): the Worker's status probe. It comes through the
    // tunnel (which exposes only this path), starts nothing and tells only whether a
    // session could start now: no secret, no demo list.
    if !headers.contains_key(header::UPGRADE) && !headers.contains_key(header::AUTHORIZATION) {
        return status_answer(&st);
    }
    if token_in_url(&uri) {
        return refuse(
            &st,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "token in the URL: send it as Authorization: Bearer",
            &client,
        );
    }
    let Some(token) = token_of(&headers) else {
        return refuse(
            &st,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "no token",
            &client,
        );
    };
    let now = now_unix();
    let claims = match terminal_protocol::verify(&st.secret, token, &demo, now) {
        Ok(c) => c,
        Err(e) => {
            return refuse(
                &st,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &e.to_string(),
                &client,
            )
        }
    };
    match st.replay.first_use(claims.nonce, claims.expires, now) {
        Ok(true) => {}
        Ok(false) => {
            return refuse(
                &st,
                StatusCode::UNAUTHORIZED,
                "replay",
                "nonce already used",
                &client,
            )
        }
        // Fail closed: a token whose use cannot be recorded could be used again.
        Err(e) => {
            crate::error!("replay_store", None, {"error": e.to_string()});
            return refuse(
                &st,
                StatusCode::SERVICE_UNAVAILABLE,
                "replay_store",
                "cannot record the token's use",
                &client,
            );
        }
    }
    // The token verified: its signed client claim names the client from here on.
    let client = client_of_claims(&claims);
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    if resume_requested(&uri) {
        // The session being resumed holds its slot; this connection takes none.
        return ws
            .max_message_size(MAX_FRAME_BYTES)
            .max_frame_size(MAX_FRAME_BYTES)
            .on_upgrade(move |socket| resume(st, socket, demo, claims.client, client));
    }
    // Reserve a slot before upgrading; released when the session (or a failed upgrade) ends.
    let guard = {
        let mut caps = st.caps.lock().unwrap_or_else(|e| e.into_inner());
        if caps.total >= st.max_sessions {
            drop(caps);
            return refuse(
                &st,
                StatusCode::SERVICE_UNAVAILABLE,
                "capacity",
                "all sessions in use",
                &client,
            );
        }
        let mine = caps.per_client.get(&client).copied().unwrap_or(0);
        if mine >= st.max_per_client {
            drop(caps);
            return refuse(
                &st,
                StatusCode::TOO_MANY_REQUESTS,
                "client_capacity",
                "too many sessions for this client",
                &client,
            );
        }
        caps.total += 1;
        *caps.per_client.entry(client.clone()).or_default() += 1;
        st.metrics
            .active
            .store(caps.total as u64, Ordering::Relaxed);
        SlotGuard {
            state: st.clone(),
            client: client.clone(),
        }
    };
    let ctx = SessionCtx {
        id: session_id(),
        demo: prepared,
        sandbox: st.sandbox.clone(),
        metrics: st.metrics.clone(),
        shutdown: st.shutdown_rx.clone(),
        client: client.clone(),
        resume: ResumeCtx {
            grace: st.grace,
            secret: st.secret.clone(),
            client_key: claims.client,
            registry: st.registry.clone(),
        },
    };
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            let _guard = guard;
            session::run(socket, ctx).await;
        })
}

/// A resuming connection: reads its hello (size, resume token, bytes received), checks
/// the token ([`Registry::claim`]) and hands the socket to its session. Any failure closes
/// the connection with 4410 (`resume refused`); the session, if any, is left as it was.
async fn resume(
    st: Arc<AppState>,
    mut socket: axum::extract::ws::WebSocket,
    demo: String,
    client_key: [u8; terminal_protocol::CLIENT_KEY_LEN],
    client: String,
) {
    use axum::extract::ws::{CloseFrame, Message};
    use terminal_protocol::close as close_code;
    let hello = match tokio::time::timeout(Duration::from_secs(10), socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => {
            match (
                terminal_protocol::Hello::decode(t.as_str()),
                terminal_protocol::ResumeHello::decode(t.as_str()),
            ) {
                (Ok(h), Ok(Some(r))) => Ok((h, r)),
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
                (_, Ok(None)) => Err("no resume token in the hello".to_owned()),
            }
        }
        _ => Err("no hello".to_owned()),
    };
    let refused = |why: String| {
        st.metrics.refused("resume");
        crate::warn!("resume_refused", None, {"error": why, "client": client, "demo": demo});
        Message::Close(Some(CloseFrame {
            code: close_code::RESUME_REFUSED,
            reason: "resume refused".into(),
        }))
    };
    let (hello, req) = match hello {
        Ok(x) => x,
        Err(e) => {
            let _ = socket.send(refused(e)).await;
            return;
        }
    };
    let claimed = st
        .registry
        .claim(&st.secret, &req.resume, &demo, &client_key, now_unix());
    let (session, tx) = match claimed {
        Ok(x) => x,
        Err(e) => {
            let _ = socket.send(refused(e.to_string())).await;
            return;
        }
    };
    crate::info!("resume", Some(&session), {"client": client, "received": req.received});
    let attach = Attach {
        socket,
        received: req.received,
        size: hello.size,
    };
    if let Err(tokio::sync::mpsc::error::SendError(mut a)) = tx.send(attach).await {
        let _ = a.socket.send(refused("the session ended".to_owned())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cf_connecting_ip_is_trusted_only_from_loopback() {
        let h = headers(&[("cf-connecting-ip", "203.0.113.9")]);
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        assert_eq!(client_of(local, &h), "203.0.113.9");
        assert_eq!(client_of(remote, &h), remote.ip().to_string());
        assert_eq!(
            client_of(local, &headers(&[("cf-connecting-ip", "junk")])),
            local.ip().to_string()
        );
        assert_eq!(client_of(local, &HeaderMap::new()), local.ip().to_string());
    }

    #[test]
    fn the_client_is_the_signed_claim() {
        let claims = terminal_protocol::Claims {
            demo: "shell".into(),
            expires: 1,
            nonce: [0; 16],
            client: [0xab; 32],
        };
        assert_eq!(
            client_of_claims(&claims),
            format!("client:{}", "ab".repeat(32))
        );
    }

    #[test]
    fn token_from_the_header_only() {
        let h = headers(&[("authorization", "Bearer from-header")]);
        assert_eq!(token_of(&h), Some("from-header"));
        assert_eq!(token_of(&HeaderMap::new()), None);
        assert_eq!(token_of(&headers(&[("authorization", "Basic x")])), None);
        let uri = |u: &str| u.parse::<Uri>().unwrap();
        assert!(token_in_url(&uri("/terminal/shell?token=v1.x")));
        assert!(token_in_url(&uri("/terminal/shell?a=1&token")));
        assert!(!token_in_url(&uri("/terminal/shell?tokens=1")));
        assert!(!token_in_url(&uri("/terminal/shell")));
    }
}
