//! Findings vocabulary and diagnosis rules. Owns the fixed set of [`FindingCode`]s and the
//! mapping from SMTP replies / Postfix status texts / Dovecot and Postfix warning lines to a
//! code. Does not hold the fixes' wording (each finding's hint comes from the runbook,
//! `core::runbook`) and does not read logs or correlate them (`core::logs` / `core::fusion`).

use std::cell::RefCell;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::logs::{DeliveryStatus, Severity};
use crate::runbook::{Facts, HintCache, Runbook};

/// What went wrong, from a fixed vocabulary so that reports, metrics labels and incident files
/// stay stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    RelayAccessDenied,
    LookupFailure,
    NextHopRefused,
    NextHopTimeout,
    NextHopUnreachable,
    RecipientUnknown,
    MailboxPermissionDenied,
    MailboxFull,
    AuthFailed,
    AuthBackendError,
    TlsError,
    DnsError,
    RateLimited,
    RejectedOther,
    DeferredOther,
    BouncedOther,
    /// Postfix gave up after the maximal queue lifetime and returned the message to its sender.
    Expired,
    SpamFolder,
    ImapAuthFailed,
    UnexpectedPath,
    /// A mail daemon logged a fatal/panic (or a process died): the service itself is broken.
    ServiceError,
    /// The IMAP server turned the session away (`BYE`) or answered with something that is not
    /// IMAP: a service or protocol problem, not the user's credentials.
    ImapProtocolError,
    /// A mail-sending API (SendGrid) refused the key: invalid, revoked, or missing a scope.
    ProviderAuthFailed,
    /// A mail-sending API refused the request as malformed (its error list names the fields).
    ProviderRequestInvalid,
    /// The message is over the sending side's size limit.
    MessageTooLarge,
    /// A mail-sending API could not be reached or kept failing (connect error, timeout, 5xx).
    ProviderUnavailable,
    /// Postfix's SMTP client has no SASL mechanism it may use with the relay (`no mechanism
    /// available`, `No worthy mechs found`): the Cyrus SASL plugins are missing, or the security
    /// options rule out what the relay offers. Not the credentials.
    SaslNoMechanism,
    /// Postfix's SMTP server cannot reach its SASL backend (Dovecot's auth socket, saslauthd):
    /// no client can authenticate to submit mail.
    SaslServerUnavailable,
    /// The message was put on hold (a header/body check or milter HOLD, or `postsuper -h`): it
    /// stays in the hold queue, never delivered, until someone releases it.
    Held,
    /// The message was accepted and then thrown away (a check's or milter's DISCARD): the sender
    /// was told it was delivered.
    Discarded,
    /// A server's disk is full: Postfix's queue file system (`452 4.3.1 Insufficient system
    /// storage`, `not enough free space in mail queue`) or Dovecot's mail store (`No space left
    /// on device`). Every message waits, not one user's.
    DiskFull,
    /// The server a delivery went to refused to relay it (`Relay access denied`, `Unable to
    /// relay` in its reply): the fix is on that server, or the recipient's domain is not hosted
    /// there. `relay_access_denied` is this host's own refusal of a client.
    NextHopRelayDenied,
    /// A mail client tried to log in without TLS and Dovecot refused it before checking any
    /// password (`tried to use disallowed plaintext auth`): the client's setting, not its
    /// credentials.
    ImapLoginWithoutTls,
    /// Dovecot refused a login, the password already accepted, because that user already holds
    /// `mail_max_userip_connections` connections from that address: a client that opens (or
    /// leaks) too many, not a password or a server fault.
    ImapConnectionLimit,
}

impl FindingCode {
    pub const ALL: [FindingCode; 34] = [
        FindingCode::RelayAccessDenied,
        FindingCode::LookupFailure,
        FindingCode::NextHopRefused,
        FindingCode::NextHopTimeout,
        FindingCode::NextHopUnreachable,
        FindingCode::RecipientUnknown,
        FindingCode::MailboxPermissionDenied,
        FindingCode::MailboxFull,
        FindingCode::AuthFailed,
        FindingCode::AuthBackendError,
        FindingCode::TlsError,
        FindingCode::DnsError,
        FindingCode::RateLimited,
        FindingCode::RejectedOther,
        FindingCode::DeferredOther,
        FindingCode::BouncedOther,
        FindingCode::Expired,
        FindingCode::SpamFolder,
        FindingCode::ImapAuthFailed,
        FindingCode::UnexpectedPath,
        FindingCode::ServiceError,
        FindingCode::ImapProtocolError,
        FindingCode::ProviderAuthFailed,
        FindingCode::ProviderRequestInvalid,
        FindingCode::MessageTooLarge,
        FindingCode::ProviderUnavailable,
        FindingCode::SaslNoMechanism,
        FindingCode::SaslServerUnavailable,
        FindingCode::Held,
        FindingCode::Discarded,
        FindingCode::DiskFull,
        FindingCode::NextHopRelayDenied,
        FindingCode::ImapLoginWithoutTls,
        FindingCode::ImapConnectionLimit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::RelayAccessDenied => "relay_access_denied",
            FindingCode::LookupFailure => "lookup_failure",
            FindingCode::NextHopRefused => "next_hop_refused",
            FindingCode::NextHopTimeout => "next_hop_timeout",
            FindingCode::NextHopUnreachable => "next_hop_unreachable",
            FindingCode::RecipientUnknown => "recipient_unknown",
            FindingCode::MailboxPermissionDenied => "mailbox_permission_denied",
            FindingCode::MailboxFull => "mailbox_full",
            FindingCode::AuthFailed => "auth_failed",
            FindingCode::AuthBackendError => "auth_backend_error",
            FindingCode::TlsError => "tls_error",
            FindingCode::DnsError => "dns_error",
            FindingCode::RateLimited => "rate_limited",
            FindingCode::RejectedOther => "rejected_other",
            FindingCode::DeferredOther => "deferred_other",
            FindingCode::BouncedOther => "bounced_other",
            FindingCode::Expired => "expired",
            FindingCode::SpamFolder => "spam_folder",
            FindingCode::ImapAuthFailed => "imap_auth_failed",
            FindingCode::UnexpectedPath => "unexpected_path",
            FindingCode::ServiceError => "service_error",
            FindingCode::ImapProtocolError => "imap_protocol_error",
            FindingCode::ProviderAuthFailed => "provider_auth_failed",
            FindingCode::ProviderRequestInvalid => "provider_request_invalid",
            FindingCode::MessageTooLarge => "message_too_large",
            FindingCode::ProviderUnavailable => "provider_unavailable",
            FindingCode::SaslNoMechanism => "sasl_no_mechanism",
            FindingCode::SaslServerUnavailable => "sasl_server_unavailable",
            FindingCode::Held => "held",
            FindingCode::Discarded => "discarded",
            FindingCode::DiskFull => "disk_full",
            FindingCode::NextHopRelayDenied => "next_hop_relay_denied",
            FindingCode::ImapLoginWithoutTls => "imap_login_without_tls",
            FindingCode::ImapConnectionLimit => "imap_connection_limit",
        }
    }

    /// A short human title ("Relay access denied").
    pub fn title(self) -> &'static str {
        match self {
            FindingCode::RelayAccessDenied => "Relay access denied",
            FindingCode::LookupFailure => "Lookup table failure",
            FindingCode::NextHopRefused => "Next hop refused the connection",
            FindingCode::NextHopTimeout => "Next hop timed out",
            FindingCode::NextHopUnreachable => "Next hop unreachable",
            FindingCode::RecipientUnknown => "Recipient unknown",
            FindingCode::MailboxPermissionDenied => "Mail store permission denied",
            FindingCode::MailboxFull => "Mailbox full",
            FindingCode::AuthFailed => "SMTP authentication failed",
            FindingCode::AuthBackendError => "Authentication backend error",
            FindingCode::TlsError => "TLS failure",
            FindingCode::DnsError => "DNS failure",
            FindingCode::RateLimited => "Rate limited",
            FindingCode::RejectedOther => "Rejected",
            FindingCode::DeferredOther => "Delivery deferred",
            FindingCode::BouncedOther => "Bounced",
            FindingCode::Expired => "Expired in the queue",
            FindingCode::SpamFolder => "Delivered to the spam folder",
            FindingCode::ImapAuthFailed => "Mail client login failed",
            FindingCode::UnexpectedPath => "Unexpected mail path",
            FindingCode::ServiceError => "Mail service error",
            FindingCode::ImapProtocolError => "Mail server refused the session or spoke garbage",
            FindingCode::ProviderAuthFailed => "Provider refused the key or token",
            FindingCode::ProviderRequestInvalid => "Sending API refused the request",
            FindingCode::MessageTooLarge => "Message too large",
            FindingCode::ProviderUnavailable => "Sending API unavailable",
            FindingCode::SaslNoMechanism => "No usable SASL mechanism for the relay",
            FindingCode::SaslServerUnavailable => "SMTP AUTH backend unreachable",
            FindingCode::Held => "Held in the queue",
            FindingCode::Discarded => "Discarded",
            FindingCode::DiskFull => "Disk full",
            FindingCode::NextHopRelayDenied => "Next hop refused to relay",
            FindingCode::ImapLoginWithoutTls => "Mail client login without TLS",
            FindingCode::ImapConnectionLimit => "Too many mail client connections",
        }
    }

    /// Retrying will not help without a change (5xx-class causes).
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            FindingCode::RelayAccessDenied
                | FindingCode::NextHopRelayDenied
                | FindingCode::RecipientUnknown
                | FindingCode::RejectedOther
                | FindingCode::BouncedOther
                | FindingCode::Expired
                | FindingCode::UnexpectedPath
                | FindingCode::ProviderRequestInvalid
                | FindingCode::MessageTooLarge
                | FindingCode::Discarded
        )
    }

    /// The message did not reach its mailbox (or a client could not log in). `spam_folder` is
    /// a degradation, not a failure.
    pub fn is_failure(self) -> bool {
        !matches!(self, FindingCode::SpamFolder)
    }

    /// A fault of the mail servers' own setup or services, whoever's mail met it: a daemon that
    /// died or a socket it could not reach, the auth backend, a lookup table, the disk, the mail
    /// store's permissions, the SASL server. As a host finding, no message need have failed
    /// yet, but the next one may. A client's doing (a wrong password, a login without TLS, too
    /// many connections, a TLS handshake a scanner broke off) is not one.
    pub fn is_server_fault(self) -> bool {
        matches!(
            self,
            FindingCode::ServiceError
                | FindingCode::AuthBackendError
                | FindingCode::LookupFailure
                | FindingCode::DiskFull
                | FindingCode::MailboxPermissionDenied
                | FindingCode::SaslServerUnavailable
        )
    }
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One diagnosed problem with its evidence and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: FindingCode,
    /// The stage where the message got stuck (the host role of the log that showed it).
    pub stage: Option<String>,
    pub host: Option<String>,
    /// The server `host` talked to, when the finding is about it and the log names it
    /// (`HOST[IP]` as logged): the runbook tells its next hop from other servers by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    pub message_id: Option<String>,
    /// One line saying what happened.
    pub message: String,
    /// The log lines that show it (bounded).
    pub evidence: Vec<String>,
    /// The fix, rendered from the built-in runbook when the finding is made; a configured
    /// runbook renders it again ([`Runbook::apply`]) before it is shown.
    pub hint: String,
    /// Occurrences folded into this finding (host-level findings aggregate repeats).
    pub count: u64,
    #[serde(serialize_with = "crate::fusion::rfc3339::serialize_opt")]
    pub first_seen: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::fusion::rfc3339::serialize_opt")]
    pub last_seen: Option<DateTime<Utc>>,
}

