//! Correlator handlers for host-level lines, which concern a server rather than one message:
//! Postfix warnings and errors (also kept a while to explain a failure logged after them), SASL
//! and Dovecot login/auth failures, auth backend errors. They become findings aggregated per
//! code and host. Lines about one message's delivery have their own modules.

use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};

use crate::diagnosis::{classify_postfix_problem, classify_sasl_failure, Finding, FindingCode};
use crate::logs::{AuthFailureKind, LogRecord, Severity};

use super::chain::{clip, generic, within};
use super::correlator::{remember, Correlator, RecentLine, RecentSasl};

/// Problem lines that explain one failure, at most.
const MAX_EXPLAINING: usize = 3;
/// Problem lines looked at for one failure, at most: a daemon's fatal error is often followed by
/// other processes' warnings about it (the queue manager's `transport lmtp failure -- see a
/// previous ... record`, master's `exit status 1`), which would crowd out the cause.
const MAX_CANDIDATES: usize = 8;

/// The lines that explain a failure, out of `candidates` (newest first, each marked when it is
/// a fatal or panic line): the fatal ones first, then the newest others, up to
/// [`MAX_EXPLAINING`], oldest first.
fn explaining_lines(candidates: &[(&str, bool)]) -> Vec<String> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    // Stable: within each kind, newest first.
    order.sort_by_key(|&i| !candidates[i].1);
    order.truncate(MAX_EXPLAINING);
    // Oldest first, as they were logged.
    order.sort_unstable_by(|a, b| b.cmp(a));
    order
        .into_iter()
        .map(|i| candidates[i].0.to_owned())
        .collect()
}

/// Other wordings of one host finding told apart at most: past it, "or more".
const MAX_WORDINGS: usize = 32;

/// A host-level finding and, when its message names a client or user, how many others were
/// folded into it: its message is the first occurrence's, and the others' failures must not
/// read as that one's repeats.
#[derive(Debug, Clone)]
pub(super) struct HostFinding {
    finding: Finding,
    /// The message names who failed (a client, a user): other messages are other ones.
    per_client: bool,
    /// Hashes of the other messages seen, up to [`MAX_WORDINGS`].
    others: Vec<u64>,
    more: bool,
}

impl HostFinding {
    fn fold(&mut self, message: &str) {
        if !self.per_client || message == self.finding.message {
            return;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        message.hash(&mut hasher);
        let h = hasher.finish();
        if self.others.contains(&h) {
            return;
        }
        if self.others.len() < MAX_WORDINGS {
            self.others.push(h);
        } else {
            self.more = true;
        }
    }

    /// The finding as reported: its message says how many others it stands for.
    pub(super) fn finding(&self) -> Finding {
        let mut f = self.finding.clone();
        let n = self.others.len();
        if n > 0 {
            let (more, s) = (
                if self.more { " or more" } else { "" },
                if n == 1 { "" } else { "s" },
            );
            f.message = format!(
                "{} (and {n}{more} other client{s} or user{s}: see the evidence)",
                f.message
            );
        }
        f
    }
}

impl Correlator {
    /// Count a host-level finding (one per code and host), bounded by `max_host_findings`.
    pub(super) fn host_finding(
        &mut self,
        code: FindingCode,
        host: &str,
        message: String,
        rec: &LogRecord,
    ) {
        self.fold_host_finding(code, host, message, rec, false);
    }

    /// [`Correlator::host_finding`] of a failure whose message names the client or user that
    /// failed.
    pub(super) fn client_finding(
        &mut self,
        code: FindingCode,
        host: &str,
        message: String,
        rec: &LogRecord,
    ) {
        self.fold_host_finding(code, host, message, rec, true);
    }

