//! One visitor's terminal: the WebSocket ⇄ PTY relay, its timeouts, and its end.
//!
//! Output is read from the PTY only while the client has not paused, so a slow client
//! stalls the demo on a full PTY buffer instead of the origin buffering without bound.
//! Input is written to the PTY only as fast as the demo reads it, which in turn stops the
//! origin reading the WebSocket: TCP backpressure all the way to the browser.
//!
//! Every send to the client is bounded by the session's deadlines (idle and wall clock, and
//! shutdown): a client that stops reading blocks a send, and a blocked send must not stop
//! the timers, or the client would keep its slot for as long as it keeps the connection.
//! Sends after the end (the last notice, the exit frame, the close) get [`END_GRACE`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt as _, StreamExt as _};
use terminal_protocol::close as close_code;
use terminal_protocol::{ClientFrame, ExitStatus, Hello, ResumeGrant, ResumeHello, ServerFrame};
use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;
use crate::prepare::PreparedDemo;
use crate::pty::PtyMaster;
use crate::resume::{
    Attach, Registry, Resumable, Ring, REFRESH_SECS, RING_BYTES, TOKEN_SLACK_SECS,
};
use crate::sandbox::Sandbox;
use crate::secret::now_unix;

/// Largest output frame the origin sends (several PTY reads are batched up to this).
const OUTPUT_CHUNK: usize = 64 * 1024;
/// How many times a read of bulk output yields to let the writer refill before sending.
const BATCH_YIELDS: u32 = 4;
/// How long the client has to send its first (hello) frame.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often timeouts are checked.
const TICK: Duration = Duration::from_millis(200);
/// After the demo exits, how long to wait for its last output before closing anyway.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How long the last messages of a session may take to send (the ending notice; then the
/// exit frame and the close together) before the connection is dropped anyway: a client
/// that does not read loses them.
const END_GRACE: Duration = Duration::from_secs(2);

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// What bounds a send while the session runs: the wall-clock deadline, the idle deadline
/// (which moves with each input) and shutdown.
struct Deadlines {
    wall: Instant,
    idle: Duration,
    last_input: watch::Receiver<Instant>,
    shutdown: watch::Receiver<bool>,
}

impl Deadlines {
    /// The reason the session must end now, if it must.
    fn passed(&self, now: Instant) -> Option<EndReason> {
        if now >= self.wall {
            Some(EndReason::Timeout)
        } else if now >= *self.last_input.borrow() + self.idle {
            Some(EndReason::Idle)
        } else {
            None
        }
    }

    fn next(&self) -> Instant {
        std::cmp::min(self.wall, *self.last_input.borrow() + self.idle)
    }
}

/// Sends `msg` unless a deadline passes (or the origin shuts down) first: then the reason
/// the session ends. A client that closed is [`EndReason::ClientClosed`].
async fn send_live(sink: &mut Sink, msg: Message, d: &Deadlines) -> Result<(), EndReason> {
    let send = sink.send(msg);
    tokio::pin!(send);
    let mut shutdown = d.shutdown.clone();
    loop {
        tokio::select! {
            biased;
            r = &mut send => return r.map_err(|_| EndReason::ClientClosed),
            Ok(_) = shutdown.wait_for(|down| *down) => return Err(EndReason::Shutdown),
            _ = tokio::time::sleep_until(d.next().into()) => {
                // Input may have arrived meanwhile and moved the idle deadline on.
                if let Some(reason) = d.passed(Instant::now()) {
                    return Err(reason);
                }
            }
        }
    }
}

/// Sends one of the last messages of a session, giving up after [`END_GRACE`].
async fn send_final(sink: &mut Sink, msg: Message) {
    let _ = tokio::time::timeout(END_GRACE, sink.send(msg)).await;
}

