//! Postfix's own `warning:` / `error:` / `fatal:` lines: which of them break mail flow, and
//! how (the host-level findings). Most warnings are noise and stay unclassified.

use super::{has, FindingCode, DISK_FULL};
use crate::logs::Severity;

/// A TLS setup this Postfix cannot use (its certificate or key, its TLS context), or its
/// certificate a client refused in the handshake (`TLS library problem: ...:tlsv1 alert unknown
/// ca:...:SSL alert number 48:`, as Dovecot's login processes report it: submission clients
/// that cannot verify the chain). `t` is `text` in lowercase.
fn tls_problem(t: &str, text: &str) -> bool {
    ((t.contains("cannot load") || t.contains("cannot get"))
        && (t.contains("certificate") || t.contains("private key")))
        || t.contains("tls context initialization failed")
        || (t.contains("tls library problem")
            && crate::logs::login_certificate_refused(text.as_bytes()))
}

/// Classify a Postfix `warning:` / `error:` / `fatal:` line into a host-level finding. Most
/// warnings are noise (clients without reverse DNS, TLS scanners): only causes that break mail
/// flow qualify.
pub fn classify_postfix_problem(severity: Severity, text: &str) -> Option<FindingCode> {
    let t = text.to_ascii_lowercase();
    if caller_usage_error(&t) {
        return None;
    }
    if has(&t, DISK_FULL) {
        return Some(FindingCode::DiskFull);
    }
    // smtpd's `QID: queue file size limit exceeded`; sendmail(1)'s `fatal: USER(UID): message
    // file too big`: the message is over message_size_limit, the host is fine.
    if t.contains("queue file size limit exceeded") || t.contains("message file too big") {
        return Some(FindingCode::MessageTooLarge);
    }
    // A DNS blocklist zone that does not resolve: the check does nothing (no map is involved).
    if t.contains("rbl lookup error") || t.contains("dnsbl lookup error") {
        return Some(FindingCode::DnsError);
    }
    // dnsblog's (postscreen's DNSBL client) `lookup error for DNS query X: Host or domain name
    // not found. Name service error ...`, smtp's `TLS policy lookup error for X/Y: ... Name
    // service error for name=_25._tcp.Y type=TLSA`: the resolver failed, no table is involved.
    if has(
        &t,
        &["lookup error for dns query", "name service error for name="],
    ) {
        return Some(FindingCode::DnsError);
    }
    if map_unavailable(&t)
        || t.contains("map lookup problem")
        || t.contains("lookup error")
        || t.contains("lookup failure")
        || t.contains("transport_maps")
        || t.contains("open database")
        // The map was edited and postmap not run since: Postfix still reads the old entries.
        || (t.starts_with("database ") && t.contains(" is older than source file "))
        // A directory or SQL map's client (`dict_ldap_lookup: Search error 80: ...`,
        // `dict_mysql_get_active: ...`): the map answered with an error, not with a key.
        || (t.starts_with("dict_") && t.contains("error"))
        // A socketmap table's server (`socketmap:inet:127.0.0.1:10001:name socketmap server
        // temporary error: ...`).
        || (t.contains(" socketmap server ") && t.contains(" error"))
        // A table that could not be asked (`fatal: proxy:mysql:/etc/postfix/x.cf(0,lock|fold_fix):
        // table lookup problem`), after its client's cause (`connect to mysql server 127.0.0.1:
        // Access denied for user ...`, the same for pgsql; LDAP's `dict_ldap_connect: Unable to
        // bind to server ...`): the database's address, user, password or grants.
        || t.contains("table lookup problem")
        || t.starts_with("connect to mysql server")
        || t.starts_with("connect to pgsql server")
        || (t.starts_with("dict_ldap_connect") && t.contains("unable"))
    {
        return Some(FindingCode::LookupFailure);
    }
    if t.contains("no worthy mechs") {
        return Some(FindingCode::SaslNoMechanism);
    }
    // smtpd's SASL backend: Dovecot's auth socket (`SASL: Connect to private/auth failed: No such
    // file or directory`, then `fatal: no SASL authentication mechanisms`) or Cyrus' saslauthd.
    if (t.starts_with("sasl: connect to") && t.contains(" failed"))
        || t.contains("no sasl authentication mechanisms")
        || t.contains("cannot connect to saslauthd server")
        // Cyrus SASL's own setup in smtpd (its smtpd.conf, its plugins): smtpd exits at start.
        || t.contains("sasl per-process initialization failed")
    {
        return Some(FindingCode::SaslServerUnavailable);
    }
    if t.contains("sasl") && t.contains("authentication failed") {
        return Some(FindingCode::AuthFailed);
    }
    // anvil's limits (connection, message, recipient, TLS session rates), a service at its
    // process limit, postscreen with every port busy: clients wait or are turned away.
    if t.contains("rate limit exceeded")
        || t.contains("concurrency limit exceeded")
        || t.contains("has reached its process limit")
        || t.contains("all screening ports busy")
    {
        return Some(FindingCode::RateLimited);
    }
    if local_service_failed(&t) {
        return Some(FindingCode::ServiceError);
    }
    if tls_problem(&t, text) {
        return Some(FindingCode::TlsError);
    }
    if t.contains("permission denied") && (t.contains("maildir") || t.contains("mailbox")) {
        return Some(FindingCode::MailboxPermissionDenied);
    }
    // postdrop (local submission: sendmail from cron, web applications) cannot write to the
    // queue: a read-only or mis-owned maildrop directory; the mail waits in the caller.
    if t.contains("bad command startup")
        || t.contains("exit status")
        || t.contains("killed by signal")
        || t.contains("mail_queue_enter: create file")
    {
        return Some(FindingCode::ServiceError);
    }
    match severity {
        Severity::Fatal | Severity::Panic => Some(FindingCode::ServiceError),
        Severity::Warning | Severity::Error => None,
    }
}

