//! Tera templates: the theme's, overridden by name by the site's `templates/`, checked one by one
//! so every syntax error is reported, and render errors traced back to a template line.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tera::ast::Node;
use tera::{Context, Tera};

use crate::site::fields::FieldReads;
use crate::theme::Theme;
use folio_content::diagnostics::{display_path, line_col, Diagnostic, Diagnostics};

/// The parsed templates of a site, with their sources for error locations.
#[derive(Clone)]
pub(crate) struct Templates {
    /// The Tera instance; functions are registered on it before rendering.
    pub tera: Tera,
    sources: HashMap<String, (PathBuf, String)>,
    /// Per template: a digest of every template it can reach (itself, its parents, what it
    /// includes and imports, transitively), for incremental builds.
    closures: HashMap<String, [u8; 32]>,
    /// Per template: what rendering it may read of the pages it shows, worked out on first
    /// use and shared by every copy of these templates (a `folio serve` rebuild with the same
    /// templates scans none of them again).
    field_reads: Arc<Mutex<HashMap<String, Arc<FieldReads>>>>,
}

impl Templates {
    /// Loads the theme's templates, then the site's `templates/` over them. Syntax errors of
    /// every template are pushed to `diags`; `None` if any template failed. Returns `prev`
    /// itself (shared, not copied) instead of parsing again when every template's name, file
    /// and text are the same as `prev`'s (`folio serve` rebuilds after each edit; parsing every
    /// template is then most of what loading them costs).
    pub(crate) fn load(
        root: &Path,
        theme: &Theme,
        diags: &mut Diagnostics,
        prev: Option<&Arc<Templates>>,
    ) -> Option<Arc<Templates>> {
        let mut sources: BTreeMap<String, (PathBuf, String)> = BTreeMap::new();
        match theme.files(root, "templates/") {
            Ok(files) => {
                for f in files {
                    let name = f.rel.trim_start_matches("templates/").to_string();
                    match String::from_utf8(f.bytes.into_owned()) {
                        Ok(text) => {
                            sources.insert(name, (f.shown, text));
                        }
                        Err(e) => diags.push(folio_content::diagnostics::not_utf8(&f.shown, &e)),
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
                match folio_content::diagnostics::read_text(e.path(), &shown) {
                    Ok(text) => {
                        sources.insert(name, (shown, text));
                    }
                    Err(d) => diags.push(d),
                }
            }
        }

        if let Some(p) = prev {
            if p.sources.len() == sources.len()
                && sources
                    .iter()
                    .all(|(n, src)| p.sources.get(n).is_some_and(|old| old == src))
            {
                return Some(Arc::clone(p));
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
        tera.register_filter("json_ld", json_ld_filter);
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
        let mut t = Templates {
            tera,
            sources: sources.into_iter().collect(),
            closures: HashMap::new(),
            field_reads: Arc::default(),
        };
        t.closures = t
            .sources
            .keys()
            .map(|n| (n.clone(), t.digest_of(&t.dependencies(n))))
            .collect();
        Some(Arc::new(t))
    }

    /// The templates `name` directly names: its parent (`extends`), what it `include`s
    /// (existing or not: `ignore missing` makes an absent one a dependency too) and the macro
    /// files it `import`s, anywhere in its body, blocks and macros.
    fn direct_dependencies(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if let Ok(t) = self.tera.get_template(name) {
            out.extend(t.parent.iter().cloned());
            out.extend(t.parents.iter().cloned());
            out.extend(t.imported_macro_files.iter().map(|(f, _)| f.clone()));
            node_dependencies(&t.ast, &mut out);
            for m in t.macros.values() {
                node_dependencies(&m.body, &mut out);
            }
            for b in t.blocks.values() {
                node_dependencies(&b.body, &mut out);
            }
        }
        out
    }

    /// Every template rendering `name` may use, `name` included: the transitive closure of
    /// `extends`, `include` and `import`. An edit to any of them can change the output of
    /// `name`; an edit to any other template cannot.
    pub(crate) fn dependencies(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            if seen.insert(n.clone()) {
                todo.extend(
                    self.direct_dependencies(&n)
                        .into_iter()
                        .filter(|d| !seen.contains(d)),
                );
            }
        }
        seen
    }

    fn digest_of(&self, names: &BTreeSet<String>) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        for n in names {
            h.update(n.as_bytes());
            h.update(&[0]);
            match self.sources.get(n) {
                Some((_, text)) => {
                    h.update(&[1]);
                    h.update(&(text.len() as u64).to_le_bytes());
                    h.update(text.as_bytes());
                }
                None => {
                    h.update(&[2]);
                }
            }
        }
        *h.finalize().as_bytes()
    }

    /// A digest of the sources of every template rendering `name` may use (see
    /// [`Templates::dependencies`]): equal digests mean rendering `name` with equal inputs
    /// gives equal output, whatever else changed among the templates.
    pub(crate) fn closure_digest(&self, name: &str) -> [u8; 32] {
        match self.closures.get(name) {
            Some(d) => *d,
            None => self.digest_of(&self.dependencies(name)),
        }
    }

    /// What rendering `name` may read of the pages it shows (`site::fields`), from the
    /// sources of every template it may use (see [`Templates::dependencies`]).
    pub(crate) fn closure_reads(&self, name: &str) -> Arc<FieldReads> {
        let mut kept = self.field_reads.lock().unwrap_or_else(|e| e.into_inner());
        kept.entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(FieldReads::of(self.dependencies(name).iter().filter_map(
                    |n| self.sources.get(n).map(|(_, text)| text.as_str()),
                )))
            })
            .clone()
    }

