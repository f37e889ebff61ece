//! The single-use half of token checking: a token's signature proves the Worker minted it,
//! this cache proves it is used once. A nonce is remembered until its token expires, after
//! which the token is refused as expired anyway, so memory stays bounded by the rate at
//! which the Worker mints tokens times [`terminal_protocol::MAX_TOKEN_TTL_SECS`].

use std::collections::HashMap;
use std::sync::Mutex;

use terminal_protocol::NONCE_LEN;

/// Nonces seen, with the expiry of the token that carried them.
#[derive(Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<[u8; NONCE_LEN], u64>>,
}

impl ReplayCache {
    /// Records `nonce` and returns true if it had not been seen (the token may be used),
    /// false if it is a replay. Forgets nonces whose tokens expired before `now`.
    pub fn first_use(&self, nonce: [u8; NONCE_LEN], expires: u64, now: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= 1024 {
            seen.retain(|_, exp| *exp > now);
        }
        if seen.get(&nonce).is_some_and(|exp| *exp > now) {
            return false;
        }
        seen.insert(nonce, expires);
        true
    }

    /// Number of nonces remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_refused() {
        let c = ReplayCache::default();
        assert!(c.first_use([1; 16], 100, 50));
        assert!(!c.first_use([1; 16], 100, 51));
        assert!(c.first_use([2; 16], 100, 51));
    }

    #[test]
    fn expired_entries_are_forgotten() {
        let c = ReplayCache::default();
        for i in 0..1024u32 {
            let mut n = [0u8; 16];
            n[..4].copy_from_slice(&i.to_le_bytes());
            assert!(c.first_use(n, 10, 5));
        }
        assert_eq!(c.len(), 1024);
        assert!(c.first_use([0xff; 16], 100, 20));
        assert_eq!(c.len(), 1);
    }
}
