//! Dovecot message grammar: the process prefix (`lmtp(user)<pid><session>`) and the messages
//! of LMTP/LDA deliveries, imap/pop3 logins, auth and auth-worker, and error lines of any
//! process. Does not interpret them (that is `core::diagnosis`).
//!
//! Same return convention as `postfix.rs`: `None` unknown, `Some(None)` known but irrelevant.

use super::prefix::{is_dovecot_service, program_name};
use super::scan::{self, contains, field, find, lossy, split_once, strip_prefix};
use super::{AuthFailureKind, DovecotDelivery, DovecotProblem, Event, Login, Severity};

/// The parts of a Dovecot process token.
#[derive(Debug, Default, PartialEq, Eq)]
struct Proc<'a> {
    name: &'a [u8],
    user: Option<&'a [u8]>,
    session: Option<&'a [u8]>,
    /// The client's address after the user, as Dovecot 2.4's auth processes write it:
    /// `auth-worker(user,ip)<pid>`, `auth(user,ip,sasl:plain)<session>`.
    addr: Option<&'a [u8]>,
}

/// `b` is an IP address as text.
fn is_ip(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok_and(|s| s.parse::<std::net::IpAddr>().is_ok())
}

/// Dovecot 1.x's LDA, `deliver(user)`: named only with its user, since a bare `deliver` is
/// also other programs' (Cyrus's).
pub(crate) fn is_v1_deliver(token: &[u8]) -> bool {
    token.starts_with(b"deliver(")
}

/// Dovecot 1.x names its mail processes in capitals (`IMAP(user): Disconnected: Logged out`).
pub(crate) fn v1_service(name: &[u8]) -> &[u8] {
    match name {
        b"IMAP" => b"imap",
        b"POP3" => b"pop3",
        _ => name,
    }
}

fn parse_proc(token: &[u8]) -> Option<Proc<'_>> {
    let name = v1_service(program_name(token));
    if !is_dovecot_service(name) && !is_v1_deliver(token) {
        return None;
    }
    let mut p = Proc {
        name,
        ..Proc::default()
    };
    let mut rest = &token[name.len()..];
    if let Some(r) = rest.strip_prefix(b"(") {
        let close = memchr::memchr(b')', r)?;
        let inner = &r[..close];
        rest = &r[close + 1..];
        // 2.3: `(user)` or `(pid)`; 2.2: `(pid, user)` / `(user, session)`.
        for part in inner.split(|&c| c == b',') {
            let part = scan::trim(part);
            if part.is_empty() || part.iter().all(u8::is_ascii_digit) {
                continue;
            }
            if p.user.is_some() && p.addr.is_none() && is_ip(part) {
                p.addr = Some(part);
                continue;
            }
            if p.user.is_none() {
                p.user = Some(part);
            } else if p.session.is_none() {
                p.session = Some(
                    part.strip_prefix(b"<")
                        .unwrap_or(part)
                        .strip_suffix(b">")
                        .unwrap_or(part),
                );
            }
        }
    }
    // `<pid><session>` (2.3).
    let mut angles = Vec::with_capacity(2);
    while let Some(r) = rest.strip_prefix(b"<") {
        let close = memchr::memchr(b'>', r)?;
        angles.push(&r[..close]);
        rest = &r[close + 1..];
        if angles.len() > 4 {
            return None;
        }
    }
    if !rest.is_empty() {
        return None;
    }
    if let Some(s) = angles.iter().find(|a| !a.iter().all(u8::is_ascii_digit)) {
        p.session = Some(s);
    }
    Some(p)
}

fn level(msg: &[u8]) -> (Option<Severity>, &[u8]) {
    for (pfx, sev) in [
        (&b"Info: "[..], None),
        (b"Debug: ", None),
        (b"Warning: ", Some(Severity::Warning)),
        (b"Error: ", Some(Severity::Error)),
        (b"Fatal: ", Some(Severity::Fatal)),
        (b"Panic: ", Some(Severity::Panic)),
    ] {
        if let Some(rest) = strip_prefix(msg, pfx) {
            return (sev, rest);
        }
    }
    (None, msg)
}

/// A syslog line from program `dovecot`: the message starts with the process token.
pub(crate) fn parse_syslog(msg: &[u8]) -> Option<Option<Event>> {
    let (token, rest) = match split_once(msg, b": ") {
        Some(x) => x,
        None => {
            // `dovecot: master: Dovecot v2.3 starting up` always has a colon; a bare message
            // (e.g. `dovecot: Fatal: ...` handled below) may not. Dovecot 1.x's master logs
            // its start and stop without a process token.
            let start_stop =
                msg.starts_with(b"Dovecot v") || msg.starts_with(b"Killed with signal");
            return start_stop.then_some(None);
        }
    };
    if matches!(
        token,
        b"Info" | b"Warning" | b"Error" | b"Fatal" | b"Panic" | b"Debug"
    ) {
        return parse(b"master", msg);
    }
    // Dovecot 1.x names itself before the process (`dovecot[442]: dovecot: auth(default):
    // ...`): the process token follows.
    if token == b"dovecot" {
        return match split_once(rest, b": ") {
            Some((inner, inner_rest)) if inner != b"dovecot" => parse(inner, inner_rest),
            _ => None,
        };
    }
    parse(token, rest)
}

/// A Dovecot 2.2 session id (22 characters of base64, a 128-bit GUID) and `: ` at the start of
/// `text`: the id and the text after it.
fn text_session(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let (id, rest) = (text.get(..22)?, text.get(22..)?);
    let base64 = id
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/'));
    (base64 && rest.starts_with(b": ")).then(|| (id, &rest[2..]))
}

/// Pigeonhole's line for a message its Sieve script throws away: a discard, or a reject
/// ([`is_sieve_reject`], which also tells the sender).
pub(crate) fn is_sieve_discard(text: &[u8]) -> bool {
    contains(text, b"(discard action)")
        || contains(text, b"arked message to be discarded")
        || is_sieve_reject(text)
}

