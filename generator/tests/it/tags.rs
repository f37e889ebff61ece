//! Tags keep their identity; slugs come from any language.

use crate::common::{stderr, Site};

#[test]
fn c_cpp_and_csharp_get_three_pages() {
    let site = Site::new();
    site.write(
        "content/projects/alpha.md",
        "+++\ntitle = \"Alpha\"\ntags = [\"C\", \"C++\", \"C#\", \".NET\", \"F#\"]\n+++\n## Intro\n",
    );
    site.write(
        "content/projects/gamma.md",
        "+++\ntitle = \"Gamma\"\ntags = [\"c\"]\n+++\nx\n",
    );
    site.build_ok();
    for (slug, name) in [
        ("c", "C"),
        ("cpp", "C++"),
        ("csharp", "C#"),
        ("dotnet", ".NET"),
        ("fsharp", "F#"),
    ] {
        let page = site.read(&format!("public/tags/{slug}/index.html"));
        assert!(page.contains(name), "/tags/{slug}/ should be titled {name}");
    }
    // `C` and `c` differ only in case: one tag, both pages on it.
    let c = site.read("public/tags/c/index.html");
    assert!(c.contains("Alpha") && c.contains("Gamma"), "{c}");
}

#[test]
fn two_spellings_sharing_a_page_is_an_error_naming_both() {
    let site = Site::new();
    site.write(
        "content/projects/alpha.md",
        "+++\ntitle = \"Alpha\"\ndate = 2024-01-02\ntags = [\"rust\", \"Meta Stuff\"]\n+++\nx\n",
    );
    site.write(
        "content/projects/gamma.md",
        "---\ntitle: Gamma\ndate: 2023-01-01\ntags:\n  - meta-stuff\n---\nx\n",
    );
    let out = site.folio(&["build"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("content/projects/gamma.md:5:5: tag \"meta-stuff\" and tag \"Meta Stuff\" (content/projects/alpha.md:4:17) would share the page /tags/meta-stuff/"),
        "{err}"
    );
}

#[test]
fn a_japanese_title_and_file_name_make_slugs() {
    let site = Site::new();
    site.write(
        "content/projects/日本語のメモ.md",
        "+++\ntitle = \"日本語のメモ\"\ntags = [\"日本語\"]\n+++\n## 始めに\n\nx\n",
    );
    site.write(
        "content/blog/Привет.md",
        "+++\ntitle = \"Привет\"\n+++\nx\n",
    );
    site.build_ok();
    let page = site.read("public/projects/ri-ben-yu-nomemo/index.html");
    assert!(
        page.contains("id=shi-meni") || page.contains("id=\"shi-meni\""),
        "{page}"
    );
    assert!(site.path("public/tags/ri-ben-yu/index.html").is_file());
    assert!(site.path("public/blog/privet/index.html").is_file());
}
