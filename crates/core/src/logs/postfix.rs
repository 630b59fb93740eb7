//! Postfix message grammar: the text after `postfix/<service>[pid]: `. Owns smtpd, postscreen,
//! cleanup, qmgr, pickup, the delivery agents (smtp, lmtp, local, virtual, pipe, error, retry,
//! discard), bounce/defer/trace notifications, trivial-rewrite and the warning/error/fatal
//! lines. Does not interpret reasons (that is `core::diagnosis`).
//!
//! Return convention: `None` = not understood (the caller counts it as unknown);
//! `Some(None)` = understood but carries nothing flowtest needs; `Some(Some(ev))` = an event.

use super::scan::{self, field, find, rfind, split_once, starts_with, strip_prefix, LineText};
use super::{
    Delays, Delivery, DeliveryStatus, Event, EventText, ExpiredRcpt, MapLookup, MapProblem, Reject,
    Severity,
};

const SERVICES: &[&[u8]] = &[
    b"smtpd",
    b"postscreen",
    b"cleanup",
    b"qmgr",
    b"oqmgr",
    b"smtp",
    b"lmtp",
    b"local",
    b"virtual",
    b"pipe",
    b"error",
    b"retry",
    b"discard",
    b"bounce",
    b"defer",
    b"trace",
    b"trivial-rewrite",
    b"pickup",
    b"master",
    b"anvil",
    b"scache",
    b"tlsmgr",
    b"postlogd",
    b"postfix-script",
    b"sendmail",
    b"postsuper",
    b"verify",
    b"proxymap",
    b"tlsproxy",
    b"dnsblog",
    b"showq",
    b"flush",
    b"spawn",
    b"postdrop",
    b"postqueue",
    b"postmap",
    b"postmulti",
    b"postconf",
    b"relay",
    b"submission",
];

pub(crate) fn is_service(name: &[u8]) -> bool {
    SERVICES.contains(&name)
}

/// Informational lines without a queue id, by prefix. Recognized, not needed. Looked at in
/// order: the lines of every connection (smtpd's and postscreen's) come first.
const INFO_PREFIXES: &[&[u8]] = &[
    b"connect from ",
    b"disconnect from ",
    b"CONNECT from ",
    b"PASS OLD ",
    b"PASS NEW ",
    b"lost connection after ",
    b"timeout after ",
    b"too many errors after ",
    b"Anonymous TLS connection established",
    b"Trusted TLS connection established",
    b"Untrusted TLS connection established",
    b"Verified TLS connection established",
    // Before Postfix 2.5: `TLS connection established from HOST[IP]: TLSv1 with cipher ...`.
    b"TLS connection established ",
    b"SSL_accept error",
    b"SSL_connect error",
    b"improper command pipelining",
    b"statistics: ",
    b"setting up TLS connection",
    b"TLS SNI",
    b"DISCONNECT ",
    b"HANGUP ",
    b"PREGREET ",
    b"DNSBL rank ",
    b"BARE NEWLINE ",
    b"NON-SMTP COMMAND ",
    b"COMMAND ",
    b"WHITELISTED ",
    b"BLACKLISTED ",
    b"ALLOWLISTED ",
    b"DENYLISTED ",
    b"cache ",
    b"daemon started",
    b"reload ",
    b"reload --",
    b"terminating on signal",
    b"starting the Postfix mail system",
    b"stopping the Postfix mail system",
    b"refreshing the Postfix mail system",
    b"waiting on ",
    b"connect to ",
    b"Host offered STARTTLS",
    b"host ",
    b"AUTH command ",
    b"SASL ",
    b"dict_",
    b"table ",
    b"exiting",
    b"postfix/",
    b"mail system is ",
    // dnsblog: `addr 192.0.2.7 listed by domain zen.example as 127.0.0.2`.
    b"addr ",
    b"WHITELIST VETO ",
    b"ALLOWLIST VETO ",
    // postsuper's summaries (`Deleted: 3 messages`).
    b"Deleted: ",
    b"Requeued: ",
    b"Placed on hold: ",
    b"Released from hold: ",
    b"Force-expired: ",
    // The smtp client's TLS check before any message (with a queue id it is an attempt's detail),
    // and smtpd's of a client certificate; Postfix 3 names the peer's role first.
    b"certificate verification failed for ",
    b"server certificate verification failed for ",
    b"client certificate verification failed for ",
    b"bare <LF> received",
    b"discarding EHLO keywords: ",
    // postscreen under load: shorter timeouts until the connections fall again.
    b"entering STRESS mode ",
    b"leaving STRESS mode ",
    // Postfix 3's compatibility notice at start (postfix(1) and daemons): `Postfix is running
    // with backwards-compatible default settings`, `See http://www.postfix.org/COMPATIBILITY_
    // README.html for details`, `To disable backwards compatibility use "postconf ..."`.
    b"Postfix is running with backwards-compatible",
    b"Postfix is using backwards-compatible",
    b"See http://www.postfix.org/COMPATIBILITY_README.html",
    b"To disable backwards compatibility use",
    // A daemon's notice that it acted on such a default: `using backwards-compatible default
    // setting smtputf8_enable=no to accept non-ASCII sender address ...`.
    b"using backwards-compatible default setting",
];

fn severity_prefix(msg: &[u8]) -> Option<(Severity, &[u8])> {
    // Every line asks: its first byte rules out most at once.
    if !matches!(msg.first(), Some(b'w' | b'e' | b'f' | b'p')) {
        return None;
    }
    for (p, s) in [
        (&b"warning: "[..], Severity::Warning),
        (b"error: ", Severity::Error),
        (b"fatal: ", Severity::Fatal),
        (b"panic: ", Severity::Panic),
    ] {
        if let Some(rest) = strip_prefix(msg, p) {
            return Some((s, rest));
        }
    }
    None
}

/// `QID: rest` at the start of `msg`.
fn split_qid(msg: &[u8]) -> Option<(&[u8], &[u8])> {
    // A queue id is alphanumerics up to the first `: `: counting them first stops most other
    // lines (`connect from ...`) within a few bytes.
    let n = scan::alnum_len(msg);
    let rest = msg[n..].strip_prefix(b": ")?;
    let q = &msg[..n];
    scan::is_queue_id(q).then_some((q, rest))
}

pub(crate) fn parse(t: LineText<'_>, service: &[u8], msg: &[u8]) -> Option<Option<Event>> {
    if let Some((sev, text)) = severity_prefix(msg) {
        return Some(Some(problem(t, service, sev, text)));
    }
    if let Some(rest) = strip_prefix(msg, b"NOQUEUE: ") {
        return noqueue(t, rest);
    }
    if let Some((qid, rest)) = split_qid(msg) {
        return with_qid(t, service, qid, rest);
    }
    if starts_with(msg, b"proxy-") {
        // A before-queue filter's verdict quoted without its `NOQUEUE: `.
        return noqueue(t, msg);
    }
    if let Some(rest) = strip_prefix(msg, b"disconnect from ") {
        return Some(disconnect(t, service, rest));
    }
    // Most lines of a busy log are these (`starts_with` compares the first byte first).
    if INFO_PREFIXES.iter().any(|p| starts_with(msg, p)) {
        return Some(None);
    }
    // postscreen turning a client away before any screening (`reject: connect from
    // [192.0.2.7]:41236: all screening ports busy`): the host is at its limit, no message
    // began.
    if starts_with(msg, b"reject: connect from ") {
        return Some(Some(Event::Problem {
            severity: Severity::Warning,
            queue_id: None,
            text: t.owned(msg),
        }));
    }
    // Asked last: only lines no other rule knows get here.
    tls_detail(service, msg).then_some(None)
}

/// The TLS library's own lines at `smtpd_tls_loglevel`/`smtp_tls_loglevel` 2 and up (and the
/// tlsmgr's): the handshake's steps, the peer's certificate and the session cache. Their
/// outcome, when it matters, is in a line of its own (`SSL_accept error from ...`, `TLS is
/// required, but ...`, a delivery's status), so they carry nothing flowtest needs; they are
/// recognized so that a log at a higher TLS level is not full of unknown lines. Formats from
/// Postfix's `src/tls` (`tls_misc.c`, `tls_server.c`, `tls_client.c`, `tls_verify.c`,
/// `tls_scache.c`, `tls_dane.c`). Kept out of line: only lines no other rule knows get here.
#[cold]
#[inline(never)]
fn tls_detail(service: &[u8], msg: &[u8]) -> bool {
    const STEPS: &[&[u8]] = &[
        b"SSL_accept:",
        b"SSL_connect:",
        b"SSL3 alert ",
        b"looking for session ",
        b"reloaded session ",
        b"save session ",
        b"remove session ",
        b"SNI data for ",
        // tls_server.c and tls_client.c at start-up, log level 2 (Postfix 3.7 in
        // docker-mailserver's logs).
        b"initializing the server-side TLS engine",
        b"initializing the client-side TLS engine",
    ];
    // After the peer (`NAME[ADDR]` for smtpd, `NAME[ADDR]:PORT` for smtp) and `: `.
    const PEER_DETAILS: &[&[u8]] = &[
        b"TLS cipher list ",
        b"Issuing session ticket",
        b"Decrypting session ticket",
        b"Reusing old session",
        b"re-using session ",
        b"depth=",
        b"subject_CN=",
        b"Matched ",
        b"matched peername: ",
        b"SNI hostname: ",
        b"looking up session ",
        b"reloaded session ",
        b"save session ",
        b"remove session ",
        b"all TLSA records unusable",
        b"all fingerprints unusable",
        b"all trust anchors unusable",
        b"cert valid despite trust init failure",
    ];
    if STEPS.iter().any(|p| starts_with(msg, p)) {
        return true;
    }
    if service == b"tlsmgr" {
        // `open smtp TLS cache btree:...`, `put smtp session id=... [data N bytes]`.
        return find(msg, b" TLS cache").is_some() || find(msg, b" session id=").is_some();
    }
    let Some(colon) = find(msg, b": ") else {
        return false;
    };
    let (peer, detail) = (&msg[..colon], &msg[colon + 2..]);
    !peer.is_empty() && !peer.contains(&b' ') && PEER_DETAILS.iter().any(|p| starts_with(detail, p))
}

