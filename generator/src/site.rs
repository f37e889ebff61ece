//! The build pipeline: load, validate, render in parallel, write to a staging folder, swap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde_json::{json, Value};
use tera::Context;

use crate::assets::{Assets, Payload};
use crate::cache::BlobCache;
use crate::config::Config;
use crate::content::{self, Content, LoadOptions};
use crate::data::DataFiles;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::frontmatter::find_key_in_file;
use crate::highlight::{self, Highlighter};
use crate::markdown::{self, RenderOptions, Rendered};
use crate::output::{Sink, Staging};
use crate::render::{self, Tag};
use crate::security::{self, InlineCode};
use crate::templates::Templates;
use crate::theme::Theme;

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
    if opts.mode == Mode::Write {
        check_output_path(&root, &output)?;
    }

    // Load everything at once: content, data, templates, static files, grammars, cache.
    let highlighter = Highlighter::new();
    let page_cache = BlobCache::new(b"FOLIOPG1");
    let highlighting = cfg.markdown.highlight && opts.mode != Mode::Check;
    let ((content, content_diags), (data, templates, assets, other_diags)) = rayon::join(
        || {
            content::load(
                &root,
                LoadOptions {
                    drafts: opts.drafts,
                },
            )
        },
        || {
            let mut d = Diagnostics::new();
            let data = DataFiles::load(&root, &mut d);
            let (templates, assets) = match &theme {
                Some(t) => (
                    Templates::load(&root, t, &mut d),
                    Assets::collect(&root, t, &mut d),
                ),
                None => (None, Assets::default()),
            };
            page_cache.load(&pages_cache_path(&root));
            if highlighting {
                highlighter.load(&cache_path(&root));
                highlighter.warm_up();
            }
            (data, templates, assets, d)
        },
    );
    diags.extend(content_diags);
    diags.extend(other_diags);
    mark("load", &mut phases);

    let mut assets = assets;
    if cfg.markdown.highlight {
        match highlight::stylesheet(
            &cfg.markdown.highlight_theme_light,
            &cfg.markdown.highlight_theme_dark,
        ) {
            Ok(css) => assets.add(
                "css/syntax.css",
                Payload::Bytes(css.into_bytes().into()),
                "<generated>/css/syntax.css".into(),
                &mut diags,
            ),
            Err(msg) => {
                let text = std::fs::read_to_string(root.join(crate::config::CONFIG_FILE))
                    .unwrap_or_default();
                let key = if msg.contains(&format!("{:?}", cfg.markdown.highlight_theme_light)) {
                    "highlight_theme_light"
                } else {
                    "highlight_theme_dark"
                };
                diags.push(Diagnostic::error(
                    crate::config::CONFIG_FILE,
                    crate::frontmatter::find_key(&text, key),
                    msg,
                ));
            }
        }
    }

    // Markdown, in parallel.
    let links = content.link_table();
    let md_opts = RenderOptions {
        smart_punctuation: cfg.markdown.smart_punctuation,
        toc_depth: cfg.markdown.toc_depth,
        links: &links,
        highlighter: highlighting.then_some(&highlighter),
    };
    let rendered: Vec<Rendered> = content
        .pages
        .par_iter()
        .map(|p| markdown::render(p.file.body(), &md_opts))
        .collect();
    let section_rendered: HashMap<String, Rendered> = content
        .sections
        .par_iter()
        .filter_map(|(k, s)| {
            s.file
                .as_ref()
                .map(|f| (k.clone(), markdown::render(f.body(), &md_opts)))
        })
        .collect();
    mark("markdown", &mut phases);
    check_links(&content, &rendered, &section_rendered, &mut diags);

    let tags = render::collect_tags(&content);
    let plan = plan_outputs(&content, &tags, &assets, &mut diags);

    let Some(mut templates) = templates else {
        return Err(diags);
    };
    check_template_names(&content, &tags, &templates, &mut diags);
    if diags.has_errors() {
        return Err(diags);
    }

    // Contexts.
    let config_ctx = render::config_context(&cfg);
    let summaries: Vec<Value> = content
        .pages
        .par_iter()
        .zip(rendered.par_iter())
        .map(|(p, r)| render::page_summary(&cfg, p, r))
        .collect();
    let section_summaries: HashMap<String, Value> = content
        .sections
        .iter()
        .map(|(k, sec)| (k.clone(), render::section_summary(&cfg, sec)))
        .collect();
    let section_ctx: HashMap<String, Value> = content
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
                render::section_full(&cfg, s, section_rendered.get(k), &summaries, subs, false),
            )
        })
        .collect();
    let pagers: HashMap<String, Vec<render::Pager>> = content
        .sections
        .iter()
        .map(|(k, s)| (k.clone(), render::paginate(s, &summaries)))
        .collect();
    let tags_ctx: Vec<Value> = tags.iter().map(|t| json!({ "name": t.name, "slug": t.slug, "path": t.path, "permalink": cfg.permalink(&t.path), "count": t.pages.len() })).collect();
    let data_digest = data.digest();
    register_functions(
        &mut templates,
        &content,
        &summaries,
        &section_ctx,
        &tags_ctx,
        &assets,
        data,
    );

    // Render.
    let staging = match opts.mode {
        Mode::Write => Some(Staging::new(&output).map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                &output,
                None,
                format!("cannot create the output folder: {e}"),
            ))
        })?),
        _ => None,
    };
    let sink = match (&staging, opts.mode) {
        (Some(s), _) => Sink::Dir(s.dir().to_path_buf()),
        (None, Mode::Memory) => Sink::Memory(Mutex::new(BTreeMap::new())),
        _ => Sink::Discard,
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
        summaries: &summaries,
        section_summaries,
        section_ctx,
        pagers,
        tags: &tags,
        tags_ctx,
        config_ctx,
    };
    let global = global_digest(opts.minify, &templates, &inputs, &data_digest, &assets);
    let render_cached = |t: &Templates, name: &str, ctx: &Context| -> Result<Vec<u8>, Diagnostic> {
        let key = page_key(&global, name, ctx);
        if let Some(hit) = page_cache.get(&key) {
            return Ok(hit.to_vec());
        }
        let html = t.render(name, ctx)?;
        let bytes = if opts.minify {
            minify_html::minify(html.as_bytes(), &minify_cfg)
        } else {
            html.into_bytes()
        };
        page_cache.put(key, Arc::from(bytes.as_slice()));
        Ok(bytes)
    };
    jobs.par_iter().for_each(|job| {
        let result = render_job(job, &inputs, &templates, &render_cached);
        match result {
            Ok((out, bytes)) => {
                let found = security::scan_html(std::str::from_utf8(&bytes).unwrap_or(""));
                inline.lock().expect("poisoned").merge(found);
                if let Err(e) = sink.write(&out, &bytes) {
                    errors.lock().expect("poisoned").push(Diagnostic::error(
                        &output,
                        None,
                        format!("cannot write {out}: {e}"),
                    ));
                }
            }
            Err(d) => errors.lock().expect("poisoned").push(d),
        }
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(p) = &opts.progress {
            p(n, total);
        }
    });
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
    write(
        "atom.xml",
        render::atom(&cfg, &content, &rendered).as_bytes(),
    );
    write(
        "sitemap.xml",
        render::sitemap(&cfg, &sitemap_entries(&content, &tags)).as_bytes(),
    );
    write("robots.txt", render::robots(&cfg).as_bytes());
    write(
        "projects.json",
        render::projects_json(&cfg, &content).as_bytes(),
    );
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
        "_folio/edge.json",
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
        .collect();
    let copy_errors: Vec<Diagnostic> = copies
        .par_iter()
        .filter_map(|(out, src)| {
            sink.copy(out, src).err().map(|e| {
                Diagnostic::error(
                    src.strip_prefix(&root).unwrap_or(src),
                    None,
                    format!("cannot copy to the output: {e}"),
                )
            })
        })
        .chain(assets.files.par_iter().filter_map(|(out, f)| {
            let r = match &f.payload {
                Payload::File(p) => sink.copy(out, p),
                Payload::Bytes(b) => sink.write(out, b),
            };
            r.err().map(|e| {
                Diagnostic::error(&f.shown, None, format!("cannot copy to the output: {e}"))
            })
        }))
        .collect();
    diags.extend(copy_errors);
    mark("write", &mut phases);

    if diags.has_errors() {
        return Err(diags); // the staging folder is dropped: the old output stays
    }
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
    if opts.mode == Mode::Write {
        if let Err(e) = page_cache.save(&pages_cache_path(&root)) {
            diags.push(Diagnostic::warning(
                ".folio/cache",
                None,
                format!("cannot save the page cache: {e}"),
            ));
        }
    }
    if highlighting {
        if let Err(e) = highlighter.save(&cache_path(&root)) {
            diags.push(Diagnostic::warning(
                ".folio/cache",
                None,
                format!("cannot save the highlight cache: {e}"),
            ));
        }
    }
    report.files_in_memory = sink.into_files();
    mark("finish", &mut phases);
    report.phases = phases;
    report.warnings = diags;
    report.elapsed = started.elapsed();
    Ok(report)
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
    rendered: &[Rendered],
    sections: &HashMap<String, Rendered>,
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
        "_folio/edge.json",
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

