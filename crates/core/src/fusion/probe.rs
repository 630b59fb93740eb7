//! Probe fusion: for one probe the client sent, finds its log chains and fuses them with the
//! client's own times and the Received hops into a `ProbeTimeline`: per-host clock skew against
//! the client, per-stage latencies (each from one clock where possible, bounded by the client's
//! end-to-end time where not), and a path check. Does not correlate logs (`correlator`).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use crate::diagnosis::{Finding, FindingCode};
use crate::logs::Delays;

use super::model::{
    Hop, HopStatus, HostSkew, MessageChain, MessageStatus, ProbeTimeline, Stage, StageSource,
};
use super::skew::{OffsetRange, OnConflict, SkewBounds, Stamp};

/// What the client knows about a probe it sent (all times from the client's clock).
#[derive(Debug, Clone, Default)]
pub struct ProbeContext {
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub submitted_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub detected_at: Option<DateTime<Utc>>,
    /// Queue id from the submission server's `250 ... queued as X` reply.
    pub submission_queue_id: Option<String>,
    /// Host roles the message should pass, in order (empty: no path check).
    pub expected_hosts: Vec<String>,
}

/// A Received hop as the trace engine sees it (oldest first). `role` is the host role the
/// caller mapped the `by` host to, if any; `stage` the trace's stage name for the hop.
#[derive(Debug, Clone, Default)]
pub struct HeaderHop {
    pub by: Option<String>,
    pub role: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
    pub stage: Option<String>,
}

fn ms_between(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (b - a).num_milliseconds()
}

/// Find the chains that belong to the probe: by Message-ID, by the submission queue id, or
/// (for rejections, which carry no Message-ID) by sender, recipient and time.
pub fn probe_chains<'a>(ctx: &ProbeContext, messages: &'a [MessageChain]) -> Vec<&'a MessageChain> {
    let mut out: Vec<&MessageChain> = messages
        .iter()
        .filter(|m| m.has_message_id(&ctx.message_id))
        .collect();
    if out.is_empty() {
        if let Some(q) = &ctx.submission_queue_id {
            out.extend(messages.iter().filter(|m| {
                m.hops
                    .iter()
                    .any(|h| h.queue_id.as_deref() == Some(q.as_str()))
            }));
        }
    }
    // NOQUEUE rejections carry no id: match them by sender, recipient and time, but only for a
    // probe whose submission was refused. An accepted probe has its Message-ID and queue id to
    // be found by; matching it by sender and recipient would take an earlier probe's rejection
    // (same addresses, minutes before) for its own.
    if out.is_empty() && ctx.accepted_at.is_none() {
        out.extend(rejection_of(ctx, messages));
    }
    out
}

/// The NOQUEUE rejection with the probe's sender and recipient closest to its submission, within
/// two minutes either side (wide enough for modest clock skew).
fn rejection_of<'a>(ctx: &ProbeContext, messages: &'a [MessageChain]) -> Option<&'a MessageChain> {
    let lo = ctx.submitted_at - TimeDelta::seconds(120);
    let hi = ctx.accepted_at.unwrap_or(ctx.submitted_at) + TimeDelta::seconds(120);
    messages
        .iter()
        .filter(|m| m.message_id.is_none() && m.status == MessageStatus::Rejected)
        .filter(|m| {
            m.from
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case(&ctx.mail_from))
                && ctx.rcpt_to.iter().any(|r| m.mentions_rcpt(r))
        })
        .filter_map(|m| {
            let t = m.hops.first()?.arrived_at?;
            (t >= lo && t <= hi).then(|| ((t - ctx.submitted_at).num_milliseconds().abs(), m))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, m)| m)
}