/// Where Pigeonhole's redirect action sent the message (`sieve: msgid=<x>: forwarded to
/// <bob@example.org>`): the address, brackets kept. The recipient's mailbox gets no copy unless
/// the script also keeps it (a save line of its own).
pub(crate) fn sieve_redirect_target(text: &[u8]) -> Option<&[u8]> {
    let at = find(text, b": forwarded to <")?;
    let v = &text[at + 15..];
    let end = memchr::memchr(b'>', v)? + 1;
    Some(&v[..end])
}

/// Sieve's reject and ereject actions (`sieve: msgid=<x>: rejected message from <s> (reject)`;
/// for the null sender `not sending reject message to <>`): the message goes into no mailbox
/// and the sender is told so.
pub(crate) fn is_sieve_reject(text: &[u8]) -> bool {
    (contains(text, b"rejected message from ")
        && (contains(text, b"(reject)") || contains(text, b"(ereject)")))
        || contains(text, b"not sending reject message to ")
}

/// Message-id as logged (`msgid=<a@b>`), keeping the brackets like Postfix's `message-id=`.
pub(crate) fn msgid(msg: &[u8]) -> Option<String> {
    let at = find(msg, b"msgid=")?;
    if at > 0 && !matches!(msg[at - 1], b' ' | b',' | b':') {
        return None;
    }
    let v = &msg[at + 6..];
    if v.starts_with(b"<") {
        let end = memchr::memchr(b'>', v).map(|i| i + 1).unwrap_or(v.len());
        return Some(lossy(&v[..end]));
    }
    let end = v
        .iter()
        .position(|&c| c == b' ' || c == b',' || c == b':')
        .unwrap_or(v.len());
    // `msgid=unspecified`: Dovecot's word for a message without a Message-ID, not an id (every
    // such message would otherwise join one chain).
    (end > 0 && &v[..end] != b"unspecified").then(|| lossy(&v[..end]))
}

/// `delivery_time=12ms` (Dovecot's `%{delivery_time}` is whole milliseconds).
fn delivery_time_ms(msg: &[u8]) -> Option<u64> {
    let v = field(msg, b"delivery_time=")?;
    let num_end = v
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(v.len());
    scan::parse_u64(&v[..num_end])
}

fn mailbox_after(msg: &[u8], marker: &[u8]) -> Option<String> {
    let at = find(msg, marker)?;
    let v = &msg[at + marker.len()..];
    if let Some(q) = v.strip_prefix(b"'").or_else(|| v.strip_prefix(b"\"")) {
        let end = q
            .iter()
            .position(|&c| c == b'\'' || c == b'"')
            .unwrap_or(q.len());
        return Some(lossy(&q[..end]));
    }
    let end = v
        .iter()
        .position(|&c| c == b',' || c == b':' || c == b' ')
        .unwrap_or(v.len());
    Some(lossy(&v[..end]))
}

pub(crate) fn parse(token: &[u8], msg: &[u8]) -> Option<Option<Event>> {
    let p = parse_proc(token)?;
    let (sev, text) = level(msg);
    let user = p.user.map(lossy);
    let session = p.session.map(lossy);
    match p.name {
        b"lmtp" | b"lda" | b"dovecot-lda" | b"deliver" => {
            // Dovecot 2.2 writes the session at the start of the text: `lmtp(4130, u@x):
            // Hk7uCmSd31Q2EAAAb2Ji6A: msgid=...` (2.3 puts it in the token).
            let (session, text) = match (session, text_session(text)) {
                (None, Some((s, rest))) => (Some(lossy(s)), rest),
                (s, _) => (s, text),
            };
            let saved_to = if contains(text, b"saved mail to ") {
                mailbox_after(text, b"saved mail to ")
            } else if contains(text, b"stored mail into mailbox ") {
                mailbox_after(text, b"stored mail into mailbox ")
            } else {
                None
            };
            let failed_to = if contains(text, b"save failed to open mailbox ") {
                mailbox_after(text, b"save failed to open mailbox ")
            } else if contains(text, b"save failed to ") {
                mailbox_after(text, b"save failed to ")
            } else if contains(text, b"failed to store into mailbox ") {
                // sieve's wording
                mailbox_after(text, b"failed to store into mailbox ")
            } else {
                None
            };
            // Sieve's discard: `marked message to be discarded if not explicitly delivered
            // (discard action)`; unless a later line stores it after all, it is in no mailbox.
            // Sieve's redirect (or vacation reply) that could not be sent: the reply it quotes
            // may say `rejected:` (`RCPT TO failed: 554 5.7.1 <x>: Client host rejected: Access
            // denied`), which is no save failure. Logged as an error when the message is
            // deferred for it, at Info when the script's implicit keep saves it: a warning
            // about the action then.
            if contains(text, b"failed to redirect message to ")
                || contains(text, b"failed to send vacation response")
            {
                let severity = Some(sev.unwrap_or(Severity::Warning));
                return problem_or_info(p.name, user, session, severity, text);
            }
            if saved_to.is_some()
                || failed_to.is_some()
                || contains(text, b"rejected: ")
                || is_sieve_discard(text)
                || sieve_redirect_target(text).is_some()
            {
                let saved = saved_to.is_some();
                return Some(Some(Event::DovecotDelivery(Box::new(DovecotDelivery {
                    user,
                    session,
                    message_id: msgid(text),
                    mailbox: saved_to.or(failed_to),
                    saved,
                    delivery_time_ms: delivery_time_ms(text),
                    text: lossy(text),
                }))));
            }
            // The LMTP server's process-level lines name the recipient in their text.
            let user = user.or_else(|| rcpt_named(text));
            // Dovecot 1.x's `deliver` wrote its errors to syslog without `Error: ` (the level was
            // syslog's): `deliver(bob): mkdir(/home/bob/Maildir/cur) failed: Permission denied`.
            let v1_error = p.name == b"deliver" && contains(text, b") failed: ");
            let sev = sev.or(v1_error.then_some(Severity::Error));
            problem_or_info(p.name, user, session, sev, text)
        }
        b"imap-login" | b"pop3-login" | b"submission-login" | b"managesieve-login" => {
            let service = lossy(&p.name[..p.name.len() - 6]);
            if let Some(rest) = strip_prefix(text, b"Login: ") {
                return Some(Some(Event::Login(Box::new(Login {
                    service,
                    user: field(rest, b"user=").map(lossy),
                    success: true,
                    remote_ip: field(rest, b"rip=").map(lossy),
                    text: lossy(text),
                }))));
            }
            if login_backend_failed(text) {
                return Some(Some(Event::AuthBackendError { text: lossy(text) }));
            }
            if login_certificate_refused(text) {
                return problem_or_info(p.name, user, session, Some(Severity::Warning), text);
            }
            if login_auth_broken(text) {
                return problem_or_info(p.name, user, session, Some(Severity::Error), text);
            }
            if login_failed(text) {
                return Some(Some(Event::Login(Box::new(Login {
                    service,
                    user: field(text, b"user=").map(lossy),
                    success: false,
                    remote_ip: field(text, b"rip=").map(lossy),
                    text: lossy(text),
                }))));
            }
            problem_or_info(p.name, user, session, sev, text)
        }
        b"auth" | b"auth-worker" => auth(&p, sev, text),
        _ => problem_or_info(p.name, user, session, sev, text),
    }
}

