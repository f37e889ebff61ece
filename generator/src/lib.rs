//! folio's build engine: from a site's content model to its files.
//!
//! The content model itself (config, front matter, the content tree, demos, diagnostics)
//! is `folio-content`; the edge's rules and the typed edge manifest are `folio-edge`. This
//! crate turns them into a site:
//!
//! [`site`] drives a build through its phases — load, markdown (+ [`highlight`], [`code_blocks`], [`callouts`], [`math`]), render
//! (with [`templates`], [`data`], [`assets`], [`images`] and [`covers`], [`xterm`]), then [`output`] —
//! with [`security`] computing the headers and [`live`] reusing whatever an earlier build
//! proved unchanged (`folio serve`'s incremental engine, and the path `folio build` takes).
//! The `folio` binary (`src/bin/folio/`: commands, `serve`, console output) is the only
//! caller besides the tests.

#![deny(missing_docs)]

mod assets;
mod base_path;
mod cache;
mod callouts;
mod code_blocks;
mod covers;
mod data;
pub mod file_limit;
mod highlight;
mod images;
pub mod import;
pub mod linkcheck;
pub mod live;
mod markdown;
mod math;
mod npm;
mod output;
mod poster;
mod recordings;
mod render;
mod search;
mod security;
mod shortcodes;
pub mod site;
mod spill;
mod templates;
mod theme;
mod xterm;
