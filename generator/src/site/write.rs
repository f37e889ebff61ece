//! The write phase: where the output goes, the files made without templates (redirects, the
//! feed, the sitemap, `robots.txt`, `projects.json`, `_headers`, the edge manifest), and the
//! files copied as they are.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use folio_edge::config::MANIFEST_FILE;

use crate::assets::{Assets, Payload};
use crate::output::{Sink, Staging};
use crate::render::{self, Tag};
use crate::search;
use crate::security::{self, InlineCode};
use folio_content::content::Content;
use folio_content::diagnostics::{Diagnostic, Diagnostics};

use super::checks::alias_output;
use super::contexts::RenderInputs;
use super::{Build, Mode};

/// Where this build's files go: a staging folder swapped in at the end (`folio build`),
/// memory (`folio serve`, tests), or nowhere (`folio check`).
pub(super) struct Output {
    pub(super) staging: Option<Staging>,
    pub(super) sink: Sink,
}

/// A file copied as is, with the size and modification time it had.
#[derive(Clone)]
pub(super) struct CopyRecord {
    source: PathBuf,
    stamp: (u64, Option<std::time::SystemTime>),
    bytes: Arc<[u8]>,
}

impl CopyRecord {
    /// Reads `source`, or reuses `prev` when it is the same file with the same size and
    /// modification time and was not reported changed (`touched`).
    fn read(
        source: &Path,
        prev: Option<&CopyRecord>,
        touched: &[PathBuf],
    ) -> std::io::Result<CopyRecord> {
        let meta = std::fs::metadata(source)?;
        let stamp = (meta.len(), meta.modified().ok());
        if let Some(old) = prev {
            if old.source == source
                && old.stamp == stamp
                && stamp.1.is_some()
                && !touched.iter().any(|t| source.starts_with(t))
            {
                return Ok(old.clone());
            }
        }
        Ok(CopyRecord {
            source: source.to_path_buf(),
            stamp,
            bytes: Arc::from(std::fs::read(source)?),
        })
    }
}