/// What Dovecot's `auth_verbose_passwords` makes it log of the password a client tried
/// (`Password mismatch (given password: hunter2)`, `(SHA1 of given password: ...)`) replaced
/// by `<redacted>` in a line's text: a report, its evidence and incident drafts are read and
/// passed on by others. The password runs to the line's last `)` (it may hold one itself).
pub(crate) fn redact_password(line: &mut String) {
    const GIVEN: &str = "given password: ";
    let Some(at) = line.find(GIVEN).map(|i| i + GIVEN.len()) else {
        return;
    };
    let end = line[at..].rfind(')').map_or(line.len(), |i| at + i);
    line.replace_range(at..end, "<redacted>");
}

/// A login process's disconnect after the client refused the server's certificate in the TLS
/// handshake (`TLS handshaking: SSL_accept() failed: ...: sslv3 alert certificate unknown: SSL
/// alert number 46`): alerts 42 (bad certificate), 45 (expired), 46 (unknown: not trusted) and
/// 48 (unknown CA). Other handshake failures (no shared cipher, a scanner's plain text, a
/// broken connection's bad MAC) are the client's or the network's.
pub(crate) fn login_certificate_refused(text: &[u8]) -> bool {
    let Some(at) = find(text, b"SSL alert number ") else {
        return false;
    };
    let n = &text[at + 17..];
    let digits = n.iter().take_while(|c| c.is_ascii_digit()).count();
    matches!(&n[..digits], b"42" | b"45" | b"46" | b"48")
}

/// A login process's line saying it could not ask the auth service (its backend is down, or
/// the auth process is): every login fails alike, whatever the password.
pub(crate) fn login_backend_failed(text: &[u8]) -> bool {
    contains(text, b"auth service reported temporary failure")
        || contains(text, b"auth process communication failure")
}

/// A login process's disconnect for want of its auth service, before any login was tried
/// (`Disconnected: Auth process broken (disconnected before auth was ready, waited 30 secs)`):
/// the auth process is hung or down, a service error. A login that was tried is a failed login
/// (`auth failed`); without `Auth process broken`, the same reason is a client that left early.
pub(crate) fn login_auth_broken(text: &[u8]) -> bool {
    contains(text, b"Auth process broken") && !login_failed(text)
}

/// The reasons a login process gives for a failed login, in its disconnect line (2.3:
/// `Aborted login (auth failed, 1 attempts in 2 secs)` or `Disconnected (...)`; 2.4: `Login
/// aborted: Connection closed (auth failed, ...) (auth_failed)`).
const LOGIN_FAILURES: [&[u8]; 8] = [
    b"auth failed",
    // A client that logs in without TLS where Dovecot requires it (2.4: `disallowed
    // cleartext auth`).
    b"plaintext auth",
    b"cleartext auth",
    // The passdb refused the account itself.
    b"(user disabled",
    b"(password expired",
    b"(authorization failed",
    // The password was accepted, then the session could not start (the mail store, often).
    b"(internal failure",
    // The password was accepted; the user holds `mail_max_userip_connections` already.
    USERIP_LIMIT.as_bytes(),
];

/// Dovecot's words for a login refused, the password accepted, because the user holds
/// `mail_max_userip_connections` from that address already (`ERR_TOO_MANY_USERIP_CONNECTIONS`),
/// in its log and in its reply to the client's LOGIN alike.
const USERIP_LIMIT: &str = "connections from user+IP exceeded";

/// Whether a Dovecot log line or IMAP reply tells of a login over the user's connection limit.
pub fn over_userip_limit(text: &str) -> bool {
    text.contains(USERIP_LIMIT)
}

/// Whether a login process's line tells of a failed login.
pub(crate) fn login_failed(text: &[u8]) -> bool {
    LOGIN_FAILURES.iter().any(|m| contains(text, m))
}

/// The recipient an LMTP server line names when its process token does not (`lmtp(6100):
/// Error: lmtp-server: conn unix:pid=6099,uid=89 [1]: rcpt ivy@corp.test: Failed to initialize
/// user: ...`).
/// Earlier Dovecot says it without the prefix: `lmtp(2210): Error: Failed to lookup user
/// bob@corp.test: Internal error occurred.`
fn rcpt_named(text: &[u8]) -> Option<String> {
    let v = match find(text, b": rcpt ") {
        Some(at) => &text[at + 7..],
        None => &text[find(text, b"Failed to lookup user ")? + 22..],
    };
    let addr = &v[..find(v, b": ")?];
    (memchr::memchr(b'@', addr).is_some() && !addr.contains(&b' ')).then(|| lossy(addr))
}