    fn fold_host_finding(
        &mut self,
        code: FindingCode,
        host: &str,
        message: String,
        rec: &LogRecord,
        per_client: bool,
    ) {
        let key = (code, host.to_owned());
        let max_ev = self.limits.max_evidence;
        let line = clip(&rec.raw, self.limits.max_line_bytes);
        if let Some(h) = self.host_findings.get_mut(&key) {
            h.fold(&message);
            let f = &mut h.finding;
            f.count += 1;
            f.add_evidence(&line, max_ev);
            f.seen(rec.timestamp);
            return;
        }
        if self.host_findings.len() >= self.limits.max_host_findings {
            self.stats.host_findings_dropped += 1;
            return;
        }
        let mut finding = Finding::new(code, Some(host), message);
        finding.add_evidence(&line, max_ev);
        finding.seen(rec.timestamp);
        let h = HostFinding {
            finding,
            per_client,
            others: Vec::new(),
            more: false,
        };
        self.host_findings.insert(key, h);
    }

    /// smtpd's `SASL LOGIN authentication failed: REASON` for a client (classified by
    /// [`classify_sasl_failure`]).
    pub(super) fn on_sasl_auth_failed(
        &mut self,
        rec: &LogRecord,
        client: &str,
        mechanism: &str,
        reason: &str,
    ) {
        let role = &rec.role;
        let code = classify_sasl_failure(reason);
        let msg = match code {
            FindingCode::SaslServerUnavailable => format!(
                "{role}: SASL {mechanism} authentication failed for client {client}: {reason}"
            ),
            _ => format!("{role}: SASL {mechanism} authentication failed for client {client}"),
        };
        if code == FindingCode::SaslServerUnavailable {
            // The server's own trouble, whichever client met it.
            self.host_finding(code, role, msg, rec);
        } else {
            self.client_finding(code, role, msg, rec);
        }
        remember(
            &mut self.recent_sasl,
            RecentSasl {
                host: role.clone(),
                pid: rec.pid,
                client: client.to_owned(),
                at: rec.timestamp,
            },
        );
    }

    /// smtpd's session ended with `auth=0/N`: the client tried AUTH and never succeeded. When
    /// the same process logged no SASL failure for it, the server refused AUTH without a word
    /// (not offered on that port: `smtpd_sasl_auth_enable = no`, or `smtpd_tls_auth_only`
    /// before STARTTLS), or the client gave up: one `auth_failed` host finding says so.
    pub(super) fn on_auth_never_succeeded(&mut self, rec: &LogRecord, client: &str, n: u32) {
        let role = &rec.role;
        let explained = self.recent_sasl.iter().rev().any(|s| {
            s.host == *role
                && s.pid == rec.pid
                && s.client == client
                && within(s.at, rec.timestamp, self.limits.link_window * 4)
        });
        if explained {
            return;
        }
        let tries = if n == 1 { "once" } else { "more than once" };
        let msg = format!(
            "{role}: client {client} tried SMTP AUTH {tries} and never succeeded, and no \
             failure was logged: AUTH was refused (not offered on this port or before STARTTLS) \
             or the client gave up"
        );
        self.client_finding(FindingCode::AuthFailed, role, msg, rec);
    }

    /// A Postfix warning/error: filed with its message if it names a queue id (a map lookup
    /// that made cleanup refuse the message closes its entry, `on_refused`), counted as a host
    /// finding if it is a known problem, and remembered to explain failures after it.
    pub(super) fn on_postfix_problem(
        &mut self,
        rec: &LogRecord,
        severity: Severity,
        queue_id: Option<&str>,
        text: &str,
    ) {
        let role = &rec.role;
        let limits = self.limits;
        let code = classify_postfix_problem(severity, text)
            .map(|c| of_map_tool(rec, c))
            .map(|c| self.death_of_a_fatal(rec, text, c).unwrap_or(c));
        if let (Some(q), Some(FindingCode::MessageTooLarge)) = (queue_id, code) {
            self.on_size_refusal(rec, q, text);
            return;
        }
        let refused = match (queue_id, rec.event.map_lookup()) {
            (Some(q), Some(m)) => self.on_map_refusal(rec, q, &m),
            _ => false,
        };
        if let Some(ch) = queue_id
            .filter(|_| !refused)
            .and_then(|q| self.find_entry(role, q))
            .and_then(|cid| self.chains.get_mut(&cid))
        {
            ch.add_line(&rec.raw, &limits, &mut self.line_budget);
        }
        if let Some(c) = code {
            let msg = format!("{role}: {}", clip(text, 300));
            self.host_finding(c, role, msg, rec);
        }
        remember(
            &mut self.recent_problems,
            RecentLine {
                host: role.clone(),
                key: String::new(),
                session: None,
                at: rec.timestamp,
                code,
                pid: rec.pid,
                fatal: matches!(severity, Severity::Fatal | Severity::Panic),
                msgid: None,
                qid: queue_id.map(str::to_owned),
                conn_pid: None,
                raw: clip(&rec.raw, limits.max_line_bytes),
            },
        );
    }

