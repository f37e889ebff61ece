//! The build pipeline: load, validate, render in parallel, write to a staging folder, swap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde_json::{json, Value};
use tera::Context;

use folio_edge::config::MANIFEST_FILE;

use crate::assets::{Assets, Payload};
use crate::cache::{BlobCache, Key};
use crate::data::DataFiles;
use crate::highlight::{self, Highlighter};
use crate::markdown::{self, RenderOptions, Rendered};
use crate::output::{Sink, Staging};
use crate::render::{self, Tag};
use crate::security::{self, InlineCode};
use crate::templates::Templates;
use crate::theme::Theme;
use folio_content::config::Config;
use folio_content::content::{self, Content, LoadOptions};
use folio_content::diagnostics::{Diagnostic, Diagnostics};
use folio_content::frontmatter::find_key_in_file;

pub mod deps;

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
    /// Rendered-page cache hits and misses.
    pub page_cache: crate::cache::Stats,
    /// Templates rendered (pages, list pages, tag pages, 404).
    pub rendered: usize,
    /// Templates whose previous output was reused unchanged ([`build_incremental`]).
    pub reused: usize,
    /// Time of each phase, for `--verbose`.
    pub phases: Vec<(&'static str, Duration)>,
    /// Where the site was written (Write mode).
    pub output: Option<PathBuf>,
    /// The files (Memory mode).
    pub files_in_memory: BTreeMap<String, Vec<u8>>,
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
    run(opts, None, &[]).map(|(report, _)| report)
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
    let (report, memo) = run(opts, Some(memo), touched)?;
    Ok((report, memo.expect("a live build returns its memo")))
}

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
    templates: Option<Templates>,
    syntax_css: Option<(String, String, Result<String, highlight::StylesheetError>)>,
    jobs: HashMap<String, Arc<JobRecord>>,
    copies: HashMap<String, CopyRecord>,
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

/// A markdown body rendered once, with what its internal links resolved to then (the cache
/// entry is valid while they resolve the same).
struct MdEntry {
    /// The markdown options it was rendered with (a digest) and the body: the entry is
    /// reused for the same file only if both are the same now.
    salt: Key,
    body: Box<str>,
    full: Arc<Rendered>,
    /// The same with the HTML body replaced by its hash: what a page's context fingerprint
    /// is computed from, so fingerprints do not serialise every page body.
    light: Arc<Rendered>,
    /// A digest of what a page's own context takes from its rendering besides its summary:
    /// the HTML body and the table of contents (see [`page_fingerprint`]).
    digest: Key,
    resolved: Vec<Option<String>>,
}

impl MdEntry {
    fn new(r: Rendered, links: &HashMap<String, String>, salt: Key, body: &str) -> MdEntry {
        let resolved = r
            .links
            .iter()
            .map(|l| links.get(&l.target).cloned())
            .collect();
        let light = Rendered {
            html: blake3::hash(r.html.as_bytes()).to_hex().to_string(),
            summary: r.summary.clone(),
            toc: r.toc.clone(),
            anchors: r.anchors.clone(),
            links: r.links.clone(),
            word_count: r.word_count,
            errors: r.errors.clone(),
            unknown_languages: r.unknown_languages.clone(),
        };
        let digest = {
            let mut h = blake3::Hasher::new();
            h.update(&(r.html.len() as u64).to_le_bytes());
            h.update(r.html.as_bytes());
            let _ = serde_json::to_writer(&mut h, &r.toc);
            *h.finalize().as_bytes()
        };
        MdEntry {
            digest,
            salt,
            body: body.into(),
            full: Arc::new(r),
            light: Arc::new(light),
            resolved,
        }
    }

    fn still_valid(&self, links: &HashMap<String, String>) -> bool {
        self.full
            .links
            .iter()
            .zip(&self.resolved)
            .all(|(l, r)| links.get(&l.target) == r.as_ref())
    }
}

/// A page's summary (its value in lists, see [`render::page_summary`]) with its cover fields,
/// the digest standing for it in fingerprints, and everything it was made from: reused for
/// the same file while all of that is the same.
struct SummaryEntry {
    /// The rendered markdown (its summary and word count); reused entries are compared by
    /// identity, which the memo keeps alive.
    md: Arc<MdEntry>,
    /// The front matter text (the header fields come from it alone).
    front: String,
    slug: String,
    path: String,
    cover: Option<String>,
    has_demo: bool,
    /// `cfg.permalink("")`: the base of every URL in the summary.
    base: String,
    /// What [`crate::covers::Covers::annotate`] adds for this page.
    cover_fields: Value,
    value: Value,
    light: Value,
}

impl SummaryEntry {
    fn new(
        cfg: &Config,
        p: &content::Page,
        md: &Arc<MdEntry>,
        cover_fields: Value,
        value: Value,
        light: Value,
    ) -> SummaryEntry {
        SummaryEntry {
            md: md.clone(),
            front: p.file.text[..p.file.body_offset].to_string(),
            slug: p.slug.clone(),
            path: p.path.clone(),
            cover: p.cover.clone(),
            has_demo: p.demo.is_some(),
            base: cfg.permalink(""),
            cover_fields,
            value,
            light,
        }
    }

    /// Whether `page_summary` and `annotate` would give `value` again for `p`.
    fn matches(
        &self,
        cfg: &Config,
        p: &content::Page,
        md: &Arc<MdEntry>,
        cover_fields: &Value,
    ) -> bool {
        Arc::ptr_eq(&self.md, md)
            && self.front == p.file.text[..p.file.body_offset]
            && self.slug == p.slug
            && self.path == p.path
            && self.cover == p.cover
            && self.has_demo == p.demo.is_some()
            && self.base == cfg.permalink("")
            && self.cover_fields == *cover_fields
    }
}

/// A rendered template: its output, and what it was rendered from.
struct JobRecord {
    /// Hash of the template closure and the whole context.
    fingerprint: Key,
    /// Site functions the render called, and digests of what they returned.
    reads: Vec<deps::Read>,
    inline: InlineCode,
    bytes: Arc<[u8]>,
}

