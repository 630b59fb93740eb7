//! The SLA report over the stored history: availability, SLO compliance, latency percentiles,
//! error budget, per stage, per day, and the worst incidents.
//! Not here: reading the history (the edge's store readers) or the command line.
pub mod html;
pub mod model;
