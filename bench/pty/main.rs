//! folio-pty benchmark (not a test): output throughput and keystroke echo latency over a
//! loopback WebSocket, straight to the origin, with the real sandbox.
//!
//! Run: `cargo bench -p folio-pty --bench pty` (builds the release origin).
//! Options (environment):
//! - `FOLIO_BENCH_MB` (default 200): megabytes of output for the throughput run;
//! - `FOLIO_BENCH_KEYS` (default 2000): keystrokes for the latency run;
//! - `FOLIO_BENCH_WORKER_URL`: also measure through the Worker (e.g. under `wrangler dev`),
//!   a `ws://…/terminal/<demo>` URL (the Worker mints the token upstream), with
//!   `FOLIO_BENCH_ORIGIN` as the `Origin` header the Worker expects (the site's base_url);
//! - `FOLIO_BENCH_TTYD_URL`: also measure a ttyd started by you on the same machine, e.g.
//!   `ttyd -p 7682 -W bash --norc` → `ws://127.0.0.1:7682/ws` (ttyd's own protocol).
//!
//! ttyd is measured only if given: it is not packaged in Debian 12, so it cannot be
//! installed here with apt.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use terminal_protocol::{ClientFrame, Hello, ServerFrame, WindowSize};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How a client talks to one server: folio's protocol or ttyd's.
#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    Folio,
    Ttyd,
}

struct Client {
    ws: Ws,
    flavor: Flavor,
}