    /// master's words for a daemon that died (`process /usr/lib/postfix/smtpd pid 9829 exit
    /// status 1`, then `/usr/lib/postfix/smtpd: bad command startup -- throttling`), as the
    /// generic `service_error`: the code of the fatal line that daemon logged just before (that
    /// pid's, when master names one), so that one cause is one finding.
    fn death_of_a_fatal(
        &self,
        rec: &LogRecord,
        text: &str,
        code: FindingCode,
    ) -> Option<FindingCode> {
        if code != FindingCode::ServiceError || !rec.program.as_str().ends_with("/master") {
            return None;
        }
        let pid = match text.find(" exit status ") {
            Some(end) => Some(text[..end].rsplit_once(" pid ")?.1.parse::<u32>().ok()?),
            None if text.ends_with("bad command startup -- throttling") => None,
            None => return None,
        };
        self.recent_problems
            .iter()
            .rev()
            .find(|p| {
                p.fatal
                    && p.host == rec.role
                    && pid.is_none_or(|n| p.pid == Some(n))
                    && within(p.at, rec.timestamp, self.limits.link_window)
            })
            .and_then(|p| p.code)
    }

    /// `QID: queue file size limit exceeded` (the client was told `552 5.3.4 Error: message
    /// file too big`): this message is refused whole, over `message_size_limit`; not a
    /// problem of the host's.
    fn on_size_refusal(&mut self, rec: &LogRecord, queue_id: &str, text: &str) {
        let text = clip(text, 300);
        let cid = self.on_entry_line(rec, queue_id, |e| e.rejected = Some(text.clone()));
        let f = Finding::new(
            FindingCode::MessageTooLarge,
            Some(&rec.role),
            format!("{} refused the message: {text}", rec.role),
        );
        self.add_record_finding(cid, rec, f, &[]);
    }

    pub(super) fn on_login_failed(
        &mut self,
        rec: &LogRecord,
        service: &str,
        user: Option<&str>,
        remote_ip: Option<&str>,
        text: &str,
    ) {
        let why = login_failure_why(text);
        let msg = format!(
            "{}: {service} login failed for {} from {}{why}",
            rec.role,
            user.unwrap_or("?"),
            remote_ip.unwrap_or("?")
        );
        let code = if auth_never_answered(text) {
            FindingCode::AuthBackendError
        } else if without_tls(text) {
            FindingCode::ImapLoginWithoutTls
        } else if crate::logs::over_userip_limit(text) {
            FindingCode::ImapConnectionLimit
        } else {
            FindingCode::ImapAuthFailed
        };
        self.client_finding(code, &rec.role, msg, rec);
    }

    /// A client's login rejected by Dovecot's passdb.
    pub(super) fn on_auth_failed(
        &mut self,
        rec: &LogRecord,
        user: Option<&str>,
        kind: AuthFailureKind,
        remote_ip: Option<&str>,
    ) {
        let what = match kind {
            AuthFailureKind::PasswordMismatch => "password mismatch",
            AuthFailureKind::UnknownUser => "unknown user",
        };
        let from = remote_ip
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default();
        let msg = format!(
            "{}: Dovecot auth {what} for {}{from}",
            rec.role,
            user.unwrap_or("?")
        );
        self.client_finding(FindingCode::ImapAuthFailed, &rec.role, msg, rec);
    }

    pub(super) fn on_auth_backend_error(&mut self, rec: &LogRecord, text: &str) {
        let msg = format!(
            "{}: Dovecot auth backend error: {}",
            rec.role,
            clip(text, 300)
        );
        self.host_finding(FindingCode::AuthBackendError, &rec.role, msg, rec);
    }

