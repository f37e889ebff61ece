//! A site kept built in memory and brought up to date after file changes: what `folio serve`
//! serves. Whatever path a change takes, the files must equal what a full `folio build` of the
//! same sources produces.
//!
//! How a rebuild stays exact and fast (see [`crate::site::build_incremental`]):
//!
//! - Every input is looked at again on every rebuild (`folio.toml`, `content/`, `data/`,
//!   `templates/`, the theme, `static/`), so correctness does not depend on the watcher
//!   reporting every change. Content files are read again unless their stamp (size,
//!   modification and change times, inode) is the one they had when read, they were last
//!   modified well before that read (git's "racily clean" rule, see
//!   [`folio_content::content::ParseCache`]) and the watcher did not name them; the rest is read
//!   every time.
//! - What is expensive is reused when its inputs are unchanged, each check exact:
//!   - front matter, by file, while the file's text is the same;
//!   - parsed templates, while every template's name, file and text are the same;
//!   - markdown bodies, by file, while the body and the markdown options are the same and
//!     its `@/` links resolve to the same URLs;
//!   - page summaries (a page as lists show it) and their digests, while the page's front
//!     matter, rendered markdown, path, cover and the base URL are the same;
//!   - rendered templates (pages, list pages, tag pages, 404), keyed by a fingerprint of the
//!     template's dependency closure (`extends`, `include`, `import`, transitively) and of its
//!     whole context (page bodies by hash; a page's context from digests of its parts), and
//!     reused only if every site function the render called (`get_page`, `get_section`,
//!     `get_tags`, `load_data`, `asset`, `get_url`) returns the same as then (`get_section`
//!     compared by a digest of its section's and pages' summary digests);
//!   - copied files, by path, size and modification time (and re-read when the watcher named
//!     them).
//! - The feed, sitemap, `projects.json`, `_headers`, `_redirects`, `robots.txt` and
//!   `_folio/edge.json` are cheap and always regenerated.
//!
//! So a page edit re-renders that page, the list pages and tag pages that show it, pages whose
//! neighbour link changed, and pages that read it through a site function (the home page lists
//! projects with `get_section`). A template edit re-renders the pages whose template reaches it.
//! A data file edit re-renders the pages that called `load_data` on it. A stylesheet edit
//! changes its hashed URL, so every page that links it is re-rendered (it differs by that URL
//! only, and the report says `css_only`). An edit to `folio.toml` re-renders everything.
//!
//! [`LiveSite::rebuild_with`] hands over the site as soon as its pages are rendered (see
//! [`site::build_incremental_with`] for when it may), so `folio serve` serves the edited page
//! and tells the tabs while the search index, feed and sitemap are made.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::site::{self, BuildOptions, Memo, Mode};
use folio_content::diagnostics::Diagnostics;

/// Everything a build reads, relative to the site root: what serve watches, and what a copy
/// of a site must hold to build the same.
pub const SOURCES: &[&str] = &[
    "folio.toml",
    "content",
    "data",
    "static",
    "templates",
    "themes",
];

