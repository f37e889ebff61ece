//! Pinned npm packages without npm: a package's tarball fetched once from the npm registry,
//! checked against an integrity hash compiled into folio (sha512, as `package-lock.json` has
//! it), and the few files folio needs unpacked into the user's cache folder.
//!
//! Nothing half-written is ever used: files are unpacked into a temporary folder beside the
//! cache entry, the integrity is written last, and the folder is renamed into place in one
//! step. An entry whose recorded integrity is not the pinned one is ignored (and replaced).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha512};

/// Environment variable: the registry to fetch from instead of [`DEFAULT_REGISTRY`] (a mirror,
/// or a local test registry).
pub(crate) const REGISTRY_ENV: &str = "FOLIO_NPM_REGISTRY";

/// Environment variable: the cache folder instead of `$XDG_CACHE_HOME/folio` or
/// `~/.cache/folio`.
pub(crate) const CACHE_ENV: &str = "FOLIO_CACHE_DIR";

/// Environment variable honoured by debug builds only (the test suite): `name@version=sha512-…`
/// pairs, comma-separated, replacing the compiled-in pins so a test can serve a tarball it
/// built. A release binary ignores it.
pub(crate) const TEST_PINS_ENV: &str = "FOLIO_TEST_NPM_INTEGRITY";

/// The public npm registry.
pub(crate) const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org";

/// Largest tarball accepted (the xterm packages are well under 2 MB).
const MAX_TARBALL: u64 = 32 * 1024 * 1024;

/// The file recording, inside a cache entry, the integrity it was unpacked from.
const INTEGRITY_FILE: &str = ".integrity";

/// An npm package at an exact version with the integrity its tarball must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pinned {
    /// The package name, scoped or not (`@xterm/xterm`).
    pub name: &'static str,
    /// The exact version.
    pub version: &'static str,
    /// Subresource-integrity string of the tarball (`sha512-<base64>`).
    pub integrity: &'static str,
}

/// Why a package could not be provided.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The registry did not answer, or not with the tarball.
    #[error("cannot download {url}: {reason}")]
    Download {
        /// The tarball's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The tarball is not the pinned one.
    #[error("{url} does not match the pinned integrity (expected {expected}, got {got}): refused")]
    Integrity {
        /// The tarball's URL.
        url: String,
        /// The pinned integrity.
        expected: String,
        /// The downloaded tarball's.
        got: String,
    },
    /// The tarball is not a gzipped tar with the needed files.
    #[error("the tarball of {package} is unusable: {reason}")]
    Archive {
        /// `name@version`.
        package: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The cache folder cannot be written.
    #[error("cannot write the cache folder {}: {source}", path.display())]
    Cache {
        /// The folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl Pinned {
    /// `name@version`.
    pub(crate) fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The integrity to check against: the compiled-in pin (or, in a debug build only, the
    /// test suite's replacement).
    fn expected_integrity(&self) -> String {
        if cfg!(debug_assertions) {
            if let Ok(pins) = std::env::var(TEST_PINS_ENV) {
                let id = self.id();
                for pair in pins.split(',') {
                    if let Some((k, v)) = pair.split_once('=') {
                        if k.trim() == id {
                            return v.trim().to_string();
                        }
                    }
                }
            }
        }
        self.integrity.to_string()
    }

    /// The tarball's URL on `registry` (`…/@scope/name/-/name-1.0.0.tgz`).
    pub(crate) fn tarball_url(&self, registry: &str) -> String {
        let base = self.name.rsplit('/').next().unwrap_or(self.name);
        format!(
            "{}/{}/-/{base}-{}.tgz",
            registry.trim_end_matches('/'),
            self.name,
            self.version
        )
    }

    /// The cache entry's folder name (`@scope+name@version`).
    fn entry_name(&self) -> String {
        format!("{}@{}", self.name.replace('/', "+"), self.version)
    }
}

/// The cache folder: `$FOLIO_CACHE_DIR`, else `$XDG_CACHE_HOME/folio`, else `~/.cache/folio`.
pub(crate) fn cache_root() -> Option<PathBuf> {
    let nonempty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    nonempty(CACHE_ENV)
        .or_else(|| nonempty("XDG_CACHE_HOME").map(|d| d.join("folio")))
        .or_else(|| nonempty("HOME").map(|d| d.join(".cache").join("folio")))
}

/// The registry to fetch from: `$FOLIO_NPM_REGISTRY` or the public one.
pub(crate) fn registry() -> String {
    std::env::var(REGISTRY_ENV)
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| DEFAULT_REGISTRY.to_string())
}

/// The SRI string (`sha512-<base64>`) of `bytes`.
pub(crate) fn integrity_of(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
    )
}

/// The cache entry of `pkg` under `cache` when it is complete and from the pinned tarball.
pub(crate) fn cached(pkg: &Pinned, files: &[&str], cache: &Path) -> Option<PathBuf> {
    let dir = cache.join("npm").join(pkg.entry_name());
    let recorded = std::fs::read_to_string(dir.join(INTEGRITY_FILE)).ok()?;
    (recorded.trim() == pkg.expected_integrity() && files.iter().all(|f| dir.join(f).is_file()))
        .then_some(dir)
}

/// The folder holding `files` of `pkg` (paths inside the package): the cache entry, made by
/// downloading the tarball from `registry` when it is missing.
pub(crate) fn ensure(
    pkg: &Pinned,
    files: &[&str],
    cache: &Path,
    registry: &str,
) -> Result<PathBuf, FetchError> {
    if let Some(dir) = cached(pkg, files, cache) {
        return Ok(dir);
    }
    let url = pkg.tarball_url(registry);
    let tgz = download(&url)?;
    install(pkg, files, cache, &url, &tgz)
}

/// Checks `tgz` against the pin and unpacks `files` of it into the cache entry.
pub(crate) fn install(
    pkg: &Pinned,
    files: &[&str],
    cache: &Path,
    url: &str,
    tgz: &[u8],
) -> Result<PathBuf, FetchError> {
    let expected = pkg.expected_integrity();
    let got = integrity_of(tgz);
    if got != expected {
        return Err(FetchError::Integrity {
            url: url.to_string(),
            expected,
            got,
        });
    }
    let wanted = unpack(pkg, tgz, files)?;
    let npm = cache.join("npm");
    let cache_err = |source| FetchError::Cache {
        path: npm.clone(),
        source,
    };
    std::fs::create_dir_all(&npm).map_err(cache_err)?;
    let tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempdir_in(&npm)
        .map_err(cache_err)?;
    for (rel, bytes) in &wanted {
        let path = tmp.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(cache_err)?;
        }
        std::fs::write(&path, bytes).map_err(cache_err)?;
    }
    std::fs::write(tmp.path().join(INTEGRITY_FILE), &expected).map_err(cache_err)?;
    let dir = npm.join(pkg.entry_name());
    // A stale or incomplete entry (another pin, a file removed by hand) is replaced.
    if dir.exists() && cached(pkg, files, cache).is_none() {
        std::fs::remove_dir_all(&dir).map_err(cache_err)?;
    }
    let tmp = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another folio finished first: its entry is as good as ours.
        return cached(pkg, files, cache).ok_or_else(|| cache_err(e));
    }
    Ok(dir)
}

