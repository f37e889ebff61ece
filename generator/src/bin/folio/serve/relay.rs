//! `/terminal/<demo>`: relayed as a WebSocket to a local terminal origin (`folio-pty`),
//! with the Worker's rules (`folio_edge::relay`, `folio_edge::token`,
//! `folio_edge::limits`): known demo, `Upgrade: websocket` or 426, the site's own
//! `Origin` or 403, the session caps (per client address, in total, started per minute),
//! a short-lived token minted with the shared secret and carrying the client's address key
//! (`terminal_protocol::mint`, through the Worker's `token::mint_for`), frames forwarded
//! both ways under the same size rule, close codes passed through the same way, and
//! refusals worth retrying (session cap, origin down) sent as the Worker sends them: an
//! accepted WebSocket closed at once with 4429/4502/4503.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as ClientMsg, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use folio_edge::api::ApiError;
use folio_edge::limits;
use folio_edge::relay::{self as rules, ClientFlow, FlowControl, FrameAction};
use folio_edge::token;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as OriginCloseFrame;
use tokio_tungstenite::tungstenite::Message as OriginMsg;

use super::request::{internal, now_unix, Ctx};
use super::{views, ServeError, Shared};

/// How long the relay waits for the origin to accept the upgrade before answering 502
/// (the Worker's `UPSTREAM_CONNECT_TIMEOUT`).
pub(super) const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A terminal origin `folio serve` relays to.
pub(crate) struct TerminalOrigin {
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    secret: Vec<u8>,
    child: Mutex<Option<Child>>,
    /// The directory the started origin keeps its runtime directory in (removed on stop).
    runtime_dir: Option<PathBuf>,
}

/// A fresh directory in the temp dir for a started origin's runtime directory: folio-pty
/// refuses to run as root without one named for it (a predictable name in the shared temp
/// dir invites planted symlinks), and it must be reachable (0755) by the sandbox's
/// per-session uids; folio-pty makes its own runtime directory inside it private.
fn fresh_runtime_dir() -> Result<PathBuf, ServeError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let mut last = None;
    for attempt in 0..8u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "folio-serve-terminal-{}-{nanos:08x}{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o755).create(&dir) {
            Ok(()) => {
                // The mode, whatever the umask.
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| ServeError::Terminal(format!("{}: {e}", dir.display())))?;
                return Ok(dir);
            }
            Err(e) => last = Some(format!("{}: {e}", dir.display())),
        }
    }
    Err(ServeError::Terminal(format!(
        "creating a runtime directory for folio-pty: {}",
        last.unwrap_or_default()
    )))
}

/// Where the `folio-pty` binary is: next to this executable (a cargo build puts both in
/// `target/<profile>/`), else on `PATH`.
pub(crate) fn find_folio_pty() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("folio-pty")))
        .filter(|p| p.is_file());
    beside.or_else(|| {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("folio-pty"))
                .find(|f| f.is_file())
        })
    })
}

impl TerminalOrigin {
    /// An origin already running at `url`, sharing the secret in `secret_file`.
    pub(crate) fn remote(url: &str, secret_file: &Path) -> Result<TerminalOrigin, ServeError> {
        let bytes = std::fs::read(secret_file)
            .map_err(|e| ServeError::Terminal(format!("reading {}: {e}", secret_file.display())))?;
        let secret = bytes.trim_ascii().to_vec();
        if secret.len() < token::MIN_SECRET_LEN {
            return Err(ServeError::Terminal(format!(
                "{} holds {} bytes; the secret must be at least {}",
                secret_file.display(),
                secret.len(),
                token::MIN_SECRET_LEN
            )));
        }
        rules::upstream_url(url, "probe").map_err(|e| ServeError::Terminal(e.message))?;
        Ok(TerminalOrigin {
            url: url.trim_end_matches('/').to_string(),
            secret,
            child: Mutex::new(None),
            runtime_dir: None,
        })
    }

