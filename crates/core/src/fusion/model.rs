//! The output model of fusion: what a message's chain, a probe's timeline and the clock-skew
//! estimates look like once assembled (these types are serialized to JSON as they are). Holds
//! no correlation logic; the working state they are built from lives in `chain`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::diagnosis::Finding;
use crate::logs::{Delays, EventText};

/// Final state of a message as far as the logs show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Delivered,
    Deferred,
    Bounced,
    Rejected,
    Queued,
    /// On hold in a queue: not delivered until someone releases it (`postsuper -H`).
    Held,
    /// An address-verification probe (Postfix's verify(8)): the recipient was asked about and
    /// nothing was delivered; the answer is its hop's `dsn` and `reason`.
    Verified,
    Unknown,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Delivered => "delivered",
            MessageStatus::Deferred => "deferred",
            MessageStatus::Bounced => "bounced",
            MessageStatus::Rejected => "rejected",
            MessageStatus::Queued => "queued",
            MessageStatus::Held => "held",
            MessageStatus::Verified => "verified",
            MessageStatus::Unknown => "unknown",
        }
    }

    /// The message did not get where it was going (as far as the logs show). A held message
    /// counts: it stays where it is until someone acts.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            MessageStatus::Deferred
                | MessageStatus::Held
                | MessageStatus::Bounced
                | MessageStatus::Rejected
        )
    }

    /// Severity order for "worst of": higher is worse.
    pub(crate) fn rank(self) -> u8 {
        match self {
            MessageStatus::Delivered => 0,
            MessageStatus::Verified => 1,
            MessageStatus::Unknown => 2,
            MessageStatus::Queued => 3,
            MessageStatus::Held => 4,
            MessageStatus::Deferred => 5,
            MessageStatus::Rejected => 6,
            MessageStatus::Bounced => 7,
        }
    }
}

/// What one host did with the message (serialized as the snake_case name, e.g. `save_failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HopStatus {
    /// Postfix handed it on (`status=sent`).
    Sent,
    /// The last attempt was deferred; the message waits in the queue for a retry.
    Deferred,
    Bounced,
    /// Postfix gave up after the maximal queue lifetime and returned it to the sender.
    Expired,
    /// Refused: a NOQUEUE or cleanup/milter reject, or every recipient rejected.
    Rejected,
    /// Refused with a temporary error (a 4xx reject, cleanup's failed map lookup): the sending
    /// side keeps the message and retries.
    Refused,
    /// Left the queue without a delivery line in these logs (deleted, or delivered before them).
    Removed,
    /// In the queue, with no delivery attempt logged yet.
    Queued,
    /// On hold in the queue (a HOLD rule, a milter, `postsuper -h`), not released since.
    Held,
    /// Dovecot saved it into a mailbox.
    Saved,
    /// Dovecot could not save it.
    SaveFailed,
    /// An address-verification probe was answered (`status=deliverable` or `undeliverable`,
    /// the answer in `dsn` and `reason`): nothing was delivered.
    Verified,
    Unknown,
}

impl HopStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HopStatus::Sent => "sent",
            HopStatus::Deferred => "deferred",
            HopStatus::Bounced => "bounced",
            HopStatus::Expired => "expired",
            HopStatus::Rejected => "rejected",
            HopStatus::Refused => "refused",
            HopStatus::Removed => "removed",
            HopStatus::Queued => "queued",
            HopStatus::Held => "held",
            HopStatus::Saved => "saved",
            HopStatus::SaveFailed => "save_failed",
            HopStatus::Verified => "verified",
            HopStatus::Unknown => "unknown",
        }
    }

    /// What this hop's status means for the whole message when the hop is where it ended.
    pub fn message_status(self) -> MessageStatus {
        match self {
            HopStatus::Sent | HopStatus::Saved => MessageStatus::Delivered,
            HopStatus::Deferred | HopStatus::SaveFailed | HopStatus::Refused => {
                MessageStatus::Deferred
            }
            HopStatus::Bounced | HopStatus::Expired => MessageStatus::Bounced,
            HopStatus::Rejected => MessageStatus::Rejected,
            HopStatus::Queued => MessageStatus::Queued,
            HopStatus::Held => MessageStatus::Held,
            HopStatus::Verified => MessageStatus::Verified,
            HopStatus::Removed | HopStatus::Unknown => MessageStatus::Unknown,
        }
    }

    /// Dovecot's own outcome (saved or not), rather than a Postfix queue's.
    pub fn is_mailbox_save(self) -> bool {
        matches!(self, HopStatus::Saved | HopStatus::SaveFailed)
    }
}

impl fmt::Display for HopStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so that width and alignment (`{:<10}`) apply as they do to a string.
        f.pad(self.as_str())
    }
}

