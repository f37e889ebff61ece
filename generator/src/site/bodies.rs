//! The markdown phase: every page's and section's body rendered (in parallel, with code
//! highlighted), then the checks of what the bodies say (internal links and their anchors,
//! code languages).
//!
//! A body is rendered again only when nothing rendered it before with the same inputs: the
//! previous build's entry in the [`super::Memo`] (`folio serve`), else the markdown cache on
//! disk (`.folio/cache/markdown.bin`, [`MarkdownCache`]: `folio build` starts a new process
//! each time), keyed by the options, the file, the page's path and the body, and checked, as
//! the memo's entries are, against what the rendering used (links, shortcode templates,
//! images). A warm build's markdown phase is then a hash of each body and a lookup.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cache::{BlobCache, Key};
use crate::highlight::{self, Highlighter};
use crate::images::Images;
use crate::markdown::{RenderOptions, Rendered};
use crate::shortcodes;
use crate::spill::{Span, Spill, Text};
use crate::templates::Templates;
use folio_content::content::{self, Content};
use folio_content::diagnostics::Diagnostic;

use super::Build;

/// A markdown body rendered once, with what its internal links resolved to then (the cache
/// entry is valid while they resolve the same).
pub(super) struct MdEntry {
    /// The markdown options it was rendered with (a digest) and the body: the entry is
    /// reused for the same file only if both are the same now. The body is only kept for a
    /// build that leaves its memo to the next (`folio serve`): a build in a process of its
    /// own would hold a second copy of every body (100 MB at 10,000 pages) for nothing.
    salt: Key,
    body: Option<Box<str>>,
    /// The site path relative images and shortcode files resolved from.
    base: Box<str>,
    pub(super) full: Arc<Rendered>,
    /// A digest of what a page's own context takes from its rendering besides its summary:
    /// the HTML body and the table of contents (see `reuse::page_fingerprint`).
    pub(super) digest: Key,
    resolved: Vec<Option<String>>,
    /// Digests of the shortcode templates and images it used, in the order of
    /// `full.shortcodes` then `full.images`: reused only while they are the same.
    used: Vec<Key>,
    /// The highlight cache's keys of its code blocks (kept in use while the body is reused).
    highlighted: Vec<Key>,
}

/// An [`MdEntry`] as the markdown cache stores it (the rest is its key).
#[derive(Serialize)]
struct StoredRef<'a> {
    full: &'a Rendered,
    resolved: &'a [Option<String>],
    used: &'a [Key],
    highlighted: &'a [Key],
}

/// [`StoredRef`] read back.
#[derive(Deserialize)]
struct Stored {
    full: Rendered,
    resolved: Vec<Option<String>>,
    used: Vec<Key>,
    highlighted: Vec<Key>,
}

/// The rendered bodies of the previous `folio build` (`.folio/cache/markdown.bin`): what
/// makes a warm build's markdown phase a lookup per body instead of a rendering. An entry's
/// key covers the markdown options, the file, the page's path and the body; what else the
/// rendering used is checked as for the memo's entries ([`MdEntry::still_valid`]).
pub(super) struct MarkdownCache {
    cache: BlobCache,
}

impl MarkdownCache {
    /// An empty cache.
    pub(super) fn new() -> MarkdownCache {
        MarkdownCache {
            // Entries are keyed by the program too (`cache::program_id`).
            cache: BlobCache::new(b"FOLIOMD1"),
        }
    }

    /// The cache file of a site.
    fn path(root: &Path) -> PathBuf {
        root.join(".folio/cache/markdown.bin")
    }

    /// Whether the site has a cache file (a build that will reuse its bodies need not load
    /// the grammars ahead of time).
    pub(super) fn exists(root: &Path) -> bool {
        Self::path(root).is_file()
    }

    /// Reads the cache file of the site at `root`.
    pub(super) fn load(&self, root: &Path) {
        self.cache.load(&Self::path(root));
    }

    /// Keeps the entries stored from now on in a spill file beside the site's cache file
    /// until they are saved, not in memory (see [`BlobCache`]).
    fn spill(&self, root: &Path) {
        self.cache.spill_beside(&Self::path(root));
    }

    /// Writes the entries this build used, after a build written to disk; a failure is a
    /// warning (the next build renders again).
    pub(super) fn save(&self, root: &Path, diags: &mut folio_content::diagnostics::Diagnostics) {
        if let Err(e) = self.cache.save(&Self::path(root)) {
            diags.push(crate::cache::save_warning("the markdown cache", e));
        }
    }