    /// Starts `folio-pty serve` for the site on a free loopback port with a fresh secret
    /// (in `<state>/terminal-secret`), and waits until it listens.
    pub(crate) fn start_local(root: &Path, state: &Path) -> Result<TerminalOrigin, ServeError> {
        let bin = find_folio_pty().ok_or_else(|| {
            ServeError::Terminal(
                "--terminal needs the folio-pty binary, next to folio or on PATH: build it with `cargo build -p folio-pty`, or point --terminal-origin at one already running".into(),
            )
        })?;
        let secret_path = state.join("terminal-secret");
        let _ = std::fs::remove_file(&secret_path);
        let secret = views::secret_file(&secret_path)?;
        let runtime_dir = fresh_runtime_dir()?;
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--site")
            .arg(root)
            .args(["--listen", "127.0.0.1:0"])
            .arg("--secret-file")
            .arg(&secret_path)
            .arg("--runtime-dir")
            .arg(&runtime_dir)
            // Used tokens are remembered across restarts beside the secret.
            .arg("--state-dir")
            .arg(state.join("folio-pty"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The origin must not outlive folio serve, however it ends.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| ServeError::Terminal(format!("starting {}: {e}", bin.display())))?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let v: Option<serde_json::Value> = serde_json::from_str(&line).ok();
                let event = v.as_ref().and_then(|v| v["event"].as_str());
                let level = v.as_ref().and_then(|v| v["level"].as_str()).unwrap_or("");
                if event == Some("listening") {
                    if let Some(addr) = v.as_ref().and_then(|v| v["addr"].as_str()) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(Ok(addr.to_string()));
                        }
                        continue;
                    }
                }
                if level != "info" {
                    eprintln!("folio-pty: {line}");
                }
                if let Some(t) = &tx {
                    let _ = t.send(Err(line));
                }
            }
        });
        let mut log = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(addr)) => {
                    println!("Terminal origin: folio-pty on http://{addr}");
                    return Ok(TerminalOrigin {
                        url: format!("http://{addr}"),
                        secret,
                        child: Mutex::new(Some(child)),
                        runtime_dir: Some(runtime_dir),
                    });
                }
                Ok(Err(line)) => log.push(line),
                Err(_) => {}
            }
            if let Ok(Some(status)) = child.try_wait() {
                let _ = std::fs::remove_dir_all(&runtime_dir);
                return Err(ServeError::Terminal(format!(
                    "folio-pty exited ({status}) before listening: {}",
                    log.join("\n")
                )));
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&runtime_dir);
                return Err(ServeError::Terminal(
                    "folio-pty did not start listening within 120 s".into(),
                ));
            }
        }
    }

    /// Stops the origin this process started (if it did), and removes its runtime directory.
    pub(crate) fn stop(&self) {
        if let Some(mut c) = self.child.lock().expect("child lock").take() {
            // SIGTERM first: folio-pty ends its sessions and sandboxes cleanly.
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
            let mut exited = false;
            for _ in 0..50 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if !exited {
                let _ = c.kill();
                let _ = c.wait();
            }
            if let Some(dir) = &self.runtime_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

impl Drop for TerminalOrigin {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the origin answers a plain request for a demo's path (the Worker's health
/// probe: any status under 500 came from folio-pty itself).
pub(super) async fn probe(origin: &str, demo: &str) -> bool {
    let Some(url) = rules::probe_url(origin, demo) else {
        return false;
    };
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(authority).await.ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.ok()?;
        let line = std::str::from_utf8(&buf[..n]).ok()?;
        line.split_whitespace().nth(1)?.parse::<u16>().ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), attempt).await,
        Ok(Some(status)) if rules::origin_answered(status)
    )
}

/// The origin's answer to the status probe (a plain `GET` of a demo's path): its HTTP
/// status and body (at most `MAX_PROBE_BODY` bytes), or `None` when it did not answer
/// within `PROBE_TIMEOUT_MS`.
pub(super) async fn probe_answer(origin: &str, demo: &str) -> Option<(u16, String)> {
    use folio_edge::terminal_status::{MAX_PROBE_BODY, PROBE_TIMEOUT_MS};
    let url = rules::probe_url(origin, demo)?;
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(authority).await.ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while buf.len() <= MAX_PROBE_BODY + 1024 {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&buf);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse::<u16>().ok()?;
        Some((status, body.to_owned()))
    };
    tokio::time::timeout(Duration::from_millis(PROBE_TIMEOUT_MS), attempt)
        .await
        .ok()
        .flatten()
}

/// A session slot; given back when the session ends (or never starts).
struct Lease {
    shared: Arc<Shared>,
    id: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.shared
            .leases
            .lock()
            .expect("lease lock")
            .remove(&self.id);
    }
}

