//! Received-header trace engine: owns turning a raw message's Received headers into an ordered,
//! timed path (hops, per-hop delays, warnings, stage labels) and its JSON contract. It does not
//! read files, stdin or the clock (`now` and the fetch time are passed in), and does not load
//! scenarios (callers pass the `[[path]]` matchers).
//!
//! # Model
//! Every `Received` header is one hop, oldest first: the bottom-most header is hop 0. A header
//! that cannot be parsed still yields a hop (null fields, a `malformed` warning) so hop counts
//! stay true. Fields come from mail-parser's Received parser, made honest by a comment-aware scan
//! (`fields.rs`); dates never come from mail-parser (`date.rs` explains why).
//!
//! # Numbers
//! - `delay_ms`: this hop's timestamp minus the nearest earlier hop that has one, rounded to the
//!   nearest millisecond (halves away from zero). Negative values are reported as they are.
//! - `total_ms`: last timestamped hop minus the first one; null with fewer than two.
//! - `created_at`: the `Date` header, read as a Received date is (the writer's clock, which may be
//!   off: nothing is checked against it); `delivered_after_ms`: the last timestamped hop minus it.
//!
//! # Warnings (per hop, a fixed set, serialized snake_case, in this order)
//! - `malformed`: no clause (`from`/`by`/`with`/`id`/`for`/`via`) outside comments and not the
//!   comment-plus-date form; the hop's fields are null.
//! - `ambiguous_client`: the from clause holds text shaped like the server's own `(NAME [IP])`
//!   comment besides it (a HELO such as `x (a [6.6.6.6])`), or such a comment between two `by`
//!   clauses: `from_ip` and `from_rdns` are null, as either reading could be the forged one.
//! - `no_date`: no date (nothing after the last `;`, or only a clause such as OpenSMTPD's
//!   `; for <x@y>;`).
//! - `clock_skew`: the hop is stamped earlier than the previous timestamped hop by more than the
//!   written precision explains. Servers truncate what they print, so `18:12:38` stands for
//!   `[18:12:38, 18:12:39)`: a second-precision hop after a millisecond one at `18:12:38.520`
//!   has `delay_ms = -520` but no skew. Skew is flagged only when the later hop's whole interval
//!   lies before the earlier hop's time (`t_later + resolution_later <= t_earlier`).
//! - `future_date`: later than the reference time by more than [`FUTURE_TOLERANCE_SECS`]; the
//!   reference is the message's fetch time when known, else the time of analysis (`now`).
//! - `unreadable_date`: text after the last `;` that is no date flowtest reads: a date without a
//!   zone or with an ambiguous one, an impossible date such as 31 Feb, garbage.
//!
//! Nothing is clamped: numbers are reported as computed, and the warnings say what is suspect.
//!
//! Message-level `warnings` (strings): `no_received_headers` when the message has none;
//! `unreadable_date_header` when its `Date` header is no date flowtest reads.
//!
//! Message-level `notes` (strings, the key absent when there are none): what ARC headers tell of
//! the path (`providers::arc_notes`): each of Gmail's ARC sets, its seal time and recorded results.
//!
//! # `timestamp` format
//! RFC 3339 in UTC with `Z`. The fraction is printed with exactly the digits the header had
//! (`.434`, `.270951634`, `.430` keeps its zero), and not at all when the header had none; a time
//! written without seconds prints `:00`.
mod client;
pub mod date;
mod fields;
pub mod providers;
pub mod render;
pub mod stages;
mod stream;

use chrono::{DateTime, Utc};
use std::ops::Range;

use mail_parser::parsers::MessageStream;
use mail_parser::{HeaderName, MessageParser};
use serde::{Deserialize, Serialize};

pub use date::{format_rfc3339, parse_received_date, ParsedDate, Precision};
pub use render::render_human;
pub use stages::{assign_stages, glob_match, validate_path, IpRange, StageMatcher};
pub use stream::{trace_lazy, LazyTrace};

/// How far past the reference time a hop may be stamped before `future_date` is raised. Covers
/// ordinary clock drift between a server and the machine running the analysis.
pub const FUTURE_TOLERANCE_SECS: i64 = 120;

