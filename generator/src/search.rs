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

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::cache::{BlobCache, Key};
use crate::markdown::Rendered;
use part::{gzip, DocPart};

/// A shard is split further when its JSON is bigger than this (bytes, before compression).
pub(crate) const SHARD_TARGET: usize = 12 * 1024;
/// The first bytes of `.folio/cache/search.bin` (changed whenever its entries change shape).
const CACHE_FORMAT: &[u8; 8] = b"FOLIOSX4";

/// One page (or section) to index.
pub(crate) struct Doc<'a> {
    /// Its site path (`/projects/minirt/`).
    pub(crate) path: &'a str,
    /// Its title.
    pub(crate) title: &'a str,
    /// The title of the section it belongs to (`""` for none).
    pub(crate) section: &'a str,
    /// Its rendered body (the same `Arc` as the previous build's when the markdown stage
    /// reused it: then the page is not even hashed again).
    pub(crate) body: &'a Arc<Rendered>,
    /// Its rendered body's HTML: `body.html`, or where a one-off build wrote it out
    /// (`crate::spill`), read once when the page is indexed.
    pub(crate) html: crate::spill::Text<'a>,
}

/// The index's files, by output path, and their total size.
pub(crate) struct Index {
    /// Output path (`search/…`) → bytes.
    pub(crate) files: Vec<(String, Arc<[u8]>)>,
    /// Sum of the files' sizes.
    pub(crate) bytes: u64,
    /// The folder of the files that never change under their name (`search/s`), for
    /// `_headers`.
    pub(crate) dir: String,
}

/// What one build of the index leaves for the next (`folio serve`'s memo).
#[derive(Default)]
pub(crate) struct DocCache {
    /// Each page's part, by site path.
    parts: HashMap<String, Kept>,
    /// The postings and shards by two-character prefix, for the pages in `ids` order.
    groups: Option<Groups>,
}

impl DocCache {
    /// An empty cache: the next build indexes every page.
    pub(crate) fn new() -> DocCache {
        DocCache::default()
    }
}

/// A page's part and what it was made from.
#[derive(Clone)]
struct Kept {
    key: Key,
    title: Box<str>,
    section: Box<str>,
    include_code: bool,
    body: Arc<Rendered>,
    part: Arc<DocPart>,
}

/// Postings and shards grouped by the terms' first two characters: an edit re-makes the
/// groups of the terms it adds or removes, nothing else.
#[derive(Clone)]
struct Groups {
    /// The digest of the page list (ids), with `include_code`.
    ids: Key,
    /// Each page's part, by id.
    parts: Vec<Arc<DocPart>>,
    by_prefix: BTreeMap<Box<str>, Arc<Group>>,
}

/// The terms of one two-character prefix and the shards they make.
struct Group {
    /// Term → [(id, weight)], ids ascending.
    terms: BTreeMap<Box<str>, Vec<(u32, u8)>>,
    /// (prefix, digest of the JSON, compressed).
    shards: Vec<Shard>,
}

/// One shard file: its prefix, the digest of its JSON, its compressed bytes.
type Shard = (String, Key, Arc<[u8]>);

/// A term's postings: (page id, weight), ids ascending.
type Postings = Vec<(u32, u8)>;

/// The on-disk cache of a `folio build`: `.folio/cache/search.bin` under the site's root.
pub(crate) fn cache_path(root: &Path) -> std::path::PathBuf {
    root.join(".folio/cache/search.bin")
}

