//! The live terminal's browser side: xterm.js, its fit and web-links addons, copied from the site's
//! `node_modules` (npm packages `@xterm/xterm`, `@xterm/addon-fit` and `@xterm/addon-web-links`, pinned in
//! `package.json`) into the output with a content hash.
//!
//! They are copied only when a published page has a demo and `[terminal] enabled` is on, so a
//! site without demos carries no terminal code. They are never committed: a missing
//! `node_modules` is a warning that names the command to run, and the pages still build (the
//! theme then says the terminal is unavailable).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::assets::{Assets, Payload};
use folio_content::config::Config;
use folio_content::content::Content;
use folio_content::diagnostics::{Diagnostic, Diagnostics};

/// Environment variable naming a `node_modules` folder to use instead of searching.
pub(crate) const NODE_MODULES_ENV: &str = "FOLIO_NODE_MODULES";

/// (file under `node_modules`, logical path in the output, template key).
const FILES: &[(&str, &str, &str)] = &[
    (
        "@xterm/xterm/lib/xterm.mjs",
        "vendor/xterm/xterm.mjs",
        "xterm_js",
    ),
    (
        "@xterm/xterm/css/xterm.css",
        "vendor/xterm/xterm.css",
        "xterm_css",
    ),
    (
        "@xterm/addon-fit/lib/addon-fit.mjs",
        "vendor/xterm/addon-fit.mjs",
        "fit_js",
    ),
    (
        "@xterm/addon-web-links/lib/addon-web-links.mjs",
        "vendor/xterm/addon-web-links.mjs",
        "links_js",
    ),
];

/// The hashed URLs of the terminal's browser code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XtermAssets {
    /// `xterm.mjs`.
    pub xterm_js: String,
    /// `xterm.css`.
    pub xterm_css: String,
    /// `addon-fit.mjs`.
    pub fit_js: String,
    /// `addon-web-links.mjs`: links in terminal output open (with `noopener`) on click.
    pub links_js: String,
}

/// The `node_modules` folder that has xterm: `$FOLIO_NODE_MODULES`, else the site folder's
/// or its nearest ancestor's.
pub(crate) fn find_node_modules(root: &Path) -> Option<PathBuf> {
    let has = |d: &Path| FILES.iter().all(|(f, _, _)| d.join(f).is_file());
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

/// Adds xterm's files to the build's static files when the site needs them; warns (and
/// returns `None`) when `node_modules` lacks them.
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
    let Some(dir) = find_node_modules(root) else {
        let looked = match std::env::var_os(NODE_MODULES_ENV) {
            Some(d) => format!("${NODE_MODULES_ENV} = {}", PathBuf::from(d).display()),
            None => "node_modules/ in the site folder and its parents".to_string(),
        };
        diags.push(Diagnostic::warning(
            "package.json",
            None,
            format!(
                "the live terminal needs xterm.js ({}), not found in {looked}: run `npm ci` in the site folder (or set {NODE_MODULES_ENV}); until then pages with a demo say the terminal is unavailable",
                FILES.iter().map(|(f, _, _)| *f).collect::<Vec<_>>().join(", ")
            ),
        ));
        return None;
    };
    let mut urls = Vec::new();
    for (file, logical, _) in FILES {
        let src = dir.join(file);
        match std::fs::read(&src) {
            Ok(bytes) => {
                assets.add(
                    logical,
                    Payload::Bytes(Cow::Owned(bytes)),
                    PathBuf::from(format!("node_modules/{file}")),
                    diags,
                );
                urls.push(assets.url(logical).unwrap_or_default().to_string());
            }
            Err(e) => {
                diags.push(Diagnostic::warning(
                    src,
                    None,
                    format!("cannot read xterm.js: {e}; run `npm ci`"),
                ));
                return None;
            }
        }
    }
    Some(XtermAssets {
        xterm_js: urls[0].clone(),
        xterm_css: urls[1].clone(),
        fit_js: urls[2].clone(),
        links_js: urls[3].clone(),
    })
}

/// Puts the URLs into the `config` template variable as `config.terminal.assets`
/// (`{xterm_js, xterm_css, fit_js}`, or null when the terminal code is not in the build).
pub(crate) fn expose(mut config: Value, assets: Option<&XtermAssets>) -> Value {
    if let Some(t) = config.get_mut("terminal").and_then(Value::as_object_mut) {
        t.insert(
            "assets".into(),
            assets.map_or(Value::Null, |a| {
                json!({ FILES[0].2: a.xterm_js, FILES[1].2: a.xterm_css, FILES[2].2: a.fit_js, FILES[3].2: a.links_js })
            }),
        );
    }
    config
}
