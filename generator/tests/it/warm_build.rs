//! Warm builds through the real `folio` binary: an unchanged site gives the same bytes as the
//! cold build, files that did not change are hard-linked from the previous output (same
//! inode) instead of written again, a failed build leaves the previous output as it was, and
//! no staging or old output folder is left behind.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use folio::site::{build, BuildOptions, Mode};

use crate::common::{stderr, Site};

/// Every file under `dir`: path → inode.
fn inodes(dir: &Path) -> BTreeMap<String, u64> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                e.metadata().unwrap().ino(),
            )
        })
        .collect()
}

/// A full build, in memory, of a copy of the site's sources (no cache, no previous output).
fn fresh(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let copy = tempfile::tempdir().unwrap();
    for e in walkdir::WalkDir::new(root).into_iter().filter_entry(|e| {
        // Not the output, the caches, nor a staging or old output folder beside them.
        let n = e.file_name().to_string_lossy();
        e.depth() != 1 || !(n.starts_with('.') || n == "public")
    }) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap();
        let to = copy.path().join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
    let mut o = BuildOptions::new(copy.path());
    o.mode = Mode::Memory;
    build(&o)
        .unwrap_or_else(|d| panic!("fresh build failed:\n{d}"))
        .files_in_memory
}

/// Nothing but `public` (and the sources) beside the output: no staging or old folder.
fn assert_nothing_left(site: &Site) {
    let left: Vec<String> = std::fs::read_dir(site.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("folio-new") || n.contains(".old"))
        .collect();
    assert!(left.is_empty(), "left beside the output: {left:?}");
}

/// A site of two sections with a static file, a bundle image and a data-driven page.
fn site() -> Site {
    let s = Site::new();
    s.write(
        "content/writing/_index.md",
        "+++\ntitle = \"Writing\"\nsort_by = \"date\"\npaginate_by = 2\ngenerate_feeds = true\n+++\n",
    );
    for i in 1..=5 {
        s.write(
            &format!("content/writing/w{i}.md"),
            &format!("+++\ntitle = \"Essay {i}\"\ndate = 2021-0{i}-10\ntags = [\"essay\"]\n+++\nOpening {i}.\n\n<!-- more -->\n\nThe rest of essay {i}.\n"),
        );
    }
    s.write("static/files/notes.txt", "plain notes\n");
    s.write_bytes("static/img/dot.bin", &[0u8, 1, 2, 3, 255]);
    s
}

#[test]
fn a_warm_build_equals_the_cold_one_and_links_what_did_not_change() {
    let site = site();
    site.build_ok();
    let cold = site.snapshot();
    let cold_inodes = inodes(&site.path("public"));
    assert_eq!(cold, fresh(site.root()), "cold build");

    site.build_ok();
    assert_eq!(
        site.snapshot(),
        cold,
        "warm build differs from the cold one"
    );
    assert_eq!(
        inodes(&site.path("public")),
        cold_inodes,
        "unchanged files were written again instead of linked"
    );
    assert_nothing_left(&site);

    // One body edit: that page is a new file; every other file keeps its inode.
    site.write(
        "content/writing/w3.md",
        "+++\ntitle = \"Essay 3\"\ndate = 2021-03-10\ntags = [\"essay\"]\n+++\nOpening 3.\n\n<!-- more -->\n\nA rewritten rest.\n",
    );
    site.build_ok();
    let after = site.snapshot();
    assert_eq!(after, fresh(site.root()), "after a body edit");
    let now = inodes(&site.path("public"));
    let changed: Vec<&String> = now
        .iter()
        .filter(|(k, ino)| cold_inodes.get(*k) != Some(*ino))
        .map(|(k, _)| k)
        .collect();
    assert!(
        changed.iter().any(|k| *k == "writing/w3/index.html"),
        "{changed:?}"
    );
    for (k, ino) in &now {
        if cold.get(k) == after.get(k) {
            assert_eq!(
                Some(ino),
                cold_inodes.get(k),
                "{k} is unchanged but not linked"
            );
        } else {
            assert_ne!(
                Some(ino),
                cold_inodes.get(k),
                "{k} changed but kept its inode"
            );
        }
    }
    // The previous output's files were not written through: the old page, still linked
    // nowhere else, is gone, and no file holds the old text.
    assert!(
        !String::from_utf8_lossy(&after["writing/w3/index.html"]).contains("The rest of essay 3")
    );
    // The section's own feed follows the edit too.
    assert!(String::from_utf8_lossy(&after["writing/atom.xml"]).contains("A rewritten rest"));
    assert_nothing_left(&site);
}

#[test]
fn a_failed_build_after_a_warm_build_leaves_the_output_as_it_was() {
    let site = site();
    site.build_ok();
    site.build_ok();
    let before = site.snapshot();
    let before_inodes = inodes(&site.path("public"));

    site.write(
        "content/writing/w2.md",
        "+++\ntitle = \"Essay 2\"\ndate = 2021-02-10\n+++\nNew text, then a link to [nowhere](@/writing/missing.md).\n",
    );
    assert_build_fails_and_keeps(&site, "w2.md", &before, &before_inodes);

    // Fixed, the next build links from the output the failed one left untouched.
    site.write(
        "content/writing/w2.md",
        "+++\ntitle = \"Essay 2\"\ndate = 2021-02-10\n+++\nNew text.\n",
    );
    site.build_ok();
    assert_eq!(site.snapshot(), fresh(site.root()));
}