/// A file copied as is, with the size and modification time it had.
#[derive(Clone)]
struct CopyRecord {
    source: PathBuf,
    stamp: (u64, Option<std::time::SystemTime>),
    bytes: Arc<[u8]>,
}

/// Where the output goes: a sink (`folio build`, `check`, tests) or, for incremental
/// builds, shared buffers that the next build can reuse.
enum Out {
    Sink(Sink),
    Live(Mutex<BTreeMap<String, Arc<[u8]>>>),
}

impl Out {
    fn write(&self, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Out::Sink(s) => s.write(rel, bytes),
            Out::Live(m) => {
                m.lock()
                    .expect("output poisoned")
                    .insert(rel.to_string(), Arc::from(bytes));
                Ok(())
            }
        }
    }

    fn put(&self, rel: &str, bytes: &Arc<[u8]>) -> std::io::Result<()> {
        match self {
            Out::Sink(s) => s.write(rel, bytes),
            Out::Live(m) => {
                m.lock()
                    .expect("output poisoned")
                    .insert(rel.to_string(), bytes.clone());
                Ok(())
            }
        }
    }
}

fn copy_live(
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

fn run(
    opts: &BuildOptions,
    prev: Option<&Memo>,
    touched: &[PathBuf],
) -> Result<(BuildReport, Option<Memo>), Diagnostics> {
    let live = prev.is_some();
    let mode = if live { Mode::Memory } else { opts.mode };
    let started = Instant::now();
    let mut phases = Vec::new();
    let mut phase_start = Instant::now();
    let mut mark = |name: &'static str, phases: &mut Vec<(&'static str, Duration)>| {
        phases.push((name, phase_start.elapsed()));
        phase_start = Instant::now();
    };

    let root = opts.root.canonicalize().map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            &opts.root,
            None,
            format!("cannot open the site folder: {e}"),
        ))
    })?;
    let mut cfg = Config::load(&root).map_err(Diagnostics::from)?;
    if let Some(u) = &opts.base_url {
        cfg.set_base_url(u);
    }
    let mut diags = Diagnostics::new();
    let theme = match Theme::resolve(&root, &cfg.theme) {
        Ok(t) => Some(t),
        Err(d) => {
            diags.push(d);
            None
        }
    };
    let output = opts
        .output
        .clone()
        .map(|o| {
            if o.is_absolute() {
                o
            } else {
                std::env::current_dir().unwrap_or_default().join(o)
            }
        })
        .unwrap_or_else(|| root.join("public"));
    if mode == Mode::Write {
        check_output_path(&root, &output)?;
    }

    // Load everything at once: content, data, templates, static files, grammars, cache.
    let kept_highlighter = prev.and_then(|m| m.highlighter.clone());
    let fresh_highlighter = kept_highlighter.is_none();
    let highlighter = kept_highlighter.unwrap_or_else(|| Arc::new(Highlighter::new()));
    let page_cache = BlobCache::new(b"FOLIOPG1");
    let highlighting = cfg.markdown.highlight && mode != Mode::Check;
    let load_opts = LoadOptions {
        drafts: opts.drafts,
    };
    let (
        (content, content_diags, parse_cache, content_time),
        (data, templates, assets, other_diags, other_time),
    ) = rayon::join(
        || {
            let t = Instant::now();
            let (c, d, p) = match prev {
                Some(m) => content::load_cached(&root, load_opts, &m.parse, touched),
                None => {
                    let (c, d) = content::load(&root, load_opts);
                    (c, d, content::ParseCache::default())
                }
            };
            (c, d, p, t.elapsed())
        },
        || {
            let t = Instant::now();
            let mut d = Diagnostics::new();
            let data = DataFiles::load(&root, &mut d);
            let (templates, assets) = match &theme {
                Some(t) => (
                    Templates::load(&root, t, &mut d, prev.and_then(|m| m.templates.as_ref())),
                    Assets::collect(&root, t, &mut d),
                ),
                None => (None, Assets::default()),
            };
            if !live {
                page_cache.load(&pages_cache_path(&root));
            }
            if highlighting && fresh_highlighter {
                highlighter.load(&cache_path(&root));
                highlighter.warm_up();
            }
            (data, templates, assets, d, t.elapsed())
        },
    );
    // The two halves of loading ran side by side: each for itself, then the phase.
    phases.push(("load:content", content_time));
    phases.push(("load:templates+static+data", other_time));
    // Files that failed to load: links to them are not reported as broken on top of the
    // file's own error (the cause would drown among its consequences).
    let unloadable: HashSet<PathBuf> = content_diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.path.clone())
        .collect();
    diags.extend(content_diags);
    diags.extend(other_diags);
    mark("load", &mut phases);

    let mut assets = assets;
    let mut syntax_css = None;
    if cfg.markdown.highlight {
        let (light, dark) = (
            &cfg.markdown.highlight_theme_light,
            &cfg.markdown.highlight_theme_dark,
        );
        let css = match prev.and_then(|m| m.syntax_css.as_ref()) {
            Some((l, d, css)) if l == light && d == dark => css.clone(),
            _ => highlight::stylesheet(light, dark),
        };
        syntax_css = Some((light.clone(), dark.clone(), css.clone()));
        match css {
            Ok(css) => assets.add(
                "css/syntax.css",
                Payload::Bytes(css.into_bytes().into()),
                "<generated>/css/syntax.css".into(),
                &mut diags,
            ),
            Err(e @ highlight::StylesheetError::UnknownTheme { slot, .. }) => {
                let text = std::fs::read_to_string(root.join(folio_content::config::CONFIG_FILE))
                    .unwrap_or_default();
                diags.push(Diagnostic::error(
                    folio_content::config::CONFIG_FILE,
                    folio_content::frontmatter::find_key(&text, slot.config_key()),
                    e.to_string(),
                ));
            }
        }
    }

    // Responsive cover variants and the terminal's xterm.js join the static files.
    let covers = crate::covers::Covers::build(&root, &content, &mut assets, &mut diags);
    let xterm = crate::xterm::add(&root, &cfg, &content, &mut assets, &mut diags);
    mark("covers", &mut phases);

    // Markdown, in parallel; a body rendered by the previous build with the same options is
    // reused while its internal links resolve the same.
    let links = content.link_table();
    let md_opts = RenderOptions {
        smart_punctuation: cfg.markdown.smart_punctuation,
        toc_depth: cfg.markdown.toc_depth,
        links: &links,
        highlighter: highlighting.then_some(&*highlighter),
    };
    let md_salt = {
        let mut h = blake3::Hasher::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(&[
            u8::from(md_opts.smart_punctuation),
            md_opts.toc_depth,
            u8::from(highlighting),
        ]);
        *h.finalize().as_bytes()
    };
    // A file's previous rendering is reused when its body and the options are the same (a
    // text comparison: cheaper than hashing every body) and its links resolve the same.
    let markdown = |file: &content::SourceFile| -> Arc<MdEntry> {
        let body = file.body();
        if let Some(e) = prev.and_then(|m| m.markdown.get(&file.content_path)) {
            if e.salt == md_salt && *e.body == *body && e.still_valid(&links) {
                return e.clone();
            }
        }
        let r = markdown::render(body, &md_opts);
        Arc::new(MdEntry::new(
            r,
            &links,
            md_salt,
            if live { body } else { "" },
        ))
    };
    let page_md: Vec<Arc<MdEntry>> = content
        .pages
        .par_iter()
        .map(|p| markdown(&p.file))
        .collect();
    let section_md: HashMap<String, Arc<MdEntry>> = content
        .sections
        .par_iter()
        .filter_map(|(k, s)| s.file.as_ref().map(|f| (k.clone(), markdown(f))))
        .collect();
    let rendered: Vec<Arc<Rendered>> = page_md.iter().map(|e| e.full.clone()).collect();
    let light: Vec<Arc<Rendered>> = page_md.iter().map(|e| e.light.clone()).collect();
    let section_rendered: HashMap<String, Arc<Rendered>> = section_md
        .iter()
        .map(|(k, e)| (k.clone(), e.full.clone()))
        .collect();
    let md_memo: HashMap<String, Arc<MdEntry>> = if live {
        content
            .pages
            .iter()
            .map(|p| &p.file)
            .zip(page_md.iter())
            .chain(
                content
                    .sections
                    .iter()
                    .filter_map(|(k, s)| Some((s.file.as_ref()?, section_md.get(k)?))),
            )
            .map(|(f, e)| (f.content_path.clone(), e.clone()))
            .collect()
    } else {
        HashMap::new()
    };
    mark("markdown", &mut phases);
    check_links(
        &content,
        &rendered,
        &section_rendered,
        &unloadable,
        &mut diags,
    );

    let tags = render::collect_tags(&content);
    let plan = plan_outputs(&content, &tags, &assets, &mut diags);

    let Some(mut templates) = templates else {
        return Err(diags);
    };
    let pristine_templates = live.then(|| templates.clone());
    mark("checks", &mut phases);
    check_template_names(&content, &tags, &templates, &mut diags);
    if diags.has_errors() {
        return Err(diags);
    }

    // Contexts.
    let config_ctx = crate::xterm::expose(render::config_context(&cfg), xterm.as_ref());
    // Each page's summary; in live builds with its digest (for fingerprints, so list
    // contexts hash small), both reused while what they are made of is unchanged.
    let summary_entries: Vec<Arc<SummaryEntry>> = content
        .pages
        .par_iter()
        .zip(page_md.par_iter())
        .map(|(p, md)| {
            let cover_fields = covers.annotate(p, Value::Object(Default::default()));
            if let Some(e) = prev.and_then(|m| m.summaries.get(&p.file.content_path)) {
                if e.matches(&cfg, p, md, &cover_fields) {
                    return e.clone();
                }
            }
            let value = covers.annotate(p, render::page_summary(&cfg, p, &md.full));
            let light = if live {
                digest_value(&value)
            } else {
                Value::Null
            };
            Arc::new(SummaryEntry::new(&cfg, p, md, cover_fields, value, light))
        })
        .collect();
    let summaries: Arc<Vec<Value>> = Arc::new(
        summary_entries
            .par_iter()
            .map(|e| e.value.clone())
            .collect(),
    );
    let light_summaries: Vec<Value> = if live {
        summary_entries.iter().map(|e| e.light.clone()).collect()
    } else {
        Vec::new()
    };
    let summary_memo: HashMap<String, Arc<SummaryEntry>> = if live {
        content
            .pages
            .iter()
            .zip(summary_entries)
            .map(|(p, e)| (p.file.content_path.clone(), e))
            .collect()
    } else {
        HashMap::new()
    };
    let section_summaries: HashMap<String, Value> = content
        .sections
        .iter()
        .map(|(k, sec)| (k.clone(), render::section_summary(&cfg, sec)))
        .collect();
    let section_contexts = |summaries: &[Value]| -> HashMap<String, Value> {
        content
            .sections
            .iter()
            .map(|(k, s)| {
                let subs = s
                    .subsections
                    .iter()
                    .filter_map(|sk| section_summaries.get(sk).cloned())
                    .collect();
                (
                    k.clone(),
                    render::section_full(
                        &cfg,
                        s,
                        section_rendered.get(k).map(|r| &**r),
                        summaries,
                        subs,
                        false,
                    ),
                )
            })
            .collect()
    };
    let all_pagers = |summaries: &[Value]| -> HashMap<String, Vec<render::Pager>> {
        content
            .sections
            .iter()
            .map(|(k, s)| (k.clone(), render::paginate(s, summaries)))
            .collect()
    };
    let section_ctx = section_contexts(&summaries);
    // Made when a list page is rendered: a rebuild that reuses a section's list pages never
    // copies its page summaries into pagers.
    let pagers: HashMap<String, std::sync::OnceLock<Vec<render::Pager>>> = content
        .sections
        .keys()
        .map(|k| (k.clone(), std::sync::OnceLock::new()))
        .collect();
    let (light_section_ctx, light_pagers) = if live {
        (
            section_contexts(&light_summaries),
            all_pagers(&light_summaries),
        )
    } else {
        Default::default()
    };
    let tags_ctx: Vec<Value> = tags.iter().map(|t| json!({ "name": t.name, "slug": t.slug, "path": t.path, "permalink": cfg.permalink(&t.path), "count": t.pages.len() })).collect();
    let data_digest = data.digest();
    let functions = register_functions(
        &mut templates,
        &content,
        &summaries,
        &light_summaries,
        &section_ctx,
        &tags_ctx,
        &assets,
        data,
    );

    // Render.
    let staging = match mode {
        Mode::Write => Some(Staging::new(&output).map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                &output,
                None,
                format!("cannot create the output folder: {e}"),
            ))
        })?),
        _ => None,
    };
    let sink = match (&staging, mode, live) {
        (_, _, true) => Out::Live(Mutex::new(BTreeMap::new())),
        (Some(s), _, _) => Out::Sink(Sink::Dir(s.dir().to_path_buf())),
        (None, Mode::Memory, _) => Out::Sink(Sink::Memory(Mutex::new(BTreeMap::new()))),
        _ => Out::Sink(Sink::Discard),
    };
    let jobs = jobs(&content, &tags);
    let total = jobs.len();
    let done = AtomicUsize::new(0);
    let inline = Mutex::new(InlineCode::default());
    let errors = Mutex::new(Diagnostics::new());
    let minify_cfg = minify_config();
    let inputs = RenderInputs {
        cfg: &cfg,
        content: &content,
        rendered: &rendered,
        light: &light,
        md_digests: page_md.iter().map(|e| e.digest).collect(),
        summaries: &summaries,
        light_summaries: &light_summaries,
        light_section_ctx,
        light_pagers,
        light_config: if live {
            digest_value(&config_ctx)
        } else {
            Value::Null
        },
        light_section_summaries: if live {
            section_summaries
                .iter()
                .map(|(k, v)| (k.clone(), digest_value(v)))
                .collect()
        } else {
            HashMap::new()
        },
        section_summaries,
        section_ctx,
        pagers,
        tags: &tags,
        tags_ctx,
        config_ctx,
    };
    let global = if live {
        [0; 32]
    } else {
        global_digest(opts.minify, &templates, &inputs, &data_digest, &assets)
    };
    let render_cached = |t: &Templates, name: &str, ctx: &Context| -> Result<Vec<u8>, Diagnostic> {
        let key = (!live).then(|| page_key(&global, name, ctx));
        if let Some(hit) = key.as_ref().and_then(|k| page_cache.get(k)) {
            return Ok(hit.to_vec());
        }
        let html = t.render(name, ctx)?;
        let bytes = if opts.minify {
            minify_html::minify(html.as_bytes(), &minify_cfg)
        } else {
            html.into_bytes()
        };
        if let Some(k) = key {
            page_cache.put(k, Arc::from(bytes.as_slice()));
        }
        Ok(bytes)
    };

    // Incremental: a template job is reused when its fingerprint (template closure and whole
    // context) is the previous one's and every site function it called returns the same.
    mark("contexts", &mut phases);
    let fingerprints: Vec<(String, Key)> = if live {
        jobs.par_iter()
            .map(|job| match job {
                Job::Page(i) => (
                    job_output(job, &inputs),
                    page_fingerprint(opts.minify, &templates, &inputs, *i),
                ),
                _ => {
                    let jc = job_context(job, &inputs, true);
                    (
                        jc.out,
                        fingerprint(opts.minify, &templates, jc.template, jc.ctx),
                    )
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    mark("fingerprints", &mut phases);
    let mut reuse: Vec<Option<Arc<JobRecord>>> = vec![None; jobs.len()];
    if let Some(prev) = prev {
        let mut replayed = HashMap::new();
        for (i, (out, fp)) in fingerprints.iter().enumerate() {
            reuse[i] = prev
                .jobs
                .get(out)
                .filter(|r| {
                    r.fingerprint == *fp
                        && r.reads
                            .iter()
                            .all(|read| functions.still_valid(read, &mut replayed))
                })
                .cloned();
        }
    }
    mark("replay", &mut phases);
    let rendered_count = AtomicUsize::new(0);
    let records: Vec<Option<(String, Arc<JobRecord>)>> = jobs
        .par_iter()
        .enumerate()
        .map(|(i, job)| {
            let result = match &reuse[i] {
                Some(r) => Ok((fingerprints[i].0.clone(), r.clone())),
                None => {
                    rendered_count.fetch_add(1, Ordering::Relaxed);
                    let jc = job_context(job, &inputs, false);
                    let (result, reads) = if live {
                        deps::recording(|| render_cached(&templates, jc.template, &jc.ctx))
                    } else {
                        (render_cached(&templates, jc.template, &jc.ctx), Vec::new())
                    };
                    result
                        .map_err(|mut d| {
                            if let Some(shown) = &jc.shown {
                                d.message =
                                    format!("{} (rendering {})", d.message, shown.display());
                            }
                            d
                        })
                        .map(|bytes| {
                            let found =
                                security::scan_html(std::str::from_utf8(&bytes).unwrap_or(""));
                            (
                                jc.out,
                                Arc::new(JobRecord {
                                    fingerprint: fingerprints
                                        .get(i)
                                        .map(|f| f.1)
                                        .unwrap_or_default(),
                                    reads,
                                    inline: found,
                                    bytes: Arc::from(bytes),
                                }),
                            )
                        })
                }
            };
            let kept = match result {
                Ok((out, rec)) => {
                    let i = &rec.inline;
                    if !(i.scripts.is_empty()
                        && i.styles.is_empty()
                        && i.blocked_attributes.is_empty())
                    {
                        inline.lock().expect("poisoned").merge(rec.inline.clone());
                    }
                    if let Err(e) = sink.put(&out, &rec.bytes) {
                        errors.lock().expect("poisoned").push(Diagnostic::error(
                            &output,
                            None,
                            format!("cannot write {out}: {e}"),
                        ));
                    }
                    live.then_some((out, rec))
                }
                Err(d) => {
                    errors.lock().expect("poisoned").push(d);
                    None
                }
            };
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(p) = &opts.progress {
                p(n, total);
            }
            kept
        })
        .collect();
    diags.extend(errors.into_inner().expect("poisoned"));
    mark("render", &mut phases);

    // Files written without templates.
    let mut write_errors = Diagnostics::new();
    let mut write = |rel: &str, bytes: &[u8]| {
        if let Err(e) = sink.write(rel, bytes) {
            write_errors.push(Diagnostic::error(
                &output,
                None,
                format!("cannot write {rel}: {e}"),
            ));
        }
    };
    for p in &content.pages {
        for a in &p.aliases {
            write(
                &alias_output(a),
                render::redirect_page(&cfg, &p.path).as_bytes(),
            );
        }
    }
    let redirects: String = content
        .pages
        .iter()
        .flat_map(|p| {
            p.aliases
                .iter()
                .map(move |a| format!("{a} {} 301\n", p.path))
        })
        .collect();
    if !redirects.is_empty() {
        write("_redirects", redirects.as_bytes());
    }
    // Independent of each other and of every page: made side by side.
    let ((atom, sitemap), projects) = rayon::join(
        || {
            rayon::join(
                || render::atom(&cfg, &content, &rendered),
                || render::sitemap(&cfg, &sitemap_entries(&content, &tags)),
            )
        },
        || render::projects_json(&cfg, &content),
    );
    write("atom.xml", atom.as_bytes());
    write("sitemap.xml", sitemap.as_bytes());
    write("robots.txt", render::robots(&cfg).as_bytes());
    write("projects.json", projects.as_bytes());
    let inline = inline.into_inner().expect("poisoned");
    for a in &inline.blocked_attributes {
        diags.push(Diagnostic::warning("templates", None, format!("{a} is blocked by the Content-Security-Policy: move it to a stylesheet or script file")));
    }
    let headers = security::headers(&cfg.security, &inline);
    write(
        "_headers",
        security::headers_file(&headers, &assets.immutable_paths()).as_bytes(),
    );
    write(
        MANIFEST_FILE,
        render::edge_json(&cfg, &content, &headers).as_bytes(),
    );
    diags.extend(write_errors);

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
            .unwrap_or_else(|| src.strip_prefix(&root).unwrap_or(src).to_path_buf())
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
            match (&sink, prev) {
                (Out::Live(_), Some(prev)) => {
                    let rec = copy_live(src, prev.copies.get(out), touched).map_err(fail)?;
                    sink.put(out, &rec.bytes).map_err(fail)?;
                    Ok(Some((out.clone(), rec)))
                }
                (Out::Sink(s), _) => s.copy(out, src).map(|_| None).map_err(fail),
                (Out::Live(_), None) => unreachable!("live output without a memo"),
            }
        })
        .collect();
    let mut copy_memo = HashMap::new();
    for c in copied {
        match c {
            Ok(Some((out, rec))) => {
                copy_memo.insert(out, rec);
            }
            Ok(None) => {}
            Err(d) => diags.push(d),
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
    diags.extend(byte_errors);
    mark("write", &mut phases);

    if diags.has_errors() {
        return Err(diags); // the staging folder is dropped: the old output stays
    }
    let rendered_count = rendered_count.into_inner();
    let mut report = BuildReport {
        pages: content.pages.len(),
        sections: content
            .sections
            .values()
            .filter(|s| s.is_rendered())
            .count(),
        tags: tags.len(),
        files: plan,
        highlight: highlighter.stats(),
        page_cache: page_cache.stats(),
        rendered: rendered_count,
        reused: total - rendered_count,
        ..Default::default()
    };
    if let Some(s) = staging {
        s.commit().map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                &output,
                None,
                format!("cannot put the new site in place: {e}"),
            ))
        })?;
        report.output = Some(output);
    }
    if mode == Mode::Write {
        if let Err(e) = page_cache.save(&pages_cache_path(&root)) {
            diags.push(Diagnostic::warning(
                ".folio/cache",
                None,
                format!("cannot save the page cache: {e}"),
            ));
        }
    }
    // A kept highlighter counts across builds: save it once, after its first build.
    if highlighting && fresh_highlighter {
        if let Err(e) = highlighter.save(&cache_path(&root)) {
            diags.push(Diagnostic::warning(
                ".folio/cache",
                None,
                format!("cannot save the highlight cache: {e}"),
            ));
        }
    }
    let memo = match sink {
        Out::Live(files) => Some(Memo {
            highlighter: Some(highlighter),
            markdown: md_memo,
            parse: parse_cache,
            templates: pristine_templates,
            summaries: summary_memo,
            syntax_css,
            jobs: records.into_iter().flatten().collect(),
            copies: copy_memo,
            files: files.into_inner().expect("output poisoned"),
        }),
        Out::Sink(s) => {
            report.files_in_memory = s.into_files();
            None
        }
    };
    mark("finish", &mut phases);
    report.phases = phases;
    report.warnings = diags;
    report.elapsed = started.elapsed();
    Ok((report, memo))
}

