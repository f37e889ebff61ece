//! The single-use half of token checking: a token's signature proves the Worker minted it,
//! this cache proves it is used once. A nonce is remembered until its token expires, after
//! which the token is refused as expired anyway, so memory stays bounded by the rate at
//! which the Worker mints tokens times [`terminal_protocol::MAX_TOKEN_TTL_SECS`].
//!
//! **Across restarts.** With a state directory (`--state-dir`, systemd's `StateDirectory=`),
//! each nonce is appended to `<state>/used-nonces` (a line `<expires> <nonce in hex>`)
//! *before* its session is accepted, and the file is read back at start: a restart does not
//! reopen the replay window of the tokens used before it. The file is compacted (expired
//! lines dropped) at start and every [`COMPACT_EVERY`] appends. Appends and compaction hold
//! an exclusive `flock` on `<state>/used-nonces.lock`, so origins sharing the directory do
//! not lose each other's lines; but each reads the others' nonces only when it starts (the
//! cache is not shared between origins running at the same time). A failed append refuses
//! the token (fail closed).
//!
//! Without a state directory the cache lives in memory only, and a restart forgets it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use terminal_protocol::NONCE_LEN;

/// The file of used nonces in the state directory.
pub const NONCES_FILE: &str = "used-nonces";
const LOCK_FILE: &str = "used-nonces.lock";
/// Appends between two compactions of the file.
pub const COMPACT_EVERY: usize = 4096;

type Nonce = [u8; NONCE_LEN];

/// Nonces seen, with the expiry of the token that carried them.
#[derive(Default)]
pub struct ReplayCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    seen: HashMap<Nonce, u64>,
    store: Option<Store>,
}

/// The append-only file behind a persistent cache.
struct Store {
    dir: PathBuf,
    lock: File,
    appended: usize,
}

/// An exclusive `flock` held until dropped.
struct Locked<'a>(&'a File);

