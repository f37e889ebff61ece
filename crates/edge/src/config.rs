//! What the Worker is told: the site's edge manifest (`public/_folio/edge.json`, written
//! by `folio build`) and the deployment's variables (`wrangler.toml` `[vars]`).
//!
//! The manifest is the single source of truth for the security headers, the pages that
//! may be counted and the demos that may be opened: the Worker never hand-copies them.

use crate::api::ApiError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The manifest format version this Worker understands.
pub const MANIFEST_VERSION: u32 = 1;

macro_rules! manifest_file {
    () => {
        "_folio/edge.json"
    };
}

/// Where `folio build` writes the manifest, relative to the output folder.
pub const MANIFEST_FILE: &str = manifest_file!();

/// Path of the manifest inside the static assets: [`MANIFEST_FILE`] served from the root.
pub const MANIFEST_PATH: &str = concat!("/", manifest_file!());

/// The parsed `edge.json`: what the build tells the edge about the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeManifest {
    /// The site's canonical origin (`scheme://host[:port]`, no path), from `base_url`.
    pub site_origin: String,
    /// The `/*` block of `_headers`, in order: the security policy.
    pub headers: Vec<(String, String)>,
    /// Keys of the pages whose views may be counted ([`crate::counter::page_key`]).
    pub pages: BTreeSet<String>,
    /// Page key → the slug its count was kept under before counts were keyed by page, for
    /// pages whose slug no other page had (their old count was theirs alone): read and
    /// carried over until the page is counted under its own key.
    pub legacy: BTreeMap<String, String>,
    /// Ids of the demos the terminal may open.
    pub demos: BTreeSet<String>,
    /// The contact form, when the site has one (`[contact]`).
    pub contact: Option<crate::contact::ContactManifest>,
}

/// `edge.json` as stored: the one definition of the format, serialised by `folio build`
/// ([`ManifestFile::to_json`]) and deserialised by the Worker and `folio serve`
/// ([`EdgeManifest::parse`]). Fields are in the order they are written (alphabetical).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// The site's `base_url`; the Worker takes the allowed `Origin` from it.
    pub base_url: String,
    /// The contact form's settings (`[contact]` in `folio.toml`), absent when it is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<crate::contact::ContactManifest>,
    /// Ids of the demos the terminal may open, sorted.
    #[serde(default)]
    pub demos: Vec<String>,
    /// The `/*` block of `_headers`, in order: the security policy.
    pub headers: Vec<(String, String)>,
    /// Keys of the pages whose views may be counted, sorted, without duplicates.
    #[serde(default)]
    pub pages: Vec<String>,
    /// Page key → its old slug key, where the two differ and the slug was the page's alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub legacy: BTreeMap<String, String>,
    /// [`MANIFEST_VERSION`] when written.
    pub version: u32,
}

impl ManifestFile {
    /// The file's text, as `folio build` writes it (pretty JSON and a final newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serialises") + "\n"
    }
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the expected shape.
    #[error("edge manifest {MANIFEST_PATH} is not valid: {0}")]
    Parse(String),
    /// Written by a `folio` this Worker does not understand.
    #[error("edge manifest version {0} is not supported (expected {MANIFEST_VERSION})")]
    Version(u32),
    /// `base_url` is not an absolute http(s) URL.
    #[error("edge manifest base_url {0:?} is not an absolute http(s) URL")]
    BaseUrl(String),
    /// A header name or value that no HTTP implementation would accept.
    #[error("edge manifest header {0:?} is not a valid HTTP header")]
    Header(String),
}

