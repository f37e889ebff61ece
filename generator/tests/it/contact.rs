//! The contact form under `folio serve` (issue 15): the real binary on `--port 0` against a
//! temporary site with `[contact]`, driven over real HTTP. The same rules as the Worker
//! (`folio_edge::contact`); an accepted message is an `.eml` file under `.folio/outbox/`,
//! whose path the terminal prints.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::Site;
use crate::serve::{Server, PATIENCE};

/// Short windows so the test need not wait: one second to fill the form, three messages
/// an hour per address.
const CONTACT: &str = "\n[contact]\nenabled = true\nrecipient = \"tess@test.example\"\n\
min_fill_secs = 1\nper_address_per_hour = 3\n";

fn contact_site() -> Site {
    let site = Site::new();
    let config = std::fs::read_to_string(site.path("folio.toml")).unwrap();
    site.write("folio.toml", &format!("{config}{CONTACT}"));
    site.write(
        "content/contact.md",
        "+++\ntitle = \"Contact\"\ntemplate = \"contact.html\"\n+++\nWrite to me.\n",
    );
    site.write(
        "content/thanks.md",
        "+++\ntitle = \"Message sent\"\n+++\nThank you.\n",
    );
    site
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// One HTTP/1.1 request with a body, on its own connection.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413) before reading the whole body: a failed write is fine.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers: {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
    Resp {
        status: status.parse().unwrap(),
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
        body: String::from_utf8_lossy(&raw[split + 4..]).into_owned(),
    }
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A fresh form token, read from the served contact page.
fn token(server: &Server) -> String {
    let page = http(&server.addr(), "GET", "/contact/", &[], b"");
    assert_eq!(page.status, 200, "{}", page.body);
    // The first `v1.<digits>.<32 hex>.<64 hex>` in the page (minified HTML may drop quotes).
    let shaped = |t: &str| {
        let p: Vec<&str> = t.split('.').collect();
        p.len() == 4
            && p[0] == "v1"
            && !p[1].is_empty()
            && p[1].bytes().all(|b| b.is_ascii_digit())
            && p[2].len() == 32
            && p[3].len() == 64
            && (p[2].to_string() + p[3])
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
    };
    page.body
        .match_indices("v1.")
        .map(|(at, _)| {
            let rest = &page.body[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                .unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .find(|t| shaped(t))
        .unwrap_or_else(|| panic!("no form token in the contact page:\n{}", page.body))
}

/// Tokens old enough to be accepted (`min_fill_secs` is 1).
fn aged_tokens(server: &Server, n: usize) -> Vec<String> {
    let t = (0..n).map(|_| token(server)).collect();
    std::thread::sleep(Duration::from_millis(2100));
    t
}

/// A form's fields, in order.
type Fields<'a> = Vec<(&'a str, &'a str)>;

const NAME: &str = "Zoé Müller";
const MESSAGE: &str = "Bonjour Tess — ça va ? 你好\nSecond line.";

fn good<'a>(token: &'a str, marker: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", NAME),
        ("email", "zoe@example.org"),
        ("subject", marker),
        ("message", MESSAGE),
        ("page", "/contact/"),
        ("token", token),
        ("website", ""),
    ]
}

fn with<'a>(
    mut fields: Vec<(&'a str, &'a str)>,
    key: &str,
    value: &'a str,
) -> Vec<(&'a str, &'a str)> {
    for f in &mut fields {
        if f.0 == key {
            f.1 = value;
        }
    }
    fields
}

/// Posts the form as JavaScript does (`Accept: application/json`), from the site's origin.
fn post(server: &Server, fields: &[(&str, &str)]) -> Resp {
    post_as(server, fields, Some(&server.url), true)
}

fn post_as(server: &Server, fields: &[(&str, &str)], origin: Option<&str>, json: bool) -> Resp {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(o) = origin {
        headers.push(("Origin", o));
    }
    if json {
        headers.push(("Accept", "application/json"));
    }
    http(
        &server.addr(),
        "POST",
        "/api/contact",
        &headers,
        form_encode(fields).as_bytes(),
    )
}

fn outbox(site: &Site) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(site.path(".folio/outbox"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn b64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| u32::from(val(c))).collect();
        let n = v.iter().fold(0u32, |acc, x| acc << 6 | x) << (6 * (4 - v.len()));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..v.len() - 1]);
    }
    out
}

/// Decodes RFC 2047 `=?UTF-8?B?…?=` words (adjacent words join without the space).
fn decode_words(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut last_was_word = false;
    while let Some(at) = rest.find("=?") {
        let (before, tail) = rest.split_at(at);
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        let Some(end) = tail[2..].find("?=") else {
            out.push_str(tail);
            return out;
        };
        let word = &tail[2..2 + end];
        let mut parts = word.splitn(3, '?');
        let (_charset, enc, text) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        assert!(enc.is_some_and(|e| e.eq_ignore_ascii_case("b")), "{word}");
        out.push_str(&String::from_utf8(b64_decode(text)).unwrap());
        rest = &tail[2 + end + 2..];
        last_was_word = true;
    }
    out.push_str(rest);
    out
}

/// Headers (lower-cased names, unfolded, decoded) and the decoded UTF-8 body.
fn parse_eml(raw: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers and body");
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let headers = unfolded
        .split("\r\n")
        .map(|l| {
            let (n, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("header line {l:?}"));
            (n.to_ascii_lowercase(), decode_words(v.trim()))
        })
        .collect();
    let body = String::from_utf8(b64_decode(body)).expect("the body is UTF-8");
    (headers, body)
}

