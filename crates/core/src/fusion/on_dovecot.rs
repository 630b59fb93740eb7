//! Correlator handlers for Dovecot's side of a delivery: the LMTP/LDA delivery line (saved or
//! save failed; joined to its message by Message-ID or LMTP session), Dovecot error lines that
//! explain a Postfix LMTP failure, and recipient lookups that failed during delivery. Dovecot's
//! login and auth lines about clients are host-level (`on_host`).

use chrono::{DateTime, TimeDelta, Utc};

use crate::diagnosis::{classify_dovecot_problem, classify_text, is_spam_mailbox};
use crate::diagnosis::{Finding, FindingCode};
use crate::logs::{AuthFailureKind, DovecotDelivery, DovecotProblem, Event, EventText, LogRecord};

use super::chain::{
    clip, generic, same_cause, within, Chain, ChainFinding, ChainId, DoveDelivery, MAX_DOVECOT,
};
use super::correlator::Limits;
use super::correlator::{remember, Correlator, RecentLine};
use super::links::msgids_agree;
use super::model::msgid_key;

/// The finding a Dovecot delivery line carries, if any: a failed save (named by its own text,
/// else by the Dovecot error line `cause` just before it) or a save into a spam folder.
fn delivery_finding(
    rec: &LogRecord,
    d: &DoveDelivery,
    text: &str,
    cause: Option<&RecentLine>,
    max_evidence: usize,
    max_line_bytes: usize,
) -> Option<Finding> {
    let role = &rec.role;
    let who = d.user.as_deref().unwrap_or("?");
    let mb = d.mailbox.as_deref().unwrap_or("?");
    let mut f = if d.discarded {
        let msg = if crate::logs::is_sieve_reject(text.as_bytes()) {
            format!("{role}: the Sieve script of {who} rejected the message (reject action): the sender is told, no mailbox has it")
        } else {
            format!("{role}: the Sieve script of {who} discarded the message (discard action)")
        };
        Finding::new(FindingCode::Discarded, Some(role), msg)
    } else if !d.saved {
        let code = classify_text(text)
            .or(cause.and_then(|c| c.code))
            .unwrap_or(FindingCode::DeferredOther);
        let msg = format!("{}{mb}: {}", save_failed_prefix(role, who), clip(text, 300));
        let mut f = Finding::new(code, Some(role), msg);
        if let Some(c) = cause {
            f.add_evidence(&c.raw, max_evidence);
        }
        f
    } else if is_spam_mailbox(mb) {
        let msg = format!("{role}: Dovecot filed the message for {who} into {mb}");
        Finding::new(FindingCode::SpamFolder, Some(role), msg)
    } else {
        return None;
    };
    f.add_evidence(&clip(&rec.raw, max_line_bytes), max_evidence);
    f.seen(rec.timestamp);
    Some(f)
}

/// The key an LMTP process's death is remembered under (no user's: `(` cannot start one).
const LMTP_CRASH: &str = "(lmtp crash)";

/// Dovecot's master on an LMTP process that died: `service(lmtp): child 2210 killed with signal
/// 11`, `child 2210 returned error 89 (Out of memory)`.
fn is_lmtp_crash(text: &str) -> bool {
    text.starts_with("service(lmtp): child ")
        && (text.contains(" killed with signal ") || text.contains(" returned error "))
}

/// Which delivery a Dovecot line is about, as far as it says: the message (`msgid=`, or its
/// session's earlier line's) and the Postfix LMTP client its session served.
#[derive(Debug, Default)]
struct About {
    msgid: Option<String>,
    conn_pid: Option<u32>,
}

/// The Postfix LMTP client process Dovecot's LMTP server names (`lmtp-server: conn
/// unix:pid=12136,uid=102 [1]: rcpt ...`).
fn lmtp_client_pid(text: &str) -> Option<u32> {
    let at = text.find("conn unix:pid=")? + "conn unix:pid=".len();
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    text[at..at + digits].parse().ok()
}

/// How far apart in time a Dovecot line and the LMTP failure it explains may be logged: a line
/// that names its LMTP client is that client's delivery of the same moment (one host's clock;
/// Postfix writes whole seconds), since the client delivers one message after another; one
/// that does not is joined by its user within the link window.
const SAME_CLIENT_WINDOW: TimeDelta = TimeDelta::seconds(2);

/// A Dovecot line that names its LMTP client (`conn_pid`) can explain only a failure that
/// process logged (`agent`); either unknown, it can.
pub(super) fn same_client(conn_pid: Option<u32>, agent: Option<u32>) -> bool {
    match (conn_pid, agent) {
        (Some(c), Some(a)) => c == a,
        _ => true,
    }
}

/// A failed save that names its message (`msgid=`) and a cause is why that message's LMTP
/// delivery of the same moment failed: the generic failure Postfix logged for it (`451 4.2.0
/// ... Internal error occurred`) takes the cause, whatever Dovecot line without a message-id
/// was joined before.
fn name_lmtp_failure(ch: &mut Chain, save: &Finding, limits: &Limits) {
    if generic(save.code) {
        return;
    }
    let near = |x: &ChainFinding| {
        x.f.host == save.host
            && generic(x.f.code)
            && within(x.f.last_seen, save.last_seen, SAME_CLIENT_WINDOW)
    };
    let Some(i) = ch.findings.iter().rposition(near) else {
        return;
    };
    let x = &mut ch.findings[i];
    x.f.code = save.code;
    x.cause = true;
    x.f.rehint();
    ch.refold_finding(i, limits);
}

/// How a failed save's finding starts (the folder and the reason follow).
fn save_failed_prefix(role: &str, who: &str) -> String {
    format!("{role}: Dovecot could not save the message for {who} into ")
}

/// A failed save in an LMTP session Postfix then logged `250 2.0.0 <rcpt> SESSION Saved` for
/// (Sieve's `fileinto` to a folder that is missing or full, then `Execution of script ...
/// failed, but implicit keep was successful`): Dovecot kept the message in INBOX, as after a
/// save that followed the failed one. Asked once, when the chain is reported: the two lines
/// come in either order.
pub(super) fn kept_after_failing(ch: &mut Chain, limits: &Limits) {
    let failed = |d: &DoveDelivery| !d.saved && !d.discarded && !d.rejected;
    if !ch.dovecot.iter().any(|d| failed(d) && d.session.is_some()) {
        return;
    }
    let accepted = |s: &str| ch.entries.iter().any(|e| e.lmtp_sessions().any(|a| a == s));
    let kept = ch
        .dovecot
        .iter()
        .position(|d| failed(d) && d.session.as_deref().is_some_and(accepted));
    if let Some(i) = kept {
        let mut keep = ch.dovecot[i].clone();
        keep.saved = true;
        keep.mailbox = Some("INBOX (Sieve's implicit keep: Dovecot answered 250 Saved)".into());
        saved_after_failing(ch, &keep, limits);
    }
}

