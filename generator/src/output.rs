//! Writing the site: into a fresh staging folder beside the target, swapped in only when the
//! whole build succeeded, so a failed build leaves the previous site exactly as it was.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where rendered files go.
pub(crate) enum Sink {
    /// A folder on disk (the staging folder of a build), and the previous output: a file
    /// whose bytes equal the previous output's is hard-linked from it rather than written.
    Dir(PathBuf, Option<PathBuf>),
    /// Memory, path → bytes (tests, `folio serve`; shared with what the next build may
    /// reuse).
    Memory(Mutex<BTreeMap<String, Arc<[u8]>>>),
    /// Nowhere (`folio check`).
    Discard,
}

impl Sink {
    /// Writes one file at `rel` (no leading `/`), creating folders as needed.
    pub(crate) fn write(&self, rel: &str, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Memory(m) => {
                m.lock()
                    .expect("output poisoned")
                    .insert(rel.to_string(), Arc::from(bytes));
                Ok(())
            }
            _ => self.write_out(rel, bytes),
        }
    }

    /// [`Sink::write`] of bytes held elsewhere too: in memory they are shared, not copied.
    pub(crate) fn put(&self, rel: &str, bytes: &Arc<[u8]>) -> io::Result<()> {
        match self {
            Sink::Memory(m) => {
                m.lock()
                    .expect("output poisoned")
                    .insert(rel.to_string(), bytes.clone());
                Ok(())
            }
            _ => self.write_out(rel, bytes),
        }
    }

    /// Writes to a folder, or nowhere.
    fn write_out(&self, rel: &str, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Dir(dir, prev) => {
                let path = dir.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                if let Some(prev) = prev {
                    if link_if_same(&prev.join(rel), &path, bytes) {
                        return Ok(());
                    }
                }
                write_new(&path, bytes)
            }
            Sink::Memory(_) => self.write(rel, bytes),
            Sink::Discard => Ok(()),
        }
    }

    /// Copies a file from disk to `rel`.
    pub(crate) fn copy(&self, rel: &str, source: &Path) -> io::Result<()> {
        match self {
            Sink::Dir(dir, prev) => {
                // Read (to compare) only when the previous output has a file of that size.
                let old_len = prev
                    .as_ref()
                    .and_then(|p| std::fs::symlink_metadata(p.join(rel)).ok())
                    .filter(|m| m.file_type().is_file())
                    .map(|m| m.len());
                if old_len.is_some() && old_len == std::fs::metadata(source).ok().map(|m| m.len()) {
                    return self.write_out(rel, &std::fs::read(source)?);
                }
                let path = dir.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                remove_if_there(&path)?;
                std::fs::copy(source, path).map(|_| ())
            }
            Sink::Memory(_) => self.write(rel, &std::fs::read(source)?),
            Sink::Discard => Ok(()),
        }
    }

    /// `base` with the files written to a memory sink so far in place of its own (empty
    /// for other sinks): what `folio serve` serves once the pages are ready.
    pub(crate) fn over(&self, base: &BTreeMap<String, Arc<[u8]>>) -> BTreeMap<String, Arc<[u8]>> {
        match self {
            Sink::Memory(m) => {
                let mut files = base.clone();
                let written = m.lock().expect("output poisoned");
                files.extend(written.iter().map(|(k, v)| (k.clone(), v.clone())));
                files
            }
            _ => BTreeMap::new(),
        }
    }

    /// The files written to a memory sink.
    pub(crate) fn into_files(self) -> BTreeMap<String, Arc<[u8]>> {
        match self {
            Sink::Memory(m) => m.into_inner().expect("output poisoned"),
            _ => BTreeMap::new(),
        }
    }
}

/// Hard-links `old` (a file of the previous output) at `path` when it holds `bytes`; false
/// when it does not, or cannot be linked (another file system: the caller writes instead).
/// The link is never written through: every file is written as a new file.
fn link_if_same(old: &Path, path: &Path, bytes: &[u8]) -> bool {
    let same = std::fs::symlink_metadata(old)
        .is_ok_and(|m| m.file_type().is_file() && m.len() == bytes.len() as u64)
        && std::fs::read(old).is_ok_and(|b| b == bytes);
    same && retry_if_there(path, || std::fs::hard_link(old, path)).is_ok()
}

/// Runs `make` (which creates `path` and fails if it exists); when something is there
/// already (a file this build wrote before), unlinks it and runs `make` again. Most files
/// are written once: this costs one call where removing first would cost two.
fn retry_if_there<T>(path: &Path, make: impl Fn() -> io::Result<T>) -> io::Result<T> {
    match make() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            remove_if_there(path)?;
            make()
        }
        r => r,
    }
}

