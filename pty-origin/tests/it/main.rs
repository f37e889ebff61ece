//! The pty-origin package's integration tests, one binary (as ripgrep does): the heavy crates
//! link once, not once per test file. One module per concern.

mod auth;
mod common;
mod escapes;
mod hostile_keys;
mod hostile_relay;
mod hostile_sandbox;
mod portfolio;
mod resume;
mod session;
