//! Field-level dependencies: which fields of a page summary a template may read.
//!
//! A listing (a section's list pages, the home, tag pages) shows a few fields of each page
//! it lists — title, date, reading time… — never the body. Its output therefore depends on
//! those fields alone, and an edit that leaves them unchanged (most body edits) need not
//! render it again. [`FieldReads::of`] scans the sources of every template a render can reach
//! (its closure) and keeps every name it mentions (identifiers, and the words of string
//! literals such as `attribute="extra.featured"`): a field whose name appears nowhere cannot
//! be read. Where a template could read a field without naming it — a subscript with a
//! computed key (`p[k]`), a key/value loop (`for k, v in p`), a computed `attribute=` or
//! `key=` argument, `json_encode`, `__tera_context` — the answer is [`FieldReads::All`].
//!
//! The fingerprints of incremental builds then stand each page summary in by a digest of
//! only the fields the template may read (and of the summary's key set, so `length` and
//! `is defined` see no difference either) — see [`FieldReads::key`] and
//! `contexts::SummaryEntry::listed_digest`. While a render runs, [`scoped`] makes its reads
//! the current ones, so the site functions that return page summaries (`get_section`,
//! `get_page`) digest their results the same way.
//!
//! Folio's own `json_ld` filter serialises whatever it is given: given a whole page summary
//! inside a render that only depends on some fields it calls [`note_whole_page`], and that
//! render's output is never reused (its fingerprint does not cover what it showed).

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use crate::cache::Key;

/// The fields of page summaries a template (with everything it can reach) may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldReads {
    /// Any field (a construct that reads fields without naming them was found).
    All,
    /// Only fields among these names.
    Named {
        /// Every name the templates mention.
        names: BTreeSet<String>,
        /// A digest of `names`, identifying this set in caches.
        key: Key,
    },
}

/// Words that read a whole value, whatever fields it has.
const WHOLESALE: &[&str] = &["__tera_context", "json_encode"];

impl FieldReads {
    /// What templates with these sources may read.
    pub(crate) fn of<'a>(sources: impl IntoIterator<Item = &'a str>) -> FieldReads {
        let mut names = BTreeSet::new();
        for src in sources {
            if !scan(src, &mut names) {
                return FieldReads::All;
            }
        }
        let mut h = blake3::Hasher::new();
        for n in &names {
            h.update(n.as_bytes());
            h.update(&[0]);
        }
        FieldReads::Named {
            names,
            key: *h.finalize().as_bytes(),
        }
    }

    /// Whether the field `name` may be read.
    pub(crate) fn reads(&self, name: &str) -> bool {
        match self {
            FieldReads::All => true,
            FieldReads::Named { names, .. } => names.contains(name),
        }
    }

    /// An identifier of this set (`None` for all fields).
    pub(crate) fn key(&self) -> Option<&Key> {
        match self {
            FieldReads::All => None,
            FieldReads::Named { key, .. } => Some(key),
        }
    }

    /// A digest of what of `summary` (a page summary) these reads can see: every key, and
    /// the value of each key that may be read.
    pub(crate) fn digest(&self, summary: &Value) -> Key {
        let mut h = blake3::Hasher::new();
        match summary.as_object() {
            Some(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                for k in keys {
                    h.update(&(k.len() as u64).to_le_bytes());
                    h.update(k.as_bytes());
                    if self.reads(k) {
                        h.update(&[1]);
                        let text = serde_json::to_string(&o[k]).unwrap_or_default();
                        h.update(&(text.len() as u64).to_le_bytes());
                        h.update(text.as_bytes());
                    } else {
                        h.update(&[0]);
                    }
                }
            }
            None => {
                let _ = serde_json::to_writer(&mut h, summary);
            }
        }
        *h.finalize().as_bytes()
    }
}

/// Adds every name `src` mentions inside its tags to `names`; false when it may read a
/// field without naming it.
fn scan(src: &str, names: &mut BTreeSet<String>) -> bool {
    let mut rest = src;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            Some('#') => {
                // A comment: skipped.
                rest = after.find("#}").map_or("", |e| &after[e + 2..]);
                continue;
            }
            _ => {
                rest = after;
                continue;
            }
        };
        let (inner, next) = match after[1..].find(close) {
            Some(e) => (&after[1..1 + e], &after[1 + e + 2..]),
            None => (&after[1..], ""),
        };
        if !scan_tag(inner, names) {
            return false;
        }
        rest = next;
    }
    true
}