impl Finding {
    pub fn new(code: FindingCode, host: Option<&str>, message: impl Into<String>) -> Self {
        let mut f = Finding {
            code,
            stage: host.map(str::to_owned),
            host: host.map(str::to_owned),
            peer: None,
            message_id: None,
            message: message.into(),
            evidence: Vec::new(),
            hint: String::new(),
            count: 1,
            first_seen: None,
            last_seen: None,
        };
        f.rehint();
        f
    }

    /// Render the hint again from the built-in runbook, after the code, host, stage or peer
    /// changed.
    pub fn rehint(&mut self) {
        thread_local! {
            // A correlator makes thousands of findings with the same few hints.
            static BUILTIN_HINTS: RefCell<HintCache> = RefCell::default();
        }
        BUILTIN_HINTS.with_borrow_mut(|cache| {
            cache.set_hint(Runbook::builtin(), &Facts::default(), self);
        });
    }

    /// Widen the seen-interval to include `t`.
    pub fn seen(&mut self, t: Option<DateTime<Utc>>) {
        if let Some(t) = t {
            self.first_seen = Some(self.first_seen.map_or(t, |f| f.min(t)));
            self.last_seen = Some(self.last_seen.map_or(t, |l| l.max(t)));
        }
    }

    /// Add an evidence line unless present or the bound is reached.
    pub fn add_evidence(&mut self, line: &str, max: usize) {
        if self.evidence.len() < max && !self.evidence.iter().any(|e| e == line) {
            self.evidence.push(line.to_owned());
        }
    }
}

mod auth;
mod dovecot_socket;
mod peer;
mod postfix_problem;
use auth::{
    auth_backend_unreadable, auth_permission_denied, auth_request_timed_out, auth_service_unusable,
};
use dovecot_socket::{dovecot_socket_failure, SocketFailure};
pub use peer::delivery_peer;
pub use postfix_problem::classify_postfix_problem;

fn has(hay: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| hay.contains(n))
}

/// What a reply / status / error text names, in the order the causes are tried: the first whose
/// needle the (lower-cased) text contains wins. The order matters where texts name two things:
/// a TLS failure before the credentials, a missing SASL mechanism before the credentials
/// (`SASL authentication failed; cannot authenticate to server X: no mechanism available` is a
/// missing plugin or a security option, not a password).
/// A full disk in Postfix's words (a reply, a warning) and the kernel's (Dovecot's errors).
const DISK_FULL: &[&str] = &[
    "insufficient system storage",
    "not enough free space in mail queue",
    "no space left on device",
    "not enough disk space",
];

