//! The `ViewCounter` Durable Object: one page's exact view count, written through to KV.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use worker::{Date, Delay, Env, Request, Response, State};

use crate::runtime::{binding, exec_schema, internal};
use folio_edge::counter::{self, VisitOutcome, VisitRequest, WriteThrough};
use folio_edge::routes;
use folio_edge::visitor;

#[derive(serde::Deserialize)]
struct CountRow {
    n: u64,
}

/// One page's exact view count (a SQLite-backed Durable Object, one per page key). See
/// [`crate::counter`] for the rules.
pub struct ViewCounter {
    state: State,
    env: Env,
    write_through: Rc<RefCell<WriteThrough>>,
}

fn read_count(sql: &worker::SqlStorage) -> worker::Result<u64> {
    let rows: Vec<CountRow> = sql.exec(counter::SQL_READ, None)?.to_array()?;
    Ok(rows.first().map_or(0, |r| r.n))
}

/// Writes the count through to KV until KV holds the latest count, at most one write per
/// [`counter::MIN_KV_WRITE_INTERVAL_MS`] (see [`WriteThrough`]). Runs after the response.
async fn flush_to_kv(
    sql: worker::SqlStorage,
    kv: worker::kv::KvStore,
    write_through: Rc<RefCell<WriteThrough>>,
    key: String,
    mut value: u64,
) {
    let mut last_start: Option<u64> = None;
    loop {
        let wait = counter::kv_write_delay_ms(last_start, Date::now().as_millis());
        if wait > 0 {
            Delay::from(Duration::from_millis(wait)).await;
            // Write the newest count, not the one that was current a second ago.
            value = read_count(&sql).unwrap_or(value).max(value);
        }
        last_start = Some(Date::now().as_millis());
        let put = match kv.put(&key, value.to_string()) {
            Ok(p) => p.execute().await,
            Err(e) => Err(e),
        };
        if let Err(e) = put {
            internal("kv_put", e);
            write_through.borrow_mut().failed();
            return;
        }
        let current = match read_count(&sql) {
            Ok(c) => c,
            Err(e) => {
                internal("sql_read", e);
                write_through.borrow_mut().failed();
                return;
            }
        };
        let next = write_through.borrow_mut().landed(value, current);
        match next {
            Some(n) => value = n,
            None => return,
        }
    }
}

impl ViewCounter {
    fn current(&self) -> worker::Result<u64> {
        read_count(&self.state.storage().sql())
    }

    /// Starts a write-through unless one is already running (it will pick this count up).
    fn schedule_flush(&self, slug: &str, value: u64) {
        if !self.write_through.borrow_mut().begin() {
            return;
        }
        let kv = match self.env.kv(binding::VIEWS) {
            Ok(kv) => kv,
            Err(e) => {
                internal("kv_binding", e);
                self.write_through.borrow_mut().failed();
                return;
            }
        };
        self.state.wait_until(flush_to_kv(
            self.state.storage().sql(),
            kv,
            self.write_through.clone(),
            counter::kv_key(slug),
            value,
        ));
    }

    async fn visit(&self, mut req: Request) -> worker::Result<Response> {
        let visit: VisitRequest = req.json().await?;
        if !visitor::is_key_hex(&visit.visitor)
            || visit.day.len() != 10
            || !routes::is_valid_slug(&visit.slug)
        {
            return Response::error("bad visit", 400);
        }
        let sql = self.state.storage().sql();
        // The first visit ever carries the page's count over from its old slug key.
        let first: Vec<serde_json::Value> = sql.exec(counter::SQL_MARK_SEEDED, None)?.to_array()?;
        if !first.is_empty() && visit.seed > 0 {
            let seed = i64::try_from(visit.seed).unwrap_or(i64::MAX);
            sql.exec(
                counter::SQL_ADD_SEED,
                vec![worker::SqlStorageValue::try_from_i64(seed)?],
            )?;
        }
        sql.exec(counter::SQL_FORGET_OLD_DAYS, vec![visit.day.clone().into()])?;
        let new: Vec<serde_json::Value> = sql
            .exec(
                counter::SQL_MARK_SEEN,
                vec![visit.day.into(), visit.visitor.into()],
            )?
            .to_array()?;
        let counted = !new.is_empty();
        let views = if counted {
            let rows: Vec<CountRow> = sql.exec(counter::SQL_INCREMENT, None)?.to_array()?;
            rows.first().map_or(0, |r| r.n)
        } else {
            self.current()?
        };
        if self.write_through.borrow().written() != Some(views) {
            self.schedule_flush(&visit.slug, views);
        }
        Response::from_json(&VisitOutcome { views, counted })
    }
}

impl ViewCounter {
    /// The object, as the runtime constructs it (`DurableObject::new` of the deployable crate).
    pub fn new(state: State, env: Env) -> Self {
        exec_schema(&state, counter::SQL_SCHEMA);
        Self {
            state,
            env,
            write_through: Rc::new(RefCell::new(WriteThrough::default())),
        }
    }

    /// One visit or read (`DurableObject::fetch` of the deployable crate).
    pub async fn fetch(&self, req: Request) -> worker::Result<Response> {
        self.visit(req).await
    }
}
