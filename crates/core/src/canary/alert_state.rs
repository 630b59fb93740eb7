//! When a scenario's health changes enough to alert: ok -> failing after N consecutive failed
//! verdicts, failing -> ok on the first good one. One alert per change, never one per probe.
//! Not here: what counts as a failed verdict (the caller decides) or sending (the daemon).

/// A scenario's alerting state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    Failing,
}

/// A change worth an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The N-th consecutive failure.
    Failing,
    /// The first success after an alerted failure.
    Recovered,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Failing => "failing",
            Transition::Recovered => "recovered",
        }
    }
}

/// Counts consecutive failures for one scenario.
#[derive(Debug, Clone)]
pub struct AlertState {
    threshold: u32,
    consecutive_failures: u32,
    health: Health,
}

impl AlertState {
    /// Alert after `threshold` consecutive failures (at least 1).
    pub fn new(threshold: u32) -> AlertState {
        AlertState {
            threshold: threshold.max(1),
            consecutive_failures: 0,
            health: Health::Ok,
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Take in one verdict; the transition it causes, if any.
    pub fn observe(&mut self, ok: bool) -> Option<Transition> {
        if ok {
            self.consecutive_failures = 0;
            if self.health == Health::Failing {
                self.health = Health::Ok;
                return Some(Transition::Recovered);
            }
            return None;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.health == Health::Ok && self.consecutive_failures >= self.threshold {
            self.health = Health::Failing;
            return Some(Transition::Failing);
        }
        None
    }

    /// A new threshold (configuration reload), keeping the count and the state.
    pub fn set_threshold(&mut self, threshold: u32) {
        self.threshold = threshold.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(s: &mut AlertState, verdicts: &[bool]) -> Vec<Option<Transition>> {
        verdicts.iter().map(|&ok| s.observe(ok)).collect()
    }

    #[test]
    fn fails_after_n_and_recovers_once() {
        let mut s = AlertState::new(3);
        let got = feed(
            &mut s,
            &[false, false, true, false, false, false, false, true, true],
        );
        use Transition::*;
        assert_eq!(
            got,
            vec![
                None,
                None,
                None,
                None,
                None,
                Some(Failing),
                None,
                Some(Recovered),
                None
            ]
        );
        assert_eq!(s.health(), Health::Ok);
    }

    #[test]
    fn threshold_one_alerts_on_the_first_failure_and_zero_means_one() {
        for n in [0, 1] {
            let mut s = AlertState::new(n);
            assert_eq!(s.observe(false), Some(Transition::Failing));
            assert_eq!(s.observe(false), None);
            assert_eq!(s.consecutive_failures(), 2);
        }
    }

    #[test]
    fn successes_alone_never_alert() {
        let mut s = AlertState::new(2);
        assert!(feed(&mut s, &[true; 5]).iter().all(Option::is_none));
    }

    #[test]
    fn lowering_the_threshold_applies_to_the_next_verdict() {
        let mut s = AlertState::new(5);
        feed(&mut s, &[false, false]);
        s.set_threshold(2);
        assert_eq!(s.observe(false), Some(Transition::Failing));
    }
}
