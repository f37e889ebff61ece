//! Subpath deploys: a site whose `base_url` has a path (`https://example.com/blog/`) is written
//! with every root-absolute URL carrying that path.
//!
//! Templates, markdown (`[x](/about/)`, `@/` links) and the theme all write URLs relative to
//! the site's root (`/css/site.css`, `/projects/`). Rather than asking every template and every
//! author to remember a filter, the output stage rewrites them: in each HTML file, the URL
//! attributes (`href`, `src`, `srcset`, `action`, `poster`, `data-*`, …) whose value starts
//! with a single `/` get the base path in front. Script and style contents, comments and text
//! are left alone; `//host` and `/\host` (protocol-relative) are left alone. A site at the root
//! of its host (base path `""`) is not touched at all, byte for byte.
//!
//! Scripts learn the base path from one place: `<meta name="folio-base" content="/blog/">`,
//! added to the `<head>` of every page of a subpath site (absent means `/`).

/// The `<meta>` name scripts read the base path from.
pub(crate) const META_NAME: &str = "folio-base";

/// Attributes whose value is one URL.
const URL_ATTRIBUTES: &[&str] = &[
    "href",
    "src",
    "action",
    "formaction",
    "poster",
    "cite",
    "data",
    "background",
    "longdesc",
    "manifest",
    "ping",
    "xlink:href",
];

/// Attributes whose value is a list of image candidates (`url [descriptor], …`).
const SRCSET_ATTRIBUTES: &[&str] = &["srcset", "imagesrcset"];

/// Elements whose content is raw text, never markup.
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "plaintext"];

/// `url` with `base` in front when it is root-absolute (`/x`, not `//x` or `/\x`).
pub(crate) fn prefix_url(base: &str, url: &str) -> Option<String> {
    let rest = url.strip_prefix('/')?;
    if base.is_empty() || rest.starts_with(['/', '\\']) {
        return None;
    }
    Some(format!("{base}{url}"))
}

/// Rewrites the root-absolute URLs of an HTML document to live under `base` (`/blog`, no
/// trailing `/`) and adds the `folio-base` meta tag at the start of `<head>`. With an empty `base` the
/// document is returned unchanged.
pub(crate) fn rewrite_html(html: &str, base: &str) -> String {
    rewrite(html, base, true)
}

/// [`rewrite_html`] for a fragment of HTML (a page's body in the feed): no meta tag added.
pub(crate) fn rewrite_fragment(html: &str, base: &str) -> String {
    rewrite(html, base, false)
}

fn rewrite(html: &str, base: &str, add_meta: bool) -> String {
    if base.is_empty() {
        return html.to_string();
    }
    let b = html.as_bytes();
    let mut out = String::with_capacity(html.len() + 256);
    let mut copied = 0;
    let mut i = 0;
    let mut meta_added = !add_meta;
    while let Some(off) = html[i..].find('<') {
        let lt = i + off;
        let rest = &html[lt..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            i = comment.find("-->").map_or(b.len(), |e| lt + 4 + e + 3);
            continue;
        }
        let starts_tag = b.get(lt + 1).is_some_and(|c| c.is_ascii_alphabetic());
        if !starts_tag {
            i = lt + 1;
            continue;
        }
        let (name, end, edits) = scan_tag(html, lt + 1, base);
        for (at, value_end, new) in edits {
            out.push_str(&html[copied..at]);
            out.push_str(&new);
            copied = value_end;
        }
        i = end;
        if name == "head" && !meta_added {
            // First thing in the head, so it is there even when `</head>` is left out.
            out.push_str(&html[copied..end]);
            out.push_str(&format!("<meta name=\"{META_NAME}\" content=\"{base}/\">"));
            copied = end;
            meta_added = true;
        }
        if RAW_TEXT.contains(&name.as_str()) {
            let close = format!("</{name}");
            i = find_ci(html, i, &close).unwrap_or(b.len());
        }
    }
    out.push_str(&html[copied..]);
    out
}

/// Scans a start tag from just after `<`: (lowercase name, offset after `>`, replacements as
/// (value start, value end, new value)).
fn scan_tag(h: &str, from: usize, base: &str) -> (String, usize, Vec<(usize, usize, String)>) {
    let b = h.as_bytes();
    let mut i = from;
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' && b[i] != b'/' {
        i += 1;
    }
    let name = h[from..i].to_ascii_lowercase();
    let mut edits = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return (name, b.len(), edits);
        }
        if b[i] == b'>' {
            return (name, i + 1, edits);
        }
        let ks = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'>' {
            i += 1;
        }
        let key = h[ks..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let (vs, ve, next) = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
            let q = b[i];
            let vs = i + 1;
            let ve = h[vs..]
                .bytes()
                .position(|c| c == q)
                .map_or(b.len(), |p| vs + p);
            (vs, ve, (ve + 1).min(b.len()))
        } else {
            let vs = i;
            let mut ve = i;
            while ve < b.len() && !b[ve].is_ascii_whitespace() && b[ve] != b'>' {
                ve += 1;
            }
            (vs, ve, ve)
        };
        i = next;
        let value = &h[vs..ve];
        let new = if SRCSET_ATTRIBUTES.contains(&key.as_str()) {
            rewrite_srcset(value, base)
        } else if URL_ATTRIBUTES.contains(&key.as_str()) || key.starts_with("data-") {
            let lead = value.len() - value.trim_start().len();
            prefix_url(base, &value[lead..]).map(|u| format!("{}{u}", &value[..lead]))
        } else {
            None
        };
        if let Some(new) = new {
            edits.push((vs, ve, new));
        }
    }
}

