//! The full-text search index: every published page's title, headings and body text (code
//! blocks only with `[search] include_code`), written under `search/` as small files that the
//! theme's search box fetches on demand.
//!
//! # Layout (see `docs/search.md`)
//!
//! - `search/index.json`, the one file with a fixed name (revalidated by browsers):
//!   `{"version":1,"dir":"<10 hex>","docs":N,"code":false,"shards":["ab","ac",…]}`.
//! - `search/<dir>/t-<hex of the prefix>.json`: the terms starting with a prefix and their
//!   postings, `{"term":[id,weight,id,weight,…]}`, ids delta-coded (each id is the previous
//!   id plus the number written). A prefix is a term's first two characters; a shard bigger
//!   than [`SHARD_TARGET`] is split by one more character until it fits or holds one term
//!   (the terms exactly as long as the prefix stay in the prefix's own shard).
//! - `search/<dir>/p/<id>.json`: one page's store for results, `{"u":path,"t":title,
//!   "s":section title,"x":text}` (the text at most [`TEXT_LIMIT`] characters), fetched only
//!   for the results shown.
//!
//! `<dir>` is a digest of everything under it, so every file there can be cached forever
//! (`_headers` says so) and a changed site gets a new folder, never a stale mix.
//!
//! Terms are runs of letters and digits, lower-cased, at least two characters long (at most
//! [`MAX_TERM`]). There is no stemming: the client matches each word typed as a prefix of
//! indexed terms, so `render` finds `rendering` and `renderer`.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

/// A shard is split further when its JSON is bigger than this (bytes, before compression).
pub(crate) const SHARD_TARGET: usize = 12 * 1024;
/// A page's stored text is cut at this many characters (excerpts come from it).
pub(crate) const TEXT_LIMIT: usize = 20_000;
/// Longer runs of letters and digits are not terms (hashes, base64).
pub(crate) const MAX_TERM: usize = 32;

/// Weight of a term in a page's title, per occurrence.
const TITLE_WEIGHT: u32 = 10;
/// Weight of a term in a heading, per occurrence.
const HEADING_WEIGHT: u32 = 4;
/// A term's weight in one page is capped (a word repeated a hundred times is not a hundred
/// times more relevant).
const MAX_WEIGHT: u32 = 99;

/// One page (or section) to index.
pub(crate) struct Doc<'a> {
    /// Its site path (`/projects/minirt/`).
    pub(crate) path: &'a str,
    /// Its title.
    pub(crate) title: &'a str,
    /// The title of the section it belongs to (`""` for none).
    pub(crate) section: &'a str,
    /// Its rendered body.
    pub(crate) html: &'a str,
}

/// The index's files, by output path, and their total size.
pub(crate) struct Index {
    /// Output path (`search/…`) → bytes.
    pub(crate) files: Vec<(String, Vec<u8>)>,
    /// Sum of the files' sizes.
    pub(crate) bytes: u64,
    /// The folder of the files that never change (`search/<digest>`), for `_headers`.
    pub(crate) dir: String,
}

#[derive(Serialize)]
struct Manifest<'a> {
    version: u32,
    dir: &'a str,
    docs: usize,
    code: bool,
    shards: Vec<&'a str>,
}

#[derive(Serialize)]
struct Store<'a> {
    u: &'a str,
    t: &'a str,
    s: &'a str,
    x: &'a str,
}

