//! The content model through the library: sections, sorting, pagination, bundles, drafts,
//! aliases, tags, summaries, data files, the highlight cache, `folio new` and `folio check`.

use std::collections::BTreeMap;

use folio::site::{build, BuildOptions, Mode};

use crate::common::{stderr, Site};

fn memory_build(site: &Site, drafts: bool) -> BTreeMap<String, String> {
    let mut o = BuildOptions::new(site.root());
    o.mode = Mode::Memory;
    o.drafts = drafts;
    o.minify = false;
    let r = build(&o).unwrap_or_else(|d| panic!("{d}"));
    r.files_in_memory
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

#[test]
fn sections_paginate_and_sort() {
    let site = Site::new();
    site.write(
        "content/projects/_index.md",
        "+++\ntitle = \"Projects\"\nsort_by = \"weight\"\npaginate_by = 4\n+++\n",
    );
    for i in 0..9 {
        site.write(
            &format!("content/projects/p{i}.md"),
            &format!("+++\ntitle = \"P{i}\"\nweight = {}\n+++\nText.\n", 100 - i),
        );
    }
    let files = memory_build(&site, false);
    // 11 pages (alpha, beta weight 0 first, then p8..p0) in 3 list pages
    assert!(files.contains_key("projects/index.html"));
    assert!(files.contains_key("projects/page/2/index.html"));
    assert!(files.contains_key("projects/page/3/index.html"));
    assert!(!files.contains_key("projects/page/4/index.html"));
    let p3 = &files["projects/page/3/index.html"];
    assert_eq!(
        p3.matches("class=\"card\"").count(),
        3,
        "11 pages, 4 per page: 3 on the last"
    );
    let first = &files["projects/index.html"];
    let (a, b) = (first.find(">Alpha<").unwrap(), first.find(">P8<").unwrap());
    assert!(a < b, "weight 0 sorts before weight 92");
    assert!(first.contains("Page 1 of 3"));
    assert!(first.contains("href=\"/projects/page/2/\""));
}

#[test]
fn date_sorting_puts_newest_first_and_neighbours_link() {
    let site = Site::new();
    let files = memory_build(&site, false);
    let list = &files["projects/index.html"];
    assert!(
        list.find(">Beta<").unwrap() < list.find(">Alpha<").unwrap(),
        "Beta (2024-03) is newer than Alpha (2024-01)"
    );
    let beta = &files["projects/beta/index.html"];
    assert!(
        beta.contains("href=\"/projects/alpha/\""),
        "next project link"
    );
}

#[test]
fn bundles_drafts_aliases_and_summaries() {
    let site = Site::new();
    site.write(
        "content/projects/draft.md",
        "+++\ntitle = \"Secret\"\ndraft = true\n+++\n",
    );
    site.write(
        "content/about.md",
        "+++\ntitle = \"About\"\naliases = [\"/me/\", \"old-about.html\"]\n+++\nHi.\n",
    );
    let files = memory_build(&site, false);
    assert!(
        files.contains_key("projects/beta/cover.svg"),
        "bundle file copied beside the page"
    );
    assert!(!files.contains_key("projects/draft/index.html"));
    assert!(
        memory_build(&site, true).contains_key("projects/draft/index.html"),
        "--drafts publishes drafts"
    );
    assert!(files["me/index.html"].contains("url=/about/"));
    assert!(
        files["old-about.html"].contains("rel=\"canonical\" href=\"https://test.example/about/\"")
    );
    assert!(files["_redirects"].contains("/me/ /about/ 301"));
    let list = &files["projects/index.html"];
    assert!(list.contains("The first"), "description in the card");
    let alpha = &files["projects/alpha/index.html"];
    assert!(alpha.contains("<h2 id=\"intro\">"));
    assert!(alpha.contains("href=\"#intro\""), "table of contents");
    let home = &files["index.html"];
    assert!(
        home.contains("href=\"/projects/alpha/#intro\""),
        "internal link resolved with its anchor"
    );
}

#[test]
fn tags_get_pages_and_an_index() {
    let site = Site::new();
    let files = memory_build(&site, false);
    let rust = &files["tags/rust/index.html"];
    assert!(rust.contains(">Alpha<") && rust.contains(">Beta<"));
    let cli = &files["tags/cli/index.html"];
    assert!(cli.contains(">Alpha<") && !cli.contains(">Beta<"));
    let index = &files["tags/index.html"];
    assert!(
        index.contains("href=\"/tags/cli/\">cli</a> <span class=\"n\">1 page</span>")
            && index.contains("href=\"/tags/rust/\">rust</a> <span class=\"n\">2 pages</span>"),
        "each tag links to its page with its count: {index}"
    );
}

#[test]
fn data_files_load_in_templates() {
    let site = Site::new();
    site.write(
        "data/talks.csv",
        "date,title\n2024-01-01,First talk\n2024-02-02,\"Second, with comma\"\n",
    );
    site.write("data/site.json", "{\"motto\": \"Measure twice\"}");
    site.write("data/cv.toml", "[person]\nname = \"Tess\"\n");
    site.write("templates/data.html", "{% set t = load_data(path=\"talks.csv\") %}{% set j = load_data(path=\"data/site.json\") %}{% set c = load_data(path=\"cv.toml\") %}{{ t | length }}|{{ t.1.title }}|{{ j.motto }}|{{ c.person.name }}");
    site.write(
        "content/data-page.md",
        "+++\ntitle = \"Data\"\ntemplate = \"data.html\"\n+++\n",
    );
    let files = memory_build(&site, false);
    assert_eq!(
        files["data-page/index.html"],
        "2|Second, with comma|Measure twice|Tess"
    );
}

#[test]
fn site_templates_override_the_theme_by_name() {
    let site = Site::new();
    site.write("templates/404.html", "custom not found");
    let files = memory_build(&site, false);
    assert_eq!(files["404.html"], "custom not found");
}

#[test]
fn second_build_highlights_nothing() {
    let site = Site::new();
    let first = site.folio(&["build", "-v"]);
    assert!(first.status.success());
    assert!(
        stderr(&first).contains("highlighted 1 code blocks, 0 from cache"),
        "{}",
        stderr(&first)
    );
    assert!(site.path(".folio/cache/highlight.bin").is_file());
    let second = site.folio(&["build", "-v"]);
    assert!(
        stderr(&second).contains("highlighted 0 code blocks, 1 from cache"),
        "{}",
        stderr(&second)
    );
}

#[test]
fn check_writes_nothing() {
    let site = Site::new();
    let out = site.folio(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no errors"));
    assert!(!site.path("public").exists());
}

#[test]
fn base_url_override_and_unminified_output() {
    let site = Site::new();
    let out = site.folio(&[
        "build",
        "--base-url",
        "https://preview.example/",
        "--no-minify",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let about = site.read("public/about/index.html");
    assert!(about.contains("<link rel=\"canonical\" href=\"https://preview.example/about/\">"));
    assert!(about.contains("\n"), "not minified");
    site.build_ok();
    assert!(
        site.read("public/about/index.html").len() < about.len(),
        "minified is smaller"
    );
}

#[test]
fn demos_are_resolved_for_the_terminal_origin() {
    let site = Site::new();
    site.write("content/projects/gamma/index.md", "+++\ntitle = \"Gamma\"\n[demo]\nworkdir = \"src\"\ncommand = \"./gamma --fast 'a b'\"\nbuild = \"make\"\ntimeout = 60\n+++\n");
    site.write(
        "content/projects/gamma/src/gamma.c",
        "int main(void) { return 0; }\n",
    );
    let demos = folio_content::demo::load(site.root()).unwrap();
    assert_eq!(demos.demos.len(), 1);
    let d = &demos.demos[0];
    assert_eq!(d.id, "gamma");
    assert_eq!(d.command, vec!["./gamma", "--fast", "a b"]);
    assert!(d.workdir.ends_with("content/projects/gamma/src") && d.workdir.is_absolute());
    assert_eq!(d.timeout.as_secs(), 60);
    assert_eq!(d.idle_timeout.as_secs(), 300);
    let files = memory_build(&site, false);
    assert!(
        !files.contains_key("projects/gamma/src/gamma.c"),
        "demo sources stay out of the public site"
    );

    site.write(
        "content/projects/gamma/index.md",
        "+++\ntitle = \"Gamma\"\n[demo]\nworkdir = \"../beta\"\n+++\n",
    );
    let err = folio_content::demo::load(site.root())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "content/projects/gamma/index.md:4:1: demo workdir \"../beta\" must be a folder inside"
        ),
        "{err}"
    );
}

#[test]
fn folio_new_makes_a_site_that_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my-site");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("new")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let b = std::process::Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("build")
        .arg("--root")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", stderr(&b));
    assert!(dir.join("public/projects/hello-folio/index.html").is_file());
    assert!(
        stderr(&b).is_empty(),
        "a new site builds without warnings: {}",
        stderr(&b)
    );
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("new")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "refuses a non-empty folder");
}

