//! Content-addressed caches kept between builds under `.folio/cache/`: highlighted code blocks
//! and rendered pages, each entry keyed by a hash of everything that produced it, so a hit is
//! always exactly what rendering again would give.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};

use folio_content::diagnostics::{Diagnostic, Diagnostics};

use crate::spill::{Span, Spill};

/// Where every cache warning points: the folder, since the files in it are folio's own.
const CACHE_SHOWN: &str = ".folio/cache";

/// The warning that `what` (`the page cache`, `a resized image`) could not be saved under
/// `.folio/cache`: a build is complete without it. Every cache says it this way, the shape
/// [`fold_save_warnings`] reads back.
pub(crate) fn save_warning(what: &str, e: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::warning(CACHE_SHOWN, None, format!("{SAVE_PREFIX}{what}: {e}"))
}

/// How a [`save_warning`] begins.
const SAVE_PREFIX: &str = "cannot save ";

/// Every warning that something could not be saved under `.folio/cache`, folded into one.
/// They share a cause (the folder cannot be written, the disk is full) and change nothing
/// in the output: the next build redoes the work. One line per cache and per resized image
/// would bury the build's other messages.
pub(crate) fn fold_save_warnings(diags: Diagnostics) -> Diagnostics {
    let is_save = |d: &Diagnostic| {
        !d.is_error() && d.path == Path::new(CACHE_SHOWN) && d.message.starts_with(SAVE_PREFIX)
    };
    if diags.iter().filter(|d| is_save(d)).count() < 2 {
        return diags;
    }
    let (mut whats, mut images, mut causes) = (Vec::<String>::new(), 0, Vec::<String>::new());
    let mut folded = Vec::new();
    // Where the first one was: the folded warning goes there.
    let mut at = None;
    for d in diags {
        if !is_save(&d) {
            folded.push(d);
            continue;
        }
        let rest = &d.message[SAVE_PREFIX.len()..];
        let (what, detail) = rest.split_once(": ").unwrap_or((rest, ""));
        if what == "a resized image" {
            images += 1;
        } else if !whats.iter().any(|w| w == what) {
            whats.push(what.to_string());
        }
        // The error itself ends the message, after the file it names, if any.
        let cause = detail.rsplit(": ").next().unwrap_or(detail).to_string();
        if !causes.contains(&cause) {
            causes.push(cause);
        }
        at.get_or_insert(folded.len());
    }
    match images {
        0 => {}
        1 => whats.push("a resized image".into()),
        n => whats.push(format!("{n} resized images")),
    }
    let list = match whats.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, init)) => format!("{} and {last}", init.join(", ")),
        None => String::new(),
    };
    let cause = match causes.as_slice() {
        [one] => one.clone(),
        [first, ..] => format!("{first} (and other errors)"),
        [] => String::new(),
    };
    let message = format!(
        "{SAVE_PREFIX}{list}: {cause}; the build is complete, and the next one will redo this work"
    );
    folded.insert(
        at.unwrap_or(0),
        Diagnostic::warning(CACHE_SHOWN, None, message),
    );
    let mut all = Diagnostics::new();
    all.extend(folded);
    all
}

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

/// A map from input hash to output bytes, loadable from and savable to one file, that holds
/// neither in memory: the previous file is only indexed (each entry's key, offset, length and
/// check) and an entry read from it when asked for; the entries this build computes go to an
/// unnamed spill file beside the cache file (in memory only for a cache without a file). At
/// 10,000 pages the markdown, highlight and search caches weigh some 300 MB that a build
/// used to hold until they were saved, and a second copy of each file while it was read.
pub(crate) struct BlobCache {
    format: &'static [u8; 8],
    /// The previous file, indexed (set once, when it is read).
    previous: OnceLock<Previous>,
    /// This build's entries.
    fresh: Mutex<Fresh>,
    used: Mutex<HashSet<Key>>,
    hits: AtomicUsize,
    misses: AtomicUsize,
    /// The file to read on first use ([`BlobCache::load_lazily`]), and whether it was.
    source: OnceLock<PathBuf>,
    loaded: Once,
    /// The folder the spill file goes in (the cache file's).
    spill_dir: OnceLock<PathBuf>,
}

/// A cache file read by [`BlobCache::load`]: open, with where each entry's bytes are.
pub(crate) struct Previous {
    pub(crate) file: std::fs::File,
    /// Key → (offset of the bytes, length, check).
    pub(crate) index: HashMap<Key, (u64, u32, [u8; 16])>,
}

