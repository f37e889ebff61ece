//! Subpath deploys: a site whose `base_url` is `https://docs.example.org/blog/` is served by a
//! static server that answers only under `/blog/`, and a crawler starting at `/blog/` follows
//! every link, asset, srcset, feed entry, sitemap entry, redirect and header rule, and finds
//! none broken and none leaving the subpath. The same site at the root of its host differs
//! only by the prefix. `--base-url` is checked like `folio.toml`'s `base_url`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use crate::common::{self, Site};
use crate::static_http::{self, get};

const HOST: &str = "https://docs.example.org";
const BASE: &str = "/blog";

/// A PNG of `w`×`h` pixels (a raster cover gets responsive variants and a srcset).
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A site shaped unlike the example: a notes section (paginated, dated), a projects section
/// (one project a bundle with a raster cover), tags, an alias, a page with relative,
/// root-relative and `@/` links, a menu and footer links written root-relative.
fn subpath_site(base_url: &str) -> Site {
    let s = Site {
        dir: tempfile::tempdir().unwrap(),
    };
    s.write(
        "folio.toml",
        &format!(
            "title = \"Field notes\"\nbase_url = \"{base_url}\"\nauthor = \"Noor\"\ndescription = \"Notes\"\n\n[extra]\nmenu = [\n  {{ name = \"Notes\", url = \"/notes/\" }},\n  {{ name = \"Work\", url = \"/projects/\" }},\n  {{ name = \"Tags\", url = \"/tags/\" }},\n]\nlinks = [{{ name = \"Feed\", url = \"/atom.xml\" }}, {{ name = \"Colophon\", url = \"/colophon/\" }}]\n"
        ),
    );
    s.write(
        "content/_index.md",
        "+++\ntitle = \"Field notes\"\n+++\nStart with [the colophon](colophon/), read [the first note](/notes/n1/) or [the lamp](@/projects/lamp/index.md).\n",
    );
    s.write(
        "content/colophon.md",
        "+++\ntitle = \"Colophon\"\naliases = [\"/about-this-site/\", \"/old/colophon.html\"]\n+++\nBack [home](../), to [notes](/notes/) or [a note](../notes/n2/#details).\n\n![a diagram](/img/diagram.svg)\n",
    );
    s.write(
        "static/img/diagram.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>",
    );
    s.write(
        "content/notes/_index.md",
        "+++\ntitle = \"Notes\"\nsort_by = \"date\"\npaginate_by = 2\n+++\n",
    );
    for i in 1..=5 {
        s.write(
            &format!("content/notes/n{i}.md"),
            &format!(
                "+++\ntitle = \"Note {i}\"\ndate = 2025-0{i}-10\ntags = [\"{}\", \"Field Work\"]\ndescription = \"Note number {i}\"\n+++\nIntro of {i}.\n\n<!-- more -->\n\n## Details\n\nSee [the next one](/notes/n{}/), [the colophon](@/colophon.md) and [home](/).\n",
                if i % 2 == 0 { "even" } else { "odd" },
                i % 5 + 1
            ),
        );
    }
    s.write(
        "content/projects/_index.md",
        "+++\ntitle = \"Work\"\nsort_by = \"date\"\npaginate_by = 1\n+++\n",
    );
    s.write(
        "content/projects/lamp/index.md",
        "+++\ntitle = \"Desk lamp\"\ndate = 2024-06-01\ntags = [\"hardware\"]\ncover = \"cover.png\"\ndescription = \"A lamp\"\n+++\nThe [schematic](schematic.svg) and [notes](/notes/n3/).\n",
    );
    s.write_bytes("content/projects/lamp/cover.png", &png(900, 450));
    s.write(
        "content/projects/lamp/schematic.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"4\" height=\"4\"/>",
    );
    s.write(
        "content/projects/shell/index.md",
        "+++\ntitle = \"Shell\"\ndate = 2023-01-01\n\n[demo]\ncommand = \"/bin/sh\"\n+++\nA shell, live.\n",
    );
    s.write(
        "content/projects/shelf.md",
        "+++\ntitle = \"Shelf\"\ndate = 2024-02-01\ntags = [\"wood\", \"Field Work\"]\n+++\nSee [the lamp](../lamp/).\n",
    );
    s
}

fn build(s: &Site, extra: &[&str]) -> PathBuf {
    let out = s.path("public");
    // The terminal's xterm.js from the repository's node_modules (no network here).
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("build")
        .args(extra)
        .arg("--root")
        .arg(s.root())
        .env(
            "FOLIO_NODE_MODULES",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules"),
        )
        .output()
        .unwrap();
    assert!(o.status.success(), "build failed:\n{}", common::stderr(&o));
    out
}

