//! Syntax highlighting of code blocks into CSS classes, with a content-hash cache.
//!
//! Highlighting is the most expensive step of a build, so each block is hashed (language +
//! code) and the HTML kept in memory and on disk (`.folio/cache/highlight.bin`): a rebuild of an
//! unchanged site highlights nothing. syntect's grammars are loaded once and shared by all
//! rendering threads, each grammar's regexes compiled once on first use.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use syntect::highlighting::ThemeSet;
use syntect::html::{css_for_theme_with_class_style, ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

/// CSS class prefix of highlighted tokens (`z-keyword`, …); part of the cache key.
const CLASS_STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "z-" };
/// Bump when the highlighted HTML changes shape, so old cache files are ignored.
const CACHE_FORMAT: &[u8; 8] = b"FOLIOHL2";

type Key = [u8; 32];

/// Highlights code blocks; shared by every rendering thread.
pub struct Highlighter {
    syntaxes: OnceLock<SyntaxSet>,
    cache: Mutex<HashMap<Key, Arc<str>>>,
    used: Mutex<HashSet<Key>>,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

impl Default for Highlighter {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts of one build's highlighting work, for `--verbose`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Blocks served from the cache.
    pub hits: usize,
    /// Blocks highlighted now.
    pub misses: usize,
}

impl Highlighter {
    /// A highlighter with an empty cache; grammars load on first use.
    pub fn new() -> Self {
        Highlighter {
            syntaxes: OnceLock::new(),
            cache: Mutex::new(HashMap::new()),
            used: Mutex::new(HashSet::new()),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        }
    }

    /// Loads the grammars now (off the critical path, e.g. while files are being read).
    pub fn warm_up(&self) {
        self.syntaxes();
    }

    fn syntaxes(&self) -> &SyntaxSet {
        self.syntaxes.get_or_init(SyntaxSet::load_defaults_newlines)
    }

    /// Whether a language name is known (for a warning on typos such as `rsut`).
    pub fn knows(&self, lang: &str) -> bool {
        self.syntaxes().find_syntax_by_token(lang).is_some()
    }

    /// The inner HTML of a `<code>` element for this block: spans with classes, or escaped text
    /// when the language is unknown or not given.
    pub fn highlight(&self, lang: Option<&str>, code: &str) -> Arc<str> {
        let key = cache_key(lang.unwrap_or(""), code);
        if let Some(hit) = self.cache.lock().expect("highlight cache poisoned").get(&key).cloned() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.used.lock().expect("poisoned").insert(key);
            return hit;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let html: Arc<str> = self.highlight_uncached(lang, code).into();
        self.cache.lock().expect("highlight cache poisoned").insert(key, html.clone());
        self.used.lock().expect("poisoned").insert(key);
        html
    }

    fn highlight_uncached(&self, lang: Option<&str>, code: &str) -> String {
        let ss = self.syntaxes();
        let Some(syntax) = lang.and_then(|l| ss.find_syntax_by_token(l)) else {
            return escape(code);
        };
        let mut gen = ClassedHTMLGenerator::new_with_class_style(syntax, ss, CLASS_STYLE);
        for line in LinesWithEndings::from(code) {
            if gen.parse_html_for_line_which_includes_newline(line).is_err() {
                return escape(code);
            }
        }
        gen.finalize()
    }

    /// This build's cache counts.
    pub fn stats(&self) -> Stats {
        Stats { hits: self.hits.load(Ordering::Relaxed), misses: self.misses.load(Ordering::Relaxed) }
    }

    /// Loads a cache file written by [`Highlighter::save`]; a missing, old or damaged file is
    /// simply an empty cache.
    pub fn load(&self, path: &Path) {
        let Ok(mut f) = std::fs::File::open(path) else { return };
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() || buf.len() < 8 || &buf[..8] != CACHE_FORMAT {
            return;
        }
        let mut map = HashMap::new();
        let mut i = 8;
        while i + 36 <= buf.len() {
            let mut key = [0u8; 32];
            key.copy_from_slice(&buf[i..i + 32]);
            let len = u32::from_le_bytes(buf[i + 32..i + 36].try_into().expect("4 bytes")) as usize;
            i += 36;
            let Some(bytes) = buf.get(i..i + len) else { return };
            let Ok(s) = std::str::from_utf8(bytes) else { return };
            map.insert(key, Arc::from(s));
            i += len;
        }
        *self.cache.lock().expect("poisoned") = map;
    }

