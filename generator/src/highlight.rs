//! Syntax highlighting of code blocks into short CSS classes, with a content-hash cache.
//!
//! syntect parses each block into scopes; each token gets one of a small set of classes
//! (`hl-k` keyword, `hl-s` string, `hl-c` comment, …) chosen from its innermost meaningful scope,
//! adjacent tokens of a class merged. The stylesheet colours those classes from any syntect
//! theme, light and dark. That keeps pages about half the size of full scope-stack classes.
//!
//! Highlighting is the most expensive step of a build, so each block is hashed (language +
//! code) and the HTML kept in memory and on disk (`.folio/cache/highlight.bin`): a rebuild of an
//! unchanged site highlights nothing. syntect's grammars are loaded once and shared by all
//! rendering threads, each grammar's regexes compiled once on first use.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::cache::BlobCache;

mod lines;

use syntect::highlighting::{FontStyle, Theme, ThemeSet};
use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxSet};
use syntect::util::LinesWithEndings;

/// Bump when the highlighted HTML changes shape, so old cache files are ignored.
const CACHE_FORMAT: &[u8; 8] = b"FOLIOHL3";

/// Token classes: (scope prefix, class, scope whose theme colour the class takes). Searched from
/// the innermost scope outwards; the first prefix that matches a scope wins.
const CLASSES: &[(&str, &str, &str)] = &[
    ("comment", "c", "comment.line"),
    (
        "constant.character.escape",
        "se",
        "constant.character.escape",
    ),
    ("string", "s", "string.quoted.double"),
    ("constant.numeric", "m", "constant.numeric"),
    ("constant.language", "kc", "constant.language"),
    ("constant", "co", "constant.other"),
    ("variable.other.constant", "co", "constant.other"),
    ("keyword.operator", "o", "keyword.operator"),
    ("keyword", "k", "keyword.control"),
    ("storage.type", "kt", "storage.type"),
    ("storage", "kd", "storage.modifier"),
    ("entity.name.function", "nf", "entity.name.function"),
    ("variable.function", "nf", "entity.name.function"),
    ("support.function", "nb", "support.function"),
    ("entity.name.tag", "nt", "entity.name.tag"),
    (
        "entity.other.attribute-name",
        "na",
        "entity.other.attribute-name",
    ),
    ("entity.name.section", "ns", "entity.name.section"),
    ("entity.name", "nc", "entity.name.type"),
    ("entity.other.inherited-class", "nc", "entity.name.type"),
    ("support.type", "nc", "support.type"),
    ("support.class", "nc", "support.class"),
    ("support", "nb", "support.function"),
    ("variable.parameter", "nv", "variable.parameter"),
    ("variable.language", "bp", "variable.language"),
    ("markup.heading", "gh", "markup.heading"),
    ("markup.bold", "gs", "markup.bold"),
    ("markup.italic", "ge", "markup.italic"),
    ("markup.inserted", "gi", "markup.inserted"),
    ("markup.deleted", "gd", "markup.deleted"),
    ("invalid", "err", "invalid.illegal"),
];

fn class_prefixes() -> &'static [(Scope, &'static str)] {
    static P: OnceLock<Vec<(Scope, &'static str)>> = OnceLock::new();
    P.get_or_init(|| {
        CLASSES
            .iter()
            .map(|(p, c, _)| (Scope::new(p).expect("valid scope"), *c))
            .collect()
    })
}

/// The class of a token from its scope stack, if any.
fn class_of(stack: &ScopeStack) -> Option<&'static str> {
    stack.as_slice().iter().rev().find_map(|s| scope_class(*s))
}

/// The class one scope gives, if any: the first prefix in [`CLASSES`] that it starts with.
/// Asked once per scope of every token, so each thread remembers the answers (a site's
/// grammars use a few thousand scopes).
fn scope_class(scope: Scope) -> Option<&'static str> {
    thread_local! {
        static KNOWN: std::cell::RefCell<std::collections::HashMap<Scope, Option<&'static str>>> =
            std::cell::RefCell::default();
    }
    KNOWN.with(|k| {
        *k.borrow_mut().entry(scope).or_insert_with(|| {
            class_prefixes()
                .iter()
                .find(|(p, _)| p.is_prefix_of(scope))
                .map(|(_, c)| *c)
        })
    })
}

/// Grammars of our own for languages syntect's default set lacks.
const EXTRA_SYNTAXES: &[&str] = &[include_str!("../syntaxes/toml.sublime-syntax")];