/// A static file server that serves `dir` under `/blog/` only: `/blog/x/` is `dir/x/index.html`,
/// anything outside `/blog/` is a 404.
fn serve_under_base(dir: PathBuf) -> u16 {
    static_http::serve(move |path| {
        let rest = path.strip_prefix("/blog/")?;
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        if rest.split('/').any(|seg| seg == "..") {
            return None;
        }
        let p = dir.join(rest);
        let file = if p.is_dir() { p.join("index.html") } else { p };
        std::fs::read(file).ok()
    })
    .port
}

/// Every (attribute, value) of every start tag of an HTML document, skipping comments and the
/// contents of scripts and styles; values are entity-decoded for `&amp;` only (all folio
/// writes in URLs).
fn attributes(html: &str) -> Vec<(String, String)> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let lt = i + off;
        if html[lt..].starts_with("<!--") {
            i = html[lt..].find("-->").map_or(b.len(), |e| lt + e + 3);
            continue;
        }
        i = lt + 1;
        if !b.get(i).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
            i += 1;
        }
        let name = html[ns..i].to_ascii_lowercase();
        while i < b.len() && b[i] != b'>' {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            let ks = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'>' {
                i += 1;
            }
            let key = html[ks..i].to_ascii_lowercase();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                let (vs, ve) = if b[i] == b'"' || b[i] == b'\'' {
                    let q = b[i];
                    let e = i + 1 + html[i + 1..].bytes().position(|c| c == q).unwrap();
                    (i + 1, e)
                } else {
                    let mut e = i;
                    while e < b.len() && !b[e].is_ascii_whitespace() && b[e] != b'>' {
                        e += 1;
                    }
                    (i, e)
                };
                out.push((key, html[vs..ve].replace("&amp;", "&")));
                i = if ve < b.len() && (b[ve] == b'"' || b[ve] == b'\'') {
                    ve + 1
                } else {
                    ve
                };
            } else if !key.is_empty() {
                out.push((key, String::new()));
            }
        }
        if name == "script" || name == "style" {
            i = html[i..]
                .find(&format!("</{name}"))
                .map_or(b.len(), |e| i + e);
        }
    }
    out
}

/// The URLs a page refers to: links, assets, srcset candidates, form actions, and `data-*`
/// values that are paths.
fn page_urls(html: &str) -> Vec<String> {
    let mut v = Vec::new();
    for (k, val) in attributes(html) {
        match k.as_str() {
            "href" | "src" | "action" | "poster" | "formaction" => v.push(val),
            "srcset" => v.extend(
                val.split(',')
                    .filter_map(|c| c.split_whitespace().next())
                    .map(str::to_string),
            ),
            k if k.starts_with("data-") && (val.starts_with('/') || val.contains("://")) => {
                v.push(val)
            }
            _ => {}
        }
    }
    v
}

/// Resolves `url` against the page at `from` (a path under the site's host): `Some(path)` for a
/// URL on the site's host, `None` for another host or scheme.
fn resolve(from: &str, url: &str) -> Option<String> {
    let url = url.split('#').next().unwrap();
    if url.is_empty() {
        return Some(from.to_string());
    }
    if let Some(rest) = url.strip_prefix(HOST) {
        return Some(if rest.is_empty() {
            "/".into()
        } else {
            rest.into()
        });
    }
    if url.contains(':') || url.starts_with("//") {
        return None;
    }
    let joined = if url.starts_with('/') {
        url.to_string()
    } else {
        format!("{}{url}", &from[..=from.rfind('/').unwrap()])
    };
    let mut segs: Vec<&str> = Vec::new();
    let trailing = joined.ends_with('/');
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut p = format!("/{}", segs.join("/"));
    if trailing && p != "/" {
        p.push('/');
    }
    Some(p)
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Values between `open` (up to its `>`) and `close`, for simple XML.
fn xml_texts<'a>(xml: &'a str, open: &str, close: &str) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(open) {
        let after = &rest[i..];
        let gt = after.find('>').unwrap();
        let end = after.find(close).unwrap();
        out.push((&after[..gt], &after[gt + 1..end]));
        rest = &after[end..];
    }
    out
}

