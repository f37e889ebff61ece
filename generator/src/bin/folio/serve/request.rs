//! What the API and the terminal relay share about one request: its context (as the
//! Worker's `Ctx`), the clock, and the one way a failure becomes a logged, generic 500.

use std::sync::Arc;

use folio_edge::api::ApiError;
use folio_edge::config::EdgeManifest;

/// Seconds since the Unix epoch.
pub(super) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What the handlers need to know about the request (the glue's `Ctx`).
pub(super) struct Ctx {
    /// The build's edge manifest.
    pub manifest: Option<Arc<EdgeManifest>>,
    /// Origins allowed to call the API and open terminals.
    pub allowed_origins: Vec<String>,
    /// The request's `Origin`.
    pub origin: Option<String>,
    /// The visitor's key for today (IP and User-Agent): counts a view once.
    pub visitor: String,
    /// The client's address key for today: what the session caps count on, and the client
    /// claim of the origin's token.
    pub client: folio_edge::visitor::VisitorKey,
    /// Today, UTC.
    pub today: String,
}

/// Logs a failure and answers a generic 500, like the Worker.
pub(super) fn internal(what: &str, err: impl std::fmt::Display) -> ApiError {
    eprintln!("error: {what}: {err}");
    ApiError::internal()
}