/// Highlights code blocks; shared by every rendering thread.
pub(crate) struct Highlighter {
    syntaxes: OnceLock<SyntaxSet>,
    extra: OnceLock<SyntaxSet>,
    cache: BlobCache,
    lines: lines::LineMemo,
}

impl Default for Highlighter {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts of one build's highlighting work, for `--verbose`.
pub(crate) use crate::cache::Stats;

impl Highlighter {
    /// A highlighter with an empty cache; grammars load on first use.
    pub(crate) fn new() -> Self {
        Highlighter {
            syntaxes: OnceLock::new(),
            extra: OnceLock::new(),
            cache: BlobCache::new(CACHE_FORMAT),
            lines: lines::LineMemo::new(),
        }
    }

    /// Loads the grammars now (off the critical path, e.g. while files are being read).
    pub(crate) fn warm_up(&self) {
        self.syntaxes();
    }

    fn syntaxes(&self) -> &SyntaxSet {
        self.syntaxes.get_or_init(SyntaxSet::load_defaults_newlines)
    }

    /// Grammars folio adds to syntect's defaults, compiled only when a page uses one.
    fn extra(&self) -> &SyntaxSet {
        self.extra.get_or_init(|| {
            let mut b = syntect::parsing::SyntaxSetBuilder::new();
            for src in EXTRA_SYNTAXES {
                let def = syntect::parsing::SyntaxDefinition::load_from_str(src, true, None)
                    .expect("bundled grammar is valid");
                b.add(def);
            }
            b.build()
        })
    }

    /// The grammar set and grammar for a language name, defaults first.
    fn find(&self, lang: &str) -> Option<(&SyntaxSet, &syntect::parsing::SyntaxReference)> {
        let ss = self.syntaxes();
        if let Some(s) = ss.find_syntax_by_token(lang) {
            return Some((ss, s));
        }
        let extra = self.extra();
        extra.find_syntax_by_token(lang).map(|s| (extra, s))
    }

    /// Whether a language name is known (for a warning on typos such as `rsut`).
    pub(crate) fn knows(&self, lang: &str) -> bool {
        self.find(lang).is_some()
    }

    /// The inner HTML of a `<code>` element for this block: spans with classes, or escaped text
    /// when the language is unknown or not given.
    pub(crate) fn highlight(&self, lang: Option<&str>, code: &str) -> Arc<str> {
        let key = cache_key(lang.unwrap_or(""), code);
        RECORDED.with(|r| {
            if let Some(keys) = r.borrow_mut().as_mut() {
                keys.push(key);
            }
        });
        if let Some(hit) = self.cache.get(&key) {
            if let Ok(s) = std::str::from_utf8(&hit) {
                return Arc::from(s);
            }
        }
        let html = self.highlight_uncached(lang, code);
        let html: Arc<str> = html.into();
        self.cache.put(key, Arc::from(html.as_bytes()));
        html
    }

    fn highlight_uncached(&self, lang: Option<&str>, code: &str) -> String {
        let Some((ss, syntax)) = lang.and_then(|l| self.find(l)) else {
            return escape(code);
        };
        // Which grammar set the parser's context ids point into, for the line memo.
        let set = u8::from(!std::ptr::eq(ss, self.syntaxes()));
        let mut state = ParseState::new(syntax);
        let mut stack = ScopeStack::new();
        let mut out = String::with_capacity(code.len() * 2);
        let mut pending = String::new();
        let mut pending_class: Option<&'static str> = None;
        let flush = |out: &mut String, text: &str, class: Option<&'static str>| {
            if text.is_empty() {
                return;
            }
            match class {
                Some(c) => {
                    out.push_str("<span class=\"hl-");
                    out.push_str(c);
                    out.push_str("\">");
                    escape_into(out, text);
                    out.push_str("</span>");
                }
                None => escape_into(out, text),
            }
        };
        for line in LinesWithEndings::from(code) {
            let Ok(ops) = self.lines.parse_line(set, &mut state, line, ss) else {
                return escape(code);
            };
            let mut pos = 0;
            let mut segment = |text: &str, class: Option<&'static str>, out: &mut String| {
                // whitespace joins any run; other text starts a new run when the class changes
                if class != pending_class && !text.trim().is_empty() {
                    flush(out, &pending, pending_class);
                    pending.clear();
                    pending_class = class;
                }
                pending.push_str(text);
            };
            for (at, op) in ops {
                if at > pos {
                    segment(&line[pos..at], class_of(&stack), &mut out);
                    pos = at;
                }
                if stack.apply(&op).is_err() {
                    return escape(code);
                }
            }
            if pos < line.len() {
                segment(&line[pos..], class_of(&stack), &mut out);
            }
        }
        flush(&mut out, &pending, pending_class);
        out
    }

    /// This build's cache counts.
    pub(crate) fn stats(&self) -> Stats {
        self.cache.stats()
    }

    /// Empties every thread's line memo: once the bodies are rendered, few lines are left to
    /// parse, and the memory goes to what follows.
    pub(crate) fn forget_lines(&self) {
        lines::forget();
    }

    /// Lines of code parsed, and how many of those parses were reused from another line.
    pub(crate) fn line_counts(&self) -> (usize, usize) {
        self.lines.counts()
    }

    /// Loads the highlight cache file; a missing or damaged one is an empty cache.
    #[cfg(test)]
    pub(crate) fn load(&self, path: &Path) {
        self.cache.load(path);
    }

    /// Names the highlight cache file, read when a block is first highlighted (a build
    /// whose bodies all come from the markdown cache never reads it).
    pub(crate) fn load_lazily(&self, path: &Path) {
        self.cache.load_lazily(path);
    }

    /// Marks blocks as used by this build without highlighting them (the body holding
    /// them was reused whole), so saving the cache keeps them.
    pub(crate) fn touch(&self, keys: &[crate::cache::Key]) {
        self.cache.touch(keys);
    }

    /// Saves the blocks used by this build.
    pub(crate) fn save(&self, path: &Path) -> std::io::Result<()> {
        self.cache.save(path)
    }
}