#[test]
fn a_subpath_site_is_crawled_from_its_base_with_nothing_broken_or_escaping() {
    let s = subpath_site(&format!("{HOST}{BASE}/"));
    let public = build(&s, &[]);
    let port = serve_under_base(public.clone());

    // The server really only serves under /blog/.
    assert_eq!(get(port, "/index.html").0, 404);
    assert_eq!(get(port, "/blog/").0, 200);

    let mut broken: Vec<String> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<(String, String)> = VecDeque::new();
    let dynamic: std::cell::RefCell<BTreeSet<String>> = Default::default();
    let visit = |from: &str,
                 url: &str,
                 queue: &mut VecDeque<(String, String)>,
                 broken: &mut Vec<String>| {
        let Some(path) = resolve(from, url) else {
            return;
        };
        if path != BASE && !path.starts_with(&format!("{BASE}/")) {
            broken.push(format!(
                "{from}: {url} escapes {BASE}/ (resolves to {path})"
            ));
            return;
        }
        // The Worker's endpoints (a WebSocket, the API) are not static files: under the
        // subpath is all that is asked of them here.
        if path.starts_with(&format!("{BASE}/terminal/"))
            || path.starts_with(&format!("{BASE}/api/"))
        {
            dynamic.borrow_mut().insert(path);
            return;
        }
        queue.push_back((from.to_string(), path));
    };
    visit("/", &format!("{BASE}/"), &mut queue, &mut broken);
    // Entry points a crawler gets from outside the pages: robots.txt, the sitemap, the feed.
    for extra in ["robots.txt", "sitemap.xml", "atom.xml"] {
        visit("/", &format!("{BASE}/{extra}"), &mut queue, &mut broken);
    }
    let mut pages = 0;
    while let Some((from, path)) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let (status, body) = get(port, &path);
        if status != 200 {
            broken.push(format!("{from}: {path} is {status}"));
            continue;
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        let is_html = path.ends_with('/') || path.ends_with(".html");
        if is_html {
            pages += 1;
            assert!(
                text.contains("<meta name=\"folio-base\" content=\"/blog/\">")
                    || text.contains("<meta content=/blog/ name=folio-base>")
                    || text.contains("<meta name=folio-base content=/blog/>")
                    || path.ends_with(".html") && text.contains("Moved"),
                "{path} does not tell its scripts the base path:\n{text}"
            );
            for u in page_urls(&text) {
                visit(&path, &u, &mut queue, &mut broken);
            }
        } else if path.ends_with("sitemap.xml") {
            for (_, loc) in xml_texts(&text, "<loc", "</loc>") {
                assert!(loc.starts_with(&format!("{HOST}{BASE}/")), "sitemap: {loc}");
                visit(&path, loc, &mut queue, &mut broken);
            }
        } else if path.ends_with("atom.xml") {
            for (_, id) in xml_texts(&text, "<id", "</id>") {
                assert!(id.starts_with(&format!("{HOST}{BASE}/")), "feed id {id}");
            }
            for tag in text
                .split("<link ")
                .skip(1)
                .map(|t| &t[..t.find('>').unwrap()])
            {
                let href = tag
                    .split("href=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                visit(&path, &xml_unescape(href), &mut queue, &mut broken);
            }
            // Entry bodies resolve against their xml:base, the entry's permalink.
            for (tag, body) in xml_texts(&text, "<content", "</content>") {
                let base = tag
                    .split("xml:base=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                let from = resolve("/", &xml_unescape(base)).unwrap();
                for u in page_urls(&xml_unescape(body)) {
                    visit(&from, &u, &mut queue, &mut broken);
                }
            }
        } else if path.ends_with("robots.txt") {
            for l in text.lines().filter_map(|l| l.strip_prefix("Sitemap: ")) {
                visit(&path, l.trim(), &mut queue, &mut broken);
            }
        } else if path.ends_with(".js") || path.ends_with(".mjs") {
            // Scripts take the base path from the page, never a hard-coded root.
            for bad in [
                "\"/api",
                "'/api",
                "\"/terminal",
                "\"/projects.json",
                "fetch(\"/",
            ] {
                assert!(!text.contains(bad), "{path} hard-codes a root URL: {bad}");
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken or escaping URLs:\n{}",
        broken.join("\n")
    );

    // What a crawler must have reached: pagination, tags, the cover's variants, the alias
    // page, the bundle's file, the static image, the feed.
    for want in [
        "/blog/notes/page/3/",
        "/blog/projects/page/2/",
        "/blog/tags/field-work/",
        "/blog/projects/lamp/schematic.svg",
        "/blog/img/diagram.svg",
        "/blog/notes/n3/",
        "/blog/projects/shell/",
    ] {
        assert!(
            seen.contains(want),
            "crawler never reached {want}: {seen:#?}"
        );
    }
    assert!(
        seen.iter()
            .any(|p| p.starts_with("/blog/projects/lamp/cover.") && p.contains("w.")),
        "no cover variant from a srcset reached: {seen:#?}"
    );
    assert!(
        seen.iter().any(|p| p.starts_with("/blog/css/site.")),
        "stylesheet not reached"
    );
    assert!(pages >= 12, "only {pages} pages crawled");
    // The terminal: its endpoint and its hashed xterm files are under the subpath too.
    let dynamic = dynamic.into_inner();
    assert!(dynamic.contains("/blog/terminal/shell"), "{dynamic:?}");
    for prefix in [
        "/blog/vendor/xterm/xterm.",
        "/blog/vendor/xterm/addon-fit.",
        "/blog/js/terminal.",
    ] {
        assert!(
            seen.iter().any(|p| p.starts_with(prefix)),
            "{prefix}… not reached: {seen:#?}"
        );
    }

    // Alias pages and their redirects lead into the subpath.
    for alias in ["/blog/about-this-site/", "/blog/old/colophon.html"] {
        let (status, body) = get(port, alias);
        assert_eq!(status, 200, "{alias}");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("url=/blog/colophon/"), "{alias}: {body}");
        assert!(
            body.contains("https://docs.example.org/blog/colophon/"),
            "{body}"
        );
    }
    let redirects = s.read("public/_redirects");
    assert_eq!(
        redirects.lines().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "/blog/about-this-site/ /blog/colophon/ 301",
            "/blog/old/colophon.html /blog/colophon/ 301"
        ]),
        "{redirects}"
    );
    // Every _headers rule is a path under the subpath, and the immutable ones exist.
    let headers = s.read("public/_headers");
    let rules: Vec<&str> = headers
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(' ') && !l.is_empty())
        .collect();
    assert!(rules.contains(&"/blog/*"), "{headers}");
    for r in rules.iter().filter(|r| **r != "/blog/*") {
        assert!(r.starts_with("/blog/"), "{r}");
        if let Some(dir) = r.strip_suffix("/*") {
            // A folder rule (the search index's immutable shard folder, `search/s/`): it must hold files.
            let local = s.root().join("public").join(&dir["/blog/".len()..]);
            assert!(
                std::fs::read_dir(&local).is_ok_and(|mut d| d.next().is_some()),
                "_headers rule {r} names no folder of the output"
            );
        } else {
            assert_eq!(get(port, r).0, 200, "_headers rule {r} names no file");
        }
    }
}