/// A save that succeeded after a failed one for the same recipient and session (Sieve could not
/// file it into the folder a rule named, then kept it in INBOX): the message was delivered. The
/// failed saves go, and their findings become a note.
fn saved_after_failing(ch: &mut Chain, d: &DoveDelivery, limits: &Limits) {
    let same = |e: &DoveDelivery| !e.saved && same_attempt(e, d) && not_after(e, d);
    if !ch.dovecot.iter().any(same) {
        return;
    }
    // The failed saves taken back, by their own findings (a Sieve discard is not one).
    let mut taken: Vec<Box<Finding>> = Vec::new();
    ch.dovecot.retain_mut(|e| {
        let gone = same(e);
        if gone {
            let prefix = save_failed_prefix(&e.host, e.user.as_deref().unwrap_or("?"));
            if let Some(f) = e.finding.take().filter(|f| f.message.starts_with(&prefix)) {
                if !taken.iter().any(|t| t.message == f.message) {
                    taken.push(f);
                }
            }
        }
        !gone
    });
    let into = d.mailbox.as_deref().unwrap_or("?");
    // One note per failure's text: a failure read after the save but logged before it is taken
    // back on its own, after the others of the same text.
    for f in &taken {
        ch.add_note(format!("{}; saved into {into} instead", f.message));
    }
    // A chain finding a failure taken back leads, or was folded into while a Dovecot failure
    // leads it, goes; the failures still standing of its code are folded again, as if the
    // taken-back ones had never been logged (counted and timed by those that stand).
    let folded: Vec<usize> = taken
        .iter()
        .filter_map(|t| ch.fold_target(t, true))
        .filter(|&i| led_by_dovecot(ch, &ch.findings[i].f, &taken))
        .collect();
    let mut codes: Vec<FindingCode> = Vec::new();
    let mut i = 0;
    ch.findings.retain(|x| {
        let gone = folded.contains(&i) || taken.iter().any(|t| t.message == x.f.message);
        i += 1;
        if gone && !codes.contains(&x.f.code) {
            codes.push(x.f.code);
        }
        !gone
    });
    fold_standing(ch, &codes, limits);
}

/// Chain finding `x` is led by a Dovecot failure's own finding (one of the chain's, or one of
/// those `taken` back), not by a Postfix line.
fn led_by_dovecot(ch: &Chain, x: &Finding, taken: &[Box<Finding>]) -> bool {
    let own = ch.dovecot.iter().filter_map(|e| e.finding.as_deref());
    own.chain(taken.iter().map(|t| &**t))
        .any(|f| f.message == x.message)
}

/// Fold the own findings of the failures still standing whose code is one of `codes` into the
/// chain, earliest first (so the same one leads whatever order their lines were read in).
fn fold_standing(ch: &mut Chain, codes: &[FindingCode], limits: &Limits) {
    if codes.is_empty() {
        return;
    }
    let mut standing: Vec<Finding> = ch
        .dovecot
        .iter()
        .filter_map(|e| e.finding.as_deref())
        .filter(|f| codes.iter().any(|c| same_cause(*c, f.code)))
        .cloned()
        .collect();
    standing.sort_by(|a, b| (a.first_seen, &a.host).cmp(&(b.first_seen, &b.host)));
    for f in standing {
        ch.fold_finding(f, limits, true);
    }
}

/// Deliveries `a` and `b` are for one recipient in one LMTP session (or a session unknown).
fn same_attempt(a: &DoveDelivery, b: &DoveDelivery) -> bool {
    a.user_key() == b.user_key()
        && (a.session.is_none() || b.session.is_none() || a.session == b.session)
}

/// Delivery `a` was logged no later than `b` by their own times; with a time unknown, it was
/// read first (the caller's order).
fn not_after(a: &DoveDelivery, b: &DoveDelivery) -> bool {
    a.at.zip(b.at).is_none_or(|(x, y)| x <= y)
}

/// A save of failed delivery `d`'s recipient and session, read before `d` but logged at or
/// after it (another host's log read first, or a log whose clock steps back): `d` failed
/// before the save, as [`saved_after_failing`] has it when the lines come in time order.
fn save_not_before(ch: &Chain, d: &DoveDelivery) -> Option<DoveDelivery> {
    if d.saved || d.at.is_none() {
        return None;
    }
    ch.dovecot
        .iter()
        .find(|s| s.saved && s.at.is_some() && same_attempt(s, d) && not_after(d, s))
        .cloned()
}

impl Correlator {
    pub(super) fn on_dovecot_delivery(&mut self, rec: &LogRecord, line: &DovecotDelivery) {
        let DovecotDelivery {
            user,
            session,
            message_id,
            mailbox,
            saved,
            delivery_time_ms,
            text,
        } = line;
        if !*saved {
            if let Some(to) = crate::logs::sieve_redirect_target(text.as_bytes()) {
                let to = String::from_utf8_lossy(to);
                self.on_sieve_redirect(rec, line, &to);
                return;
            }
        }
        let d = DoveDelivery {
            host: rec.role.clone(),
            user: user.clone(),
            session: session.clone(),
            mailbox: mailbox.clone(),
            saved: *saved,
            discarded: !*saved && crate::logs::is_sieve_discard(text.as_bytes()),
            rejected: !*saved && text.contains("rejected: "),
            delivery_time_ms: *delivery_time_ms,
            at: rec.timestamp,
            subsecond: rec.subsecond,
            finding: None,
        };
        // A save failure's reason is often generic; Dovecot's error line just before it (same
        // session, or same user within the window) has the cause.
        let cause = if d.saved {
            None
        } else {
            self.save_failure_cause(&d, message_id.as_deref())
        };
        let limits = self.limits;
        let finding = delivery_finding(
            rec,
            &d,
            text,
            cause.as_ref(),
            limits.max_evidence,
            limits.max_line_bytes,
        );
        let mut d = d;
        if !d.saved {
            d.finding = finding.clone().map(Box::new);
        }
        let cid = self.dovecot_chain(message_id.as_deref(), session.as_deref());
        self.note_lda_save(&d, cid);
        if let Some(ch) = self.chains.get_mut(&cid) {
            if ch.message_id.is_none() {
                ch.message_id = message_id.as_deref().map(EventText::from);
            }
            if d.saved {
                saved_after_failing(ch, &d, &limits);
            }
            let save = save_not_before(ch, &d);
            if ch.dovecot.len() < MAX_DOVECOT {
                ch.dovecot.push(d);
            }
            ch.add_line(&rec.raw, &limits, &mut self.line_budget);
            ch.touch(rec.timestamp);
            if let Some(f) = finding {
                if !*saved && message_id.is_some() {
                    name_lmtp_failure(ch, &f, &limits);
                }
                ch.add_finding(f, &limits, true, &mut self.line_budget);
            }
            if let Some(save) = save {
                saved_after_failing(ch, &save, &limits);
            }
        }
        if let Some(s) = session {
            if !self.sessions.contains_key(s.as_str()) {
                self.sessions.insert(s.as_str().into(), cid);
            }
            self.sample_dovecot(cid, s);
        }
    }

