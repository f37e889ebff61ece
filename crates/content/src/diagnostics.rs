//! Errors and warnings that point at a file, a line and a column.
//!
//! A build never stops at the first problem: every stage pushes what it finds into a
//! [`Diagnostics`] list so that the author sees all of them at once, each as
//! `path:line:col: message`.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is: errors fail the build, warnings are only printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Fails the build (exit status 1, previous output kept).
    Error,
    /// Printed, never fails the build.
    Warning,
}

/// One problem found in the site, located as precisely as its format allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, relative to the site root where possible, so messages stay short and clickable.
    pub path: PathBuf,
    /// 1-based line, when the format tells it.
    pub line: Option<usize>,
    /// 1-based column in characters, when the format tells it.
    pub column: Option<usize>,
    /// What is wrong, in one line.
    pub message: String,
}

impl Diagnostic {
    /// An error at a known position.
    pub fn error(
        path: impl Into<PathBuf>,
        pos: Option<(usize, usize)>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Error, path, pos, message)
    }

    /// A warning at a known position.
    pub fn warning(
        path: impl Into<PathBuf>,
        pos: Option<(usize, usize)>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Warning, path, pos, message)
    }

    fn new(
        severity: Severity,
        path: impl Into<PathBuf>,
        pos: Option<(usize, usize)>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            path: path.into(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            message: message.into(),
        }
    }

    /// Whether this diagnostic fails the build.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        match self.severity {
            Severity::Error => write!(f, ": {}", self.message),
            Severity::Warning => write!(f, ": warning: {}", self.message),
        }
    }
}

/// Every diagnostic of one build, errors and warnings together.
///
/// It is also the error type of the library's entry points: its `Display` prints one
/// diagnostic per line, errors first.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    /// Adds all of another list.
    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    /// Whether anything here fails the build.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// The errors, in a stable order (by file, then position).
    pub fn errors(&self) -> Vec<&Diagnostic> {
        self.sorted().into_iter().filter(|d| d.is_error()).collect()
    }

    /// The warnings, in a stable order.
    pub fn warnings(&self) -> Vec<&Diagnostic> {
        self.sorted()
            .into_iter()
            .filter(|d| !d.is_error())
            .collect()
    }

    /// Number of diagnostics of either kind.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is nothing at all.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// All diagnostics, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    fn sorted(&self) -> Vec<&Diagnostic> {
        let mut v: Vec<&Diagnostic> = self.items.iter().collect();
        v.sort_by(|a, b| {
            (a.severity, &a.path, a.line, a.column, &a.message)
                .cmp(&(b.severity, &b.path, b.line, b.column, &b.message))
        });
        v.dedup();
        v
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics { items: vec![d] }
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.sorted().iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Converts a byte offset into a 1-based (line, column) pair, column counted in characters.
///
/// Offsets past the end clamp to the end; offsets inside a UTF-8 sequence round down.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The error for a file that is not UTF-8, pointing at its first invalid byte.
pub fn not_utf8(shown: &Path, e: &std::string::FromUtf8Error) -> Diagnostic {
    let valid = e.utf8_error().valid_up_to();
    let before = String::from_utf8_lossy(&e.as_bytes()[..valid]);
    Diagnostic::error(
        shown,
        Some(line_col(&before, valid)),
        format!(
            "not valid UTF-8 (byte 0x{:02x}); save the file as UTF-8",
            e.as_bytes()[valid]
        ),
    )
}

/// Reads a text file; an unreadable file or invalid UTF-8 becomes a diagnostic naming `shown`.
pub fn read_text(path: &Path, shown: &Path) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::error(shown, None, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| not_utf8(shown, &e))
}

/// The path to show for a file: relative to the site root when it is inside it.
pub fn display_path(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let t = "ab\ncdé\nf";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 7), (2, 4));
        assert_eq!(line_col(t, 8), (3, 1));
        assert_eq!(line_col(t, 999), (3, 2));
    }

    #[test]
    fn display_is_path_line_col_message() {
        let d = Diagnostic::error("content/a.md", Some((3, 7)), "missing `title`");
        assert_eq!(d.to_string(), "content/a.md:3:7: missing `title`");
        let w = Diagnostic::warning("content/a.md", None, "odd");
        assert_eq!(w.to_string(), "content/a.md: warning: odd");
    }
}
