//! How a build avoids rendering a template again: the one thing in which `folio build` and
//! `folio serve` differ (everything else is reused through the [`Memo`] the same way, see
//! the `site` module's documentation).
//!
//! - [`PageCache`] (`folio build`, `folio check`, a build in memory): each
//!   process starts from nothing, so rendered pages come from the page cache on disk
//!   (`.folio/cache/pages.bin`), keyed by the job's fingerprint (as below), a digest of
//!   everything a template can reach, and the digests of the fields of the page summaries its
//!   template may read (see [`fields`]): a cached page costs a lookup, not a hash of its
//!   whole context. A hit still counts as rendered; nothing is kept in memory.
//! - [`Fingerprints`] (`folio serve`): a job's previous output is reused when
//!   its fingerprint (template closure and context, made from digests that stand in for page
//!   summaries — of only the fields its templates may read, see [`fields`] and
//!   [`ContextValues`]) is the previous one's and every site function its
//!   render called returns the same (see [`deps`]); every render is recorded for the next
//!   build.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value;
use tera::Context;

use crate::cache::{Key, Stats};
use crate::security::{self, InlineCode};
use crate::templates::Templates;
use folio_content::diagnostics::{Diagnostic, Diagnostics};

use super::checks::page_template;
use super::contexts::{ContextValues, RenderInputs};
use super::deps;
use super::fields::{self, FieldReads};
use super::jobs::{job_output, job_template, list_context, neighbour_indices, Job};
use super::page_store::PageStore;
use super::{Memo, Mode};

/// A rendered template: its output, and what it was rendered from.
pub(super) struct JobRecord {
    /// Hash of the template closure and the whole context (zero when reusing through the
    /// page cache).
    fingerprint: Key,
    /// Site functions the render called, and digests of what they returned.
    reads: Vec<deps::Read>,
    pub(super) inline: InlineCode,
    pub(super) bytes: Arc<[u8]>,
    /// The render serialised whole page summaries although its fingerprint only covers the
    /// fields its templates name (see [`fields`]): it is never reused.
    whole: bool,
}

impl JobRecord {
    fn new(fingerprint: Key, reads: Vec<deps::Read>, bytes: Vec<u8>) -> JobRecord {
        JobRecord {
            fingerprint,
            reads,
            inline: security::scan_html(std::str::from_utf8(&bytes).unwrap_or("")),
            bytes: Arc::from(bytes),
            whole: false,
        }
    }
}

/// Renders a template with a context: the HTML, minified when asked.
pub(super) type RenderFn<'a> = dyn Fn(&str, &Context) -> Result<Vec<u8>, Diagnostic> + Sync + 'a;

/// How rendered templates are reused (see the module's documentation). The render phase
/// calls [`TemplateReuse::fingerprint`], then [`TemplateReuse::replay`], then for each job
/// either takes [`TemplateReuse::reused`] or calls [`TemplateReuse::render`].
pub(super) trait TemplateReuse: Sync {
    /// While the site loads: reads what is kept on disk.
    fn load(&self, _root: &Path) {}

    /// Before rendering: what identifies the jobs' outputs.
    fn fingerprint(&mut self, jobs: &[Job], inputs: &RenderInputs<'_>, t: &Templates, minify: bool);

    /// Finds the previous build's records that may be reused.
    fn replay(&mut self, _prev: &Memo, _functions: &deps::Functions) {}

    /// The previous build's record of job `i`, when it may be reused as is.
    fn reused(&self, _i: usize) -> Option<&Arc<JobRecord>> {
        None
    }

    /// Renders job `i` (not reused) with `template` and `ctx`.
    fn render(
        &self,
        i: usize,
        template: &str,
        ctx: &Context,
        render: &RenderFn<'_>,
    ) -> Result<JobRecord, Diagnostic>;

    /// Whether this build's records are worth keeping for the next build.
    fn keeps_records(&self) -> bool;

    /// The page cache's hits and misses.
    fn stats(&self) -> Stats {
        Stats::default()
    }

    /// After a build: saves what is kept on disk.
    fn save(&self, _root: &Path, _mode: Mode, _diags: &mut Diagnostics) {}
}

/// Reuse through the page cache on disk: for a build in a process of its own.
pub(super) struct PageCache {
    cache: PageStore,
    /// Per job: its key in the cache, and what its template may read of page summaries.
    keys: Vec<(Key, Arc<FieldReads>)>,
}

impl PageCache {
    /// A page cache for a build in `mode`: only a build written to disk keeps what it
    /// renders (the others never save the cache).
    pub(super) fn new(mode: Mode) -> PageCache {
        PageCache {
            cache: PageStore::new(mode == Mode::Write),
            keys: Vec::new(),
        }
    }
}

impl TemplateReuse for PageCache {
    fn load(&self, root: &Path) {
        self.cache.load(&super::pages_cache_path(root));
    }

