//! The full-text search index: every published page's title, headings and body text (code
//! blocks only with `[search] include_code`), written under `search/` as gzip-compressed
//! files that the theme's search box fetches on demand — files of a few KB each, their number
//! going with the index's size, not with the number of pages (Cloudflare takes 20,000 files
//! per version on its Free plan).
//!
//! # Layout (format 3, see `docs/search.md`)
//!
//! - `search/index.json`, the one file read first (revalidated by browsers):
//!   `{"version":3,"docs":N,"code":false,"ids":"<8 hex>","stores":[n,…],"starts":["a","ab…",…],
//!   "digests":"<8 hex per shard>"}` (no `shards` key: a format-2 script that loaded before a
//!   deploy fails on it and says search is unavailable, rather than finding nothing).
//! - `search/s/<hex of the start>-<8 hex>.gz`: a shard, `{"term":[id,weight,id,weight,…]}`
//!   gzip-compressed, ids delta-coded (each id is the previous id plus the number written).
//!   Every term, in sorted order, is in exactly one shard: the shards are runs of consecutive
//!   terms cut by size (about [`SHARD_TARGET`] bytes of JSON, at most [`SHARD_CAP`] unless one
//!   term is bigger). A cut falls before a term when the next term would take the shard over
//!   the cap, or at an *anchor*: a term chosen by a hash of its text with a probability that
//!   grows with its size (content-defined cuts), so the cuts depend on the terms near them
//!   only: an edit that changes a few terms' postings changes their shards, and moves at most
//!   the cuts next to them. A shard's start (in `starts`) is the shortest prefix of its first
//!   term that sorts after the previous shard's last term: the shard of a word is the last
//!   whose start sorts at or before it (plus those after it whose start the word begins, for
//!   a short word whose terms run on), found from the manifest alone. The 8 hex digits are a
//!   digest of the shard's JSON: its name changes exactly when its content does, so
//!   `_headers` marks `search/s/*` immutable, and a rebuild that leaves a shard unchanged
//!   writes it under the same name with the same bytes (the output stage hard-links it).
//! - `search/p-<ids>/<first>-<last>.gz`: a bundle of the stores of pages `first` to `last`,
//!   one line each, `{"u":path,"t":title,"s":section title,"x":text}` (the text at most
//!   [`part::TEXT_LIMIT`] characters), one gzip stream. Bundles are runs of consecutive ids
//!   cut the same way by the pages' compressed store sizes (about [`BUNDLE_TARGET`] bytes,
//!   at most [`BUNDLE_CAP`] unless one page is bigger), anchored on a hash of the page's
//!   path; `stores` lists how many pages each holds. `<ids>` is a digest of the list of
//!   pages, so an id always names the same page within a folder; a bundle's content can
//!   change under the same name (an edited page), so bundles are revalidated, not immutable.
//!   Each page's store is compressed once, on its own, as a piece of deflate ended by a sync
//!   flush: a bundle is its pages' pieces concatenated between a gzip header and trailer,
//!   never compressed again (`part::bundle`).
//!
//! Each page's part (terms, weights, compressed store) is made once per content — in
//! parallel, reused by content hash from the previous build (`folio serve`) or from
//! `.folio/cache/search.bin` (`folio build`) — and so is each shard's compressed form (by the
//! digest of its JSON): a build of an unchanged site indexes and compresses nothing, and an
//! edit re-indexes the pages edited, re-groups the postings of the terms they touched,
//! packs the terms again (a pass over every term's size) and compresses only the shards
//! whose content changed. The output does not depend on the thread count or on what was
//! cached.

mod part;
mod text;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use crate::cache::{BlobCache, Key};
use crate::markdown::Rendered;
use part::{gzip, DocPart};

/// Shards are cut at about this size of JSON (bytes, before compression); a shard holds
/// [`SHARD_CAP`] at most, or one term.
pub(crate) const SHARD_TARGET: usize = 16 * 1024;
/// No shard's JSON is bigger than this, unless it holds a single term.
pub(crate) const SHARD_CAP: usize = 2 * SHARD_TARGET;
/// Store bundles are cut at about this many compressed bytes.
pub(crate) const BUNDLE_TARGET: usize = 8 * 1024;
/// No bundle is bigger than this (compressed), unless it holds a single page.
pub(crate) const BUNDLE_CAP: usize = 2 * BUNDLE_TARGET;
/// The first bytes of `.folio/cache/search.bin` (changed whenever its entries change shape).
const CACHE_FORMAT: &[u8; 8] = b"FOLIOSX5";
/// The manifest's `version`: the layout of the files (the script refuses others).
const FORMAT_VERSION: u32 = 3;

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
    /// The postings by two-character prefix and the shards, for the pages in `ids` order.
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

