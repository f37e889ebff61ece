//! What the start tokens ([`crate::token`]) and the resume tokens ([`crate::resume`]) share:
//! an HMAC-SHA256 under the shared secret over their fields joined by NUL bytes behind a
//! signing domain (each kind its own, so neither can pass for the other), and fields with
//! exactly one accepted spelling, so a token cannot be re-spelled into a "different" one with
//! the same signature.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 tag.
pub(crate) const SIG_LEN: usize = 32;

fn mac(secret: &[u8], domain: &str, fields: &[&str]) -> HmacSha256 {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(domain.as_bytes());
    for f in fields {
        m.update(b"\0");
        m.update(f.as_bytes());
    }
    m
}

/// The signature of `fields` under `domain`, base64url without padding.
pub(crate) fn sign(secret: &[u8], domain: &str, fields: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(mac(secret, domain, fields).finalize().into_bytes())
}

/// Whether `sig` is the signature of `fields` under `domain` (compared in constant time).
pub(crate) fn verify(secret: &[u8], domain: &str, fields: &[&str], sig: &[u8; SIG_LEN]) -> bool {
    mac(secret, domain, fields).verify_slice(sig).is_ok()
}

/// Decimal digits only, no sign, no leading zeros (except "0" itself), fits in u64.
pub(crate) fn parse_canonical_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// Base64url without padding, exactly `N` bytes, and re-encoding gives back `s` (the
/// engine already rejects non-zero trailing bits; the round trip makes it explicit).
pub(crate) fn decode_canonical<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
    let arr: [u8; N] = bytes.try_into().ok()?;
    (URL_SAFE_NO_PAD.encode(arr) == s).then_some(arr)
}

/// `bytes` as base64url without padding (the spelling [`decode_canonical`] accepts).
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
