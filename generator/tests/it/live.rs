//! Incremental rebuilds (`folio serve`'s engine, `folio::live::LiveSite`): after every kind of
//! edit, the site kept in memory must equal, byte for byte, a fresh full build of the same
//! sources — and the rebuild must have done only part of the work when only part changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use folio::live::{LiveSite, Rebuild};
use folio::site::{build, BuildOptions, Mode};

use crate::common::Site;

pub(crate) fn options(root: &Path) -> BuildOptions {
    let mut o = BuildOptions::new(root);
    o.mode = Mode::Memory;
    o
}

/// A fresh full build of the sources as they are now.
fn fresh(root: &Path) -> BTreeMap<String, Vec<u8>> {
    match build(&options(root)) {
        Ok(r) => r.files_in_memory,
        Err(d) => panic!("the fresh build failed:\n{d}"),
    }
}

/// Asserts the live site equals a fresh full build; names the first difference.
pub(crate) fn assert_fresh(live: &LiveSite, root: &Path, step: &str) {
    let want = fresh(root);
    let got = live.files();
    for (k, v) in &want {
        match got.get(k) {
            None => panic!("{step}: {k} is missing from the live site"),
            Some(g) if &g[..] != v.as_slice() => {
                let (g, w) = (String::from_utf8_lossy(g), String::from_utf8_lossy(v));
                let at = g
                    .bytes()
                    .zip(w.bytes())
                    .position(|(a, b)| a != b)
                    .unwrap_or(g.len().min(w.len()));
                let from = at.saturating_sub(80);
                panic!(
                    "{step}: {k} differs from a fresh build at byte {at}:\n live:  …{}…\n fresh: …{}…",
                    g.get(from..(at + 80).min(g.len())).unwrap_or(""),
                    w.get(from..(at + 80).min(w.len())).unwrap_or(""),
                );
            }
            Some(_) => {}
        }
    }
    for k in got.keys() {
        assert!(
            want.contains_key(k),
            "{step}: {k} is in the live site but not in a fresh build"
        );
    }
}

/// Rebuilds after `paths` changed and checks the result against a fresh build.
pub(crate) fn step(live: &mut LiveSite, site: &Site, paths: &[&str], what: &str) -> Rebuild {
    let changed: Vec<PathBuf> = paths.iter().map(|p| site.path(p)).collect();
    let r = live
        .rebuild(&changed)
        .unwrap_or_else(|d| panic!("{what}: rebuild failed:\n{d}"));
    assert_fresh(live, site.root(), what);
    r
}

/// Templates rendered by a full build of the site as it is now.
fn templates_in_all(site: &Site) -> usize {
    let mut l = LiveSite::new(options(site.root()));
    l.build_all().unwrap().rendered
}

fn page(title: &str, date: &str, tags: &[&str], body: &str) -> String {
    let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "+++\ntitle = {title:?}\ndate = {date}\ntags = [{}]\n+++\n{body}\n",
        tags.join(", ")
    )
}

