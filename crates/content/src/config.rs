//! `folio.toml`: the site's settings, parsed strictly so that a typo is an error, not a silent default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diagnostics::{line_col, Diagnostic, Diagnostics};
use crate::frontmatter::FmError;
use crate::value::toml_to_json;

/// The name of the configuration file at the root of a site.
pub const CONFIG_FILE: &str = "folio.toml";

/// The whole of `folio.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The site's title, used in `<title>`, the feed and the sitemap.
    pub title: String,
    /// Absolute URL the site is served from; permalinks, the feed and the sitemap use it.
    pub base_url: String,
    /// The author's name (feed, meta tags, JSON-LD).
    #[serde(default)]
    pub author: Option<String>,
    /// One-line description of the site.
    #[serde(default)]
    pub description: Option<String>,
    /// Theme folder under `themes/`; `folio` is built in.
    #[serde(default = "default_theme")]
    pub theme: String,
    /// Language of the content, for `<html lang>` and the feed.
    #[serde(default = "default_language")]
    pub language: String,
    /// How many entries the Atom feed holds.
    #[serde(default = "default_feed_limit")]
    pub feed_limit: usize,
    /// Markdown rendering options.
    #[serde(default)]
    pub markdown: MarkdownConfig,
    /// The security policy written into `_headers` and applied by the Worker.
    #[serde(default)]
    pub security: SecurityConfig,
    /// Settings of the dynamic parts served by the Worker.
    #[serde(default)]
    pub edge: EdgeConfig,
    /// Limits of the live terminal, read by `folio-pty`.
    #[serde(default)]
    pub terminal: TerminalConfig,
    /// The first-party contact form.
    #[serde(default)]
    pub contact: crate::contact::ContactConfig,
    /// The full-text search index the build writes.
    #[serde(default)]
    pub search: SearchConfig,
    /// Anything the author wants templates to see, as `config.extra`.
    #[serde(default, serialize_with = "serialize_table")]
    pub extra: toml::Table,
}

/// `[markdown]`: how write-ups become HTML.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarkdownConfig {
    /// Highlight fenced code blocks (CSS classes, one stylesheet).
    pub highlight: bool,
    /// syntect theme for the light stylesheet.
    pub highlight_theme_light: String,
    /// syntect theme for the dark stylesheet.
    pub highlight_theme_dark: String,
    /// Curly quotes, dashes and ellipses.
    pub smart_punctuation: bool,
    /// Deepest heading level listed in the table of contents.
    pub toc_depth: u8,
    /// `$…$` and `$$…$$` as TeX, rendered to MathML at build time. Off: a `$` is only a dollar.
    pub math: bool,
}

impl Default for MarkdownConfig {
    fn default() -> Self {
        MarkdownConfig {
            highlight: true,
            highlight_theme_light: "InspiredGitHub".into(),
            highlight_theme_dark: "base16-ocean.dark".into(),
            smart_punctuation: true,
            toc_depth: 3,
            math: true,
        }
    }
}

/// `[search]`: the full-text search index (`search/` in the output) and the theme's search box.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Write the index (and show the search box).
    pub enabled: bool,
    /// Index the text of code blocks too (off: code is left out, so identifiers in long
    /// listings do not crowd out prose).
    pub include_code: bool,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            enabled: true,
            include_code: false,
        }
    }
}

/// `[security]`: response headers for every page, secure by default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// `Strict-Transport-Security` max-age in seconds (0 disables the header).
    pub hsts_max_age: u64,
    /// Adds `includeSubDomains` to HSTS.
    pub hsts_include_subdomains: bool,
    /// Adds `preload` to HSTS (only once you have submitted the domain).
    pub hsts_preload: bool,
    /// CSP `frame-ancestors` (who may frame the site).
    pub frame_ancestors: String,
    /// `Referrer-Policy`.
    pub referrer_policy: String,
    /// `Permissions-Policy`.
    pub permissions_policy: String,
    /// `Cross-Origin-Opener-Policy`.
    pub cross_origin_opener_policy: String,
    /// `Cross-Origin-Resource-Policy`.
    pub cross_origin_resource_policy: String,
    /// Extra CSP sources by directive, e.g. `img-src = ["https://images.example"]`.
    pub csp: BTreeMap<String, Vec<String>>,
    /// Further headers added verbatim to every response.
    pub extra_headers: BTreeMap<String, String>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            hsts_max_age: 63_072_000,
            hsts_include_subdomains: true,
            hsts_preload: false,
            frame_ancestors: "'none'".into(),
            referrer_policy: "strict-origin-when-cross-origin".into(),
            permissions_policy: "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()".into(),
            cross_origin_opener_policy: "same-origin".into(),
            cross_origin_resource_policy: "same-origin".into(),
            csp: BTreeMap::new(),
            extra_headers: BTreeMap::new(),
        }
    }
}

