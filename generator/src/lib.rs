//! folio's build engine: from a site's content model to its files.
//!
//! The content model itself (config, front matter, the content tree, demos, diagnostics)
//! is `folio-content`; the edge's rules and the typed edge manifest are `folio-edge`. This
//! crate turns them into a site:
//!
//! [`site`] drives a build through its phases — load, markdown (+ [`highlight`]), render
//! (with [`templates`], [`data`], [`assets`], [`covers`], [`xterm`]), then [`output`] —
//! with [`security`] computing the headers and [`live`] reusing whatever an earlier build
//! proved unchanged (`folio serve`'s incremental engine, and the path `folio build` takes).
//! The `folio` binary (`src/bin/folio/`: commands, `serve`, console output) is the only
//! caller besides the tests.

#![deny(missing_docs)]

mod assets;
mod cache;
mod covers;
mod data;
mod highlight;
pub mod import;
pub mod linkcheck;
pub mod live;
mod markdown;
mod output;
mod render;
mod search;
mod security;
pub mod site;
mod templates;
mod theme;
mod xterm;