/// The fixture site plus enough pages for pagination, and site templates that extend,
/// import and include each other, and a page that reads data files.
fn bigger_site() -> Site {
    let site = Site::new();
    site.write(
        "content/projects/_index.md",
        "+++\ntitle = \"Projects\"\nsort_by = \"date\"\npaginate_by = 4\n+++\nAll of them.\n",
    );
    for i in 1..=14 {
        site.write(
            &format!("content/projects/p{i:02}.md"),
            &page(
                &format!("Project {i}"),
                &format!("2023-{:02}-{:02}", 1 + i % 12, 1 + i),
                &[if i % 2 == 0 { "even" } else { "odd" }, "rust"],
                &format!("Project number {i}.\n\n## Details\n\nMore about {i}.\n\n```rust\nfn p{i}() {{}}\n```"),
            ),
        );
    }
    site.write(
        "templates/layout.html",
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{% block title %}{{ config.title }}{% endblock %}</title><link rel=stylesheet href=\"{{ asset(path='css/site.css') }}\"></head><body>{% block content %}{% endblock %}</body></html>",
    );
    site.write(
        "templates/page.html",
        "{% extends \"layout.html\" %}{% import \"macros/m.html\" as m %}{% block title %}{{ page.title }}{% endblock %}{% block content %}<h1>{{ page.title }}</h1>{{ m::note() }}{{ page.content | safe }}{% if page.lower %}<a href=\"{{ page.lower.path }}\">{{ page.lower.title }}</a>{% endif %}{% include [\"partials/extra.html\"] ignore missing %}{% endblock %}",
    );
    site.write(
        "templates/macros/m.html",
        "{% macro note() %}{% include \"partials/note.html\" %}{% endmacro %}",
    );
    site.write("templates/partials/note.html", "<p class=note>note v1</p>");
    site.write(
        "templates/facts.html",
        "{% extends \"layout.html\" %}{% block content %}{% set f = load_data(path=\"facts.toml\") %}{% set t = load_data(path=\"talks.csv\") %}<p>{{ f.motto }}</p><ul>{% for r in t %}<li>{{ r.title }}</li>{% endfor %}</ul>{% endblock %}",
    );
    site.write(
        "content/facts.md",
        "+++\ntitle = \"Facts\"\ntemplate = \"facts.html\"\n+++\n",
    );
    site.write("data/facts.toml", "motto = \"Measure twice\"\n");
    site.write("data/talks.csv", "title\nFirst talk\n");
    site
}

