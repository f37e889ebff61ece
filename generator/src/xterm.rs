//! The live terminal's browser side: xterm.js and its addons, put into the output with a
//! content hash. They come from the site's `node_modules` when it has them (npm packages
//! pinned in `package.json`), else from the user's cache folder, filled once from the npm
//! registry at the versions and integrity hashes pinned here ([`crate::npm`]). A site made
//! by `folio new` therefore needs neither npm nor a `package.json`.
//!
//! They are added only when a published page has a demo and `[terminal] enabled` is on, so a
//! site without demos carries no terminal code. When neither source has them (offline with an
//! empty cache), the build warns once per process — `folio serve` does not repeat it on every
//! rebuild — and the pages say the terminal is unavailable.
//!
//! Adding an addon is one entry in [`PACKAGES`] and one in [`FILES`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use crate::assets::{Assets, Payload};
use crate::npm::{self, Pinned};
use folio_content::config::Config;
use folio_content::content::Content;
use folio_content::diagnostics::{Diagnostic, Diagnostics};

/// Environment variable naming a `node_modules` folder to use instead of searching.
pub(crate) const NODE_MODULES_ENV: &str = "FOLIO_NODE_MODULES";

/// The npm packages of the terminal, at the versions of the root `package.json`, with the
/// integrity of their tarballs from `package-lock.json`.
pub(crate) const PACKAGES: &[Pinned] = &[
    Pinned {
        name: "@xterm/xterm",
        version: "6.0.0",
        integrity: "sha512-TQwDdQGtwwDt+2cgKDLn0IRaSxYu1tSUjgKarSDkUM0ZNiSRXFpjxEsvc/Zgc5kq5omJ+V0a8/kIM2WD3sMOYg==",
    },
    Pinned {
        name: "@xterm/addon-fit",
        version: "0.11.0",
        integrity: "sha512-jYcgT6xtVYhnhgxh3QgYDnnNMYTcf8ElbxxFzX0IZo+vabQqSPAjC3c1wJrKB5E19VwQei89QCiZZP86DCPF7g==",
    },
    Pinned {
        name: "@xterm/addon-web-links",
        version: "0.12.0",
        integrity: "sha512-4Smom3RPyVp7ZMYOYDoC/9eGJJJqYhnPLGGqJ6wOBfB8VxPViJNSKdgRYb8NpaM6YSelEKbA2SStD7lGyqaobw==",
    },
];

/// One file of the terminal's browser code.
#[derive(Debug, Clone, Copy)]
pub(crate) struct File {
    /// The package it is in (a name in [`PACKAGES`]).
    pub package: &'static str,
    /// Its path inside the package.
    pub path: &'static str,
    /// Its logical path in the output (hashed when written).
    pub output: &'static str,
    /// Its key under `config.terminal.assets` in templates.
    pub key: &'static str,
}

/// Every file the terminal needs.
pub(crate) const FILES: &[File] = &[
    File {
        package: "@xterm/xterm",
        path: "lib/xterm.mjs",
        output: "vendor/xterm/xterm.mjs",
        key: "xterm_js",
    },
    File {
        package: "@xterm/xterm",
        path: "css/xterm.css",
        output: "vendor/xterm/xterm.css",
        key: "xterm_css",
    },
    File {
        package: "@xterm/addon-fit",
        path: "lib/addon-fit.mjs",
        output: "vendor/xterm/addon-fit.mjs",
        key: "fit_js",
    },
    File {
        package: "@xterm/addon-web-links",
        path: "lib/addon-web-links.mjs",
        output: "vendor/xterm/addon-web-links.mjs",
        key: "links_js",
    },
];

/// The hashed URLs of the terminal's browser code, by template key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XtermAssets(BTreeMap<&'static str, String>);

/// Packages that could not be provided in this process, with why: not retried, not
/// re-reported (a `folio serve` session offline would otherwise wait on the network and warn
/// on every rebuild).
static UNAVAILABLE: Mutex<BTreeMap<&'static str, String>> = Mutex::new(BTreeMap::new());

/// The files of `package`, as paths inside it.
fn files_of(package: &str) -> Vec<&'static str> {
    FILES
        .iter()
        .filter(|f| f.package == package)
        .map(|f| f.path)
        .collect()
}

/// The `node_modules` folder that has `package`'s files: `$FOLIO_NODE_MODULES`, else the site
/// folder's or its nearest ancestor's.
pub(crate) fn find_node_modules(root: &Path, package: &str) -> Option<PathBuf> {
    let files = files_of(package);
    let has = |d: &Path| files.iter().all(|f| d.join(package).join(f).is_file());
    if let Some(d) = std::env::var_os(NODE_MODULES_ENV) {
        let d = PathBuf::from(d);
        return has(&d).then_some(d);
    }
    root.ancestors()
        .map(|a| a.join("node_modules"))
        .find(|d| has(d))
}