/// smtpd's `disconnect from CLIENT ehlo=1 auth=0/2 quit=1 commands=2/4`: an AUTH that never
/// succeeded (`auth=0/N`, N > 0), else a transaction left before DATA (a recipient accepted,
/// `rcpt=1` or `rcpt=1/2`, and no `data=` nor `bdat=`), is an event; any other disconnect
/// carries nothing. (Recipients all refused, `rcpt=0/1`, leave no queue entry behind, or one
/// whose reject names it.) smtpd writes the counters in its command table's order, where DATA
/// and BDAT follow RCPT.
fn disconnect(t: LineText<'_>, service: &[u8], rest: &[u8]) -> Option<Event> {
    if service != b"smtpd" && service != b"submission" {
        return None;
    }
    let client = &rest[..rest.iter().position(|&c| c == b' ')?];
    let Some(at) = find(rest, b" auth=0/") else {
        let after = &rest[find(rest, b" rcpt=")? + 6..];
        let accepted = after
            .first()
            .is_some_and(|&c| c.is_ascii_digit() && c != b'0');
        let next = after
            .iter()
            .position(|&c| c == b' ')
            .map_or(&b""[..], |i| &after[i + 1..]);
        let data = next.starts_with(b"data=") || next.starts_with(b"bdat=");
        return (accepted && !data).then(|| Event::TransactionAbandoned {
            client: t.owned(client),
        });
    };
    let digits = &rest[at + 8..];
    let end = digits
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let attempts: u32 = std::str::from_utf8(&digits[..end]).ok()?.parse().ok()?;
    (attempts > 0).then(|| Event::AuthNeverSucceeded {
        client: t.owned(client),
        attempts,
    })
}

fn problem(t: LineText<'_>, service: &[u8], severity: Severity, text: &[u8]) -> Event {
    // smtpd: `warning: unknown[1.2.3.4]: SASL LOGIN authentication failed: UGFzc3dvcmQ6`
    if service == b"smtpd" || service == b"submission" {
        if let Some(at) = find(text, b": SASL ") {
            let after = &text[at + 7..];
            if let Some(m_end) = find(after, b" authentication failed") {
                let reason = split_once(after, b"authentication failed: ")
                    .map(|(_, r)| r)
                    .unwrap_or(b"");
                return Event::SaslAuthFailed {
                    client: t.owned(&text[..at]),
                    mechanism: t.owned(&after[..m_end]),
                    reason: t.owned(reason),
                };
            }
        }
    }
    // `warning: QID: text` (cleanup's map lookup problems): the text without the queue id, as
    // for `QID: warning: text`.
    let (queue_id, text) = match split_qid(text) {
        Some((q, rest)) => (Some(t.owned(q)), rest),
        None => (None, text),
    };
    Event::Problem {
        severity,
        queue_id,
        text: t.owned(text),
    }
}

/// `[MAP: KEY ]MAP map lookup problem[ for KEY][ -- REASON]` or
/// `unreasonable MAP map nesting for KEY[ -- REASON]` (see [`MapLookup`]).
pub(crate) fn map_lookup(text: &str) -> Option<MapLookup<'_>> {
    let (head, kind, tail) = if let Some((h, t)) = text.split_once(" map lookup problem") {
        (h, MapProblem::LookupFailed, t)
    } else if let Some((h, t)) = text.split_once(" map nesting") {
        (h.strip_prefix("unreasonable ")?, MapProblem::Nesting, t)
    } else if let Some((h, t)) = text.split_once(" map expansion size") {
        (h.strip_prefix("unreasonable ")?, MapProblem::Expansion, t)
    } else {
        // `unreasonable MAP result VALUE -- REASON`: the value, not a key, follows.
        let (h, t) = text.strip_prefix("unreasonable ")?.split_once(" result ")?;
        let reason_at = t.find(" -- ").unwrap_or(t.len());
        (h, MapProblem::Expansion, &t[reason_at..])
    };
    let (tail, reason) = match tail.split_once(" -- ") {
        Some((t, r)) => (t, Some(r.trim()).filter(|r| !r.is_empty())),
        None => (tail, None),
    };
    let mut key = tail
        .trim()
        .strip_prefix("for ")
        .map(str::trim)
        .filter(|k| !k.is_empty());
    // tlsmgr/smtpd: `tls_server_sni_maps: mail.example.com map lookup problem`.
    let map = match head.split_once(": ") {
        Some((m, k)) if key.is_none() => {
            key = Some(k.trim()).filter(|k| !k.is_empty());
            m
        }
        _ => head,
    };
    let map = map.trim();
    if map.is_empty() || map.contains(' ') {
        return None;
    }
    Some(MapLookup {
        map,
        key,
        reason,
        kind,
    })
}

/// Where a REDIRECT action sent the message: smtpd's `... triggers REDIRECT x@y; from=<...>`,
/// or cleanup's check whose target follows the line's last `: ` (`header Subject: a: b from
/// host[ip]; from=<...> helo=<h>: x@y`). `None` when no address-like target is there.
fn redirect_target(body: &[u8]) -> Option<&[u8]> {
    let target = match scan::find(body, b"triggers REDIRECT ") {
        Some(at) => {
            let v = &body[at + 18..];
            &v[..memchr::memchr(b';', v).unwrap_or(v.len())]
        }
        None => &body[scan::rfind(body, b": ")? + 2..],
    };
    let target = scan::trim(target);
    (!target.is_empty() && !target.contains(&b' ') && target.contains(&b'@')).then_some(target)
}

/// A reject/milter-reject/discard/hold/defer action line: the action's name and what follows.
fn reject_action(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    for action in [
        &b"reject: "[..],
        b"milter-reject: ",
        b"discard: ",
        b"hold: ",
        b"defer: ",
        // A milter's DISCARD and HOLD (cleanup), and a before-queue content filter's refusal
        // (`smtpd_proxy_filter`): `proxy-reject: END-OF-MESSAGE: 554 5.7.0 text; from=<...>`.
        b"milter-discard: ",
        b"milter-hold: ",
        b"proxy-reject: ",
    ] {
        if let Some(body) = strip_prefix(rest, action) {
            return Some((&action[..action.len() - 2], body));
        }
    }
    None
}

fn noqueue(t: LineText<'_>, rest: &[u8]) -> Option<Option<Event>> {
    if let Some((action, body)) = reject_action(rest) {
        return Some(Some(Event::Reject(Box::new(reject(
            t, None, action, body,
        )?))));
    }
    for info in [
        &b"warn: "[..],
        b"filter: ",
        b"redirect: ",
        b"lost connection",
        // `warn_if_reject`: what would have been refused, and was not.
        b"reject_warning: ",
        // The before-queue filter took the message; its own queue id follows in this log.
        b"proxy-accept: ",
        // The before-queue smtpd's client, with a before-queue filter: the queue file (and
        // its `QID: client=`) is the after-filter smtpd's.
        b"client=",
    ] {
        if starts_with(rest, info) {
            return Some(None);
        }
    }
    None
}