#[test]
fn every_kind_of_edit_gives_what_a_full_build_gives() {
    let site = bigger_site();
    let mut live = LiveSite::new(options(site.root()));
    let first = live.build_all().unwrap_or_else(|d| panic!("{d}"));
    assert!(first.full);
    assert_fresh(&live, site.root(), "first build");
    let total = first.rendered;
    assert!(total > 25, "{total} templates");

    // Nothing changed: nothing rendered, nothing reported.
    let r = step(&mut live, &site, &[], "no change");
    assert_eq!(r.rendered, 0);
    assert!(r.changed.is_empty() && r.removed.is_empty());

    // A page body.
    site.write(
        "content/projects/p07.md",
        &page(
            "Project 7",
            "2023-08-08",
            &["odd", "rust"],
            "Project number 7, edited.\n\n## Details\n\nMore.",
        ),
    );
    let r = step(&mut live, &site, &["content/projects/p07.md"], "page body");
    assert!(
        r.changed.contains(&"projects/p07/index.html".to_string()),
        "{r:?}"
    );
    assert!(!r.full);
    assert!(
        r.rendered * 3 < total,
        "{} of {total} rendered for one body edit",
        r.rendered
    );

    // Front matter: the title (listed on section and tag pages, and by the neighbour).
    site.write(
        "content/projects/p07.md",
        &page("Seventh", "2023-08-08", &["odd", "rust"], "Edited."),
    );
    let r = step(&mut live, &site, &["content/projects/p07.md"], "title");
    assert!(
        r.changed.iter().any(|p| p.starts_with("tags/odd/")),
        "{:?}",
        r.changed
    );
    assert!(r.rendered * 2 < total);

    // Tags: a new tag page appears, one disappears.
    site.write(
        "content/projects/p07.md",
        &page("Seventh", "2023-08-08", &["brand-new", "rust"], "Edited."),
    );
    let r = step(&mut live, &site, &["content/projects/p07.md"], "tags");
    assert!(r.changed.contains(&"tags/brand-new/index.html".to_string()));

    // The date: the page moves in the section's order and across its list pages.
    site.write(
        "content/projects/p07.md",
        &page("Seventh", "2025-01-01", &["brand-new", "rust"], "Edited."),
    );
    step(&mut live, &site, &["content/projects/p07.md"], "date");

    // Draft: the page goes away, then comes back.
    site.write(
        "content/projects/p07.md",
        "+++\ntitle = \"Seventh\"\ndate = 2025-01-01\ndraft = true\n+++\nEdited.\n",
    );
    let r = step(&mut live, &site, &["content/projects/p07.md"], "draft");
    assert!(
        r.removed.contains(&"projects/p07/index.html".to_string()),
        "{r:?}"
    );
    site.write(
        "content/projects/p07.md",
        &page("Seventh", "2025-01-01", &["rust"], "Back."),
    );
    step(&mut live, &site, &["content/projects/p07.md"], "undraft");

    // Add, delete, rename.
    site.write(
        "content/projects/p15.md",
        &page("Fifteen", "2024-06-01", &["rust"], "New."),
    );
    let r = step(&mut live, &site, &["content/projects/p15.md"], "add a page");
    assert!(r.changed.contains(&"projects/p15/index.html".to_string()));
    site.remove("content/projects/p03.md");
    let r = step(
        &mut live,
        &site,
        &["content/projects/p03.md"],
        "delete a page",
    );
    assert!(r.removed.contains(&"projects/p03/index.html".to_string()));
    std::fs::rename(
        site.path("content/projects/p04.md"),
        site.path("content/projects/four.md"),
    )
    .unwrap();
    let r = step(
        &mut live,
        &site,
        &["content/projects/p04.md", "content/projects/four.md"],
        "rename a page",
    );
    assert!(r.removed.contains(&"projects/p04/index.html".to_string()));
    assert!(r.changed.contains(&"projects/four/index.html".to_string()));

    // A bundle page's image, and a bundle renamed (a folder).
    site.write(
        "content/projects/beta/cover.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"2\"/>",
    );
    step(
        &mut live,
        &site,
        &["content/projects/beta/cover.svg"],
        "bundle file",
    );
    std::fs::rename(
        site.path("content/projects/beta"),
        site.path("content/projects/gamma"),
    )
    .unwrap();
    let r = step(
        &mut live,
        &site,
        &["content/projects/beta", "content/projects/gamma"],
        "rename a bundle",
    );
    assert!(r.removed.contains(&"projects/beta/index.html".to_string()));

    // A template reached through extends → import → macro → include: only the pages that use
    // page.html are rendered again.
    let pages_using_page_html = live
        .files()
        .keys()
        .filter(|k| k.starts_with("projects/") && k.ends_with("/index.html") && !k.contains("page/"))
        .count()
        - 1 // projects/index.html itself
        + 1; // about
    site.write("templates/partials/note.html", "<p class=note>note v2</p>");
    let r = step(
        &mut live,
        &site,
        &["templates/partials/note.html"],
        "included template",
    );
    assert_eq!(
        r.rendered, pages_using_page_html,
        "exactly the pages whose template reaches the partial"
    );
    assert!(
        r.changed
            .iter()
            .all(|p| p.starts_with("projects/") || p.starts_with("about/")),
        "{:?}",
        r.changed
    );

    // A template that `ignore missing` names appears, then goes.
    site.write("templates/partials/extra.html", "<aside>extra</aside>");
    let r = step(
        &mut live,
        &site,
        &["templates/partials/extra.html"],
        "add a template",
    );
    assert_eq!(r.rendered, pages_using_page_html);
    site.remove("templates/partials/extra.html");
    step(
        &mut live,
        &site,
        &["templates/partials/extra.html"],
        "delete a template",
    );

    // The layout: everything built from it.
    site.write(
        "templates/layout.html",
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{% block title %}{% endblock %}</title><link rel=stylesheet href=\"{{ asset(path='css/site.css') }}\"></head><body class=v2>{% block content %}{% endblock %}</body></html>",
    );
    let r = step(&mut live, &site, &["templates/layout.html"], "layout");
    assert_eq!(
        r.rendered,
        pages_using_page_html + 1,
        "page.html users and facts"
    );

    // Data files: only the page that loads them.
    site.write("data/facts.toml", "motto = \"Cut once\"\n");
    let r = step(&mut live, &site, &["data/facts.toml"], "TOML data");
    assert_eq!(r.rendered, 1);
    assert_eq!(r.changed, vec!["facts/index.html".to_string()]);
    site.write("data/talks.csv", "title\nFirst talk\nSecond talk\n");
    let r = step(&mut live, &site, &["data/talks.csv"], "CSV data");
    assert_eq!(r.rendered, 1);
    site.write("data/unused.json", "{\"a\": 1}");
    let r = step(&mut live, &site, &["data/unused.json"], "unread data");
    assert_eq!(r.rendered, 0);

    // Static files: copied, nothing rendered.
    site.write_bytes("static/img/new.png", b"\x89PNG not really");
    let r = step(
        &mut live,
        &site,
        &["static/img/new.png"],
        "add a static file",
    );
    assert_eq!(r.rendered, 0);
    assert_eq!(r.changed, vec!["img/new.png".to_string()]);
    assert!(!r.css_only);
    site.write_bytes("static/img/new.png", b"\x89PNG changed");
    let r = step(
        &mut live,
        &site,
        &["static/img/new.png"],
        "edit a static file",
    );
    assert_eq!(r.changed, vec!["img/new.png".to_string()]);
    site.remove("static/img/new.png");
    let r = step(
        &mut live,
        &site,
        &["static/img/new.png"],
        "remove a static file",
    );
    assert_eq!(r.removed, vec!["img/new.png".to_string()]);

    // A stylesheet: its hashed URL changes in every page that links it, and nothing else.
    site.write("static/css/site.css", "body { color: #123; }\n");
    let r = step(
        &mut live,
        &site,
        &["static/css/site.css"],
        "override the stylesheet",
    );
    assert!(r.css_only, "{r:?}");
    assert_eq!(r.css_renames.len(), 1, "{:?}", r.css_renames);
    site.write("static/css/site.css", "body { color: #456; }\n");
    let r = step(
        &mut live,
        &site,
        &["static/css/site.css"],
        "edit the stylesheet",
    );
    assert!(r.css_only);
    assert!(r.changed.iter().any(|p| p.ends_with(".html")));

    // folio.toml: everything.
    site.write(
        "folio.toml",
        &crate::common::CONFIG.replace("Test site", "Renamed site"),
    );
    let r = step(&mut live, &site, &["folio.toml"], "folio.toml");
    assert!(r.full);
    assert_eq!(r.rendered, templates_in_all(&site));

    // Paths the build never reads change nothing.
    site.write("notes.txt", "scratch");
    let r = step(&mut live, &site, &["notes.txt"], "unrelated file");
    assert_eq!(r.rendered, 0);
    assert!(r.changed.is_empty());
}

