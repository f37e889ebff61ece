//! The one definition of what crosses between folio's edge Worker and its terminal origin
//! (`folio-pty`): the session token the Worker mints and the origin verifies, and the
//! WebSocket frames both relay.
//!
//! It is deliberately tiny and portable: no clock, no randomness, no async runtime, so it
//! compiles for `wasm32-unknown-unknown` (the Worker) and natively (the origin) alike.
//! Callers pass the current Unix time and a fresh random nonce.
//!
//! The wire format is documented in `docs/terminal-protocol.md` at the repository root.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod close;
pub mod demo;
pub mod frames;
pub mod resume;
mod signing;
pub mod token;

pub use demo::{is_valid_demo_id, MAX_ID_LEN};
pub use frames::{
    ClientFrame, ExitStatus, FrameError, Hello, ResumeGrant, ResumeHello, ServerFrame, WindowSize,
};
pub use resume::{mint_resume, verify_resume, ResumeClaims, ResumeError};
pub use token::{mint, verify, Claims, TokenError};

/// Longest lifetime a token may have. The Worker mints tokens just before it opens the
/// upstream WebSocket, so a minute is plenty, and a short life bounds the origin's replay
/// cache (a nonce only has to be remembered until its token expires).
pub const MAX_TOKEN_TTL_SECS: u64 = 60;

/// Clock skew tolerated between the Worker's clock and the origin's when checking that a
/// token's expiry is not further in the future than [`MAX_TOKEN_TTL_SECS`].
pub const CLOCK_SKEW_SECS: u64 = 5;

/// Largest WebSocket frame either side accepts. Both ends refuse bigger frames so a peer
/// cannot make the other buffer unbounded input.
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// Length in bytes of a token's nonce (before base64url encoding). 128 bits of randomness
/// make collisions between honest tokens practically impossible, so the origin can treat a
/// repeated nonce as a replay.
pub const NONCE_LEN: usize = 16;

/// Length in bytes of a token's client claim: the Worker's key of the visitor's address
/// (SHA-256 output), which the origin's per-client session cap counts on.
pub const CLIENT_KEY_LEN: usize = 32;

/// Smallest and largest terminal dimension (columns or rows) either side accepts. Zero
/// breaks programs that divide by the width; huge values make them allocate huge screens.
pub const MIN_DIMENSION: u16 = 1;
/// See [`MIN_DIMENSION`].
pub const MAX_DIMENSION: u16 = 1000;

/// Shortest shared secret accepted for minting or verifying tokens: 32 bytes, the
/// HMAC-SHA256 block strength. The Worker refuses to mint with less (503), `folio-pty` and
/// `folio serve` refuse to start.
pub const MIN_SECRET_LEN: usize = 32;

/// Lower-case hex of `bytes`: how visitor keys, lease ids and generated secrets are
/// written wherever they must be text.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}
