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
use terminal_protocol::{ClientFrame, ExitStatus, Hello, ServerFrame};
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::prepare::PreparedDemo;
use crate::sandbox::Sandbox;

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

/// Runs a session to its end. Every process of it is gone when this returns.
pub async fn run(socket: WebSocket, mut ctx: SessionCtx) -> EndReason {
    let (mut sink, mut stream) = socket.split();
    let started = Instant::now();
    let id = ctx.id.clone();
    let spec = &ctx.demo.spec;

    // 1. The hello frame gives the initial size.
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => Hello::decode(t.as_str()).map_err(|e| e.to_string()),
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
    crate::info!("session_start", Some(&id), {
        "demo": spec.id, "client": ctx.client, "pid": pid,
        "cols": hello.size.cols, "rows": hello.size.rows,
        "sandbox": ctx.sandbox.is_enabled(), "limits": ctx.sandbox.cgroups.name(),
    });
    let (input_tx, input_rx) = watch::channel(Instant::now());
    let deadlines = Deadlines {
        wall: started + spec.timeout,
        idle: spec.idle_timeout,
        last_input: input_rx.clone(),
        shutdown: ctx.shutdown.clone(),
    };
    let mut greeting = Ok(());
    if !ctx.sandbox.is_enabled() {
        crate::warn!("unsandboxed_session", Some(&id), {"demo": spec.id});
        greeting = send_live(&mut sink, notice("WARNING: this origin runs with --insecure-no-sandbox: the demo is NOT confined. Loopback development only."), &deadlines).await;
    }
    if let (Some(motd), Ok(())) = (&spec.motd, &greeting) {
        let text = format!("{}\r\n", motd.replace("\r\n", "\n").replace('\n', "\r\n"));
        greeting = send_live(
            &mut sink,
            Message::Binary(ServerFrame::encode_output(text.as_bytes()).into()),
            &deadlines,
        )
        .await;
    }

    // 3. Input: its own task, so a demo that does not read its input never stalls output.
    let master = Arc::new(master);
    let (paused_tx, mut paused_rx) = watch::channel(false);
    let input_task = {
        let master = master.clone();
        let metrics = ctx.metrics.clone();
        let id = id.clone();
        tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let frame = match msg {
                    Ok(Message::Binary(b)) => ClientFrame::decode(&b),
                    Ok(Message::Close(_)) | Err(_) => return EndReason::ClientClosed,
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
            EndReason::ClientClosed
        })
    };

    // 4. Output, exit and timeouts.
    let sandboxed = ctx.sandbox.is_enabled();
    let wall_deadline = deadlines.wall;
    let (idle_lead, wall_lead) = (warn_lead(spec.idle_timeout), warn_lead(spec.timeout));
    let mut warned_wall = false;
    let mut idle_warned_for: Option<Instant> = None;
    let mut exit: Option<std::process::ExitStatus> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut buf = vec![0u8; OUTPUT_CHUNK + 1];
    let mut tick = tokio::time::interval(TICK);
    let mut input_task = input_task;
    let mut input_done = false;
    let mut pty_eof = false;
    let reason: EndReason = loop {
        if let Err(reason) = greeting {
            break reason;
        }
        let paused = *paused_rx.borrow();
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
                ctx.metrics.bytes_out.fetch_add(len as u64, Ordering::Relaxed);
                if let Err(reason) = send_live(&mut sink, Message::Binary(buf[..=len].to_vec().into()), &deadlines).await {
                    if reason != EndReason::ClientClosed {
                        crate::warn!("send_blocked", Some(&id), {"reason": reason.as_str(), "hint": "the client stopped reading"});
                    }
                    break reason;
                }
            }
            _ = paused_rx.changed() => {}
            st = spawned.child.wait(), if exit.is_none() => {
                exit = Some(st.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(0)));
                if pty_eof { break reason_of(exit, sandboxed); }
                drain_deadline = Some(Instant::now() + DRAIN_GRACE);
            }
            r = &mut input_task, if !input_done => {
                input_done = true;
                match r.unwrap_or(EndReason::Error) {
                    EndReason::Exit => {} // demo gone; wait for its status
                    other => break other,
                }
            }
            _ = ctx.shutdown.changed() => {
                send_final(&mut sink, notice("the terminal server is shutting down; this session ends now")).await;
                break EndReason::Shutdown;
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if drain_deadline.is_some_and(|d| now >= d) && !paused {
                    break reason_of(exit, sandboxed);
                }
                if spawned.cgroup.as_ref().is_some_and(|c| c.pids_limit_hit()) {
                    send_final(&mut sink, notice(&format!(
                        "session ended: it reached its limit of {} processes", ctx.sandbox.limits.max_processes
                    ))).await;
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
                if !warned_wall && now + wall_lead >= wall_deadline {
                    warned_wall = true;
                    let left = wall_deadline.saturating_duration_since(now);
                    if let Err(reason) = send_live(&mut sink, notice(&format!("session ends in {} (time limit)", human(round_secs(left)))), &deadlines).await {
                        break reason;
                    }
                }
                if idle_warned_for != Some(last_input) && now + idle_lead >= idle_deadline {
                    idle_warned_for = Some(last_input);
                    let left = idle_deadline.saturating_duration_since(now);
                    if let Err(reason) = send_live(&mut sink, notice(&format!("session ends in {} unless you type something", human(round_secs(left)))), &deadlines).await {
                        break reason;
                    }
                }
            }
        }
    };

    // 5. The end: say why (a client too slow to take it does not hold the end up: END_GRACE),
    // kill whatever is left, report, close.
    match reason {
        EndReason::Timeout => {
            send_final(
                &mut sink,
                notice(&format!(
                    "session ended: time limit of {} reached",
                    human(spec.timeout)
                )),
            )
            .await;
        }
        EndReason::Idle => {
            send_final(
                &mut sink,
                notice(&format!(
                    "session ended: no input for {}",
                    human(spec.idle_timeout)
                )),
            )
            .await;
        }
        _ => {}
    }
    input_task.abort();
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
    let farewell = async {
        if reason != EndReason::ClientClosed {
            if let Some(st) = status {
                sink.send(Message::Binary(ServerFrame::Exit(st).encode().into()))
                    .await?;
            }
            sink.send(close(close_code::NORMAL, reason.as_str()))
                .await?;
        }
        sink.close().await
    };
    let _ = tokio::time::timeout(END_GRACE, farewell).await;
    ctx.metrics.exited(reason.as_str());
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
