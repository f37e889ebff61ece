//! `folio-pty record`: makes a demo's recording (asciicast v2) by running the demo exactly
//! as a visitor's session runs it — the same preparation ([`crate::prepare`]), the same
//! sandbox ([`crate::sandbox::Sandbox::spawn_session`]: bubblewrap, seccomp, limits), the
//! same PTY and the same greeting (`motd`) — driven by the page's `[[demo.script]]`:
//! `type` writes keystrokes, `wait` waits for text in the output (failing after its
//! timeout), `sleep` pauses. There is no unsandboxed mode: a recording is made by running
//! the author's code, and the page's readers see what it printed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use folio_content::asciicast::{Cast, Event, EventKind};
use folio_content::demo::{DemoSpec, ScriptAction};
use terminal_protocol::WindowSize;
use tokio::sync::mpsc;

use crate::sandbox::find_bwrap;

/// The pause after each character a `type` step types.
const KEY_DELAY: Duration = Duration::from_millis(45);
/// How long output is still recorded after the script's last step.
const SETTLE: Duration = Duration::from_millis(500);
/// Longest pause kept in the file: players cap idle gaps anyway, this keeps the file honest
/// about what a visitor waits for (`idle_time_limit` in the header).
const IDLE_TIME_LIMIT: f64 = 1.0;

/// What to record and where.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The site's root.
    #[arg(long)]
    pub site: PathBuf,
    /// The demo id (its page's slug).
    #[arg(long)]
    pub demo: String,
    /// Where to write the recording; default the page's `[demo] recording`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Terminal width.
    #[arg(long, default_value_t = 80)]
    pub cols: u16,
    /// Terminal height.
    #[arg(long, default_value_t = 24)]
    pub rows: u16,
    /// Where to create the (fresh) runtime directory; default $RUNTIME_DIRECTORY or a new
    /// private directory in the temp dir.
    #[arg(long)]
    pub runtime_dir: Option<PathBuf>,
}

