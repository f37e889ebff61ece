//! The file watcher: notify (inotify on Linux) over [`LiveSite::watched_paths`], debounced,
//! then [`LiveSite::rebuild`] with the paths that changed, then the news to the tabs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher as _};

use super::{ServeError, Shared};
use crate::ui::Output;
use folio::live::{LiveSite, Rebuild};

/// How long the tree must be quiet before a rebuild starts while a save may still be under
/// way: a file written but not closed yet, or a source removed or renamed away (editors that
/// save by renaming the original to a backup, then writing a new file). Editors save in
/// bursts whose events arrive within a few milliseconds of each other; 25 ms gathers one.
pub(super) const QUIET: Duration = Duration::from_millis(25);

/// How long the tree must be quiet before a rebuild starts once every file written in the
/// burst has been closed and nothing removed is missing: the save is complete, so only a
/// moment is left for a second file of the same save (bench/serve-bench measures the whole
/// edit-to-reload path; the 100 ms budget is for all of it).
pub(super) const SETTLE: Duration = Duration::from_millis(3);

/// A rebuild starts at the latest this long after the first event of a burst, even if
/// events keep coming (a `git checkout` of many files, a generator writing into content/).
pub(super) const MAX_WAIT: Duration = Duration::from_millis(300);

/// Whether a changed path is an editor's or tool's by-product rather than a source:
/// swap and backup files (vim, emacs, kate, JetBrains), vim's `4913` probe, and anything in
/// the output or folio's own folders.
pub(super) fn ignored(root: &Path, path: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    // Only the site's sources: the output folder, .folio/, .git/ and anything else at
    // the top level are not.
    let top = rel.components().next().and_then(|c| c.as_os_str().to_str());
    if !matches!(
        top,
        Some("folio.toml" | "content" | "data" | "static" | "templates" | "themes")
    ) {
        return true;
    }
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.ends_with(".tmp")
        || name.ends_with(".kate-swp")
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#'))
        || name == "4913"
        || name == ".DS_Store"
}

/// Whether an event says something about a file's contents or existence. Reads (the
/// rebuild itself opens every source) are not changes; a close after writing is.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

fn watch_error(path: &Path, e: notify::Error) -> ServeError {
    match e.kind {
        notify::ErrorKind::MaxFilesWatch => ServeError::WatchLimit {
            what: "fs.inotify.max_user_watches",
        },
        notify::ErrorKind::Io(ref io) if io.raw_os_error() == Some(libc::ENOSPC) => {
            ServeError::WatchLimit {
                what: "fs.inotify.max_user_watches",
            }
        }
        notify::ErrorKind::Io(ref io) if io.raw_os_error() == Some(libc::EMFILE) => {
            ServeError::WatchLimit {
                what: "fs.inotify.max_user_instances",
            }
        }
        _ => ServeError::Watch {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

/// Starts watching `site`'s sources, then hands the site and the watcher to a thread of
/// their own that builds the site once, publishes it, and from then on rebuilds on every
/// change. Fails (before anything is built) when the sources cannot be watched.
pub(super) fn start(site: LiveSite, shared: Arc<Shared>, out: Output) -> Result<(), ServeError> {
    let root = site.root().to_path_buf();
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(move |ev| {
        let _ = tx.send(ev);
    })
    .map_err(|e| watch_error(&root, e))?;
    // The root itself, not recursively: folio.toml (editors replace it by renaming, which
    // a watch on the file alone would lose) and source folders created later.
    watcher
        .watch(&root, RecursiveMode::NonRecursive)
        .map_err(|e| watch_error(&root, e))?;
    let mut watched = BTreeSet::new();
    watch_new(&mut watcher, &site, &mut watched)?;
    std::thread::Builder::new()
        .name("folio-serve-watch".into())
        .spawn(move || rebuild_loop(site, watcher, watched, rx, shared, out))
        .map_err(|e| ServeError::Server(e.to_string()))?;
    Ok(())
}

fn watch_new(
    w: &mut notify::RecommendedWatcher,
    site: &LiveSite,
    watched: &mut BTreeSet<PathBuf>,
) -> Result<(), ServeError> {
    for p in site.watched_paths() {
        if p.is_dir() && !watched.contains(&p) {
            w.watch(&p, RecursiveMode::Recursive)
                .map_err(|e| watch_error(&p, e))?;
            watched.insert(p);
        }
    }
    Ok(())
}

/// One burst of changes being gathered: the source paths it touched, and whether a save
/// may still be under way (which decides how long to wait for more).
#[derive(Debug, Default)]
struct Burst {
    /// Source paths that changed (editor droppings and the output left out).
    paths: BTreeSet<PathBuf>,
    /// Files created or written to and not closed since.
    writing: BTreeSet<PathBuf>,
    /// Sources removed or renamed away and not created again since.
    gone: BTreeSet<PathBuf>,
}

impl Burst {
    /// Takes one event into account.
    fn note(&mut self, root: &Path, ev: &notify::Event) {
        use notify::event::{CreateKind, ModifyKind, RenameMode};
        if !is_change(&ev.kind) {
            return;
        }
        let sources = ev.paths.iter().filter(|p| !ignored(root, p));
        for p in sources {
            self.paths.insert(p.clone());
            match ev.kind {
                EventKind::Create(CreateKind::Folder) => {
                    self.gone.remove(p);
                }
                EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_)) => {
                    self.gone.remove(p);
                    self.writing.insert(p.clone());
                }
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                    self.writing.remove(p);
                }
                EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                    self.gone.remove(p);
                }
                EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                    self.writing.remove(p);
                    self.gone.insert(p.clone());
                }
                _ => {}
            }
        }
    }

    /// Whether the save looks complete: every file written has been closed and nothing
    /// removed is waiting to be created again.
    fn settled(&self) -> bool {
        self.writing.is_empty() && self.gone.is_empty()
    }

    /// How long to wait for the next event before building.
    fn quiet(&self) -> Duration {
        if self.settled() {
            SETTLE
        } else {
            QUIET
        }
    }
}

