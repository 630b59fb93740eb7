//! Server log line parsers: one line of bytes in, one typed [`LogRecord`] out.
//! Owns format detection (syslog, RFC 3339, journald, docker, Postfix `maillog_file`, Dovecot's
//! own log), year inference, and the Postfix / Dovecot event grammar. Does not correlate lines
//! into messages (that is `core::fusion`) nor name causes (that is `core::diagnosis`).
//!
//! Parsers never fail: a line that is not understood yields `None` / [`Parsed::Unknown`] and
//! the caller counts it. Input is bytes; invalid UTF-8 is tolerated everywhere.

mod context;
mod counts;
mod docker_json;
mod dovecot;
pub mod focus;
pub mod focusscan;
mod grep_prefix;
mod interner;
mod journal_json;
mod locale_month;
mod memo;
mod postfix;
mod prefix;
mod program;
mod readahead;
pub mod reader;
mod relogged;
mod rfc5424;
pub(crate) mod scan;
mod variants;
mod zone;

use interner::Interner;
use relogged::relogged;
use scan::LineText;

use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

pub use context::ParseContext;
pub use counts::SourceCounts;
pub use dovecot::over_userip_limit;
pub(crate) use dovecot::{
    is_sieve_discard, is_sieve_reject, login_certificate_refused, msgid as dovecot_msgid,
    sieve_redirect_target,
};
pub use focus::Focus;
pub use focusscan::FocusScan;
pub use prefix::{parse_tz, LineFormat};
pub use program::ProgramName;
pub use reader::{block_lines, BoundedLines, LineRead};
pub use zone::LogZone;

/// A text a log line gives (a queue id, an address, a DSN, a relay), as a Postfix event, the
/// correlator's chain and a reported hop keep it: up to 24 bytes inside the value, without an
/// allocation. A full diagnose makes about a dozen such texts per message, most that short,
/// and moves them from the event to the chain to the hop; as `String`s their allocations,
/// copies and frees were the largest item of both threads.
pub type EventText = compact_str::CompactString;

/// Postfix `delays=a/b/c/d`, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Delays {
    /// Before the queue manager (including reception).
    pub before_qmgr_ms: u64,
    /// In the queue manager (waiting for a delivery agent).
    pub in_qmgr_ms: u64,
    /// Connection setup (DNS, connect, greeting, EHLO, TLS).
    pub conn_setup_ms: u64,
    /// Message transmission.
    pub transmission_ms: u64,
}

/// Postfix delivery status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Sent,
    Deferred,
    Bounced,
    /// `status=deliverable` / `undeliverable` (address verification probes).
    Verify,
    Other,
}

/// One delivery attempt result line (`to=<...>, relay=..., status=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub queue_id: EventText,
    /// Postfix service that logged it (`smtp`, `lmtp`, `local`, `virtual`, `pipe`, `error`, `qmgr`...).
    pub service: EventText,
    pub to: EventText,
    pub orig_to: Option<EventText>,
    pub relay: Option<EventText>,
    pub delay_ms: Option<u64>,
    pub delays: Option<Delays>,
    pub dsn: Option<EventText>,
    pub status: DeliveryStatus,
    /// Text inside `status=word (...)`.
    pub reason: EventText,
    /// `queued as NEXTID` from the next hop's 250 reply.
    pub queued_as: Option<EventText>,
    /// Dovecot's LMTP session id from `250 2.0.0 <rcpt> SESSION Saved`.
    pub lmtp_session: Option<EventText>,
}

/// What Dovecot's LMTP or LDA says it did with a message for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DovecotDelivery {
    pub user: Option<String>,
    pub session: Option<String>,
    pub message_id: Option<String>,
    pub mailbox: Option<String>,
    pub saved: bool,
    pub delivery_time_ms: Option<u64>,
    pub text: String,
}

/// A Dovecot error/warning/fatal line, with the user and session it names when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DovecotProblem {
    pub service: String,
    pub user: Option<String>,
    pub session: Option<String>,
    pub severity: Severity,
    pub text: String,
}

/// A Dovecot login process's outcome (`imap-login`, `pop3-login`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub service: String,
    pub user: Option<String>,
    pub success: bool,
    pub remote_ip: Option<String>,
    pub text: String,
}

/// The recipient side of a per-recipient `status=expired` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredRcpt {
    pub to: EventText,
    pub orig_to: Option<EventText>,
    pub relay: Option<EventText>,
    pub delay_ms: Option<u64>,
    pub dsn: Option<EventText>,
    /// The last attempt's reason, the text inside `(...)` (empty when not logged).
    pub reason: EventText,
}

/// A map lookup that failed inside Postfix, read from a `warning:` / `fatal:` text such as
/// cleanup's `QID: virtual_alias_maps map lookup problem for alice@x -- message not accepted,
/// try again later` (also header_checks, canonical, bcc maps, and the smtp client's
/// `smtp_generic_maps`). Borrowed from the event's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapLookup<'a> {
    /// The parameter whose lookup failed: `virtual_alias_maps`, `header_checks`, ...
    pub map: &'a str,
    /// The key looked up (`for alice@corp.test`, or the SNI name), when logged.
    pub key: Option<&'a str>,
    /// What Postfix did about it (`message not accepted, try again later`), when logged.
    pub reason: Option<&'a str>,
    pub kind: MapProblem,
}

/// Which map problem a [`MapLookup`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapProblem {
    /// `MAP map lookup problem`: the table could not be queried (missing `.db`, LDAP/SQL down).
    LookupFailed,
    /// `unreasonable MAP map nesting`: an alias loop or a chain deeper than Postfix allows.
    Nesting,
    /// `unreasonable MAP map expansion size for KEY` or `unreasonable MAP result VALUE`: an
    /// alias that expands to more addresses (`virtual_alias_expansion_limit`) or to a longer
    /// address than Postfix allows.
    Expansion,
}

/// A rejection by smtpd / postscreen / cleanup (`NOQUEUE: reject: ...` or `QID: reject: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub queue_id: Option<EventText>,
    /// `reject`, `milter-reject`, `discard`, `hold`, `defer`.
    pub action: EventText,
    /// SMTP stage: `RCPT`, `DATA`, `END-OF-MESSAGE`, `CONNECT`, `header`, `body`, ...
    pub stage: EventText,
    pub client: Option<EventText>,
    pub code: Option<u16>,
    pub dsn: Option<EventText>,
    /// The reply text after the codes, e.g. `<x@y>: Relay access denied`.
    pub reason: EventText,
    pub from: Option<EventText>,
    pub to: Option<EventText>,
    pub helo: Option<EventText>,
}

