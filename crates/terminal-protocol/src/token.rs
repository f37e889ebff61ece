//! Session tokens: the Worker's proof to the origin that it admitted this visitor to this
//! demo, just now, once.
//!
//! String form: `v2.<demo>.<expires_unix>.<nonce_b64>.<client_b64>.<sig_b64>` (base64url
//! without padding), where
//! `sig = HMAC-SHA256(secret, "folio-terminal-v2\0" + demo + "\0" + expires + "\0" + nonce_b64 + "\0" + client_b64)`.
//! Every field has exactly one accepted spelling, so a token cannot be re-spelled into a
//! "different" token with the same signature (which would slip past a replay cache keyed on
//! the nonce string).
//!
//! `client` (v2) is the key the Worker derived from the visitor's address: the origin caps
//! sessions per client on it, so the key is covered by the signature instead of travelling
//! beside the token in a header anybody could set. v1 tokens (no client claim) are refused.

use crate::demo::is_valid_demo_id;
use crate::signing::{self, decode_canonical, parse_canonical_u64, SIG_LEN};
use crate::{CLIENT_KEY_LEN, CLOCK_SKEW_SECS, MAX_TOKEN_TTL_SECS, NONCE_LEN};

/// Version prefix of the token's string form; bump it (and the signing domain) on any change.
/// v2 added the client claim; v1 tokens are refused as [`TokenError::UnsupportedVersion`].
const VERSION: &str = "v2";
/// Domain-separation prefix of the signed message, so a MAC made for anything else with the
/// same secret (or for another token version) can never verify as a token.
const DOMAIN: &str = "folio-terminal-v2";
/// Upper bound on a token's length: version, a 64-byte demo id, 20 digits, 22 + 43 + 43
/// base64 characters and five dots (199) fit within it. Anything longer is refused unparsed.
const MAX_TOKEN_LEN: usize = 256;

/// What a valid token asserts. The origin uses `nonce` and `expires` to refuse replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The demo this token admits to (a valid demo id).
    pub demo: String,
    /// Unix time (seconds) from which the token is no longer accepted.
    pub expires: u64,
    /// The single-use nonce the Worker drew for this token.
    pub nonce: [u8; NONCE_LEN],
    /// The client the Worker admitted: its key of the visitor's address (the origin's
    /// per-client cap counts on this, never on a header).
    pub client: [u8; CLIENT_KEY_LEN],
}