/// `[edge]`: the dynamic parts the Worker adds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Show and count page views through `/api/views`.
    pub views: bool,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig { views: true }
    }
}

/// `[terminal]`: limits of the live terminal sessions, shared by every demo of the site.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TerminalConfig {
    /// Offer live terminals at all.
    pub enabled: bool,
    /// Concurrent sessions across all visitors.
    pub max_sessions: usize,
    /// Concurrent sessions of one visitor.
    pub max_sessions_per_client: usize,
    /// Memory cap of a session, MiB.
    pub memory_mb: u64,
    /// Processes a session may run at once.
    pub max_processes: u64,
    /// CPU seconds a session may use.
    pub cpu_seconds: u64,
    /// Largest file a session may write, MiB.
    pub file_size_mb: u64,
    /// Open files per process.
    pub open_files: u64,
    /// Size of a session's private writable copy, MiB.
    pub disk_mb: u64,
    /// Default idle timeout of a demo, seconds.
    pub idle_timeout: u64,
    /// Default wall-clock limit of a demo, seconds.
    pub timeout: u64,
    /// How long `folio-pty` keeps a session whose connection dropped, so the visitor's page
    /// can resume it, seconds (0: sessions end with their connection; at most 600).
    pub resume_grace: u64,
}

impl Default for TerminalConfig {
    fn default() -> Self {
        TerminalConfig {
            enabled: true,
            max_sessions: 8,
            max_sessions_per_client: 2,
            memory_mb: 256,
            max_processes: 64,
            cpu_seconds: 600,
            file_size_mb: 64,
            open_files: 256,
            disk_mb: 64,
            idle_timeout: 300,
            timeout: 1800,
            resume_grace: 60,
        }
    }
}

fn default_theme() -> String {
    "folio".into()
}
fn default_language() -> String {
    "en".into()
}
fn default_feed_limit() -> usize {
    20
}

fn serialize_table<S: serde::Serializer>(t: &toml::Table, s: S) -> Result<S::Ok, S::Error> {
    toml_to_json(&toml::Value::Table(t.clone())).serialize(s)
}

impl Config {
    /// Reads and validates `folio.toml` in `root`: [`Config::load_all`], with its first
    /// problem only.
    pub fn load(root: &Path) -> Result<Config, Diagnostic> {
        Self::load_all(root).map_err(|d| {
            d.errors()
                .first()
                .map(|d| (*d).clone())
                .unwrap_or_else(|| Diagnostic::error(CONFIG_FILE, None, "invalid"))
        })
    }