impl Reject {
    /// A temporary refusal (a 4xx reply, or a 4.x.x status without a reply code): the client
    /// keeps the message and tries again.
    pub fn is_temporary(&self) -> bool {
        match (self.code, self.dsn.as_deref()) {
            (Some(c), _) => (400..500).contains(&c),
            (None, Some(d)) => d.starts_with('4'),
            (None, None) => false,
        }
    }
}

/// Severity of a `warning:` / `error:` / `fatal:` / `panic:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
    Fatal,
    Panic,
}

/// Why a Dovecot passdb lookup failed for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthFailureKind {
    PasswordMismatch,
    UnknownUser,
}

/// What a line says. Only events the correlator or the diagnosis use carry data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// smtpd: `QID: client=host[ip][, sasl_method=..., sasl_username=...]`.
    Client {
        queue_id: EventText,
        client: EventText,
        sasl_username: Option<EventText>,
    },
    /// pickup: `QID: uid=N from=<x>` (local submission).
    Pickup {
        queue_id: EventText,
        from: EventText,
    },
    /// cleanup: `QID: message-id=<...>`.
    MessageId {
        queue_id: EventText,
        message_id: EventText,
    },
    /// qmgr: `QID: from=<x>, size=N, nrcpt=N (queue active)`.
    QueueActive {
        queue_id: EventText,
        from: EventText,
        size: Option<u64>,
        nrcpt: Option<u32>,
    },
    /// A delivery attempt's outcome (smtp, lmtp, local, virtual, pipe, error, qmgr...). Boxed,
    /// as a reject and an expired recipient are: the largest variants, and every event is moved
    /// whole from the grammar to its record.
    Delivery(Box<Delivery>),
    /// Postfix gave up on the message (`maximal_queue_lifetime`): qmgr's
    /// `QID: from=<x>, status=expired, returned to sender`, or a per-recipient
    /// `QID: to=<x>, relay=none, ..., dsn=4.4.1, status=expired, returned to sender (reason)`.
    Expired {
        queue_id: EventText,
        /// Empty when the line does not name the sender.
        from: EventText,
        /// The recipient of a per-recipient line, with its delivery fields.
        rcpt: Option<Box<ExpiredRcpt>>,
        /// `returned to sender`: a non-delivery notification goes back.
        returned_to_sender: bool,
        /// `status=force-expired` (Postfix 3.5+): an administrator expired it (`postsuper -e`),
        /// not the queue's lifetime.
        forced: bool,
    },
    /// qmgr: `QID: removed`.
    Removed { queue_id: EventText },
    /// postsuper: `QID: released from hold` (`postsuper -H`): the queue manager may now send it.
    Released { queue_id: EventText },
    /// smtpd / postscreen / cleanup rejection.
    Reject(Box<Reject>),
    /// bounce: `QID: sender non-delivery notification: QID2`.
    Notification {
        queue_id: EventText,
        kind: EventText,
        notice_queue_id: EventText,
    },
    /// smtp/lmtp per-attempt detail with a queue id (`QID: lost connection with ...`,
    /// `QID: SASL authentication failed; server ... said: 535 ...`, `QID: host X said: ...`).
    AttemptDetail {
        queue_id: EventText,
        text: EventText,
    },
    /// smtpd or cleanup: a REDIRECT action of an access table, `header_checks` or
    /// `body_checks` (`QID: redirect: RCPT from ...: Recipient address triggers REDIRECT
    /// x@y; from=<...> ...`, `QID: redirect: header Subject: ... helo=<h>: x@y`): the message
    /// goes to `to` instead of its recipients.
    Redirected { queue_id: EventText, to: EventText },
    /// smtpd: `warning: host[ip]: SASL LOGIN authentication failed: ...`.
    SaslAuthFailed {
        client: EventText,
        mechanism: EventText,
        reason: EventText,
    },
    /// smtpd's `disconnect from CLIENT ... auth=0/N ...` (Postfix 3.0+'s command counters): the
    /// client tried SMTP AUTH `attempts` times and never succeeded. A refused AUTH (not offered
    /// on that port) is logged nowhere else.
    AuthNeverSucceeded { client: EventText, attempts: u32 },
    /// smtpd's `disconnect` counting recipients but no DATA or BDAT: no message was sent.
    TransactionAbandoned { client: EventText },
    /// Other `warning:` / `error:` / `fatal:` / `panic:` lines (Postfix).
    Problem {
        severity: Severity,
        queue_id: Option<EventText>,
        text: EventText,
    },
    /// Dovecot LMTP/LDA delivery outcome (`msgid=<..>: saved mail to INBOX`, `save failed to ...`).
    /// The three Dovecot variants with several texts are boxed, as a delivery is: each would
    /// set the size of every event, and every event is moved from the grammar to its record.
    DovecotDelivery(Box<DovecotDelivery>),
    /// Dovecot error/warning/fatal line from any process (with user and session when known).
    DovecotProblem(Box<DovecotProblem>),
    /// Dovecot imap-login / pop3-login outcome.
    Login(Box<Login>),
    /// Dovecot auth: passdb said password mismatch / unknown user.
    AuthFailure {
        user: Option<String>,
        kind: AuthFailureKind,
        remote_ip: Option<String>,
        text: String,
    },
    /// Dovecot auth backend (SQL/LDAP) failure: the user database could not be queried.
    AuthBackendError { text: String },
    /// A recognized line that carries nothing flowtest needs (connect/disconnect, TLS info...).
    Info,
}