    /// Sieve's redirect: no hop of its own (the LMTP reply already said the message was taken),
    /// a note on the message joined by its Message-ID or LMTP session saying where it went.
    fn on_sieve_redirect(&mut self, rec: &LogRecord, line: &DovecotDelivery, to: &str) {
        let cid = self.dovecot_chain(line.message_id.as_deref(), line.session.as_deref());
        let limits = self.limits;
        if let Some(ch) = self.chains.get_mut(&cid) {
            if ch.message_id.is_none() {
                ch.message_id = line.message_id.as_deref().map(EventText::from);
            }
            ch.add_line(&rec.raw, &limits, &mut self.line_budget);
            ch.touch(rec.timestamp);
            ch.add_note(format!(
                "{}: the Sieve script of {} forwarded the message to {} (redirect): that \
                 mailbox has no copy unless the script also kept one",
                rec.role,
                line.user.as_deref().unwrap_or("?"),
                clip(to, 200)
            ));
        }
        if let Some(s) = &line.session {
            if !self.sessions.contains_key(s.as_str()) {
                self.sessions.insert(s.as_str().into(), cid);
            }
        }
    }

    /// Sieve could not forward the message (its redirect refused or not sent): a note on the
    /// message its line names, whatever becomes of the message (kept in INBOX, or deferred).
    fn note_failed_redirect(
        &mut self,
        rec: &LogRecord,
        user: Option<&str>,
        text: &str,
        msgid: Option<&str>,
    ) {
        let Some(cid) = msgid.and_then(|k| self.msgids.get(k).copied()) else {
            return;
        };
        let Some(ch) = self.chains.get_mut(&cid) else {
            return;
        };
        let why = text
            .find("failed to redirect message to ")
            .map_or(text, |at| &text[at + "failed to ".len()..]);
        ch.add_note(format!(
            "{}: the Sieve script of {} could not forward the message: {}",
            rec.role,
            user.unwrap_or("?"),
            clip(why, 300)
        ));
    }

    /// The latest classified Dovecot error of the same session, or of the same user within the
    /// window, unless it names another message than `message_id`.
    fn save_failure_cause(&self, d: &DoveDelivery, message_id: Option<&str>) -> Option<RecentLine> {
        let user_key = d.user_key();
        let ours = message_id.map(msgid_key);
        let client = self.session_conn_pid(d.session.as_deref());
        self.recent_dovecot
            .iter()
            .rev()
            .find(|r| {
                r.code.is_some()
                    && (ours.is_none() || r.msgid.is_none() || r.msgid.as_deref() == ours)
                    && ((d.session.is_some() && r.session == d.session)
                        || (user_key.as_deref() == Some(r.key.as_str())
                            && same_client(r.conn_pid, client)
                            && within(r.at, d.at, self.client_window(r.conn_pid.or(client)))))
            })
            .cloned()
    }

    /// The chain a Dovecot delivery line belongs to: by its Message-ID, else by its LMTP session
    /// (unless that chain's Message-ID differs), else a new one.
    fn dovecot_chain(&mut self, message_id: Option<&str>, session: Option<&str>) -> ChainId {
        let key = message_id.map(msgid_key).filter(|k| !k.is_empty());
        let cid = self.dovecot_chain_of(key, message_id, session);
        if let Some(k) = key {
            self.bridge(k, cid);
        }
        cid
    }

    /// [`Correlator::dovecot_chain`] but for the held chains its Message-ID (`key`) brings back.
    fn dovecot_chain_of(
        &mut self,
        key: Option<&str>,
        message_id: Option<&str>,
        session: Option<&str>,
    ) -> ChainId {
        let by_msgid = key
            .and_then(|k| self.msgids.get(k).copied())
            .filter(|&c| self.open_to_message_id(c));
        let by_session = session
            .and_then(|s| self.sessions.get(s).copied())
            .filter(|&c| self.still_open(c));
        match (by_msgid, by_session) {
            (Some(a), Some(b)) if a != b && self.compatible(a, b) => self.merge(a, b),
            (Some(a), _) => a,
            (None, Some(b)) => {
                let theirs = self.chains.get(&b).and_then(|c| c.message_id.as_deref());
                if msgids_agree(message_id, theirs) {
                    b
                } else {
                    // A session-joined chain with a different message-id must not absorb this.
                    self.new_chain()
                }
            }
            (None, None) => {
                let c = self.new_chain();
                if let Some(k) = key {
                    self.msgids.insert(k.into(), c);
                }
                c
            }
        }
    }

    pub(super) fn on_dovecot_problem(&mut self, rec: &LogRecord, line: &DovecotProblem) {
        let DovecotProblem {
            service,
            user,
            session,
            severity,
            text,
        } = line;
        // The message the line is about: named in it, or by its LMTP session's earlier line.
        let msgid = crate::logs::dovecot_msgid(text.as_bytes())
            .map(|m| msgid_key(&m).to_owned())
            .or_else(|| self.session_msgid(session.as_deref()));
        let conn_pid = lmtp_client_pid(text).or_else(|| self.session_conn_pid(session.as_deref()));
        let about = About { msgid, conn_pid };
        let limits = self.limits;
        let code = classify_dovecot_problem(*severity, text);
        if self.is_another_message(about.msgid.as_deref()) {
            // Kept for its session's later lines only (they are that message's too).
            if session.is_some() {
                self.remember_dovecot(rec, user.as_deref(), session.clone(), code, about);
            }
            return;
        }
        if service == "master" && is_lmtp_crash(text) {
            self.on_lmtp_crash(rec, code);
        }
        if text.contains("failed to redirect message to ") {
            self.note_failed_redirect(rec, user.as_deref(), text, about.msgid.as_deref());
        }
        let mut attached = false;
        // Its session's message, unless that was done at the line's own time (then it goes now,
        // as the next sweep would: what a line joins must not hang on when sweeps come by).
        let open = session
            .as_ref()
            .and_then(|s| self.sessions.get(s.as_str()).copied())
            .filter(|&cid| self.still_open(cid));
        if let Some(ch) = open.and_then(|cid| self.chains.get_mut(&cid)) {
            ch.add_line(&rec.raw, &limits, &mut self.line_budget);
            ch.touch(rec.timestamp);
            attached = true;
        }
        if service == "lmtp" || service == "lda" {
            if let Some(u) = user {
                attached |= self.attach_to_lmtp_failure(rec, u, session.clone(), code, about);
            }
        }
        let Some(c) = code else {
            return;
        };
        let role = &rec.role;
        if !attached {
            let who = user
                .as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default();
            let msg = format!("{role}: Dovecot {service}{who}: {}", clip(text, 300));
            self.host_finding(c, role, msg, rec);
        } else if matches!(
            c,
            FindingCode::MailboxPermissionDenied | FindingCode::AuthBackendError
        ) {
            // Still worth a host-level mention: the cause affects every message.
            let msg = format!("{role}: Dovecot {service}: {}", clip(text, 300));
            self.host_finding(c, role, msg, rec);
        }
    }