    fn key(salt: &Key, file: &str, base: &str, body: &str) -> Key {
        let mut h = blake3::Hasher::new();
        h.update(salt);
        for part in [file, base, body] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        *h.finalize().as_bytes()
    }

    /// The stored entry for `key`, made whole again; `None` when there is none or it does
    /// not read back.
    fn get(
        &self,
        key: &Key,
        salt: Key,
        body: &str,
        base: &str,
        keep_body: bool,
    ) -> Option<MdEntry> {
        let bytes = self.cache.get(key)?;
        let s: Stored = serde_json::from_slice(&bytes).ok()?;
        let digest = body_digest(&s.full);
        Some(MdEntry {
            salt,
            body: keep_body.then(|| body.into()),
            base: base.into(),
            full: Arc::new(s.full),
            digest,
            resolved: s.resolved,
            used: s.used,
            highlighted: s.highlighted,
        })
    }

    fn put(&self, key: Key, e: &MdEntry) {
        let stored = StoredRef {
            full: &e.full,
            resolved: &e.resolved,
            used: &e.used,
            highlighted: &e.highlighted,
        };
        if let Ok(bytes) = serde_json::to_vec(&stored) {
            self.cache.put(key, Arc::from(bytes));
        }
    }
}

/// See [`MdEntry::digest`].
fn body_digest(r: &Rendered) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(&(r.html.len() as u64).to_le_bytes());
    h.update(r.html.as_bytes());
    let _ = serde_json::to_writer(&mut h, &r.toc);
    *h.finalize().as_bytes()
}

/// The digests of what a rendering used besides its body: its shortcode templates (with
/// everything they reach) and its images (their URLs and sizes).
fn used_digests(r: &Rendered, templates: Option<&Templates>, images: &Images) -> Vec<Key> {
    let t = r
        .shortcodes
        .iter()
        .map(|name| templates.map_or([0; 32], |t| t.closure_digest(name)));
    let i = r.images.iter().map(|p| match images.get(p) {
        Some(Ok(info)) => info.digest(),
        Some(Err(_)) => [1; 32],
        None => [2; 32],
    });
    t.chain(i).collect()
}

impl MdEntry {
    fn new(
        r: Rendered,
        links: &HashMap<String, String>,
        (salt, body, base): (Key, Option<&str>, &str),
        used: Vec<Key>,
        highlighted: Vec<Key>,
    ) -> MdEntry {
        let resolved = r
            .links
            .iter()
            .map(|l| links.get(&l.target).cloned())
            .collect();
        MdEntry {
            digest: body_digest(&r),
            salt,
            body: body.map(Into::into),
            base: base.into(),
            full: Arc::new(r),
            resolved,
            used,
            highlighted,
        }
    }

    fn still_valid(
        &self,
        links: &HashMap<String, String>,
        templates: Option<&Templates>,
        images: &Images,
    ) -> bool {
        used_digests(&self.full, templates, images) == self.used
            && self
                .full
                .links
                .iter()
                .zip(&self.resolved)
                .all(|(l, r)| links.get(&l.target) == r.as_ref())
    }
}

/// Every rendered body of the site.
pub(super) struct Bodies {
    /// One per page, in the order of `content.pages`.
    pub(super) pages: Vec<Arc<MdEntry>>,
    /// By section key, for sections with an `_index.md`.
    pub(super) sections: HashMap<String, Arc<MdEntry>>,
    /// The renderings of `pages`, as the feed takes them.
    pub(super) rendered: Vec<Arc<Rendered>>,
    /// The renderings of `sections`.
    pub(super) section_rendered: HashMap<String, Arc<Rendered>>,
    /// Bodies reused (hits) and rendered (misses).
    pub(super) stats: crate::cache::Stats,
    /// Where a one-off build wrote its pages' HTML out (see [`Build::markdown`]), and
    /// where each page's went (`None`: still in its `Rendered`).
    spill: Option<Spill>,
    spans: Vec<Option<Span>>,
}

