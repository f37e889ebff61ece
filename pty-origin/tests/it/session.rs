//! A session end to end through the real server, a real PTY and the real sandbox:
//! echo, resize, bulk output with pause/resume, exit status, timeouts, build reuse,
//! shutdown.

use std::time::{Duration, Instant};

use crate::common::{fixture_site, Origin, SECS};
use terminal_protocol::{ClientFrame, ExitStatus, WindowSize};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoes_keystrokes_and_shows_motd() {
    let origin = Origin::start(&fixture_site());
    let mut t = origin.connect("shell").await;
    t.expect("welcome to the fixture shell", SECS(10)).await;
    t.send("echo hel''lo-$((6*7))\r").await;
    t.expect("hello-42", SECS(10)).await;
    // The keystrokes themselves are echoed by the PTY's line discipline.
    assert!(t.text().contains("echo hel''lo-$((6*7))"), "{}", t.text());
    let out = t.run("cat hello.txt; id -u; hostname", SECS(10)).await;
    assert!(out.contains("hello from the site"), "{out}");
    assert!(out.contains("1000"), "not uid 1000 inside: {out}");
    assert!(out.contains("folio"), "{out}");
}

/// `Term::run` returns what the command printed and nothing of the typed line: a test that
/// looks for text from its own command line finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_returns_only_what_the_command_printed() {
    let origin = Origin::start(&fixture_site());
    let mut t = origin.connect("shell").await;
    let out = t.run("echo typed-not-printed >/dev/null", SECS(10)).await;
    assert_eq!(
        out, "",
        "the echo of the command line leaked into run()'s result"
    );
    let out = t.run("echo printed-$((6*7))", SECS(10)).await;
    assert_eq!(out, "printed-42\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_changes_stty_size() {
    let origin = Origin::start(&fixture_site());
    let mut t = origin.connect("shell").await;
    let out = t.run("stty size", SECS(10)).await;
    assert!(out.contains("24 80"), "initial size: {out}");
    t.frame(ClientFrame::Resize(WindowSize::new(132, 43).unwrap()))
        .await;
    let out = t.run("stty size", SECS(10)).await;
    assert!(out.contains("43 132"), "after resize: {out}");
    // The shell got SIGWINCH too: bash updates $COLUMNS after each command.
    let out = t.run("echo cols=$COLUMNS", SECS(10)).await;
    assert!(out.contains("cols=132"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_exit_status() {
    let origin = Origin::start(&fixture_site());
    let mut t = origin.connect("shell").await;
    t.expect("welcome", SECS(10)).await;
    t.send("exit 7\r").await;
    assert_eq!(t.wait_exit(SECS(10)).await, ExitStatus::Code(7));

    let mut t = origin.connect("shell").await;
    t.expect("welcome", SECS(10)).await;
    t.send("kill -HUP $$\r").await;
    assert_eq!(t.wait_exit(SECS(10)).await, ExitStatus::Signal(1));
}

/// 50 MB through the PTY, byte for byte, with the client pausing mid-stream: while paused
/// no output arrives (the demo is blocked on the full PTY), after resume it all arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_50_mb_intact_with_pause_and_resume() {
    let origin = Origin::start(&fixture_site());
    let mut t = origin.connect("shell").await;
    t.expect("welcome", SECS(10)).await;
    // seq 1 6200000 prints 50,888,896 bytes; the PTY turns each \n into \r\n.
    const N: u64 = 6_200_000;
    let mut expected = Vec::with_capacity(60_000_000);
    for i in 1..=N {
        expected.extend_from_slice(i.to_string().as_bytes());
        expected.extend_from_slice(b"\r\n");
    }
    assert!(expected.len() >= 50_000_000);
    t.send(&format!(
        "stty -echo; printf 'BE%sIN\\n' G; seq 1 {N}; printf 'EN%s\\n' D\r"
    ))
    .await;
    t.expect("BEGIN\r\n", SECS(10)).await;

    // Let some output flow, then pause.
    while t.output.len() < 5_000_000 {
        assert!(t.pump(SECS(10)).await, "stream stalled");
    }
    t.frame(ClientFrame::Pause).await;
    // What was in flight when we paused still arrives; then nothing.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(500) {
        t.pump(Duration::from_millis(100)).await;
    }
    let at_pause = t.output.len();
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_millis(1500) {
        t.pump(Duration::from_millis(100)).await;
    }
    assert_eq!(t.output.len(), at_pause, "output kept flowing while paused");
    assert!(!t.text().contains("END\r\n"));
    t.frame(ClientFrame::Resume).await;

    t.expect("END\r\n", SECS(120)).await;
    let text = &t.output;
    let begin = find(text, b"BEGIN\r\n").unwrap() + 7;
    let end = find(text, b"END\r\n").unwrap();
    assert_eq!(end - begin, expected.len(), "length differs");
    assert!(text[begin..end] == expected[..], "content differs");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_warns_then_ends() {
    let origin = Origin::start(&fixture_site());
    let started = Instant::now();
    let mut t = origin.connect("timeouts").await;
    t.expect_notice("unless you type something", SECS(5)).await;
    t.expect_notice("no input for 3 s", SECS(5)).await;
    assert_eq!(t.wait_exit(SECS(5)).await, ExitStatus::Signal(9));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2900) && took < SECS(6),
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_timeout_ends_even_a_busy_session() {
    let origin = Origin::start(&fixture_site());
    let started = Instant::now();
    let mut t = origin.connect("timeouts").await;
    // Keep typing so the idle timeout (3 s) never fires; the wall clock (6 s) does.
    let mut warned = false;
    while !t.closed && started.elapsed() < SECS(12) {
        t.send("true\r").await;
        t.pump(Duration::from_millis(500)).await;
        warned |= t.notices.iter().any(|n| n.contains("(time limit)"));
    }
    assert!(warned, "no warning before the time limit: {:?}", t.notices);
    assert!(
        t.notices
            .iter()
            .any(|n| n.contains("time limit of 6 s reached")),
        "{:?}",
        t.notices
    );
    assert_eq!(t.exit, Some(ExitStatus::Signal(9)));
    assert!(started.elapsed() >= SECS(6) && started.elapsed() < SECS(9));
    assert!(!t.notices.iter().any(|n| n.contains("no input")));
}

/// The build step ran once at origin start; every session gets a private copy of its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_runs_once_and_is_reused() {
    let origin = Origin::start(&fixture_site());
    let mut stamps = vec![];
    for code in [0, 5] {
        let mut t = origin.connect("built").await;
        t.expect("hello from a built demo, built at ", SECS(10))
            .await;
        t.expect("\n", SECS(5)).await;
        let text = t.text();
        let stamp = text
            .split("built at ")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .trim()
            .to_owned();
        assert!(stamp.len() > 10, "{text}");
        stamps.push(stamp);
        t.send(&format!("{code}\r")).await;
        assert_eq!(t.wait_exit(SECS(10)).await, ExitStatus::Code(code));
    }
    assert_eq!(stamps[0], stamps[1], "the build ran again");
    assert_eq!(origin.logs().matches("\"event\":\"build\"").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_clients_and_reaps_everything() {
    let mut origin = Origin::start(&fixture_site());
    let mut t = origin.connect("shell").await;
    t.run("(sleep 4242 &); setsid sleep 4243 & true", SECS(10))
        .await;
    // Both are seen running on the host before the SIGTERM (a background job may still be
    // between fork and exec when the prompt returns), so "gone after" means "reaped".
    for n in [4242, 4243] {
        let deadline = Instant::now() + SECS(5);
        while crate::common::host_processes_matching(&format!("sleep {n}")).is_empty() {
            assert!(Instant::now() < deadline, "sleep {n} never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let status = origin.terminate();
    assert!(status.success(), "origin exit status {status:?}");
    t.expect_notice("shutting down", SECS(5)).await;
    assert_eq!(t.wait_exit(SECS(5)).await, ExitStatus::Signal(9));
    assert!(crate::common::host_processes_matching("sleep 4242").is_empty());
    assert!(crate::common::host_processes_matching("sleep 4243").is_empty());
    assert!(origin.logs().contains("\"event\":\"stopped\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics() {
    let origin = Origin::start(&fixture_site());
    let (code, body) = origin.get("/healthz");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["capacity"], 4);
    assert_eq!(v["active"], 0);
    assert_eq!(v["sandbox"], "bubblewrap");
    let mut t = origin.connect("shell").await;
    t.run("echo hi", SECS(10)).await;
    let (_, body) = origin.get("/healthz");
    assert!(body.contains("\"active\":1"), "{body}");
    assert_eq!(origin.metric("folio_pty_sessions_active"), Some(1));
    assert_eq!(
        origin.metric("folio_pty_sessions_total{demo=\"shell\"}"),
        Some(1)
    );
    assert!(origin.metric("folio_pty_bytes_out_total").unwrap() > 0);
    assert!(origin.metric("folio_pty_bytes_in_total").unwrap() > 0);
    t.send("exit 3\r").await;
    t.wait_exit(SECS(10)).await;
    // The slot is freed once the session's task has cleaned up (after the exit frame): wait
    // for it rather than for a fixed time, which a loaded machine can outlast.
    let freed = Instant::now();
    while origin.metric("folio_pty_sessions_active") != Some(0) && freed.elapsed() < SECS(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(origin.metric("folio_pty_sessions_active"), Some(0));
    assert_eq!(
        origin.metric("folio_pty_session_exits_total{reason=\"exit\"}"),
        Some(1)
    );
    // Every log line is one JSON object; session events carry the session id.
    for line in origin.logs().lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        if v["event"] == "session_start" || v["event"] == "session_end" {
            assert_eq!(v["session"].as_str().unwrap().len(), 16, "{line}");
        }
    }
}

/// A client that breaks the protocol loses its session, and nothing of it is left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_end_the_session() {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let origin = Origin::start(&fixture_site());
    let bad_frames: Vec<Message> = vec![
        Message::Binary(vec![0x09u8, 1, 2].into()), // unknown type
        Message::Binary(b"\x01{\"cols\":0,\"rows\":5}".to_vec().into()), // size out of range
        Message::Binary(vec![0x02u8, 0].into()),    // pause with a payload
        Message::Text("{\"cols\":80,\"rows\":24}".into()), // a second hello
    ];
    for bad in bad_frames {
        let mut t = origin.connect("shell").await;
        t.run("echo up", SECS(10)).await;
        t.ws.send(bad.clone()).await.unwrap();
        let deadline = Instant::now() + SECS(10);
        while !t.closed && Instant::now() < deadline {
            t.pump(SECS(1)).await;
        }
        assert!(t.closed, "still open after {bad:?}");
    }
    // A binary first frame instead of the hello: a notice, then the close, no process.
    let ws = origin
        .open("shell", Some(&origin.token("shell")), &[])
        .await
        .unwrap();
    let mut t = crate::common::Term::new(ws);
    t.frame(ClientFrame::Input(b"ls\r".to_vec())).await;
    t.expect_notice("protocol error", SECS(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        origin.descendants().is_empty(),
        "{:?}",
        origin.descendants()
    );
    assert_eq!(
        origin.metric("folio_pty_session_exits_total{reason=\"error\"}"),
        Some(5)
    );
}

/// `folio-pty token` mints what the origin accepts (the local stand-in for the Worker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_subcommand_mints_an_accepted_token() {
    let origin = Origin::start(&fixture_site());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_folio-pty"))
        .args(["token", "--demo", "shell", "--ttl", "20", "--secret-file"])
        .arg(&origin.secret_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let ws = origin
        .open("shell", Some(&token), &[])
        .await
        .expect("accepted");
    let mut t = crate::common::Term::new(ws);
    t.hello(80, 24).await;
    t.run("echo minted", SECS(10)).await;
    // Longer than the protocol allows is refused at the command line.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_folio-pty"))
        .args(["token", "--demo", "shell", "--ttl", "3600", "--secret-file"])
        .arg(&origin.secret_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