    /// A Dovecot LMTP/LDA error for `user`: it explains the LMTP failure Postfix logged just
    /// before (if any), and is remembered for a failure logged after it. Returns whether it
    /// joined a failure's chain.
    ///
    /// A line that names its message (`msgid=<x>`) explains only that message's failure, and
    /// one without joins the failure of the message its LMTP session's earlier line named: two
    /// messages for one user in the same second must not take each other's cause.
    fn attach_to_lmtp_failure(
        &mut self,
        rec: &LogRecord,
        user: &str,
        session: Option<String>,
        code: Option<FindingCode>,
        about: About,
    ) -> bool {
        let key = user.to_ascii_lowercase();
        let hits = self.recent_failures_of(&key, rec.timestamp, Some("lmtp"), &about);
        for &cid in &hits {
            self.upgrade_with_dovecot(cid, code, rec);
        }
        self.remember_dovecot(rec, Some(user), session, code, about);
        !hits.is_empty()
    }

    /// Keep a Dovecot error line for a failure Postfix logs after it, and for its session's
    /// later lines (which message they are about).
    fn remember_dovecot(
        &mut self,
        rec: &LogRecord,
        user: Option<&str>,
        session: Option<String>,
        code: Option<FindingCode>,
        about: About,
    ) {
        let raw = clip(&rec.raw, self.limits.max_line_bytes);
        remember(
            &mut self.recent_dovecot,
            RecentLine {
                host: rec.role.clone(),
                key: user.map(str::to_ascii_lowercase).unwrap_or_default(),
                session,
                at: rec.timestamp,
                code,
                pid: rec.pid,
                fatal: false,
                msgid: about.msgid,
                qid: None,
                conn_pid: about.conn_pid,
                raw,
            },
        );
    }

    /// The window a Dovecot line naming (or not) its LMTP client joins a failure in.
    pub(super) fn client_window(&self, conn_pid: Option<u32>) -> TimeDelta {
        if conn_pid.is_some() {
            SAME_CLIENT_WINDOW
        } else {
            self.limits.link_window
        }
    }

    /// Dovecot's master about an LMTP process that died (`service(lmtp): child 2210 killed with
    /// signal 11`): Postfix's LMTP client lost its connection mid-delivery (`lost connection
    /// with ... while sending end of data`), a generic deferral this names. Remembered for a
    /// failure logged after it; one logged just before takes it now.
    fn on_lmtp_crash(&mut self, rec: &LogRecord, code: Option<FindingCode>) {
        let ts = rec.timestamp;
        let hit = self
            .recent_failures
            .iter()
            .rev()
            .find(|f| {
                f.host == rec.role && f.service == "lmtp" && within(f.at, ts, SAME_CLIENT_WINDOW)
            })
            .map(|f| f.chain);
        if let Some(cid) = hit {
            self.upgrade_with_dovecot(cid, Some(FindingCode::ServiceError), rec);
        }
        let about = About::default();
        self.remember_dovecot(rec, Some(LMTP_CRASH), None, code, about);
    }

    /// A remembered LMTP crash on `host` at about `ts` (its line).
    pub(super) fn lmtp_crash_near(&self, host: &str, ts: Option<DateTime<Utc>>) -> Option<String> {
        self.recent_dovecot
            .iter()
            .rev()
            .find(|r| {
                r.key == LMTP_CRASH && &*r.host == host && within(r.at, ts, SAME_CLIENT_WINDOW)
            })
            .map(|r| r.raw.clone())
    }

    /// The LMTP client an earlier Dovecot line of this session named.
    fn session_conn_pid(&self, session: Option<&str>) -> Option<u32> {
        let s = session?;
        self.recent_dovecot
            .iter()
            .rev()
            .find(|r| r.session.as_deref() == Some(s) && r.conn_pid.is_some())
            .and_then(|r| r.conn_pid)
    }

    /// In a `--message-id` run, whether the message a line is about (`msgid`, a key) is another
    /// than the asked one: the line is that message's, whether the prefilter let it through
    /// (its LMTP process or user is the asked message's too) or not, so it is no evidence and
    /// no host finding of this run either way.
    fn is_another_message(&self, msgid: Option<&str>) -> bool {
        matches!((self.only_message_id.as_deref(), msgid), (Some(want), Some(m)) if m != want)
    }

    /// The message-id an earlier Dovecot error line of this LMTP session named.
    fn session_msgid(&self, session: Option<&str>) -> Option<String> {
        let s = session?;
        self.recent_dovecot
            .iter()
            .rev()
            .find(|r| r.session.as_deref() == Some(s) && r.msgid.is_some())
            .and_then(|r| r.msgid.clone())
    }

    /// Whether chain `cid` can be the message `msgid` names (a msgid key): it has that
    /// message-id, or none known.
    pub(super) fn chain_is_msgid(&self, cid: ChainId, msgid: Option<&str>) -> bool {
        let theirs = self.chains.get(&cid).and_then(|c| c.message_id.as_deref());
        match (msgid, theirs) {
            (Some(m), Some(t)) => msgid_key(t) == m,
            _ => true,
        }
    }

    /// The messages of the delivery failures to `to_key` within the window (by `service` when
    /// given) that can be the ones a Dovecot line is `about`, latest first. A line that names
    /// neither its message nor its LMTP client is about its user: it explains each of them, as
    /// a line logged before them does (`explain_by_dovecot`), whichever was logged last.
    fn recent_failures_of(
        &self,
        to_key: &str,
        ts: Option<DateTime<Utc>>,
        service: Option<&str>,
        about: &About,
    ) -> Vec<ChainId> {
        let mut chains: Vec<ChainId> = Vec::new();
        let hits = self.recent_failures.iter().rev().filter(|f| {
            f.to == to_key
                && service.is_none_or(|s| f.service == s)
                && within(f.at, ts, self.client_window(about.conn_pid))
                && self.chain_is_msgid(f.chain, about.msgid.as_deref())
                && same_client(about.conn_pid, f.pid)
        });
        for f in hits {
            if !chains.contains(&f.chain) {
                chains.push(f.chain);
            }
        }
        chains
    }