impl EdgeManifest {
    /// Parses and checks `edge.json`.
    pub fn parse(json: &str) -> Result<Self, ManifestError> {
        let raw: ManifestFile =
            serde_json::from_str(json).map_err(|e| ManifestError::Parse(e.to_string()))?;
        if raw.version != MANIFEST_VERSION {
            return Err(ManifestError::Version(raw.version));
        }
        let site_origin =
            origin_of(&raw.base_url).ok_or_else(|| ManifestError::BaseUrl(raw.base_url.clone()))?;
        for (name, value) in &raw.headers {
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            let value_ok = value
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
            if !name_ok || !value_ok {
                return Err(ManifestError::Header(name.clone()));
            }
        }
        Ok(Self {
            site_origin,
            headers: raw.headers,
            pages: raw.pages.into_iter().collect(),
            legacy: raw.legacy,
            demos: raw.demos.into_iter().collect(),
            contact: raw.contact,
        })
    }
}

/// The origin (`scheme://host[:port]`, lower-cased, default port dropped) of an absolute
/// http(s) URL, or `None` if it is not one. Used to compare `Origin` headers exactly.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority
        .strip_suffix(default_port)
        .unwrap_or(&authority)
        .to_string();
    Some(format!("{scheme}://{authority}"))
}

/// Deployment settings from `wrangler.toml` `[vars]` (and secrets), with the defaults the
/// Worker uses when a variable is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Base URL of the terminal origin (the tunnel hostname), e.g. `https://pty.example.dev`.
    pub terminal_origin: Option<String>,
    /// Period of the `API_LIMITER` binding, in seconds: what `Retry-After` says when it trips.
    /// Must match the binding's `period` in `wrangler.toml`.
    pub api_rate_period_secs: u64,
    /// Period of the `TERMINAL_LIMITER` binding, in seconds.
    pub terminal_rate_period_secs: u64,
    /// Concurrent terminal sessions allowed in total.
    pub max_sessions: u32,
    /// Concurrent terminal sessions allowed per client (address: IPv4, or IPv6 /64).
    pub max_sessions_per_visitor: u32,
    /// Terminal sessions that may start in any minute, everyone's together
    /// (`MAX_SESSION_STARTS_PER_MINUTE`).
    pub max_session_starts_per_minute: u32,
    /// Longest a relayed session may last; also how long a session lease lives if the
    /// Worker never gets to release it.
    pub max_session_secs: u64,
    /// Origins besides the site's own that may open terminals and call the API
    /// (comma-separated in `ALLOWED_ORIGINS`), e.g. a preview hostname.
    pub extra_origins: Vec<String>,
    /// The path the site is deployed under (`BASE_PATH`, e.g. `/blog`; empty at the root of
    /// the host), the path of the site's `base_url`: the Worker answers `<base>/api/*` and
    /// `<base>/terminal/*` and reads the manifest from `<base>/_folio/edge.json`.
    pub base_path: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            terminal_origin: None,
            api_rate_period_secs: 60,
            terminal_rate_period_secs: 60,
            max_sessions: 20,
            max_sessions_per_visitor: 2,
            max_session_starts_per_minute: 30,
            max_session_secs: 30 * 60,
            extra_origins: Vec::new(),
            base_path: String::new(),
        }
    }
}

impl Settings {
    /// Builds settings from a variable lookup (`env.var(name)` in the Worker). Malformed
    /// numbers fall back to the default rather than failing every request.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let num = |name: &str, default: u64| -> u64 {
            get(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        Self {
            terminal_origin: get("TERMINAL_ORIGIN")
                .map(|s| s.trim().trim_end_matches('/').to_string())
                .filter(|s| !s.is_empty()),
            api_rate_period_secs: num("API_RATE_PERIOD_SECS", d.api_rate_period_secs),
            terminal_rate_period_secs: num(
                "TERMINAL_RATE_PERIOD_SECS",
                d.terminal_rate_period_secs,
            ),
            max_sessions: num("MAX_SESSIONS", d.max_sessions.into()).min(u32::MAX.into()) as u32,
            max_sessions_per_visitor: num(
                "MAX_SESSIONS_PER_VISITOR",
                d.max_sessions_per_visitor.into(),
            )
            .min(u32::MAX.into()) as u32,
            max_session_starts_per_minute: num(
                "MAX_SESSION_STARTS_PER_MINUTE",
                d.max_session_starts_per_minute.into(),
            )
            .min(u32::MAX.into()) as u32,
            max_session_secs: num("MAX_SESSION_SECS", d.max_session_secs),
            extra_origins: get("ALLOWED_ORIGINS")
                .unwrap_or_default()
                .split(',')
                .filter_map(|o| origin_of(o.trim()))
                .collect(),
            base_path: get("BASE_PATH")
                .map(|b| normalize_base_path(&b))
                .unwrap_or_default(),
        }
    }
}

