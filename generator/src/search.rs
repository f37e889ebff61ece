//! The full-text search index: every published page's title, headings and body text (code
//! blocks only with `[search] include_code`), written under `search/` as small gzip-compressed
//! files that the theme's search box fetches on demand.
//!
//! # Layout (see `docs/search.md`)
//!
//! - `search/index.json`, the one file read first (revalidated by browsers):
//!   `{"version":2,"docs":N,"code":false,"ids":"<8 hex>","shards":{"ab":"<8 hex>",…}}`.
//! - `search/s/<hex of the prefix>-<8 hex>.gz`: the terms starting with a prefix and their
//!   postings, `{"term":[id,weight,id,weight,…]}` gzip-compressed, ids delta-coded (each id
//!   is the previous id plus the number written). A prefix is a term's first two characters; a
//!   shard whose JSON is bigger than [`SHARD_TARGET`] is split by one more character until it
//!   fits or holds one term (the terms exactly as long as the prefix stay in the prefix's own
//!   shard). The 8 hex digits are a digest of the shard, listed in the manifest: a shard's
//!   name changes exactly when its content does, so `_headers` marks `search/s/*` immutable,
//!   and a rebuild that leaves a shard unchanged writes it under the same name with the same
//!   bytes (the output stage hard-links it from the previous output).
//! - `search/p-<ids>/<id>.gz`: one page's store for results, `{"u":path,"t":title,
//!   "s":section title,"x":text}` gzip-compressed (the text at most [`part::TEXT_LIMIT`]
//!   characters), fetched only for the results shown. `<ids>` (the manifest's `ids`) is a
//!   digest of the list of pages, so an id always names the same page within a folder; a
//!   store's content can change under the same name (an edited page), so stores are
//!   revalidated, not immutable.
//!
//! Each page's part (terms, weights, compressed store) is made once per content — in
//! parallel, reused by content hash from the previous build (`folio serve`) or from
//! `.folio/cache/search.bin` (`folio build`) — and so is each shard's compressed form: a build
//! of an unchanged site indexes and compresses nothing, and an edit re-indexes the pages
//! edited and compresses only the shards whose content changed. The output does not depend on
//! the thread count or on what was cached.

mod part;
mod text;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::cache::{BlobCache, Key};
use part::{gzip, DocPart};

/// A shard is split further when its JSON is bigger than this (bytes, before compression).
pub(crate) const SHARD_TARGET: usize = 12 * 1024;
/// The first bytes of `.folio/cache/search.bin` (changed whenever its entries change shape).
const CACHE_FORMAT: &[u8; 8] = b"FOLIOSX2";

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
    /// The folder of the files that never change under their name (`search/s`), for
    /// `_headers`.
    pub(crate) dir: String,
}

/// What one build of the index leaves for the next (`folio serve`'s memo).
#[derive(Default)]
pub(crate) struct DocCache {
    /// Each page's part and the digest of what it was made from, by site path.
    parts: HashMap<String, (Key, Arc<DocPart>)>,
    /// Compressed shards by the digest of their JSON.
    shards: HashMap<Key, Arc<[u8]>>,
}

impl DocCache {
    /// An empty cache: the next build indexes every page.
    pub(crate) fn new() -> DocCache {
        DocCache::default()
    }
}

/// The on-disk cache of a `folio build`: `.folio/cache/search.bin` under the site's root.
pub(crate) fn cache_path(root: &Path) -> std::path::PathBuf {
    root.join(".folio/cache/search.bin")
}