/// Postings grouped by the terms' first two characters (an edit re-makes the groups of the
/// terms it adds or removes, nothing else), and the shards they were packed into.
#[derive(Clone)]
struct Groups {
    /// The digest of the page list (ids), with `include_code`.
    ids: Key,
    /// Each page's part, by id.
    parts: Vec<Arc<DocPart>>,
    by_prefix: BTreeMap<Box<str>, Arc<Group>>,
    /// The shards of this build (their compressed bytes are reused by digest).
    shards: Vec<Shard>,
}

/// The terms of one two-character prefix, with their postings and their JSON.
struct Group {
    /// Term → [(id, weight)], ids ascending.
    terms: BTreeMap<Box<str>, Vec<(u32, u8)>>,
    /// Each term's `"term":[…]` member, in the order of `terms` (shared with the next
    /// build's group while the term's postings stay the same).
    members: Vec<Arc<str>>,
}

/// One shard file: where its range of terms starts, the digest of its JSON, its compressed
/// bytes.
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
    // saved it; else the groups, re-made only where pages changed, packed again.
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
            let mut list = Vec::with_capacity(groups.shards.len() * 40);
            for (start, key, _) in &groups.shards {
                list.push(start.len() as u8);
                list.extend_from_slice(start.as_bytes());
                list.extend_from_slice(key);
            }
            blobs.put(index_key, &list);
            (groups.shards.clone(), Some(groups))
        }
    };

    // The stores, bundled: consecutive ids, cut by their compressed sizes.
    let sizes: Vec<(&str, usize)> = docs
        .iter()
        .zip(&kept)
        .map(|(d, k)| (d.path, k.part.store().deflate.len()))
        .collect();
    let bundles = cut_bundles(&sizes);

    let ids_hex = short(&ids);
    let mut manifest = format!(
        "{{\"version\":{FORMAT_VERSION},\"docs\":{},\"code\":{include_code},\"ids\":\"{ids_hex}\",\"stores\":[",
        docs.len()
    );
    for (i, n) in bundles.iter().enumerate() {
        if i > 0 {
            manifest.push(',');
        }
        manifest.push_str(&n.to_string());
    }
    manifest.push_str("],\"starts\":[");
    for (i, (start, _, _)) in shards.iter().enumerate() {
        if i > 0 {
            manifest.push(',');
        }
        manifest.push_str(&serde_json::to_string(start).unwrap_or_default());
    }
    manifest.push_str("],\"digests\":\"");
    for (_, key, _) in &shards {
        manifest.push_str(&short(key));
    }
    manifest.push_str("\"}");
    let mut files: Vec<(String, Arc<[u8]>)> = Vec::with_capacity(1 + shards.len() + bundles.len());
    files.push((
        "search/index.json".to_string(),
        manifest.into_bytes().into(),
    ));
    for (start, key, gz) in &shards {
        files.push((
            format!("search/s/{}-{}.gz", hex(start), short(key)),
            gz.clone(),
        ));
    }
    let mut first = 0;
    let made: Vec<(String, Arc<[u8]>)> = bundles
        .iter()
        .map(|&n| {
            let range = first..first + n;
            first += n;
            range
        })
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|r| {
            let name = format!("search/p-{ids_hex}/{}-{}.gz", r.start, r.end - 1);
            let gz = part::bundle(kept[r].iter().map(|k| k.part.store()));
            (name, Arc::from(gz))
        })
        .collect();
    files.extend(made);
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

/// The shards listed by a cache entry (`[start length, start, digest]…`), each found in the
/// cache; `None` if any is missing.
fn cached_shards(list: &[u8], blobs: &Disk) -> Option<Vec<Shard>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < list.len() {
        let len = list[i] as usize;
        let start = std::str::from_utf8(list.get(i + 1..i + 1 + len)?).ok()?;
        let key: Key = list.get(i + 1 + len..i + 33 + len)?.try_into().ok()?;
        out.push((start.to_string(), key, blobs.get(&key)?));
        i += len + 33;
    }
    Some(out)
}