/// Writes `bytes` as a new file at `path` (one written before, perhaps a hard link to the
/// previous output, is unlinked first, never written through).
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = retry_if_there(path, || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    })?;
    f.write_all(bytes)
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The deletion of a replaced output, running in the background; dropping it waits for it
/// (the process does not exit with the old output half deleted).
#[derive(Debug, Default)]
pub(crate) struct Cleanup(Option<std::thread::JoinHandle<()>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// A fresh folder beside the output that becomes the output on [`Staging::commit`]; dropped
/// without a commit, it is deleted and the old output is untouched.
pub(crate) struct Staging {
    dir: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staging {
    /// Creates the staging folder for `target` (which need not exist yet).
    pub(crate) fn new(target: &Path) -> io::Result<Staging> {
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "public".into());
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = parent.join(format!(".{name}.folio-new-{}-{stamp}", std::process::id()));
        std::fs::create_dir(&dir)?;
        Ok(Staging {
            dir,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// The folder to write into.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The output being replaced, when there is one: unchanged files are linked from it.
    pub(crate) fn previous(&self) -> Option<&Path> {
        Some(self.target.as_path()).filter(|t| t.is_dir())
    }

    /// Puts the new site in place of the old one. On Linux the two folders are exchanged in one
    /// atomic step, so a server reading the output never sees it missing. The old site is
    /// deleted in the background (see [`Cleanup`]).
    pub(crate) fn commit(mut self) -> io::Result<Cleanup> {
        if self.target.is_dir() {
            if exchange(&self.dir, &self.target).is_ok() {
                // `self.dir` now holds the old site.
                self.committed = true;
                let old = self.dir.clone();
                return Ok(Cleanup(Some(std::thread::spawn(move || remove_tree(&old)))));
            }
            let old = self.dir.with_file_name(format!(
                "{}.old",
                self.dir.file_name().unwrap_or_default().to_string_lossy()
            ));
            std::fs::rename(&self.target, &old)?;
            if let Err(e) = std::fs::rename(&self.dir, &self.target) {
                let _ = std::fs::rename(&old, &self.target);
                return Err(e);
            }
            self.committed = true;
            Ok(Cleanup(Some(std::thread::spawn(move || remove_tree(&old)))))
        } else {
            if self.target.exists() {
                return Err(io::Error::other(format!(
                    "{} exists and is not a folder",
                    self.target.display()
                )));
            }
            std::fs::rename(&self.dir, &self.target)?;
            self.committed = true;
            Ok(Cleanup::default())
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Deletes a folder tree, its subtrees in parallel: unlinking thousands of files is the
/// slowest part of replacing a large site on some file systems.
fn remove_tree(dir: &Path) {
    use rayon::prelude::*;
    let mut subtrees = Vec::new();
    for top in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = top.path();
        if p.is_dir() {
            match std::fs::read_dir(&p) {
                Ok(rd) => subtrees.extend(rd.flatten().map(|e| e.path())),
                Err(_) => subtrees.push(p),
            }
        } else {
            subtrees.push(p);
        }
    }
    subtrees.par_iter().for_each(|p| {
        let _ = if p.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both paths are valid NUL-terminated strings; renameat2 has no other preconditions.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::Error::other("no atomic exchange on this platform"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_files_are_linked_and_never_written_through() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("public");
        std::fs::create_dir_all(target.join("d")).unwrap();
        std::fs::write(target.join("d/same.html"), "same").unwrap();
        std::fs::write(target.join("other.html"), "old").unwrap();
        std::fs::write(target.join("copied.bin"), "same").unwrap();
        let src = tmp.path().join("static.bin");
        std::fs::write(&src, "same").unwrap();
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();

        let s = Staging::new(&target).unwrap();
        let sink = Sink::Dir(s.dir().to_path_buf(), s.previous().map(Path::to_path_buf));
        sink.write("d/same.html", b"same").unwrap();
        assert_eq!(
            ino(&s.dir().join("d/same.html")),
            ino(&target.join("d/same.html"))
        );
        sink.write("other.html", b"new").unwrap();
        assert_ne!(
            ino(&s.dir().join("other.html")),
            ino(&target.join("other.html"))
        );
        // Written again (now different): a new file, the linked one is left alone.
        sink.write("d/same.html", b"edited").unwrap();
        assert_eq!(std::fs::read(target.join("d/same.html")).unwrap(), b"same");
        assert_eq!(
            std::fs::read(s.dir().join("d/same.html")).unwrap(),
            b"edited"
        );
        // A copy equal to the previous output's file is linked too; a different one is not.
        sink.copy("copied.bin", &src).unwrap();
        assert_eq!(
            ino(&s.dir().join("copied.bin")),
            ino(&target.join("copied.bin"))
        );
        sink.copy("other.html", &src).unwrap();
        assert_eq!(std::fs::read(target.join("other.html")).unwrap(), b"old");
        assert_eq!(std::fs::read(s.dir().join("other.html")).unwrap(), b"same");
        drop(s);
        assert_eq!(std::fs::read(target.join("d/same.html")).unwrap(), b"same");
        assert_eq!(std::fs::read(target.join("other.html")).unwrap(), b"old");
    }

    #[test]
    fn commit_swaps_and_drop_discards() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("public");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("old.html"), "old").unwrap();

        let s = Staging::new(&target).unwrap();
        std::fs::write(s.dir().join("new.html"), "new").unwrap();
        drop(s);
        assert!(target.join("old.html").exists());
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "staging folder left behind"
        );

        let s = Staging::new(&target).unwrap();
        std::fs::write(s.dir().join("new.html"), "new").unwrap();
        drop(s.commit().unwrap());
        assert!(target.join("new.html").exists());
        assert!(!target.join("old.html").exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