/// The session caps, with the Worker's rule (`limits::decide`: per client address, in
/// total, and started per minute) over an in-memory lease table and start log instead of
/// its `SessionLimiter` Durable Object.
fn acquire(shared: &Arc<Shared>, client: &str) -> Result<Lease, ApiError> {
    let id = terminal_protocol::hex(&views::random_bytes(32).map_err(|e| internal("random", e))?);
    let now = now_unix();
    let mut leases = shared.leases.lock().expect("lease lock");
    let mut starts = shared.starts.lock().expect("start log lock");
    let (started, oldest_start) = starts.window(now);
    let counts = limits::Counts {
        total: leases.len() as u64,
        mine: leases.values().filter(|v| *v == client).count() as u64,
        starts: started,
        oldest_start,
    };
    let outcome = limits::decide(counts, shared.settings.session_caps(), now);
    if let Some(refusal) = outcome.refusal() {
        return Err(refusal);
    }
    starts.record(now);
    leases.insert(id.clone(), client.to_string());
    Ok(Lease {
        shared: shared.clone(),
        id,
    })
}

type OriginSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the upstream WebSocket with the Worker's headers (the token as bearer; the client
/// is the token's signed claim). The origin's own 429/503 keep their meaning and
/// Retry-After; any other failure is a 502.
async fn connect_upstream(url: &str, token: &str) -> Result<OriginSocket, ApiError> {
    let ws_url = url
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    let mut req = ws_url
        .into_client_request()
        .map_err(|e| ApiError::misconfigured(format!("terminal origin URL: {e}")))?;
    for (name, value) in token::upstream_headers(token, None) {
        let v = value.parse().map_err(|e| internal("upstream_headers", e))?;
        req.headers_mut().insert(name, v);
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok());
            Err(rules::origin_refusal(resp.status().as_u16(), retry_after))
        }
        Err(_) => Err(ApiError::bad_gateway("the terminal origin is unreachable")),
    }
}

/// `/terminal/<demo>`, after routing (the glue's `terminal`).
pub(super) async fn terminal(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    req: Request,
    demo: &str,
) -> Result<Response, ApiError> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok());
    rules::admit(
        ctx.manifest.as_deref(),
        demo,
        upgrade,
        ctx.origin.as_deref(),
        &ctx.allowed_origins,
    )?;
    let (mut parts, _) = req.into_parts();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    match open_session(shared, ctx, demo, &query).await {
        Ok((upstream, lease)) => {
            let max = Duration::from_secs(shared.settings.max_session_secs);
            Ok(ws.on_upgrade(move |client| async move {
                let flush = relay_frames(client, upstream, max).await;
                // The session is over at the origin: the lease goes back now, whether or
                // not the client takes its last frames.
                drop(lease);
                flush.finish().await;
            }))
        }
        // Like the Worker: a refusal worth retrying reaches the browser as a close code
        // (4429, 4502, 4503) it can read, with the retry time in the reason.
        Err(e) => match rules::refusal_close(&e) {
            Some((code, reason)) => Ok(ws.on_upgrade(move |mut client| async move {
                let _ = client.send(client_close(Some(code), &reason)).await;
            })),
            None => Err(e),
        },
    }
}

/// Everything between the Origin check and the upgrade: the origin, a token, a session
/// lease and the upstream connection.
async fn open_session(
    shared: &Arc<Shared>,
    ctx: &Ctx,
    demo: &str,
    query: &str,
) -> Result<(OriginSocket, Lease), ApiError> {
    // Without an origin: what the Worker answers when its origin is down.
    let Some(origin) = &shared.terminal else {
        return Err(ApiError::bad_gateway(
            "no terminal origin: run folio serve with --terminal (starts folio-pty) or --terminal-origin URL",
        ));
    };
    // `?resume=1` goes on to the origin (see `folio_edge::relay::resume_requested`); the
    // lease is per connection, as in the Worker.
    let url = rules::upstream_url_for(&origin.url, demo, query)?;
    let nonce: [u8; terminal_protocol::NONCE_LEN] =
        views::random_bytes(terminal_protocol::NONCE_LEN)
            .map_err(|e| internal("random", e))?
            .try_into()
            .expect("asked for NONCE_LEN bytes");
    let token = token::mint_for(&origin.secret, demo, now_unix(), nonce, &ctx.client)
        .map_err(|e| ApiError::misconfigured(e.to_string()))?;
    let lease = acquire(shared, &terminal_protocol::hex(&ctx.client))?;
    let upstream = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, connect_upstream(&url, &token))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::bad_gateway(
                "the terminal origin did not answer in time",
            ))
        })?;
    Ok((upstream, lease))
}