/// Everything a session needs from the server.
pub struct SessionCtx {
    /// Random id, in every log line of this session.
    pub id: String,
    /// The demo to run.
    pub demo: Arc<PreparedDemo>,
    /// How to confine it.
    pub sandbox: Arc<Sandbox>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Flips to true when the origin shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Who is connected (for logs).
    pub client: String,
    /// Resuming: grace period, secret, visitor key, registry.
    pub resume: ResumeCtx,
}

/// Why a session ended (the `reason` label of `folio_pty_session_exits_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The demo exited with a status code.
    Exit,
    /// The demo was killed by a signal.
    Signal,
    /// No input for the idle timeout.
    Idle,
    /// The wall-clock limit passed.
    Timeout,
    /// The client went away.
    ClientClosed,
    /// The origin is shutting down.
    Shutdown,
    /// The session hit its process cap (a fork bomb).
    ProcessLimit,
    /// Something failed (spawn, protocol violation, I/O).
    Error,
    /// The connection dropped (no close from the client, or a relay's 1011) while the
    /// session was not resumable.
    Dropped,
    /// The connection dropped and nobody resumed the session within its grace period.
    GraceExpired,
}

impl EndReason {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Exit => "exit",
            EndReason::Signal => "signal",
            EndReason::Idle => "idle",
            EndReason::Timeout => "timeout",
            EndReason::ClientClosed => "client_closed",
            EndReason::Shutdown => "shutdown",
            EndReason::ProcessLimit => "process_limit",
            EndReason::Error => "error",
            EndReason::GraceExpired => "grace_expired",
            EndReason::Dropped => "client_closed",
        }
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 120 && s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// How long before a timeout the visitor is warned: a minute, or half the timeout if shorter.
fn warn_lead(timeout: Duration) -> Duration {
    std::cmp::min(Duration::from_secs(60), timeout / 2)
}

/// Maps a wait status to the exit frame. bubblewrap reports a demo killed by signal `n` as
/// exit code `128 + n` (as shells do), so in the sandbox such codes are reported as signals.
fn exit_status(status: std::process::ExitStatus, sandboxed: bool) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(c), _) if sandboxed && (129..=128 + 64).contains(&c) => ExitStatus::Signal(c - 128),
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(s),
        (None, None) => ExitStatus::Code(-1),
    }
}

/// The connection a session is attached to: where output goes, and the task reading its
/// input. A resumable session outlives it.
struct Conn {
    sink: Sink,
    input: tokio::task::JoinHandle<EndReason>,
    paused: watch::Receiver<bool>,
}

/// Starts the task that reads a connection's frames into the PTY. Its own task, so a demo
/// that does not read its input never stalls output.
fn attach_conn(
    socket: WebSocket,
    master: &Arc<PtyMaster>,
    input_tx: &Arc<watch::Sender<Instant>>,
    metrics: &Arc<Metrics>,
    id: &str,
) -> Conn {
    let (sink, mut stream) = socket.split();
    let (paused_tx, paused) = watch::channel(false);
    let (master, input_tx, metrics, id) = (
        master.clone(),
        input_tx.clone(),
        metrics.clone(),
        id.to_owned(),
    );
    let input = tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            let frame = match msg {
                Ok(Message::Binary(b)) => ClientFrame::decode(&b),
                // The visitor closed on purpose (Stop, leaving the page): the session ends.
                Ok(Message::Close(None)) => return EndReason::ClientClosed,
                Ok(Message::Close(Some(f))) if matches!(f.code, 1000 | 1001) => {
                    return EndReason::ClientClosed
                }
                // Anything else is a drop (a relay reports a lost client as 1011).
                Ok(Message::Close(Some(_))) | Err(_) => return EndReason::Dropped,
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(Message::Text(_)) => {
                    crate::warn!("protocol_error", Some(&id), {"error": "text frame after hello"});
                    return EndReason::Error;
                }
            };
            match frame {
                Ok(ClientFrame::Input(bytes)) => {
                    let _ = input_tx.send(Instant::now());
                    metrics
                        .bytes_in
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    if master.write_all(&bytes).await.is_err() {
                        // The demo is gone; the output side reports how it ended.
                        return EndReason::Exit;
                    }
                }
                Ok(ClientFrame::Resize(size)) => {
                    let _ = master.resize(size);
                }
                Ok(ClientFrame::Pause) => {
                    let _ = paused_tx.send(true);
                }
                Ok(ClientFrame::Resume) => {
                    let _ = paused_tx.send(false);
                }
                Err(e) => {
                    crate::warn!("protocol_error", Some(&id), {"error": e.to_string()});
                    return EndReason::Error;
                }
            }
        }
        EndReason::Dropped
    });
    Conn {
        sink,
        input,
        paused,
    }
}