impl Event {
    /// The failed map lookup a Postfix `warning:`/`fatal:` line reports, if it is one. Such a
    /// line from cleanup with `-- message not accepted, try again later` means the message
    /// with `queue_id` was refused with a temporary error (the client got 451 4.3.0).
    pub fn map_lookup(&self) -> Option<MapLookup<'_>> {
        match self {
            Event::Problem { text, .. } => postfix::map_lookup(text),
            _ => None,
        }
    }

    /// Queue id the event belongs to, if any.
    pub fn queue_id(&self) -> Option<&str> {
        match self {
            Event::Client { queue_id, .. }
            | Event::Pickup { queue_id, .. }
            | Event::MessageId { queue_id, .. }
            | Event::QueueActive { queue_id, .. }
            | Event::Expired { queue_id, .. }
            | Event::Removed { queue_id }
            | Event::Released { queue_id }
            | Event::Notification { queue_id, .. }
            | Event::AttemptDetail { queue_id, .. }
            | Event::Redirected { queue_id, .. } => Some(queue_id),
            Event::Delivery(d) => Some(&d.queue_id),
            Event::Reject(r) => r.queue_id.as_deref(),
            Event::Problem { queue_id, .. } => queue_id.as_deref(),
            _ => None,
        }
    }
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub role: Arc<str>,
    pub format: LineFormat,
    pub timestamp: Option<DateTime<Utc>>,
    /// The timestamp has sub-second digits (else it is floored to the second).
    pub subsecond: bool,
    /// The host name the line itself carries (syslog formats), if any.
    pub host: Option<Arc<str>>,
    pub program: ProgramName,
    pub pid: Option<u32>,
    pub event: Event,
    /// The whole line (lossy UTF-8, without the newline); of a line `grep` printed with a file
    /// name or line number before it, the line inside; of a journal or Docker entry, the line
    /// it stands for.
    pub raw: String,
}

/// A record as the parser hands it out and a merge passes it on: boxed, since a record is large
/// and moves several times between the parser and the correlator.
pub type BoxedRecord = Box<LogRecord>;

/// Outcome of parsing one line on the fast path.
#[derive(Debug)]
pub enum Parsed {
    /// Not a line flowtest understands (counted, skipped).
    Unknown,
    /// Recognized, but nothing to correlate (no allocation was made).
    Info,
    Record(BoxedRecord),
}

/// What a line's header identifies its writer as.
enum Family<'a> {
    /// Postfix, with the service that logged the line (`smtpd`, `qmgr`, ...).
    Postfix {
        service: &'a [u8],
    },
    /// Dovecot, through syslog (the process token starts the message) or in its own log.
    Dovecot {
        syslog: bool,
    },
    Other,
}

/// The writer of a line, from its program's name (its token up to `[`, `(` or `<`), and for
/// Dovecot 1.x's LDA from its token (`deliver(alice)`: a bare `deliver` is Cyrus's). Inlined
/// into both callers: called from a second place, it was compiled apart, and every line paid a
/// call and lost what inlining into [`event_of`] had saved (1.5 % of the reading thread's
/// instructions, `bench/instructions.sh`).
#[inline(always)]
fn family<'a>(h: &prefix::Header<'a>) -> Family<'a> {
    let name = h.name;
    // Names are short: plain loops beat setting up a vector search.
    if let Some(slash) = name.iter().rposition(|&c| c == b'/') {
        // `postfix/smtpd`, `postfix-ec2/qmgr`, `postfix/submission/smtpd`: the first component
        // is the syslog_name, the last the service. A custom syslog_name without "postfix" is
        // accepted when the service is a Postfix daemon name.
        let first = &name[..name.iter().position(|&c| c == b'/').unwrap_or(slash)];
        let service = &name[slash + 1..];
        if scan::starts_with(first, b"postfix") || postfix::is_service(service) {
            return Family::Postfix { service };
        }
        return Family::Other;
    }
    if name == b"dovecot" {
        return Family::Dovecot { syslog: true };
    }
    // postfix(1) itself (`postfix[6085]: fatal: /etc/postfix/main.cf, line 12: ...` when
    // `postfix start` or `reload` finds the configuration broken).
    if name == b"postfix" {
        return Family::Postfix { service: name };
    }
    // Dovecot 1.x's own log names its mail processes in capitals (`IMAP(user): Error: ...`).
    let service = dovecot::v1_service(name);
    if prefix::is_dovecot_service(service) || dovecot::is_v1_deliver(h.program) {
        return Family::Dovecot { syslog: false };
    }
    Family::Other
}

/// The event a recognized header's message carries: `None` when the message is not understood,
/// `Some(None)` when it carries nothing flowtest needs.
fn event_of(t: LineText<'_>, h: &prefix::Header<'_>) -> Option<Option<Event>> {
    // Each arm hands its parser's answer back as it is: the event is large, and unwrapping and
    // wrapping it again would copy it.
    match family(h) {
        Family::Postfix { service } => postfix::parse(t, service, h.msg),
        Family::Dovecot { syslog: true } => dovecot::parse_syslog(h.msg),
        Family::Dovecot { syslog: false } => dovecot::parse(h.program, h.msg),
        Family::Other => None,
    }
}

impl LogRecord {
    /// A record with nothing in it yet, for [`fill_record`] to fill.
    fn blank(role: Arc<str>) -> Self {
        LogRecord {
            program: ProgramName::Usual(""),
            role,
            format: LineFormat::Bare,
            timestamp: None,
            subsecond: false,
            host: None,
            pid: None,
            event: Event::Info,
            // Room for most lines: a record is reused for many, and growing the room
            // line by line copied it each time.
            raw: String::with_capacity(Spares::RAW_MIN),
        }
    }
}

/// Fill `rec` (a blank or spent record, whose line room is reused) with a parsed line.
/// The record is filled in place: an event is large, and each move of it is a copy.
fn fill_record(
    rec: &mut LogRecord,
    line: LineText<'_>,
    ctx: &ParseContext,
    h: &prefix::Header<'_>,
    event: Event,
    interner: &mut Interner,
) {
    rec.raw.clear();
    match line.text() {
        Some(t) => rec.raw.push_str(t),
        None => rec.raw.push_str(&String::from_utf8_lossy(line.bytes())),
    }
    // Only the auth processes log a password (`auth-worker(...)`, `dovecot: auth: ...`).
    if h.name.starts_with(b"auth") || (h.name == b"dovecot" && h.msg.starts_with(b"auth")) {
        dovecot::redact_password(&mut rec.raw);
    }
    rec.format = h.format;
    rec.timestamp = h.ts;
    rec.subsecond = h.subsecond;
    // A reused record mostly holds the same names already: keeping them spares two atomic
    // updates of a count that the other stages' threads update too.
    match h.host {
        Some(x) => {
            let name = interner.host(x);
            if !rec
                .host
                .as_ref()
                .is_some_and(|kept| Arc::ptr_eq(kept, name))
            {
                rec.host = Some(name.clone());
            }
        }
        None => rec.host = None,
    }
    let role = match &rec.host {
        Some(host) if ctx.hosts_from_lines => host,
        _ => &ctx.role,
    };
    if !Arc::ptr_eq(&rec.role, role) {
        rec.role = role.clone();
    }
    if rec.program.as_bytes() != h.program {
        rec.program = ProgramName::of(h.program, interner);
    }
    rec.pid = h.pid;
    rec.event = event;
}