/// Fuse a probe's client times with the log chains and Received hops into stages.
pub fn fuse_probe(
    ctx: &ProbeContext,
    messages: &[MessageChain],
    header_hops: &[HeaderHop],
) -> ProbeTimeline {
    let chains = probe_chains(ctx, messages);
    let mut t = ProbeTimeline {
        message_id: ctx.message_id.clone(),
        status: MessageStatus::Unknown,
        stages: Vec::new(),
        findings: Vec::new(),
        last_host: None,
        skew: Vec::new(),
        notes: Vec::new(),
        hops: Vec::new(),
    };
    for (i, c) in chains.iter().enumerate() {
        t.hops.extend(c.hops.iter().cloned());
        t.findings.extend(c.findings.iter().cloned());
        t.notes.extend(c.notes.iter().cloned());
        if i == 0 || c.status.rank() > t.status.rank() {
            t.status = c.status;
        }
    }
    let e2e = ctx.detected_at.map(|d| ms_between(ctx.submitted_at, d));
    if let Some(acc) = ctx.accepted_at {
        t.stages.push(Stage {
            name: "submit".into(),
            ms: ms_between(ctx.submitted_at, acc).max(0) as u64,
            source: StageSource::Client,
            precision_ms: 1,
            bounded: false,
            detail: Some("SMTP submission until the server accepted (client clock)".into()),
        });
    }
    t.skew = client_skew(ctx, t.status, &t.hops);
    for s in t.skew.iter().filter(|s| s.significant) {
        t.notes.push(format!(
            "clock skew: {}'s log clock is about {:+.3} s off the client's; cross-host figures are corrected and bounded by the client's times",
            s.host,
            s.estimate_ms as f64 / 1000.0
        ));
    }
    let mut logs = LogStages::new(ctx, e2e);
    for h in &t.hops {
        logs.hop(h);
    }
    let covered = logs.finish(&mut t.stages);
    header_stages(header_hops, &covered, e2e, &mut t);
    if let Some(det) = ctx.detected_at {
        t.stages.extend(detect_stage(ctx, det, &t.hops, &t.skew));
        if let Some(e) = e2e {
            t.stages.push(Stage {
                name: "end_to_end".into(),
                ms: e.max(0) as u64,
                source: StageSource::Client,
                precision_ms: 1,
                bounded: e < 0,
                detail: Some("submission start until detection (client clock)".into()),
            });
        }
    }
    t.findings.extend(path_finding(ctx, &covered));
    if chains.is_empty() {
        t.notes.push("no log line mentions this probe".into());
    }
    t.last_host = t.hops.last().map(|h| h.host.to_string());
    t
}

/// Each host's log clock against the client's: every logged event of the probe happened after
/// the client started submitting, and (once delivered) before the client saw the message.
fn client_skew(ctx: &ProbeContext, status: MessageStatus, hops: &[Hop]) -> Vec<HostSkew> {
    let mut acc: BTreeMap<String, SkewBounds> = BTreeMap::new();
    let upper = if status == MessageStatus::Delivered {
        ctx.detected_at
    } else {
        None
    };
    for (i, h) in hops.iter().enumerate() {
        let res_ms = if h.whole_seconds { 1000 } else { 1 };
        let mut add = |at: DateTime<Utc>, after, before| {
            let sample = OffsetRange::event(Stamp { at, res_ms }, after, before);
            acc.entry(h.host.to_string())
                .or_default()
                .add(sample, OnConflict::TakeLatest);
        };
        if let Some(at) = h.arrived_at {
            // The first hop received the probe from the client: between send and accept.
            let before = if i == 0 {
                ctx.accepted_at.or(upper)
            } else {
                upper
            };
            add(at, Some(ctx.submitted_at), before);
        }
        if let Some(at) = h.left_at {
            // Dovecot saves only what a server accepted from the client.
            let after = if h.status == HopStatus::Saved {
                ctx.accepted_at.or(Some(ctx.submitted_at))
            } else {
                Some(ctx.submitted_at)
            };
            add(at, after, upper);
        }
    }
    acc.into_iter()
        .map(|(host, b)| HostSkew {
            host,
            min_ms: b.min_ms,
            max_ms: b.max_ms,
            estimate_ms: b.estimate_ms(),
            significant: b.significant(),
            inconsistent: b.conflicts > 0,
        })
        .collect()
}

/// Resolution of a Postfix delay figure: it prints two significant digits (0.52, 1.2, 31).
fn postfix_precision_ms(ms: u64) -> u64 {
    if ms < 1000 {
        10
    } else if ms < 10_000 {
        100
    } else {
        1000
    }
}

/// A hand-off in progress (connect + transmit on the sending host), owed to the next host.
struct Carry {
    ms: u64,
    precision_ms: u64,
    from: String,
}

/// Log stages, one per host, NOT overlapping: a hand-off belongs to the host that receives.
/// Postfix's `delays=a/b/c/d` splits each hop: a+b is time spent on that host before it starts
/// talking to the next one; c+d (connect, transmit until the next host's 250) is the next host
/// taking the message, so it counts for the next host's stage. An injected delay in dell's
/// smtpd therefore shows on dell, not on the MX that waited for it. Dovecot's stage is the LMTP
/// hand-off that carried the probe to it (its own delivery_time is inside that). Every term
/// comes from one host's own clock.
struct LogStages {
    stages: Vec<Stage>,
    /// Hosts whose logs saw the probe, in path order.
    covered: Vec<String>,
    /// The client-measured submission, owed once to the first host's reception.
    submit_ms: Option<u64>,
    carry: Option<Carry>,
    /// The client's end-to-end time: no single stage can be longer.
    cap: Option<u64>,
}

