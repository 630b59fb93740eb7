//! Waiting for the probe: until it arrives, the deadline passes, or the logs show it failed for
//! good; re-opening the mailbox when every session was lost on the way. When to look is decided
//! here: a window of quick looks after the MX accepted (gaps growing with the time since, the
//! count bounded), a full look when the logs show the mailbox server saved the probe, and a
//! backstop look every few poll intervals (which also re-issues IDLE before servers drop it);
//! IDLE's push covers the rest. Not here: how the mailbox looks (edge::imap), what the logs mean
//! (core::fusion).
use std::time::Duration;

use tokio::time::Instant;

use super::logs::watch_logs;
use super::ports::{ArmedWait, Cancel, LogFeed, Look, LookRequests, MailboxSession};
use super::steps::{ArmedMailbox, Run, Sent};
use super::stop::STOP_GRACE;
use crate::clock::SharedClock;
use crate::edge::imap::{Arrival, WaitEnd, WaitNotes, IDLE_REFRESH};
use crate::edge::smtp::SendOutcome;

/// The window's first look after acceptance, and its smallest gap.
pub(super) const WINDOW_FIRST: Duration = Duration::from_millis(5);
/// A window gap is this fraction of the time since acceptance (at least [`WINDOW_FIRST`]): the
/// detection delay stays a small share of the delivery time while the looks grow only with its
/// logarithm.
const WINDOW_GAP_DIVISOR: u32 = 16;
/// Looks in the window; with the gaps above it spans about 0.55 s after acceptance. Later
/// deliveries are seen by the log-triggered look, IDLE's push, or the backstop.
pub(super) const WINDOW_LOOKS: u32 = 48;

/// The gap before the next window look, `since` after acceptance.
pub(super) fn window_gap(since: Duration) -> Duration {
    (since / WINDOW_GAP_DIVISOR).max(WINDOW_FIRST)
}

/// The backstop: a full look every five poll intervals while IDLE is used (at least 2 s, and
/// within [`IDLE_REFRESH`], so IDLE is re-issued before servers such as Gmail drop it at ~29
/// minutes; some servers also withhold news during IDLE until a command comes), every poll
/// interval without it.
pub(super) fn backstop(poll: Duration, idle: bool) -> Duration {
    if idle {
        (poll * 5).clamp(Duration::from_secs(2), IDLE_REFRESH)
    } else {
        poll.min(IDLE_REFRESH)
    }
}

/// Ask for looks on the runner's schedule from `accepted` on: the window, then a full look
/// (which ends the window: IDLE resumes), then the backstop. Never resolves.
async fn drive_looks(looks: LookRequests, clock: SharedClock, accepted: Instant, every: Duration) {
    for _ in 0..WINDOW_LOOKS {
        let now = clock.instant();
        tokio::time::sleep_until(now + window_gap(now.saturating_duration_since(accepted))).await;
        looks.request(Look::Window);
    }
    looks.request(Look::Full);
    loop {
        tokio::time::sleep(every).await;
        looks.request(Look::Full);
    }
}

/// Pass the runner's look requests on to one armed watch (a new one after a reconnection).
async fn forward_looks(from: &LookRequests, to: LookRequests) {
    loop {
        to.request(from.next().await);
    }
}

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
        self.result.imap_commands = Some(notes.commands);
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
        let looks = LookRequests::default();
        let every = backstop(self.scenario().receiver.poll_interval, armed.idle);
        let schedule = drive_looks(
            looks.clone(),
            runner.clock.clone(),
            runner.clock.instant(),
            every,
        );
        // While waiting, the logs may show the probe's fate first: a bounce or a reject ends the
        // wait at once; a deferral is shown live and the wait goes on; the save asks for a look.
        let fail_fast = watch_logs(logs, &sent.probe, &runner.progress, name, &looks);
        // A stop request (SIGINT/SIGTERM) leaves the probe a short grace to arrive.
        let stop = runner.stop.after(STOP_GRACE);
        let fail_fast = async move {
            tokio::select! {
                () = fail_fast => {}
                () = stop => {}
                () = schedule => {}
            }
        };
        tokio::pin!(fail_fast);
        let ArmedMailbox {
            mut armed,
            ref resume,
            ..
        } = armed;
        let mut notes = WaitNotes::default();
        loop {
            let to = armed.looks();
            let cancel = async {
                tokio::select! {
                    () = fail_fast.as_mut() => {}
                    () = forward_looks(&looks, to) => {}
                }
            };
            tokio::pin!(cancel);
            let w = armed.wait(sent.deadline, cancel).await;
            notes.warnings.extend(w.notes.warnings);
            notes.commands += w.notes.commands;
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