#[test]
fn warm_builds_reuse_pages_and_match_a_cold_build_exactly() {
    let site = Site::new();
    let first = site.folio(&["build", "-v"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let cold = site.snapshot();
    let warm = site.folio(&["build", "-v"]);
    assert!(
        stderr(&warm).contains("rendered 0 templates"),
        "{}",
        stderr(&warm)
    );
    assert_eq!(site.snapshot(), cold, "a warm build writes the same bytes");

    // Any input change is seen: a template, a page, a data file.
    site.write(
        "templates/404.html",
        "{% extends \"base.html\" %}{% block content %}gone{% endblock %}",
    );
    site.write(
        "content/projects/alpha.md",
        &site
            .read("content/projects/alpha.md")
            .replace("Summary here.", "A new summary."),
    );
    site.write("data/x.json", "[1]");
    let changed = site.folio(&["build", "-v"]);
    assert!(changed.status.success());
    assert!(
        !stderr(&changed).contains("rendered 0 templates"),
        "{}",
        stderr(&changed)
    );
    let warm_output = site.snapshot();
    std::fs::remove_dir_all(site.path(".folio")).unwrap();
    site.build_ok();
    assert_eq!(
        site.snapshot(),
        warm_output,
        "cached and uncached builds agree"
    );
    assert!(String::from_utf8_lossy(&warm_output["404.html"]).contains("gone"));
    assert!(
        String::from_utf8_lossy(&warm_output["projects/alpha/index.html"])
            .contains("A new summary.")
    );
}

#[test]
fn title_sorting_ignores_case() {
    let site = Site::new();
    site.write(
        "content/projects/_index.md",
        "+++\ntitle = \"Projects\"\nsort_by = \"title\"\n+++\n",
    );
    site.write(
        "content/projects/aardvark.md",
        "+++\ntitle = \"aardvark\"\ndate = 2020-01-01\n+++\n",
    );
    let files = memory_build(&site, false);
    let list = &files["projects/index.html"];
    let pos = |t: &str| {
        list.find(&format!(">{t}<"))
            .unwrap_or_else(|| panic!("{t} not listed"))
    };
    assert!(
        pos("aardvark") < pos("Alpha") && pos("Alpha") < pos("Beta"),
        "A→Z, case-insensitive"
    );
}