    /// A hash of every template's name and source: part of the page cache key.
    pub(crate) fn digest(&self) -> [u8; 32] {
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
    pub(crate) fn has(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }

    /// Renders `name`; a failure is located in the template that caused it.
    pub(crate) fn render(&self, name: &str, ctx: &Context) -> Result<String, Diagnostic> {
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
        // Then what it includes and imports: an error in an included partial or a macro
        // names only the template being rendered.
        let deps = self.dependencies(name);
        candidates.extend(deps.iter().map(String::as_str).filter(|d| *d != name));
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

/// Collects the template names that `nodes` include, extend or import, at any depth.
fn node_dependencies(nodes: &[Node], out: &mut BTreeSet<String>) {
    for n in nodes {
        match n {
            Node::Include(_, names, _) => out.extend(names.iter().cloned()),
            Node::Extends(_, name) => {
                out.insert(name.clone());
            }
            Node::ImportMacro(_, file, _) => {
                out.insert(file.clone());
            }
            Node::MacroDefinition(_, m, _) => node_dependencies(&m.body, out),
            Node::FilterSection(_, f, _) => node_dependencies(&f.body, out),
            Node::Block(_, b, _) => node_dependencies(&b.body, out),
            Node::Forloop(_, f, _) => {
                node_dependencies(&f.body, out);
                if let Some(e) = &f.empty_body {
                    node_dependencies(e, out);
                }
            }
            Node::If(i, _) => {
                for (_, _, body) in &i.conditions {
                    node_dependencies(body, out);
                }
                if let Some((_, body)) = &i.otherwise {
                    node_dependencies(body, out);
                }
            }
            Node::Super
            | Node::Text(_)
            | Node::VariableBlock(..)
            | Node::Set(..)
            | Node::Raw(..)
            | Node::Break(_)
            | Node::Continue(_)
            | Node::Comment(..) => {}
        }
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

/// The `json_ld` filter: a value as JSON that is safe inside `<script type="application/ld+json">`
/// (and any other HTML raw-text element): `<`, `>` and `&` become `\u003c`-style escapes, so a
/// title that contains `</script>` cannot end the element. Use it with `| safe`.
pub(crate) fn json_ld_filter(
    value: &serde_json::Value,
    _: &std::collections::HashMap<String, serde_json::Value>,
) -> tera::Result<serde_json::Value> {
    crate::site::fields::note_whole_page(value);
    let text =
        serde_json::to_string(value).map_err(|e| tera::Error::msg(format!("json_ld: {e}")))?;
    Ok(serde_json::Value::String(
        text.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
    ))
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
        let t = Templates::load(
            dir.path(),
            &Theme::Dir(dir.path().join("themes/t")),
            &mut d,
            None,
        )
        .map(Arc::unwrap_or_clone);
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
    fn dependencies_follow_extends_include_and_import() {
        let (_d, t, diags) = site(&[
            ("base.html", "{% import \"macros.html\" as m %}<b>{% block b %}{% endblock %}</b>"),
            ("macros.html", "{% macro x() %}{% include \"deep.html\" %}{% endmacro %}"),
            ("deep.html", "deep"),
            (
                "page.html",
                "{% extends \"base.html\" %}{% block b %}{% if a %}{% for i in l %}{% include [\"part.html\", \"gone.html\"] ignore missing %}{% endfor %}{% endif %}{% endblock %}",
            ),
            ("part.html", "part"),
            ("other.html", "other"),
        ]);
        let t = t.unwrap_or_else(|| panic!("{diags}"));
        let deps: Vec<String> = t.dependencies("page.html").into_iter().collect();
        assert_eq!(
            deps,
            [
                "base.html",
                "deep.html",
                "gone.html",
                "macros.html",
                "page.html",
                "part.html"
            ]
        );
        let (_d2, t2, _) = site(&[
            ("base.html", "{% import \"macros.html\" as m %}<b>{% block b %}{% endblock %}</b>"),
            ("macros.html", "{% macro x() %}{% include \"deep.html\" %}{% endmacro %}"),
            ("deep.html", "deep, edited"),
            (
                "page.html",
                "{% extends \"base.html\" %}{% block b %}{% if a %}{% for i in l %}{% include [\"part.html\", \"gone.html\"] ignore missing %}{% endfor %}{% endif %}{% endblock %}",
            ),
            ("part.html", "part"),
            ("other.html", "other, edited"),
        ]);
        let t2 = t2.unwrap();
        assert_ne!(
            t.closure_digest("page.html"),
            t2.closure_digest("page.html")
        );
        assert_eq!(
            t.closure_digest("part.html"),
            t2.closure_digest("part.html")
        );
        assert_ne!(
            t.closure_digest("other.html"),
            t2.closure_digest("other.html")
        );
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

    #[test]
    fn json_ld_cannot_close_its_script() {
        let v = serde_json::json!({"name": "a </script><b> & c"});
        let out = super::json_ld_filter(&v, &Default::default()).unwrap();
        let text = out.as_str().unwrap();
        assert!(!text.contains('<') && !text.contains('&'), "{text}");
        let back: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, v);
    }
}