/// Inputs besides the message: the analysis time, the fetch time if known, the expected path.
#[derive(Debug, Clone, Copy)]
pub struct TraceOptions<'a> {
    pub now: DateTime<Utc>,
    pub fetched_at: Option<DateTime<Utc>>,
    pub stages: &'a [StageMatcher],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TraceError {
    #[error("the input is empty")]
    Empty,
    #[error("no message headers found")]
    NoHeaders,
}

/// A message's path: hops oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub hops: Vec<Hop>,
    pub total_ms: Option<i64>,
    /// The message's `Date` header: when its writer says it was written (the sender's clock).
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// The last timestamped hop minus `created_at` (what header analyzers call "delivered
    /// after"); null without both.
    #[serde(default)]
    pub delivered_after_ms: Option<i64>,
    pub warnings: Vec<String>,
    pub missing_stages: Vec<String>,
    /// What other headers say of the path: Gmail's ARC sets (`gmail-arc: ...`), one each.
    /// Absent from the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One Received header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// The from-host as written (a name, or an address literal such as `[192.0.2.7]`).
    pub from: Option<String>,
    /// The client IP: from the comment (`(host [192.0.2.7])`) or an address-literal from-host.
    pub from_ip: Option<String>,
    pub by: Option<String>,
    /// The `with` protocol as written: `ESMTPS`, `esmtpsa`, `LMTP`, `HTTP`, `Microsoft SMTP Server`.
    pub protocol: Option<String>,
    pub id: Option<String>,
    /// The recipient, a bare address.
    #[serde(rename = "for")]
    pub for_: Option<String>,
    pub timestamp: Option<Timestamp>,
    pub delay_ms: Option<i64>,
    pub warnings: Vec<HopWarning>,
    pub stage: Option<String>,
    /// The HELO/EHLO name when written separately (`(helo=x)`, `(HELO x)`).
    pub helo: Option<String>,
    /// The reverse-DNS name from the comment (`(name [ip])`), without a trailing dot.
    pub from_rdns: Option<String>,
    /// TLS version when the header states one (`TLSv1.3`).
    pub tls: Option<String>,
    pub tls_cipher: Option<String>,
    /// The header value unfolded, whitespace runs collapsed (cut at 2 KiB with `...`).
    pub raw: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HopWarning {
    Malformed,
    /// The from clause can be read with more than one client (a HELO imitating the comment).
    AmbiguousClient,
    NoDate,
    ClockSkew,
    FutureDate,
    /// Text follows the header's `;` but is no date flowtest reads (`no_date`: there is none).
    UnreadableDate,
}

impl HopWarning {
    pub fn code(self) -> &'static str {
        match self {
            HopWarning::Malformed => "malformed",
            HopWarning::AmbiguousClient => "ambiguous_client",
            HopWarning::NoDate => "no_date",
            HopWarning::ClockSkew => "clock_skew",
            HopWarning::FutureDate => "future_date",
            HopWarning::UnreadableDate => "unreadable_date",
        }
    }
}

/// A hop's time: the UTC instant and the precision it was written with. Serialized as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub utc: DateTime<Utc>,
    pub precision: Precision,
}

impl Timestamp {
    /// Nanoseconds since the Unix epoch, wide enough for any year 1900..=9999.
    pub fn unix_nanos(&self) -> i128 {
        i128::from(self.utc.timestamp()) * 1_000_000_000
            + i128::from(self.utc.timestamp_subsec_nanos())
    }

    pub fn to_rfc3339(&self) -> String {
        format_rfc3339(&self.utc, self.precision)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let p = parse_received_date(&s)
            .filter(|_| s.ends_with('Z'))
            .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp `{s}`")))?;
        Ok(Timestamp {
            utc: p.utc,
            precision: p.precision,
        })
    }
}