    /// Each job's key: its fingerprint (the same as [`Fingerprints`]'), the digest of what
    /// every template can reach, and the digests of the fields of every page summary its
    /// template may read (what `get_page` and `get_section` can show it). A cached page then
    /// costs a lookup, not a hash of its whole context.
    fn fingerprint(
        &mut self,
        jobs: &[Job],
        inputs: &RenderInputs<'_>,
        t: &Templates,
        minify: bool,
    ) {
        let global = global_digest(minify, t, inputs);
        let (fps, reads) = job_fingerprints(jobs, inputs, t, minify);
        let mut listed: HashMap<Option<Key>, Key> = HashMap::new();
        for r in &reads {
            listed.entry(r.key().copied()).or_insert_with(|| {
                let mut h = blake3::Hasher::new();
                let digests: Vec<Value> = inputs
                    .summaries
                    .par_iter()
                    .map(|e| e.listed_digest(r))
                    .collect();
                for d in digests {
                    let d = d.as_str().unwrap_or_default();
                    h.update(d.as_bytes());
                    h.update(&[0]);
                }
                *h.finalize().as_bytes()
            });
        }
        self.keys = fps
            .iter()
            .zip(reads)
            .map(|(fp, r)| {
                let mut h = blake3::Hasher::new();
                h.update(&global);
                h.update(&listed[&r.key().copied()]);
                h.update(fp);
                (*h.finalize().as_bytes(), r)
            })
            .collect();
    }

    fn render(
        &self,
        i: usize,
        template: &str,
        ctx: &Context,
        render: &RenderFn<'_>,
    ) -> Result<JobRecord, Diagnostic> {
        let (key, reads) = &self.keys[i];
        let bytes = match self.cache.get(key) {
            Some(hit) => hit,
            None => {
                let (bytes, whole) = fields::scoped(Some(reads.clone()), || render(template, ctx));
                let bytes = bytes?;
                // Its key does not cover every field it showed: never reused.
                if !whole {
                    self.cache.put(*key, &bytes);
                }
                bytes
            }
        };
        Ok(JobRecord::new([0; 32], Vec::new(), bytes))
    }

    /// No: a record without a fingerprint could never be reused.
    fn keeps_records(&self) -> bool {
        false
    }

    fn stats(&self) -> Stats {
        self.cache.stats()
    }

    /// Only after a build written to disk (to the file it was loaded from).
    fn save(&self, _root: &Path, mode: Mode, diags: &mut Diagnostics) {
        if mode != Mode::Write {
            return;
        }
        if let Err(e) = self.cache.save() {
            diags.push(crate::cache::save_warning("the page cache", e));
        }
    }
}

/// Reuse by fingerprint against the previous build's records: for a build that follows
/// another in the same process.
#[derive(Default)]
pub(super) struct Fingerprints {
    /// Per job: its output path and fingerprint.
    fingerprints: Vec<(String, Key)>,
    /// Per job: what its template may read of page summaries.
    reads: Vec<Arc<FieldReads>>,
    /// Per job: the previous build's record, when it may be reused.
    reused: Vec<Option<Arc<JobRecord>>>,
}

impl TemplateReuse for Fingerprints {
    /// Every job's fingerprint: a page's from digests of its parts, a list job's from its
    /// whole context made of stand-ins of the fields its template may read.
    fn fingerprint(
        &mut self,
        jobs: &[Job],
        inputs: &RenderInputs<'_>,
        t: &Templates,
        minify: bool,
    ) {
        let (fps, reads) = job_fingerprints(jobs, inputs, t, minify);
        self.fingerprints = jobs
            .iter()
            .zip(fps)
            .map(|(job, fp)| (job_output(job, inputs), fp))
            .collect();
        self.reads = reads;
    }