/// Builds the index of `docs` (their ids are their positions, so pass them in a stable
/// order). Parts and shards come from `prev` (the previous build's, in memory) or, with
/// `disk` and no `prev`, from that cache file (loaded, then saved with what this build used).
pub(crate) fn build(
    docs: &[Doc<'_>],
    include_code: bool,
    prev: &DocCache,
    disk: Option<&Path>,
) -> std::io::Result<(Index, DocCache)> {
    // The disk cache only stands in for a missing memo (a first build in this process).
    let disk = disk.filter(|_| prev.parts.is_empty());
    let blobs = Disk {
        blobs: BlobCache::new(CACHE_FORMAT),
        on: disk.is_some(),
    };
    if let Some(p) = disk {
        blobs.blobs.load(p);
    }
    // Each page on its own, in parallel: reused while its path, title, section and body are
    // the same.
    let kept: Vec<Kept> = docs
        .par_iter()
        .map(|d| {
            if let Some(k) = prev.parts.get(d.path) {
                if Arc::ptr_eq(&k.body, d.body)
                    && *k.title == *d.title
                    && *k.section == *d.section
                    && k.include_code == include_code
                {
                    return Ok(k.clone());
                }
            }
            let html = d.html.read()?;
            let key = part_key(d, &html, include_code);
            let part = match prev.parts.get(d.path) {
                Some(k) if k.key == key => k.part.clone(),
                _ => match blobs.get(&key).and_then(DocPart::from_bytes) {
                    Some(p) => Arc::new(p),
                    None => {
                        let p = DocPart::new(d, &html, include_code);
                        blobs.put(key, p.bytes());
                        Arc::new(p)
                    }
                },
            };
            Ok(Kept {
                key,
                title: d.title.into(),
                section: d.section.into(),
                include_code,
                body: d.body.clone(),
                part,
            })
        })
        .collect::<std::io::Result<_>>()?;
    let parts: Vec<Arc<DocPart>> = kept.iter().map(|k| k.part.clone()).collect();
    let paths: Vec<&[u8]> = docs.iter().map(|d| d.path.as_bytes()).collect();
    let ids = digest(&[b'i', u8::from(include_code)], &paths);

    // The shards: from the disk cache when every page is the same as in the build that
    // saved it; else the groups, re-made only where pages changed.
    let index_key = {
        let keys: Vec<&[u8]> = kept.iter().map(|k| &k.key[..]).collect();
        digest(&ids, &keys)
    };
    let (shards, groups): (Vec<Shard>, Option<Groups>) = match blobs
        .get(&index_key)
        .and_then(|list| cached_shards(&list, &blobs))
    {
        Some(shards) => (shards, None),
        None => {
            let groups = regroup(prev.groups.as_ref(), ids, parts, &blobs);
            let shards: Vec<Shard> = groups
                .by_prefix
                .values()
                .flat_map(|g| g.shards.iter().cloned())
                .collect();
            let mut list = Vec::with_capacity(shards.len() * 40);
            for (prefix, key, _) in &shards {
                list.push(prefix.len() as u8);
                list.extend_from_slice(prefix.as_bytes());
                list.extend_from_slice(key);
            }
            blobs.put(index_key, &list);
            (shards, Some(groups))
        }
    };

    let ids_hex = short(&ids);
    let mut manifest = format!(
        "{{\"version\":2,\"docs\":{},\"code\":{include_code},\"ids\":\"{ids_hex}\",\"shards\":{{",
        docs.len()
    );
    for (i, (prefix, key, _)) in shards.iter().enumerate() {
        if i > 0 {
            manifest.push(',');
        }
        manifest.push_str(&serde_json::to_string(prefix).unwrap_or_default());
        manifest.push_str(&format!(":\"{}\"", short(key)));
    }
    manifest.push_str("}}");
    let mut files: Vec<(String, Arc<[u8]>)> = Vec::with_capacity(1 + shards.len() + docs.len());
    files.push((
        "search/index.json".to_string(),
        manifest.into_bytes().into(),
    ));
    for (prefix, key, gz) in &shards {
        files.push((
            format!("search/s/{}-{}.gz", hex(prefix), short(key)),
            gz.clone(),
        ));
    }
    for (id, k) in kept.iter().enumerate() {
        files.push((format!("search/p-{ids_hex}/{id}.gz"), k.part.store().into()));
    }
    let bytes = files.iter().map(|(_, b)| b.len() as u64).sum();
    if let Some(p) = disk {
        // A cache that cannot be saved only makes the next build slower.
        let _ = blobs.blobs.save(p);
    }
    let memo = DocCache {
        parts: docs
            .iter()
            .zip(kept)
            .map(|(d, k)| (d.path.to_string(), k))
            .collect(),
        groups,
    };
    Ok((
        Index {
            files,
            bytes,
            dir: "search/s".to_string(),
        },
        memo,
    ))
}

/// The on-disk cache of this build (`folio build`), or none (`folio serve`, tests in memory:
/// then nothing is looked up or kept).
struct Disk {
    blobs: BlobCache,
    on: bool,
}

impl Disk {
    /// Stores `value` under `key` (the cache file checks each entry when it is read back:
    /// a damaged one is never served, see `cache::BlobCache`).
    fn put(&self, key: Key, value: &[u8]) {
        if self.on {
            self.blobs.put(key, value.into());
        }
    }

    /// The value [`Disk::put`] stored under `key`, if it is there.
    fn get(&self, key: &Key) -> Option<Arc<[u8]>> {
        self.on.then(|| self.blobs.get(key)).flatten()
    }
}

/// The shards listed by a cache entry (`[prefix length, prefix, digest]…`), each found in
/// the cache; `None` if any is missing.
fn cached_shards(list: &[u8], blobs: &Disk) -> Option<Vec<Shard>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < list.len() {
        let len = list[i] as usize;
        let prefix = std::str::from_utf8(list.get(i + 1..i + 1 + len)?).ok()?;
        let key: Key = list.get(i + 1 + len..i + 33 + len)?.try_into().ok()?;
        out.push((prefix.to_string(), key, blobs.get(&key)?));
        i += len + 33;
    }
    Some(out)
}