/// Why a token was refused. The origin answers 401 for every variant and logs which one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not six dot-separated fields in the expected spelling.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// A token of another format version (e.g. a v1 token from a Worker older than this
    /// origin: deploy both together).
    #[error("unsupported token version (expected v2)")]
    UnsupportedVersion,
    /// The signature does not match: wrong secret, or a field was altered.
    #[error("bad token signature")]
    BadSignature,
    /// The token's expiry has passed.
    #[error("token expired at {expires} (now {now})")]
    Expired {
        /// The token's expiry.
        expires: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// The token claims to live longer than any honest Worker would mint.
    #[error("token expiry {expires} is too far in the future (now {now})")]
    ExpiryTooFar {
        /// The token's expiry.
        expires: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// The token was minted for another demo than the one being opened.
    #[error("token is for demo {token_demo:?}, not {expected:?}")]
    DemoMismatch {
        /// The demo named in the token.
        token_demo: String,
        /// The demo the connection asked for.
        expected: String,
    },
}

/// Mints a token admitting one connection of `client` to `demo` until `expires_unix`.
///
/// Called by the Worker (with a fresh random `nonce`, `expires_unix = now + ttl`,
/// `ttl <= MAX_TOKEN_TTL_SECS`, and the client's address key) and by `folio-pty token` for
/// local use and tests. `demo` should satisfy [`is_valid_demo_id`]; a token for an invalid
/// id never verifies.
pub fn mint(
    secret: &[u8],
    demo: &str,
    expires_unix: u64,
    nonce: [u8; NONCE_LEN],
    client: &[u8; CLIENT_KEY_LEN],
) -> String {
    let expires = expires_unix.to_string();
    let nonce_b64 = signing::encode(&nonce);
    let client_b64 = signing::encode(client);
    let sig = signing::sign(secret, DOMAIN, &[demo, &expires, &nonce_b64, &client_b64]);
    format!("{VERSION}.{demo}.{expires}.{nonce_b64}.{client_b64}.{sig}")
}

/// Verifies `token` for a connection to `expected_demo` at time `now_unix`.
///
/// Checks, in order: the shape of every field, the signature (in constant time), the expiry
/// (strictly after `now_unix`, and at most [`MAX_TOKEN_TTL_SECS`] + [`CLOCK_SKEW_SECS`]
/// ahead), and the demo. It does not check single use: the caller keeps a replay cache of
/// nonces until their expiry.
pub fn verify(
    secret: &[u8],
    token: &str,
    expected_demo: &str,
    now_unix: u64,
) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("too long"));
    }
    let mut parts = token.split('.');
    let version = parts.next().unwrap_or_default();
    if version != VERSION && is_version_like(version) {
        return Err(TokenError::UnsupportedVersion);
    }
    let (Some(demo), Some(expires_s), Some(nonce_b64), Some(client_b64), Some(sig_b64), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Malformed("expected 6 dot-separated fields"));
    };
    if version != VERSION {
        return Err(TokenError::Malformed("invalid version"));
    }
    if !is_valid_demo_id(demo) {
        return Err(TokenError::Malformed("invalid demo id"));
    }
    let expires = parse_canonical_u64(expires_s).ok_or(TokenError::Malformed("invalid expiry"))?;
    let nonce: [u8; NONCE_LEN] =
        decode_canonical(nonce_b64).ok_or(TokenError::Malformed("invalid nonce"))?;
    let client: [u8; CLIENT_KEY_LEN] =
        decode_canonical(client_b64).ok_or(TokenError::Malformed("invalid client"))?;
    let sig: [u8; SIG_LEN] =
        decode_canonical(sig_b64).ok_or(TokenError::Malformed("invalid signature encoding"))?;

    if !signing::verify(
        secret,
        DOMAIN,
        &[demo, expires_s, nonce_b64, client_b64],
        &sig,
    ) {
        return Err(TokenError::BadSignature);
    }

    if now_unix >= expires {
        return Err(TokenError::Expired {
            expires,
            now: now_unix,
        });
    }
    if expires > now_unix.saturating_add(MAX_TOKEN_TTL_SECS + CLOCK_SKEW_SECS) {
        return Err(TokenError::ExpiryTooFar {
            expires,
            now: now_unix,
        });
    }
    if demo != expected_demo {
        return Err(TokenError::DemoMismatch {
            token_demo: demo.to_owned(),
            expected: expected_demo.to_owned(),
        });
    }
    Ok(Claims {
        demo: demo.to_owned(),
        expires,
        nonce,
        client,
    })
}