/// Whether a unit (a term, a page) of `size` bytes starts a new shard or bundle where the
/// size alone does not force it: with a probability of `size` in `target / 2` (so that a run
/// past half the target ends after another half on average), decided by a
/// hash of the unit's name, so that the cuts depend on what is near them only and an edit
/// moves the cuts around it and no others.
fn anchor(name: &str, size: usize, target: usize) -> bool {
    // FNV-1a, then a mix of its bits (any fixed hash would do: only stability matters).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h % (target as u64 / 2).max(1)) < size as u64
}

/// Cuts a sequence of units (name, size) into runs: a run ends before a unit that would take
/// it over `cap`, or before an [`anchor`] once it holds half of `target` (runs of about
/// `target` on average). Returns each run's length.
fn cut_runs<'a>(
    units: impl Iterator<Item = (&'a str, usize)>,
    target: usize,
    cap: usize,
) -> Vec<usize> {
    let mut runs = Vec::new();
    let (mut n, mut acc) = (0usize, 0usize);
    for (name, size) in units {
        if n > 0 && (acc + size > cap || (acc >= target / 2 && anchor(name, size, target))) {
            runs.push(n);
            (n, acc) = (0, 0);
        }
        n += 1;
        acc += size;
    }
    if n > 0 {
        runs.push(n);
    }
    runs
}

/// The store bundles of pages (path, compressed store size) in id order: the number of pages
/// in each.
fn cut_bundles(pages: &[(&str, usize)]) -> Vec<usize> {
    cut_runs(pages.iter().copied(), BUNDLE_TARGET, BUNDLE_CAP)
}

/// The groups of `parts` (ids `ids`): those of `prev` where no page's terms under their
/// prefix changed, the others made again; then the shards packed from them. Everything is
/// made again when the page list is not the same.
fn regroup(prev: Option<&Groups>, ids: Key, parts: Vec<Arc<DocPart>>, blobs: &Disk) -> Groups {
    let prev = prev.filter(|g| g.ids == ids && g.parts.len() == parts.len());
    let by_prefix = match prev {
        None => {
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
                    (Box::from(p), Arc::new(group(terms, None)))
                })
                .collect();
            groups.into_iter().collect()
        }
        Some(prev) => regroup_edited(prev, &parts),
    };
    let old: HashMap<Key, Arc<[u8]>> = prev
        .map(|g| g.shards.iter().map(|(_, k, gz)| (*k, gz.clone())).collect())
        .unwrap_or_default();
    let shards = pack(&by_prefix, &old, blobs);
    Groups {
        ids,
        parts,
        by_prefix,
        shards,
    }
}

/// `prev`'s groups with those of the terms the changed pages had or have made again.
fn regroup_edited(prev: &Groups, parts: &[Arc<DocPart>]) -> BTreeMap<Box<str>, Arc<Group>> {
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
            // Only the terms the changed pages had or have can have other postings: every
            // other member of the previous group is the same JSON.
            let edited: HashSet<&str> = changed
                .iter()
                .flat_map(|&i| prev.parts[i].terms().chain(parts[i].terms()))
                .map(|(t, _)| t)
                .filter(|t| under(t))
                .collect();
            let old = prev.by_prefix.get(&p).map(|g| (&**g, &edited));
            let g = (!terms.is_empty()).then(|| Arc::new(group(terms, old)));
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
    by_prefix
}

/// One prefix's group: its terms' postings and their JSON members. With `prev` (the same
/// prefix's group in the previous build, and the terms whose postings may have changed), a
/// term's member is taken from it unless the term is among those: a one-page edit encodes
/// the few terms it touched, not every term sharing their first two letters.
fn group(terms: BTreeMap<Box<str>, Postings>, prev: Option<(&Group, &HashSet<&str>)>) -> Group {
    let edited = prev.map(|(_, e)| e);
    let mut old = prev
        .into_iter()
        .flat_map(|(g, _)| g.terms.keys().zip(&g.members))
        .peekable();
    let members = terms
        .iter()
        .map(|(t, v)| {
            while old.next_if(|(o, _)| ***o < **t).is_some() {}
            match old.peek() {
                Some((o, m)) if ***o == **t && edited.is_some_and(|e| !e.contains(&**t)) => {
                    Arc::clone(m)
                }
                _ => Arc::from(encode_postings(t, v)),
            }
        })
        .collect();
    Group { terms, members }
}

