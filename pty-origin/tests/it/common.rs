//! Test harness: starts the real `folio-pty` binary against a fixture site and talks
//! WebSocket to it like the Worker would.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use terminal_protocol::{ClientFrame, ExitStatus, Hello, ServerFrame, WindowSize};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The fixture site under tests/fixtures/site.
pub(crate) fn fixture_site() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/site")
}

/// The sandbox tests need bubblewrap; without it they fail loudly rather than skip.
pub(crate) fn require_bwrap() {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("bwrap").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "bubblewrap (bwrap) is not installed, and the sandbox tests need the real sandbox: \
         run `apt-get install bubblewrap` (Debian/Ubuntu) and re-run `cargo test -p folio-pty`"
    );
}

fn unique_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("folio-pty-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The client claim of [`Origin::token`]: a test's connections are one client (as one
/// visitor address behind the Worker) unless it says otherwise.
pub(crate) const CLIENT: [u8; 32] = [0x11; 32];

/// A running origin.
pub(crate) struct Origin {
    child: Child,
    pub addr: SocketAddr,
    pub secret: Vec<u8>,
    pub secret_path: PathBuf,
    pub dir: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Origin {
    /// Starts `folio-pty serve` on 127.0.0.1:0 with the real sandbox.
    pub(crate) fn start(site: &Path) -> Origin {
        require_bwrap();
        Self::start_with(site, &[], None).expect("origin failed to start")
    }

    /// Starts with extra arguments and optionally a replacement PATH. Returns the exit
    /// status and stderr if it exits instead of listening.
    pub(crate) fn start_with(
        site: &Path,
        extra: &[&str],
        path: Option<&str>,
    ) -> Result<Origin, (std::process::ExitStatus, String)> {
        Self::start_full(site, extra, path, Stdio::null())
    }

    /// Like [`Origin::start_with`], with the origin's stdin given (e.g. a terminal).
    pub(crate) fn start_full(
        site: &Path,
        extra: &[&str],
        path: Option<&str>,
        stdin: Stdio,
    ) -> Result<Origin, (std::process::ExitStatus, String)> {
        let dir = unique_dir("origin");
        let secret: Vec<u8> = {
            let mut b = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .unwrap()
                .read_exact(&mut b)
                .unwrap();
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<String>()
                .into_bytes()
        };
        let secret_path = dir.join("secret");
        std::fs::write(&secret_path, &secret).unwrap();
        std::fs::set_permissions(
            &secret_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_folio-pty"));
        cmd.arg("serve")
            .arg("--site")
            .arg(site)
            .args(if extra.contains(&"--listen") {
                vec![]
            } else {
                vec!["--listen", "127.0.0.1:0"]
            })
            .args(["--shutdown-grace", "3"])
            .args(if extra.contains(&"--secret-file") {
                vec![]
            } else {
                vec!["--secret-file".as_ref(), secret_path.as_os_str()]
            })
            .arg("--runtime-dir")
            .arg(&dir)
            .args(if extra.contains(&"--state-dir") {
                vec![]
            } else {
                vec!["--state-dir".into(), dir.join("state").into_os_string()]
            })
            .args(extra)
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        let mut child = cmd.spawn().expect("spawn folio-pty");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("\"event\":\"listening\"") {
                        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                        let _ = tx.send(v["addr"].as_str().unwrap().parse::<SocketAddr>().unwrap());
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(50)) {
                return Ok(Origin {
                    child,
                    addr,
                    secret,
                    secret_path,
                    dir,
                    logs,
                });
            }
            if let Some(status) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                let text = logs.lock().unwrap().join("\n");
                let _ = std::fs::remove_dir_all(&dir);
                return Err((status, text));
            }
            assert!(Instant::now() < deadline, "origin did not start listening");
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// A valid token for `demo`, as the Worker mints it, for the client [`CLIENT`].
    pub(crate) fn token(&self, demo: &str) -> String {
        self.token_for(demo, &CLIENT)
    }

    /// A valid token for `demo` whose signed client claim is `client`.
    pub(crate) fn token_for(&self, demo: &str, client: &[u8; 32]) -> String {
        let mut nonce = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut nonce)
            .unwrap();
        terminal_protocol::mint(&self.secret, demo, now() + 30, nonce, client)
    }

    pub(crate) fn url(&self, demo: &str) -> String {
        format!("ws://{}/terminal/{demo}", self.addr)
    }

    /// Opens a WebSocket with `token` as bearer and extra headers; Err(status) if refused.
    pub(crate) async fn open(
        &self,
        demo: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Ws, u16> {
        let mut req = self.url(demo).into_client_request().unwrap();
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        for (k, v) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("connect failed: {e}"),
        }
    }

    /// Connects to `demo` with a fresh token and sends the hello frame.
    pub(crate) async fn connect(&self, demo: &str) -> Term {
        self.connect_as(demo, &[])
            .await
            .expect("connection refused")
    }

    pub(crate) async fn connect_as(
        &self,
        demo: &str,
        headers: &[(&str, &str)],
    ) -> Result<Term, u16> {
        self.connect_client(demo, &CLIENT, headers).await
    }

    /// Connects with a fresh token whose client claim is `client`, and extra headers.
    pub(crate) async fn connect_client(
        &self,
        demo: &str,
        client: &[u8; 32],
        headers: &[(&str, &str)],
    ) -> Result<Term, u16> {
        let ws = self
            .open(demo, Some(&self.token_for(demo, client)), headers)
            .await?;
        let mut t = Term::new(ws);
        t.hello(80, 24).await;
        Ok(t)
    }

    /// GET a path with a plain HTTP/1.1 request; returns (status, body).
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path)
    }

    pub(crate) fn metric(&self, line_prefix: &str) -> Option<u64> {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Process ids of every descendant of the origin.
    pub(crate) fn descendants(&self) -> Vec<u32> {
        descendants_of(self.child.id())
    }

    /// SIGTERM and wait for the exit status.
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "origin did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            for _ in 0..250 {
                if self.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// All processes whose ancestry includes `root`.
pub(crate) fn descendants_of(root: u32) -> Vec<u32> {
    let mut parents = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        parents.push((pid, ppid));
    }
    let mut out = vec![];
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (c, pp) in &parents {
            if *pp == p {
                out.push(*c);
                frontier.push(*c);
            }
        }
    }
    out
}

