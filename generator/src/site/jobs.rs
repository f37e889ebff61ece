//! The render phase: every template job (each page, each list page of a section, the tag
//! pages, 404) rendered in parallel, or its previous output reused (see [`super::reuse`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde_json::{json, Value};
use tera::Context;

use crate::output::Sink;
use crate::render::{self, Tag};
use crate::security::InlineCode;
use crate::templates::Templates;
use folio_content::content::Content;
use folio_content::diagnostics::{Diagnostic, Diagnostics};

use super::checks::{page_template, section_template};
use super::contexts::{ContextValues, RenderInputs};
use super::deps;
use super::reuse::JobRecord;
use super::Build;

/// One template to render.
pub(super) enum Job {
    /// A page (by index in `content.pages`).
    Page(usize),
    /// A page that lists others.
    List(ListJob),
}

/// A template job whose context lists pages (or none): its fingerprint is made from its
/// whole context, with stand-ins for the pages.
pub(super) enum ListJob {
    /// List page `n` (1-based) of a section, by key.
    Section(String, usize),
    /// `/tags/`.
    TagList,
    /// One tag's page, by index.
    Tag(usize),
    /// `404.html`.
    NotFound,
}

/// Every job of the site, pages first.
pub(super) fn jobs(content: &Content, tags: &[Tag]) -> Vec<Job> {
    let mut v: Vec<Job> = (0..content.pages.len()).map(Job::Page).collect();
    let mut lists = Vec::new();
    for s in content.sections.values().filter(|s| s.gets_page()) {
        lists.extend((1..=s.pager_count()).map(|k| ListJob::Section(s.key.clone(), k)));
    }
    if !tags.is_empty() {
        lists.push(ListJob::TagList);
        lists.extend((0..tags.len()).map(ListJob::Tag));
    }
    lists.push(ListJob::NotFound);
    v.extend(lists.into_iter().map(Job::List));
    v
}

/// What rendering one job takes: the template, the context, and the file named in error
/// messages.
pub(super) struct JobContext<'a> {
    pub(super) template: &'a str,
    pub(super) ctx: Context,
    shown: Option<PathBuf>,
}

/// The output path of a job.
pub(super) fn job_output(job: &Job, inputs: &RenderInputs<'_>) -> String {
    match job {
        Job::Page(i) => format!(
            "{}index.html",
            inputs.content.pages[*i].path.trim_start_matches('/')
        ),
        Job::List(ListJob::Section(key, n)) => format!(
            "{}index.html",
            render::pager_path(&inputs.content.sections[key].path, *n).trim_start_matches('/')
        ),
        Job::List(ListJob::TagList) => "tags/index.html".into(),
        Job::List(ListJob::Tag(i)) => format!("tags/{}/index.html", inputs.tags[*i].slug),
        Job::List(ListJob::NotFound) => "404.html".into(),
    }
}

/// The template a job is rendered with.
pub(super) fn job_template<'a>(job: &Job, inputs: &'a RenderInputs<'_>) -> &'a str {
    match job {
        Job::Page(i) => page_template(inputs.content, &inputs.content.pages[*i]).0,
        Job::List(ListJob::Section(key, _)) => section_template(&inputs.content.sections[key]),
        Job::List(ListJob::TagList) => "taxonomy_list.html",
        Job::List(ListJob::Tag(_)) => "taxonomy_single.html",
        Job::List(ListJob::NotFound) => "404.html",
    }
}

/// The context a job is rendered with.
fn job_context<'a>(job: &Job, inputs: &'a RenderInputs<'_>) -> Result<JobContext<'a>, Diagnostic> {
    match job {
        Job::Page(i) => page_context(*i, inputs),
        Job::List(list) => Ok(list_context(list, inputs, &inputs.values)),
    }
}

/// Sets `current_path` and `current_url`.
fn insert_path(ctx: &mut Context, inputs: &RenderInputs<'_>, path: &str) {
    ctx.insert("current_path", path);
    ctx.insert("current_url", &inputs.cfg.permalink(path));
}