#[test]
fn a_broken_edit_keeps_the_last_good_site_and_a_fix_recovers() {
    let site = bigger_site();
    let mut live = LiveSite::new(options(site.root()));
    live.build_all().unwrap_or_else(|d| panic!("{d}"));
    let good: BTreeMap<String, Arc<[u8]>> = live.files().clone();

    let cases: [(&str, &str, usize, usize); 4] = [
        // file, broken text, line, column
        (
            "content/projects/p05.md",
            "+++\ntitle = \"Five\"\ndate = 2023-05-05\ntags = \"rust\"\n+++\nBody.\n",
            4,
            8,
        ),
        (
            "templates/partials/note.html",
            "<p>\n{% if %}{% endif %}\n",
            2,
            7,
        ),
        ("data/facts.toml", "motto = \"Cut once\"\nbad = \n", 2, 7),
        ("data/talks.csv", "title,year\nA,1\nB\n", 3, 1),
    ];
    for (file, broken, line, col) in cases {
        let before = std::fs::read_to_string(site.path(file)).unwrap();
        site.write(file, broken);
        let err = live
            .rebuild(&[site.path(file)])
            .expect_err(&format!("{file}: a broken edit must fail"));
        let d = err
            .errors()
            .into_iter()
            .find(|d| d.path.ends_with(file))
            .unwrap_or_else(|| panic!("{file}: no error names it:\n{err}"));
        assert_eq!(d.line, Some(line), "{file}: {d}");
        if file.ends_with(".md") {
            assert_eq!(d.column, Some(col), "{file}: {d}");
        } else {
            assert!(d.column.is_some(), "{file}: {d}");
        }
        assert!(
            live.files().len() == good.len()
                && live
                    .files()
                    .iter()
                    .all(|(k, v)| good.get(k).is_some_and(|g| g[..] == v[..])),
            "{file}: a failed rebuild must leave the files untouched"
        );
        // Another, unrelated edit while it is still broken must fail too (the broken file is
        // read again, not forgotten).
        let err = live
            .rebuild(&[site.path("content/about.md")])
            .expect_err("still broken");
        assert!(err.errors().iter().any(|d| d.path.ends_with(file)));
        site.write(file, &before);
        let r = live
            .rebuild(&[site.path(file)])
            .unwrap_or_else(|d| panic!("{file}: the fix must build:\n{d}"));
        assert!(
            r.changed.is_empty() && r.removed.is_empty(),
            "{file}: {r:?}"
        );
        assert_fresh(&live, site.root(), &format!("{file} fixed"));
    }

    // A render error (a template calling an unknown function) is located too.
    site.write("templates/partials/note.html", "<p>\n{{ nope(x=1) }}</p>");
    let err = live
        .rebuild(&[site.path("templates/partials/note.html")])
        .expect_err("render error");
    let d = err.errors()[0];
    assert!(d.path.ends_with("templates/partials/note.html"), "{d}");
    assert_eq!(d.line, Some(2), "{d}");
    site.write("templates/partials/note.html", "<p class=note>note v1</p>");
    live.rebuild(&[site.path("templates/partials/note.html")])
        .unwrap_or_else(|d| panic!("{d}"));
    assert_fresh(&live, site.root(), "render error fixed");
}