    /// Recent warning lines on `host` that explain a failure classified as `code` (up to
    /// three, oldest first); a generic code takes the warnings' specific one. With `pid`, only
    /// that process's own warnings can rename a generic code: a server's reject follows its own
    /// warning (smtpd's failed lookup, then its reply), while any other process's warning in
    /// the window (master's note of a crashed daemon, an unrelated client's blocklist lookup)
    /// is not why this reject was sent. A warning that names a queue id explains only a failure
    /// of that queue entry (`qid`): cleanup's refusal of one message is not why another one's
    /// delivery failed.
    pub(super) fn explaining_problems(
        &self,
        host: &str,
        ts: Option<DateTime<Utc>>,
        code: FindingCode,
        pid: Option<u32>,
        qid: Option<&str>,
    ) -> (FindingCode, Vec<String>) {
        let mut code = code;
        // (line, a fatal or panic line): the candidates, newest first.
        let mut hits: Vec<(&str, bool)> = Vec::new();
        // The ring is in arrival order (roughly time order): stop once it is well older than
        // the window instead of walking all of it for every failure.
        let floor = ts.and_then(|t| t.checked_sub_signed(self.limits.link_window * 4));
        for p in self.recent_problems.iter().rev() {
            if let (Some(f), Some(a)) = (floor, p.at) {
                if a < f {
                    break;
                }
            }
            let Some(pc) = p.code else { continue };
            if &*p.host != host || !within(p.at, ts, self.limits.link_window) {
                continue;
            }
            if p.qid.is_some() && p.qid.as_deref() != qid {
                continue;
            }
            // A server's `451 4.3.5 Server configuration error` is a service error only until
            // its own process's warning says which setting or table broke.
            let vague = generic(code) || (code == FindingCode::ServiceError && pid.is_some());
            let renames = vague && (pid.is_none() || p.pid == pid);
            if pc == code || renames {
                code = pc;
                if !hits.iter().any(|(raw, _)| *raw == p.raw) {
                    hits.push((&p.raw, p.fatal));
                }
                if hits.len() >= MAX_CANDIDATES {
                    break;
                }
            }
        }
        (code, explaining_lines(&hits))
    }

    /// The delivery agent's own TLS warnings before its TLS failure (`warning: TLS library
    /// problem: ... certificate verify failed`): no finding of their own (a server's are mostly
    /// scanners), but what the failed handshake's fix has to read. Oldest first.
    pub(super) fn agent_tls_lines(
        &self,
        host: &str,
        ts: Option<DateTime<Utc>>,
        pid: Option<u32>,
    ) -> Vec<String> {
        let Some(pid) = pid else {
            return Vec::new();
        };
        let mut lines: Vec<String> = self
            .recent_problems
            .iter()
            .rev()
            .filter(|p| p.pid == Some(pid) && &*p.host == host && p.code.is_none())
            .filter(|p| within(p.at, ts, self.limits.link_window))
            .filter(|p| p.raw.contains("TLS") || p.raw.contains("SSL"))
            .take(MAX_CANDIDATES)
            .map(|p| p.raw.clone())
            .collect();
        lines.reverse();
        lines
    }
}

/// Why a login failed, in the operator's words, from the login process's reason.
/// A login Dovecot's auth service never judged: `Auth process broken (auth failed, ...)`, `TLS:
/// Authentication timed out` (the request to the auth process timed out: a passdb such as SQL
/// that hangs). The password may well be right.
fn auth_never_answered(text: &str) -> bool {
    [
        "Auth process broken",
        "Authentication timed out",
        "Auth server request timed out",
    ]
    .iter()
    .any(|n| text.contains(n))
}

/// Dovecot refused a login without TLS before any password was checked (`tried to use
/// disallowed plaintext auth`; 2.4 says cleartext).
fn without_tls(text: &str) -> bool {
    text.contains("plaintext auth") || text.contains("cleartext auth")
}

fn login_failure_why(text: &str) -> &'static str {
    if without_tls(text) {
        " (a login without TLS, which Dovecot refuses: the client is not set to use TLS)"
    } else if crate::logs::over_userip_limit(text) {
        " (the password was accepted, but the user already holds mail_max_userip_connections connections from that address)"
    } else if text.contains("(user disabled") {
        " (the user database marks the account disabled)"
    } else if text.contains("(password expired") {
        " (the user database says the password has expired)"
    } else if text.contains("(authorization failed") {
        " (authenticated, but not allowed to log in as that user: a master user or an authorization rule)"
    } else if auth_never_answered(text) {
        " (Dovecot's auth service never answered: the password was not judged; a passdb that hangs, such as SQL, or an auth process that died)"
    } else if text.contains("(internal failure") {
        " (the password was accepted, then the session could not start: the server's own error for the user says why, often the mail store's owner or permissions, uid/gid)"
    } else {
        ""
    }
}