    /// Writes the blocks used by this build (so the file does not grow forever), atomically.
    /// Skipped when nothing changed since the cache was loaded.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let used = self.used.lock().expect("poisoned");
        let cache = self.cache.lock().expect("poisoned");
        if self.misses.load(Ordering::Relaxed) == 0 && used.len() == cache.len() && path.exists() {
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        {
            let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            w.write_all(CACHE_FORMAT)?;
            let mut keys: Vec<&Key> = used.iter().collect();
            keys.sort();
            for k in keys {
                if let Some(v) = cache.get(k) {
                    w.write_all(k)?;
                    w.write_all(&(v.len() as u32).to_le_bytes())?;
                    w.write_all(v.as_bytes())?;
                }
            }
            w.flush()?;
        }
        std::fs::rename(&tmp, path)
    }
}

fn cache_key(lang: &str, code: &str) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(CACHE_FORMAT);
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(&(lang.len() as u64).to_le_bytes());
    h.update(lang.as_bytes());
    h.update(code.as_bytes());
    *h.finalize().as_bytes()
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The names of the built-in highlighting themes.
pub fn theme_names() -> Vec<String> {
    let mut v: Vec<String> = ThemeSet::load_defaults().themes.keys().cloned().collect();
    v.sort();
    v
}

/// The stylesheet for highlighted code: the light theme by default, the dark one under
/// `prefers-color-scheme: dark` unless the page says `data-theme="light"`, and whenever it says
/// `data-theme="dark"` (the theme toggle).
pub fn stylesheet(light: &str, dark: &str) -> Result<String, String> {
    let themes = ThemeSet::load_defaults();
    let get = |name: &str| {
        themes.themes.get(name).ok_or_else(|| format!("unknown highlight theme {name:?}; available: {}", theme_names().join(", ")))
    };
    let light_css = css_for_theme_with_class_style(get(light)?, CLASS_STYLE).map_err(|e| e.to_string())?;
    let dark_css = css_for_theme_with_class_style(get(dark)?, CLASS_STYLE).map_err(|e| e.to_string())?;
    let mut out = String::new();
    out.push_str(&strip_comments(&light_css));
    out.push_str("@media (prefers-color-scheme: dark) {\n");
    out.push_str(&scope(&dark_css, ":root:not([data-theme=\"light\"])"));
    out.push_str("}\n");
    out.push_str(&scope(&dark_css, ":root[data-theme=\"dark\"]"));
    Ok(out)
}

fn strip_comments(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        match rest[i..].find("*/") {
            Some(j) => rest = &rest[i + j + 2..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Prefixes every selector of a flat stylesheet with `prefix`.
fn scope(css: &str, prefix: &str) -> String {
    let css = strip_comments(css);
    let mut out = String::new();
    for rule in css.split('}') {
        let Some((sel, body)) = rule.split_once('{') else { continue };
        let sels: Vec<String> = sel.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| format!("{prefix} {s}")).collect();
        if sels.is_empty() {
            continue;
        }
        out.push_str(&sels.join(", "));
        out.push_str(" {");
        out.push_str(body);
        out.push_str("}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_known_languages_and_escapes_unknown() {
        let h = Highlighter::new();
        let html = h.highlight(Some("rust"), "fn main() { let x = 1 < 2; }\n");
        assert!(html.contains("z-keyword") || html.contains("z-storage"), "{html}");
        assert!(html.contains("&lt;"));
        let plain = h.highlight(Some("no-such-lang"), "<b>\n");
        assert_eq!(&*plain, "&lt;b&gt;\n");
        assert_eq!(h.stats().misses, 2);
        h.highlight(Some("rust"), "fn main() { let x = 1 < 2; }\n");
        assert_eq!(h.stats().hits, 1);
    }

    #[test]
    fn cache_survives_a_round_trip_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hl.bin");
        let a = Highlighter::new();
        let first = a.highlight(Some("c"), "int main(void) { return 0; }\n");
        a.save(&path).unwrap();
        let b = Highlighter::new();
        b.load(&path);
        let second = b.highlight(Some("c"), "int main(void) { return 0; }\n");
        assert_eq!(first, second);
        assert_eq!(b.stats().hits, 1);
        assert_eq!(b.stats().misses, 0);
    }

    #[test]
    fn stylesheet_has_light_and_dark() {
        let css = stylesheet("InspiredGitHub", "base16-ocean.dark").unwrap();
        assert!(css.contains("prefers-color-scheme: dark"));
        assert!(css.contains(":root[data-theme=\"dark\"] .z-"));
        assert!(stylesheet("nope", "base16-ocean.dark").unwrap_err().contains("available"));
    }
}