/// Processes anywhere on the host whose command line contains `needle`.
pub(crate) fn host_processes_matching(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (pid != me && cmd.contains(needle)).then_some(pid)
        })
        .collect()
}

/// A terminal client.
pub(crate) struct Term {
    pub ws: Ws,
    pub output: Vec<u8>,
    pub notices: Vec<String>,
    pub exit: Option<ExitStatus>,
    pub closed: bool,
    pub frames: usize,
    /// Everything typed so far (input frames), to keep `expect` off the shell's echo.
    pub typed: Vec<u8>,
    /// The last resume token the origin issued (resume-token frames).
    pub resume_token: Option<String>,
    /// The close code the server sent, if it closed with one.
    pub close_code: Option<u16>,
}

impl Term {
    pub(crate) fn new(ws: Ws) -> Term {
        Term {
            ws,
            output: vec![],
            notices: vec![],
            exit: None,
            closed: false,
            frames: 0,
            typed: vec![],
            resume_token: None,
            close_code: None,
        }
    }

    pub(crate) async fn hello(&mut self, cols: u32, rows: u32) {
        let h = Hello {
            size: WindowSize::new(cols, rows).unwrap(),
        };
        self.ws
            .send(Message::Text(h.encode().into()))
            .await
            .unwrap();
    }

    /// Sends a frame; errors (the server already closed) are ignored, the tests assert on
    /// what the server sent instead.
    pub(crate) async fn frame(&mut self, f: ClientFrame) {
        if let ClientFrame::Input(bytes) = &f {
            self.typed.extend_from_slice(bytes);
        }
        let _ = self.ws.send(Message::Binary(f.encode().into())).await;
    }