impl Build<'_> {
    /// Opens the output: a staging folder beside the output folder when writing.
    pub(super) fn output(&self) -> Result<Output, Diagnostics> {
        let output = &self.site.output;
        let staging = match self.site.mode {
            Mode::Write => Some(Staging::new(output).map_err(|e| {
                Diagnostics::from(Diagnostic::error(
                    output,
                    None,
                    format!("cannot create the output folder: {e}"),
                ))
            })?),
            _ => None,
        };
        let sink = match (&staging, self.site.mode) {
            (Some(s), _) => Sink::Dir(s.dir().to_path_buf(), s.previous().map(Path::to_path_buf)),
            (None, Mode::Memory) => Sink::Memory(Mutex::new(Default::default())),
            _ => Sink::Discard,
        };
        Ok(Output { staging, sink })
    }

    /// Writes the files made without templates; `inline` is what the rendered pages hold
    /// inline (for the security headers). Returns the size of the search index written, and
    /// its pages' parts for the next build.
    pub(super) fn write_generated(
        &mut self,
        inputs: &RenderInputs<'_>,
        inline: &InlineCode,
        sink: &Sink,
    ) -> (u64, search::DocCache) {
        let (cfg, content, site) = (inputs.cfg, inputs.content, self.site);
        let mut write_errors = Diagnostics::new();
        let mut write = |rel: &str, bytes: &[u8]| {
            if let Err(e) = sink.write(rel, bytes) {
                write_errors.push(Diagnostic::error(
                    &site.output,
                    None,
                    format!("cannot write {rel}: {e}"),
                ));
            }
        };
        for p in &content.pages {
            for a in &p.aliases {
                write(
                    &alias_output(a),
                    render::redirect_page(cfg, &p.path).as_bytes(),
                );
            }
        }
        let base = cfg.base_path();
        let redirects: String = content
            .pages
            .iter()
            .flat_map(|p| {
                p.aliases
                    .iter()
                    .map(move |a| format!("{base}{a} {base}{} 301\n", p.path))
            })
            .collect();
        if !redirects.is_empty() {
            write("_redirects", redirects.as_bytes());
        }
        // Independent of each other and of every page: made side by side.
        let ((feeds, sitemap), projects) = rayon::join(
            || {
                rayon::join(
                    || {
                        // The site's feed, then each section's that asks for one, by path.
                        let mut feeds: Vec<render::Feed<'_>> = content
                            .sections
                            .values()
                            .filter_map(|s| render::Feed::section(cfg, s))
                            .collect();
                        feeds.sort_by(|a, b| a.path.cmp(&b.path));
                        feeds.insert(0, render::Feed::site(cfg, content));
                        feeds
                            .par_iter()
                            .map(|f| {
                                let xml = render::atom(cfg, content, f, |i| {
                                    inputs.bodies.page_html(i).read()
                                });
                                (f.path.trim_start_matches('/').to_string(), xml)
                            })
                            .collect::<Vec<_>>()
                    },
                    || render::sitemap(cfg, &sitemap_entries(content, inputs.tags)),
                )
            },
            || render::projects_json(cfg, content),
        );
        for (rel, xml) in feeds {
            match xml {
                Ok(xml) => write(&rel, xml.as_bytes()),
                Err(e) => self.diags.push(body_unreadable(&site.output, &rel, &e)),
            }
        }
        write("sitemap.xml", sitemap.as_bytes());
        write("robots.txt", render::robots(cfg).as_bytes());
        write("projects.json", projects.as_bytes());
        for a in &inline.blocked_attributes {
            self.diags.push(Diagnostic::warning("templates", None, format!("{a} is blocked by the Content-Security-Policy: move it to a stylesheet or script file")));
        }
        let mut immutable = inputs.assets.immutable_paths();
        let started = std::time::Instant::now();
        let (index, search_memo) = match search_index(inputs, sink, &self.prev.search, &site.root) {
            Some(Ok((index, memo))) => (Some(index), memo),
            Some(Err(e)) => {
                self.diags
                    .push(body_unreadable(&site.output, "search/", &e));
                (None, search::DocCache::new())
            }
            None => (None, search::DocCache::new()),
        };
        self.clock.part("search", started.elapsed());
        let mut search_errors = Vec::new();
        if let Some(index) = &index {
            // A thousand small files, each linked from the previous output when unchanged:
            // side by side.
            search_errors = index
                .files
                .par_iter()
                .filter_map(|(path, bytes)| {
                    sink.put(path, bytes).err().map(|e| {
                        Diagnostic::error(&site.output, None, format!("cannot write {path}: {e}"))
                    })
                })
                .collect();
            immutable.push(format!("/{}/*", index.dir));
        }
        let headers = security::headers(&cfg.security, inline);
        write(
            "_headers",
            security::headers_file(base, &headers, &immutable).as_bytes(),
        );
        write(MANIFEST_FILE, edge_manifest(inputs, inline).as_bytes());
        self.diags.extend(write_errors);
        self.diags.extend(search_errors);
        (index.map_or(0, |i| i.bytes), search_memo)
    }

    /// `folio serve`: hands `ready` the site as it can be served now that every page is
    /// rendered and every file copied (see [`super::build_incremental_with`]), if nothing the
    /// rest of the build makes changes how a page is served: no error so far, the same
    /// template outputs as the previous build (no page, list page or tag page added or
    /// removed) and the same edge manifest (security headers with their CSP hashes, pages,
    /// demos). What follows (the search index, feed, sitemap, `projects.json`, redirects)
    /// only adds files no page needs to be shown, and cannot fail in memory.
    pub(super) fn pages_ready(
        &mut self,
        ready: &mut super::ReadyFn<'_>,
        inputs: &RenderInputs<'_>,
        rendered: &super::jobs::Renders,
        sink: &Sink,
    ) {
        if self.diags.has_errors() || !matches!(sink, Sink::Memory(_)) {
            return;
        }
        let prev = &self.prev;
        let same_jobs = rendered.records.len() == prev.jobs.len()
            && rendered
                .records
                .iter()
                .all(|(out, _)| prev.jobs.contains_key(out));
        if !same_jobs {
            return;
        }
        let manifest = edge_manifest(inputs, &rendered.inline);
        if prev.files.get(MANIFEST_FILE).map(|b| &b[..]) != Some(manifest.as_bytes()) {
            return;
        }
        let files = sink.over(&prev.files);
        self.clock.mark("ready");
        ready(super::Ready {
            files,
            rendered: rendered.count,
            phases: self.clock.phases.clone(),
        });
    }

    /// Copies the files that go out as they are (bundle files, loose files, static files)
    /// and writes the generated static files. In memory, a copy is reused from the previous
    /// build while its source looks unchanged; returns the copies for the next build.
    pub(super) fn copy(
        &mut self,
        content: &Content,
        assets: &Assets,
        sink: &Sink,
    ) -> HashMap<String, CopyRecord> {
        let root = &self.site.root;
        let (prev, touched) = (&self.prev.copies, self.touched);
        let copies: Vec<(String, &Path)> = content
            .pages
            .iter()
            .flat_map(|p| {
                p.assets
                    .iter()
                    .map(|(src, out)| (out.clone(), src.as_path()))
            })
            .chain(
                content
                    .loose_files
                    .iter()
                    .map(|f| (f.output.clone(), f.source.as_path())),
            )
            .chain(assets.files.iter().filter_map(|(out, f)| match &f.payload {
                Payload::File(p) => Some((out.clone(), p.as_path())),
                Payload::Bytes(_) => None,
            }))
            .collect();
        let shown_of = |out: &str, src: &Path| -> PathBuf {
            assets
                .files
                .get(out)
                .filter(|f| matches!(&f.payload, Payload::File(p) if p == src))
                .map(|f| f.shown.clone())
                .unwrap_or_else(|| src.strip_prefix(root).unwrap_or(src).to_path_buf())
        };
        let copied: Vec<Result<Option<(String, CopyRecord)>, Diagnostic>> = copies
            .par_iter()
            .map(|(out, src)| {
                let fail = |e: std::io::Error| {
                    Diagnostic::error(
                        shown_of(out, src),
                        None,
                        format!("cannot copy to the output: {e}"),
                    )
                };
                match sink {
                    Sink::Memory(_) => {
                        let rec = CopyRecord::read(src, prev.get(out), touched).map_err(fail)?;
                        sink.put(out, &rec.bytes).map_err(fail)?;
                        Ok(Some((out.clone(), rec)))
                    }
                    _ => sink.copy(out, src).map(|_| None).map_err(fail),
                }
            })
            .collect();
        let mut kept = HashMap::new();
        for c in copied {
            match c {
                Ok(Some((out, rec))) => {
                    kept.insert(out, rec);
                }
                Ok(None) => {}
                Err(d) => self.diags.push(d),
            }
        }
        let byte_errors: Vec<Diagnostic> = assets
            .files
            .par_iter()
            .filter_map(|(out, f)| match &f.payload {
                Payload::Bytes(b) => sink.write(out, b).err().map(|e| {
                    Diagnostic::error(&f.shown, None, format!("cannot copy to the output: {e}"))
                }),
                Payload::File(_) => None,
            })
            .collect();
        self.diags.extend(byte_errors);
        kept
    }
}