/// Whether `s` is spelled like a version prefix (`v` and 1–3 digits): a token of another
/// version is told apart from garbage, whatever its other fields look like.
fn is_version_like(s: &str) -> bool {
    s.len() >= 2 && s.len() <= 4 && s.starts_with('v') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    /// The documented MAC, spelled out here independently of `signing`.
    type HmacSha256 = Hmac<Sha256>;

    const SECRET: &[u8] = b"correct horse battery staple, but longer and random";
    const NOW: u64 = 1_800_000_000;
    const NONCE: [u8; 16] = [7; 16];
    const CLIENT: [u8; 32] = [9; 32];

    fn mint(secret: &[u8], demo: &str, expires: u64, nonce: [u8; 16]) -> String {
        super::mint(secret, demo, expires, nonce, &CLIENT)
    }

    fn token() -> String {
        mint(SECRET, "minirt", NOW + 30, NONCE)
    }

    #[test]
    fn round_trip() {
        let claims = verify(SECRET, &token(), "minirt", NOW).unwrap();
        assert_eq!(
            claims,
            Claims {
                demo: "minirt".into(),
                expires: NOW + 30,
                nonce: NONCE,
                client: CLIENT,
            }
        );
    }

    #[test]
    fn string_form() {
        let t = token();
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 6);
        assert_eq!(parts[0], "v2");
        assert_eq!(parts[1], "minirt");
        assert_eq!(parts[2], (NOW + 30).to_string());
        assert_eq!(parts[3], URL_SAFE_NO_PAD.encode(NONCE));
        assert_eq!(parts[4], URL_SAFE_NO_PAD.encode(CLIENT));
        assert_eq!(parts[5].len(), 43);
    }

    /// Pins the signing message so the Worker and the origin cannot drift apart silently:
    /// recompute the MAC independently over the documented message.
    #[test]
    fn signature_is_documented_hmac() {
        let t = token();
        let nonce_b64 = URL_SAFE_NO_PAD.encode(NONCE);
        let client_b64 = URL_SAFE_NO_PAD.encode(CLIENT);
        let msg = format!(
            "folio-terminal-v2\0minirt\0{}\0{}\0{}",
            NOW + 30,
            nonce_b64,
            client_b64
        );
        let mut m = HmacSha256::new_from_slice(SECRET).unwrap();
        m.update(msg.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
        assert!(t.ends_with(&format!(".{sig}")));
    }

    #[test]
    fn wrong_secret() {
        assert_eq!(
            verify(b"other", &token(), "minirt", NOW),
            Err(TokenError::BadSignature)
        );
    }

    fn replace_field(t: &str, i: usize, v: &str) -> String {
        let mut p: Vec<String> = t.split('.').map(str::to_owned).collect();
        p[i] = v.to_owned();
        p.join(".")
    }

    #[test]
    fn tampered_demo() {
        let t = replace_field(&token(), 1, "other");
        assert_eq!(
            verify(SECRET, &t, "other", NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_expiry() {
        let t = replace_field(&token(), 2, &(NOW + 31).to_string());
        assert_eq!(
            verify(SECRET, &t, "minirt", NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_nonce() {
        let t = replace_field(&token(), 3, &URL_SAFE_NO_PAD.encode([8u8; 16]));
        assert_eq!(
            verify(SECRET, &t, "minirt", NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_signature() {
        let t = token();
        let sig = t.rsplit('.').next().unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
        for i in [0, 15, 31] {
            let mut b = bytes.clone();
            b[i] ^= 1;
            let t2 = replace_field(&t, 5, &URL_SAFE_NO_PAD.encode(&b));
            assert_eq!(
                verify(SECRET, &t2, "minirt", NOW),
                Err(TokenError::BadSignature)
            );
        }
        bytes.truncate(31);
        let t3 = replace_field(&t, 5, &URL_SAFE_NO_PAD.encode(&bytes));
        assert!(matches!(
            verify(SECRET, &t3, "minirt", NOW),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn tampered_version() {
        let t = replace_field(&token(), 0, "v3");
        assert_eq!(
            verify(SECRET, &t, "minirt", NOW),
            Err(TokenError::UnsupportedVersion)
        );
    }

    /// Signs arbitrary field strings the way [`mint`] signs its own: what a holder of the
    /// secret could produce, to show what verification refuses beyond the signature.
    fn signed(fields: &[&str]) -> String {
        let mut m = HmacSha256::new_from_slice(SECRET).unwrap();
        m.update(fields[1..].join("\0").as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
        format!("{}.{sig}", fields[0])
    }

    /// Threat 9: the client claim is covered by the signature.
    #[test]
    fn tampered_client() {
        let t = replace_field(&token(), 4, &URL_SAFE_NO_PAD.encode([8u8; 32]));
        assert_eq!(
            verify(SECRET, &t, "minirt", NOW),
            Err(TokenError::BadSignature)
        );
    }

    /// Threat 9: a client claim that is not 32 canonically encoded bytes is refused even
    /// under a valid signature (so no origin ever keys its cap on a free-form string).
    #[test]
    fn malformed_client_claim_is_refused_even_when_signed() {
        let exp = (NOW + 30).to_string();
        let nonce = URL_SAFE_NO_PAD.encode(NONCE);
        let good = URL_SAFE_NO_PAD.encode(CLIENT);
        let mut non_canonical = good.clone().into_bytes();
        *non_canonical.last_mut().unwrap() = b'l'; // 'k' + non-zero trailing bits
        let non_canonical = String::from_utf8(non_canonical).unwrap();
        let sixty_four_hex = "ab".repeat(32); // the old X-Folio-Visitor spelling
        for bad in [
            "",
            "AAAA",
            non_canonical.as_str(),
            sixty_four_hex.as_str(),
            &good[..42],
        ] {
            let head = format!("v2.minirt.{exp}.{nonce}.{bad}");
            let t = signed(&[&head, "folio-terminal-v2", "minirt", &exp, &nonce, bad]);
            assert_eq!(
                verify(SECRET, &t, "minirt", NOW),
                Err(TokenError::Malformed("invalid client")),
                "client claim {bad:?}"
            );
        }
        // The same construction with the good claim verifies: the refusals above are the
        // claim's, not the helper's.
        let head = format!("v2.minirt.{exp}.{nonce}.{good}");
        let t = signed(&[&head, "folio-terminal-v2", "minirt", &exp, &nonce, &good]);
        assert_eq!(t, token());
        assert!(verify(SECRET, &t, "minirt", NOW).is_ok());
    }

    /// A v1 token (no client claim), even validly signed, is refused as another version:
    /// an origin never falls back to an unsigned client.
    #[test]
    fn v1_tokens_are_refused() {
        let exp = (NOW + 30).to_string();
        let nonce = URL_SAFE_NO_PAD.encode(NONCE);
        let head = format!("v1.minirt.{exp}.{nonce}");
        let t = signed(&[&head, "folio-terminal-v1", "minirt", &exp, &nonce]);
        assert_eq!(t.split('.').count(), 5);
        assert_eq!(
            verify(SECRET, &t, "minirt", NOW),
            Err(TokenError::UnsupportedVersion)
        );
    }

    #[test]
    fn demo_mismatch() {
        assert_eq!(
            verify(SECRET, &token(), "other", NOW),
            Err(TokenError::DemoMismatch {
                token_demo: "minirt".into(),
                expected: "other".into()
            })
        );
    }

    #[test]
    fn expiry_edges() {
        let t = mint(SECRET, "minirt", NOW, NONCE);
        assert!(verify(SECRET, &t, "minirt", NOW - 1).is_ok());
        assert_eq!(
            verify(SECRET, &t, "minirt", NOW),
            Err(TokenError::Expired {
                expires: NOW,
                now: NOW
            })
        );
        assert!(matches!(
            verify(SECRET, &t, "minirt", NOW + 1000),
            Err(TokenError::Expired { .. })
        ));
    }

    #[test]
    fn expiry_too_far() {
        let limit = NOW + MAX_TOKEN_TTL_SECS + CLOCK_SKEW_SECS;
        assert!(verify(SECRET, &mint(SECRET, "minirt", limit, NONCE), "minirt", NOW).is_ok());
        let t = mint(SECRET, "minirt", limit + 1, NONCE);
        assert!(matches!(
            verify(SECRET, &t, "minirt", NOW),
            Err(TokenError::ExpiryTooFar { .. })
        ));
        let t = mint(SECRET, "minirt", u64::MAX, NONCE);
        assert!(matches!(
            verify(SECRET, &t, "minirt", NOW),
            Err(TokenError::ExpiryTooFar { .. })
        ));
    }

    #[test]
    fn malformed() {
        let t = token();
        let cases = [
            String::new(),
            "v1".into(),
            "v1.minirt.1.2".into(),
            format!("{t}.extra"),
            format!("{t}."),
            replace_field(&t, 1, "Bad"),
            replace_field(&t, 1, ""),
            replace_field(&t, 2, "+1800000030"),
            replace_field(&t, 2, &format!("0{}", NOW + 30)),
            replace_field(&t, 2, "-1"),
            replace_field(&t, 2, "99999999999999999999999"),
            replace_field(&t, 2, ""),
            replace_field(&t, 3, "AAAA"),
            replace_field(&t, 3, &format!("{}==", URL_SAFE_NO_PAD.encode(NONCE))),
            replace_field(
                &t,
                3,
                &base64::engine::general_purpose::STANDARD.encode([0xfbu8; 16]),
            ),
            replace_field(&t, 5, "!!!"),
            "x".repeat(300),
        ];
        for c in cases {
            let r = verify(SECRET, &c, "minirt", NOW);
            assert!(
                matches!(
                    r,
                    Err(TokenError::Malformed(_)) | Err(TokenError::UnsupportedVersion)
                ),
                "{c:?} gave {r:?}"
            );
        }
    }

    /// The same 16 nonce bytes spelled differently (the last character with non-zero
    /// trailing bits, which a lenient decoder maps to the same bytes), in a token whose
    /// signature is valid for that spelling: refused for its spelling, before the signature
    /// is even looked at. (A replay cache keyed on the nonce string would otherwise see
    /// a "new" nonce.)
    #[test]
    fn non_canonical_nonce_rejected() {
        let nonce_b64 = URL_SAFE_NO_PAD.encode(NONCE);
        let mut alt = nonce_b64.clone().into_bytes();
        let last = alt.last_mut().unwrap();
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = ALPHABET.iter().position(|c| c == last).unwrap();
        assert_eq!(
            index & 0b1111,
            0,
            "a canonical last character has no trailing bits"
        );
        *last = ALPHABET[index | 0b0001];
        let alt = String::from_utf8(alt).unwrap();
        assert_ne!(alt, nonce_b64);
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::general_purpose::NO_PAD.with_decode_allow_trailing_bits(true),
        );
        assert_eq!(lenient.decode(&alt).unwrap(), NONCE, "the same bytes");
        // Signed over the alternative spelling, as if by someone holding the secret.
        let expires = (NOW + 30).to_string();
        let client = URL_SAFE_NO_PAD.encode(CLIENT);
        let sig = signing::sign(SECRET, DOMAIN, &["minirt", &expires, &alt, &client]);
        let t = format!("v2.minirt.{expires}.{alt}.{client}.{sig}");
        assert_eq!(
            verify(SECRET, &t, "minirt", NOW),
            Err(TokenError::Malformed("invalid nonce"))
        );
    }
}
