//! Cleanup after a run: this run's probe, then left-overs of earlier runs that no run can still
//! be waiting for. Only messages that really are this installation's probes (or their bounces)
//! are ever deleted, each probe once: the store records every removal before it happens, and a
//! further copy is reported as `probe_replayed`, a genuine tag on another message as
//! `probe_forged`. Not here: the decision per copy (core::verdict::cleanup_plan) or how
//! deletion works (edge::imap).
use std::collections::BTreeMap;

use uuid::Uuid;

use super::logs::SETTLE;
use super::ports::MailboxSession;
use super::steps::Run;
use crate::core::verdict::{
    cleanup_plan, CleanupAction, CleanupPolicy, CopyAt, CopyKind, DeleteReason, LeaveReason,
    SeenCopy,
};
use crate::edge::imap::{Arrival, ScannedCopy};
use crate::edge::store::{Claim, Removal};

impl Run<'_> {
    /// Clean up with the session the wait left (none: say so), then log out.
    pub(super) async fn clean_up(
        &mut self,
        session: Option<Box<dyn MailboxSession>>,
        own: Option<&Arrival>,
    ) {
        self.progress("cleaning up");
        let Some(mut mb) = session else {
            self.result.cleanup.note = Some("the IMAP session was lost; nothing cleaned".into());
            return;
        };
        // The logs are given SETTLE to settle anyway: within it, the cleanup waits for the
        // other probes on a shared session to be found, so that its scan and deletions never
        // hold up their looks (and the cleanups that waited go as one scan).
        mb.until_quiet(self.runner.clock.instant() + SETTLE).await;
        self.clean_mailbox(mb.as_mut(), own).await;
        mb.logout().await;
    }

    async fn clean_mailbox(&mut self, mb: &mut dyn MailboxSession, own: Option<&Arrival>) {
        if !self.scenario().cleanup {
            self.result.cleanup.note = Some("cleanup is off for this scenario".into());
            return;
        }
        let (seen, warnings) = mb.scan_probes(&self.runner.installation).await;
        self.result.warnings.extend(warnings);
        if let Some(a) = own {
            let found = seen.iter().any(|c| {
                c.tag.id == self.id && c.at.folder == a.seen.folder && c.at.uid == a.seen.uid
            });
            if !found {
                self.result.cleanup.note = Some(format!(
                    "this run's probe ({} UID {}) was not found again when cleaning up; left in place",
                    a.seen.folder, a.seen.uid
                ));
            }
        }
        let mut by_probe: BTreeMap<Uuid, Vec<ScannedCopy>> = BTreeMap::new();
        for c in seen {
            by_probe.entry(c.tag.id).or_default().push(c);
        }
        for (id, copies) in by_probe {
            self.clean_probe(mb, &id.to_string(), &copies).await;
        }
    }

    /// Apply the plan for every copy of one probe.
    async fn clean_probe(
        &mut self,
        mb: &mut dyn MailboxSession,
        probe_id: &str,
        copies: &[ScannedCopy],
    ) {
        let stored = match self.runner.store.probe_record(probe_id) {
            Ok(s) => s,
            Err(e) => {
                // Unknown is the safe reading: only this run's own probe could still be removed,
                // and its removal cannot be recorded either, so nothing is.
                self.result.warnings.push(e.to_string());
                return;
            }
        };
        let seen: Vec<SeenCopy> = copies
            .iter()
            .map(|c| SeenCopy {
                kind: c.kind,
                at: c.at.clone(),
            })
            .collect();
        let own_probe_id = self.result.probe_id.clone();
        let policy = CleanupPolicy {
            own_probe_id: &own_probe_id,
            now: self.runner.clock.now(),
            sweep_after: self.scenario().sweep_after,
        };
        let sent_at = copies[0].tag.sent_at;
        let plan = cleanup_plan(probe_id, sent_at, &seen, stored.as_ref(), &policy);
        let mut stale_noted = false;
        for (c, action) in copies.iter().zip(plan) {
            match action {
                CleanupAction::Delete(reason) => self.remove(mb, probe_id, c, reason).await,
                CleanupAction::Leave(LeaveReason::Replayed) => {
                    let done = stored.as_ref().and_then(|s| s.deleted(c.kind)).cloned();
                    self.replayed(probe_id, c, done.as_ref());
                }
                CleanupAction::Leave(LeaveReason::Forged) => self.forged(probe_id, c),
                CleanupAction::Leave(LeaveReason::Stale) if !stale_noted => {
                    stale_noted = true;
                    self.result.warnings.push(format!(
                        "probe {probe_id} is still recorded pending after more than sweep_after \
                         (its run may have crashed); left in place"
                    ));
                }
                CleanupAction::Leave(_) => {}
            }
        }
    }

    /// Claim the removal in the store, then delete. A claim lost to another copy makes this
    /// one a replay; a deletion that fails gives the claim back.
    async fn remove(
        &mut self,
        mb: &mut dyn MailboxSession,
        probe_id: &str,
        c: &ScannedCopy,
        reason: DeleteReason,
    ) {
        let store = &self.runner.store;
        let copy = Removal {
            probe_id,
            kind: c.kind,
            at: &c.at,
        };
        match store.claim_deletion(copy, self.runner.clock.now()) {
            Ok(Claim::Claimed | Claim::SameCopy) => {}
            Ok(Claim::OtherCopy(done)) => return self.replayed(probe_id, c, Some(&done)),
            Ok(Claim::NoRecord) => {
                self.result.warnings.push(format!(
                    "probe {probe_id} is not in the result store, so its removal cannot be \
                     recorded; {} left in place",
                    c.at
                ));
                return;
            }
            Err(e) => {
                self.result
                    .warnings
                    .push(format!("{e}; {} left in place", c.at));
                return;
            }
        }
        if reason == DeleteReason::MarkLate {
            let seen_at = c.internal_date.unwrap_or_else(|| self.runner.clock.now());
            if store.mark_late(probe_id, seen_at).unwrap_or(false) {
                self.result.cleanup.marked_late.push(probe_id.to_string());
            }
        }
        match mb.delete(&c.at).await {
            Ok(n) if reason == DeleteReason::Own => self.result.cleanup.deleted += n as u32,
            Ok(n) => self.result.cleanup.swept += n as u32,
            Err(e) => {
                if let Err(e) = store.release_deletion(copy) {
                    self.result.warnings.push(e.to_string());
                }
                self.result.cleanup.note = Some(e.to_string());
            }
        }
    }

    fn replayed(&mut self, probe_id: &str, c: &ScannedCopy, done: Option<&CopyAt>) {
        self.result.cleanup.replayed += 1;
        let what = match c.kind {
            CopyKind::Bounce => "a bounce of",
            _ => "a copy of",
        };
        let before = match done {
            Some(at) => format!("removed once already from {at}"),
            None => "another copy of which is removed".to_string(),
        };
        self.result.warnings.push(format!(
            "probe_replayed: {}: {what} probe {probe_id}, {before}; left in place",
            c.at
        ));
    }

    fn forged(&mut self, probe_id: &str, c: &ScannedCopy) {
        self.result.cleanup.forged += 1;
        self.result.warnings.push(format!(
            "probe_forged: {}: probe {probe_id}'s genuine tag on a message whose Message-ID is \
             not the probe's; left in place",
            c.at
        ));
    }
}