/// A site unlike the one above: a bundle with an image and code, a page with a site
/// shortcode and a figure of a static image, a page rendered from a data file by a site
/// template, static files (a stylesheet is renamed by its hash).
fn rich_site() -> Site {
    let s = Site::new();
    s.write(
        "content/lab/_index.md",
        "+++\ntitle = \"Lab\"\nsort_by = \"title\"\n+++\nExperiments.\n",
    );
    s.write(
        "content/lab/run/index.md",
        "+++\ntitle = \"A run\"\n+++\nThe plot:\n\n![Plot of the run](plot.png)\n\n```python\nprint(\"run\")\n```\n\n{% note(kind=\"tip\") %}Measure twice.{% end %}\n",
    );
    s.write_bytes("content/lab/run/plot.png", &crate::images::png(64, 32));
    s.write(
        "content/lab/bench.md",
        "+++\ntitle = \"Bench\"\n+++\nStatus: {{ badge(text=\"new\") }}\n\n{{ figure(src=\"/img/photo.png\", caption=\"The rig\") }}\n\n```rust\nfn bench() -> u32 { 42 }\n```\n",
    );
    s.write(
        "templates/shortcodes/badge.html",
        "<span class=\"badge\">{{ text }}</span>",
    );
    s.write(
        "content/people.md",
        "+++\ntitle = \"People\"\ntemplate = \"people.html\"\n+++\n",
    );
    s.write(
        "templates/people.html",
        "{% set d = load_data(path=\"people.toml\") %}<!doctype html><html lang=\"en\"><title>{{ page.title }}</title><ul>{% for p in d.people %}<li>{{ p.name }}</li>{% endfor %}</ul></html>\n",
    );
    s.write(
        "data/people.toml",
        "[[people]]\nname = \"Ada\"\n[[people]]\nname = \"Brian\"\n",
    );
    s.write_bytes("static/img/photo.png", &crate::images::png(48, 48));
    s.write("static/files/readme.txt", "read me\n");
    s.write("static/css/extra.css", "p { margin: 0 }\n");
    s
}

/// `folio build -v`, which must succeed; its stderr.
fn build_verbose(site: &Site) -> String {
    let out = site.folio(&["build", "-v"]);
    assert!(out.status.success(), "build failed:\n{}", stderr(&out));
    stderr(&out)
}