/// Runs the demo's script in the sandbox and writes the recording; returns where it went
/// and how long it is.
pub async fn record(args: RecordArgs) -> anyhow::Result<(PathBuf, f64)> {
    let site = folio_content::demo::load(&args.site)
        .map_err(|d| anyhow::anyhow!("{d}"))
        .with_context(|| format!("loading demos of {}", args.site.display()))?;
    let Some(spec) = site.demos.iter().find(|d| d.id == args.demo) else {
        bail!(
            "no demo {:?} in {} (declared: {})",
            args.demo,
            args.site.display(),
            site.demos
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let out = match (&args.out, &spec.recording) {
        (Some(o), _) => o.clone(),
        (None, Some(r)) => r.clone(),
        (None, None) => bail!(
            "{}: [demo] has no `recording = \"demo.cast\"`: add it (or pass --out)",
            spec.page.display()
        ),
    };
    if spec.script.is_empty() {
        bail!(
            "{}: [demo] has no [[demo.script]] steps to record (e.g. {{ type = \"ls\\n\" }}, {{ wait = \"$ \" }}, {{ sleep = 1 }})",
            spec.page.display()
        );
    }
    let size = WindowSize::new(u32::from(args.cols), u32::from(args.rows))
        .map_err(|e| anyhow::anyhow!("--cols/--rows: {e}"))?;
    let (sandbox, runtime, temp) = crate::commands::one_shot_sandbox(
        Some(find_bwrap()?),
        args.runtime_dir.clone(),
        "folio-pty-record",
        &site.terminal,
    )?;
    let result = run(&sandbox, spec, size).await;
    crate::limits::cleanup(&sandbox.cgroups);
    let _ = std::fs::remove_dir_all(&runtime);
    drop(temp);
    let mut cast = result?;
    cast.title = Some(spec.title.clone());
    let text = cast.to_asciicast(Some(chrono::Utc::now().timestamp()));
    write_atomically(&out, text.as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    Ok((out, cast.duration()))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("cast.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Prepares the demo, runs it in a session of the sandbox and follows the script.
async fn run(
    sandbox: &crate::sandbox::Sandbox,
    spec: &DemoSpec,
    size: WindowSize,
) -> anyhow::Result<Cast> {
    let prepared = crate::prepare::prepare(sandbox, spec).await?;
    let (master, slave) = crate::pty::open(size).context("opening a PTY")?;
    let name = format!("record-{}-{}", spec.id, std::process::id());
    let mut spawned = sandbox
        .spawn_session(&prepared.dir, &spec.command, &slave, &name)
        .context("starting the demo in the sandbox")?;
    drop(slave);
    let started = Instant::now();
    let master = Arc::new(master);
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>(64);
    let reader = {
        let master = master.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match master.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send((Instant::now(), buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                }
            }
        })
    };
    let mut rec = Recorder {
        started,
        rx,
        events: Vec::new(),
        pending: Vec::new(),
        seen: String::new(),
        searched: 0,
        eof: false,
    };
    if let Some(motd) = &spec.motd {
        // As a live session greets the visitor (session.rs).
        let text = format!("{}\r\n", motd.replace("\r\n", "\n").replace('\n', "\r\n"));
        rec.output(started, text.as_bytes());
    }
    let deadline = started + spec.timeout;
    let mut outcome = Ok(());
    for (i, step) in spec.script.iter().enumerate() {
        let n = i + 1;
        let step_result = match step {
            ScriptAction::Type(text) => {
                // At a typist's pace, so the replay shows the command being typed.
                let mut r = Ok(());
                for ch in text.replace('\n', "\r").chars() {
                    let mut b = [0u8; 4];
                    if let Err(e) = master.write_all(ch.encode_utf8(&mut b).as_bytes()).await {
                        r = Err(anyhow::Error::new(e)
                            .context(format!("script step {n}: the demo is no longer reading")));
                        break;
                    }
                    rec.pump_until(Instant::now() + KEY_DELAY).await;
                }
                r
            }
            ScriptAction::Sleep(d) => {
                rec.pump_until(std::cmp::min(Instant::now() + *d, deadline))
                    .await;
                Ok(())
            }
            ScriptAction::Wait { text, timeout } => {
                let until = std::cmp::min(Instant::now() + *timeout, deadline);
                if rec.wait_for(text, until).await {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!(
                        "script step {n}: {text:?} did not appear within {:.1} s{}; the output ended with:\n{}",
                        timeout.as_secs_f64(),
                        if rec.eof { " (the demo exited)" } else { "" },
                        tail(&rec.seen, 400)
                    ))
                }
            }
        };
        if let Err(e) = step_result {
            outcome = Err(e);
            break;
        }
        if Instant::now() >= deadline {
            outcome = Err(anyhow::anyhow!(
                "the script took longer than the demo's timeout ({} s)",
                spec.timeout.as_secs()
            ));
            break;
        }
    }
    if outcome.is_ok() {
        rec.pump_until(Instant::now() + SETTLE).await;
    }
    // The session ends as a visitor's does: the demo and everything it started are killed.
    let _ = spawned.child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), spawned.child.wait()).await;
    drop(spawned);
    reader.abort();
    outcome?;
    rec.flush();
    let mut events = rec.events;
    compress_idle(&mut events, IDLE_TIME_LIMIT);
    Ok(Cast {
        width: size.cols,
        height: size.rows,
        title: None,
        idle_time_limit: Some(IDLE_TIME_LIMIT),
        events,
    })
}

/// Caps every pause between events at `limit` seconds (as `asciinema rec -i` does), so a
/// slow build does not become a long blank stretch for the reader.
fn compress_idle(events: &mut [Event], limit: f64) {
    let mut shift = 0.0;
    let mut prev_orig = 0.0;
    let mut prev_new = 0.0;
    for e in events.iter_mut() {
        let gap = e.time - prev_orig;
        prev_orig = e.time;
        if gap > limit {
            shift += gap - limit;
        }
        e.time = (e.time - shift).max(prev_new);
        prev_new = e.time;
    }
}

/// What the demo printed so far: the events, and the same text without escape sequences
/// for `wait` to search.
struct Recorder {
    started: Instant,
    rx: mpsc::Receiver<(Instant, Vec<u8>)>,
    events: Vec<Event>,
    /// Bytes of an incomplete UTF-8 sequence at the end of the last read.
    pending: Vec<u8>,
    seen: String,
    /// Where the next `wait` starts searching in `seen` (after the previous match).
    searched: usize,
    eof: bool,
}