fn check_output_path(root: &Path, output: &Path) -> Result<(), Diagnostics> {
    let out = output
        .canonicalize()
        .unwrap_or_else(|_| output.to_path_buf());
    if root.starts_with(&out) {
        return Err(Diagnostic::error(output, None, "refusing to build into a folder that contains the site itself; choose another --output").into());
    }
    for keep in ["content", "templates", "static", "data", "themes"] {
        if out.starts_with(root.join(keep)) {
            return Err(Diagnostic::error(
                output,
                None,
                format!(
                    "refusing to build into the site's {keep}/ folder; choose another --output"
                ),
            )
            .into());
        }
    }
    Ok(())
}

fn minify_config() -> minify_html::Cfg {
    let mut c = minify_html::Cfg::new();
    c.minify_css = true;
    c.minify_js = true;
    c.keep_html_and_head_opening_tags = true;
    c
}

fn alias_output(alias: &str) -> String {
    let a = alias.trim_start_matches('/');
    if a.ends_with('/') || a.is_empty() {
        format!("{a}index.html")
    } else {
        a.to_string()
    }
}

fn check_links(
    content: &Content,
    rendered: &[Arc<Rendered>],
    sections: &HashMap<String, Arc<Rendered>>,
    unloadable: &HashSet<PathBuf>,
    diags: &mut Diagnostics,
) {
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
                l.offset == *offset && unloadable.contains(&Path::new("content").join(&l.target))
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

/// Lists every output path once; two sources claiming one path is an error. Returns the count.
fn plan_outputs(
    content: &Content,
    tags: &[Tag],
    assets: &Assets,
    diags: &mut Diagnostics,
) -> usize {
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
    claimed.len()
}

fn page_template<'a>(
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

fn section_template(s: &content::Section) -> &str {
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

/// A hash of everything a template can reach besides its own context (other pages through
/// `get_page`/`get_section`, data files, assets, the templates themselves): part of every page's
/// cache key, so a cached page is only reused when rendering it again would give the same bytes.
fn global_digest(
    minify: bool,
    t: &Templates,
    inputs: &RenderInputs<'_>,
    data: &[u8; 32],
    assets: &Assets,
) -> [u8; 32] {
    let (config, summaries, sections, tags) = (
        &inputs.config_ctx,
        inputs.summaries,
        &inputs.section_ctx,
        &inputs.tags_ctx,
    );
    let mut h = blake3::Hasher::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(&[u8::from(minify)]);
    h.update(&t.digest());
    h.update(data);
    let _ = serde_json::to_writer(&mut h, config);
    let _ = serde_json::to_writer(&mut h, summaries);
    let mut keys: Vec<&String> = sections.keys().collect();
    keys.sort();
    for k in keys {
        h.update(k.as_bytes());
        let _ = serde_json::to_writer(&mut h, &sections[k]);
    }
    let _ = serde_json::to_writer(&mut h, tags);
    let mut urls: Vec<(&String, &String)> = assets.urls.iter().collect();
    urls.sort();
    let _ = serde_json::to_writer(&mut h, &urls);
    *h.finalize().as_bytes()
}

fn page_key(global: &[u8; 32], template: &str, ctx: &Context) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(global);
    h.update(template.as_bytes());
    h.update(&[0]);
    let _ = serde_json::to_writer(&mut h, &ctx.clone().into_json());
    *h.finalize().as_bytes()
}

/// The fingerprint of a page's own job, from digests of what its context is made of rather
/// than the context itself (a page's context repeats the site's configuration and its
/// section's summary; building and hashing it for every page of a large site would cost more
/// than everything else a one-page rebuild does). Equal fingerprints mean equal contexts:
/// every input of [`job_context`] for `Job::Page(i)` goes in — the template and its closure,
/// `config`, the section summary, the page's summary (which covers its front matter, path,
/// cover and rendering summary), its body and table of contents, demo, bundle files, its
/// neighbours' titles and paths, and its path and URL.
fn page_fingerprint(minify: bool, t: &Templates, inputs: &RenderInputs<'_>, i: usize) -> Key {
    fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    fn value(h: &mut blake3::Hasher, v: &Value) {
        field(h, serde_json::to_string(v).unwrap_or_default().as_bytes());
    }
    let content = inputs.content;
    let p = &content.pages[i];
    let (name, _, _) = page_template(content, p);
    let mut h = blake3::Hasher::new();
    field(&mut h, env!("CARGO_PKG_VERSION").as_bytes());
    field(&mut h, b"page");
    h.update(&[u8::from(minify)]);
    field(&mut h, name.as_bytes());
    h.update(&t.closure_digest(name));
    value(&mut h, &inputs.light_config);
    value(
        &mut h,
        inputs
            .light_section_summaries
            .get(&p.section)
            .unwrap_or(&Value::Null),
    );
    value(&mut h, &inputs.light_summaries[i]);
    h.update(&inputs.md_digests[i]);
    match &p.demo {
        Some(d) => {
            h.update(&[1]);
            field(&mut h, d.id.as_bytes());
            match &d.motd {
                Some(m) => {
                    h.update(&[1]);
                    field(&mut h, m.as_bytes());
                }
                None => {
                    h.update(&[0]);
                }
            }
        }
        None => {
            h.update(&[0]);
        }
    }
    h.update(&(p.assets.len() as u64).to_le_bytes());
    for (_, out) in &p.assets {
        field(&mut h, out.as_bytes());
    }
    // page_full takes the title and path of each neighbour.
    let (lower, higher) = neighbours(content, i, inputs.summaries);
    for n in [lower, higher] {
        match n {
            Some(v) => {
                h.update(&[1]);
                value(&mut h, &v["title"]);
                value(&mut h, &v["path"]);
            }
            None => {
                h.update(&[0]);
            }
        }
    }
    field(&mut h, p.path.as_bytes());
    field(&mut h, inputs.cfg.permalink(&p.path).as_bytes());
    *h.finalize().as_bytes()
}

/// A JSON value standing for `v` in fingerprints: its digest, as hex.
fn digest_value(v: &Value) -> Value {
    Value::String(
        blake3::Hash::from(deps::value_digest(v))
            .to_hex()
            .to_string(),
    )
}

/// The fingerprint of a template job: the template closure (every template it can reach) and
/// the whole context, with page bodies standing in as their hashes.
fn fingerprint(minify: bool, t: &Templates, template: &str, ctx: Context) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(&[u8::from(minify)]);
    h.update(template.as_bytes());
    h.update(&[0]);
    h.update(&t.closure_digest(template));
    let _ = serde_json::to_writer(&mut h, &ctx.into_json());
    *h.finalize().as_bytes()
}