/// Whether the site needs the terminal's browser code.
pub(crate) fn needed(cfg: &Config, content: &Content) -> bool {
    cfg.terminal.enabled && content.pages.iter().any(|p| p.demo.is_some())
}

/// The folder holding `pkg`'s files: `node_modules/<name>`, else the cache (fetched into it
/// when missing). `Err` says why neither has them.
fn locate(root: &Path, pkg: &Pinned) -> Result<PathBuf, String> {
    if let Some(nm) = find_node_modules(root, pkg.name) {
        return Ok(nm.join(pkg.name));
    }
    if let Some(why) = UNAVAILABLE.lock().expect("poisoned").get(pkg.name) {
        return Err(why.clone());
    }
    let files = files_of(pkg.name);
    let result = match npm::cache_root() {
        None => Err(format!("no cache folder (set {} or HOME)", npm::CACHE_ENV)),
        Some(cache) => {
            npm::ensure(pkg, &files, &cache, &npm::registry()).map_err(|e| e.to_string())
        }
    };
    if let Err(why) = &result {
        UNAVAILABLE
            .lock()
            .expect("poisoned")
            .insert(pkg.name, why.clone());
    }
    result
}

/// Adds the terminal's files to the build's static files when the site needs them; warns
/// (once per process) and returns `None` when they cannot be had.
pub(crate) fn add(
    root: &Path,
    cfg: &Config,
    content: &Content,
    assets: &mut Assets,
    diags: &mut Diagnostics,
) -> Option<XtermAssets> {
    if !needed(cfg, content) {
        return None;
    }
    let mut dirs = BTreeMap::new();
    for pkg in PACKAGES {
        match locate(root, pkg) {
            Ok(dir) => {
                dirs.insert(pkg.name, dir);
            }
            Err(why) => {
                warn_once(pkg, &why, diags);
                return None;
            }
        }
    }
    let mut urls = BTreeMap::new();
    for f in FILES {
        let src = dirs[f.package].join(f.path);
        match std::fs::read(&src) {
            Ok(bytes) => {
                assets.add(
                    f.output,
                    Payload::Bytes(Cow::Owned(bytes)),
                    src.clone(),
                    diags,
                );
                urls.insert(f.key, assets.url(f.output).unwrap_or_default().to_string());
            }
            Err(e) => {
                diags.push(Diagnostic::warning(
                    src,
                    None,
                    format!("cannot read the live terminal's code: {e}"),
                ));
                return None;
            }
        }
    }
    Some(XtermAssets(urls))
}

/// Warns that the terminal is unavailable, unless this process already did.
fn warn_once(pkg: &Pinned, why: &str, diags: &mut Diagnostics) {
    static WARNED: Mutex<bool> = Mutex::new(false);
    let mut warned = WARNED.lock().expect("poisoned");
    if *warned {
        return;
    }
    *warned = true;
    diags.push(Diagnostic::warning(
        "[terminal]",
        None,
        format!(
            "the live terminal needs {} ({}), not in node_modules/ nor in the cache: {why}. Pages with a demo say the terminal is unavailable until a build can fetch it (or set {NODE_MODULES_ENV} to a node_modules that has it)",
            pkg.id(),
            PACKAGES.iter().map(Pinned::id).collect::<Vec<_>>().join(", "),
        ),
    ));
}

/// Puts the URLs into the `config` template variable as `config.terminal.assets`
/// (`{xterm_js, xterm_css, fit_js, …}` by [`File::key`], or null when the terminal code is
/// not in the build).
pub(crate) fn expose(mut config: Value, assets: Option<&XtermAssets>) -> Value {
    if let Some(t) = config.get_mut("terminal").and_then(Value::as_object_mut) {
        t.insert(
            "assets".into(),
            assets.map_or(Value::Null, |a| {
                Value::Object(
                    a.0.iter()
                        .map(|(k, v)| ((*k).to_string(), Value::String(v.clone())))
                        .collect(),
                )
            }),
        );
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_belongs_to_a_pinned_package_and_every_package_is_pinned() {
        for f in FILES {
            assert!(
                PACKAGES.iter().any(|p| p.name == f.package),
                "{}",
                f.package
            );
        }
        for p in PACKAGES {
            assert!(
                p.integrity.starts_with("sha512-") && p.integrity.len() == 95,
                "{}",
                p.id()
            );
            assert!(!files_of(p.name).is_empty());
        }
    }

    #[test]
    fn pins_match_the_repository_lockfile() {
        let lock = include_str!("../../package-lock.json");
        let lock: Value = serde_json::from_str(lock).unwrap();
        for p in PACKAGES {
            let entry = &lock["packages"][format!("node_modules/{}", p.name)];
            assert_eq!(entry["version"], p.version, "{}", p.id());
            assert_eq!(entry["integrity"], p.integrity, "{}", p.id());
        }
    }
}
