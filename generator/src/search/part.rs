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

/// One page's part of the index, in the form it is cached in (memory and disk): the number
/// of terms (u32 LE), each term (sorted, each once) as its length (one byte), its UTF-8 and
/// its weight (one byte), then the store: the CRC-32 and the length (u32 LE each) of its
/// line (`{"u":path,"t":title,"s":section,"x":text}` and a newline), and that line as raw
/// deflate ended by a sync flush ([`Segment`]), so that a bundle of stores is the
/// concatenation of its pages' segments, never compressed again. Read in place: reusing a
/// part allocates nothing.
#[derive(Debug, PartialEq)]
pub(crate) struct DocPart {
    bytes: std::sync::Arc<[u8]>,
    /// Where the store starts.
    store_at: usize,
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
    /// `html` is the page's rendered body (read by the caller from wherever it is kept).
    pub(crate) fn new(d: &Doc<'_>, html: &str, include_code: bool) -> DocPart {
        let text = extract(html, include_code);
        let mut weights: HashMap<String, u32> = HashMap::new();
        let mut add = |t: String, w: u32| {
            let e = weights.entry(t).or_insert(0);
            *e = (*e + w).min(MAX_WEIGHT);
        };
        terms(d.title).for_each(|t| add(t, TITLE_WEIGHT));
        terms(&text.headings).for_each(|t| add(t, HEADING_WEIGHT));
        terms(&text.body).for_each(|t| add(t, 1));
        let mut sorted: Vec<(String, u32)> = weights.into_iter().collect();
        sorted.sort_unstable();
        let mut line = serde_json::to_vec(&Store {
            u: d.path,
            t: d.title,
            s: d.section,
            x: cut(&text.body, TEXT_LIMIT),
        })
        .unwrap_or_default();
        // serde_json escapes every newline inside a string: the line ends here.
        line.push(b'\n');
        let store = segment(&line);
        let mut b = Vec::with_capacity(sorted.len() * 10 + store.len() + 12);
        b.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
        for (t, w) in &sorted {
            // A term is at most MAX_TERM characters of at most 4 bytes: its length fits a byte.
            b.push(t.len() as u8);
            b.extend_from_slice(t.as_bytes());
            b.push((*w).min(MAX_WEIGHT) as u8);
        }
        let store_at = b.len();
        b.extend_from_slice(&crc32fast::hash(&line).to_le_bytes());
        b.extend_from_slice(&(line.len() as u32).to_le_bytes());
        b.extend_from_slice(&store);
        DocPart {
            bytes: b.into(),
            store_at,
        }
    }

    /// The part's cached form (what [`DocPart::from_bytes`] reads).
    pub(crate) fn bytes(&self) -> &std::sync::Arc<[u8]> {
        &self.bytes
    }

    /// Reads a cached part, checking its form; `None` for anything malformed (the entry is
    /// then ignored and the page indexed again).
    pub(crate) fn from_bytes(bytes: std::sync::Arc<[u8]>) -> Option<DocPart> {
        let b = &bytes[..];
        let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let mut i = 4;
        for _ in 0..n {
            let len = *b.get(i)? as usize;
            std::str::from_utf8(b.get(i + 1..i + 1 + len)?).ok()?;
            b.get(i + 1 + len)?;
            i += len + 2;
        }
        b.get(i..i + 8)?;
        Some(DocPart { bytes, store_at: i })
    }

    /// Its terms, sorted, with their weights.
    pub(crate) fn terms(&self) -> impl Iterator<Item = (&str, u8)> + '_ {
        let b = &self.bytes[..self.store_at];
        let mut i = 4;
        std::iter::from_fn(move || {
            let len = *b.get(i)? as usize;
            // Checked when made or read.
            let t = std::str::from_utf8(&b[i + 1..i + 1 + len]).unwrap_or_default();
            let w = b[i + 1 + len];
            i += len + 2;
            Some((t, w))
        })
    }

    /// Its store, as a piece of a bundle (`p-<ids>/<first>-<last>.gz`).
    pub(crate) fn store(&self) -> Segment<'_> {
        let b = &self.bytes[self.store_at..];
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Segment {
            crc: word(0),
            len: word(4),
            deflate: &b[8..],
        }
    }
}