enum Job {
    Page(usize),
    Section(String, usize),
    TagList,
    Tag(usize),
    NotFound,
}

fn jobs(content: &Content, tags: &[Tag]) -> Vec<Job> {
    let mut v: Vec<Job> = (0..content.pages.len()).map(Job::Page).collect();
    for s in content.sections.values().filter(|s| s.gets_page()) {
        v.extend((1..=s.pager_count()).map(|k| Job::Section(s.key.clone(), k)));
    }
    if !tags.is_empty() {
        v.push(Job::TagList);
        v.extend((0..tags.len()).map(Job::Tag));
    }
    v.push(Job::NotFound);
    v
}

/// Everything the template jobs read, computed once per build.
struct RenderInputs<'a> {
    cfg: &'a Config,
    content: &'a Content,
    rendered: &'a [Arc<Rendered>],
    /// `rendered` with each body replaced by its hash (for fingerprints).
    light: &'a [Arc<Rendered>],
    /// Per page, the digest of its rendering's body and table of contents (for
    /// fingerprints).
    md_digests: Vec<Key>,
    summaries: &'a [Value],
    /// `summaries`, `section_ctx` and `pagers` with each page summary replaced by its hash
    /// (for fingerprints; empty in one-off builds).
    light_summaries: &'a [Value],
    light_section_ctx: HashMap<String, Value>,
    light_pagers: HashMap<String, Vec<render::Pager>>,
    /// For fingerprints: `config_ctx` and each of `section_summaries` as their digests
    /// (the same in every job's context: hashed once, not once per job).
    light_config: Value,
    light_section_summaries: HashMap<String, Value>,
    section_summaries: HashMap<String, Value>,
    section_ctx: HashMap<String, Value>,
    /// Per section, its list pages' pagers, made on first use.
    pagers: HashMap<String, std::sync::OnceLock<Vec<render::Pager>>>,
    tags: &'a [Tag],
    tags_ctx: Vec<Value>,
    config_ctx: Value,
}

