//! The security policy: response headers built from `[security]`, with a Content-Security-Policy
//! that allows exactly the inline scripts and styles the build emitted (by SHA-256 hash), so the
//! site needs no `'unsafe-inline'`.

use std::collections::BTreeSet;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use folio_content::config::SecurityConfig;

/// Inline code found in the rendered pages, and attributes the CSP will block.
#[derive(Debug, Default, Clone)]
pub(crate) struct InlineCode {
    /// `'sha256-…'` sources of inline `<script>` elements.
    pub scripts: BTreeSet<String>,
    /// `'sha256-…'` sources of inline `<style>` elements.
    pub styles: BTreeSet<String>,
    /// `style="…"` and `on…="…"` attributes: blocked by the CSP, reported as warnings.
    pub blocked_attributes: BTreeSet<String>,
}

impl InlineCode {
    /// Merges another page's findings.
    pub(crate) fn merge(&mut self, other: InlineCode) {
        self.scripts.extend(other.scripts);
        self.styles.extend(other.styles);
        self.blocked_attributes.extend(other.blocked_attributes);
    }
}

/// The CSP source for some inline code: `'sha256-<base64>'`.
pub(crate) fn csp_hash(code: &[u8]) -> String {
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(code))
    )
}

/// Finds the inline scripts and styles of an HTML document (as it will be served).
pub(crate) fn scan_html(html: &str) -> InlineCode {
    let mut found = InlineCode::default();
    let b = html.as_bytes();
    let mut i = 0;
    // Depth of <svg>/<math>: in foreign content `title` and the like are elements whose
    // content is markup, not text.
    let mut foreign = 0usize;
    while let Some(off) = html[i..].find('<') {
        let start = i + off;
        let Some(&next) = b.get(start + 1) else { break };
        if next == b'/' && b.get(start + 2).is_some_and(u8::is_ascii_alphabetic) {
            let (name, _, end) = parse_tag(html, start + 2);
            if name == "svg" || name == "math" {
                foreign = foreign.saturating_sub(1);
            }
            i = end;
            continue;
        }
        if next == b'!' {
            // comments and doctype
            i = if html[start..].starts_with("<!--") {
                html[start..].find("-->").map_or(b.len(), |e| start + e + 3)
            } else {
                start + 2
            };
            continue;
        }
        if !next.is_ascii_alphabetic() {
            i = start + 1;
            continue;
        }
        let (name, attrs, end) = parse_tag(html, start + 1);
        for (k, _) in &attrs {
            if k == "style" || (k.starts_with("on") && k.len() > 2) {
                found.blocked_attributes.insert(format!("<{name} {k}=…>"));
            }
        }
        i = end;
        let self_closing = b[..end].ends_with(b"/>");
        if (name == "svg" || name == "math") && !self_closing {
            foreign += 1;
        }
        if name == "plaintext" && foreign == 0 {
            break; // everything after it is text
        }
        if is_text_only(&name) && (foreign == 0 || name == "script" || name == "style") {
            // The browser reads this element's content as text up to its end tag, so a `<`
            // in it (a page title such as `<img onerror=…>`, which the minifier may leave
            // unescaped inside `<title>`) starts no element and carries no attribute.
            let body_end = end_tag(html, end, &name).unwrap_or(b.len());
            let body = &html[end..body_end];
            let has_src = attrs.iter().any(|(k, _)| k == "src");
            if name == "script" && !has_src && is_executable(&attrs) {
                found.scripts.insert(csp_hash(body.as_bytes()));
            } else if name == "style" {
                found.styles.insert(csp_hash(body.as_bytes()));
            }
            i = body_end;
        }
    }
    found
}

/// Elements whose content the HTML tokenizer reads as text, not markup, up to their end tag:
/// script data, RAWTEXT and RCDATA elements (HTML Living Standard, "parsing HTML documents",
/// the tree builder's generic raw text and RCDATA element parsing algorithms).
fn is_text_only(name: &str) -> bool {
    matches!(
        name,
        "script" | "style" | "title" | "textarea" | "xmp" | "iframe" | "noembed" | "noframes"
    )
}

/// The offset of the end tag `</name` that closes a text-only element: the name matched
/// case-insensitively and followed by whitespace, `/` or `>` (so `</titles` does not close
/// `<title>`).
fn end_tag(h: &str, mut from: usize, name: &str) -> Option<usize> {
    let close = format!("</{name}");
    while let Some(at) = find_ci(h, from, &close) {
        match h.as_bytes().get(at + close.len()) {
            None => return Some(at),
            Some(c) if c.is_ascii_whitespace() || *c == b'/' || *c == b'>' => return Some(at),
            Some(_) => from = at + close.len(),
        }
    }
    None
}

