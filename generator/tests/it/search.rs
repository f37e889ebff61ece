//! The full-text search index (`search/`, docs/search.md), read back here the way the theme's
//! script reads it: the manifest, the shards whose prefix starts a word, the postings of the
//! terms the word starts, the stores of the pages found.

use std::collections::BTreeMap;
use std::io::Read as _;

use serde_json::Value;

use crate::common::{stderr, Site};

/// The index of a built site, as a client sees it.
struct Index {
    public: std::path::PathBuf,
    manifest: Value,
    /// Files already read and inflated, by path under `search/`.
    read: std::cell::RefCell<BTreeMap<String, std::rc::Rc<Vec<u8>>>>,
}

/// Inflates a gzip-compressed file of the index.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip file");
    out
}

/// Lower-case hex of a string's UTF-8 (sorts as its bytes do).
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

impl Index {
    fn open(site: &Site) -> Index {
        let public = site.path("public");
        let manifest: Value = serde_json::from_str(&site.read("public/search/index.json")).unwrap();
        assert_eq!(manifest["version"], 3);
        Index {
            public,
            manifest,
            read: Default::default(),
        }
    }

    /// The folder of the store bundles (`p-<ids>`).
    fn stores_dir(&self) -> String {
        format!("p-{}", self.manifest["ids"].as_str().unwrap())
    }

