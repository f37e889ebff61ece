//! The contexts phase: what templates see — each page as lists show it (its summary), each
//! section, the tags, the configuration — and the site functions registered on the
//! templates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use serde_json::{json, Value};

use crate::assets::Assets;
use crate::cache::Key;
use crate::covers::Covers;
use crate::data::DataFiles;
use crate::render::{self, Pager, Tag};
use crate::templates::Templates;
use folio_content::config::Config;
use folio_content::content::{self, Content};

use super::bodies::{Bodies, MdEntry};
use super::deps;
use super::fields::FieldReads;
use super::load::Generated;
use super::reuse::{digest_value, field};
use super::Build;

/// A page's summary (its value in lists, see [`render::page_summary`]) with its cover fields,
/// the digest standing for it in fingerprints, and everything it was made from: reused for
/// the same file while all of that is the same.
pub(super) struct SummaryEntry {
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
    pub(super) value: Value,
    /// `value`'s digest, made the first time a fingerprint needs it.
    digest: OnceLock<Value>,
    /// See [`SummaryEntry::neighbour_digest`].
    neighbour: OnceLock<Key>,
    /// Digests of what of `value` some templates may read (see [`FieldReads`]), by the
    /// key of their reads.
    listed: Mutex<Vec<(Key, Value)>>,
}

impl SummaryEntry {
    fn new(
        cfg: &Config,
        p: &content::Page,
        md: &Arc<MdEntry>,
        cover_fields: Value,
        value: Value,
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
            digest: OnceLock::new(),
            neighbour: OnceLock::new(),
            listed: Mutex::new(Vec::new()),
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

    /// What a page's fingerprint takes of this page when it is its neighbour (its title and
    /// path: see `jobs::page_context`), hashed once.
    pub(super) fn neighbour_digest(&self) -> &Key {
        self.neighbour.get_or_init(|| {
            let mut h = blake3::Hasher::new();
            for name in ["title", "path"] {
                let json = serde_json::to_string(&self.value[name]).unwrap_or_default();
                field(&mut h, json.as_bytes());
            }
            *h.finalize().as_bytes()
        })
    }

    /// The summary's stand-in in fingerprints: its digest, as a JSON string.
    pub(super) fn digest(&self) -> &Value {
        self.digest.get_or_init(|| digest_value(&self.value))
    }

    /// The summary's stand-in in the fingerprints of templates that may only read `reads`
    /// of it: a digest of those fields (see [`FieldReads::digest`]), as a JSON string.
    pub(super) fn listed_digest(&self, reads: &FieldReads) -> Value {
        let Some(key) = reads.key() else {
            return self.digest().clone();
        };
        let mut listed = self.listed.lock().expect("poisoned");
        if let Some((_, d)) = listed.iter().find(|(k, _)| k == key) {
            return d.clone();
        }
        let d = Value::String(
            blake3::Hash::from(reads.digest(&self.value))
                .to_hex()
                .to_string(),
        );
        listed.push((*key, d.clone()));
        d
    }
}

/// What the contexts of list jobs (section list pages, tag pages, 404) are made of. Rendering
/// takes the values themselves; fingerprints take stand-ins, each page summary replaced by
/// its digest, which change exactly when the values do and hash small (see
/// `reuse::TemplateReuse::fingerprint`).
pub(super) struct ContextValues {
    /// `config`.
    pub(super) config: Value,
    /// One per page, as lists show it.
    pub(super) summaries: Arc<Vec<Value>>,
    /// Per section, its `section` variable.
    pub(super) sections: HashMap<String, Value>,
}

impl ContextValues {
    /// The values made from `config` and `summaries` (real values or stand-ins).
    pub(super) fn new(
        inputs: (&Config, &Content, &Bodies, &HashMap<String, Value>),
        config: Value,
        summaries: Arc<Vec<Value>>,
    ) -> ContextValues {
        let (cfg, content, bodies, section_summaries) = inputs;
        let sections = content
            .sections
            .iter()
            .map(|(k, s)| {
                let subs = s
                    .subsections
                    .iter()
                    .filter_map(|sk| section_summaries.get(sk).cloned())
                    .collect();
                let body = bodies.section_rendered.get(k).map(|r| &**r);
                let full = render::section_full(cfg, s, body, &summaries, subs, false);
                (k.clone(), full)
            })
            .collect();
        ContextValues {
            config,
            summaries,
            sections,
        }
    }

