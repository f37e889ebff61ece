//! The rendered-page cache of `folio build` (`.folio/cache/pages.bin`) through the real
//! binary: a warm build serves every page from it and gives the cold build's bytes, an edit
//! replaces the entries it changed (the file does not grow), nothing is left beside it (no
//! spill or temporary file), `folio check` leaves it as it was, and a damaged file is only
//! a cold cache.

use std::path::Path;

use crate::common::{stderr, Site};

/// (templates rendered now, templates served from the cache), from `folio build -v`.
fn rendered(site: &Site) -> (usize, usize) {
    let out = site.folio(&["build", "-v"]);
    let err = stderr(&out);
    assert!(out.status.success(), "build failed:\n{err}");
    let line = err
        .lines()
        .find(|l| l.trim_start().starts_with("rendered ") && l.contains(" templates"))
        .unwrap_or_else(|| panic!("no `rendered … templates` line in:\n{err}"));
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    (nums[0], nums[1])
}

/// The keys of the entries of a page cache file (its layout: `FOLIOPG3`, then per entry a
/// 32-byte key, a little-endian u32 length, a 16-byte check and the bytes).
fn entries(path: &Path) -> Vec<[u8; 32]> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"FOLIOPG3");
    let (mut i, mut keys) = (8, Vec::new());
    while i < b.len() {
        let key: [u8; 32] = b[i..i + 32].try_into().unwrap();
        let len = u32::from_le_bytes(b[i + 32..i + 36].try_into().unwrap()) as usize;
        i += 52 + len;
        assert!(i <= b.len(), "an entry runs past the end of the file");
        keys.push(key);
    }
    keys
}

/// Nothing in `.folio/cache` but the cache files themselves.
fn assert_only_caches(site: &Site) {
    let mut names: Vec<String> = std::fs::read_dir(site.path(".folio/cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The other caches (code highlighting, markdown bodies, search index parts).
    names.retain(|n| !["highlight.bin", "markdown.bin", "search.bin"].contains(&n.as_str()));
    assert_eq!(names, ["pages.bin"], "left in .folio/cache");
}

/// A blog of eleven posts, paginated by four, with two tags and a code block each.
fn site() -> Site {
    let s = Site::new();
    s.write(
        "content/log/_index.md",
        "+++\ntitle = \"Log\"\nsort_by = \"date\"\npaginate_by = 4\n+++\nEntries.\n",
    );
    for i in 1..=11 {
        let tag = if i % 3 == 0 { "hardware" } else { "notes" };
        s.write(
            &format!("content/log/e{i:02}.md"),
            &format!(
                "+++\ntitle = \"Entry {i}\"\ndate = 2022-02-{i:02}\ntags = [\"{tag}\", \"log\"]\n+++\nDay {i}.\n\n```python\nprint({i} * {i})\n```\n"
            ),
        );
    }
    s
}

#[test]
fn a_warm_build_is_served_from_the_page_cache_and_an_edit_replaces_its_entries() {
    let site = site();
    let cache = site.path(".folio/cache/pages.bin");
    let (cold_n, cold_hits) = rendered(&site);
    assert_eq!(cold_hits, 0, "a cold build found pages in an empty cache");
    assert!(cold_n > 11, "{cold_n} templates");
    let cold = site.snapshot();
    let cold_entries = entries(&cache);
    assert_eq!(
        cold_entries.len(),
        cold_n,
        "one entry per rendered template"
    );
    assert_only_caches(&site);

    // `folio check` renders everything but keeps nothing.
    let before = std::fs::read(&cache).unwrap();
    let out = site.folio(&["check"]);
    assert!(out.status.success(), "check failed:\n{}", stderr(&out));
    assert_eq!(
        std::fs::read(&cache).unwrap(),
        before,
        "check changed the cache"
    );
    assert_only_caches(&site);

    // Unchanged: every template from the cache, the same bytes, the file untouched.
    assert_eq!(rendered(&site), (0, cold_n));
    assert_eq!(
        site.snapshot(),
        cold,
        "warm build differs from the cold one"
    );
    assert_eq!(
        std::fs::read(&cache).unwrap(),
        before,
        "an all-hit build rewrote the cache"
    );

    // A body edit: that page misses; the file keeps one entry per template (the old entry
    // of the edited page is gone, its new one is in).
    site.write(
        "content/log/e05.md",
        "+++\ntitle = \"Entry 5\"\ndate = 2022-02-05\ntags = [\"notes\", \"log\"]\n+++\nDay 5, rewritten.\n\n```python\nprint('five')\n```\n",
    );
    let (now, hits) = rendered(&site);
    assert_eq!(now + hits, cold_n);
    assert!(
        (1..=3).contains(&now),
        "{now} rendered, {hits} from the cache"
    );
    let warm = site.snapshot();
    assert!(String::from_utf8_lossy(&warm["log/e05/index.html"]).contains("rewritten"));
    let after = entries(&cache);
    assert_eq!(after.len(), cold_n, "the cache grew or lost entries");
    assert_ne!(after, cold_entries);
    assert_only_caches(&site);

    // What the cache served equals rendering everything again.
    std::fs::remove_file(&cache).unwrap();
    assert_eq!(rendered(&site), (cold_n, 0));
    assert_eq!(
        site.snapshot(),
        warm,
        "cache-served pages differ from rendered ones"
    );
}

#[test]
fn a_damaged_page_cache_is_a_cold_cache() {
    let site = site();
    let (n, _) = rendered(&site);
    let cold = site.snapshot();
    let cache = site.path(".folio/cache/pages.bin");
    let bytes = std::fs::read(&cache).unwrap();
    // The last entry cut short: every other entry is still served.
    std::fs::write(&cache, &bytes[..bytes.len() - 5]).unwrap();
    assert_eq!(rendered(&site), (1, n - 1));
    assert_eq!(site.snapshot(), cold);
    assert_eq!(
        entries(&cache).len(),
        n,
        "the damaged entry was rendered and kept again"
    );
    // Not a page cache at all.
    std::fs::write(&cache, b"not a cache").unwrap();
    assert_eq!(rendered(&site), (n, 0));
    assert_eq!(site.snapshot(), cold);
    assert_only_caches(&site);
}

#[test]
fn a_byte_flipped_on_disk_in_a_cache_costs_a_render_never_a_wrong_page() {
    let site = site();
    rendered(&site);
    let cold = site.snapshot();
    // Each cache that holds a page's text (the rendered pages, the markdown bodies): one byte
    // of "Day 7." changed in place, so the file still parses and only the check can tell.
    for cache in ["pages.bin", "markdown.bin"] {
        let path = site.path(&format!(".folio/cache/{cache}"));
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(6)
            .position(|w| w == b"Day 7.")
            .unwrap_or_else(|| panic!("{cache} holds no page text"));
        bytes[at + 4] = b'8';
        std::fs::write(&path, &bytes).unwrap();
        let out = site.folio(&["build"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            site.snapshot(),
            cold,
            "a damaged entry of {cache} was served"
        );
    }
}