/// What rendering one job takes: the output path, the template, the context, and the file
/// named in error messages.
struct JobContext<'a> {
    out: String,
    template: &'a str,
    ctx: Context,
    shown: Option<PathBuf>,
}

/// The output path of a job.
fn job_output(job: &Job, inputs: &RenderInputs<'_>) -> String {
    match job {
        Job::Page(i) => format!(
            "{}index.html",
            inputs.content.pages[*i].path.trim_start_matches('/')
        ),
        Job::Section(key, n) => format!(
            "{}index.html",
            render::pager_path(&inputs.content.sections[key].path, *n).trim_start_matches('/')
        ),
        Job::TagList => "tags/index.html".into(),
        Job::Tag(i) => format!("tags/{}/index.html", inputs.tags[*i].slug),
        Job::NotFound => "404.html".into(),
    }
}

/// The context of a job. With `light`, page bodies are their hashes: a context for
/// fingerprints only, never rendered.
fn job_context<'a>(job: &Job, inputs: &'a RenderInputs<'_>, light: bool) -> JobContext<'a> {
    let RenderInputs {
        cfg,
        content,
        rendered,
        summaries,
        section_summaries,
        section_ctx,
        pagers,
        tags,
        tags_ctx,
        config_ctx,
        ..
    } = inputs;
    let (bodies, listed, section_ctx) = if light {
        (
            inputs.light,
            inputs.light_summaries,
            &inputs.light_section_ctx,
        )
    } else {
        (&rendered[..], *summaries, section_ctx)
    };
    let pagers_of = |key: &str| -> Option<&Vec<render::Pager>> {
        if light {
            inputs.light_pagers.get(key)
        } else {
            let s = content.sections.get(key)?;
            Some(
                pagers
                    .get(key)?
                    .get_or_init(|| render::paginate(s, summaries)),
            )
        }
    };
    let (config_ctx, section_summaries) = if light {
        (&inputs.light_config, &inputs.light_section_summaries)
    } else {
        (config_ctx, section_summaries)
    };
    let mut ctx = Context::new();
    ctx.insert("config", config_ctx);
    let path_ctx = |ctx: &mut Context, path: &str| {
        ctx.insert("current_path", path);
        ctx.insert("current_url", &cfg.permalink(path));
    };
    let out = job_output(job, inputs);
    match job {
        Job::Page(i) => {
            let p = &content.pages[*i];
            let (lower, higher) = neighbours(content, *i, summaries);
            // For a fingerprint the summary part stands as its hash: page_full adds to the
            // summary only what it derives from the page, its body and its neighbours.
            let summary = if light {
                json!({ "summary_digest": listed[*i] })
            } else {
                summaries[*i].clone()
            };
            let page = render::page_full(summary, p, &bodies[*i], lower, higher);
            ctx.insert("page", &page);
            ctx.insert(
                "section",
                section_summaries.get(&p.section).unwrap_or(&Value::Null),
            );
            path_ctx(&mut ctx, &p.path);
            let (name, _, _) = page_template(content, p);
            JobContext {
                out,
                template: name,
                ctx,
                shown: Some(p.file.shown.clone()),
            }
        }
        Job::Section(key, n) => {
            let s = &content.sections[key];
            ctx.insert("section", &section_ctx[key]);
            let path = render::pager_path(&s.path, *n);
            if let Some(pager) = pagers_of(key).and_then(|p| p.get(n - 1)) {
                ctx.insert("paginator", pager);
            }
            path_ctx(&mut ctx, &path);
            let shown = s
                .file
                .as_ref()
                .map(|f| f.shown.clone())
                .unwrap_or_else(|| "content".into());
            JobContext {
                out,
                template: section_template(s),
                ctx,
                shown: Some(shown),
            }
        }
        Job::TagList => {
            ctx.insert("terms", tags_ctx);
            ctx.insert(
                "taxonomy",
                &json!({ "name": "tags", "path": "/tags/", "permalink": cfg.permalink("/tags/") }),
            );
            path_ctx(&mut ctx, "/tags/");
            JobContext {
                out,
                template: "taxonomy_list.html",
                ctx,
                shown: None,
            }
        }
        Job::Tag(i) => {
            let tag = &tags[*i];
            let mut term = tags_ctx[*i].clone();
            term.as_object_mut().expect("object").insert(
                "pages".into(),
                Value::Array(tag.pages.iter().map(|&p| listed[p].clone()).collect()),
            );
            ctx.insert("term", &term);
            ctx.insert(
                "taxonomy",
                &json!({ "name": "tags", "path": "/tags/", "permalink": cfg.permalink("/tags/") }),
            );
            path_ctx(&mut ctx, &tag.path);
            JobContext {
                out,
                template: "taxonomy_single.html",
                ctx,
                shown: None,
            }
        }
        Job::NotFound => {
            path_ctx(&mut ctx, "/404.html");
            JobContext {
                out,
                template: "404.html",
                ctx,
                shown: None,
            }
        }
    }
}

