//! Limits: the per-client request rate (Cloudflare's rate-limit bindings, configured in
//! `wrangler.toml`), the cap on concurrent terminal sessions (a Durable Object, since a
//! rate limit cannot count things that are still open) and the global cap on session
//! starts per minute.
//!
//! Every limit is keyed on the client's *address key* ([`crate::visitor::address_key`]:
//! IPv4 address or IPv6 /64), never on anything the visitor chooses such as the
//! User-Agent; the fields below named `visitor` hold that key.
//!
//! The session cap is one Durable Object (`SessionLimiter`, named `"global"`) holding
//! *leases* in SQLite: one row per open session with the address key and an expiry. The
//! relay takes a lease before it connects and returns it when either side closes. A lease
//! the Worker never returned (an evicted isolate) expires after the longest a session may
//! last, which the relay enforces, so the cap heals by itself.
//!
//! The same object remembers when each granted session *started* (one row per start, kept
//! for [`START_WINDOW_SECS`]) and refuses new ones once [`decide`]'s start cap is reached,
//! so that however many addresses a botnet has, it can turn the sessions over no faster
//! than the cap: a slot that frees goes to whoever asks first within the budget, and the
//! origin spawns at most that many sandboxes a minute. `folio serve` keeps the same two
//! tables in memory ([`StartLog`]) and asks the same [`decide`].

use crate::api::ApiError;
use serde::{Deserialize, Serialize};

/// How long a refused terminal visitor should wait: sessions end at unpredictable times,
/// so this is a polite guess rather than a promise.
pub const SESSION_RETRY_AFTER_SECS: u64 = 30;

/// The 429 for a visitor over the API rate limit.
pub fn api_rate_limited(period_secs: u64) -> ApiError {
    ApiError::too_many("rate_limited", "too many requests; slow down", period_secs)
}

/// The 429 for a visitor opening terminals too fast.
pub fn terminal_rate_limited(period_secs: u64) -> ApiError {
    ApiError::too_many(
        "rate_limited",
        "too many terminal sessions started; wait a little",
        period_secs,
    )
}

/// The window of the start cap: starts are counted over the last this many seconds.
pub const START_WINDOW_SECS: u64 = 60;

/// Creates the limiter's tables. Idempotent.
pub const SQL_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, visitor TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS leases_visitor ON leases (visitor);
CREATE TABLE IF NOT EXISTS starts (at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS starts_at ON starts (at);";

/// Drops expired leases. Binds: now (Unix seconds).
pub const SQL_EXPIRE: &str = "DELETE FROM leases WHERE expires <= ?";
/// Drops starts that left the window. Binds: now − [`START_WINDOW_SECS`].
pub const SQL_FORGET_STARTS: &str = "DELETE FROM starts WHERE at <= ?";
/// Counts all leases, the visitor's, the starts in the window and the oldest of them.
/// Binds: visitor.
pub const SQL_COUNT: &str = "SELECT \
(SELECT COUNT(*) FROM leases) AS total, \
(SELECT COALESCE(SUM(visitor = ?), 0) FROM leases) AS mine, \
(SELECT COUNT(*) FROM starts) AS starts, \
(SELECT COALESCE(MIN(at), 0) FROM starts) AS oldest_start";
/// Takes a lease. Binds: id, visitor, expires.
pub const SQL_INSERT: &str = "INSERT INTO leases (id, visitor, expires) VALUES (?, ?, ?)";
/// Records a start. Binds: now.
pub const SQL_RECORD_START: &str = "INSERT INTO starts (at) VALUES (?)";
/// Returns a lease. Binds: id.
pub const SQL_DELETE: &str = "DELETE FROM leases WHERE id = ?";

/// A request to the limiter object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LeaseRequest {
    /// Take a lease for `visitor` if both caps allow it.
    Acquire {
        /// Lease id: random, chosen by the Worker.
        id: String,
        /// The client's address key, hex ([`crate::visitor::address_key`]).
        visitor: String,
        /// Unix seconds now (the Worker's clock).
        now: u64,
        /// How long the lease lives if never released.
        ttl: u64,
        /// Cap on all sessions.
        max_total: u32,
        /// Cap on this visitor's sessions.
        max_per_visitor: u32,
        /// Cap on sessions started (by anyone) in the last [`START_WINDOW_SECS`].
        max_starts_per_minute: u32,
    },
    /// Return a lease.
    Release {
        /// The id given at acquisition.
        id: String,
    },
    /// Whether the site-wide cap would let one more session start now (for
    /// `/api/terminal/status`): [`LeaseOutcome::GlobalCap`] when it is full, else
    /// [`LeaseOutcome::Granted`]. Takes nothing.
    Probe {
        /// Unix seconds now (expired leases are forgotten first).
        now: u64,
        /// Cap on all sessions.
        max_total: u32,
    },
}