/// Collects one burst of changes: waits for a first relevant event, then until the tree has
/// been quiet for [`SETTLE`] once every written file is closed (for [`QUIET`] while one is
/// not, or a source was removed), or [`MAX_WAIT`] passed. `None` when the watcher is gone.
fn next_burst(
    root: &Path,
    rx: &mpsc::Receiver<notify::Result<notify::Event>>,
) -> Option<BTreeSet<PathBuf>> {
    let mut burst = Burst::default();
    let take = |ev: notify::Result<notify::Event>, burst: &mut Burst| match ev {
        Ok(ev) => burst.note(root, &ev),
        Err(e) => eprintln!("warning: file watcher: {e}"),
    };
    while burst.paths.is_empty() {
        take(rx.recv().ok()?, &mut burst);
    }
    let started = Instant::now();
    loop {
        let left = MAX_WAIT.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(burst.quiet().min(left)) {
            Ok(ev) => take(ev, &mut burst),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
    Some(burst.paths)
}

fn rebuild_loop(
    mut site: LiveSite,
    mut watcher: notify::RecommendedWatcher,
    mut watched: BTreeSet<PathBuf>,
    rx: mpsc::Receiver<notify::Result<notify::Event>>,
    shared: Arc<Shared>,
    out: Output,
) {
    let root = site.root().to_path_buf();
    let first = site.build_all();
    report(&shared, &site, &out, &root, &[], first);
    while let Some(paths) = next_burst(&root, &rx) {
        let paths: Vec<PathBuf> = paths.into_iter().collect();
        // The edited pages are served, and the tabs told, as soon as they are ready; the
        // search index, feed and sitemap follow (see `LiveSite::rebuild_with`).
        let result = site.rebuild_with(&paths, &mut |ready, files| {
            shared.publish_files(files.clone());
            shared.hub.built(ready);
        });
        report(&shared, &site, &out, &root, &paths, result);
        // A source folder created since (a first templates/): watch it too. A folder that
        // was removed drops its watch by itself.
        watched.retain(|p| p.is_dir());
        if let Err(e) = watch_new(&mut watcher, &site, &mut watched) {
            eprintln!("warning: {e}");
        }
    }
}

fn report(
    shared: &Shared,
    site: &LiveSite,
    out: &Output,
    root: &Path,
    sources: &[PathBuf],
    result: Result<Rebuild, folio_content::Diagnostics>,
) {
    let what = describe_sources(root, sources);
    match result {
        Ok(r) => {
            shared.publish(site);
            out.print_diagnostics(&r.warnings);
            if !out.is_quiet() {
                println!("{}", rebuild_line(&what, &r));
            }
            if out.verbose {
                let phases: Vec<String> = r
                    .phases
                    .iter()
                    .map(|(n, d)| format!("{n} {:.1} ms", d.as_secs_f64() * 1000.0))
                    .collect();
                let ready = r.early.as_ref().map_or(String::new(), |e| {
                    format!(
                        " (pages served after {:.1} ms)",
                        e.ready.elapsed.as_secs_f64() * 1000.0
                    )
                });
                println!("  phases: {}{ready}", phases.join(", "));
            }
            match &r.early {
                // The tabs heard of the pages already: only what changed since, if anything.
                Some(e) => {
                    if !e.rest.changed.is_empty() || !e.rest.removed.is_empty() {
                        let mut rest = Rebuild {
                            changed: e.rest.changed.clone(),
                            removed: e.rest.removed.clone(),
                            css_only: e.rest.css_only,
                            css_renames: e.rest.css_renames.clone(),
                            ..Rebuild::default()
                        };
                        rest.elapsed = r.elapsed;
                        shared.hub.built(&rest);
                    }
                }
                None => shared.hub.built(&r),
            }
        }
        Err(d) => {
            out.print_diagnostics(&d);
            let n = d.errors().len();
            let serving = if shared.snapshot().is_some() {
                "still serving the last good site"
            } else {
                "serving an error page until it builds"
            };
            eprintln!(
                "{}: build failed with {} error{}; {serving}",
                if what.is_empty() { "start" } else { &what },
                n,
                if n == 1 { "" } else { "s" },
            );
            shared.hub.failed(&d);
        }
    }
}

/// `content/a.md, templates/page.html` (at most three names, then a count).
fn describe_sources(root: &Path, sources: &[PathBuf]) -> String {
    let names: Vec<String> = sources
        .iter()
        .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
        .collect();
    match names.len() {
        0..=3 => names.join(", "),
        n => format!("{} and {} more", names[..3].join(", "), n - 3),
    }
}

fn plural(n: usize, word: &str) -> String {
    format!(
        "{} {word}{}",
        crate::ui::thousands(n),
        if n == 1 { "" } else { "s" }
    )
}

/// One line per rebuild: what changed, what it did, how long it took.
fn rebuild_line(what: &str, r: &Rebuild) -> String {
    if what.is_empty() {
        return format!(
            "Built {} in {} ms",
            plural(r.changed.len(), "file"),
            r.elapsed.as_millis()
        );
    }
    format!(
        "{what}: {} updated, {} removed, {} rendered{} in {} ms",
        plural(r.changed.len(), "file"),
        r.removed.len(),
        plural(r.rendered, "template"),
        if r.full { " (full rebuild)" } else { "" },
        r.elapsed.as_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_droppings_and_output_are_ignored() {
        let root = Path::new("/s");
        for p in [
            "/s/content/.a.md.swp",
            "/s/content/a.md~",
            "/s/content/4913",
            "/s/content/.#a.md",
            "/s/content/#a.md#",
            "/s/public/index.html",
            "/s/.folio/cache/x",
            "/s/README.md",
            "/s/templates/page.html___jb_tmp___",
        ] {
            assert!(ignored(root, Path::new(p)), "{p}");
        }
        for p in [
            "/s/content/a.md",
            "/s/content/public/a.md",
            "/s/folio.toml",
            "/s/templates/page.html",
            "/s/themes/folio/static/css/site.css",
        ] {
            assert!(!ignored(root, Path::new(p)), "{p}");
        }
    }

    #[test]
    fn a_burst_settles_when_written_files_are_closed_and_nothing_is_missing() {
        use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind, RenameMode};
        use notify::Event;
        let root = Path::new("/s");
        let ev = |kind: EventKind, p: &str| Event::new(kind).add_path(PathBuf::from(p));
        let page = "/s/content/a.md";

        // Written in place: unsettled until closed.
        let mut b = Burst::default();
        b.note(
            root,
            &ev(EventKind::Modify(ModifyKind::Data(DataChange::Any)), page),
        );
        assert!(!b.settled());
        assert_eq!(b.quiet(), QUIET);
        b.note(
            root,
            &ev(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                page,
            ),
        );
        assert!(b.settled());
        assert_eq!(b.quiet(), SETTLE);
        assert_eq!(b.paths.len(), 1);

        // Saved vim-style: the original renamed to a backup (ignored), a new file written.
        let mut b = Burst::default();
        b.note(
            root,
            &ev(EventKind::Modify(ModifyKind::Name(RenameMode::From)), page),
        );
        b.note(
            root,
            &ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                "/s/content/a.md~",
            ),
        );
        assert!(!b.settled(), "the page is missing until written again");
        b.note(root, &ev(EventKind::Create(CreateKind::File), page));
        assert!(!b.settled(), "created, not closed yet");
        b.note(
            root,
            &ev(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                page,
            ),
        );
        b.note(
            root,
            &ev(EventKind::Remove(RemoveKind::File), "/s/content/a.md~"),
        );
        assert!(b.settled());
        assert_eq!(b.paths.iter().collect::<Vec<_>>(), vec![Path::new(page)]);

        // Saved by renaming a temporary file over the original: complete at once.
        let mut b = Burst::default();
        b.note(
            root,
            &ev(EventKind::Modify(ModifyKind::Name(RenameMode::To)), page),
        );
        assert!(b.settled());

        // Deleted: waits the longer quiet time in case it comes back.
        let mut b = Burst::default();
        b.note(root, &ev(EventKind::Remove(RemoveKind::File), page));
        assert!(!b.settled());

        // Reads change nothing.
        let mut b = Burst::default();
        b.note(
            root,
            &ev(EventKind::Access(AccessKind::Open(AccessMode::Any)), page),
        );
        assert!(b.paths.is_empty());
    }

    #[test]
    fn reads_are_not_changes() {
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Remove(
            notify::event::RemoveKind::File
        )));
    }
}
