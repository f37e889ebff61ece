//! `folio serve` against hostile pages and clients (issue 11): a foreign page reading the
//! live-reload socket (threat 8), a path that redirects off the site (threat 8), and a
//! terminal client that floods and stops reading (threat 5). The real binary on `--port 0`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::Site;
use crate::serve::Server;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

const PATIENCE: Duration = Duration::from_secs(90);

/// One HTTP/1.1 request on its own connection: (status, head, body).
fn request(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // A 101 keeps the connection open: read what arrives within the timeout.
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
        if raw.starts_with(b"HTTP/1.1 101") && raw.len() > 200 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_string(), body.to_string())
}

const UPGRADE: [(&str, &str); 4] = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// Threat 8: the reload socket carries build errors (with file paths, of drafts too) to
/// whoever connects. A page on any other site the author visits could open it (WebSockets
/// are not bound by the same-origin policy). Only the server's own origin may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_page_cannot_read_the_reload_socket() {
    let site = Site::new();
    let server = Server::start(site.root(), &[]);
    let addr = server.addr();
    site.write(
        "content/unpublished-plan.md",
        "+++\ntitle = \"Secret plan\ndate = 2024-01-01\n+++\nBroken.\n",
    );
    server.wait_for("unpublished-plan.md");

    for (what, origin) in [
        ("a foreign page", Some("https://evil.example")),
        ("a page on another local port", Some("http://127.0.0.1:1")),
        ("no Origin", None),
    ] {
        let mut headers = UPGRADE.to_vec();
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        let (status, head, body) = request(&addr, "/__folio/ws", &headers);
        assert_eq!(status, 403, "{what}: {head}\n{body}");
        assert!(!body.contains("unpublished-plan"), "{what} read: {body}");
    }

    // The server's own pages still get hello and the error.
    let mut req = format!("ws://{addr}/__folio/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", server.url.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("own origin refused: {e}\n{}", server.logs()));
    let mut texts = Vec::new();
    let got = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                texts.push(t.to_string());
                if t.contains("unpublished-plan") {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "{texts:?}");
    assert!(texts[0].contains("\"hello\""), "{texts:?}");
}

/// Threat 8: `GET //about` answered `Location: //about/`, which a browser reads as the host
/// `about` (a scheme-relative URL): an open redirect off the site. Repeated slashes are
/// collapsed before redirecting.
#[test]
fn a_doubled_slash_never_redirects_to_another_host() {
    let site = Site::new();
    let server = Server::start(site.root(), &[]);
    let addr = server.addr();
    for path in ["//about", "///about", "//projects"] {
        let (status, head, _) = request(&addr, path, &[]);
        let location = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case("location"))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("{path}: no Location: {head}"));
        assert!(
            (300..400).contains(&status),
            "{path}: status {status}: {head}"
        );
        assert!(
            location.starts_with('/') && !location.starts_with("//") && !location.contains("//"),
            "{path} redirects to {location}"
        );
        let expected = format!(
            "/{}/",
            path.split('/')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("/")
        );
        assert_eq!(location, expected, "{path}");
    }
    // The plain redirect is unchanged.
    let (status, head, _) = request(&addr, "/about", &[]);
    assert_eq!(status, 307, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("location: /about/"),
        "{head}"
    );
}

/// A WebSocket client frame (masked, as RFC 6455 requires of clients).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut out = vec![0x80 | opcode];
    assert!(payload.len() < 126);
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn host_processes_matching(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().parse::<u32>().is_ok()
                && std::fs::read(e.path().join("cmdline"))
                    .map(|c| {
                        String::from_utf8_lossy(&c)
                            .replace('\0', " ")
                            .contains(needle)
                    })
                    .unwrap_or(false)
        })
        .count()
}