const TEXT_CAUSES: &[(FindingCode, &[&str])] = &[
    // Postfix's words, then other servers' (Exchange's `550 5.7.1 Unable to relay`, its
    // `5.7.54`, Sendmail's `Relaying denied`, qmail's `sorry, that domain isn't in my list`).
    (
        FindingCode::RelayAccessDenied,
        &[
            "relay access denied",
            "unable to relay",
            "relaying denied",
            "relay denied",
            "relay not permitted",
            "relaying not allowed",
            "relaying prohibited",
            "we do not relay",
            "not permitted to relay",
            "isn't in my list of allowed rcpthosts",
        ],
    ),
    // SendGrid's relay refusing a From address it has not verified (`550 The from address
    // does not match a verified Sender Identity`), the same as its API's 403: the provider's
    // account, not the relay's credentials. So is an account out of its plan's credits, which
    // the relay answers to AUTH with `451 Authentication failed: Maximum credits exceeded`
    // (the API with a 401 of the same words): the password is right, the plan is spent.
    (
        FindingCode::ProviderAuthFailed,
        &["verified sender identity", "maximum credits exceeded"],
    ),
    // A relay that wants SMTP AUTH and got none (SendGrid's `550 Unauthenticated senders not
    // allowed`): smtp_sasl_auth_enable or its password map is missing.
    (
        FindingCode::AuthFailed,
        &["unauthenticated senders not allowed"],
    ),
    // A sender's daily limit (Gmail's `550 5.4.5 Daily user sending quota exceeded`), before
    // the mailbox quotas below.
    (
        FindingCode::RateLimited,
        &["sending quota exceeded", "sending limit exceeded"],
    ),
    // Postfix about its own configuration (dsn 4.3.5/4.3.0): smtpd's `451 4.3.5 Server
    // configuration error` (a restriction or map it cannot use), `Server configuration
    // problem`, `421 4.3.0 Server local data error` (a queue file it cannot read); smtp's and
    // local's `mail system configuration error`, `local data error while talking to X`. Before
    // the causes below: every message meets it, not one recipient.
    (
        FindingCode::ServiceError,
        &[
            "server configuration error",
            "server configuration problem",
            "server local data error",
            "local data error while",
            "mail system configuration error",
        ],
    ),
    (FindingCode::DiskFull, DISK_FULL),
    (
        FindingCode::UnexpectedPath,
        &[
            "loops back to myself",
            "mail forwarding loop",
            "too many hops",
        ],
    ),
    (
        FindingCode::LookupFailure,
        &[
            "address resolver failure",
            "lookup failure",
            "lookup error",
            "transport_maps",
            "open database",
            "table lookup problem",
        ],
    ),
    (
        FindingCode::TlsError,
        &[
            "tls is required",
            "cannot start tls",
            "tls handshake",
            "ssl_connect",
            "ssl_accept",
            "certificate verification failed",
            "server certificate not verified",
            // Postfix's smtp(8) with a `secure`/`verify` level: the chain is not trusted.
            "server certificate not trusted",
            "must issue a starttls",
            "cannot load certificate",
            "can't load ssl certificate",
            // smtp's `client TLS configuration problem` (its own smtp_tls_* settings or policy
            // table are invalid), smtpd's `TLS context initialization failed` (port 465's
            // wrapper mode, or STARTTLS, with no usable key or certificate).
            "tls configuration problem",
            "tls context initialization failed",
        ],
    ),
    (
        FindingCode::SaslNoMechanism,
        &[
            "no mechanism available",
            "no worthy mechs",
            // `SASL authentication failed: server X offered no compatible authentication
            // mechanisms for this type of connection security`: the security options (or no
            // TLS) rule out what the relay offers; the password was never tried.
            "no compatible authentication mechanisms",
        ],
    ),
    (
        FindingCode::AuthFailed,
        &[
            "sasl authentication failed",
            "authentication failed",
            "authentication required",
            " 535 ",
            "5.7.8",
        ],
    ),
    (
        FindingCode::NextHopUnreachable,
        &[
            "network is unreachable",
            "no route to host",
            "host is unreachable",
        ],
    ),
    (FindingCode::NextHopRefused, &["connection refused"]),
    (
        FindingCode::NextHopTimeout,
        &[
            "connection timed out",
            "timed out while",
            "operation timed out",
        ],
    ),
    (
        FindingCode::DnsError,
        &[
            "host or domain name not found",
            "name service error",
            "host not found",
            "domain not found",
            "nxdomain",
            // smtp with smtp_host_lookup = native (getaddrinfo): `unable to look up host X:
            // Name or service not known`; a reply filter (smtp_dns_reply_filter) that drops
            // every record: `Error looking up name=X type=MX: DNS reply filter drops all results`.
            "unable to look up host ",
            "dns reply filter",
            // smtp: the destination's MX records list this host, and no host of a better
            // preference (`unable to find primary relay for partner.example`, dsn=4.3.5).
            "unable to find primary relay",
            // RFC 7505: the domain publishes a null MX (`MX 0 .`), it accepts no mail at all:
            // Postfix's `Domain x does not accept mail (nullMX)` (dsn=5.1.0), others' `556
            // 5.1.10 Recipient address has null MX`. No mailbox to create; the address or the
            // domain's DNS is wrong.
            "(nullmx)",
            "null mx",
            // A DNSBL that refused the query: Spamhaus answers queries sent through a public
            // resolver (or too many) with 127.255.255.254 (.255), whose TXT says so; Postfix,
            // told to reject any 127/8 answer, rejects every client: `554 5.7.1 Service
            // unavailable; Client host [IP] blocked using zen.spamhaus.org; Error: open
            // resolver; https://check.spamhaus.org/returnc/pub/IP/`. The query failed; the
            // client is not listed.
            "error: open resolver",
            "error: excessive number of queries",
            "spamhaus.org/returnc/",
        ],
    ),
    (
        FindingCode::MailboxPermissionDenied,
        &[
            "permission denied",
            "missing +w perm",
            "missing +x perm",
            // local(8) with strict_mailbox_ownership: `destination /var/mail/bob is not owned by
            // recipient`.
            "not owned by recipient",
            // The userdb's uid is below first_valid_uid (or above last_valid_uid).
            "mail access for users with uid",
        ],
    ),
    (
        FindingCode::MailboxFull,
        &[
            "quota exceeded",
            // Dovecot's words for the file system's quota (EDQUOT).
            "not enough disk quota",
            "mailbox full",
            "mailbox is full",
            "over quota",
            "overquota",
            " 5.2.2 ",
            " 4.2.2 ",
        ],
    ),
    (
        FindingCode::MessageTooLarge,
        &[
            // Postfix's reply and its SMTP client's check of a server's SIZE, Exchange's,
            // Gmail's, Sendmail's; RFC 3463's codes for a message over a size limit.
            "message size exceeds",
            "exceeds size limit",
            "message size limit",
            "message too big",
            "message too large",
            "message file too big",
            "message length exceeds",
            // Exchange's and Node's smtp-server's "exceeds fixed maximum message size".
            "maximum message size",
            " 5.3.4 ",
            " 5.2.3 ",
        ],
    ),
    (
        FindingCode::RecipientUnknown,
        &[
            "user doesn't exist",
            "user unknown",
            "unknown user",
            "no such user",
            "recipient unknown",
            "mailbox unavailable",
            "does not exist",
            " 5.1.1 ",
            // Other servers' words for it (Logwatch's list of unknown-recipient replies).
            "mailbox not found",
            "no mailbox here by that name",
            "invalid recipient",
            "unknown recipient",
            "no account by that name",
            // Exchange, Barracuda: `550 The recipient cannot be verified. Please check all
            // recipients of this message to verify they are valid.`
            "recipient cannot be verified",
        ],
    ),
    (
        FindingCode::RateLimited,
        &[
            "rate limit",
            "too many connections",
            "too many messages",
            "too many recipients",
            // anvil's smtpd_client_message_rate_limit: `450 4.7.1 Error: too much mail from X`.
            "too much mail from",
            "4.7.28",
            "throttl",
            "unusual rate",
            // Gmail's older words for the same 421 4.7.0 block: `an unusual amount of
            // unsolicited mail ... temporarily blocked`.
            "unusual amount of unsolicited",
            // Gmail's per-user limit: `450-4.2.1 The Gmail user you are trying to contact is
            // receiving mail at a rate that prevents additional messages from being delivered`
            // (Postfix joins a multi-line reply with each line's `450-4.2.1` left in).
            "at a rate that prevents",
            // Office 365: `432 4.3.2 Concurrent connections limit exceeded`; Dovecot's LMTP at
            // lmtp_user_concurrency_limit: `451 4.3.0 <x> Too many concurrent deliveries for
            // user`.
            "concurrent connections limit",
            "too many concurrent deliveries",
            // Greylisting: a temporary refusal the sender's retry gets through.
            "greylist",
            "concurrency limit exceeded",
            // postscreen and smtpd at their process limits: `all screening ports busy`, `all
            // server ports busy`.
            "ports busy",
        ],
    ),
    // The delivery agent itself failed (a transport missing from master.cf, a pipe command that
    // crashes): Postfix suspends the transport and every message for it waits.
    (
        FindingCode::ServiceError,
        &[
            "transport is unavailable",
            "unknown mail transport error",
            // qmgr: the master.cf service of the transport is not running.
            "mail transport unavailable",
        ],
    ),
];

/// The specific cause named by a reply / status / error text, if any (case-insensitive).
/// Generic outcomes (`*_other`) are left to the callers, who know the status.
pub fn classify_text(text: &str) -> Option<FindingCode> {
    let mut t = text.to_ascii_lowercase();
    // dovecot-lda's first error line, which local(8) quotes as the command's output, may be
    // its harmless failure to reach the stats socket; the cause is elsewhere.
    if dovecot_socket_failure(&t) == Some(SocketFailure::Stats) {
        t = dovecot_socket::without_failed_connect(&t);
    }
    let t = t.as_str();
    if auth_permission_denied(t) {
        return Some(FindingCode::AuthBackendError);
    }
    let hits = cause_hits(t);
    let code = TEXT_CAUSES
        .iter()
        .enumerate()
        .find(|&(i, &(code, _))| hits & (1 << i) != 0 || names_without_needle(code, t))
        .map(|(_, (code, _))| *code)?;
    // `Sender address rejected: undeliverable address: ... User unknown`: the unknown address is
    // the sender's (reject_unverified_sender), not the message's recipient.
    if code == FindingCode::RecipientUnknown && t.contains("sender address rejected") {
        return None;
    }
    // `host mx00.emig.gmx.net[...] refused to talk to me: 550-Requested action not taken:
    // mailbox unavailable 550-Reject due to policy restrictions`: a refusal at the greeting,
    // before any recipient was named; it is about this server (its address, its reputation).
    if code == FindingCode::RecipientUnknown && t.contains("refused to talk to me") {
        return None;
    }
    // `Sender address rejected: Domain not found`, `Helo command rejected: Host not found`:
    // this server's checks of a client's own names (reject_unknown_sender_domain and the
    // like), not a lookup this host's own mail needed.
    let client_check = [
        "sender address rejected",
        "helo command rejected",
        "client host rejected",
    ];
    if code == FindingCode::DnsError && has(t, &client_check) {
        return None;
    }
    // pipe(8)'s `Command died with status 75: "/usr/bin/spamc". Command output: spamc: connect
    // to spamd on 127.0.0.1 failed ...: Connection refused`: the command's own connection (a
    // local filter's daemon) failed, not a connection to the next hop.
    let network = [
        FindingCode::NextHopRefused,
        FindingCode::NextHopTimeout,
        FindingCode::NextHopUnreachable,
    ];
    if network.contains(&code) && t.contains("command output:") {
        return Some(FindingCode::ServiceError);
    }
    Some(code)
}

/// Which of [`TEXT_CAUSES`] have a needle in `t` (bit `i` for the `i`th), in one pass of an
/// automaton of all their needles, built on first use. Asked of each needle in turn (a
/// searcher made for each), a failed delivery's text took 11,000 instructions.
fn cause_hits(t: &str) -> u128 {
    static NEEDLES: LazyLock<(AhoCorasick, Vec<usize>)> = LazyLock::new(|| {
        let (cause, needles): (Vec<usize>, Vec<&str>) = TEXT_CAUSES
            .iter()
            .enumerate()
            .flat_map(|(i, (_, needles))| needles.iter().map(move |n| (i, *n)))
            .unzip();
        let ac = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .build(needles)
            .expect("the cause needles make an automaton");
        (ac, cause)
    });
    const { assert!(TEXT_CAUSES.len() <= 128) };
    let (ac, cause) = &*NEEDLES;
    ac.find_overlapping_iter(t)
        .fold(0, |hits, m| hits | 1 << cause[m.pattern().as_usize()])
}

/// The causes a text names in a shape a needle does not catch: a reply that starts with 535, and
/// Postfix's `connect to private/x: No such file or directory` (a local socket that is not there).
fn names_without_needle(code: FindingCode, t: &str) -> bool {
    match code {
        FindingCode::AuthFailed => t.starts_with("535"),
        FindingCode::NextHopRefused => {
            (t.contains("connect to ") && t.contains("no such file or directory"))
                // Postfix's own `connect to dell.corp.test[private/dovecot-lmtp]: Permission
                // denied`: the next hop's socket does not let Postfix in; no mail store was
                // touched.
                || ((t.starts_with("connect to ") || t.contains("suspended: connect to "))
                    && t.contains("permission denied"))
                // A server on the network that took the connection and closed it before its
                // greeting (its process limit, TCP wrappers, a filter in front of it): it turned
                // the session away. A local socket's server is left to Dovecot's own lines.
                || (t.contains("lost connection with ")
                    && t.contains("while receiving the initial server greeting")
                    && delivery_peer(t, None).is_some())
        }
        _ => false,
    }
}

