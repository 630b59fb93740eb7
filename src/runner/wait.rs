//! Waiting for the probe: until it arrives, the deadline passes, or the logs show it failed for
//! good; re-opening the mailbox when every session was lost on the way. Not here: how the
//! mailbox detects (edge::imap), what the logs mean (core::fusion).
use std::time::Duration;

use tokio::time::Instant;

use super::logs::watch_logs;
use super::ports::{ArmedWait, Cancel, LogFeed, MailboxSession};
use super::steps::{ArmedMailbox, Run, Sent};
use super::stop::STOP_GRACE;
use crate::edge::imap::{Arrival, WaitEnd, WaitNotes};
use crate::edge::smtp::SendOutcome;

/// First pause before logging in again; doubled after each failure up to [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// What the wait produced: the probe (or its bounce) if it came, and the session if it survived.
pub(super) struct Awaited {
    pub(super) arrival: Option<Arrival>,
    pub(super) session: Option<Box<dyn MailboxSession>>,
}

impl Run<'_> {
    /// Wait for an accepted probe; for one that was not, only stop the watch (its session is
    /// still wanted for cleanup). Ends the verdict's clock and keeps the wait's warnings.
    pub(super) async fn await_arrival(
        &mut self,
        sent: &Sent,
        armed: ArmedMailbox,
        logs: &mut dyn LogFeed,
    ) -> Awaited {
        let (arrival, session, notes) = match &sent.outcome {
            SendOutcome::Accepted(_) => self.wait_accepted(sent, armed, logs).await,
            SendOutcome::Rejected(_) | SendOutcome::Failed(_) => {
                let at_once = std::pin::pin!(std::future::ready(()));
                let cancel: Cancel<'_> = at_once;
                let w = armed.armed.wait(self.runner.clock.instant(), cancel).await;
                (None, w.session, w.notes)
            }
        };
        self.result.verdict_at = self.runner.clock.now();
        self.result.warnings.extend(notes.warnings);
        Awaited { arrival, session }
    }

    async fn wait_accepted(
        &mut self,
        sent: &Sent,
        armed: ArmedMailbox,
        logs: &mut dyn LogFeed,
    ) -> (Option<Arrival>, Option<Box<dyn MailboxSession>>, WaitNotes) {
        let runner = self.runner;
        let name = &self.scenario().name;
        self.progress("waiting for arrival");
        // While waiting, the logs may show the probe's fate first: a bounce or a reject ends the
        // wait at once; a deferral is shown live and the wait goes on.
        let fail_fast = watch_logs(logs, &sent.probe, &runner.progress, name);
        // A stop request (SIGINT/SIGTERM) leaves the probe a short grace to arrive.
        let stop = runner.stop.after(STOP_GRACE);
        let fail_fast = async move {
            tokio::select! {
                () = fail_fast => {}
                () = stop => {}
            }
        };
        tokio::pin!(fail_fast);
        let ArmedMailbox {
            mut armed,
            ref resume,
        } = armed;
        let mut notes = WaitNotes::default();
        loop {
            let w = armed.wait(sent.deadline, fail_fast.as_mut()).await;
            notes.warnings.extend(w.notes.warnings);
            match w.end {
                WaitEnd::Arrived(a) => return (Some(*a), w.session, notes),
                WaitEnd::Deadline | WaitEnd::Cancelled => return (None, w.session, notes),
                // A restarted Dovecot or a network blip is not a lost probe: log in again and
                // keep looking from where this run started.
                WaitEnd::SessionsLost => {
                    self.progress("IMAP connection lost; reconnecting");
                    match self.reconnect(resume, sent.deadline, &mut notes).await {
                        Some(a) => {
                            notes.warnings.push(
                                "the IMAP connection was lost while waiting and was re-established"
                                    .into(),
                            );
                            armed = a;
                            self.progress("waiting for arrival");
                        }
                        None => return (None, None, notes),
                    }
                }
            }
        }
    }

    /// Log in again after every session dropped, retrying with back-off until `deadline`.
    async fn reconnect(
        &self,
        resume: &[(String, u32)],
        deadline: Instant,
        notes: &mut WaitNotes,
    ) -> Option<Box<dyn ArmedWait>> {
        let mut pause = RECONNECT_FIRST;
        while self.runner.clock.instant() + pause < deadline && !self.runner.stop.requested() {
            tokio::time::sleep(pause).await;
            let attempt = match self.prepared.mailbox.open(resume, deadline).await {
                Ok(m) => {
                    m.arm(self.runner.installation.clone(), self.id, deadline)
                        .await
                }
                Err(e) => Err(e),
            };
            match attempt {
                Ok(a) => return Some(a),
                Err(e) => {
                    let e = e.to_string();
                    // The same failure again is one warning.
                    if notes.warnings.last().is_none_or(|w| !w.contains(&e)) {
                        notes
                            .warnings
                            .push(format!("reconnecting to the mailbox: {e}"));
                    }
                }
            }
            pause = (pause * 2).min(RECONNECT_MAX);
        }
        None
    }
}