/// Round nanoseconds to milliseconds, halves away from zero.
fn round_ms(ns: i128) -> i64 {
    let half = if ns < 0 { -500_000 } else { 500_000 };
    let ms = (ns + half) / 1_000_000;
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// Whether a header name is a syntactically valid field name (RFC 5322 `ftext`).
fn valid_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// What a trace reads of a message's header block besides nothing else: where each Received
/// value lies (newest first) and the notes its ARC headers give.
struct HeaderValues {
    received: Vec<Range<usize>>,
    /// The first `Date` header's value.
    date: Option<Range<usize>>,
    notes: Vec<String>,
}

/// Where each Received header's value lies in `raw`, as written (newest first), and the ARC
/// headers' notes. Other headers are skipped unparsed and nothing is kept but the ranges: a
/// message of 300k hops costs a few MB here, not a parsed copy of its whole header block.
fn received_values(raw: &[u8]) -> Result<HeaderValues, TraceError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(TraceError::Empty);
    }
    let msg = MessageParser::new()
        .ignore_header(HeaderName::Received)
        .default_header_ignore()
        .parse_headers(raw)
        .ok_or(TraceError::NoHeaders)?;
    let headers = msg.headers();
    if !headers.iter().any(|h| valid_field_name(h.name.as_str())) {
        return Err(TraceError::NoHeaders);
    }
    let value = |h: &mail_parser::Header<'_>| h.offset_start as usize..h.offset_end as usize;
    let arc: Vec<providers::ArcHeader<'_>> = headers
        .iter()
        .filter_map(|h| {
            let seal = match h.name {
                HeaderName::ArcSeal => true,
                HeaderName::ArcAuthenticationResults => false,
                _ => return None,
            };
            let text = std::str::from_utf8(raw.get(value(h))?).ok()?;
            Some(providers::ArcHeader { seal, text })
        })
        .collect();
    Ok(HeaderValues {
        received: headers
            .iter()
            .filter(|h| h.name == HeaderName::Received)
            .map(value)
            .collect(),
        date: headers
            .iter()
            .find(|h| h.name == HeaderName::Date)
            .map(value),
        notes: providers::arc_notes(&arc),
    })
}

/// One hop from one Received value: mail-parser parses this header alone, and its parse is
/// dropped before the next header is read.
fn hop_at(raw: &[u8], value: &Range<usize>) -> Hop {
    let bytes = raw.get(value.clone()).unwrap_or_default();
    let parsed = MessageStream::new(bytes).parse_received();
    fields::build_hop(bytes, &parsed)
}

/// Trace a raw RFC 5322 message (headers alone suffice). `Err` only when no header can be read.
pub fn trace_message(raw: &[u8], opts: &TraceOptions) -> Result<Trace, TraceError> {
    let values = received_values(raw)?;
    let mut timeline = Timeline::new(opts);
    let mut hops: Vec<Hop> = values
        .received
        .iter()
        .rev()
        .map(|v| {
            let mut hop = hop_at(raw, v);
            timeline.step(&mut hop);
            hop
        })
        .collect();
    let missing_stages = assign_stages(&mut hops, opts.stages);
    for hop in &mut hops {
        providers::name_unlabelled(hop, opts.stages);
    }
    let created = Created::read(raw, values.date.as_ref());
    Ok(Trace {
        warnings: message_warnings(hops.len(), &created),
        hops,
        total_ms: timeline.total_ms(),
        created_at: created.at(),
        delivered_after_ms: created.until(timeline.last()),
        missing_stages,
        notes: values.notes,
    })
}

fn message_warnings(hops: usize, created: &Created) -> Vec<String> {
    let mut w = Vec::new();
    if hops == 0 {
        w.push("no_received_headers".to_string());
    }
    if matches!(created, Created::Unreadable) {
        w.push("unreadable_date_header".to_string());
    }
    w
}

/// What the message's `Date` header says.
#[derive(Debug, Clone, Copy)]
enum Created {
    Absent,
    /// A `Date` header whose text is no date flowtest reads.
    Unreadable,
    At(Timestamp),
}

impl Created {
    /// Read the `Date` header at `value` in `raw` with the Received dates' reader (the same
    /// RFC 5322 date-time, and the same forms real clients write).
    fn read(raw: &[u8], value: Option<&Range<usize>>) -> Self {
        let Some(bytes) = value.and_then(|v| raw.get(v.clone())) else {
            return Created::Absent;
        };
        match parse_received_date(String::from_utf8_lossy(bytes).trim()) {
            Some(p) => Created::At(Timestamp {
                utc: p.utc,
                precision: p.precision,
            }),
            None => Created::Unreadable,
        }
    }