/// `_folio/edge.json`: what the edge (and `folio serve`) needs to serve the site — the
/// security headers for the inline code the pages hold, the pages, the demos.
fn edge_manifest(inputs: &RenderInputs<'_>, inline: &InlineCode) -> String {
    let headers = security::headers(&inputs.cfg.security, inline);
    render::edge_json(inputs.cfg, inputs.content, &headers)
}

/// The full-text search index of every published page and every section with a body
/// (`[search] enabled`; nothing when only checking). Ids follow the site paths' order. A
/// page's part is reused from `prev` (the previous build's) while its inputs are the same,
/// else, when writing to disk, from `.folio/cache/search.bin` under `root`.
fn search_index(
    inputs: &RenderInputs<'_>,
    sink: &Sink,
    prev: &search::DocCache,
    root: &Path,
) -> Option<std::io::Result<(search::Index, search::DocCache)>> {
    let (cfg, content, bodies) = (inputs.cfg, inputs.content, inputs.bodies);
    if !cfg.search.enabled || matches!(sink, Sink::Discard) {
        return None;
    }
    let titles: HashMap<&str, String> = content
        .sections
        .iter()
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, s)| (k.as_str(), s.title()))
        .collect();
    let mut docs: Vec<search::Doc<'_>> = content
        .pages
        .iter()
        .zip(&bodies.rendered)
        .enumerate()
        .map(|(i, (p, r))| search::Doc {
            path: &p.path,
            title: &p.meta.fm.title,
            section: titles.get(p.section.as_str()).map_or("", |t| t.as_str()),
            body: r,
            html: bodies.page_html(i),
        })
        .collect();
    let section_titles: Vec<(&str, String)> = content
        .sections
        .iter()
        .filter(|(k, s)| s.gets_page() && bodies.section_rendered.contains_key(k.as_str()))
        .map(|(k, s)| {
            let title = if k.is_empty() {
                cfg.title.clone()
            } else {
                s.title()
            };
            (k.as_str(), title)
        })
        .collect();
    for (k, title) in &section_titles {
        let (Some(s), Some(r)) = (content.sections.get(*k), bodies.section_rendered.get(*k)) else {
            continue;
        };
        if r.html.trim().is_empty() {
            continue;
        }
        docs.push(search::Doc {
            path: &s.path,
            title,
            section: "",
            body: r,
            html: crate::spill::Text::Memory(&r.html),
        });
    }
    docs.sort_by(|a, b| a.path.cmp(b.path));
    let disk = matches!(sink, Sink::Dir(..)).then(|| search::cache_path(root));
    Some(search::build(
        &docs,
        cfg.search.include_code,
        prev,
        disk.as_deref(),
    ))
}