fn client_close(code: Option<u16>, reason: &str) -> ClientMsg {
    ClientMsg::Close(code.map(|code| CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn origin_close(code: Option<u16>, reason: &str) -> OriginMsg {
    OriginMsg::Close(code.map(|code| OriginCloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

/// What one side sent, in the relay's terms.
enum Event {
    Text(String),
    Binary(axum::body::Bytes),
    Close(u16, String),
    Gone,
    Error,
    Ignore,
}

fn from_client(m: Option<Result<ClientMsg, axum::Error>>) -> Event {
    match m {
        None => Event::Gone,
        Some(Err(_)) => Event::Error,
        Some(Ok(ClientMsg::Text(t))) => Event::Text(t.as_str().to_string()),
        Some(Ok(ClientMsg::Binary(b))) => Event::Binary(b),
        Some(Ok(ClientMsg::Close(c))) => match c {
            Some(f) => Event::Close(f.code, f.reason.as_str().to_string()),
            None => Event::Close(1005, String::new()),
        },
        Some(Ok(_)) => Event::Ignore,
    }
}

fn from_origin(m: Option<Result<OriginMsg, tokio_tungstenite::tungstenite::Error>>) -> Event {
    match m {
        None => Event::Gone,
        Some(Err(_)) => Event::Error,
        Some(Ok(OriginMsg::Text(t))) => Event::Text(t.as_str().to_string()),
        Some(Ok(OriginMsg::Binary(b))) => Event::Binary(b),
        Some(Ok(OriginMsg::Close(c))) => match c {
            Some(f) => Event::Close(u16::from(f.code), f.reason.as_str().to_string()),
            None => Event::Close(1005, String::new()),
        },
        Some(Ok(_)) => Event::Ignore,
    }
}

/// How long the relay lets its last frames to the client (the origin's exit frame and close)
/// take after the session ended, before dropping the connection: a client that does not read
/// loses them, and gives its lease back all the same.
const END_GRACE: Duration = Duration::from_secs(2);

/// The relay's backlog toward the client: bytes handed to the writer task and not yet
/// written, and a wake-up each time that shrinks.
#[derive(Default)]
struct Backlog {
    bytes: AtomicUsize,
    shrunk: Notify,
}

fn client_msg_len(m: &ClientMsg) -> usize {
    match m {
        ClientMsg::Text(t) => t.len(),
        ClientMsg::Binary(b) => b.len(),
        _ => 0,
    }
}

/// The writer task still flushing the last frames to the client when the relay ended.
struct Flush(tokio::task::JoinHandle<()>);

impl Flush {
    /// Lets the writer send what is queued (ending with the close) within [`END_GRACE`],
    /// then drops the connection.
    async fn finish(mut self) {
        if tokio::time::timeout(END_GRACE, &mut self.0).await.is_err() {
            self.0.abort();
        }
    }
}

/// Moves frames both ways until either side closes, a frame breaks the size rule, a send
/// fails or the session reaches its time limit (the glue's `relay_frames`).
///
/// Toward the client, frames go through a writer task, so the relay keeps reading the
/// origin whatever the client does (and sees the origin end the session); the writer's
/// backlog drives the same flow control as the Worker's `bufferedAmount`
/// (`folio_edge::relay::FlowControl`): above the high-water mark the origin is paused, under
/// the low-water mark resumed, and the client's own pause/resume frames are folded in.
/// Toward the origin, sends are awaited: a demo that does not read its input holds the
/// client back (TCP backpressure), nothing piles up here.
async fn relay_frames(client: WebSocket, origin: OriginSocket, max: Duration) -> Flush {
    let (mut c_tx, mut c_rx) = client.split();
    let (mut o_tx, mut o_rx) = origin.split();
    let backlog = Arc::new(Backlog::default());
    let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel::<ClientMsg>();
    let writer = {
        let backlog = backlog.clone();
        tokio::spawn(async move {
            while let Some(msg) = queued.recv().await {
                let len = client_msg_len(&msg);
                let closing = matches!(msg, ClientMsg::Close(_));
                let sent = c_tx.send(msg).await.is_ok();
                backlog.bytes.fetch_sub(len, Ordering::SeqCst);
                backlog.shrunk.notify_one();
                if !sent || closing {
                    break;
                }
            }
            let _ = c_tx.close().await;
        })
    };
    // Hands a frame to the writer; false once the client is gone.
    let to_client = |msg: ClientMsg| {
        backlog
            .bytes
            .fetch_add(client_msg_len(&msg), Ordering::SeqCst);
        queue.send(msg).is_ok()
    };
    let mut flow = FlowControl::default();
    let deadline = tokio::time::sleep(max);
    tokio::pin!(deadline);
    loop {
        let watching = flow.relay_paused();
        let (from_client_side, event) = tokio::select! {
            _ = &mut deadline => {
                to_client(client_close(Some(rules::CLOSE_SESSION_TIME_LIMIT), "session time limit"));
                let _ = o_tx.send(origin_close(Some(1000), "session time limit")).await;
                break;
            }
            _ = backlog.shrunk.notified(), if watching => {
                if let Some(sig) = flow.backlog(backlog.bytes.load(Ordering::SeqCst)) {
                    if o_tx.send(OriginMsg::Binary(sig.frame().into())).await.is_err() {
                        to_client(client_close(Some(rules::CLOSE_INTERNAL), "peer gone"));
                        break;
                    }
                }
                continue;
            }
            m = c_rx.next() => (true, from_client(m)),
            m = o_rx.next() => (false, from_origin(m)),
        };
        let len = match &event {
            Event::Text(t) => t.len(),
            Event::Binary(b) => b.len(),
            _ => 0,
        };
        if let FrameAction::CloseBoth(code, reason) = rules::frame_action(len) {
            to_client(client_close(Some(code), reason));
            let _ = o_tx.send(origin_close(Some(code), reason)).await;
            break;
        }
        // A pause or resume from the client: the flow control decides what the origin hears.
        if let (Event::Binary(b), true) = (&event, from_client_side) {
            if let ClientFlow::Replace(sig) = flow.client_frame(b.first().copied(), b.len()) {
                if let Some(sig) = sig {
                    if o_tx
                        .send(OriginMsg::Binary(sig.frame().into()))
                        .await
                        .is_err()
                    {
                        to_client(client_close(Some(rules::CLOSE_INTERNAL), "peer gone"));
                        break;
                    }
                }
                continue;
            }
        }
        let sent = match (event, from_client_side) {
            (Event::Ignore, _) => true,
            (Event::Text(t), true) => o_tx.send(OriginMsg::Text(t.into())).await.is_ok(),
            (Event::Binary(b), true) => o_tx.send(OriginMsg::Binary(b)).await.is_ok(),
            (Event::Text(t), false) => to_client(ClientMsg::Text(t.into())),
            (Event::Binary(b), false) => to_client(ClientMsg::Binary(b)),
            (ev @ (Event::Close(..) | Event::Gone), side) => {
                let (code, reason) = match ev {
                    Event::Close(c, r) => rules::passthrough_close(c, &r),
                    _ => rules::passthrough_close(1006, ""),
                };
                if side {
                    let _ = o_tx.send(origin_close(code, &reason)).await;
                } else {
                    to_client(client_close(code, &reason));
                }
                break;
            }
            (Event::Error, _) => {
                to_client(client_close(Some(rules::CLOSE_INTERNAL), "socket error"));
                let _ = o_tx
                    .send(origin_close(Some(rules::CLOSE_INTERNAL), "socket error"))
                    .await;
                break;
            }
        };
        if !sent {
            let msg = "peer gone";
            if from_client_side {
                to_client(client_close(Some(rules::CLOSE_INTERNAL), msg));
            } else {
                let _ = o_tx
                    .send(origin_close(Some(rules::CLOSE_INTERNAL), msg))
                    .await;
            }
            break;
        }
        if !from_client_side {
            if let Some(sig) = flow.backlog(backlog.bytes.load(Ordering::SeqCst)) {
                if o_tx
                    .send(OriginMsg::Binary(sig.frame().into()))
                    .await
                    .is_err()
                {
                    to_client(client_close(Some(rules::CLOSE_INTERNAL), "peer gone"));
                    break;
                }
            }
        }
    }
    // The writer ends once it sent what is queued (ending with the close).
    drop(queue);
    Flush(writer)
}
