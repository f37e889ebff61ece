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
        |s| {
            s.write(
                "content/about.md",
                "+++\ntitle = \"About\"\n+++\nSee [x](projects/gamma.md).\n",
            )
        },
        &["content/about.md:4:5: broken link: `projects/gamma.md` is content/projects/gamma.md"],
    );
}

#[test]
fn a_missing_image() {
    fails_at(
        |s| {
            s.write(
                "content/about.md",
                "+++\ntitle = \"About\"\n+++\n\n![me](missing.png)\n",
            )
        },
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
    // A real PNG: images are measured (a file that is not one is an error, see images.rs).
    site.write_bytes("static/img/logo.png", &crate::images::png(4, 4));
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

/// A local HTTP server for external links: `/ok` 200, `/gone` 404, `/moved` 301 to `/ok`,
/// `/temp` 302 to `/ok`, `/slow` answers after 3 s. Returns its base URL and the count of
/// requests per path.
fn server() -> (
    String,
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let h = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let h = h.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                *h.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                let (status, extra) = match path.as_str() {
                    "/ok" => ("200 OK", ""),
                    "/moved" => ("301 Moved Permanently", "Location: /ok\r\n"),
                    "/temp" => ("302 Found", "Location: /ok\r\n"),
                    "/slow" => {
                        std::thread::sleep(std::time::Duration::from_secs(3));
                        ("200 OK", "")
                    }
                    _ => ("404 Not Found", ""),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
                );
            });
        }
    });
    (base, hits)
}

#[test]
fn external_links_are_checked_only_by_check_external_and_cached() {
    let (base, hits) = server();
    let site = Site::new();
    site.write(
        "content/about.md",
        &format!("+++\ntitle = \"About\"\n+++\n[a]({base}/ok) [b]({base}/temp)\n\n[c]({base}/gone)\n\n[d]({base}/moved)\n\n[e]({base}/slow)\n"),
    );
    // `folio build` does not look at external links.
    site.build_ok();
    assert!(hits.lock().unwrap().is_empty());

    let out = site.folio(&["check", "--external", "--timeout", "1"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for line in [
        format!("content/about.md:6:1: broken external link: {base}/gone answers 404"),
        format!("content/about.md:8:1: warning: {base}/moved has moved permanently to {base}/ok"),
        format!(
            "content/about.md:10:1: broken external link: {base}/slow gives no answer (timed out)"
        ),
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(&line)),
            "{line:?} in:\n{err}"
        );
    }
    assert!(
        !err.contains("/temp"),
        "a temporary redirect is fine:\n{err}"
    );
    assert!(site.path(".folio/cache/links.json").is_file());
    let first = hits.lock().unwrap().clone();
    assert_eq!(first["/slow"], 3, "no answer is retried twice: {first:?}");
    assert_eq!(
        first["/gone"], 1,
        "a 404 is an answer, not retried: {first:?}"
    );

    // Again: good answers come from the cache, failures are asked about again.
    let again = site.folio(&["check", "--external", "--timeout", "1"]);
    assert_eq!(again.status.code(), Some(1));
    let second = hits.lock().unwrap().clone();
    assert_eq!(second["/ok"], first["/ok"], "cached: {second:?}");
    assert_eq!(second["/moved"], first["/moved"], "cached: {second:?}");
    assert!(second["/gone"] > first["/gone"], "{second:?}");
    assert!(
        stderr(&again).contains(&format!("warning: {base}/moved has moved permanently")),
        "the cached redirect is still reported"
    );
}
