//! `folio serve` end to end: the real binary on `--port 0` against a temporary site, driven
//! over real HTTP and WebSocket connections.
//!
//! The central check: after every edit (pages, templates, data files: added, changed,
//! renamed, deleted) and the reload message that follows it, every file served equals a
//! fresh full build of the same sources, and nothing else is served.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use crate::common::Site;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

/// How long to wait for something that should happen at once, before failing (a guard
/// against hanging, not a speed requirement).
pub(crate) const PATIENCE: Duration = Duration::from_secs(90);

/// A running `folio serve`.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl Server {
    pub(crate) fn start(root: &Path, extra: &[&str]) -> Server {
        Self::start_with_env(root, extra, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub(crate) fn start_with_env(root: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_folio"))
            .args(["serve", "--port", "0", "--root"])
            .arg(root)
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn folio serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<(bool, String)>();
        for (is_out, pipe) in [
            (
                true,
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            ),
            (false, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            let log = if is_out {
                stdout.clone()
            } else {
                stderr.clone()
            };
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    log.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = tx.send((is_out, line));
                }
            });
        }
        // Up when it prints its URL; ready when the first build is done (a "Built" line on
        // stdout, or a failed build on stderr).
        let mut url = None;
        loop {
            let (is_out, line) = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| {
                panic!(
                    "folio serve did not come up; stderr:\n{}",
                    stderr.lock().unwrap()
                )
            });
            if is_out && line.starts_with("Serving ") {
                let u = line.split_whitespace().nth(1).unwrap();
                url = Some(u.trim_end_matches('/').to_string());
            }
            let built = (is_out && line.starts_with("Built ")) || line.contains("build failed");
            if built && url.is_some() {
                break;
            }
        }
        Server {
            child,
            url: url.unwrap(),
            stderr,
            stdout,
        }
    }

    pub(crate) fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    pub(crate) fn logs(&self) -> String {
        format!(
            "--- stdout\n{}--- stderr\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    /// Waits until the output contains `needle`.
    pub(crate) fn wait_for(&self, needle: &str) {
        let deadline = std::time::Instant::now() + PATIENCE;
        while !self.logs().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "never printed {needle:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn stop(mut self) {
        unsafe_sigint(self.child.id());
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    /// Ctrl-C first, so the server stops what it started (a local folio-pty), then a kill.
    fn drop(&mut self) {
        unsafe_sigint(self.child.id());
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ctrl-C, as a person stops the server.
fn unsafe_sigint(pid: u32) {
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
}

/// A response: status, headers (names lower-cased), body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A minimal HTTP/1.1 client: one request per connection, body read to the end.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        req.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn get(addr: &str, path: &str) -> Resp {
    request(addr, "GET", path, &[])
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The reload socket as the server's own page opens it (other origins are refused).
fn reload_request(server: &Server) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = format!("ws://{}/__folio/ws", server.addr())
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", server.url.parse().unwrap());
    req
}

async fn reload_socket(server: &Server) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(reload_request(server))
        .await
        .expect("connect the reload socket");
    let hello = next_message(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    ws
}

/// The next JSON message on the reload socket.
async fn next_message(ws: &mut Ws) -> serde_json::Value {
    loop {
        let m = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("no message on the reload socket")
            .expect("reload socket closed")
            .expect("reload socket failed");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// A full `folio build` in memory of a copy of the site's sources (its own caches, so
/// nothing is shared with the server), with the server's base URL.
fn fresh_build(root: &Path, base_url: &str) -> BTreeMap<String, Vec<u8>> {
    let copy = tempfile::tempdir().unwrap();
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap();
        if rel.starts_with(".folio") || rel.starts_with("public") {
            continue;
        }
        let dest = copy.path().join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
    let opts = folio::site::BuildOptions {
        base_url: Some(base_url.to_string()),
        mode: folio::site::Mode::Memory,
        ..folio::site::BuildOptions::new(copy.path())
    };
    let report = folio::site::build(&opts).unwrap_or_else(|d| panic!("fresh build failed:\n{d}"));
    report.files_in_memory
}

/// Everything the server serves, by output path, with the injected reload tag taken out
/// of HTML (it must be there exactly once).
/// A listed file that is gone when fetched means a rebuild published a new site between the
/// listing and the fetch (pages are served first, the rest of the build right after): the
/// whole listing is read again, so what is returned is one site, never a mix.
fn served(server: &Server) -> BTreeMap<String, Vec<u8>> {
    for _ in 0..20 {
        if let Some(files) = served_once(server) {
            return files;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "the served site kept changing while it was read:\n{}",
        server.logs()
    );
}

fn served_once(server: &Server) -> Option<BTreeMap<String, Vec<u8>>> {
    let addr = server.addr();
    let list: Vec<String> = serde_json::from_slice(&get(&addr, "/__folio/files").body).unwrap();
    let tag = injected_tag(false);
    let mut out = BTreeMap::new();
    for key in list {
        if key == "_headers" {
            // Not served, like on Cloudflare; compared through the listing only.
            out.insert(key, Vec::new());
            continue;
        }
        let r = get(&addr, &format!("/{}", percent_encode(&key)));
        if r.status == 404 {
            return None;
        }
        assert_eq!(r.status, 200, "GET /{key}");
        let mut body = r.body;
        if key.ends_with(".html") {
            let text = String::from_utf8(body).unwrap();
            assert_eq!(text.matches(&tag).count(), 1, "reload tag in {key}");
            body = text.replacen(&tag, "", 1).into_bytes();
        }
        out.insert(key, body);
    }
    Some(out)
}

fn percent_encode(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn diff(expected: &BTreeMap<String, Vec<u8>>, got: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in expected {
        match got.get(k) {
            None => out.push(format!("missing {k}")),
            Some(_) if k == "_headers" => {}
            Some(g) if g != v => out.push(format!("differs {k}")),
            _ => {}
        }
    }
    for k in got.keys() {
        if !expected.contains_key(k) {
            out.push(format!("extra {k}"));
        }
    }
    out
}

/// Waits for the reload message after an edit, then checks the served site against a
/// fresh build. An edit that reached the watcher in two bursts gives two messages; the
/// site must match after one of them.
async fn settle(server: &Server, ws: &mut Ws, site: &Site, step: &str) -> serde_json::Value {
    let mut last = Vec::new();
    for _ in 0..4 {
        let msg = next_message(ws).await;
        assert_eq!(
            msg["type"],
            "reload",
            "{step}: expected a reload, got {msg}\n{}",
            server.logs()
        );
        let expected = fresh_build(site.root(), &server.url);
        last = diff(&expected, &served(server));
        if last.is_empty() {
            return msg;
        }
    }
    panic!(
        "{step}: the served site differs from a full build: {last:?}\n{}",
        server.logs()
    );
}

fn small_site() -> Site {
    let s = Site::new();
    s.write("data/links.json", "{\"links\": [\"a\"]}\n");
    s
}

const TEMPLATE_V1: &str = "{% extends \"base.html\" %}{% block content %}<article><h1>{{ page.title }}</h1><p>override v1</p>{{ page.content | safe }}</article>{% endblock content %}";
const TEMPLATE_V2: &str = "{% extends \"base.html\" %}{% block content %}<article><h1>{{ page.title }}</h1><p>override v2</p>{% set t = load_data(path=\"talks.toml\") %}<ul>{% for talk in t.talks %}<li>{{ talk.title }}</li>{% endfor %}</ul>{{ page.content | safe }}</article>{% endblock content %}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_site_equals_a_full_build_after_every_kind_of_edit() {
    let site = small_site();
    let server = Server::start(site.root(), &[]);
    let expected = fresh_build(site.root(), &server.url);
    assert!(diff(&expected, &served(&server)).is_empty());
    let mut ws = reload_socket(&server).await;

    // Pages: edit, add, rename, delete.
    site.write(
        "content/about.md",
        "+++\ntitle = \"About\"\n+++\n## Me\n\nHello again.\n",
    );
    let m = settle(&server, &mut ws, &site, "edit a page").await;
    assert!(
        m["changed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "about/index.html"),
        "{m}"
    );
    site.write(
        "content/projects/gamma.md",
        "+++\ntitle = \"Gamma\"\ndate = 2024-05-06\ntags = [\"go\"]\n+++\nNew.\n",
    );
    settle(&server, &mut ws, &site, "add a page").await;
    assert_eq!(get(&server.addr(), "/projects/gamma/").status, 200);
    std::fs::rename(
        site.path("content/about.md"),
        site.path("content/about-me.md"),
    )
    .unwrap();
    settle(&server, &mut ws, &site, "rename a page").await;
    assert_eq!(get(&server.addr(), "/about/").status, 404);
    assert_eq!(get(&server.addr(), "/about-me/").status, 200);
    std::fs::remove_dir_all(site.path("content/projects/beta")).unwrap();
    settle(&server, &mut ws, &site, "delete a page (bundle)").await;

    // Data files: add, (read by a template below), edit, rename, delete.
    site.write("data/talks.toml", "[[talks]]\ntitle = \"First talk\"\n");
    settle(&server, &mut ws, &site, "add a data file").await;

    // Templates: add an override, edit it (now reading the data file), rename, delete.
    site.write("templates/page.html", TEMPLATE_V1);
    settle(&server, &mut ws, &site, "add a template").await;
    assert!(
        String::from_utf8_lossy(&get(&server.addr(), "/projects/gamma/").body)
            .contains("override v1")
    );
    site.write("templates/page.html", TEMPLATE_V2);
    settle(&server, &mut ws, &site, "edit a template").await;
    site.write(
        "data/talks.toml",
        "[[talks]]\ntitle = \"First talk\"\n[[talks]]\ntitle = \"Second talk\"\n",
    );
    settle(&server, &mut ws, &site, "edit a data file").await;
    assert!(
        String::from_utf8_lossy(&get(&server.addr(), "/projects/gamma/").body)
            .contains("Second talk")
    );
    std::fs::rename(
        site.path("data/links.json"),
        site.path("data/more-links.json"),
    )
    .unwrap();
    settle(&server, &mut ws, &site, "rename a data file").await;
    site.remove("data/more-links.json");
    settle(&server, &mut ws, &site, "delete a data file").await;
    std::fs::rename(
        site.path("templates/page.html"),
        site.path("templates/unused.html"),
    )
    .unwrap();
    settle(&server, &mut ws, &site, "rename a template").await;
    assert!(
        !String::from_utf8_lossy(&get(&server.addr(), "/projects/gamma/").body)
            .contains("override v")
    );
    site.remove("templates/unused.html");
    settle(&server, &mut ws, &site, "delete a template").await;

    // An editor's swap file changes nothing and must not trigger a rebuild: nothing comes on
    // the socket for three times the longest a burst is gathered (so the swap file is a
    // burst of its own, not one with the edit below); the next real edit's message is the
    // next one on the socket.
    // (First, anything still on its way from the steps above.)
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_millis(900), ws.next()).await {}
    site.write("content/.about-me.md.swp", "junk");
    if let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(900), ws.next()).await {
        panic!("a swap file caused a message: {m:?}\n{}", server.logs());
    }
    site.write(
        "content/about-me.md",
        "+++\ntitle = \"About me\"\n+++\nHi.\n",
    );
    let m = settle(&server, &mut ws, &site, "edit after a swap file").await;
    assert!(!m["changed"].as_array().unwrap().is_empty(), "{m}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_edit_shows_the_error_and_keeps_the_last_good_page() {
    let site = small_site();
    let server = Server::start(site.root(), &[]);
    let addr = server.addr();
    let good = get(&addr, "/about/");
    assert_eq!(good.status, 200);
    let mut ws = reload_socket(&server).await;

    site.write(
        "content/about.md",
        "+++\ntitle = \"About\ndate = 2024-01-01\n+++\nBroken.\n",
    );
    let msg = next_message(&mut ws).await;
    assert_eq!(msg["type"], "error", "{msg}");
    let e = &msg["errors"][0];
    assert!(
        e["file"].as_str().unwrap().ends_with("content/about.md"),
        "{msg}"
    );
    assert!(e["line"].as_u64().unwrap() >= 1, "{msg}");
    assert!(e["column"].as_u64().unwrap() >= 1, "{msg}");
    assert!(!e["message"].as_str().unwrap().is_empty());
    // The last good page is still served, byte for byte.
    let still = get(&addr, "/about/");
    assert_eq!(still.status, 200);
    assert_eq!(still.body, good.body);
    // The terminal shows it as `folio build` does: file:line:col: message. The tab may hear
    // of it before the line is read from the server's stderr: wait for the line.
    let text = e["text"].as_str().unwrap().to_string();
    let printed = tokio::time::timeout(PATIENCE, async {
        while !server.stderr.lock().unwrap().contains(&text) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(printed.is_ok(), "{}", server.logs());
    // A tab opened now gets the error right after hello.
    let mut late = tokio_tungstenite::connect_async(reload_request(&server))
        .await
        .unwrap()
        .0;
    assert_eq!(next_message(&mut late).await["type"], "hello");
    assert_eq!(next_message(&mut late).await["type"], "error");

    site.write("content/about.md", "+++\ntitle = \"About\"\n+++\nFixed.\n");
    let ok = next_message(&mut ws).await;
    assert_eq!(ok["type"], "reload", "{ok}");
    assert!(String::from_utf8_lossy(&get(&addr, "/about/").body).contains("Fixed."));
    // Fixed: a new tab gets no error. (It may hear the end of the fixing build: its pages
    // are announced when they are ready, the files made after them next.)
    let mut fresh = tokio_tungstenite::connect_async(reload_request(&server))
        .await
        .unwrap()
        .0;
    assert_eq!(next_message(&mut fresh).await["type"], "hello");
    while let Ok(Some(Ok(Message::Text(t)))) =
        tokio::time::timeout(Duration::from_millis(300), fresh.next()).await
    {
        let m: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
        assert_eq!(
            m["type"], "reload",
            "unexpected message after a fixed build: {m}"
        );
    }
    server.stop();
}

#[test]
fn the_reload_script_is_served_and_html_carries_the_production_headers() {
    let site = small_site();
    let server = Server::start(site.root(), &[]);
    let addr = server.addr();
    let manifest = get(&addr, "/_folio/edge.json").json();
    let policy: Vec<(String, String)> =
        serde_json::from_value(manifest["headers"].clone()).unwrap();
    assert!(policy.iter().any(|(n, _)| n == "Content-Security-Policy"));
    for path in ["/", "/about/", "/projects/alpha/", "/no/such/page"] {
        let r = get(&addr, path);
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        for (name, value) in &policy {
            if name.eq_ignore_ascii_case("cache-control") {
                continue;
            }
            assert_eq!(
                r.header(&name.to_ascii_lowercase()),
                Some(value.as_str()),
                "{name} on {path}"
            );
        }
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
    }
    // The CSP lets the injected same-origin script open its same-origin socket.
    let csp = &policy
        .iter()
        .find(|(n, _)| n == "Content-Security-Policy")
        .unwrap()
        .1;
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    // 404: the site's 404 page, status 404, with the reload script.
    let nf = get(&addr, "/no/such/page");
    assert_eq!(nf.status, 404);
    let built_404 = fresh_build(site.root(), &server.url)
        .remove("404.html")
        .unwrap();
    let nf_tag = injected_tag(true);
    assert_eq!(
        String::from_utf8(nf.body)
            .unwrap()
            .replacen(&nf_tag, "", 1)
            .into_bytes(),
        built_404
    );
    // Folder without slash: redirected like Cloudflare's auto-trailing-slash.
    let r = get(&addr, "/about");
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location"), Some("/about/"));
    // The script, same origin, with a JavaScript type.
    let js = get(&addr, "/__folio/reload.js");
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(String::from_utf8_lossy(&js.body).contains("/__folio/ws"));
    // The built files do not contain it: only responses do.
    let built = fresh_build(site.root(), &server.url);
    assert!(!String::from_utf8_lossy(&built["index.html"]).contains("__folio"));
    // Links stay local: base_url is the server's address.
    assert_eq!(manifest["base_url"], server.url);
    // A foreign name resolved to 127.0.0.1 (DNS rebinding) gets nothing.
    let port = addr.rsplit(':').next().unwrap();
    let evil = format!("evil.example:{port}");
    assert_eq!(request(&addr, "GET", "/", &[("Host", &evil)]).status, 421);
    assert_eq!(
        request(&addr, "GET", "/api/health", &[("Host", &evil)]).status,
        421
    );
    // Content types.
    assert!(get(&addr, "/atom.xml")
        .header("content-type")
        .unwrap()
        .contains("xml"));
}

fn post_view(addr: &str, slug: &str, ua: &str, origin: &str) -> Resp {
    request(
        addr,
        "POST",
        &format!("/api/views/{slug}"),
        &[("User-Agent", ua), ("Origin", origin)],
    )
}

#[test]
fn the_local_counter_counts_once_per_visitor_and_survives_a_restart() {
    let site = small_site();
    let server = Server::start(site.root(), &[]);
    let addr = server.addr();
    let me = server.url.clone();
    let r = post_view(&addr, "about", "ua-1", &me);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"slug": "about", "views": 1, "counted": true})
    );
    // Same visitor, same day: not counted again.
    let r = post_view(&addr, "about", "ua-1", &me).json();
    assert_eq!(r["views"], 1);
    assert_eq!(r["counted"], false);
    // Another User-Agent is another visitor.
    assert_eq!(
        post_view(&addr, "about", "ua-2", &me).json()["counted"],
        true
    );
    // Other pages count apart (a page in a section: its key is its path).
    assert_eq!(
        post_view(&addr, "projects.alpha", "ua-1", &me).json()["views"],
        1
    );
    // Reads.
    let r = get(&addr, "/api/views/about");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"slug": "about", "views": 2}));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("content-security-policy").is_some());
    let r = get(&addr, "/api/views?slugs=about,projects.alpha").json();
    assert_eq!(
        r,
        serde_json::json!({"views": {"about": 2, "projects.alpha": 1}})
    );
    // The slug alone is not a page any more.
    assert_eq!(post_view(&addr, "alpha", "ua-1", &me).status, 404);
    // The Worker's refusals: malformed 400, unknown 404, foreign origin 403, method 405.
    assert_eq!(post_view(&addr, "About", "ua-1", &me).status, 400);
    assert_eq!(post_view(&addr, "nope", "ua-1", &me).status, 404);
    assert_eq!(
        post_view(&addr, "nope", "ua-1", &me).json()["error"],
        "unknown_slug"
    );
    assert_eq!(get(&addr, "/api/views?slugs=about,nope").status, 404);
    assert_eq!(get(&addr, "/api/views").status, 400);
    let r = post_view(&addr, "about", "ua-3", "https://evil.example");
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "forbidden_origin");
    assert_eq!(
        request(&addr, "DELETE", "/api/views/about", &[]).status,
        405
    );
    let h = get(&addr, "/api/health").json();
    assert_eq!(h["manifest"], true);
    assert_eq!(h["origin"], "not_configured");
    let t = request(&addr, "GET", "/terminal/none", &[("Origin", &me)]);
    assert_eq!(t.status, 404, "no such demo in this site");
    server.stop();

    // Restart on the same folder: the counts are still there, the visitor still known.
    let server = Server::start(site.root(), &[]);
    let addr = server.addr();
    assert_eq!(get(&addr, "/api/views/about").json()["views"], 2);
    let again = post_view(&addr, "about", "ua-1", &server.url).json();
    assert_eq!(again["counted"], false, "{again}");
    assert_eq!(again["views"], 2);
    assert!(site.path(".folio/state/views/about.sqlite").is_file());
    server.stop();
}

