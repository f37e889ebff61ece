//! Tera templates: the theme's, overridden by name by the site's `templates/`, checked one by one
//! so every syntax error is reported, and render errors traced back to a template line.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tera::{Context, Tera};

use crate::diagnostics::{display_path, line_col, Diagnostic, Diagnostics};
use crate::theme::Theme;

/// The parsed templates of a site, with their sources for error locations.
pub struct Templates {
    /// The Tera instance; functions are registered on it before rendering.
    pub tera: Tera,
    sources: HashMap<String, (PathBuf, String)>,
}

impl Templates {
    /// Loads the theme's templates, then the site's `templates/` over them. Syntax errors of
    /// every template are pushed to `diags`; `None` if any template failed.
    pub fn load(root: &Path, theme: &Theme, diags: &mut Diagnostics) -> Option<Templates> {
        let mut sources: BTreeMap<String, (PathBuf, String)> = BTreeMap::new();
        match theme.files(root, "templates/") {
            Ok(files) => {
                for f in files {
                    let name = f.rel.trim_start_matches("templates/").to_string();
                    match String::from_utf8(f.bytes.into_owned()) {
                        Ok(text) => {
                            sources.insert(name, (f.shown, text));
                        }
                        Err(e) => diags.push(crate::diagnostics::not_utf8(&f.shown, &e)),
                    }
                }
            }
            Err(d) => diags.push(d),
        }
        let site_dir = root.join("templates");
        if site_dir.is_dir() {
            for e in walkdir::WalkDir::new(&site_dir).sort_by_file_name() {
                let e = match e {
                    Ok(e) => e,
                    Err(err) => {
                        diags.push(Diagnostic::error(
                            display_path(root, err.path().unwrap_or(&site_dir)),
                            None,
                            format!("cannot read: {err}"),
                        ));
                        continue;
                    }
                };
                if !e.file_type().is_file() || e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let shown = display_path(root, e.path());
                let name = e
                    .path()
                    .strip_prefix(&site_dir)
                    .expect("under templates")
                    .to_string_lossy()
                    .replace('\\', "/");
                match crate::diagnostics::read_text(e.path(), &shown) {
                    Ok(text) => {
                        sources.insert(name, (shown, text));
                    }
                    Err(d) => diags.push(d),
                }
            }
        }

        // Parse each template alone first, so every syntax error is reported, not only the first.
        let mut ok = true;
        for (name, (shown, text)) in &sources {
            if let Err(e) = tera::Template::new(name, None, text) {
                ok = false;
                let (pos, msg) = syntax_error(&e);
                diags.push(Diagnostic::error(
                    shown,
                    pos,
                    format!("template syntax error: {msg}"),
                ));
            }
        }
        if !ok {
            return None;
        }
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html", ".htm", ".xml"]);
        // Tera's default also escapes `/`, which mangles every URL; HTML needs only these five.
        tera.set_escape_fn(crate::highlight::escape);
        if let Err(e) =
            tera.add_raw_templates(sources.iter().map(|(n, (_, t))| (n.as_str(), t.as_str())))
        {
            // Inheritance problems: a missing parent, a cycle.
            let msg = chain(&e);
            let named = sources
                .keys()
                .find(|n| msg.contains(&format!("'{n}'")))
                .cloned();
            let (shown, pos) = match &named {
                Some(n) => {
                    let (shown, text) = &sources[n];
                    (
                        shown.clone(),
                        text.find("extends").map(|o| line_col(text, o)),
                    )
                }
                None => (PathBuf::from("templates"), None),
            };
            diags.push(Diagnostic::error(shown, pos, msg));
            return None;
        }
        Some(Templates {
            tera,
            sources: sources.into_iter().collect(),
        })
    }

    /// A hash of every template's name and source: part of the page cache key.
    pub fn digest(&self) -> [u8; 32] {
        let mut names: Vec<&String> = self.sources.keys().collect();
        names.sort();
        let mut h = blake3::Hasher::new();
        for n in names {
            h.update(n.as_bytes());
            h.update(&[0]);
            h.update(self.sources[n].1.as_bytes());
            h.update(&[0]);
        }
        *h.finalize().as_bytes()
    }

    /// Whether a template of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }

    /// Renders `name`; a failure is located in the template that caused it.
    pub fn render(&self, name: &str, ctx: &Context) -> Result<String, Diagnostic> {
        self.tera
            .render(name, ctx)
            .map_err(|e| self.locate(name, &e))
    }

