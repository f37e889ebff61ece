//! The live terminal's browser code without npm: a `folio new` site with a `[demo]` and no
//! `node_modules` anywhere gets xterm.js from a registry (here a local one serving tarballs
//! built in the test from the repository's `node_modules`), checked against the pinned
//! integrity, cached, and reused offline; a tarball with another hash is refused; offline with
//! an empty cache the build warns once and the page says the terminal is unavailable, and
//! `folio serve` does not repeat the warning on every rebuild.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use sha2::{Digest, Sha512};

use crate::common::{self, snapshot};
use crate::static_http;

/// (package, version, files inside it) — what folio pins; the versions are the root
/// `package.json`'s.
const PACKAGES: &[(&str, &str, &[&str])] = &[
    (
        "@xterm/xterm",
        "6.0.0",
        &["package.json", "lib/xterm.mjs", "css/xterm.css"],
    ),
    (
        "@xterm/addon-fit",
        "0.11.0",
        &["package.json", "lib/addon-fit.mjs"],
    ),
    (
        "@xterm/addon-web-links",
        "0.12.0",
        &["package.json", "lib/addon-web-links.mjs"],
    ),
];

fn repo_node_modules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules")
}

/// A gzipped tarball laid out as npm's (`package/…`) from the repository's copy of a package;
/// `tamper` changes one byte of its code.
fn tarball(package: &str, files: &[&str], tamper: bool) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut t = tar::Builder::new(gz);
    for f in files {
        let mut bytes = std::fs::read(repo_node_modules().join(package).join(f)).unwrap();
        if tamper && f.ends_with(".mjs") {
            bytes.extend_from_slice(b"\n;globalThis.pwned=1;\n");
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, format!("package/{f}"), bytes.as_slice())
            .unwrap();
    }
    t.into_inner().unwrap().finish().unwrap()
}

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
    )
}

/// A local npm registry serving the tarballs (`/<name>/-/<base>-<version>.tgz`); returns it
/// and the `FOLIO_TEST_NPM_INTEGRITY` value that pins exactly these tarballs.
fn registry(tamper: bool) -> (static_http::Server, String) {
    let mut served = BTreeMap::new();
    let mut pins = Vec::new();
    for (name, version, files) in PACKAGES {
        let tgz = tarball(name, files, tamper);
        let base = name.rsplit('/').next().unwrap();
        pins.push(format!("{name}@{version}={}", sri(&tgz)));
        served.insert(format!("/{name}/-/{base}-{version}.tgz"), tgz);
    }
    let server = static_http::serve(move |path| served.get(path).cloned());
    (server, pins.join(","))
}

/// A site made by `folio new`, its project given a `[demo]`, in a folder with no
/// `node_modules` in it or above it.
fn new_site_with_demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    let o = Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("new")
        .arg(&root)
        .output()
        .unwrap();
    assert!(o.status.success(), "folio new: {}", common::stderr(&o));
    let page = root.join("content/projects/hello-folio/index.md");
    let text = std::fs::read_to_string(&page).unwrap();
    let end = text[3..].find("+++").unwrap() + 3;
    let text = format!(
        "{}[demo]\ncommand = \"/bin/sh\"\n{}",
        &text[..end],
        &text[end..]
    );
    std::fs::write(&page, text).unwrap();
    assert!(
        root.ancestors().all(|a| !a.join("node_modules").exists()),
        "a node_modules above the test site"
    );
    dir
}

/// `folio build` of `<dir>/site` with the given cache and registry (and pins, if any); no
/// `FOLIO_NODE_MODULES`.
fn build(dir: &Path, cache: &Path, registry: &str, pins: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_folio"));
    cmd.args(["build", "--root"])
        .arg(dir.join("site"))
        .env_remove("FOLIO_NODE_MODULES")
        .env_remove("FOLIO_TEST_NPM_INTEGRITY")
        .env("FOLIO_CACHE_DIR", cache)
        .env("FOLIO_NPM_REGISTRY", registry);
    if let Some(p) = pins {
        cmd.env("FOLIO_TEST_NPM_INTEGRITY", p);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "build failed: {}", common::stderr(&o));
    o
}

fn project_page(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("site/public/projects/hello-folio/index.html")).unwrap()
}

/// Every file under `dir` (empty when it does not exist).
fn files_under(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    snapshot(dir).into_keys().collect()
}

