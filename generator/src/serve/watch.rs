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
use crate::commands::Output;
use crate::live::{LiveSite, Rebuild};

/// How long the tree must be quiet before a rebuild starts. Editors save in bursts (write a
/// temporary file, rename it over the original, touch a backup): these arrive within a few
/// milliseconds of each other. 25 ms gathers a burst while keeping a one-page edit well
/// inside the 100 ms edit-to-reload budget (bench/serve-bench measures the whole path).
pub const QUIET: Duration = Duration::from_millis(25);

/// A rebuild starts at the latest this long after the first event of a burst, even if
/// events keep coming (a `git checkout` of many files, a generator writing into content/).
pub const MAX_WAIT: Duration = Duration::from_millis(300);

/// Whether a changed path is an editor's or tool's by-product rather than a source:
/// swap and backup files (vim, emacs, kate, JetBrains), vim's `4913` probe, and anything in
/// the output or folio's own folders.
pub fn ignored(root: &Path, path: &Path) -> bool {
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
pub fn start(site: LiveSite, shared: Arc<Shared>, out: Output) -> Result<(), ServeError> {
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

/// Collects one burst of changes: waits for a first relevant event, then until the tree
/// has been quiet for [`QUIET`] (or [`MAX_WAIT`] passed). `None` when the watcher is gone.
fn next_burst(
    root: &Path,
    rx: &mpsc::Receiver<notify::Result<notify::Event>>,
) -> Option<BTreeSet<PathBuf>> {
    let mut paths = BTreeSet::new();
    let take = |ev: notify::Result<notify::Event>, paths: &mut BTreeSet<PathBuf>| match ev {
        Ok(ev) if is_change(&ev.kind) => {
            for p in ev.paths {
                if !ignored(root, &p) {
                    paths.insert(p);
                }
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: file watcher: {e}"),
    };
    while paths.is_empty() {
        take(rx.recv().ok()?, &mut paths);
    }
    let started = Instant::now();
    loop {
        let left = MAX_WAIT.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(QUIET.min(left)) {
            Ok(ev) => take(ev, &mut paths),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
    Some(paths)
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
        let result = site.rebuild(&paths);
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
    result: Result<Rebuild, crate::Diagnostics>,
) {
    let what = describe_sources(root, sources);
    match result {
        Ok(r) => {
            shared.publish(site);
            out.print_diagnostics(&r.warnings);
            if !out.is_quiet() {
                println!("{}", rebuild_line(&what, &r));
            }
            shared.hub.built(&r);
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
        crate::commands::thousands(n),
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