/// One token of a tag.
#[derive(Debug, PartialEq)]
enum Tok<'a> {
    Ident(&'a str),
    Str(&'a str),
    Num,
    Punct(char),
}

fn tokens(s: &str) -> Vec<Tok<'_>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let j = i + b[i..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                .unwrap_or(b.len() - i);
            out.push(Tok::Ident(&s[i..j]));
            i = j;
        } else if c.is_ascii_digit() {
            let j = i + b[i..]
                .iter()
                .position(|c| !(c.is_ascii_digit() || *c == b'.'))
                .unwrap_or(b.len() - i);
            out.push(Tok::Num);
            i = j;
        } else if c == b'"' || c == b'\'' || c == b'`' {
            let j = b[i + 1..]
                .iter()
                .position(|x| *x == c)
                .map_or(b.len(), |p| i + 1 + p);
            out.push(Tok::Str(&s[i + 1..j]));
            i = (j + 1).min(b.len());
        } else {
            let ch = s[i..].chars().next().unwrap_or(' ');
            out.push(Tok::Punct(ch));
            i += ch.len_utf8();
        }
    }
    out
}

/// Adds the names one tag mentions; false when it may read a field without naming it.
fn scan_tag(inner: &str, names: &mut BTreeSet<String>) -> bool {
    let toks = tokens(inner);
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Ident(w) => {
                if WHOLESALE.contains(w) {
                    return false;
                }
                // `for k, v in x`: iterates an object's keys.
                if *w == "for"
                    && matches!(toks.get(i + 1), Some(Tok::Ident(_)))
                    && toks.get(i + 2) == Some(&Tok::Punct(','))
                {
                    return false;
                }
                // `attribute=…` / `key=…` name a field: only a lone literal is known.
                if (*w == "attribute" || *w == "key")
                    && !(i > 0 && toks[i - 1] == Tok::Punct('.'))
                    && toks.get(i + 1) == Some(&Tok::Punct('='))
                    && toks.get(i + 2) != Some(&Tok::Punct('='))
                    && !(matches!(toks.get(i + 2), Some(Tok::Str(_)))
                        && matches!(
                            toks.get(i + 3),
                            None | Some(Tok::Punct(',')) | Some(Tok::Punct(')'))
                        ))
                {
                    return false;
                }
                if *w == "in"
                    && bare(&toks, i.wrapping_sub(1), true)
                    && !(i >= 2 && toks[i - 2] == Tok::Ident("for"))
                {
                    return false;
                }
                names.insert(w.to_string());
            }
            Tok::Str(s) => {
                for w in s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if !w.is_empty() {
                        names.insert(w.to_string());
                    }
                }
            }
            // `a == b`, `a != b`, `a in b` between bare variables may compare whole pages.
            Tok::Punct('=' | '!') if toks.get(i + 1) == Some(&Tok::Punct('=')) => {
                let eq_before = i > 0 && toks[i - 1] == Tok::Punct('=');
                if !eq_before
                    && ((bare(&toks, i.wrapping_sub(1), true) && bare(&toks, i + 2, false))
                        || i.checked_sub(1)
                            .is_some_and(|j| toks[j] == Tok::Ident("pages"))
                        || operand_ends_in_pages(&toks, i + 2))
                {
                    return false;
                }
            }
            // `x[…]`: only a lone literal index or key is known (an array literal
            // `[a, b]` is taken for a subscript too: it costs reuse, never correctness).
            Tok::Punct('[') => {
                let lone = matches!(toks.get(i + 1), Some(Tok::Str(_)) | Some(Tok::Num))
                    && toks.get(i + 2) == Some(&Tok::Punct(']'));
                let empty = toks.get(i + 1) == Some(&Tok::Punct(']'));
                if !(lone || empty) {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// Whether token `i` is a bare variable (an identifier with no attribute access): a whole
/// value of unknown shape. `before`: it ends an operand (else it starts one).
fn bare(toks: &[Tok<'_>], i: usize, before: bool) -> bool {
    let Some(Tok::Ident(w)) = toks.get(i) else {
        return false;
    };
    if ["true", "false", "none", "not", "and", "or", "loop"].contains(w) {
        return false;
    }
    if before {
        !(i > 0 && toks[i - 1] == Tok::Punct('.'))
    } else {
        !matches!(
            toks.get(i + 1),
            Some(Tok::Punct('.')) | Some(Tok::Punct('('))
        )
    }
}

/// Whether the operand starting at token `i` is a path ending in `pages` (`x.pages`): a list
/// of whole pages.
fn operand_ends_in_pages(toks: &[Tok<'_>], mut i: usize) -> bool {
    while let Some(Tok::Ident(w)) = toks.get(i) {
        if toks.get(i + 1) != Some(&Tok::Punct('.')) {
            return *w == "pages";
        }
        i += 2;
    }
    false
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<FieldReads>>> = const { RefCell::new(None) };
    static WHOLE_PAGE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a render, or the replay of its site-function calls) with `reads` as the
/// current reads; returns its result and whether it serialised a whole page summary.
pub(crate) fn scoped<T>(reads: Option<Arc<FieldReads>>, f: impl FnOnce() -> T) -> (T, bool) {
    let outer = CURRENT.with(|c| c.replace(reads));
    let outer_flag = WHOLE_PAGE.with(|w| w.replace(false));
    let out = f();
    let whole = WHOLE_PAGE.with(|w| w.replace(outer_flag));
    CURRENT.with(|c| *c.borrow_mut() = outer);
    (out, whole)
}

/// The reads of the render running on this thread (`None`: all fields).
pub(crate) fn current() -> Option<Arc<FieldReads>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Called by filters that serialise their input whole: notes when it holds a page summary.
pub(crate) fn note_whole_page(v: &Value) {
    fn holds_page(v: &Value) -> bool {
        match v {
            Value::Object(o) => {
                (o.contains_key("content_path") && o.contains_key("word_count"))
                    || o.values().any(holds_page)
            }
            Value::Array(a) => a.iter().any(holds_page),
            _ => false,
        }
    }
    if CURRENT.with(|c| c.borrow().as_ref().is_some_and(|r| r.key().is_some())) && holds_page(v) {
        WHOLE_PAGE.with(|w| w.set(true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(r: &FieldReads) -> Vec<&str> {
        match r {
            FieldReads::All => vec!["<all>"],
            FieldReads::Named { names, .. } => names.iter().map(|s| s.as_str()).collect(),
        }
    }

    #[test]
    fn names_in_tags_strings_and_macros_are_reads() {
        let r = FieldReads::of([
            "<p>word_count outside tags</p>{# reading_time in a comment #}\
             {% for p in section.pages | filter(attribute=\"extra.featured\", value=true) %}\
             {{ p.title }}{{ p[\"slug\"] }}{{ p.tags[0] }}{% endfor %}",
        ]);
        let n = named(&r);
        for w in ["title", "slug", "extra", "featured", "tags", "pages"] {
            assert!(n.contains(&w), "{w} missing from {n:?}");
        }
        assert!(!r.reads("word_count") && !r.reads("reading_time") && !r.reads("summary"));
    }

    #[test]
    fn unnamed_reads_mean_every_field() {
        for src in [
            "{{ p[k] }}",
            "{{ p[\"wo\" ~ \"rd_count\"] }}",
            "{% for k, v in page %}{{ v }}{% endfor %}",
            "{{ pages | map(attribute=which) }}",
            "{{ pages | sort(attribute=\"a\" ~ b) }}",
            "{{ page | get(key=k) }}",
            "{{ page | json_encode }}",
            "{{ __tera_context }}",
            "{% if p == page %}x{% endif %}",
            "{% if p != page %}x{% endif %}",
            "{% if p in pages %}x{% endif %}",
            "{% if a.pages == b.pages %}x{% endif %}",
            "{% if pages != section.pages %}x{% endif %}",
        ] {
            assert_eq!(FieldReads::of([src]), FieldReads::All, "{src}");
        }
        for src in [
            "{% if section.key == \"projects\" %}x{% endif %}",
            "{% if p.key == key %}x{% endif %}",
            "{{ pages | sort(attribute=\"date\") | map(attribute='title') | join(sep=\", \") }}",
            "{% for p in pages %}{% if loop.index == 1 %}{{ p.title }}{% endif %}{% endfor %}",
            "{{ m::card(page=p, lazy=loop.index > 3) }}{{ x | default(value=[]) }}",
        ] {
            assert_ne!(FieldReads::of([src]), FieldReads::All, "{src}");
        }
    }

    #[test]
    fn digest_sees_only_read_fields_and_the_key_set() {
        let r = FieldReads::of(["{{ p.title }}"]);
        let a = serde_json::json!({"title": "A", "word_count": 10});
        let b = serde_json::json!({"title": "A", "word_count": 11});
        let c = serde_json::json!({"title": "B", "word_count": 10});
        let d = serde_json::json!({"title": "A", "word_count": 10, "x": 1});
        assert_eq!(r.digest(&a), r.digest(&b));
        assert_ne!(r.digest(&a), r.digest(&c));
        assert_ne!(r.digest(&a), r.digest(&d));
        assert_ne!(FieldReads::All.digest(&a), FieldReads::All.digest(&b));
    }
}