/// The cause enhanced code `e` names for a reply whose text is `text`. An unknown address the
/// text says is the sender's is not the recipient's: Postfix writes a rejected sender's X.1.1 as
/// X.1.0 (`550 5.1.0 <x@y>: Sender address rejected: User unknown in virtual mailbox table`).
fn enhanced_cause(e: &str, text: &str) -> Option<FindingCode> {
    let c = classify_enhanced(e)?;
    let senders = c == FindingCode::RecipientUnknown
        && text
            .to_ascii_lowercase()
            .contains("sender address rejected");
    (!senders).then_some(c)
}

/// Classify a reply the client got from a server (e.g. at submission time).
/// The cause an enhanced status code (RFC 3463) names unambiguously, if any.
fn classify_enhanced(e: &str) -> Option<FindingCode> {
    let e = e.trim();
    if e == "5.1.10" {
        // RFC 7505: "Recipient address has null MX".
        return Some(FindingCode::DnsError);
    }
    if e.starts_with("5.1.1") || e == "5.1.0" {
        return Some(FindingCode::RecipientUnknown);
    }
    Some(match e {
        "4.2.2" | "5.2.2" => FindingCode::MailboxFull,
        // Exchange Online: "Unable to relay recipients in domain".
        "5.7.54" => FindingCode::RelayAccessDenied,
        "5.7.8" | "4.7.8" => FindingCode::AuthFailed,
        "4.7.28" | "4.5.3" => FindingCode::RateLimited,
        // "Mail system full": the server's own storage, not a mailbox's quota.
        "4.3.1" | "5.3.1" => FindingCode::DiskFull,
        // "Message too big for system", "Message length exceeds administrative limit".
        "5.3.4" | "5.2.3" => FindingCode::MessageTooLarge,
        _ => return None,
    })
}

pub fn classify_smtp_reply(code: u16, enhanced: Option<&str>, text: &str) -> FindingCode {
    // Codes first where they are unambiguous, then the text, then the class.
    if let Some(c) = enhanced.and_then(|e| enhanced_cause(e, text)) {
        return c;
    }
    if code == 535 {
        return FindingCode::AuthFailed;
    }
    if let Some(c) = classify_text(text) {
        return c;
    }
    if code == 421 && text.to_ascii_lowercase().contains("too many") {
        return FindingCode::RateLimited;
    }
    FindingCode::RejectedOther
}

/// Classify the text of a Postfix `status=deferred (...)` / `status=bounced (...)`.
/// Without a specific cause: a 5xx reply in the text means bounced, otherwise deferred.
pub fn classify_status_text(text: &str) -> FindingCode {
    if let Some(c) = classify_text(text) {
        return c;
    }
    let t = text.trim_start();
    if t.contains(" said: 5") || t.contains(" refused to talk to me: 5") || t.starts_with('5') {
        FindingCode::BouncedOther
    } else {
        FindingCode::DeferredOther
    }
}

/// Classify a delivery outcome with its status word (`None` for a successful one): the reason's
/// text first, then the line's own `dsn=` (Postfix's enhanced code for it: a remote server's
/// `550 Invalid recipient` still carries `dsn=5.1.1`).
pub fn classify_delivery(
    status: DeliveryStatus,
    dsn: Option<&str>,
    reason: &str,
) -> Option<FindingCode> {
    // A relay refusal in a delivery's reason is the receiving server's, not this host's.
    let specific = || {
        classify_text(reason)
            .or_else(|| dsn.and_then(|e| enhanced_cause(e, reason)))
            .map(|c| match c {
                FindingCode::RelayAccessDenied => FindingCode::NextHopRelayDenied,
                c => c,
            })
    };
    match status {
        DeliveryStatus::Sent | DeliveryStatus::Verify => None,
        DeliveryStatus::Deferred => Some(specific().unwrap_or(FindingCode::DeferredOther)),
        DeliveryStatus::Bounced => Some(specific().unwrap_or(FindingCode::BouncedOther)),
        DeliveryStatus::Other => Some(specific().unwrap_or_else(|| classify_status_text(reason))),
    }
}

/// Classify the reason of smtpd's `SASL <mech> authentication failed: REASON`: the client's
/// credentials, unless smtpd lost its SASL backend (`Connection lost to authentication
/// server`, a failed connect to it: Dovecot's auth, saslauthd), which fails every client alike.
pub fn classify_sasl_failure(reason: &str) -> FindingCode {
    let r = reason.to_ascii_lowercase();
    if r.contains("authentication server") || (r.starts_with("connect to ") && r.contains("failed"))
    {
        FindingCode::SaslServerUnavailable
    } else {
        FindingCode::AuthFailed
    }
}

/// Classify a Dovecot error/warning/fatal line into a finding.
pub fn classify_dovecot_problem(severity: Severity, text: &str) -> Option<FindingCode> {
    let t = text.to_ascii_lowercase();
    if has(&t, DISK_FULL) {
        return Some(FindingCode::DiskFull);
    }
    if auth_permission_denied(&t) || auth_backend_unreadable(&t) {
        return Some(FindingCode::AuthBackendError);
    }
    match dovecot_socket_failure(&t) {
        Some(SocketFailure::Service) => return Some(FindingCode::ServiceError),
        Some(SocketFailure::Stats) => return None,
        None => {}
    }
    // The master's word on a crashed or failing service process (`service(auth): child 19654
    // returned error 89`, `killed with signal 11`, `command startup failed, throttling`).
    if t.starts_with("service(")
        && has(
            &t,
            &[
                "returned error",
                "killed with signal",
                "command startup failed",
            ],
        )
    {
        return Some(FindingCode::ServiceError);
    }
    // The master turning clients away at a service's limit (`service(imap-login):
    // process_limit (100) reached, client connections are being dropped`): the setting it
    // names is to raise (doveconf -n), as the service error's hint says.
    if t.starts_with("service(") && has(&t, &["process_limit (", "client_limit ("]) {
        return Some(FindingCode::ServiceError);
    }
    if has(
        &t,
        &[
            "permission denied",
            "missing +w perm",
            "missing +x perm",
            "eacces",
            "mail access for users with uid",
        ],
    ) {
        return Some(FindingCode::MailboxPermissionDenied);
    }
    if has(
        &t,
        &[
            "quota exceeded",
            "mailbox is full",
            "over quota",
            "not enough disk quota",
        ],
    ) {
        return Some(FindingCode::MailboxFull);
    }
    if t.contains("user doesn't exist") {
        return Some(FindingCode::RecipientUnknown);
    }
    if has(
        &t,
        &[
            "password query failed",
            "user query failed",
            "connect failed to database",
            "access denied for user",
            // The userdb did not answer for a recipient or a login (`Failed to lookup user
            // frank@corp.test: Internal error occurred`); an unknown user is told apart above.
            "failed to lookup user",
        ],
    ) || auth_request_timed_out(&t)
    {
        return Some(FindingCode::AuthBackendError);
    }
    // The user was found, but their mail storage could not be set up (`Failed to initialize
    // user: Namespace '': Mail storage autodetection failed with home=/home/eve`): a setting
    // (mail_location, the home, the uid) names it.
    if t.contains("failed to initialize user") {
        return Some(FindingCode::ServiceError);
    }
    // A process out of file descriptors (`open(.../dovecot.index.log) failed: Too many open
    // files`): deliveries and logins fail until its open-file limit is raised (the service's
    // `ulimit -n`, which Dovecot's master sizes from the services' client limits).
    if t.contains("too many open files") {
        return Some(FindingCode::ServiceError);
    }
    // Sieve's redirect or vacation reply could not be sent for now (`redirect action: failed
    // to redirect message to <x>: Sendmail program returned error (temporary failure)`):
    // Dovecot's own way out, `sendmail_path` or `submission_host`, fails, and LMTP defers the
    // message. (Refused for good, the script's implicit keep saves it: a note, no finding.)
    // The sendmail program's own word, which Dovecot logs without a user (`lmtp: Error:
    // sendmail: fatal: open /etc/postfix/main.cf: No such file or directory`), is the cause.
    let sieve_send = has(
        &t,
        &[
            "failed to redirect message to",
            "failed to send vacation response",
        ],
    );
    if (sieve_send && t.contains("(temporary failure)"))
        || has(&t, &["sendmail program returned error", "sendmail: fatal:"])
    {
        return Some(FindingCode::ServiceError);
    }
    if has(
        &t,
        &[
            "can't load ssl certificate",
            "can't load ssl private key",
            "ssl_ctx_use",
        ],
    ) || crate::logs::login_certificate_refused(text.as_bytes())
    {
        return Some(FindingCode::TlsError);
    }
    if auth_service_unusable(severity, &t) {
        return Some(FindingCode::ServiceError);
    }
    match severity {
        Severity::Fatal | Severity::Panic => Some(FindingCode::ServiceError),
        Severity::Warning | Severity::Error => None,
    }
}