/// The outcome of bringing the site up to date.
#[derive(Debug, Default)]
pub struct Rebuild {
    /// Output paths (e.g. `projects/minirt/index.html`) added or whose bytes changed.
    pub changed: Vec<String>,
    /// Output paths that no longer exist.
    pub removed: Vec<String>,
    /// True when only stylesheets changed: every changed or removed file is a `.css` file, or
    /// differs from its previous version only by the new URLs of renamed (content-hashed)
    /// stylesheets. Open tabs can then swap stylesheets in place (see `css_renames`) instead
    /// of reloading.
    pub css_only: bool,
    /// Stylesheets whose URL changed: (old URL path, new URL path), e.g.
    /// (`/css/site.0123456789.css`, `/css/site.9876543210.css`).
    pub css_renames: Vec<(String, String)>,
    /// Templates rendered to bring the site up to date (pages, sections, tag pages).
    pub rendered: usize,
    /// Rendered templates whose previous output was reused as is.
    pub reused: usize,
    /// The output paths of the templates rendered, sorted.
    pub rendered_paths: Vec<String>,
    /// Whether everything was rebuilt (first build, config or theme change).
    pub full: bool,
    /// Wall time.
    pub elapsed: Duration,
    /// Warnings of the build (it succeeded regardless).
    pub warnings: Diagnostics,
    /// Time of each phase of the build, then of comparing its files with the previous
    /// ones (`diff`), for `--verbose`.
    pub phases: Vec<(&'static str, Duration)>,
    /// Set when the pages were ready (and handed to [`LiveSite::rebuild_with`]'s callback)
    /// before the build ended: what was announced then, and what changed after.
    pub early: Option<Box<Early>>,
}

/// A rebuild whose pages were served before it ended, in two steps.
#[derive(Debug, Default)]
pub struct Early {
    /// From the previous build to the site served once the pages were ready (its `elapsed`:
    /// the time until then).
    pub ready: Rebuild,
    /// From that site to the finished build: the files made after the pages (search index,
    /// feed, sitemap…), what is left to announce.
    pub rest: Rebuild,
}

/// Output path → bytes: a whole site.
pub type Files = BTreeMap<String, Arc<[u8]>>;

/// Called by [`LiveSite::rebuild_with`] with the site as it can be served once its pages are
/// ready, and how it differs from the previous build.
pub type ReadyFn<'a> = dyn FnMut(&Rebuild, &Files) + 'a;

/// A built site in memory.
pub struct LiveSite {
    opts: BuildOptions,
    memo: Memo,
}

/// What a changed path is to the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `folio.toml`, the site folder itself, or a path the build may read that is not under
    /// a known folder: rebuild everything.
    Config,
    /// Under `themes/`: every input is read again anyway; reported as a full rebuild.
    Theme,
    /// `content/`, `data/`, `static/`, `templates/`.
    Source,
    /// Never read by the build (`public/`, `.folio/`, `.git/`, a README…).
    Ignored,
}

impl LiveSite {
    /// A site to build from `opts` (its mode is forced to [`Mode::Memory`]); nothing is built
    /// until [`LiveSite::build_all`].
    pub fn new(mut opts: BuildOptions) -> Self {
        opts.mode = Mode::Memory;
        LiveSite {
            opts,
            memo: Memo::default(),
        }
    }

    /// The site folder.
    pub fn root(&self) -> &Path {
        &self.opts.root
    }

    /// Builds everything: every template is rendered and every file copied again (cached
    /// markdown and highlighting are kept: they are keyed by their inputs). On failure the
    /// previous files stay as they were.
    pub fn build_all(&mut self) -> Result<Rebuild, Diagnostics> {
        self.run(&[], true, &mut |_, _| {})
    }

    /// Brings the site up to date after `changed` paths (files or folders, absolute or
    /// relative to the root; added, modified or removed) changed on disk. On failure the
    /// previous files stay as they were, so the last good site can still be served; the next
    /// rebuild reads every source again, so it needs no memory of what failed.
    pub fn rebuild(&mut self, changed: &[PathBuf]) -> Result<Rebuild, Diagnostics> {
        self.rebuild_with(changed, &mut |_, _| {})
    }

    /// [`LiveSite::rebuild`], calling `ready` with the site as it can be served as soon as
    /// its pages are rendered, before the search index, the feed and the sitemap are made
    /// (see [`site::build_incremental_with`]): the [`Rebuild`] from the previous build to
    /// that site, and its files. Not called when the build fails, or when what follows could
    /// change how a page is served (pages added or removed, new inline code, the
    /// configuration); the result's [`Rebuild::early`] says whether it was.
    pub fn rebuild_with(
        &mut self,
        changed: &[PathBuf],
        ready: &mut ReadyFn<'_>,
    ) -> Result<Rebuild, Diagnostics> {
        let started = Instant::now();
        let kinds: Vec<Kind> = changed.iter().map(|p| self.kind(p)).collect();
        if !changed.is_empty() && kinds.iter().all(|k| *k == Kind::Ignored) {
            return Ok(Rebuild {
                elapsed: started.elapsed(),
                ..Rebuild::default()
            });
        }
        let config = kinds.contains(&Kind::Config);
        let theme = kinds.contains(&Kind::Theme);
        let touched: Vec<PathBuf> = changed.iter().map(|p| self.absolute(p)).collect();
        let mut r = self.run(&touched, config, ready)?;
        r.full |= theme;
        r.elapsed = started.elapsed();
        Ok(r)
    }