/// Builds the index of `docs` (their ids are their positions, so pass them in a stable
/// order).
pub(crate) fn build(docs: &[Doc<'_>], include_code: bool, prev: &DocCache) -> (Index, DocCache) {
    // Each page on its own (in parallel): its terms and their weights, its store; reused from
    // the previous build (`folio serve`) while its path, title, section and body are the same.
    let parts: Vec<Arc<DocPart>> = docs
        .par_iter()
        .map(|d| {
            let key = part_key(d, include_code);
            match prev.get(d.path) {
                Some(p) if p.key == key => p.clone(),
                _ => Arc::new(index_doc(d, include_code, key)),
            }
        })
        .collect();
    // term → [(doc id, weight)], ids ascending (pages are taken in order).
    let mut postings: HashMap<&str, Vec<(usize, u32)>> = HashMap::new();
    for (id, part) in parts.iter().enumerate() {
        for (t, w) in &part.weights {
            postings.entry(t.as_str()).or_default().push((id, *w));
        }
    }
    let stores: Vec<&[u8]> = parts.iter().map(|p| p.store.as_slice()).collect();
    let mut encoded: Vec<(String, String)> = postings
        .into_par_iter()
        .map(|(term, docs)| (term.to_string(), encode_postings(term, &docs)))
        .collect();
    encoded.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut shards: Vec<(String, Vec<u8>)> = Vec::new();
    split(&encoded, 2, &mut shards);

    let mut digest = blake3::Hasher::new();
    digest.update(&[u8::from(include_code)]);
    for (key, bytes) in &shards {
        digest.update(key.as_bytes());
        digest.update(&(bytes.len() as u64).to_le_bytes());
        digest.update(bytes);
    }
    for s in &stores {
        digest.update(&(s.len() as u64).to_le_bytes());
        digest.update(s);
    }
    let dir = digest.finalize().to_hex().as_str()[..10].to_string();

    let manifest = Manifest {
        version: 1,
        dir: &dir,
        docs: docs.len(),
        code: include_code,
        shards: shards.iter().map(|(k, _)| k.as_str()).collect(),
    };
    let mut files = vec![(
        "search/index.json".to_string(),
        serde_json::to_vec(&manifest).unwrap_or_default(),
    )];
    for (key, bytes) in &shards {
        files.push((format!("search/{dir}/t-{}.json", hex(key)), bytes.clone()));
    }
    for (id, s) in stores.iter().enumerate() {
        files.push((format!("search/{dir}/p/{id}.json"), s.to_vec()));
    }
    let bytes = files.iter().map(|(_, b)| b.len() as u64).sum();
    let cache = docs
        .iter()
        .zip(parts)
        .map(|(d, p)| (d.path.to_string(), p))
        .collect();
    (
        Index {
            files,
            bytes,
            dir: format!("search/{dir}"),
        },
        cache,
    )
}

/// One page's part of the index, kept for the next build (`folio serve`).
pub(crate) struct DocPart {
    /// A digest of everything it was made from.
    key: [u8; 32],
    /// Its terms and their weights.
    weights: Vec<(String, u32)>,
    /// Its store (`p/<id>.json`).
    store: Vec<u8>,
}

/// The pages' parts by site path, from the previous build.
pub(crate) type DocCache = HashMap<String, Arc<DocPart>>;

fn part_key(d: &Doc<'_>, include_code: bool) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&[u8::from(include_code)]);
    for s in [d.path, d.title, d.section, d.html] {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    *h.finalize().as_bytes()
}

fn index_doc(d: &Doc<'_>, include_code: bool, key: [u8; 32]) -> DocPart {
    let text = extract(d.html, include_code);
    let mut weights: HashMap<String, u32> = HashMap::new();
    let mut add = |t: String, w: u32| match weights.get_mut(&t) {
        Some(e) => *e = (*e + w).min(MAX_WEIGHT),
        None => {
            weights.insert(t, w.min(MAX_WEIGHT));
        }
    };
    terms(d.title).for_each(|t| add(t, TITLE_WEIGHT));
    terms(&text.headings).for_each(|t| add(t, HEADING_WEIGHT));
    terms(&text.body).for_each(|t| add(t, 1));
    let store = Store {
        u: d.path,
        t: d.title,
        s: d.section,
        x: cut(&text.body, TEXT_LIMIT),
    };
    DocPart {
        key,
        weights: weights.into_iter().collect(),
        store: serde_json::to_vec(&store).unwrap_or_default(),
    }
}

/// `"term":[delta,weight,…]` (a JSON object member); `docs` in ascending id order.
fn encode_postings(term: &str, docs: &[(usize, u32)]) -> String {
    use std::fmt::Write as _;
    let mut s = serde_json::to_string(term).unwrap_or_default();
    s.reserve(docs.len() * 5 + 3);
    s.push_str(":[");
    let mut last = 0usize;
    for (i, &(id, w)) in docs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{},{w}", id - last);
        last = id;
    }
    s.push(']');
    s
}

/// Groups `terms` (sorted, all sharing a prefix of `len - 1` characters) into shards keyed
/// by their first `len` characters, splitting any shard over [`SHARD_TARGET`] further. Terms
/// with one prefix are contiguous in sorted order, and the term equal to the prefix (if any)
/// comes first.
fn split(terms: &[(String, String)], len: usize, out: &mut Vec<(String, Vec<u8>)>) {
    let prefix = |t: &str| -> usize { t.char_indices().nth(len).map_or(t.len(), |(i, _)| i) };
    let mut start = 0;
    while start < terms.len() {
        let first = &terms[start].0;
        let key = &first[..prefix(first)];
        let end = start
            + terms[start..]
                .iter()
                .position(|(t, _)| &t[..prefix(t)] != key)
                .unwrap_or(terms.len() - start);
        let group = &terms[start..end];
        let size: usize = group.iter().map(|(_, e)| e.len() + 1).sum::<usize>() + 1;
        let exact = group
            .iter()
            .take_while(|(t, _)| t.len() == key.len())
            .count();
        if size > SHARD_TARGET && group.len() > 1 && exact < group.len() {
            if exact > 0 {
                out.push((key.to_string(), shard_json(&group[..exact])));
            }
            split(&group[exact..], len + 1, out);
        } else {
            out.push((key.to_string(), shard_json(group)));
        }
        start = end;
    }
}

fn shard_json(members: &[(String, String)]) -> Vec<u8> {
    let mut s = String::with_capacity(members.iter().map(|(_, e)| e.len() + 1).sum::<usize>() + 2);
    s.push('{');
    for (i, (_, enc)) in members.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(enc);
    }
    s.push('}');
    s.into_bytes()
}