/// Where one of this build's entries is.
#[derive(Clone)]
enum Stored {
    /// Held (a cache without a file, or its spill file could not be made).
    Memory(Arc<[u8]>),
    /// In the spill file.
    Spilled(Span),
}

/// This build's entries, and the spill file they are appended to.
#[derive(Default)]
struct Fresh {
    map: HashMap<Key, Stored>,
    /// The spill file (`crate::spill`); `None` before the first entry, and for a cache
    /// without a file.
    spill: Option<Arc<Spill>>,
    /// Making the spill file failed: entries are held in memory.
    no_spill: bool,
}

impl BlobCache {
    /// An empty cache whose files start with `format` (change it when entries change shape).
    pub(crate) fn new(format: &'static [u8; 8]) -> Self {
        BlobCache {
            format,
            previous: OnceLock::new(),
            fresh: Mutex::new(Fresh::default()),
            used: Mutex::new(HashSet::new()),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
            source: OnceLock::new(),
            loaded: Once::new(),
            spill_dir: OnceLock::new(),
        }
    }

    /// Reads `path` (as [`BlobCache::load`]) only when an entry is first looked up or
    /// stored: a build whose every result comes from elsewhere (e.g. code blocks inside
    /// bodies reused whole) never reads the file, and [`BlobCache::save`] then leaves it
    /// as it is.
    pub(crate) fn load_lazily(&self, path: &Path) {
        let _ = self.source.set(path.to_path_buf());
        self.spill_beside(path);
    }

