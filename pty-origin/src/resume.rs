//! Resumable sessions: what lets a visitor whose connection dropped re-attach to the same
//! PTY within the grace period and see what it missed.
//!
//! - [`Ring`]: the last [`RING_BYTES`] of a session's output, addressed by absolute offset,
//!   so a resuming client says how much it received and gets exactly the rest (or is told
//!   how much was dropped). One per session: the origin holds at most
//!   `max_sessions × RING_BYTES` of output, however much a demo writes.
//! - [`Registry`]: the sessions that can be resumed, each with the one resume nonce it
//!   accepts next (single use: taking it spends it; the session then issues a fresh one).
//! - [`Registry::claim`]: every check a resume request passes before a socket is handed to
//!   its session: signature, expiry, demo, session, visitor key, nonce (constant time).
//!
//! No resume nonce is persisted: a session exists only in this process, so a restart that
//! would forget spent nonces also ends every session they could resume.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::ws::WebSocket;
use terminal_protocol::{verify_resume, WindowSize, CLIENT_KEY_LEN, NONCE_LEN};
use tokio::sync::mpsc;

/// How much output a session keeps for a client that resumes.
pub const RING_BYTES: usize = 256 * 1024;
/// How often an attached session gets a fresh resume token (the old one stops working).
pub const REFRESH_SECS: u64 = 60;
/// How long a resume token lives beyond the grace period (at least one refresh interval
/// longer, so the token a client holds when it drops outlives the grace period).
pub const TOKEN_SLACK_SECS: u64 = 2 * REFRESH_SECS;

/// The last [`RING_BYTES`] of a session's output, with the absolute offset of its end.
#[derive(Debug, Default)]
pub struct Ring {
    buf: VecDeque<u8>,
    total: u64,
}

impl Ring {
    /// Appends output, dropping the oldest bytes beyond [`RING_BYTES`].
    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let keep = bytes.len().min(RING_BYTES);
        let bytes = &bytes[bytes.len() - keep..];
        let over = (self.buf.len() + bytes.len()).saturating_sub(RING_BYTES);
        self.buf.drain(..over);
        self.buf.extend(bytes);
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Output bytes the session has produced in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// What a client that received `received` bytes missed: `(dropped, bytes)`, where
    /// `dropped` were lost (older than the ring) and `bytes` are the rest. `None` when the
    /// client claims more than was ever sent.
    pub fn since(&self, received: u64) -> Option<(u64, Vec<u8>)> {
        if received > self.total {
            return None;
        }
        let start = self.total - self.buf.len() as u64;
        let dropped = start.saturating_sub(received);
        let from = received.saturating_sub(start) as usize;
        Some((dropped, self.buf.iter().skip(from).copied().collect()))
    }
}

/// A connection handed to its session by a successful resume.
pub struct Attach {
    /// The new client socket (its hello already read).
    pub socket: WebSocket,
    /// Output bytes the client already has.
    pub received: u64,
    /// The client's terminal size now.
    pub size: WindowSize,
}

/// One resumable session, as the registry knows it.
pub struct Resumable {
    demo: String,
    client: [u8; CLIENT_KEY_LEN],
    nonce: Mutex<Option<[u8; NONCE_LEN]>>,
    attach: mpsc::Sender<Attach>,
}

impl Resumable {
    /// Draws the session's next resume nonce (the previous one stops working).
    pub fn next_nonce(&self) -> [u8; NONCE_LEN] {
        let n = crate::secret::random::<NONCE_LEN>();
        *self.nonce.lock().unwrap_or_else(|e| e.into_inner()) = Some(n);
        n
    }
}

/// Why a resume was refused (logged; the client sees close code 4410 for all of them).
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The token itself did not verify.
    #[error(transparent)]
    Token(#[from] terminal_protocol::ResumeError),
    /// No such session (it ended, its grace expired, or never existed here).
    #[error("no such session")]
    NoSession,
    /// The connection's visitor key is not the session's.
    #[error("resume token belongs to another visitor")]
    OtherClient,
    /// The token's nonce is not the session's current one: spent, or superseded.
    #[error("resume token already used or superseded")]
    Spent,
}