/// Renders a template with a context into the page's final bytes (through the page cache).
type RenderFn<'a> = dyn Fn(&Templates, &str, &Context) -> Result<Vec<u8>, Diagnostic> + Sync + 'a;

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
    rendered: &'a [Rendered],
    summaries: &'a [Value],
    section_summaries: HashMap<String, Value>,
    section_ctx: HashMap<String, Value>,
    pagers: HashMap<String, Vec<render::Pager>>,
    tags: &'a [Tag],
    tags_ctx: Vec<Value>,
    config_ctx: Value,
}

fn render_job(
    job: &Job,
    inputs: &RenderInputs<'_>,
    t: &Templates,
    render: &RenderFn<'_>,
) -> Result<(String, Vec<u8>), Diagnostic> {
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
    } = inputs;
    let mut ctx = Context::new();
    ctx.insert("config", config_ctx);
    let path_ctx = |ctx: &mut Context, path: &str| {
        ctx.insert("current_path", path);
        ctx.insert("current_url", &cfg.permalink(path));
    };
    let with_file = |r: Result<Vec<u8>, Diagnostic>, shown: &Path| {
        r.map_err(|mut d| {
            d.message = format!("{} (rendering {})", d.message, shown.display());
            d
        })
    };
    match job {
        Job::Page(i) => {
            let p = &content.pages[*i];
            let (lower, higher) = neighbours(content, *i, summaries);
            let page = render::page_full(summaries[*i].clone(), p, &rendered[*i], lower, higher);
            ctx.insert("page", &page);
            ctx.insert(
                "section",
                section_summaries.get(&p.section).unwrap_or(&Value::Null),
            );
            path_ctx(&mut ctx, &p.path);
            let (name, _, _) = page_template(content, p);
            Ok((
                format!("{}index.html", p.path.trim_start_matches('/')),
                with_file(render(t, name, &ctx), &p.file.shown)?,
            ))
        }
        Job::Section(key, n) => {
            let s = &content.sections[key];
            ctx.insert("section", &section_ctx[key]);
            let path = render::pager_path(&s.path, *n);
            if let Some(pager) = pagers.get(key).and_then(|p| p.get(n - 1)) {
                ctx.insert("paginator", pager);
            }
            path_ctx(&mut ctx, &path);
            let shown = s
                .file
                .as_ref()
                .map(|f| f.shown.clone())
                .unwrap_or_else(|| "content".into());
            Ok((
                format!("{}index.html", path.trim_start_matches('/')),
                with_file(render(t, section_template(s), &ctx), &shown)?,
            ))
        }
        Job::TagList => {
            ctx.insert("terms", tags_ctx);
            ctx.insert(
                "taxonomy",
                &json!({ "name": "tags", "path": "/tags/", "permalink": cfg.permalink("/tags/") }),
            );
            path_ctx(&mut ctx, "/tags/");
            Ok((
                "tags/index.html".into(),
                render(t, "taxonomy_list.html", &ctx)?,
            ))
        }
        Job::Tag(i) => {
            let tag = &tags[*i];
            let mut term = tags_ctx[*i].clone();
            term.as_object_mut().expect("object").insert(
                "pages".into(),
                Value::Array(tag.pages.iter().map(|&p| summaries[p].clone()).collect()),
            );
            ctx.insert("term", &term);
            ctx.insert(
                "taxonomy",
                &json!({ "name": "tags", "path": "/tags/", "permalink": cfg.permalink("/tags/") }),
            );
            path_ctx(&mut ctx, &tag.path);
            Ok((
                format!("tags/{}/index.html", tag.slug),
                render(t, "taxonomy_single.html", &ctx)?,
            ))
        }
        Job::NotFound => {
            path_ctx(&mut ctx, "/404.html");
            Ok(("404.html".into(), render(t, "404.html", &ctx)?))
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

fn register_functions(
    t: &mut Templates,
    content: &Content,
    summaries: &[Value],
    sections: &HashMap<String, Value>,
    tags: &[Value],
    assets: &Assets,
    data: DataFiles,
) {
    let urls = Arc::new(assets.urls.clone());
    let u = urls.clone();
    t.tera
        .register_function("asset", move |args: &HashMap<String, Value>| {
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
        });
    let links = Arc::new(content.link_table());
    let (l, u2) = (links.clone(), urls);
    t.tera
        .register_function("get_url", move |args: &HashMap<String, Value>| {
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
        });
    let data = Arc::new(data);
    t.tera
        .register_function("load_data", move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "load_data")?;
            data.get(&path).cloned().ok_or_else(|| {
                tera::Error::msg(format!(
                    "load_data: no data file `{path}` under data/ (found: {})",
                    data.names().join(", ")
                ))
            })
        });
    let by_path: Arc<HashMap<String, Value>> = Arc::new(
        content
            .pages
            .iter()
            .zip(summaries)
            .map(|(p, s)| (p.file.content_path.clone(), s.clone()))
            .collect(),
    );
    t.tera
        .register_function("get_page", move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "get_page")?;
            by_path
                .get(path.trim_start_matches("@/"))
                .cloned()
                .ok_or_else(|| {
                    tera::Error::msg(format!("get_page: `{path}` is not a published page"))
                })
        });
    let secs: Arc<HashMap<String, Value>> = Arc::new(
        content
            .sections
            .iter()
            .filter_map(|(k, s)| {
                s.file.as_ref().map(|f| {
                    let mut v = sections[k].clone();
                    // get_section lists every page, paginated or not.
                    v["pages"] =
                        Value::Array(s.pages.iter().map(|&i| summaries[i].clone()).collect());
                    (f.content_path.clone(), v)
                })
            })
            .collect(),
    );
    t.tera
        .register_function("get_section", move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "get_section")?;
            secs.get(path.trim_start_matches("@/"))
                .cloned()
                .ok_or_else(|| {
                    tera::Error::msg(format!("get_section: `{path}` is not a published section"))
                })
        });
    let tags = Arc::new(Value::Array(tags.to_vec()));
    t.tera
        .register_function("get_tags", move |_: &HashMap<String, Value>| {
            Ok((*tags).clone())
        });
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