/// The context of page `i`'s own template.
fn page_context<'a>(i: usize, inputs: &'a RenderInputs<'_>) -> Result<JobContext<'a>, Diagnostic> {
    let (content, values) = (inputs.content, &inputs.values);
    let p = &content.pages[i];
    let html = inputs.bodies.page_html(i).read().map_err(|e| {
        Diagnostic::error(
            &p.file.shown,
            None,
            format!("cannot read back its rendered body from the build's temporary file in .folio/cache: {e}"),
        )
    })?;
    let mut ctx = Context::new();
    ctx.insert("config", &values.config);
    let (lower, higher) = neighbours(inputs, i);
    let mut page = render::page_full(
        values.summaries[i].clone(),
        p,
        (&inputs.body(i).full, html.into_owned()),
        lower,
        higher,
    );
    if let (Some(rec), Some(demo)) = (
        inputs.recordings.get(&i),
        page.get_mut("demo").and_then(Value::as_object_mut),
    ) {
        demo.insert("recording".into(), rec.clone());
    }
    ctx.insert("page", &page);
    ctx.insert(
        "section",
        inputs
            .section_summaries
            .get(&p.section)
            .unwrap_or(&Value::Null),
    );
    insert_path(&mut ctx, inputs, &p.path);
    let (name, _, _) = page_template(content, p);
    Ok(JobContext {
        template: name,
        ctx,
        shown: Some(p.file.shown.clone()),
    })
}

/// The context of a list job, made of `values`: the real ones to render, stand-ins for a
/// fingerprint.
pub(super) fn list_context<'a>(
    job: &ListJob,
    inputs: &'a RenderInputs<'_>,
    values: &ContextValues,
) -> JobContext<'a> {
    let (cfg, content) = (inputs.cfg, inputs.content);
    let mut ctx = Context::new();
    ctx.insert("config", &values.config);
    let taxonomy =
        || json!({ "name": "tags", "path": "/tags/", "permalink": cfg.permalink("/tags/") });
    let (template, shown) = match job {
        ListJob::Section(key, n) => {
            let s = &content.sections[key];
            ctx.insert("section", &values.sections[key]);
            let path = render::pager_path(&s.path, *n);
            if let Some(pager) = values.pager(content, key, *n) {
                ctx.insert("paginator", &pager);
            }
            insert_path(&mut ctx, inputs, &path);
            let shown = s
                .file
                .as_ref()
                .map(|f| f.shown.clone())
                .unwrap_or_else(|| "content".into());
            (section_template(s), Some(shown))
        }
        ListJob::TagList => {
            ctx.insert("terms", &inputs.tags_ctx);
            ctx.insert("taxonomy", &taxonomy());
            insert_path(&mut ctx, inputs, "/tags/");
            ("taxonomy_list.html", None)
        }
        ListJob::Tag(i) => {
            let tag = &inputs.tags[*i];
            let mut term = inputs.tags_ctx[*i].clone();
            term.as_object_mut().expect("object").insert(
                "pages".into(),
                Value::Array(
                    tag.pages
                        .iter()
                        .map(|&p| values.summaries[p].clone())
                        .collect(),
                ),
            );
            ctx.insert("term", &term);
            ctx.insert("taxonomy", &taxonomy());
            insert_path(&mut ctx, inputs, &tag.path);
            ("taxonomy_single.html", None)
        }
        ListJob::NotFound => {
            insert_path(&mut ctx, inputs, "/404.html");
            ("404.html", None)
        }
    };
    JobContext {
        template,
        ctx,
        shown,
    }
}

/// The summaries of page `i`'s neighbours in its section: (lower, higher).
fn neighbours<'a>(
    inputs: &'a RenderInputs<'_>,
    i: usize,
) -> (Option<&'a Value>, Option<&'a Value>) {
    let (lower, higher) = neighbour_indices(inputs.content, i, inputs.positions[i]);
    let summary = |n: usize| &inputs.values.summaries[n];
    (lower.map(summary), higher.map(summary))
}

/// The indices of page `i`'s neighbours in its section, (lower, higher), given its place in
/// the section's list (see [`section_positions`]).
pub(super) fn neighbour_indices(
    content: &Content,
    i: usize,
    pos: Option<usize>,
) -> (Option<usize>, Option<usize>) {
    let (Some(s), Some(pos)) = (content.sections.get(&content.pages[i].section), pos) else {
        return (None, None);
    };
    let higher = pos.checked_sub(1).map(|p| s.pages[p]);
    let lower = s.pages.get(pos + 1).copied();
    (lower, higher)
}