/// A counter as a `folio serve` from before page keys left it: `views/<slug>.sqlite` holding
/// `n` views (the very schema and statements the store runs).
fn old_slug_counter(site: &Site, slug: &str, n: u64) {
    let dir = site.path(".folio/state/views");
    std::fs::create_dir_all(&dir).unwrap();
    let conn = rusqlite::Connection::open(dir.join(format!("{slug}.sqlite"))).unwrap();
    conn.execute_batch("CREATE TABLE views (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL); CREATE TABLE seen (day TEXT NOT NULL, visitor TEXT NOT NULL, PRIMARY KEY (day, visitor)) WITHOUT ROWID;")
        .unwrap();
    conn.execute("INSERT INTO views (id, n) VALUES (1, ?)", [n])
        .unwrap();
}

#[test]
fn two_pages_with_one_slug_count_apart_and_an_old_slug_count_carries_over() {
    let site = small_site();
    site.write("content/notes/_index.md", "+++\ntitle = \"Notes\"\n+++\n");
    // Same slug as projects/alpha.md, in another section.
    site.write(
        "content/notes/alpha.md",
        "+++\ntitle = \"Alpha, the notes\"\ndate = 2024-05-01\n+++\nx\n",
    );
    site.write("content/notes/solo.md", "+++\ntitle = \"Solo\"\n+++\ny\n");
    // Counts kept by slug before: `solo` was one page's; `alpha` was both pages' at once.
    old_slug_counter(&site, "solo", 5);
    old_slug_counter(&site, "alpha", 9);
    let server = Server::start(site.root(), &[]);
    let addr = server.addr();
    let me = server.url.clone();

    // Each page names its own counter.
    let notes = String::from_utf8(get(&addr, "/notes/alpha/").body).unwrap();
    assert!(notes.contains("data-views=notes.alpha"), "{notes}");
    let projects = String::from_utf8(get(&addr, "/projects/alpha/").body).unwrap();
    assert!(projects.contains("data-views=projects.alpha"), "{projects}");
    let manifest = get(&addr, "/_folio/edge.json").json();
    assert_eq!(manifest["legacy"]["notes.solo"], "solo");
    assert!(
        manifest["legacy"].get("notes.alpha").is_none(),
        "{manifest}"
    );
    assert!(
        manifest["legacy"].get("projects.alpha").is_none(),
        "{manifest}"
    );

    // Two pages, one slug: two counts.
    assert_eq!(
        post_view(&addr, "projects.alpha", "ua-1", &me).json()["views"],
        1
    );
    assert_eq!(
        post_view(&addr, "notes.alpha", "ua-1", &me).json()["views"],
        1
    );
    assert_eq!(
        post_view(&addr, "notes.alpha", "ua-2", &me).json()["views"],
        2
    );
    let r = get(&addr, "/api/views?slugs=projects.alpha,notes.alpha").json();
    assert_eq!(
        r,
        serde_json::json!({"views": {"notes.alpha": 2, "projects.alpha": 1}})
    );
    // The old shared slug is nobody's page.
    assert_eq!(post_view(&addr, "alpha", "ua-3", &me).status, 404);

    // A slug that was one page's: its count is read, then carried over on the first visit.
    assert_eq!(get(&addr, "/api/views/notes.solo").json()["views"], 5);
    assert_eq!(
        get(&addr, "/api/views?slugs=notes.solo").json()["views"]["notes.solo"],
        5
    );
    assert_eq!(
        post_view(&addr, "notes.solo", "ua-1", &me).json()["views"],
        6
    );
    assert_eq!(
        post_view(&addr, "notes.solo", "ua-2", &me).json()["views"],
        7
    );
    server.stop();
    // Once, not on every start.
    let server = Server::start(site.root(), &[]);
    let addr = server.addr();
    assert_eq!(get(&addr, "/api/views/notes.solo").json()["views"], 7);
    assert_eq!(
        post_view(&addr, "notes.solo", "ua-3", &server.url).json()["views"],
        8
    );
    server.stop();
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let site = small_site();
    let out = Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["serve", "--port", &port, "--root"])
        .arg(site.root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = crate::common::stderr(&out);
    assert!(err.contains(&format!("port {port}")), "{err}");
    assert!(err.contains("already in use"), "{err}");
    assert!(err.contains("--port 0"), "{err}");
}