thread_local! {
    /// The cache keys of the blocks highlighted on this thread inside [`recording`].
    static RECORDED: std::cell::RefCell<Option<Vec<crate::cache::Key>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` and returns the cache keys of the blocks it highlighted on this thread: what a
/// body reused whole later [`Highlighter::touch`]es.
pub(crate) fn recording<R>(f: impl FnOnce() -> R) -> (R, Vec<crate::cache::Key>) {
    let outer = RECORDED.with(|r| r.borrow_mut().replace(Vec::new()));
    let out = f();
    let keys = RECORDED
        .with(|r| std::mem::replace(&mut *r.borrow_mut(), outer))
        .unwrap_or_default();
    // A recording around this one saw them too.
    RECORDED.with(|r| {
        if let Some(o) = r.borrow_mut().as_mut() {
            o.extend_from_slice(&keys);
        }
    });
    (out, keys)
}

fn cache_key(lang: &str, code: &str) -> crate::cache::Key {
    let mut h = blake3::Hasher::new();
    h.update(CACHE_FORMAT);
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(&(lang.len() as u64).to_le_bytes());
    h.update(lang.as_bytes());
    h.update(code.as_bytes());
    *h.finalize().as_bytes()
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    escape_into(&mut out, s);
    out
}

/// [`escape`], appended to `out`: runs of plain text are copied whole.
fn escape_into(out: &mut String, s: &str) {
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        out.push_str(entity);
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
}

/// The names of the built-in highlighting themes.
pub(crate) fn theme_names() -> Vec<String> {
    let mut v: Vec<String> = ThemeSet::load_defaults().themes.keys().cloned().collect();
    v.sort();
    v
}

/// Which of the two highlighting themes of `[markdown]` a [`StylesheetError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ThemeSlot {
    /// `highlight_theme_light`.
    Light,
    /// `highlight_theme_dark`.
    Dark,
}

impl ThemeSlot {
    /// The `folio.toml` key that names this theme (where the error is reported).
    pub(crate) fn config_key(self) -> &'static str {
        match self {
            ThemeSlot::Light => "highlight_theme_light",
            ThemeSlot::Dark => "highlight_theme_dark",
        }
    }
}

/// Why the highlighting stylesheet could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StylesheetError {
    /// A theme name that is not one of syntect's built-in themes.
    #[error("unknown highlight theme {name:?}; available: {}", theme_names().join(", "))]
    UnknownTheme {
        /// Which setting named it.
        slot: ThemeSlot,
        /// The name as written.
        name: String,
    },
}

/// The stylesheet for highlighted code: the light theme by default, the dark one under
/// `prefers-color-scheme: dark` unless the page says `data-theme="light"`, and whenever it says
/// `data-theme="dark"` (the theme toggle).
pub(crate) fn stylesheet(light: &str, dark: &str) -> Result<String, StylesheetError> {
    let themes = ThemeSet::load_defaults();
    let get = |slot: ThemeSlot, name: &str| {
        themes
            .themes
            .get(name)
            .ok_or_else(|| StylesheetError::UnknownTheme {
                slot,
                name: name.to_string(),
            })
    };
    let (light, dark) = (get(ThemeSlot::Light, light)?, get(ThemeSlot::Dark, dark)?);
    let mut out =
        String::from("/* Code highlighting, generated by folio from syntect themes. */\n");
    out.push_str(&rules(light, ""));
    out.push_str("@media (prefers-color-scheme: dark) {\n");
    out.push_str(&rules(dark, ":root:not([data-theme=\"light\"]) "));
    out.push_str("}\n");
    out.push_str(&rules(dark, ":root[data-theme=\"dark\"] "));
    Ok(out)
}