/// Lower-case hexadecimal of a prefix's UTF-8 (file names safe for any script).
fn hex(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The first `limit` characters of `s`.
fn cut(s: &str, limit: usize) -> &str {
    match s.char_indices().nth(limit) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The search terms of a text: runs of letters and digits, lower-cased, 2 to [`MAX_TERM`]
/// characters.
pub(crate) fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| {
            let n = w.chars().count();
            (2..=MAX_TERM).contains(&n)
        })
        .map(str::to_lowercase)
}

/// The text of a rendered body.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Text {
    /// The headings' text, separated by newlines.
    pub(crate) headings: String,
    /// All visible text, headings included, blocks separated by newlines.
    pub(crate) body: String,
}

/// Elements that never hold text a reader sees.
const HIDDEN: &[&str] = &["script", "style", "template", "svg", "math", "button"];
/// Elements with no closing tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];
/// Elements after which the text breaks (a new line in the stored text).
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "pre",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "td",
    "th",
    "table",
    "section",
    "figure",
    "figcaption",
    "dt",
    "dd",
    "br",
    "hr",
    "details",
    "summary",
    "aside",
];

/// The visible text of an HTML body: tags dropped, entities decoded, `<pre>` left out unless
/// `include_code`, elements marked `aria-hidden="true"` (heading anchors) and scripts left out.
pub(crate) fn extract(html: &str, include_code: bool) -> Text {
    let mut out = Text::default();
    // Open elements: (name, hides its content, is a heading).
    let mut stack: Vec<(String, bool, bool)> = Vec::new();
    let mut rest = html;
    let hidden = |stack: &[(String, bool, bool)]| stack.iter().any(|e| e.1);
    let heading = |stack: &[(String, bool, bool)]| stack.iter().any(|e| e.2);
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push_text(&mut out, rest, hidden(&stack), heading(&stack));
            break;
        };
        push_text(&mut out, &rest[..lt], hidden(&stack), heading(&stack));
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |i| &after[i + 3..]);
            continue;
        }
        let end = tag_end(rest);
        let tag = &rest[1..end.saturating_sub(1).max(1)];
        rest = &rest[end..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        if BLOCKS.contains(&name.as_str()) {
            newline(&mut out.body);
            if heading(&stack) || is_heading(&name) {
                newline(&mut out.headings);
            }
        }
        if closing {
            if let Some(i) = stack.iter().rposition(|e| e.0 == name) {
                stack.truncate(i);
            }
            continue;
        }
        if VOID.contains(&name.as_str()) || tag.ends_with('/') {
            continue;
        }
        let raw_hidden = HIDDEN.contains(&name.as_str()) || (name == "pre" && !include_code);
        let hides = raw_hidden || tag.contains("aria-hidden=\"true\"");
        if raw_hidden {
            // Nothing inside counts (highlighted code is thousands of spans): go straight
            // to the closing tag (these elements do not nest in rendered markdown).
            let close = format!("</{name}");
            rest = rest.find(&close).map_or("", |i| &rest[i..]);
        }
        stack.push((name, hides, false));
        let last = stack.len() - 1;
        stack[last].2 = is_heading(&stack[last].0);
    }
    out.body = out.body.trim().to_string();
    out.headings = out.headings.trim().to_string();
    out
}

fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// The end of the tag `s` starts with (just past its `>`), skipping quoted attribute values.
fn tag_end(s: &str) -> usize {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return i + 1,
            _ => {}
        }
    }
    s.len()
}

fn newline(s: &mut String) {
    if !s.is_empty() && !s.ends_with('\n') {
        while s.ends_with(' ') {
            s.pop();
        }
        s.push('\n');
    }
}

fn push_text(out: &mut Text, raw: &str, hidden: bool, heading: bool) {
    if hidden || raw.is_empty() {
        return;
    }
    let text = decode_entities(raw);
    let starts_space = text.starts_with(char::is_whitespace);
    let ends_space = text.ends_with(char::is_whitespace);
    for target in [Some(&mut out.body), heading.then_some(&mut out.headings)]
        .into_iter()
        .flatten()
    {
        let mut space = starts_space;
        for word in text.split_whitespace() {
            if space && !target.is_empty() && !target.ends_with([' ', '\n']) {
                target.push(' ');
            }
            target.push_str(word);
            space = true;
        }
        if ends_space && !target.is_empty() && !target.ends_with([' ', '\n']) {
            target.push(' ');
        }
    }
}

/// Decodes the character references an HTML renderer writes (named ones for the usual
/// characters, and every numeric one).
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..semi];
        let c = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_leaves_out_code_anchors_and_scripts_and_decodes_entities() {
        let html = "<h2 id=\"a\">Fast &amp; small<a class=\"anchor\" href=\"#a\" aria-hidden=\"true\" tabindex=\"-1\">#</a></h2>\n<p>Uses <code>mmap</code> &#8212; a lot.</p><pre class=\"code\"><code>let zebra = 1;</code></pre><script>var hidden;</script><p>end</p>";
        let t = extract(html, false);
        assert_eq!(t.headings, "Fast & small");
        assert_eq!(t.body, "Fast & small\nUses mmap \u{2014} a lot.\nend");
        let with_code = extract(html, true);
        assert!(with_code.body.contains("let zebra = 1;"));
        assert!(!with_code.body.contains("hidden"));
    }

    #[test]
    fn terms_are_lowercased_alphanumeric_runs() {
        let t: Vec<String> = terms("Ray-tracer in C, 2× faster: Übergröße x86_64").collect();
        assert_eq!(
            t,
            ["ray", "tracer", "in", "faster", "übergröße", "x86", "64"]
        );
    }

    #[test]
    fn shards_split_until_under_the_target_and_postings_are_delta_coded() {
        let bodies: Vec<String> = (0..400)
            .map(|i| format!("<p>common word{i} alpha{i} alpine{i}</p>"))
            .collect();
        let docs: Vec<Doc<'_>> = bodies
            .iter()
            .map(|b| Doc {
                path: "/x/",
                title: "T",
                section: "",
                html: b,
            })
            .collect();
        let (idx, cache) = build(&docs, false, &DocCache::new());
        // A second build reuses every page's part and writes the same files.
        let (again, _) = build(&docs, false, &cache);
        assert_eq!(again.files, idx.files);
        let manifest: serde_json::Value = serde_json::from_slice(&idx.files[0].1).unwrap();
        let shards: Vec<&str> = manifest["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(shards.iter().any(|s| s.chars().count() > 2), "{shards:?}");
        for (p, b) in &idx.files {
            if p.contains("/t-") {
                assert!(b.len() <= SHARD_TARGET, "{p}: {}", b.len());
            }
        }
        let co = idx
            .files
            .iter()
            .find(|(p, _)| p.ends_with(&format!("/t-{}.json", hex("co"))))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&co.1).unwrap();
        let common = v["common"].as_array().unwrap();
        assert_eq!(common.len(), 800);
        assert_eq!(common[0], 0);
        assert!(common[2..].iter().step_by(2).all(|d| d == 1));
    }
}