impl LogStages {
    fn new(ctx: &ProbeContext, e2e: Option<i64>) -> Self {
        LogStages {
            stages: Vec::new(),
            covered: Vec::new(),
            submit_ms: ctx
                .accepted_at
                .map(|a| ms_between(ctx.submitted_at, a).max(0) as u64),
            carry: None,
            cap: e2e.map(|e| e.max(0) as u64),
        }
    }

    fn push(&mut self, name: String, ms: u64, precision_ms: u64, detail: String) {
        let mut v = ms;
        let mut bounded = false;
        if let Some(c) = self.cap {
            // Allow Postfix's rounding before calling a figure impossible.
            if v > c + c / 20 + 10 {
                v = c;
                bounded = true;
            }
        }
        self.stages.push(Stage {
            name,
            ms: v,
            source: StageSource::Log,
            precision_ms,
            bounded,
            detail: Some(detail),
        });
    }

    fn hop(&mut self, h: &Hop) {
        if !self.covered.iter().any(|c| *c == h.host) {
            self.covered.push(h.host.to_string());
        }
        if h.status == HopStatus::Rejected {
            return;
        }
        let incoming = self.carry.take();
        if h.queue_id.is_none() && h.status.is_mailbox_save() {
            self.dovecot_hop(h, incoming);
        } else if let Some(d) = h.delays {
            self.postfix_hop(h, d, incoming);
        } else if let Some(ms) = h.delay_ms {
            let detail = "Postfix delay= (no breakdown)".into();
            self.push(h.host.to_string(), ms, postfix_precision_ms(ms), detail);
        }
    }

    /// Dovecot's stage: the LMTP hand-off that reached it, else its own delivery_time.
    fn dovecot_hop(&mut self, h: &Hop, incoming: Option<Carry>) {
        let (ms, precision, detail) = match (incoming, h.delay_ms) {
            (Some(c), _) => (
                c.ms,
                c.precision_ms,
                format!("LMTP hand-off from {} (connect + transmit); Dovecot's own delivery_time {} ms is inside it", c.from, h.delay_ms.unwrap_or(0)),
            ),
            (None, Some(d)) => (d, 1, "Dovecot LMTP delivery_time".to_owned()),
            (None, None) => return,
        };
        self.push(h.host.to_string(), ms, precision, detail);
    }

    /// A Postfix host's stage from its `delays=a/b/c/d`; its own c+d is carried to the next.
    fn postfix_hop(&mut self, h: &Hop, d: Delays, incoming: Option<Carry>) {
        let own = d.before_qmgr_ms + d.in_qmgr_ms;
        let (ms, precision, detail) = match incoming {
            // This host's `a` starts when the SMTP session from the previous host starts, so it
            // covers the same reception as the previous host's c+d (two clocks, one interval):
            // take the larger of the two, then add this host's queue-manager wait.
            Some(c) => (
                c.ms.max(d.before_qmgr_ms) + d.in_qmgr_ms,
                postfix_precision_ms(d.before_qmgr_ms).max(c.precision_ms),
                format!(
                    "hand-off from {} (its connect + transmit {} ms; reception here {} ms, the larger counts) + in queue manager {} ms",
                    c.from, c.ms, d.before_qmgr_ms, d.in_qmgr_ms
                ),
            ),
            // The first host's `a` includes receiving the probe from the client, which the
            // client's own `submission` stage already counts: leave it out here.
            None => match self.submit_ms.take() {
                Some(sub) => (
                    own.saturating_sub(sub),
                    postfix_precision_ms(own),
                    format!(
                        "before queue manager {} ms + in queue manager {} ms, less the {sub} ms submission the client measured",
                        d.before_qmgr_ms, d.in_qmgr_ms
                    ),
                ),
                None => (
                    own,
                    postfix_precision_ms(own),
                    format!("before queue manager {} ms + in queue manager {} ms", d.before_qmgr_ms, d.in_qmgr_ms),
                ),
            },
        };
        self.push(h.host.to_string(), ms, precision, detail);
        let out = d.conn_setup_ms + d.transmission_ms;
        self.carry = Some(Carry {
            ms: out,
            precision_ms: postfix_precision_ms(out),
            from: h.host.to_string(),
        });
    }

