//! Issue 11, threat 9 (token part): the client folio-pty caps sessions on must be covered by
//! the token's MAC. It is the token's signed client claim (the Worker's key of the visitor's
//! address); `X-Folio-Visitor` and `CF-Connecting-IP` play no part in the cap, and a token
//! whose claim is not a well-formed key is refused before anything starts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::common::{fixture_site, now, Origin};

/// A token spelled field by field and signed with the origin's secret the way
/// `terminal_protocol::mint` signs (`folio-terminal-<version>` ‖ 0 ‖ fields joined by 0):
/// what a holder of the secret could send, to show what the origin refuses beyond the MAC.
fn hand_signed(secret: &[u8], version: &str, fields: &[&str]) -> String {
    let mut m = <Hmac<Sha256>>::new_from_slice(secret).unwrap();
    let domain = format!("folio-terminal-{version}");
    let mut msg = vec![domain.as_str()];
    msg.extend_from_slice(fields);
    m.update(msg.join("\0").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{version}.{}.{sig}", fields.join("."))
}

fn nonce_b64(tag: u8) -> String {
    let mut n = [tag; 16];
    n[..8].copy_from_slice(&now().to_le_bytes());
    URL_SAFE_NO_PAD.encode(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threat9_the_per_client_cap_counts_on_the_signed_claim_and_ignores_x_folio_visitor() {
    // Fixture: max_sessions = 4, max_sessions_per_client = 2.
    let origin = Origin::start(&fixture_site());
    let client_a = [0xa1; 32];
    let client_b = [0xb2; 32];
    let header =
        |key: &'static str, ip: &'static str| [("x-folio-visitor", key), ("cf-connecting-ip", ip)];
    // Three tokens with one client claim, each request claiming another visitor in the
    // header (and another address): they share one client's cap.
    let k1: &'static str = "1".repeat(64).leak();
    let k2: &'static str = "2".repeat(64).leak();
    let k3: &'static str = "3".repeat(64).leak();
    let mut a1 = origin
        .connect_client("shell", &client_a, &header(k1, "203.0.113.1"))
        .await
        .expect("first session of client A");
    let _a2 = origin
        .connect_client("shell", &client_a, &header(k2, "203.0.113.2"))
        .await
        .expect("second session of client A");
    assert_eq!(
        origin
            .connect_client("shell", &client_a, &header(k3, "203.0.113.3"))
            .await
            .err(),
        Some(429),
        "a third token of client A is over its cap, whatever X-Folio-Visitor says"
    );
    // A forged header cannot put another client under A's cap either: client B sends A's
    // first header value and is its own client.
    let _b1 = origin
        .connect_client("shell", &client_b, &header(k1, "203.0.113.1"))
        .await
        .expect("client B is not capped by client A's header value");
    assert_eq!(
        origin.metric("folio_pty_sessions_refused_total{reason=\"client_capacity\"}"),
        Some(1)
    );
    // The sessions are real: the first one runs a command.
    let out = a1.run("echo A-$((6*7))", crate::common::SECS(10)).await;
    assert!(out.contains("A-42"), "{out:?}");
    // The log names the client by its claim, never by the header.
    let logs = origin.logs();
    assert!(
        logs.contains(&format!("client:{}", terminal_protocol::hex(&client_a))),
        "{logs}"
    );
    assert!(
        !logs.contains(k3),
        "the header value reached the log: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threat9_a_token_whose_client_claim_is_malformed_is_refused() {
    let origin = Origin::start(&fixture_site());
    let s = origin.secret.clone();
    let exp = (now() + 30).to_string();
    let good_client = URL_SAFE_NO_PAD.encode([0x5c; 32]);
    // Control: the hand-signed construction with a good claim is accepted, so every refusal
    // below is the claim's doing, not the helper's.
    let control = hand_signed(&s, "v2", &["shell", &exp, &nonce_b64(1), &good_client]);
    let mut t = crate::common::Term::new(
        origin
            .open("shell", Some(&control), &[])
            .await
            .expect("a hand-signed token with a good claim"),
    );
    t.hello(80, 24).await;
    t.run("true", crate::common::SECS(10)).await;

    let mut non_canonical = good_client.clone().into_bytes();
    *non_canonical.last_mut().unwrap() = b'd'; // 'A'-valued bits + non-zero trailing bits
    let non_canonical = String::from_utf8(non_canonical).unwrap();
    let hex_key = "ab".repeat(32); // what X-Folio-Visitor used to carry
    let cases: Vec<(&str, String)> = vec![
        ("empty claim", String::new()),
        ("short claim", "AAAA".into()),
        ("64 hex digits", hex_key),
        ("non-canonical base64", non_canonical),
        ("one byte short", URL_SAFE_NO_PAD.encode([0x5c; 31])),
        ("one byte long", URL_SAFE_NO_PAD.encode([0x5c; 33])),
    ];
    for (i, (what, claim)) in cases.iter().enumerate() {
        let token = hand_signed(&s, "v2", &["shell", &exp, &nonce_b64(10 + i as u8), claim]);
        let r = origin
            .open(
                "shell",
                Some(&token),
                &[("x-folio-visitor", &"c".repeat(64))],
            )
            .await;
        assert_eq!(r.err(), Some(401), "{what}");
    }
    // A v1 token (no client claim) validly signed: refused as another version, never
    // admitted with a client taken from a header.
    let v1 = hand_signed(&s, "v1", &["shell", &exp, &nonce_b64(30)]);
    let r = origin
        .open("shell", Some(&v1), &[("x-folio-visitor", &"d".repeat(64))])
        .await;
    assert_eq!(r.err(), Some(401), "v1 token");
    // A valid token whose claim was swapped for another: the MAC no longer matches.
    let valid = origin.token_for("shell", &[0x77; 32]);
    let mut fields: Vec<&str> = valid.split('.').collect();
    let other = URL_SAFE_NO_PAD.encode([0x78; 32]);
    fields[4] = &other;
    let swapped = fields.join(".");
    assert_eq!(
        origin.open("shell", Some(&swapped), &[]).await.err(),
        Some(401),
        "swapped claim"
    );

    // The origin's log lines are read from its stderr; under load they can trail the answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(origin.logs().contains("unsupported token version")
        && origin.logs().contains("bad token signature"))
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let logs = origin.logs();
    assert_eq!(
        logs.matches("malformed token: invalid client").count(),
        cases.len(),
        "each malformed claim is refused as such: {logs}"
    );
    assert!(logs.contains("unsupported token version"), "{logs}");
    assert!(logs.contains("bad token signature"), "{logs}");
    assert_eq!(
        origin.metric("folio_pty_sessions_refused_total{reason=\"unauthorized\"}"),
        Some(cases.len() as u64 + 2)
    );
    assert_eq!(
        origin.metric("folio_pty_sessions_total{demo=\"shell\"}"),
        Some(1),
        "only the control session started"
    );
}