/// The groups of `parts` (ids `ids`): those of `prev` where no page's terms under their
/// prefix changed, the others made again. Everything is made again when the page list is
/// not the same.
fn regroup(prev: Option<&Groups>, ids: Key, parts: Vec<Arc<DocPart>>, blobs: &Disk) -> Groups {
    let prev = prev.filter(|g| g.ids == ids && g.parts.len() == parts.len());
    let Some(prev) = prev else {
        // From scratch: every term's postings, then each prefix's group, in parallel.
        let mut by_prefix: BTreeMap<&str, BTreeMap<&str, Postings>> = BTreeMap::new();
        for (id, part) in parts.iter().enumerate() {
            for (t, w) in part.terms() {
                by_prefix
                    .entry(&t[..prefix_len(t, 2)])
                    .or_default()
                    .entry(t)
                    .or_default()
                    .push((id as u32, w));
            }
        }
        let groups: Vec<(Box<str>, Arc<Group>)> = by_prefix
            .into_par_iter()
            .map(|(p, terms)| {
                let terms = terms.into_iter().map(|(t, v)| (Box::from(t), v)).collect();
                (Box::from(p), Arc::new(group(terms, blobs, &[])))
            })
            .collect();
        return Groups {
            ids,
            by_prefix: groups.into_iter().collect(),
            parts,
        };
    };
    // The pages whose part changed, and the prefixes of the terms they had or have.
    let changed: Vec<usize> = (0..parts.len())
        .filter(|&i| !Arc::ptr_eq(&parts[i], &prev.parts[i]) && parts[i] != prev.parts[i])
        .collect();
    let mut touched: BTreeMap<Box<str>, ()> = BTreeMap::new();
    for &i in &changed {
        for (t, _) in prev.parts[i].terms().chain(parts[i].terms()) {
            touched.insert(Box::from(&t[..prefix_len(t, 2)]), ());
        }
    }
    let remade: Vec<(Box<str>, Option<Arc<Group>>)> = touched
        .into_par_iter()
        .map(|(p, ())| {
            let mut terms: BTreeMap<Box<str>, Vec<(u32, u8)>> = prev
                .by_prefix
                .get(&p)
                .map(|g| g.terms.clone())
                .unwrap_or_default();
            let under = |t: &str| t[..prefix_len(t, 2)] == *p;
            for &i in &changed {
                let id = i as u32;
                for (t, _) in prev.parts[i].terms().filter(|(t, _)| under(t)) {
                    if let Some(v) = terms.get_mut(t) {
                        v.retain(|e| e.0 != id);
                    }
                }
                for (t, w) in parts[i].terms() {
                    if under(t) {
                        let v = terms.entry(Box::from(t)).or_default();
                        let at = v.partition_point(|e| e.0 < id);
                        v.insert(at, (id, w));
                    }
                }
            }
            terms.retain(|_, v| !v.is_empty());
            let old = prev.by_prefix.get(&p).map_or(&[][..], |g| &g.shards[..]);
            let g = (!terms.is_empty()).then(|| Arc::new(group(terms, blobs, old)));
            (p, g)
        })
        .collect();
    let mut by_prefix = prev.by_prefix.clone();
    for (p, g) in remade {
        match g {
            Some(g) => {
                by_prefix.insert(p, g);
            }
            None => {
                by_prefix.remove(&p);
            }
        }
    }
    Groups {
        ids,
        parts,
        by_prefix,
    }
}