    fn at(&self) -> Option<Timestamp> {
        match *self {
            Created::At(t) => Some(t),
            _ => None,
        }
    }

    /// From the writing to `last` (the last timestamped hop), in milliseconds.
    fn until(&self, last: Option<Timestamp>) -> Option<i64> {
        let (a, b) = (self.at()?, last?);
        Some(round_ms(b.unix_nanos() - a.unix_nanos()))
    }
}

/// Delays, skew and future checks over hops taken oldest first, one at a time, and the total.
struct Timeline {
    /// The latest instant not flagged `future_date`, in Unix nanoseconds.
    limit: i128,
    prev: Option<Timestamp>,
    first: Option<Timestamp>,
    timed: usize,
}

impl Timeline {
    fn new(opts: &TraceOptions) -> Self {
        let reference = opts.fetched_at.unwrap_or(opts.now);
        Timeline {
            limit: i128::from(reference.timestamp()) * 1_000_000_000
                + i128::from(reference.timestamp_subsec_nanos())
                + i128::from(FUTURE_TOLERANCE_SECS) * 1_000_000_000,
            prev: None,
            first: None,
            timed: 0,
        }
    }

    fn step(&mut self, hop: &mut Hop) {
        let Some(ts) = hop.timestamp else { return };
        let t = ts.unix_nanos();
        if let Some(p) = self.prev {
            let before = p.unix_nanos();
            hop.delay_ms = Some(round_ms(t - before));
            if t + ts.precision.resolution_ns() <= before {
                hop.warnings.push(HopWarning::ClockSkew);
            }
        }
        if t > self.limit {
            hop.warnings.push(HopWarning::FutureDate);
        }
        hop.warnings.sort();
        hop.warnings.dedup();
        self.first.get_or_insert(ts);
        self.prev = Some(ts);
        self.timed += 1;
    }

    /// The last timestamped hop's time.
    fn last(&self) -> Option<Timestamp> {
        self.prev
    }

