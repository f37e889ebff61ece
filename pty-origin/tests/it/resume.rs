//! Resumable sessions through the real server, a real PTY and the real sandbox: a dropped
//! connection is resumed with the origin's resume token and finds the same shell and what
//! it missed; tokens are single-use, bound to the visitor key, unforgeable and expiring; a
//! session nobody resumes dies with its grace period; a flood while away stays bounded.

use std::io::Read as _;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures_util::SinkExt as _;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{fixture_site, now, require_bwrap, Origin, Term, CLIENT, SECS};

fn origin(grace: &str) -> Origin {
    require_bwrap();
    Origin::start_with(&fixture_site(), &["--resume-grace", grace], None)
        .expect("origin failed to start")
}

/// Opens `/terminal/<demo>?resume=1` with a fresh start token for `client` and sends a
/// resume hello.
async fn resume(o: &Origin, client: &[u8; 32], token: &str, received: u64) -> Term {
    let mut req = format!("ws://{}/terminal/shell?resume=1", o.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", o.token_for("shell", client))
            .parse()
            .unwrap(),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    let mut t = Term::new(ws);
    let hello = serde_json::json!({"cols": 80, "rows": 24, "resume": token, "received": received});
    t.ws.send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    t
}

/// Waits for the server to close `t`; its close code.
async fn closed_with(t: &mut Term) -> Option<u16> {
    let deadline = Instant::now() + SECS(10);
    while !t.closed && Instant::now() < deadline {
        t.pump(Duration::from_millis(200)).await;
    }
    assert!(t.closed, "server did not close");
    t.close_code
}

/// Waits until the origin issued a resume token on `t`.
async fn token_of(t: &mut Term) -> String {
    let deadline = Instant::now() + SECS(10);
    while t.resume_token.is_none() && Instant::now() < deadline {
        t.pump(Duration::from_millis(200)).await;
    }
    t.resume_token.clone().expect("no resume token issued")
}

/// Cuts the connection the way a lost network does: no close frame, the socket just goes.
fn cut(t: Term) {
    drop(t);
}

/// A started session with a variable set, cut while a command is still going to print.
async fn session_cut_mid_command(o: &Origin) -> (String, u64) {
    let mut t = o.connect("shell").await;
    let token = token_of(&mut t).await;
    assert!(token.starts_with("r1.shell."), "{token}");
    t.run("export RESUME_MARK=kiwi-$((6*7))", SECS(10)).await;
    t.send("sleep 2; echo while-away-$((20+22))\r").await;
    // Let the echo of the typed line arrive, so `received` is what the client really has.
    t.pump(Duration::from_millis(500)).await;
    let received = t.output.len() as u64;
    let token = t.resume_token.clone().unwrap();
    cut(t);
    (token, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_resumes_with_its_shell_and_what_it_missed() {
    let o = origin("30");
    let (token, received) = session_cut_mid_command(&o).await;
    tokio::time::sleep(SECS(3)).await; // the command prints while nobody is connected
    let mut t = resume(&o, &CLIENT, &token, received).await;
    t.expect("while-away-42", SECS(10)).await;
    let fresh = token_of(&mut t).await;
    assert_ne!(fresh, token, "a resume issues a fresh token");
    let out = t.run("echo mark=$RESUME_MARK", SECS(10)).await;
    assert!(out.contains("mark=kiwi-42"), "not the same shell: {out}");
    assert!(o.logs().contains("\"event\":\"session_resumed\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_token_works_once_and_for_its_visitor_only() {
    let o = origin("30");
    let (token, received) = session_cut_mid_command(&o).await;
    // Another visitor key (a thief behind another address) is refused, and that refusal
    // does not spend the token.
    let mut thief = resume(&o, &[0x22; 32], &token, 0).await;
    assert_eq!(closed_with(&mut thief).await, Some(4410));
    assert!(thief.output.is_empty(), "the thief saw output");
    let mut t = resume(&o, &CLIENT, &token, received).await;
    t.expect("while-away-42", SECS(10)).await;
    // The same token again (a replay, even by the same visitor): refused.
    let mut again = resume(&o, &CLIENT, &token, received).await;
    assert_eq!(closed_with(&mut again).await, Some(4410));
    // The first resume is untouched by the refused replay.
    let out = t.run("echo still-$((1+1))", SECS(10)).await;
    assert!(out.contains("still-2"), "{out}");
    // The fresh token, on the other hand, takes the session over (a half-open old
    // connection is closed as taken over).
    let fresh = t.resume_token.clone().unwrap();
    let mut t2 = resume(&o, &CLIENT, &fresh, t.output.len() as u64).await;
    assert_eq!(closed_with(&mut t).await, Some(4409));
    let out = t2.run("echo mark=$RESUME_MARK", SECS(10)).await;
    assert!(out.contains("mark=kiwi-42"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_altered_and_expired_resume_tokens_are_refused() {
    let o = origin("30");
    let (token, received) = session_cut_mid_command(&o).await;
    let f: Vec<&str> = token.split('.').collect();
    let (session, nonce_b64) = (f[2], f[4]);
    let nonce: [u8; 16] = URL_SAFE_NO_PAD
        .decode(nonce_b64)
        .unwrap()
        .try_into()
        .unwrap();
    let wrong_secret = b"not the origin's secret, but just as long as one";
    let forged =
        terminal_protocol::mint_resume(wrong_secret, "shell", session, now() + 60, nonce, &CLIENT);
    let expired =
        terminal_protocol::mint_resume(&o.secret, "shell", session, now() - 1, nonce, &CLIENT);
    let too_long = terminal_protocol::mint_resume(
        &o.secret,
        "shell",
        session,
        now() + 100_000,
        nonce,
        &CLIENT,
    );
    let mut altered = token.clone();
    altered.replace_range(
        altered.len() - 2..,
        if token.ends_with("AA") { "AB" } else { "AA" },
    );
    // A start token is no resume token.
    let start = o.token("shell");
    for bad in [
        forged,
        expired,
        too_long,
        altered,
        start,
        "r1.x".to_owned(),
        "A".repeat(5000),
    ] {
        let mut t = resume(&o, &CLIENT, &bad, received).await;
        assert_eq!(closed_with(&mut t).await, Some(4410), "accepted {bad:.40}");
    }
    // A resume without ?resume=1 is no resume either: the hello is a protocol error.
    let mut t = o
        .open("shell", Some(&o.token("shell")), &[])
        .await
        .map(Term::new)
        .unwrap();
    let hello = serde_json::json!({"cols": 80, "rows": 24, "resume": token, "received": 0});
    t.ws.send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    assert_eq!(closed_with(&mut t).await, Some(1002));
    // None of these spent the real token.
    let mut t = resume(&o, &CLIENT, &token, received).await;
    t.expect("while-away-42", SECS(10)).await;
    let refused = o.logs().matches("\"event\":\"resume_refused\"").count();
    assert!(refused >= 7, "{refused} refusals logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_ends_an_abandoned_session_and_its_processes() {
    let o = origin("2");
    let mut t = o.connect("shell").await;
    let token = token_of(&mut t).await;
    t.run("sleep 1000 & echo started-$((2+3))", SECS(10)).await;
    assert!(!o.descendants().is_empty());
    let received = t.output.len() as u64;
    cut(t);
    let deadline = Instant::now() + SECS(20);
    while !o.logs().contains("\"reason\":\"grace_expired\"") {
        assert!(
            Instant::now() < deadline,
            "grace did not expire: {}",
            o.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + SECS(10);
    while !o.descendants().is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes left: {:?}",
            o.descendants()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut late = resume(&o, &CLIENT, &token, received).await;
    assert_eq!(closed_with(&mut late).await, Some(4410));
    // The slot is free again (the fixture allows two per client).
    let mut a = o.connect("shell").await;
    let mut b = o.connect("shell").await;
    a.run("echo a-$((1+1))", SECS(10)).await;
    b.run("echo b-$((1+2))", SECS(10)).await;
}

/// The origin process's resident memory, KiB.
fn rss_kib(pid: u32) -> u64 {
    let mut s = String::new();
    std::fs::File::open(format!("/proc/{pid}/status"))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_while_away_is_bounded_and_reported() {
    let o = origin("30");
    let mut t = o.connect("shell").await;
    let token = token_of(&mut t).await;
    t.run("echo ready-$((4*4))", SECS(10)).await;
    let before = rss_kib(o.pid());
    t.send("yes flood-line\r").await;
    t.expect("flood-line\r\nflood-line", SECS(10)).await;
    let received = t.output.len() as u64;
    cut(t);
    // `yes` runs on with nobody connected.
    tokio::time::sleep(SECS(4)).await;
    let after = rss_kib(o.pid());
    assert!(
        after < before + 32 * 1024,
        "origin grew from {before} KiB to {after} KiB while buffering a flood"
    );
    let mut t = resume(&o, &CLIENT, &token, received).await;
    let deadline = Instant::now() + SECS(10);
    while !t
        .notices
        .iter()
        .any(|n| n.contains("dropped while you were away"))
    {
        assert!(
            Instant::now() < deadline,
            "no notice of dropped output: {:?}",
            t.notices
        );
        t.pump(Duration::from_millis(200)).await;
    }
    t.send("\x03").await;
    let out = t.run("echo calm-$((5*5))", SECS(20)).await;
    assert!(out.contains("calm-25"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_probe_counts_sessions_in_grace_and_says_busy_when_full() {
    let o = origin("30");
    let status = |o: &Origin| {
        let (code, body) = o.get("/terminal/shell");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v.get("demos").is_none(), "the probe lists no demos: {body}");
        (
            v["status"].as_str().unwrap().to_owned(),
            v["active"].as_u64().unwrap(),
        )
    };
    assert_eq!(status(&o), ("ok".to_owned(), 0));
    assert_eq!(o.get("/terminal/no-such-demo").0, 404);
    let mut t = o.connect("shell").await;
    token_of(&mut t).await;
    cut(t);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The dropped session is in its grace period: it still holds its slot.
    assert_eq!(status(&o), ("ok".to_owned(), 1));
    let mut held = vec![];
    for client in [[0x31; 32], [0x31; 32], [0x32; 32]] {
        let mut t = o.connect_client("shell", &client, &[]).await.unwrap();
        token_of(&mut t).await;
        held.push(t);
    }
    assert_eq!(status(&o), ("busy".to_owned(), 4));
}
