//! The `SessionLimiter` Durable Object: the cap on concurrent terminal sessions.

use worker::{Env, Request, Response, State};

use crate::runtime::exec_schema;
use folio_edge::limits::{self, LeaseOutcome, LeaseRequest};

#[derive(serde::Deserialize)]
struct LeaseCounts {
    total: u64,
    mine: u64,
}

/// The cap on concurrent terminal sessions (one SQLite-backed Durable Object named
/// `"global"`). See [`crate::limits`].
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
            } => {
                let now = now as i64;
                sql.exec(limits::SQL_EXPIRE, vec![now.into()])?;
                let counts: LeaseCounts = sql
                    .exec(limits::SQL_COUNT, vec![visitor.clone().into()])?
                    .one()?;
                let outcome = limits::decide(counts.total, counts.mine, max_total, max_per_visitor);
                if outcome == LeaseOutcome::Granted {
                    sql.exec(
                        limits::SQL_INSERT,
                        vec![id.into(), visitor.into(), (now + ttl as i64).into()],
                    )?;
                }
                outcome
            }
            LeaseRequest::Release { id } => {
                sql.exec(limits::SQL_DELETE, vec![id.into()])?;
                LeaseOutcome::Granted
            }
        };
        Response::from_json(&outcome)
    }
}