fn problem_or_info(
    name: &[u8],
    user: Option<String>,
    session: Option<String>,
    sev: Option<Severity>,
    text: &[u8],
) -> Option<Option<Event>> {
    Some(sev.map(|severity| {
        Event::DovecotProblem(Box::new(DovecotProblem {
            service: lossy(name),
            user,
            session,
            severity,
            text: lossy(text),
        }))
    }))
}

const BACKEND_MARKERS: &[&[u8]] = &[
    b"Password query failed",
    b"User query failed",
    b"Iterate query failed",
    b"Connect failed to database",
    b"Access denied for user",
    b"Can't connect to",
    b"Lost connection to MySQL",
    b"Lost connection to server",
    b"Unknown database",
    b"Worker process died",
    b"auth worker: Aborted",
    // Dovecot 2.4 and late 2.3 name the worker `auth-worker: ` (`Aborted PASSV request for x:
    // Lookup timed out`, requests waiting for a free worker).
    b"auth-worker: Abort",
    b"auth-worker: Auth request was queued",
    b"connect(",
    b"LDAP: binding failed",
    b"Connection lost to LDAP server",
    b"not connected to LDAP server",
    b"): Connect failed: ",
    b"unable to open database file",
    b"Password query must return",
];

/// An auth worker's text without Dovecot 2.3's prefix naming the connection it came over,
/// `conn unix:auth-worker (pid=830,uid=109): auth-worker<6>: ` (else its `(pid=..,uid=..)` would
/// be read as the user and the address).
fn without_worker_prefix(text: &[u8]) -> &[u8] {
    let mut t = text;
    if t.starts_with(b"conn ") {
        if let Some(end) = find(t, b"): ") {
            t = &t[end + 3..];
        }
    }
    if let Some(rest) = t.strip_prefix(b"auth-worker<") {
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if let Some(after) = rest[digits..].strip_prefix(b">: ") {
            t = after;
        }
    }
    t
}

