//! Moving in from Zola and Hugo: `folio import` writes folio.toml from their configuration,
//! reporting what it left behind at its line, and the content builds as written, with every
//! tag and summary kept.

use crate::common::{stderr, Site};

/// A site folder with only the files given (no folio.toml).
fn bare(files: &[(&str, &str)]) -> Site {
    let s = Site {
        dir: tempfile::tempdir().unwrap(),
    };
    for (path, text) in files {
        s.write(path, text);
    }
    s
}

/// Lists every page's summary, to see that none was lost.
const SUMMARIES: &str = "{% for p in section.pages %}<div class=\"s\">{{ p.title }}: {{ p.summary | default(value='NONE') | safe }}</div>{% endfor %}";

fn import_and_build(site: &Site, from: &str) -> String {
    // Before the import, every command names it.
    let out = site.folio(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("run `folio import {from} ")),
        "{}",
        stderr(&out)
    );
    let out = site.folio(&["import", from, site.root().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    site.write("templates/section.html", SUMMARIES);
    let build = site.folio(&["build"]);
    assert!(build.status.success(), "{}", stderr(&build));
    stderr(&out)
}

#[test]
fn a_zola_site_moves_in_with_its_tags_and_summaries() {
    let site = bare(&[
        (
            "config.toml",
            "base_url = \"https://zola.example\"\ntitle = \"Zola site\"\ndescription = \"Mine\"\ncompile_sass = true\nbuild_search_index = false\ntaxonomies = [{ name = \"tags\" }, { name = \"series\" }]\n\n[markdown]\nhighlight_code = true\nhighlight_theme = \"monokai\"\n\n[extra]\nmenu = [{ name = \"Projects\", url = \"/projects/\" }]\n",
        ),
        ("content/_index.md", "+++\ntitle = \"Home\"\n+++\nHi.\n"),
        (
            "content/projects/_index.md",
            "+++\ntitle = \"Projects\"\nsort_by = \"date\"\ntransparent = true\n+++\n",
        ),
        (
            "content/projects/ray.md",
            "+++\ntitle = \"Ray\"\ndate = 2024-01-02\nupdated = 2024-02-01\n[taxonomies]\ntags = [\"C++\", \"graphics\"]\ncategories = [\"projects\"]\n+++\nA ray tracer.\n<!-- more -->\nThe rest.\n",
        ),
        (
            "content/projects/lex.md",
            "+++\ntitle = \"Lex\"\ndate = 2024-03-02\n[taxonomies]\ntags = [\"C\"]\n+++\nA lexer.\n\n<!-- more -->\n\nMore.\n",
        ),
    ]);
    let report = import_and_build(&site, "zola");
    for line in [
        "config.toml:4: warning: `compile_sass` not carried over",
        "config.toml:6: warning: `taxonomies` not carried over: taxonomy `series`",
        "config.toml:10: warning: `markdown.highlight_theme` not carried over",
    ] {
        assert!(report.contains(line), "{line:?} in:\n{report}");
    }
    assert!(!report.contains("build_search_index"), "{report}");
    let cfg = site.read("folio.toml");
    assert!(cfg.contains("base_url = \"https://zola.example\""), "{cfg}");
    // Zola's `build_search_index = false` is folio's search turned off: no index written.
    assert!(cfg.contains("[search]\nenabled = false"), "{cfg}");
    assert!(!site.path("public/search").exists());
    assert!(
        cfg.contains("extra.menu") && cfg.contains("Projects"),
        "{cfg}"
    );
    for tag in ["cpp", "graphics", "c"] {
        assert!(
            site.path(&format!("public/tags/{tag}/index.html"))
                .is_file(),
            "{tag}"
        );
    }
    let list = site.read("public/projects/index.html");
    assert!(list.contains("Ray: <p>A ray tracer."), "{list}");
    assert!(list.contains("Lex: <p>A lexer."), "{list}");
}

#[test]
fn a_hugo_site_moves_in_with_its_tags_and_summaries() {
    let site = bare(&[
        (
            "config.yaml",
            "baseURL: https://hugo.example/\nlanguageCode: en-us\ntitle: Hugo site\ntheme: ananke\npaginate: 5\nparams:\n  description: Mine\n  author: Hu Go\n  github: hugo\nmenu:\n  main:\n    - name: Projects\n      url: /projects/\nmarkup:\n  highlight:\n    style: monokai\n",
        ),
        ("content/_index.md", "---\ntitle: Home\n---\nHi.\n"),
        ("content/projects/_index.md", "---\ntitle: Projects\n---\n"),
        (
            "content/projects/ray.md",
            "---\ntitle: Ray\ndate: 2024-01-02T10:00:00Z\nlastmod: 2024-02-01\ntags: [\"C#\", graphics]\ncategories: [work]\n---\nA ray tracer.\n<!--more-->\nThe rest.\n",
        ),
        (
            "content/projects/lex.md",
            "---\ntitle: Lex\ndate: 2024-03-02\ntags:\n  - F#\nsummary: A lexer, summed up.\nkeywords: [x]\n---\nNo marker here.\n",
        ),
    ]);
    let report = import_and_build(&site, "hugo");
    for line in [
        "config.yaml:4: warning: `theme` not carried over",
        "config.yaml:5: warning: `paginate` not carried over",
        "config.yaml:15: warning: `markup.highlight` not carried over",
    ] {
        assert!(report.contains(line), "{line:?} in:\n{report}");
    }
    let cfg = site.read("folio.toml");
    assert!(cfg.contains("author = \"Hu Go\""), "{cfg}");
    assert!(cfg.contains("github = \"hugo\""), "{cfg}");
    for tag in ["csharp", "graphics", "fsharp"] {
        assert!(
            site.path(&format!("public/tags/{tag}/index.html"))
                .is_file(),
            "{tag}"
        );
    }
    let list = site.read("public/projects/index.html");
    assert!(list.contains("Ray: <p>A ray tracer."), "{list}");
    assert!(list.contains("Lex: <p>A lexer, summed up."), "{list}");
    // The unknown front matter key is a warning at its line, with no build failure.
    let out = site.folio(&["build"]);
    assert!(
        stderr(&out)
            .contains("content/projects/lex.md:7:1: warning: unknown front matter key `keywords`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_zola_search_index_stays_on_and_its_search_options_are_reported() {
    let site = bare(&[
        (
            "config.toml",
            "title = \"Z\"\nbuild_search_index = true\nbase_url = \"https://z.example\"\n\n[search]\ninclude_title = true\ntruncate_content_length = 100\n",
        ),
        ("content/_index.md", "+++\ntitle = \"Home\"\n+++\nHi.\n"),
        (
            "content/notes/_index.md",
            "+++\ntitle = \"Notes\"\n+++\n",
        ),
        (
            "content/notes/quokka.md",
            "+++\ntitle = \"Quokka\"\n+++\nAbout marsupials.\n",
        ),
    ]);
    let report = import_and_build(&site, "zola");
    for line in [
        "config.toml:6: warning: `search.include_title` not carried over",
        "config.toml:7: warning: `search.truncate_content_length` not carried over",
    ] {
        assert!(report.contains(line), "{line:?} in:\n{report}");
    }
    assert!(!report.contains("build_search_index"), "{report}");
    let cfg = site.read("folio.toml");
    assert!(cfg.contains("[search]\nenabled = true"), "{cfg}");
    // The index is written, and holds the page's words (its files are gzip-compressed).
    let manifest = site.read("public/search/index.json");
    assert!(manifest.contains("\"docs\":"), "{manifest}");
    let stores = crate::common::snapshot(&site.path("public/search"));
    let text = |b: &Vec<u8>| {
        use std::io::Read;
        let mut s = String::new();
        match flate2::read::GzDecoder::new(&b[..]).read_to_string(&mut s) {
            Ok(_) => s,
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        }
    };
    assert!(
        stores.values().any(|b| text(b).contains("marsupials")),
        "no search file holds the page's text"
    );
}
