//! The one place flowtest reads clocks. Durations (latencies, deadlines) come from the monotonic
//! clock, so an NTP step during a probe cannot change a measured latency; timestamps (when a probe
//! was sent, when a verdict was reached) come from the wall clock. Everything else takes a
//! [`Clock`] or a time handed in; `clippy.toml` forbids reading a clock anywhere but here.
//!
//! The monotonic clock is tokio's, so tests that pause tokio's time ([`TestClock`]) move both
//! clocks together and run without real waiting.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

/// A source of time: wall-clock timestamps and monotonic instants.
pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time, for timestamps people and other hosts' logs compare against.
    fn now(&self) -> DateTime<Utc>;
    /// Monotonic time, for durations and deadlines.
    fn instant(&self) -> Instant;
}

/// The machine's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The machine's clocks as a shared handle.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// Wall-clock now, for edges that only stamp events (a log window's end, a fetch time).
pub fn now() -> DateTime<Utc> {
    SystemClock.now()
}

/// Monotonic now, for edges that only bound a wait.
pub fn instant() -> Instant {
    SystemClock.instant()
}

/// Monotonic now as a std instant, for code outside tokio (progress lines, benchmarks).
pub fn std_instant() -> std::time::Instant {
    std::time::Instant::now()
}

/// A clock for tests: the wall clock starts at a fixed time and moves with tokio's (pausable)
/// monotonic clock, so `tokio::time::pause()` / `advance()` drive both.
#[derive(Debug, Clone, Copy)]
pub struct TestClock {
    wall0: DateTime<Utc>,
    mono0: Instant,
}

impl TestClock {
    /// A clock whose wall time is `start` now.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        TestClock {
            wall0: start,
            mono0: Instant::now(),
        }
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = Instant::now().saturating_duration_since(self.mono0);
        self.wall0 + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::MAX)
    }
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// Milliseconds of a duration, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn test_clock_moves_wall_time_with_paused_tokio_time() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = TestClock::starting_at(start);
        let i0 = c.instant();
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(c.instant() - i0, Duration::from_millis(1500));
        assert_eq!(c.now() - start, TimeDelta::milliseconds(1500));
    }
}
