//! The terminal relay's rules: when to upgrade, where to connect, what to forward and how
//! to close. The glue in `the Worker's `terminal` module` only moves frames as these functions say.

use crate::api::ApiError;
use crate::config::{require_manifest, EdgeManifest};
use crate::headers::origin_allowed;
use terminal_protocol::MAX_FRAME_BYTES;

pub use terminal_protocol::close::{
    INTERNAL as CLOSE_INTERNAL, MAX_REASON as MAX_CLOSE_REASON, REFUSED_BASE as CLOSE_REFUSED_BASE,
    SESSION_TIME_LIMIT as CLOSE_SESSION_TIME_LIMIT, TOO_BIG as CLOSE_TOO_BIG,
};

/// Which socket a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The visitor's browser.
    Client,
    /// The terminal origin.
    Origin,
}

impl Side {
    /// The socket frames from this side are sent to.
    pub fn other(self) -> Self {
        match self {
            Self::Client => Self::Origin,
            Self::Origin => Self::Client,
        }
    }
}

/// What to do with a frame of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameAction {
    /// Forward it unchanged to the other side.
    Forward,
    /// Close both sockets with this code and reason.
    CloseBoth(u16, &'static str),
}

/// The size rule, the same both ways: the origin refuses frames over [`MAX_FRAME_BYTES`]
/// too, so the relay refusing first only saves carrying them.
pub fn frame_action(len: usize) -> FrameAction {
    if len > MAX_FRAME_BYTES {
        FrameAction::CloseBoth(CLOSE_TOO_BIG, "frame too large")
    } else {
        FrameAction::Forward
    }
}

/// The close to pass on when one side closed with `code` and `reason`. Codes that may
/// appear in a close frame are passed through unchanged; codes that only describe a
/// local condition and must never be sent (1005 "no status", 1006 "abnormal", 1015
/// "TLS") and reserved ones become `None` (close without a status) or 1011.
pub fn passthrough_close(code: u16, reason: &str) -> (Option<u16>, String) {
    let reason = truncate_reason(reason);
    match code {
        1005 => (None, String::new()),
        1000..=1003 | 1007..=1014 | 3000..=4999 => (Some(code), reason),
        1006 => (
            Some(CLOSE_INTERNAL),
            if reason.is_empty() {
                "connection lost".to_string()
            } else {
                reason
            },
        ),
        _ => (Some(CLOSE_INTERNAL), reason),
    }
}

/// Cuts a close reason to [`MAX_CLOSE_REASON`] bytes at a character boundary.
pub fn truncate_reason(reason: &str) -> String {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason.to_string();
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

/// The relay's own flow control toward the client: above this many bytes accepted for the
/// client but not yet sent to it (the client socket's `bufferedAmount` in the Worker, the
/// relay's queue in `folio serve`), the relay pauses the origin.
pub const FLOW_HIGH_WATER: usize = 1 << 20;
/// …and resumes it once the backlog is under this.
pub const FLOW_LOW_WATER: usize = 256 << 10;
/// While it holds the origin paused, how often the Worker looks at the backlog again (a
/// WebSocket has no "drained" event).
pub const FLOW_POLL_MS: u64 = 50;

/// The most input the relay holds for an origin that does not take it (a demo that does not
/// read its terminal, while the client keeps sending): beyond it the session is closed
/// rather than queued in the relay's memory. A person typing or pasting never gets near it.
pub const INPUT_BACKLOG_LIMIT: usize = 4 << 20;
/// The close code and reason for input the origin does not take.
pub const CLOSE_INPUT_BACKLOG: (u16, &str) = (1008, "input not consumed");

/// The rule for the relay's backlog toward the origin.
pub fn input_backlog_action(backlog: usize) -> FrameAction {
    if backlog > INPUT_BACKLOG_LIMIT {
        FrameAction::CloseBoth(CLOSE_INPUT_BACKLOG.0, CLOSE_INPUT_BACKLOG.1)
    } else {
        FrameAction::Forward
    }
}

/// What the relay's flow control makes of a binary frame from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFlow {
    /// Not a pause or resume: forward it unchanged.
    Forward,
    /// A pause or resume: the relay keeps it, and sends the origin this frame instead, if
    /// any (the origin is paused while the client *or* the relay wants it paused).
    Replace(Option<FlowSignal>),
}

/// A pause or resume the relay sends the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSignal {
    /// Stop sending output (client frame `0x02`).
    Pause,
    /// Send output again (client frame `0x03`).
    Resume,
}