/// Records handed back for reuse ([`LineParser::recycle`]): a full scan makes one per line
/// it correlates, and reusing the box and its line's room saves two allocations each.
#[derive(Debug, Clone, Default)]
struct Spares {
    records: Vec<BoxedRecord>,
}

impl Spares {
    /// Records kept at most: as many as a full diagnosis has in flight (8 batches of 1,024
    /// queued, one being filled, one being correlated), so that records handed back in a burst
    /// are kept rather than dropped, then made again (each drop and remake also updated a count
    /// that the correlating thread updates too).
    const CAP: usize = 10 * 1024;
    /// Longest line room kept with a record: an over-long line's room is let go.
    const RAW_ROOM: usize = 1024;
    /// Line room a new record starts with.
    const RAW_MIN: usize = 256;

    /// A spent record, when one is spare.
    fn take(&mut self) -> Option<BoxedRecord> {
        self.records.pop()
    }

    fn put(&mut self, mut rec: BoxedRecord) -> bool {
        if self.records.len() >= Self::CAP {
            return false;
        }
        if rec.raw.capacity() > Self::RAW_ROOM {
            rec.raw = String::new();
        }
        self.records.push(rec);
        true
    }
}

fn strip_eol(mut line: &[u8]) -> &[u8] {
    while let Some((&last, rest)) = line.split_last() {
        if last == b'\n' || last == b'\r' {
            line = rest;
        } else {
            break;
        }
    }
    line
}

/// A line that wraps another in JSON (a journal entry, a Docker `json-file` entry): the line
/// it stands for and the wrapping's format. One byte is looked at for other lines.
#[inline(always)]
fn wrapped_line(text: LineText<'_>) -> Option<(String, LineFormat)> {
    if !matches!(text.bytes().first(), Some(b'{' | b'\x1e' | b'd')) {
        return None;
    }
    unwrapped(text)
}

/// [`wrapped_line`] past its first byte: kept out of the common path's code.
#[inline(never)]
fn unwrapped(text: LineText<'_>) -> Option<(String, LineFormat)> {
    if docker_json::is_entry(text.bytes()) {
        let line = docker_json::timestamped_line(text.text()?)?;
        return Some((line, LineFormat::DockerJson));
    }
    let entry = match text.text() {
        Some(t) => journal_json::syslog_line_of_text(t),
        None => journal_json::syslog_line(text.bytes()),
    };
    entry.map(|line| (line, LineFormat::JournalJson))
}

/// Parse one line (pure, stateless). `None` when the line is not understood. Known lines that
/// carry nothing of interest come back as [`Event::Info`].
pub fn parse_line(line: &[u8], ctx: &ParseContext) -> Option<LogRecord> {
    let line = LineText::check(strip_eol(line));
    if let Some((entry, format)) = wrapped_line(line) {
        let mut rec = parse_unwrapped(LineText::known(&entry), ctx, false)?;
        rec.format = format;
        return Some(rec);
    }
    parse_unwrapped(line, ctx, true)
}

/// [`parse_line`] of a line no journal or Docker entry wraps; `grep` tells whether a prefix
/// `grep` printed may come first (as [`LineParser`] does, not inside a wrapped entry).
fn parse_unwrapped(line: LineText<'_>, ctx: &ParseContext, grep: bool) -> Option<LogRecord> {
    let mut days = prefix::Days::default();
    let Some(h) = prefix::parse_header_with(line.bytes(), ctx, 0, &mut days) else {
        if let Some(english) = line.text().and_then(locale_month::in_english) {
            return parse_unwrapped(LineText::known(&english), ctx, grep);
        }
        let at = grep
            .then(|| grep_cut(line.bytes(), ctx, 0, &mut days))
            .flatten()?;
        return parse_unwrapped(line.from(at), ctx, false);
    };
    let Some(ev) = event_of(line, &h) else {
        let inner = matches!(family(&h), Family::Other)
            .then(|| relogged(line, &h, ctx, 0))
            .flatten()?;
        return parse_unwrapped(inner, ctx, false);
    };
    let ev = ev.unwrap_or(Event::Info);
    let mut rec = LogRecord::blank(ctx.role.clone());
    fill_record(&mut rec, line, ctx, &h, ev, &mut Interner::default());
    Some(rec)
}

/// Where the line inside a line `grep` prefixed starts ([`grep_prefix`]): the first cut from
/// which a layout understands it.
fn grep_cut(line: &[u8], ctx: &ParseContext, bump: i32, days: &mut prefix::Days) -> Option<usize> {
    grep_prefix::cuts(line)
        .find(|&at| prefix::parse_header_with(&line[at..], ctx, bump, days).is_some())
}

/// Where a [`LineParser`]'s Dec -> Jan rollover tracking stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollover {
    year_bump: i32,
    last_month: Option<u32>,
}

/// Stateful per-source parser: tracks the Dec -> Jan rollover of year-less timestamps and
/// counts what it saw. Known-but-irrelevant lines are not allocated for.
#[derive(Debug, Clone)]
pub struct LineParser {
    pub(crate) ctx: ParseContext,
    year_bump: i32,
    last_month: Option<u32>,
    counts: SourceCounts,
    /// Recognized lines by layout, indexed by `LineFormat as usize`: counted here (a map's
    /// entry per line cost more than the rest of the counting) and put into `counts` when
    /// they are asked for.
    formats: [u64; LineFormat::ALL.len()],
    interner: Interner,
    ring: focus::Ring,
    spares: Spares,
    days: prefix::Days,
    memo: memo::HeaderMemo,
    /// The local dates (month, day) on which the source's named zone sets its clock back:
    /// lines stamped on them are read in order by this parser alone (`super::zone`).
    fold_days: Vec<(u32, u32)>,
}

