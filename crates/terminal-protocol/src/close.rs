//! WebSocket close codes both ends of a terminal session send, named once.
//!
//! The Worker's relay, `folio serve`'s relay and `folio-pty` each close sessions; a browser
//! reads the code to decide what to show ("try again in 30 s", "lost", "exited"), so every
//! sender must mean the same thing by the same number.

/// The session ended normally (the program exited, or a timeout the origin reports in the
/// reason).
pub const NORMAL: u16 = 1000;
/// The peer broke the protocol (no hello, a malformed frame).
pub const PROTOCOL_ERROR: u16 = 1002;
/// A frame over [`crate::MAX_FRAME_BYTES`] (RFC 6455 "message too big").
pub const TOO_BIG: u16 = 1009;
/// The other side vanished without a close frame, errored, or could not start the session.
pub const INTERNAL: u16 = 1011;
/// The relay ended a session that hit its time limit (application range).
pub const SESSION_TIME_LIMIT: u16 = 4008;
/// A resume was refused (bad, spent, expired or foreign token; the session is gone): the
/// session cannot be resumed, the client must not retry with the same token.
pub const RESUME_REFUSED: u16 = 4410;
/// The session was taken over by a newer connection that resumed it (the old connection,
/// half-open or not, is closed with this code).
pub const TAKEN_OVER: u16 = 4409;
/// Refusals a browser must be able to read are sent as a close frame with code
/// `REFUSED_BASE + HTTP status` (4429, 4502, 4503) over an accepted WebSocket.
pub const REFUSED_BASE: u16 = 4000;
/// Longest close reason a close frame can carry, in bytes (125 minus the 2-byte code).
pub const MAX_REASON: usize = 123;