/// The error of a file made from the pages' bodies when one could not be read back from
/// where the build wrote it out (`crate::spill`): the build fails, the old output stays.
fn body_unreadable(output: &Path, what: &str, e: &std::io::Error) -> Diagnostic {
    Diagnostic::error(
        output,
        None,
        format!("cannot write {what}: a rendered page body could not be read back from the build's temporary file in .folio/cache: {e}"),
    )
}

/// Every listed path of the sitemap, with the date it last changed when known.
fn sitemap_entries(content: &Content, tags: &[Tag]) -> Vec<(String, Option<String>)> {
    let mut v: Vec<(String, Option<String>)> = Vec::new();
    for s in content.sections.values().filter(|s| s.gets_page()) {
        let last = s
            .pages
            .iter()
            .filter_map(|&i| {
                content.pages[i]
                    .meta
                    .updated
                    .as_ref()
                    .or(content.pages[i].meta.date.as_ref())
            })
            .max()
            .map(|d| d.at.format("%Y-%m-%d").to_string());
        v.push((s.path.clone(), last));
    }
    for p in &content.pages {
        v.push((
            p.path.clone(),
            p.meta
                .updated
                .as_ref()
                .or(p.meta.date.as_ref())
                .map(|d| d.at.format("%Y-%m-%d").to_string()),
        ));
    }
    if !tags.is_empty() {
        v.push(("/tags/".into(), None));
        v.extend(tags.iter().map(|t| (t.path.clone(), None)));
    }
    v.sort();
    v
}