fn neighbours<'a>(
    content: &Content,
    i: usize,
    summaries: &'a [Value],
) -> (Option<&'a Value>, Option<&'a Value>) {
    let Some(s) = content.sections.get(&content.pages[i].section) else {
        return (None, None);
    };
    let Some(pos) = s.pages.iter().position(|&x| x == i) else {
        return (None, None);
    };
    let higher = pos.checked_sub(1).map(|p| &summaries[s.pages[p]]);
    let lower = s.pages.get(pos + 1).map(|&p| &summaries[p]);
    (lower, higher)
}

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

#[allow(clippy::too_many_arguments)]
fn register_functions(
    t: &mut Templates,
    content: &Content,
    summaries: &Arc<Vec<Value>>,
    light_summaries: &[Value],
    sections: &HashMap<String, Value>,
    tags: &[Value],
    assets: &Assets,
    data: DataFiles,
) -> deps::Functions {
    let mut fns = deps::Functions::default();
    let urls = Arc::new(assets.urls.clone());
    let u = urls.clone();
    fns.register(
        &mut t.tera,
        "asset",
        move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "asset")?;
            u.get(path.trim_start_matches('/'))
                .map(|s| Value::String(s.clone()))
                .ok_or_else(|| {
                    let mut known: Vec<&String> = u.keys().collect();
                    known.sort();
                    tera::Error::msg(format!(
                        "asset `{path}` not found in static/ (known: {})",
                        known
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        },
    );
    let links = Arc::new(content.link_table());
    let (l, u2) = (links.clone(), urls);
    fns.register(
        &mut t.tera,
        "get_url",
        move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "get_url")?;
            if let Some(cp) = path.strip_prefix("@/") {
                let (file, anchor) = cp.split_once('#').map_or((cp, None), |(f, a)| (f, Some(a)));
                let url = l.get(file).ok_or_else(|| {
                    tera::Error::msg(format!("get_url: `{path}` is not a published page"))
                })?;
                return Ok(Value::String(
                    anchor.map_or_else(|| url.clone(), |a| format!("{url}#{a}")),
                ));
            }
            Ok(Value::String(
                u2.get(path.trim_start_matches('/'))
                    .cloned()
                    .unwrap_or_else(|| format!("/{}", path.trim_start_matches('/'))),
            ))
        },
    );
    let data = Arc::new(data);
    fns.register(
        &mut t.tera,
        "load_data",
        move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "load_data")?;
            data.get(&path).cloned().ok_or_else(|| {
                tera::Error::msg(format!(
                    "load_data: no data file `{path}` under data/ (found: {})",
                    data.names().join(", ")
                ))
            })
        },
    );
    let by_path: HashMap<String, usize> = content
        .pages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.file.content_path.clone(), i))
        .collect();
    let all = summaries.clone();
    fns.register(
        &mut t.tera,
        "get_page",
        move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "get_page")?;
            by_path
                .get(path.trim_start_matches("@/"))
                .map(|&i| all[i].clone())
                .ok_or_else(|| {
                    tera::Error::msg(format!("get_page: `{path}` is not a published page"))
                })
        },
    );
    // Built on call: most sections are never asked for.
    let secs: HashMap<String, (Value, Vec<usize>)> = content
        .sections
        .iter()
        .filter_map(|(k, s)| {
            s.file.as_ref().map(|f| {
                (
                    f.content_path.clone(),
                    (sections[k].clone(), s.pages.clone()),
                )
            })
        })
        .collect();
    // Its result lists every page of a section (the home page asks for them all): in live
    // builds its calls are digested from the section's and the pages' summary digests.
    let light_secs: HashMap<String, Key> = if light_summaries.is_empty() {
        HashMap::new()
    } else {
        secs.iter()
            .map(|(path, (v, pages))| {
                let mut h = blake3::Hasher::new();
                h.update(&deps::value_digest(v));
                for &i in pages {
                    let d = light_summaries[i].as_str().unwrap_or_default();
                    h.update(&(d.len() as u64).to_le_bytes());
                    h.update(d.as_bytes());
                }
                (path.clone(), *h.finalize().as_bytes())
            })
            .collect()
    };
    let all = summaries.clone();
    fns.register_digested(
        &mut t.tera,
        "get_section",
        move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "get_section")?;
            secs.get(path.trim_start_matches("@/"))
                .map(|(v, pages)| {
                    let mut v = v.clone();
                    // get_section lists every page, paginated or not (a large section's
                    // summaries are copied side by side).
                    v["pages"] = Value::Array(pages.par_iter().map(|&i| all[i].clone()).collect());
                    v
                })
                .ok_or_else(|| {
                    tera::Error::msg(format!("get_section: `{path}` is not a published section"))
                })
        },
        move |args: &HashMap<String, Value>| {
            let Some(Value::String(path)) = args.get("path") else {
                return None;
            };
            light_secs.get(path.trim_start_matches("@/")).copied()
        },
    );
    let tags = Arc::new(Value::Array(tags.to_vec()));
    fns.register(
        &mut t.tera,
        "get_tags",
        move |_: &HashMap<String, Value>| Ok((*tags).clone()),
    );
    fns
}

fn arg_str(args: &HashMap<String, Value>, name: &str, f: &str) -> tera::Result<String> {
    match args.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(tera::Error::msg(format!(
            "{f}: `{name}` must be a string, got {other}"
        ))),
        None => Err(tera::Error::msg(format!("{f}: missing argument `{name}`"))),
    }
}