/// Copies what a build reads from the repository's example site.
fn copy_example(to: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for entry in folio::live::SOURCES {
        let from = repo.join(entry);
        if from.is_file() {
            std::fs::copy(&from, to.join(entry)).unwrap();
            continue;
        }
        if !from.is_dir() {
            continue;
        }
        for e in walkdir::WalkDir::new(&from) {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(repo).unwrap();
            let dest = to.join(rel);
            if e.file_type().is_dir() {
                std::fs::create_dir_all(&dest).unwrap();
            } else if e.file_type().is_file() {
                std::fs::copy(e.path(), &dest).unwrap();
            }
        }
    }
}

fn edit(root: &Path, rel: &str, f: impl Fn(&str) -> String) -> PathBuf {
    let p = root.join(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let new = f(&text);
    assert_ne!(new, text, "{rel}: the edit must change something");
    std::fs::write(&p, new).unwrap();
    p
}

#[test]
fn the_example_site_stays_equal_to_a_full_build() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_example(root);
    let mut live = LiveSite::new(options(root));
    let first = live.build_all().unwrap_or_else(|d| panic!("{d}"));
    assert_fresh(&live, root, "example: first build");
    let total = first.rendered;

    let minirt = "content/projects/minirt/index.md";
    let p = edit(root, minirt, |t| {
        format!("{t}\n\nOne more paragraph, written live.\n")
    });
    let r = live.rebuild(&[p]).unwrap_or_else(|d| panic!("{d}"));
    assert_fresh(&live, root, "example: page body");
    assert!(r.rendered < total, "{} of {total}", r.rendered);
    assert!(r
        .changed
        .contains(&"projects/minirt/index.html".to_string()));

    let p = edit(root, "data/cv.toml", |t| {
        format!("{t}\n# a comment changes no value\n")
    });
    let r = live.rebuild(&[p]).unwrap_or_else(|d| panic!("{d}"));
    assert_fresh(&live, root, "example: data comment");
    assert_eq!(r.rendered, 0, "same data, nothing to render");

    // The example site's theme is part of what it is: a missing theme is a failure, not a
    // step skipped.
    assert!(
        root.join("themes/folio/templates/page.html").is_file(),
        "the example site has no themes/folio/templates/page.html"
    );
    // An edit that renders (an HTML comment would be minified away, and the output would be
    // the same whether or not the pages using the template were rebuilt).
    let p = edit(root, "themes/folio/templates/page.html", |t| {
        t.replacen(
            "{% block content %}",
            "{% block content %}<p class=live-edit>Edited live.</p>",
            1,
        )
    });
    let r = live.rebuild(&[p]).unwrap_or_else(|d| panic!("{d}"));
    assert_fresh(&live, root, "example: theme template");
    assert!(r.rendered < total, "{} of {total}", r.rendered);
    let page = "projects/minirt/index.html";
    assert!(r.changed.contains(&page.to_string()), "{r:?}");
    assert!(
        String::from_utf8_lossy(&live.files()[page]).contains("Edited live."),
        "the edit is not on {page}"
    );

    let css = "themes/folio/static/css/site.css";
    let p = edit(root, css, |t| {
        format!("{t}\n.live-test {{ color: red; }}\n")
    });
    let r = live.rebuild(&[p]).unwrap_or_else(|d| panic!("{d}"));
    assert_fresh(&live, root, "example: theme stylesheet");
    assert!(r.css_only, "{r:?}");

    let p = edit(root, "folio.toml", |t| format!("{t}\n# a comment\n"));
    let r = live.rebuild(&[p]).unwrap_or_else(|d| panic!("{d}"));
    assert!(r.full);
    assert_fresh(&live, root, "example: folio.toml");
}

