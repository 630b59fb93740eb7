//! The SLA report over the stored history: availability, SLO compliance, latency percentiles,
//! error budget, per stage, per day, and the worst incidents.
//! Not here: reading the history (the edge's store readers) or the command line.
pub mod aggregate;
pub mod budget;
pub mod days;
pub mod html;
pub mod incidents;
pub mod model;
pub mod percentile;
pub mod render_human;
pub mod render_markdown;
pub mod sections;
pub mod window;