/// `BASE_PATH` as the Worker uses it: `""` or `/a/b` (a leading `/`, none trailing). A value
/// with characters a URL path would have to escape is ignored (treated as the root), as it can
/// match no request anyway.
fn normalize_base_path(raw: &str) -> String {
    let t = raw.trim().trim_matches('/');
    let ok = t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$()*+,;=:@%/".contains(&b));
    if t.is_empty() || !ok {
        String::new()
    } else {
        format!("/{t}")
    }
}

impl Settings {
    /// A request path as the site sees it: `path` with [`Settings::base_path`] taken off
    /// (`/blog/api/health` → `/api/health`), or `None` when it is not under the base path.
    pub fn site_path<'a>(&self, path: &'a str) -> Option<&'a str> {
        if self.base_path.is_empty() {
            return Some(path);
        }
        let rest = path.strip_prefix(self.base_path.as_str())?;
        (rest.starts_with('/')).then_some(rest)
    }

    /// Where the Worker reads the edge manifest from in the static assets.
    pub fn manifest_path(&self) -> String {
        format!("{}{MANIFEST_PATH}", self.base_path)
    }

    /// The session caps, as the limiter checks them ([`crate::limits::decide`]).
    pub fn session_caps(&self) -> crate::limits::Caps {
        crate::limits::Caps {
            max_total: self.max_sessions,
            max_per_visitor: self.max_sessions_per_visitor,
            max_starts_per_minute: self.max_session_starts_per_minute,
        }
    }
}

/// The manifest, or the 503 every handler that needs it answers without one.
pub fn require_manifest(manifest: Option<&EdgeManifest>) -> Result<&EdgeManifest, ApiError> {
    manifest.ok_or_else(|| ApiError::misconfigured("the site's edge manifest is missing"))
}