    /// A record may be reused when its fingerprint is the same and every site function the
    /// render called returns the same now (as far as its template may read).
    fn replay(&mut self, prev: &Memo, functions: &deps::Functions) {
        let mut replayed: HashMap<Option<Key>, deps::ReplayMemo<'_>> = HashMap::new();
        self.reused = self
            .fingerprints
            .iter()
            .zip(&self.reads)
            .map(|((out, fp), reads)| {
                let memo = replayed.entry(reads.key().copied()).or_default();
                prev.jobs
                    .get(out)
                    .filter(|r| {
                        r.fingerprint == *fp
                            && !r.whole
                            && fields::scoped(Some(reads.clone()), || {
                                r.reads.iter().all(|read| functions.still_valid(read, memo))
                            })
                            .0
                    })
                    .cloned()
            })
            .collect();
    }

    fn reused(&self, i: usize) -> Option<&Arc<JobRecord>> {
        self.reused.get(i)?.as_ref()
    }

    /// Records which site functions the render called, and what they returned.
    fn render(
        &self,
        i: usize,
        template: &str,
        ctx: &Context,
        render: &RenderFn<'_>,
    ) -> Result<JobRecord, Diagnostic> {
        let reads = self.reads.get(i).cloned();
        let ((bytes, calls), whole) =
            fields::scoped(reads, || deps::recording(|| render(template, ctx)));
        let mut record = JobRecord::new(
            self.fingerprints.get(i).map(|f| f.1).unwrap_or_default(),
            calls,
            bytes?,
        );
        // Its fingerprint does not cover every field it showed: never reused.
        record.whole = whole;
        Ok(record)
    }

    fn keeps_records(&self) -> bool {
        true
    }
}

/// Every job's fingerprint and what its template may read of page summaries: a page's
/// fingerprint from digests of its parts, a list job's from its whole context made of
/// stand-ins.
fn job_fingerprints(
    jobs: &[Job],
    inputs: &RenderInputs<'_>,
    t: &Templates,
    minify: bool,
) -> (Vec<Key>, Vec<Arc<FieldReads>>) {
    let mut by_template: HashMap<&str, Arc<FieldReads>> = HashMap::new();
    let reads: Vec<Arc<FieldReads>> = jobs
        .iter()
        .map(|job| {
            let name = job_template(job, inputs);
            by_template
                .entry(name)
                .or_insert_with(|| t.closure_reads(name))
                .clone()
        })
        .collect();
    let stand_ins = StandIns::new(inputs, jobs, &reads);
    let fps = jobs
        .par_iter()
        .zip(&reads)
        .map(|(job, r)| match job {
            Job::Page(i) => page_fingerprint(minify, t, inputs, &stand_ins, *i),
            Job::List(list) => {
                let values = &stand_ins.lists[&r.key().copied()];
                let jc = list_context(list, inputs, values);
                fingerprint(minify, t, jc.template, jc.ctx)
            }
        })
        .collect();
    (fps, reads)
}

/// What fingerprints are made from in place of the values a context holds: each page
/// summary, the configuration and each section summary replaced by its digest.
struct StandIns {
    /// Each page summary by the digest of all of it (for pages' fingerprints).
    values: ContextValues,
    /// For list jobs' contexts, by the key of what their templates may read: each page
    /// summary by the digest of those fields.
    lists: HashMap<Option<Key>, ContextValues>,
    /// Per section, its summary's digest (for pages' fingerprints).
    section_summaries: HashMap<String, Value>,
}

impl StandIns {
    fn new(inputs: &RenderInputs<'_>, jobs: &[Job], reads: &[Arc<FieldReads>]) -> StandIns {
        let config = digest_value(&inputs.values.config);
        let made = |r: Option<&FieldReads>| {
            let summaries = inputs
                .summaries
                .par_iter()
                .map(|e| match r {
                    Some(r) => e.listed_digest(r),
                    None => e.digest().clone(),
                })
                .collect();
            ContextValues::new(
                (
                    inputs.cfg,
                    inputs.content,
                    inputs.bodies,
                    &inputs.section_summaries,
                ),
                config.clone(),
                Arc::new(summaries),
            )
        };
        let mut lists = HashMap::new();
        for (job, r) in jobs.iter().zip(reads) {
            if matches!(job, Job::List(_)) && !lists.contains_key(&r.key().copied()) {
                lists.insert(r.key().copied(), made(Some(r)));
            }
        }
        let section_summaries = inputs
            .section_summaries
            .iter()
            .map(|(k, v)| (k.clone(), digest_value(v)))
            .collect();
        StandIns {
            values: made(None),
            lists,
            section_summaries,
        }
    }
}

/// A hash of everything a template can reach besides its own context and the page summaries
/// (other pages through `get_page`/`get_section`, data files, assets, the templates
/// themselves): part of every page's cache key, with the fields of the page summaries the
/// page's template may read, so a cached page is only reused when rendering it again would
/// give the same bytes.
fn global_digest(minify: bool, t: &Templates, inputs: &RenderInputs<'_>) -> Key {
    let values = &inputs.values;
    let mut h = blake3::Hasher::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(&[u8::from(minify)]);
    h.update(&t.digest());
    h.update(&inputs.data_digest);
    let _ = serde_json::to_writer(&mut h, &values.config);
    let mut keys: Vec<&String> = values.sections.keys().collect();
    keys.sort();
    for k in keys {
        // A section as `get_section` shows it: its own fields, then its pages in order (each
        // page's fields are in the summaries' digest).
        h.update(k.as_bytes());
        let mut v = values.sections[k].clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("pages");
        }
        let _ = serde_json::to_writer(&mut h, &v);
        let pages = &inputs.content.sections[k].pages;
        h.update(&(pages.len() as u64).to_le_bytes());
        for &i in pages {
            h.update(&(i as u64).to_le_bytes());
        }
    }
    h.update(&(inputs.summaries.len() as u64).to_le_bytes());
    let mut links: Vec<(String, String)> = inputs.content.link_table().into_iter().collect();
    links.sort();
    let _ = serde_json::to_writer(&mut h, &links);
    let _ = serde_json::to_writer(&mut h, &inputs.tags_ctx);
    let mut urls: Vec<(&String, &String)> = inputs.assets.urls.iter().collect();
    urls.sort();
    let _ = serde_json::to_writer(&mut h, &urls);
    *h.finalize().as_bytes()
}

