//! Resume tokens: the origin's proof, handed to the client of a running session, that the
//! bearer may re-attach to that session after its connection dropped.
//!
//! String form: `r1.<demo>.<session>.<expires>.<nonce_b64>.<client_b64>.<sig_b64>` where `sig`
//! is the HMAC-SHA256 under the shared secret of the fields joined by NUL bytes behind the
//! domain `folio-resume-v1` (docs/terminal-protocol.md). The origin both mints and verifies them (the
//! Worker and `folio serve` only relay the hello frame that carries one), with the same
//! shared secret as the start tokens but another signing domain, so neither kind of token
//! can ever pass for the other.
//!
//! Verifying checks the shape, the signature, the expiry and the demo. Single use and the
//! binding to the visitor are the origin's part: the token's nonce must be the one the
//! session issued last (each resume and each refresh issues a new one), and its client
//! claim must equal the client claim of the start token of the connection presenting it.

use crate::demo::is_valid_demo_id;
use crate::signing::{self, decode_canonical, parse_canonical_u64, SIG_LEN};
use crate::{CLIENT_KEY_LEN, CLOCK_SKEW_SECS, NONCE_LEN};

/// Version prefix of the resume token's string form.
const VERSION: &str = "r1";
/// Domain-separation prefix of the signed message (differs from the start token's).
const DOMAIN: &str = "folio-resume-v1";
/// Upper bound on a resume token's length; anything longer is refused unparsed.
pub const MAX_RESUME_TOKEN_LEN: usize = 300;
/// Longest lifetime the origin gives a resume token. Tokens are refreshed while the
/// session is attached, so this only bounds how stale a captured token can be.
pub const MAX_RESUME_TTL_SECS: u64 = 900;
/// Longest grace period a session may be kept for after its connection dropped.
pub const MAX_GRACE_SECS: u64 = 600;
/// Length of a session id: 16 lower-case hex digits.
const SESSION_ID_LEN: usize = 16;

/// What a valid resume token asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeClaims {
    /// The demo of the session.
    pub demo: String,
    /// The session's id (16 hex digits).
    pub session: String,
    /// Unix time (seconds) from which the token is no longer accepted.
    pub expires: u64,
    /// The nonce the origin drew for this token; it must still be the session's current one.
    pub nonce: [u8; NONCE_LEN],
    /// The client the session belongs to (the start token's client claim).
    pub client: [u8; CLIENT_KEY_LEN],
}

/// Why a resume token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// Not seven dot-separated fields in the expected spelling.
    #[error("malformed resume token: {0}")]
    Malformed(&'static str),
    /// The signature does not match.
    #[error("bad resume token signature")]
    BadSignature,
    /// The token's expiry has passed.
    #[error("resume token expired")]
    Expired,
    /// The token claims a longer life than the origin ever gives.
    #[error("resume token expiry too far in the future")]
    ExpiryTooFar,
    /// The token is for another demo than the connection's.
    #[error("resume token is for another demo")]
    DemoMismatch,
}

