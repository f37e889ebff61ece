//! The build pipeline: load, validate, render in parallel, write to a staging folder, swap.
//!
//! A build is a `Build` taken through its phases, each a method in a module of its own:
//! `load` (the site's folder and configuration, then content, data, templates and static
//! files, and the generated stylesheet, covers and terminal files), `bodies` (markdown, and
//! the checks of what it links to), `checks` (output paths, template names), `contexts` (what
//! templates see, and the site functions), `jobs` (rendering every template), `write` (every
//! other file, and the copies), then `Build::finish` (the swap, the caches, the memo).
//!
//! # One way to reuse
//!
//! Every build runs against what a previous build left, a [`Memo`]: [`build`] passes an
//! empty one, [`build_incremental`] the last build's. Each phase looks up what it may reuse
//! there — parsed front matter, templates, the highlighter, the code stylesheet, markdown
//! bodies, page summaries, rendered templates, copied files — with the same code either way,
//! so a full build is an incremental build that finds nothing to reuse; each build returns the
//! memo for the next. The one thing a caller chooses is how rendered templates are reused
//! (the `reuse::TemplateReuse` the render phase consults): through the page cache on disk
//! (`PageCache`: `folio build`, a new process each time) or by fingerprints and replayed
//! site-function calls against the memo (`Fingerprints`: `folio serve`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::highlight::{self, Highlighter};
pub use crate::images::Stats as ImageStats;
use crate::output::Staging;
use crate::templates::Templates;
use folio_content::content;
use folio_content::diagnostics::{Diagnostic, Diagnostics};

mod bodies;
mod checks;
mod contexts;
pub(crate) mod deps;
pub(crate) mod fields;
mod functions;
mod jobs;
pub(crate) mod links;
mod load;
mod page_store;
mod reuse;
mod write;

use bodies::MdEntry;
use contexts::SummaryEntry;
use load::{Loaded, Site, SyntaxCss};
use reuse::{Fingerprints, JobRecord, PageCache, TemplateReuse};
use write::CopyRecord;

/// What to do with the rendered site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write to the output folder (staged, then swapped in).
    Write,
    /// Validate everything, write nothing (`folio check`).
    Check,
    /// Keep the files in memory (tests, `folio serve`).
    Memory,
}

/// Called as rendering progresses: (files done, files in all).
pub type ProgressFn = dyn Fn(usize, usize) + Send + Sync;

/// The options of one build.
#[derive(Clone)]
pub struct BuildOptions {
    /// The site folder (holds `folio.toml`).
    pub root: PathBuf,
    /// Output folder; default `<root>/public`.
    pub output: Option<PathBuf>,
    /// Publish drafts.
    pub drafts: bool,
    /// Overrides `base_url`.
    pub base_url: Option<String>,
    /// Minify HTML (off for debugging).
    pub minify: bool,
    /// Write, check or keep in memory.
    pub mode: Mode,
    /// Progress callback for long builds.
    pub progress: Option<Arc<ProgressFn>>,
}

impl BuildOptions {
    /// Defaults for building the site at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        BuildOptions {
            root: root.into(),
            output: None,
            drafts: false,
            base_url: None,
            minify: true,
            mode: Mode::Write,
            progress: None,
        }
    }
}