    /// Last timestamped hop minus the first; `None` with fewer than two.
    fn total_ms(&self) -> Option<i64> {
        match (self.first, self.prev) {
            (Some(a), Some(b)) if self.timed >= 2 => {
                Some(round_ms(b.unix_nanos() - a.unix_nanos()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-28T00:00:00Z".parse().unwrap()
    }

    fn trace(raw: &str) -> Trace {
        trace_message(
            raw.as_bytes(),
            &TraceOptions {
                now: now(),
                fetched_at: None,
                stages: &[],
            },
        )
        .unwrap()
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round_ms(1_499_999), 1);
        assert_eq!(round_ms(1_500_000), 2);
        assert_eq!(round_ms(-1_500_000), -2);
        assert_eq!(round_ms(-1_499_999), -1);
        assert_eq!(round_ms(0), 0);
    }

    #[test]
    fn oldest_first_and_delays() {
        let t = trace(
            "Received: from b by c with ESMTP id 2; Tue, 4 Nov 2025 18:12:32.250 +0000\n\
             Received: from a by b with ESMTP id 1; Tue, 4 Nov 2025 18:12:30 +0000\n\
             Subject: x\n\nbody\n",
        );
        assert_eq!(t.hops.len(), 2);
        assert_eq!(t.hops[0].by.as_deref(), Some("b"));
        assert_eq!(t.hops[0].delay_ms, None);
        assert_eq!(t.hops[1].delay_ms, Some(2250));
        assert_eq!(t.total_ms, Some(2250));
        assert!(t.warnings.is_empty());
    }

    #[test]
    fn the_date_header_is_when_it_was_written() {
        let t = trace(
            "Received: from b by c with ESMTP id 2; Tue, 4 Nov 2025 18:12:32.250 +0000\n\
             Received: from a by b with ESMTP id 1; Tue, 4 Nov 2025 18:12:30 +0000\n\
             Date: Tue, 04 Nov 2025 19:12:29 +0100 (CET)\n\
             Subject: x\n\nbody\n",
        );
        assert_eq!(
            t.created_at.map(|c| c.to_rfc3339()).as_deref(),
            Some("2025-11-04T18:12:29Z")
        );
        assert_eq!(t.delivered_after_ms, Some(3250));
        assert!(t.warnings.is_empty());
        // A writer's clock ahead of the servers': reported as computed.
        let t = trace(
            "Received: from a by b with ESMTP id 1; Tue, 4 Nov 2025 18:12:30 +0000\n\
             Date: Tue, 4 Nov 2025 18:13:30 +0000\n\n",
        );
        assert_eq!(t.delivered_after_ms, Some(-60_000));
        // None, or none readable: no time, and the latter is said.
        let t = trace("Received: from a by b with ESMTP id 1; Tue, 4 Nov 2025 18:12:30 +0000\n\n");
        assert_eq!((t.created_at, t.delivered_after_ms), (None, None));
        assert!(t.warnings.is_empty());
        let t = trace(
            "Received: from a by b with ESMTP id 1; Tue, 4 Nov 2025 18:12:30 +0000\n\
             Date: yesterday\n\n",
        );
        assert_eq!((t.created_at, t.delivered_after_ms), (None, None));
        assert_eq!(t.warnings, ["unreadable_date_header"]);
        // Without a timed hop there is nothing to measure to.
        let t = trace("Date: Tue, 4 Nov 2025 18:13:30 +0000\nSubject: x\n\n");
        assert!(t.created_at.is_some());
        assert_eq!(t.delivered_after_ms, None);
        assert_eq!(t.warnings, ["no_received_headers"]);
    }

    #[test]
    fn undated_hop_is_skipped_for_delays_but_counted() {
        let t = trace(
            "Received: from c by d with ESMTP id 3; Tue, 4 Nov 2025 18:12:35 +0000\n\
             Received: from b by c with ESMTP id 2\n\
             Received: from a by b with ESMTP id 1; Tue, 4 Nov 2025 18:12:30 +0000\n\n",
        );
        assert_eq!(t.hops.len(), 3);
        assert_eq!(t.hops[1].warnings, vec![HopWarning::NoDate]);
        assert_eq!(t.hops[1].delay_ms, None);
        assert_eq!(t.hops[2].delay_ms, Some(5000));
        assert_eq!(t.total_ms, Some(5000));
    }

    #[test]
    fn skew_respects_written_precision() {
        // ms stamp then second stamp in the same second: negative delay, no skew.
        let t = trace(
            "Received: from b by c with ESMTP; Tue, 4 Nov 2025 18:12:38 +0000\n\
             Received: from a by b with HTTP; Tue, 4 Nov 2025 18:12:38.520 +0000\n\n",
        );
        assert_eq!(t.hops[1].delay_ms, Some(-520));
        assert!(t.hops[1].warnings.is_empty());
        // One whole second earlier: skew.
        let t = trace(
            "Received: from b by c with ESMTP; Tue, 4 Nov 2025 18:12:29 +0000\n\
             Received: from a by b with ESMTP; Tue, 4 Nov 2025 18:12:30 +0000\n\n",
        );
        assert_eq!(t.hops[1].delay_ms, Some(-1000));
        assert_eq!(t.hops[1].warnings, vec![HopWarning::ClockSkew]);
    }

    #[test]
    fn future_uses_fetch_time_when_known() {
        let raw = "Received: from a by b with ESMTP; Tue, 4 Nov 2025 18:15:00 +0000\n\n";
        let fetched: DateTime<Utc> = "2025-11-04T18:12:30Z".parse().unwrap();
        let opts = TraceOptions {
            now: now(),
            fetched_at: Some(fetched),
            stages: &[],
        };
        let t = trace_message(raw.as_bytes(), &opts).unwrap();
        assert_eq!(t.hops[0].warnings, vec![HopWarning::FutureDate]);
        // Within the tolerance: no warning.
        let opts = TraceOptions {
            fetched_at: Some(fetched + chrono::TimeDelta::seconds(31)),
            ..opts
        };
        let t = trace_message(raw.as_bytes(), &opts).unwrap();
        assert!(t.hops[0].warnings.is_empty());
        // Without a fetch time, `now` is the reference.
        assert!(trace(raw).hops[0].warnings.is_empty());
    }

    #[test]
    fn errors_only_without_headers() {
        let opts = TraceOptions {
            now: now(),
            fetched_at: None,
            stages: &[],
        };
        assert_eq!(trace_message(b"", &opts), Err(TraceError::Empty));
        assert_eq!(trace_message(b" \r\n\n", &opts), Err(TraceError::Empty));
        assert_eq!(
            trace_message(b"hello world", &opts),
            Err(TraceError::NoHeaders)
        );
        assert_eq!(
            trace_message(b"\n\nbody only", &opts),
            Err(TraceError::NoHeaders)
        );
        let t = trace_message(b"Subject: hi\n\n", &opts).unwrap();
        assert!(t.hops.is_empty());
        assert_eq!(t.warnings, vec!["no_received_headers"]);
        assert_eq!(t.total_ms, None);
    }

    #[test]
    fn json_contract_shape() {
        let t = trace(
            "Received: from [192.0.2.7] (helo=x.example) by mx.example.com with esmtp (Exim 4.96)\n\
             \t(envelope-from <a@x.example>) id 1vGk2x-0003Ab-1Q for bob@example.com;\n\
             \tTue, 04 Nov 2025 18:12:30.5 +0000\n\n",
        );
        let v = serde_json::to_value(&t).unwrap();
        let hop = &v["hops"][0];
        for key in [
            "from",
            "from_ip",
            "by",
            "protocol",
            "id",
            "for",
            "timestamp",
            "delay_ms",
            "warnings",
            "stage",
        ] {
            assert!(hop.get(key).is_some(), "missing {key}");
        }
        assert_eq!(hop["from"], "[192.0.2.7]");
        assert_eq!(hop["from_ip"], "192.0.2.7");
        assert_eq!(hop["protocol"], "esmtp");
        assert_eq!(hop["for"], "bob@example.com");
        assert_eq!(hop["timestamp"], "2025-11-04T18:12:30.5Z");
        assert_eq!(hop["warnings"], serde_json::json!([]));
        assert!(v["total_ms"].is_null());
        // Round trip.
        let back: Trace = serde_json::from_value(v).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn received_spf_and_x_received_are_not_hops() {
        let t = trace(
            "Received-SPF: pass (x) client-ip=192.0.2.1;\n\
             X-Received: by 2002:a05::1 with SMTP id x; Tue, 4 Nov 2025 18:12:30 +0000\n\
             Received: from a by b with SMTP; Tue, 4 Nov 2025 18:12:30 +0000\n\n",
        );
        assert_eq!(t.hops.len(), 1);
    }

    #[test]
    fn qmail_invoked_from_network_has_no_from_host() {
        let t = trace("Received: (qmail 4321 invoked from network); 4 Nov 2025 18:12:33 -0000\n\n");
        assert_eq!(t.hops[0].from, None);
        assert!(t.hops[0].warnings.is_empty());
        assert!(t.hops[0].timestamp.is_some());
    }

    #[test]
    fn a_mailbox_after_by_is_no_host() {
        // A forged header (from rspamd's Received-parser cases): the first `by` names a mailbox,
        // and a later `by` in the protocol's words must not be taken for the receiving host.
        let t = trace(
            "Received: from [192.0.2.101] (HELLO 198.51.100.35) (198.51.100.35) by someone@mail.example with gg login by AOL 6.0 for Windows US sub 008 SMTP  ; Tue, 03 Jul 2018 09:01:47 -0300\n\n",
        );
        assert_eq!(t.hops[0].by, None);
        assert!(t.hops[0].timestamp.is_some());
        let t = trace(
            "Received: from a by mx.example with SMTP by AOL; Tue, 03 Jul 2018 09:01:47 -0300\n\n",
        );
        assert_eq!(t.hops[0].by.as_deref(), Some("mx.example"));
    }
}
