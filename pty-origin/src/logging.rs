//! One JSON object per line on stderr for every event, so Loki (or `journalctl -o cat | jq`)
//! can index sessions by id without parsing free text.

use serde_json::{Map, Value};

/// Writes one event line: `{"ts":…,"level":…,"event":…,"session":…, …fields}`.
///
/// `fields` should be a JSON object; anything else is stored under `"detail"`. Lines are
/// written with a single `write` call while holding stderr's lock, so concurrent sessions
/// never interleave inside a line.
pub fn event(level: &str, event: &str, session: Option<&str>, fields: Value) {
    let mut obj = Map::new();
    obj.insert(
        "ts".into(),
        Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    obj.insert("level".into(), level.into());
    obj.insert("event".into(), event.into());
    if let Some(id) = session {
        obj.insert("session".into(), id.into());
    }
    match fields {
        Value::Object(map) => obj.extend(map),
        Value::Null => {}
        other => {
            obj.insert("detail".into(), other);
        }
    }
    let mut line = Value::Object(obj).to_string();
    line.push('\n');
    use std::io::Write as _;
    let stderr = std::io::stderr();
    let mut lock = stderr.lock();
    let _ = lock.write_all(line.as_bytes());
}

/// Logs at level `info`.
#[macro_export]
macro_rules! info {
    ($event:expr, $session:expr, $($json:tt)+) => {
        $crate::logging::event("info", $event, $session, serde_json::json!($($json)+))
    };
}

/// Logs at level `warn`.
#[macro_export]
macro_rules! warn {
    ($event:expr, $session:expr, $($json:tt)+) => {
        $crate::logging::event("warn", $event, $session, serde_json::json!($($json)+))
    };
}

/// Logs at level `error`.
#[macro_export]
macro_rules! error {
    ($event:expr, $session:expr, $($json:tt)+) => {
        $crate::logging::event("error", $event, $session, serde_json::json!($($json)+))
    };
}