/// `files` (paths inside the package) read out of a package tarball, whose entries npm puts
/// under `package/`. Only those exact paths are read, so no entry can land anywhere else.
fn unpack(pkg: &Pinned, tgz: &[u8], files: &[&str]) -> Result<Vec<(String, Vec<u8>)>, FetchError> {
    let bad = |reason: String| FetchError::Archive {
        package: pkg.id(),
        reason,
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|e| bad(e.to_string()))?;
        let path = path.to_string_lossy().replace('\\', "/");
        let Some(rel) = path.split_once('/').map(|(_, r)| r.to_string()) else {
            continue;
        };
        if files.contains(&rel.as_str()) && !found.iter().any(|(r, _)| *r == rel) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| bad(e.to_string()))?;
            found.push((rel, bytes));
        }
    }
    if let Some(missing) = files.iter().find(|f| !found.iter().any(|(r, _)| r == *f)) {
        return Err(bad(format!("it has no {missing}")));
    }
    Ok(found)
}

/// GETs `url` (30 s overall, at most [`MAX_TARBALL`] bytes).
fn download(url: &str) -> Result<Vec<u8>, FetchError> {
    let err = |reason: String| FetchError::Download {
        url: url.to_string(),
        reason,
    };
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .user_agent(concat!("folio/", env!("CARGO_PKG_VERSION")));
    if let Some(roots) = system_roots() {
        config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
    }
    let agent: ureq::Agent = config.build().into();
    let mut resp = agent.get(url).call().map_err(|e| err(e.to_string()))?;
    resp.body_mut()
        .with_config()
        .limit(MAX_TARBALL)
        .read_to_vec()
        .map_err(|e| err(e.to_string()))
}