    /// The shards' starts, in order.
    fn starts(&self) -> Vec<String> {
        self.manifest["starts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }

    /// A file of `search/`, inflated.
    fn file(&self, rel: &str) -> std::rc::Rc<Vec<u8>> {
        if let Some(f) = self.read.borrow().get(rel) {
            return f.clone();
        }
        let raw = std::fs::read(self.public.join("search").join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let f = std::rc::Rc::new(gunzip(&raw));
        self.read.borrow_mut().insert(rel.to_string(), f.clone());
        f
    }

    /// The shard files a client fetches for `word` (as the script does): the last whose start
    /// sorts at or before the word, and the following ones whose start the word begins (when
    /// there are 8 or fewer).
    fn shard_files_for(&self, word: &str) -> Vec<String> {
        let starts = self.starts();
        let digests = self.manifest["digests"].as_str().unwrap();
        assert_eq!(digests.len(), starts.len() * 8);
        let w = hex(word);
        let at = starts.iter().rposition(|s| hex(s) <= w);
        let mut picked: Vec<usize> = at.into_iter().collect();
        let from = at.map_or(0, |i| i + 1);
        let longer: Vec<usize> = (from..starts.len())
            .take_while(|&i| hex(&starts[i]).starts_with(&w))
            .collect();
        if longer.len() <= 8 {
            picked.extend(longer);
        }
        picked
            .into_iter()
            .map(|i| format!("s/{}-{}.gz", hex(&starts[i]), &digests[i * 8..i * 8 + 8]))
            .collect()
    }

    /// Page id → score for the pages holding a term that `word` starts.
    fn lookup(&self, word: &str) -> BTreeMap<u64, u64> {
        let mut found = BTreeMap::new();
        for f in self.shard_files_for(word) {
            let shard: BTreeMap<String, Vec<u64>> = serde_json::from_slice(&self.file(&f)).unwrap();
            for (term, postings) in shard.iter().filter(|(t, _)| t.starts_with(word)) {
                let mut id = 0;
                assert_eq!(postings.len() % 2, 0, "{term}: pairs of id and weight");
                for pair in postings.chunks(2) {
                    id += pair[0];
                    *found.entry(id).or_insert(0) += pair[1];
                }
            }
        }
        found
    }

    /// The bundle file holding page `id`'s store, and the id of its first page.
    fn bundle_of(&self, id: u64) -> (String, u64) {
        let mut first = 0;
        for n in self.manifest["stores"].as_array().unwrap() {
            let n = n.as_u64().unwrap();
            if id < first + n {
                let ids = self.manifest["ids"].as_str().unwrap();
                return (format!("p-{ids}/{first}-{}.gz", first + n - 1), first);
            }
            first += n;
        }
        panic!("no bundle holds {id}")
    }

    fn store(&self, id: u64) -> Value {
        let (file, first) = self.bundle_of(id);
        let text = self.file(&file);
        let line = std::str::from_utf8(&text)
            .unwrap()
            .split('\n')
            .nth((id - first) as usize)
            .unwrap();
        serde_json::from_str(line).unwrap()
    }

    /// The paths of the pages `word` finds.
    fn paths(&self, word: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .lookup(word)
            .keys()
            .map(|&id| self.store(id)["u"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }
}

/// A blog and a notes section, pages unlike the example portfolio's.
fn two_section_site() -> Site {
    let site = Site::new();
    site.write(
        "content/blog/_index.md",
        "+++\ntitle = \"Field Notes\"\nsort_by = \"date\"\n+++\n",
    );
    site.write(
        "content/blog/tides.md",
        "+++\ntitle = \"Reading the tides\"\ndate = 2023-06-01\n+++\nThe harbour master keeps a \
         ledger of every quokkafish sighting &amp; the moon's phase.\n\n### Méthode\n\nCounting by \
         lantern light.\n\n```python\nzanzibarvar = read_ledger()\n```\n\nInline `lanternfly` stays prose.\n",
    );
    site.write(
        "content/blog/quokkafish.md",
        "+++\ntitle = \"Quokkafish, a retraction\"\ndate = 2023-07-01\n+++\nNot what it seemed.\n",
    );
    site
}

#[test]
fn a_word_only_in_one_body_is_found_in_its_shard_with_its_section_and_text() {
    let site = two_section_site();
    site.build_ok();
    let idx = Index::open(&site);
    // `ledger` is in one body only (and in a code block of the same page, left out).
    assert_eq!(idx.paths("ledger"), ["/blog/tides/"]);
    let (&id, _) = idx.lookup("ledger").iter().next().unwrap();
    let store = idx.store(id);
    assert_eq!(store["t"], "Reading the tides");
    assert_eq!(store["s"], "Field Notes");
    let text = store["x"].as_str().unwrap();
    assert!(
        text.contains("every quokkafish sighting & the moon"),
        "{text}"
    );
    // Headings are indexed (accents kept, lower-cased) and their anchors are not text.
    assert_eq!(idx.paths("méthode"), ["/blog/tides/"]);
    assert!(!text.contains('#'), "{text}");
    // A word is a prefix: `quokka` finds both pages, the title match first.
    let scores = idx.lookup("quokka");
    assert_eq!(scores.len(), 2);
    let best = scores.iter().max_by_key(|(_, s)| **s).unwrap().0;
    assert_eq!(idx.store(*best)["u"], "/blog/quokkafish/");
    // Pages of the default site are in too, sections with a body included.
    assert_eq!(idx.paths("welcome"), ["/"]);
    assert!(idx.manifest["docs"].as_u64().unwrap() >= 6);
}

#[test]
fn code_blocks_are_left_out_unless_include_code() {
    let site = two_section_site();
    site.build_ok();
    let idx = Index::open(&site);
    assert!(
        idx.paths("zanzibarvar").is_empty(),
        "code is out by default"
    );
    assert_eq!(
        idx.paths("lanternfly"),
        ["/blog/tides/"],
        "inline code is prose"
    );
    assert_eq!(idx.manifest["code"], false);
    let old_stores = idx.stores_dir();

    site.write(
        "folio.toml",
        &format!("{}\n[search]\ninclude_code = true\n", crate::common::CONFIG),
    );
    site.build_ok();
    let idx = Index::open(&site);
    assert_eq!(idx.paths("zanzibarvar"), ["/blog/tides/"]);
    assert_ne!(
        idx.stores_dir(),
        old_stores,
        "stores made with other settings get another folder"
    );
    assert!(
        !site.path(&format!("public/search/{old_stores}")).exists(),
        "the old folder is not in the new build"
    );
    let headers = site.read("public/_headers");
    assert!(
        headers.contains("/search/s/*\n  Cache-Control: public, max-age=31536000, immutable"),
        "{headers}"
    );
    assert!(
        !headers.contains("/search/p-"),
        "stores are revalidated: {headers}"
    );
}

#[test]
fn drafts_are_left_out_unless_built_with_drafts() {
    let site = two_section_site();
    site.write(
        "content/blog/unfinished.md",
        "+++\ntitle = \"Unfinished\"\ndraft = true\n+++\nThe word marmalization is a secret.\n",
    );
    site.build_ok();
    assert!(Index::open(&site).paths("marmalization").is_empty());
    let out = site.folio(&["build", "--drafts"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        Index::open(&site).paths("marmalization"),
        ["/blog/unfinished/"]
    );
}

#[test]
fn disabled_search_writes_no_index_and_no_search_box() {
    let site = two_section_site();
    site.write(
        "folio.toml",
        &format!("{}\n[search]\nenabled = false\n", crate::common::CONFIG),
    );
    let stdout = site.build_ok();
    assert!(!site.path("public/search").exists());
    assert!(!site.read("public/index.html").contains("data-search-index"));
    assert!(!stdout.contains("search index"), "{stdout}");
}

#[test]
fn the_summary_reports_the_index_size_and_the_page_links_to_the_index() {
    let site = two_section_site();
    let stdout = site.build_ok();
    let total: u64 = crate::common::snapshot(&site.path("public/search"))
        .values()
        .map(|b| b.len() as u64)
        .sum();
    let shown = format!("search index {:.1} KB", total as f64 / 1024.0);
    assert!(stdout.contains(&shown), "{stdout} should say {shown}");
    let home = site.read("public/index.html");
    assert!(
        home.contains("data-search-index=/search/index.json"),
        "{home}"
    );
    assert!(home.contains("data-search-script=/js/search."), "{home}");
}

#[test]
fn a_typo_in_the_search_table_is_an_error() {
    let site = two_section_site();
    site.write(
        "folio.toml",
        &format!("{}\n[search]\ninclude_cod = true\n", crate::common::CONFIG),
    );
    let out = site.folio(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("folio.toml:") && err.contains("include_code"),
        "{err}"
    );
}

/// A tiny deterministic generator of words, so thousands of pages share a vocabulary the way
/// real prose does (a few very common words, a long tail).
struct Words(u64);

impl Words {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn word(&mut self) -> String {
        const SYL: [&str; 16] = [
            "ka", "lo", "mi", "ter", "an", "su", "vel", "or", "en", "qua", "di", "po", "rus", "ex",
            "ni", "ba",
        ];
        // Zipf-like: small numbers far more often.
        let r = self.next() % 1000;
        let rank = (r * r * r / 1_000_000) + (self.next() % 3);
        let mut n = rank * 7919 + 13;
        let mut w = String::new();
        for _ in 0..(2 + rank % 3) {
            w.push_str(SYL[(n % 16) as usize]);
            n /= 16;
        }
        w
    }
}

/// A site of `pages` pages in six sections, each with a word no other page has
/// (`needle<i>`), the rest drawn from a shared vocabulary.
fn shelves_site(pages: usize) -> Site {
    let site = Site::new();
    let mut words = Words(0x9e37_79b9_7f4a_7c15);
    for s in 0..6 {
        site.write(
            &format!("content/s{s}/_index.md"),
            &format!("+++\ntitle = \"Shelf {s}\"\n+++\n"),
        );
    }
    for i in 0..pages {
        let body: Vec<String> = (0..60).map(|_| words.word()).collect();
        site.write(
            &format!("content/s{}/p{i}.md", i % 6),
            &format!(
                "+++\ntitle = \"Entry {i} {}\"\n+++\n## {}\n\n{} needle{i}\n",
                words.word(),
                words.word(),
                body.join(" ")
            ),
        );
    }
    site
}

#[test]
fn thousands_of_pages_fit_in_few_files_every_page_found_and_a_first_query_cheap() {
    const PAGES: usize = 3000;
    let site = shelves_site(PAGES);
    site.build_ok();
    let idx = Index::open(&site);
    assert!(idx.manifest["docs"].as_u64().unwrap() >= PAGES as u64);

    let files = crate::common::snapshot(&site.path("public/search"));
    // Not one file per page: shards and store bundles packed by size.
    assert!(
        files.len() * 10 < PAGES,
        "{} files under search/ for {PAGES} pages",
        files.len()
    );
    let biggest = files
        .iter()
        .filter(|(p, _)| p.starts_with("s/"))
        .map(|(p, b)| (gunzip(b).len(), p.clone()))
        .max()
        .unwrap();
    // Shards are cut at 32 KiB of JSON at most, unless one term's postings are bigger: the
    // most common term here is on every page (3,000 × "1,w,").
    assert!(biggest.0 <= 32 * 1024, "biggest shard {biggest:?}");

    // Every page is found by its own word, and by nothing but it, through the files as the
    // script reads them: manifest → shard → store bundle.
    for i in 0..PAGES {
        let word = format!("needle{i}");
        let hits: Vec<u64> = idx
            .lookup(&word)
            .into_iter()
            .filter(|(id, _)| {
                // `needle1` starts `needle10…` too: keep the page whose word is whole.
                let x = idx.store(*id)["x"].as_str().unwrap().to_string();
                x.split_whitespace().any(|w| w == word)
            })
            .map(|(id, _)| id)
            .collect();
        assert_eq!(hits.len(), 1, "{word}: {hits:?}");
        assert_eq!(
            idx.store(hits[0])["u"],
            format!("/s{}/p{i}/", i % 6),
            "{word}"
        );
    }

    // A first query for a rare word: the manifest, its shard(s), the bundles of the results.
    let word = "needle1234";
    let manifest_bytes = site.read("public/search/index.json").len();
    // Sizes as sent (the files are compressed already; the manifest as it is, uncompressed).
    let sent = |rel: &str| files[rel].len();
    let shard_bytes: usize = idx.shard_files_for(word).iter().map(|f| sent(f)).sum();
    let bundles: std::collections::BTreeSet<String> = idx
        .lookup(word)
        .keys()
        .map(|&id| idx.bundle_of(id).0)
        .collect();
    let store_bytes: usize = bundles.iter().map(|f| sent(f)).sum();
    let first_query = manifest_bytes + shard_bytes + store_bytes;
    let total: usize = files.values().map(Vec::len).sum::<usize>();
    eprintln!(
        "{PAGES} pages: index {total} B in {} files; first query {first_query} B (manifest {manifest_bytes}, shards {shard_bytes}, stores {store_bytes})",
        files.len()
    );
    assert!(
        first_query <= 64 * 1024,
        "a first query reads {first_query} B"
    );
    assert!(
        first_query * 50 < total,
        "a query reads a small part of the index"
    );
}

#[test]
fn at_thousands_of_pages_a_serve_edit_changes_few_files_and_equals_a_full_build() {
    const PAGES: usize = 2000;
    let site = shelves_site(PAGES);
    let mut live = live_site(&site);
    let served = served_index;
    let before = served(&live);

    // One page edited: a word replaced, a sentence added.
    let page = "content/s4/p1000.md";
    let text = site.read(page);
    site.write(
        page,
        &text.replace("needle1000", "needle1000 brandnewword and one more line"),
    );
    live.rebuild(&[site.path(page)])
        .unwrap_or_else(|d| panic!("{d}"));
    let after = served(&live);
    let changed: Vec<&String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    let gone = before.keys().filter(|k| !after.contains_key(*k)).count();
    eprintln!(
        "{PAGES} pages, one edited: {} of {} files new or changed, {gone} gone: {changed:?}",
        changed.len(),
        after.len()
    );
    // The manifest, the page's bundle, and the shards of the terms whose postings changed
    // (the new words, and `needle1000`'s neighbours when a cut moved): a handful.
    assert!(
        changed.len() <= 8 && gone <= 6,
        "{} changed, {gone} gone",
        changed.len()
    );
    assert!(changed.contains(&&"index.json".to_string()));
    assert_eq!(
        changed.iter().filter(|k| k.starts_with("p-")).count(),
        1,
        "{changed:?}"
    );

    // The same files as a full build of the edited site.
    site.build_ok();
    assert!(
        after == crate::common::snapshot(&site.path("public/search")),
        "serve's incremental index differs from a full build"
    );
    let idx = Index::open(&site);
    assert_eq!(idx.paths("brandnewword"), ["/s4/p1000/"]);

    // A second edit trades the page's heading word for another page's: two words other
    // pages share now list one page more or one fewer, beside terms of theirs that did not
    // change. Still what a full build gives.
    let heading = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("## "))
            .unwrap()
            .to_string()
    };
    let (own, other) = (
        heading(&site.read(page)),
        heading(&site.read("content/s3/p999.md")),
    );
    let text = site
        .read(page)
        .replace(&format!("## {own}"), &format!("## {other}"));
    site.write(page, &text);
    live.rebuild(&[site.path(page)])
        .unwrap_or_else(|d| panic!("{d}"));
    let again = served(&live);
    site.build_ok();
    assert!(
        again == crate::common::snapshot(&site.path("public/search")),
        "after a second edit, serve's index differs from a full build"
    );
    let idx = Index::open(&site);
    assert!(
        idx.paths(&other).contains(&"/s4/p1000/".to_string()),
        "{other}"
    );
}

/// A site of `pages` notes of generated prose (a shared vocabulary, one unique word each),
/// returned with the bytes of the visible text written (titles, headings, bodies).
fn prose_site(pages: usize, words_per_page: usize) -> (Site, usize) {
    let site = Site::new();
    let mut words = Words(0x2545_f491_4f6c_dd1d);
    let mut text = 0;
    site.write("content/log/_index.md", "+++\ntitle = \"Logbook\"\n+++\n");
    for i in 0..pages {
        let title = format!("Watch {i} {}", words.word());
        let heading = words.word();
        let body: Vec<String> = (0..words_per_page).map(|_| words.word()).collect();
        let body = format!("{} marker{i}", body.join(" "));
        text += title.len() + heading.len() + body.len();
        site.write(
            &format!("content/log/w{i:04}.md"),
            &format!("+++\ntitle = \"{title}\"\n+++\n## {heading}\n\n{body}\n"),
        );
    }
    (site, text)
}

/// Every file of `public/search/`, path → (bytes, inode).
fn search_files(site: &Site) -> BTreeMap<String, (Vec<u8>, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let dir = site.path("public/search");
    crate::common::snapshot(&dir)
        .into_iter()
        .map(|(rel, bytes)| {
            let ino = std::fs::metadata(dir.join(&rel)).unwrap().ino();
            (rel, (bytes, ino))
        })
        .collect()
}

fn bytes_only(files: &BTreeMap<String, (Vec<u8>, u64)>) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .map(|(k, (b, _))| (k.clone(), b.clone()))
        .collect()
}

/// `folio build` with the given rayon thread count, from scratch (no cache, no output).
fn cold_build_with_threads(site: &Site, threads: &str) -> BTreeMap<String, Vec<u8>> {
    let _ = std::fs::remove_dir_all(site.path(".folio"));
    let _ = std::fs::remove_dir_all(site.path("public"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["build", "--root"])
        .arg(site.root())
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    crate::common::snapshot(&site.path("public/search"))
}

#[test]
fn the_index_is_the_same_bytes_with_one_thread_or_four() {
    let (site, _) = prose_site(400, 80);
    let one = cold_build_with_threads(&site, "1");
    let four = cold_build_with_threads(&site, "4");
    // Enough shards and bundles for the threads to have work to share.
    let count = |p: &str| one.keys().filter(|k| k.starts_with(p)).count();
    assert!(count("s/") >= 3 && count("p-") >= 8, "{:?}", one.keys());
    assert!(one == four, "the index depends on the thread count");
}

#[test]
fn a_warm_build_rewrites_nothing_and_an_edit_only_the_files_it_touches() {
    let (site, _) = prose_site(150, 60);
    site.build_ok();
    let cold = search_files(&site);
    let cache = site.path(".folio/cache/search.bin");
    let cache_stamp = || {
        use std::os::unix::fs::MetadataExt as _;
        let m = std::fs::metadata(&cache).unwrap();
        (m.ino(), m.mtime(), m.mtime_nsec())
    };
    let stamp = cache_stamp();

    // Unchanged site: the same files, each one the previous output's (hard-linked, not
    // written), and nothing new in the cache (no page indexed, no shard compressed).
    site.build_ok();
    let warm = search_files(&site);
    assert_eq!(bytes_only(&warm), bytes_only(&cold));
    for (rel, (_, ino)) in &warm {
        assert_eq!(*ino, cold[rel].1, "{rel} was written again");
    }
    assert_eq!(cache_stamp(), stamp, "the search cache was rewritten");

    // One page's body edited: a new word in it, one of its words gone.
    let page = "content/log/w0042.md";
    let before = site.read(page);
    site.write(page, &before.replace("marker42", "zythumquartz"));
    site.build_ok();
    let edited = search_files(&site);
    let idx = Index::open(&site);
    assert_eq!(idx.paths("zythumquartz"), ["/log/w0042/"]);
    assert!(idx.paths("marker42").is_empty());
    let changed: Vec<&String> = edited
        .iter()
        .filter(|(rel, (_, ino))| cold.get(*rel).is_none_or(|(_, old)| old != ino))
        .map(|(rel, _)| rel)
        .collect();
    let shards_changed = changed.iter().filter(|r| r.starts_with("s/")).count();
    let stores_changed: Vec<&&String> = changed.iter().filter(|r| r.starts_with("p-")).collect();
    let shards_total = edited.keys().filter(|r| r.starts_with("s/")).count();
    // The page's store, and only the shards holding its words' postings: `ma…` (marker42 gone),
    // `zy…` (new) and those of the page's other words whose weight changed — none here.
    assert_eq!(stores_changed.len(), 1, "{stores_changed:?}");
    let (bundle, _) = idx.bundle_of(*idx.lookup("zythumquartz").keys().next().unwrap());
    assert_eq!(*stores_changed[0], &bundle);
    assert!(
        (1..=3).contains(&shards_changed),
        "{shards_changed} of {shards_total} shards rewritten: {changed:?}"
    );
    // The same index as a build from scratch.
    let warm_edit = bytes_only(&edited);
    let _ = std::fs::remove_dir_all(site.path(".folio"));
    site.build_ok();
    assert_eq!(bytes_only(&search_files(&site)), warm_edit);

    // Reverted: the first index again, byte for byte.
    site.write(page, &before);
    site.build_ok();
    assert_eq!(bytes_only(&search_files(&site)), bytes_only(&cold));
}

#[test]
fn under_serve_an_edit_and_its_revert_give_the_index_of_a_cold_build() {
    let (site, _) = prose_site(60, 40);
    site.build_ok();
    let cold = crate::common::snapshot(&site.path("public/search"));
    let mut live = live_site(&site);
    let served = served_index;
    assert_eq!(served(&live), cold, "serve and build write the same index");

    let page = "content/log/w0007.md";
    let before = site.read(page);
    site.write(
        page,
        &before.replace("marker7", "marker7 quillonbrass\n\n## Quillon notes"),
    );
    live.rebuild(&[site.path(page)])
        .unwrap_or_else(|d| panic!("{d}"));
    let edited = served(&live);
    assert_ne!(edited, cold);
    site.build_ok();
    assert_eq!(
        edited,
        crate::common::snapshot(&site.path("public/search")),
        "after an edit: the index of a cold build"
    );

    site.write(page, &before);
    live.rebuild(&[site.path(page)])
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(served(&live), cold, "after the revert: the first index");
}

#[test]
fn the_index_is_smaller_than_the_text_it_indexes() {
    let (site, text) = prose_site(200, 150);
    let stdout = site.build_ok();
    let files = crate::common::snapshot(&site.path("public/search"));
    let total: usize = files.values().map(Vec::len).sum();
    let stores: usize = files
        .iter()
        .filter(|(k, _)| k.starts_with("p-"))
        .map(|(_, b)| b.len())
        .sum();
    let shards: usize = files
        .iter()
        .filter(|(k, _)| k.starts_with("s/"))
        .map(|(_, b)| b.len())
        .sum();
    eprintln!(
        "200 pages, {text} B of text: index {total} B (stores {stores}, shards {shards}, {} files)",
        files.len()
    );
    // The stores hold the text (for excerpts), the shards one posting per page and word:
    // compressed, the whole index stays well under the text's own size (stores of raw text
    // alone would be as big as the text). Random syllables compress worse than prose: on the
    // bench corpus the index is a smaller part of the text still.
    assert!(total * 4 < text * 3, "index {total} B for {text} B of text");
    assert!(
        stdout.contains(&format!("search index {:.1} KB", total as f64 / 1024.0)),
        "{stdout}"
    );
}

#[test]
fn a_damaged_search_cache_is_ignored_and_the_index_is_the_same() {
    let (site, _) = prose_site(40, 30);
    site.build_ok();
    let cold = crate::common::snapshot(&site.path("public/search"));
    let cache = site.path(".folio/cache/search.bin");
    let good = std::fs::read(&cache).unwrap();
    // The file's framing (`.folio/cache`: an 8-byte format and a 4-byte layout tag, then key,
    // u32 length, 16-byte check, value) kept, one byte flipped inside every value: the file
    // still parses, no entry may be believed.
    let mut bad = good.clone();
    let mut i = 12;
    let mut values = 0;
    while i + 52 <= bad.len() {
        let len = u32::from_le_bytes(bad[i + 32..i + 36].try_into().unwrap()) as usize;
        let at = i + 52 + len / 2;
        bad[at] ^= 0x20;
        values += 1;
        i += 52 + len;
    }
    assert_eq!(i, bad.len(), "the file's framing was misread");
    assert!(values > 40, "{values} entries");
    std::fs::write(&cache, &bad).unwrap();
    site.build_ok();
    assert_eq!(crate::common::snapshot(&site.path("public/search")), cold);
    // Cut short: the same again.
    std::fs::write(&cache, &good[..good.len() / 3]).unwrap();
    site.build_ok();
    assert_eq!(crate::common::snapshot(&site.path("public/search")), cold);
}

/// `folio serve`'s engine on `site`, after its first build.
fn live_site(site: &Site) -> folio::live::LiveSite {
    let mut opts = folio::site::BuildOptions::new(site.root());
    opts.mode = folio::site::Mode::Memory;
    let mut live = folio::live::LiveSite::new(opts);
    live.build_all().unwrap_or_else(|d| panic!("{d}"));
    live
}

/// The search index `folio serve` serves, by path under `search/`.
fn served_index(live: &folio::live::LiveSite) -> BTreeMap<String, Vec<u8>> {
    live.files()
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("search/")?.to_string(), v.to_vec())))
        .collect()
}
