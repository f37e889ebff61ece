//! Limits: the per-visitor request rate (Cloudflare's rate-limit bindings, configured in
//! `wrangler.toml`) and the cap on concurrent terminal sessions (a Durable Object, since
//! a rate limit cannot count things that are still open).
//!
//! The session cap is one Durable Object (`SessionLimiter`, named `"global"`) holding
//! *leases* in SQLite: one row per open session with the visitor key and an expiry. The
//! relay takes a lease before it connects and returns it when either side closes. A lease
//! the Worker never returned (an evicted isolate) expires after the longest a session may
//! last, which the relay enforces, so the cap heals by itself.

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

/// Creates the limiter's table. Idempotent.
pub const SQL_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, visitor TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS leases_visitor ON leases (visitor);";

/// Drops expired leases. Binds: now (Unix seconds).
pub const SQL_EXPIRE: &str = "DELETE FROM leases WHERE expires <= ?";
/// Counts all leases, and the visitor's. Binds: visitor.
pub const SQL_COUNT: &str =
    "SELECT COUNT(*) AS total, COALESCE(SUM(visitor = ?), 0) AS mine FROM leases";
/// Takes a lease. Binds: id, visitor, expires.
pub const SQL_INSERT: &str = "INSERT INTO leases (id, visitor, expires) VALUES (?, ?, ?)";
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
        /// Visitor key, hex.
        visitor: String,
        /// Unix seconds now (the Worker's clock).
        now: u64,
        /// How long the lease lives if never released.
        ttl: u64,
        /// Cap on all sessions.
        max_total: u32,
        /// Cap on this visitor's sessions.
        max_per_visitor: u32,
    },
    /// Return a lease.
    Release {
        /// The id given at acquisition.
        id: String,
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
}

/// The cap rule: may one more session start, given the open sessions in total and the
/// visitor's? The visitor's cap is checked first so a greedy visitor is told it is them.
pub fn decide(total: u64, mine: u64, max_total: u32, max_per_visitor: u32) -> LeaseOutcome {
    if mine >= u64::from(max_per_visitor) {
        LeaseOutcome::VisitorCap
    } else if total >= u64::from(max_total) {
        LeaseOutcome::GlobalCap
    } else {
        LeaseOutcome::Granted
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        assert_eq!(decide(0, 0, 2, 1), LeaseOutcome::Granted);
        assert_eq!(decide(1, 1, 2, 1), LeaseOutcome::VisitorCap);
        assert_eq!(decide(2, 0, 2, 1), LeaseOutcome::GlobalCap);
        assert_eq!(decide(5, 5, 2, 1), LeaseOutcome::VisitorCap);
        assert_eq!(decide(0, 0, 0, 0), LeaseOutcome::VisitorCap);
    }

    #[test]
    fn refusals_are_429_with_retry_after() {
        assert!(LeaseOutcome::Granted.refusal().is_none());
        for o in [LeaseOutcome::GlobalCap, LeaseOutcome::VisitorCap] {
            let e = o.refusal().unwrap();
            assert_eq!(e.status, 429);
            assert_eq!(e.retry_after, Some(SESSION_RETRY_AFTER_SECS));
        }
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
    }
}