/// One prefix's group: its terms' postings encoded, split into shards, each compressed (or
/// its compressed form reused, keyed by its JSON: from the group's `old` shards or the cache).
fn group(terms: BTreeMap<Box<str>, Vec<(u32, u8)>>, blobs: &Disk, old: &[Shard]) -> Group {
    let encoded: Vec<(&str, String)> = terms
        .iter()
        .map(|(t, v)| (&**t, encode_postings(t, v)))
        .collect();
    let mut json: Vec<(String, Vec<u8>)> = Vec::new();
    split(&encoded, 2, &mut json);
    let shards = json
        .into_iter()
        .map(|(prefix, json)| {
            let key = digest(b"shard", &[&json]);
            let reused = old.iter().find(|s| s.1 == key).map(|s| s.2.clone());
            let gz = reused.or_else(|| blobs.get(&key)).unwrap_or_else(|| {
                let gz: Arc<[u8]> = Arc::from(gzip(&json));
                blobs.put(key, &gz);
                gz
            });
            (prefix, key, gz)
        })
        .collect();
    Group { terms, shards }
}

/// The byte length of the first `chars` characters of `t` (all of it if shorter).
fn prefix_len(t: &str, chars: usize) -> usize {
    t.char_indices().nth(chars).map_or(t.len(), |(i, _)| i)
}

/// A digest of everything a page's part is made from, and of the program that makes it
/// (`cache::program_id`: another build of folio never takes this one's cached parts).
fn part_key(d: &Doc<'_>, html: &str, include_code: bool) -> Key {
    digest(
        &[b'p', u8::from(include_code)],
        &[
            &crate::cache::program_id(),
            d.path.as_bytes(),
            d.title.as_bytes(),
            d.section.as_bytes(),
            html.as_bytes(),
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
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn body(html: String) -> Arc<Rendered> {
        Arc::new(Rendered {
            html,
            ..Default::default()
        })
    }

    fn docs<'a>(paths: &'a [String], bodies: &'a [Arc<Rendered>]) -> Vec<Doc<'a>> {
        paths
            .iter()
            .zip(bodies)
            .map(|(p, b)| Doc {
                path: p,
                title: "T",
                section: "",
                body: b,
                html: crate::spill::Text::Memory(&b.html),
            })
            .collect()
    }

    #[test]
    fn shards_split_until_under_the_target_and_postings_are_delta_coded() {
        let bodies: Vec<Arc<Rendered>> = (0..400)
            .map(|i| body(format!("<p>common word{i} alpha{i} alpine{i}</p>")))
            .collect();
        let paths: Vec<String> = (0..400).map(|i| format!("/x/{i:03}/")).collect();
        let docs = docs(&paths, &bodies);
        let (idx, cache) = build(&docs, false, &DocCache::new(), None).unwrap();
        // A second build reuses every page's part and writes the same files.
        let (again, _) = build(&docs, false, &cache, None).unwrap();
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

    #[test]
    fn edits_regroup_only_what_they_touch_and_give_a_from_scratch_index() {
        let text = |i: usize, round: usize| {
            let mut s = format!("<h2>Part {}</h2><p>", i % 7);
            for j in 0..40 {
                s.push_str(&format!("w{} ", (i * 31 + j * 17 + round * (i % 3)) % 500));
            }
            s + "</p>"
        };
        let paths: Vec<String> = (0..300).map(|i| format!("/n/{i:03}/")).collect();
        let mut bodies: Vec<Arc<Rendered>> = (0..300).map(|i| body(text(i, 0))).collect();
        let (_, mut memo) = build(&docs(&paths, &bodies), false, &DocCache::new(), None).unwrap();
        for round in 1..4 {
            // Edit a few pages (new words, words gone, one emptied), keep the others' Arcs.
            for i in [round, 40 + round * 7, 299 - round] {
                bodies[i] = body(if i % 2 == 0 {
                    text(i, round)
                } else {
                    String::new()
                });
            }
            let d = docs(&paths, &bodies);
            let (inc, next) = build(&d, false, &memo, None).unwrap();
            let (scratch, _) = build(&d, false, &DocCache::new(), None).unwrap();
            assert!(inc.files == scratch.files, "round {round}");
            // Made incrementally: most groups are the previous build's own.
            let (old, new) = (memo.groups.as_ref().unwrap(), next.groups.as_ref().unwrap());
            let shared = new
                .by_prefix
                .iter()
                .filter(|(p, g)| old.by_prefix.get(*p).is_some_and(|o| Arc::ptr_eq(o, g)))
                .count();
            assert!(
                shared > 0 && shared < new.by_prefix.len(),
                "round {round}: {shared} of {} groups kept",
                new.by_prefix.len()
            );
            memo = next;
        }
    }
}