impl FlowSignal {
    /// The frame to send the origin.
    pub fn frame(self) -> Vec<u8> {
        match self {
            Self::Pause => terminal_protocol::ClientFrame::Pause.encode(),
            Self::Resume => terminal_protocol::ClientFrame::Resume.encode(),
        }
    }
}

/// Backpressure from the client to the origin that does not depend on the client behaving.
/// A browser pauses the origin when its terminal falls behind; a client that simply stops
/// reading does not, and a relay that reads the origin eagerly would queue its output
/// without bound. So the relay tracks its own backlog toward the client and pauses the origin
/// above [`FLOW_HIGH_WATER`], resuming under [`FLOW_LOW_WATER`]. The client's own pause and
/// resume frames are folded in: the origin is paused while either wants it, and told only
/// when that changes. The origin stops reading the PTY when paused (the demo blocks), and
/// its idle and wall-clock deadlines still run, so a client that never reads loses its
/// session at the idle deadline while the relay holds at most about the high-water mark.
#[derive(Debug, Default, Clone)]
pub struct FlowControl {
    client_paused: bool,
    relay_paused: bool,
}

impl FlowControl {
    fn origin_paused(&self) -> bool {
        self.client_paused || self.relay_paused
    }

    fn transition(&self, was: bool) -> Option<FlowSignal> {
        match (was, self.origin_paused()) {
            (false, true) => Some(FlowSignal::Pause),
            (true, false) => Some(FlowSignal::Resume),
            _ => None,
        }
    }

    /// A binary frame of `len` bytes from the client whose first byte is `first`.
    pub fn client_frame(&mut self, first: Option<u8>, len: usize) -> ClientFlow {
        let was = self.origin_paused();
        match (first, len) {
            (Some(0x02), 1) => self.client_paused = true,
            (Some(0x03), 1) => self.client_paused = false,
            _ => return ClientFlow::Forward,
        }
        ClientFlow::Replace(self.transition(was))
    }

    /// The relay's backlog toward the client is now `backlog` bytes: what to tell the origin.
    pub fn backlog(&mut self, backlog: usize) -> Option<FlowSignal> {
        let was = self.origin_paused();
        if backlog > FLOW_HIGH_WATER {
            self.relay_paused = true;
        } else if backlog < FLOW_LOW_WATER {
            self.relay_paused = false;
        }
        self.transition(was)
    }

    /// Whether the relay itself holds the origin paused (then it must watch the backlog
    /// drain: [`FLOW_POLL_MS`]).
    pub fn relay_paused(&self) -> bool {
        self.relay_paused
    }
}

/// Whether the request asks for a WebSocket (`Upgrade: websocket`, case-insensitive).
/// Anything else gets 426.
pub fn wants_websocket(upgrade_header: Option<&str>) -> bool {
    upgrade_header.is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
    })
}

/// Whether a terminal request may go on to the limits and the origin, checked in this order:
/// the manifest lists the demo (404), the request is a WebSocket upgrade (426), and it comes
/// from the site itself (403: cross-site WebSocket hijacking; browsers always send `Origin`
/// on WebSocket requests, so a missing one is refused too).
pub fn admit(
    manifest: Option<&EdgeManifest>,
    demo: &str,
    upgrade_header: Option<&str>,
    origin: Option<&str>,
    allowed_origins: &[String],
) -> Result<(), ApiError> {
    if !require_manifest(manifest)?.demos.contains(demo) {
        return Err(ApiError::not_found("unknown_demo", "no such demo"));
    }
    if !wants_websocket(upgrade_header) {
        return Err(upgrade_required());
    }
    match origin {
        Some(o) if origin_allowed(o, allowed_origins) => Ok(()),
        _ => Err(ApiError::new(
            403,
            "forbidden_origin",
            "terminals open only from the site itself",
        )),
    }
}

/// The 426 for a plain request to a terminal URL.
pub fn upgrade_required() -> ApiError {
    ApiError::new(
        426,
        "upgrade_required",
        "this endpoint speaks WebSocket only",
    )
    .with_header("Upgrade", "websocket")
}

/// How a refusal reaches a browser. A browser sees a WebSocket handshake answered with
/// anything but 101 only as "failed" (no status, no headers, no body), so a visitor could not
/// tell "all sessions are busy, retry in 30 s" from "the server is gone". Refusals worth
/// retrying (429 rate limits and session caps, 502 origin unreachable, 503 not available) are
/// therefore sent, once the request passed the Origin check, as an accepted WebSocket closed
/// at once with code [`CLOSE_REFUSED_BASE`] + status and the reason `<error code>` or
/// `<error code>; retry_after=<secs>`. Other errors (403, 404, 426) stay HTTP answers: they
/// are not worth retrying and never come from the site's own page.
pub fn refusal_close(e: &ApiError) -> Option<(u16, String)> {
    if !matches!(e.status, 429 | 502 | 503) {
        return None;
    }
    let reason = match e.retry_after {
        Some(secs) => format!("{}; retry_after={secs}", e.code),
        None => e.code.to_string(),
    };
    Some((CLOSE_REFUSED_BASE + e.status, truncate_reason(&reason)))
}

