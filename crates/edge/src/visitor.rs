//! Who a visitor is, without knowing who they are.
//!
//! A visitor is identified by `SHA-256(daily_salt ‖ IP ‖ User-Agent)`, where the daily
//! salt is `HMAC-SHA256(secret, "folio visitor salt v1" ‖ UTC date)`. The same person gets
//! the same key all day (so a page counts them once and the rate limiter can tell them
//! apart) and an unrelated key tomorrow; without the secret, a key cannot be linked back
//! to an IP address even by brute force over the IPv4 space. This is the scheme
//! privacy-minded analytics (Plausible, Fathom) use. No IP address is ever stored or
//! logged: only keys, and the counter forgets those when the day changes.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// A visitor key: 32 bytes of SHA-256.
pub type VisitorKey = [u8; 32];

/// Domain-separation label for the daily salt, so a secret shared with another use (the
/// terminal token) can never produce the same MAC for both.
const SALT_LABEL: &[u8] = b"folio visitor salt v1\0";

/// The UTC calendar date of a Unix time, as `YYYY-MM-DD`: the day a visit counts for.
pub fn utc_day(unix_secs: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm: exact for the proleptic Gregorian calendar.
    let days = (unix_secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Seconds from `unix_secs` to the next UTC midnight: how long a day's keys stay useful.
pub fn secs_until_utc_midnight(unix_secs: u64) -> u64 {
    86_400 - unix_secs % 86_400
}

/// The salt for one UTC day, derived from the deployment's secret.
pub fn daily_salt(secret: &[u8], day: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(SALT_LABEL);
    mac.update(day.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The visitor key for an IP address and User-Agent under a day's salt. Fields are
/// length-prefixed so `("1.2.3.4", "5x")` and `("1.2.3.45", "x")` differ.
pub fn visitor_key(salt: &[u8; 32], ip: &str, user_agent: &str) -> VisitorKey {
    let mut h = Sha256::new();
    h.update(salt);
    for field in [ip.trim(), user_agent] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().into()
}

/// Lower-case hex of a key: how keys travel to the Durable Objects and the rate limiter.
pub fn hex(key: &VisitorKey) -> String {
    terminal_protocol::hex(key)
}

/// Whether `s` looks like [`hex`] output: how the Durable Objects refuse anything else.
pub fn is_key_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The visitor's IP as Cloudflare reports it. At the edge `CF-Connecting-IP` is set by
/// Cloudflare and cannot be forged by the client; a missing header (local tools) falls
/// back to a constant, which only makes such clients share one key.
pub fn client_ip(cf_connecting_ip: Option<&str>) -> &str {
    cf_connecting_ip
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_day_matches_known_dates() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(951_782_400), "2000-02-29");
        assert_eq!(utc_day(1_709_164_800), "2024-02-29");
        assert_eq!(utc_day(1_735_689_599), "2024-12-31");
        assert_eq!(utc_day(1_735_689_600), "2025-01-01");
        assert_eq!(utc_day(4_102_444_800), "2100-01-01");
    }

    #[test]
    fn midnight() {
        assert_eq!(secs_until_utc_midnight(0), 86_400);
        assert_eq!(secs_until_utc_midnight(86_399), 1);
    }

    #[test]
    fn keys_are_stable_within_a_day_and_change_across_days() {
        let s1 = daily_salt(b"secret", "2026-11-22");
        let s2 = daily_salt(b"secret", "2026-11-23");
        let other = daily_salt(b"other secret", "2026-11-22");
        let k = |s: &[u8; 32], ip: &str, ua: &str| visitor_key(s, ip, ua);
        assert_eq!(k(&s1, "1.2.3.4", "ua"), k(&s1, "1.2.3.4", "ua"));
        assert_ne!(k(&s1, "1.2.3.4", "ua"), k(&s2, "1.2.3.4", "ua"));
        assert_ne!(k(&s1, "1.2.3.4", "ua"), k(&other, "1.2.3.4", "ua"));
        assert_ne!(k(&s1, "1.2.3.4", "ua"), k(&s1, "1.2.3.5", "ua"));
        assert_ne!(k(&s1, "1.2.3.4", "ua"), k(&s1, "1.2.3.4", "ub"));
        assert_ne!(k(&s1, "1.2.3.4", "5x"), k(&s1, "1.2.3.45", "x"));
    }

    #[test]
    fn hex_round_trip_shape() {
        let h = hex(&[0xab; 32]);
        assert_eq!(h.len(), 64);
        assert!(h.starts_with("abab"));
        assert!(is_key_hex(&h));
        assert!(!is_key_hex("ABAB"));
        assert!(!is_key_hex(&h[1..]));
    }

    #[test]
    fn client_ip_fallback() {
        assert_eq!(client_ip(Some(" 1.2.3.4 ")), "1.2.3.4");
        assert_eq!(client_ip(Some("")), "unknown");
        assert_eq!(client_ip(None), "unknown");
    }
}
