//! The HMAC secret shared with the Worker, and the randomness the origin needs.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context as _};

use terminal_protocol::MIN_SECRET_LEN;

/// Reads the secret file (trailing whitespace, e.g. the newline of `echo`, is dropped).
/// Refuses short secrets; warns if the file is readable by group or others.
pub fn read_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes =
        fs::read(path).with_context(|| format!("reading secret file {}", path.display()))?;
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let secret = bytes[..end].to_vec();
    if secret.len() < MIN_SECRET_LEN {
        bail!(
            "secret file {} holds {} bytes; at least {MIN_SECRET_LEN} are needed (e.g. `openssl rand -hex 32 > {}`)",
            path.display(),
            secret.len(),
            path.display()
        );
    }
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            crate::warn!("secret_file_permissions", None, {
                "path": path.display().to_string(),
                "mode": format!("{:o}", meta.permissions().mode() & 0o777),
                "hint": "chmod 600 the secret file",
            });
        }
    }
    Ok(secret)
}

/// Fills an array from the kernel's CSPRNG (for nonces and session ids).
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .expect("/dev/urandom must be readable");
    out
}

/// Seconds since the Unix epoch, for token checks.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A new random session id (16 hex digits).
pub fn session_id() -> String {
    random::<8>().iter().map(|b| format!("{b:02x}")).collect()
}