/// Builds the index of `docs` (their ids are their positions, so pass them in a stable
/// order). Parts and compressed shards come from `prev` (the previous build's, in memory) or,
/// with `disk`, from that cache file (loaded, then saved with what this build used).
pub(crate) fn build(
    docs: &[Doc<'_>],
    include_code: bool,
    prev: &DocCache,
    disk: Option<&Path>,
) -> (Index, DocCache) {
    // The disk cache only stands in for a missing memo (a first build in this process).
    let disk = disk.filter(|_| prev.parts.is_empty());
    let blobs = BlobCache::new(CACHE_FORMAT);
    if let Some(p) = disk {
        blobs.load(p);
    }
    // Each page on its own, in parallel: reused while its path, title, section and body are
    // the same.
    let parts: Vec<(Key, Arc<DocPart>)> = docs
        .par_iter()
        .map(|d| {
            let key = part_key(d, include_code);
            if let Some((k, p)) = prev.parts.get(d.path) {
                if *k == key {
                    return (key, p.clone());
                }
            }
            if let Some(p) = blobs.get(&key).and_then(|b| DocPart::from_bytes(&b)) {
                return (key, Arc::new(p));
            }
            let p = DocPart::new(d, include_code);
            blobs.put(key, Arc::from(p.to_bytes()));
            (key, Arc::new(p))
        })
        .collect();

    let encoded = postings(&parts);
    let mut shards: Vec<(String, Vec<u8>)> = Vec::new();
    split(&encoded, 2, &mut shards);
    // Each shard compressed, or its compressed form reused (keyed by its JSON).
    let packed: Vec<(&str, Key, Arc<[u8]>)> = shards
        .par_iter()
        .map(|(prefix, json)| {
            let key = digest(b"shard", &[json]);
            let gz = prev
                .shards
                .get(&key)
                .cloned()
                .or_else(|| blobs.get(&key))
                .unwrap_or_else(|| {
                    let gz: Arc<[u8]> = Arc::from(gzip(json));
                    blobs.put(key, gz.clone());
                    gz
                });
            (prefix.as_str(), key, gz)
        })
        .collect();
    let paths: Vec<&[u8]> = docs.iter().map(|d| d.path.as_bytes()).collect();
    let ids = short(&digest(&[u8::from(include_code)], &paths));

    let mut manifest = format!(
        "{{\"version\":2,\"docs\":{},\"code\":{include_code},\"ids\":\"{ids}\",\"shards\":{{",
        docs.len()
    );
    for (i, (prefix, key, _)) in packed.iter().enumerate() {
        if i > 0 {
            manifest.push(',');
        }
        manifest.push_str(&serde_json::to_string(prefix).unwrap_or_default());
        manifest.push(':');
        manifest.push_str(&format!("\"{}\"", short(key)));
    }
    manifest.push_str("}}");
    let mut files = Vec::with_capacity(1 + packed.len() + parts.len());
    files.push(("search/index.json".to_string(), manifest.into_bytes()));
    for (prefix, key, gz) in &packed {
        files.push((
            format!("search/s/{}-{}.gz", hex(prefix), short(key)),
            gz.to_vec(),
        ));
    }
    for (id, (_, p)) in parts.iter().enumerate() {
        files.push((format!("search/p-{ids}/{id}.gz"), p.store.clone()));
    }
    let bytes = files.iter().map(|(_, b)| b.len() as u64).sum();
    if let Some(p) = disk {
        // A cache that cannot be saved only makes the next build slower.
        let _ = blobs.save(p);
    }
    let memo = DocCache {
        parts: docs
            .iter()
            .zip(parts)
            .map(|(d, p)| (d.path.to_string(), p))
            .collect(),
        shards: packed.into_iter().map(|(_, k, gz)| (k, gz)).collect(),
    };
    (
        Index {
            files,
            bytes,
            dir: "search/s".to_string(),
        },
        memo,
    )
}

/// Every term's postings as a JSON object member, `"term":[Δid,weight,…]`, sorted by term.
fn postings(parts: &[(Key, Arc<DocPart>)]) -> Vec<(&str, String)> {
    // term → [(doc id, weight)], ids ascending (pages are taken in order).
    let mut by_term: HashMap<&str, Vec<(u32, u8)>> = HashMap::new();
    for (id, (_, part)) in parts.iter().enumerate() {
        for (t, w) in &part.terms {
            by_term.entry(t).or_default().push((id as u32, *w));
        }
    }
    let mut encoded: Vec<(&str, String)> = by_term
        .into_par_iter()
        .map(|(term, docs)| (term, encode_postings(term, &docs)))
        .collect();
    encoded.par_sort_unstable_by(|a, b| a.0.cmp(b.0));
    encoded
}

/// A digest of everything a page's part is made from.
fn part_key(d: &Doc<'_>, include_code: bool) -> Key {
    digest(
        &[b'p', u8::from(include_code)],
        &[
            d.path.as_bytes(),
            d.title.as_bytes(),
            d.section.as_bytes(),
            d.html.as_bytes(),
        ],
    )
}

/// A digest of `parts` (each length-prefixed) after `tag`.
fn digest(tag: &[u8], parts: &[&[u8]]) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(&(tag.len() as u64).to_le_bytes());
    h.update(tag);
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// The first 8 hex digits of a digest (names within one folder: a clash needs two versions of
/// the same shard to share 32 bits).
fn short(key: &Key) -> String {
    key[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// `"term":[delta,weight,…]` (a JSON object member); `docs` in ascending id order.
fn encode_postings(term: &str, docs: &[(u32, u8)]) -> String {
    use std::fmt::Write as _;
    let mut s = serde_json::to_string(term).unwrap_or_default();
    s.reserve(docs.len() * 5 + 3);
    s.push_str(":[");
    let mut last = 0u32;
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
fn split(terms: &[(&str, String)], len: usize, out: &mut Vec<(String, Vec<u8>)>) {
    let prefix = |t: &str| -> usize { t.char_indices().nth(len).map_or(t.len(), |(i, _)| i) };
    let mut start = 0;
    while start < terms.len() {
        let first = terms[start].0;
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

fn shard_json(members: &[(&str, String)]) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn shards_split_until_under_the_target_and_postings_are_delta_coded() {
        let bodies: Vec<String> = (0..400)
            .map(|i| format!("<p>common word{i} alpha{i} alpine{i}</p>"))
            .collect();
        let paths: Vec<String> = (0..400).map(|i| format!("/x/{i:03}/")).collect();
        let docs: Vec<Doc<'_>> = bodies
            .iter()
            .zip(&paths)
            .map(|(b, p)| Doc {
                path: p,
                title: "T",
                section: "",
                html: b,
            })
            .collect();
        let (idx, cache) = build(&docs, false, &DocCache::new(), None);
        // A second build reuses every page's part and writes the same files.
        let (again, _) = build(&docs, false, &cache, None);
        assert_eq!(again.files, idx.files);
        let manifest: serde_json::Value = serde_json::from_slice(&idx.files[0].1).unwrap();
        let shards = manifest["shards"].as_object().unwrap();
        assert!(shards.keys().any(|s| s.chars().count() > 2), "{shards:?}");
        for (p, b) in &idx.files {
            if p.starts_with("search/s/") {
                assert!(gunzip(b).len() <= SHARD_TARGET, "{p}: {}", b.len());
            }
        }
        let co = format!(
            "search/s/{}-{}.gz",
            hex("co"),
            shards["co"].as_str().unwrap()
        );
        let co = idx.files.iter().find(|(p, _)| *p == co).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&gunzip(&co.1)).unwrap();
        let common = v["common"].as_array().unwrap();
        assert_eq!(common.len(), 800);
        assert_eq!(common[0], 0);
        assert!(common[2..].iter().step_by(2).all(|d| d == 1));
    }
}