/// Packs every term (in sorted order, across the groups) into shards ([`cut_runs`] on the
/// size of each term's JSON), each compressed (or its compressed form reused by the digest
/// of its JSON: from `old`, the previous build's, or the cache). A shard's start is the
/// shortest prefix of its first term that sorts after the previous shard's last term, so a
/// client finds the shard of any word from the starts alone.
fn pack(
    by_prefix: &BTreeMap<Box<str>, Arc<Group>>,
    old: &HashMap<Key, Arc<[u8]>>,
    blobs: &Disk,
) -> Vec<Shard> {
    let all: Vec<(&str, &str)> = by_prefix
        .values()
        .flat_map(|g| {
            g.terms
                .keys()
                .map(|t| &**t)
                .zip(g.members.iter().map(|m| &**m))
        })
        .collect();
    let runs = cut_runs(
        all.iter().map(|(t, m)| (*t, m.len() + 1)),
        SHARD_TARGET,
        SHARD_CAP,
    );
    let mut at = 0;
    let spans: Vec<(String, &[(&str, &str)])> = runs
        .iter()
        .map(|&n| {
            let members = &all[at..at + n];
            let start = match at.checked_sub(1) {
                None => members[0].0[..prefix_len(members[0].0, 1)].to_string(),
                Some(i) => shortest_after(all[i].0, members[0].0).to_string(),
            };
            at += n;
            (start, members)
        })
        .collect();
    spans
        .into_par_iter()
        .map(|(start, members)| {
            let json = shard_json(members);
            let key = digest(b"shard", &[&json]);
            let gz = old
                .get(&key)
                .cloned()
                .or_else(|| blobs.get(&key))
                .unwrap_or_else(|| {
                    let gz: Arc<[u8]> = Arc::from(gzip(&json));
                    blobs.put(key, &gz);
                    gz
                });
            (start, key, gz)
        })
        .collect()
}

/// The shortest prefix of `next` that sorts after `prev` (`prev < next`).
fn shortest_after<'a>(prev: &str, next: &'a str) -> &'a str {
    let common = prev
        .chars()
        .zip(next.chars())
        .take_while(|(a, b)| a == b)
        .count();
    &next[..prefix_len(next, common + 1)]
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
    let mut s = serde_json::to_string(term).unwrap_or_default();
    s.reserve(docs.len() * 5 + 3);
    s.push_str(":[");
    let mut last = 0u32;
    for (i, &(id, w)) in docs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_number(&mut s, id - last);
        s.push(',');
        push_number(&mut s, u32::from(w));
        last = id;
    }
    s.push(']');
    s
}