/// One host's part in a message's journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// Host role of the log source (`ec2`, `dell`, `dovecot`, ...).
    pub host: EventText,
    pub queue_id: Option<EventText>,
    /// Postfix delivery agent of the last attempt (`smtp`, `lmtp`, ...) or `dovecot`.
    pub service: Option<EventText>,
    pub status: HopStatus,
    pub relay: Option<EventText>,
    /// Postfix `delay=` of the last attempt (arrival on this host to end of that attempt), or
    /// Dovecot's `delivery_time`.
    pub delay_ms: Option<u64>,
    pub delays: Option<Delays>,
    pub dsn: Option<EventText>,
    pub reason: Option<String>,
    pub from: Option<EventText>,
    pub to: Vec<EventText>,
    pub client: Option<EventText>,
    pub next_queue_id: Option<EventText>,
    pub lmtp_session: Option<EventText>,
    pub mailbox: Option<EventText>,
    pub attempts: u32,
    #[serde(serialize_with = "crate::fusion::rfc3339::serialize_opt")]
    pub arrived_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::fusion::rfc3339::serialize_opt")]
    pub left_at: Option<DateTime<Utc>>,
    /// The timestamps above are whole-second floors (the log had no fraction).
    pub whole_seconds: bool,
    /// Each recipient's own outcome when they differ (one bounced, another sent): the hop's
    /// status and reason are the worst recipient's. Empty when all fared alike.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RcptOutcome>,
}

/// One recipient's outcome at a hop whose recipients fared differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RcptOutcome {
    pub to: EventText,
    pub status: HopStatus,
    pub dsn: Option<EventText>,
    /// The reply or reason of its last attempt (none for a recipient not yet tried).
    pub reason: Option<String>,
}

/// Everything the logs say about one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageChain {
    pub message_id: Option<EventText>,
    pub status: MessageStatus,
    pub from: Option<EventText>,
    pub to: Vec<EventText>,
    pub hops: Vec<Hop>,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
    /// All its queue entries closed normally (false: still open at end of input or evicted).
    pub complete: bool,
    /// The log lines (bounded; `lines_dropped` counts the rest).
    pub lines: Vec<String>,
    pub lines_dropped: u64,
    /// The log time of its latest line (not in the JSON report: its hops say when).
    #[serde(skip)]
    pub last_seen: Option<DateTime<Utc>>,
}

impl MessageChain {
    /// All envelope recipients and original recipients seen, lower-cased.
    pub fn mentions_rcpt(&self, rcpt: &str) -> bool {
        let r = rcpt.trim().trim_matches(['<', '>']);
        self.to.iter().any(|t| t.eq_ignore_ascii_case(r))
            || self
                .hops
                .iter()
                .any(|h| h.to.iter().any(|t| t.eq_ignore_ascii_case(r)))
    }

    /// Same Message-ID (angle brackets optional on either side).
    pub fn has_message_id(&self, id: &str) -> bool {
        self.message_id
            .as_deref()
            .is_some_and(|m| msgid_key(m) == msgid_key(id))
    }
}

/// Message-id comparison key: without angle brackets and surrounding space.
pub fn msgid_key(id: &str) -> &str {
    // Looked up for every message-id line and emitted chain: when both ends are visible ASCII
    // (as a message-id's are), there is no surrounding space, and `trim`'s Unicode check is
    // skipped.
    let b = id.as_bytes();
    let trimmed = match (b.first(), b.last()) {
        (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => id,
        _ => id.trim(),
    };
    // Leading `<`s, then trailing `>`s off what is left (ASCII, so the cuts fall on character
    // boundaries), by bytes rather than `trim_*_matches`' character pattern.
    let t = trimmed.as_bytes();
    let start = t.iter().position(|&c| c != b'<').unwrap_or(t.len());
    let end = t[start..]
        .iter()
        .rposition(|&c| c != b'>')
        .map_or(start, |last| start + last + 1);
    &trimmed[start..end]
}

/// Estimated clock offset of `host` relative to `reference` (`host - reference`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkewEstimate {
    pub host: String,
    pub reference: String,
    pub min_ms: i64,
    pub max_ms: i64,
    pub samples: u64,
    /// Samples that contradicted the others (drifting clock or a wrong model); not intersected.
    pub conflicts: u64,
    /// Zero lies outside [min, max]: the clocks really disagree.
    pub significant: bool,
}

