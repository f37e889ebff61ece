//! A full build of the repository's example portfolio (`content/`), checked from the outside:
//! pages, links, feed, sitemap, hashed assets and the security headers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

fn build_example() -> (tempfile::TempDir, PathBuf) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = tempfile::tempdir().unwrap();
    let public = out.path().join("public");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("build")
        .arg("--root")
        .arg(&repo)
        .arg("--output")
        .arg(&public)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "example build failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.starts_with("Built ") && stdout.contains(" pages, ") && stdout.contains(" ms"),
        "summary line: {stdout}"
    );
    (out, public)
}

/// Values of `attr="…"` in every tag of a document (quoted values only, as minified by folio).
fn attr_values(html: &str, attr: &str) -> Vec<String> {
    let mut v = Vec::new();
    for quote in ['"', '\''] {
        let needle = format!(" {attr}={quote}");
        let mut rest = html;
        while let Some(i) = rest.find(&needle) {
            rest = &rest[i + needle.len()..];
            if let Some(end) = rest.find(quote) {
                v.push(rest[..end].to_string());
            }
        }
    }
    // unquoted (minify-html drops quotes where it may)
    let needle = format!(" {attr}=");
    let mut rest = html;
    while let Some(i) = rest.find(&needle) {
        rest = &rest[i + needle.len()..];
        if !rest.starts_with('"') && !rest.starts_with('\'') {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '>')
                .unwrap_or(rest.len());
            v.push(rest[..end].to_string());
        }
    }
    v
}

fn html_files(public: &Path) -> BTreeMap<String, String> {
    crate::common::snapshot(public)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".html"))
        .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
        .collect()
}

fn target_file(public: &Path, url_path: &str) -> PathBuf {
    let p = url_path.trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') {
        public.join(p).join("index.html")
    } else {
        public.join(p)
    }
}

#[test]
fn pages_and_outputs_exist() {
    let (_t, public) = build_example();
    for f in [
        "index.html",
        "about/index.html",
        "cv/index.html",
        "projects/index.html",
        "projects/minirt/index.html",
        "projects/tinylisp/index.html",
        "projects/minirt/cover.svg",
        "tags/index.html",
        "tags/rust/index.html",
        "404.html",
        "atom.xml",
        "sitemap.xml",
        "robots.txt",
        "projects.json",
        "_headers",
        "_folio/edge.json",
        "favicon.svg",
    ] {
        assert!(public.join(f).is_file(), "missing {f}");
    }
    // drafts are not published, demo sources are not copied into the site
    assert!(!public.join("projects/wasmlet").exists());
    assert!(!public.join("projects/minirt/src").exists());
    let cv = std::fs::read_to_string(public.join("cv/index.html")).unwrap();
    assert!(cv.contains("Ferrite Networks"), "cv.toml rendered");
    assert!(cv.contains("Bytes per pixel"), "talks.csv rendered");
    let minirt = std::fs::read_to_string(public.join("projects/minirt/index.html")).unwrap();
    assert!(
        minirt.contains("<span class=\"hl-") || minirt.contains("<span class=hl-"),
        "code highlighted with classes"
    );
    assert!(minirt.contains("Run it live"), "demo section shown");
}

#[test]
fn every_internal_link_and_anchor_resolves() {
    let (_t, public) = build_example();
    let pages = html_files(&public);
    let mut checked = 0;
    for (file, html) in &pages {
        for attr in ["href", "src"] {
            for v in attr_values(html, attr) {
                if !v.starts_with('/') || v.starts_with("//") {
                    continue;
                }
                let (path, frag) = v
                    .split_once('#')
                    .map_or((v.as_str(), None), |(p, f)| (p, Some(f)));
                let target = target_file(&public, path.split('?').next().unwrap());
                assert!(
                    target.is_file(),
                    "{file}: {attr}={v} points at a missing file {}",
                    target.display()
                );
                if let Some(frag) = frag.filter(|f| !f.is_empty()) {
                    let t = std::fs::read_to_string(&target).unwrap();
                    assert!(
                        t.contains(&format!("id=\"{frag}\"")) || t.contains(&format!("id={frag}")),
                        "{file}: anchor #{frag} missing in {path}"
                    );
                }
                checked += 1;
            }
        }
        // in-page anchors
        for v in attr_values(html, "href") {
            if let Some(frag) = v.strip_prefix('#') {
                assert!(
                    html.contains(&format!("id=\"{frag}\""))
                        || html.contains(&format!("id={frag}")),
                    "{file}: #{frag} has no target"
                );
            }
        }
    }
    assert!(checked > 100, "only {checked} links checked");
}