/// `public/` of a build as path → text, with a subpath build's prefix taken out.
fn texts(dir: &Path, strip: Option<&str>) -> BTreeMap<String, String> {
    common::snapshot(dir)
        .into_iter()
        .filter(|(p, _)| {
            p.ends_with(".html") || p.ends_with(".xml") || p.starts_with('_') || p.ends_with(".txt")
        })
        .map(|(p, b)| {
            let mut t = String::from_utf8(b).unwrap();
            if let Some(base) = strip {
                for meta in [
                    format!("<meta name=folio-base content={base}/>"),
                    format!("<meta content={base}/ name=folio-base>"),
                    format!("<meta name=\"folio-base\" content=\"{base}/\">"),
                ] {
                    t = t.replace(&meta, "");
                }
                t = t
                    .replace(&format!("{base}/"), "/")
                    .replace(&format!("{base}\""), "\"");
            }
            (p, t)
        })
        .collect()
}

#[test]
fn the_same_site_at_the_root_differs_only_by_the_prefix() {
    let root = subpath_site(HOST);
    let sub = subpath_site(&format!("{HOST}{BASE}/"));
    let a = texts(&build(&root, &[]), None);
    let b = texts(&build(&sub, &[]), Some(BASE));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, text) in &a {
        assert!(
            !text.contains("folio-base"),
            "a root site gets no base meta: {path}"
        );
        assert_eq!(text, &b[path], "{path} differs beyond the prefix");
    }
}

#[test]
fn base_url_flag_is_checked_like_the_config_and_keeps_the_old_output() {
    let s = subpath_site(&format!("{HOST}{BASE}/"));
    let public = build(&s, &[]);
    let before = common::snapshot(&public);
    for bad in [
        "example.com",
        "ftp://example.com",
        "https://example.com/a b/",
        "https://u@example.com",
    ] {
        let o = s.folio(&["build", "--base-url", bad]);
        assert_eq!(o.status.code(), Some(1), "{bad} accepted");
        let err = common::stderr(&o);
        assert!(
            err.contains("--base-url") && err.contains(&format!("{bad:?}")),
            "{err}"
        );
        assert_eq!(
            common::snapshot(&public),
            before,
            "output changed after {bad}"
        );
    }
    // The same value in folio.toml is refused with its line and column.
    s.write("folio.toml", "title = \"t\"\nbase_url = \"example.com\"\n");
    let o = s.folio(&["build"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("folio.toml:2:1"),
        "{}",
        common::stderr(&o)
    );
    // A valid subpath flag moves the site under it.
    s.write(
        "folio.toml",
        "title = \"t\"\nbase_url = \"https://a.example\"\n",
    );
    build(&s, &["--base-url", "https://b.example/docs/"]);
    let home = s.read("public/index.html");
    assert!(home.contains("https://b.example/docs/"), "{home}");
    assert!(home.contains("/docs/css/site."), "{home}");
}