/// The system's trusted certificates (`$SSL_CERT_FILE`, else the usual bundle paths), so a
/// machine whose administrator added a root (a company proxy) can fetch; `None` keeps the
/// built-in Mozilla roots. Whoever serves the tarball, its integrity is checked against the
/// pin, so the roots decide only who may answer, never what is accepted.
fn system_roots() -> Option<ureq::tls::RootCerts> {
    let candidates = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/cert.pem",
            ]
            .map(PathBuf::from),
        );
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            return Some(certs.into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut t = tar::Builder::new(gz);
        for (path, bytes) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            t.append_data(&mut h, path, *bytes).unwrap();
        }
        t.into_inner().unwrap().finish().unwrap()
    }

    fn pin(integrity: &'static str) -> Pinned {
        Pinned {
            name: "@scope/pkg",
            version: "1.2.3",
            integrity,
        }
    }

    #[test]
    fn tarball_urls_follow_the_registry_layout() {
        assert_eq!(
            pin("x").tarball_url("http://127.0.0.1:9/"),
            "http://127.0.0.1:9/@scope/pkg/-/pkg-1.2.3.tgz"
        );
        let plain = Pinned {
            name: "left-pad",
            version: "1.0.0",
            integrity: "",
        };
        assert_eq!(
            plain.tarball_url(DEFAULT_REGISTRY),
            "https://registry.npmjs.org/left-pad/-/left-pad-1.0.0.tgz"
        );
    }

    #[test]
    fn integrity_is_the_sri_sha512() {
        // `printf abc | openssl dgst -sha512 -binary | base64`
        assert_eq!(
            integrity_of(b"abc"),
            "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw=="
        );
    }

    #[test]
    fn a_matching_tarball_is_unpacked_and_reused() {
        let tgz = tarball(&[
            ("package/lib/a.mjs", b"export const a = 1;"),
            ("package/css/a.css", b".a{}"),
            ("package/README.md", b"not wanted"),
        ]);
        let sri: &'static str = Box::leak(integrity_of(&tgz).into_boxed_str());
        let cache = tempfile::tempdir().unwrap();
        let files = ["lib/a.mjs", "css/a.css"];
        let dir = install(&pin(sri), &files, cache.path(), "u", &tgz).unwrap();
        assert_eq!(
            std::fs::read(dir.join("lib/a.mjs")).unwrap(),
            b"export const a = 1;"
        );
        assert!(!dir.join("README.md").exists());
        assert_eq!(cached(&pin(sri), &files, cache.path()), Some(dir.clone()));
        // The registry is not asked again (nothing listens there).
        let again = ensure(&pin(sri), &files, cache.path(), "http://127.0.0.1:9").unwrap();
        assert_eq!(again, dir);
        // Another pin does not take this entry.
        assert_eq!(cached(&pin("sha512-other"), &files, cache.path()), None);
    }

    #[test]
    fn a_tarball_with_the_wrong_hash_is_refused_and_nothing_is_cached() {
        let tgz = tarball(&[("package/lib/a.mjs", b"evil()")]);
        let good = tarball(&[("package/lib/a.mjs", b"good()")]);
        let sri: &'static str = Box::leak(integrity_of(&good).into_boxed_str());
        let cache = tempfile::tempdir().unwrap();
        let e = install(&pin(sri), &["lib/a.mjs"], cache.path(), "u", &tgz).unwrap_err();
        assert!(matches!(e, FetchError::Integrity { .. }), "{e}");
        assert!(e.to_string().contains("refused"), "{e}");
        assert_eq!(
            std::fs::read_dir(cache.path()).unwrap().count(),
            0,
            "cache written"
        );
    }

    #[test]
    fn a_tarball_without_a_needed_file_leaves_no_entry() {
        let tgz = tarball(&[("package/lib/a.mjs", b"a()")]);
        let sri: &'static str = Box::leak(integrity_of(&tgz).into_boxed_str());
        let cache = tempfile::tempdir().unwrap();
        let e = install(
            &pin(sri),
            &["lib/a.mjs", "lib/b.mjs"],
            cache.path(),
            "u",
            &tgz,
        )
        .unwrap_err();
        assert!(e.to_string().contains("lib/b.mjs"), "{e}");
        assert!(
            !cache.path().join("npm").exists()
                || std::fs::read_dir(cache.path().join("npm")).unwrap().count() == 0
        );
        // Garbage is refused as an archive, not as a hash (its hash matches its own pin).
        let junk = b"not a tarball".to_vec();
        let sri: &'static str = Box::leak(integrity_of(&junk).into_boxed_str());
        let e = install(&pin(sri), &["lib/a.mjs"], cache.path(), "u", &junk).unwrap_err();
        assert!(matches!(e, FetchError::Archive { .. }), "{e}");
    }

    #[test]
    fn unreachable_registry_is_a_download_error() {
        let cache = tempfile::tempdir().unwrap();
        let e = ensure(
            &pin("sha512-x"),
            &["lib/a.mjs"],
            cache.path(),
            "http://127.0.0.1:9",
        )
        .unwrap_err();
        assert!(matches!(e, FetchError::Download { .. }), "{e}");
        assert!(!cache.path().join("npm").exists());
    }
}
