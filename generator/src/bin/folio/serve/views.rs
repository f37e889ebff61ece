//! The local view counter: what the Worker's per-page Durable Objects do, on disk under
//! `<root>/.folio/state`, so counts survive a restart of `folio serve`.
//!
//! The Worker gives each page its own SQLite-backed Durable Object and runs
//! `folio_edge::counter`'s SQL against it. Here each page gets its own SQLite file
//! (`views/<page key>.sqlite`; a page key is slugs joined by `.`, or `_` and hex digits
//! (`folio_edge::counter::page_key`), so it is a safe file name) and
//! the very same statements run against it, unchanged, in the same order as the Durable
//! Object's `visit`. The one difference: reads come straight from the file (exact), where
//! the Worker reads KV, which lags the exact count by about a second.
//!
//! Visitors are keyed as at the edge (`folio_edge::visitor`): a daily salt derived from a
//! secret, over IP and User-Agent. The secret is generated once and kept in
//! `visitor-secret` beside the counters.

use std::collections::HashMap;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use folio_edge::counter::{self, VisitOutcome};
use folio_edge::visitor;
use rusqlite::{Connection, OptionalExtension as _};
use terminal_protocol::{hex, MIN_SECRET_LEN};

use super::ServeError;

/// The counters and the visitor secret.
pub(crate) struct Store {
    dir: PathBuf,
    secret: Vec<u8>,
    open: Mutex<HashMap<String, Connection>>,
}

/// A counter file could not be opened or queried.
#[derive(Debug, thiserror::Error)]
#[error("view counter {path}: {source}")]
pub(crate) struct StoreError {
    path: PathBuf,
    source: rusqlite::Error,
}

