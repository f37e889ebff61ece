//! `folio record PAGE`: makes the recording of a page's demo by calling `folio-pty record`,
//! which runs the demo's `[[demo.script]]` in the same sandbox as live sessions. folio
//! itself never runs the author's code: without folio-pty (or bubblewrap) there is no
//! recording, and `folio build` keeps needing neither.

use std::path::{Path, PathBuf};
use std::process::Command;

use folio_content::content::{self, LoadOptions};

use crate::ui::Output;

/// What to record.
pub(crate) struct RecordOptions {
    /// The write-up (its `index.md`, or its bundle folder).
    pub(crate) page: PathBuf,
    /// The site folder.
    pub(crate) root: PathBuf,
    /// Terminal size.
    pub(crate) cols: u16,
    /// Terminal size.
    pub(crate) rows: u16,
}

/// Runs the recording; false (after saying why) when it could not be made.
pub(crate) fn run(out: &Output, opts: &RecordOptions) -> bool {
    match record(out, opts) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

fn record(out: &Output, opts: &RecordOptions) -> Result<(), String> {
    let root = opts
        .root
        .canonicalize()
        .map_err(|e| format!("cannot open the site folder {}: {e}", opts.root.display()))?;
    let page_path = resolve_page(&opts.page)?;
    let (content, diags) = content::load(&root, LoadOptions { drafts: true });
    let page = content
        .pages
        .iter()
        .find(|p| p.file.path.canonicalize().ok().as_deref() == Some(page_path.as_path()))
        .ok_or_else(|| {
            if diags.has_errors() {
                out.print_diagnostics(&diags);
            }
            format!(
                "{} is not a page of the site in {}",
                opts.page.display(),
                root.display()
            )
        })?;
    let shown = page.file.shown.display();
    let demo = page
        .demo
        .as_ref()
        .ok_or_else(|| format!("{shown}: the page has no [demo] to record"))?;
    if demo.recording.is_none() {
        return Err(format!(
            "{shown}: add `recording = \"demo.cast\"` to its [demo] (where the recording goes)"
        ));
    }
    if demo.script.is_empty() {
        return Err(format!(
            "{shown}: add [[demo.script]] steps to its [demo] (docs/content-model.md, \"Recordings\")"
        ));
    }
    let pty = crate::serve::find_folio_pty().ok_or(
        "recording runs the demo in folio-pty's sandbox: folio-pty was found neither next to folio nor on PATH (cargo build -p folio-pty)",
    )?;
    let status = Command::new(&pty)
        .arg("record")
        .arg("--site")
        .arg(&root)
        .args(["--demo", &demo.id])
        .args(["--cols", &opts.cols.to_string()])
        .args(["--rows", &opts.rows.to_string()])
        .status()
        .map_err(|e| format!("running {}: {e}", pty.display()))?;
    if !status.success() {
        return Err(format!("folio-pty record failed ({status})"));
    }
    Ok(())
}

/// The write-up's markdown file, canonical: a bundle folder means its `index.md`.
fn resolve_page(page: &Path) -> Result<PathBuf, String> {
    let p = if page.is_dir() {
        page.join("index.md")
    } else {
        page.to_path_buf()
    };
    p.canonicalize()
        .map_err(|e| format!("{}: {e}", p.display()))
}