impl Bodies {
    /// Page `i`'s rendered HTML, wherever it is kept: what the page's template, the feed
    /// and the search index read (never `rendered[i].html` directly, which is empty once
    /// written out).
    pub(super) fn page_html(&self, i: usize) -> Text<'_> {
        match (&self.spill, self.spans.get(i).copied().flatten()) {
            (Some(spill), Some(span)) => Text::Spilled(spill, span),
            _ => Text::Memory(&self.rendered[i].html),
        }
    }

    /// Every `http(s)` link of every body, where it is written.
    pub(super) fn external_links(&self, content: &Content) -> Vec<crate::linkcheck::ExternalLink> {
        let pages = content.pages.iter().map(|p| &p.file).zip(&self.rendered);
        let sections = self
            .section_rendered
            .iter()
            .filter_map(|(k, r)| Some((content.sections.get(k)?.file.as_ref()?, r)));
        let mut out: Vec<_> = pages
            .chain(sections)
            .flat_map(|(f, r)| {
                r.external
                    .iter()
                    .map(|(at, url)| crate::linkcheck::ExternalLink {
                        file: f.shown.clone(),
                        pos: f.body_pos(*at),
                        url: url.clone(),
                    })
            })
            .collect();
        out.sort_by(|a, b| (&a.file, a.pos).cmp(&(&b.file, b.pos)));
        out
    }

    /// The entries by content path, for the next build.
    pub(super) fn memo(&self, content: &Content) -> HashMap<String, Arc<MdEntry>> {
        content
            .pages
            .iter()
            .map(|p| &p.file)
            .zip(self.pages.iter())
            .chain(
                content
                    .sections
                    .iter()
                    .filter_map(|(k, s)| Some((s.file.as_ref()?, self.sections.get(k)?))),
            )
            .map(|(f, e)| (f.content_path.clone(), e.clone()))
            .collect()
    }
}