    /// Append the stages to `stages` and return the hosts covered by logs.
    fn finish(mut self, stages: &mut Vec<Stage>) -> Vec<String> {
        if let Some(c) = self.carry.take() {
            // Handed off to a host without a log source, or not handed off at all (deferred).
            let detail = format!(
                "{}'s connect + transmit to the next hop (no log of the receiving side)",
                c.from
            );
            self.push(
                format!("{} -> next hop", c.from),
                c.ms,
                c.precision_ms,
                detail,
            );
        }
        stages.append(&mut self.stages);
        self.covered
    }
}

/// Stages from Received timestamps for hosts no log covers: whole seconds and two clocks, so
/// clamped to the client's end-to-end time (with a note when that was needed).
fn header_stages(
    header_hops: &[HeaderHop],
    covered: &[String],
    e2e: Option<i64>,
    t: &mut ProbeTimeline,
) {
    let mut prev: Option<DateTime<Utc>> = None;
    for hh in header_hops {
        // A hop with no log role is named by its stage (stable across messages, where a
        // provider's host names are not), and its host is kept in the detail.
        let (name, host) = match (&hh.role, &hh.stage) {
            (Some(role), _) => (role.clone(), None),
            (None, Some(stage)) => (stage.clone(), hh.by.as_deref()),
            (None, None) => (hh.by.clone().unwrap_or_else(|| "?".into()), None),
        };
        let detail = match host {
            Some(h) => {
                format!("by {h}: difference of whole-second Received timestamps (two clocks)")
            }
            None => "difference of whole-second Received timestamps (two clocks)".into(),
        };
        if let (Some(p), Some(at)) = (prev, hh.timestamp) {
            if !covered.contains(&name) {
                let raw = ms_between(p, at);
                let v = raw.clamp(0, e2e.unwrap_or(i64::MAX).max(0));
                t.stages.push(Stage {
                    name: format!("{name} (header)"),
                    ms: v as u64,
                    source: StageSource::Header,
                    precision_ms: 1000,
                    bounded: v != raw,
                    detail: Some(detail),
                });
                if v != raw {
                    t.notes.push(format!("Received timestamps of {name} disagree with the client's clock ({raw} ms); bounded"));
                }
            }
        }
        if hh.timestamp.is_some() {
            prev = hh.timestamp;
        }
    }
}

/// From the last log event (Dovecot's save, else the last hop that logged one) to detection by
/// the client: cross-clock, so corrected by the host's skew and bounded by the client's times.
fn detect_stage(
    ctx: &ProbeContext,
    detected: DateTime<Utc>,
    hops: &[Hop],
    skew: &[HostSkew],
) -> Option<Stage> {
    let h = hops
        .iter()
        .rev()
        .find(|h| h.status == HopStatus::Saved)
        .or_else(|| hops.iter().rev().find(|h| h.left_at.is_some()))?;
    let left = h.left_at?;
    let est = skew
        .iter()
        .find(|s| s.host == h.host)
        .map_or(0, |s| s.estimate_ms);
    let corrected = TimeDelta::try_milliseconds(est)
        .and_then(|d| left.checked_sub_signed(d))
        .unwrap_or(left);
    let raw = ms_between(corrected, detected);
    let ceiling = ctx
        .accepted_at
        .map_or(0, |a| ms_between(a, detected).max(0));
    let v = raw.clamp(0, ceiling.max(0));
    Some(Stage {
        name: "detect".into(),
        ms: v as u64,
        source: StageSource::Client,
        precision_ms: if h.whole_seconds { 1000 } else { 1 },
        bounded: v != raw,
        detail: Some(format!(
            "{}'s last log event until the client saw the message",
            h.host
        )),
    })
}

/// A finding when the logs show a host outside the expected path.
fn path_finding(ctx: &ProbeContext, covered: &[String]) -> Option<Finding> {
    if ctx.expected_hosts.is_empty() {
        return None;
    }
    let unexpected = covered.iter().find(|h| !ctx.expected_hosts.contains(h))?;
    let mut f = Finding::new(
        FindingCode::UnexpectedPath,
        Some(unexpected.as_str()),
        format!(
            "expected path {}, logs show {}",
            ctx.expected_hosts.join(" -> "),
            covered.join(" -> ")
        ),
    );
    f.message_id = Some(ctx.message_id.clone());
    Some(f)
}
