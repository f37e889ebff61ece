//! The JSON shapes the Worker answers with, and the one error type every handler returns,
//! so that clients (the site's scripts, monitoring) see a single, stable error format.

use serde::Serialize;
use std::collections::BTreeMap;

/// An API failure: an HTTP status, a stable machine-readable `error` code and a message
/// for humans. Every non-2xx JSON body the Worker sends is one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Stable code such as `"unknown_slug"`; clients switch on it.
    pub code: &'static str,
    /// Human-readable detail. Never contains secrets or visitor data.
    pub message: String,
    /// Seconds to wait before retrying, sent as `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
    /// Extra response headers the status requires (`Allow` on 405, `Upgrade` on 426).
    pub extra_headers: Vec<(&'static str, String)>,
}

impl ApiError {
    /// An error without `Retry-After` or extra headers.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            extra_headers: Vec::new(),
        }
    }

    /// 400: the request is malformed (e.g. a slug outside the allowed alphabet).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// 404: no such page, demo or route.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    /// 429 with `Retry-After`: a rate limit or the session cap refused the request.
    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(429, code, message)
        }
    }

    /// 502: the terminal origin could not be reached or refused the upgrade. Not a 500:
    /// the Worker is fine, the thing behind it is not.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(502, "origin_unavailable", message)
    }

    /// 503: a required binding or secret is missing from the deployment.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        Self::new(503, "not_configured", message)
    }

    /// 500: an unexpected runtime failure. The message is generic on purpose; the detail
    /// goes to the Worker's log only.
    pub fn internal() -> Self {
        Self::new(500, "internal_error", "internal error")
    }

    /// Adds a response header (builder style).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra_headers.push((name, value.into()));
        self
    }

    /// The JSON body: `{"error": code, "message": …, "retry_after": n?}`.
    pub fn body(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            retry_after: Option<u64>,
        }
        serde_json::to_string(&Body {
            error: self.code,
            message: &self.message,
            retry_after: self.retry_after,
        })
        .expect("serialising a struct of strings cannot fail")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Body of `GET`/`POST /api/views/<slug>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ViewsBody {
    /// The page.
    pub slug: String,
    /// Its view count.
    pub views: u64,
    /// On `POST`: whether this request counted (false when the visitor was already
    /// counted for this page today). Absent on reads.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub counted: Option<bool>,
}

/// Body of `GET /api/views?slugs=a,b,c`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewsBatchBody {
    /// Slug → view count, sorted by slug.
    pub views: BTreeMap<String, u64>,
}

/// Body of `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthBody {
    /// Whether every dependency answered.
    pub ok: bool,
    /// The Worker's version ([`crate::VERSION`]).
    pub version: &'static str,
    /// `"ok"` or `"error"`: whether KV answered a read.
    pub kv: &'static str,
    /// `"ok"`, `"down"` or `"not_configured"`: whether the terminal origin (through the
    /// tunnel) answered a plain request for a demo ([`crate::relay::probe_url`]).
    pub origin: &'static str,
    /// Whether the site's edge manifest (`/_folio/edge.json`) loaded.
    pub manifest: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_is_stable_json() {
        let e = ApiError::too_many("rate_limited", "slow down", 60);
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["error"], "rate_limited");
        assert_eq!(v["message"], "slow down");
        assert_eq!(v["retry_after"], 60);
        let v: serde_json::Value =
            serde_json::from_str(&ApiError::not_found("unknown_slug", "x").body()).unwrap();
        assert!(v.get("retry_after").is_none());
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        assert_eq!(ApiError::too_many("x", "y", 0).retry_after, Some(1));
    }

    #[test]
    fn views_body_omits_counted_on_reads() {
        let read = ViewsBody {
            slug: "a".into(),
            views: 3,
            counted: None,
        };
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            r#"{"slug":"a","views":3}"#
        );
    }
}