/// What a successful build did.
#[derive(Debug, Default)]
pub struct BuildReport {
    /// Pages rendered (write-ups, not list pages).
    pub pages: usize,
    /// Sections rendered.
    pub sections: usize,
    /// Tags with a page.
    pub tags: usize,
    /// Files in the output.
    pub files: usize,
    /// Wall time of the build.
    pub elapsed: Duration,
    /// Warnings (the build succeeded regardless).
    pub warnings: Diagnostics,
    /// Highlight cache hits and misses.
    pub highlight: highlight::Stats,
    /// Lines of code parsed by the highlighter, and how many reused another line's parse
    /// (`--verbose`: how much the line memo saved).
    pub code_lines: (usize, usize),
    /// Rendered-page cache hits and misses.
    pub page_cache: crate::cache::Stats,
    /// Markdown bodies reused (from the previous build or the markdown cache) and rendered.
    pub markdown: crate::cache::Stats,
    /// Image copies encoded by this build and read back from the cache (a warm build
    /// encodes none).
    pub images: ImageStats,
    /// Templates rendered (pages, list pages, tag pages, 404).
    pub rendered: usize,
    /// Templates whose previous output was reused unchanged ([`build_incremental`]).
    pub reused: usize,
    /// The output paths of the templates rendered (not reused), sorted: what an edit cost.
    pub rendered_paths: Vec<String>,
    /// Time of each phase, for `--verbose`.
    pub phases: Vec<(&'static str, Duration)>,
    /// The process's peak resident memory (bytes) when each phase ended, for `--verbose`:
    /// which phase makes the peak (Linux only; empty elsewhere).
    pub peak_memory: Vec<(&'static str, u64)>,
    /// Where the site was written (Write mode).
    pub output: Option<PathBuf>,
    /// The files (Memory mode).
    pub files_in_memory: BTreeMap<String, Vec<u8>>,
    /// Size of the full-text search index written (`search/`), in bytes; 0 without one.
    pub search_bytes: u64,
    /// Every `http(s)` link of the markdown and where it is written (Check mode), for
    /// `folio check --external`.
    pub external_links: Vec<crate::linkcheck::ExternalLink>,
    /// The deletion of the replaced output, off the critical path: dropping the report waits
    /// for it.
    old_output: crate::output::Cleanup,
}

/// The highlight cache of a site.
pub fn cache_path(root: &Path) -> PathBuf {
    root.join(".folio/cache/highlight.bin")
}

/// The rendered-page cache of a site.
pub fn pages_cache_path(root: &Path) -> PathBuf {
    root.join(".folio/cache/pages.bin")
}

/// Builds the site. On failure, every error found is returned (warnings included) and the
/// previous output is left exactly as it was.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, Diagnostics> {
    let (mut report, memo) = run(
        opts,
        &Memo::default(),
        &[],
        Box::new(PageCache::new(opts.mode)),
        None,
    )?;
    report.files_in_memory = memo
        .files
        .into_iter()
        .map(|(path, bytes)| (path, bytes.to_vec()))
        .collect();
    Ok(report)
}

/// Builds the site in memory for `folio serve`, reusing from `memo` (what the previous build
/// left) everything whose inputs did not change: rendered markdown, highlighted code, rendered
/// templates (see [`deps`]) and copied files. The result is byte for byte what [`build`] in
/// [`Mode::Memory`] gives for the same sources. `touched` (absolute paths reported changed
/// since that build) is only a hint: copied files under them are read again even when their
/// size and modification time look unchanged. Returns the report and the memo for the next
/// build, whose [`Memo::files`] is the site.
pub fn build_incremental(
    opts: &BuildOptions,
    memo: &Memo,
    touched: &[PathBuf],
) -> Result<(BuildReport, Memo), Diagnostics> {
    let opts = BuildOptions {
        mode: Mode::Memory,
        ..opts.clone()
    };
    run(&opts, memo, touched, Box::<Fingerprints>::default(), None)
}

// ---- folio serve: the edited pages served before the build ends (issue 16) ----

/// The site as it can be served once every page is rendered and every file copied, before
/// the files no page needs to be shown (the search index, the feed, the sitemap,
/// `projects.json`, redirects) are made: see [`build_incremental_with`].
pub struct Ready {
    /// Output path → bytes: the previous build's files, with every rendered page and every
    /// copied or generated static file of this build in place of theirs.
    pub files: BTreeMap<String, Arc<[u8]>>,
    /// Templates rendered (not reused) so far.
    pub rendered: usize,
    /// The phases so far, for `--verbose`.
    pub phases: Vec<(&'static str, Duration)>,
}

/// Called with a [`Ready`] site partway through a build.
pub type ReadyFn<'a> = dyn FnMut(Ready) + 'a;

/// [`build_incremental`], calling `ready` as soon as the pages can be served: every template
/// rendered, every file copied, no error found, and nothing the rest of the build makes
/// changes how a page is served (the same pages and tag pages as the previous build, and the
/// same edge manifest: headers, CSP hashes, pages). `folio serve` serves that and tells the
/// tabs while the search index, feed and sitemap are made. When those conditions do not
/// hold (a page added or removed, new inline code, an error) `ready` is not called. In
/// memory nothing after that point can fail, so the build then always succeeds.
pub fn build_incremental_with(
    opts: &BuildOptions,
    memo: &Memo,
    touched: &[PathBuf],
    ready: &mut ReadyFn<'_>,
) -> Result<(BuildReport, Memo), Diagnostics> {
    let opts = BuildOptions {
        mode: Mode::Memory,
        ..opts.clone()
    };
    run(
        &opts,
        memo,
        touched,
        Box::<Fingerprints>::default(),
        Some(ready),
    )
}
// ---- end folio serve ----

/// What one build leaves for the next (`folio serve`). Every entry is keyed by, or checked
/// against, everything that produced it, so reusing one gives the bytes computing it again
/// would.
#[derive(Default)]
pub struct Memo {
    highlighter: Option<Arc<Highlighter>>,
    /// Rendered markdown by content path (`projects/minirt.md`).
    markdown: HashMap<String, Arc<MdEntry>>,
    /// Front matter by file, reused while a file's text is unchanged.
    parse: content::ParseCache,
    /// Page summaries by content path.
    summaries: HashMap<String, Arc<SummaryEntry>>,
    /// The templates as loaded (before the site functions were registered on them), reused
    /// while every template's text is unchanged.
    templates: Option<Arc<Templates>>,
    /// The code stylesheet, reused while both theme names are the same.
    syntax_css: Option<SyntaxCss>,
    /// Rendered templates by output path (only kept when reusing by fingerprint).
    jobs: HashMap<String, Arc<JobRecord>>,
    /// Copied files by output path (only kept when the output is in memory).
    copies: HashMap<String, CopyRecord>,
    /// Each page's part of the search index, by site path.
    search: crate::search::DocCache,
    /// The built site: output path → bytes.
    pub files: BTreeMap<String, Arc<[u8]>>,
}

impl Memo {
    /// Forgets rendered templates and copied files (the next build renders and copies
    /// everything again) but keeps the caches keyed by content (markdown, highlighting).
    pub fn forget_outputs(&mut self) {
        self.jobs.clear();
        self.copies.clear();
    }
}

/// The time of each phase, for `--verbose`.
struct Clock {
    started: Instant,
    phase_start: Instant,
    phases: Vec<(&'static str, Duration)>,
    peak_memory: Vec<(&'static str, u64)>,
}

/// The process's peak resident set size so far (`VmHWM`), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Clock {
    fn start() -> Clock {
        let now = Instant::now();
        Clock {
            started: now,
            phase_start: now,
            phases: Vec::new(),
            peak_memory: Vec::new(),
        }
    }

    /// Ends the phase `name`: it took the time since the previous one ended.
    fn mark(&mut self, name: &'static str) {
        self.phases.push((name, self.phase_start.elapsed()));
        if let Some(peak) = peak_rss() {
            self.peak_memory.push((name, peak));
        }
        self.phase_start = Instant::now();
    }

    /// Records a part of a phase that ran beside another (its own time, not the phase's).
    fn part(&mut self, name: &'static str, took: Duration) {
        self.phases.push((name, took));
    }
}

/// A build in progress: what every phase reads, and what they all add to.
struct Build<'a> {
    opts: &'a BuildOptions,
    site: &'a Site,
    /// What the previous build left; empty for a build from scratch.
    prev: &'a Memo,
    /// Paths reported changed since the previous build (a hint, see [`build_incremental`]).
    touched: &'a [PathBuf],
    reuse: Box<dyn TemplateReuse>,
    highlighter: Arc<Highlighter>,
    /// The highlighter was made for this build (not kept from the previous one): its cache
    /// is loaded from disk, and saved after this build.
    fresh_highlighter: bool,
    /// Whether code blocks are highlighted (not when only checking).
    highlighting: bool,
    diags: Diagnostics,
    clock: Clock,
    /// Rendered bodies kept on disk (see `bodies`).
    md_cache: bodies::MarkdownCache,
}

/// Runs a build through its phases (see the module's documentation).
fn run(
    opts: &BuildOptions,
    prev: &Memo,
    touched: &[PathBuf],
    reuse: Box<dyn TemplateReuse>,
    ready: Option<&mut ReadyFn<'_>>,
) -> Result<(BuildReport, Memo), Diagnostics> {
    let clock = Clock::start();
    let (site, diags) = Site::open(opts)?;
    let kept_highlighter = prev.highlighter.clone();
    let mut b = Build {
        opts,
        site: &site,
        prev,
        touched,
        reuse,
        fresh_highlighter: kept_highlighter.is_none(),
        highlighter: kept_highlighter.unwrap_or_else(|| Arc::new(Highlighter::new())),
        highlighting: site.cfg.markdown.highlight && site.mode != Mode::Check,
        diags,
        clock,
        md_cache: bodies::MarkdownCache::new(),
    };

    let Loaded {
        mut content,
        parse,
        data,
        templates,
        mut assets,
        unloadable,
    } = b.load();
    let generated = b.generate(&content, &mut assets);
    let bodies = b.markdown(
        &content,
        &generated.images,
        templates.as_ref().map(|t| &t.working),
    );
    generated.images.add_to(&mut assets, &mut b.diags);
    b.check_links(&content, &bodies, &unloadable);
    let checked = b.check(&content, &bodies, &assets, templates)?;
    // --- memory (issue 16): the markdown sources are rendered and checked; a one-off build
    // writing its output reads only their front matter from here on.
    if opts.mode != Mode::Check && !b.reuse.keeps_records() {
        content.forget_bodies();
    }
    // ---
    let mut templates = checked.templates;
    let (mut inputs, functions) = b.contexts(
        &content,
        &bodies,
        &checked.tags,
        &assets,
        &generated,
        data,
        &mut templates,
    );
    let output = b.output()?;
    let jobs = jobs::jobs(&content, &checked.tags);
    // Copied before rendering: once the pages are rendered, every file a page needs is there.
    let copies = b.copy(&content, &assets, &output.sink);
    b.clock.mark("copy");
    let rendered = b.render(&jobs, &inputs, &templates, &functions, &output.sink);
    if let Some(ready) = ready {
        b.pages_ready(ready, &inputs, &rendered, &output.sink);
    }
    // Only a build whose memo is used again keeps its page summaries; the templates, the
    // site functions and the contexts' values are let go before the search index is built.
    let summaries = if b.reuse.keeps_records() {
        inputs.summary_memo()
    } else {
        HashMap::new()
    };
    drop((templates, functions));
    inputs.release_contexts();
    let (search_bytes, search) = b.write_generated(&inputs, &rendered.inline, &output.sink);
    b.clock.mark("write");

    if b.diags.has_errors() {
        return Err(b.diags); // the staging folder is dropped: the old output stays
    }
    let report = BuildReport {
        pages: content.pages.len(),
        sections: content
            .sections
            .values()
            .filter(|s| s.is_rendered())
            .count(),
        tags: checked.tags.len(),
        files: checked.planned,
        images: generated.images.stats(),
        rendered: rendered.count,
        rendered_paths: rendered.paths,
        reused: jobs.len() - rendered.count,
        search_bytes,
        markdown: bodies.stats,
        external_links: if opts.mode == Mode::Check {
            bodies.external_links(&content)
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    let memo = Memo {
        highlighter: Some(b.highlighter.clone()),
        markdown: bodies.memo(&content),
        parse,
        templates: checked.pristine,
        summaries,
        syntax_css: generated.syntax_css,
        jobs: rendered.records.into_iter().collect(),
        copies,
        search,
        files: output.sink.into_files(),
    };
    b.finish(output.staging, report, memo)
}

impl Build<'_> {
    /// Puts the new site in place and saves the caches on disk.
    fn finish(
        mut self,
        staging: Option<Staging>,
        mut report: BuildReport,
        memo: Memo,
    ) -> Result<(BuildReport, Memo), Diagnostics> {
        let Site {
            root, output, mode, ..
        } = self.site;
        report.highlight = self.highlighter.stats();
        report.code_lines = self.highlighter.line_counts();
        report.page_cache = self.reuse.stats();
        if let Some(s) = staging {
            report.old_output = s.commit().map_err(|e| {
                Diagnostics::from(Diagnostic::error(
                    output,
                    None,
                    format!("cannot put the new site in place: {e}"),
                ))
            })?;
            report.output = Some(output.clone());
        }
        self.reuse.save(root, *mode, &mut self.diags);
        if *mode == Mode::Write {
            self.md_cache.save(root, &mut self.diags);
        }
        // A kept highlighter counts across builds: save it once, after its first build.
        if self.highlighting && self.fresh_highlighter {
            if let Err(e) = self.highlighter.save(&cache_path(root)) {
                self.diags
                    .push(crate::cache::save_warning("the highlight cache", e));
            }
        }
        self.clock.mark("finish");
        report.phases = self.clock.phases;
        report.peak_memory = self.clock.peak_memory;
        report.warnings = crate::cache::fold_save_warnings(self.diags);
        report.elapsed = self.clock.started.elapsed();
        Ok((report, memo))
    }
}
