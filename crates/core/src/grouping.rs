//! Folding failure findings into incidents: one [`IncidentGroup`] per cause (finding code) and
//! host, for `flowtest diagnose`'s log findings and `flowtest run`'s probe results alike, and the
//! drafts they render to. Does not write files (the caller's edge does) or choose the text of a
//! draft (`crate::incident`).

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::diagnosis::{Finding, FindingCode};
use crate::incident::{self, IncidentDraft, IncidentGroup};
use crate::outcome::{RunResult, Severity};
use crate::runbook::{Facts, Runbook};

/// Incidents kept at most (one per cause and host); findings of further causes are dropped.
pub const MAX_GROUPS: usize = 50;
/// Affected message ids listed per incident at most.
pub const MAX_IDS: usize = 20;

/// Incidents being gathered, ordered by cause and host.
#[derive(Debug, Default)]
pub struct IncidentGroups {
    groups: BTreeMap<(FindingCode, Option<String>), IncidentGroup>,
}

impl IncidentGroups {
    /// Fold one finding in; findings that are not failures are ignored.
    pub fn add(&mut self, f: &Finding) {
        if !f.code.is_failure() {
            return;
        }
        let key = (f.code, f.host.clone());
        if let Some(g) = self.groups.get_mut(&key) {
            g.add(f, MAX_IDS);
        } else if self.groups.len() < MAX_GROUPS {
            self.groups.insert(key, IncidentGroup::new(f));
        }
    }

    /// The failures of the failed probes; a finding without a message id or a time takes the
    /// probe's id and verdict time.
    pub fn from_results(results: &[RunResult]) -> Self {
        let mut groups = IncidentGroups::default();
        for r in results
            .iter()
            .filter(|r| r.status.severity() == Severity::Failed)
        {
            for f in &r.findings {
                let mut f = f.clone();
                f.message_id.get_or_insert_with(|| r.probe_id.clone());
                if f.first_seen.is_none() {
                    f.seen(Some(r.verdict_at));
                }
                groups.add(&f);
            }
        }
        groups
    }

    pub fn into_groups(self) -> Vec<IncidentGroup> {
        self.groups.into_values().collect()
    }
}

/// The drafts of `groups`, each dated by its first evidence (`today` when it has none);
/// `source` says which command wrote them.
pub fn drafts(
    groups: &[IncidentGroup],
    today: NaiveDate,
    source: &str,
    runbook: &Runbook,
    facts: &Facts,
) -> Vec<IncidentDraft> {
    groups
        .iter()
        .map(|g| {
            let date = g.first_seen.map_or(today, |t| t.date_naive());
            incident::render(runbook, g, date, source, facts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: FindingCode, host: &str, id: &str) -> Finding {
        let mut f = Finding::new(code, Some(host), "x");
        f.message_id = Some(id.into());
        f
    }

    #[test]
    fn one_group_per_cause_and_host_failures_only() {
        let mut g = IncidentGroups::default();
        g.add(&finding(FindingCode::RelayAccessDenied, "ec2", "a"));
        g.add(&finding(FindingCode::RelayAccessDenied, "ec2", "b"));
        g.add(&finding(FindingCode::RelayAccessDenied, "dell", "c"));
        g.add(&finding(FindingCode::SpamFolder, "dovecot", "d"));
        let groups = g.into_groups();
        assert_eq!(groups.len(), 2);
        let ec2 = groups
            .iter()
            .find(|g| g.host.as_deref() == Some("ec2"))
            .unwrap();
        assert_eq!(ec2.occurrences, 2);
        assert_eq!(ec2.message_ids, ["a", "b"]);
    }

    #[test]
    fn groups_are_bounded() {
        let mut g = IncidentGroups::default();
        for i in 0..MAX_GROUPS + 5 {
            g.add(&finding(
                FindingCode::RelayAccessDenied,
                &format!("h{i}"),
                "a",
            ));
        }
        assert_eq!(g.into_groups().len(), MAX_GROUPS);
    }
}
