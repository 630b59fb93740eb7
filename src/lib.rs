//! flowtest: end-to-end synthetic mail-flow testing.
//!
//! Layout (see README "Code map"):
//! - [`core`]: pure logic, no network and no tokio: Received-header trace, log parsing, timeline
//!   fusion, diagnosis, probe identity, report rendering. Everything here is deterministic and
//!   tested with golden files.
//! - [`edge`]: the I/O edges: SMTP sender, IMAP watcher, log sources, result store.
//! - [`config`]: `flowtest.toml` and scenario files, resolved into one validated configuration.
//! - [`runner`]: the one orchestrator (send -> wait -> fetch -> trace -> logs -> diagnose) shared by
//!   the one-shot CLI and the canary.
//! - [`cmd`]: one module per subcommand; thin glue from parsed arguments to the pieces above.
#![forbid(unsafe_code)]

/// The pure core, its own crate (`crates/core`) so the layering is a compile error.
pub use flowtest_core as core;

pub mod canary;
pub mod cli;
pub mod clock;
pub mod config;
pub mod edge;
pub mod exit;
pub mod runner;