/// A fatal error of `postmap` or `postalias` (`fatal: open /etc/postfix/transport: No such file
/// or directory`): a lookup table that cannot be built, not a daemon to restart.
fn of_map_tool(rec: &LogRecord, code: FindingCode) -> FindingCode {
    let tool = rec.program.rsplit('/').next().unwrap_or_default();
    if code == FindingCode::ServiceError && matches!(tool, "postmap" | "postalias") {
        FindingCode::LookupFailure
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::explaining_lines;
    use crate::diagnosis::FindingCode;
    use crate::fusion::tests::feed;
    use crate::fusion::{Correlator, Limits};

    fn auth_failed(out: &crate::fusion::Outcome) -> Vec<&crate::diagnosis::Finding> {
        out.host_findings
            .iter()
            .filter(|f| f.code == FindingCode::AuthFailed)
            .collect()
    }

    #[test]
    fn a_host_finding_of_several_clients_says_it_is_not_one_clients() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "mx",
            "Nov  7 13:00:00 mx postfix/smtpd[1201]: warning: unknown[203.0.113.7]: SASL LOGIN authentication failed: authentication failure\n\
             Nov  7 13:00:05 mx postfix/smtpd[1202]: warning: unknown[198.51.100.8]: SASL LOGIN authentication failed: authentication failure\n\
             Nov  7 13:00:06 mx postfix/smtpd[1202]: warning: unknown[198.51.100.8]: SASL LOGIN authentication failed: authentication failure\n\
             Nov  7 13:00:07 mx postfix/smtpd[1203]: warning: unknown[203.0.113.7]: SASL LOGIN authentication failed: authentication failure",
        );
        let out = c.finish_all();
        let auth = auth_failed(&out);
        assert_eq!(auth.len(), 1, "{:#?}", out.host_findings);
        assert_eq!(auth[0].count, 4);
        assert!(
            auth[0].message.starts_with(
                "mx: SASL LOGIN authentication failed for client unknown[203.0.113.7] (and 1 other client or user:"
            ),
            "{}",
            auth[0].message
        );
        // One client's repeats stay one client's.
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "mx",
            "Nov  7 13:00:00 mx postfix/smtpd[1201]: warning: unknown[203.0.113.7]: SASL LOGIN authentication failed: authentication failure\n\
             Nov  7 13:00:05 mx postfix/smtpd[1202]: warning: unknown[203.0.113.7]: SASL LOGIN authentication failed: authentication failure",
        );
        let out = c.finish_all();
        let auth = auth_failed(&out);
        assert_eq!(
            auth[0].message,
            "mx: SASL LOGIN authentication failed for client unknown[203.0.113.7]"
        );
        assert_eq!(auth[0].count, 2);
    }

    #[test]
    fn an_auth_that_never_succeeded_is_counted_once() {
        // docker-mailserver's Postfix 3.7 with AUTH off on port 25: only the counters tell.
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "mx",
            "Nov  7 13:00:05 mx postfix/smtpd[1306]: connect from unknown[172.18.0.1]\n\
             Nov  7 13:00:05 mx postfix/smtpd[1306]: lost connection after AUTH from unknown[172.18.0.1]\n\
             Nov  7 13:00:05 mx postfix/smtpd[1306]: disconnect from unknown[172.18.0.1] ehlo=2 starttls=1 auth=0/1 commands=3/4\n\
             Nov  7 13:00:07 mx postfix/smtpd[1307]: disconnect from unknown[172.18.0.2] ehlo=1 auth=1/1 quit=1 commands=3\n\
             Nov  7 13:00:08 mx postfix/smtpd[1307]: disconnect from unknown[172.18.0.2] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
        );
        let out = c.finish_all();
        let auth = auth_failed(&out);
        assert_eq!(auth.len(), 1, "{:#?}", out.host_findings);
        assert_eq!(auth[0].count, 1);
        assert!(
            auth[0].message.contains("unknown[172.18.0.1]"),
            "{:#?}",
            auth[0]
        );
        // A password the server refused is logged as such; its session's counters add nothing.
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "mx",
            "Nov  7 13:00:09 mx postfix/submission/smtpd[1308]: warning: unknown[198.18.3.3]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\n\
             Nov  7 13:00:10 mx postfix/submission/smtpd[1308]: disconnect from unknown[198.18.3.3] ehlo=1 auth=0/1 quit=1 commands=2/3",
        );
        let out = c.finish_all();
        let auth = auth_failed(&out);
        assert_eq!(auth.len(), 1, "{:#?}", out.host_findings);
        assert_eq!(auth[0].count, 1, "{:#?}", auth[0]);
    }

    #[test]
    fn a_lost_sasl_backend_is_the_server_s_not_the_client_s() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            "Nov  7 13:00:05 dell postfix/submission/smtpd[1306]: warning: unknown[198.18.3.1]: SASL LOGIN authentication failed: Connection lost to authentication server\n\
             Nov  7 13:00:06 dell postfix/submission/smtpd[1306]: warning: unknown[198.18.3.2]: SASL PLAIN authentication failed: Connection lost to authentication server\n\
             Nov  7 13:00:09 dell postfix/submission/smtpd[1306]: warning: unknown[198.18.3.3]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
        );
        let out = c.finish_all();
        let of = |code: FindingCode| out.host_findings.iter().find(|f| f.code == code);
        let lost = of(FindingCode::SaslServerUnavailable).expect("the backend's finding");
        assert_eq!(lost.count, 2, "{lost:#?}");
        assert!(lost
            .message
            .ends_with("Connection lost to authentication server"));
        assert_eq!(of(FindingCode::AuthFailed).map(|f| f.count), Some(1));
    }

    /// Dovecot's processes and an auth service of another version (a package upgrade without a
    /// restart): their errors are one service error of the host; the failed login after them
    /// is still a failed login, and a warning about the auth service alone is no finding.
    #[test]
    fn a_process_that_cannot_use_the_auth_service_is_a_service_error() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "dell",
            "Aug  8 13:48:52 dell dovecot: auth: Error: BUG: Authentication client sent unknown handshake command: REQUEST\t3\t16648\t1\n\
             Aug  8 13:48:52 dell dovecot: pop3: Error: Authentication server didn't send valid SPID as expected: MECH PLAIN plaintext\n\
             Aug  8 13:48:52 dell dovecot: pop3: Error: Disconnected from auth server, aborting (client-pid=16648 client-id=1)\n\
             Aug  8 13:48:52 dell dovecot: pop3-login: Internal login failure (pid=16648 id=1) (internal failure, 1 succesful auths): user=<ivy@corp.test>, method=PLAIN, rip=198.18.0.9, lip=100.64.0.2, mpid=16651, TLS, session=<X6AcVsscFgC8r5t2>\n\
             Aug  8 13:48:52 dell dovecot: auth: Warning: auth client 16648 disconnected with 1 pending requests: EOF",
        );
        let out = c.finish_all();
        let of = |code: FindingCode| out.host_findings.iter().find(|f| f.code == code);
        let service = of(FindingCode::ServiceError).expect("the auth service's finding");
        assert_eq!(service.count, 3, "{service:#?}");
        assert!(
            service.message.contains("unknown handshake command"),
            "{service:#?}"
        );
        let login = of(FindingCode::ImapAuthFailed).expect("the failed login");
        assert!(
            login.message.contains("the password was accepted"),
            "{login:#?}"
        );
        assert_eq!(out.host_findings.len(), 2, "{:#?}", out.host_findings);
    }

    /// postmap's and postalias' fatal errors are about a table that cannot be built; the same
    /// words from a daemon stay its service error.
    #[test]
    fn a_map_tool_s_fatal_error_is_a_lookup_failure() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "Nov  4 18:12:36 mx postfix/postmap[2103]: fatal: open /etc/postfix/virtual: No such file or directory\n\
             Nov  4 18:12:37 mx postfix/postalias[2104]: fatal: open /etc/aliases: Permission denied\n\
             Nov  4 18:12:38 mx postfix/smtpd[2105]: fatal: open /etc/postfix/main.cf: Permission denied",
        );
        let out = c.finish_all();
        let codes: Vec<_> = out
            .host_findings
            .iter()
            .map(|f| (f.code, f.count))
            .collect();
        assert_eq!(
            codes,
            [
                (FindingCode::LookupFailure, 2),
                (FindingCode::ServiceError, 1)
            ],
            "{:#?}",
            out.host_findings
        );
    }

    /// A generic reject takes the specific code of a warning its own process logged before it,
    /// never that of another process's warning in the same window.
    #[test]
    fn only_the_rejecting_process_s_warning_renames_its_reject() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "May  8 08:26:40 mx postfix/master[1]: warning: process /usr/lib/postfix/sbin/cleanup pid 77 exit status 1\n\
             May  8 08:26:55 mx postfix/postscreen[9]: NOQUEUE: reject: RCPT from [192.0.2.9]:4711: 550 5.7.1 Service unavailable; client [192.0.2.9] blocked using zen.example; from=<a@x.example>, to=<b@corp.test>, proto=ESMTP, helo=<x>\n\
             May  8 08:27:00 mx postfix/smtpd[472]: warning: hash:/etc/postfix/client_access is unavailable. open database /etc/postfix/client_access.db: No such file or directory\n\
             May  8 08:27:00 mx postfix/smtpd[472]: NOQUEUE: reject: RCPT from unknown[192.0.2.10]: 451 4.3.5 Server configuration error; from=<a@x.example> to=<c@corp.test> proto=ESMTP helo=<y>\n\
             May  8 08:27:01 mx postfix/smtpd[473]: NOQUEUE: reject: RCPT from unknown[192.0.2.11]: 451 4.3.5 Server configuration error; from=<a@x.example> to=<d@corp.test> proto=ESMTP helo=<y>",
        );
        let out = c.finish_all();
        let code_of = |to: &str| {
            let m = out
                .messages
                .iter()
                .find(|m| m.to.iter().any(|t| t == to))
                .unwrap();
            m.findings[0].code
        };
        assert_eq!(code_of("b@corp.test"), FindingCode::RejectedOther);
        assert_eq!(code_of("c@corp.test"), FindingCode::LookupFailure);
        // Without its own process's warning, Postfix's words say it: its configuration.
        assert_eq!(code_of("d@corp.test"), FindingCode::ServiceError);
    }

    /// master's lines about a daemon that died of a fatal error are filed under that error's
    /// finding, whatever its code: one cause, one finding. Another daemon's death stays a
    /// `service_error` of its own.
    #[test]
    fn a_daemons_death_is_filed_under_its_fatal_line() {
        let mut c = Correlator::new(Limits::default());
        feed(
            &mut c,
            "ec2",
            "Jun 30 10:44:19 pc009 postfix/smtpd[9829]: fatal: SASL per-process initialization failed\n\
             Jun 30 10:44:20 pc009 postfix/master[4987]: warning: process /usr/lib/postfix/smtpd pid 9829 exit status 1\n\
             Jun 30 10:44:20 pc009 postfix/master[4987]: warning: /usr/lib/postfix/smtpd: bad command startup -- throttling\n\
             Jun 30 10:44:21 pc009 postfix/master[4987]: warning: process /usr/lib/postfix/cleanup pid 9901 exit status 1",
        );
        let mut found: Vec<(FindingCode, u64)> = c
            .finish_all()
            .host_findings
            .iter()
            .map(|f| (f.code, f.count))
            .collect();
        found.sort_by_key(|x| x.0.as_str());
        assert_eq!(
            found,
            [
                (FindingCode::SaslServerUnavailable, 3),
                (FindingCode::ServiceError, 1)
            ]
        );
    }

    /// The reasons Dovecot's login processes give (2.3's `Disconnected (...)` and `Aborted
    /// login (...)`, 2.4's `Login aborted: Connection closed (...) (code)`), each said in the
    /// finding.
    #[test]
    fn a_failed_logins_finding_names_its_reason() {
        for (reason, why) in [
            ("Login aborted: Connection closed (tried to use disallowed cleartext auth, 1 attempts in 0 secs) (cleartext_auth_disabled)", "not set to use TLS"),
            ("Aborted login (tried to use disabled plaintext auth)", "not set to use TLS"),
            ("Disconnected (user disabled, 1 attempts in 2 secs)", "marks the account disabled"),
            ("Login aborted: Connection closed (password expired, 1 attempts in 2 secs) (password_expired)", "password has expired"),
            ("Aborted login (authorization failed, 1 attempts in 2 secs)", "not allowed to log in as that user"),
            ("Disconnected (internal failure, 1 successful auths)", "session could not start"),
            ("Aborted login (auth failed, 1 attempts in 2 secs)", "login failed for dan@corp.test from 203.0.113.6"),
            ("Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)", "already holds mail_max_userip_connections"),
        ] {
            let mut c = Correlator::new(Limits::default());
            let line = format!("Nov 06 11:00:02 imap-login: Info: {reason}: user=<dan@corp.test>, method=PLAIN, rip=203.0.113.6, lip=198.18.3.2, TLS, session=<A2>");
            feed(&mut c, "dovecot", &line);
            let out = c.finish_all();
            // Refused for want of TLS, no password checked, or over the user's connections
            // with the password accepted: codes of their own, whose fixes are the client's
            // settings, not the password's.
            let code = match why {
                "not set to use TLS" => FindingCode::ImapLoginWithoutTls,
                "already holds mail_max_userip_connections" => FindingCode::ImapConnectionLimit,
                _ => FindingCode::ImapAuthFailed,
            };
            let f = out.host_findings.iter().find(|f| f.code == code);
            let message = f.map_or("", |f| f.message.as_str());
            assert!(message.contains(why), "{reason}: {message:?}");
            assert_eq!(out.host_findings.len(), 1, "{reason}: {:#?}", out.host_findings);
        }
        // The auth service never answered: the password was not judged.
        for reason in [
            "Disconnected: Auth process broken (auth failed, 1 attempts in 30 secs)",
            "Disconnected (auth failed, 1 attempts in 60 secs)",
        ] {
            let mut c = Correlator::new(Limits::default());
            let tail = if reason.contains("broken") {
                "TLS"
            } else {
                "TLS: Authentication timed out"
            };
            let line = format!("Nov 06 11:00:02 imap-login: Info: {reason}: user=<dan@corp.test>, method=PLAIN, rip=203.0.113.6, lip=198.18.3.2, {tail}, session=<A2>");
            feed(&mut c, "dovecot", &line);
            let codes: Vec<FindingCode> = c
                .finish_all()
                .host_findings
                .iter()
                .map(|f| f.code)
                .collect();
            assert_eq!(codes, [FindingCode::AuthBackendError], "{line}");
        }
    }

    #[test]
    fn fatal_lines_explain_first_then_the_newest_others() {
        // Newest first, as the ring is walked back.
        let lines = [
            ("w3", false),
            ("w2", false),
            ("fatal1", true),
            ("w1", false),
            ("fatal0", true),
        ];
        assert_eq!(explaining_lines(&lines), ["fatal0", "fatal1", "w3"]);
        assert_eq!(
            explaining_lines(&[("w2", false), ("w1", false)]),
            ["w1", "w2"]
        );
        assert!(explaining_lines(&[]).is_empty());
    }
}
