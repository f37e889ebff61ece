//! folio's content model: what a site *is*, before anything is rendered.
//!
//! [`config`] (`folio.toml`), [`frontmatter`] (TOML or YAML between fences), [`content`]
//! (the tree of sections and pages, slugs, the `@/` link targets), [`demo`] (the live
//! terminal demos a site declares), [`diagnostics`] (every problem as `file:line:col:
//! message`) and [`value`] (TOML/YAML values as JSON for templates).
//!
//! It has no templates, no highlighting and no images on purpose: the build engine (`folio`)
//! and the terminal origin (`folio-pty`) both depend on it, and the origin — the binary that
//! faces strangers — must link nothing more of the generator than the rule that says which
//! programs a site offers to run.

#![deny(missing_docs)]

pub mod asciicast;
pub mod config;
pub mod contact;
pub mod content;
pub mod demo;
pub mod diagnostics;
pub mod frontmatter;
pub mod value;

pub use diagnostics::{Diagnostic, Diagnostics};