impl Build<'_> {
    /// Renders every body in parallel. A body the previous build rendered with the same
    /// options is reused while its internal links resolve the same: from the memo, or (a
    /// build with an empty memo) from the markdown cache on disk.
    pub(super) fn markdown(
        &mut self,
        content: &Content,
        images: &Images,
        templates: Option<&Templates>,
    ) -> Bodies {
        let links = content.link_table();
        let md_opts = RenderOptions {
            smart_punctuation: self.site.cfg.markdown.smart_punctuation,
            toc_depth: self.site.cfg.markdown.toc_depth,
            links: &links,
            highlighter: self.highlighting.then_some(&*self.highlighter),
            math: self.site.cfg.markdown.math,
            images: None,
        };
        let salt = {
            let mut h = blake3::Hasher::new();
            h.update(&crate::cache::program_id());
            h.update(&[
                u8::from(md_opts.smart_punctuation),
                md_opts.toc_depth,
                u8::from(self.highlighting),
                u8::from(md_opts.math),
            ]);
            *h.finalize().as_bytes()
        };
        let prev = &self.prev.markdown;
        // The disk cache serves a build that starts from nothing; after that (`folio
        // serve`), the memo has every body, and reading the file for an edited one would
        // cost more than rendering it.
        let disk = prev.is_empty().then_some(&self.md_cache);
        // Stored only by a build whose cache is saved.
        let storing = self.site.mode == super::Mode::Write;
        if storing {
            self.md_cache.spill(&self.site.root);
        }
        let highlighter: &Highlighter = &self.highlighter;
        let keep_bodies = self.reuse.keeps_records();
        // A file's previous rendering is reused when its body and the options are the same
        // (a text comparison: cheaper than hashing every body) and its links resolve the
        // same.
        let rendered_now = AtomicUsize::new(0);
        let markdown = |file: &content::SourceFile, base: &str| -> Arc<MdEntry> {
            let body = file.body();
            if let Some(e) = prev.get(&file.content_path) {
                if e.salt == salt
                    && *e.base == *base
                    && e.body.as_deref() == Some(body)
                    && e.still_valid(&links, templates, images)
                {
                    return e.clone();
                }
            }
            let key = disk.map(|_| MarkdownCache::key(&salt, &file.content_path, base, body));
            if let (Some(d), Some(key)) = (disk, &key) {
                if let Some(e) = d.get(key, salt, body, base, keep_bodies) {
                    if e.still_valid(&links, templates, images) {
                        highlighter.touch(&e.highlighted);
                        return Arc::new(e);
                    }
                }
            }
            rendered_now.fetch_add(1, Ordering::Relaxed);
            let opts = RenderOptions {
                images: Some((images, base)),
                ..md_opts
            };
            let (r, highlighted) = highlight::recording(|| {
                shortcodes::render(body, &file.content_path, &opts, templates)
            });
            let used = used_digests(&r, templates, images);
            let e = MdEntry::new(
                r,
                &links,
                (salt, keep_bodies.then_some(body), base),
                used,
                highlighted,
            );
            if let (Some(d), Some(key), true) = (disk, key, storing) {
                d.put(key, &e);
            }
            Arc::new(e)
        };
        // --- memory (issue 16): a one-off build writing its output holds no page's HTML
        // from here to the phases that read it (its template, the feed, the search index):
        // each is written to an unnamed file on the site's disk as soon as it is rendered,
        // and read back by each of them (~250 MB at 10,000 pages). `folio serve` keeps them
        // (its next build reuses them), as does a build in memory or a check. Where the file
        // cannot be made, the bodies stay in memory.
        let spill = (storing && !keep_bodies)
            .then(|| Spill::new_in(&self.site.root.join(".folio/cache")).ok())
            .flatten();
        let spill_html = |e: &mut Arc<MdEntry>| -> Option<Span> {
            let s = spill.as_ref()?;
            // Only an entry made by this build is unshared (one reused from a memo is not).
            let full = Arc::get_mut(&mut Arc::get_mut(e)?.full)?;
            let span = s.put(full.html.as_bytes()).ok()?;
            full.html = String::new();
            Some(span)
        };
        let (pages, spans): (Vec<Arc<MdEntry>>, Vec<Option<Span>>) = content
            .pages
            .par_iter()
            .map(|p| {
                let mut e = markdown(&p.file, &p.path);
                let span = spill_html(&mut e);
                (e, span)
            })
            .unzip();
        // ---
        let sections: HashMap<String, Arc<MdEntry>> = content
            .sections
            .par_iter()
            .filter_map(|(k, s)| s.file.as_ref().map(|f| (k.clone(), markdown(f, &s.path))))
            .collect();
        let rendered = pages.iter().map(|e| e.full.clone()).collect();
        let section_rendered = sections
            .iter()
            .map(|(k, e)| (k.clone(), e.full.clone()))
            .collect();
        let misses = rendered_now.into_inner();
        let stats = crate::cache::Stats {
            hits: pages.len() + sections.len() - misses,
            misses,
        };
        self.highlighter.forget_lines();
        self.clock.mark("markdown");
        Bodies {
            pages,
            sections,
            rendered,
            section_rendered,
            stats,
            spill,
            spans,
        }
    }

    /// Reports what the bodies got wrong: broken internal links and anchors, unknown code
    /// languages.
    pub(super) fn check_links(
        &mut self,
        content: &Content,
        bodies: &Bodies,
        unloadable: &HashSet<PathBuf>,
    ) {
        let (rendered, sections) = (&bodies.rendered, &bodies.section_rendered);
        let diags = &mut self.diags;
        let mut anchors: HashMap<&str, &HashSet<String>> = HashMap::new();
        for (p, r) in content.pages.iter().zip(rendered) {
            anchors.insert(p.file.content_path.as_str(), &r.anchors);
        }
        for (k, r) in sections {
            if let Some(f) = content.sections.get(k).and_then(|s| s.file.as_ref()) {
                anchors.insert(f.content_path.as_str(), &r.anchors);
            }
        }
        let files = content
            .pages
            .iter()
            .map(|p| &p.file)
            .zip(rendered.iter())
            .chain(sections.iter().filter_map(|(k, r)| {
                content
                    .sections
                    .get(k)
                    .and_then(|s| s.file.as_ref())
                    .map(|f| (f, r))
            }));
        for (file, r) in files {
            for (offset, msg) in &r.errors {
                let to_unloadable = r.links.iter().any(|l| {
                    l.offset == *offset
                        && unloadable.contains(&Path::new("content").join(&l.target))
                });
                if to_unloadable {
                    continue;
                }
                diags.push(Diagnostic::error(
                    &file.shown,
                    Some(file.body_pos(*offset)),
                    msg.clone(),
                ));
            }
            for (offset, lang) in &r.unknown_languages {
                diags.push(Diagnostic::warning(
                    &file.shown,
                    Some(file.body_pos(*offset)),
                    format!("no grammar for code language `{lang}`: shown without highlighting"),
                ));
            }
            for l in &r.links {
                let (Some(anchor), Some(set)) = (&l.anchor, anchors.get(l.target.as_str())) else {
                    continue;
                };
                if !anchor.is_empty() && !set.contains(anchor) {
                    diags.push(Diagnostic::error(
                        &file.shown,
                        Some(file.body_pos(l.offset)),
                        format!(
                            "broken anchor: `#{anchor}` is not a heading in @/{}",
                            l.target
                        ),
                    ));
                }
            }
        }
    }
}