fn with_qid(t: LineText<'_>, service: &[u8], qid: &[u8], rest: &[u8]) -> Option<Option<Event>> {
    let queue_id = || t.owned(qid);
    if let Some((sev, text)) = severity_prefix(rest) {
        return Some(qid_problem(t, qid, sev, text));
    }
    if rest == b"removed" {
        return Some(Some(Event::Removed {
            queue_id: queue_id(),
        }));
    }
    if let Some(v) = strip_prefix(rest, b"client=") {
        let (client, tail) = match memchr::memchr(b',', v) {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, &b""[..]),
        };
        return Some(Some(Event::Client {
            queue_id: queue_id(),
            client: t.owned(client),
            sasl_username: field(tail, b"sasl_username=").map(|v| t.owned(v)),
        }));
    }
    if let Some(v) = strip_prefix(rest, b"message-id=") {
        return Some(Some(Event::MessageId {
            queue_id: queue_id(),
            message_id: t.owned(scan::trim(v)),
        }));
    }
    if starts_with(rest, b"resent-message-id=") {
        return Some(None);
    }
    if let Some((action, body)) = reject_action(rest) {
        return Some(Some(Event::Reject(Box::new(reject(
            t,
            Some(queue_id()),
            action,
            body,
        )?))));
    }
    if rest == b"placed on hold" {
        return Some(Some(held_by_hand(queue_id())));
    }
    if rest == b"released from hold" {
        return Some(Some(Event::Released {
            queue_id: queue_id(),
        }));
    }
    if let Some(ev) = qid_info(t, qid, rest) {
        return Some(ev);
    }
    if starts_with(rest, b"from=") {
        let [from, size, nrcpt] = scan::fields(rest, [b"from=", b"size=", b"nrcpt="]);
        // The status follows the sender's address, which may hold any of its words.
        let after_from = from.map_or(&rest[..0], |v| scan::after(rest, v));
        let from = from.map(|v| t.owned(v)).unwrap_or_default();
        if let Some((st, forced)) = expiry_status(after_from) {
            return Some(Some(Event::Expired {
                queue_id: queue_id(),
                from,
                rcpt: None,
                returned_to_sender: returned_to_sender(&after_from[st..]),
                forced,
            }));
        }
        return Some(Some(Event::QueueActive {
            queue_id: queue_id(),
            from,
            size: size.and_then(scan::parse_u64),
            nrcpt: nrcpt
                .and_then(scan::parse_u64)
                .and_then(|n| u32::try_from(n).ok()),
        }));
    }
    if let Some(v) = strip_prefix(rest, b"uid=") {
        let from = field(v, b"from=").map(|v| t.owned(v)).unwrap_or_default();
        return Some(Some(Event::Pickup {
            queue_id: queue_id(),
            from,
        }));
    }
    if starts_with(rest, b"to=") {
        return to_line(t, service, qid, rest).map(Some);
    }
    if let Some(forced) = strip_prefix(rest, b"status=").and_then(expiry_word) {
        return Some(Some(Event::Expired {
            queue_id: queue_id(),
            from: EventText::default(),
            rcpt: None,
            returned_to_sender: returned_to_sender(rest),
            forced,
        }));
    }
    if let Some(at) = find(rest, b" notification: ") {
        let next = scan::alnum_token(&rest[at + 15..]);
        if scan::is_queue_id(next) {
            return Some(Some(Event::Notification {
                queue_id: queue_id(),
                kind: t.owned(&rest[..at]),
                notice_queue_id: t.owned(next),
            }));
        }
    }
    ATTEMPT_DETAILS
        .iter()
        .any(|d| starts_with(rest, d))
        .then(|| {
            Some(Event::AttemptDetail {
                queue_id: queue_id(),
                text: t.owned(rest),
            })
        })
}

/// The lines after `QID: ` that tell of an action on the message and carry at most its
/// redirection or a TLS attempt's detail (`warn:`, `filter:`, `redirect:`, a milter's header
/// check, ...): `Some(event)` when `rest` is one of them.
#[inline]
fn qid_info(t: LineText<'_>, qid: &[u8], rest: &[u8]) -> Option<Option<Event>> {
    for info in [
        &b"warn: "[..],
        b"filter: ",
        b"redirect: ",
        b"replace: ",
        b"info: ",
        b"prepend: ",
        b"skipped, still being delivered",
        b"requeued",
        // `enabling PIX workarounds: ...`; before Postfix 2.2 `enabling PIX <CRLF>.<CRLF>
        // workaround for HOST`.
        b"enabling PIX ",
        // smtp(8) after a server lost a pipelined transaction: `enabling PIPELINING workaround
        // for HOST[ADDR]:PORT`, the message is retried without pipelining.
        b"enabling PIPELINING workaround",
        b"breaking line",
        b"reject_warning: ",
        b"proxy-accept: ",
        // A milter's header or body check that replaces or prepends: the message goes on; one
        // that redirects (`milter-header-redirect: header X-Spam: yes ...: target`) is read
        // as `redirect:` is.
        b"milter-header-",
        b"milter-body-",
        b"Cannot start TLS",
    ] {
        if starts_with(rest, info) {
            if info == b"Cannot start TLS" {
                return Some(Some(Event::AttemptDetail {
                    queue_id: t.owned(qid),
                    text: t.owned(rest),
                }));
            }
            // A milter's header or body check's REDIRECT goes where `redirect:`'s does.
            let redirect = [&b"milter-header-redirect: "[..], b"milter-body-redirect: "]
                .iter()
                .find(|r| starts_with(rest, r))
                .map_or(info.len(), |r| r.len());
            if info == b"redirect: " || redirect > info.len() {
                return Some(
                    redirect_target(&rest[redirect..]).map(|to| Event::Redirected {
                        queue_id: t.owned(qid),
                        to: t.owned(to),
                    }),
                );
            }
            return Some(None);
        }
    }
    None
}

/// How an smtp/lmtp client's per-attempt line after `QID: ` starts.
const ATTEMPT_DETAILS: [&[u8]; 9] = [
    b"lost connection with ",
    b"conversation with ",
    b"host ",
    b"SASL authentication failed",
    b"TLS is required",
    b"Server certificate not verified",
    b"Server certificate not trusted",
    b"certificate verification failed",
    // smtp(8)'s per-server skip (`QID: local data error while talking to X`): it tries the
    // next MX.
    b"local data error while talking to ",
];

/// `QID: warning: TEXT` and its kin. A header or body check's WARN action (`QID: warning:
/// header Subject: ... from host[ip]; from=<x> to=<y> ...: text`, cleanup's and smtp(8)'s) is
/// the message's own header, logged as asked, not a problem of the host; other lines (cleanup's
/// map lookup problems and friends) are.
fn qid_problem(t: LineText<'_>, qid: &[u8], severity: Severity, text: &[u8]) -> Option<Event> {
    if severity == Severity::Warning && CONTENT_CHECK_WARNINGS.iter().any(|w| starts_with(text, w))
    {
        return None;
    }
    Some(Event::Problem {
        severity,
        queue_id: Some(t.owned(qid)),
        text: t.owned(text),
    })
}

/// What a header or body check's WARN action writes after `QID: warning: `.
const CONTENT_CHECK_WARNINGS: [&[u8]; 4] =
    [b"header ", b"body ", b"mime-header ", b"nested-header "];

/// `postsuper -h`: a message held by hand, as a HOLD rule would have.
fn held_by_hand(queue_id: EventText) -> Event {
    Event::Reject(Box::new(Reject {
        queue_id: Some(queue_id),
        action: EventText::const_new("hold"),
        stage: EventText::default(),
        client: None,
        code: None,
        dsn: None,
        reason: EventText::const_new("placed on hold (postsuper -h)"),
        from: None,
        to: None,
        helo: None,
    }))
}

fn parse_status(word: &[u8]) -> DeliveryStatus {
    match word {
        b"sent" => DeliveryStatus::Sent,
        b"deferred" => DeliveryStatus::Deferred,
        b"bounced" => DeliveryStatus::Bounced,
        // `undeliverable-but-not-cached`: a verification probe whose answer was not kept.
        b"deliverable" | b"undeliverable" | b"undeliverable-but-not-cached" => {
            DeliveryStatus::Verify
        }
        _ => DeliveryStatus::Other,
    }
}

fn parse_delays(v: &[u8]) -> Option<Delays> {
    let mut it = v.split(|&c| c == b'/');
    let a = scan::seconds_to_ms(it.next()?)?;
    let b = scan::seconds_to_ms(it.next()?)?;
    let c = scan::seconds_to_ms(it.next()?)?;
    let d = scan::seconds_to_ms(it.next()?)?;
    if it.next().is_some() {
        return None;
    }
    Some(Delays {
        before_qmgr_ms: a,
        in_qmgr_ms: b,
        conn_setup_ms: c,
        transmission_ms: d,
    })
}

fn returned_to_sender(status_text: &[u8]) -> bool {
    find(status_text, b"returned to sender").is_some()
}

/// Where a queue manager's `status=expired` (the queue's lifetime is over) or `status=force-
/// expired` (Postfix 3.5+: `postsuper -e` or `-f`) starts in `rest`, and whether it was forced.
/// One search for `status=` (a sender's line has none), each hit's word then compared.
fn expiry_status(rest: &[u8]) -> Option<(usize, bool)> {
    let mut from = 0;
    while let Some(at) = rest.get(from..).and_then(|r| find(r, b"status=")) {
        let at = from + at;
        let word = rest.get(at + b"status=".len()..).unwrap_or_default();
        if let Some(forced) = expiry_word(word) {
            return Some((at, forced));
        }
        from = at + 1;
    }
    None
}

/// `Some(forced)` when `s` starts with an expiry's status word.
fn expiry_word(s: &[u8]) -> Option<bool> {
    if starts_with(s, b"expired") {
        Some(false)
    } else if starts_with(s, b"force-expired") {
        Some(true)
    } else {
        None
    }
}

/// A recipient's status word that ends its retries: `expired` or `force-expired`.
fn is_expiry(word: &[u8]) -> bool {
    word == b"expired" || word == b"force-expired"
}

/// The recipient fields of a `to=` line (before `status=`), found in one pass.
struct RcptFields<'a> {
    to: &'a [u8],
    orig_to: Option<&'a [u8]>,
    relay: Option<&'a [u8]>,
    delay: Option<&'a [u8]>,
    delays: Option<&'a [u8]>,
    dsn: Option<&'a [u8]>,
}

