//! Loading reads and parses content, data, templates and static files in parallel: the
//! output and the error report must not depend on the thread count (the real `folio`
//! binary run with `RAYON_NUM_THREADS` 1 and 4).

use std::process::{Command, Output};

use crate::common::{snapshot, stderr, Site};

/// `folio build` of `site` into `out` (relative to the site) with `threads` worker threads.
fn build_with_threads(site: &Site, threads: usize, out: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["build", "--root"])
        .arg(site.root())
        .arg("--output")
        .arg(site.path(out))
        .env("RAYON_NUM_THREADS", threads.to_string())
        .current_dir(site.root())
        .output()
        .expect("run folio")
}

/// Many small files of every kind, so that parallel readers interleave.
fn many_files() -> Site {
    let s = Site::new();
    s.write(
        "content/log/_index.md",
        "+++\ntitle = \"Log\"\nsort_by = \"date\"\npaginate_by = 7\n+++\n",
    );
    for i in 0..60 {
        s.write(
            &format!("content/log/entry-{i:02}.md"),
            &format!(
                "+++\ntitle = \"Entry {i}\"\ndate = 2023-{:02}-{:02}\ntags = [\"t{}\"]\n+++\nEntry {i} links to [the first](@/log/entry-00.md).\n\n```toml\nn = {i}\n```\n",
                1 + i % 12,
                1 + i % 28,
                i % 5
            ),
        );
    }
    for i in 0..20 {
        s.write(&format!("data/set-{i:02}.json"), &format!("{{\"n\": {i}}}"));
        s.write(&format!("static/notes/n{i:02}.txt"), &format!("note {i}\n"));
        s.write(
            &format!("static/css/part{i:02}.css"),
            &format!(".p{i} {{ margin: {i}px }}\n"),
        );
    }
    s
}

#[test]
fn the_output_is_the_same_with_one_thread_or_four() {
    let site = many_files();
    let one = build_with_threads(&site, 1, "out1");
    assert!(one.status.success(), "{}", stderr(&one));
    let four = build_with_threads(&site, 4, "out4");
    assert!(four.status.success(), "{}", stderr(&four));
    let (a, b) = (snapshot(&site.path("out1")), snapshot(&site.path("out4")));
    assert!(a.len() > 100, "{} files", a.len());
    assert_eq!(a, b, "output differs between 1 and 4 threads");
}

#[test]
fn the_same_errors_in_the_same_order_with_one_thread_or_four() {
    let site = many_files();
    // Broken files of every kind the loader reads, beside the many good ones.
    site.write(
        "content/log/entry-17.md",
        "+++\ntitle = \"Entry 17\"\ndate = 2023-13-40\n+++\nBad date.\n",
    );
    site.write(
        "content/log/entry-42.md",
        "+++\ntitle = \"Entry 42\"\ntags = [\"open\"\n+++\nUnclosed array.\n",
    );
    site.write("data/set-09.json", "{\"n\": 9,,}");
    site.write("templates/broken.html", "{% if x %}never closed");
    let mut reports = Vec::new();
    for threads in [1, 4, 1, 4] {
        let out = build_with_threads(&site, threads, "out");
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        reports.push(stderr(&out));
    }
    let first = &reports[0];
    for (needle, what) in [
        ("content/log/entry-17.md:3:", "the bad date, at its line"),
        ("content/log/entry-42.md:", "the unclosed array"),
        ("data/set-09.json:1:", "the data file"),
        ("templates/broken.html:", "the template"),
    ] {
        assert!(first.contains(needle), "{what} ({needle}) not in:\n{first}");
    }
    let order = |r: &str| -> Vec<usize> {
        ["entry-17.md", "entry-42.md", "set-09.json", "broken.html"]
            .iter()
            .map(|n| r.find(n).unwrap_or(usize::MAX))
            .collect()
    };
    let mut sorted = order(first);
    sorted.sort();
    assert_eq!(order(first), sorted, "errors not in file order:\n{first}");
    for r in &reports[1..] {
        assert_eq!(r, first, "the report depends on the thread count");
    }
    assert!(!site.path("out").exists(), "a failed build wrote output");
}
