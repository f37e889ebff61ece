//! Content-addressed caches kept between builds under `.folio/cache/`: highlighted code blocks
//! and rendered pages, each entry keyed by a hash of everything that produced it, so a hit is
//! always exactly what rendering again would give.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};

/// A cache key: a BLAKE3 hash of the inputs.
pub(crate) type Key = [u8; 32];

/// Identifies the program that made a cache entry: its version, and the size and
/// modification time of its executable, so an entry made by another build of folio (a
/// developer's, before a change to what it makes) is never taken for this one's.
pub(crate) fn program_id() -> Key {
    static ID: OnceLock<Key> = OnceLock::new();
    *ID.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        if let Some(m) = std::env::current_exe()
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
        {
            h.update(&m.len().to_le_bytes());
            if let Some(d) = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            {
                h.update(&d.as_nanos().to_le_bytes());
            }
        }
        *h.finalize().as_bytes()
    })
}

/// Hit and miss counts of one build.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Entries served from the cache.
    pub hits: usize,
    /// Entries computed now.
    pub misses: usize,
}

/// What follows a cache file's format tag: the entry layout below (key, little-endian `u32`
/// length, check, bytes). A file without it (written before entries were checked) is an
/// empty cache.
const LAYOUT: &[u8; 4] = b"SUM1";
/// An entry's key, length and check.
const ENTRY_HEAD: usize = 32 + 4 + 16;

/// A check of one entry (its key and bytes), so a file damaged on disk — a flipped byte that
/// still parses — costs a recomputation instead of a wrong result served as cached. Shared
/// with the page store (`site::page_store`), whose file is laid out like these.
pub(crate) fn entry_check(key: &Key, bytes: &[u8]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(key);
    h.update(bytes);
    h.finalize().as_bytes()[..16].try_into().expect("16 bytes")
}

/// A map from input hash to output bytes, loadable from and savable to one file.
pub(crate) struct BlobCache {
    format: &'static [u8; 8],
    map: Mutex<HashMap<Key, Arc<[u8]>>>,
    used: Mutex<HashSet<Key>>,
    hits: AtomicUsize,
    misses: AtomicUsize,
    /// The file to read on first use ([`BlobCache::load_lazily`]), and whether it was.
    source: OnceLock<PathBuf>,
    loaded: Once,
}

impl BlobCache {
    /// An empty cache whose files start with `format` (change it when entries change shape).
    pub(crate) fn new(format: &'static [u8; 8]) -> Self {
        BlobCache {
            format,
            map: Mutex::new(HashMap::new()),
            used: Mutex::new(HashSet::new()),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
            source: OnceLock::new(),
            loaded: Once::new(),
        }
    }

    /// Reads `path` (as [`BlobCache::load`]) only when an entry is first looked up or
    /// stored: a build whose every result comes from elsewhere (e.g. code blocks inside
    /// bodies reused whole) never reads the file, and [`BlobCache::save`] then leaves it
    /// as it is.
    pub(crate) fn load_lazily(&self, path: &Path) {
        let _ = self.source.set(path.to_path_buf());
    }

    /// Reads the file named by [`BlobCache::load_lazily`], once, before the first use.
    fn ensure_loaded(&self) {
        if let Some(p) = self.source.get() {
            self.loaded.call_once(|| self.load(p));
        }
    }

    /// Counts `keys` as used by this build without looking them up (results reused from
    /// a cache of larger things that contain them), so [`BlobCache::save`] keeps them; each
    /// counts as a hit (its result came from a cache).
    pub(crate) fn touch(&self, keys: &[Key]) {
        if keys.is_empty() {
            return;
        }
        self.hits.fetch_add(keys.len(), Ordering::Relaxed);
        self.used
            .lock()
            .expect("cache poisoned")
            .extend(keys.iter().copied());
    }

