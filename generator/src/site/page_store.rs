//! The rendered-page cache on disk (`.folio/cache/pages.bin`), read and written without
//! holding the pages in memory.
//!
//! A site's rendered pages weigh about as much as its output (250 MB at 10,000 pages): kept
//! in a map until the cache is saved, they were the largest part of a build's peak memory,
//! and loading the previous file read all of it before the first page rendered. Here the
//! previous file is only indexed when loaded (each entry's key, offset and length) and an
//! entry is read from it when asked for; the entries this build renders are appended to a
//! spill file beside it as they are rendered; saving writes the entries used from the
//! previous file, then the spill file, into a new file swapped in by rename.
//!
//! The file: `FOLIOPG3`, then per entry its key, little-endian `u32` length, a 16-byte check
//! of key and bytes (the one every cache file uses, `cache::entry_check`), and the bytes. An
//! entry is checked when it is read: one damaged on disk (a flipped byte that still parses)
//! is rendered again, never served. A file of the unchecked layout (`FOLIOPG2`, an earlier
//! folio's) is an empty cache.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::cache::{entry_check as check, Key, Previous, Stats};

/// What the file starts with.
const FORMAT: &[u8; 8] = b"FOLIOPG3";

/// The entries rendered by this build, appended in the file's own layout.
struct Spill {
    path: PathBuf,
    out: BufWriter<File>,
    /// Keys written (a key rendered twice is written once).
    keys: HashSet<Key>,
}

/// The page cache of one build: the previous file's entries read on demand, this build's
/// spilled to disk (see the module's documentation).
pub(super) struct PageStore {
    /// Read by every render thread at once (`pread`, no lock).
    previous: OnceLock<Previous>,
    /// Keys of the previous file's entries this build used.
    used: Mutex<HashSet<Key>>,
    /// Where new entries go: `None` before the first one, or when they are not kept.
    spill: Mutex<Option<Spill>>,
    /// Whether new entries are kept (only a build written to disk saves the cache).
    keeps: bool,
    /// The cache file (set by [`PageStore::load`]).
    path: OnceLock<PathBuf>,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

impl PageStore {
    /// An empty store; `keeps`: whether entries rendered now are kept for [`PageStore::save`].
    pub(super) fn new(keeps: bool) -> PageStore {
        PageStore {
            previous: OnceLock::new(),
            used: Mutex::new(HashSet::new()),
            spill: Mutex::new(None),
            keeps,
            path: OnceLock::new(),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        }
    }

    /// Indexes the cache file at `path`; a missing, old or damaged file is an empty cache.
    pub(super) fn load(&self, path: &Path) {
        if self.path.set(path.to_path_buf()).is_err() {
            return; // loaded already
        }
        if let Ok(prev) = index(path) {
            let _ = self.previous.set(prev);
        }
    }

    /// The entry for `key`, counted as a hit, or `None` (counted as a miss).
    pub(super) fn get(&self, key: &Key) -> Option<Vec<u8>> {
        let hit = self.previous.get().and_then(|p| {
            let &(at, len, sum) = p.index.get(key)?;
            let mut buf = vec![0; len as usize];
            p.file.read_exact_at(&mut buf, at).ok()?;
            (check(key, &buf) == sum).then_some(buf)
        });
        match hit {
            Some(_) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.used.lock().expect("poisoned").insert(*key);
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
            }
        }
        hit
    }

    /// Keeps an entry rendered by this build (appended to the spill file, not held).
    pub(super) fn put(&self, key: Key, bytes: &[u8]) {
        if !self.keeps {
            return;
        }
        let Some(path) = self.path.get() else {
            return;
        };
        let mut spill = self.spill.lock().expect("poisoned");
        if spill.is_none() {
            *spill = open_spill(path).ok();
        }
        let Some(s) = spill.as_mut() else {
            return; // no spill file: this build's entries are not cached
        };
        if !s.keys.insert(key) {
            return;
        }
        let written = s
            .out
            .write_all(&key)
            .and_then(|()| s.out.write_all(&(bytes.len() as u32).to_le_bytes()))
            .and_then(|()| s.out.write_all(&check(&key, bytes)))
            .and_then(|()| s.out.write_all(bytes));
        if written.is_err() {
            // A half-written entry would damage the file: give up on keeping new entries.
            let _ = std::fs::remove_file(&s.path);
            *spill = None;
        }
    }

