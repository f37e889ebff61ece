//! How the Worker uses the shared token format (`terminal-protocol`): what lifetime it
//! gives tokens and which headers carry a token (and the optional Cloudflare Access
//! service token) to the origin. The format itself is defined once, in
//! `terminal_protocol::token`, and verified by `folio-pty` with the same code.

use terminal_protocol::{CLIENT_KEY_LEN, MAX_TOKEN_TTL_SECS, NONCE_LEN};

/// Lifetime of a minted token. The Worker connects within milliseconds of minting, so a
/// short life only narrows the replay window; it stays well under the protocol's maximum
/// to tolerate clock skew between the edge and the origin.
pub const TOKEN_TTL_SECS: u64 = 30;
const _: () = assert!(TOKEN_TTL_SECS <= MAX_TOKEN_TTL_SECS);

pub use terminal_protocol::MIN_SECRET_LEN;

/// Why the Worker will not mint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// `TERMINAL_SECRET` is missing or shorter than [`MIN_SECRET_LEN`].
    #[error(
        "TERMINAL_SECRET must be set (wrangler secret put) and at least {MIN_SECRET_LEN} bytes"
    )]
    WeakSecret,
}

/// Mints the token for one upstream connection of `client` to `demo`, valid
/// [`TOKEN_TTL_SECS`].
///
/// `client` is the visitor's address key ([`crate::visitor::address_key`]). Behind the
/// Worker, every upstream request comes from the Worker's own address, so the origin caps
/// sessions per client on this claim; signed into the token, it cannot be altered or
/// chosen by anyone without the secret (a header beside the token could).
pub fn mint_for(
    secret: &[u8],
    demo: &str,
    now_unix: u64,
    nonce: [u8; NONCE_LEN],
    client: &[u8; CLIENT_KEY_LEN],
) -> Result<String, MintError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(MintError::WeakSecret);
    }
    Ok(terminal_protocol::mint(
        secret,
        demo,
        now_unix + TOKEN_TTL_SECS,
        nonce,
        client,
    ))
}

/// Cloudflare Access service-token credentials, when the tunnel hostname is protected by
/// an Access application (recommended: then even the origin's TLS endpoint is unreachable
/// without them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessCredentials {
    /// `CF_ACCESS_CLIENT_ID` secret.
    pub client_id: String,
    /// `CF_ACCESS_CLIENT_SECRET` secret.
    pub client_secret: String,
}

impl AccessCredentials {
    /// Both secrets, or `None` if either is missing or empty.
    pub fn from_parts(id: Option<String>, secret: Option<String>) -> Option<Self> {
        match (id, secret) {
            (Some(client_id), Some(client_secret))
                if !client_id.is_empty() && !client_secret.is_empty() =>
            {
                Some(Self {
                    client_id,
                    client_secret,
                })
            }
            _ => None,
        }
    }
}

/// The headers of the upstream upgrade request: the token as a bearer credential (never
/// in the URL, where logs would keep it) and the Access credentials if any. Who the client
/// is travels inside the token ([`mint_for`]), not in a header of its own.
pub fn upstream_headers(
    token: &str,
    access: Option<&AccessCredentials>,
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("Upgrade", "websocket".to_string()),
        ("Authorization", format!("Bearer {token}")),
    ];
    if let Some(a) = access {
        h.push(("CF-Access-Client-Id", a.client_id.clone()));
        h.push(("CF-Access-Client-Secret", a.client_secret.clone()));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn minted_tokens_verify_at_the_origin() {
        let token = mint_for(SECRET, "minirt", 1_000, [7; NONCE_LEN], &[3; 32]).unwrap();
        let claims = terminal_protocol::verify(SECRET, &token, "minirt", 1_000).unwrap();
        assert_eq!(claims.expires, 1_000 + TOKEN_TTL_SECS);
        assert_eq!(claims.client, [3; 32], "the client claim is signed in");
        assert!(terminal_protocol::verify(SECRET, &token, "other", 1_000).is_err());
        assert!(
            terminal_protocol::verify(SECRET, &token, "minirt", 1_000 + TOKEN_TTL_SECS).is_err()
        );
        assert!(terminal_protocol::verify(
            b"another secret, also 32 bytes!!",
            &token,
            "minirt",
            1_000
        )
        .is_err());
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert_eq!(
            mint_for(b"short", "a", 0, [0; NONCE_LEN], &[0; 32]),
            Err(MintError::WeakSecret)
        );
    }

    #[test]
    fn headers() {
        let h = upstream_headers("t", None);
        assert_eq!(h[1], ("Authorization", "Bearer t".to_string()));
        assert_eq!(h.len(), 2);
        // Threat 9 (issue 11): nothing but the token says who the client is.
        assert!(!h
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("x-folio-visitor")));
        let a = AccessCredentials::from_parts(Some("id".into()), Some("s".into())).unwrap();
        assert_eq!(upstream_headers("t", Some(&a)).len(), 4);
        assert!(AccessCredentials::from_parts(Some("id".into()), None).is_none());
        assert!(AccessCredentials::from_parts(Some("".into()), Some("s".into())).is_none());
    }
}
