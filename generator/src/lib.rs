//! folio: a static site generator for developer portfolios.
//!
//! The library holds the whole pipeline so that the `folio` binary, its tests and the terminal
//! origin (`folio-pty`, through [`demo`]) share one content model:
//!
//! `config` + `content` (+ `frontmatter`) → `markdown` (+ `highlight`) → `render` (with
//! `templates`, `data`, `assets`) → `output`, with `security` computing the headers and
//! `build` driving it all.

pub mod config;
pub mod content;
pub mod demo;
pub mod diagnostics;
pub mod frontmatter;
pub mod highlight;
pub mod live;
pub mod markdown;
pub mod value;

pub use diagnostics::{Diagnostic, Diagnostics};
pub mod assets;
pub mod cache;
pub mod commands;
pub mod covers;
pub mod data;
pub mod output;
pub mod render;
pub mod scaffold;
pub mod security;
pub mod serve;
pub mod site;
pub mod templates;
pub mod theme;
pub mod xterm;
