//! The full-text search index (`search/`, docs/search.md), read back here the way the theme's
//! script reads it: the manifest, the shards whose prefix starts a word, the postings of the
//! terms the word starts, the stores of the pages found.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::{stderr, Site};

/// The index of a built site, as a client sees it.
struct Index {
    public: std::path::PathBuf,
    manifest: Value,
}

impl Index {
    fn open(site: &Site) -> Index {
        let public = site.path("public");
        let manifest = serde_json::from_str(&site.read("public/search/index.json")).unwrap();
        Index { public, manifest }
    }

    fn dir(&self) -> &str {
        self.manifest["dir"].as_str().unwrap()
    }

    fn shards(&self) -> Vec<String> {
        self.manifest["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }

    fn file(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.public.join("search").join(self.dir()).join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// The shard files a client fetches for `word`: every shard whose prefix starts it.
    fn shard_files_for(&self, word: &str) -> Vec<String> {
        self.shards()
            .into_iter()
            .filter(|k| word.starts_with(k.as_str()))
            .map(|k| {
                let hex: String = k.bytes().map(|b| format!("{b:02x}")).collect();
                format!("t-{hex}.json")
            })
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

    fn store(&self, id: u64) -> Value {
        serde_json::from_slice(&self.file(&format!("p/{id}.json"))).unwrap()
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
    let old_dir = idx.dir().to_string();

    site.write(
        "folio.toml",
        &format!("{}\n[search]\ninclude_code = true\n", crate::common::CONFIG),
    );
    site.build_ok();
    let idx = Index::open(&site);
    assert_eq!(idx.paths("zanzibarvar"), ["/blog/tides/"]);
    assert_ne!(
        idx.dir(),
        old_dir,
        "a different index gets a different folder"
    );
    assert!(
        !site.path(&format!("public/search/{old_dir}")).exists(),
        "the old folder is not in the new build"
    );
    let headers = site.read("public/_headers");
    assert!(
        headers.contains(&format!(
            "/search/{}/*\n  Cache-Control: public, max-age=31536000, immutable",
            idx.dir()
        )),
        "{headers}"
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

#[test]
fn thousands_of_pages_keep_every_shard_small_and_a_first_query_cheap() {
    const PAGES: usize = 3000;
    let site = Site::new();
    let mut words = Words(0x9e37_79b9_7f4a_7c15);
    for s in 0..6 {
        site.write(
            &format!("content/s{s}/_index.md"),
            &format!("+++\ntitle = \"Shelf {s}\"\n+++\n"),
        );
    }
    for i in 0..PAGES {
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
    site.build_ok();
    let idx = Index::open(&site);
    assert!(idx.manifest["docs"].as_u64().unwrap() >= PAGES as u64);

    let dir = site.path(&format!("public/search/{}", idx.dir()));
    let shards = crate::common::snapshot(&dir);
    let biggest = shards
        .iter()
        .filter(|(p, _)| p.starts_with("t-"))
        .map(|(p, b)| (b.len(), p.clone()))
        .max()
        .unwrap();
    // Shards split at 12 KiB; one term's postings cannot split, and the most common term here
    // is on every page: 3,000 × "1,w," stays under the bound.
    assert!(biggest.0 <= 16 * 1024, "biggest shard {biggest:?}");

    // A first query for a rare word: the manifest, its shard(s), the stores of the results.
    let word = "needle1234";
    let found = idx.paths(word);
    assert_eq!(found, [format!("/s{}/p1234/", 1234 % 6)]);
    let manifest_bytes = site.read("public/search/index.json").len();
    let shard_bytes: usize = idx
        .shard_files_for(word)
        .iter()
        .map(|f| idx.file(f).len())
        .sum();
    let store_bytes: usize = idx
        .lookup(word)
        .keys()
        .map(|&id| idx.file(&format!("p/{id}.json")).len())
        .sum();
    let first_query = manifest_bytes + shard_bytes + store_bytes;
    let total: usize = shards.values().map(Vec::len).sum::<usize>() + manifest_bytes;
    eprintln!(
        "{PAGES} pages: index {total} B in {} files; first query {first_query} B (manifest {manifest_bytes}, shards {shard_bytes}, stores {store_bytes})",
        shards.len() + 1
    );
    assert!(
        first_query <= 40 * 1024,
        "a first query reads {first_query} B"
    );
    assert!(
        first_query * 50 < total,
        "a query reads a small part of the index"
    );
}
