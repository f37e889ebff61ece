//! The `ContactOutbox` Durable Object: every accepted contact message goes through it, so
//! that a message is sent at most once per form token (the idempotency key) and is kept,
//! and retried by an alarm, when the `send_email` binding fails.

use worker::{EmailMessage, Env, Request, Response, State};

use crate::runtime::{binding, exec_schema, internal, now_unix};
use folio_edge::contact::{self as rules, OutboxOutcome, OutboxSubmit};

#[derive(serde::Deserialize)]
struct Status {
    status: String,
}

#[derive(serde::Deserialize)]
struct Window {
    n: u64,
    oldest: u64,
}

#[derive(serde::Deserialize)]
struct Due {
    key: String,
    raw: String,
    tries: u64,
}

#[derive(serde::Deserialize)]
struct Next {
    next: i64,
}

/// The outbox (one SQLite-backed Durable Object named `"outbox"`).
pub struct ContactOutbox {
    state: State,
    env: Env,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    from: String,
    to: String,
}

async fn send(env: &Env, from: &str, to: &str, raw: &str) -> Result<(), String> {
    let mailer = env
        .send_email(binding::CONTACT_EMAIL)
        .map_err(|e| e.to_string())?;
    let msg = EmailMessage::new(from, to, raw).map_err(|e| format!("{e:?}"))?;
    mailer
        .send(&msg)
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

impl ContactOutbox {
    /// The object, as the runtime constructs it.
    pub fn new(state: State, env: Env) -> Self {
        exec_schema(&state, rules::SQL_SCHEMA);
        exec_schema(
            &state,
            "CREATE TABLE IF NOT EXISTS envelope (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)",
        );
        Self { state, env }
    }

    fn window(&self, sql: &str, binds: Vec<worker::SqlStorageValue>) -> worker::Result<Window> {
        self.state.storage().sql().exec(sql, binds)?.one()
    }

    /// One submission (`DurableObject::fetch` of the deployable crate).
    pub async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let msg: OutboxSubmit = req.json().await?;
        let sql = self.state.storage().sql();
        // No await between the checks and the insert: a retry racing the first request
        // sees the row.
        let found: Vec<Status> = sql
            .exec(rules::SQL_FIND, vec![msg.key.clone().into()])?
            .to_array()?;
        if let Some(s) = found.first() {
            return Response::from_json(&OutboxOutcome::Duplicate {
                pending: s.status != "delivered",
            });
        }
        let now = msg.now as i64;
        let addr = self.window(
            rules::SQL_COUNT_ADDRESS,
            vec![
                msg.address.clone().into(),
                (now - rules::ADDRESS_WINDOW_SECS as i64).into(),
            ],
        )?;
        let day = self.window(
            rules::SQL_COUNT_DAY,
            vec![(now - rules::DAY_WINDOW_SECS as i64).into()],
        )?;
        let limits = rules::ContactManifest {
            per_address_per_hour: msg.per_address_per_hour,
            per_day: msg.per_day,
            ..placeholder_limits()
        };
        if let Some(e) = rules::limit_decision(
            &limits,
            msg.now,
            addr.n,
            (addr.n > 0).then_some(addr.oldest),
            day.n,
            (day.n > 0).then_some(day.oldest),
        ) {
            return Response::from_json(&OutboxOutcome::limited(&e));
        }
        sql.exec(
            rules::SQL_INSERT,
            vec![
                msg.key.clone().into(),
                msg.address.clone().into(),
                now.into(),
                msg.raw.clone().into(),
            ],
        )?;
        sql.exec(
            "INSERT OR REPLACE INTO envelope (id, json) VALUES (1, ?)",
            vec![serde_json::to_string(&Envelope {
                from: msg.from.clone(),
                to: msg.to.clone(),
            })
            .map_err(|e| worker::Error::RustError(e.to_string()))?
            .into()],
        )?;
        sql.exec(
            rules::SQL_PRUNE,
            vec![(now - rules::DAY_WINDOW_SECS as i64).into()],
        )?;
        let outcome = match send(&self.env, &msg.from, &msg.to, &msg.raw).await {
            Ok(()) => {
                sql.exec(rules::SQL_DELIVERED, vec![msg.key.into()])?;
                OutboxOutcome::Delivered
            }
            Err(e) => {
                internal("contact_send", &e);
                self.failed(&msg.key, 0, &e).await?;
                OutboxOutcome::Queued
            }
        };
        Response::from_json(&outcome)
    }

    async fn failed(&self, key: &str, tries: u64, error: &str) -> worker::Result<()> {
        let now = now_unix() as i64;
        let status = if tries + 1 >= rules::MAX_TRIES {
            "failed"
        } else {
            "pending"
        };
        let next = now + rules::retry_delay_secs(tries) as i64;
        self.state.storage().sql().exec(
            rules::SQL_FAILED,
            vec![
                next.into(),
                error.chars().take(500).collect::<String>().into(),
                status.into(),
                key.into(),
            ],
        )?;
        self.schedule().await
    }

    async fn schedule(&self) -> worker::Result<()> {
        let next: Next = self
            .state
            .storage()
            .sql()
            .exec(rules::SQL_NEXT, None)?
            .one()?;
        if next.next > 0 {
            self.state.storage().set_alarm(next.next * 1000).await?;
        }
        Ok(())
    }

    /// Retries what is due (`DurableObject::alarm` of the deployable crate).
    pub async fn alarm(&self) -> worker::Result<Response> {
        let sql = self.state.storage().sql();
        let envelope: Vec<EnvelopeRow> = sql
            .exec("SELECT json FROM envelope WHERE id = 1", None)?
            .to_array()?;
        let Some(env) = envelope
            .first()
            .and_then(|r| serde_json::from_str::<Envelope>(&r.json).ok())
        else {
            return Response::ok("nothing to send");
        };
        let due: Vec<Due> = sql
            .exec(rules::SQL_DUE, vec![(now_unix() as i64).into()])?
            .to_array()?;
        for d in due {
            match send(&self.env, &env.from, &env.to, &d.raw).await {
                Ok(()) => {
                    sql.exec(rules::SQL_DELIVERED, vec![d.key.into()])?;
                }
                Err(e) => {
                    internal("contact_retry", &e);
                    self.failed(&d.key, d.tries, &e).await?;
                }
            }
        }
        self.schedule().await?;
        Response::ok("retried")
    }
}

#[derive(serde::Deserialize)]
struct EnvelopeRow {
    json: String,
}

fn placeholder_limits() -> rules::ContactManifest {
    rules::ContactManifest {
        recipient: String::new(),
        sender: String::new(),
        subject_prefix: String::new(),
        page: String::new(),
        thanks: String::new(),
        min_fill_secs: 0,
        max_age_secs: 0,
        max_links: 0,
        per_address_per_hour: 0,
        per_day: 0,
    }
}
