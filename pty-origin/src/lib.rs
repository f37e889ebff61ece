//! `folio-pty`: folio's self-hosted terminal origin. Visitors' browsers reach it through
//! the edge Worker and a Cloudflare Tunnel; it gives each of them a real PTY running one of
//! the site's declared demos inside a bubblewrap sandbox.
//!
//! Modules by concern: [`server`] (HTTP, auth, caps), [`session`] (the relay), [`pty`],
//! [`sandbox`] (the security boundary), [`seccomp`] (its syscall filter), [`limits`]
//! (cgroups and rlimits), [`prepare`]
//! (copy and build demos once per start), [`replay`] (single-use tokens), [`record`] (a demo's recording, made in the sandbox), [`resume`]
//! (resumable sessions: output ring, resume tokens), [`metrics`],
//! [`logging`], [`secret`], [`tree`], [`commands`].

#![deny(missing_docs)]

pub mod commands;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod prepare;
pub mod pty;
pub mod record;
pub mod replay;
pub mod resume;
pub mod sandbox;
pub mod seccomp;
pub mod secret;
pub mod server;
pub mod session;
pub mod tree;