    pub(crate) async fn send(&mut self, text: &str) {
        self.frame(ClientFrame::Input(text.as_bytes().to_vec()))
            .await;
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// Reads one message (or returns false on timeout / close).
    pub(crate) async fn pump(&mut self, timeout: Duration) -> bool {
        if self.closed {
            return false;
        }
        match tokio::time::timeout(timeout, self.ws.next()).await {
            Err(_) => false,
            Ok(None) | Ok(Some(Err(_))) => {
                self.closed = true;
                false
            }
            Ok(Some(Ok(Message::Binary(b)))) => {
                self.frames += 1;
                match ServerFrame::decode(&b).expect("server sent a bad frame") {
                    ServerFrame::Output(o) => self.output.extend_from_slice(&o),
                    ServerFrame::Notice(n) => self.notices.push(n),
                    ServerFrame::Exit(e) => self.exit = Some(e),
                    ServerFrame::ResumeToken(g) => self.resume_token = Some(g.token),
                }
                true
            }
            Ok(Some(Ok(Message::Close(f)))) => {
                self.close_code = f.map(|f| u16::from(f.code));
                self.closed = true;
                false
            }
            Ok(Some(Ok(_))) => true,
        }
    }

    /// The last 2000 characters of the output, for assertion messages.
    pub(crate) fn tail(&self) -> String {
        let from = self.output.len().saturating_sub(2000);
        String::from_utf8_lossy(&self.output[from..]).into_owned()
    }

    /// Waits until the output contains `needle`; panics with the transcript otherwise.
    /// Scans only new output, so it stays linear on large streams. A needle that was typed
    /// is refused: the terminal's echo of the input would match it whether or not the
    /// command ran (have the shell compute it instead: `echo M-$((6*7))`, expect `M-42`).
    pub(crate) async fn expect(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let n = needle.as_bytes();
        assert!(
            n.is_empty() || !self.typed.windows(n.len()).any(|w| w == n),
            "expect({needle:?}): that text was typed, so the echo alone would match it; \
             make the shell compute the marker (echo M-$((6*7)) and expect M-42)"
        );
        let mut from = 0;
        loop {
            if self.output.len() >= n.len() && self.output[from..].windows(n.len()).any(|w| w == n)
            {
                return;
            }
            from = self.output.len().saturating_sub(n.len());
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (!self.pump(left).await && self.closed) {
                let found = self.output.windows(n.len().max(1)).any(|w| w == n);
                assert!(
                    found,
                    "output never contained {needle:?}; last output {:?} (notices {:?}, exit {:?})",
                    self.tail(),
                    self.notices,
                    self.exit
                );
                return;
            }
        }
    }

    /// Waits for a notice containing `needle`.
    pub(crate) async fn expect_notice(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.notices.iter().any(|n| n.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (!self.pump(left).await && self.closed) {
                break;
            }
        }
        assert!(
            self.notices.iter().any(|n| n.contains(needle)),
            "no notice containing {needle:?}; notices {:?}, output {:?}",
            self.notices,
            self.tail()
        );
    }

    /// Waits for the exit frame and the close.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.pump(left).await;
        }
        self.exit.unwrap_or_else(|| {
            panic!(
                "no exit frame; output {:?}, notices {:?}",
                self.tail(),
                self.notices
            )
        })
    }

    /// Runs a shell command line and returns what it printed, and only that: the text between
    /// two markers the shell itself prints before and after it (`printf 'ST%sRT<n>' _` prints
    /// `ST_RT<n>`, which the typed line does not contain). The shell's echo of the typed line
    /// comes before the first marker, so nothing in the command itself can be found in the
    /// result: a test cannot pass on its own echo.
    pub(crate) async fn run(&mut self, cmd: &str, timeout: Duration) -> String {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let start = self.output.len();
        self.send(&format!(
            "printf 'ST%sRT{n}\\n' _; {cmd}; printf 'DO%sNE{n}\\n' _\r"
        ))
        .await;
        let begin = format!("ST_RT{n}\r\n");
        let end = format!("DO_NE{n}");
        let deadline = Instant::now() + timeout;
        loop {
            let text = String::from_utf8_lossy(&self.output[start..]).into_owned();
            if let Some(b) = text.find(&begin) {
                let body = &text[b + begin.len()..];
                if let Some(e) = body.find(&end) {
                    return body[..e].to_owned();
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && !self.closed,
                "command {cmd:?} did not finish; output {:?}, notices {:?}",
                self.tail(),
                self.notices
            );
            self.pump(left).await;
        }
    }
}

pub(crate) const SECS: fn(u64) -> Duration = Duration::from_secs;
