//! The output is a function of the sources alone: the same site built cold on one thread and
//! cold on four (each with its own fresh cache, from copies of the site in different folders),
//! and warm on top of the first build, gives byte-identical files, every one of them. Parallel
//! rendering, hash-map order, the cache or the site's location leaking into the output would
//! show here as the first file that differs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common::{stderr, Site};
use crate::images::png;

/// A site shaped unlike the example: three sections of different kinds (a paginated journal
/// sorted by date, a lab of page bundles with images and covers, a talks section sorted by
/// weight), a root page, tags shared across sections, code blocks in several languages, a
/// footnote and a table, and search on with code indexed.
fn site() -> Site {
    let s = Site {
        dir: tempfile::tempdir().unwrap(),
    };
    s.write(
        "folio.toml",
        "title = \"Deterministic Dunes\"\nbase_url = \"https://dunes.example/sub\"\nauthor = \"Ödön Ünal\"\ndescription = \"Sand, code and measurements\"\n\n[search]\nenabled = true\ninclude_code = true\n\n[extra]\nmenu = [{ name = \"Journal\", url = \"/journal/\" }, { name = \"Lab\", url = \"/lab/\" }]\n",
    );
    s.write(
        "content/_index.md",
        "+++\ntitle = \"Dunes\"\n+++\nNotes from the field, *mostly* about sand.\n",
    );
    s.write(
        "content/colophon.md",
        "+++\ntitle = \"Colophon\"\n+++\nSet in whatever the browser has. Built twice, identically.\n",
    );
    // The theme's home lists `projects/`: present, with one entry, so the home has a list.
    s.write(
        "content/projects/_index.md",
        "+++\ntitle = \"Projects\"\nsort_by = \"date\"\n+++\n",
    );
    s.write(
        "content/projects/anemometer.md",
        "+++\ntitle = \"Anemometer\"\ndate = 2023-05-06\ntags = [\"hardware\", \"wind\"]\n[extra]\nfeatured = true\n+++\nA cup anemometer on a fence post.\n\n```c\nstatic volatile unsigned pulses;\nvoid isr(void) { pulses++; }\n```\n",
    );
    // A paginated journal: 9 entries, 2 per page, tags drawn from a small pool.
    s.write(
        "content/journal/_index.md",
        "+++\ntitle = \"Journal\"\nsort_by = \"date\"\npaginate_by = 2\n+++\nDated entries, newest first.\n",
    );
    let pool = ["wind", "sand", "rust", "measurement", "Émigré", "c++"];
    let langs = [
        ("rust", "fn grain(d: f64) -> f64 {\n    d * 0.5\n}"),
        ("python", "def grain(d):\n    return d / 2\n"),
        ("toml", "[dune]\nheight = 12\nslope = \"34°\""),
        ("bash", "for f in *.csv; do wc -l \"$f\"; done"),
    ];
    for i in 1..=9 {
        let tags: Vec<String> = (0..3)
            .map(|k| format!("\"{}\"", pool[(i * 7 + k * 5) % pool.len()]))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let (lang, code) = langs[i % langs.len()];
        s.write(
            &format!("content/journal/day-{i:02}.md"),
            &format!(
                "+++\ntitle = \"Day {i}: {}\"\ndate = 2024-0{}-1{}\ndescription = \"Entry {i} of the journal\"\ntags = [{}]\n+++\nWind from the {} at {i} m/s.[^n]\n\n<!-- more -->\n\n## Readings\n\n| hour | speed |\n|---:|---:|\n| 6 | {i}.{i} |\n| 18 | {} |\n\n```{lang}\n{code}\n```\n\n### Aside\n\nA `grain_{i}()` call and ~~nothing~~ more.\n\n[^n]: Measured at the ridge.\n",
                ["north", "east", "south", "west"][i % 4],
                1 + i % 9,
                i % 9,
                tags.join(", "),
                ["north", "east", "south", "west"][(i + 1) % 4],
                i * 3,
            ),
        );
    }
    // A lab of bundles: images in the text and a cover, beside a page with a shared tag.
    s.write(
        "content/lab/_index.md",
        "+++\ntitle = \"Lab\"\nsort_by = \"title\"\n+++\n",
    );
    s.write(
        "content/lab/sieve/index.md",
        "+++\ntitle = \"Sieve analysis\"\ndate = 2024-02-02\ntags = [\"sand\", \"measurement\"]\ncover = \"cover.png\"\n+++\nGrain sizes, sieved.\n\n![A histogram of grain sizes](hist.png \"Histogram\")\n\nAnd a smaller one: ![detail](detail.png)\n\n```json\n{\"mesh\": [63, 125, 250, 500]}\n```\n",
    );
    s.write_bytes("content/lab/sieve/cover.png", &png(900, 500));
    s.write_bytes("content/lab/sieve/hist.png", &png(1300, 700));
    s.write_bytes("content/lab/sieve/detail.png", &png(240, 160));
    s.write(
        "content/lab/ripples/index.md",
        "+++\ntitle = \"Ripples\"\ndate = 2024-03-03\ntags = [\"wind\", \"sand\"]\n+++\nRipple spacing against wind speed.\n\n![Ripples at dawn](dawn.png)\n\n```go\npackage ripples\n\nfunc Spacing(u float64) float64 { return 0.1 * u }\n```\n",
    );
    s.write_bytes("content/lab/ripples/dawn.png", &png(640, 480));
    // Talks ordered by weight, not date.
    s.write(
        "content/talks/_index.md",
        "+++\ntitle = \"Talks\"\nsort_by = \"weight\"\n+++\n",
    );
    for (w, t) in [
        (3, "Sand in the gears"),
        (1, "Wind tunnels on a budget"),
        (2, "Why dunes sing"),
    ] {
        s.write(
            &format!("content/talks/talk-{w}.md"),
            &format!(
                "+++\ntitle = \"{t}\"\nweight = {w}\ndate = 2022-0{w}-15\ntags = [\"talks\", \"wind\"]\n+++\nSlides and notes for *{t}*.\n\n1. Intro\n2. Measurements\n3. Questions\n"
            ),
        );
    }
    s
}