#[test]
fn a_missing_site_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["serve", "--port", "0", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        crate::common::stderr(&out).contains("no folio.toml"),
        "{}",
        crate::common::stderr(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["serve", "--port", "0", "--root"])
        .arg(dir.path().join("absent"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        crate::common::stderr(&out).contains("cannot read the site folder"),
        "{}",
        crate::common::stderr(&out)
    );
}

const SHELL_DEMO: &str = "+++\ntitle = \"Shell\"\ndate = 2024-02-02\n\n[demo]\ncommand = \"/bin/bash --norc --noprofile\"\nworkdir = \"files\"\n+++\nA shell.\n";

fn site_with_demo() -> Site {
    let site = small_site();
    site.write("content/projects/shell/index.md", SHELL_DEMO);
    site.write("content/projects/shell/files/hello.txt", "hi\n");
    site
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_origin_the_browser_gets_the_workers_4502() {
    let site = site_with_demo();
    let server = Server::start(site.root(), &[]);
    let addr = server.addr();
    // As the Worker does: the page's WebSocket is accepted and closed at once with 4502,
    // because a browser cannot read the status of a refused handshake.
    let mut ws = open_terminal(&addr, "shell", &server.url)
        .await
        .unwrap_or_else(|e| panic!("upgrade failed: {e}\n{}", server.logs()));
    let close = tokio::time::timeout(PATIENCE, async {
        while let Some(m) = ws.next().await {
            if let Ok(Message::Close(c)) = m {
                return c;
            }
        }
        None
    })
    .await
    .expect("a close frame");
    let close = close.expect("a close code");
    assert_eq!(u16::from(close.code), 4502);
    assert_eq!(close.reason.as_str(), "origin_unavailable");
    let upgrade = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade, close"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Origin", server.url.as_str()),
    ];
    let unknown = request(&addr, "GET", "/terminal/nope", &upgrade);
    assert_eq!(unknown.status, 404);
    assert!(unknown.header("content-security-policy").is_some());
    assert_eq!(get(&addr, "/api/health").json()["origin"], "not_configured");
    server.stop();
}