    /// The entry for `key`, counted as a hit, or `None` (counted as a miss).
    pub(crate) fn get(&self, key: &Key) -> Option<Arc<[u8]>> {
        self.ensure_loaded();
        let hit = self.map.lock().expect("cache poisoned").get(key).cloned();
        match &hit {
            Some(_) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.used.lock().expect("cache poisoned").insert(*key);
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
            }
        }
        hit
    }

    /// Stores an entry computed by this build.
    pub(crate) fn put(&self, key: Key, value: Arc<[u8]>) {
        self.ensure_loaded();
        self.map.lock().expect("cache poisoned").insert(key, value);
        self.used.lock().expect("cache poisoned").insert(key);
    }

    /// This build's counts.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Loads a file written by [`BlobCache::save`]; a missing, old or damaged file is simply an
    /// empty cache.
    pub(crate) fn load(&self, path: &Path) {
        let Ok(mut f) = std::fs::File::open(path) else {
            return;
        };
        let mut buf = Vec::new();
        let head = 8 + LAYOUT.len();
        if f.read_to_end(&mut buf).is_err()
            || buf.len() < head
            || &buf[..8] != self.format
            || &buf[8..head] != LAYOUT
        {
            return;
        }
        let mut map = HashMap::new();
        let mut i = head;
        while i + ENTRY_HEAD <= buf.len() {
            let mut key = [0u8; 32];
            key.copy_from_slice(&buf[i..i + 32]);
            let len = u32::from_le_bytes(buf[i + 32..i + 36].try_into().expect("4 bytes")) as usize;
            let check = &buf[i + 36..i + ENTRY_HEAD];
            i += ENTRY_HEAD;
            let Some(bytes) = buf.get(i..i + len) else {
                break; // a truncated last entry is left out
            };
            // A damaged entry is computed again, never served.
            if entry_check(&key, bytes) == check {
                map.insert(key, Arc::from(bytes));
            }
            i += len;
        }
        *self.map.lock().expect("cache poisoned") = map;
    }

    /// Writes the entries used by this build (so the file does not grow forever), atomically.
    /// Skipped when nothing changed since the file was loaded.
    /// Left alone when it was to be read lazily and never was: this build used nothing
    /// of it but what it touched, which the file holds already.
    pub(crate) fn save(&self, path: &Path) -> std::io::Result<()> {
        if self.source.get().is_some_and(|s| s == path) && !self.loaded.is_completed() {
            return Ok(());
        }
        let used = self.used.lock().expect("cache poisoned");
        let map = self.map.lock().expect("cache poisoned");
        if self.misses.load(Ordering::Relaxed) == 0 && used.len() == map.len() && path.exists() {
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        {
            let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            w.write_all(self.format)?;
            w.write_all(LAYOUT)?;
            let mut keys: Vec<&Key> = used.iter().collect();
            keys.sort();
            for k in keys {
                if let Some(v) = map.get(k) {
                    w.write_all(k)?;
                    w.write_all(&(v.len() as u32).to_le_bytes())?;
                    w.write_all(&entry_check(k, v))?;
                    w.write_all(v)?;
                }
            }
            w.flush()?;
        }
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_only_used_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let a = BlobCache::new(b"TESTFMT1");
        a.put([1; 32], Arc::from(&b"one"[..]));
        a.put([2; 32], Arc::from(&b"two"[..]));
        a.save(&path).unwrap();
        let b = BlobCache::new(b"TESTFMT1");
        b.load(&path);
        assert_eq!(&*b.get(&[1; 32]).unwrap(), b"one");
        assert!(b.get(&[3; 32]).is_none());
        b.save(&path).unwrap();
        let c = BlobCache::new(b"TESTFMT1");
        c.load(&path);
        assert!(
            c.get(&[2; 32]).is_none(),
            "unused entries are dropped on save"
        );
        assert!(c.get(&[1; 32]).is_some());
        let other = BlobCache::new(b"OTHERFMT");
        other.load(&path);
        assert!(other.get(&[1; 32]).is_none(), "another format is ignored");
    }

    #[test]
    fn a_lazy_cache_reads_on_first_use_and_keeps_touched_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let a = BlobCache::new(b"TESTFMT1");
        for k in 1..=3u8 {
            a.put([k; 32], Arc::from(&[k][..]));
        }
        a.save(&path).unwrap();
        let before = std::fs::read(&path).unwrap();

        // Never used: not read, and saving leaves the file as it was.
        let b = BlobCache::new(b"TESTFMT1");
        b.load_lazily(&path);
        b.touch(&[[1; 32]]);
        std::fs::write(&path, b"TESTFMT1").unwrap(); // would be read as empty
        b.save(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"TESTFMT1");
        std::fs::write(&path, &before).unwrap();

        // Used: read then; a touched entry survives the save beside the one looked up.
        let c = BlobCache::new(b"TESTFMT1");
        c.load_lazily(&path);
        c.touch(&[[1; 32]]);
        assert_eq!(&*c.get(&[2; 32]).unwrap(), &[2]);
        c.put([4; 32], Arc::from(&[4][..]));
        c.save(&path).unwrap();
        let d = BlobCache::new(b"TESTFMT1");
        d.load(&path);
        assert!(d.get(&[1; 32]).is_some(), "touched entry kept");
        assert!(d.get(&[2; 32]).is_some());
        assert!(d.get(&[4; 32]).is_some());
        assert!(d.get(&[3; 32]).is_none(), "unused entry dropped");
    }

    #[test]
    fn a_damaged_entry_is_dropped_and_the_others_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let a = BlobCache::new(b"TESTFMT1");
        a.put([1; 32], Arc::from(&b"<p>first body</p>"[..]));
        a.put([2; 32], Arc::from(&b"<p>second body</p>"[..]));
        a.save(&path).unwrap();
        // One byte of the first entry's value flipped: still a well-formed file.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(5)
            .position(|w| w == b"first")
            .expect("the value is in the file");
        bytes[at] = b'X';
        std::fs::write(&path, &bytes).unwrap();
        let b = BlobCache::new(b"TESTFMT1");
        b.load(&path);
        assert!(b.get(&[1; 32]).is_none(), "a damaged entry was served");
        assert_eq!(&*b.get(&[2; 32]).unwrap(), b"<p>second body</p>");
        // A file without the checked layout (an older folio's) is an empty cache.
        std::fs::write(&path, b"TESTFMT1").unwrap();
        let c = BlobCache::new(b"TESTFMT1");
        c.load(&path);
        assert!(c.get(&[2; 32]).is_none());
    }
}