/// `n` in decimal, appended: the postings are most of the index's text, and `write!` spent
/// more on formatting machinery than on digits.
fn push_number(s: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// One shard's JSON: `{` the members `}`.
fn shard_json(members: &[(&str, &str)]) -> Vec<u8> {
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

/// Lower-case hexadecimal of a shard start's UTF-8 (file names safe for any script; the
/// hex of two strings sorts as their bytes do, which the script relies on).
fn hex(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    #[test]
    fn numbers_are_written_as_format_writes_them() {
        for n in [0, 1, 9, 10, 99, 100, 4_095, 65_536, 999_999_999, u32::MAX] {
            let mut s = String::from("x");
            super::push_number(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
        assert_eq!(
            super::encode_postings("é\"", &[(3, 1), (10, 255), (10_000, 7)]),
            "\"é\\\"\":[3,1,7,255,9990,7]"
        );
    }

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

    /// The shard file a client reads for `word`: the last whose start sorts before it.
    fn shard_of<'a>(idx: &'a Index, word: &str) -> &'a [u8] {
        let manifest: serde_json::Value = serde_json::from_slice(&idx.files[0].1).unwrap();
        let starts = manifest["starts"].as_array().unwrap();
        let at = starts
            .iter()
            .rposition(|s| s.as_str().unwrap().as_bytes() <= word.as_bytes())
            .unwrap();
        let name = format!(
            "search/s/{}-{}.gz",
            hex(starts[at].as_str().unwrap()),
            &manifest["digests"].as_str().unwrap()[at * 8..at * 8 + 8]
        );
        &idx.files.iter().find(|(p, _)| *p == name).unwrap().1
    }

    #[test]
    fn shards_are_packed_under_the_cap_and_postings_are_delta_coded() {
        let bodies: Vec<Arc<Rendered>> = (0..400)
            .map(|i| {
                body(format!(
                    "<p>common word{i} alpha{i} alpine{i} über{i} 東京{i}</p>"
                ))
            })
            .collect();
        let paths: Vec<String> = (0..400).map(|i| format!("/x/{i:03}/")).collect();
        let docs = docs(&paths, &bodies);
        let (idx, cache) = build(&docs, false, &DocCache::new(), None).unwrap();
        // A second build reuses every page's part and writes the same files.
        let (again, _) = build(&docs, false, &cache, None).unwrap();
        assert_eq!(again.files, idx.files);
        let shards: Vec<&(String, Arc<[u8]>)> = idx
            .files
            .iter()
            .filter(|(p, _)| p.starts_with("search/s/"))
            .collect();
        // 2,001 terms in a handful of shards, none over the cap.
        assert!(shards.len() > 1 && shards.len() < 20, "{}", shards.len());
        for (p, b) in &shards {
            assert!(gunzip(b).len() <= SHARD_CAP, "{p}: {}", b.len());
        }
        let v: serde_json::Value =
            serde_json::from_slice(&gunzip(shard_of(&idx, "common"))).unwrap();
        let common = v["common"].as_array().unwrap();
        assert_eq!(common.len(), 800);
        assert_eq!(common[0], 0);
        assert!(common[2..].iter().step_by(2).all(|d| d == 1));
        // Each start sorts after the previous shard's last term and at or before its own
        // first term (what the script's lookup relies on), compared as bytes.
        let manifest: serde_json::Value = serde_json::from_slice(&idx.files[0].1).unwrap();
        let starts = manifest["starts"].as_array().unwrap();
        let mut last: Option<String> = None;
        for (i, st) in starts.iter().enumerate() {
            let st = st.as_str().unwrap();
            let digest = &manifest["digests"].as_str().unwrap()[i * 8..i * 8 + 8];
            let name = format!("search/s/{}-{digest}.gz", hex(st));
            let gz = &idx.files.iter().find(|(p, _)| *p == name).unwrap().1;
            let v: BTreeMap<String, serde_json::Value> =
                serde_json::from_slice(&gunzip(gz)).unwrap();
            let (first, end) = (v.keys().next().unwrap(), v.keys().last().unwrap());
            assert!(st.as_bytes() <= first.as_bytes(), "{st} > {first}");
            if let Some(l) = &last {
                assert!(l.as_bytes() < st.as_bytes(), "{l} >= {st}");
            }
            last = Some(end.clone());
        }
        // Every term is in the shard the starts point to.
        for w in [
            "alpha0",
            "alpine399",
            "word17",
            "word250",
            "über3",
            "東京42",
        ] {
            let v: serde_json::Value = serde_json::from_slice(&gunzip(shard_of(&idx, w))).unwrap();
            assert!(v.get(w).is_some(), "{w}");
        }
    }

    #[test]
    fn cuts_depend_on_what_is_near_them_only() {
        // 3,000 units of varied sizes; one grows, one is added, one removed.
        let names: Vec<String> = (0..3000).map(|i| format!("t{i:05}")).collect();
        let sizes: Vec<usize> = (0..3000).map(|i| 20 + (i * 7919) % 400).collect();
        let runs = |units: &[(&str, usize)]| {
            let r = cut_runs(units.iter().copied(), 4096, 8192);
            // The cut positions, by the name of the unit that starts each run.
            let mut at = 0;
            r.iter()
                .map(|n| {
                    let name = units[at].0.to_string();
                    at += n;
                    name
                })
                .collect::<std::collections::BTreeSet<String>>()
        };
        let base: Vec<(&str, usize)> = names.iter().map(|n| &**n).zip(sizes.clone()).collect();
        let before = runs(&base);
        assert!(before.len() > 100, "{}", before.len());
        let mut edited = base.clone();
        edited[1000].1 += 300;
        edited.remove(2000);
        edited.insert(500, ("t00499x", 200));
        let after = runs(&edited);
        let moved = before.symmetric_difference(&after).count();
        assert!(moved <= 8, "{moved} of {} cuts moved", before.len());
        // Nothing over the cap but single units.
        let r = cut_runs(edited.iter().copied(), 4096, 8192);
        let mut at = 0;
        for n in r {
            let size: usize = edited[at..at + n].iter().map(|u| u.1).sum();
            assert!(size <= 8192 || n == 1);
            at += n;
        }
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