/// Opens `ws://addr/terminal/<demo>` as a page of `origin` would.
async fn open_terminal(
    addr: &str,
    demo: &str,
    origin: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}/terminal/{demo}")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// The folio-pty binary cargo built next to folio. `cargo test --workspace` builds it;
/// `cargo test -p folio` alone does not, and then this fails and says so (never a skip).
fn folio_pty() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_folio")).with_file_name("folio-pty");
    assert!(
        p.is_file(),
        "{} is not built, and this test relays to it: run `cargo build -p folio-pty` (or \
         `cargo test --workspace`) and re-run",
        p.display()
    );
    p
}

/// Never skips: without folio-pty or bubblewrap it fails and says what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_is_relayed_to_a_local_folio_pty() {
    folio_pty();
    let has_bwrap = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("bwrap").is_file()));
    assert!(
        has_bwrap,
        "bubblewrap (bwrap) is not installed, and folio serve --terminal runs folio-pty in \
         its sandbox: run `apt-get install bubblewrap` and re-run"
    );
    let site = site_with_demo();
    let server = Server::start(site.root(), &["--terminal"]);
    let addr = server.addr();

    // A foreign page may not open terminals.
    match open_terminal(&addr, "shell", "https://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    // Not a WebSocket: 426.
    assert_eq!(
        request(&addr, "GET", "/terminal/shell", &[("Origin", &server.url)]).status,
        426
    );

    let mut ws = open_terminal(&addr, "shell", &server.url)
        .await
        .unwrap_or_else(|e| panic!("terminal upgrade failed: {e}\n{}", server.logs()));
    let hello = terminal_protocol::Hello {
        size: terminal_protocol::WindowSize::new(80, 24).unwrap(),
    };
    ws.send(Message::Text(hello.encode().into())).await.unwrap();
    ws.send(Message::Binary(
        terminal_protocol::ClientFrame::Input(b"echo relay-$((6*7))\r".to_vec())
            .encode()
            .into(),
    ))
    .await
    .unwrap();
    let mut output = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Binary(b) = m {
                if let Ok(terminal_protocol::ServerFrame::Output(o)) =
                    terminal_protocol::ServerFrame::decode(&b)
                {
                    output.extend_from_slice(&o);
                    if String::from_utf8_lossy(&output).contains("relay-42") {
                        return true;
                    }
                }
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "output: {}\n{}",
        String::from_utf8_lossy(&output),
        server.logs()
    );
    // Exit: the origin's exit frame and close come back through the relay.
    ws.send(Message::Binary(
        terminal_protocol::ClientFrame::Input(b"exit 3\r".to_vec())
            .encode()
            .into(),
    ))
    .await
    .unwrap();
    let mut exit = None;
    let _ = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Binary(b) => {
                    if let Ok(terminal_protocol::ServerFrame::Exit(e)) =
                        terminal_protocol::ServerFrame::decode(&b)
                    {
                        exit = Some(e);
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(exit, Some(terminal_protocol::ExitStatus::Code(3)));
    let h = get(&addr, "/api/health").json();
    assert_eq!(h["origin"], "ok", "{h}");
    server.stop();
}

/// What `folio serve` adds to every HTML response (the reload script, `?nf` on the 404
/// page), so a served page can be compared with the built file.
fn injected_tag(not_found: bool) -> String {
    format!(
        "<script src=\"/__folio/reload.js{}\" defer></script>",
        if not_found { "?nf" } else { "" }
    )
}

// ---- issue 16: pages served as soon as they are rendered, the rest right after ----

/// How many rebuilds the server has finished (one terminal line each, printed once the whole
/// build is served).
fn rebuilds_done(server: &Server) -> usize {
    server
        .stdout
        .lock()
        .unwrap()
        .lines()
        .filter(|l| l.contains(" removed, ") && l.contains(" rendered"))
        .count()
}

/// Waits until the server has finished `n` rebuilds.
fn wait_rebuilds(server: &Server, n: usize) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while rebuilds_done(server) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "rebuild {n} never finished:\n{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A site shaped for listings: a paginated section of notes (listed with their summaries) with tags, summaries cut by a marker, a
/// home page listing them, search on (the default).
fn listing_site() -> Site {
    let s = Site::minimal();
    s.write(
        "content/notes/_index.md",
        "+++\ntitle = \"Notes\"\nsort_by = \"date\"\npaginate_by = 2\n[extra]\nlayout = \"posts\"\n+++\nAll of it.\n",
    );
    for (i, tags) in [
        "[\"zig\", \"audio\"]",
        "[\"zig\"]",
        "[\"audio\", \"dsp\"]",
        "[\"dsp\"]",
        "[]",
    ]
    .iter()
    .enumerate()
    {
        s.write(
            &format!("content/notes/w{i}.md"),
            &format!(
                "+++\ntitle = \"Work number {i}\"\ndate = 2023-0{}-1{i}\ntags = {tags}\n+++\nLead of {i}.\n\n<!-- more -->\n\n## Part\n\nBody {i} with `inline` words.\n",
                i + 1
            ),
        );
    }
    s
}

/// Reads messages until the one naming `page` among its changed files, GETs `url` at once
/// (the page must be served new by then: a tab reloads on that message), and returns it.
async fn first_message_naming(
    server: &Server,
    ws: &mut Ws,
    page: &str,
    url: &str,
    expect: &str,
) -> serde_json::Value {
    for _ in 0..4 {
        let m = next_message(ws).await;
        assert_eq!(m["type"], "reload", "{m}\n{}", server.logs());
        if m["changed"].as_array().unwrap().iter().any(|f| f == page) {
            let body = String::from_utf8(get(&server.addr(), url).body).unwrap();
            assert!(
                body.contains(expect),
                "{page} announced before it was served: {m}"
            );
            return m;
        }
    }
    panic!("no message named {page}:\n{}", server.logs());
}

/// One edit: its name, what it does, a page it changes, and a text that page then shows.
type Step = (&'static str, Box<dyn Fn(&Site)>, &'static str, &'static str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_served_before_the_rest_of_the_build_equal_a_full_build() {
    let site = listing_site();
    let server = Server::start(site.root(), &["-v"]);
    let mut ws = reload_socket(&server).await;
    let mut done = 0;
    // After each edit: the first message naming the page finds it served; once the build has
    // finished, everything served equals a full build of the same sources; and no message
    // names the page twice (a tab would reload twice).
    let steps: Vec<Step> = vec![
        (
            "body edit",
            Box::new(|s: &Site| {
                let t = s.read("content/notes/w2.md");
                s.write(
                    "content/notes/w2.md",
                    &format!("{t}\nA new closing line.\n"),
                );
            }),
            "notes/w2/index.html",
            "A new closing line.",
        ),
        (
            "title edit",
            Box::new(|s: &Site| {
                let t = s.read("content/notes/w1.md");
                s.write(
                    "content/notes/w1.md",
                    &t.replace("Work number 1", "Renamed work"),
                );
            }),
            "notes/w1/index.html",
            "Renamed work",
        ),
        (
            "tag added",
            Box::new(|s: &Site| {
                let t = s.read("content/notes/w4.md");
                s.write(
                    "content/notes/w4.md",
                    &t.replace("tags = []", "tags = [\"zig\"]"),
                );
            }),
            "tags/zig/index.html",
            "Work number 4",
        ),
        (
            "summary marker moved",
            Box::new(|s: &Site| {
                // The oldest note, alone on the last list page, which shows summaries.
                let t = s.read("content/notes/w0.md");
                let t = t.replace("\n<!-- more -->\n", "");
                s.write(
                    "content/notes/w0.md",
                    &t.replace("`inline` words.\n", "`inline` words.\n\n<!-- more -->\n"),
                );
            }),
            "notes/page/3/index.html",
            "Body 0 with",
        ),
        (
            "template edit",
            Box::new(|s: &Site| {
                s.write(
                    "templates/page.html",
                    "{% extends \"base.html\" %}{% block content %}<article><h1>{{ page.title }}</h1><p>overridden page</p>{{ page.content | safe }}</article>{% endblock content %}",
                )
            }),
            "notes/w3/index.html",
            "overridden page",
        ),
    ];
    for (step, edit, page, expect) in &steps {
        eprintln!("step: {step}");
        edit(&site);
        let m = first_message_naming(
            &server,
            &mut ws,
            page,
            &format!("/{}", page.trim_end_matches("index.html")),
            expect,
        )
        .await;
        done += 1;
        wait_rebuilds(&server, done);
        let expected = fresh_build(site.root(), &server.url);
        let got = served(&server);
        assert!(
            diff(&expected, &got).is_empty(),
            "{step}: {:?}\n{}",
            diff(&expected, &got),
            server.logs()
        );
        // Anything else said about this rebuild has arrived by now; it must not name the
        // page again.
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(300), ws.next()).await
        {
            let later: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            assert!(
                !later["changed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f == page),
                "{step}: {page} announced twice: {m} then {later}"
            );
        }
    }
    // The early path was taken (the phase line says when the pages were served).
    assert!(
        server.logs().contains("pages served after"),
        "{}",
        server.logs()
    );

    // Deleting a page changes which pages exist: no early step, one message, same result.
    eprintln!("step: delete");
    site.remove("content/notes/w3.md");
    let m = next_message(&mut ws).await;
    assert_eq!(m["type"], "reload", "{m}");
    assert!(
        m["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "notes/w3/index.html"),
        "{m}"
    );
    done += 1;
    wait_rebuilds(&server, done);
    let expected = fresh_build(site.root(), &server.url);
    assert!(diff(&expected, &served(&server)).is_empty(), "delete");

    // A broken edit after all that: the error, and the last good pages still served.
    eprintln!("step: broken edit");
    let good = get(&server.addr(), "/notes/w2/").body;
    site.write("content/notes/w2.md", "+++\ntitle = \"Broken\n+++\nx\n");
    let m = next_message(&mut ws).await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(get(&server.addr(), "/notes/w2/").body, good);
    assert!(
        diff(&expected, &served(&server)).is_empty(),
        "after an error"
    );
    server.stop();
}
// ---- end issue 16 ----