/// Whether `key` is a page the counter may count or read: a key the build did not list is
/// a 404 before any storage is touched (nobody can create counters at will). Returns the
/// page's old slug key when its count is to be carried over from there
/// ([`EdgeManifest::legacy`]).
pub fn require_page<'m>(
    manifest: Option<&'m EdgeManifest>,
    key: &str,
) -> Result<Option<&'m str>, ApiError> {
    let m = require_manifest(manifest)?;
    if m.pages.contains(key) {
        Ok(m.legacy.get(key).map(String::as_str))
    } else {
        Err(ApiError::not_found(
            "unknown_slug",
            format!("no page {key:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn base_path_strips_the_subpath_and_refuses_what_is_outside_it() {
        let root = Settings::from_lookup(|_| None);
        assert_eq!(root.site_path("/api/health"), Some("/api/health"));
        assert_eq!(root.manifest_path(), MANIFEST_PATH);
        for raw in ["/blog", "/blog/", "blog", " /blog/ "] {
            let s = Settings::from_lookup(|k| (k == "BASE_PATH").then(|| raw.to_string()));
            assert_eq!(s.base_path, "/blog", "{raw:?}");
            assert_eq!(s.site_path("/blog/api/health"), Some("/api/health"));
            assert_eq!(s.site_path("/blog/terminal/x"), Some("/terminal/x"));
            assert_eq!(s.site_path("/api/health"), None);
            assert_eq!(s.site_path("/blogger/api/health"), None);
            assert_eq!(s.site_path("/blog"), None);
            assert_eq!(s.manifest_path(), format!("/blog{MANIFEST_PATH}"));
        }
        let odd = Settings::from_lookup(|k| (k == "BASE_PATH").then(|| "/a b/\"".to_string()));
        assert_eq!(odd.base_path, "");
    }

    use super::*;

    #[test]
    fn only_listed_pages_are_counted() {
        let m = EdgeManifest::parse(SAMPLE).unwrap();
        assert_eq!(require_page(Some(&m), "cv"), Ok(None));
        assert_eq!(require_page(Some(&m), "nope").unwrap_err().status, 404);
        assert_eq!(require_page(None, "cv").unwrap_err().status, 503);
        // Page keys: the two `minirt` pages are two counters; the old slug is not a page.
        assert_eq!(require_page(Some(&m), "projects.minirt"), Ok(None));
        assert_eq!(require_page(Some(&m), "blog.tern"), Ok(Some("tern")));
        assert_eq!(require_page(Some(&m), "minirt").unwrap_err().status, 404);
        assert_eq!(require_page(Some(&m), "tern").unwrap_err().status, 404);
    }

    const SAMPLE: &str = r#"{ "version": 1,
      "base_url": "https://Ada.example.dev/",
      "headers": [["Content-Security-Policy", "default-src 'self'"], ["X-Frame-Options", "DENY"]],
      "pages": ["about", "blog.minirt", "blog.tern", "cv", "projects.minirt"],
      "legacy": { "blog.tern": "tern" },
      "demos": ["minirt"] }"#;

    #[test]
    fn parses_the_manifest_folio_build_writes() {
        let m = EdgeManifest::parse(SAMPLE).unwrap();
        assert_eq!(m.site_origin, "https://ada.example.dev");
        assert_eq!(m.headers.len(), 2);
        assert!(m.pages.contains("cv"));
        assert!(m.demos.contains("minirt"));
    }

    #[test]
    fn refuses_other_versions_and_bad_headers() {
        let v2 = SAMPLE.replace("\"version\": 1", "\"version\": 2");
        assert_eq!(EdgeManifest::parse(&v2), Err(ManifestError::Version(2)));
        let bad = SAMPLE.replace("DENY", "DENY\\r\\nSet-Cookie: x=1");
        assert!(matches!(
            EdgeManifest::parse(&bad),
            Err(ManifestError::Header(_))
        ));
        let bad_url = SAMPLE.replace("https://Ada.example.dev/", "/relative");
        assert!(matches!(
            EdgeManifest::parse(&bad_url),
            Err(ManifestError::BaseUrl(_))
        ));
        assert!(matches!(
            EdgeManifest::parse("{"),
            Err(ManifestError::Parse(_))
        ));
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            origin_of("HTTPS://X.dev:443/a?b").as_deref(),
            Some("https://x.dev")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8787").as_deref(),
            Some("http://127.0.0.1:8787")
        );
        assert_eq!(
            origin_of("http://x.dev:80").as_deref(),
            Some("http://x.dev")
        );
        assert_eq!(origin_of("ftp://x.dev"), None);
        assert_eq!(origin_of("https://user@x.dev"), None);
        assert_eq!(origin_of("null"), None);
    }

    #[test]
    fn settings_defaults_and_overrides() {
        let s = Settings::from_lookup(|_| None);
        assert_eq!(s, Settings::default());
        let s = Settings::from_lookup(|k| match k {
            "TERMINAL_ORIGIN" => Some("http://127.0.0.1:9000/".into()),
            "MAX_SESSIONS" => Some("3".into()),
            "MAX_SESSIONS_PER_VISITOR" => Some("zero".into()),
            "MAX_SESSION_STARTS_PER_MINUTE" => Some("7".into()),
            "ALLOWED_ORIGINS" => Some("https://a.dev, nonsense ,http://b.dev:8080/".into()),
            _ => None,
        });
        assert_eq!(s.terminal_origin.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s.max_sessions, 3);
        assert_eq!(s.max_sessions_per_visitor, 2);
        assert_eq!(s.max_session_starts_per_minute, 7);
        assert_eq!(s.session_caps().max_starts_per_minute, 7);
        assert_eq!(s.extra_origins, vec!["https://a.dev", "http://b.dev:8080"]);
    }
}