/// Waits for the attached connection's input task, or forever when detached.
async fn input_ended(input: &mut Option<tokio::task::JoinHandle<EndReason>>) -> EndReason {
    match input {
        Some(h) => {
            let r = h.await.unwrap_or(EndReason::Error);
            *input = None;
            r
        }
        None => std::future::pending().await,
    }
}

/// Waits for the attached connection's pause state to change, or forever when detached.
async fn pause_changed(paused: &mut Option<watch::Receiver<bool>>) {
    if let Some(p) = paused {
        if p.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// Waits for a resuming connection, or forever when the session is not resumable.
async fn next_attach(rx: &mut Option<mpsc::Receiver<Attach>>) -> Option<Attach> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What the session does with a resume: the grace it keeps a dropped session for, and the
/// secret it signs resume tokens with.
pub struct ResumeCtx {
    /// How long a session is kept after its connection dropped (zero: not resumable).
    pub grace: Duration,
    /// The shared secret (resume tokens are signed with it, in their own domain).
    pub secret: Arc<Vec<u8>>,
    /// The start token's client claim: a resume must come from the same visitor key.
    pub client_key: [u8; terminal_protocol::CLIENT_KEY_LEN],
    /// Where resumable sessions are found by id.
    pub registry: Arc<Registry>,
}

/// A fresh resume token for the session (the previous one stops working).
fn resume_grant(ctx: &SessionCtx, entry: &Resumable) -> Message {
    let r = &ctx.resume;
    let nonce = entry.next_nonce();
    let ttl =
        (r.grace.as_secs() + TOKEN_SLACK_SECS).min(terminal_protocol::resume::MAX_RESUME_TTL_SECS);
    let token = terminal_protocol::mint_resume(
        &r.secret,
        &ctx.demo.spec.id,
        &ctx.id,
        now_unix() + ttl,
        nonce,
        &r.client_key,
    );
    Message::Binary(
        ServerFrame::ResumeToken(ResumeGrant {
            token,
            grace: r.grace.as_secs(),
        })
        .encode()
        .into(),
    )
}

/// Runs a session to its end. Every process of it is gone when this returns.
///
/// With a grace period, a connection that drops does not end the session: the PTY keeps
/// running, its output goes to the ring only, and a resume ([`Registry::claim`]) attaches a
/// new connection, which first gets a fresh resume token and then what it missed. The
/// session ends when its grace passes with no connection (`grace_expired`).
pub async fn run(socket: WebSocket, ctx: SessionCtx) -> EndReason {
    let registry = ctx.resume.registry.clone();
    let id = ctx.id.clone();
    let reason = run_inner(socket, ctx).await;
    registry.remove(&id);
    reason
}

async fn run_inner(socket: WebSocket, mut ctx: SessionCtx) -> EndReason {
    let (mut sink, mut stream) = socket.split();
    let started = Instant::now();
    let id = ctx.id.clone();
    let spec = &ctx.demo.spec;

    // 1. The hello frame gives the initial size.
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => Hello::decode(t.as_str())
            .map_err(|e| e.to_string())
            .and_then(|h| match ResumeHello::decode(t.as_str()) {
                Ok(None) => Ok(h),
                _ => Err("a resume goes to /terminal/<demo>?resume=1".into()),
            }),
        Ok(Some(Ok(_))) => Err("first frame must be text JSON {\"cols\",\"rows\"}".into()),
        Ok(_) => Err("closed before hello".into()),
        Err(_) => Err("no hello within 10 s".into()),
    };
    let hello = match hello {
        Ok(h) => h,
        Err(e) => {
            crate::warn!("protocol_error", Some(&id), {"error": e});
            send_final(&mut sink, notice(&format!("protocol error: {e}"))).await;
            send_final(
                &mut sink,
                close(close_code::PROTOCOL_ERROR, "protocol error"),
            )
            .await;
            ctx.metrics.exited(EndReason::Error.as_str());
            return EndReason::Error;
        }
    };

    // 2. PTY and sandboxed process.
    let spawned = crate::pty::open(hello.size).and_then(|(master, slave)| {
        let s = ctx.sandbox.spawn_session(
            &ctx.demo.dir,
            &spec.command,
            &slave,
            &format!("session-{id}"),
        )?;
        drop(slave); // only the child holds the slave now: its exit reads as EOF
        Ok((master, s))
    });
    let (master, mut spawned) = match spawned {
        Ok(x) => x,
        Err(e) => {
            crate::error!("spawn_failed", Some(&id), {"demo": spec.id, "error": e.to_string()});
            send_final(&mut sink, notice("the demo could not be started")).await;
            send_final(&mut sink, close(close_code::INTERNAL, "spawn failed")).await;
            ctx.metrics.exited(EndReason::Error.as_str());
            return EndReason::Error;
        }
    };
    let pid = spawned.child.id();
    ctx.metrics.session_started(&spec.id);
    let resumable = !ctx.resume.grace.is_zero();
    crate::info!("session_start", Some(&id), {
        "demo": spec.id, "client": ctx.client, "pid": pid,
        "cols": hello.size.cols, "rows": hello.size.rows,
        "sandbox": ctx.sandbox.is_enabled(), "limits": ctx.sandbox.cgroups.name(),
        "grace": ctx.resume.grace.as_secs(),
    });
    let (input_tx, input_rx) = watch::channel(Instant::now());
    let input_tx = Arc::new(input_tx);
    let deadlines = Deadlines {
        wall: started + spec.timeout,
        idle: spec.idle_timeout,
        last_input: input_rx.clone(),
        shutdown: ctx.shutdown.clone(),
    };
    let (entry, mut attach_rx) = if resumable {
        let (e, rx) = ctx
            .resume
            .registry
            .register(&id, &spec.id, ctx.resume.client_key);
        (Some(e), Some(rx))
    } else {
        (None, None)
    };
    let mut ring = Ring::default();
    let mut greeting = Ok(());
    if let Some(entry) = &entry {
        greeting = send_live(&mut sink, resume_grant(&ctx, entry), &deadlines).await;
    }
    if !ctx.sandbox.is_enabled() && greeting.is_ok() {
        crate::warn!("unsandboxed_session", Some(&id), {"demo": spec.id});
        greeting = send_live(&mut sink, notice("WARNING: this origin runs with --insecure-no-sandbox: the demo is NOT confined. Loopback development only."), &deadlines).await;
    }
    if let (Some(motd), Ok(())) = (&spec.motd, &greeting) {
        let text = format!("{}\r\n", motd.replace("\r\n", "\n").replace('\n', "\r\n"));
        ring.push(text.as_bytes());
        greeting = send_live(
            &mut sink,
            Message::Binary(ServerFrame::encode_output(text.as_bytes()).into()),
            &deadlines,
        )
        .await;
    }

    // 3. Input: its own task per connection.
    let master = Arc::new(master);
    let first = attach_conn(
        sink.reunite(stream).expect("halves of one socket"),
        &master,
        &input_tx,
        &ctx.metrics,
        &id,
    );
    // The attached connection: its sink, its input task, its pause state.
    let mut conn = Some(first.sink);
    let mut input = Some(first.input);
    let mut pause_rx = Some(first.paused);
    // The greeting could have failed on a client that already left: a resumable session
    // waits for it like any other drop.
    let mut detached_at: Option<Instant> = None;
    if let Err(reason) = greeting {
        if reason == EndReason::ClientClosed && resumable {
            conn = None;
            if let Some(h) = input.take() {
                h.abort();
            }
            pause_rx = None;
            detached_at = Some(Instant::now());
            greeting = Ok(());
        } else {
            greeting = Err(reason);
        }
    }

    // 4. Output, exit, timeouts, drops and resumes.
    let sandboxed = ctx.sandbox.is_enabled();
    let wall_deadline = deadlines.wall;
    let (idle_lead, wall_lead) = (warn_lead(spec.idle_timeout), warn_lead(spec.timeout));
    let mut warned_wall = false;
    let mut idle_warned_for: Option<Instant> = None;
    let mut exit: Option<std::process::ExitStatus> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut buf = vec![0u8; OUTPUT_CHUNK + 1];
    let mut tick = tokio::time::interval(TICK);
    let mut pty_eof = false;
    let mut last_grant = Instant::now();
    let reason: EndReason = loop {
        if let Err(reason) = greeting {
            break reason;
        }
        // A drop (the client closed, or a send to it failed) ends the session unless it
        // is resumable: then it waits for a resume until the grace period passes.
        macro_rules! dropped {
            () => {{
                conn = None;
                pause_rx = None;
                if let Some(h) = input.take() {
                    h.abort();
                }
                if !resumable {
                    break EndReason::ClientClosed;
                }
                detached_at = Some(Instant::now());
                crate::info!("session_detached", Some(&id), {"grace": ctx.resume.grace.as_secs()});
                continue;
            }};
        }
        let paused = pause_rx.as_ref().is_some_and(|p| *p.borrow());
        tokio::select! {
            r = master.read(&mut buf[1..]), if !paused && !pty_eof => {
                let n: usize = r.unwrap_or_default();
                if n == 0 {
                    pty_eof = true;
                    if exit.is_some() { break reason_of(exit, sandboxed); }
                    continue;
                }
                // Batch: the kernel hands out a PTY's output a few KiB at a time; gather
                // what the demo writes meanwhile into one frame (fewer frames, fewer
                // wake-ups), yielding a few times so a fast writer can refill the buffer.
                let mut len = n;
                let mut yields = 0;
                while len < OUTPUT_CHUNK {
                    match master.try_read(&mut buf[1 + len..=OUTPUT_CHUNK]) {
                        Ok(Some(m)) if m > 0 => len += m,
                        Ok(None) if yields < BATCH_YIELDS && len >= 4000 => {
                            yields += 1;
                            tokio::task::yield_now().await;
                        }
                        _ => break,
                    }
                }
                buf[0] = 0x00;
                if resumable {
                    ring.push(&buf[1..=len]);
                }
                let Some(c) = conn.as_mut() else { continue };
                ctx.metrics.bytes_out.fetch_add(len as u64, Ordering::Relaxed);
                if let Err(reason) = send_live(c, Message::Binary(buf[..=len].to_vec().into()), &deadlines).await {
                    if reason == EndReason::ClientClosed { dropped!(); }
                    crate::warn!("send_blocked", Some(&id), {"reason": reason.as_str(), "hint": "the client stopped reading"});
                    break reason;
                }
            }
            _ = pause_changed(&mut pause_rx) => {}
            a = next_attach(&mut attach_rx) => {
                let Some(a) = a else { continue };
                if let Some(h) = input.take() {
                    h.abort();
                }
                if let Some(mut old) = conn.take() {
                    send_final(&mut old, close(close_code::TAKEN_OVER, "resumed elsewhere")).await;
                }
                let Some((dropped_bytes, missed)) = ring.since(a.received) else {
                    crate::warn!("resume_refused", Some(&id), {"error": "client claims more output than was sent"});
                    let (mut s, _) = a.socket.split();
                    send_final(&mut s, close(close_code::RESUME_REFUSED, "resume refused")).await;
                    detached_at.get_or_insert_with(Instant::now);
                    continue;
                };
                let _ = master.resize(a.size);
                let Conn { sink: mut c, input: new_input, paused: new_paused } =
                    attach_conn(a.socket, &master, &input_tx, &ctx.metrics, &id);
                input = Some(new_input);
                pause_rx = Some(new_paused);
                detached_at = None;
                last_grant = Instant::now();
                crate::info!("session_resumed", Some(&id), {"replayed": missed.len(), "dropped": dropped_bytes});
                let entry = entry.as_ref().expect("only resumable sessions are attached to");
                let mut msgs = vec![resume_grant(&ctx, entry)];
                if dropped_bytes > 0 {
                    msgs.push(notice(&format!(
                        "reconnected: {dropped_bytes} bytes of output were dropped while you were away (only the last {} KiB are kept)",
                        RING_BYTES / 1024
                    )));
                }
                for chunk in missed.chunks(OUTPUT_CHUNK) {
                    msgs.push(Message::Binary(ServerFrame::encode_output(chunk).into()));
                }
                let mut failed = None;
                for m in msgs {
                    if let Err(reason) = send_live(&mut c, m, &deadlines).await {
                        failed = Some(reason);
                        break;
                    }
                }
                conn = Some(c);
                match failed {
                    Some(EndReason::ClientClosed) => dropped!(),
                    Some(other) => break other,
                    None => {}
                }
            }
            st = spawned.child.wait(), if exit.is_none() => {
                exit = Some(st.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(0)));
                if pty_eof { break reason_of(exit, sandboxed); }
                drain_deadline = Some(Instant::now() + DRAIN_GRACE);
            }
            r = input_ended(&mut input) => {
                match r {
                    EndReason::Exit => {} // demo gone; wait for its status
                    EndReason::Dropped => dropped!(),
                    other => break other,
                }
            }
            _ = ctx.shutdown.changed() => {
                if let Some(c) = conn.as_mut() {
                    send_final(c, notice("the terminal server is shutting down; this session ends now")).await;
                }
                break EndReason::Shutdown;
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if detached_at.is_some_and(|t| now >= t + ctx.resume.grace) {
                    break EndReason::GraceExpired;
                }
                if drain_deadline.is_some_and(|d| now >= d) && !paused {
                    break reason_of(exit, sandboxed);
                }
                if spawned.cgroup.as_ref().is_some_and(|c| c.pids_limit_hit()) {
                    if let Some(c) = conn.as_mut() {
                        send_final(c, notice(&format!(
                            "session ended: it reached its limit of {} processes", ctx.sandbox.limits.max_processes
                        ))).await;
                    }
                    break EndReason::ProcessLimit;
                }
                let last_input = *input_rx.borrow();
                let idle_deadline = last_input + spec.idle_timeout;
                // The notice for these is sent after the loop, whichever path ended it (a
                // send that outlived a deadline ends the session with the same reason).
                if now >= wall_deadline {
                    break EndReason::Timeout;
                }
                if now >= idle_deadline {
                    break EndReason::Idle;
                }
                let Some(c) = conn.as_mut() else { continue };
                let mut sent = Ok(());
                if let (Some(entry), true) = (&entry, now >= last_grant + Duration::from_secs(REFRESH_SECS)) {
                    last_grant = now;
                    sent = send_live(c, resume_grant(&ctx, entry), &deadlines).await;
                }
                if sent.is_ok() && !warned_wall && now + wall_lead >= wall_deadline {
                    warned_wall = true;
                    let left = wall_deadline.saturating_duration_since(now);
                    sent = send_live(c, notice(&format!("session ends in {} (time limit)", human(round_secs(left)))), &deadlines).await;
                }
                if sent.is_ok() && idle_warned_for != Some(last_input) && now + idle_lead >= idle_deadline {
                    idle_warned_for = Some(last_input);
                    let left = idle_deadline.saturating_duration_since(now);
                    sent = send_live(c, notice(&format!("session ends in {} unless you type something", human(round_secs(left)))), &deadlines).await;
                }
                match sent {
                    Ok(()) => {}
                    Err(EndReason::ClientClosed) => dropped!(),
                    Err(reason) => break reason,
                }
            }
        }
    };
    // No resume from here on.
    ctx.resume.registry.remove(&id);
    drop(attach_rx);

    // 5. The end: say why (a client too slow to take it does not hold the end up: END_GRACE),
    // kill whatever is left, report, close.
    if let Some(c) = conn.as_mut() {
        match reason {
            EndReason::Timeout => {
                send_final(
                    c,
                    notice(&format!(
                        "session ended: time limit of {} reached",
                        human(spec.timeout)
                    )),
                )
                .await;
            }
            EndReason::Idle => {
                send_final(
                    c,
                    notice(&format!(
                        "session ended: no input for {}",
                        human(spec.idle_timeout)
                    )),
                )
                .await;
            }
            _ => {}
        }
    }
    if let Some(h) = input.take() {
        h.abort();
    }
    if exit.is_none() {
        if let Some(pid) = pid {
            // bubblewrap leads its own process group (setsid before exec); its death takes
            // the session's pid namespace with it.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
        let _ = spawned.child.start_kill();
        exit = spawned.child.wait().await.ok();
    }
    if let Some(cg) = spawned.cgroup.take() {
        let memory_hit = cg.memory_cap_hit();
        tokio::task::spawn_blocking(move || drop(cg)).await.ok();
        if memory_hit {
            crate::info!("memory_cap_hit", Some(&id), {"demo": spec.id});
        }
    }
    let status = exit.map(|s| exit_status(s, sandboxed));
    // Counted before the goodbye: a client (or a test) that reads /metrics as soon as it sees
    // the close must find this session's exit there.
    ctx.metrics.exited(reason.as_str());
    if let Some(mut c) = conn {
        let farewell = async {
            if reason != EndReason::ClientClosed {
                if let Some(st) = status {
                    c.send(Message::Binary(ServerFrame::Exit(st).encode().into()))
                        .await?;
                }
                c.send(close(close_code::NORMAL, reason.as_str())).await?;
            }
            c.close().await
        };
        let _ = tokio::time::timeout(END_GRACE, farewell).await;
    }
    crate::info!("session_end", Some(&id), {
        "demo": spec.id, "reason": reason.as_str(), "status": status.map(|s| serde_json::to_value(s).unwrap_or_default()),
        "seconds": started.elapsed().as_secs_f64(),
    });
    reason
}

fn reason_of(exit: Option<std::process::ExitStatus>, sandboxed: bool) -> EndReason {
    match exit.map(|s| exit_status(s, sandboxed)) {
        Some(ExitStatus::Signal(_)) => EndReason::Signal,
        _ => EndReason::Exit,
    }
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs((d.as_millis() as u64).div_ceil(1000))
}

fn notice(text: &str) -> Message {
    Message::Binary(ServerFrame::Notice(text.to_owned()).encode().into())
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt as _;

    #[test]
    fn exit_mapping() {
        let code = |c: i32| std::process::ExitStatus::from_raw(c << 8);
        assert_eq!(exit_status(code(3), true), ExitStatus::Code(3));
        assert_eq!(exit_status(code(137), true), ExitStatus::Signal(9));
        assert_eq!(exit_status(code(137), false), ExitStatus::Code(137));
        assert_eq!(
            exit_status(std::process::ExitStatus::from_raw(9), false),
            ExitStatus::Signal(9)
        );
    }

    #[test]
    fn warning_lead() {
        assert_eq!(
            warn_lead(Duration::from_secs(1800)),
            Duration::from_secs(60)
        );
        assert_eq!(warn_lead(Duration::from_secs(4)), Duration::from_secs(2));
    }
}
