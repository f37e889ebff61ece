//! The HTTP side: which handler a request goes to, and the static files of the last good
//! build with the production security headers (from the build's `_folio/edge.json`, the
//! same source the Worker and `_headers` use), `404.html` for what is missing, directory
//! URLs served by their `index.html`, and no caching (a dev server's files change).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::{api, reload, Shared, Snapshot};

/// Lists the files being served (JSON array of output paths): lets tests and tools compare
/// the served site with a build.
pub(super) const FILES_PATH: &str = "/__folio/files";

/// The server's routes: everything goes through [`dispatch`].
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(dispatch).with_state(shared)
}

/// Whether a `Host` header names this server: a loopback name with its port. Anything
/// else is a DNS-rebinding page (a foreign name resolved to 127.0.0.1) trying to read the
/// preview or, worse, open terminals with its own name as the "site's origin".
pub(super) fn host_allowed(host: Option<&str>, port: u16) -> bool {
    let Some(host) = host else { return false };
    let host = host.to_ascii_lowercase();
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|name| host == format!("{name}:{port}") || (port == 80 && host == *name))
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if !host_allowed(host, shared.port) {
        let mut r = Response::new(Body::from(
            "folio serve answers only to 127.0.0.1, localhost and [::1]\n",
        ));
        *r.status_mut() = StatusCode::MISDIRECTED_REQUEST;
        return with_policy(r, None);
    }
    let path = req.uri().path().to_string();
    match path.as_str() {
        reload::SOCKET_PATH => {
            // Build errors and the paths of unpublished pages travel on this socket: only
            // this server's own pages may open it (the terminal's Origin rule).
            let origin = req
                .headers()
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok());
            let manifest = shared.snapshot().and_then(|s| s.manifest.clone());
            if !reload::origin_allowed(
                manifest.as_deref(),
                host.unwrap_or_default(),
                origin,
                &shared.settings.extra_origins,
            ) {
                let mut r = Response::new(Body::from(
                    "the live-reload socket opens only from this server's own pages\n",
                ));
                *r.status_mut() = StatusCode::FORBIDDEN;
                return with_policy(r, None);
            }
            let (mut parts, _) = req.into_parts();
            match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
                Ok(ws) => shared.hub.accept(ws),
                Err(e) => e.into_response(),
            }
        }
        p if p == reload::SCRIPT_PATH => {
            let mut r = Response::new(Body::from(reload::SCRIPT));
            set(
                &mut r,
                header::CONTENT_TYPE,
                "text/javascript; charset=utf-8",
            );
            with_policy(r, shared.snapshot().as_deref())
        }
        FILES_PATH => {
            let snap = shared.snapshot();
            let list: Vec<&String> = snap
                .as_ref()
                .map(|s| s.files.keys().collect())
                .unwrap_or_default();
            let mut r = Response::new(Body::from(serde_json::to_vec(&list).unwrap_or_default()));
            set(&mut r, header::CONTENT_TYPE, "application/json");
            with_policy(r, snap.as_deref())
        }
        p if p.starts_with("/api/") || p.starts_with("/terminal/") => {
            api::handle(shared, peer, req).await
        }
        _ => static_file(&shared, req.method(), &path),
    }
}