/// The limiter's answer to [`LeaseRequest::Acquire`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LeaseOutcome {
    /// The lease is taken.
    Granted,
    /// Refused: the whole site is at its cap.
    GlobalCap,
    /// Refused: this visitor is at their cap.
    VisitorCap,
    /// Refused: the site started as many sessions as it may in the last minute.
    StartCap {
        /// Seconds until the oldest start in the window leaves it.
        retry_after: u64,
    },
}

/// What the limiter knows when a session asks to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Open sessions (leases), everyone's.
    pub total: u64,
    /// Open sessions of this client.
    pub mine: u64,
    /// Sessions started in the last [`START_WINDOW_SECS`].
    pub starts: u64,
    /// When the oldest of those started (Unix seconds; ignored when `starts` is 0).
    pub oldest_start: u64,
}

/// The caps a session start is checked against ([`crate::config::Settings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Open sessions in total.
    pub max_total: u32,
    /// Open sessions per client (address).
    pub max_per_visitor: u32,
    /// Sessions started per [`START_WINDOW_SECS`], everyone's.
    pub max_starts_per_minute: u32,
}

/// The cap rule: may one more session start now? The client's own cap is checked first so
/// a greedy client is told it is them; then the concurrent cap; then the start cap, whose
/// refusal says when the oldest start leaves the window.
pub fn decide(c: Counts, caps: Caps, now: u64) -> LeaseOutcome {
    if c.mine >= u64::from(caps.max_per_visitor) {
        LeaseOutcome::VisitorCap
    } else if c.total >= u64::from(caps.max_total) {
        LeaseOutcome::GlobalCap
    } else if c.starts >= u64::from(caps.max_starts_per_minute) {
        let frees_at = c.oldest_start.saturating_add(START_WINDOW_SECS);
        LeaseOutcome::StartCap {
            retry_after: frees_at.saturating_sub(now).clamp(1, START_WINDOW_SECS),
        }
    } else {
        LeaseOutcome::Granted
    }
}

/// The starts of the last [`START_WINDOW_SECS`], in memory: `folio serve`'s stand-in for
/// the `starts` table of the `SessionLimiter` object.
#[derive(Debug, Default)]
pub struct StartLog {
    at: std::collections::VecDeque<u64>,
}

impl StartLog {
    /// Forgets starts that left the window and returns the counts [`decide`] needs.
    pub fn window(&mut self, now: u64) -> (u64, u64) {
        let cutoff = now.saturating_sub(START_WINDOW_SECS);
        while self.at.front().is_some_and(|&t| t <= cutoff) {
            self.at.pop_front();
        }
        (self.at.len() as u64, self.at.front().copied().unwrap_or(0))
    }

    /// Records a granted start.
    pub fn record(&mut self, now: u64) {
        self.at.push_back(now);
    }
}