/// Each page's place in its own section's list, found once for every page (looking each up
/// in its section's list would cost a pass over the section per page).
pub(super) fn section_positions(content: &Content) -> Vec<Option<usize>> {
    let mut at = vec![None; content.pages.len()];
    for s in content.sections.values() {
        for (pos, &i) in s.pages.iter().enumerate() {
            if content.pages[i].section == s.key && at[i].is_none() {
                at[i] = Some(pos);
            }
        }
    }
    at
}

/// What the render phase leaves.
pub(super) struct Renders {
    /// Per job kept for the next build: its output path and record.
    pub(super) records: Vec<(String, Arc<JobRecord>)>,
    /// The inline scripts, styles and attributes of every page (for the CSP).
    pub(super) inline: InlineCode,
    /// How many jobs were rendered (not reused).
    pub(super) count: usize,
    /// The output paths of the jobs rendered (not reused), sorted.
    pub(super) paths: Vec<String>,
}

impl Build<'_> {
    /// Renders every job not reused, in parallel, and writes every job's output to `sink`.
    pub(super) fn render(
        &mut self,
        jobs: &[Job],
        inputs: &RenderInputs<'_>,
        templates: &Templates,
        functions: &deps::Functions,
        sink: &Sink,
    ) -> Renders {
        let minify = self.opts.minify;
        self.reuse.fingerprint(jobs, inputs, templates, minify);
        self.clock.mark("fingerprints");
        self.reuse.replay(self.prev, functions);
        self.clock.mark("replay");
        let (reuse, output, progress) = (&self.reuse, &self.site.output, &self.opts.progress);
        let total = jobs.len();
        let (done, count) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let inline = Mutex::new(InlineCode::default());
        let paths = Mutex::new(Vec::new());
        let errors = Mutex::new(Diagnostics::new());
        let minify_cfg = minify_config();
        let base_path = inputs.cfg.base_path();
        let render_html = |name: &str, ctx: &Context| -> Result<Vec<u8>, Diagnostic> {
            let mut html = templates.render(name, ctx)?;
            if !base_path.is_empty() {
                html = crate::base_path::rewrite_html(&html, base_path);
            }
            Ok(if minify {
                minify_html::minify(html.as_bytes(), &minify_cfg)
            } else {
                html.into_bytes()
            })
        };
        let records: Vec<Option<(String, Arc<JobRecord>)>> = jobs
            .par_iter()
            .enumerate()
            .map(|(i, job)| {
                let out = job_output(job, inputs);
                let result = match reuse.reused(i) {
                    Some(r) => Ok(r.clone()),
                    None => {
                        count.fetch_add(1, Ordering::Relaxed);
                        paths.lock().expect("poisoned").push(out.clone());
                        job_context(job, inputs).and_then(|jc| {
                            reuse
                                .render(i, jc.template, &jc.ctx, &render_html)
                                .map(Arc::new)
                                .map_err(|mut d| {
                                    if let Some(shown) = &jc.shown {
                                        d.message = format!(
                                            "{} (rendering {})",
                                            d.message,
                                            shown.display()
                                        );
                                    }
                                    d
                                })
                        })
                    }
                };
                let kept = match result {
                    Ok(rec) => {
                        let i = &rec.inline;
                        if !(i.scripts.is_empty()
                            && i.styles.is_empty()
                            && i.blocked_attributes.is_empty())
                        {
                            inline.lock().expect("poisoned").merge(rec.inline.clone());
                        }
                        if let Err(e) = sink.put(&out, &rec.bytes) {
                            errors.lock().expect("poisoned").push(Diagnostic::error(
                                output,
                                None,
                                format!("cannot write {out}: {e}"),
                            ));
                        }
                        reuse.keeps_records().then_some((out, rec))
                    }
                    Err(d) => {
                        errors.lock().expect("poisoned").push(d);
                        None
                    }
                };
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(p) = progress {
                    p(n, total);
                }
                kept
            })
            .collect();
        self.diags.extend(errors.into_inner().expect("poisoned"));
        self.clock.mark("render");
        let mut paths = paths.into_inner().expect("poisoned");
        paths.sort();
        Renders {
            paths,
            records: records.into_iter().flatten().collect(),
            inline: inline.into_inner().expect("poisoned"),
            count: count.into_inner(),
        }
    }
}

/// How pages are minified.
fn minify_config() -> minify_html::Cfg {
    let mut c = minify_html::Cfg::new();
    c.minify_css = true;
    c.minify_js = true;
    c.keep_html_and_head_opening_tags = true;
    c
}
