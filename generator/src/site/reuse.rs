//! How a build avoids rendering a template again: the one thing in which `folio build` and
//! `folio serve` differ (everything else is reused through the [`Memo`] the same way, see
//! the `site` module's documentation).
//!
//! - [`PageCache`] (`folio build`, `folio check`, a build in memory): each
//!   process starts from nothing, so rendered pages come from the page cache on disk
//!   (`.folio/cache/pages.bin`), keyed by a digest of everything a template can reach and of
//!   its whole context. A hit still counts as rendered; nothing is kept in memory.
//! - [`Fingerprints`] (`folio serve`): a job's previous output is reused when
//!   its fingerprint (template closure and context, made from digests that stand in for page
//!   summaries, see [`ContextValues`]) is the previous one's and every site function its
//!   render called returns the same (see [`deps`]); every render is recorded for the next
//!   build.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value;
use tera::Context;

use crate::cache::{BlobCache, Key, Stats};
use crate::security::{self, InlineCode};
use crate::templates::Templates;
use folio_content::diagnostics::{Diagnostic, Diagnostics};

use super::checks::page_template;
use super::contexts::{ContextValues, RenderInputs};
use super::deps;
use super::jobs::{job_output, list_context, neighbours, Job};
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
}

impl JobRecord {
    fn new(fingerprint: Key, reads: Vec<deps::Read>, bytes: Vec<u8>) -> JobRecord {
        JobRecord {
            fingerprint,
            reads,
            inline: security::scan_html(std::str::from_utf8(&bytes).unwrap_or("")),
            bytes: Arc::from(bytes),
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
    cache: BlobCache,
    /// A digest of everything a template can reach besides its own context.
    global: Key,
}

impl PageCache {
    pub(super) fn new() -> PageCache {
        PageCache {
            cache: BlobCache::new(b"FOLIOPG1"),
            global: [0; 32],
        }
    }
}

impl TemplateReuse for PageCache {
    fn load(&self, root: &Path) {
        self.cache.load(&super::pages_cache_path(root));
    }

    /// The digest of what every template can reach; each job's key adds its template and
    /// context when it is rendered.
    fn fingerprint(&mut self, _: &[Job], inputs: &RenderInputs<'_>, t: &Templates, minify: bool) {
        self.global = global_digest(minify, t, inputs);
    }

    fn render(
        &self,
        _: usize,
        template: &str,
        ctx: &Context,
        render: &RenderFn<'_>,
    ) -> Result<JobRecord, Diagnostic> {
        let key = page_key(&self.global, template, ctx);
        let bytes = match self.cache.get(&key) {
            Some(hit) => hit.to_vec(),
            None => {
                let bytes = render(template, ctx)?;
                self.cache.put(key, Arc::from(bytes.as_slice()));
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

    /// Only after a build written to disk.
    fn save(&self, root: &Path, mode: Mode, diags: &mut Diagnostics) {
        if mode != Mode::Write {
            return;
        }
        if let Err(e) = self.cache.save(&super::pages_cache_path(root)) {
            diags.push(Diagnostic::warning(
                ".folio/cache",
                None,
                format!("cannot save the page cache: {e}"),
            ));
        }
    }
}

/// Reuse by fingerprint against the previous build's records: for a build that follows
/// another in the same process.
#[derive(Default)]
pub(super) struct Fingerprints {
    /// Per job: its output path and fingerprint.
    fingerprints: Vec<(String, Key)>,
    /// Per job: the previous build's record, when it may be reused.
    reused: Vec<Option<Arc<JobRecord>>>,
}

impl TemplateReuse for Fingerprints {
    /// Every job's fingerprint: a page's from digests of its parts, a list job's from its
    /// whole context made of stand-ins.
    fn fingerprint(
        &mut self,
        jobs: &[Job],
        inputs: &RenderInputs<'_>,
        t: &Templates,
        minify: bool,
    ) {
        let stand_ins = StandIns::new(inputs);
        self.fingerprints = jobs
            .par_iter()
            .map(|job| {
                let fp = match job {
                    Job::Page(i) => page_fingerprint(minify, t, inputs, &stand_ins, *i),
                    Job::List(list) => {
                        let jc = list_context(list, inputs, &stand_ins.values);
                        fingerprint(minify, t, jc.template, jc.ctx)
                    }
                };
                (job_output(job, inputs), fp)
            })
            .collect();
    }

    /// A record may be reused when its fingerprint is the same and every site function the
    /// render called returns the same now.
    fn replay(&mut self, prev: &Memo, functions: &deps::Functions) {
        let mut replayed = HashMap::new();
        self.reused = self
            .fingerprints
            .iter()
            .map(|(out, fp)| {
                prev.jobs
                    .get(out)
                    .filter(|r| {
                        r.fingerprint == *fp
                            && r.reads
                                .iter()
                                .all(|read| functions.still_valid(read, &mut replayed))
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
        let (bytes, reads) = deps::recording(|| render(template, ctx));
        let fingerprint = self.fingerprints.get(i).map(|f| f.1).unwrap_or_default();
        Ok(JobRecord::new(fingerprint, reads, bytes?))
    }

    fn keeps_records(&self) -> bool {
        true
    }
}

/// What fingerprints are made from in place of the values a context holds: each page
/// summary, the configuration and each section summary replaced by its digest.
struct StandIns {
    /// For list jobs' contexts.
    values: ContextValues,
    /// Per section, its summary's digest (for pages' fingerprints).
    section_summaries: HashMap<String, Value>,
}

impl StandIns {
    fn new(inputs: &RenderInputs<'_>) -> StandIns {
        let summaries = inputs
            .summaries
            .iter()
            .map(|e| e.digest().clone())
            .collect();
        let values = ContextValues::new(
            (
                inputs.cfg,
                inputs.content,
                inputs.bodies,
                &inputs.section_summaries,
            ),
            digest_value(&inputs.values.config),
            Arc::new(summaries),
        );
        let section_summaries = inputs
            .section_summaries
            .iter()
            .map(|(k, v)| (k.clone(), digest_value(v)))
            .collect();
        StandIns {
            values,
            section_summaries,
        }
    }
}

/// A hash of everything a template can reach besides its own context (other pages through
/// `get_page`/`get_section`, data files, assets, the templates themselves): part of every page's
/// cache key, so a cached page is only reused when rendering it again would give the same bytes.
fn global_digest(minify: bool, t: &Templates, inputs: &RenderInputs<'_>) -> Key {
    let values = &inputs.values;
    let mut h = blake3::Hasher::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(&[u8::from(minify)]);
    h.update(&t.digest());
    h.update(&inputs.data_digest);
    let _ = serde_json::to_writer(&mut h, &values.config);
    let _ = serde_json::to_writer(&mut h, &values.summaries[..]);
    let mut keys: Vec<&String> = values.sections.keys().collect();
    keys.sort();
    for k in keys {
        h.update(k.as_bytes());
        let _ = serde_json::to_writer(&mut h, &values.sections[k]);
    }
    let _ = serde_json::to_writer(&mut h, &inputs.tags_ctx);
    let mut urls: Vec<(&String, &String)> = inputs.assets.urls.iter().collect();
    urls.sort();
    let _ = serde_json::to_writer(&mut h, &urls);
    *h.finalize().as_bytes()
}

/// A job's key in the page cache: the global digest, its template and its whole context.
fn page_key(global: &Key, template: &str, ctx: &Context) -> Key {
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
    let (lower, higher) = neighbours(content, i, &inputs.values.summaries);
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
