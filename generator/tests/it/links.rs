//! Every link is checked: root-relative, relative and `.md` links, images and covers; each
//! broken one fails the build at its file, line and column, with exit 1 and the old output
//! untouched.

use crate::common::{stderr, Site};

/// Builds a good site, applies `breakage`, then expects `build` and `check` to fail with a
/// line starting with each of `expected`, and `public/` unchanged.
fn fails_at(breakage: impl FnOnce(&Site), expected: &[&str]) {
    let site = Site::new();
    site.build_ok();
    let before = site.snapshot();
    breakage(&site);
    for cmd in ["build", "check"] {
        let out = site.folio(&[cmd]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd}: expected exit 1:\n{err}");
        for e in expected {
            assert!(
                err.lines().any(|l| l.starts_with(e)),
                "{cmd}: expected a line starting with {e:?} in:\n{err}"
            );
        }
    }
    assert_eq!(site.snapshot(), before, "a failed build changed public/");
}

#[test]
fn a_broken_root_relative_link() {
    fails_at(
        |s| s.write("content/about.md", "+++\ntitle = \"About\"\n+++\nSee\n[my work](/abuot/).\n"),
        &["content/about.md:5:1: broken link: `/abuot/` (/abuot/) is not a page, section or file of the site; did you mean /about/?"],
    );
}

#[test]
fn a_broken_relative_link_and_anchor() {
    fails_at(
        |s| {
            s.write(
                "content/about.md",
                "+++\ntitle = \"About\"\n+++\n[up](../projects/nope/) [b](../projects/beta/#nowhere)\n",
            )
        },
        &[
            "content/about.md:4:1: broken link: `../projects/nope/`",
            "content/about.md:4:25: broken anchor: `#nowhere`",
        ],
    );
}

#[test]
fn a_broken_md_link() {
    fails_at(
        |s| s.write("content/about.md", "+++\ntitle = \"About\"\n+++\nSee [x](projects/gamma.md).\n"),
        &["content/about.md:4:5: broken link: `projects/gamma.md` is content/projects/gamma.md"],
    );
}

#[test]
fn a_missing_image() {
    fails_at(
        |s| s.write("content/about.md", "+++\ntitle = \"About\"\n+++\n\n![me](missing.png)\n"),
        &["content/about.md:5:1: missing image: `missing.png` (/about/missing.png)"],
    );
}

#[test]
fn a_missing_cover() {
    fails_at(
        |s| {
            s.write(
                "content/projects/alpha.md",
                "+++\ntitle = \"Alpha\"\ncover = \"/images/nope.png\"\n+++\nx\n",
            )
        },
        &["content/projects/alpha.md:3:1: cover image \"/images/nope.png\" is not a file of the site"],
    );
}

#[test]
fn good_links_of_every_form_resolve_and_md_links_are_rewritten() {
    let site = Site::new();
    site.write("static/img/logo.png", "png");
    site.write(
        "content/about.md",
        "+++\ntitle = \"About\"\n+++\n## Me\n\n[gh](projects/alpha.md#intro) [root](/projects/) [rel](../projects/beta/) [file](/img/logo.png) [self](#me) [ext](https://example.invalid/x)\n\n![Logo](/img/logo.png)\n\n![](/img/logo.png)\n",
    );
    site.write(
        "content/projects/beta/index.md",
        "+++\ntitle = \"Beta\"\ncover = \"cover.svg\"\n+++\n![The cover](cover.svg) [alpha](../alpha.md)\n",
    );
    let out = site.folio(&["build"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("content/about.md:10:1: warning: image without alt text"),
        "{err}"
    );
    let about = site.read("public/about/index.html");
    assert!(about.contains("href=/projects/alpha/#intro"), "{about}");
    assert!(!about.contains("alpha.md"), "{about}");
    let beta = site.read("public/projects/beta/index.html");
    assert!(beta.contains("href=/projects/alpha/"), "{beta}");
}