    fn run(
        &mut self,
        touched: &[PathBuf],
        everything: bool,
        ready: &mut ReadyFn<'_>,
    ) -> Result<Rebuild, Diagnostics> {
        let started = Instant::now();
        let first = self.memo.files.is_empty();
        if everything {
            self.memo.forget_outputs();
        }
        let previous = &self.memo.files;
        let mut announced: Option<(Files, Rebuild)> = None;
        let mut on_ready = |site: site::Ready| {
            let mut r = diff(previous, &site.files);
            // Pages first only when pages are all that changed so far: the early site is the
            // previous files overlaid with the new ones, so it cannot say that a stylesheet or
            // script was renamed (the tabs swap stylesheets in place on a rename, which needs
            // the old name gone); such a rebuild is announced once, finished.
            if r.changed.iter().any(|p| !p.ends_with(".html")) {
                return;
            }
            r.rendered = site.rendered;
            r.phases = site.phases;
            r.elapsed = started.elapsed();
            ready(&r, &site.files);
            announced = Some((site.files, r));
        };
        let (report, memo) =
            site::build_incremental_with(&self.opts, &self.memo, touched, &mut on_ready)?;
        let diffing = Instant::now();
        let mut out = diff(&self.memo.files, &memo.files);
        if let Some((files, ready)) = announced {
            let rest = diff(&files, &memo.files);
            out.early = Some(Box::new(Early { ready, rest }));
        }
        out.phases = report.phases;
        out.phases.push(("diff", diffing.elapsed()));
        self.memo = memo;
        out.full = everything || first;
        out.rendered = report.rendered;
        out.reused = report.reused;
        out.rendered_paths = report.rendered_paths.clone();
        out.warnings = report.warnings;
        out.elapsed = started.elapsed();
        Ok(out)
    }

    fn absolute(&self, p: &Path) -> PathBuf {
        let root = self
            .opts
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.opts.root.clone());
        let rel = self.relative(p);
        match rel {
            Some(rel) => root.join(rel),
            None => p.to_path_buf(),
        }
    }

    /// `p` relative to the site folder, if it is inside it.
    fn relative(&self, p: &Path) -> Option<PathBuf> {
        if p.is_relative() {
            return Some(p.to_path_buf());
        }
        if let Ok(r) = p.strip_prefix(&self.opts.root) {
            return Some(r.to_path_buf());
        }
        let root = self.opts.root.canonicalize().ok()?;
        if let Ok(r) = p.strip_prefix(&root) {
            return Some(r.to_path_buf());
        }
        // The path may name a folder through a symlink, or be gone: try its parent.
        let parent = p.parent()?.canonicalize().ok()?;
        parent
            .strip_prefix(&root)
            .ok()
            .map(|r| r.join(p.file_name().unwrap_or_default()))
    }

    fn kind(&self, p: &Path) -> Kind {
        let Some(rel) = self.relative(p) else {
            // Outside the site: a theme reached through a symlink, or something unknown.
            return Kind::Config;
        };
        let mut parts = rel.components();
        let Some(first) = parts.next() else {
            return Kind::Config;
        };
        match first.as_os_str().to_string_lossy().as_ref() {
            "folio.toml" => Kind::Config,
            "themes" => Kind::Theme,
            "content" | "data" | "static" | "templates" => Kind::Source,
            "." => Kind::Config,
            _ => Kind::Ignored,
        }
    }

    /// One output file, by its path relative to the output root (`index.html`,
    /// `projects/minirt/index.html`, `css/site.3f2a1b.css`).
    pub fn file(&self, path: &str) -> Option<Arc<[u8]>> {
        self.memo.files.get(path).cloned()
    }

    /// Every output file.
    pub fn files(&self) -> &BTreeMap<String, Arc<[u8]>> {
        &self.memo.files
    }

    /// What to watch: `folio.toml`, `content/`, `data/`, `static/`, `templates/` and the
    /// theme's folder when it is on disk (those that exist).
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        SOURCES
            .iter()
            .map(|p| self.opts.root.join(p))
            .filter(|p| p.exists())
            .collect()
    }
}

