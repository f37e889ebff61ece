//! Where a site's theme comes from: `themes/<name>/` on disk, or the default theme built into
//! the binary when the site has no copy of its own.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use folio_content::diagnostics::{display_path, Diagnostic};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_theme.rs"));
}

/// The name of the theme that ships inside `folio`.
pub(crate) const DEFAULT_THEME: &str = "folio";

/// A theme's files, wherever they live.
#[derive(Debug, Clone)]
pub(crate) enum Theme {
    /// `themes/<name>/` in the site.
    Dir(PathBuf),
    /// The built-in default theme.
    Embedded,
}

/// One file of a theme.
#[derive(Debug, Clone)]
pub(crate) struct ThemeFile {
    /// Path inside the theme, `/`-separated (`templates/base.html`).
    pub rel: String,
    /// Path shown in messages.
    pub shown: PathBuf,
    /// Absolute path on disk, for themes that have one.
    pub source: Option<PathBuf>,
    /// The bytes.
    pub bytes: Cow<'static, [u8]>,
}

impl Theme {
    /// Finds the theme `name` for the site at `root`: its own folder first, then the built-in one.
    pub(crate) fn resolve(root: &Path, name: &str) -> Result<Theme, Diagnostic> {
        let dir = root.join("themes").join(name);
        if dir.is_dir() {
            return Ok(Theme::Dir(dir));
        }
        if name == DEFAULT_THEME && !embedded::FILES.is_empty() {
            return Ok(Theme::Embedded);
        }
        let mut available: Vec<String> = std::fs::read_dir(root.join("themes"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if !available.iter().any(|a| a == DEFAULT_THEME) {
            available.push(format!("{DEFAULT_THEME} (built in)"));
        }
        available.sort();
        Err(Diagnostic::error(
            folio_content::config::CONFIG_FILE,
            folio_content::frontmatter::find_key(
                &std::fs::read_to_string(root.join(folio_content::config::CONFIG_FILE))
                    .unwrap_or_default(),
                "theme",
            ),
            format!(
                "theme `{name}` does not exist: no folder themes/{name}/ (available: {})",
                available.join(", ")
            ),
        ))
    }

    /// Every file of the theme whose path starts with `prefix` (`templates/`, `static/`).
    pub(crate) fn files(&self, root: &Path, prefix: &str) -> Result<Vec<ThemeFile>, Diagnostic> {
        match self {
            Theme::Embedded => Ok(embedded::FILES
                .iter()
                .filter(|(rel, _)| rel.starts_with(prefix))
                .map(|(rel, bytes)| ThemeFile {
                    rel: rel.to_string(),
                    shown: PathBuf::from(format!("<built-in theme>/{rel}")),
                    source: None,
                    bytes: Cow::Borrowed(bytes),
                })
                .collect()),
            Theme::Dir(dir) => {
                use rayon::prelude::*;
                let base = dir.join(prefix.trim_end_matches('/'));
                if !base.is_dir() {
                    return Ok(Vec::new());
                }
                // Listed in order, then read in parallel; the first failure in that order
                // is the one reported.
                let mut paths = Vec::new();
                for e in walkdir::WalkDir::new(&base).sort_by_file_name() {
                    let e = e.map_err(|e| {
                        Diagnostic::error(
                            display_path(root, e.path().unwrap_or(&base)),
                            None,
                            format!("cannot read: {e}"),
                        )
                    })?;
                    if !e.file_type().is_file() || e.file_name().to_string_lossy().starts_with('.')
                    {
                        continue;
                    }
                    paths.push(e.into_path());
                }
                let read: Vec<Result<ThemeFile, Diagnostic>> = paths
                    .into_par_iter()
                    .map(|p| {
                        let rel = p
                            .strip_prefix(dir)
                            .expect("under theme")
                            .to_string_lossy()
                            .replace('\\', "/");
                        let bytes = std::fs::read(&p).map_err(|err| {
                            Diagnostic::error(
                                display_path(root, &p),
                                None,
                                format!("cannot read: {err}"),
                            )
                        })?;
                        Ok(ThemeFile {
                            rel,
                            shown: display_path(root, &p),
                            source: Some(p),
                            bytes: Cow::Owned(bytes),
                        })
                    })
                    .collect();
                read.into_iter().collect()
            }
        }
    }
}