    /// Reads and validates `folio.toml` in `root`.
    ///
    /// A missing file says how to start a site (or, beside a Zola or Hugo configuration, how
    /// to import it); a syntax error or a wrong type points at its line and column; unknown
    /// keys are reported all at once, each at its line with the closest known key.
    pub fn load_all(root: &Path) -> Result<Config, Diagnostics> {
        let path = root.join(CONFIG_FILE);
        let shown = PathBuf::from(CONFIG_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let msg = match foreign_config(root) {
                    Some((kind, file)) => format!(
                        "no {CONFIG_FILE} here, but {file} is a {kind} configuration: run `folio import {} {}` to make {CONFIG_FILE} from it",
                        kind.to_lowercase(),
                        root.display()
                    ),
                    None => format!(
                        "no {CONFIG_FILE} here: this is not a folio site (start one with `folio new {}`)",
                        root.display()
                    ),
                };
                return Err(Diagnostic::error(root.join(CONFIG_FILE), None, msg).into());
            }
            Err(e) => {
                return Err(Diagnostic::error(shown, None, format!("cannot read: {e}")).into())
            }
        };
        let text =
            String::from_utf8(bytes).map_err(|e| crate::diagnostics::not_utf8(&shown, &e))?;
        Self::parse_all(&text).map_err(|errs| {
            let mut d = Diagnostics::new();
            for (pos, msg) in errs {
                d.push(Diagnostic::error(&shown, pos, msg));
            }
            d
        })
    }

    /// Parses the text of a `folio.toml`; the error is the first problem, with a (line,
    /// column) when known.
    pub fn parse(text: &str) -> Result<Config, (Option<(usize, usize)>, String)> {
        Self::parse_all(text).map_err(|mut e| e.remove(0))
    }

    /// Parses the text of a `folio.toml`, reporting every unknown key at once (never an
    /// empty list).
    pub fn parse_all(text: &str) -> Result<Config, Vec<FmError>> {
        let unknown = unknown_keys(text);
        if !unknown.is_empty() {
            return Err(unknown);
        }
        Self::parse_known(text).map_err(|e| vec![e])
    }

    fn parse_known(text: &str) -> Result<Config, (Option<(usize, usize)>, String)> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| {
            let pos = e.span().map(|s| line_col(text, s.start));
            (pos, e.message().trim().to_string())
        })?;
        let key_pos = |key: &str| crate::frontmatter::find_key(text, key);
        cfg.base_url = normalize_base_url(&cfg.base_url).map_err(|e| (key_pos("base_url"), e))?;
        if cfg.theme.is_empty() || cfg.theme.contains(['/', '\\']) || cfg.theme.starts_with('.') {
            return Err((
                key_pos("theme"),
                format!(
                    "`theme` must be a folder name under themes/, got {:?}",
                    cfg.theme
                ),
            ));
        }
        if let Err((key, msg)) = cfg.contact.check() {
            return Err((key_pos(key), msg));
        }
        if !(1..=6).contains(&cfg.markdown.toc_depth) {
            return Err((
                key_pos("toc_depth"),
                "`toc_depth` must be between 1 and 6".into(),
            ));
        }
        Ok(cfg)
    }

    /// Replaces `base_url` (the `--base-url` flag) after the same checks and normalisation as
    /// `folio.toml`'s, so a URL the file would refuse is refused here too.
    pub fn set_base_url(&mut self, url: &str) -> Result<(), String> {
        self.base_url = normalize_base_url(url)?;
        Ok(())
    }

    /// The absolute URL of a site path such as `/projects/x/`.
    pub fn permalink(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// The path the site lives under, without a trailing `/`: `""` for a site at the root of
    /// its host, `"/blog"` for `base_url = "https://example.com/blog/"`. Every root-absolute
    /// URL the build writes is prefixed with it.
    pub fn base_path(&self) -> &str {
        base_path_of(&self.base_url)
    }
}

/// The path part of a normalised `base_url` (`""` or `/a/b`, no trailing `/`).
fn base_path_of(base_url: &str) -> &str {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    rest.find('/').map_or("", |i| &rest[i..])
}

/// Checks a `base_url` (from `folio.toml` or `--base-url`) and normalises it: an absolute
/// `http://` or `https://` URL with a host, an optional port and an optional path, no query,
/// fragment, user info or white space; the trailing `/` is dropped. The path may hold only
/// characters that need no escaping in a URL, an HTML attribute or a JavaScript string
/// (letters, digits, `-._~!$()*+,;=:@%/`), since it is written into all three.
/// The error says what is wrong with the value, quoted.
pub fn normalize_base_url(url: &str) -> Result<String, String> {
    let bad =
        |why: &str| format!("`base_url` must be an absolute http(s) URL ({why}), got {url:?}");
    let trimmed = url.trim_end_matches('/');
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(bad("no scheme: write https://…"));
    };
    if !(scheme == "https" || scheme == "http") {
        return Err(bad("the scheme must be http or https"));
    }
    let (host_port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host_port.is_empty() {
        return Err(bad("no host"));
    }
    if host_port.contains('@') {
        return Err(bad("no user name or password"));
    }
    let (host, port) = match host_port.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        Some(v6) => match v6.split_once(']') {
            Some((h, p)) if !h.is_empty() => (h, p.strip_prefix(':')),
            _ => return Err(bad("a broken IPv6 host")),
        },
        None => match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    if !host_ok {
        return Err(bad("not a host name"));
    }
    if let Some(p) = port {
        if p.is_empty()
            || p.len() > 5
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<u32>().map_or(true, |n| n > 65535)
        {
            return Err(bad("not a port number"));
        }
    }
    if trimmed.contains(['?', '#']) {
        return Err(bad("no query or fragment"));
    }
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$()*+,;=:@%/".contains(&b));
    if !path_ok {
        return Err(bad(
            "the path may hold only letters, digits and -._~!$()*+,;=:@%/",
        ));
    }
    if path.contains("//") || path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(bad("the path has an empty, `.` or `..` segment"));
    }
    Ok(trimmed.to_string())
}