/// The page's `data-xterm-*`/`data-fit-js` URLs, each checked to be a file of the output
/// whose bytes are the package's.
fn check_terminal_assets(dir: &Path) {
    let page = project_page(dir);
    let public = dir.join("site/public");
    for (attr, package, file) in [
        ("data-xterm-js=", "@xterm/xterm", "lib/xterm.mjs"),
        ("data-xterm-css=", "@xterm/xterm", "css/xterm.css"),
        ("data-fit-js=", "@xterm/addon-fit", "lib/addon-fit.mjs"),
        (
            "data-links-js=",
            "@xterm/addon-web-links",
            "lib/addon-web-links.mjs",
        ),
    ] {
        let at = page
            .find(attr)
            .unwrap_or_else(|| panic!("no {attr} in {page}"));
        let url: String = page[at + attr.len()..]
            .trim_start_matches('"')
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '>')
            .collect();
        assert!(url.starts_with("/vendor/xterm/"), "{attr}{url}");
        let served = std::fs::read(public.join(url.trim_start_matches('/'))).unwrap();
        let original = std::fs::read(repo_node_modules().join(package).join(file)).unwrap();
        assert!(served == original, "{url} is not {package}/{file}");
    }
    assert!(!page.contains("terminal is unavailable"), "{page}");
}

#[test]
fn a_new_site_gets_xterm_from_the_registry_once_and_then_from_the_cache() {
    let dir = new_site_with_demo();
    let cache = dir.path().join("cache");
    let (reg, pins) = registry(false);
    let o = build(dir.path(), &cache, &reg.url(), Some(&pins));
    let err = common::stderr(&o);
    assert!(!err.contains("terminal"), "warned: {err}");
    check_terminal_assets(dir.path());
    assert_eq!(reg.hits(), PACKAGES.len(), "one download per package");
    // Only the needed files, and the integrity they came from, are kept.
    let cached = files_under(&cache);
    assert!(
        cached.iter().any(|f| f.ends_with("lib/xterm.mjs")),
        "{cached:?}"
    );
    assert!(
        !cached.iter().any(|f| f.ends_with("package.json")),
        "{cached:?}"
    );

    // Offline now: the cache is enough, and nothing is asked of any registry.
    let before = reg.hits();
    let o = build(
        dir.path(),
        &cache,
        &static_http::nothing_listening(),
        Some(&pins),
    );
    assert!(
        !common::stderr(&o).contains("terminal"),
        "{}",
        common::stderr(&o)
    );
    check_terminal_assets(dir.path());
    assert_eq!(reg.hits(), before);
}

#[test]
fn a_tarball_that_is_not_the_pinned_one_is_refused() {
    let dir = new_site_with_demo();
    let cache = dir.path().join("cache");
    // The test's tarballs are not npm's: against the compiled-in pins they are refused.
    let (reg, _) = registry(false);
    let o = build(dir.path(), &cache, &reg.url(), None);
    let err = common::stderr(&o);
    assert!(
        err.contains("does not match the pinned integrity") && err.contains("refused"),
        "{err}"
    );
    assert_eq!(err.matches("the live terminal needs").count(), 1, "{err}");
    assert!(project_page(dir.path()).contains("terminal is unavailable"));
    assert!(files_under(&dir.path().join("site/public/vendor")).is_empty());
    assert!(
        files_under(&cache).is_empty(),
        "cached: {:?}",
        files_under(&cache)
    );

    // A tampered tarball against the pins of the genuine ones: refused too.
    let (_, genuine_pins) = registry(false);
    let (evil, _) = registry(true);
    let o = build(dir.path(), &cache, &evil.url(), Some(&genuine_pins));
    assert!(common::stderr(&o).contains("does not match the pinned integrity"));
    assert!(files_under(&cache).is_empty());
    assert!(!std::fs::read_dir(dir.path().join("site/public"))
        .unwrap()
        .any(|e| e.unwrap().file_name() == "vendor"));
}

#[test]
fn offline_with_an_empty_cache_it_says_so_once_even_under_serve() {
    let dir = new_site_with_demo();
    let cache = dir.path().join("cache");
    let dead = static_http::nothing_listening();
    let o = build(dir.path(), &cache, &dead, None);
    let err = common::stderr(&o);
    assert_eq!(err.matches("the live terminal needs").count(), 1, "{err}");
    assert!(err.contains("cannot download"), "{err}");
    assert!(project_page(dir.path()).contains("terminal is unavailable"));

    let root = dir.path().join("site");
    let cache_s = cache.to_string_lossy().into_owned();
    let server = crate::serve::Server::start_with_env(
        &root,
        &[],
        &[
            ("FOLIO_CACHE_DIR", cache_s.as_str()),
            ("FOLIO_NPM_REGISTRY", dead.as_str()),
        ],
    );
    let page = root.join("content/projects/hello-folio/index.md");
    for n in 1..=2 {
        let text = std::fs::read_to_string(&page).unwrap();
        std::fs::write(&page, format!("{text}\nEdit {n}.\n")).unwrap();
        // Wait for the rebuild's line (one per rebuild, naming the file).
        let deadline = std::time::Instant::now() + crate::serve::PATIENCE;
        while server.logs().matches("hello-folio/index.md: ").count() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "no rebuild {n}:\n{}",
                server.logs()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let logs = server.logs();
    assert_eq!(logs.matches("the live terminal needs").count(), 1, "{logs}");
}