    /// The LMTP failure's generic finding gets the specific cause, the Dovecot line, and
    /// Dovecot's host (where the cause is).
    fn upgrade_with_dovecot(&mut self, cid: ChainId, code: Option<FindingCode>, rec: &LogRecord) {
        let limits = self.limits;
        let Some(ch) = self.chains.get_mut(&cid) else {
            return;
        };
        ch.add_line(&rec.raw, &limits, &mut self.line_budget);
        let Some(i) = ch
            .findings
            .iter()
            .rposition(|x| generic(x.f.code) || Some(x.f.code) == code)
        else {
            return;
        };
        let x = &mut ch.findings[i];
        if let (true, Some(c)) = (generic(x.f.code), code) {
            x.f.code = c;
        }
        if code.is_some() {
            x.cause = true;
            x.f.host = Some(rec.role.to_string());
            // Dovecot's host is where the cause is: no server it talked to is named.
            x.f.peer = None;
            x.f.stage = Some(rec.role.to_string());
            if let Event::DovecotProblem(p) = &rec.event {
                let who = p
                    .user
                    .as_deref()
                    .map(|u| format!(" for {u}"))
                    .unwrap_or_default();
                x.f.message = format!(
                    "{}: Dovecot could not deliver{who}: {}",
                    rec.role,
                    clip(&p.text, 300)
                );
            }
        }
        // The code or host may have changed: the hint follows them.
        x.f.rehint();
        x.f.add_evidence(&clip(&rec.raw, limits.max_line_bytes), limits.max_evidence);
        x.f.seen(rec.timestamp);
        ch.refold_finding(i, &limits);
    }

    /// A passdb lookup without a client address: Dovecot resolving an LMTP/LDA recipient, not a
    /// login. Evidence for the delivery failure's own finding, and remembered for one logged
    /// after it.
    pub(super) fn on_recipient_lookup_failed(
        &mut self,
        rec: &LogRecord,
        user: Option<&str>,
        kind: AuthFailureKind,
    ) {
        let code = match kind {
            AuthFailureKind::UnknownUser => FindingCode::RecipientUnknown,
            AuthFailureKind::PasswordMismatch => FindingCode::ImapAuthFailed,
        };
        let Some(u) = user else {
            return;
        };
        let limits = self.limits;
        let key = u.to_ascii_lowercase();
        let raw = clip(&rec.raw, limits.max_line_bytes);
        for cid in self.recent_failures_of(&key, rec.timestamp, None, &About::default()) {
            let Some(ch) = self.chains.get_mut(&cid) else {
                continue;
            };
            ch.add_line(&rec.raw, &limits, &mut self.line_budget);
            if let Some(x) = ch.findings.iter_mut().find(|x| x.f.code == code) {
                x.f.add_evidence(&raw, limits.max_evidence);
            }
        }
        remember(
            &mut self.recent_dovecot,
            RecentLine {
                host: rec.role.clone(),
                key,
                session: None,
                at: rec.timestamp,
                code: Some(code),
                pid: rec.pid,
                fatal: false,
                msgid: None,
                qid: None,
                conn_pid: None,
                raw,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnosis::FindingCode;
    use crate::fusion::tests::feed;
    use crate::fusion::{Correlator, Limits, MessageStatus};

    /// Dovecot's LMTP line on `dell` at second `at` of 12:00, for `who` in session `session`.
    fn dove_line(at: &str, who: &str, session: &str, what: &str) -> String {
        format!("Nov  7 12:00:{at} dell dovecot: lmtp({who}@corp.test)<7><{session}>: msgid=<m@a.example>: {what}\n")
    }

    /// Dovecot's words for a rejection over quota.
    const QUOTA: &str = "rejected: Quota exceeded (mailbox for user is full)";

    /// `msgid=unspecified` is no Message-ID: three deliveries without one stay three messages.
    /// Dovecot's LMTP server names the Postfix LMTP client it served (`conn unix:pid=N`), and
    /// one client delivers one message after another: its line explains only that client's
    /// failure of the same moment, and a failed save that names its message names that
    /// message's failure. From a lab run: two messages to one user through one client in one
    /// second, and another client's line a moment before.
    #[test]
    fn dovecot_lines_explain_only_their_lmtp_clients_delivery() {
        let lmtp = |q: &str, at: &str| {
            format!(
                "Dec  5 {at} dell postfix/lmtp[12136]: {q}: to=<postmaster@corp.test>, relay=dell.corp.test[private/dovecot-lmtp], delay=0.01, delays=0/0/0/0.01, dsn=4.2.0, status=deferred (host dell.corp.test[private/dovecot-lmtp] said: 451 4.2.0 <postmaster@corp.test> Internal error occurred. Refer to server log for more information. (in reply to end of DATA command))\n"
            )
        };
        let server = |at: &str, session: &str, pid: u32, n: u32| {
            format!(
                "2025-12-05T{at} lmtp(postmaster@corp.test)<12120><{session}>: Error: lmtp-server: conn unix:pid={pid},uid=102 [{n}]: rcpt postmaster@corp.test: Mailbox INBOX: open(/var/mail/corp.test/postmaster/Maildir/tmp/1.M1) failed: Permission denied\n"
            )
        };
        let save = |at: &str, session: &str, id: &str| {
            format!(
                "2025-12-05T{at} lmtp(postmaster@corp.test)<12120><{session}>: Error: sieve: msgid=<{id}>: failed to store into mailbox 'INBOX': Mailbox INBOX: open(/var/mail/corp.test/postmaster/Maildir/tmp/1.M1) failed: Permission denied\n"
            )
        };
        let mut log = String::new();
        for (q, id) in [("2B47618031D", "a@x"), ("3C58729042E", "b@x")] {
            log += &format!("Dec  5 10:00:30 dell postfix/cleanup[1]: {q}: message-id=<{id}>\n");
            log += &format!("Dec  5 10:00:30 dell postfix/qmgr[2]: {q}: from=<s@x>, size=1, nrcpt=1 (queue active)\n");
        }
        log += &server("10:00:32.902004", "oFfQBX2SFGthLwAAn00ZSw", 12025, 4);
        log += &lmtp("2B47618031D", "10:00:33");
        log += &lmtp("3C58729042E", "10:00:33");
        log += &server("10:00:33.324688", "UL73EqWSFGtYLwAAn00ZSw", 12136, 9);
        log += &save("10:00:33.324688", "UL73EqWSFGtYLwAAn00ZSw", "a@x");
        log += &server("10:00:33.334670", "INWwE6WSFGtcLwAAn00ZSw", 12136, 10);
        log += &save("10:00:33.334670", "INWwE6WSFGtcLwAAn00ZSw", "b@x");
        let mut c = Correlator::new(Limits::default());
        feed(&mut c, "dell", &log);
        let out = c.finish_all();
        for id in ["<a@x>", "<b@x>"] {
            let m = out
                .messages
                .iter()
                .find(|m| m.message_id.as_deref() == Some(id))
                .unwrap();
            let codes: Vec<FindingCode> = m.findings.iter().map(|f| f.code).collect();
            assert_eq!(
                codes,
                [FindingCode::MailboxPermissionDenied],
                "{id}: {:#?}",
                m.findings
            );
            let evidence = m.findings[0].evidence.join("\n");
            assert!(
                !evidence.contains("pid=12025"),
                "{id}: another client's line: {evidence}"
            );
        }
    }

    /// Each failed attempt is logged by both its sides (Postfix's deferral, Dovecot's failed
    /// save): the finding counts attempts, not lines. From a lab run: three attempts, the
    /// fourth delivered.
    #[test]
    fn a_finding_counts_attempts_not_both_sides_of_each() {
        let mut log = String::from(
            "Dec  5 22:38:58 dell postfix/cleanup[1]: 3570C1802E1: message-id=<u0176@x>\n",
        );
        for (at, pid, session) in [
            ("22:38:58", 12121, "iPAfDY"),
            ("22:39:13", 12020, "uBJVA5"),
            ("22:39:33", 12130, "FzZEqW"),
        ] {
            log += &format!("Dec  5 {at} dell postfix/lmtp[{pid}]: 3570C1802E1: to=<bob@corp.test>, relay=dell.corp.test[private/dovecot-lmtp], delay=0, delays=0/0/0/0, dsn=4.2.0, status=deferred (host dell.corp.test[private/dovecot-lmtp] said: 451 4.2.0 <bob@corp.test> Internal error occurred. Refer to server log for more information. (in reply to end of DATA command))\n");
            log += &format!("2025-12-05T{at}.221603 lmtp(bob@corp.test)<11989><{session}>: Error: lmtp-server: conn unix:pid={pid},uid=102 [4]: rcpt bob@corp.test: Mailbox INBOX: open(/var/mail/corp.test/bob/Maildir/tmp/1.M1) failed: Permission denied\n");
            log += &format!("2025-12-05T{at}.221637 lmtp(bob@corp.test)<11989><{session}>: Error: sieve: msgid=<u0176@x>: failed to store into mailbox 'INBOX': Mailbox INBOX: open(/var/mail/corp.test/bob/Maildir/tmp/1.M1) failed: Permission denied\n");
        }
        let mut c = Correlator::new(Limits::default());
        feed(&mut c, "dell", &log);
        let ms = c.finish();
        let counts: Vec<(FindingCode, u64)> =
            ms[0].findings.iter().map(|f| (f.code, f.count)).collect();
        assert_eq!(
            counts,
            [(FindingCode::MailboxPermissionDenied, 3)],
            "{ms:#?}"
        );
    }

    #[test]
    fn deliveries_without_a_message_id_are_not_joined() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            "Nov  7 12:00:00 dell dovecot: lmtp(alice@corp.test)<22587><5Gjr0001>: msgid=unspecified: saved mail to INBOX\n\
             Nov  7 12:00:01 dell dovecot: lmtp(bob@corp.test)<22588><5Gjr0002>: msgid=unspecified: save failed to INBOX: Quota exceeded (mailbox for user is full)\n\
             Nov  7 12:00:02 dell dovecot: lmtp(carol@corp.test)<22589><5Gjr0003>: msgid=unspecified: sieve: stored mail into mailbox 'Junk'",
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 3, "{ms:#?}");
        assert!(ms.iter().all(|m| m.message_id.is_none()), "{ms:#?}");
        let alice = ms
            .iter()
            .find(|m| m.to.iter().any(|t| t == "alice@corp.test"))
            .unwrap();
        assert_eq!(alice.status, MessageStatus::Delivered);
    }

    /// The recipient's Sieve script discarded the message: refused for good at Dovecot, with
    /// the finding that says so, though Postfix handed it over.
    #[test]
    fn a_sieve_discard_is_discarded_not_delivered() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            "Nov  7 12:00:00 dell postfix/lmtp[5]: 1A2B3C4D5E: to=<alice@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <alice@corp.test> 5Gjr0009 Saved)\n\
             Nov  7 12:00:00 dell dovecot: lmtp(alice@corp.test)<22590><5Gjr0009>: sieve: msgid=<m9@x.example>: Marked message to be discarded if not explicitly delivered (discard action)\n\
             Nov  7 12:00:00 dell postfix/cleanup[4]: 1A2B3C4D5E: message-id=<m9@x.example>",
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        let m = &ms[0];
        assert_eq!(m.status, MessageStatus::Rejected, "{m:#?}");
        let f = &m.findings[0];
        assert_eq!(f.code, FindingCode::Discarded, "{m:#?}");
        assert!(
            f.message.contains("Sieve script of alice@corp.test"),
            "{f:#?}"
        );
    }

