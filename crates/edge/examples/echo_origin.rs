//! A stand-in terminal origin for the Worker's end-to-end tests and benchmark.
//!
//! It speaks just enough of `folio-pty`'s contract to test the relay for real: it serves
//! `/terminal/<demo>`, refuses (401) any upgrade without a token that
//! `terminal_protocol::verify` accepts for that demo (and any replayed nonce), and then
//! echoes every frame. Text commands let a test drive it:
//!
//! * `whoami` → a text frame `{"verified":true,"demo":…,"expires_in":…,"client":…,
//!   "x_folio_visitor":…}`: `client` is the token's signed client claim (hex), what folio-pty
//!   caps sessions per client on; `x_folio_visitor` is that header if the request had one
//!   (the Worker no longer sends it, and folio-pty ignores it)
//! * `close:<code>:<reason>` → closes with that code and reason
//! * `send:<n>` → sends one binary frame of `n` bytes (to test the 1 MiB rule inbound)
//!
//! It prints a JSON line for every close frame it receives (`{"event":"closed",…}`), so a
//! test can check that close codes pass through the relay towards the origin too.
//! `GET /healthz` answers 200, and any request without `Upgrade: websocket` 426. Usage: `TERMINAL_SECRET=… echo-origin <port>`; prints
//! `listening <port>` when ready, and one JSON line per connection.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn token_of(req: &Request) -> Option<String> {
    if let Some(v) = req.headers().get("authorization") {
        return v.to_str().ok()?.strip_prefix("Bearer ").map(str::to_string);
    }
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token=").map(str::to_string))
}

async fn serve(stream: TcpStream, secret: Arc<Vec<u8>>, seen: Arc<Mutex<HashSet<[u8; 16]>>>) {
    // Peek at the request head to answer plain requests without a WebSocket handshake:
    // `GET /healthz` → 200, anything without `Upgrade: websocket` → 426 (as folio-pty does;
    // the Worker's health probe relies on it).
    let mut peek = [0u8; 4096];
    if let Ok(n) = stream.peek(&mut peek).await {
        let head = String::from_utf8_lossy(&peek[..n]).to_ascii_lowercase();
        let answer: Option<&[u8]> = if head.starts_with("get /healthz") {
            Some(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n")
        } else if head.contains("\r\n\r\n") && !head.contains("upgrade: websocket") {
            Some(b"HTTP/1.1 426 Upgrade Required\r\nupgrade: websocket\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        } else {
            None
        };
        if let Some(answer) = answer {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(answer).await;
            return;
        }
    }
    let mut claims_seen = None;
    let mut header_seen: Option<String> = None;
    // tungstenite's callback signature fixes the error type.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let refuse = |why: &str| {
            println!("{}", serde_json::json!({"event": "refused", "reason": why}));
            let mut r = ErrorResponse::new(Some(why.to_string()));
            *r.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::UNAUTHORIZED;
            r
        };
        let demo = req
            .uri()
            .path()
            .strip_prefix("/terminal/")
            .unwrap_or("")
            .to_string();
        let token = token_of(req).ok_or_else(|| refuse("no token"))?;
        let claims = terminal_protocol::verify(&secret, &token, &demo, now())
            .map_err(|e| refuse(&e.to_string()))?;
        if !seen.lock().unwrap().insert(claims.nonce) {
            return Err(refuse("replayed nonce"));
        }
        header_seen = req
            .headers()
            .get("x-folio-visitor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        println!(
            "{}",
            serde_json::json!({
                "event": "accepted",
                "demo": claims.demo,
                "expires": claims.expires,
                // The client the origin may cap on: the token's signed claim, never a header.
                "visitor": terminal_protocol::hex(&claims.client),
            })
        );
        claims_seen = Some(claims);
        Ok(resp)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(8 << 20))
        .max_frame_size(Some(8 << 20));
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let claims = claims_seen.expect("handshake succeeded, so claims were checked");
    let (mut tx, mut rx) = ws.split();
    while let Some(Ok(msg)) = rx.next().await {
        let reply = match msg {
            Message::Text(t) if t.as_str() == "whoami" => Message::text(
                serde_json::json!({
                    "verified": true,
                    "demo": claims.demo,
                    "expires_in": claims.expires.saturating_sub(now()),
                    "client": terminal_protocol::hex(&claims.client),
                    "x_folio_visitor": header_seen,
                })
                .to_string(),
            ),
            Message::Text(t) if t.as_str().starts_with("close:") => {
                let mut parts = t.as_str().splitn(3, ':').skip(1);
                let code: u16 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1000);
                let reason = parts.next().unwrap_or("").to_string();
                Message::Close(Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                }))
            }
            Message::Text(t) if t.as_str().starts_with("send:") => {
                let n: usize = t.as_str()[5..].parse().unwrap_or(0);
                Message::binary(vec![0x5a; n])
            }
            Message::Text(t) => Message::Text(t),
            Message::Binary(b) => Message::Binary(b),
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                println!(
                    "{}",
                    serde_json::json!({"event": "closed", "code": code, "reason": reason})
                );
                break;
            }
            _ => continue,
        };
        let closing = matches!(reply, Message::Close(_));
        if tx.send(reply).await.is_err() || closing {
            break;
        }
    }
    let _ = tx.close().await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let secret = std::env::var("TERMINAL_SECRET").expect("TERMINAL_SECRET must be set");
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind 127.0.0.1");
    println!("listening {}", listener.local_addr().unwrap().port());
    let secret = Arc::new(secret.into_bytes());
    let seen = Arc::new(Mutex::new(HashSet::new()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        stream.set_nodelay(true).ok();
        tokio::spawn(serve(stream, secret.clone(), seen.clone()));
    }
}