impl<'a> RcptFields<'a> {
    fn of(fields: &'a [u8]) -> Option<Self> {
        let keys: [&[u8]; 6] = [
            b"to=",
            b"orig_to=",
            b"relay=",
            b"delay=",
            b"delays=",
            b"dsn=",
        ];
        let [to, orig_to, relay, delay, delays, dsn] = scan::fields(fields, keys);
        Some(RcptFields {
            to: to?,
            orig_to,
            relay,
            delay,
            delays,
            dsn,
        })
    }
}

/// A `to=<...>, ..., status=WORD ...` line: a delivery attempt, or the recipient's expiry.
fn to_line(t: LineText<'_>, service: &[u8], qid: &[u8], rest: &[u8]) -> Option<Event> {
    let st = find(rest, b"status=")?;
    let after = &rest[st + 7..];
    let word_end = after
        .iter()
        .position(|&c| c == b' ' || c == b',')
        .unwrap_or(after.len());
    let word = &after[..word_end];
    let tail = &after[word_end..];
    let f = RcptFields::of(&rest[..st])?;
    let reason = match memchr::memchr(b'(', tail) {
        Some(open) => {
            let inner = &tail[open + 1..];
            let close = memchr::memrchr(b')', inner).unwrap_or(inner.len());
            &inner[..close]
        }
        None if is_expiry(word) => b"",
        None => scan::trim(tail),
    };
    if is_expiry(word) {
        return Some(Event::Expired {
            queue_id: t.owned(qid),
            from: EventText::default(),
            rcpt: Some(Box::new(ExpiredRcpt {
                to: t.owned(f.to),
                orig_to: f.orig_to.map(|v| t.owned(v)),
                relay: f.relay.map(|v| t.owned(v)),
                delay_ms: f.delay.and_then(scan::seconds_to_ms),
                dsn: f.dsn.map(|v| t.owned(v)),
                reason: t.owned(reason),
            })),
            returned_to_sender: returned_to_sender(tail),
            forced: word == b"force-expired",
        });
    }
    let status = parse_status(word);
    Some(Event::Delivery(Box::new(delivery(
        t, service, qid, &f, status, reason,
    ))))
}

fn delivery(
    t: LineText<'_>,
    service: &[u8],
    qid: &[u8],
    f: &RcptFields<'_>,
    status: DeliveryStatus,
    reason: &[u8],
) -> Delivery {
    // The next queue id: the next hop's `250 ... queued as QID`, or local(8)'s `forwarded as
    // QID` (an alias or .forward re-injected on this host).
    let next = find(reason, b"queued as ").map(|i| i + 10).or_else(|| {
        (service == b"local")
            .then(|| find(reason, b"forwarded as ").map(|i| i + 13))
            .flatten()
    });
    let queued_as = next.and_then(|i| {
        let q = scan::alnum_token(&reason[i..]);
        let q = q.strip_suffix(b")").unwrap_or(q);
        (q.len() >= 3 && q.iter().all(u8::is_ascii_alphanumeric)).then(|| t.owned(q))
    });
    Delivery {
        queue_id: t.owned(qid),
        service: t.owned(service),
        to: t.owned(f.to),
        orig_to: f.orig_to.map(|v| t.owned(v)),
        relay: f.relay.map(|v| t.owned(v)),
        delay_ms: f.delay.and_then(scan::seconds_to_ms),
        delays: f.delays.and_then(parse_delays),
        dsn: f.dsn.map(|v| t.owned(v)),
        status,
        lmtp_session: if status == DeliveryStatus::Sent {
            lmtp_session(t, reason)
        } else {
            None
        },
        reason: t.owned(reason),
        queued_as,
    }
}

/// Dovecot's LMTP reply `250 2.0.0 <rcpt> SESSION Saved` carries the session id.
fn lmtp_session(t: LineText<'_>, reason: &[u8]) -> Option<EventText> {
    let gt = find(reason, b"> ")?;
    let rest = &reason[gt + 2..];
    let tok = scan::alnum_token(rest);
    let after = rest.get(tok.len()..)?;
    if tok.len() >= 8 && after.starts_with(b" Saved") {
        Some(t.owned(tok))
    } else {
        None
    }
}

/// Parse an SMTP reply `554 5.7.1 text` at the start of `b`: (code, enhanced, text).
pub(crate) fn split_reply(b: &[u8]) -> (Option<u16>, Option<&[u8]>, &[u8]) {
    let b = scan::trim(b);
    let mut code = None;
    let mut rest = b;
    if b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && matches!(b.get(3), None | Some(b' ') | Some(b'-'))
    {
        code = scan::parse_u64(&b[..3]).and_then(|c| u16::try_from(c).ok());
        rest = b.get(4..).unwrap_or(&[]);
    }
    let tok_end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    let tok = &rest[..tok_end];
    let is_enh = tok.len() >= 5
        && matches!(tok.first(), Some(b'2' | b'4' | b'5'))
        && tok.get(1) == Some(&b'.')
        && tok.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && tok.iter().filter(|&&c| c == b'.').count() == 2;
    if is_enh {
        (code, Some(tok), scan::trim(&rest[tok_end..]))
    } else {
        (code, None, rest)
    }
}