    fn locate(&self, name: &str, e: &tera::Error) -> Diagnostic {
        let msg = chain(e);
        // The deepest template named in the message is where it happened (a parent or include).
        let mut candidates: Vec<&str> = self
            .sources
            .keys()
            .filter(|n| msg.contains(&format!("'{n}'")))
            .map(String::as_str)
            .collect();
        candidates.sort_by_key(|n| std::cmp::Reverse(msg.rfind(&format!("'{n}'"))));
        if !candidates.contains(&name) {
            candidates.push(name);
        }
        // Add the parents of `name`: errors in inherited blocks name only the child.
        if let Ok(t) = self.tera.get_template(name) {
            for p in &t.parents {
                candidates.push(p.as_str());
            }
        }
        let needles = quoted(&msg);
        for cand in &candidates {
            if let Some((shown, text)) = self.sources.get(*cand) {
                for needle in &needles {
                    if let Some(off) = find_in_tags(text, needle) {
                        return Diagnostic::error(
                            shown,
                            Some(line_col(text, off)),
                            format!("template error: {msg}"),
                        );
                    }
                }
            }
        }
        let shown = self
            .sources
            .get(candidates[0])
            .map(|(p, _)| p.clone())
            .unwrap_or_else(|| PathBuf::from(format!("templates/{name}")));
        Diagnostic::error(shown, Some((1, 1)), format!("template error: {msg}"))
    }
}

/// The messages of an error and all its causes, joined.
fn chain(e: &tera::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    parts.join(": ").replace('\n', " ")
}

/// Line, column and the expectation from Tera's parser error.
fn syntax_error(e: &tera::Error) -> (Option<(usize, usize)>, String) {
    let mut full = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        full.push('\n');
        full.push_str(&s.to_string());
        src = s.source();
    }
    let pos = full.lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix("-->")?.trim();
        let (a, b) = rest.split_once(':')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    });
    let msg = full
        .lines()
        .find_map(|l| l.trim().strip_prefix("= ").map(str::to_string))
        .unwrap_or_else(|| full.lines().next().unwrap_or("").to_string());
    (pos, msg)
}

/// Words in backticks or quotes in an error message: what to look for in the template.
fn quoted(msg: &str) -> Vec<String> {
    let mut out = Vec::new();
    for delim in ['`', '\''] {
        let parts: Vec<&str> = msg.split(delim).collect();
        for (i, p) in parts.iter().enumerate() {
            if i % 2 == 1
                && !p.is_empty()
                && !p.ends_with(".html")
                && !p.ends_with(".xml")
                && p.len() < 200
            {
                out.push(p.to_string());
            }
        }
    }
    out
}

/// The offset of `needle` inside a `{{ … }}` or `{% … %}` tag of the template.
fn find_in_tags(text: &str, needle: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(needle) {
        let at = from + i;
        let before = &text[..at];
        let open = before.rfind("{{").max(before.rfind("{%"));
        let close = before.rfind("}}").max(before.rfind("%}"));
        if open.is_some() && open > close {
            return Some(at);
        }
        from = at + needle.len().max(1);
    }
    // A function or filter name alone may not be in a tag in the message's form: plain search.
    text.find(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(files: &[(&str, &str)]) -> (tempfile::TempDir, Option<Templates>, Diagnostics) {
        let dir = tempfile::tempdir().unwrap();
        for (p, t) in files {
            let path = dir.path().join("themes/t/templates").join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        }
        let mut d = Diagnostics::new();
        let t = Templates::load(dir.path(), &Theme::Dir(dir.path().join("themes/t")), &mut d);
        (dir, t, d)
    }

    #[test]
    fn every_syntax_error_is_reported_with_its_line() {
        let (_d, t, diags) = site(&[
            ("a.html", "ok\n{{ x "),
            ("b.html", "line\n\n{% if %}{% endif %}"),
            ("c.html", "fine"),
        ]);
        assert!(t.is_none());
        let errs = diags.errors();
        assert_eq!(errs.len(), 2, "{diags}");
        assert!(errs[0].path.ends_with("a.html"));
        assert_eq!(errs[0].line, Some(2));
        assert_eq!(errs[1].line, Some(3));
    }

    #[test]
    fn runtime_error_points_at_the_line_in_the_parent() {
        let (_d, t, diags) = site(&[
            (
                "base.html",
                "<p>\n{% block b %}{% endblock %}\n{{ page.nope }}\n",
            ),
            (
                "page.html",
                "{% extends \"base.html\" %}{% block b %}x{% endblock %}",
            ),
        ]);
        let t = t.unwrap_or_else(|| panic!("{diags}"));
        let mut ctx = Context::new();
        ctx.insert("page", &serde_json::json!({"title": "x"}));
        let e = t.render("page.html", &ctx).unwrap_err();
        assert!(e.path.ends_with("base.html"), "{e}");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("page.nope"));
    }
}
