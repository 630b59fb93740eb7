//! Cleanup after a run: this run's probe, then left-overs of earlier runs that no run can still
//! be waiting for. Only verified probes (and bounces quoting one) are ever deleted. Not here:
//! the decision per probe (core::verdict::cleanup_action) or how deletion works (edge::imap).
use std::collections::BTreeMap;

use super::ports::MailboxSession;
use super::steps::Run;
use crate::core::verdict::{cleanup_action, CleanupAction, CleanupPolicy};
use crate::edge::imap::Arrival;

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
        self.clean_mailbox(mb.as_mut(), own).await;
        mb.logout().await;
    }

    async fn clean_mailbox(&mut self, mb: &mut dyn MailboxSession, own: Option<&Arrival>) {
        if !self.scenario().cleanup {
            self.result.cleanup.note = Some("cleanup is off for this scenario".into());
            return;
        }
        if let Some(a) = own {
            match mb.delete(&a.seen.folder, &[a.seen.uid]).await {
                Ok(n) => self.result.cleanup.deleted += n as u32,
                Err(e) => self.result.cleanup.note = Some(e.to_string()),
            }
        }
        for (folder, uids) in self.leftovers_to_delete(mb).await {
            match mb.delete(&folder, &uids).await {
                Ok(n) => self.result.cleanup.swept += n as u32,
                Err(e) => self.result.cleanup.note = Some(e.to_string()),
            }
        }
    }

    /// The UIDs to delete, by folder, among the verified probes in the mailbox; probes reported
    /// lost earlier are marked late on the way.
    async fn leftovers_to_delete(
        &mut self,
        mb: &mut dyn MailboxSession,
    ) -> BTreeMap<String, Vec<u32>> {
        let (seen, warnings) = mb.scan_probes(&self.runner.installation).await;
        self.result.warnings.extend(warnings);
        let store = &self.runner.store;
        let now = self.runner.clock.now();
        let own_probe_id = self.result.probe_id.clone();
        let policy = CleanupPolicy {
            own_probe_id: &own_probe_id,
            now,
            sweep_after: self.scenario().sweep_after,
        };
        let mut by_folder: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for p in seen {
            let pid = p.tag.id.to_string();
            let action = cleanup_action(&pid, p.tag.sent_at, &policy, || {
                store.state(&pid).ok().flatten()
            });
            if action == CleanupAction::MarkLateAndDelete
                && store
                    .mark_late(&pid, p.internal_date.unwrap_or(now))
                    .unwrap_or(false)
            {
                self.result.cleanup.marked_late.push(pid);
            }
            if action.deletes() {
                by_folder.entry(p.folder).or_default().push(p.uid);
            }
        }
        by_folder
    }
}