/// The error for a terminal origin that answered the upgrade with `status` instead of 101.
/// folio-pty's own refusals (429 per-client cap, 503 all sessions in use or shutting down)
/// keep their meaning and `Retry-After`, so the visitor is told when to retry; anything else
/// means the origin is broken or misrouted: a bad gateway.
pub fn origin_refusal(status: u16, retry_after: Option<&str>) -> ApiError {
    let secs = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(crate::limits::SESSION_RETRY_AFTER_SECS);
    match status {
        429 => ApiError::too_many(
            "too_many_sessions",
            "you already have the maximum number of terminals open",
            secs,
        ),
        503 => ApiError {
            retry_after: Some(secs.max(1)),
            ..ApiError::new(
                503,
                "sessions_full",
                "the terminal server is busy; try again shortly",
            )
        },
        _ => ApiError::bad_gateway(format!(
            "the terminal origin refused the connection (status {status})"
        )),
    }
}

/// The URL the Worker fetches (with `Upgrade: websocket`) to reach a demo on the origin.
/// `TERMINAL_ORIGIN` may be given as `https://`, `wss://`, `http://` or `ws://`; fetch
/// only speaks http(s), the upgrade header does the rest.
pub fn upstream_url(terminal_origin: &str, demo: &str) -> Result<String, ApiError> {
    let base = terminal_origin.trim().trim_end_matches('/');
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| ApiError::misconfigured("TERMINAL_ORIGIN must be an absolute URL"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "https" | "wss" => "https",
        "http" | "ws" => "http",
        _ => {
            return Err(ApiError::misconfigured(
                "TERMINAL_ORIGIN must be an http(s) or ws(s) URL",
            ))
        }
    };
    if rest.is_empty() || rest.contains(['?', '#']) {
        return Err(ApiError::misconfigured(
            "TERMINAL_ORIGIN must be a base URL without query or fragment",
        ));
    }
    if !terminal_protocol::is_valid_demo_id(demo) {
        return Err(ApiError::not_found("unknown_demo", "no such demo"));
    }
    Ok(format!("{scheme}://{rest}/terminal/{demo}"))
}

/// Whether a browser's terminal request resumes a session (`?resume=1`, set by the page
/// when it reconnects with a resume token in its hello): the relay then opens the origin's
/// `/terminal/<demo>?resume=1`, where the origin attaches the connection to the session
/// named by the token instead of starting one. The flag carries no secret (the token
/// travels in the hello frame, never in a URL), so anybody may set it: without a valid
/// resume token the origin closes the connection (4410) and starts nothing.
pub fn resume_requested(query: &str) -> bool {
    query.split('&').any(|p| p == "resume=1")
}

/// [`upstream_url`] for a request whose query is `query`: with `?resume=1` when the browser
/// asked to resume.
pub fn upstream_url_for(
    terminal_origin: &str,
    demo: &str,
    query: &str,
) -> Result<String, ApiError> {
    let url = upstream_url(terminal_origin, demo)?;
    Ok(if resume_requested(query) {
        format!("{url}?resume=1")
    } else {
        url
    })
}

/// The URL `/api/health` probes to tell whether the origin answers: a plain `GET` (no
/// upgrade, no token) of a demo's terminal path. It is the only path the tunnel exposes
/// (`deploy/cloudflared/config.yml`), and folio-pty answers it with a 4xx without starting
/// anything, which proves the tunnel *and* folio-pty are up.
pub fn probe_url(terminal_origin: &str, demo: &str) -> Option<String> {
    upstream_url(terminal_origin, demo).ok()
}