/// The caches a rebuild keeps (front matter by file text, markdown by file, page summaries,
/// parsed templates, a section's page list digested for `get_section`) must notice every
/// edit, including edits the watcher never reported and edits that keep a file's size.
#[test]
fn edits_nobody_reported_and_same_size_edits_are_seen() {
    let site = bigger_site();
    site.write(
        "templates/index.html",
        "{% set s = get_section(path=\"projects/_index.md\") %}<ul>{% for p in s.pages %}<li>{{ p.title }} {{ p.word_count }}</li>{% endfor %}</ul>",
    );
    let mut live = LiveSite::new(options(site.root()));
    live.build_all().unwrap_or_else(|d| panic!("{d}"));
    assert_fresh(&live, site.root(), "first build");
    let unreported = |live: &mut LiveSite, what: &str| -> Rebuild {
        let r = live
            .rebuild(&[])
            .unwrap_or_else(|d| panic!("{what}: rebuild failed:\n{d}"));
        assert_fresh(live, site.root(), what);
        r
    };

    // Front matter, same size: the title shows on the page, its lists and the home page.
    let before = site.read("content/projects/p07.md");
    site.write(
        "content/projects/p07.md",
        &before.replace("Project 7", "Project Z"),
    );
    let r = unreported(&mut live, "title, same size, unreported");
    for out in [
        "projects/p07/index.html",
        "index.html",
        "tags/odd/index.html",
    ] {
        assert!(r.changed.contains(&out.to_string()), "{out}: {r:?}");
    }

    // The body, same size: the page, and the word count the home page lists (through
    // get_section, whose result is compared by digest).
    let before = site.read("content/projects/p03.md");
    site.write(
        "content/projects/p03.md",
        &before.replace("Project number 3.", "Projectnumber 3.."),
    );
    let r = unreported(&mut live, "body, same size, unreported");
    assert!(r.changed.contains(&"index.html".to_string()), "{r:?}");
    assert!(
        r.changed.contains(&"projects/p03/index.html".to_string()),
        "{r:?}"
    );

    // A section's front matter, same size: its list pages are cut differently.
    let before = site.read("content/projects/_index.md");
    site.write(
        "content/projects/_index.md",
        &before.replace("paginate_by = 4", "paginate_by = 5"),
    );
    unreported(&mut live, "paginate_by, same size, unreported");

    // A template reached through a macro's include, same size.
    site.write("templates/partials/note.html", "<p class=note>note v2</p>");
    let r = unreported(&mut live, "included template, same size, unreported");
    assert!(r.rendered > 0 && !r.changed.is_empty(), "{r:?}");

    // A cover's dimensions: the summary's cover fields (on list pages) change.
    site.write(
        "content/projects/beta/cover.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"30\" viewBox=\"0 0 40 30\"/>",
    );
    step(
        &mut live,
        &site,
        &["content/projects/beta/cover.svg"],
        "cover dimensions",
    );

    // Nothing changed since: nothing rendered.
    let r = unreported(&mut live, "no change");
    assert_eq!(r.rendered, 0, "{r:?}");
}

// ---- issue 16: the pages handed over before the build ends ----