    /// The pager of a section's list page `n` (1-based), made for that page alone.
    pub(super) fn pager(&self, content: &Content, key: &str, n: usize) -> Option<Pager> {
        render::pager(content.sections.get(key)?, &self.summaries, n)
    }
}

/// Everything the template jobs read, computed once per build.
pub(super) struct RenderInputs<'a> {
    pub(super) cfg: &'a Config,
    pub(super) content: &'a Content,
    pub(super) bodies: &'a Bodies,
    pub(super) tags: &'a [Tag],
    pub(super) assets: &'a Assets,
    /// A digest of the data files (what `load_data` returns).
    pub(super) data_digest: Key,
    /// One per page: its summary, and what it was made from.
    pub(super) summaries: Vec<Arc<SummaryEntry>>,
    /// Per section, its summary (the `section` of its pages' contexts).
    pub(super) section_summaries: HashMap<String, Value>,
    pub(super) tags_ctx: Vec<Value>,
    /// What contexts are made of: the values themselves.
    pub(super) values: ContextValues,
    /// Per page index, `page.demo.recording` (the poster and the cast's URL).
    pub(super) recordings: crate::recordings::RecordingValues,
    /// Each page's place in its own section's list, for its neighbours (rendering and
    /// fingerprints both need them; see `jobs::section_positions`).
    pub(super) positions: Vec<Option<usize>>,
}

impl RenderInputs<'_> {
    /// The summaries by content path, for the next build.
    pub(super) fn summary_memo(&self) -> HashMap<String, Arc<SummaryEntry>> {
        self.content
            .pages
            .iter()
            .zip(&self.summaries)
            .map(|(p, e)| (p.file.content_path.clone(), e.clone()))
            .collect()
    }

    /// Lets go of what only templates read (the page summaries, the section and tag values):
    /// the phases after rendering never read them, and at 10,000 pages they weigh about
    /// 100 MB that the search index would otherwise be built beside. (The site functions
    /// hold the summaries too: the templates go first.)
    pub(super) fn release_contexts(&mut self) {
        self.summaries = Vec::new();
        self.section_summaries = HashMap::new();
        self.tags_ctx = Vec::new();
        self.values.summaries = Arc::new(Vec::new());
        self.values.sections = HashMap::new();
    }

    /// The rendered markdown of page `i`.
    pub(super) fn body(&self, i: usize) -> &MdEntry {
        &self.bodies.pages[i]
    }
}

impl<'a> Build<'a> {
    /// Makes what templates see, and registers the site functions on `templates`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn contexts<'c>(
        &mut self,
        content: &'c Content,
        bodies: &'c Bodies,
        tags: &'c [Tag],
        assets: &'c Assets,
        generated: &Generated,
        data: DataFiles,
        templates: &mut Templates,
    ) -> (RenderInputs<'c>, deps::Functions)
    where
        'a: 'c,
    {
        let cfg: &'a Config = &self.site.cfg;
        let config_ctx =
            crate::xterm::expose(render::config_context(cfg), generated.xterm.as_ref());
        let summaries = self.summaries(content, bodies, &generated.covers);
        let listed: Arc<Vec<Value>> =
            Arc::new(summaries.par_iter().map(|e| e.value.clone()).collect());
        let section_summaries: HashMap<String, Value> = content
            .sections
            .iter()
            .map(|(k, sec)| (k.clone(), render::section_summary(cfg, sec)))
            .collect();
        let values = ContextValues::new(
            (cfg, content, bodies, &section_summaries),
            config_ctx,
            listed,
        );
        let tags_ctx: Vec<Value> = tags.iter().map(|t| json!({ "name": t.name, "slug": t.slug, "path": t.path, "permalink": cfg.permalink(&t.path), "count": t.pages.len() })).collect();
        let data_digest = data.digest();
        let functions = super::functions::register(
            templates, content, &values, &summaries, &tags_ctx, assets, data,
        );
        self.clock.mark("contexts");
        let inputs = RenderInputs {
            cfg,
            content,
            bodies,
            tags,
            assets,
            data_digest,
            summaries,
            section_summaries,
            tags_ctx,
            values,
            recordings: generated.recordings.clone(),
            positions: super::jobs::section_positions(content),
        };
        (inputs, functions)
    }

    /// Each page's summary, reused from the previous build while what it is made of is
    /// unchanged.
    fn summaries(
        &self,
        content: &Content,
        bodies: &Bodies,
        covers: &Covers,
    ) -> Vec<Arc<SummaryEntry>> {
        let (cfg, prev) = (&self.site.cfg, &self.prev.summaries);
        content
            .pages
            .par_iter()
            .zip(bodies.pages.par_iter())
            .map(|(p, md)| {
                let cover_fields = covers.annotate(p, Value::Object(Default::default()));
                if let Some(e) = prev.get(&p.file.content_path) {
                    if e.matches(cfg, p, md, &cover_fields) {
                        return e.clone();
                    }
                }
                let value = covers.annotate(p, render::page_summary(cfg, p, &md.full));
                Arc::new(SummaryEntry::new(cfg, p, md, cover_fields, value))
            })
            .collect()
    }
}