/// The sessions that can be resumed, by id.
#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<String, Arc<Resumable>>>,
}

impl Registry {
    /// Registers a session; returns its entry and the receiver its loop takes new
    /// connections from.
    pub fn register(
        &self,
        id: &str,
        demo: &str,
        client: [u8; CLIENT_KEY_LEN],
    ) -> (Arc<Resumable>, mpsc::Receiver<Attach>) {
        let (tx, rx) = mpsc::channel(1);
        let entry = Arc::new(Resumable {
            demo: demo.to_owned(),
            client,
            nonce: Mutex::new(None),
            attach: tx,
        });
        self.lock().insert(id.to_owned(), entry.clone());
        (entry, rx)
    }

    /// Forgets a session (it ended).
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Resumable>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks a resume token presented on a connection to `demo` whose start token named
    /// `client`, and spends it. On success, the sender to give the socket to.
    pub fn claim(
        &self,
        secret: &[u8],
        token: &str,
        demo: &str,
        client: &[u8; CLIENT_KEY_LEN],
        now: u64,
    ) -> Result<(String, mpsc::Sender<Attach>), ClaimError> {
        let claims = verify_resume(secret, token, demo, now)?;
        if !ct_eq(&claims.client, client) {
            return Err(ClaimError::OtherClient);
        }
        let entry = self
            .lock()
            .get(&claims.session)
            .cloned()
            .ok_or(ClaimError::NoSession)?;
        if entry.demo != demo || !ct_eq(&entry.client, client) {
            return Err(ClaimError::OtherClient);
        }
        let mut current = entry.nonce.lock().unwrap_or_else(|e| e.into_inner());
        match *current {
            Some(n) if ct_eq(&n, &claims.nonce) => *current = None,
            _ => return Err(ClaimError::Spent),
        }
        Ok((claims.session, entry.attach.clone()))
    }
}

/// Equality in time independent of where the inputs differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_tail_and_counts_what_it_dropped() {
        let mut r = Ring::default();
        r.push(b"hello ");
        r.push(b"world");
        assert_eq!(r.since(0), Some((0, b"hello world".to_vec())));
        assert_eq!(r.since(6), Some((0, b"world".to_vec())));
        assert_eq!(r.since(11), Some((0, vec![])));
        assert_eq!(r.since(12), None);
        let flood = vec![b'y'; RING_BYTES * 3 + 5];
        r.push(&flood);
        assert_eq!(r.len(), RING_BYTES);
        assert_eq!(r.total(), 11 + flood.len() as u64);
        let (dropped, rest) = r.since(6).unwrap();
        assert_eq!(dropped, r.total() - RING_BYTES as u64 - 6);
        assert_eq!(rest.len(), RING_BYTES);
        for _ in 0..100 {
            r.push(&[b'z'; 10_000]);
        }
        assert_eq!(r.len(), RING_BYTES);
    }

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn claims_are_single_use_and_bound() {
        let secret = b"a test secret that is longer than thirty-two bytes";
        let reg = Registry::default();
        let (entry, _rx) = reg.register("0123456789abcdef", "shell", [1; 32]);
        let n = entry.next_nonce();
        let now = 1_800_000_000;
        let tok = terminal_protocol::mint_resume(
            secret,
            "shell",
            "0123456789abcdef",
            now + 60,
            n,
            &[1; 32],
        );
        assert!(matches!(
            reg.claim(secret, &tok, "shell", &[2; 32], now),
            Err(ClaimError::OtherClient)
        ));
        assert!(reg.claim(secret, &tok, "shell", &[1; 32], now).is_ok());
        assert!(matches!(
            reg.claim(secret, &tok, "shell", &[1; 32], now),
            Err(ClaimError::Spent)
        ));
        reg.remove("0123456789abcdef");
        assert!(matches!(
            reg.claim(secret, &tok, "shell", &[1; 32], now),
            Err(ClaimError::NoSession)
        ));
    }
}