    /// A Sieve redirect: LMTP took the message (delivered), the mailbox has no copy; a note
    /// says where it went, and the line joins the message by its LMTP session.
    #[test]
    fn a_sieve_redirect_is_a_note_on_a_delivered_message() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            "Nov  7 12:00:00 dell postfix/cleanup[4]: 1A2B3C4D5F: message-id=<m10@x.example>\n\
             Nov  7 12:00:00 dell postfix/qmgr[6]: 1A2B3C4D5F: from=<a@x.example>, size=300, nrcpt=1 (queue active)\n\
             Nov  7 12:00:00 dell dovecot: lmtp(alice@corp.test)<22591><6Hks0010>: sieve: msgid=<m10@x.example>: forwarded to <bob@elsewhere.example>\n\
             Nov  7 12:00:00 dell postfix/lmtp[5]: 1A2B3C4D5F: to=<alice@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <alice@corp.test> 6Hks0010 Saved)",
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        let m = &ms[0];
        assert_eq!(m.status, MessageStatus::Delivered, "{m:#?}");
        assert!(m.findings.is_empty(), "{m:#?}");
        assert!(
            m.notes.iter().any(|n| n.starts_with(
                "dell: the Sieve script of alice@corp.test forwarded the message to <bob@elsewhere.example> (redirect)"
            )),
            "{m:#?}"
        );
        assert!(
            m.hops
                .iter()
                .all(|h| h.status != crate::fusion::HopStatus::SaveFailed),
            "{m:#?}"
        );
    }

    /// A Sieve reject: in no mailbox, the sender told; as a discard, not a delivery.
    #[test]
    fn a_sieve_reject_is_no_delivery() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            "Nov  7 12:00:00 dell postfix/lmtp[5]: 1A2B3C4D5F: to=<erin@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <erin@corp.test> 5Gjr0010 Saved)\n\
             Nov  7 12:00:00 dell dovecot: lmtp(erin@corp.test)<22591><5Gjr0010>: sieve: msgid=<r1@x.example>: rejected message from <spammer@bad.test> (reject)\n\
             Nov  7 12:00:00 dell postfix/cleanup[4]: 1A2B3C4D5F: message-id=<r1@x.example>",
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        assert_eq!(ms[0].status, MessageStatus::Rejected, "{ms:#?}");
        let f = &ms[0].findings[0];
        assert_eq!(f.code, FindingCode::Discarded, "{f:#?}");
        assert!(f.message.contains("rejected the message"), "{f:#?}");
    }

    /// Sieve could not file the message into the folder its rule named, then kept it in INBOX:
    /// delivered, the failure a note, no finding.
    /// Sieve's `fileinto` failed (no Junk folder) and Dovecot kept the message in INBOX
    /// (`failed, but implicit keep was successful`, no `stored mail` line): Postfix's `250 ...
    /// SESSION Saved` for that session says it was delivered, in either order of the logs.
    #[test]
    fn a_failed_fileinto_in_an_accepted_session_is_delivered() {
        let dovecot = "Nov  4 06:00:02 dell dovecot: lmtp(bob@corp.test)<2210><AbCdEf0123xyz>: sieve: msgid=<x1@provider.test>: failed to store into mailbox 'Junk': Mailbox doesn't exist: Junk\n\
             Nov  4 06:00:02 dell dovecot: lmtp(bob@corp.test)<2210><AbCdEf0123xyz>: Error: sieve: Execution of script /var/lib/dovecot/sieve/default.sieve failed, but implicit keep was successful (user logfile /var/lib/dovecot/sieve/default.sieve.log may reveal additional details)\n";
        let postfix = "Nov  4 06:00:01 dell postfix/cleanup[2202]: 6D07EF7B77: message-id=<x1@provider.test>\n\
             Nov  4 06:00:01 dell postfix/qmgr[900]: 6D07EF7B77: from=<alice@provider.test>, size=1000, nrcpt=1 (queue active)\n\
             Nov  4 06:00:02 dell postfix/lmtp[2203]: 6D07EF7B77: to=<bob@corp.test>, relay=dell.corp.test[private/dovecot-lmtp], delay=0.1, delays=0.01/0/0.01/0.08, dsn=2.0.0, status=sent (250 2.0.0 <bob@corp.test> AbCdEf0123xyz Saved)\n";
        for log in [format!("{postfix}{dovecot}"), format!("{dovecot}{postfix}")] {
            let mut c = Correlator::new(Limits::default());
            feed(&mut c, "dell", &log);
            let ms = c.finish();
            assert_eq!(ms.len(), 1, "{ms:#?}");
            let m = &ms[0];
            assert_eq!(m.status, MessageStatus::Delivered, "{m:#?}");
            assert!(m.findings.is_empty(), "{m:#?}");
            assert!(
                m.notes
                    .iter()
                    .any(|n| n.contains("into Junk") && n.contains("implicit keep")),
                "{m:#?}"
            );
        }
    }

    /// Dovecot's master on a crashed LMTP process names the lost connection Postfix's LMTP
    /// client logged in the same moment, whichever came first.
    #[test]
    fn a_crashed_lmtp_process_is_why_the_connection_was_lost() {
        let queued = "Nov  4 06:00:01 dell postfix/cleanup[2202]: 6D07EF7B77: message-id=<x1@provider.test>\n\
             Nov  4 06:00:01 dell postfix/qmgr[900]: 6D07EF7B77: from=<alice@provider.test>, size=1000, nrcpt=1 (queue active)\n";
        let crash = "Nov  4 06:00:02 dell dovecot: master: Error: service(lmtp): child 2210 killed with signal 11 (core dumps disabled - https://dovecot.org/bugreport.html#coredumps)\n";
        let lost = "Nov  4 06:00:02 dell postfix/lmtp[2203]: 6D07EF7B77: to=<bob@corp.test>, relay=dell.corp.test[private/dovecot-lmtp], delay=0.1, delays=0.01/0/0.01/0.08, dsn=4.4.2, status=deferred (lost connection with dell.corp.test[private/dovecot-lmtp] while sending end of data -- message may be sent more than once)\n";
        for log in [
            format!("{queued}{crash}{lost}"),
            format!("{queued}{lost}{crash}"),
        ] {
            let mut c = Correlator::new(Limits::default());
            feed(&mut c, "dell", &log);
            let ms = c.finish();
            let codes: Vec<FindingCode> = ms[0].findings.iter().map(|f| f.code).collect();
            assert_eq!(codes, [FindingCode::ServiceError], "{log}");
            assert!(ms[0].findings[0]
                .evidence
                .iter()
                .any(|e| e.contains("killed with signal")));
        }
    }

    #[test]
    fn a_save_after_a_failed_one_delivers_the_message() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            "Nov  7 12:00:00 dell dovecot: lmtp(alice@corp.test)<22587><5Gjr0001>: Error: sieve: msgid=<m1@x.example>: failed to store into mailbox 'Archive': Mailbox doesn't exist: Archive\n\
             Nov  7 12:00:00 dell dovecot: lmtp(alice@corp.test)<22587><5Gjr0001>: sieve: msgid=<m1@x.example>: stored mail into mailbox 'INBOX'",
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        let m = &ms[0];
        assert_eq!(m.status, MessageStatus::Delivered, "{m:#?}");
        assert!(m.findings.is_empty(), "{m:#?}");
        assert!(
            m.notes
                .iter()
                .any(|n| n.contains("into Archive") && n.ends_with("saved into INBOX instead")),
            "{m:#?}"
        );
    }

    /// One LMTP session for two recipients: bob's failed `fileinto` and alice's failed save
    /// make one finding (one per code), led by bob's; bob's message is then kept in INBOX.
    /// That takes back bob's failure, not alice's: her finding stands.
    #[test]
    fn a_save_takes_back_only_its_recipients_failure_from_a_shared_finding() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            "Nov  7 12:00:00 dell dovecot: lmtp(bob@corp.test)<7><S1xyz>: msgid=<m@a.example>: save failed to Work: Permission denied\n\
             Nov  7 12:00:00 dell dovecot: lmtp(alice@corp.test)<7><S1xyz>: msgid=<m@a.example>: save failed to INBOX: Permission denied\n\
             Nov  7 12:00:00 dell dovecot: lmtp(bob@corp.test)<7><S1xyz>: msgid=<m@a.example>: saved mail to INBOX",
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        let m = &ms[0];
        let found: Vec<_> = m
            .findings
            .iter()
            .map(|f| (f.code, f.message.as_str()))
            .collect();
        assert_eq!(found.len(), 1, "{m:#?}");
        assert_eq!(found[0].0, FindingCode::MailboxPermissionDenied, "{m:#?}");
        assert!(found[0].1.contains("for alice@corp.test"), "{m:#?}");
        assert!(
            m.notes
                .iter()
                .any(|n| n.contains("for bob@corp.test into Work")),
            "{m:#?}"
        );
    }

    /// A save takes back only its own session's failures: the finding of a failure it took
    /// back is made again from the failures still standing, the earliest leading (as if the
    /// taken-back one had never been logged), and only what it took back becomes a note. Here
    /// bob's rejection in session S1 is taken back by his save there; his failed save in S2
    /// and alice's rejections stand, hers on `dell` the earlier although `ec2`'s was read first.
    #[test]
    fn a_save_rebuilds_the_findings_it_took_back_from_the_failures_that_stand() {
        let mut c = Correlator::new(Limits::default());
        let dell = dove_line("00", "bob", "S2", "save failed to INBOX: Permission denied")
            + &dove_line("05", "bob", "S1", QUOTA);
        feed(&mut c, "dell", &dell);
        feed(&mut c, "ec2", &dove_line("08", "alice", "S3", QUOTA));
        let dell = dove_line("06", "alice", "S1", QUOTA)
            + &dove_line("07", "bob", "S1", "saved mail to Junk");
        feed(&mut c, "dell", &dell);
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        let m = &ms[0];
        let full = m
            .findings
            .iter()
            .find(|f| f.code == FindingCode::MailboxFull);
        let full = full.unwrap_or_else(|| panic!("{m:#?}"));
        assert_eq!(full.host.as_deref(), Some("dell"), "{m:#?}");
        assert!(full.message.contains("for alice@corp.test"), "{m:#?}");
        assert_eq!(full.count, 2, "{m:#?}");
        let denied = FindingCode::MailboxPermissionDenied;
        assert!(m.findings.iter().any(|f| f.code == denied), "{m:#?}");
        assert_eq!(m.notes.len(), 1, "{m:#?}");
        assert!(m.notes[0].contains("bob@corp.test into ?"), "{m:#?}");
    }

    /// A failure taken back that was folded into a finding another failure leads (same code
    /// and host) leaves that finding as if it had never been logged: counted and timed by the
    /// failures that stand. A failure read after the save but logged before it is taken back
    /// as well, and its note (the same text as the first one's) is not said twice. Here alice's
    /// rejection leads; bob's two rejections in S1 (one read after his save there) go.
    #[test]
    fn a_save_takes_its_failures_out_of_a_finding_another_failure_leads() {
        let mut c = Correlator::new(Limits::default());
        let log = dove_line("01", "alice", "S3", QUOTA)
            + &dove_line("05", "bob", "S1", QUOTA)
            + &dove_line("12", "bob", "S1", "saved mail to Junk")
            + &dove_line("08", "bob", "S1", QUOTA);
        feed(&mut c, "dell", &log);
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        let m = &ms[0];
        let full: Vec<_> = m
            .findings
            .iter()
            .filter(|f| f.code == FindingCode::MailboxFull)
            .collect();
        assert_eq!(full.len(), 1, "{m:#?}");
        assert!(full[0].message.contains("for alice@corp.test"), "{m:#?}");
        assert_eq!(full[0].count, 1, "{m:#?}");
        assert_eq!(full[0].first_seen, full[0].last_seen, "{m:#?}");
        assert_eq!(m.notes.len(), 1, "{m:#?}");
        assert!(m.notes[0].contains("bob@corp.test into ?"), "{m:#?}");
    }

    /// A Dovecot error of an LMTP session whose message was done at the error's own time is
    /// not that message's (an hour later here): it stays a host finding, and the message ends
    /// where it ended, whether or not a sweep for done messages came by between the two lines
    /// (one did in a long log, or with many open messages; none does in this short one).
    #[test]
    fn a_sessions_error_after_its_message_was_done_stays_out_of_it() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            &(dove_line("00", "alice", "S1", QUOTA)
                + "Nov  7 13:00:00 dell dovecot: lmtp(alice@corp.test)<7><S1>: Error: open(/var/mail/x/new) failed: Permission denied\n"),
        );
        let o = c.finish_all();
        assert_eq!(o.messages.len(), 1, "{o:#?}");
        let m = &o.messages[0];
        let noon = chrono::NaiveDate::from_ymd_opt(2025, 11, 7)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|t| t.and_utc());
        assert_eq!(m.last_seen, noon, "{m:#?}");
        assert!(m.lines.iter().all(|l| !l.contains("Error: open")), "{m:#?}");
        let denied = FindingCode::MailboxPermissionDenied;
        assert!(m.findings.iter().all(|f| f.code != denied), "{m:#?}");
        assert!(o.host_findings.iter().any(|f| f.code == denied), "{o:#?}");
    }

    /// The same for a delivery line of that session that names no message: an hour after the
    /// session's message was done, it is a message of its own, and the first stays rejected.
    #[test]
    fn a_sessions_save_after_its_message_was_done_is_another_message() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            &(dove_line("00", "alice", "S1", QUOTA)
                + "Nov  7 13:00:00 dell dovecot: lmtp(alice@corp.test)<7><S1>: saved mail to INBOX\n"),
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 2, "{ms:#?}");
        assert_eq!(ms[0].status, MessageStatus::Rejected, "{ms:#?}");
    }

    /// The same for Postfix's LMTP line that names the session in its reply: an hour after the
    /// session's message was done, it does not join it (whether a sweep came by in between,
    /// which hangs on how many other lines the log holds, decided that before).
    #[test]
    fn an_lmtp_reply_after_its_sessions_message_was_done_does_not_join_it() {
        let mut c = Correlator::new(Limits::default());
        let session = "kXr0Ml6DrWbWMAAAdzT4Cw";
        feed(
            &mut c,
            "dell",
            &(dove_line("00", "alice", session, QUOTA)
                + &format!(
                    "Nov  7 13:00:00 dell postfix/lmtp[9]: 4AB12C3D4E: to=<alice@corp.test>, \
                     relay=dell.corp.test[private/dovecot-lmtp], delay=0.1, \
                     delays=0.01/0/0.01/0.08, dsn=2.0.0, status=sent \
                     (250 2.0.0 <alice@corp.test> {session} Saved)\n"
                )),
        );
        let ms = c.finish();
        assert_eq!(ms.len(), 2, "{ms:#?}");
        assert_eq!(ms[0].status, MessageStatus::Rejected, "{ms:#?}");
    }

    /// A Dovecot error that names neither its message nor its LMTP client is about its user:
    /// it explains each failure of that user's deliveries within the window, as it does when
    /// logged before them, not only the one logged last (which `--message-id` on the other
    /// message, not reading the last one, would not see).
    #[test]
    fn a_users_dovecot_error_explains_each_of_its_recent_lmtp_failures() {
        let mut c = Correlator::new(Limits::default());
        let lmtp = |at: &str, q: &str| {
            format!("Dec 31 23:00:{at} ec2 postfix/lmtp[106]: {q}: to=<bob@corp.test>, relay=dell.corp.test[private/dovecot-lmtp], delay=0.1, delays=0.01/0/0.01/0.08, dsn=4.3.0, status=deferred (host dell.corp.test[private/dovecot-lmtp] said: 451 4.3.0 <bob@corp.test> Temporary internal error (in reply to end of DATA command))\n")
        };
        let log = format!(
            "Dec 31 23:00:01 ec2 postfix/cleanup[100]: D0E873A000: message-id=<m2@a.example>\n\
             Dec 31 23:00:01 ec2 postfix/cleanup[100]: 4AB12C3D4E: message-id=<m1@a.example>\n\
             {}{}Dec 31 23:00:04 ec2 dovecot: lmtp(bob@corp.test)<100><AbCd100>: Error: open(/var/mail/x/new) failed: Permission denied (euid=1000(x) egid=1000(x) missing +w perm: /var/mail/x)\n",
            lmtp("02", "D0E873A000"),
            lmtp("04", "4AB12C3D4E"),
        );
        feed(&mut c, "ec2", &log);
        let ms = c.finish();
        assert_eq!(ms.len(), 2, "{ms:#?}");
        for m in &ms {
            let codes: Vec<_> = m.findings.iter().map(|f| f.code).collect();
            assert_eq!(codes, [FindingCode::MailboxPermissionDenied], "{m:#?}");
        }
    }
}
