//! The `SessionLimiter` Durable Object: the cap on concurrent terminal sessions.

use worker::{Env, Request, Response, State};

use crate::runtime::exec_schema;
use folio_edge::limits::{self, LeaseOutcome, LeaseRequest};

#[derive(serde::Deserialize)]
struct LeaseCounts {
    total: u64,
    mine: u64,
    starts: u64,
    oldest_start: u64,
}

/// The caps on terminal sessions, concurrent (in total and per client) and started per
/// minute (one SQLite-backed Durable Object named `"global"`). See `folio_edge::limits`.
pub struct SessionLimiter {
    state: State,
}

impl SessionLimiter {
    /// The object, as the runtime constructs it (`DurableObject::new` of the deployable crate).
    pub fn new(state: State, _env: Env) -> Self {
        exec_schema(&state, limits::SQL_SCHEMA);
        Self { state }
    }

    /// One lease request (`DurableObject::fetch` of the deployable crate).
    pub async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let msg: LeaseRequest = req.json().await?;
        let sql = self.state.storage().sql();
        // No await between counting and inserting: the check and the lease are atomic.
        let outcome = match msg {
            LeaseRequest::Acquire {
                id,
                visitor,
                now,
                ttl,
                max_total,
                max_per_visitor,
                max_starts_per_minute,
            } => {
                let caps = limits::Caps {
                    max_total,
                    max_per_visitor,
                    max_starts_per_minute,
                };
                let window_start = now.saturating_sub(limits::START_WINDOW_SECS) as i64;
                let now_i = now as i64;
                sql.exec(limits::SQL_EXPIRE, vec![now_i.into()])?;
                sql.exec(limits::SQL_FORGET_STARTS, vec![window_start.into()])?;
                let c: LeaseCounts = sql
                    .exec(limits::SQL_COUNT, vec![visitor.clone().into()])?
                    .one()?;
                let counts = limits::Counts {
                    total: c.total,
                    mine: c.mine,
                    starts: c.starts,
                    oldest_start: c.oldest_start,
                };
                let outcome = limits::decide(counts, caps, now);
                if outcome == LeaseOutcome::Granted {
                    sql.exec(
                        limits::SQL_INSERT,
                        vec![id.into(), visitor.into(), (now_i + ttl as i64).into()],
                    )?;
                    sql.exec(limits::SQL_RECORD_START, vec![now_i.into()])?;
                }
                outcome
            }
            LeaseRequest::Probe { now, max_total } => {
                sql.exec(limits::SQL_EXPIRE, vec![(now as i64).into()])?;
                let c: LeaseCounts = sql
                    .exec(limits::SQL_COUNT, vec![String::new().into()])?
                    .one()?;
                if c.total >= u64::from(max_total) {
                    LeaseOutcome::GlobalCap
                } else {
                    LeaseOutcome::Granted
                }
            }
            LeaseRequest::Release { id } => {
                sql.exec(limits::SQL_DELETE, vec![id.into()])?;
                LeaseOutcome::Granted
            }
        };
        Response::from_json(&outcome)
    }
}