fn css_color(c: syntect::highlighting::Color) -> String {
    if c.a == 0xff {
        format!("#{:02x}{:02x}{:02x}", c.r, c.g, c.b)
    } else {
        format!("#{:02x}{:02x}{:02x}{:02x}", c.r, c.g, c.b, c.a)
    }
}

/// One theme's rules for the code block and each token class, every selector under `scope`.
fn rules(theme: &Theme, scope: &str) -> String {
    let hl = syntect::highlighting::Highlighter::new(theme);
    let default = hl.get_default();
    let mut out = String::new();
    let fg = theme.settings.foreground.unwrap_or(default.foreground);
    let bg = theme.settings.background.unwrap_or(default.background);
    out.push_str(&format!(
        "{scope}pre.code{{color:{};background:{}}}\n",
        css_color(fg),
        css_color(bg)
    ));
    let mut seen = HashSet::new();
    for (_, class, representative) in CLASSES {
        if !seen.insert(*class) {
            continue;
        }
        let stack: Vec<Scope> = representative
            .split(' ')
            .map(|s| Scope::new(s).expect("valid scope"))
            .collect();
        let style = hl.style_for_stack(&stack);
        let mut decl = Vec::new();
        if style.foreground != fg {
            decl.push(format!("color:{}", css_color(style.foreground)));
        }
        if style.font_style.contains(FontStyle::BOLD) {
            decl.push("font-weight:bold".into());
        }
        if style.font_style.contains(FontStyle::ITALIC) {
            decl.push("font-style:italic".into());
        }
        if style.font_style.contains(FontStyle::UNDERLINE) {
            decl.push("text-decoration:underline".into());
        }
        if !decl.is_empty() {
            out.push_str(&format!("{scope}.hl-{class}{{{}}}\n", decl.join(";")));
        }
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
        assert!(html.contains("<span class=\"hl-kt\">fn "), "{html}");
        assert!(html.contains("<span class=\"hl-nf\">main</span>"), "{html}");
        assert!(html.contains("&lt;"));
        let plain = h.highlight(Some("no-such-lang"), "<b>\n");
        assert_eq!(&*plain, "&lt;b&gt;\n");
        assert_eq!(h.stats().misses, 2);
        h.highlight(Some("rust"), "fn main() { let x = 1 < 2; }\n");
        assert_eq!(h.stats().hits, 1);
    }

    #[test]
    fn escape_replaces_five_characters_and_copies_the_rest() {
        assert_eq!(
            escape("Über <a href=\"x\">'&'</a>—ok"),
            "Über &lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;—ok"
        );
        assert_eq!(escape("&"), "&amp;");
        assert_eq!(escape("é"), "é");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn toml_is_highlighted_by_our_own_grammar() {
        let h = Highlighter::new();
        assert!(h.knows("toml"));
        let html = h.highlight(
            Some("toml"),
            "[demo]\nworkdir = \"src\" # here\ntimeout = 60\n",
        );
        assert!(html.contains("<span class=\"hl-ns\">demo</span>"), "{html}");
        assert!(
            html.contains("<span class=\"hl-s\">&quot;src&quot;"),
            "{html}"
        );
        assert!(html.contains("<span class=\"hl-c\"># here"), "{html}");
        assert!(html.contains("<span class=\"hl-m\">60"), "{html}");
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
        assert!(css.contains(":root[data-theme=\"dark\"] .hl-k{"), "{css}");
        assert!(css.contains(".hl-c{"), "{css}");
        let err = stylesheet("nope", "base16-ocean.dark").unwrap_err();
        assert!(err.to_string().contains("available"), "{err}");
        assert!(matches!(
            err,
            StylesheetError::UnknownTheme { slot: ThemeSlot::Light, ref name } if name == "nope"
        ));
        let err = stylesheet("InspiredGitHub", "nope").unwrap_err();
        assert!(matches!(
            err,
            StylesheetError::UnknownTheme {
                slot: ThemeSlot::Dark,
                ..
            }
        ));
    }
}