fn is_session_id(s: &str) -> bool {
    s.len() == SESSION_ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Mints a resume token for `session` of `client` on `demo`, valid until `expires_unix`.
pub fn mint_resume(
    secret: &[u8],
    demo: &str,
    session: &str,
    expires_unix: u64,
    nonce: [u8; NONCE_LEN],
    client: &[u8; CLIENT_KEY_LEN],
) -> String {
    let expires = expires_unix.to_string();
    let nonce_b64 = signing::encode(&nonce);
    let client_b64 = signing::encode(client);
    let sig = signing::sign(
        secret,
        DOMAIN,
        &[demo, session, &expires, &nonce_b64, &client_b64],
    );
    format!("{VERSION}.{demo}.{session}.{expires}.{nonce_b64}.{client_b64}.{sig}")
}

/// Verifies a resume token presented on a connection to `expected_demo` at `now_unix`:
/// shape, signature (constant time), expiry (after now, at most [`MAX_RESUME_TTL_SECS`] +
/// skew ahead) and demo. The caller checks the session, the nonce and the client.
pub fn verify_resume(
    secret: &[u8],
    token: &str,
    expected_demo: &str,
    now_unix: u64,
) -> Result<ResumeClaims, ResumeError> {
    if token.len() > MAX_RESUME_TOKEN_LEN {
        return Err(ResumeError::Malformed("too long"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [version, demo, session, expires_s, nonce_b64, client_b64, sig_b64] = parts[..] else {
        return Err(ResumeError::Malformed("expected 7 dot-separated fields"));
    };
    if version != VERSION {
        return Err(ResumeError::Malformed("unsupported version"));
    }
    if !is_valid_demo_id(demo) {
        return Err(ResumeError::Malformed("invalid demo id"));
    }
    if !is_session_id(session) {
        return Err(ResumeError::Malformed("invalid session id"));
    }
    let expires = parse_canonical_u64(expires_s).ok_or(ResumeError::Malformed("invalid expiry"))?;
    let nonce: [u8; NONCE_LEN] =
        decode_canonical(nonce_b64).ok_or(ResumeError::Malformed("invalid nonce"))?;
    let client: [u8; CLIENT_KEY_LEN] =
        decode_canonical(client_b64).ok_or(ResumeError::Malformed("invalid client"))?;
    let sig: [u8; SIG_LEN] =
        decode_canonical(sig_b64).ok_or(ResumeError::Malformed("invalid signature encoding"))?;
    let fields = [demo, session, expires_s, nonce_b64, client_b64];
    if !signing::verify(secret, DOMAIN, &fields, &sig) {
        return Err(ResumeError::BadSignature);
    }
    if now_unix >= expires {
        return Err(ResumeError::Expired);
    }
    if expires > now_unix.saturating_add(MAX_RESUME_TTL_SECS + CLOCK_SKEW_SECS) {
        return Err(ResumeError::ExpiryTooFar);
    }
    if demo != expected_demo {
        return Err(ResumeError::DemoMismatch);
    }
    Ok(ResumeClaims {
        demo: demo.to_owned(),
        session: session.to_owned(),
        expires,
        nonce,
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a resume secret of at least thirty-two bytes";
    const NOW: u64 = 1_800_000_000;
    const SID: &str = "0123456789abcdef";

    fn tok(exp: u64) -> String {
        mint_resume(SECRET, "shell", SID, exp, [3; 16], &[5; 32])
    }

    /// The signature is the documented one (docs/terminal-protocol.md), computed here without
    /// the crate's signing code.
    #[test]
    fn signature_is_the_documented_hmac() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        use hmac::{Hmac, Mac};
        let t = tok(NOW + 60);
        let f: Vec<&str> = t.split('.').collect();
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        m.update(
            format!(
                "folio-resume-v1\0shell\0{SID}\0{}\0{}\0{}",
                f[3], f[4], f[5]
            )
            .as_bytes(),
        );
        assert_eq!(f[6], URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()));
        assert_eq!(f[..3], ["r1", "shell", SID]);
    }

    #[test]
    fn round_trip_and_refusals() {
        let c = verify_resume(SECRET, &tok(NOW + 60), "shell", NOW).unwrap();
        assert_eq!(c.session, SID);
        assert_eq!(c.nonce, [3; 16]);
        assert_eq!(c.client, [5; 32]);
        assert_eq!(
            verify_resume(
                b"another secret, just as long as the first",
                &tok(NOW + 60),
                "shell",
                NOW
            ),
            Err(ResumeError::BadSignature)
        );
        assert_eq!(
            verify_resume(SECRET, &tok(NOW), "shell", NOW),
            Err(ResumeError::Expired)
        );
        assert_eq!(
            verify_resume(SECRET, &tok(NOW + MAX_RESUME_TTL_SECS + 60), "shell", NOW),
            Err(ResumeError::ExpiryTooFar)
        );
        assert_eq!(
            verify_resume(SECRET, &tok(NOW + 60), "other", NOW),
            Err(ResumeError::DemoMismatch)
        );
        // Another session id under the same signature does not verify.
        let t = tok(NOW + 60).replace(SID, "fedcba9876543210");
        assert_eq!(
            verify_resume(SECRET, &t, "shell", NOW),
            Err(ResumeError::BadSignature)
        );
    }

    #[test]
    fn a_start_token_is_not_a_resume_token() {
        let start = crate::mint(SECRET, "shell", NOW + 30, [3; 16], &[5; 32]);
        assert!(matches!(
            verify_resume(SECRET, &start, "shell", NOW),
            Err(ResumeError::Malformed(_))
        ));
        let forged = tok(NOW + 60).replacen("r1.", "v2.", 1);
        assert!(crate::verify(SECRET, &forged, "shell", NOW).is_err());
    }
}
