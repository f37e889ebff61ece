//! `folio serve --terminal` relays resumes the way the Worker does: a connection cut
//! mid-session (no close frame) is resumed at `/terminal/<demo>?resume=1` with the origin's
//! resume token, and the same shell shows what it printed meanwhile. Also its
//! `GET /api/terminal/status`. Real folio serve, real folio-pty in its sandbox.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::Site;
use crate::serve::{Server, PATIENCE};
use futures_util::{SinkExt as _, StreamExt as _};
use terminal_protocol::{ClientFrame, ServerFrame};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A site whose one demo is a plain bash in a folder of its own.
fn site() -> Site {
    let s = Site::new();
    s.write(
        "content/projects/drop/index.md",
        "+++\ntitle = \"Drop\"\ndate = 2024-05-06\n\n[demo]\ncommand = \"/bin/bash --norc --noprofile\"\nworkdir = \"work\"\n+++\nA shell that survives a dropped connection.\n",
    );
    s.write("content/projects/drop/work/notes.txt", "notes\n");
    s
}

/// `GET path`: status, headers (lower-case names) and body.
fn get(addr: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

async fn open(addr: &str, query: &str, origin: &str) -> Ws {
    let mut req = format!("ws://{addr}/terminal/drop{query}")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// Reads frames until `done(output, token)` holds; returns the output and the last token.
async fn read_until(
    ws: &mut Ws,
    output: &mut Vec<u8>,
    token: &mut Option<String>,
    done: impl Fn(&[u8], &Option<String>) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    while !done(output, token) {
        assert!(
            Instant::now() < deadline,
            "output: {}",
            String::from_utf8_lossy(output)
        );
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => match ServerFrame::decode(&b) {
                Ok(ServerFrame::Output(o)) => output.extend_from_slice(&o),
                Ok(ServerFrame::ResumeToken(g)) => *token = Some(g.token),
                _ => {}
            },
            Ok(Some(Ok(Message::Close(c)))) => {
                panic!("closed: {c:?}; output: {}", String::from_utf8_lossy(output))
            }
            Ok(None) | Ok(Some(Err(_))) => panic!("connection gone"),
            _ => {}
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    String::from_utf8_lossy(hay).contains(needle)
}

async fn input(ws: &mut Ws, text: &str) {
    ws.send(Message::Binary(
        ClientFrame::Input(text.as_bytes().to_vec()).encode().into(),
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folio_serve_relays_a_resume_and_answers_the_terminal_status() {
    let site = site();
    let server = Server::start(site.root(), &["--terminal"]);
    let addr = server.addr();

    let (status, head, body) = get(&addr, "/api/terminal/status");
    assert_eq!(status, 200, "{body}\n{}", server.logs());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"live": true, "reason": "ok"})
    );
    assert!(head.contains("cache-control: public, max-age=30"), "{head}");
    assert!(head.contains("content-security-policy:"), "{head}");

    let mut ws = open(&addr, "", &server.url).await;
    ws.send(Message::Text(r#"{"cols":80,"rows":24}"#.into()))
        .await
        .unwrap();
    let (mut out, mut token) = (Vec::new(), None);
    input(
        &mut ws,
        "export DROP_MARK=pear-$((6*7)); echo ready-$((1+1))\r",
    )
    .await;
    read_until(&mut ws, &mut out, &mut token, |o, t| {
        contains(o, "ready-2") && t.is_some()
    })
    .await;
    input(&mut ws, "sleep 2; echo meanwhile-$((40+2))\r").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Whatever arrived before the cut counts as received.
    while let Ok(Some(Ok(Message::Binary(b)))) =
        tokio::time::timeout(Duration::from_millis(200), ws.next()).await
    {
        if let Ok(ServerFrame::Output(o)) = ServerFrame::decode(&b) {
            out.extend_from_slice(&o);
        }
    }
    let received = out.len();
    drop(ws); // the network went away: no close frame
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut ws = open(&addr, "?resume=1", &server.url).await;
    let hello = serde_json::json!({"cols": 80, "rows": 24, "resume": token.clone().unwrap(), "received": received});
    ws.send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    let (mut out2, mut token2) = (Vec::new(), None);
    read_until(&mut ws, &mut out2, &mut token2, |o, _| {
        contains(o, "meanwhile-42")
    })
    .await;
    input(&mut ws, "echo mark=$DROP_MARK\r").await;
    read_until(&mut ws, &mut out2, &mut token2, |o, _| {
        contains(o, "mark=pear-42")
    })
    .await;
    assert!(
        token2.is_some_and(|t| Some(t) != token),
        "a fresh resume token"
    );
    server.stop();
}
