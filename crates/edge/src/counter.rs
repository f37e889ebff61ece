//! The view counter's rules.
//!
//! * A count belongs to a page, named by its *page key* ([`page_key`]): the page's path
//!   (`/projects/minirt/` → `projects.minirt`), so two pages that share a slug in different
//!   sections never share a count.
//! * One Durable Object per page (named by its page key) holds the exact count in its SQLite
//!   storage. A Durable Object handles one event at a time and its SQL calls are
//!   synchronous, so `UPDATE … SET n = n + 1` cannot lose an increment: KV alone
//!   (get + put) loses most of them under concurrency.
//! * The same object remembers which visitor keys it counted today (see
//!   [`crate::visitor`]), so a visitor counts once per page per UTC day; older keys are
//!   deleted when the day changes.
//! * After counting, the object writes the count through to KV, where reads come from
//!   (KV reads are cheap and cached at the edge; Durable Object calls are not). Writes are
//!   serialised by [`WriteThrough`] so KV never goes backwards, and paced to one per
//!   [`MIN_KV_WRITE_INTERVAL_MS`] because KV accepts at most one write per second to a key:
//!   a burst of visits to one page becomes a few writes, the last one the exact count. They
//!   run after the response (`waitUntil`), so counting never waits for KV. The `POST`
//!   answer carries the exact count; KV (like any KV read) may lag it by about a second.

use serde::{Deserialize, Serialize};