/// The fingerprint of a page's own job, from digests of what its context is made of rather
/// than the context itself (a page's context repeats the site's configuration and its
/// section's summary; building and hashing it for every page of a large site would cost more
/// than everything else a one-page rebuild does). Equal fingerprints mean equal contexts:
/// every input of `jobs::page_context` goes in — the template and its closure, `config`, the
/// section summary, the page's summary (which covers its front matter, path, cover and
/// rendering summary), its body and table of contents, demo, bundle files, its neighbours'
/// titles and paths, and its path and URL.
fn page_fingerprint(
    minify: bool,
    t: &Templates,
    inputs: &RenderInputs<'_>,
    stand_ins: &StandIns,
    i: usize,
) -> Key {
    fn value(h: &mut blake3::Hasher, v: &Value) {
        // Most are stand-ins, digests as strings: hashed as they are, not written as JSON.
        match v {
            Value::String(s) => {
                h.update(&[0]);
                field(h, s.as_bytes());
            }
            v => {
                h.update(&[1]);
                field(h, serde_json::to_string(v).unwrap_or_default().as_bytes());
            }
        }
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
    value(&mut h, &stand_ins.values.config);
    value(
        &mut h,
        stand_ins
            .section_summaries
            .get(&p.section)
            .unwrap_or(&Value::Null),
    );
    value(&mut h, &stand_ins.values.summaries[i]);
    h.update(&inputs.body(i).digest);
    value(&mut h, inputs.recordings.get(&i).unwrap_or(&Value::Null));
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
    let (lower, higher) = neighbour_indices(content, i, inputs.positions[i]);
    for n in [lower, higher] {
        match n {
            Some(n) => {
                h.update(&[1]);
                h.update(inputs.summaries[n].neighbour_digest());
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

/// Hashes `bytes` as one field of a fingerprint: its length first, so that no two sequences
/// of fields hash alike.
pub(super) fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// A JSON value standing for `v` in fingerprints: its digest, as hex.
pub(super) fn digest_value(v: &Value) -> Value {
    Value::String(
        blake3::Hash::from(deps::value_digest(v))
            .to_hex()
            .to_string(),
    )
}

/// The fingerprint of a list job: the template closure (every template it can reach) and
/// the whole context, made of stand-ins.
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