impl Client {
    async fn connect(url: &str, bearer: Option<String>, flavor: Flavor) -> Client {
        let mut req = url.into_client_request().unwrap();
        if let Some(t) = bearer {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        if let Ok(origin) = std::env::var("FOLIO_BENCH_ORIGIN") {
            req.headers_mut().insert("origin", origin.parse().unwrap());
        }
        if flavor == Flavor::Ttyd {
            req.headers_mut()
                .insert("sec-websocket-protocol", "tty".parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect");
        let mut c = Client { ws, flavor };
        match flavor {
            Flavor::Folio => {
                let h = Hello {
                    size: WindowSize::new(120, 40).unwrap(),
                };
                c.ws.send(Message::Text(h.encode().into())).await.unwrap();
            }
            Flavor::Ttyd => {
                c.ws.send(Message::Text(
                    r#"{"AuthToken":"","columns":120,"rows":40}"#.into(),
                ))
                .await
                .unwrap();
            }
        }
        c
    }

    async fn input(&mut self, s: &[u8]) {
        let frame = match self.flavor {
            Flavor::Folio => ClientFrame::Input(s.to_vec()).encode(),
            Flavor::Ttyd => [b"0".as_slice(), s].concat(),
        };
        self.ws.send(Message::Binary(frame.into())).await.unwrap();
    }

    /// Next chunk of terminal output (other frames are skipped).
    async fn output(&mut self) -> Vec<u8> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .expect("no output for 60 s")
                .expect("closed")
                .expect("ws error");
            let data: Vec<u8> = match msg {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_bytes().to_vec(),
                _ => continue,
            };
            match self.flavor {
                Flavor::Folio => {
                    if let Ok(ServerFrame::Output(o)) = ServerFrame::decode(&data) {
                        return o;
                    }
                }
                Flavor::Ttyd => {
                    if data.first() == Some(&b'0') {
                        return data[1..].to_vec();
                    }
                }
            }
        }
    }

    async fn wait_for(&mut self, needle: &[u8]) {
        let mut tail: Vec<u8> = vec![];
        loop {
            tail.extend(self.output().await);
            if tail.windows(needle.len()).any(|w| w == needle) {
                return;
            }
            let keep = tail.len().saturating_sub(needle.len());
            tail.drain(..keep);
        }
    }
}

struct Figures {
    mb_per_s: f64,
    avg_frame_kib: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn measure(mut connect: impl AsyncFnMut() -> Client, mb: u64, keys: usize) -> Figures {
    // Throughput: a large stream of text lines, counted from the first byte to the marker.
    let mut c = connect().await;
    c.input(b"stty -echo; echo RE''ADY\r").await;
    c.wait_for(b"READY").await;
    let bytes = mb * 1_000_000;
    let cmd = format!("yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c {bytes}; echo; echo EN''D-MARK\r");
    c.input(cmd.as_bytes()).await;
    let mut got = 0usize;
    let mut frames = 0usize;
    let mut start = None;
    let mut tail: Vec<u8> = vec![];
    loop {
        let o = c.output().await;
        start.get_or_insert_with(Instant::now);
        got += o.len();
        frames += 1;
        tail.extend_from_slice(&o);
        if tail.windows(8).any(|w| w == b"END-MARK") {
            break;
        }
        let keep = tail.len().saturating_sub(8);
        tail.drain(..keep);
    }
    let secs = start.unwrap().elapsed().as_secs_f64();
    let mb_per_s = got as f64 / 1e6 / secs;
    let avg_frame_kib = got as f64 / frames as f64 / 1024.0;
    drop(c);

    // Echo latency: one key at a time into `cat` in canonical mode, where the PTY's line
    // discipline echoes each key; time from send to its echo coming back.
    let mut c = connect().await;
    c.input(b"cat >/dev/null\r").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut lat = Vec::with_capacity(keys);
    for i in 0..keys {
        let key = if i % 60 == 59 {
            b'\r'
        } else {
            b'a' + (i % 26) as u8
        };
        let t0 = Instant::now();
        c.input(&[key]).await;
        loop {
            let o = c.output().await;
            if o.contains(&key) || (key == b'\r' && o.contains(&b'\n')) {
                break;
            }
        }
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    Figures {
        mb_per_s,
        avg_frame_kib,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

/// The ceiling on this machine: the same stream read straight from a PTY master by a
/// blocking loop, no WebSocket, no sandbox (what any PTY server's output is bounded by).
fn raw_pty_baseline(mb: u64) -> f64 {
    use std::os::fd::FromRawFd as _;
    let (mut master, mut slave) = (0, 0);
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0);
    let slave = unsafe { std::os::fd::OwnedFd::from_raw_fd(slave) };
    let mut master = unsafe { std::fs::File::from_raw_fd(master) };
    let cmd = format!(
        "stty -echo; yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c {}",
        mb * 1_000_000
    );
    let mut child = Command::new("/bin/sh")
        .args(["-c", &cmd])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(slave);
    let mut buf = vec![0u8; 65536];
    let (mut got, mut start) = (0usize, None);
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                start.get_or_insert_with(Instant::now);
                got += n;
            }
        }
    }
    let _ = child.wait();
    got as f64 / 1e6 / start.unwrap().elapsed().as_secs_f64()
}

fn start_origin(site: &Path, secret_file: &Path, runtime: &Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_folio-pty"))
        .args(["serve", "--listen", "127.0.0.1:0", "--site"])
        .arg(site)
        .arg("--secret-file")
        .arg(secret_file)
        .arg("--runtime-dir")
        .arg(runtime)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start folio-pty");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("origin exited").unwrap();
        if line.contains("\"event\":\"listening\"") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            break v["addr"].as_str().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn main() {
    let mb: u64 = std::env::var("FOLIO_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let keys: usize = std::env::var("FOLIO_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/pty/site");
    let dir = std::env::temp_dir().join(format!("folio-pty-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret: String = {
        let mut b = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut b)
            .unwrap();
        b.iter().map(|x| format!("{x:02x}")).collect()
    };
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, &secret).unwrap();
    let (mut origin, addr) = start_origin(&site, &secret_file, &dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = vec![];
    rt.block_on(async {
        let url = format!("ws://{addr}/terminal/shell");
        let direct = measure(
            async || {
                let mut n = [0u8; 16];
                std::fs::File::open("/dev/urandom")
                    .unwrap()
                    .read_exact(&mut n)
                    .unwrap();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let token =
                    terminal_protocol::mint(secret.as_bytes(), "shell", now + 30, n, &[1; 32]);
                Client::connect(&url, Some(token), Flavor::Folio).await
            },
            mb,
            keys,
        )
        .await;
        rows.push(("folio-pty direct (bubblewrap sandbox)", direct));
        if let Ok(worker) = std::env::var("FOLIO_BENCH_WORKER_URL") {
            let f = measure(
                async || Client::connect(&worker, None, Flavor::Folio).await,
                mb,
                keys,
            )
            .await;
            rows.push(("through the Worker", f));
        }
        if let Ok(ttyd) = std::env::var("FOLIO_BENCH_TTYD_URL") {
            let f = measure(
                async || Client::connect(&ttyd, None, Flavor::Ttyd).await,
                mb,
                keys,
            )
            .await;
            rows.push(("ttyd (no sandbox)", f));
        }
    });
    unsafe { libc::kill(origin.id() as i32, libc::SIGTERM) };
    let _ = origin.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let raw = raw_pty_baseline(mb);
    println!("\nfolio-pty benchmark: {mb} MB of output, {keys} keystrokes, loopback WebSocket");
    println!(
        "{:<40} {:>10} {:>10} {:>10} {:>12}",
        "target", "MB/s", "echo p50", "echo p99", "avg frame"
    );
    for (name, f) in &rows {
        println!(
            "{name:<40} {:>10.1} {:>8.3}ms {:>8.3}ms {:>8.1} KiB",
            f.mb_per_s, f.p50_ms, f.p99_ms, f.avg_frame_kib
        );
    }
    println!(
        "{:<40} {:>10.1} {:>10} {:>10}",
        "raw PTY read loop (ceiling, no WS)", raw, "-", "-"
    );
    if std::env::var("FOLIO_BENCH_TTYD_URL").is_err() {
        println!("(ttyd not measured: set FOLIO_BENCH_TTYD_URL; it is not packaged in Debian 12)");
    }
}