/// A copy of the site's sources (no output, no cache) in a new folder.
fn copy_sources(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in walkdir::WalkDir::new(from).into_iter().filter_entry(|e| {
        let n = e.file_name().to_string_lossy();
        e.depth() != 1 || !(n.starts_with('.') || n == "public")
    }) {
        let e = e.unwrap();
        let dest = to.path().join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
    to
}

/// `folio build -v` of `root` into `root/public` with `threads` rayon threads; returns stderr.
fn build(root: &Path, threads: usize) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["build", "-v", "--root"])
        .arg(root)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .current_dir(root)
        .output()
        .expect("run folio");
    assert!(
        out.status.success(),
        "build with {threads} thread(s) failed:\n{}",
        stderr(&out)
    );
    stderr(&out)
}

/// Panics naming the first file (in path order) that is missing from one side or differs.
fn assert_same(what: &str, a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) {
    let paths: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for p in paths {
        match (a.get(p), b.get(p)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => {
                let at = x
                    .iter()
                    .zip(y)
                    .position(|(c, d)| c != d)
                    .unwrap_or(x.len().min(y.len()));
                let show = |v: &[u8]| {
                    String::from_utf8_lossy(&v[at.saturating_sub(60)..(at + 60).min(v.len())])
                        .into_owned()
                };
                panic!(
                    "{what}: first differing file {p} (byte {at} of {} vs {}):\n  {:?}\n  {:?}",
                    x.len(),
                    y.len(),
                    show(x),
                    show(y)
                );
            }
            (x, _) => panic!(
                "{what}: first differing file {p}: only in the {} build",
                if x.is_some() { "first" } else { "second" }
            ),
        }
    }
}

/// The `M` of `rendered N templates, M from cache` in `folio build -v`'s report.
fn templates_from_cache(verbose: &str) -> usize {
    let line = verbose
        .lines()
        .find(|l| l.contains("templates,") && l.contains("from cache"))
        .unwrap_or_else(|| panic!("no template statistics in:\n{verbose}"));
    let before = line.split(" from cache").next().unwrap();
    before
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

#[test]
fn one_thread_four_threads_and_warm_builds_are_byte_identical() {
    let site = site();
    let one = copy_sources(site.root());
    let four = copy_sources(site.root());

    build(one.path(), 1);
    let cold_one = crate::common::snapshot(&one.path().join("public"));
    // The output is a real site: every section, paginated pages, tags, images and search.
    for f in [
        "index.html",
        "colophon/index.html",
        "journal/index.html",
        "journal/page/5/index.html",
        "lab/sieve/index.html",
        "talks/index.html",
        "tags/wind/index.html",
        "search/index.json",
    ] {
        assert!(cold_one.contains_key(f), "{f} missing from the build");
    }
    assert!(
        cold_one.keys().any(|k| k.ends_with(".webp")),
        "no image was converted"
    );
    assert!(cold_one
        .keys()
        .any(|k| k.starts_with("search/") && k != "search/index.json"));

    let verbose = build(four.path(), 4);
    assert_eq!(
        templates_from_cache(&verbose),
        0,
        "the second cold build found a cache:\n{verbose}"
    );
    let cold_four = crate::common::snapshot(&four.path().join("public"));
    assert_same("cold, 1 thread vs 4 threads", &cold_one, &cold_four);

    // Warm: the first copy again, its cache and previous output kept, on 4 threads.
    let verbose = build(one.path(), 4);
    assert!(
        templates_from_cache(&verbose) > 0,
        "the warm build used no cache:\n{verbose}"
    );
    let warm = crate::common::snapshot(&one.path().join("public"));
    assert_same("cold vs warm", &cold_one, &warm);
}