/// A piece of a gzip stream: raw deflate ending on a byte boundary with no final block (a
/// sync flush), with the CRC-32 and length of what it inflates to. Segments concatenated,
/// behind a gzip header and before an empty final block and the combined CRC and length, are
/// one valid gzip file ([`bundle`]), as if compressed in one go (each piece compressed on its
/// own, so a bundle costs what its pages' stores cost apart).
#[derive(Clone, Copy)]
pub(crate) struct Segment<'a> {
    /// CRC-32 of the inflated bytes.
    pub(crate) crc: u32,
    /// Length of the inflated bytes.
    pub(crate) len: u32,
    /// The raw deflate bytes.
    pub(crate) deflate: &'a [u8],
}

/// `bytes` as raw deflate, sync-flushed (no final block): a [`Segment`]'s bytes.
fn segment(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(bytes.len() / 2 + 32),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail; `flush` is a sync flush: everything written so far, up
    // to a byte boundary, and no final block (dropping the encoder then writes its final
    // block into the emptied buffer, which is let go).
    let _ = e.write_all(bytes);
    let _ = e.flush();
    std::mem::take(e.get_mut())
}

/// One gzip file of `segments` in order (no file name, no time: the same segments give the
/// same bytes).
pub(crate) fn bundle<'a>(segments: impl Iterator<Item = Segment<'a>> + Clone) -> Vec<u8> {
    let size: usize = segments.clone().map(|s| s.deflate.len()).sum();
    let mut out = Vec::with_capacity(size + 20);
    // ID1 ID2, deflate, no flags, no time, no extra flags, OS unknown.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut crc = crc32fast::Hasher::new();
    for s in segments {
        out.extend_from_slice(s.deflate);
        crc.combine(&crc32fast::Hasher::new_with_initial_len(
            s.crc,
            u64::from(s.len),
        ));
    }
    let len = crc.total_len();
    // The final block: fixed Huffman codes, nothing but the end-of-block code.
    out.extend_from_slice(&[0x03, 0x00]);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

/// `bytes` gzip-compressed (no file name, no time: the same input gives the same bytes).
/// The default level: on the bench corpus the fastest one wrote 22% more (4.1 MB against
/// 3.4 MB) to save about half the compression time, which only cold builds and edited pages
/// pay (compressed stores and shards are cached).
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::GzBuilder::new().write(
        Vec::with_capacity(bytes.len() / 2 + 32),
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
        let body = std::sync::Arc::new(crate::markdown::Rendered {
            html: "<h2>Tide tables</h2><p>tide tide moon</p>".into(),
            ..Default::default()
        });
        let d = Doc {
            path: "/p/",
            title: "Übergröße tide",
            section: "Notes",
            body: &body,
            html: crate::spill::Text::Memory(&body.html),
        };
        let part = DocPart::new(&d, &body.html, false);
        // tide: 10 (title) + 4 (heading) + 3 (the text, heading included).
        assert_eq!(
            part.terms().collect::<Vec<_>>(),
            [("moon", 1), ("tables", 5), ("tide", 17), ("übergröße", 10)]
        );
        let bytes = part.bytes().clone();
        assert_eq!(DocPart::from_bytes(bytes.clone()), Some(part));
        assert_eq!(DocPart::from_bytes(bytes[..7].into()), None);
        let mut bad = bytes.to_vec();
        bad[5] = 0xff; // not UTF-8
        assert_eq!(DocPart::from_bytes(bad.into()), None);
        let part = DocPart::from_bytes(bytes).unwrap();
        let line =
            r#"{"u":"/p/","t":"Übergröße tide","s":"Notes","x":"Tide tables\ntide tide moon"}"#;
        let gunzip = |gz: &[u8]| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz), &mut s).unwrap();
            s
        };
        assert_eq!(
            gunzip(&bundle(std::iter::once(part.store()))),
            format!("{line}\n")
        );
        // Bundled with another page's store: one gzip stream of both lines, in order.
        let other = DocPart::new(
            &Doc {
                path: "/q/",
                title: "Q",
                section: "",
                body: &body,
                html: crate::spill::Text::Memory(&body.html),
            },
            &body.html,
            false,
        );
        let both = bundle([part.store(), other.store()].into_iter());
        let text = gunzip(&both);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], line);
        assert!(lines[1].starts_with(r#"{"u":"/q/","t":"Q""#), "{text}");
        // Its trailer (CRC-32 and length of both lines) is what a single compression gives.
        assert_eq!(
            both[both.len() - 8..],
            gzip(text.as_bytes())[gzip(text.as_bytes()).len() - 8..]
        );
    }
}