/// A Postfix daemon's client to a local service (a policy service, a milter, a content
/// filter) that does not answer, and queue files that cannot be written: the mail waits or is
/// refused (451 4.3.5). `t` is the text in lowercase.
fn local_service_failed(t: &str) -> bool {
    t.contains("problem talking to server")
        // Postfix's own internal services (`problem talking to service rewrite`: trivial-
        // rewrite is down or crashing).
        || t.contains("problem talking to service ")
        || (t.starts_with("connect to ")
            && has(
                t,
                &["connection refused", "no such file", "timed out", "permission denied"],
            ))
        // A daemon's client to one of Postfix's internal services (`connect #1 to subsystem
        // private/proxymap: Connection refused`), postscreen handing a client to smtpd
        // (`cannot pass connection to service private/smtpd: ...`).
        || (t.starts_with("connect #") && t.contains(" to subsystem "))
        || t.starts_with("cannot pass connection to service ")
        // A before-queue content filter (smtpd_proxy_filter, amavis on 10024) that stopped
        // answering mid-message: smtpd refuses it with a generic `451 4.3.0 Error: queue file
        // write error` (no disk is at fault).
        || t.starts_with("timeout talking to proxy ")
        // A `tcp:` table's server (a policy or lookup daemon) that cannot be reached or does not
        // answer (`read TCP map reply from 127.0.0.1:10030: unexpected EOF (...)`, `connect to
        // TCP map ...`: dict_tcp's words): every lookup through it fails until it is back.
        || t.starts_with("read tcp map reply from ")
        || t.starts_with("connect to tcp map ")
        // The queue manager about a delivery agent that fails (`transport lmtp failure -- see a
        // previous warning/fatal/panic logfile record ...`; `private/lmtp socket: malformed
        // response`, the agent died mid-answer): the transport's mail waits.
        || (t.starts_with("transport ") && t.contains(" failure -- see a previous "))
        || (t.starts_with("private/") && t.ends_with("socket: malformed response"))
        // postdrop (local submission) finds no pickup service: Postfix's master is not running,
        // and what cron and web applications send waits in the maildrop queue.
        || t.starts_with("unable to look up public/pickup")
        || t.contains("write queue file")
        || t.contains("error writing message file")
        // A milter that stops answering mid-message (`milter inet:127.0.0.1:11332: can't read
        // SMFIC_BODYEOB reply packet header: Connection timed out`): its default action then
        // refuses or lets through every message.
        || (t.starts_with("milter ")
            && has(
                t,
                &[
                    "can't read",
                    "unexpected eof",
                    "bad packet",
                    "can't send",
                    // Pointed at a port that does not speak the milter protocol, or dead.
                    "unreasonable packet length",
                    "read error",
                    "write error",
                ],
            ))
}

/// A table Postfix cannot open (`hash:/etc/postfix/transport is unavailable. open database
/// ...`, `mysql:/etc/postfix/mysql-virtual.cf is unavailable. open /etc/...: Permission
/// denied`): dict_surrogate's `TYPE:NAME is unavailable. REASON`, whatever the reason names.
fn map_unavailable(t: &str) -> bool {
    let Some((head, _)) = t.split_once(" is unavailable. ") else {
        return t.contains(" is unavailable") && t.contains("open database");
    };
    head.split_once(':').is_some_and(|(kind, _)| {
        !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// A local caller's mistake, which sendmail(1) and postfix(1) end with `fatal:` and exit status
/// EX_USAGE: `Recipient addresses must be specified on the command line or via the -t option`
/// (PHP's mail() with a sendmail_path without -t), `usage: sendmail [options]`; or a command that
/// had nothing to do (`postfix start` while it runs). The mail system is fine; the caller is
/// not. `t` is lowercase.
fn caller_usage_error(t: &str) -> bool {
    t.starts_with("usage: ")
        || has(
            t,
            &[
                "recipient addresses must be specified on the command line",
                "no recipient addresses found in message header",
                "requires no recipient",
                "can be used only in delivery mode",
                "cannot be used with -bv",
                "command is reserved for the superuser",
                // `postfix start` while it runs (postfix-script): nothing was changed.
                "mail system is already running",
            ],
        )
}
