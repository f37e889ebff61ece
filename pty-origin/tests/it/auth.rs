//! Admission: every bad-token case is a 401 before any process starts; session caps hold
//! globally and per client; the origin refuses to run without its sandbox.

use std::time::Duration;

use crate::common::{fixture_site, now, Origin, CLIENT, SECS};

fn nonce(b: u8) -> [u8; 16] {
    let mut n = [b; 16];
    n[..8].copy_from_slice(&now().to_le_bytes());
    n
}

/// No bwrap child, no session counted, nothing started.
fn assert_nothing_started(origin: &Origin) {
    assert_eq!(
        origin.metric("folio_pty_sessions_total"),
        None,
        "a session started"
    );
    assert!(
        origin.descendants().is_empty(),
        "processes started: {:?}",
        origin.descendants()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_token_is_401_and_starts_nothing() {
    let origin = Origin::start(&fixture_site());
    let s = &origin.secret;
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("empty", Some(String::new())),
        ("garbage", Some("not-a-token".into())),
        (
            "bad signature",
            Some(terminal_protocol::mint(
                b"some other secret, also long enough",
                "shell",
                now() + 30,
                nonce(1),
                &CLIENT,
            )),
        ),
        (
            "expired",
            Some(terminal_protocol::mint(
                s,
                "shell",
                now() - 1,
                nonce(2),
                &CLIENT,
            )),
        ),
        (
            "expiry too far ahead",
            Some(terminal_protocol::mint(
                s,
                "shell",
                now() + 3600,
                nonce(3),
                &CLIENT,
            )),
        ),
        (
            "other demo",
            Some(terminal_protocol::mint(
                s,
                "built",
                now() + 30,
                nonce(4),
                &CLIENT,
            )),
        ),
        (
            "tampered",
            Some(
                terminal_protocol::mint(s, "shell", now() + 30, nonce(5), &CLIENT).replacen(
                    "v2.shell.",
                    "v2.shell.1",
                    1,
                ),
            ),
        ),
    ];
    for (what, token) in &cases {
        let r = origin.open("shell", token.as_deref(), &[]).await;
        assert_eq!(r.err(), Some(401), "{what}");
    }
    // The same through ?token= .
    let url = format!(
        "{}?token={}",
        origin.url("shell"),
        terminal_protocol::mint(s, "shell", now() - 5, nonce(6), &CLIENT)
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    assert_nothing_started(&origin);
    assert_eq!(
        origin.metric("folio_pty_sessions_refused_total{reason=\"unauthorized\"}"),
        Some(cases.len() as u64 + 1)
    );
    assert!(origin.logs().contains("token expired"), "the log says why");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_nonce_is_401() {
    let origin = Origin::start(&fixture_site());
    let token = origin.token("shell");
    let ws = origin
        .open("shell", Some(&token), &[])
        .await
        .expect("first use is fine");
    let mut t = crate::common::Term::new(ws);
    t.hello(80, 24).await;
    t.run("echo first", SECS(10)).await;
    assert_eq!(
        origin.open("shell", Some(&token), &[]).await.err(),
        Some(401)
    );
    assert_eq!(
        origin.metric("folio_pty_sessions_refused_total{reason=\"replay\"}"),
        Some(1)
    );
    assert_eq!(
        origin.metric("folio_pty_sessions_total{demo=\"shell\"}"),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_in_query_parameter_works() {
    let origin = Origin::start(&fixture_site());
    let url = format!("{}?token={}", origin.url("shell"), origin.token("shell"));
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("accepted");
    let mut t = crate::common::Term::new(ws);
    t.hello(80, 24).await;
    let out = t.run("echo via-query", SECS(10)).await;
    assert!(out.contains("via-query"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_demo_is_404() {
    let origin = Origin::start(&fixture_site());
    for demo in ["nope", "Shell", "..", "a%2Fb"] {
        let r = origin.open(demo, Some(&origin.token("shell")), &[]).await;
        assert_eq!(r.err(), Some(404), "{demo}");
    }
    assert_nothing_started(&origin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_caps_hold_globally_and_per_client() {
    // Fixture: max_sessions = 4, max_sessions_per_client = 2. The client is the token's
    // signed client claim (the Worker's key of the visitor's address).
    let origin = Origin::start(&fixture_site());
    let (a, b, c) = (&[1; 32], &[2; 32], &[3; 32]);
    let mut a1 = origin.connect_client("shell", a, &[]).await.unwrap();
    let _a2 = origin.connect_client("shell", a, &[]).await.unwrap();
    assert_eq!(
        origin.connect_client("shell", a, &[]).await.err(),
        Some(429),
        "third for one client"
    );
    let _b1 = origin.connect_client("shell", b, &[]).await.unwrap();
    let _b2 = origin.connect_client("shell", b, &[]).await.unwrap();
    assert_eq!(
        origin.connect_client("shell", c, &[]).await.err(),
        Some(503),
        "fifth overall"
    );
    let (_, health) = origin.get("/healthz");
    assert!(
        health.contains("\"active\":4") && health.contains("\"available\":0"),
        "{health}"
    );
    // A session ending frees its slot.
    a1.run("echo bye", SECS(10)).await;
    a1.send("exit\r").await;
    a1.wait_exit(SECS(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c1 = origin
        .connect_client("shell", c, &[])
        .await
        .expect("slot freed");
    c1.run("echo in", SECS(10)).await;
    assert_eq!(
        origin.metric("folio_pty_sessions_refused_total{reason=\"client_capacity\"}"),
        Some(1)
    );
    assert_eq!(
        origin.metric("folio_pty_sessions_refused_total{reason=\"capacity\"}"),
        Some(1)
    );
}

#[test]
fn refuses_to_start_without_bubblewrap() {
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_folio-pty"))
        .parent()
        .unwrap()
        .to_owned();
    let err = Origin::start_with(&fixture_site(), &[], Some(bin_dir.to_str().unwrap()))
        .err()
        .expect("the origin started without bwrap on PATH");
    assert!(!err.0.success());
    assert!(err.1.contains("apt-get install bubblewrap"), "{}", err.1);
}

#[test]
fn no_sandbox_is_refused_off_loopback() {
    let err = Origin::start_with(
        &fixture_site(),
        &["--insecure-no-sandbox", "--listen", "0.0.0.0:0"],
        None,
    )
    .err()
    .expect("--insecure-no-sandbox started on a public address");
    assert!(err.1.contains("loopback development only"), "{}", err.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sandbox_warns_on_every_session() {
    let origin = Origin::start_with(&fixture_site(), &["--insecure-no-sandbox"], None).unwrap();
    for _ in 0..2 {
        let mut t = origin.connect("shell").await;
        t.expect_notice("NOT confined", SECS(10)).await;
    }
    // The log line may be read from the origin's stderr a moment after the notice arrives.
    let logged = || {
        origin
            .logs()
            .matches("\"event\":\"unsandboxed_session\"")
            .count()
    };
    let deadline = std::time::Instant::now() + SECS(10);
    while logged() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(logged(), 2, "{}", origin.logs());
}