/// Reads `n` random bytes from the kernel.
pub(super) fn random_bytes(n: usize) -> std::io::Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// Reads a secret file, or creates it (64 hex digits, mode 0600) when it does not exist.
pub(super) fn secret_file(path: &Path) -> Result<Vec<u8>, ServeError> {
    let err = |message: String| ServeError::State {
        path: path.to_path_buf(),
        message,
    };
    match std::fs::read(path) {
        Ok(b) if b.trim_ascii().len() >= MIN_SECRET_LEN => Ok(b.trim_ascii().to_vec()),
        Ok(_) => Err(err(format!(
            "holds fewer than {MIN_SECRET_LEN} bytes; delete it and a new secret is generated"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let s = hex(&random_bytes(MIN_SECRET_LEN).map_err(|e| err(e.to_string()))?);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| err(e.to_string()))?;
            std::io::Write::write_all(&mut f, s.as_bytes()).map_err(|e| err(e.to_string()))?;
            Ok(s.into_bytes())
        }
        Err(e) => Err(err(e.to_string())),
    }
}

impl Store {
    /// Opens the store in `state` (creating `views/` and the secret as needed).
    pub(crate) fn open(state: &Path) -> Result<Store, ServeError> {
        let dir = state.join("views");
        std::fs::create_dir_all(&dir).map_err(|e| ServeError::State {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        let secret = secret_file(&state.join("visitor-secret"))?;
        Ok(Store {
            dir,
            secret,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Today's key for a visitor, and today (UTC), exactly as the Worker computes them.
    pub(crate) fn visitor(&self, ip: &str, user_agent: &str, now_unix: u64) -> (String, String) {
        let today = visitor::utc_day(now_unix);
        let salt = visitor::daily_salt(&self.secret, &today);
        let key = visitor::hex(&visitor::visitor_key(&salt, ip, user_agent));
        (key, today)
    }

    /// Today's address key for a client (IPv4, or IPv6 /64; no User-Agent): what the caps
    /// count on and the relay signs into the origin's token, exactly as the Worker does.
    pub(crate) fn client(&self, ip: &str, now_unix: u64) -> visitor::VisitorKey {
        let salt = visitor::daily_salt(&self.secret, &visitor::utc_day(now_unix));
        visitor::address_key(&salt, ip)
    }

    fn path(&self, slug: &str) -> PathBuf {
        self.dir.join(format!("{slug}.sqlite"))
    }

    /// Runs `f` on the page's counter, opening it (and creating its tables with the
    /// Worker's schema) on first use.
    fn with<T>(
        &self,
        slug: &str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let path = self.path(slug);
        let wrap = |source| StoreError {
            path: path.clone(),
            source,
        };
        let mut open = self.open.lock().expect("store lock");
        if !open.contains_key(slug) {
            let conn = Connection::open(&path).map_err(wrap)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(wrap)?;
            // Like the Durable Object's constructor (exec_schema in the Worker's glue).
            for stmt in counter::SQL_SCHEMA
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                conn.execute(stmt, []).map_err(wrap)?;
            }
            open.insert(slug.to_string(), conn);
        }
        let conn = open.get_mut(slug).expect("just inserted");
        f(conn).map_err(wrap)
    }

    /// Counts a visit: the Durable Object's `visit`, statement for statement, in one
    /// transaction (the object's single-threadedness, here). `legacy` is the page's old slug
    /// key, whose count the page's first visit carries over (as the Worker does, from KV).
    pub(crate) fn visit(
        &self,
        slug: &str,
        legacy: Option<&str>,
        visitor_key: &str,
        day: &str,
    ) -> Result<VisitOutcome, StoreError> {
        let seed = match legacy {
            Some(old) if old != slug && !self.path(slug).exists() => self.read(old, None)?,
            _ => 0,
        };
        self.with(slug, |conn| {
            let tx = conn.transaction()?;
            let first = tx
                .query_row(counter::SQL_MARK_SEEDED, [], |_| Ok(()))
                .optional()?
                .is_some();
            if first && seed > 0 {
                tx.execute(counter::SQL_ADD_SEED, [seed])?;
            }
            tx.execute(counter::SQL_FORGET_OLD_DAYS, [day])?;
            let counted = tx
                .query_row(counter::SQL_MARK_SEEN, [day, visitor_key], |_| Ok(()))
                .optional()?
                .is_some();
            let views: u64 = if counted {
                tx.query_row(counter::SQL_INCREMENT, [], |r| r.get(0))?
            } else {
                tx.query_row(counter::SQL_READ, [], |r| r.get(0))?
            };
            tx.commit()?;
            Ok(VisitOutcome { views, counted })
        })
    }

    /// A page's count (0 for a page never counted; no file is created for it). A page not
    /// counted under its own key yet reads its old slug key's count (`legacy`), if any.
    pub(crate) fn read(&self, slug: &str, legacy: Option<&str>) -> Result<u64, StoreError> {
        if !self.path(slug).exists() {
            return match legacy {
                Some(old) if old != slug => self.read(old, None),
                _ => Ok(0),
            };
        }
        self.with(slug, |conn| {
            conn.query_row(counter::SQL_READ, [], |r| r.get(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_once_per_visitor_per_day_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let (a, day) = s.visitor("127.0.0.1", "ua-a", 1_800_000_000);
        let (b, _) = s.visitor("127.0.0.1", "ua-b", 1_800_000_000);
        assert_eq!(s.read("p", None).unwrap(), 0);
        assert_eq!(
            s.visit("p", None, &a, &day).unwrap(),
            VisitOutcome {
                views: 1,
                counted: true
            }
        );
        assert!(!s.visit("p", None, &a, &day).unwrap().counted);
        assert_eq!(s.visit("p", None, &b, &day).unwrap().views, 2);
        assert_eq!(s.visit("q", None, &a, &day).unwrap().views, 1);
        // The next day the same person counts again (and yesterday's keys are forgotten).
        let (a2, day2) = s.visitor("127.0.0.1", "ua-a", 1_800_000_000 + 86_400);
        assert_ne!(a, a2);
        assert!(s.visit("p", None, &a2, &day2).unwrap().counted);
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.read("p", None).unwrap(), 3);
        // Same secret after reopening: same key.
        assert_eq!(s.visitor("127.0.0.1", "ua-a", 1_800_000_000).0, a);
    }

    #[test]
    fn a_page_key_carries_its_old_slug_count_over_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let (a, day) = s.visitor("127.0.0.1", "ua-a", 1_800_000_000);
        let (b, _) = s.visitor("127.0.0.1", "ua-b", 1_800_000_000);
        // Counted under the old slug key `tern` (before page keys).
        s.visit("tern", None, &a, &day).unwrap();
        s.visit("tern", None, &b, &day).unwrap();
        // Read under the page key before any visit: the old count.
        assert_eq!(s.read("blog.tern", Some("tern")).unwrap(), 2);
        // The first visit under the page key starts from it; later ones never add it again.
        assert_eq!(
            s.visit("blog.tern", Some("tern"), &a, &day).unwrap().views,
            3
        );
        assert_eq!(
            s.visit("blog.tern", Some("tern"), &b, &day).unwrap().views,
            4
        );
        assert_eq!(s.read("blog.tern", Some("tern")).unwrap(), 4);
        // A page without an old key starts at zero.
        assert_eq!(s.visit("projects.tern", None, &a, &day).unwrap().views, 1);
    }
}