    /// Spills the entries computed from now on to a file in `path`'s folder (the cache file
    /// they will be saved to) instead of holding them.
    pub(crate) fn spill_beside(&self, path: &Path) {
        if let Some(dir) = path.parent() {
            let _ = self.spill_dir.set(dir.to_path_buf());
        }
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

    /// The bytes of `key`: this build's entry, else the previous file's (checked: a damaged
    /// one is `None`).
    fn read(&self, key: &Key) -> Option<Arc<[u8]>> {
        let fresh = self.fresh.lock().expect("cache poisoned");
        match fresh.map.get(key) {
            Some(Stored::Memory(b)) => return Some(b.clone()),
            Some(&Stored::Spilled(span)) => {
                // Read without holding the lock (every render thread looks entries up).
                let spill = fresh.spill.clone()?;
                drop(fresh);
                return spill.get(span).ok().map(Into::into);
            }
            None => {}
        }
        drop(fresh);
        let p = self.previous.get()?;
        let &(at, len, sum) = p.index.get(key)?;
        let mut buf = vec![0; len as usize];
        p.file.read_exact_at(&mut buf, at).ok()?;
        (entry_check(key, &buf) == sum).then(|| buf.into())
    }

    /// The entry for `key`, counted as a hit, or `None` (counted as a miss).
    pub(crate) fn get(&self, key: &Key) -> Option<Arc<[u8]>> {
        self.ensure_loaded();
        let hit = self.read(key);
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
        let mut fresh = self.fresh.lock().expect("cache poisoned");
        let fresh = &mut *fresh;
        if fresh.spill.is_none() && !fresh.no_spill {
            if let Some(dir) = self.spill_dir.get() {
                fresh.spill = Spill::new_in(dir).ok().map(Arc::new);
                fresh.no_spill = fresh.spill.is_none();
            }
        }
        let stored = match fresh.spill.as_ref().map(|s| s.put(&value)) {
            Some(Ok(span)) => Stored::Spilled(span),
            _ => Stored::Memory(value),
        };
        fresh.map.insert(key, stored);
        self.used.lock().expect("cache poisoned").insert(key);
    }

    /// This build's counts.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Indexes a file written by [`BlobCache::save`] (entries are read when asked for); a
    /// missing, old or damaged file is simply an empty cache.
    pub(crate) fn load(&self, path: &Path) {
        self.spill_beside(path);
        if let Ok(prev) = self.index(path) {
            let _ = self.previous.set(prev);
        }
    }

    /// Opens a cache file and reads where its entries are (not the entries).
    fn index(&self, path: &Path) -> std::io::Result<Previous> {
        let mut magic = self.format.to_vec();
        magic.extend_from_slice(LAYOUT);
        index_file(path, &magic)
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
        let fresh = self.fresh.lock().expect("cache poisoned");
        let held = fresh.map.len() + self.previous.get().map_or(0, |p| p.index.len());
        if self.misses.load(Ordering::Relaxed) == 0 && used.len() == held && path.exists() {
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let result = (|| {
            let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            w.write_all(self.format)?;
            w.write_all(LAYOUT)?;
            let mut keys: Vec<&Key> = used.iter().collect();
            keys.sort();
            let mut buf = Vec::new();
            for k in keys {
                let bytes: &[u8] = match (fresh.map.get(k), self.previous.get()) {
                    (Some(Stored::Memory(b)), _) => b,
                    (Some(&Stored::Spilled(span)), _) => {
                        let Some(spill) = &fresh.spill else {
                            continue;
                        };
                        spill.read_into(span, &mut buf)?;
                        &buf
                    }
                    (None, Some(p)) => {
                        let Some(&(at, len, check)) = p.index.get(k) else {
                            continue;
                        };
                        buf.resize(len as usize, 0);
                        p.file.read_exact_at(&mut buf, at)?;
                        if entry_check(k, &buf) != check {
                            continue; // damaged on disk: left out
                        }
                        &buf
                    }
                    (None, None) => continue,
                };
                w.write_all(k)?;
                w.write_all(&(bytes.len() as u32).to_le_bytes())?;
                w.write_all(&entry_check(k, bytes))?;
                w.write_all(bytes)?;
            }
            w.flush()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// Opens a file of checked entries (`magic`, then key, length, check and bytes per entry: the
/// layout of [`BlobCache`] files and of the page store) and reads where its entries are, not
/// the entries; a truncated last entry is left out.
pub(crate) fn index_file(path: &Path, magic: &[u8]) -> std::io::Result<Previous> {
    let file = std::fs::File::open(path)?;
    let total = file.metadata()?.len();
    let mut r = std::io::BufReader::with_capacity(1 << 16, file);
    let mut head = vec![0u8; magic.len()];
    r.read_exact(&mut head)?;
    if head != magic {
        return Err(std::io::Error::other("not this cache's file"));
    }
    let mut index = HashMap::new();
    let mut at = head.len() as u64;
    let entry_head = ENTRY_HEAD as u64;
    while at + entry_head <= total {
        let mut entry = [0u8; ENTRY_HEAD];
        r.read_exact(&mut entry)?;
        let key: Key = entry[..32].try_into().expect("32 bytes");
        let len = u32::from_le_bytes(entry[32..36].try_into().expect("4 bytes"));
        let check: [u8; 16] = entry[36..].try_into().expect("16 bytes");
        at += entry_head;
        if at + u64::from(len) > total {
            break; // a truncated last entry is left out
        }
        index.insert(key, (at, len, check));
        r.seek_relative(i64::from(len))?;
        at += u64::from(len);
    }
    Ok(Previous {
        file: r.into_inner(),
        index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_spill_to_disk_and_read_back_in_the_same_build_and_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/c.bin");
        let a = BlobCache::new(b"TESTFMT1");
        a.spill_beside(&path);
        let big = vec![7u8; 100_000];
        a.put([1; 32], Arc::from(&big[..]));
        a.put([2; 32], Arc::from(&b"two"[..]));
        {
            let fresh = a.fresh.lock().unwrap();
            assert!(fresh.spill.is_some(), "a spill file was made");
            assert!(
                fresh.map.values().all(|s| matches!(s, Stored::Spilled(..))),
                "an entry was held in memory"
            );
        }
        // Read back from the spill file by this build (a block highlighted twice).
        assert_eq!(&*a.get(&[1; 32]).unwrap(), &big[..]);
        assert_eq!(&*a.get(&[2; 32]).unwrap(), b"two");
        a.save(&path).unwrap();
        drop(a);
        // The spill file has no name: only the cache file is left.
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        let b = BlobCache::new(b"TESTFMT1");
        b.load(&path);
        assert_eq!(&*b.get(&[1; 32]).unwrap(), &big[..]);
        b.put([3; 32], Arc::from(&b"three"[..]));
        assert_eq!(&*b.get(&[3; 32]).unwrap(), b"three");
        // Saved over the file it reads the previous entries from.
        b.save(&path).unwrap();
        let c = BlobCache::new(b"TESTFMT1");
        c.load(&path);
        assert_eq!(&*c.get(&[1; 32]).unwrap(), &big[..]);
        assert_eq!(&*c.get(&[3; 32]).unwrap(), b"three");
        assert!(c.get(&[2; 32]).is_none(), "unused by the last build");
        // Without a file, entries are held.
        let d = BlobCache::new(b"TESTFMT1");
        d.put([4; 32], Arc::from(&b"four"[..]));
        assert_eq!(&*d.get(&[4; 32]).unwrap(), b"four");
    }

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
