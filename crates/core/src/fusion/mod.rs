//! Timeline fusion: joins parsed log records into per-message chains (Message-ID -> queue id ->
//! `queued as` -> next queue id -> LMTP session -> Dovecot's saved line), attaches findings with
//! their evidence, estimates clock skew between hosts, and fuses a chain with a probe's own
//! client times and Received hops into per-stage latencies. Does not read files or clocks
//! (callers push records and the "now" is the newest log timestamp seen), and does not parse
//! lines (`core::logs`).
//!
//! Where things are:
//! - `model`: the output types (serialized to JSON as they are; `rfc3339`: their timestamps).
//! - `correlator`: the streaming `Correlator`, its `Limits`, dispatch and emission of chains.
//! - `on_queue`, `on_delivery`, `on_reject`, `on_refused`, `on_dovecot`, `on_host`: one handler
//!   module per family of log events.
//! - `quiet`: the open chains and when each falls due (what a sweep looks at).
//! - `superseded`: done chains a later chain of their Message-ID holds, for a late line.
//! - `links`: finding and joining chains (`queued as` hand-offs, merges).
//! - `chain`: the working state of one message while it is correlated.
//! - `assemble`: working state -> `MessageChain`; `spare`: the room a reported one leaves.
//! - `skew`: the clock-offset estimator shared by the correlator and probe fusion.
//! - `probe`: one probe's `ProbeTimeline`.

mod assemble;
mod chain;
mod correlator;
mod links;
mod model;
mod on_delivery;
mod on_dovecot;
mod on_host;
mod on_lda;
mod on_queue;
mod on_refused;
mod on_reject;
mod probe;
mod quiet;
pub(crate) mod rfc3339;
mod skew;
mod spare;
mod superseded;

pub use correlator::{Correlator, Limits, SWEEP_EVERY};
pub use model::{
    msgid_key, CorrelatorStats, Hop, HopStatus, HostSkew, MessageChain, MessageStatus, Outcome,
    ProbeTimeline, RcptOutcome, SkewEstimate, Stage, StageSource,
};
pub use probe::{fuse_probe, probe_chains, HeaderHop, ProbeContext};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_candidates;
#[cfg(test)]
mod tests_causes;
#[cfg(test)]
mod tests_outcomes;
#[cfg(test)]
mod tests_peers;
#[cfg(test)]
mod tests_waiting;
