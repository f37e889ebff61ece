//! The check of every link and image that names a path of the site — root-relative
//! (`/about/`), relative (`../x/`, `pic.png`) or an anchor of the page itself (`#intro`) — and
//! of covers given as site paths, against the outputs the build plans; images without alt
//! text are warned about. (`@/` and `.md` links are resolved while rendering, see
//! `markdown`; `http(s)` links are left to `folio check --external`.)

use std::collections::{HashMap, HashSet};

use folio_content::content::{Content, SourceFile};
use folio_content::diagnostics::Diagnostic;
use folio_content::frontmatter::find_key_in_file;

use super::bodies::Bodies;
use super::Build;
use crate::markdown::Rendered;

impl Build<'_> {
    /// Reports links, images and covers that name no output of the site.
    pub(super) fn check_urls(
        &mut self,
        content: &Content,
        bodies: &Bodies,
        outputs: &HashSet<String>,
    ) {
        // Site path of every page and section → the anchors of its body.
        let mut anchors: HashMap<&str, &HashSet<String>> = HashMap::new();
        let mut files: Vec<(&SourceFile, &str, &Rendered)> = Vec::new();
        for (p, r) in content.pages.iter().zip(&bodies.rendered) {
            anchors.insert(&p.path, &r.anchors);
            files.push((&p.file, &p.path, r));
        }
        for (k, r) in &bodies.section_rendered {
            if let Some(s) = content.sections.get(k) {
                anchors.insert(&s.path, &r.anchors);
                if let Some(f) = &s.file {
                    files.push((f, &s.path, r));
                }
            }
        }
        for (file, base, r) in files {
            for u in &r.urls {
                // Where the link is: worked out only for a message (it scans the file).
                let pos = || Some(file.body_pos(u.offset));
                let (path, fragment) = match u.url.split_once('#') {
                    Some((p, f)) => (p, Some(f)),
                    None => (u.url.as_str(), None),
                };
                let path = path.split('?').next().unwrap_or("");
                let target = if path.is_empty() {
                    Some(base.to_string())
                } else {
                    site_path(base, &percent_decode(path))
                };
                let Some(target) = target else {
                    self.diags.push(Diagnostic::error(
                        &file.shown,
                        pos(),
                        format!("broken link: `{}` climbs above the site's root", u.url),
                    ));
                    continue;
                };
                let Some(found) = output_of(&target, outputs) else {
                    let msg = if u.image {
                        format!(
                            "missing image: `{}` ({target}) is not a file of the site (static/, or beside the page in its bundle)",
                            u.url
                        )
                    } else {
                        format!(
                            "broken link: `{}` ({target}) is not a page, section or file of the site{}",
                            u.url,
                            suggest_path(&target, &anchors)
                        )
                    };
                    self.diags.push(Diagnostic::error(&file.shown, pos(), msg));
                    continue;
                };
                let page = found.strip_suffix("index.html").map(|d| format!("/{d}"));
                if let (Some(frag), Some(set)) = (
                    fragment.filter(|f| !f.is_empty()),
                    page.as_deref().and_then(|p| anchors.get(p)),
                ) {
                    if !set.contains(frag) {
                        self.diags.push(Diagnostic::error(
                            &file.shown,
                            pos(),
                            format!("broken anchor: `#{frag}` is not a heading of {target}"),
                        ));
                    }
                }
            }
            for &at in &r.missing_alt {
                self.diags.push(Diagnostic::warning(
                    &file.shown,
                    Some(file.body_pos(at)),
                    "image without alt text: say what it shows in `![…](…)` (or mark it decorative in HTML with alt=\"\")",
                ));
            }
        }
        for p in &content.pages {
            let Some(cover) = p.cover.as_deref().filter(|c| c.starts_with('/')) else {
                continue;
            };
            if output_of(&percent_decode(cover), outputs).is_none() {
                self.diags.push(Diagnostic::error(
                    &p.file.shown,
                    find_key_in_file(&p.file.text, "cover")
                        .or_else(|| find_key_in_file(&p.file.text, "images")),
                    format!("cover image {cover:?} is not a file of the site (put it in static/, or beside the page)"),
                ));
            }
        }
    }
}

/// The output file a site path is served from, if the build writes one: the file itself, or
/// the `index.html` of the folder.
fn output_of(path: &str, outputs: &HashSet<String>) -> Option<String> {
    let rel = path.trim_start_matches('/');
    let candidates = if rel.is_empty() || rel.ends_with('/') {
        vec![format!("{rel}index.html")]
    } else {
        vec![rel.to_string(), format!("{rel}/index.html")]
    };
    candidates.into_iter().find(|c| outputs.contains(c))
}

/// `url` resolved against the page at `base` (a folder path such as `/projects/x/`), as a
/// browser would, with `.` and `..` resolved; `None` above the root.
pub(crate) fn site_path(base: &str, url: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    if !url.starts_with('/') {
        parts.extend(base.split('/').filter(|s| !s.is_empty()));
    }
    for seg in url.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    let last = url.rsplit('/').next().unwrap_or("");
    let folder = matches!(last, "" | "." | "..");
    if folder && out != "/" {
        out.push('/');
    }
    Some(out)
}

/// `%XX` escapes decoded (invalid ones kept as written).
pub(crate) fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// "; did you mean /about/?" for the page or section path closest to a broken one.
fn suggest_path(target: &str, pages: &HashMap<&str, &HashSet<String>>) -> String {
    let known: Vec<&str> = pages.keys().copied().collect();
    match folio_content::frontmatter::suggest(target, &known) {
        Some(p) => format!("; did you mean {p}?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_like_a_browser() {
        assert_eq!(
            site_path("/projects/x/", "pic.png").unwrap(),
            "/projects/x/pic.png"
        );
        assert_eq!(site_path("/projects/x/", "../y/").unwrap(), "/projects/y/");
        assert_eq!(site_path("/projects/x/", "..").unwrap(), "/projects/");
        assert_eq!(site_path("/a/", "/b/c.css").unwrap(), "/b/c.css");
        assert_eq!(site_path("/", "../x"), None);
        assert_eq!(percent_decode("a%20b%zz"), "a b%zz");
        let outputs: HashSet<String> = ["about/index.html", "css/a.css", "index.html"]
            .map(String::from)
            .into();
        assert_eq!(output_of("/about/", &outputs).unwrap(), "about/index.html");
        assert_eq!(output_of("/about", &outputs).unwrap(), "about/index.html");
        assert_eq!(output_of("/", &outputs).unwrap(), "index.html");
        assert!(output_of("/abuot/", &outputs).is_none());
    }
}