/// The "rendered N markdown bodies, M reused" line of `folio build -v`.
fn bodies_rendered(verbose: &str) -> usize {
    let line = verbose
        .lines()
        .find(|l| l.contains("markdown bodies"))
        .unwrap_or_else(|| panic!("no markdown line in:\n{verbose}"));
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

/// A change to make to a site: what it is, the change, and an output file that shows it.
type Step = (&'static str, Box<dyn Fn(&Site)>, &'static str);

#[test]
fn warm_builds_of_a_site_with_images_static_and_data_equal_full_builds() {
    let site = rich_site();
    let first = build_verbose(&site);
    assert!(bodies_rendered(&first) >= 5, "{first}");
    let cold = site.snapshot();
    assert_eq!(cold, fresh(site.root()), "cold build");
    assert!(cold.contains_key("people/index.html"));
    assert!(String::from_utf8_lossy(&cold["people/index.html"]).contains("Brian"));
    let cold_inodes = inodes(&site.path("public"));
    let search_cache = || {
        std::fs::metadata(site.path(".folio/cache/search.bin"))
            .and_then(|m| m.modified())
            .expect("the search index is cached")
    };
    let indexed = search_cache();

    // Unchanged: no body rendered again, the search index not made again (its cache not
    // rewritten), every file the same one.
    let warm = build_verbose(&site);
    assert_eq!(bodies_rendered(&warm), 0, "{warm}");
    assert_eq!(search_cache(), indexed, "the search index was made again");
    assert_eq!(
        site.snapshot(),
        cold,
        "warm build differs from the cold one"
    );
    assert_eq!(inodes(&site.path("public")), cold_inodes);

    // Each change below reaches bodies through something other than their text; after
    // each, the warm build must equal a build from scratch.
    let steps: Vec<Step> = vec![
        (
            "a site shortcode's template",
            Box::new(|s: &Site| {
                s.write(
                    "templates/shortcodes/badge.html",
                    "<mark class=\"badge\">{{ text | upper }}</mark>",
                )
            }),
            "lab/bench/index.html",
        ),
        (
            "a bundle image of another size",
            Box::new(|s: &Site| {
                s.write_bytes("content/lab/run/plot.png", &crate::images::png(40, 30))
            }),
            "lab/run/index.html",
        ),
        (
            "a static image a figure shows",
            Box::new(|s: &Site| s.write_bytes("static/img/photo.png", &crate::images::png(30, 20))),
            "lab/bench/index.html",
        ),
        (
            "a data file",
            Box::new(|s: &Site| s.write("data/people.toml", "[[people]]\nname = \"Grace\"\n")),
            "people/index.html",
        ),
        (
            "the bundle's path (relative images resolve from it)",
            Box::new(|s: &Site| {
                s.write(
                    "content/lab/run/index.md",
                    "+++\ntitle = \"A run\"\nslug = \"first-run\"\n+++\nThe plot:\n\n![Plot of the run](plot.png)\n\n```python\nprint(\"run\")\n```\n\n{% note(kind=\"tip\") %}Measure twice.{% end %}\n",
                )
            }),
            "lab/first-run/index.html",
        ),
        (
            "a stylesheet",
            Box::new(|s: &Site| s.write("static/css/extra.css", "p { margin: 1px }\n")),
            "_headers",
        ),
    ];
    let mut before = cold;
    for (what, change, shows) in steps {
        change(&site);
        build_verbose(&site);
        let now = site.snapshot();
        assert_eq!(now, fresh(site.root()), "after changing {what}");
        assert!(
            now.get(shows) != before.get(shows),
            "{shows} should show the change of {what}"
        );
        before = now;
    }
    assert_nothing_left(&site);
}

#[test]
fn a_failed_warm_build_keeps_the_output_and_the_caches_good() {
    let site = rich_site();
    site.build_ok();
    build_verbose(&site);
    let before = site.snapshot();
    let before_inodes = inodes(&site.path("public"));

    // A body edit (rendered and cached) with a broken data file: the build fails.
    site.write(
        "content/lab/bench.md",
        "+++\ntitle = \"Bench\"\n+++\nRewritten: {{ badge(text=\"old\") }}\n",
    );
    site.write("data/people.toml", "[[people]]\nname = \n");
    assert_build_fails_and_keeps(&site, "people.toml:2:", &before, &before_inodes);

    // Fixed: the next build equals a build from scratch (nothing stale from the failed one).
    site.write("data/people.toml", "[[people]]\nname = \"Ada\"\n");
    build_verbose(&site);
    assert_eq!(site.snapshot(), fresh(site.root()));
    assert!(site
        .read("public/lab/bench/index.html")
        .contains("Rewritten"));
}

/// A build that must fail: exit 1, `needle` (the file, or file:line:) in its error, and the
/// output exactly as it was — the same bytes, the same inodes, nothing staged left beside it.
fn assert_build_fails_and_keeps(
    site: &Site,
    needle: &str,
    before: &BTreeMap<String, Vec<u8>>,
    before_inodes: &BTreeMap<String, u64>,
) {
    let out = site.folio(&["build"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(needle),
        "error naming {needle:?}: {}",
        stderr(&out)
    );
    assert_eq!(
        &site.snapshot(),
        before,
        "the failed build changed the output"
    );
    assert_eq!(&inodes(&site.path("public")), before_inodes);
    assert_nothing_left(site);
}

/// A build written to disk keeps each page's rendered body in a temporary file between the
/// markdown phase and the three things that read it (its page, the feed, the search index);
/// a build in memory keeps them in memory. Both must write the same bytes, for bodies of
/// every shape: non-ASCII text, highlighted code indexed for search, a subpath site whose
/// feed rewrites the bodies' links, an empty body.
#[test]
fn bodies_kept_on_disk_during_a_build_give_what_a_build_in_memory_gives() {
    let s = Site::new();
    s.write(
        "folio.toml",
        "title = \"Ünïcode notes\"\nbase_url = \"https://example.org/notes/\"\n[search]\ninclude_code = true\n",
    );
    s.write("content/_index.md", "+++\ntitle = \"Home\"\n+++\n");
    s.write(
        "content/log/_index.md",
        "+++\ntitle = \"Log\"\nsort_by = \"date\"\n+++\n",
    );
    for i in 1..=12 {
        let body = match i % 4 {
            0 => String::new(),
            1 => format!(
                "Grüße {i} — 日本語のテキスト {}.\n\n[Other](@/log/e{}.md)\n",
                "ß".repeat(i * 50),
                i % 12 + 1
            ),
            2 => format!("```rust\nfn entry_{i}() -> u32 {{ {i} }}\n```\n\nSee [home](/).\n"),
            _ => format!("## Part {i}\n\n{}\n", "word ".repeat(i * 400)),
        };
        s.write(
            &format!("content/log/e{i}.md"),
            &format!("+++\ntitle = \"Entry {i}\"\ndate = 2023-01-{i:02}\n+++\n{body}"),
        );
    }
    s.build_ok();
    let on_disk = s.snapshot();
    assert!(on_disk.contains_key("atom.xml") && on_disk.contains_key("search/index.json"));
    let feed = String::from_utf8_lossy(&on_disk["atom.xml"]).into_owned();
    assert!(
        feed.contains("Part 11") && feed.contains("Grüße 9"),
        "{feed}"
    );
    assert_eq!(on_disk, fresh(s.root()), "written to disk vs in memory");
    // Warm: bodies come from the markdown cache, and are written out again.
    s.build_ok();
    assert_eq!(s.snapshot(), on_disk, "warm build");
    assert_nothing_left(&s);
}