fn set(r: &mut Response, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// The site's security headers (minus its `Cache-Control`) and `Cache-Control: no-cache`.
/// Before the first good build there is no manifest: the Worker's strict fallback policy,
/// loosened only as far as the reload script and its socket need.
fn with_policy(mut r: Response, snap: Option<&Snapshot>) -> Response {
    let policy = match snap.and_then(|s| s.manifest.as_deref()) {
        Some(m) => m.headers.clone(),
        None => folio_edge::headers::fallback_policy(),
    };
    for (name, value) in policy {
        if name.eq_ignore_ascii_case("cache-control") {
            continue;
        }
        let value = if name.eq_ignore_ascii_case("content-security-policy") {
            dev_csp(&value)
        } else {
            value
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
    set(&mut r, header::CACHE_CONTROL, "no-cache");
    r
}

/// The CSP as served: the site's own, unchanged when it already lets a same-origin script
/// open a same-origin WebSocket (`script-src` and `connect-src`, or `default-src`,
/// containing `'self'`, as folio's default policy does); otherwise with `'self'` added to
/// just those two directives, so live reload works under any policy.
pub(super) fn dev_csp(csp: &str) -> String {
    let directives: Vec<(String, String)> = csp
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once(char::is_whitespace) {
            Some((n, v)) => (n.to_ascii_lowercase(), v.trim().to_string()),
            None => (d.to_ascii_lowercase(), String::new()),
        })
        .collect();
    let get = |n: &str| {
        directives
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let allows_self = |n: &str| {
        get(n)
            .or_else(|| get("default-src"))
            .is_some_and(|v| v.split_whitespace().any(|s| s == "'self'"))
    };
    let mut missing = Vec::new();
    for n in ["script-src", "connect-src"] {
        if !allows_self(n) {
            missing.push(n);
        }
    }
    if missing.is_empty() {
        return csp.to_string();
    }
    let mut out: Vec<String> = Vec::new();
    for (n, v) in &directives {
        if missing.contains(&n.as_str()) {
            let v = v
                .split_whitespace()
                .filter(|s| *s != "'none'")
                .collect::<Vec<_>>()
                .join(" ");
            out.push(format!("{n} 'self' {v}").trim_end().to_string());
        } else if v.is_empty() {
            out.push(n.clone());
        } else {
            out.push(format!("{n} {v}"));
        }
    }
    for n in missing {
        if get(n).is_none() {
            out.push(format!("{n} 'self'"));
        }
    }
    out.join("; ")
}

/// The content type of an output file, by extension.
pub(super) fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        Some("txt") => "text/plain; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("ttf") => "font/ttf",
        Some("otf") => "font/otf",
        Some("pdf") => "application/pdf",
        Some("webmanifest") => "application/manifest+json",
        Some("wasm") => "application/wasm",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mp3") => "audio/mpeg",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        Some("csv") => "text/csv; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Decodes `%XX` escapes; `None` for malformed escapes, NUL or non-UTF-8 results.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

/// Files a build writes for the platform, not for visitors (Cloudflare does not serve
/// `_headers` either).
fn hidden(key: &str) -> bool {
    key == "_headers" || key == "_redirects"
}

/// What a URL path resolves to in the output.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Resolved {
    /// This output file.
    File(String),
    /// A folder asked for without its slash: redirect here (Cloudflare's
    /// `auto-trailing-slash`).
    Redirect(String),
    /// Nothing.
    NotFound,
}

/// Resolves a URL path against the files of a build.
pub(super) fn resolve(
    files: &std::collections::BTreeMap<String, Arc<[u8]>>,
    path: &str,
) -> Resolved {
    let Some(decoded) = percent_decode(path) else {
        return Resolved::NotFound;
    };
    let rel = decoded.trim_start_matches('/');
    if rel.split('/').any(|seg| seg == ".." || seg == ".") {
        return Resolved::NotFound;
    }
    let key = if rel.is_empty() || rel.ends_with('/') {
        format!("{rel}index.html")
    } else {
        rel.to_string()
    };
    if files.contains_key(&key) && !hidden(&key) {
        return Resolved::File(key);
    }
    if !rel.is_empty() && !rel.ends_with('/') && files.contains_key(&format!("{rel}/index.html")) {
        return Resolved::Redirect(folder_redirect(path));
    }
    Resolved::NotFound
}

/// Where a folder asked for without its slash redirects: the path with its slash, and with
/// runs of slashes collapsed. `GET //projects` must not answer `Location: //projects/`,
/// which a browser reads as a scheme-relative URL to the host `projects`.
fn folder_redirect(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 2);
    out.push('/');
    for c in path.chars() {
        if c != '/' || !out.ends_with('/') {
            out.push(c);
        }
    }
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn static_file(shared: &Shared, method: &Method, path: &str) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut r = Response::new(Body::from("method not allowed\n"));
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        set(&mut r, header::ALLOW, "GET, HEAD");
        return with_policy(r, shared.snapshot().as_deref());
    }
    let Some(snap) = shared.snapshot() else {
        return not_built_yet();
    };
    let (status, key) = match resolve(&snap.files, path) {
        Resolved::File(k) => (StatusCode::OK, Some(k)),
        Resolved::Redirect(to) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::TEMPORARY_REDIRECT;
            set(&mut r, header::LOCATION, &to);
            return with_policy(r, Some(&snap));
        }
        Resolved::NotFound => (
            StatusCode::NOT_FOUND,
            snap.files
                .contains_key("404.html")
                .then(|| "404.html".to_string()),
        ),
    };
    let mut r = match key {
        Some(k) => {
            let bytes = snap.files[&k].clone();
            let ct = content_type(&k);
            let body = if ct.starts_with("text/html") {
                let filled = super::contact::fill_page(shared, &k, &bytes);
                let bytes = filled.as_deref().unwrap_or(&bytes);
                Body::from(reload::inject(bytes, status == StatusCode::NOT_FOUND))
            } else {
                Body::from(bytes.to_vec())
            };
            let mut r = Response::new(body);
            set(&mut r, header::CONTENT_TYPE, ct);
            r
        }
        None => {
            let mut r = Response::new(Body::from("not found\n"));
            set(&mut r, header::CONTENT_TYPE, "text/plain; charset=utf-8");
            r
        }
    };
    *r.status_mut() = status;
    with_policy(r, Some(&snap))
}