/// Whether a probe's status means the origin answered. Cloudflare answers 530 when the
/// tunnel is down and cloudflared 502 when folio-pty is: any status under 500 came from
/// folio-pty itself.
pub fn origin_answered(status: u16) -> bool {
    status < 500
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_flag_reaches_the_origin_and_nothing_else_does() {
        let o = "https://t.example";
        assert_eq!(
            upstream_url_for(o, "shell", "resume=1").unwrap(),
            "https://t.example/terminal/shell?resume=1"
        );
        assert_eq!(
            upstream_url_for(o, "shell", "x=1&resume=1").unwrap(),
            "https://t.example/terminal/shell?resume=1"
        );
        for q in ["", "resume=0", "resume=1x", "token=abc", "resume"] {
            assert_eq!(
                upstream_url_for(o, "shell", q).unwrap(),
                "https://t.example/terminal/shell",
                "{q}"
            );
        }
    }

    #[test]
    fn size_rule() {
        assert_eq!(frame_action(0), FrameAction::Forward);
        assert_eq!(frame_action(MAX_FRAME_BYTES), FrameAction::Forward);
        assert_eq!(
            frame_action(MAX_FRAME_BYTES + 1),
            FrameAction::CloseBoth(CLOSE_TOO_BIG, "frame too large")
        );
        assert_eq!(Side::Client.other(), Side::Origin);
    }

    #[test]
    fn the_relay_pauses_the_origin_for_a_client_that_stops_reading() {
        let mut f = FlowControl::default();
        assert_eq!(f.backlog(0), None);
        assert_eq!(
            f.backlog(FLOW_HIGH_WATER),
            None,
            "at the mark is not over it"
        );
        assert_eq!(f.backlog(FLOW_HIGH_WATER + 1), Some(FlowSignal::Pause));
        assert!(f.relay_paused());
        assert_eq!(f.backlog(5 * FLOW_HIGH_WATER), None, "told once");
        assert_eq!(f.backlog(FLOW_LOW_WATER), None, "hysteresis: not yet");
        assert_eq!(f.backlog(FLOW_LOW_WATER - 1), Some(FlowSignal::Resume));
        assert!(!f.relay_paused());
        assert_eq!(FlowSignal::Pause.frame(), vec![0x02]);
        assert_eq!(FlowSignal::Resume.frame(), vec![0x03]);
    }

    #[test]
    fn input_the_origin_does_not_take_is_bounded() {
        assert_eq!(input_backlog_action(0), FrameAction::Forward);
        assert_eq!(
            input_backlog_action(INPUT_BACKLOG_LIMIT),
            FrameAction::Forward
        );
        assert_eq!(
            input_backlog_action(INPUT_BACKLOG_LIMIT + 1),
            FrameAction::CloseBoth(1008, "input not consumed")
        );
    }

    #[test]
    fn a_clients_resume_cannot_undo_the_relays_pause() {
        let mut f = FlowControl::default();
        // Input and resize frames pass; so does anything longer that starts with 0x02.
        assert_eq!(f.client_frame(Some(0x00), 3), ClientFlow::Forward);
        assert_eq!(f.client_frame(Some(0x02), 2), ClientFlow::Forward);
        assert_eq!(f.client_frame(None, 0), ClientFlow::Forward);
        // The client pauses and resumes on its own: passed on as such.
        assert_eq!(
            f.client_frame(Some(0x02), 1),
            ClientFlow::Replace(Some(FlowSignal::Pause))
        );
        assert_eq!(
            f.client_frame(Some(0x03), 1),
            ClientFlow::Replace(Some(FlowSignal::Resume))
        );
        // The relay pauses; a resume from the client is kept back while the backlog is high.
        assert_eq!(f.backlog(FLOW_HIGH_WATER + 1), Some(FlowSignal::Pause));
        assert_eq!(f.client_frame(Some(0x03), 1), ClientFlow::Replace(None));
        assert_eq!(f.client_frame(Some(0x02), 1), ClientFlow::Replace(None));
        // Drained, but the client itself still wants the pause.
        assert_eq!(f.backlog(0), None);
        assert_eq!(
            f.client_frame(Some(0x03), 1),
            ClientFlow::Replace(Some(FlowSignal::Resume))
        );
    }

    #[test]
    fn close_codes_pass_through_when_sendable() {
        for code in [1000, 1001, 1008, 1009, 1011, 3000, 4000, 4401, 4999] {
            assert_eq!(passthrough_close(code, "r"), (Some(code), "r".into()));
        }
        assert_eq!(passthrough_close(1005, "x"), (None, String::new()));
        assert_eq!(
            passthrough_close(1006, ""),
            (Some(1011), "connection lost".into())
        );
        assert_eq!(passthrough_close(1015, "tls").0, Some(1011));
        assert_eq!(passthrough_close(2000, "").0, Some(1011));
        assert_eq!(passthrough_close(999, "").0, Some(1011));
        assert_eq!(passthrough_close(5000, "").0, Some(1011));
    }

    #[test]
    fn reasons_are_cut_at_char_boundaries() {
        let long = "é".repeat(100);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= MAX_CLOSE_REASON);
        assert_eq!(cut.len(), 122);
        assert_eq!(truncate_reason("short"), "short");
    }

    #[test]
    fn upgrade_detection() {
        assert!(wants_websocket(Some("websocket")));
        assert!(wants_websocket(Some("WebSocket")));
        assert!(wants_websocket(Some("h2c, websocket")));
        assert!(!wants_websocket(Some("h2c")));
        assert!(!wants_websocket(None));
        let e = upgrade_required();
        assert_eq!(e.status, 426);
        assert_eq!(e.extra_headers, vec![("Upgrade", "websocket".to_string())]);
    }

    #[test]
    fn upstream_urls() {
        assert_eq!(
            upstream_url("wss://pty.ada.dev/", "minirt").unwrap(),
            "https://pty.ada.dev/terminal/minirt"
        );
        assert_eq!(
            upstream_url("http://127.0.0.1:7681", "a").unwrap(),
            "http://127.0.0.1:7681/terminal/a"
        );
        assert_eq!(upstream_url("ftp://x", "a").unwrap_err().status, 503);
        assert_eq!(upstream_url("pty.ada.dev", "a").unwrap_err().status, 503);
        assert_eq!(upstream_url("https://x/?q", "a").unwrap_err().status, 503);
        assert_eq!(upstream_url("https://x", "../a").unwrap_err().status, 404);
        assert_eq!(
            probe_url("wss://pty.ada.dev", "minirt").as_deref(),
            Some("https://pty.ada.dev/terminal/minirt")
        );
        assert_eq!(probe_url("nonsense", "minirt"), None);
        assert!(origin_answered(401));
        assert!(origin_answered(426));
        assert!(!origin_answered(502));
        assert!(!origin_answered(530));
    }

    #[test]
    fn retryable_refusals_become_close_codes_with_their_retry_time() {
        let cap = crate::limits::LeaseOutcome::VisitorCap.refusal().unwrap();
        assert_eq!(
            refusal_close(&cap),
            Some((4429, "too_many_sessions; retry_after=30".to_string()))
        );
        let rate = crate::limits::terminal_rate_limited(60);
        assert_eq!(
            refusal_close(&rate),
            Some((4429, "rate_limited; retry_after=60".to_string()))
        );
        let down = ApiError::bad_gateway("the terminal origin is unreachable");
        assert_eq!(
            refusal_close(&down),
            Some((4502, "origin_unavailable".to_string()))
        );
        let busy = origin_refusal(503, Some("12"));
        assert_eq!(
            refusal_close(&busy),
            Some((4503, "sessions_full; retry_after=12".to_string()))
        );
    }

    #[test]
    fn terminals_are_admitted_for_listed_demos_upgrades_from_the_site_only() {
        let m = crate::config::EdgeManifest::parse(
            r#"{"version":1,"base_url":"https://a.dev","headers":[],"demos":["life"]}"#,
        )
        .unwrap();
        let site = vec!["https://a.dev".to_string()];
        let ok = |demo, up, origin| admit(Some(&m), demo, up, origin, &site);
        assert!(ok("life", Some("websocket"), Some("https://a.dev")).is_ok());
        assert_eq!(
            ok("nope", Some("websocket"), Some("https://a.dev"))
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            ok("life", None, Some("https://a.dev")).unwrap_err().status,
            426
        );
        assert_eq!(
            ok("life", Some("websocket"), Some("https://evil.dev"))
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(ok("life", Some("websocket"), None).unwrap_err().status, 403);
        let none = admit(
            None,
            "life",
            Some("websocket"),
            Some("https://a.dev"),
            &site,
        );
        assert_eq!(none.unwrap_err().status, 503);
    }

    #[test]
    fn errors_not_worth_retrying_stay_http_answers() {
        for e in [
            ApiError::not_found("unknown_demo", "no such demo"),
            ApiError::new(403, "forbidden_origin", "x"),
            upgrade_required(),
            ApiError::internal(),
        ] {
            assert_eq!(refusal_close(&e), None, "{}", e.status);
        }
    }

    #[test]
    fn the_origins_own_refusals_keep_their_meaning() {
        let e = origin_refusal(429, Some("7"));
        assert_eq!((e.status, e.retry_after), (429, Some(7)));
        let e = origin_refusal(503, None);
        assert_eq!(
            (e.status, e.retry_after),
            (503, Some(crate::limits::SESSION_RETRY_AFTER_SECS))
        );
        let e = origin_refusal(503, Some("garbage"));
        assert_eq!(e.retry_after, Some(crate::limits::SESSION_RETRY_AFTER_SECS));
        for status in [401, 404, 500, 530] {
            let e = origin_refusal(status, Some("5"));
            assert_eq!((e.status, e.code), (502, "origin_unavailable"), "{status}");
        }
    }
}
