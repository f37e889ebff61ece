//! One page's part of the search index — its terms with their weights and its compressed
//! store — made once per page content and kept between builds: in memory under `folio serve`,
//! and in `.folio/cache/search.bin` for the next `folio build`, in a small binary form.

use std::collections::HashMap;
use std::io::Write as _;

use serde::Serialize;

use super::text::{extract, terms};
use super::Doc;

/// A page's stored text is cut at this many characters (excerpts come from it).
pub(crate) const TEXT_LIMIT: usize = 20_000;
/// Weight of a term in a page's title, per occurrence.
const TITLE_WEIGHT: u32 = 10;
/// Weight of a term in a heading, per occurrence.
const HEADING_WEIGHT: u32 = 4;
/// A term's weight in one page is capped (a word repeated a hundred times is not a hundred
/// times more relevant); it fits a byte.
const MAX_WEIGHT: u32 = 99;

/// One page's part of the index.
#[derive(Debug, PartialEq)]
pub(crate) struct DocPart {
    /// Its terms (sorted, each once) and their weights.
    pub(crate) terms: Vec<(Box<str>, u8)>,
    /// Its store (`{"u":path,"t":title,"s":section,"x":text}`), gzip-compressed.
    pub(crate) store: Vec<u8>,
}

#[derive(Serialize)]
struct Store<'a> {
    u: &'a str,
    t: &'a str,
    s: &'a str,
    x: &'a str,
}

impl DocPart {
    /// Indexes one page: its text from the rendered body, its terms weighted by where they
    /// are, its store.
    pub(crate) fn new(d: &Doc<'_>, include_code: bool) -> DocPart {
        let text = extract(d.html, include_code);
        let mut weights: HashMap<String, u32> = HashMap::new();
        let mut add = |t: String, w: u32| {
            let e = weights.entry(t).or_insert(0);
            *e = (*e + w).min(MAX_WEIGHT);
        };
        terms(d.title).for_each(|t| add(t, TITLE_WEIGHT));
        terms(&text.headings).for_each(|t| add(t, HEADING_WEIGHT));
        terms(&text.body).for_each(|t| add(t, 1));
        let mut terms: Vec<(Box<str>, u8)> = weights
            .into_iter()
            .map(|(t, w)| (t.into_boxed_str(), w as u8))
            .collect();
        terms.sort_unstable();
        let store = Store {
            u: d.path,
            t: d.title,
            s: d.section,
            x: cut(&text.body, TEXT_LIMIT),
        };
        DocPart {
            terms,
            store: gzip(&serde_json::to_vec(&store).unwrap_or_default()),
        }
    }

    /// The part as bytes for the disk cache: the number of terms (u32 LE), each term as its
    /// length (one byte), its UTF-8 and its weight (one byte), then the store.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.terms.len() * 10 + self.store.len() + 4);
        b.extend_from_slice(&(self.terms.len() as u32).to_le_bytes());
        for (t, w) in &self.terms {
            b.push(t.len() as u8);
            b.extend_from_slice(t.as_bytes());
            b.push(*w);
        }
        b.extend_from_slice(&self.store);
        b
    }

    /// Reads [`DocPart::to_bytes`]'s form back; `None` for anything malformed (the cache entry
    /// is then ignored and the page indexed again).
    pub(crate) fn from_bytes(b: &[u8]) -> Option<DocPart> {
        let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let mut i = 4;
        let mut terms = Vec::with_capacity(n.min(b.len()));
        for _ in 0..n {
            let len = *b.get(i)? as usize;
            let t = std::str::from_utf8(b.get(i + 1..i + 1 + len)?).ok()?;
            let w = *b.get(i + 1 + len)?;
            terms.push((Box::from(t), w));
            i += len + 2;
        }
        Some(DocPart {
            terms,
            store: b.get(i..)?.to_vec(),
        })
    }
}

/// `bytes` gzip-compressed (no file name, no time: the same input gives the same bytes).
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::GzBuilder::new().write(
        Vec::with_capacity(bytes.len() / 3 + 32),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

/// The first `limit` characters of `s`.
fn cut(s: &str, limit: usize) -> &str {
    match s.char_indices().nth(limit) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_survives_its_byte_form_and_a_damaged_one_is_refused() {
        let d = Doc {
            path: "/p/",
            title: "Übergröße tide",
            section: "Notes",
            html: "<h2>Tide tables</h2><p>tide tide moon</p>",
        };
        let part = DocPart::new(&d, false);
        // tide: 10 (title) + 4 (heading) + 3 (the text, heading included).
        assert_eq!(
            part.terms.iter().map(|(t, w)| (&**t, *w)).collect::<Vec<_>>(),
            [("moon", 1), ("tables", 5), ("tide", 17), ("übergröße", 10)]
        );
        let bytes = part.to_bytes();
        assert_eq!(DocPart::from_bytes(&bytes), Some(part));
        assert_eq!(DocPart::from_bytes(&bytes[..7]), None);
        let mut store = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&DocPart::from_bytes(&bytes).unwrap().store[..]),
            &mut store,
        )
        .unwrap();
        assert_eq!(
            store,
            r#"{"u":"/p/","t":"Übergröße tide","s":"Notes","x":"Tide tables\ntide tide moon"}"#
        );
    }
}