/// A Zola or Hugo configuration in `root`, if there is one: (`"Zola"` or `"Hugo"`, its file).
pub fn foreign_config(root: &Path) -> Option<(&'static str, &'static str)> {
    for file in ["hugo.toml", "hugo.yaml", "hugo.yml", "zola.toml"] {
        if root.join(file).is_file() {
            return Some((if file == "zola.toml" { "Zola" } else { "Hugo" }, file));
        }
    }
    if let Ok(text) = std::fs::read_to_string(root.join("config.toml")) {
        // Zola writes `base_url`; Hugo `baseURL` (any case).
        let hugo = text.lines().any(|l| {
            let l = l.trim_start().to_ascii_lowercase();
            l.starts_with("baseurl") || l.starts_with("languagecode")
        });
        return Some(if hugo {
            ("Hugo", "config.toml")
        } else {
            ("Zola", "config.toml")
        });
    }
    for file in ["config.yaml", "config.yml"] {
        if root.join(file).is_file() {
            return Some(("Hugo", file));
        }
    }
    None
}

const TOP_KEYS: &[&str] = &[
    "title",
    "base_url",
    "author",
    "description",
    "theme",
    "language",
    "feed_limit",
    "markdown",
    "security",
    "edge",
    "terminal",
    "contact",
    "search",
    "extra",
];

/// The keys of a table of settings, from its defaults (so the list cannot drift).
fn keys_of<T: Serialize + Default>() -> Vec<String> {
    keys_of_value(T::default())
}

