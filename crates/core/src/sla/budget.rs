//! Availability, SLO compliance and error budget from a tally of probe outcomes: which outcomes
//! count as decided, delivered or within the latency target. Not here: classifying a stored row
//! (aggregation) or percentiles.
use crate::history::HistoryRow;
use crate::outcome::Status;

/// What a stored probe counts as in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Seen within the timeout; `in_slo` when in the inbox within the latency target.
    Delivered {
        spam: bool,
        in_slo: bool,
    },
    /// Not seen within the timeout, never seen since.
    Lost,
    /// Not seen within the timeout, seen later.
    Late,
    /// Refused, bounced, not sent, or the mailbox could not be read.
    Failed,
    Interrupted,
    Error,
    Pending,
}

impl Outcome {
    pub fn of(row: &HistoryRow) -> Outcome {
        match row.status {
            None => Outcome::Pending,
            Some(Status::Delivered) => Outcome::Delivered {
                spam: false,
                in_slo: true,
            },
            Some(Status::Slow) => Outcome::Delivered {
                spam: false,
                in_slo: false,
            },
            Some(Status::DeliveredSpam) => Outcome::Delivered {
                spam: true,
                in_slo: false,
            },
            Some(Status::Lost) if row.late.is_some() => Outcome::Late,
            Some(Status::Lost) => Outcome::Lost,
            Some(Status::Rejected | Status::Bounced | Status::SendFailed | Status::FetchFailed) => {
                Outcome::Failed
            }
            Some(Status::Interrupted) => Outcome::Interrupted,
            Some(Status::Error) => Outcome::Error,
        }
    }

    /// A decided probe that did not arrive in time: it costs availability.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Lost | Outcome::Late | Outcome::Failed)
    }

    /// The word a report shows for it (`late` for a lost probe seen later).
    pub fn label(self, status: Option<Status>) -> &'static str {
        match (self, status) {
            (Outcome::Late, _) => "late",
            (Outcome::Pending, _) | (_, None) => "pending",
            (_, Some(s)) => s.as_str(),
        }
    }
}

/// Counts of outcomes over a set of probes (a scenario at a location, or one of its days).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub probes: u64,
    pub delivered: u64,
    pub delivered_spam: u64,
    pub in_slo: u64,
    pub lost: u64,
    pub late: u64,
    pub failed: u64,
    pub interrupted: u64,
    pub errors: u64,
    pub pending: u64,
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome) {
        self.probes += 1;
        match outcome {
            Outcome::Delivered { spam, in_slo } => {
                self.delivered += 1;
                self.delivered_spam += u64::from(spam);
                self.in_slo += u64::from(in_slo);
            }
            Outcome::Lost => self.lost += 1,
            Outcome::Late => self.late += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Interrupted => self.interrupted += 1,
            Outcome::Error => self.errors += 1,
            Outcome::Pending => self.pending += 1,
        }
    }

    /// Probes with a verdict on the mail path: delivered or failed. Interrupted, error and
    /// pending probes decided nothing and count in neither direction.
    pub fn decided(&self) -> u64 {
        self.delivered + self.lost + self.late + self.failed
    }

    pub fn availability_percent(&self) -> Option<f64> {
        percent(self.delivered, self.decided())
    }

    pub fn slo_percent(&self) -> Option<f64> {
        percent(self.in_slo, self.decided())
    }
}

/// `part / whole` in percent; `None` when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// Share of the error budget left, in percent (negative when overspent): the budget is the
/// failure share the availability target allows (100 - target), used by the failures seen.
/// `None` without a decided probe or with a target of 100 (no budget to spend).
pub fn error_budget_left_percent(availability_percent: Option<f64>, target: f64) -> Option<f64> {
    let allowed = 100.0 - target;
    if allowed <= 0.0 {
        return None;
    }
    let spent = 100.0 - availability_percent?;
    Some(100.0 - spent * 100.0 / allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_errors_and_pending_are_not_decided() {
        let mut t = Tally::default();
        for o in [
            Outcome::Delivered {
                spam: false,
                in_slo: true,
            },
            Outcome::Delivered {
                spam: true,
                in_slo: false,
            },
            Outcome::Lost,
            Outcome::Late,
            Outcome::Interrupted,
            Outcome::Error,
            Outcome::Pending,
        ] {
            t.add(o);
        }
        assert_eq!(t.probes, 7);
        assert_eq!(t.decided(), 4);
        assert_eq!(t.availability_percent(), Some(50.0));
        assert_eq!(t.slo_percent(), Some(25.0));
        assert_eq!(Tally::default().availability_percent(), None);
    }

    #[test]
    fn budget_is_the_allowed_failure_share() {
        // 99.9 target: 0.1 % allowed; 99.95 % availability spent half of it.
        let left = error_budget_left_percent(Some(99.95), 99.9).unwrap();
        assert!((left - 50.0).abs() < 1e-9, "{left}");
        let over = error_budget_left_percent(Some(99.7), 99.9).unwrap();
        assert!((over + 200.0).abs() < 1e-9, "{over}");
        assert_eq!(error_budget_left_percent(Some(100.0), 99.0), Some(100.0));
        assert_eq!(error_budget_left_percent(None, 99.9), None);
        assert_eq!(error_budget_left_percent(Some(100.0), 100.0), None);
    }
}