/// Mailbox names that mean "filed as spam".
pub fn is_spam_mailbox(name: &str) -> bool {
    let n = name.trim().trim_matches(['\'', '"']).to_ascii_lowercase();
    let leaf = n.rsplit(['/', '.']).next().unwrap_or(&n);
    matches!(
        leaf,
        "junk" | "spam" | "junk e-mail" | "junk email" | "bulk" | "bulk mail"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The automaton finds what asking each needle in turn finds: every needle alone, amid other
    /// text, twice, overlapping another, and pairs of needles of different causes.
    #[test]
    fn cause_hits_are_the_needles_in_turn() {
        let in_turn = |t: &str| {
            TEXT_CAUSES
                .iter()
                .enumerate()
                .filter(|(_, (_, needles))| has(t, needles))
                .fold(0u128, |hits, (i, _)| hits | 1 << i)
        };
        let needles: Vec<&str> = TEXT_CAUSES
            .iter()
            .flat_map(|(_, n)| n.iter().copied())
            .collect();
        let mut texts = vec![String::new(), "250 2.0.0 ok: queued as 4abc".to_string()];
        for (k, n) in needles.iter().enumerate() {
            let other = needles[(k * 7 + 3) % needles.len()];
            texts.push((*n).to_string());
            texts.push(format!(
                "451 4.3.0 <a@b>: {n} (in reply to rcpt to command)"
            ));
            texts.push(format!("{n}{n}"));
            texts.push(format!("{}{n}", &n[..n.len() / 2]));
            texts.push(format!("x {n} y {other} z"));
            texts.push(format!("{other}{n}"));
        }
        for t in &texts {
            assert_eq!(cause_hits(t), in_turn(t), "{t:?}");
        }
        assert_ne!(cause_hits("relay access denied; no route to host"), 0);
    }

    #[test]
    fn smtp_replies() {
        use FindingCode::*;
        let cases: &[(u16, Option<&str>, &str, FindingCode)] = &[
            (
                554,
                Some("5.7.1"),
                "<bob@other.test>: Relay access denied",
                RelayAccessDenied,
            ),
            (
                454,
                Some("4.7.1"),
                "<bob@other.test>: Relay access denied",
                RelayAccessDenied,
            ),
            (
                451,
                Some("4.3.0"),
                "<a@newdomain.test>: Temporary lookup failure",
                LookupFailure,
            ),
            (
                535,
                Some("5.7.8"),
                "Error: authentication failed: authentication failure",
                AuthFailed,
            ),
            (535, None, "Authentication credentials invalid", AuthFailed),
            (
                550,
                Some("5.1.1"),
                "<x@corp.test>: Recipient address rejected: User unknown in virtual mailbox table",
                RecipientUnknown,
            ),
            (
                452,
                Some("4.2.2"),
                "<alice@corp.test> Quota exceeded (mailbox for user is full)",
                MailboxFull,
            ),
            (
                421,
                Some("4.7.0"),
                "mx.corp.test Error: too many connections from 198.18.2.2",
                RateLimited,
            ),
            (
                450,
                Some("4.7.1"),
                "Client host rejected: rate limit exceeded",
                RateLimited,
            ),
            (
                421,
                Some("4.7.28"),
                "Our system has detected an unusual rate of unsolicited mail",
                RateLimited,
            ),
            (
                421,
                Some("4.7.0"),
                "[88.16.31.62] Our system has detected an unusual amount of unsolicited 421-4.7.0 mail originating from your IP address. To protect our users from 421-4.7.0 spam, mail sent from your IP address has been temporarily blocked.",
                RateLimited,
            ),
            (
                450,
                Some("4.2.1"),
                "The Gmail user you are trying to contact is receiving 450-4.2.1 mail at a rate that prevents additional messages from 450-4.2.1 being delivered.",
                RateLimited,
            ),
            (
                432,
                Some("4.3.2"),
                "Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information.",
                RateLimited,
            ),
            (
                530,
                Some("5.7.0"),
                "Must issue a STARTTLS command first",
                TlsError,
            ),
            (
                554,
                Some("5.7.1"),
                "<x>: Sender address rejected: Access denied",
                RejectedOther,
            ),
            (
                450,
                Some("4.7.1"),
                "<x>: Helo command rejected: Host not found",
                // The client's own HELO name checked by this server, not this host's DNS.
                RejectedOther,
            ),
            (
                550,
                Some("5.7.26"),
                "Unauthenticated email is not accepted",
                RejectedOther,
            ),
        ];
        for (code, enh, text, want) in cases {
            assert_eq!(
                classify_smtp_reply(*code, *enh, text),
                *want,
                "{code} {text}"
            );
        }
    }

    #[test]
    fn other_servers_wordings_name_their_causes() {
        use FindingCode::*;
        for (text, want) in [
            (
                "550 5.7.1 Unable to relay for ops@ops.example",
                Some(RelayAccessDenied),
            ),
            (
                "550 5.7.1 <x@y.example>... Relaying denied",
                Some(RelayAccessDenied),
            ),
            (
                "550 5.7.54 SMTP; Unable to relay recipients in domain",
                Some(RelayAccessDenied),
            ),
            (
                "550-\"The recipient cannot be verified.  Please check",
                Some(RecipientUnknown),
            ),
            (
                "delivery temporarily suspended: transport is unavailable",
                Some(ServiceError),
            ),
            // A client's own names checked by this server: not this host's DNS.
            (
                "450 4.1.8 <a@b.example>: Sender address rejected: Domain not found",
                None,
            ),
            ("450 4.7.1 <h>: Helo command rejected: Host not found", None),
            (
                "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]",
                None,
            ),
            // This host's own lookup still is.
            (
                "Host or domain name not found. Name service error for name=x.example",
                Some(DnsError),
            ),
        ] {
            assert_eq!(classify_text(text), want, "{text}");
        }
        assert_eq!(classify_enhanced("5.7.54"), Some(RelayAccessDenied));
        let problem = |t| classify_postfix_problem(Severity::Warning, t);
        assert_eq!(
            problem("problem talking to service rewrite: Connection reset by peer"),
            Some(ServiceError)
        );
        assert_eq!(
            problem("dict_ldap_lookup: Search error 80: Internal (implementation specific) error"),
            Some(LookupFailure)
        );
    }

    #[test]
    fn status_texts() {
        use FindingCode::*;
        let cases: &[(&str, FindingCode)] = &[
            ("connect to 100.64.0.2[100.64.0.2]:2525: Connection refused", NextHopRefused),
            ("delivery temporarily suspended: connect to 100.64.0.2[100.64.0.2]:2525: Connection timed out", NextHopTimeout),
            ("connect to 100.64.0.2[100.64.0.2]:2525: Network is unreachable", NextHopUnreachable),
            ("connect to 100.64.0.2[100.64.0.2]:2525: No route to host", NextHopUnreachable),
            ("conversation with x[1.2.3.4] timed out while receiving the initial server greeting", NextHopTimeout),
            ("address resolver failure", LookupFailure),
            ("Host or domain name not found. Name service error for name=nowhere.test type=MX: Host not found, try again", DnsError),
            // A null MX (RFC 7505): the domain takes no mail; no mailbox is missing.
            ("Domain nullmx.example does not accept mail (nullMX)", DnsError),
            ("host mx.example[192.0.2.1] said: 556 5.1.10 Recipient address has null MX (in reply to RCPT TO command)", DnsError),
            // A DNSBL's answer that its query was refused (Spamhaus via a public resolver), as
            // Postfix's reject quotes it for a client or a sender domain: no listing.
            ("554 5.7.1 Service unavailable; Client host [104.47.21.166] blocked using sbl.spamhaus.org; Error: open resolver; https://www.spamhaus.org/returnc/pub/172.69.79.93", DnsError),
            ("554 5.7.1 Service unavailable; Sender address [user@gmail.com] blocked using dbl.spamhaus.org; Error: open resolver; https://check.spamhaus.org/returnc/pub/13.66.150.136/", DnsError),
            ("554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org; Error: excessive number of queries; https://www.spamhaus.org/returnc/vol/192.0.2.53", DnsError),
            ("host store[private/dovecot-lmtp] said: 550 5.1.1 <x@corp.test> User doesn't exist: x@corp.test (in reply to RCPT TO command)", RecipientUnknown),
            // Turned away at the greeting, whatever words the reply uses.
            ("host mx00.emig.gmx.net[212.227.15.9] refused to talk to me: 550-Requested action not taken: mailbox unavailable 550-Reject due to policy restrictions. 550 For explanation visit https://www.gmx.net/mail/senderguidelines?c=pr", BouncedOther),
            ("host store[private/dovecot-lmtp] said: 451 4.2.0 <alice@corp.test> Internal error occurred. Refer to server log for more information. (in reply to end of DATA command)", DeferredOther),
            ("host x[1.2.3.4] said: 550 5.7.1 Message rejected as spam (in reply to end of DATA command)", BouncedOther),
            ("mail for corp.test loops back to myself", UnexpectedPath),
            ("SASL authentication failed; server smtp.provider.test[198.18.2.2] said: 535 5.7.8 Error: authentication failed", AuthFailed),
            ("TLS is required, but was not offered by host x[1.2.3.4]", TlsError),
            ("connect to store[private/dovecot-lmtp]: No such file or directory", NextHopRefused),
            ("maildir delivery failed: create maildir file /var/mail/x/tmp/1: Permission denied", MailboxPermissionDenied),
            ("Server certificate not trusted", TlsError),
            ("userdb lookup: connect(/var/run/dovecot/auth-userdb) failed: Permission denied (euid=5000(vmail) egid=5000(vmail))", AuthBackendError),
            ("mail transport unavailable", ServiceError),
            ("all server ports busy", RateLimited),
            // Dovecot's: the file system's quota; a userdb uid under first_valid_uid.
            ("msgid=<fq1@y>: save failed to INBOX: Not enough disk quota", MailboxFull),
            ("Failed to initialize user: Mail access for users with UID 1000 not permitted (see first_valid_uid in config file, uid from userdb lookup).", MailboxPermissionDenied),
            ("lost connection with x[1.2.3.4] while sending end of data -- message may be sent more than once", DeferredOther),
            ("delivery temporarily suspended: lost connection with mailrise01.example[192.168.8.16] while receiving the initial server greeting", NextHopRefused),
            ("lost connection with dell.corp.test[/run/lmtp] while receiving the initial server greeting", DeferredOther),
            ("host dell.corp.test[private/dovecot-lmtp] said: 451 4.3.0 <bob@corp.test> Too many concurrent deliveries for user (in reply to RCPT TO command)", RateLimited),
        ];
        for (text, want) in cases {
            assert_eq!(classify_status_text(text), *want, "{text}");
        }
    }

    /// Texts of the installed Postfix (3.7's binaries' own format strings, filled in): each
    /// names its cause, not the first familiar word in it.
    #[test]
    fn postfix_own_texts_name_their_cause() {
        use FindingCode::*;
        let statuses: &[(&str, FindingCode)] = &[
            // The LMTP socket's mode, not the mail store's owner.
            ("connect to dell.corp.test[private/dovecot-lmtp]: Permission denied", NextHopRefused),
            ("delivery temporarily suspended: connect to dell.corp.test[private/dovecot-lmtp]: Permission denied", NextHopRefused),
            // A pipe command's own connection (spamc to spamd), not the next hop.
            ("Command died with status 75: \"/usr/bin/spamc\". Command output: spamc: connect to spamd on 127.0.0.1 failed, retrying (#1 of 3): Connection refused", ServiceError),
            ("Command died with status 77: \"/usr/lib/dovecot/deliver\". Command output: Quota exceeded (mailbox for user is full)", MailboxFull),
            ("SASL authentication failed: server smtp.provider.example[198.51.100.25] offered no compatible authentication mechanisms for this type of connection security", SaslNoMechanism),
            ("client TLS configuration problem", TlsError),
            ("unable to look up host relay.corp.test: Name or service not known", DnsError),
            ("Error looking up name=partner.example type=MX: DNS reply filter drops all results", DnsError),
            // The domain's MX records name this host and no better one (dsn=4.3.5).
            ("unable to find primary relay for partner.example", DnsError),
            ("mail system configuration error", ServiceError),
            ("Server configuration error", ServiceError),
            ("local data error while talking to mx.partner.example[203.0.113.50]", ServiceError),
            ("cannot update mailbox /var/mail/bob for user bob. destination /var/mail/bob is not owned by recipient", MailboxPermissionDenied),
        ];
        for (text, want) in statuses {
            assert_eq!(classify_status_text(text), *want, "{text}");
        }
        let replies: &[(&str, FindingCode)] = &[
            ("Server configuration error", ServiceError),
            (
                "<bob@corp.test>: Recipient address rejected: Server configuration problem",
                ServiceError,
            ),
            ("ec2.corp.test Server local data error", ServiceError),
            ("Error: too much mail from 203.0.113.9", RateLimited),
        ];
        for (text, want) in replies {
            assert_eq!(classify_smtp_reply(451, None, text), *want, "{text}");
        }
        let problems: &[(&str, Option<FindingCode>)] = &[
            // A map's configuration file it may not read: the table, not a mailbox.
            ("mysql:/etc/postfix/mysql-virtual-mailbox-maps.cf is unavailable. open /etc/postfix/mysql-virtual-mailbox-maps.cf: Permission denied", Some(LookupFailure)),
            ("socketmap:inet:127.0.0.1:10001:sender-canonical socketmap server temporary error: backend database unreachable", Some(LookupFailure)),
            ("dnsblog_query: lookup error for DNS query 9.113.0.203.zen.spamhaus.org: Host or domain name not found. Name service error for name=9.113.0.203.zen.spamhaus.org type=A: Host not found, try again", Some(DnsError)),
            ("TLS policy lookup error for partner.example/mx.partner.example: Host or domain name not found. Name service error for name=_25._tcp.mx.partner.example type=TLSA: Host not found, try again", Some(DnsError)),
            ("connect to Milter service unix:/run/opendkim/opendkim.sock: Permission denied", Some(ServiceError)),
            ("milter inet:127.0.0.1:8891: unreasonable packet length: 1213486160 > 1073741823", Some(ServiceError)),
            ("milter inet:127.0.0.1:8891: read error in initial handshake", Some(ServiceError)),
            ("connect #1 to subsystem private/proxymap: Connection refused", Some(ServiceError)),
            ("timeout talking to proxy inet:[127.0.0.1]:10024", Some(ServiceError)),
            ("cannot pass connection to service private/smtpd: Resource temporarily unavailable", Some(ServiceError)),
            // Cyrus SASL's smtpd.conf broken (or its plugins missing): smtpd exits, and no
            // client can authenticate.
            ("SASL per-process initialization failed: generic failure", Some(SaslServerUnavailable)),
            ("Wrapper-mode request dropped from unknown[198.18.3.1] for service submissions. TLS context initialization failed. For details see earlier warnings in your logs.", Some(TlsError)),
            // An SQL or LDAP table Postfix could not ask, and its client's reason.
            ("proxy:mysql:/etc/postfix/mysql-virtual_domains.cf(0,lock|fold_fix): table lookup problem", Some(LookupFailure)),
            ("connect to mysql server 127.0.0.1: Access denied for user 'postfix'@'localhost' (using password: YES)", Some(LookupFailure)),
            ("connect to pgsql server 127.0.0.1: could not connect to server: Connection refused", Some(LookupFailure)),
            ("dict_ldap_connect: Unable to bind to server ldap://ldap.corp.test:389 with dn cn=postfix: -1 (Can't contact LDAP server)", Some(LookupFailure)),
            // A client refused this server's certificate (alert 48, unknown CA); a scanner's
            // plain text on the TLS port is no finding.
            ("TLS library problem: error:0A000418:SSL routines::tlsv1 alert unknown ca:../ssl/record/rec_layer_s3.c:1586:SSL alert number 48:", Some(TlsError)),
            ("TLS library problem: error:0A00010B:SSL routines::wrong version number:../ssl/record/ssl3_record.c:354:", None),
            // Still noise: a client's name that does not resolve back.
            ("hostname mail.example does not resolve to address 203.0.113.9", None),
        ];
        for (text, want) in problems {
            assert_eq!(
                classify_postfix_problem(Severity::Warning, text),
                *want,
                "{text}"
            );
        }
    }

    #[test]
    fn problems() {
        assert_eq!(
            classify_postfix_problem(Severity::Warning, "hash:/etc/postfix/transport is unavailable. open database /etc/postfix/transport.db: No such file or directory"),
            Some(FindingCode::LookupFailure)
        );
        assert_eq!(
            classify_postfix_problem(
                Severity::Warning,
                "database /etc/postfix/transport.db is older than source file /etc/postfix/transport"
            ),
            Some(FindingCode::LookupFailure)
        );
        assert_eq!(
            classify_postfix_problem(
                Severity::Warning,
                "hostname x does not resolve to address 1.2.3.4"
            ),
            None
        );
        // smtpd's SASL backend, before the fatal error it ends in.
        for (sev, text) in [
            (Severity::Fatal, "no SASL authentication mechanisms"),
            (
                Severity::Warning,
                "SASL: Connect to private/auth failed: No such file or directory",
            ),
            (
                Severity::Warning,
                "SASL authentication failure: cannot connect to saslauthd server: Permission denied",
            ),
        ] {
            assert_eq!(
                classify_postfix_problem(sev, text),
                Some(FindingCode::SaslServerUnavailable),
                "{text}"
            );
        }
        assert_eq!(
            classify_postfix_problem(
                Severity::Fatal,
                "open /etc/postfix/main.cf: Permission denied"
            ),
            Some(FindingCode::ServiceError)
        );
        // The SMTP client without a usable mechanism: not the credentials.
        assert_eq!(
            classify_postfix_problem(
                Severity::Warning,
                "SASL authentication failure: No worthy mechs found"
            ),
            Some(FindingCode::SaslNoMechanism)
        );
        assert_eq!(
            classify_text("SASL authentication failed; cannot authenticate to server smtp.sendgrid.net[198.51.100.9]: no mechanism available"),
            Some(FindingCode::SaslNoMechanism)
        );
        assert_eq!(
            classify_text("SASL authentication failed; server smtp.sendgrid.net[198.51.100.9] said: 535 Authentication failed: Bad username / password"),
            Some(FindingCode::AuthFailed)
        );
        assert_eq!(
            classify_dovecot_problem(Severity::Error, "Mailbox INBOX: open(/var/mail/alice/dovecot.index.log) failed: Permission denied (euid=2000(<unknown>) egid=2000(<unknown>) missing +w perm: /var/mail/alice, dir owned by 1000:1000 mode=0700)"),
            Some(FindingCode::MailboxPermissionDenied)
        );
        assert!(
            is_spam_mailbox("Junk") && is_spam_mailbox("INBOX.Spam") && !is_spam_mailbox("INBOX")
        );
    }

    /// A caller's usage error (sendmail(1), postfix(1); lines as posted from real servers) is no
    /// finding of the host's, at any severity; the daemons' own fatals still are.
    #[test]
    fn a_callers_usage_error_is_not_a_service_error() {
        for text in [
            "Recipient addresses must be specified on the command line or via the -t option",
            "www-data(33): Recipient addresses must be specified on the command line or via the -t option",
            "root(0): No recipient addresses found in message header",
            "usage: sendmail [options]",
            "usage: postfix [-c config_dir] [-Dv] command",
            "the postfix command is reserved for the superuser",
            "display queue mode requires no recipient",
            "-t option cannot be used with -bv",
            "the Postfix mail system is already running",
        ] {
            for sev in [Severity::Fatal, Severity::Error] {
                assert_eq!(classify_postfix_problem(sev, text), None, "{text}");
            }
        }
        for text in [
            "bind 127.0.0.1 port 25: Address already in use",
            "chdir /var/spool/postfix: No such file or directory",
            // `postfix reload` or `postqueue -p` finding master down: the mail system is.
            "the Postfix mail system is not running",
            "Queue report unavailable - mail system is down",
        ] {
            assert_eq!(
                classify_postfix_problem(Severity::Fatal, text),
                Some(FindingCode::ServiceError),
                "{text}"
            );
        }
    }

    /// A full disk, a blocklist zone that does not resolve and a queue postdrop cannot write
    /// are named for what they are (lines from other projects' test data, reworded).
    /// Unknown recipients in other servers' words, or by Postfix's own dsn=; an unknown sender
    /// is not an unknown recipient.
    #[test]
    fn messages_over_a_size_limit_by_word_or_code() {
        use FindingCode::*;
        let b = DeliveryStatus::Bounced;
        for (dsn, reason) in [
            // Postfix's SMTP client, against the SIZE the server announced.
            (Some("5.3.4"), "message size 52428800 exceeds size limit 35882577 of server mx.example.com[192.0.2.9]"),
            (Some("5.2.3"), "host gmail-smtp-in.l.google.com[142.250.1.26] said: 552-5.2.3 Your message exceeded Google's message size limits. Please visit https://support.google.com/mail/?p=MaxSizeError to view our size guidelines. - gsmtp (in reply to end of DATA command)"),
            (None, "host mx.example[192.0.2.8] said: 552 5.3.4 Message size exceeds fixed maximum message size (in reply to MAIL FROM command)"),
            (None, "host mx.example[192.0.2.8] said: 552 Message length exceeds administrative limit (in reply to end of DATA command)"),
            (Some("5.3.4"), "host mx.example[192.0.2.8] said: 552 no (in reply to end of DATA command)"),
        ] {
            assert_eq!(classify_delivery(b, dsn, reason), Some(MessageTooLarge), "{reason}");
        }
        assert_eq!(
            classify_smtp_reply(552, Some("5.3.4"), "Message size exceeds fixed limit"),
            MessageTooLarge
        );
        // Node's smtp-server, without a code in the text.
        assert_eq!(
            classify_delivery(b, None, "host mx.example[192.0.2.8] said: 552 Error: message exceeds fixed maximum message size 10485760 (in reply to end of DATA command)"),
            Some(MessageTooLarge)
        );
        // Postfix's own lines when it refuses one: smtpd's warning, sendmail(1)'s fatal.
        for text in [
            "3999BEB4021: queue file size limit exceeded",
            "no-reply@example.com(8080): message file too big",
        ] {
            for sev in [Severity::Warning, Severity::Fatal] {
                assert_eq!(
                    classify_postfix_problem(sev, text),
                    Some(MessageTooLarge),
                    "{text}"
                );
            }
        }
        // SendGrid's relay: an unverified From address is the provider account's (as its API's
        // 403), a missing SMTP AUTH the relay credentials'.
        assert_eq!(
            classify_delivery(b, Some("5.0.0"), "host smtp.sendgrid.net[159.183.224.104] said: 550 The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved. (in reply to end of DATA command)"),
            Some(ProviderAuthFailed)
        );
        assert_eq!(
            classify_delivery(b, Some("5.0.0"), "host smtp.sendgrid.net[159.183.224.104] said: 550 Unauthenticated senders not allowed (in reply to MAIL FROM command)"),
            Some(AuthFailed)
        );
        // SendGrid's account out of credits: its relay refuses AUTH with words that say
        // "authentication failed", but the fix is the plan, not the relay's password.
        assert_eq!(
            classify_delivery(b, Some("4.0.0"), "delivery temporarily suspended: SASL authentication failed; server smtp.sendgrid.net[159.183.224.104] said: 451 Authentication failed: Maximum credits exceeded"),
            Some(ProviderAuthFailed)
        );
        assert_eq!(
            classify_smtp_reply(451, None, "Authentication failed: Maximum credits exceeded"),
            ProviderAuthFailed
        );
        // A sender's daily quota is a rate limit, not a full mailbox.
        assert_eq!(
            classify_delivery(b, Some("5.4.5"), "host gmail-smtp-in.l.google.com[142.250.1.26] said: 550 5.4.5 Daily user sending quota exceeded. - gsmtp (in reply to MAIL FROM command)"),
            Some(RateLimited)
        );
        // A full mailbox is not a message over a limit.
        assert_eq!(
            classify_delivery(
                b,
                Some("5.2.2"),
                "host x said: 552 5.2.2 Mailbox full (in reply to end of DATA command)"
            ),
            Some(MailboxFull)
        );
    }

    #[test]
    fn recipients_unknown_by_word_or_dsn_and_senders_apart() {
        use FindingCode::*;
        let b = DeliveryStatus::Bounced;
        for reason in [
            "host mx.example[192.0.2.8] said: 550 MAILBOX NOT FOUND (in reply to RCPT TO command)",
            "host mx.example[192.0.2.8] said: 511 sorry, no mailbox here by that name (#5.1.1 - chkuser) (in reply to RCPT TO command)",
            "host mx.example[192.0.2.8] said: 550 unknown recipient address (in reply to RCPT TO command)",
        ] {
            assert_eq!(classify_delivery(b, None, reason), Some(RecipientUnknown), "{reason}");
        }
        let vague = "host mx.example[192.0.2.8] said: 550 No (in reply to RCPT TO command)";
        assert_eq!(
            classify_delivery(b, Some("5.1.1"), vague),
            Some(RecipientUnknown)
        );
        assert_eq!(
            classify_delivery(b, Some("5.0.0"), vague),
            Some(BouncedOther)
        );
        // RFC 7505's null MX by its own code, whatever the words.
        assert_eq!(classify_delivery(b, Some("5.1.10"), vague), Some(DnsError));
        let nullmx = "Domain nullmx.example does not accept mail (nullMX)";
        assert_eq!(classify_delivery(b, Some("5.1.0"), nullmx), Some(DnsError));
        assert_eq!(
            classify_delivery(
                DeliveryStatus::Deferred,
                Some("4.3.1"),
                "host x said: 452 try later"
            ),
            Some(DiskFull)
        );
        assert_eq!(
            classify_smtp_reply(550, Some("5.1.7"), "<f@example.net>: Sender address rejected: undeliverable address: host mx.example.net[192.0.2.7] said: 550 5.1.1 <f@example.net>: Recipient address rejected: User unknown in virtual alias table"),
            RejectedOther
        );
        // Postfix writes a rejected sender's unknown address as X.1.0: not the recipient's.
        let sender =
            "<ceo@corp.test>: Sender address rejected: User unknown in virtual mailbox table";
        assert_eq!(
            classify_smtp_reply(550, Some("5.1.0"), sender),
            RejectedOther
        );
        assert_eq!(
            classify_delivery(
                DeliveryStatus::Bounced,
                Some("5.1.0"),
                &format!(
                    "host x[192.0.2.1] said: 550 5.1.0 {sender} (in reply to MAIL FROM command)"
                )
            ),
            Some(BouncedOther)
        );
        // A recipient's X.1.0 stays the recipient's.
        assert_eq!(
            classify_smtp_reply(550, Some("5.1.0"), "<x@corp.test>: Address rejected"),
            RecipientUnknown
        );
        // Greylisting is a temporary refusal, not a permanent reject.
        let greylisted = classify_smtp_reply(
            450,
            Some("4.2.0"),
            "<b@corp.test>: Recipient address rejected: Greylisted, see https://postgrey.example/",
        );
        assert_eq!(greylisted, RateLimited);
        assert!(!greylisted.is_permanent());
    }

    #[test]
    fn disk_blocklist_and_queue_write_problems() {
        use FindingCode::*;
        assert_eq!(
            classify_smtp_reply(452, None, "452 Insufficient system storage"),
            DiskFull
        );
        assert_eq!(
            classify_smtp_reply(452, Some("4.3.1"), "452 4.3.1 Insufficient system storage"),
            DiskFull
        );
        assert_eq!(
            classify_status_text("host mx.example[192.0.2.1] said: 452 4.3.1 Insufficient system storage (in reply to MAIL FROM command)"),
            DiskFull
        );
        let w = Severity::Warning;
        for (text, code) in [
            ("not enough free space in mail queue: 1000 bytes < 1.5*message_size_limit", DiskFull),
            ("maildrop/ABC: write: No space left on device", DiskFull),
            ("199.249.24.179.list.dsbl.org: RBL lookup error: Host or domain name not found. Name service error for name=199.249.24.179.list.dsbl.org type=A: Host not found, try again", DnsError),
            ("mail_queue_enter: create file maildrop/123456.12345: Read-only file system", ServiceError),
            ("mail_queue_enter: create file maildrop/123456.12345: Permission denied", ServiceError),
        ] {
            assert_eq!(classify_postfix_problem(w, text), Some(code), "{text}");
        }
        assert_eq!(
            classify_dovecot_problem(
                Severity::Error,
                "write(/var/mail/alice/new/1.M2) failed: No space left on device"
            ),
            Some(DiskFull)
        );
        // Local services that do not answer, capacity limits, crashed Dovecot services.
        for (text, code) in [
            ("problem talking to server 127.0.0.1:12525: Connection refused", ServiceError),
            ("connect to 127.0.0.1:12525: Connection refused", ServiceError),
            ("write queue file: Input/output error", ServiceError),
            ("read TCP map reply from 127.0.0.1:10030: unexpected EOF (Operation now in progress)", ServiceError),
            ("read TCP map reply from 127.0.0.1:10030: malformed reply: 200_OK", ServiceError),
            ("connect to TCP map 127.0.0.1:10030: No route to host", ServiceError),
            ("transport lmtp failure -- see a previous warning/fatal/panic logfile record for the problem description", ServiceError),
            ("private/lmtp socket: malformed response", ServiceError),
            ("unable to look up public/pickup: No such file or directory", ServiceError),
            ("service \"smtp\" (25) has reached its process limit \"50\": new clients may experience noticeable delays", RateLimited),
            ("New TLS session rate limit exceeded: 40 from mail.example[192.0.2.3] for service smtp", RateLimited),
        ] {
            assert_eq!(classify_postfix_problem(w, text), Some(code), "{text}");
        }
        for text in [
            "service(auth): child 19654 returned error 89 (Fatal failure)",
            "service(imap): child 1234 killed with signal 11 (core dumps disabled)",
            "service(lmtp): command startup failed, throttling for 2 secs",
            "Failed to initialize user: Namespace '': Mail storage autodetection failed with home=/home/eve",
            "open(/var/mail/vhosts/corp.test/alice/dovecot.index.log) failed: Too many open files",
            // The lab's Dovecot 2.3 when a Sieve redirect cannot be sent (its sendmail program
            // found no Postfix configuration), and that program's own word.
            "sieve: msgid=<redir-yes@provider.test>: redirect action: failed to redirect message to <bob@elsewhere.example>: Sendmail program returned error (temporary failure) delivery_time=10ms",
            "sendmail: fatal: open /etc/postfix/main.cf: No such file or directory",
            // A process and an auth service of different versions (a package upgrade without a
            // restart), or an auth service that does not answer: every login fails alike.
            "Authentication server not compatible with this client (mixed old and new binaries?)",
            "Authentication server didn't send valid SPID as expected: MECH PLAIN plaintext",
            "BUG: Authentication client sent unknown handshake command: REQUEST\t2492858369\t16648",
            "Disconnected from auth server, aborting (client-pid=16648 client-id=1)",
            "Timeout waiting for handshake from auth server. my pid=19, input bytes=0",
            "auth: connect(login) failed: Connection refused",
            "auth-client: conn unix:login: connect(login) failed: No such file or directory",
            // A user lookup's (LMTP's, the LDA's): the auth-userdb socket is not there.
            "auth-master: userdb lookup(info@domain.com): connect(/var/run/dovecot//auth-userdb) failed: No such file or directory",
            "auth-master: userdb lookup(a@corp.test): connect(/run/dovecot/auth-userdb) failed: Connection refused",
            // A login process's own socket to auth, with and without 2.3's prefix.
            "net_connect_unix(/run/dovecot/login/auth) failed: No such file or directory",
            "auth-client: conn unix:/run/dovecot/login/auth: net_connect_unix(/run/dovecot/login/auth) failed: Connection refused",
        ] {
            assert_eq!(
                classify_dovecot_problem(Severity::Error, text),
                Some(ServiceError),
                "{text}"
            );
        }
        assert_eq!(
            classify_dovecot_problem(
                Severity::Warning,
                "Auth process not responding, delayed sending initial response (greeting): user=<>, rip=198.18.3.1, lip=198.18.3.2, TLS, session=<gRjmd9FhJrHGEgMB>"
            ),
            Some(ServiceError)
        );
        // A login process that may not open its auth socket: the listener's mode or user.
        assert_eq!(
            classify_dovecot_problem(
                Severity::Error,
                "auth: connect(/var/run/dovecot/login/login) failed: Permission denied (euid=97(dovenull) egid=97(dovenull) missing +r perm: /var/run/dovecot/login/login)"
            ),
            Some(AuthBackendError)
        );
        // Errors only: a warning about the auth service comes with any restart of it.
        assert_eq!(
            classify_dovecot_problem(
                Severity::Warning,
                "Disconnected from auth server, aborting (client-pid=16648 client-id=1)"
            ),
            None
        );
        for (text, code) in [
            ("service(imap-login): process_limit (100) reached, client connections are being dropped", ServiceError),
            ("service(imap): client_limit (1000) reached, client connections are being dropped", ServiceError),
            ("lmtp-server: conn unix:pid=5682,uid=89 [1]: rcpt frank@corp.test: Failed to lookup user frank@corp.test: Internal error occurred. Refer to server log for more information.", AuthBackendError),
            ("Failed to initialize user: Mailbox INBOX: open(/var/mail/eve) failed: Permission denied", MailboxPermissionDenied),
            // The auth service's passdb lookup (state 2) that did not answer in 60 s.
            ("Request 25947.1 timed out after 60 secs, state=2", AuthBackendError),
            // A client refused the server's certificate (its login process's disconnect).
            ("Disconnected (no auth attempts): rip=192.0.2.7, lip=198.18.3.2, TLS handshaking: SSL_accept() failed: error:14094416:SSL routines:SSL3_READ_BYTES:sslv3 alert certificate unknown: SSL alert number 46", TlsError),
            ("Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.7, lip=198.18.3.2, TLS handshaking: SSL_accept() failed: error:0A000418:SSL routines::tlsv1 alert unknown ca: SSL alert number 48", TlsError),
        ] {
            assert_eq!(classify_dovecot_problem(Severity::Warning, text), Some(code), "{text}");
        }
        // A map's own lookup error stays the map's.
        assert_eq!(
            classify_postfix_problem(w, "hash:/etc/postfix/access lookup error for \"x\""),
            Some(LookupFailure)
        );
    }

    /// Auth backends that can judge no password, and Dovecot's own sockets out of reach: not
    /// the mail store's permissions, whatever words the error uses.
    #[test]
    fn dovecot_backend_and_socket_errors() {
        use FindingCode::*;
        for (text, code) in [
            ("passwd-file: open(/etc/dovecot/userdb) failed: No such file or directory", Some(AuthBackendError)),
            ("passwd-file(info,67.211.213.194): stat(/etc/exim4/domains//passwd) failed: No such file or directory", Some(AuthBackendError)),
            ("sql(b@x.test,127.0.0.1,<GyrF5+ml+Jx/AAAB>): Invalid password in passdb: Not a valid MD5-CRYPT or PLAIN-MD5 password", Some(AuthBackendError)),
            ("sql(b@x.test,127.0.0.1): Password data is not valid for scheme SHA512-CRYPT: Input length isn't valid", Some(AuthBackendError)),
            ("prefetch(user@example.org): userdb lookup not possible with only userdb prefetch", Some(AuthBackendError)),
            ("net_connect_unix(anvil-auth-penalty) failed: Connection refused", Some(ServiceError)),
            ("connect(ssl-params) failed: Permission denied", Some(ServiceError)),
            // The stats socket a user's LDA may not write to: no failure of its own.
            ("net_connect_unix(/run/dovecot/stats-writer) failed: Permission denied", None),
            // The mail store's own permission error is still the mail store's.
            ("open(/var/mail/x/tmp/1) failed: Permission denied", Some(MailboxPermissionDenied)),
        ] {
            assert_eq!(classify_dovecot_problem(Severity::Error, text), code, "{text}");
        }
        // local(8) quoting dovecot-lda's stats line: the permission error is not the mailbox's.
        let stats = "temporary failure. Command output: lda(me): Error: net_connect_unix(/run/dovecot/stats-writer) failed: Permission denied ";
        assert_eq!(classify_text(stats), None);
        let quota = "Command output: lda(me): Error: net_connect_unix(/run/dovecot/stats-writer) failed: Permission denied lda(me): Error: Quota exceeded (mailbox for user is full)";
        assert_eq!(classify_text(quota), Some(MailboxFull));
    }

    #[test]
    fn codes_serialize_as_their_names() {
        for c in FindingCode::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
    }

    #[test]
    fn new_findings_carry_the_builtin_runbook_hint() {
        let mut f = Finding::new(FindingCode::LookupFailure, Some("mx"), "x");
        assert!(f.hint.contains("postmap"), "{}", f.hint);
        f.code = FindingCode::SpamFolder;
        f.rehint();
        assert!(f.hint.contains("Junk/Spam"), "{}", f.hint);
        // A full mailbox may be another provider's (Gmail's 452 4.2.2): the fix says so.
        f.code = FindingCode::MailboxFull;
        f.rehint();
        assert!(f.hint.contains("a server you do not run"), "{}", f.hint);
        // A lost connection at the greeting is a refusal of the session: the fix says so.
        f.code = FindingCode::NextHopRefused;
        f.rehint();
        assert!(f.hint.contains("initial server greeting"), "{}", f.hint);
        // A DNSBL that refused the query is this server's resolver, not the client's listing.
        f.code = FindingCode::DnsError;
        f.rehint();
        assert!(f.hint.contains("Error: open resolver"), "{}", f.hint);
        assert!(f.hint.contains("127.0.0.[2..11]"), "{}", f.hint);
    }
}
