//! The pure core: no network, no tokio, no filesystem beyond what callers hand in.
//! Every function here is deterministic given its inputs (time is passed in, never read).
pub mod canary;
pub mod diagnose;
pub mod diagnosis;
pub mod doctor;
#[cfg(test)]
mod fixtures;
pub mod fusion;
pub mod grouping;
pub mod history;
pub mod incident;
pub mod logs;
pub mod outcome;
pub mod probe;
pub mod reply;
pub mod report;
pub mod runbook;
pub mod sla;
pub mod submission_steps;
pub mod text;
pub mod trace;
pub mod verdict;