/// The keys of a table of settings, from a value of it (optional keys set, since TOML
/// leaves out what is `None`).
fn keys_of_value<T: Serialize>(value: T) -> Vec<String> {
    match toml::Value::try_from(value) {
        Ok(toml::Value::Table(t)) => t.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Every unknown key of a `folio.toml`, each at its line with the closest known key. Text that
/// does not parse has none (the typed parse reports the syntax error).
fn unknown_keys(text: &str) -> Vec<FmError> {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut report = |table: Option<&str>, key: &str, known: &[&str]| {
        let hint = crate::frontmatter::suggest(key, known)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| match table {
                None => "; settings of your own go under [extra]".into(),
                Some(_) => String::new(),
            });
        let name = match table {
            Some(t) => format!("[{t}] {key}"),
            None => key.to_string(),
        };
        out.push((
            find_table_key(text, table, key),
            format!("unknown key `{name}` in {CONFIG_FILE}{hint}"),
        ));
    };
    for (key, value) in &table {
        if !TOP_KEYS.contains(&key.as_str()) {
            report(None, key, TOP_KEYS);
            continue;
        }
        let sub = match key.as_str() {
            "markdown" => keys_of::<MarkdownConfig>(),
            "security" => keys_of::<SecurityConfig>(),
            "edge" => keys_of::<EdgeConfig>(),
            "terminal" => keys_of::<TerminalConfig>(),
            "search" => keys_of::<SearchConfig>(),
            "contact" => keys_of_value(crate::contact::ContactConfig {
                sender: Some(String::new()),
                subject_prefix: Some(String::new()),
                ..Default::default()
            }),
            _ => continue,
        };
        let sub: Vec<&str> = sub.iter().map(String::as_str).collect();
        if let toml::Value::Table(t) = value {
            for k in t.keys().filter(|k| !sub.contains(&k.as_str())) {
                report(Some(key), k, &sub);
            }
        }
    }
    out.sort_by_key(|(pos, _)| *pos);
    out
}

/// Where `key` is set in `[table]` (or at the top level) of a TOML file, as a (line, column).
pub fn find_table_key(text: &str, table: Option<&str>, key: &str) -> Option<(usize, usize)> {
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with('[') {
            let name = t.trim_end().trim_start_matches('[').trim_end_matches(']');
            current = Some(name.trim().to_string());
            continue;
        }
        if current.as_deref() != table {
            continue;
        }
        let bare = t.trim_start_matches(['"', '\'']);
        if let Some(after) = bare.strip_prefix(key) {
            let after = after.trim_start_matches(['"', '\'']).trim_start();
            if after.starts_with('=') || after.starts_with(':') {
                let col = line[..line.len() - t.len()].chars().count() + 1;
                return Some((i + 1, col));
            }
        }
    }
    match table {
        Some(t) => find_table_key(text, None, &format!("{t}.{key}")),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_secure_defaults() {
        let c = Config::parse("title = \"t\"\nbase_url = \"https://x.dev/\"\n").unwrap();
        assert_eq!(c.base_url, "https://x.dev");
        assert_eq!(c.theme, "folio");
        assert_eq!(c.security.frame_ancestors, "'none'");
        assert!(c.security.hsts_max_age >= 15_552_000);
        assert_eq!(c.permalink("/a/"), "https://x.dev/a/");
    }

    #[test]
    fn unknown_key_is_named_with_its_position() {
        let (pos, msg) =
            Config::parse("title = \"t\"\nbase_url = \"https://x\"\ncolour = 1\n").unwrap_err();
        assert_eq!(pos, Some((3, 1)));
        assert!(msg.contains("unknown key `colour`"), "{msg}");
        let (pos, msg) =
            Config::parse("title = \"t\"\nbase_url = \"https://x\"\n[markdown]\nhighlite = true\n")
                .unwrap_err();
        assert_eq!(pos, Some((4, 1)));
        assert!(msg.contains("highlite"), "{msg}");
    }

    #[test]
    fn every_unknown_key_is_reported_at_once_with_a_hint() {
        let errs = Config::parse_all(
            "title = \"t\"\nbase_url = \"https://x\"\ncompile_sass = true\ndescripton = \"d\"\n[markdown]\nhighlite = true\n[edge]\nveiws = false\n",
        )
        .unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert_eq!(errs[0].0, Some((3, 1)));
        assert!(errs[1].1.contains("did you mean `description`"), "{errs:?}");
        assert_eq!(errs[2].0, Some((6, 1)));
        assert!(errs[2].1.contains("did you mean `highlight`"), "{errs:?}");
        assert_eq!(errs[3].0, Some((8, 1)));
        assert!(errs[3].1.contains("did you mean `views`"), "{errs:?}");
    }

    #[test]
    fn contact_keys_are_known_and_a_typo_is_named() {
        let ok = "title = \"t\"\nbase_url = \"https://x\"\n[contact]\nenabled = true\nrecipient = \"a@x.dev\"\nsender = \"c@x.dev\"\nsubject_prefix = \"[x] \"\nper_day = 9\n";
        assert!(
            Config::parse_all(ok).is_ok(),
            "{:?}",
            Config::parse_all(ok).err()
        );
        let errs = Config::parse_all(
            "title = \"t\"\nbase_url = \"https://x\"\n[contact]\nrecipent = \"a@x.dev\"\n",
        )
        .unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].1.contains("did you mean `recipient`"), "{errs:?}");
    }

    #[test]
    fn base_url_is_checked_and_its_path_kept() {
        for ok in [
            ("https://x.dev/", "https://x.dev", ""),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080", ""),
            ("https://x.dev/blog/", "https://x.dev/blog", "/blog"),
            ("https://[::1]:9/a/b", "https://[::1]:9/a/b", "/a/b"),
        ] {
            let text = format!("title = \"t\"\nbase_url = \"{}\"\n", ok.0);
            let c = Config::parse(&text).unwrap();
            assert_eq!(
                (c.base_url.as_str(), c.base_path()),
                (ok.1, ok.2),
                "{}",
                ok.0
            );
            assert_eq!(normalize_base_url(ok.0).as_deref(), Ok(ok.1));
        }
        for bad in [
            "example.com",
            "ftp://x.dev",
            "https://",
            "https://u:p@x.dev",
            "https://x.dev:99999",
            "https://x.dev/a b/",
            "https://x.dev/a\"b/",
            "https://x.dev/?q=1",
            "https://x.dev/a/../b",
            "https://x.dev//b",
        ] {
            let text = format!("title = \"t\"\nbase_url = {bad:?}\n");
            let (pos, msg) = Config::parse(&text).unwrap_err();
            assert_eq!(pos, Some((2, 1)), "{bad}");
            assert!(
                msg.contains("`base_url`") && msg.contains(&format!("{bad:?}")),
                "{msg}"
            );
            let mut c = Config::parse("title = \"t\"\nbase_url = \"https://x.dev\"\n").unwrap();
            assert_eq!(c.set_base_url(bad), Err(msg.clone()), "{bad}");
            assert_eq!(c.base_url, "https://x.dev");
        }
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let (pos, msg) = Config::parse("title = 3\nbase_url = \"https://x\"\n").unwrap_err();
        assert_eq!(pos, Some((1, 9)));
        assert!(msg.contains("string"), "{msg}");
    }
}