fn require_terminal_tools() {
    let pty = Path::new(env!("CARGO_BIN_EXE_folio")).with_file_name("folio-pty");
    assert!(
        pty.is_file(),
        "folio-pty is not built next to folio: run `cargo build -p folio-pty` first"
    );
    let bwrap = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("bwrap").is_file()));
    assert!(
        bwrap,
        "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    );
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a terminal as the site's page does, types `line` and waits for `needle` in the
/// output: the open session if it came, `None` if the session was refused or ended.
async fn run_in_terminal(
    addr: &str,
    origin: &str,
    demo: &str,
    line: &str,
    needle: &str,
) -> Option<Ws> {
    let mut req = format!("ws://{addr}/terminal/{demo}")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    let mut ws = match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            eprintln!("terminal upgrade failed: {e}");
            return None;
        }
    };
    let hello = terminal_protocol::Hello {
        size: terminal_protocol::WindowSize::new(80, 24).unwrap(),
    };
    // A refused session is closed at once: sending to it fails.
    ws.send(Message::Text(hello.encode().into())).await.ok()?;
    ws.send(Message::Binary(
        terminal_protocol::ClientFrame::Input(line.as_bytes().to_vec())
            .encode()
            .into(),
    ))
    .await
    .ok()?;
    let mut output = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Binary(b) => {
                    if let Ok(terminal_protocol::ServerFrame::Output(o)) =
                        terminal_protocol::ServerFrame::decode(&b)
                    {
                        output.extend_from_slice(&o);
                        if String::from_utf8_lossy(&output).contains(needle) {
                            return true;
                        }
                    }
                }
                Message::Close(c) => {
                    eprintln!("terminal closed: {c:?}");
                    return false;
                }
                _ => {}
            }
        }
        false
    })
    .await;
    (found == Ok(true)).then_some(ws)
}

const FLOOD_DEMO: &str = "+++\ntitle = \"Flood\"\ndate = 2024-02-02\n\n[demo]\ncommand = \"/bin/bash --norc --noprofile\"\nworkdir = \"files\"\nidle_timeout = 3\ntimeout = 8\n+++\nA shell with short timeouts.\n";

/// Threat 5 through `folio serve`: a terminal client that starts a flood and never reads.
/// Before, the relay blocked in its send to that client, stopped reading the origin, and so
/// never saw the origin end the session: the lease (and the flood) stayed for as long as
/// the client held the connection. Now the relay reads the origin eagerly, pauses it when
/// its own queue toward the client passes a high-water mark, and gives up the lease as soon
/// as the origin ends the session at its idle deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_client_that_stops_reading_loses_its_slot() {
    require_terminal_tools();
    let site = Site::new();
    site.write("content/projects/flood/index.md", FLOOD_DEMO);
    site.write("content/projects/flood/files/hello.txt", "hi\n");
    let server = Server::start(site.root(), &["--terminal"]);
    let addr = server.addr();

    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock
        .connect(addr.parse().unwrap())
        .await
        .unwrap()
        .into_std()
        .unwrap();
    s.set_nonblocking(false).unwrap();
    let mut head = format!(
        "GET /terminal/flood HTTP/1.1\r\nHost: {addr}\r\nOrigin: {}\r\n",
        server.url
    );
    for (k, v) in UPGRADE {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        got.push(b[0]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let started = Instant::now();
    s.write_all(&client_frame(0x1, br#"{"cols":80,"rows":24}"#))
        .unwrap();
    s.write_all(&client_frame(0x2, b"\x00yes folio-flood-$((6*7))\r"))
        .unwrap();
    // From here on the client never reads, and keeps the connection open.
    let mut flooded = false;
    loop {
        let n = host_processes_matching("yes folio-flood-42");
        flooded |= n > 0;
        if flooded && n == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the flood of a client that stopped reading was never ended (started: {flooded}):\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The relay paused the origin instead of queueing the flood: the origin sent little.
    let origin_url = server
        .logs()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Terminal origin: folio-pty on http://")
                .map(str::to_string)
        })
        .expect("folio serve names its origin");
    let (_, _, metrics) = request(&origin_url, "/metrics", &[]);
    let sent: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("folio_pty_bytes_out_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("bytes_out metric");
    assert!(
        sent < 16 << 20,
        "the origin sent {sent} bytes toward a client that never read"
    );
    // The lease is back (it is given back as the relay ends, which follows the origin's
    // close): this visitor (same address, same User-Agent) may open its two sessions again.
    let mut open = Vec::new();
    for n in [6, 7] {
        let line = format!("echo M-$(({n}*7))\r");
        let retry_until = Instant::now() + Duration::from_secs(5);
        let ws = loop {
            match run_in_terminal(&addr, &server.url, "flood", &line, &format!("M-{}", n * 7)).await {
                Some(ws) => break ws,
                None if Instant::now() < retry_until => {
                    tokio::time::sleep(Duration::from_millis(250)).await
                }
                None => panic!(
                    "session {n} refused: the lease of the client that stopped reading is still held\n{}",
                    server.logs()
                ),
            }
        };
        open.push(ws);
    }
    drop(s);
}