/// A `srcset` with each root-absolute candidate URL prefixed, or `None` when none is.
fn rewrite_srcset(value: &str, base: &str) -> Option<String> {
    let mut changed = false;
    let parts: Vec<String> = value
        .split(',')
        .map(|cand| {
            let lead = cand.len() - cand.trim_start().len();
            let body = &cand[lead..];
            let url_end = body.find(char::is_whitespace).unwrap_or(body.len());
            match prefix_url(base, &body[..url_end]) {
                Some(u) => {
                    changed = true;
                    format!("{}{u}{}", &cand[..lead], &body[url_end..])
                }
                None => cand.to_string(),
            }
        })
        .collect();
    changed.then(|| parts.join(","))
}

fn find_ci(h: &str, from: usize, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    h.as_bytes()[from..]
        .windows(n.len())
        .position(|w| w.eq_ignore_ascii_case(n))
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_site_is_untouched() {
        let html = r#"<html><head></head><body><a href="/x/">x</a></body></html>"#;
        assert_eq!(rewrite_html(html, ""), html);
    }

    #[test]
    fn url_attributes_get_the_base_and_the_rest_stays() {
        let html = concat!(
            r#"<!doctype html><html><head><link rel=stylesheet href=/css/a.css>"#,
            r#"<script src="/js/a.js" defer></script><script>var u="/api/views/";</script>"#,
            r#"<style>a{background:url(/x.png)}</style></head><body>"#,
            r#"<a href="/about/">a</a><a href='//cdn.example/x'>b</a><a href="/\evil">c</a>"#,
            r##"<a href="https://x.dev/">d</a><a href="#top">e</a><a href="rel/">f</a>"##,
            r#"<img src="/i/a.png" srcset="/i/a-1.png 1x, /i/a-2.png 2x,https://o/x.png 3x" alt="">"#,
            r#"<form action="/api/contact" method=post></form><video poster="/p.jpg"></video>"#,
            r#"<section data-endpoint="/terminal/x" data-n="3" title="/not-a-url"></section>"#,
            r#"<!-- <a href="/in-comment/"> --><pre><code>&lt;a href="/code/"&gt;</code></pre>"#,
            r#"<textarea><a href="/raw/"></textarea>"#,
            r#"<p>▀▄█ — é</p></body></html>"#
        );
        let out = rewrite_html(html, "/blog");
        for want in [
            "href=/blog/css/a.css>",
            r#"src="/blog/js/a.js""#,
            r#"var u="/api/views/";"#,
            "url(/x.png)",
            r#"href="/blog/about/""#,
            "href='//cdn.example/x'",
            r#"href="/\evil""#,
            r#"href="https://x.dev/""#,
            r##"href="#top""##,
            r#"href="rel/""#,
            r#"src="/blog/i/a.png""#,
            r#"srcset="/blog/i/a-1.png 1x, /blog/i/a-2.png 2x,https://o/x.png 3x""#,
            r#"action="/blog/api/contact""#,
            r#"poster="/blog/p.jpg""#,
            r#"data-endpoint="/blog/terminal/x""#,
            r#"title="/not-a-url""#,
            r#"<a href="/in-comment/">"#,
            r#"&lt;a href="/code/"&gt;"#,
            r#"<textarea><a href="/raw/"></textarea>"#,
            r#"<head><meta name="folio-base" content="/blog/"><link"#,
        ] {
            assert!(out.contains(want), "missing {want} in {out}");
        }
        assert_eq!(out.matches("folio-base").count(), 1);
        let frag = rewrite_fragment(r#"<head></head><p><a href="/x/">x</a></p>"#, "/b");
        assert_eq!(frag, r#"<head></head><p><a href="/b/x/">x</a></p>"#);
    }

    #[test]
    fn prefix_url_only_takes_root_absolute_paths() {
        assert_eq!(prefix_url("/b", "/x").as_deref(), Some("/b/x"));
        assert_eq!(prefix_url("/b", "/").as_deref(), Some("/b/"));
        assert_eq!(prefix_url("/b", "//x"), None);
        assert_eq!(prefix_url("/b", "x"), None);
        assert_eq!(prefix_url("", "/x"), None);
    }
}