fn reject(
    t: LineText<'_>,
    queue_id: Option<EventText>,
    action: &[u8],
    body: &[u8],
) -> Option<Reject> {
    let stage_end = memchr::memchr(b' ', body)?;
    let stage = &body[..stage_end];
    let after_stage = &body[stage_end + 1..];
    // `content`: message_reject_characters / message_strip_characters, as cleanup checks them.
    if stage == b"header" || stage == b"body" || stage == b"content" {
        // `header Subject: x from host[ip]; from=<a> to=<b> proto=ESMTP helo=<h>: 5.7.1 text`
        let fields_at = rfind(after_stage, b"; from=<").unwrap_or(after_stage.len());
        let (client, fields) = {
            let head = &after_stage[..fields_at];
            let client = rfind(head, b" from ").map(|i| t.owned(&head[i + 6..]));
            (client, &after_stage[fields_at..])
        };
        let reply_at = find(fields, b">: ").map(|i| i + 3);
        let reply = reply_at.map(|i| &fields[i..]).unwrap_or(b"");
        let (code, dsn, text) = split_reply(reply);
        let [from, to, helo] = scan::fields(fields, [b"from=", b"to=", b"helo="]);
        return Some(Reject {
            queue_id,
            action: t.owned(action),
            stage: t.owned(stage),
            client,
            code,
            dsn: dsn.map(|v| t.owned(v)),
            reason: t.owned(if text.is_empty() { reply } else { text }),
            from: from.map(|v| t.owned(v)),
            to: to.map(|v| t.owned(v)),
            helo: helo.map(|v| t.owned(v)),
        });
    }
    // A before-queue content filter's reply has no client: `END-OF-MESSAGE: 554 5.7.0 text;
    // from=<a> to=<b> proto=ESMTP helo=<h>`.
    if let Some(stage) = stage.strip_suffix(b":") {
        return Some(reply_reject(t, queue_id, action, stage, None, after_stage));
    }
    // `RCPT from host[ip]: 554 5.7.1 <x>: text; from=<a> to=<b> proto=ESMTP helo=<h>`
    // postscreen: `RCPT from [ip]:port: 550 5.7.1 text; from=<a>, to=<b>, proto=ESMTP, helo=<h>`
    let after_from = strip_prefix(after_stage, b"from ")?;
    let close = memchr::memchr(b']', after_from)?;
    let mut cend = close + 1;
    if after_from.get(cend) == Some(&b':') {
        let digits = after_from[cend + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits > 0 {
            cend += 1 + digits;
        }
    }
    let client = &after_from[..cend];
    let tail = strip_prefix(&after_from[cend..], b": ").unwrap_or(&after_from[cend..]);
    Some(reply_reject(t, queue_id, action, stage, Some(client), tail))
}

/// A reject whose `tail` is the reply, then the envelope fields: `554 5.7.1 text; from=<a>
/// to=<b> proto=ESMTP helo=<h>`.
fn reply_reject(
    t: LineText<'_>,
    queue_id: Option<EventText>,
    action: &[u8],
    stage: &[u8],
    client: Option<&[u8]>,
    tail: &[u8],
) -> Reject {
    // `from=` is left out before MAIL FROM (a VRFY, an early RCPT), `to=` before RCPT.
    let fields_at = rfind(tail, b"; from=<")
        .or_else(|| rfind(tail, b"; to=<"))
        .or_else(|| rfind(tail, b"; proto="))
        .unwrap_or(tail.len());
    let reply = &tail[..fields_at];
    let fields = &tail[fields_at..];
    let (code, dsn, text) = split_reply(reply);
    let [from, to, helo] = scan::fields(fields, [b"from=", b"to=", b"helo="]);
    Reject {
        queue_id,
        action: t.owned(action),
        stage: t.owned(stage),
        client: client.map(|c| t.owned(c)),
        code,
        dsn: dsn.map(|v| t.owned(v)),
        reason: t.owned(text),
        from: from.map(|v| t.owned(v)),
        to: to.map(|v| t.owned(v)),
        helo: helo.map(|v| t.owned(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grammar on `msg` alone, as a whole line.
    fn parse(service: &[u8], msg: &[u8]) -> Option<Option<Event>> {
        super::parse(LineText::check(msg), service, msg)
    }

    fn ev(service: &str, msg: &str) -> Event {
        parse(service.as_bytes(), msg.as_bytes())
            .unwrap_or_else(|| panic!("unknown: {msg}"))
            .unwrap_or_else(|| panic!("info: {msg}"))
    }

    #[test]
    fn delivery_sent_with_next_queue_id() {
        let e = ev(
            "smtp",
            "4dJHx72Wm3z1: to=<alice@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.52, \
             delays=0.01/0/0.3/0.21, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9F1C2A0B4D)",
        );
        let Event::Delivery(d) = e else { panic!() };
        assert_eq!(d.to, "alice@corp.test");
        assert_eq!(d.relay.as_deref(), Some("100.64.0.2[100.64.0.2]:2525"));
        assert_eq!(d.delay_ms, Some(520));
        assert_eq!(
            d.delays,
            Some(Delays {
                before_qmgr_ms: 10,
                in_qmgr_ms: 0,
                conn_setup_ms: 300,
                transmission_ms: 210
            })
        );
        assert_eq!(d.status, DeliveryStatus::Sent);
        assert_eq!(d.queued_as.as_deref(), Some("9F1C2A0B4D"));
        assert_eq!(d.reason, "250 2.0.0 Ok: queued as 9F1C2A0B4D");
    }

    #[test]
    fn lmtp_session_and_deferral() {
        let Event::Delivery(d) = ev(
            "lmtp",
            "9F1C2A0B4D: to=<alice@corp.test>, relay=dell.corp.test[private/dovecot-lmtp], \
             delay=0.03, delays=0.01/0/0/0.02, dsn=2.0.0, status=sent (250 2.0.0 \
             <alice@corp.test> Zq0gHlsHamU6BwAAWjKm6A Saved)",
        ) else {
            panic!()
        };
        assert_eq!(d.lmtp_session.as_deref(), Some("Zq0gHlsHamU6BwAAWjKm6A"));
        let Event::Delivery(d) = ev(
            "smtp",
            "4dJHx72Wm3z1: to=<alice@corp.test>, relay=none, delay=31, delays=0.01/0/31/0, \
             dsn=4.4.1, status=deferred (connect to 100.64.0.2[100.64.0.2]:2525: Connection refused)",
        ) else {
            panic!()
        };
        assert_eq!(d.status, DeliveryStatus::Deferred);
        assert_eq!(
            d.reason,
            "connect to 100.64.0.2[100.64.0.2]:2525: Connection refused"
        );
        assert_eq!(d.dsn.as_deref(), Some("4.4.1"));
        assert_eq!(d.queued_as, None);
    }

    #[test]
    fn a_before_queue_filter_s_refusal_and_acceptance() {
        // `smtpd_proxy_filter`: the filter's reply has no client part.
        for prefix in ["NOQUEUE: ", "3F5E8D5A1: ", ""] {
            let line = format!(
                "{prefix}proxy-reject: END-OF-MESSAGE: 554 5.7.0 Rejected as spam, see \
                 postmaster@corp.test; from=<a@provider.test> to=<dave@corp.test> proto=ESMTP \
                 helo=<mx.provider.test>"
            );
            let Event::Reject(r) = ev("smtpd", &line) else {
                panic!("{line}")
            };
            assert_eq!(r.action, "proxy-reject");
            assert_eq!(r.stage, "END-OF-MESSAGE");
            assert_eq!(r.client, None);
            assert_eq!((r.code, r.dsn.as_deref()), (Some(554), Some("5.7.0")));
            assert_eq!(r.reason, "Rejected as spam, see postmaster@corp.test");
            assert_eq!(r.from.as_deref(), Some("a@provider.test"));
            assert_eq!(r.to.as_deref(), Some("dave@corp.test"));
            assert_eq!(r.helo.as_deref(), Some("mx.provider.test"));
        }
        // The filter took it: its own queue id carries the message on in this log.
        assert_eq!(
            parse(
                b"smtpd",
                b"NOQUEUE: proxy-accept: END-OF-MESSAGE: 250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): \
                  250 2.0.0 Ok: queued as 9C1D2E3F4A; from=<a@provider.test> to=<dave@corp.test> \
                  proto=ESMTP helo=<mx.provider.test>"
            ),
            Some(None)
        );
    }

    #[test]
    fn a_milter_s_discard_and_hold_are_rejects_its_header_actions_are_not() {
        for (action, word) in [("milter-discard", "DISCARD"), ("milter-hold", "HOLD")] {
            let line = format!(
                "5D6E7F8A9B: {action}: END-OF-MESSAGE from mx.provider.test[198.51.100.4]: milter \
                 triggers {word} action; from=<a@provider.test> to=<dave@corp.test> proto=ESMTP \
                 helo=<mx.provider.test>"
            );
            let Event::Reject(r) = ev("cleanup", &line) else {
                panic!("{line}")
            };
            assert_eq!(r.action, action);
            assert_eq!(r.queue_id.as_deref(), Some("5D6E7F8A9B"));
            assert_eq!(r.client.as_deref(), Some("mx.provider.test[198.51.100.4]"));
            assert_eq!(r.reason, format!("milter triggers {word} action"));
            assert_eq!(r.to.as_deref(), Some("dave@corp.test"));
        }
        assert_eq!(
            parse(
                b"cleanup",
                b"5D6E7F8A9B: milter-header-redirect: header X-Spam-Flag: YES from \
                  mx.provider.test[198.51.100.4]; from=<a@provider.test> to=<dave@corp.test> \
                  proto=ESMTP helo=<mx.provider.test>: quarantine@corp.test"
            ),
            Some(Some(Event::Redirected {
                queue_id: "5D6E7F8A9B".into(),
                to: "quarantine@corp.test".into()
            }))
        );
        // A milter's header check that prepends is no redirect.
        assert_eq!(
            parse(
                b"cleanup",
                b"5D6E7F8A9B: milter-header-prepend: header X-Spam-Flag: YES from \
                  mx.provider.test[198.51.100.4]; from=<a@provider.test> to=<dave@corp.test> \
                  proto=ESMTP helo=<mx.provider.test>: X-Checked: yes"
            ),
            Some(None)
        );
    }

    #[test]
    fn a_reject_without_a_sender_splits_its_fields_where_they_start() {
        // VRFY comes before any MAIL FROM: the fields start at `to=`.
        let Event::Reject(r) = ev(
            "smtpd",
            "NOQUEUE: reject: VRFY from unknown[2001:db8::7]: 454 4.7.1 <erin@other.test>: Relay \
             access denied; to=<erin@other.test> proto=SMTP helo=<probe>",
        ) else {
            panic!()
        };
        assert_eq!(r.stage, "VRFY");
        assert_eq!(r.reason, "<erin@other.test>: Relay access denied");
        assert_eq!(r.to.as_deref(), Some("erin@other.test"));
        assert_eq!(r.helo.as_deref(), Some("probe"));
        assert_eq!(r.from, None);
        // `warn_if_reject`: a warning of what would have been refused is recognised, no event.
        assert_eq!(
            parse(
                b"smtpd",
                b"NOQUEUE: reject_warning: RCPT from mx.provider.test[198.51.100.4]: 553 5.7.1 \
                  <a@provider.test>: Sender address rejected: not owned by user bob; \
                  from=<a@provider.test> to=<dave@corp.test> proto=ESMTP helo=<mx.provider.test>"
            ),
            Some(None)
        );
    }

    #[test]
    fn lines_of_no_message_that_are_recognised() {
        for (service, msg) in [
            (
                "dnsblog",
                "addr 198.51.100.4 listed by domain zen.example as 127.0.0.2",
            ),
            (
                "dnsblog",
                "addr 2001:db8::4 listed by domain bl.example as 127.0.0.4",
            ),
            ("postscreen", "WHITELIST VETO [198.51.100.4]:40522"),
            ("postscreen", "ALLOWLIST VETO [198.51.100.4]:40523"),
            ("postsuper", "Deleted: 3 messages"),
            ("postsuper", "Requeued: 1 message"),
            ("postsuper", "Placed on hold: 2 messages"),
            ("postsuper", "Released from hold: 2 messages"),
            ("postsuper", "Force-expired: 1 message"),
            (
                "smtp",
                "certificate verification failed for mx.other.test[203.0.113.9]:25: untrusted \
                 issuer /CN=Example CA",
            ),
            (
                "smtpd",
                "bare <LF> received after DATA from mx.provider.test[198.51.100.4]",
            ),
            ("smtpd", "discarding EHLO keywords: CHUNKING"),
            (
                "smtp",
                "server certificate verification failed for gmail-smtp-in.l.google.com\
                 [142.250.1.27]:25: num=20:unable to get local issuer certificate",
            ),
            (
                "smtpd",
                "client certificate verification failed for laptop.example[192.0.2.77]: \
                 num=10:certificate has expired",
            ),
            ("postscreen", "entering STRESS mode with 70 connections"),
            ("postscreen", "leaving STRESS mode with 2 connections"),
            ("smtpd", "NOQUEUE: client=mail.example.com[192.0.2.1]"),
        ] {
            assert_eq!(
                parse(service.as_bytes(), msg.as_bytes()),
                Some(None),
                "{service}: {msg}"
            );
        }
    }

    #[test]
    fn a_verification_probe_not_cached_is_a_verification() {
        let Event::Delivery(d) = ev(
            "error",
            "7A8B9C0D1E: to=<nobody@corp.test>, relay=none, delay=0.01, \
             delays=0/0/0/0, dsn=5.1.1, status=undeliverable-but-not-cached (unknown user)",
        ) else {
            panic!()
        };
        assert_eq!(d.status, DeliveryStatus::Verify);
        assert_eq!(d.dsn.as_deref(), Some("5.1.1"));
    }

    #[test]
    fn a_queue_id_with_a_64_bit_inode_number() {
        let Event::Removed { queue_id } = ev("qmgr", "A1B2C3D4E5F60718293A4: removed") else {
            panic!()
        };
        assert_eq!(queue_id, "A1B2C3D4E5F60718293A4");
    }

    #[test]
    fn noqueue_reject_smtpd_and_postscreen() {
        let Event::Reject(r) = ev(
            "smtpd",
            "NOQUEUE: reject: RCPT from smtp.provider.test[198.18.2.2]: 554 5.7.1 <bob@other.test>: \
             Relay access denied; from=<probe@provider.test> to=<bob@other.test> proto=ESMTP \
             helo=<smtp.provider.test>",
        ) else {
            panic!()
        };
        assert_eq!(r.stage, "RCPT");
        assert_eq!(r.client.as_deref(), Some("smtp.provider.test[198.18.2.2]"));
        assert_eq!(r.code, Some(554));
        assert_eq!(r.dsn.as_deref(), Some("5.7.1"));
        assert_eq!(r.reason, "<bob@other.test>: Relay access denied");
        assert_eq!(r.from.as_deref(), Some("probe@provider.test"));
        assert_eq!(r.to.as_deref(), Some("bob@other.test"));
        assert_eq!(r.helo.as_deref(), Some("smtp.provider.test"));
        let Event::Reject(r) = ev(
            "postscreen",
            "NOQUEUE: reject: RCPT from [192.0.2.9]:51234: 550 5.7.1 Service unavailable; client \
             [192.0.2.9] blocked using zen.spamhaus.org; from=<a@b.example>, to=<c@corp.test>, \
             proto=ESMTP, helo=<x>",
        ) else {
            panic!()
        };
        assert_eq!(r.client.as_deref(), Some("[192.0.2.9]:51234"));
        assert_eq!(r.to.as_deref(), Some("c@corp.test"));
        assert_eq!(r.code, Some(550));
    }

    #[test]
    fn cleanup_header_reject_and_milter() {
        let Event::Reject(r) = ev(
            "cleanup",
            "4dJHx72Wm3z1: reject: header Subject: buy now from x.example[192.0.2.1]; \
             from=<a@x.example> to=<alice@corp.test> proto=ESMTP helo=<x.example>: 5.7.1 \
             message content rejected",
        ) else {
            panic!()
        };
        assert_eq!(r.queue_id.as_deref(), Some("4dJHx72Wm3z1"));
        assert_eq!(r.stage, "header");
        assert_eq!(r.dsn.as_deref(), Some("5.7.1"));
        assert_eq!(r.reason, "message content rejected");
        assert_eq!(r.to.as_deref(), Some("alice@corp.test"));
        let Event::Reject(r) = ev(
            "cleanup",
            "4dJHx72Wm3z1: milter-reject: END-OF-MESSAGE from x[192.0.2.1]: 5.7.1 Command \
             rejected; from=<a@x> to=<b@y> proto=ESMTP helo=<x>",
        ) else {
            panic!()
        };
        assert_eq!(r.action, "milter-reject");
        assert_eq!(r.code, None);
        assert_eq!(r.dsn.as_deref(), Some("5.7.1"));
        // message_reject_characters: the `content` check, shaped as a header check.
        let Event::Reject(r) = ev(
            "cleanup",
            "4dJHx72Wm3z2: reject: content Received: from h.example (h.example [10.0.0.1]) \
             from h.example[10.0.0.1]; from=<a@x.example> to=<alice@corp.test> proto=ESMTP \
             helo=<h.example>: 5.7.1 disallowed character",
        ) else {
            panic!()
        };
        assert_eq!(
            (r.stage.as_str(), r.reason.as_str(), r.to.as_deref()),
            ("content", "disallowed character", Some("alice@corp.test"))
        );
        assert_eq!(r.client.as_deref(), Some("h.example[10.0.0.1]"));
    }

    #[test]
    fn qmgr_cleanup_smtpd_bounce() {
        assert_eq!(
            ev(
                "qmgr",
                "ABCDEF1234: from=<a@b>, size=1234, nrcpt=1 (queue active)"
            ),
            Event::QueueActive {
                queue_id: "ABCDEF1234".into(),
                from: "a@b".into(),
                size: Some(1234),
                nrcpt: Some(1)
            }
        );
        assert_eq!(
            ev(
                "qmgr",
                "ABCDEF1234: from=<a@b>, status=expired, returned to sender"
            ),
            Event::Expired {
                queue_id: "ABCDEF1234".into(),
                from: "a@b".into(),
                rcpt: None,
                returned_to_sender: true,
                forced: false,
            }
        );
        assert_eq!(
            ev(
                "smtpd",
                "ABCDEF1234: client=x[1.2.3.4], sasl_method=PLAIN, sasl_username=alice"
            ),
            Event::Client {
                queue_id: "ABCDEF1234".into(),
                client: "x[1.2.3.4]".into(),
                sasl_username: Some("alice".into())
            }
        );
        assert_eq!(
            ev(
                "bounce",
                "ABCDEF1234: sender non-delivery notification: 0123456789"
            ),
            Event::Notification {
                queue_id: "ABCDEF1234".into(),
                kind: "sender non-delivery".into(),
                notice_queue_id: "0123456789".into()
            }
        );
        assert!(matches!(
            ev("smtpd", "warning: unknown[198.18.3.1]: SASL PLAIN authentication failed: authentication failure"),
            Event::SaslAuthFailed { ref mechanism, .. } if mechanism == "PLAIN"
        ));
        assert!(matches!(
            ev("trivial-rewrite", "warning: hash:/etc/postfix/transport is unavailable. open database /etc/postfix/transport.db: No such file or directory"),
            Event::Problem { severity: Severity::Warning, queue_id: None, .. }
        ));
    }

    #[test]
    fn local_virtual_pipe_error_and_pickup() {
        for (svc, line, status, relay) in [
            ("local", "ABCDEF1234: to=<root@mx.corp.test>, orig_to=<postmaster>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)", DeliveryStatus::Sent, "local"),
            ("virtual", "ABCDEF1234: to=<alice@corp.test>, relay=virtual, delay=0.02, delays=0.01/0/0/0.01, dsn=4.2.0, status=deferred (maildir delivery failed: create maildir file /var/mail/corp.test/alice/tmp/x: Permission denied)", DeliveryStatus::Deferred, "virtual"),
            ("pipe", "ABCDEF1234: to=<bob@corp.test>, relay=dovecot, delay=0.05, delays=0/0/0/0.05, dsn=2.0.0, status=sent (delivered via dovecot service)", DeliveryStatus::Sent, "dovecot"),
            ("error", "ABCDEF1234: to=<x@corp.test>, relay=none, delay=4, delays=0.01/4/0/0, dsn=4.3.0, status=deferred (address resolver failure)", DeliveryStatus::Deferred, "none"),
            ("smtp", "ABCDEF1234: to=<a@gmail.example>, relay=gmail-smtp-in.l.google.example[192.0.2.27]:25, delay=1.3, delays=0.01/0/0.4/0.9, dsn=5.7.26, status=bounced (host gmail-smtp-in.l.google.example[192.0.2.27] said: 550-5.7.26 Unauthenticated email is not accepted (in reply to end of DATA command))", DeliveryStatus::Bounced, "gmail-smtp-in.l.google.example[192.0.2.27]:25"),
        ] {
            let Event::Delivery(d) = ev(svc, line) else { panic!("{line}") };
            assert_eq!(d.status, status, "{line}");
            assert_eq!(d.relay.as_deref(), Some(relay));
            assert_eq!(d.service, svc);
        }
        let Event::Delivery(d) = ev("local", "ABCDEF1234: to=<root@mx.corp.test>, orig_to=<postmaster>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)") else { panic!() };
        assert_eq!(d.orig_to.as_deref(), Some("postmaster"));
        assert_eq!(
            ev("pickup", "ABCDEF1234: uid=0 from=<root>"),
            Event::Pickup {
                queue_id: "ABCDEF1234".into(),
                from: "root".into()
            }
        );
        // A header check's WARN logs the message's own header: nothing wrong with the host.
        for line in [
            "ABCDEF1234: warning: header Subject: PROBLEM: db01 /var No space left on device from local; from=<a@b> to=<c@d>: logged",
            "ABCDEF1234: warning: body line with ldap lookup error from x[192.0.2.1]; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
        ] {
            assert_eq!(parse(b"cleanup", line.as_bytes()), Some(None), "{line}");
        }
        // The SMTP client's workarounds for a broken server: nothing wrong with the message.
        for line in [
            "ABCDEF1234: enabling PIPELINING workaround for mx.example.org[192.0.2.5]:25",
            "ABCDEF1234: enabling PIX workarounds: disable_esmtp delay_dotcrlf for mx.example.org[192.0.2.5]:25",
        ] {
            assert_eq!(parse(b"smtp", line.as_bytes()), Some(None), "{line}");
        }
        // postscreen at its limit: a host problem (rate_limited), no message.
        assert!(matches!(
            ev(
                "postscreen",
                "reject: connect from [192.0.2.7]:41236: all screening ports busy"
            ),
            Event::Problem { queue_id: None, .. }
        ));
        // A REDIRECT action: smtpd's access table (the target before `; from=`), cleanup's
        // header or body check (the target after the line's last `: `, past a header text
        // with colons of its own); without an address-like target, nothing to follow.
        for (service, line, to) in [
            (
                "smtpd",
                "4A1B2C3D4F: redirect: RCPT from unknown[192.0.2.9]: <b@corp.test>: Recipient \
                 address triggers REDIRECT archive@corp.test; from=<a@x.example> \
                 to=<b@corp.test> proto=ESMTP helo=<x>",
                "archive@corp.test",
            ),
            (
                "cleanup",
                "4A1B2C3D4E: redirect: header Subject: Re: invoice from unknown[192.0.2.9]; \
                 from=<a@x.example> to=<b@corp.test> proto=ESMTP helo=<x>: audit@corp.test",
                "audit@corp.test",
            ),
        ] {
            assert_eq!(
                ev(service, line),
                Event::Redirected {
                    queue_id: line[..10].into(),
                    to: to.into()
                },
                "{line}"
            );
        }
        assert_eq!(
            parse(
                b"cleanup",
                b"4A1B2C3D4E: redirect: header Subject: x from local; from=<a@b>"
            ),
            Some(None)
        );
        // smtp(8)'s per-server skips are details of the attempt.
        for line in [
            "ABCDEF1234: Server certificate not trusted",
            "ABCDEF1234: local data error while talking to mx1.partner.example[203.0.113.50]",
        ] {
            assert!(
                matches!(ev("smtp", line), Event::AttemptDetail { .. }),
                "{line}"
            );
        }
        assert_eq!(
            ev("smtp", "ABCDEF1234: lost connection with x[192.0.2.1] while receiving the initial server greeting"),
            Event::AttemptDetail { queue_id: "ABCDEF1234".into(), text: "lost connection with x[192.0.2.1] while receiving the initial server greeting".into() }
        );
        for info in [
            "CONNECT from [192.0.2.9]:51234 to [198.18.1.2]:25",
            "PASS NEW [192.0.2.9]:51234",
            "DISCONNECT [192.0.2.9]:51234",
        ] {
            assert_eq!(parse(b"postscreen", info.as_bytes()), Some(None), "{info}");
        }
        assert!(matches!(
            ev(
                "master",
                "warning: process /usr/lib/postfix/sbin/smtpd pid 123 exit status 1"
            ),
            Event::Problem {
                severity: Severity::Warning,
                ..
            }
        ));
        assert!(matches!(
            ev(
                "qmgr",
                "fatal: open database /etc/postfix/transport.db: No such file or directory"
            ),
            Event::Problem {
                severity: Severity::Fatal,
                ..
            }
        ));
    }

    #[test]
    fn expired_per_message_and_per_recipient() {
        let Event::Expired {
            queue_id,
            rcpt: Some(r),
            returned_to_sender: true,
            ..
        } = ev(
            "error",
            "4f8Zq11Hk5z9tW: to=<bob@slow.example>, relay=none, delay=432001, \
             delays=432000/1/0/0, dsn=4.4.1, status=expired, returned to sender (connect to \
             mx.slow.example[192.0.2.50]:25: Connection timed out)",
        )
        else {
            panic!("not an expired recipient")
        };
        assert_eq!(queue_id, "4f8Zq11Hk5z9tW");
        assert_eq!(r.to, "bob@slow.example");
        assert_eq!(r.relay.as_deref(), Some("none"));
        assert_eq!(r.dsn.as_deref(), Some("4.4.1"));
        assert_eq!(r.delay_ms, Some(432_001_000));
        assert_eq!(
            r.reason,
            "connect to mx.slow.example[192.0.2.50]:25: Connection timed out"
        );
        // Without a reason, and the qmgr form without a sender.
        let Event::Expired { rcpt: Some(r), .. } = ev(
            "error",
            "ABCDEF1234: to=<b@x>, relay=none, delay=5, delays=5/0/0/0, dsn=4.4.7, status=expired, returned to sender",
        ) else {
            panic!()
        };
        assert_eq!((r.reason.as_str(), r.dsn.as_deref()), ("", Some("4.4.7")));
        let Event::Expired {
            rcpt: Some(r),
            forced: true,
            ..
        } = ev(
            "qmgr",
            "ABCDEF1234: to=<b@x>, relay=none, delay=5, delays=5/0/0/0, dsn=4.7.0, status=force-expired, returned to sender (message is administratively expired)",
        )
        else {
            panic!("not a forced expiry")
        };
        assert_eq!(r.reason, "message is administratively expired");
        assert!(matches!(
            ev(
                "qmgr",
                "ABCDEF1234: from=<a@b>, status=force-expired, returned to sender"
            ),
            Event::Expired {
                forced: true,
                returned_to_sender: true,
                ..
            }
        ));
        assert!(matches!(
            ev(
                "qmgr",
                "ABCDEF1234: status=force-expired, returned to sender"
            ),
            Event::Expired { forced: true, .. }
        ));
        // A sender whose address holds the words is still a sender.
        assert!(matches!(
            ev(
                "qmgr",
                "ABCDEF1234: from=<status=expired@b>, size=1, nrcpt=1 (queue active)"
            ),
            Event::QueueActive { .. }
        ));
        assert_eq!(
            ev("qmgr", "ABCDEF1234: status=expired, returned to sender"),
            Event::Expired {
                queue_id: "ABCDEF1234".into(),
                from: EventText::default(),
                rcpt: None,
                returned_to_sender: true,
                forced: false,
            }
        );
    }

    #[test]
    fn map_lookup_problems_carry_queue_id_map_and_reason() {
        let e = ev(
            "cleanup",
            "warning: 4f8Zq11Hk5z9tW: virtual_alias_maps map lookup problem for alice@corp.test \
             -- message not accepted, try again later",
        );
        assert_eq!(e.queue_id(), Some("4f8Zq11Hk5z9tW"));
        let Event::Problem { ref text, .. } = e else {
            panic!()
        };
        assert!(text.starts_with("virtual_alias_maps map"), "{text}");
        assert_eq!(
            e.map_lookup(),
            Some(MapLookup {
                map: "virtual_alias_maps",
                key: Some("alice@corp.test"),
                reason: Some("message not accepted, try again later"),
                kind: MapProblem::LookupFailed,
            })
        );
        // header_checks and bcc maps name no key; the `QID: warning:` order too.
        let e = ev(
            "cleanup",
            "4f8Zq11Hk5z9tW: warning: header_checks map lookup problem -- message not accepted, try again later",
        );
        let m = e.map_lookup().unwrap();
        assert_eq!((m.map, m.key), ("header_checks", None));
        assert_eq!(e.queue_id(), Some("4f8Zq11Hk5z9tW"));
        let e = ev(
            "cleanup",
            "warning: 4f8Zq11Hk5z9tW: unreasonable virtual_alias_maps map nesting for a@corp.test -- message not accepted, try again later",
        );
        let m = e.map_lookup().unwrap();
        assert_eq!(m.kind, MapProblem::Nesting);
        assert_eq!(m.key, Some("a@corp.test"));
        // An alias past the expansion limits: too many addresses, or too long a result.
        let m = map_lookup("unreasonable virtual_alias_maps map expansion size for all@corp.test -- message not accepted, try again later").unwrap();
        assert_eq!(
            (m.map, m.kind, m.key),
            (
                "virtual_alias_maps",
                MapProblem::Expansion,
                Some("all@corp.test")
            )
        );
        let m = map_lookup("unreasonable virtual_alias_maps result ops-team-with-a-very-long-name@corp.test... -- message not accepted, try again later").unwrap();
        assert_eq!(
            (m.map, m.kind, m.key),
            ("virtual_alias_maps", MapProblem::Expansion, None)
        );
        assert_eq!(m.reason, Some("message not accepted, try again later"));
        // No queue id: the smtp client's fatal, the SNI form.
        let e = ev(
            "smtp",
            "fatal: smtp_generic_maps map lookup problem for root@mx",
        );
        assert_eq!(e.queue_id(), None);
        assert_eq!(e.map_lookup().unwrap().map, "smtp_generic_maps");
        let e = ev(
            "smtpd",
            "warning: tls_server_sni_maps: mail.corp.test map lookup problem",
        );
        let m = e.map_lookup().unwrap();
        assert_eq!(
            (m.map, m.key),
            ("tls_server_sni_maps", Some("mail.corp.test"))
        );
        // Other warnings are not map lookups.
        for t in [
            "map lookup problem",
            " map lookup problem for x",
            "a b map lookup problem",
            "unreasonable map nesting",
            "unreasonable result x",
            "hash:/etc/postfix/transport is unavailable",
        ] {
            assert_eq!(map_lookup(t), None, "{t}");
        }
    }

    #[test]
    fn queued_reject_milter_reject_bdat_keep_client_dsn_reason() {
        for (svc, line, action, stage, code, dsn, reason) in [
            ("smtpd", "4f8Zq11Hk5z9tW: reject: RCPT from mail.example.org[192.0.2.44]: 550 5.1.1 <nobody@corp.test>: Recipient address rejected: User unknown in virtual mailbox table; from=<a@example.org> to=<nobody@corp.test> proto=ESMTP helo=<mail.example.org>", "reject", "RCPT", Some(550), "5.1.1", "<nobody@corp.test>: Recipient address rejected: User unknown in virtual mailbox table"),
            ("smtpd", "4f8Zq11Hk5z9tW: milter-reject: END-OF-MESSAGE from mail.example.org[192.0.2.44]: 5.7.1 Spam message rejected; from=<a@example.org> to=<b@corp.test> proto=ESMTP helo=<mail.example.org>", "milter-reject", "END-OF-MESSAGE", None, "5.7.1", "Spam message rejected"),
            ("smtpd", "NOQUEUE: reject: BDAT from mail.example.org[192.0.2.44]: 554 5.5.1 Error: no valid recipients; from=<a@example.org> to=<b@corp.test> proto=ESMTP helo=<mail.example.org>", "reject", "BDAT", Some(554), "5.5.1", "Error: no valid recipients"),
            ("smtpd", "4f8Zq11Hk5z9tW: reject: BDAT from mail.example.org[192.0.2.44]: 550 5.7.1 Message content rejected; from=<a@example.org> to=<b@corp.test> proto=ESMTP helo=<mail.example.org>", "reject", "BDAT", Some(550), "5.7.1", "Message content rejected"),
        ] {
            let Event::Reject(r) = ev(svc, line) else { panic!("{line}") };
            assert_eq!(r.action, action, "{line}");
            assert_eq!(r.stage, stage, "{line}");
            assert_eq!(r.client.as_deref(), Some("mail.example.org[192.0.2.44]"), "{line}");
            assert_eq!(r.code, code, "{line}");
            assert_eq!(r.dsn.as_deref(), Some(dsn), "{line}");
            assert_eq!(r.reason, reason, "{line}");
            assert_eq!(r.helo.as_deref(), Some("mail.example.org"), "{line}");
        }
    }

    #[test]
    fn invalid_utf8_in_a_kept_field_is_replaced_there_only() {
        let msg = b"ABCDEF1234: to=<al\xffce@corp.test>, relay=none, delay=1, \
                    delays=0/0/1/0, dsn=4.4.1, status=deferred (connect to x\xc3: refused)";
        let Some(Some(Event::Delivery(d))) = parse(b"smtp", msg) else {
            panic!("not a delivery")
        };
        assert_eq!(d.to, "al\u{fffd}ce@corp.test");
        assert_eq!(d.reason, "connect to x\u{fffd}: refused");
        assert_eq!(d.relay.as_deref(), Some("none"));
        assert_eq!(d.queue_id, "ABCDEF1234");
    }

    #[test]
    fn a_session_whose_auth_never_succeeded() {
        assert_eq!(
            ev(
                "smtpd",
                "disconnect from unknown[172.18.0.1] ehlo=2 starttls=1 auth=0/3 commands=3/6"
            ),
            Event::AuthNeverSucceeded {
                client: "unknown[172.18.0.1]".into(),
                attempts: 3
            }
        );
        for (service, line) in [
            (
                "smtpd",
                "disconnect from unknown[172.18.0.1] ehlo=1 auth=1/2 quit=1 commands=4/5",
            ),
            (
                "smtpd",
                "disconnect from unknown[172.18.0.1] ehlo=1 quit=1 commands=2",
            ),
            ("smtpd", "disconnect from unknown[172.18.0.1] auth=0/x"),
            ("postscreen", "disconnect from unknown[172.18.0.1] auth=0/1"),
            // A whole transaction, by DATA or by BDAT (CHUNKING).
            (
                "smtpd",
                "disconnect from unknown[172.18.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
            ),
            (
                "smtpd",
                "disconnect from mail.example[192.0.2.7] ehlo=2 starttls=1 mail=1 rcpt=1 bdat=1 quit=1 commands=7",
            ),
            // Postfix before 3.0: no counters.
            ("smtpd", "disconnect from unknown[172.18.0.1]"),
            // Every recipient refused: no queue entry (or one its reject names).
            (
                "smtpd",
                "disconnect from unknown[198.18.1.1] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4",
            ),
        ] {
            assert_eq!(
                parse(service.as_bytes(), line.as_bytes()),
                Some(None),
                "{line}"
            );
        }
    }

    /// Recipients named and no DATA: a callout, or a client that gave up.
    #[test]
    fn a_session_left_before_data() {
        for line in [
            "disconnect from unknown[198.18.1.1] ehlo=1 mail=1 rcpt=1 quit=1 commands=4",
            "disconnect from unknown[198.18.1.1] ehlo=1 mail=1 rcpt=1/2 commands=3/4",
        ] {
            assert_eq!(
                ev("smtpd", line),
                Event::TransactionAbandoned {
                    client: "unknown[198.18.1.1]".into()
                },
                "{line}"
            );
        }
    }

    /// Lines of Postfix's TLS library at a TLS log level of 2 and up (formats from its
    /// `src/tls`): recognized, carrying nothing. Lines that only look alike stay unknown.
    #[test]
    fn tls_library_details_are_info() {
        for (service, msg) in [
            ("smtpd", "SSL_accept:before SSL initialization"),
            ("smtpd", "SSL_accept:SSLv3/TLS read client hello"),
            ("smtpd", "SSL_accept:error in error"),
            ("smtpd", "initializing the server-side TLS engine"),
            ("smtp", "initializing the client-side TLS engine"),
            ("smtp", "SSL_connect:SSLv3/TLS write client hello"),
            ("smtpd", "SSL3 alert write:fatal:handshake failure"),
            (
                "smtpd",
                "x.example[192.0.2.4]: TLS cipher list \"aNULL:-aNULL:HIGH:@STRENGTH\"",
            ),
            (
                "smtpd",
                "x.example[192.0.2.4]: Issuing session ticket, key expiration: 1700000000",
            ),
            (
                "smtpd",
                "x.example[192.0.2.4]: Decrypting session ticket, key expiration: 17",
            ),
            ("smtpd", "x.example[192.0.2.4]: Reusing old session"),
            ("smtpd", "x.example[192.0.2.4]: SNI hostname: mx.corp.test"),
            (
                "smtp",
                "mx.example[192.0.2.1]:25: depth=0 verify=1 subject=/CN=mx.example",
            ),
            (
                "smtp",
                "mx.example[192.0.2.1]:25: subject_CN=mx.example, issuer_CN=R3, \
                 fingerprint=AA:BB, pkey_fingerprint=CC:DD",
            ),
            (
                "smtp",
                "mx.example[192.0.2.1]:25: Matched trust anchor at depth 1",
            ),
            (
                "smtp",
                "mx.example[192.0.2.1]:25: matched peername: mx.example",
            ),
            (
                "smtp",
                "mx.example[192.0.2.1]:25: re-using session with untrusted certificate, look \
                 for details earlier in the log",
            ),
            (
                "smtp",
                "looking for session [192.0.2.1]:25&p=1 in smtp cache",
            ),
            ("smtp", "save session [192.0.2.1]:25&p=1 to smtp cache"),
            (
                "tlsmgr",
                "open smtp TLS cache btree:/var/lib/postfix/smtp_scache",
            ),
            ("tlsmgr", "put smtp session id=AB12 [data 1234 bytes]"),
            (
                "tlsmgr",
                "read smtp TLS cache entry AB12: time=1700000000 [data 1234 bytes]",
            ),
        ] {
            assert!(
                parse(service.as_bytes(), msg.as_bytes()) == Some(None),
                "{service}: {msg}"
            );
        }
        for (service, msg) in [
            ("smtpd", "x.example [192.0.2.4]: TLS cipher list \"x\""),
            ("smtpd", ": TLS cipher list \"x\""),
            ("smtpd", "x.example[192.0.2.4]: something else"),
            (
                "smtpd",
                "open smtp TLS cache btree:/var/lib/postfix/smtp_scache",
            ),
        ] {
            assert!(
                parse(service.as_bytes(), msg.as_bytes()).is_none(),
                "{service}: {msg}"
            );
        }
        // After a queue id, the message's own grammar decides.
        assert!(parse(b"smtp", b"ABCDEF1234: SSL_connect:whatever").is_none());
    }

    #[test]
    fn unknown_and_info() {
        assert!(parse(b"smtpd", b"connect from x[1.2.3.4]") == Some(None));
        assert!(parse(b"smtpd", b"something new").is_none());
        assert!(parse(b"smtpd", b"ABCDEF1234: something new").is_none());
        assert!(parse(b"smtp", b"ABCDEF1234: to=<x>").is_none());
    }

    #[test]
    fn reply_split() {
        assert_eq!(
            split_reply(b"451 4.3.0 <a@b>: Temporary lookup failure"),
            (
                Some(451),
                Some(&b"4.3.0"[..]),
                &b"<a@b>: Temporary lookup failure"[..]
            )
        );
        assert_eq!(
            split_reply(b"5.7.1 x"),
            (None, Some(&b"5.7.1"[..]), &b"x"[..])
        );
        assert_eq!(split_reply(b"hello"), (None, None, &b"hello"[..]));
    }
}