/// Before the first good build: a page that says so and carries the reload script, so
/// the tab shows the errors and reloads once the site builds. Its `folio-serve` meta tells
/// the script there is no last good version to speak of.
fn not_built_yet() -> Response {
    let html = "<!doctype html><html lang=en><meta charset=utf-8><meta name=folio-serve content=not-built>\
        <title>folio serve: build failed</title>\
        <h1>The site has not built yet</h1><p>The errors are in the terminal running <code>folio serve</code>; \
        this page reloads when they are fixed.</p>";
    let mut r = Response::new(Body::from(reload::inject(html.as_bytes(), true)));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    set(&mut r, header::CONTENT_TYPE, "text/html; charset=utf-8");
    with_policy(r, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn csp_kept_when_it_allows_the_reload_script() {
        let csp = "default-src 'none'; script-src 'self'; connect-src 'self'";
        assert_eq!(dev_csp(csp), csp);
        let csp = "default-src 'self'";
        assert_eq!(dev_csp(csp), csp);
    }

    #[test]
    fn csp_gets_self_where_missing() {
        let csp = dev_csp("default-src 'none'; script-src 'sha256-x'; img-src 'self'");
        assert!(csp.contains("script-src 'self' 'sha256-x'"), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        assert!(csp.contains("img-src 'self'"), "{csp}");
        let csp = dev_csp("default-src 'none'; connect-src 'none'");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        assert!(!csp.contains("connect-src 'self' 'none'"), "{csp}");
    }

    #[test]
    fn only_loopback_hosts() {
        assert!(host_allowed(Some("127.0.0.1:1111"), 1111));
        assert!(host_allowed(Some("LOCALHOST:1111"), 1111));
        assert!(host_allowed(Some("[::1]:1111"), 1111));
        assert!(!host_allowed(Some("127.0.0.1:2222"), 1111));
        assert!(!host_allowed(Some("evil.example:1111"), 1111));
        assert!(!host_allowed(None, 1111));
    }

    #[test]
    fn paths_resolve_like_the_asset_layer() {
        let mut f: BTreeMap<String, Arc<[u8]>> = BTreeMap::new();
        for k in ["index.html", "about/index.html", "a b.txt", "_headers"] {
            f.insert(k.into(), Arc::from(&b"x"[..]));
        }
        assert_eq!(resolve(&f, "/"), Resolved::File("index.html".into()));
        assert_eq!(
            resolve(&f, "/about/"),
            Resolved::File("about/index.html".into())
        );
        assert_eq!(resolve(&f, "/about"), Resolved::Redirect("/about/".into()));
        for doubled in ["//about", "///about"] {
            assert_eq!(
                resolve(&f, doubled),
                Resolved::Redirect("/about/".into()),
                "{doubled}"
            );
        }
        assert_eq!(resolve(&f, "/a%20b.txt"), Resolved::File("a b.txt".into()));
        assert_eq!(resolve(&f, "/_headers"), Resolved::NotFound);
        assert_eq!(resolve(&f, "/../etc/passwd"), Resolved::NotFound);
        assert_eq!(resolve(&f, "/%00"), Resolved::NotFound);
        assert_eq!(resolve(&f, "/nope"), Resolved::NotFound);
    }
}