/// Everything the correlator knows at the end.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub messages: Vec<MessageChain>,
    pub host_findings: Vec<Finding>,
    pub skew: Vec<SkewEstimate>,
    pub stats: CorrelatorStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CorrelatorStats {
    pub records: u64,
    pub chains_emitted: u64,
    /// Chains emitted early because `max_open_chains` was reached.
    pub chains_evicted: u64,
    /// Done chains dropped unbuilt because they are not the one Message-ID asked for.
    pub chains_skipped: u64,
    /// Finished chains dropped because nobody took them and `max_finished` was reached.
    pub finished_dropped: u64,
    pub host_findings_dropped: u64,
    /// Log lines not kept because the open chains held `max_retained_line_bytes` already.
    pub lines_dropped_over_cap: u64,
    /// SMTP transactions a client left before DATA: queue entries that never held a message,
    /// dropped unreported.
    pub transactions_abandoned: u64,
    /// Queue ids whose only line was `removed`: the ends of messages that began before the
    /// log (or the window), dropped unreported.
    pub removed_only: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageSource {
    /// One server's own clock (Postfix `delay=`, Dovecot `delivery_time`).
    Log,
    /// Received header timestamps (whole seconds, two different clocks).
    Header,
    /// The client's own clock, or a cross-clock figure bounded by it.
    Client,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub name: String,
    pub ms: u64,
    pub source: StageSource,
    /// Resolution of the figure (1 for millisecond logs, 1000 for whole-second timestamps).
    pub precision_ms: u64,
    /// The raw figure was impossible (negative, or longer than the client saw end to end) and
    /// was clamped to the client's bounds.
    pub bounded: bool,
    pub detail: Option<String>,
}

/// Clock offset of a host's log relative to the client (`host - client`), from the probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostSkew {
    pub host: String,
    pub min_ms: i64,
    pub max_ms: i64,
    /// The offset within [min, max] closest to zero: what stage arithmetic corrects by.
    pub estimate_ms: i64,
    pub significant: bool,
    /// The constraints contradicted each other (bounds are then those of the last event).
    pub inconsistent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeTimeline {
    pub message_id: String,
    pub status: MessageStatus,
    pub stages: Vec<Stage>,
    pub findings: Vec<Finding>,
    /// The last host whose log saw the message.
    pub last_host: Option<String>,
    pub skew: Vec<HostSkew>,
    pub notes: Vec<String>,
    /// The log chain(s) used (empty when no log mentions the probe).
    pub hops: Vec<Hop>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [HopStatus; 13] = [
        HopStatus::Sent,
        HopStatus::Deferred,
        HopStatus::Bounced,
        HopStatus::Expired,
        HopStatus::Rejected,
        HopStatus::Refused,
        HopStatus::Removed,
        HopStatus::Queued,
        HopStatus::Held,
        HopStatus::Saved,
        HopStatus::SaveFailed,
        HopStatus::Verified,
        HopStatus::Unknown,
    ];

    #[test]
    fn hop_status_serializes_display_and_as_str_alike() {
        for s in ALL {
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, serde_json::Value::from(s.as_str()), "{s:?}");
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(HopStatus::SaveFailed.as_str(), "save_failed");
        // Padding applies as it does to a string (the human report aligns on it).
        assert_eq!(format!("[{:<10}]", HopStatus::Sent), "[sent      ]");
    }

    #[test]
    fn a_leaf_hops_status_decides_the_message_status() {
        use MessageStatus as M;
        let expect = [
            (HopStatus::Sent, M::Delivered),
            (HopStatus::Saved, M::Delivered),
            (HopStatus::Deferred, M::Deferred),
            (HopStatus::SaveFailed, M::Deferred),
            (HopStatus::Bounced, M::Bounced),
            (HopStatus::Expired, M::Bounced),
            (HopStatus::Rejected, M::Rejected),
            (HopStatus::Refused, M::Deferred),
            (HopStatus::Queued, M::Queued),
            (HopStatus::Held, M::Held),
            (HopStatus::Verified, M::Verified),
            (HopStatus::Removed, M::Unknown),
            (HopStatus::Unknown, M::Unknown),
        ];
        assert_eq!(expect.len(), ALL.len());
        for (hop, msg) in expect {
            assert_eq!(hop.message_status(), msg, "{hop:?}");
        }
    }

    #[test]
    fn msgid_key_drops_brackets_and_any_surrounding_space() {
        for (id, key) in [
            ("<a@b>", "a@b"),
            ("a@b", "a@b"),
            ("  <a@b>\t", "a@b"),
            ("\u{a0}<a@b>\u{2003}", "a@b"),
            ("<<a@b>>", "a@b"),
            ("<é@b>", "é@b"),
            ("é@b", "é@b"),
            ("", ""),
            (" ", ""),
            ("<>", ""),
            ("<<>>", ""),
            (">>", ""),
            ("<<", ""),
            ("a<", "a<"),
            (">a<", ">a<"),
            ("<a>b>", "a>b"),
        ] {
            assert_eq!(msgid_key(id), key, "{id:?}");
        }
    }
}
