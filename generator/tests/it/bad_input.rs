//! Each kind of bad input: the error names file, line and column, the exit status is 1, and
//! the previous output is left exactly as it was.

use crate::common::{stderr, Site};

/// Builds a good site, applies `breakage`, builds again and checks the failure.
pub(crate) fn fails_at(breakage: impl FnOnce(&Site), expected: &[&str]) -> String {
    let site = Site::new();
    site.build_ok();
    let before = site.snapshot();
    assert!(before.contains_key("index.html"));
    breakage(&site);
    let out = site.folio(&["build"]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1, stderr:\n{err}"
    );
    for e in expected {
        assert!(
            err.lines().any(|l| l.starts_with(e)),
            "expected a line starting with {e:?} in:\n{err}"
        );
    }
    assert_eq!(
        site.snapshot(),
        before,
        "the previous public/ changed after a failed build"
    );
    let leftovers: Vec<_> = std::fs::read_dir(site.root())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("folio-new"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging folder left behind: {leftovers:?}"
    );
    // `folio check` finds the same problems and writes nothing.
    let check = site.folio(&["check"]);
    assert_eq!(check.status.code(), Some(1));
    for e in expected {
        assert!(
            stderr(&check).lines().any(|l| l.starts_with(e)),
            "check missed {e:?}:\n{}",
            stderr(&check)
        );
    }
    err
}

#[test]
fn malformed_front_matter() {
    fails_at(
        |s| {
            s.write(
                "content/about.md",
                "+++\ntitle = \"About\ndate = 2024-01-01\n+++\n",
            )
        },
        &["content/about.md:2:"],
    );
}

#[test]
fn unclosed_front_matter() {
    fails_at(
        |s| s.write("content/about.md", "+++\ntitle = \"About\"\n"),
        &["content/about.md:1:1: front matter opened with `+++`"],
    );
}

#[test]
fn missing_title() {
    fails_at(
        |s| s.write("content/about.md", "+++\ndate = 2024-01-01\n+++\nx\n"),
        &["content/about.md:1:1: missing field `title`"],
    );
}

#[test]
fn wrong_field_type() {
    let err = fails_at(
        |s| {
            s.write(
                "content/about.md",
                "+++\ntitle = \"About\"\ntags = \"rust\"\n+++\n",
            )
        },
        &["content/about.md:3:8: invalid type"],
    );
    assert!(err.contains("sequence"), "{err}");
}

#[test]
fn wrong_field_type_in_yaml() {
    fails_at(
        |s| s.write("content/about.md", "---\ntitle: About\ndraft: maybe\n---\n"),
        &["content/about.md:3:"],
    );
}

#[test]
fn unknown_template() {
    fails_at(
        |s| {
            s.write(
                "content/about.md",
                "+++\ntitle = \"About\"\ntemplate = \"fancy.html\"\n+++\n",
            )
        },
        &["content/about.md:3:1: unknown template `fancy.html`"],
    );
}

#[test]
fn tera_syntax_errors_all_reported() {
    fails_at(
        |s| {
            s.write("templates/page.html", "{% extends \"base.html\" %}\n{% block content %}\n{{ page.title \n{% endblock content %}\n");
            s.write("templates/other.html", "ok\n{% if %}\n");
        },
        &["templates/page.html:4:", "templates/other.html:2:"],
    );
}

#[test]
fn tera_runtime_error_names_template_and_line() {
    let err = fails_at(
        |s| {
            s.write("templates/page.html", "{% extends \"base.html\" %}\n{% block content %}\n<h1>{{ page.title }}</h1>\n<p>{{ page.no_such_field }}</p>\n{% endblock content %}\n")
        },
        &["templates/page.html:4:7: template error"],
    );
    assert!(err.contains("page.no_such_field"), "{err}");
    assert!(
        err.contains("rendering content/"),
        "the page being rendered is named: {err}"
    );
}

#[test]
fn links_to_a_page_that_failed_to_load_are_not_reported_as_broken() {
    // _index.md and beta link to alpha; alpha's front matter breaks. The one error is alpha's
    // own, not "broken internal link" in every page that links to it.
    let err = fails_at(
        |s| {
            s.write(
                "content/projects/alpha.md",
                "+++\ntitle = \"Alpha\ndate = 2024-01-01\n+++\n## Intro\n",
            )
        },
        &["content/projects/alpha.md:2:"],
    );
    assert!(!err.contains("broken internal link"), "{err}");
    assert_eq!(
        err.lines()
            .filter(|l| l.contains(": ") && l.starts_with("content/"))
            .count(),
        1,
        "only the cause is reported:\n{err}"
    );
}

