//! The checks before rendering: every output path claimed once, every template named by
//! the content present.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use folio_edge::config::MANIFEST_FILE;

use crate::assets::Assets;
use crate::render::{self, Tag};
use crate::templates::Templates;
use folio_content::content::{self, Content};
use folio_content::diagnostics::{Diagnostic, Diagnostics};
use folio_content::frontmatter::find_key_in_file;

use super::bodies::Bodies;
use super::load::LoadedTemplates;
use super::Build;

/// What the checks leave for rendering.
pub(super) struct Checked {
    /// The site's tags, each with its pages.
    pub(super) tags: Vec<Tag>,
    /// How many files the output will hold.
    pub(super) planned: usize,
    /// The templates, to register this build's site functions on.
    pub(super) templates: Templates,
    /// The templates as loaded, for the next build (`folio serve` only).
    pub(super) pristine: Option<Arc<Templates>>,
}

impl Build<'_> {
    /// Plans the output paths and checks the template names; stops the build (with every
    /// diagnostic so far) on any error.
    pub(super) fn check(
        &mut self,
        content: &Content,
        bodies: &Bodies,
        assets: &Assets,
        templates: Option<LoadedTemplates>,
    ) -> Result<Checked, Diagnostics> {
        let tags = render::collect_tags(content, &mut self.diags);
        let outputs = plan_outputs(content, &tags, assets, &mut self.diags);
        let planned = outputs.len();
        self.check_urls(content, bodies, &outputs);
        let Some(LoadedTemplates {
            working: templates,
            pristine,
        }) = templates
        else {
            return Err(std::mem::take(&mut self.diags));
        };
        self.clock.mark("checks");
        check_template_names(content, &tags, &templates, &mut self.diags);
        if self.diags.has_errors() {
            return Err(std::mem::take(&mut self.diags));
        }
        Ok(Checked {
            tags,
            planned,
            templates,
            pristine,
        })
    }
}

/// Lists every output path once; two sources claiming one path is an error. Returns them.
fn plan_outputs(
    content: &Content,
    tags: &[Tag],
    assets: &Assets,
    diags: &mut Diagnostics,
) -> HashSet<String> {
    let mut claimed: HashMap<String, PathBuf> = HashMap::new();
    let mut claim =
        |out: String, by: &Path, pos: Option<(usize, usize)>, diags: &mut Diagnostics| {
            if let Some(first) = claimed.get(&out) {
                if first != by {
                    diags.push(Diagnostic::error(
                        by,
                        pos,
                        format!(
                            "duplicate output path /{out}: also produced by {}",
                            first.display()
                        ),
                    ));
                } else {
                    diags.push(Diagnostic::error(
                        by,
                        pos,
                        format!("duplicate output path /{out}, produced twice by this file"),
                    ));
                }
            } else {
                claimed.insert(out, by.to_path_buf());
            }
        };
    let generated = Path::new("<generated>");
    for f in [
        "atom.xml",
        "sitemap.xml",
        "robots.txt",
        "projects.json",
        "_headers",
        "_redirects",
        MANIFEST_FILE,
        "404.html",
    ] {
        claim(f.to_string(), generated, None, diags);
    }
    for s in content.sections.values().filter(|s| s.gets_page()) {
        let shown = s
            .file
            .as_ref()
            .map(|f| f.shown.clone())
            .unwrap_or_else(|| PathBuf::from("content"));
        for n in 1..=s.pager_count() {
            claim(
                format!(
                    "{}index.html",
                    render::pager_path(&s.path, n).trim_start_matches('/')
                ),
                &shown,
                None,
                diags,
            );
        }
        if let Some(feed) = s.feed_path() {
            claim(
                feed.trim_start_matches('/').to_string(),
                &shown,
                None,
                diags,
            );
        }
    }
    for p in &content.pages {
        let pos = find_key_in_file(&p.file.text, "slug");
        claim(
            format!("{}index.html", p.path.trim_start_matches('/')),
            &p.file.shown,
            pos,
            diags,
        );
        for a in &p.aliases {
            claim(
                alias_output(a),
                &p.file.shown,
                find_key_in_file(&p.file.text, "aliases"),
                diags,
            );
        }
        for (_, out) in &p.assets {
            claim(out.clone(), &p.file.shown, None, diags);
        }
    }
    if !tags.is_empty() {
        claim("tags/index.html".into(), Path::new("<tags>"), None, diags);
        for t in tags {
            claim(
                format!("tags/{}/index.html", t.slug),
                Path::new("<tags>"),
                None,
                diags,
            );
        }
    }
    for f in &content.loose_files {
        claim(f.output.clone(), &f.source, None, diags);
    }
    for (out, f) in &assets.files {
        claim(out.clone(), &f.shown, None, diags);
    }
    claimed.into_keys().collect()
}

pub(super) fn page_template<'a>(
    content: &'a Content,
    p: &'a content::Page,
) -> (&'a str, PathBuf, Option<(usize, usize)>) {
    if let Some(t) = &p.meta.fm.template {
        return (
            t,
            p.file.shown.clone(),
            find_key_in_file(&p.file.text, "template"),
        );
    }
    if let Some(s) = content.sections.get(&p.section) {
        if let (Some(m), Some(f)) = (&s.meta, &s.file) {
            if let Some(t) = &m.fm.page_template {
                return (
                    t,
                    f.shown.clone(),
                    find_key_in_file(&f.text, "page_template"),
                );
            }
        }
    }
    ("page.html", p.file.shown.clone(), None)
}

pub(super) fn section_template(s: &content::Section) -> &str {
    s.meta
        .as_ref()
        .and_then(|m| m.fm.template.as_deref())
        .unwrap_or(if s.key.is_empty() {
            "index.html"
        } else {
            "section.html"
        })
}

fn check_template_names(content: &Content, tags: &[Tag], t: &Templates, diags: &mut Diagnostics) {
    for p in &content.pages {
        let (name, shown, pos) = page_template(content, p);
        if !t.has(name) {
            diags.push(Diagnostic::error(
                shown,
                pos,
                format!("unknown template `{name}`: not in templates/ nor in the theme"),
            ));
        }
    }
    for s in content.sections.values().filter(|s| s.gets_page()) {
        let name = section_template(s);
        if !t.has(name) {
            let (shown, pos) = s
                .file
                .as_ref()
                .map(|f| (f.shown.clone(), find_key_in_file(&f.text, "template")))
                .unwrap_or_else(|| ("content".into(), None));
            diags.push(Diagnostic::error(
                shown,
                pos,
                format!("unknown template `{name}`: not in templates/ nor in the theme"),
            ));
        }
    }
    let mut needed = vec!["404.html"];
    if !tags.is_empty() {
        needed.extend(["taxonomy_list.html", "taxonomy_single.html"]);
    }
    for n in needed {
        if !t.has(n) {
            diags.push(Diagnostic::error(
                "templates",
                None,
                format!("the theme has no `{n}` template; add templates/{n}"),
            ));
        }
    }
}

/// The output path of an alias (a redirect page).
pub(super) fn alias_output(alias: &str) -> String {
    let a = alias.trim_start_matches('/');
    if a.ends_with('/') || a.is_empty() {
        format!("{a}index.html")
    } else {
        a.to_string()
    }
}
