//! Hostile clients of the relay, at the origin directly (issue 11, threats 5 and 9): a client
//! that floods its terminal and stops reading must lose its slot at the session's deadline,
//! and a token, once used, stays used after the origin restarts.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::{fixture_site, Origin, Term, SECS};

/// A WebSocket client frame (masked, as RFC 6455 requires of clients).
pub(crate) fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Opens a raw TCP connection with a small receive buffer, completes the WebSocket handshake
/// for `path` with `token` as bearer, and returns the socket (nothing read past the 101).
pub(crate) async fn raw_upgrade(addr: SocketAddr, path: &str, token: &str) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    // Small buffers on the client's side: the origin's sends block sooner.
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(addr).await.unwrap().into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    let mut s = stream;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    // Read the response head one byte at a time, so nothing after it is consumed.
    s.set_read_timeout(Some(SECS(10))).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

fn active(origin: &Origin) -> u64 {
    let (_, body) = origin.get("/healthz");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["active"].as_u64().unwrap()
}

/// Threat 5: a client that starts a flood and never reads again. Before, the origin sent
/// output inside its select loop, so a send blocked on the full socket stopped the idle and
/// wall-clock timers too: the slot (and `yes`) stayed for as long as the client kept the
/// connection open. Now every send is bounded by the session's deadlines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_slot_at_the_idle_deadline() {
    let origin = Origin::start(&fixture_site());
    // The `timeouts` demo: idle 3 s, wall clock 6 s.
    let started = Instant::now();
    let mut s = raw_upgrade(origin.addr, "/terminal/timeouts", &origin.token("timeouts")).await;
    s.write_all(&client_frame(0x1, br#"{"cols":80,"rows":24}"#))
        .unwrap();
    s.write_all(&client_frame(0x2, b"\x00yes folio-flood-$((6*7))\r"))
        .unwrap();
    // From here on the client never reads, and keeps the connection open.
    let mut flooding = false;
    let freed_at = loop {
        let elapsed = started.elapsed();
        if !flooding && !crate::common::host_processes_matching("yes folio-flood-42").is_empty() {
            flooding = true;
        }
        if active(&origin) == 0 {
            break elapsed;
        }
        assert!(
            elapsed < SECS(15),
            "the slot of a client that stopped reading was never freed (flooding: {flooding}); logs:\n{}",
            origin.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(flooding, "the flood never started: {}", origin.logs());
    assert!(
        freed_at >= Duration::from_millis(2900),
        "freed before the idle deadline: {freed_at:?}"
    );
    let ended_by_deadline = origin
        .metric("folio_pty_session_exits_total{reason=\"idle\"}")
        .or_else(|| origin.metric("folio_pty_session_exits_total{reason=\"timeout\"}"));
    assert_eq!(ended_by_deadline, Some(1), "{}", origin.logs());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        crate::common::host_processes_matching("yes folio-flood-42").is_empty(),
        "the flood outlived its session"
    );
    // The freed slot takes a new session at once.
    let mut t = origin.connect("shell").await;
    let out = t.run("echo M-$((6*7))", SECS(10)).await;
    assert!(out.contains("M-42"), "{out}");
    drop(s);
}

/// Threat 9: the replay cache was per process, so restarting the origin reopened every
/// token still inside its lifetime. Now used nonces are persisted in the state directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_token_stays_used_after_the_origin_restarts() {
    crate::common::require_bwrap();
    let keep = std::env::temp_dir().join(format!(
        "folio-pty-test-{}-restart-{}",
        std::process::id(),
        crate::common::now()
    ));
    let _ = std::fs::remove_dir_all(&keep);
    std::fs::create_dir_all(&keep).unwrap();
    let state = keep.join("state");
    let state_arg = state.to_str().unwrap().to_owned();
    let mut first = Origin::start_with(&fixture_site(), &["--state-dir", &state_arg], None)
        .expect("origin failed to start");
    let secret_file = keep.join("secret");
    std::fs::copy(&first.secret_path, &secret_file).unwrap();
    let token = first.token("shell");
    let ws = first
        .open("shell", Some(&token), &[])
        .await
        .expect("first use is accepted");
    let mut t = Term::new(ws);
    t.hello(80, 24).await;
    let out = t.run("echo M-$((6*7))", SECS(10)).await;
    assert!(out.contains("M-42"), "{out}");
    drop(t);
    assert!(first.terminate().success());

    let second = Origin::start_with(
        &fixture_site(),
        &[
            "--state-dir",
            &state_arg,
            "--secret-file",
            secret_file.to_str().unwrap(),
        ],
        None,
    )
    .expect("origin failed to restart");
    assert_eq!(
        second.open("shell", Some(&token), &[]).await.err(),
        Some(401),
        "a used token opened a session after a restart"
    );
    assert_eq!(
        second.metric("folio_pty_sessions_refused_total{reason=\"replay\"}"),
        Some(1)
    );
    // A fresh token with the same secret still works: the refusal was the replay.
    let fresh = terminal_protocol::mint(
        &std::fs::read(&secret_file).unwrap(),
        "shell",
        crate::common::now() + 30,
        *b"fresh-nonce-1234",
        &crate::common::CLIENT,
    );
    let ws = second
        .open("shell", Some(&fresh), &[])
        .await
        .expect("a fresh token is accepted");
    let mut t = Term::new(ws);
    t.hello(80, 24).await;
    let out = t.run("echo M-$((7*8))", SECS(10)).await;
    assert!(out.contains("M-56"), "{out}");
    drop(second);
    let _ = std::fs::remove_dir_all(&keep);
}
