//! Who a visitor is, without knowing who they are.
//!
//! Two keys, both salted with `HMAC-SHA256(secret, "folio visitor salt v1" ‖ UTC date)`:
//!
//! * the **visitor key**, `SHA-256(daily_salt ‖ IP ‖ User-Agent)`, used only to count a
//!   page view once per visitor and day (people behind one address with other browsers
//!   are other readers);
//! * the **address key** ([`address_key`]), `SHA-256(daily_salt ‖ label ‖ address)`, where
//!   the address is the client's IPv4 address or its IPv6 /64 ([`address_prefix`]). Every
//!   *limit* is keyed on it (the API and terminal rate limits, the per-client session cap
//!   at the edge and at the origin): a visitor chooses their User-Agent freely and an
//!   IPv6 host the last 64 bits of its address, but not their network.
//!
//! The same person gets the same keys all day and unrelated keys tomorrow; without the
//! secret, a key cannot be linked back to an IP address even by brute force over the IPv4
//! space. This is the scheme privacy-minded analytics (Plausible, Fathom) use. No IP
//! address is ever stored or logged: only keys, and the counter forgets those when the day
//! changes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// A visitor key: 32 bytes of SHA-256.
pub type VisitorKey = [u8; 32];

/// Domain-separation label for the daily salt, so a secret shared with another use (the
/// terminal token) can never produce the same MAC for both.
const SALT_LABEL: &[u8] = b"folio visitor salt v1\0";

/// Domain-separation label of the address key: its hash input can never equal a visitor
/// key's (which starts with a length prefix, whose first byte is 0).
const ADDRESS_LABEL: &[u8] = b"folio address key v1\0";

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

/// The part of a client's address that names the client for every limit: an IPv4 address
/// as it is; an IPv6 address by its /64 (`2001:db8:1:2::/64`: one subscriber's network,
/// inside which a host picks any address it likes); IPv4 inside IPv6 — the mapped form
/// `::ffff:a.b.c.d` and 6to4's `2002:aabb:ccdd::/48` — as that IPv4 address. Anything that is
/// not an address (`"unknown"` when the header is missing) stands for itself, trimmed and
/// lower-cased, prefixed so it can never be read as an address.
pub fn address_prefix(ip: &str) -> String {
    let s = ip.trim();
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match embedded_ipv4(&v6) {
            Some(v4) => v4.to_string(),
            None => {
                let g = v6.segments();
                let net = Ipv6Addr::new(g[0], g[1], g[2], g[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
        Err(_) => format!("other:{}", s.to_ascii_lowercase()),
    }
}

/// The IPv4 address an IPv6 address stands for, when it is one written as IPv6.
fn embedded_ipv4(v6: &Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let g = v6.segments();
    // 6to4 (RFC 3056): 2002:V4ADDR::/48 belongs to the host at V4ADDR, which could
    // otherwise pick among 65 536 /64s.
    (g[0] == 0x2002)
        .then(|| Ipv4Addr::new((g[1] >> 8) as u8, g[1] as u8, (g[2] >> 8) as u8, g[2] as u8))
}

/// The address key of a client under a day's salt: what every rate limit and session cap
/// counts on. The User-Agent plays no part; see [`address_prefix`] for what an address is.
pub fn address_key(salt: &[u8; 32], ip: &str) -> VisitorKey {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(ADDRESS_LABEL);
    h.update(address_prefix(ip).as_bytes());
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

    /// Threat 2 (issue 11): rotating the User-Agent, or the host part of an IPv6 address,
    /// gives no new identity to the limits.
    #[test]
    fn threat2_address_key_ignores_the_user_agent_and_the_host_bits_of_a_64() {
        let s = daily_salt(b"secret", "2026-11-22");
        let k = |ip: &str| address_key(&s, ip);
        // Same /64, any host bits, any spelling: one key.
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_eq!(k("2001:db8:1:2::1"), k("2001:0DB8:0001:0002:0:0:0:abcd"));
        assert_eq!(k("2001:db8:1:2::1"), k("[2001:db8:1:2::7]"));
        assert_eq!(k("2001:db8:1:2::1"), k(" 2001:db8:1:2::8 "));
        // Another /64 is another client.
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db9:1:2::1"));
        // IPv4 as is; its IPv4-mapped and 6to4 forms are the same client.
        assert_eq!(k("198.51.100.7"), k("::ffff:198.51.100.7"));
        assert_eq!(k("198.51.100.7"), k("::FFFF:c633:6407"));
        assert_eq!(k("198.51.100.7"), k("2002:c633:6407:1::1"));
        assert_eq!(k("198.51.100.7"), k("2002:c633:6407:ffff::2"));
        assert_ne!(k("198.51.100.7"), k("198.51.100.8"));
        // Not an address: stands for itself, never for an address.
        assert_eq!(k("unknown"), k(" Unknown "));
        assert_ne!(k("unknown"), k("198.51.100.7"));
        // Keys change with the day and the secret, like visitor keys.
        let tomorrow = daily_salt(b"secret", "2026-11-23");
        assert_ne!(k("198.51.100.7"), address_key(&tomorrow, "198.51.100.7"));
        // The visitor key still tells User-Agents apart (views count once per browser),
        // and is never the address key.
        assert_ne!(
            visitor_key(&s, "198.51.100.7", "a"),
            visitor_key(&s, "198.51.100.7", "b")
        );
        assert_ne!(visitor_key(&s, "198.51.100.7", ""), k("198.51.100.7"));
    }

    #[test]
    fn address_prefixes() {
        assert_eq!(address_prefix("198.51.100.7"), "198.51.100.7");
        assert_eq!(address_prefix("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(
            address_prefix("2001:db8:aa:bb:cc:dd:ee:ff"),
            "2001:db8:aa:bb::/64"
        );
        assert_eq!(address_prefix("::1"), "::/64");
        assert_eq!(address_prefix("fe80::1%eth0"), "other:fe80::1%eth0");
        assert_eq!(address_prefix(""), "other:");
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