fn field<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn the_contact_form_under_folio_serve_delivers_once_and_refuses_each_bad_input() {
    let site = contact_site();
    let server = Server::start(site.root(), &[]);
    let addr = server.addr();

    // The page carries a signed token, put in at serve time (two loads, two tokens).
    assert_ne!(token(&server), token(&server));

    let tokens = aged_tokens(&server, 4);

    // A good message: exactly one .eml, with the right headers and the body intact.
    let fields = good(&tokens[0], "Hello from the serve test");
    let r = post(&server, &fields);
    assert_eq!(r.status, 200, "{}\n{}", r.body, server.logs());
    assert_eq!(r.json()["ok"], true);
    let files = outbox(&site);
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    let (headers, body) = parse_eml(&raw);
    assert_eq!(field(&headers, "to"), ["<tess@test.example>"], "{raw}");
    assert_eq!(
        field(&headers, "reply-to"),
        ["Zoé Müller <zoe@example.org>"],
        "{raw}"
    );
    assert_eq!(
        field(&headers, "subject"),
        ["[test.example] Hello from the serve test"],
        "{raw}"
    );
    let from = field(&headers, "from");
    assert_eq!(from.len(), 1);
    assert!(
        !from[0].contains("zoe@"),
        "the visitor is never From: {raw}"
    );
    assert!(field(&headers, "bcc").is_empty() && field(&headers, "cc").is_empty());
    assert!(
        body.contains(&MESSAGE.replace('\n', "\r\n")),
        "body not intact: {body:?}"
    );
    // The terminal names the file.
    let shown = files[0].display().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !server.logs().contains(&shown) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.logs().contains(&shown), "{}", server.logs());

    // The client retries with the same token: accepted-looking, nothing written again.
    let again = post(&server, &fields);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(outbox(&site), files);
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), raw);

    // Each bad input gets its error; nothing is written.
    let t = &tokens[1];
    let long_links = "see http://a.example http://b.example http://c.example http://d.example";
    let cases: Vec<(Fields, &str, &str)> = vec![
        (with(good(t, "x"), "name", ""), "invalid_fields", "name"),
        (
            with(good(t, "x"), "message", ""),
            "invalid_fields",
            "message",
        ),
        (
            with(good(t, "x"), "email", "not an address"),
            "invalid_fields",
            "email",
        ),
        (
            with(
                good(t, "x"),
                "email",
                "zoe@example.org\r\nBcc: victim@example.com",
            ),
            "invalid_fields",
            "email",
        ),
        (
            with(good(t, "x"), "name", "Eve\r\nBcc: victim@example.com"),
            "invalid_fields",
            "name",
        ),
        (
            with(good(t, "Hi\nBcc: victim@example.com"), "name", NAME),
            "invalid_fields",
            "subject",
        ),
        (
            with(good(t, "x"), "message", long_links),
            "invalid_fields",
            "message",
        ),
        (with(good(t, "x"), "token", "v1.1.2.3"), "invalid_token", ""),
    ];
    for (fields, code, name) in &cases {
        let r = post(&server, fields);
        assert_eq!(r.status, 400, "{fields:?}: {}", r.body);
        let j = r.json();
        assert_eq!(j["error"], *code, "{fields:?}: {j}");
        if !name.is_empty() {
            assert!(j["fields"][name].is_string(), "{fields:?}: {j}");
        }
    }
    // Too fast: a token from a page loaded just now.
    let fresh = token(&server);
    let r = post(&server, &good(&fresh, "x"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "too_fast");
    // 100 KB: 413 before anything else.
    let big = format!("message={}", "a".repeat(100 * 1024));
    let r = http(
        &addr,
        "POST",
        "/api/contact",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &server.url),
            ("Accept", "application/json"),
        ],
        big.as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["error"], "body_too_large");
    // A foreign Origin, and none at all.
    for origin in [Some("https://evil.example"), None] {
        let r = post_as(&server, &good(t, "x"), origin, true);
        assert_eq!(r.status, 403, "{origin:?}: {}", r.body);
        assert_eq!(r.json()["error"], "forbidden_origin");
    }
    // A filled honeypot: an accepted-looking answer, nothing written.
    let r = post(
        &server,
        &with(good(&tokens[1], "spam"), "website", "http://spam.example"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ok"], true);
    assert_eq!(outbox(&site), files, "no bad input was written");

    // Without JavaScript: a 303 to the thank-you page; an error is the page again, text kept.
    let r = post_as(
        &server,
        &good(&tokens[1], "No JS"),
        Some(&server.url),
        false,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/thanks/"));
    assert_eq!(outbox(&site).len(), 2);
    let r = post_as(
        &server,
        &with(good(&tokens[2], "kept"), "email", "nope"),
        Some(&server.url),
        false,
    );
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("does not look like an email address"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("Bonjour Tess"),
        "the text is kept: {}",
        r.body
    );

    // A burst: three an hour per address, then 429 with Retry-After.
    let r = post(&server, &good(&tokens[2], "third"));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(&server, &good(&tokens[3], "fourth"));
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"], "contact_rate_limited");
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(wait > 0 && wait <= 3600, "{wait}");
    assert_eq!(outbox(&site).len(), 3);

    server.stop();
}
