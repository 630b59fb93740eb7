//! The scheduled canary (`flowtest canary`): every scenario probed on its own schedule through
//! the one orchestrator, verdicts exported as Prometheus metrics, a status page and health
//! check over HTTP, and webhook alerts when a scenario starts or stops failing.
//!
//! `daemon` schedules and judges, `prober` reaches the runner and the configuration, `metrics`
//! owns the exposition, `board` the per-scenario state, `alerts` webhook delivery, `http` the
//! endpoints. Pure parts (schedules, alert state, payloads, the page) are in
//! `core::canary`. Not here: signals and process setup (`cmd::canary`).
pub mod alerts;
pub mod board;
pub mod daemon;
pub mod http;
pub mod metrics;
pub mod prober;

#[cfg(test)]
mod tests;