/// The difference between two builds.
fn diff(old: &BTreeMap<String, Arc<[u8]>>, new: &BTreeMap<String, Arc<[u8]>>) -> Rebuild {
    let mut out = Rebuild::default();
    for (k, v) in new {
        if old
            .get(k)
            .is_none_or(|o| !Arc::ptr_eq(o, v) && o[..] != v[..])
        {
            out.changed.push(k.clone());
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            out.removed.push(k.clone());
        }
    }
    out.css_renames = css_renames(&out.changed, &out.removed);
    out.css_only = css_only(old, new, &out);
    out
}

/// `css/site.0123456789.css` → `css/site.css` (the logical path of a hashed stylesheet).
fn unhashed(path: &str) -> Option<String> {
    let stem = path.strip_suffix(".css")?;
    let (base, hash) = stem.rsplit_once('.')?;
    (hash.len() == 10 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("{base}.css"))
}

fn css_renames(changed: &[String], removed: &[String]) -> Vec<(String, String)> {
    let gone: BTreeMap<String, &String> = removed
        .iter()
        .filter_map(|p| unhashed(p).map(|l| (l, p)))
        .collect();
    let mut v: Vec<(String, String)> = changed
        .iter()
        .filter_map(|p| {
            let old = gone.get(&unhashed(p)?)?;
            Some((format!("/{old}"), format!("/{p}")))
        })
        .collect();
    v.sort();
    v
}

fn css_only(
    old: &BTreeMap<String, Arc<[u8]>>,
    new: &BTreeMap<String, Arc<[u8]>>,
    r: &Rebuild,
) -> bool {
    if r.changed.is_empty() && r.removed.is_empty() {
        return false;
    }
    if !r.removed.iter().all(|p| p.ends_with(".css")) {
        return false;
    }
    let renamed: BTreeSet<&str> = r
        .css_renames
        .iter()
        .map(|(_, n)| n.trim_start_matches('/'))
        .collect();
    r.changed.iter().all(|p| {
        if p.ends_with(".css") {
            return true;
        }
        if renamed.is_empty() {
            return false;
        }
        let (Some(o), Some(n)) = (old.get(p), new.get(p)) else {
            return false;
        };
        let (Ok(o), Ok(n)) = (std::str::from_utf8(o), std::str::from_utf8(n)) else {
            return false;
        };
        let mut patched = o.to_string();
        for (from, to) in &r.css_renames {
            patched = patched.replace(from.trim_start_matches('/'), to.trim_start_matches('/'));
        }
        if p == "_headers" {
            // The list of immutable files is sorted by name: compare as sets of lines.
            let a: BTreeSet<&str> = patched.lines().collect();
            let b: BTreeSet<&str> = n.lines().collect();
            a == b
        } else {
            patched == n
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stylesheet_renames_are_paired_by_logical_path() {
        assert_eq!(
            unhashed("css/site.0123456789.css").as_deref(),
            Some("css/site.css")
        );
        assert_eq!(unhashed("css/plain.css"), None);
        let r = css_renames(
            &["css/site.abcdefabcd.css".into(), "index.html".into()],
            &["css/site.0123456789.css".into()],
        );
        assert_eq!(
            r,
            vec![(
                "/css/site.0123456789.css".to_string(),
                "/css/site.abcdefabcd.css".to_string()
            )]
        );
    }

    #[test]
    fn css_only_when_pages_differ_by_the_stylesheet_url_alone() {
        let f = |pairs: &[(&str, &str)]| -> BTreeMap<String, Arc<[u8]>> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Arc::from(v.as_bytes())))
                .collect()
        };
        let old = f(&[
            ("css/site.0123456789.css", "a{}"),
            ("index.html", "<link href=/css/site.0123456789.css><p>x"),
        ]);
        let new = f(&[
            ("css/site.abcdefabcd.css", "b{}"),
            ("index.html", "<link href=/css/site.abcdefabcd.css><p>x"),
        ]);
        assert!(diff(&old, &new).css_only);
        let new_text = f(&[
            ("css/site.abcdefabcd.css", "b{}"),
            ("index.html", "<link href=/css/site.abcdefabcd.css><p>y"),
        ]);
        assert!(!diff(&old, &new_text).css_only);
        assert!(!diff(&old, &old).css_only, "nothing changed");
    }
}
