//! `GET /api/terminal/status`: whether a live session could start now, for the page to say
//! "live" or "recording" before the visitor clicks. The same rule for the Worker and
//! `folio serve`.
//!
//! The answer comes from one cheap probe of the origin: a plain `GET /terminal/<demo>` (no
//! upgrade, no token), which folio-pty answers with `{"status":"ok"|"busy",…}` and which is
//! the only path the tunnel exposes. The answer is cached for [`STATUS_MAX_AGE_SECS`], so
//! however many pages ask, the origin sees at most one probe per cache per 30 s.

use serde::{Deserialize, Serialize};

/// How long an answer may be reused (the response's `max-age`, and the Worker's cache).
pub const STATUS_MAX_AGE_SECS: u64 = 30;
/// The `Cache-Control` of a status answer (it replaces the API's `no-store`).
pub const STATUS_CACHE_CONTROL: &str = "public, max-age=30";
/// How long the probe may take before the origin counts as down.
pub const PROBE_TIMEOUT_MS: u64 = 2000;
/// Largest probe answer read (folio-pty's is about 50 bytes).
pub const MAX_PROBE_BODY: usize = 4096;

/// Why the terminal is or is not live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusReason {
    /// The origin answered and has a free session.
    Ok,
    /// The origin answered, but every session is in use.
    Busy,
    /// The origin did not answer (in time), or answered an error.
    Down,
    /// This deployment has no live terminal (no demos, no origin URL or no secret).
    Disabled,
}

/// The body of `GET /api/terminal/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalStatus {
    /// Whether "Run it live" would most likely start a session now.
    pub live: bool,
    /// Why.
    pub reason: StatusReason,
}

impl TerminalStatus {
    /// The answer for `reason`.
    pub fn of(reason: StatusReason) -> Self {
        Self {
            live: reason == StatusReason::Ok,
            reason,
        }
    }
}

/// The origin's answer with the relay's own site-wide cap: every session the relay allows
/// in use is busy too, whatever the origin says.
pub fn with_relay_cap(origin: TerminalStatus, relay_full: bool) -> TerminalStatus {
    if origin.reason == StatusReason::Ok && relay_full {
        TerminalStatus::of(StatusReason::Busy)
    } else {
        origin
    }
}

/// The answer from a probe: `None` when it failed or timed out, else the origin's HTTP
/// status and body. Only folio-pty's own JSON with `"status":"ok"` is live; a 2xx that is
/// not that JSON (some other server behind the URL) is down, not live.
pub fn from_probe(answer: Option<(u16, &str)>) -> TerminalStatus {
    #[derive(Deserialize)]
    struct Probe {
        status: String,
    }
    let reason = match answer {
        Some((200, body)) if body.len() <= MAX_PROBE_BODY => {
            match serde_json::from_str::<Probe>(body).map(|p| p.status) {
                Ok(s) if s == "ok" => StatusReason::Ok,
                Ok(s) if s == "busy" => StatusReason::Busy,
                _ => StatusReason::Down,
            }
        }
        _ => StatusReason::Down,
    };
    TerminalStatus::of(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_map_to_reasons() {
        let ok = from_probe(Some((200, r#"{"status":"ok","active":0,"capacity":8}"#)));
        assert_eq!(
            ok,
            TerminalStatus {
                live: true,
                reason: StatusReason::Ok
            }
        );
        assert_eq!(
            from_probe(Some((200, r#"{"status":"busy","active":8,"capacity":8}"#))),
            TerminalStatus {
                live: false,
                reason: StatusReason::Busy
            }
        );
        for down in [
            None,
            Some((502, "")),
            Some((530, "tunnel down")),
            Some((401, "Unauthorized")),
            Some((200, "<html>some other server</html>")),
            Some((503, r#"{"status":"ok"}"#)),
        ] {
            assert_eq!(
                from_probe(down),
                TerminalStatus::of(StatusReason::Down),
                "{down:?}"
            );
        }
        assert_eq!(
            with_relay_cap(ok, true),
            TerminalStatus::of(StatusReason::Busy)
        );
        assert_eq!(with_relay_cap(ok, false), ok);
        let down = TerminalStatus::of(StatusReason::Down);
        assert_eq!(with_relay_cap(down, true), down);
        assert_eq!(
            serde_json::to_string(&TerminalStatus::of(StatusReason::Disabled)).unwrap(),
            r#"{"live":false,"reason":"disabled"}"#
        );
    }
}
