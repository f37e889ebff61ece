//! How the Worker uses the shared token format (`terminal-protocol`): what lifetime it
//! gives tokens and which headers carry a token (and the optional Cloudflare Access
//! service token) to the origin. The format itself is defined once, in
//! `terminal_protocol::token`, and verified by `folio-pty` with the same code.

use terminal_protocol::{MAX_TOKEN_TTL_SECS, NONCE_LEN};

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

/// Mints the token for one upstream connection to `demo`, valid [`TOKEN_TTL_SECS`].
pub fn mint_for(
    secret: &[u8],
    demo: &str,
    now_unix: u64,
    nonce: [u8; NONCE_LEN],
) -> Result<String, MintError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(MintError::WeakSecret);
    }
    Ok(terminal_protocol::mint(
        secret,
        demo,
        now_unix + TOKEN_TTL_SECS,
        nonce,
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

/// Header carrying the visitor's daily key (hex, [`crate::visitor`]) to the origin.
///
/// Behind the Worker, `CF-Connecting-IP` on the upstream request is the Worker's own
/// address for every visitor, so an origin that caps sessions per client needs another
/// key. This one is opaque (no IP), and trustworthy exactly when the request's token
/// verifies, since only the Worker can mint tokens.
pub const VISITOR_HEADER: &str = "X-Folio-Visitor";

/// The headers of the upstream upgrade request: the token as a bearer credential (never
/// in the URL, where logs would keep it), the visitor key, and the Access credentials if
/// any.
pub fn upstream_headers(
    token: &str,
    visitor: &str,
    access: Option<&AccessCredentials>,
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("Upgrade", "websocket".to_string()),
        ("Authorization", format!("Bearer {token}")),
        (VISITOR_HEADER, visitor.to_string()),
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
        let token = mint_for(SECRET, "minirt", 1_000, [7; NONCE_LEN]).unwrap();
        let claims = terminal_protocol::verify(SECRET, &token, "minirt", 1_000).unwrap();
        assert_eq!(claims.expires, 1_000 + TOKEN_TTL_SECS);
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
            mint_for(b"short", "a", 0, [0; NONCE_LEN]),
            Err(MintError::WeakSecret)
        );
    }

    #[test]
    fn headers() {
        let h = upstream_headers("t", "ab", None);
        assert_eq!(h[1], ("Authorization", "Bearer t".to_string()));
        assert_eq!(h[2], (VISITOR_HEADER, "ab".to_string()));
        assert_eq!(h.len(), 3);
        let a = AccessCredentials::from_parts(Some("id".into()), Some("s".into())).unwrap();
        assert_eq!(upstream_headers("t", "ab", Some(&a)).len(), 5);
        assert!(AccessCredentials::from_parts(Some("id".into()), None).is_none());
        assert!(AccessCredentials::from_parts(Some("".into()), Some("s".into())).is_none());
    }
}
