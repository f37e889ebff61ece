//! The generator package's integration tests, one binary (as ripgrep does): the heavy crates
//! link once, not once per test file. One module per concern.

mod bad_input;
mod common;
mod contact;
mod content_model;
mod deploy;
mod example_site;
mod hostile_serve;
mod import;
mod links;
mod live;
mod search;
mod serve;
mod tags;