/// A rebuild through `rebuild_with`: the files handed over early (if they were), and the result.
fn rebuild_early(
    live: &mut LiveSite,
    root: &Path,
    rel: &str,
) -> (Option<folio::live::Files>, Rebuild) {
    let mut early = None;
    let r = live
        .rebuild_with(&[root.join(rel)], &mut |_, files| {
            early = Some(files.clone())
        })
        .unwrap_or_else(|d| panic!("{rel}: {d}"));
    assert_eq!(early.is_some(), r.early.is_some(), "{rel}");
    (early, r)
}

#[test]
fn pages_are_handed_over_early_only_when_nothing_after_them_changes_how_they_are_served() {
    let site = Site::new();
    let root = site.root();
    let mut live = LiveSite::new(options(root));
    live.build_all().unwrap();

    // A body edit: handed over with the new page (and every file a page needs); the files
    // made afterwards are the only difference from the finished build, which equals a fresh one.
    site.write(
        "content/projects/alpha.md",
        &site
            .read("content/projects/alpha.md")
            .replace("Body with", "A changed body with"),
    );
    let (early, r) = rebuild_early(&mut live, root, "content/projects/alpha.md");
    let early = early.expect("a body edit is handed over early");
    assert_fresh(&live, root, "body edit");
    let page = "projects/alpha/index.html";
    assert!(String::from_utf8_lossy(&early[page]).contains("A changed body with"));
    for (k, v) in live.files() {
        if k.ends_with(".html") || k.starts_with("css/") || k == "_folio/edge.json" {
            assert_eq!(early.get(k), Some(v), "{k}: served early as it ends up");
        }
    }
    let e = r.early.as_ref().unwrap();
    assert!(e.ready.changed.iter().any(|f| f == page), "{:?}", e.ready);
    assert!(!e.rest.changed.iter().any(|f| f == page), "announced twice");

    // A stylesheet edit renames the (content-hashed) sheet: the early site, the previous
    // files overlaid with the new ones, could not say the old name is gone, so the rebuild is
    // announced once, finished, with the rename the tabs swap in place.
    site.write("static/extra.css", "body { margin: 1px; }\n");
    live.rebuild(&[root.join("static/extra.css")]).unwrap();
    site.write("static/extra.css", "body { margin: 2px; }\n");
    let (early, r) = rebuild_early(&mut live, root, "static/extra.css");
    assert!(early.is_none(), "a stylesheet edit: not handed over early");
    assert!(r.css_only && r.css_renames.len() == 1, "{r:?}");
    assert_fresh(&live, root, "stylesheet edit");

    // New inline code (a template with an inline script): the CSP hashes change, so nothing
    // is handed over before the headers are.
    site.write(
        "templates/page.html",
        "{% extends \"base.html\" %}{% block content %}<script>window.x = 1;</script>{{ page.content | safe }}{% endblock content %}",
    );
    let (early, _) = rebuild_early(&mut live, root, "templates/page.html");
    assert!(early.is_none(), "new inline code: not handed over early");
    assert_fresh(&live, root, "inline script");

    // A page added, then removed: other pages exist, so the whole build comes first.
    site.write(
        "content/projects/gamma.md",
        "+++\ntitle = \"Gamma\"\ndate = 2024-05-06\n+++\nNew.\n",
    );
    let (early, _) = rebuild_early(&mut live, root, "content/projects/gamma.md");
    assert!(early.is_none(), "a page added: not handed over early");
    assert_fresh(&live, root, "page added");
    site.remove("content/projects/gamma.md");
    let (early, _) = rebuild_early(&mut live, root, "content/projects/gamma.md");
    assert!(early.is_none(), "a page removed: not handed over early");
    assert_fresh(&live, root, "page removed");

    // A broken edit: nothing handed over, the last good site kept.
    let before = live.files().clone();
    site.write("content/about.md", "+++\ntitle = \"About\n+++\nx\n");
    let mut early = false;
    assert!(live
        .rebuild_with(&[root.join("content/about.md")], &mut |_, _| early = true)
        .is_err());
    assert!(!early, "a failed build hands nothing over");
    assert_eq!(live.files(), &before);
}
// ---- end issue 16 ----