impl LineParser {
    pub fn new(ctx: ParseContext) -> Self {
        // The years year-less stamps are read in: the reference's or the one before, else
        // the given one and those a rollover moves to.
        let years = match ctx.reference.map(|r| r.year()) {
            Some(r) => r - 1..=r,
            None => ctx.year..=ctx.year.saturating_add(1),
        };
        LineParser {
            fold_days: ctx.tz.fold_days(years),
            ctx,
            year_bump: 0,
            last_month: None,
            counts: SourceCounts::default(),
            formats: [0; LineFormat::ALL.len()],
            interner: Interner::default(),
            ring: focus::Ring::new(),
            spares: Spares::default(),
            days: prefix::Days::default(),
            memo: memo::HeaderMemo::default(),
        }
    }

    pub fn context(&self) -> &ParseContext {
        &self.ctx
    }

    /// Lines read so far (what [`LineParser::counts`] says, without building the counts).
    pub fn lines(&self) -> u64 {
        self.counts.lines
    }

    /// What was counted so far.
    pub fn counts(&self) -> SourceCounts {
        let mut c = self.counts.clone();
        for (f, &n) in LineFormat::ALL.iter().zip(&self.formats) {
            if n > 0 {
                c.formats.insert(*f, n);
            }
        }
        c
    }

    /// Count a line the reader had to cut (over its length cap) as read and unknown.
    pub fn note_overlong(&mut self) {
        self.counts.lines += 1;
        self.counts.overlong += 1;
        self.counts.unknown += 1;
    }

    pub fn parse(&mut self, line: &[u8]) -> Parsed {
        let line = strip_eol(line);
        let text = self.count_line(LineText::check(line));
        self.parse_counted(text)
    }

    /// [`LineParser::parse`] of a line as the reader read it: not checked as UTF-8 again when
    /// the reader checked its block of lines at once.
    pub fn parse_read(&mut self, line: &LineRead<'_>) -> Parsed {
        match *line {
            LineRead::Text(t) => self.parse_text(t),
            ref l => self.parse(l.bytes()),
        }
    }

    /// [`LineParser::parse`] of a line already known to be valid UTF-8.
    fn parse_text(&mut self, line: &str) -> Parsed {
        let line = line.trim_end_matches(['\n', '\r']);
        let text = self.count_line(LineText::known(line));
        self.parse_counted(text)
    }

    fn parse_counted(&mut self, text: LineText<'_>) -> Parsed {
        if let Some((line, format)) = wrapped_line(text) {
            return self.parse_as(LineText::known(&line), Some(format));
        }
        self.parse_as(text, None)
    }

    /// A line's record; `format` names the layout when the line was made from another.
    fn parse_as(&mut self, text: LineText<'_>, format: Option<LineFormat>) -> Parsed {
        let line = text.bytes();
        let (bump, month) = self.rollover(line);
        let header = self.memo.recall(line, bump).or_else(|| {
            let h = prefix::parse_header_with(line, &self.ctx, bump, &mut self.days);
            if let Some(h) = h.as_ref().filter(|_| !self.days.folded) {
                self.memo.keep(line, bump, h);
            }
            h
        });
        let Some(mut h) = header else {
            if let Some(english) = text.text().and_then(locale_month::in_english) {
                return self.parse_as(LineText::known(&english), format);
            }
            if let Some(inner) = format.is_none().then(|| self.grep_inner(text)).flatten() {
                return self.parse_as(inner, None);
            }
            self.counts.note_no_layout(text.bytes());
            return Parsed::Unknown;
        };
        if let Some(f) = format {
            h.format = f;
        }
        let h = &h;
        match event_of(text, h) {
            None => {
                // Asked again only of a line not understood: the common path stays as it was.
                if matches!(family(h), Family::Other) {
                    if let Some(inner) = relogged(text, h, &self.ctx, bump) {
                        return self.parse_as(inner, None);
                    }
                    self.counts.other_programs += 1;
                } else {
                    self.counts.unknown += 1;
                }
                Parsed::Unknown
            }
            Some(None | Some(Event::Info)) => {
                self.note_parsed(h.format, bump, month);
                Parsed::Info
            }
            Some(Some(ev)) => {
                self.note_parsed(h.format, bump, month);
                Parsed::Record(self.record(text, h, ev))
            }
        }
    }