fn auth(p: &Proc<'_>, sev: Option<Severity>, text: &[u8]) -> Option<Option<Event>> {
    // `driver(user,ip,<session>): message`; Dovecot 2.4 puts the user and the address in the
    // process token instead: `auth-worker(user,ip)<pid>: request [1]: sql: Password mismatch`.
    let name = p.name;
    let text = without_worker_prefix(text);
    // The driver is the text's first word: an assertion's `file X.c: line 646 (function): ...`
    // names a C function in its parentheses, not a user.
    let driver = find(text, b"): ").and_then(|close| {
        let open = memchr::memchr(b'(', &text[..close])?;
        (!text[..open].contains(&b' ')).then_some((open, close))
    });
    let (user, ip, body) = match driver {
        Some((open, close)) => {
            let inner = &text[open + 1..close];
            let mut parts = inner.split(|&c| c == b',');
            let user = parts
                .next()
                .filter(|u| !u.is_empty() && *u != b"?")
                .map(lossy);
            // Without a client address the session follows the user: `sql(bob@corp.test,
            // <AbCdEf0123xyz>): unknown user` is LMTP resolving a recipient, not a login.
            let ip = parts
                .next()
                .filter(|u| !u.is_empty() && !u.starts_with(b"<"))
                .map(lossy);
            (user, ip, &text[close + 3..])
        }
        _ => (p.user.map(lossy), p.addr.map(lossy), text),
    };
    if BACKEND_MARKERS.iter().any(|m| contains(text, m))
        && (sev.is_some() || contains(text, b"failed"))
    {
        return Some(Some(Event::AuthBackendError { text: lossy(text) }));
    }
    // PAM says it its own way: `pam_authenticate() failed: Authentication failure` (older Dovecot
    // adds no `(password mismatch?)`), `User not known to the underlying authentication module`.
    if contains(body, b"Password mismatch")
        || contains(body, b"password mismatch")
        || contains(body, b"pam_authenticate() failed: Authentication failure")
    {
        return Some(Some(Event::AuthFailure {
            user,
            kind: AuthFailureKind::PasswordMismatch,
            remote_ip: ip,
            text: lossy(text),
        }));
    }
    // The passdb knew the user but no userdb does (`user not found from userdb`, 2.x `... from
    // any userdbs`, logged for logins only): the login fails as for an unknown user.
    if contains(body, b"unknown user")
        || contains(body, b"User not known to the underlying")
        || contains(body, b"user not found from userdb")
        || contains(body, b"user not found from any userdb")
    {
        return Some(Some(Event::AuthFailure {
            user,
            kind: AuthFailureKind::UnknownUser,
            remote_ip: ip,
            text: lossy(text),
        }));
    }
    problem_or_info(name, user, None, sev, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(token: &str, msg: &str) -> Event {
        parse(token.as_bytes(), msg.as_bytes())
            .unwrap_or_else(|| panic!("unknown: {msg}"))
            .unwrap_or_else(|| panic!("info: {msg}"))
    }

    #[test]
    fn a_tried_password_is_redacted() {
        for (line, want) in [
            ("auth-worker(a@x,1.2.3.4)<1><S>: request [12]: Info: sql: Password mismatch (given password: XxxxXXxx123)", "auth-worker(a@x,1.2.3.4)<1><S>: request [12]: Info: sql: Password mismatch (given password: <redacted>)"),
            ("dovecot: auth: passwd-file(a@x,1.2.3.4): Password mismatch (given password: p)w(d)", "dovecot: auth: passwd-file(a@x,1.2.3.4): Password mismatch (given password: <redacted>)"),
            ("dovecot: auth: sql(a@x,1.2.3.4): unknown user (given password: cut", "dovecot: auth: sql(a@x,1.2.3.4): unknown user (given password: <redacted>"),
            ("dovecot: auth: sql(a@x,1.2.3.4): Password mismatch", "dovecot: auth: sql(a@x,1.2.3.4): Password mismatch"),
        ] {
            let mut l = line.to_string();
            redact_password(&mut l);
            assert_eq!(l, want);
        }
    }

    #[test]
    fn proc_tokens() {
        assert_eq!(
            parse_proc(b"lmtp(alice@corp.test)<2142><Zq0gHlsHamU6BwAAWjKm6A>"),
            Some(Proc {
                name: b"lmtp",
                user: Some(b"alice@corp.test"),
                session: Some(b"Zq0gHlsHamU6BwAAWjKm6A"),
                addr: None,
            })
        );
        assert_eq!(
            parse_proc(b"auth-worker(2130)"),
            Some(Proc {
                name: b"auth-worker",
                user: None,
                session: None,
                addr: None,
            })
        );
        // Dovecot 2.4's auth processes: the client's address after the user.
        assert_eq!(
            parse_proc(b"auth(tom@corp.test,172.17.0.1,sasl:plain)<Cd5NZ2o8ZpysEQAC>"),
            Some(Proc {
                name: b"auth",
                user: Some(b"tom@corp.test"),
                session: Some(b"Cd5NZ2o8ZpysEQAC"),
                addr: Some(b"172.17.0.1"),
            })
        );
        assert_eq!(parse_proc(b"sshd(1)"), None);
        assert_eq!(parse_proc(b"lmtp(x"), None);
    }

    /// Dovecot 2.2: the pid and user in the token, the session at the start of the text.
    #[test]
    fn dovecot_2_2_session_in_the_text() {
        let Event::DovecotDelivery(d) = ev(
            "lmtp(22587, alice@corp.test)",
            "5GjrDafYTFE7WAAABf1gKA: msgid=<m2@x.example>: saved mail to INBOX",
        ) else {
            panic!()
        };
        assert_eq!(d.user.as_deref(), Some("alice@corp.test"));
        assert_eq!(d.session.as_deref(), Some("5GjrDafYTFE7WAAABf1gKA"));
        assert_eq!(d.message_id.as_deref(), Some("<m2@x.example>"));
        assert!(d.saved);
        assert_eq!(
            text_session(b"msgid=<m2@x.example>: saved mail to INBOX"),
            None
        );
    }

    #[test]
    fn lmtp_saved_with_delivery_time() {
        let e = ev(
            "lmtp(alice@corp.test)<2142><Zq0gHlsHamU6BwAAWjKm6A>",
            "Info: msgid=<p1@flowtest>: saved mail to INBOX delivery_time=3ms",
        );
        assert_eq!(
            e,
            Event::DovecotDelivery(Box::new(DovecotDelivery {
                user: Some("alice@corp.test".into()),
                session: Some("Zq0gHlsHamU6BwAAWjKm6A".into()),
                message_id: Some("<p1@flowtest>".into()),
                mailbox: Some("INBOX".into()),
                saved: true,
                delivery_time_ms: Some(3),
                text: "msgid=<p1@flowtest>: saved mail to INBOX delivery_time=3ms".into(),
            }))
        );
        let Event::DovecotDelivery(d) = ev(
            "lmtp(alice@corp.test)<1><S1234567>",
            "Info: msgid=<x@y>: sieve: stored mail into mailbox 'Junk'",
        ) else {
            panic!()
        };
        assert_eq!((d.mailbox.as_deref(), d.saved), (Some("Junk"), true));
        let Event::DovecotDelivery(d) = ev(
            "lmtp(alice@corp.test)<1><S1234567>",
            "Error: msgid=<x@y>: save failed to INBOX: Quota exceeded (mailbox for user is full)",
        ) else {
            panic!()
        };
        assert_eq!((d.mailbox.as_deref(), d.saved), (Some("INBOX"), false));
        // The mailbox that could not be opened, not the word `open`.
        let Event::DovecotDelivery(d) = ev(
            "lmtp(alice@corp.test)<1><S1234567>",
            "Error: msgid=<x@y>: save failed to open mailbox INBOX: Internal error occurred.",
        ) else {
            panic!()
        };
        assert_eq!(d.mailbox.as_deref(), Some("INBOX"));
        // Sieve's redirect: a delivery line in no mailbox, its target read by the correlator;
        // a duplicate redirect Pigeonhole suppressed forwards nothing.
        let Event::DovecotDelivery(d) = ev(
            "lmtp(alice@corp.test)<1><S1234567>",
            "sieve: msgid=<x@y>: forwarded to <bob@elsewhere.example>",
        ) else {
            panic!()
        };
        assert_eq!((d.mailbox.as_deref(), d.saved), (None, false));
        assert_eq!(
            sieve_redirect_target(d.text.as_bytes()),
            Some(&b"<bob@elsewhere.example>"[..])
        );
        assert_eq!(
            sieve_redirect_target(b"sieve: msgid=<x@y>: discarded duplicate forward to <b@c>"),
            None
        );
        // A redirect refused for good (Pigeonhole logs it at Info; the implicit keep saves the
        // message after it): a warning about the action, not a failed save, though the reply
        // it quotes says `rejected:` (the lab's Dovecot 2.3 with a submission_host).
        assert!(matches!(
            ev(
                "lmtp(alice@corp.test)<19771><Nw/EKBCOEms7TQAAn00ZSw>",
                "Info: sieve: msgid=<redirok-yes@provider.test>: redirect action: failed to redirect message to <bob@elsewhere.example>: smtp(100.64.0.2:2525): RCPT TO failed: 554 5.7.1 <unknown[100.64.0.2]>: Client host rejected: Access denied (permanent failure) delivery_time=8ms",
            ),
            Event::DovecotProblem(p) if p.severity == Severity::Warning
        ));
        assert!(matches!(
            ev(
                "lmtp(alice@corp.test)<1><S1234567>",
                "Info: sieve: msgid=<x@y>: failed to send vacation response to <a@b>: smtp(127.0.0.1:25): RCPT TO failed: 550 5.1.1 <a@b>: Recipient address rejected: User unknown (permanent failure)",
            ),
            Event::DovecotProblem(_)
        ));
    }

    /// The LMTP server's process-level error names the recipient in its text.
    #[test]
    fn an_lmtp_servers_error_names_its_recipient() {
        let e = ev("lmtp(6100)", "Error: lmtp-server: conn unix:pid=6099,uid=89 [1]: rcpt ivy@corp.test: Failed to initialize user: Mail access for users with UID 1000 not permitted (see first_valid_uid in config file, uid from userdb lookup)");
        assert!(
            matches!(&e, Event::DovecotProblem(p) if p.user.as_deref() == Some("ivy@corp.test")),
            "{e:?}"
        );
        assert_eq!(rcpt_named(b"x: rcpt not an address: y"), None);
        assert_eq!(
            rcpt_named(b"Error: Failed to lookup user bob@corp.test: Internal error occurred."),
            Some("bob@corp.test".to_string())
        );
        assert_eq!(rcpt_named(b"x: rcpt a@b"), None);
    }

    #[test]
    fn auth_lines() {
        assert!(matches!(
            ev("auth", "passwd-file(alice@corp.test,198.18.3.1,<abc>): Password mismatch"),
            Event::AuthFailure { kind: AuthFailureKind::PasswordMismatch, ref user, .. } if user.as_deref() == Some("alice@corp.test")
        ));
        assert!(matches!(
            ev(
                "auth-worker(12)",
                "sql(bob@corp.test,198.18.3.1): unknown user"
            ),
            Event::AuthFailure {
                kind: AuthFailureKind::UnknownUser,
                ..
            }
        ));
        for (line, kind) in [
            (
                "pam(gina@corp.test,203.0.113.8): pam_authenticate() failed: Authentication failure",
                AuthFailureKind::PasswordMismatch,
            ),
            (
                "pam(hal@corp.test,203.0.113.8): pam_authenticate() failed: User not known to the underlying authentication module",
                AuthFailureKind::UnknownUser,
            ),
            // The password was right, no userdb knows the user (1.x, then 2.x wording).
            (
                "userdb(ivy@corp.test,::ffff:127.0.0.1): user not found from userdb",
                AuthFailureKind::UnknownUser,
            ),
            (
                "Error: userdb(ivy@corp.test,203.0.113.7,<Zx1abc>): user not found from any userdbs",
                AuthFailureKind::UnknownUser,
            ),
        ] {
            assert!(
                matches!(ev("auth", line), Event::AuthFailure { kind: k, .. } if k == kind),
                "{line}"
            );
        }
        // Dovecot 2.4 puts the user and the address in the process token.
        for (token, line, kind) in [
            (
                "auth-worker(all_in@corp.test,45.92.33.82)<82365>",
                "request [1]: sql: Password mismatch",
                AuthFailureKind::PasswordMismatch,
            ),
            (
                "auth(tom@corp.test,172.17.0.1,sasl:plain)<Cd5NZ2o8ZpysEQAC>",
                "passwd-file: unknown user",
                AuthFailureKind::UnknownUser,
            ),
        ] {
            let e = ev(token, line);
            assert!(
                matches!(&e, Event::AuthFailure { kind: k, user: Some(_), remote_ip: Some(_), .. } if *k == kind),
                "{e:?}"
            );
        }
        // Dovecot 2.3 names the worker connection first.
        for (line, user, ip, kind) in [
            (
                "conn unix:auth-worker (pid=830,uid=109): auth-worker<6>: sql(erin@corp.test,203.0.113.7,<Zx1>): Password mismatch",
                Some("erin@corp.test"),
                Some("203.0.113.7"),
                AuthFailureKind::PasswordMismatch,
            ),
            (
                "conn unix:auth-worker (pid=830,uid=109): auth-worker<7>: sql(frank@corp.test): unknown user",
                Some("frank@corp.test"),
                None,
                AuthFailureKind::UnknownUser,
            ),
            // LMTP's userdb lookup: its session where a login's address would be.
            (
                "sql(bob@corp.test,<AbCdEf0123xyz>): unknown user",
                Some("bob@corp.test"),
                None,
                AuthFailureKind::UnknownUser,
            ),
        ] {
            let Event::AuthFailure {
                user: u,
                remote_ip,
                kind: k,
                ..
            } = ev("auth-worker(14864)", line)
            else {
                panic!("{line}")
            };
            assert_eq!((u.as_deref(), remote_ip.as_deref(), k), (user, ip, kind), "{line}");
        }
        assert!(matches!(
            ev("auth-worker(12)", "Error: mysql(mariadb): Connect failed to database (mailserver): Access denied for user 'mailuser'@'172.18.0.3' (using password: YES) - waiting for 1 seconds before retry"),
            Event::AuthBackendError { .. }
        ));
        assert!(matches!(
            ev(
                "auth-worker(12)",
                "Error: sql(alice@corp.test,1.2.3.4,<x>): Password query failed: Access denied"
            ),
            Event::AuthBackendError { .. }
        ));
    }

    /// From Dovecot's own sources (2.3 and 2.4): directory and SQL backends that fail, workers
    /// that time out, logins the auth service could not answer.
    #[test]
    fn backend_outages_in_dovecots_words() {
        for (token, line) in [
            ("auth", "Error: LDAP: binding failed (dn cn=dovecot,dc=corp,dc=test): Invalid credentials"),
            ("auth", "Error: ldap(bob@corp.test,198.18.3.1,<Zm9v>): Aborting (timeout), we're not connected to LDAP server"),
            ("auth", "Error: LDAP: Connection lost to LDAP server, reconnecting"),
            ("auth-worker(7001)", "Error: pgsql(db.corp.test): Connect failed: Timeout after 5 seconds (state: connecting)"),
            ("auth-worker(7001)", "Error: sqlite: open(/etc/dovecot/users.sqlite) failed: unable to open database file"),
            ("auth-worker(7001)", "Error: sql(carl@corp.test,198.18.3.1,<Zm9v>): Password query must return a field named 'password'"),
            ("auth", "Error: auth-worker: Aborted PASSV request for alice@corp.test: Lookup timed out"),
            ("auth", "Error: auth-worker: Auth request was queued for 5 seconds, 3 left in queue (see service auth-worker { process_limit })"),
            ("imap-login", "Info: Login aborted: Connection closed (auth service reported temporary failure, 1 attempts in 2 secs) (temp_fail): user=<bob@corp.test>, method=PLAIN, rip=203.0.113.6, lip=198.18.3.2, TLS, session=<A2>"),
        ] {
            assert!(matches!(ev(token, line), Event::AuthBackendError { .. }), "{line}");
        }
        // The auth process hung or down: the login process gives up on it (a service error,
        // `diagnosis::auth_service_unusable`).
        assert!(matches!(
            ev("imap-login", "Disconnected: Auth process broken (disconnected before auth was ready, waited 1 secs)"),
            Event::DovecotProblem(ref p) if p.severity == Severity::Error
        ));
        // A client that left before the auth service was ready, the service not said broken:
        // a scanner's quick disconnect, no finding.
        let scanner = "Info: Disconnected (disconnected before auth was ready, waited 0 secs): user=<>, rip=192.0.2.33, lip=192.0.2.11, session=<wpjWYSyZ1NnAqGQh>";
        assert!(matches!(
            parse(b"imap-login", scanner.as_bytes()),
            Some(None | Some(Event::Info))
        ));
        // 2.4's word for a refused plaintext login.
        assert!(matches!(
            ev("imap-login", "Info: Login aborted: Connection closed (tried to use disallowed cleartext auth, 1 attempts in 0 secs) (cleartext_auth_disabled): user=<>, rip=203.0.113.5, lip=198.18.3.2, session=<A1>"),
            Event::Login(ref l) if !l.success
        ));
    }

    #[test]
    fn logins_the_passdb_or_the_session_refused_are_failed_logins() {
        for line in [
            "Info: Disconnected (user disabled, 1 attempts in 2 secs): user=<bob@corp.test>, method=PLAIN, rip=203.0.113.6, lip=198.18.3.2, TLS, session=<A3>",
            "Info: Login aborted: Connection closed (password expired, 1 attempts in 2 secs) (password_expired): user=<bob@corp.test>, method=PLAIN, rip=203.0.113.6, lip=198.18.3.2, TLS, session=<A4>",
            "Info: Aborted login (authorization failed, 1 attempts in 2 secs): user=<bob@corp.test>, method=PLAIN, rip=203.0.113.6, lip=198.18.3.2, TLS, session=<A5>",
            "Info: Disconnected (internal failure, 1 successful auths): user=<bob@corp.test>, method=PLAIN, rip=203.0.113.6, lip=198.18.3.2, mpid=0, TLS, session=<A6>",
            "Info: Login aborted: Connection closed (internal failure, 1 successful auths) (internal_failure): user=<bob@corp.test>, method=PLAIN, rip=203.0.113.6, lip=198.18.3.2, TLS, session=<A7>",
        ] {
            assert!(
                matches!(ev("imap-login", line), Event::Login(ref l) if !l.success && l.user.as_deref() == Some("bob@corp.test")),
                "{line}"
            );
        }
        // A client that left before logging in did not fail a login.
        let left = "Info: Disconnected (no auth attempts in 0 secs): user=<>, rip=203.0.113.6, lip=198.18.3.2, TLS, session=<A8>";
        assert!(
            matches!(parse(b"imap-login", left.as_bytes()), Some(None)),
            "{left}"
        );
    }

    #[test]
    fn logins_and_syslog() {
        assert!(matches!(
            ev("imap-login", "Login: user=<alice@corp.test>, method=PLAIN, rip=198.18.3.1, lip=198.18.3.2, mpid=3, TLS, session=<x>"),
            Event::Login(ref l) if l.success
        ));
        assert!(matches!(
            ev("imap-login", "Info: Disconnected: Connection closed (auth failed, 1 attempts in 2 secs): user=<alice@corp.test>, method=PLAIN, rip=198.18.3.1, lip=198.18.3.2, TLS, session=<x>"),
            Event::Login(ref l) if !l.success && l.user.as_deref() == Some("alice@corp.test")
        ));
        assert_eq!(
            parse_syslog(b"imap-login: Disconnected (no auth attempts in 0 secs): user=<>"),
            Some(None)
        );
        assert!(matches!(
            parse_syslog(b"imap(alice@corp.test)<3><s>: Error: chdir(/var/mail/alice) failed: Permission denied (euid=1000)"),
            Some(Some(Event::DovecotProblem(ref p))) if p.severity == Severity::Error
        ));
        assert_eq!(parse_syslog(b"sshd: nope"), None);
    }

    /// Dovecot 1.x: its own name before the process token, a plaintext login refused, the
    /// master's start without a process token.
    #[test]
    fn dovecot_1x_and_refused_plaintext_logins() {
        assert!(matches!(
            parse_syslog(b"dovecot: auth(default): pam(alice,192.0.2.7): pam_authenticate() failed: User not known to the underlying authentication module"),
            Some(Some(Event::AuthFailure { .. }))
        ));
        assert_eq!(parse_syslog(b"dovecot: dovecot: x"), None);
        assert!(matches!(
            parse_syslog(b"pop3-login: Aborted login (tried to use disabled plaintext auth): rip=198.51.100.77, lip=192.0.2.1"),
            Some(Some(Event::Login(ref l))) if !l.success
        ));
        assert_eq!(
            parse_syslog(b"Dovecot v1.2.17 starting up (core dumps disabled)"),
            Some(None)
        );
        assert_eq!(parse_syslog(b"something else without a token"), None);
        // A client refusing the server's certificate, and handshakes that failed otherwise.
        let refused = b"imap-login: Info: Disconnected (no auth attempts): rip=192.0.2.7, lip=198.18.3.2, TLS handshaking: SSL_accept() failed: error:14094416:SSL routines:SSL3_READ_BYTES:sslv3 alert certificate unknown: SSL alert number 46";
        assert!(matches!(
            parse_syslog(refused),
            Some(Some(Event::DovecotProblem(ref p))) if p.severity == Severity::Warning && p.service == "imap-login"
        ));
        for other in [
            &b"imap-login: Info: Disconnected (no auth attempts): rip=192.0.2.7, lip=198.18.3.2, TLS: SSL_read() failed: error:140943FC:SSL routines:SSL3_READ_BYTES:sslv3 alert bad record mac: SSL alert number 20"[..],
            b"imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.7, lip=198.18.3.2, TLS handshaking: SSL_accept() failed: error:1408A0C1:SSL routines:ssl3_get_client_hello:no shared cipher",
            b"imap-login: Info: Disconnected: rip=192.0.2.7, TLS handshaking: SSL alert number 420",
        ] {
            assert_eq!(parse_syslog(other), Some(None), "{}", String::from_utf8_lossy(other));
        }
        assert_eq!(
            parse_syslog(b"IMAP(david): Disconnected: Logged out"),
            Some(None)
        );
        assert!(matches!(
            parse_syslog(b"POP3(dave): Error: mbox file /var/mail/dave: Permission denied"),
            Some(Some(Event::DovecotProblem(ref p))) if p.service == "pop3" && p.user.as_deref() == Some("dave")
        ));
    }

    /// An auth process's assertion names the C function in parentheses: no user (modoboa
    /// installer #568); a driver's `passwd-file(user,ip): ...` still names one.
    #[test]
    fn an_auth_assertion_names_no_user() {
        let panic = b"Panic: file http-client.c: line 646 (http_client_context_close): assertion \
                      failed: (cctx->clients_list == NULL)";
        let ev = parse(b"auth", panic);
        assert!(
            matches!(&ev, Some(Some(Event::DovecotProblem(p))) if p.user.is_none()),
            "{ev:?}"
        );
        let unknown = b"Info: passwd-file(bob@x.test,192.0.2.7): unknown user";
        let ev = parse(b"auth", unknown);
        assert!(
            matches!(&ev, Some(Some(Event::AuthFailure { user: Some(u), .. })) if u == "bob@x.test"),
            "{ev:?}"
        );
    }

    /// Dovecot 1.x's own log file names its mail processes in capitals, as its syslog lines do
    /// (Ubuntu Forums, 2011): the mail store's permission error is Dovecot's, not another
    /// program's line passed over.
    #[test]
    fn a_v1_log_files_capital_process_is_dovecots() {
        let ctx = crate::logs::ParseContext::new("store", 2025);
        let line = b"2011-05-26 22:25:35 IMAP(user1@sub.example): Error: mkdir(/var/vmail/user1/cur) \
                     failed: Permission denied (euid=5000(<unknown>) egid=5000(<unknown>) missing +w \
                     perm: /var/vmail/user1)";
        let rec = crate::logs::parse_line(line, &ctx).expect("read");
        assert!(
            matches!(&rec.event, Event::DovecotProblem(p) if p.service == "imap" && p.user.as_deref() == Some("user1@sub.example")),
            "{:?}",
            rec.event
        );
    }

    /// Dovecot 2.2's own log file names the DH parameter builder `ssl-params`: Dovecot's line.
    #[test]
    fn the_ssl_params_process_is_dovecots() {
        let ctx = crate::logs::ParseContext::new("store", 2016);
        for line in [
            &b"Oct 25 07:27:04 ssl-params: Info: Generating SSL parameters"[..],
            b"2016-10-25 07:27:04 ssl-params: Info: SSL parameters regeneration completed",
        ] {
            let rec = crate::logs::parse_line(line, &ctx);
            assert!(
                matches!(rec.map(|r| r.event), Some(Event::Info)),
                "{line:?}"
            );
        }
    }

    /// Dovecot 1.x's LDA, `deliver(user)`, under its own tag or through Dovecot's log; a bare
    /// `deliver` (Cyrus's) is not Dovecot's.
    #[test]
    fn dovecot_1x_deliver() {
        let Event::DovecotDelivery(d) =
            ev("deliver(dave)", "msgid=<a1@x.example>: saved mail to INBOX")
        else {
            panic!()
        };
        assert_eq!(
            (d.user.as_deref(), d.message_id.as_deref(), d.saved),
            (Some("dave"), Some("<a1@x.example>"), true)
        );
        let Some(Some(Event::DovecotDelivery(d))) = parse_syslog(
            b"deliver(dave@corp.test): msgid=<a2@x.example>: save failed to INBOX: Quota exceeded",
        ) else {
            panic!()
        };
        assert_eq!((d.mailbox.as_deref(), d.saved), (Some("INBOX"), false));
        assert_eq!(
            parse(b"deliver", b"msgid=<a3@x>: saved mail to INBOX"),
            None
        );
        assert!(!is_v1_deliver(b"deliver[12]"));
        // Its errors carry no `Error: ` (syslog held the level): still an error (Ubuntu
        // Forums, 2010); its other lines stay information.
        let denied = "mkdir(/home/bob/Maildir/cur) failed: Permission denied (euid=1000(bob))";
        assert!(
            matches!(ev("deliver(bob)", denied), Event::DovecotProblem(p) if p.severity == Severity::Error),
            "{:?}",
            ev("deliver(bob)", denied)
        );
        assert_eq!(parse(b"deliver(bob)", b"Loading modules"), Some(None));
    }
}