/// Creates the object's tables. Idempotent; run when the object starts.
pub const SQL_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS views (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO views (id, n) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS seen (day TEXT NOT NULL, visitor TEXT NOT NULL, PRIMARY KEY (day, visitor)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seeded (id INTEGER PRIMARY KEY CHECK (id = 1));";

/// Marks the counter as started: returns a row only the first time, when the count carried
/// over from the page's old slug key ([`VisitRequest::seed`]) is added (once, ever).
pub const SQL_MARK_SEEDED: &str =
    "INSERT INTO seeded (id) VALUES (1) ON CONFLICT DO NOTHING RETURNING 1 AS new";

/// Adds the carried-over count. Binds: the count.
pub const SQL_ADD_SEED: &str = "UPDATE views SET n = n + ? WHERE id = 1";

/// Forgets the visitor keys of earlier days. Binds: today.
pub const SQL_FORGET_OLD_DAYS: &str = "DELETE FROM seen WHERE day < ?";

/// Records that a visitor was seen today; returns a row only if they were not already.
/// Binds: today, visitor key.
pub const SQL_MARK_SEEN: &str =
    "INSERT INTO seen (day, visitor) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING 1 AS new";

/// Adds one view and returns the new count.
pub const SQL_INCREMENT: &str = "UPDATE views SET n = n + 1 WHERE id = 1 RETURNING n";

/// Reads the count.
pub const SQL_READ: &str = "SELECT n FROM views WHERE id = 1";

/// Shortest time between two KV writes of one page's count: KV allows one write per
/// second per key.
pub const MIN_KV_WRITE_INTERVAL_MS: u64 = 1_000;

/// How long the flusher must wait before its next write, given when the previous write
/// started: the rest of [`MIN_KV_WRITE_INTERVAL_MS`], or 0.
pub fn kv_write_delay_ms(previous_write_started_ms: Option<u64>, now_ms: u64) -> u64 {
    previous_write_started_ms.map_or(0, |t| (t + MIN_KV_WRITE_INTERVAL_MS).saturating_sub(now_ms))
}

/// The KV key under which a page's count is stored (by page key; before page keys, by slug).
pub fn kv_key(key: &str) -> String {
    format!("views:{key}")
}

/// Longest page key.
pub const MAX_PAGE_KEY_LEN: usize = 128;

/// A page's key for the counter, from its site path: the path's segments joined by `.`
/// (`/projects/minirt/` → `projects.minirt`, `/about/` → `about`), so a top-level page keeps
/// the key it had when counts were kept by slug. A path whose segments are not all slugs
/// (`[a-z0-9][a-z0-9_-]*`), or whose key would be longer than [`MAX_PAGE_KEY_LEN`], gets `_`
/// and 32 hex digits of its SHA-256 instead (no path-derived key starts with `_`, so the two
/// forms never meet).
pub fn page_key(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    let segments: Vec<&str> = trimmed.split('/').collect();
    let key = segments.join(".");
    if !trimmed.is_empty()
        && key.len() <= MAX_PAGE_KEY_LEN
        && segments
            .iter()
            .all(|s| terminal_protocol::is_valid_demo_id(s))
    {
        return key;
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(path.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("_{hex}")
}

/// Whether `key` has the shape of a page key ([`page_key`]): slugs joined by `.`, or `_` and
/// 32 hex digits. Anything else is refused before any storage is touched.
pub fn is_valid_page_key(key: &str) -> bool {
    if let Some(hex) = key.strip_prefix('_') {
        return hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    }
    key.len() <= MAX_PAGE_KEY_LEN && key.split('.').all(terminal_protocol::is_valid_demo_id)
}

/// Parses a count stored in KV. Anything unparsable reads as 0 rather than failing reads
/// (the next counted visit rewrites it from the Durable Object's exact value).
pub fn parse_kv_count(stored: Option<&str>) -> u64 {
    stored.and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// What the Worker asks a page's counter object to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitRequest {
    /// The page's key (the object also knows it by name; sent so the object can write KV).
    pub slug: String,
    /// The visitor's key for today, hex ([`crate::visitor::hex`]).
    pub visitor: String,
    /// Today's UTC date, `YYYY-MM-DD` (the Worker's clock: one source of "today").
    pub day: String,
    /// The count the page had under its old slug key (migration, see
    /// `docs/security-edge.md`): added to the object's count on its first visit only.
    #[serde(default)]
    pub seed: u64,
}

/// What the counter object answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitOutcome {
    /// The exact count after this visit.
    pub views: u64,
    /// Whether this visit was counted (false: already counted today).
    pub counted: bool,
}

/// Serialises the write-through to KV inside one counter object.
///
/// A Durable Object handles one event at a time, but it yields while a KV `put` is in
/// flight, so two requests could each put their own count and land out of order, leaving
/// KV behind the truth. Instead, one request at a time is the *flusher*: it writes the
/// current count, and once that write lands, writes again if the count moved meanwhile.
/// Others just increment and return. A flusher stops only after a write of the count it
/// last saw, and any later increment starts a new one, so KV always ends at the exact
/// count.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteThrough {
    written: Option<u64>,
    flushing: bool,
}

impl WriteThrough {
    /// After an increment: whether this request must become the flusher. If it returns
    /// true, the caller writes the current count and then calls [`Self::landed`].
    pub fn begin(&mut self) -> bool {
        if self.flushing {
            false
        } else {
            self.flushing = true;
            true
        }
    }

    /// A write of `wrote` landed and the count is now `current`: returns the next value
    /// the flusher must write, or `None` when KV is up to date (flushing ends).
    pub fn landed(&mut self, wrote: u64, current: u64) -> Option<u64> {
        self.written = Some(self.written.map_or(wrote, |w| w.max(wrote)));
        if current > wrote {
            Some(current)
        } else {
            self.flushing = false;
            None
        }
    }

    /// A write failed: stop flushing so the next request retries.
    pub fn failed(&mut self) {
        self.flushing = false;
    }

    /// The last count known to be in KV.
    pub fn written(&self) -> Option<u64> {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_keys_follow_the_path_and_differ_where_slugs_collide() {
        assert_eq!(page_key("/projects/minirt/"), "projects.minirt");
        assert_eq!(page_key("/blog/minirt/"), "blog.minirt");
        assert_eq!(
            page_key("/about/"),
            "about",
            "a top-level page keeps its slug"
        );
        assert_eq!(page_key("/a/b/c/"), "a.b.c");
        for p in ["/projects/minirt/", "/about/", "/a/b/c/"] {
            assert!(is_valid_page_key(&page_key(p)), "{p}");
        }
        // Not slug segments, or too long: a hash, still a valid key, stable, distinct.
        let odd = page_key("/Notes/Ünïcode page/");
        assert!(odd.starts_with('_') && odd.len() == 33, "{odd}");
        assert!(is_valid_page_key(&odd));
        assert_eq!(odd, page_key("/Notes/Ünïcode page/"));
        assert_ne!(odd, page_key("/Notes/other/"));
        let long = format!("/{}/{}/", "a".repeat(64), "b".repeat(64));
        assert!(page_key(&long).starts_with('_'));
        assert!(page_key("/").starts_with('_'));
        // Shapes refused.
        for bad in [
            "", ".", "a..b", ".a", "a.", "A", "a/b", "_xyz", "_", "a.é", "-a",
        ] {
            assert!(!is_valid_page_key(bad), "{bad:?}");
        }
        assert!(is_valid_page_key("projects.mini-rt_2"));
    }

    #[test]
    fn kv_keys_and_counts() {
        assert_eq!(kv_key("cv"), "views:cv");
        assert_eq!(parse_kv_count(Some("41")), 41);
        assert_eq!(parse_kv_count(Some("junk")), 0);
        assert_eq!(parse_kv_count(None), 0);
    }

    /// Simulates requests interleaving around slow KV writes: KV must end at the final
    /// count and never be written a smaller value after a larger one.
    #[test]
    fn write_through_never_goes_backwards_and_ends_exact() {
        let mut wt = WriteThrough::default();
        let mut count = 0u64;
        let mut kv_log = Vec::new();
        // Request 1 increments and becomes the flusher.
        count += 1;
        assert!(wt.begin());
        let mut in_flight = count;
        // While its write is in flight, requests 2..=5 increment and return at once.
        for _ in 0..4 {
            count += 1;
            assert!(!wt.begin());
        }
        // The write lands; the count moved, so the flusher writes again.
        kv_log.push(in_flight);
        in_flight = wt.landed(in_flight, count).expect("must write again");
        kv_log.push(in_flight);
        assert_eq!(wt.landed(in_flight, count), None);
        assert_eq!(kv_log, vec![1, 5]);
        assert_eq!(wt.written(), Some(5));
        // The next request flushes again by itself.
        count += 1;
        assert!(wt.begin());
        assert_eq!(wt.landed(count, count), None);
        assert_eq!(wt.written(), Some(6));
    }

    #[test]
    fn kv_writes_are_paced_to_one_per_second() {
        assert_eq!(kv_write_delay_ms(None, 5_000), 0);
        assert_eq!(kv_write_delay_ms(Some(5_000), 5_200), 800);
        assert_eq!(kv_write_delay_ms(Some(5_000), 6_000), 0);
        assert_eq!(kv_write_delay_ms(Some(5_000), 9_000), 0);
    }

    #[test]
    fn a_failed_write_lets_the_next_request_retry() {
        let mut wt = WriteThrough::default();
        assert!(wt.begin());
        wt.failed();
        assert!(wt.begin());
    }

    #[test]
    fn visit_messages_round_trip() {
        let r = VisitRequest {
            slug: "cv".into(),
            visitor: "ab".repeat(32),
            day: "2026-11-22".into(),
            seed: 7,
        };
        let back: VisitRequest = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