/// Whether a script element's `type` makes the browser run it (data blocks such as JSON-LD are
/// not subject to `script-src`).
fn is_executable(attrs: &[(String, String)]) -> bool {
    match attrs.iter().find(|(k, _)| k == "type") {
        None => true,
        Some((_, t)) => {
            let t = t.trim().to_ascii_lowercase();
            t.is_empty()
                || t == "module"
                || t == "importmap"
                || t == "text/javascript"
                || t == "application/javascript"
        }
    }
}

fn find_ci(h: &str, from: usize, needle: &str) -> Option<usize> {
    let hay = &h.as_bytes()[from..];
    let n = needle.as_bytes();
    hay.windows(n.len())
        .position(|w| w.eq_ignore_ascii_case(n))
        .map(|p| from + p)
}

/// Parses a start tag from just after `<`: (lowercase name, attributes, offset after `>`).
fn parse_tag(h: &str, from: usize) -> (String, Vec<(String, String)>, usize) {
    let b = h.as_bytes();
    let mut i = from;
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' && b[i] != b'/' {
        i += 1;
    }
    let name = h[from..i].to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return (name, attrs, b.len());
        }
        if b[i] == b'>' {
            return (name, attrs, i + 1);
        }
        let ks = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'>' {
            i += 1;
        }
        let key = h[ks..i].to_ascii_lowercase();
        let mut val = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                val = h[vs..i.min(b.len())].to_string();
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                val = h[vs..i].to_string();
            }
        }
        attrs.push((key, val));
    }
}

/// The response headers every page (and every Worker response) carries, in a stable order.
pub(crate) fn headers(cfg: &SecurityConfig, inline: &InlineCode) -> Vec<(String, String)> {
    let mut h = vec![(
        "Content-Security-Policy".to_string(),
        content_security_policy(cfg, inline),
    )];
    if cfg.hsts_max_age > 0 {
        let mut v = format!("max-age={}", cfg.hsts_max_age);
        if cfg.hsts_include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if cfg.hsts_preload {
            v.push_str("; preload");
        }
        h.push(("Strict-Transport-Security".into(), v));
    }
    h.push(("X-Content-Type-Options".into(), "nosniff".into()));
    let xfo = match cfg.frame_ancestors.trim() {
        "'none'" => Some("DENY"),
        "'self'" => Some("SAMEORIGIN"),
        _ => None,
    };
    if let Some(x) = xfo {
        h.push(("X-Frame-Options".into(), x.into()));
    }
    h.push(("Referrer-Policy".into(), cfg.referrer_policy.clone()));
    h.push(("Permissions-Policy".into(), cfg.permissions_policy.clone()));
    h.push((
        "Cross-Origin-Opener-Policy".into(),
        cfg.cross_origin_opener_policy.clone(),
    ));
    h.push((
        "Cross-Origin-Resource-Policy".into(),
        cfg.cross_origin_resource_policy.clone(),
    ));
    for (k, v) in &cfg.extra_headers {
        h.push((k.clone(), v.clone()));
    }
    h
}

/// The CSP: nothing by default, same-origin resources, the emitted inline code by hash.
pub(crate) fn content_security_policy(cfg: &SecurityConfig, inline: &InlineCode) -> String {
    let mut directives: Vec<(String, Vec<String>)> = vec![
        ("default-src".into(), vec!["'none'".into()]),
        (
            "script-src".into(),
            std::iter::once("'self'".to_string())
                .chain(inline.scripts.iter().cloned())
                .collect(),
        ),
        (
            "style-src".into(),
            std::iter::once("'self'".to_string())
                .chain(inline.styles.iter().cloned())
                .collect(),
        ),
        ("img-src".into(), vec!["'self'".into(), "data:".into()]),
        ("font-src".into(), vec!["'self'".into()]),
        // Videos of the site (the `video` shortcode).
        ("media-src".into(), vec!["'self'".into()]),
        ("connect-src".into(), vec!["'self'".into()]),
        ("manifest-src".into(), vec!["'self'".into()]),
        ("base-uri".into(), vec!["'none'".into()]),
        ("form-action".into(), vec!["'self'".into()]),
        ("frame-ancestors".into(), vec![cfg.frame_ancestors.clone()]),
        ("object-src".into(), vec!["'none'".into()]),
    ];
    for (k, extra) in &cfg.csp {
        match directives.iter_mut().find(|(d, _)| d == k) {
            Some((_, v)) => {
                v.retain(|s| s != "'none'");
                v.extend(extra.iter().cloned());
            }
            None => directives.push((k.clone(), extra.clone())),
        }
    }
    let s: Vec<String> = directives
        .into_iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k
            } else {
                format!("{k} {}", v.join(" "))
            }
        })
        .collect();
    s.join("; ")
}