    /// The line inside a line `grep` printed with a file name or line number before it
    /// ([`grep_prefix`]), when a layout understands the line from one of its cuts on.
    #[inline(never)]
    fn grep_inner<'a>(&mut self, text: LineText<'a>) -> Option<LineText<'a>> {
        let at = grep_cut(text.bytes(), &self.ctx, self.year_bump, &mut self.days)?;
        Some(text.from(at))
    }

    /// Like [`LineParser::parse`], but lines that cannot concern `focus` are skipped (counted
    /// as `filtered`) before any record is built; what passes widens the focus. Records go to
    /// `out`; a remembered `client=` line of a newly focused queue id comes first.
    pub fn parse_focused(&mut self, line: &[u8], focus: &mut Focus, out: &mut Vec<LogRecord>) {
        let line = strip_eol(line);
        // First look without timestamps or UTF-8 validation: most lines stop here.
        let decision = match prefix::quick_program_msg(line) {
            Some((program, msg)) => focus.decide(&self.ctx.role, program, msg),
            None => focus::Decision::Full,
        };
        match decision {
            focus::Decision::Skip => {
                self.counts.lines += 1;
                self.counts.filtered += 1;
                self.observe_month(line);
                return;
            }
            focus::Decision::Remember(q) => {
                self.counts.lines += 1;
                self.counts.filtered += 1;
                self.observe_month(line);
                self.ring.put(q, line);
                return;
            }
            focus::Decision::FullWithReplay(q) => {
                for old in self.ring.take(q) {
                    // Counted as read and filtered when it came; now it is parsed.
                    self.counts.filtered = self.counts.filtered.saturating_sub(1);
                    self.counts.lines = self.counts.lines.saturating_sub(1);
                    if let Parsed::Record(r) = self.parse(&old) {
                        focus.learn(&self.ctx.role, &r);
                        out.push(*r);
                    }
                }
            }
            focus::Decision::Full => {}
        }
        if let Parsed::Record(r) = self.parse(line) {
            focus.learn(&self.ctx.role, &r);
            out.push(*r);
        }
    }

    /// Count the line, checked as UTF-8 (once, by the caller).
    fn count_line<'a>(&mut self, text: LineText<'a>) -> LineText<'a> {
        self.counts.lines += 1;
        if text.text().is_none() {
            self.counts.invalid_utf8 += 1;
        }
        text
    }

    /// Where the Dec -> Jan rollover tracking stands (for [`LineParser::resume_at`]).
    pub fn rollover_state(&self) -> Rollover {
        Rollover {
            year_bump: self.year_bump,
            last_month: self.last_month,
        }
    }

    /// Go on from a rollover state another parser of the same source reached.
    pub fn resume_at(&mut self, at: Rollover) {
        self.year_bump = at.year_bump;
        self.last_month = at.last_month;
    }

    /// Whether parsing `block`'s lines leaves the rollover tracking where it stands (so that
    /// another parser resumed at [`LineParser::rollover_state`] reads them at the same years,
    /// and this one can go on after them as it is): no line is stamped in another month than
    /// the last one seen. A line that may wrap another (whose month is inside) says no, and so
    /// does one whose month may stand behind a `grep` prefix.
    /// No line may fall in a fold of the source's named zone either: where the log stands in
    /// one is this parser's alone.
    pub fn keeps_rollover(&self, block: &str) -> bool {
        let by_month = self.ctx.reference.is_none();
        let folds = !self.fold_days.is_empty();
        if !by_month && !folds {
            return true;
        }
        let b = block.as_bytes();
        let starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', b).map(|i| i + 1));
        starts.filter(|&at| at < b.len()).all(|at| {
            let line = &b[at..];
            !matches!(line.first(), Some(b'{' | b'\x1e' | b'd'))
                && (!folds || !self.may_fold(line))
                && (!by_month
                    || match prefix::classic_month(line) {
                        Some(m) => Some(m) == self.last_month,
                        None => !grep_prefix::may_hide_month(line),
                    })
        })
    }

    /// Whether `line` may be stamped on a day the source's named zone sets its clock back.
    fn may_fold(&self, line: &[u8]) -> bool {
        match zone::local_date(line) {
            Some(md) => self.fold_days.contains(&md),
            None => grep_prefix::may_hide_month(line),
        }
    }

    /// Lines the prefilter skips unparsed (one, or a span of them): those that may fall in a
    /// fold of the source's named zone still move where the log stands in it, so that the
    /// lines parsed after them are read at the offsets a full parse gives them.
    pub(crate) fn observe_fold(&mut self, span: &[u8]) {
        if self.fold_days.is_empty() {
            return;
        }
        for line in span.split(|&c| c == b'\n') {
            let line = strip_eol(line);
            if self.may_fold(line) {
                let _ = prefix::parse_header_with(line, &self.ctx, self.year_bump, &mut self.days);
            }
        }
    }

    /// Year bump for this line and its classic month (Dec -> Jan rollover tracking).
    #[inline]
    fn rollover(&mut self, line: &[u8]) -> (i32, Option<u32>) {
        // Only without a reference time: with one, every line resolves its own year.
        let mut bump = self.year_bump;
        let month = if self.ctx.reference.is_none() {
            prefix::classic_month(line)
        } else {
            None
        };
        if let (Some(m), Some(last)) = (month, self.last_month) {
            if m + 6 <= last {
                // Dec -> Jan: a new year starts.
                self.year_bump += 1;
                bump = self.year_bump;
            } else if last + 6 <= m && bump > 0 {
                // A straggler from before the rollover (lines slightly out of order).
                bump -= 1;
            }
        }
        (bump, month)
    }

    /// A line the prefilter skips unparsed: its month still moves the Dec -> Jan rollover, so
    /// that the lines parsed after it are given the year a full parse gives them (with
    /// `--year`, a log that crosses a new year).
    pub(crate) fn observe_month(&mut self, line: &[u8]) {
        self.observe_fold(line);
        let (bump, month) = self.rollover(line);
        if let (Some(m), true) = (month, bump == self.year_bump) {
            self.last_month = Some(m);
        }
    }

    /// Count a recognized line (and keep the month it was stamped in for the rollover).
    fn note_parsed(&mut self, format: LineFormat, bump: i32, month: Option<u32>) {
        if let (Some(m), true) = (month, bump == self.year_bump) {
            self.last_month = Some(m);
        }
        self.counts.parsed += 1;
        self.formats[format as usize] += 1;
    }

    /// A record of the line, in a spare box when there is one.
    fn record(&mut self, line: LineText<'_>, h: &prefix::Header<'_>, ev: Event) -> BoxedRecord {
        let mut rec = self
            .spares
            .take()
            .unwrap_or_else(|| Box::new(LogRecord::blank(self.ctx.role.clone())));
        fill_record(&mut rec, line, &self.ctx, h, ev, &mut self.interner);
        rec
    }

    /// Hand back records the caller is done with: the next records reuse their boxes and line
    /// room. Those beyond what is kept are dropped here.
    pub fn recycle(&mut self, spent: &mut Vec<BoxedRecord>) {
        while let Some(rec) = spent.pop() {
            if !self.spares.put(rec) {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Every event is moved from the grammar into its record, and every record is handed from
    /// the reading thread to the correlating one: the variants with many texts stay boxed, so
    /// that an event fits in 80 bytes and a record in three cache lines.
    #[test]
    fn an_event_stays_small_and_a_record_within_three_cache_lines() {
        assert!(
            std::mem::size_of::<Event>() <= 80,
            "{}",
            std::mem::size_of::<Event>()
        );
        assert!(std::mem::size_of::<LogRecord>() <= 192);
    }

    #[test]
    fn rollover_dec_to_jan() {
        let mut p = LineParser::new(ParseContext::new("ec2", 2025));
        let lines: [&[u8]; 3] = [
            b"Dec 31 23:59:59 mx postfix/qmgr[1]: ABCDE12345: removed",
            b"Jan  1 00:00:01 mx postfix/qmgr[1]: ABCDE12346: removed",
            b"Dec 31 23:59:58 mx postfix/qmgr[1]: ABCDE12347: removed",
        ];
        let years: Vec<i32> = lines
            .iter()
            .map(|l| match p.parse(l) {
                Parsed::Record(r) => chrono::Datelike::year(&r.timestamp.unwrap()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(years, vec![2025, 2026, 2025]);
    }

    #[test]
    fn a_localized_month_is_read_and_moves_the_rollover() {
        // journalctl on a German system: `Dez`, `Mär` (UTF-8), then an English `Jan`.
        let mut p = LineParser::new(ParseContext::new("ec2", 2025));
        let lines = [
            "Dez 31 23:59:59 mx postfix/qmgr[1]: ABCDE12345: removed",
            "Jan  1 00:00:01 mx postfix/qmgr[1]: ABCDE12346: removed",
            "Mär  2 00:00:01 mx postfix/qmgr[1]: ABCDE12347: removed",
        ];
        let stamps: Vec<String> = lines
            .iter()
            .map(|l| match p.parse(l.as_bytes()) {
                Parsed::Record(r) => r.timestamp.unwrap().format("%Y-%m-%d").to_string(),
                other => panic!("{l}: {other:?}"),
            })
            .collect();
        assert_eq!(stamps, ["2025-12-31", "2026-01-01", "2026-03-02"]);
        assert_eq!(p.counts().parsed, 3);
        // The stateless parser reads it too.
        let r = parse_line(lines[0].as_bytes(), &ParseContext::new("ec2", 2025)).unwrap();
        assert_eq!(r.timestamp.unwrap().format("%m-%d").to_string(), "12-31");
    }

    #[test]
    fn a_containers_whole_line_relogged_under_its_name_is_read_as_itself() {
        // docker-mailserver under podman's journald driver: syslog's line for the container,
        // Postfix's own line as its message.
        let line = "Mar 15 14:00:33 c0-homelab mailserver[4087249]: 2026-03-15T15:00:33.520966+01:00 mail postfix/qmgr[17]: ABCDE12345: removed";
        let mut p = LineParser::new(ParseContext::new("ec2", 2025));
        let Parsed::Record(r) = p.parse(line.as_bytes()) else {
            panic!("not a record")
        };
        assert_eq!(r.program.as_str(), "postfix/qmgr");
        assert_eq!(
            r.timestamp.unwrap().to_rfc3339(),
            "2026-03-15T14:00:33.520966+00:00"
        );
        assert_eq!((p.counts().parsed, p.counts().other_programs), (1, 0));
        let r = parse_line(line.as_bytes(), &ParseContext::new("ec2", 2025)).unwrap();
        assert_eq!(r.program.as_str(), "postfix/qmgr");
        // Another program's message that is no log line stays that program's.
        let other = "Mar 15 14:00:33 mx opendkim[5]: 2026 ABCDE12345: DKIM-Signature field added";
        assert!(matches!(p.parse(other.as_bytes()), Parsed::Unknown));
        assert_eq!(p.counts().other_programs, 1);
    }

    #[test]
    fn a_journal_entry_is_read_and_counted_as_one() {
        let entry = br#"{"__REALTIME_TIMESTAMP":"1762279954123456","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/qmgr","SYSLOG_PID":"1201","MESSAGE":"D0E873A000: from=<a@x.test>, size=10, nrcpt=1 (queue active)"}"#;
        let ctx = ParseContext::new("ec2", 2025);
        let mut p = LineParser::new(ctx.clone());
        let Parsed::Record(r) = p.parse(entry) else {
            panic!("not a record")
        };
        assert_eq!(r.format, LineFormat::JournalJson);
        assert_eq!(
            r.timestamp,
            Some(
                Utc.with_ymd_and_hms(2025, 11, 4, 18, 12, 34).unwrap()
                    + chrono::TimeDelta::microseconds(123_456)
            )
        );
        assert!(r.subsecond);
        assert_eq!((r.host.as_deref(), r.pid), (Some("mx"), Some(1201)));
        assert!(
            matches!(r.event, Event::QueueActive { .. }),
            "{:?}",
            r.event
        );
        assert!(r
            .raw
            .starts_with("2025-11-04T18:12:34.123456+00:00 mx postfix/qmgr[1201]: "));
        // An info entry, and an object that is no entry (unknown, as any unread line).
        let info = br#"{"__REALTIME_TIMESTAMP":"1762279954123456","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/smtpd","SYSLOG_PID":"7","MESSAGE":"connect from x[192.0.2.1]"}"#;
        assert!(matches!(p.parse(info), Parsed::Info));
        assert!(matches!(
            p.parse(br#"{"MESSAGE":"no time"}"#),
            Parsed::Unknown
        ));
        let c = p.counts();
        assert_eq!((c.lines, c.parsed, c.unknown), (3, 2, 1));
        assert_eq!(c.formats.get(&LineFormat::JournalJson), Some(&2));
        // The stateless parser reads it the same way.
        let one = parse_line(entry, &ctx).unwrap();
        assert_eq!((one.format, one.timestamp), (r.format, r.timestamp));
    }

    #[test]
    fn counts_unknown_and_info() {
        let mut p = LineParser::new(ParseContext::new("ec2", 2025));
        assert!(matches!(p.parse(b"garbage"), Parsed::Unknown));
        assert!(matches!(
            p.parse(b"Nov  4 18:12:34 mx postfix/smtpd[1]: connect from x[1.2.3.4]"),
            Parsed::Info
        ));
        assert!(matches!(
            p.parse(b"Nov  4 18:12:34 mx postfix/smtpd[1]: no such message flowtest reads"),
            Parsed::Unknown
        ));
        let c = p.counts();
        assert_eq!(
            (c.lines, c.parsed, c.unknown, c.other_programs),
            (3, 1, 2, 0)
        );
    }

    #[test]
    fn other_programs_lines_are_counted_apart_from_unknown_ones() {
        let mut p = LineParser::new(ParseContext::new("ec2", 2025));
        // Four lines of other programs, then three unknown ones: not a known layout, and
        // Postfix's own lines flowtest does not read.
        for line in [
            "Nov  4 18:12:34 mx sshd[1]: Accepted publickey for root",
            "Nov  4 18:12:34 mx opendkim[200]: 4AB12345C: DKIM verification successful",
            "Nov  4 18:12:34 mx amavis[204]: (12345-01) Passed CLEAN {RelayedInbound}",
            "2025-11-04T18:12:34.123456+00:00 mx CRON[5]: (root) CMD (true)",
            "garbage",
            "Nov  4 18:12:34 mx postfix/smtpd[8]: something new",
            "Nov  4 18:12:34 mx postfix-out/qmgr[9]: something new",
            // Cyrus's `deliver`; Dovecot 1.x's is named with its user (below).
            "Nov  4 18:12:34 mx deliver[10]: duplicate_check: <a@x> user.dave 0",
        ] {
            assert!(
                matches!(p.parse(line.as_bytes()), Parsed::Unknown),
                "{line}"
            );
        }
        let c = p.counts();
        assert_eq!(
            (c.lines, c.parsed, c.other_programs, c.unknown),
            (8, 0, 5, 3)
        );
        let line = b"Nov  4 18:12:35 dell deliver(dave): msgid=<a1@x.example>: saved mail to INBOX";
        assert!(matches!(p.parse(line), Parsed::Record(_)));
    }

    #[test]
    fn multi_instance_syslog_names_keep_the_event() {
        let ctx = ParseContext::new("ec2", 2025);
        for line in [
            "Nov  4 18:12:34 mx postfix-out/submission/smtpd[123]: NOQUEUE: reject: RCPT from unknown[192.0.2.44]: 554 5.7.1 <b@x.test>: Relay access denied; from=<a@example.org> to=<b@x.test> proto=ESMTP helo=<pc>",
            "2025-11-04T18:12:34.123+00:00 mx postfix-out/submission/smtpd[123]: NOQUEUE: reject: RCPT from unknown[192.0.2.44]: 554 5.7.1 <b@x.test>: Relay access denied; from=<a@example.org> to=<b@x.test> proto=ESMTP helo=<pc>",
            "postfix-out/submission/smtpd[123]: NOQUEUE: reject: RCPT from unknown[192.0.2.44]: 554 5.7.1 <b@x.test>: Relay access denied; from=<a@example.org> to=<b@x.test> proto=ESMTP helo=<pc>",
            "Nov  4 18:12:34 mx mta-out/smtpd[123]: NOQUEUE: reject: RCPT from unknown[192.0.2.44]: 554 5.7.1 <b@x.test>: Relay access denied; from=<a@example.org> to=<b@x.test> proto=ESMTP helo=<pc>",
        ] {
            let r = parse_line(line.as_bytes(), &ctx).unwrap_or_else(|| panic!("{line}"));
            let Event::Reject(rej) = r.event else {
                panic!("{line}: {:?}", r.event)
            };
            assert_eq!(rej.client.as_deref(), Some("unknown[192.0.2.44]"), "{line}");
            assert_eq!(rej.dsn.as_deref(), Some("5.7.1"), "{line}");
            assert_eq!(rej.reason, "<b@x.test>: Relay access denied", "{line}");
            assert_eq!(r.pid, Some(123));
        }
    }

    #[test]
    fn the_postfix_command_is_postfixs_own() {
        // postfix(1) logs under its own name: a broken main.cf at `postfix start` or `reload`.
        let ctx = ParseContext::new("ec2", 2025);
        let r = parse_line(
            b"Nov  4 10:00:01 mx postfix[6085]: fatal: /etc/postfix/main.cf, line 12: missing '=' after attribute name: \"relay_domains corp.test\"",
            &ctx,
        )
        .expect("a record");
        assert!(
            matches!(&r.event, Event::Problem { severity: Severity::Fatal, text, .. } if text.starts_with("/etc/postfix/main.cf")),
            "{:?}",
            r.event
        );
        // Its compatibility notice is recognized and carries nothing.
        let mut p = LineParser::new(ctx);
        assert!(matches!(
            p.parse(b"Nov  4 10:00:00 mx postfix[6084]: Postfix is running with backwards-compatible default settings"),
            Parsed::Info
        ));
        assert!(matches!(
            p.parse(b"Nov  4 10:00:00 mx postfix/smtpd[100]: using backwards-compatible default setting smtputf8_enable=no to accept non-ASCII sender address \"x@y\""),
            Parsed::Info
        ));
        assert_eq!((p.counts().unknown, p.counts().other_programs), (0, 0));
    }

    #[test]
    fn parse_line_builds_record() {
        let r = parse_line(
            b"Nov  4 18:12:34 mx postfix/cleanup[7]: 4dJHx72Wm3z1: message-id=<a@b>\n",
            &ParseContext::new("ec2", 2025),
        )
        .unwrap();
        assert_eq!(&*r.role, "ec2");
        assert_eq!(
            r.timestamp,
            Some(Utc.with_ymd_and_hms(2025, 11, 4, 18, 12, 34).unwrap())
        );
        assert_eq!(
            r.event,
            Event::MessageId {
                queue_id: "4dJHx72Wm3z1".into(),
                message_id: "<a@b>".into()
            }
        );
        assert_eq!(
            r.raw,
            "Nov  4 18:12:34 mx postfix/cleanup[7]: 4dJHx72Wm3z1: message-id=<a@b>"
        );
    }

    /// A source whose lines name their hosts: each record stands for its line's host; a line
    /// naming none (Dovecot's own log), and any line of a named source, for the source.
    #[test]
    fn a_line_stands_for_its_host_when_the_source_says_so() {
        let lines = [
            "Nov  4 18:12:34 mx postfix/cleanup[7]: 4dJHx72Wm3z1: message-id=<a@b>",
            "Nov  4 18:12:35 dell postfix/cleanup[8]: 5C2E81A0F3: message-id=<a@b>",
            "Nov 04 18:12:36 lmtp(alice@corp.test)<9><mKq8JfPzCWmhEQAAzH4ZCA>: msgid=<a@b>: saved mail to INBOX",
        ];
        let roles = |hosts_from_lines| {
            let mut ctx = ParseContext::new("central", 2025);
            ctx.hosts_from_lines = hosts_from_lines;
            let mut p = LineParser::new(ctx.clone());
            lines.map(|l| {
                let stateless = parse_line(l.as_bytes(), &ctx).expect(l).role;
                match p.parse(l.as_bytes()) {
                    Parsed::Record(r) => {
                        assert_eq!(r.role, stateless);
                        r.role.to_string()
                    }
                    other => panic!("{l}: {other:?}"),
                }
            })
        };
        assert_eq!(roles(true), ["mx", "dell", "central"]);
        assert_eq!(roles(false), ["central", "central", "central"]);
    }
}