impl Recorder {
    fn output(&mut self, at: Instant, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        let text = take_utf8(&mut self.pending);
        if text.is_empty() {
            return;
        }
        strip_escapes(&text, &mut self.seen);
        self.events.push(Event {
            time: at.duration_since(self.started).as_secs_f64(),
            kind: EventKind::Output(text),
        });
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let text = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
            let time = self.events.last().map_or(0.0, |e| e.time);
            self.events.push(Event {
                time,
                kind: EventKind::Output(text),
            });
        }
    }

    /// Takes what has already arrived, without waiting.
    fn pump_ready(&mut self) {
        while let Ok((at, bytes)) = self.rx.try_recv() {
            self.output(at, &bytes);
        }
    }

    /// Records output until `until`.
    async fn pump_until(&mut self, until: Instant) {
        while !self.eof {
            match tokio::time::timeout_at(until.into(), self.rx.recv()).await {
                Ok(Some((at, bytes))) => self.output(at, &bytes),
                Ok(None) => self.eof = true,
                Err(_) => return,
            }
        }
    }

    /// Records output until `text` appears after the previous match; false at `until` or
    /// when the demo's output ends first.
    async fn wait_for(&mut self, text: &str, until: Instant) -> bool {
        loop {
            self.pump_ready();
            if let Some(pos) = self.seen[self.searched..].find(text) {
                self.searched += pos + text.len();
                return true;
            }
            if self.eof {
                return false;
            }
            match tokio::time::timeout_at(until.into(), self.rx.recv()).await {
                Ok(Some((at, bytes))) => self.output(at, &bytes),
                Ok(None) => self.eof = true,
                Err(_) => return false,
            }
        }
    }
}

/// The complete UTF-8 text at the start of `buf` (invalid bytes become U+FFFD), leaving an
/// incomplete sequence at its end for the next read.
fn take_utf8(buf: &mut Vec<u8>) -> String {
    let mut out = String::new();
    loop {
        match std::str::from_utf8(buf) {
            Ok(s) => {
                out.push_str(s);
                buf.clear();
                return out;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.push_str(std::str::from_utf8(&buf[..valid]).unwrap_or_default());
                match e.error_len() {
                    Some(bad) => {
                        out.push('\u{FFFD}');
                        buf.drain(..valid + bad);
                    }
                    None => {
                        buf.drain(..valid);
                        return out;
                    }
                }
            }
        }
    }
}

/// Appends `text` to `out` without terminal escape sequences (CSI, OSC, two-byte escapes)
/// or carriage returns, so `wait` matches what a reader sees.
fn strip_escapes(text: &str, out: &mut String) {
    #[derive(PartialEq)]
    enum S {
        Text,
        Esc,
        Csi,
        Osc,
        OscEsc,
    }
    let mut s = S::Text;
    for ch in text.chars() {
        s = match s {
            S::Text => match ch {
                '\u{1b}' => S::Esc,
                '\r' => S::Text,
                c => {
                    out.push(c);
                    S::Text
                }
            },
            S::Esc => match ch {
                '[' => S::Csi,
                ']' => S::Osc,
                // Intermediate bytes (`ESC ( B`): the sequence ends at its final byte.
                '\u{20}'..='\u{2f}' => S::Esc,
                _ => S::Text,
            },
            S::Csi => {
                if ('\u{40}'..='\u{7e}').contains(&ch) {
                    S::Text
                } else {
                    S::Csi
                }
            }
            S::Osc => match ch {
                '\u{7}' => S::Text,
                '\u{1b}' => S::OscEsc,
                _ => S::Osc,
            },
            S::OscEsc => S::Text,
        };
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_not_text() {
        let mut out = String::new();
        strip_escapes(
            "\u{1b}]0;title\u{7}\u{1b}[1;32m$ \u{1b}[0mready\r\n\u{1b}(B",
            &mut out,
        );
        assert_eq!(out, "$ ready\n");
    }

    #[test]
    fn split_utf8_waits_for_its_end() {
        let mut buf = "é".as_bytes()[..1].to_vec();
        assert_eq!(take_utf8(&mut buf), "");
        buf.extend_from_slice(&"é".as_bytes()[1..]);
        buf.push(0xff);
        buf.push(b'x');
        assert_eq!(take_utf8(&mut buf), "é\u{FFFD}x");
        assert!(buf.is_empty());
    }

    #[test]
    fn long_pauses_are_capped() {
        let mut ev: Vec<Event> = [0.2, 0.5, 5.5, 6.0]
            .iter()
            .map(|t| Event {
                time: *t,
                kind: EventKind::Output("x".into()),
            })
            .collect();
        compress_idle(&mut ev, 1.0);
        let times: Vec<f64> = ev.iter().map(|e| (e.time * 10.0).round() / 10.0).collect();
        assert_eq!(times, vec![0.2, 0.5, 1.5, 2.0]);
    }
}
