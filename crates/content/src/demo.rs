//! The live-terminal demos a site declares, for the terminal origin (`folio-pty`).
//!
//! This is the one place that decides which programs a site offers to run: `folio-pty` calls
//! [`load`] instead of parsing content itself, so the origin and the generator can never
//! disagree about a demo's id, command or folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
pub use crate::config::TerminalConfig;
use crate::content::{self, LoadOptions};
pub use crate::content::{ScriptAction, DEFAULT_WAIT_TIMEOUT};
use crate::diagnostics::{Diagnostic, Diagnostics};

/// One demo, ready to run: every path absolute, every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSpec {
    /// The page's slug: the endpoint is `/terminal/<id>`.
    pub id: String,
    /// The write-up's title, for logs and notices.
    pub title: String,
    /// The write-up file, absolute.
    pub page: PathBuf,
    /// argv to run inside the sandbox; default `["/bin/bash"]`.
    pub command: Vec<String>,
    /// Absolute, canonical folder whose copy the session works in.
    pub workdir: PathBuf,
    /// Optional build step, run with `/bin/sh -c` once per origin start.
    pub build: Option<String>,
    /// Session ends after this long without input.
    pub idle_timeout: Duration,
    /// Session ends after this long in any case.
    pub timeout: Duration,
    /// Message shown when a session starts.
    pub motd: Option<String>,
    /// Where `folio record` writes the recording (`[demo] recording`), if the page names one.
    pub recording: Option<PathBuf>,
    /// What `folio record` types and waits for (`[[demo.script]]`).
    pub script: Vec<ScriptAction>,
}

/// The terminal settings and demos of a site.
#[derive(Debug, Clone)]
pub struct DemoSite {
    /// `[terminal]` of `folio.toml`, with defaults.
    pub terminal: TerminalConfig,
    /// Declared demos (drafts excluded), ordered by id.
    pub demos: Vec<DemoSpec>,
}

/// Reads `folio.toml` and the `[demo]` tables of the site at `site_root`.
///
/// Errors in the demo pages (or anything that stops the content from loading) are returned;
/// problems elsewhere (markdown links, templates) are the generator's business and ignored here.
pub fn load(site_root: &Path) -> Result<DemoSite, Diagnostics> {
    let config = Config::load(site_root).map_err(Diagnostics::from)?;
    let (content, diags) = content::load(site_root, LoadOptions { drafts: false });
    if diags.has_errors() {
        let mut errs = Diagnostics::new();
        errs.extend(diags.into_iter().filter(Diagnostic::is_error));
        return Err(errs);
    }
    let t = &config.terminal;
    let mut demos: Vec<DemoSpec> = content
        .pages
        .iter()
        .filter_map(|p| {
            let d = p.demo.as_ref()?;
            Some(DemoSpec {
                id: d.id.clone(),
                title: p.meta.fm.title.clone(),
                page: p.file.path.clone(),
                command: d.command.clone(),
                workdir: d.workdir.clone(),
                build: d.build.clone(),
                idle_timeout: Duration::from_secs(d.idle_timeout.unwrap_or(t.idle_timeout)),
                timeout: Duration::from_secs(d.timeout.unwrap_or(t.timeout)),
                motd: d.motd.clone(),
                recording: d.recording.as_ref().map(|r| r.path.clone()),
                script: d.script.clone(),
            })
        })
        .collect();
    demos.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(DemoSite {
        terminal: config.terminal,
        demos,
    })
}