/// The Cloudflare static-assets `_headers` file: the policy for every path, and long caching
/// for the content-hashed assets. Rules are URL paths, so they carry the site's base path
/// (`/blog/*` for a site under `/blog/`).
pub(crate) fn headers_file(
    base_path: &str,
    headers: &[(String, String)],
    immutable_paths: &[String],
) -> String {
    let mut out = format!(
        "# Written by folio build: the security policy of [security] in folio.toml.\n{base_path}/*\n",
    );
    for (k, v) in headers {
        out.push_str(&format!("  {k}: {v}\n"));
    }
    for p in immutable_paths {
        out.push_str(&format!(
            "{base_path}{p}\n  Cache-Control: public, max-age=31536000, immutable\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inline_scripts_and_styles_but_not_data_blocks() {
        let html = r#"<!doctype html><html><head><script>a()</script><script src="/x.js"></script><script type="application/ld+json">{"a":1}</script><style>p{}</style></head><body><p style="x" onclick="y">hi</p><!-- <script>no()</script> --></body></html>"#;
        let f = scan_html(html);
        assert_eq!(f.scripts, BTreeSet::from([csp_hash(b"a()")]));
        assert_eq!(f.styles, BTreeSet::from([csp_hash(b"p{}")]));
        assert_eq!(f.blocked_attributes.len(), 2);
    }

    #[test]
    fn text_inside_title_textarea_and_raw_text_elements_is_no_markup() {
        // What the minifier writes for a page titled `<img onerror=alert(1)>`: the title's
        // content is RCDATA, so the browser shows it as text and creates no <img>.
        let html = concat!(
            "<title><img onerror=alert(1)> · site</title>",
            "<meta content=\"<img onerror=alert(2)>\" property=og:title>",
            "<textarea><p style=color:red onclick=x()></textarea>",
            "<noembed><b onmouseover=y()></noembed>",
            "<TITLE>a</TITLEs><i onfocus=z()> </Title >",
            "<h1>&lt;img onerror=alert(1)></h1>",
        );
        let f = scan_html(html);
        assert!(
            f.blocked_attributes.is_empty(),
            "{:?}",
            f.blocked_attributes
        );
        // A script in a title is text: its hash must not be allowed by the policy.
        let f = scan_html(
            "<title><script>alert(1)</script></title><textarea><style>p{}</style></textarea>",
        );
        assert!(f.scripts.is_empty() && f.styles.is_empty(), "{f:?}");
        // In SVG, <title> is an element whose content is markup: its attributes count.
        let f = scan_html(
            "<svg viewBox=\"0 0 1 1\"><title><a onclick=x()>t</a></title><path d=M0/></svg><title><b onclick=y()></title>",
        );
        assert_eq!(
            f.blocked_attributes,
            BTreeSet::from(["<a onclick=…>".to_string()])
        );
        // A real element after the text-only one is still scanned.
        let f = scan_html("<title><a onclick=x()></title><button onclick=\"go()\">go</button>");
        assert_eq!(
            f.blocked_attributes,
            BTreeSet::from(["<button onclick=…>".to_string()])
        );
    }

    #[test]
    fn hash_matches_the_csp_spec_example() {
        // sha256 of "alert('Hello, world.');" from the CSP Level 3 specification.
        assert_eq!(
            csp_hash(b"alert('Hello, world.');"),
            "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"
        );
    }

    #[test]
    fn policy_has_no_unsafe_inline_and_carries_hashes() {
        let mut inline = InlineCode::default();
        inline.scripts.insert(csp_hash(b"x"));
        let h = headers(&SecurityConfig::default(), &inline);
        let csp = &h[0].1;
        assert!(csp.contains(&csp_hash(b"x")));
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(h
            .iter()
            .any(|(k, v)| k == "Strict-Transport-Security" && v.starts_with("max-age=63072000")));
        assert!(h.iter().any(|(k, v)| k == "X-Frame-Options" && v == "DENY"));
    }
}