#[test]
fn broken_internal_link() {
    fails_at(
        |s| {
            s.write(
                "content/about.md",
                "+++\ntitle = \"About\"\n+++\nLine one.\n\nSee [gone](@/projects/gone.md) here.\n",
            )
        },
        &["content/about.md:6:5: broken internal link: `@/projects/gone.md`"],
    );
}

#[test]
fn broken_anchor() {
    fails_at(
        |s| {
            s.write(
                "content/about.md",
                "+++\ntitle = \"About\"\n+++\nSee [it](@/projects/alpha.md#nope).\n",
            )
        },
        &["content/about.md:4:5: broken anchor: `#nope` is not a heading in @/projects/alpha.md"],
    );
}

#[test]
fn duplicate_output_path() {
    let err = fails_at(
        |s| {
            s.write(
                "content/projects/gamma.md",
                "+++\ntitle = \"Gamma\"\nslug = \"alpha\"\n+++\n",
            )
        },
        &["content/projects/"],
    );
    assert!(
        err.contains("duplicate output path /projects/alpha/index.html"),
        "{err}"
    );
}

#[test]
fn unreadable_file() {
    fails_at(
        |s| {
            std::os::unix::fs::symlink(
                "/nonexistent/folio-test",
                s.path("content/projects/dangling.md"),
            )
            .unwrap()
        },
        &["content/projects/dangling.md: cannot read"],
    );
}

#[test]
fn non_utf8_file() {
    fails_at(
        |s| {
            s.write_bytes(
                "content/about.md",
                b"+++\ntitle = \"About\"\n+++\nCaf\xe9 au lait\n",
            )
        },
        &["content/about.md:4:4: not valid UTF-8"],
    );
}

#[test]
fn unknown_config_key_is_named() {
    let err = fails_at(
        |s| {
            s.write(
                "folio.toml",
                &format!(
                    "{}colour = \"blue\"\nlanguag = \"en\"\n[markdown]\nhighlite = true\n",
                    crate::common::CONFIG
                ),
            )
        },
        &[
            "folio.toml:4:1: unknown key `colour` in folio.toml; settings of your own go under [extra]",
            "folio.toml:5:1: unknown key `languag` in folio.toml; did you mean `language`?",
            "folio.toml:7:1: unknown key `[markdown] highlite` in folio.toml; did you mean `highlight`?",
        ],
    );
    assert!(err.contains("3 errors"), "every unknown key at once: {err}");
}

#[test]
fn missing_theme() {
    fails_at(
        |s| {
            s.write(
                "folio.toml",
                &format!("{}theme = \"nope\"\n", crate::common::CONFIG),
            )
        },
        &["folio.toml:4:1: theme `nope` does not exist"],
    );
}

#[test]
fn all_errors_of_a_build_are_reported_at_once() {
    let err = fails_at(
        |s| {
            s.write("content/about.md", "+++\ndate = 2024-01-01\n+++\n");
            s.write(
                "content/projects/alpha.md",
                "+++\ntitle = \"Alpha\"\n+++\n[x](@/nowhere.md)\n",
            );
            s.write("data/bad.json", "{\n  \"a\": ,\n}\n");
        },
        &[
            "content/about.md:1:1:",
            "content/projects/alpha.md:4:1:",
            "data/bad.json:2:8:",
            "content/_index.md:4:14: broken anchor",
        ],
    );
    assert!(err.contains("build failed with 4 errors"), "{err}");
}

#[test]
fn unknown_front_matter_key_is_only_a_warning() {
    let site = Site::new();
    site.write(
        "content/about.md",
        "+++\ntitle = \"About\"\ntittle = \"typo\"\n[extra]\nanything = 1\n+++\n",
    );
    let out = site.folio(&["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("content/about.md:3:1: warning: unknown front matter key `tittle` is ignored; did you mean `title`?"), "{}", stderr(&out));
}

#[test]
fn no_config_suggests_folio_new() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["build", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("folio new"), "{}", stderr(&out));
}

#[test]
fn refuses_to_build_over_the_site() {
    let site = Site::new();
    let out = site.folio(&["build", "--output", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("refusing"), "{}", stderr(&out));
    assert!(site.path("content/about.md").exists());
}

#[test]
fn non_utf8_config_points_at_the_byte() {
    fails_at(
        |s| {
            let mut bytes = crate::common::CONFIG.as_bytes().to_vec();
            bytes.extend_from_slice(b"description = \"caf\xe9\"\n");
            s.write_bytes("folio.toml", &bytes);
        },
        &["folio.toml:4:19: not valid UTF-8"],
    );
}