    /// This build's hits and misses.
    pub(super) fn stats(&self) -> Stats {
        Stats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Writes the entries this build used or rendered (so the file does not grow forever)
    /// to the cache file, atomically. Skipped when the file would be the same.
    pub(super) fn save(&self) -> io::Result<()> {
        let Some(path) = self.path.get() else {
            return Ok(());
        };
        let spill = self.spill.lock().expect("poisoned").take();
        let spill_path = spill.as_ref().map(|s| s.path.clone());
        let prev = self.previous.get();
        let used = self.used.lock().expect("poisoned");
        let kept = prev.map_or(0, |p| p.index.len());
        if spill.is_none() && used.len() == kept && path.exists() {
            return Ok(());
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let result = (|| {
            let mut w = BufWriter::new(File::create(&tmp)?);
            w.write_all(FORMAT)?;
            if let Some(p) = prev {
                let mut keys: Vec<&Key> = used.iter().collect();
                keys.sort();
                let mut buf = Vec::new();
                for k in keys {
                    if let Some(&(at, len, sum)) = p.index.get(k) {
                        buf.resize(len as usize, 0);
                        p.file.read_exact_at(&mut buf, at)?;
                        w.write_all(k)?;
                        w.write_all(&len.to_le_bytes())?;
                        w.write_all(&sum)?;
                        w.write_all(&buf)?;
                    }
                }
            }
            if let Some(mut s) = spill {
                s.out.flush()?;
                let mut f = s.out.into_inner().map_err(|e| e.into_error())?;
                f.rewind()?;
                io::copy(&mut f, &mut w)?;
            }
            w.flush()?;
            std::fs::rename(&tmp, path)
        })();
        if let Some(s) = spill_path {
            let _ = std::fs::remove_file(s);
        }
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

impl Drop for PageStore {
    /// A spill file left unsaved (a failed build, a build not written) is removed.
    fn drop(&mut self) {
        if let Some(s) = self.spill.get_mut().ok().and_then(Option::take) {
            drop(s.out);
            let _ = std::fs::remove_file(&s.path);
        }
    }
}

/// Creates the spill file beside the cache file.
fn open_spill(cache: &Path) -> io::Result<Spill> {
    if let Some(dir) = cache.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let path = cache.with_extension(format!("spill{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    Ok(Spill {
        path,
        out: BufWriter::with_capacity(1 << 16, file),
        keys: HashSet::new(),
    })
}

/// Opens the page store's file and reads where its entries are (not the entries).
fn index(path: &Path) -> io::Result<Previous> {
    crate::cache::index_file(path, FORMAT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_the_file_and_unused_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/pages.bin");
        let a = PageStore::new(true);
        a.load(&path);
        assert_eq!(a.get(&[1; 32]), None);
        a.put([1; 32], b"one");
        a.put([2; 32], b"two");
        a.put([3; 32], b"");
        a.save().unwrap();
        drop(a);
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "only the cache file is left: {left:?}");

        let b = PageStore::new(true);
        b.load(&path);
        assert_eq!(b.get(&[2; 32]).as_deref(), Some(&b"two"[..]));
        assert_eq!(b.get(&[3; 32]).as_deref(), Some(&b""[..]));
        b.put([4; 32], b"four");
        b.save().unwrap();
        let s = b.stats();
        assert_eq!((s.hits, s.misses), (2, 0));
        drop(b);

        let c = PageStore::new(false);
        c.load(&path);
        assert_eq!(
            c.get(&[1; 32]),
            None,
            "an entry the last build did not use is gone"
        );
        assert_eq!(c.get(&[2; 32]).as_deref(), Some(&b"two"[..]));
        assert_eq!(c.get(&[4; 32]).as_deref(), Some(&b"four"[..]));
        c.put([5; 32], b"five"); // not kept: nothing spilled
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn a_damaged_or_foreign_file_is_an_empty_cache_and_an_unsaved_spill_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages.bin");
        let a = PageStore::new(true);
        a.load(&path);
        a.put([7; 32], b"seven");
        a.put([8; 32], b"eight");
        a.save().unwrap();
        drop(a);
        // Cut the last entry short.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let b = PageStore::new(true);
        b.load(&path);
        assert_eq!(b.get(&[7; 32]).as_deref(), Some(&b"seven"[..]));
        assert_eq!(b.get(&[8; 32]), None);
        b.put([9; 32], b"nine");
        drop(b); // never saved
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["pages.bin"]);

        std::fs::write(&path, b"FOLIOHL1 something else").unwrap();
        let c = PageStore::new(false);
        c.load(&path);
        assert_eq!(c.get(&[7; 32]), None);
    }

    #[test]
    fn an_entry_damaged_on_disk_is_a_miss_and_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages.bin");
        let a = PageStore::new(true);
        a.load(&path);
        a.put([1; 32], b"<p>the first page</p>");
        a.put([2; 32], b"<p>the second page</p>");
        a.save().unwrap();
        drop(a);
        // A flipped byte inside the first page: the file still parses.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(5).position(|w| w == b"first").unwrap();
        bytes[at] = b'X';
        std::fs::write(&path, &bytes).unwrap();
        let b = PageStore::new(true);
        b.load(&path);
        assert_eq!(b.get(&[1; 32]), None, "a damaged page was served");
        assert_eq!(
            b.get(&[2; 32]).as_deref(),
            Some(&b"<p>the second page</p>"[..])
        );
        b.put([1; 32], b"<p>the first page</p>");
        b.save().unwrap();
        drop(b);
        let c = PageStore::new(false);
        c.load(&path);
        assert_eq!(
            c.get(&[1; 32]).as_deref(),
            Some(&b"<p>the first page</p>"[..])
        );
        assert_eq!((c.stats().hits, c.stats().misses), (1, 0));
    }
}
