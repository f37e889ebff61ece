//! A site kept built in memory and brought up to date after file changes: what `folio serve`
//! serves. Whatever path a change takes, the files must equal what a full `folio build` of the
//! same sources produces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::diagnostics::Diagnostics;
use crate::site::{self, BuildOptions, Mode};

/// The outcome of bringing the site up to date.
#[derive(Debug, Default)]
pub struct Rebuild {
    /// Output paths (e.g. `projects/minirt/index.html`) added or whose bytes changed.
    pub changed: Vec<String>,
    /// Output paths that no longer exist.
    pub removed: Vec<String>,
    /// True when every changed or removed file is a stylesheet: open tabs can swap CSS in
    /// place instead of reloading.
    pub css_only: bool,
    /// Templates rendered to bring the site up to date (pages, sections, tag pages).
    pub rendered: usize,
    /// Whether everything was rebuilt (first build, config or theme change).
    pub full: bool,
    /// Wall time.
    pub elapsed: Duration,
    /// Warnings of the build (it succeeded regardless).
    pub warnings: Diagnostics,
}

/// A built site in memory.
pub struct LiveSite {
    opts: BuildOptions,
    files: BTreeMap<String, Arc<[u8]>>,
}

impl LiveSite {
    /// A site to build from `opts` (its mode is forced to [`Mode::Memory`]); nothing is built
    /// until [`LiveSite::build_all`].
    pub fn new(mut opts: BuildOptions) -> Self {
        opts.mode = Mode::Memory;
        LiveSite {
            opts,
            files: BTreeMap::new(),
        }
    }

    /// The site folder.
    pub fn root(&self) -> &Path {
        &self.opts.root
    }

    /// Builds everything. On failure the previous files stay as they were.
    pub fn build_all(&mut self) -> Result<Rebuild, Diagnostics> {
        self.rebuild_full()
    }

    /// Brings the site up to date after `changed` paths (files or folders, absolute or
    /// relative to the root; added, modified or removed) changed on disk. On failure the
    /// previous files stay as they were, so the last good site can still be served.
    pub fn rebuild(&mut self, changed: &[PathBuf]) -> Result<Rebuild, Diagnostics> {
        let _ = changed;
        self.rebuild_full()
    }

    fn rebuild_full(&mut self) -> Result<Rebuild, Diagnostics> {
        let started = Instant::now();
        let report = site::build(&self.opts)?;
        let new: BTreeMap<String, Arc<[u8]>> = report
            .files_in_memory
            .into_iter()
            .map(|(k, v)| (k, Arc::from(v)))
            .collect();
        let mut out = self.replace(new);
        out.full = true;
        out.rendered = report.pages + report.sections + report.tags;
        out.warnings = report.warnings;
        out.elapsed = started.elapsed();
        Ok(out)
    }

    /// Swaps in a new set of files and reports the difference.
    fn replace(&mut self, new: BTreeMap<String, Arc<[u8]>>) -> Rebuild {
        let mut out = Rebuild::default();
        for (k, v) in &new {
            if self.files.get(k).is_none_or(|old| old != v) {
                out.changed.push(k.clone());
            }
        }
        for k in self.files.keys() {
            if !new.contains_key(k) {
                out.removed.push(k.clone());
            }
        }
        out.css_only = !(out.changed.is_empty() && out.removed.is_empty())
            && out
                .changed
                .iter()
                .chain(&out.removed)
                .all(|p| p.ends_with(".css"));
        self.files = new;
        out
    }

    /// One output file, by its path relative to the output root (`index.html`,
    /// `projects/minirt/index.html`, `css/site.3f2a1b.css`).
    pub fn file(&self, path: &str) -> Option<Arc<[u8]>> {
        self.files.get(path).cloned()
    }

    /// Every output file.
    pub fn files(&self) -> &BTreeMap<String, Arc<[u8]>> {
        &self.files
    }

    /// What to watch: `folio.toml`, `content/`, `data/`, `static/`, `templates/` and the
    /// theme's folder when it is on disk (those that exist).
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let root = &self.opts.root;
        let mut v: Vec<PathBuf> = [
            "folio.toml",
            "content",
            "data",
            "static",
            "templates",
            "themes",
        ]
        .iter()
        .map(|p| root.join(p))
        .filter(|p| p.exists())
        .collect();
        v.dedup();
        v
    }
}
