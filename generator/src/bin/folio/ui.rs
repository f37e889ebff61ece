//! Console output shared by every command and by `folio serve`: how much to print, the
//! diagnostics, and numbers as people read them.

use std::io::{IsTerminal, Write};

use folio_content::diagnostics::Diagnostics;

/// How much to print.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub(crate) quiet: bool,
    pub(crate) verbose: bool,
    pub(crate) tty: bool,
}

impl Output {
    /// From the global `-q` / `-v` flags.
    pub(crate) fn new(quiet: bool, verbose: bool) -> Self {
        Output {
            quiet,
            verbose,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Whether only errors are printed (`-q`).
    pub(crate) fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Prints every diagnostic as `folio build` does: errors, then warnings unless quiet.
    pub(crate) fn print_diagnostics(&self, d: &Diagnostics) {
        self.diagnostics(d)
    }

    pub(crate) fn diagnostics(&self, d: &Diagnostics) {
        let mut err = std::io::stderr().lock();
        for e in d.errors() {
            let _ = writeln!(err, "{e}");
        }
        if !self.quiet {
            for w in d.warnings() {
                let _ = writeln!(err, "{w}");
            }
        }
    }
}

/// Formats 1234567 as `1,234,567`.
pub(crate) fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