impl LeaseOutcome {
    /// The error to answer with, or `None` when granted.
    pub fn refusal(&self) -> Option<ApiError> {
        match self {
            Self::Granted => None,
            Self::GlobalCap => Some(ApiError::too_many(
                "sessions_full",
                "all terminal sessions are in use; try again shortly",
                SESSION_RETRY_AFTER_SECS,
            )),
            Self::VisitorCap => Some(ApiError::too_many(
                "too_many_sessions",
                "you already have the maximum number of terminals open",
                SESSION_RETRY_AFTER_SECS,
            )),
            Self::StartCap { retry_after } => Some(ApiError::too_many(
                "too_many_starts",
                "many terminals were started in the last minute; try again shortly",
                *retry_after,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn open(total: u64, mine: u64) -> Counts {
        Counts {
            total,
            mine,
            ..Counts::default()
        }
    }

    fn caps(max_total: u32, max_per_visitor: u32) -> Caps {
        Caps {
            max_total,
            max_per_visitor,
            max_starts_per_minute: 100,
        }
    }

    #[test]
    fn caps_on_open_sessions() {
        assert_eq!(decide(open(0, 0), caps(2, 1), NOW), LeaseOutcome::Granted);
        assert_eq!(
            decide(open(1, 1), caps(2, 1), NOW),
            LeaseOutcome::VisitorCap
        );
        assert_eq!(decide(open(2, 0), caps(2, 1), NOW), LeaseOutcome::GlobalCap);
        assert_eq!(
            decide(open(5, 5), caps(2, 1), NOW),
            LeaseOutcome::VisitorCap
        );
        assert_eq!(
            decide(open(0, 0), caps(0, 0), NOW),
            LeaseOutcome::VisitorCap
        );
    }

    /// Threat 2 (issue 11): a global cap on session starts per minute, whoever starts them.
    #[test]
    fn threat2_start_cap_refuses_the_start_over_the_budget_until_the_oldest_leaves() {
        let caps = Caps {
            max_total: 20,
            max_per_visitor: 2,
            max_starts_per_minute: 3,
        };
        // Every start from a new address, each session already over: only starts count.
        let mut log = StartLog::default();
        for i in 0..3 {
            let (starts, oldest_start) = log.window(NOW + i);
            let c = Counts {
                starts,
                oldest_start,
                ..Counts::default()
            };
            assert_eq!(decide(c, caps, NOW + i), LeaseOutcome::Granted, "start {i}");
            log.record(NOW + i);
        }
        let at = NOW + 10;
        let (starts, oldest_start) = log.window(at);
        assert_eq!((starts, oldest_start), (3, NOW));
        let c = Counts {
            starts,
            oldest_start,
            ..Counts::default()
        };
        // The oldest start (NOW) leaves the window at NOW + 60: 50 s from now.
        assert_eq!(
            decide(c, caps, at),
            LeaseOutcome::StartCap { retry_after: 50 }
        );
        let e = decide(c, caps, at).refusal().unwrap();
        assert_eq!(
            (e.status, e.code, e.retry_after),
            (429, "too_many_starts", Some(50))
        );
        // The client's own cap and the concurrent cap still speak first.
        let busy = Counts { mine: 2, ..c };
        assert_eq!(decide(busy, caps, at), LeaseOutcome::VisitorCap);
        // At NOW + 60 the first start has left the window: one more may start.
        let (starts, oldest_start) = log.window(NOW + START_WINDOW_SECS);
        assert_eq!((starts, oldest_start), (2, NOW + 1));
        let c = Counts {
            starts,
            oldest_start,
            ..Counts::default()
        };
        assert_eq!(decide(c, caps, NOW + 60), LeaseOutcome::Granted);
        // Retry-After is between 1 s and the window, whatever the clocks say.
        let stale = Counts {
            starts: 3,
            oldest_start: NOW - 1_000,
            ..Counts::default()
        };
        assert_eq!(
            decide(stale, caps, NOW),
            LeaseOutcome::StartCap { retry_after: 1 }
        );
        let future = Counts {
            oldest_start: NOW + 1_000,
            ..stale
        };
        assert_eq!(
            decide(future, caps, NOW),
            LeaseOutcome::StartCap { retry_after: 60 }
        );
    }

    #[test]
    fn refusals_are_429_with_retry_after() {
        assert!(LeaseOutcome::Granted.refusal().is_none());
        for o in [LeaseOutcome::GlobalCap, LeaseOutcome::VisitorCap] {
            let e = o.refusal().unwrap();
            assert_eq!(e.status, 429);
            assert_eq!(e.retry_after, Some(SESSION_RETRY_AFTER_SECS));
        }
        let e = LeaseOutcome::StartCap { retry_after: 12 }
            .refusal()
            .unwrap();
        assert_eq!((e.status, e.retry_after), (429, Some(12)));
        let e = api_rate_limited(60);
        assert_eq!((e.status, e.retry_after), (429, Some(60)));
    }

    #[test]
    fn lease_messages_are_tagged_json() {
        let r = LeaseRequest::Release { id: "x".into() };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"op":"release","id":"x"}"#
        );
        let o: LeaseOutcome = serde_json::from_str(r#"{"result":"visitor_cap"}"#).unwrap();
        assert_eq!(o, LeaseOutcome::VisitorCap);
        assert_eq!(
            serde_json::to_string(&LeaseOutcome::StartCap { retry_after: 7 }).unwrap(),
            r#"{"result":"start_cap","retry_after":7}"#
        );
    }
}
