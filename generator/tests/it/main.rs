//! The generator package's integration tests, one binary (as ripgrep does): the heavy crates
//! link once, not once per test file. One module per concern.

mod bad_input;
mod common;
mod contact;
mod content_model;
mod csp_warnings;
mod deploy;
mod determinism;
mod example_site;
mod field_deps;
mod hostile_serve;
mod images;
mod import;
mod links;
mod live;
mod page_cache;
mod parallel_load;
mod recordings;
mod search;
mod serve;
mod serve_resume;
mod shortcodes;
mod site_shapes;
mod static_http;
mod subpath;
mod tags;
mod warm_build;
mod writeups;
mod xterm_fetch;