impl<'a> Locked<'a> {
    fn new(f: &'a File) -> io::Result<Self> {
        // SAFETY: flock(2) on a descriptor this struct borrows for its whole life.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(f))
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: as above; unlocking cannot affect memory safety.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn open_private(path: &Path, append: bool) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(append)
        .write(!append)
        .truncate(!append)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn parse_line(line: &str) -> Option<(Nonce, u64)> {
    let (expires, hex) = line.split_once(' ')?;
    let expires = expires.parse().ok()?;
    if hex.len() != NONCE_LEN * 2 {
        return None;
    }
    let mut nonce = [0u8; NONCE_LEN];
    for (i, b) in nonce.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((nonce, expires))
}

fn line(nonce: &Nonce, expires: u64) -> String {
    format!("{expires} {}\n", terminal_protocol::hex(nonce))
}

impl Store {
    /// Reads the file (under the lock), keeps what has not expired, and rewrites it with
    /// only that. A torn last line (a crash mid-append) is skipped.
    fn compact(&mut self, now: u64) -> io::Result<HashMap<Nonce, u64>> {
        let _locked = Locked::new(&self.lock)?;
        let path = self.dir.join(NONCES_FILE);
        let mut text = String::new();
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(mut f) => {
                f.read_to_string(&mut text)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let live: HashMap<Nonce, u64> = text
            .lines()
            .filter_map(parse_line)
            .filter(|(_, exp)| *exp > now)
            .collect();
        let tmp = self.dir.join(format!("{NONCES_FILE}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = open_private(&tmp, false)?;
        let body: String = live.iter().map(|(n, e)| line(n, *e)).collect();
        f.write_all(body.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        self.appended = 0;
        Ok(live)
    }

    fn append(&mut self, nonce: &Nonce, expires: u64, now: u64) -> io::Result<()> {
        if self.appended >= COMPACT_EVERY {
            self.compact(now)?;
        }
        let _locked = Locked::new(&self.lock)?;
        let mut f = open_private(&self.dir.join(NONCES_FILE), true)?;
        f.write_all(line(nonce, expires).as_bytes())?;
        self.appended += 1;
        Ok(())
    }
}

impl ReplayCache {
    /// A cache in memory only: a restart forgets every nonce.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// A cache persisted in `dir` (created 0700 if missing), loaded with the nonces whose
    /// tokens are still live at `now`.
    pub fn persistent(dir: &Path, now: u64) -> io::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let lock = open_private(&dir.join(LOCK_FILE), true)?;
        let mut store = Store {
            dir: dir.to_path_buf(),
            lock,
            appended: 0,
        };
        let seen = store.compact(now)?;
        Ok(Self {
            inner: Mutex::new(Inner {
                seen,
                store: Some(store),
            }),
        })
    }

    /// Records `nonce` and returns true if it had not been seen (the token may be used),
    /// false if it is a replay. Forgets nonces whose tokens expired before `now`. With a
    /// store, the nonce is on disk before this returns true; an error means it could not be
    /// recorded, and the token must be refused.
    pub fn first_use(&self, nonce: Nonce, expires: u64, now: u64) -> io::Result<bool> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.seen.len() >= 1024 {
            inner.seen.retain(|_, exp| *exp > now);
        }
        if inner.seen.get(&nonce).is_some_and(|exp| *exp > now) {
            return Ok(false);
        }
        // Remembered before it is written: a token whose write failed stays refused.
        inner.seen.insert(nonce, expires);
        if let Some(store) = inner.store.as_mut() {
            store.append(&nonce, expires, now)?;
        }
        Ok(true)
    }

    /// Number of nonces remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether used nonces survive a restart.
    pub fn is_persistent(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .store
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_refused() {
        let c = ReplayCache::in_memory();
        assert!(c.first_use([1; 16], 100, 50).unwrap());
        assert!(!c.first_use([1; 16], 100, 51).unwrap());
        assert!(c.first_use([2; 16], 100, 51).unwrap());
    }

    #[test]
    fn expired_entries_are_forgotten() {
        let c = ReplayCache::in_memory();
        for i in 0..1024u32 {
            let mut n = [0u8; 16];
            n[..4].copy_from_slice(&i.to_le_bytes());
            assert!(c.first_use(n, 10, 5).unwrap());
        }
        assert_eq!(c.len(), 1024);
        assert!(c.first_use([0xff; 16], 100, 20).unwrap());
        assert_eq!(c.len(), 1);
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "folio-pty-replay-{}-{tag}-{}",
            std::process::id(),
            crate::secret::session_id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn used_nonces_survive_a_restart_until_they_expire() {
        let dir = temp_dir("restart");
        let c = ReplayCache::persistent(&dir, 50).unwrap();
        assert!(c.is_persistent());
        assert!(c.first_use([1; 16], 100, 50).unwrap());
        assert!(c.first_use([2; 16], 60, 50).unwrap());
        drop(c);
        // The same process starting again (or another one on the same directory).
        let c = ReplayCache::persistent(&dir, 55).unwrap();
        assert!(
            !c.first_use([1; 16], 100, 55).unwrap(),
            "replayed after restart"
        );
        assert!(!c.first_use([2; 16], 60, 55).unwrap());
        assert!(c.first_use([3; 16], 100, 55).unwrap());
        drop(c);
        // Later, the expired line is dropped when the file is compacted at start.
        let c = ReplayCache::persistent(&dir, 70).unwrap();
        assert_eq!(c.len(), 2);
        let text = std::fs::read_to_string(dir.join(NONCES_FILE)).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains(&terminal_protocol::hex(&[2; 16])), "{text}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join(NONCES_FILE))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_or_foreign_line_is_skipped() {
        let dir = temp_dir("torn");
        std::fs::create_dir_all(&dir).unwrap();
        let good = line(&[7; 16], 100);
        std::fs::write(
            dir.join(NONCES_FILE),
            format!(
                "{good}junk\n99 abc\n100 {}",
                &terminal_protocol::hex(&[8; 16])[..10]
            ),
        )
        .unwrap();
        let c = ReplayCache::persistent(&dir, 50).unwrap();
        assert_eq!(c.len(), 1);
        assert!(!c.first_use([7; 16], 100, 50).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_file_is_compacted_as_it_grows() {
        let dir = temp_dir("compact");
        let c = ReplayCache::persistent(&dir, 10).unwrap();
        for i in 0..(COMPACT_EVERY as u32 + 10) {
            let mut n = [0u8; 16];
            n[..4].copy_from_slice(&i.to_le_bytes());
            // The first half expires at 20; the rest live on.
            let exp = if (i as usize) < COMPACT_EVERY / 2 {
                20
            } else {
                1000
            };
            let now = if (i as usize) < COMPACT_EVERY { 10 } else { 30 };
            assert!(c.first_use(n, exp, now).unwrap());
        }
        let lines = std::fs::read_to_string(dir.join(NONCES_FILE))
            .unwrap()
            .lines()
            .count();
        assert_eq!(lines, COMPACT_EVERY / 2 + 10);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