#[test]
fn feed_and_sitemap_are_xml_and_point_at_pages() {
    let (_t, public) = build_example();
    for f in ["atom.xml", "sitemap.xml"] {
        let text = std::fs::read_to_string(public.join(f)).unwrap();
        let mut r = quick_xml::Reader::from_str(&text);
        let mut elements = 0;
        loop {
            match r.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(quick_xml::events::Event::Start(_)) => elements += 1,
                Ok(_) => {}
                Err(e) => panic!("{f} is not well-formed XML at {}: {e}", r.buffer_position()),
            }
        }
        assert!(elements > 10, "{f} has {elements} elements");
    }
    let feed = std::fs::read_to_string(public.join("atom.xml")).unwrap();
    assert_eq!(
        feed.matches("<entry>").count(),
        5,
        "the five dated projects"
    );
    let sitemap = std::fs::read_to_string(public.join("sitemap.xml")).unwrap();
    for loc in sitemap.split("<loc>").skip(1) {
        let url = &loc[..loc.find("</loc>").unwrap()];
        let path = url
            .strip_prefix("https://ada.example.dev")
            .unwrap_or_else(|| panic!("{url} not under base_url"));
        assert!(
            target_file(&public, path).is_file(),
            "sitemap lists {url} but there is no page"
        );
    }
}

#[test]
fn hashed_assets_are_referenced_and_match_their_content() {
    let (_t, public) = build_example();
    let index = std::fs::read_to_string(public.join("index.html")).unwrap();
    let mut assets = BTreeSet::new();
    for v in attr_values(&index, "href")
        .into_iter()
        .chain(attr_values(&index, "src"))
    {
        if v.ends_with(".css") || v.ends_with(".js") {
            assets.insert(v);
        }
    }
    assert!(assets.len() >= 3, "{assets:?}");
    for a in &assets {
        let file = public.join(a.trim_start_matches('/'));
        let bytes = std::fs::read(&file).unwrap_or_else(|_| panic!("{a} referenced but missing"));
        let hash = blake3::hash(&bytes).to_hex();
        assert!(
            a.contains(&format!(".{}.", &hash.as_str()[..10])),
            "{a}: name does not carry its content hash"
        );
    }
    let headers = std::fs::read_to_string(public.join("_headers")).unwrap();
    for a in &assets {
        assert!(
            headers.contains(&format!(
                "{a}\n  Cache-Control: public, max-age=31536000, immutable"
            )),
            "{a} not cached immutably"
        );
    }
}

fn inline_script_hashes(html: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = html;
    while let Some(i) = rest.find("<script") {
        rest = &rest[i + 7..];
        let tag_end = rest.find('>').unwrap();
        let attrs = &rest[..tag_end];
        let body_end = rest.find("</script>").unwrap();
        let body = &rest[tag_end + 1..body_end];
        if !attrs.contains("src=") && !attrs.contains("ld+json") {
            out.insert(format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes()))
            ));
        }
        rest = &rest[body_end..];
    }
    out
}

#[test]
fn headers_carry_the_hashes_of_every_inline_script() {
    let (_t, public) = build_example();
    let mut expected = BTreeSet::new();
    for html in html_files(&public).values() {
        expected.extend(inline_script_hashes(html));
    }
    assert!(
        !expected.is_empty(),
        "the theme has an inline script; its hash must be in the CSP"
    );
    let headers = std::fs::read_to_string(public.join("_headers")).unwrap();
    let csp = headers
        .lines()
        .find_map(|l| l.trim().strip_prefix("Content-Security-Policy: "))
        .expect("CSP in _headers");
    let script_src: BTreeSet<String> = csp
        .split(';')
        .find_map(|d| d.trim().strip_prefix("script-src "))
        .unwrap()
        .split_whitespace()
        .filter(|s| s.starts_with("'sha256-"))
        .map(str::to_string)
        .collect();
    assert_eq!(script_src, expected);
    assert!(!csp.contains("unsafe-inline"));
    for h in [
        "Strict-Transport-Security: max-age=",
        "X-Content-Type-Options: nosniff",
        "frame-ancestors 'none'",
        "Referrer-Policy: ",
        "Permissions-Policy: ",
        "Cross-Origin-Opener-Policy: same-origin",
        "Cross-Origin-Resource-Policy: same-origin",
    ] {
        assert!(headers.contains(h), "_headers lacks {h}");
    }
    // The Worker's copy of the policy is the same block.
    let edge: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(public.join("_folio/edge.json")).unwrap())
            .unwrap();
    let block: Vec<(String, String)> = headers
        .lines()
        .skip_while(|l| *l != "/*")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let (k, v) = l.trim().split_once(": ").unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let edge_headers: Vec<(String, String)> = edge["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(block, edge_headers);
    assert_eq!(
        edge["demos"],
        serde_json::json!(["life", "minirt", "tinylisp"])
    );
    // The counter's pages are page keys (the path), the old slug kept to carry its count over.
    assert!(edge["pages"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("projects.minirt")));
    assert_eq!(edge["legacy"]["projects.minirt"], "minirt");
}

#[test]
fn projects_index_lists_published_projects() {
    let (_t, public) = build_example();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(public.join("projects.json")).unwrap())
            .unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 5);
    let mut dates: Vec<&str> = Vec::new();
    for p in items {
        for k in ["title", "url", "date", "tags", "description"] {
            assert!(!p[k].is_null(), "{k} missing in {p}");
        }
        assert!(p["url"]
            .as_str()
            .unwrap()
            .starts_with("https://ada.example.dev/projects/"));
        dates.push(p["date"].as_str().unwrap());
    }
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted, "newest first");
}
