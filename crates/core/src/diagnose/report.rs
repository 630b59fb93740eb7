//! The diagnosis report as it streams out: each finished message is counted, its failures
//! grouped into incidents and its entry written; at the end the host findings near what was
//! asked about, the clock skew, the sources and the summary follow. Does not format text itself
//! (`super::render`).

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{DateTime, TimeDelta, Utc};

use crate::diagnosis::Finding;
use crate::fusion::{CorrelatorStats, MessageChain, MessageStatus, SkewEstimate};
use crate::grouping::IncidentGroups;

use super::json::LastTime;
use super::render::{self, Tail};
use super::{Format, Options, SourceReport, Summary};
use crate::runbook::{Facts, HintCache, Runbook};

/// Bytes of rendered JSON messages gathered before they are written: more than the command's
/// output buffer (64 KiB), so that each write goes past that buffer instead of through it.
const PENDING: usize = 1 << 17;

/// Message findings listed at the top level at most (the rest are counted).
const MAX_TOP_FINDINGS: usize = 1_000;
/// With a filter, host findings this close to the matched messages' span are shown.
const HOST_FINDING_MARGIN: TimeDelta = TimeDelta::seconds(60);

/// First and last time any matched message was seen at a hop.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

/// Count `f` (each of its occurrences) under its code.
fn tally(by_code: &mut BTreeMap<&'static str, u64>, f: &Finding) {
    *by_code.entry(f.code.as_str()).or_insert(0) += f.count.max(1);
}

/// Streams the report as it is produced.
pub(super) struct Report<'a> {
    out: &'a mut dyn Write,
    opts: &'a Options,
    /// Renders every finding's hint (the configured runbook, or the built-in one).
    runbook: &'a Runbook,
    facts: Facts,
    /// Hints this report rendered, by subject (with `runbook` and `facts`).
    hints: HintCache,
    first_message: bool,
    summary: Summary,
    top_findings: Vec<Finding>,
    findings_truncated: u64,
    /// Every message's findings by code, those left out of `top_findings` too: the split of all
    /// findings, whatever order the messages finished in.
    by_code: BTreeMap<&'static str, u64>,
    groups: IncidentGroups,
    span: Option<Span>,
    /// JSON messages rendered and not written yet (at most about [`PENDING`] bytes). Written
    /// before anything else is, and when the report is dropped (a read error ends a run early).
    pending: Vec<u8>,
    /// The last timestamp written into `pending` and its text.
    last_time: LastTime,
}

impl<'a> Report<'a> {
    pub(super) fn begin(
        out: &'a mut dyn Write,
        opts: &'a Options,
        runbook: &'a Runbook,
    ) -> io::Result<Self> {
        if opts.format == Format::Json {
            render::json_head(out)?;
        }
        Ok(Report {
            out,
            opts,
            runbook,
            facts: Facts {
                recipient: opts.rcpt.clone(),
            },
            hints: HintCache::default(),
            first_message: true,
            summary: Summary::default(),
            top_findings: Vec::new(),
            findings_truncated: 0,
            by_code: BTreeMap::new(),
            groups: IncidentGroups::default(),
            span: None,
            pending: Vec::new(),
            last_time: LastTime::default(),
        })
    }

    pub(super) fn message(&mut self, m: &mut MessageChain) -> io::Result<()> {
        if !self.opts.wants(m) {
            return Ok(());
        }
        self.runbook
            .apply_cached(&mut m.findings, &self.facts, &mut self.hints);
        self.count(m);
        if !self.opts.filtered() {
            // Unfiltered runs can cover millions of messages: keep the output to the facts.
            m.lines.clear();
        }
        match self.opts.format {
            Format::Json => {
                render::json_message(
                    &mut self.pending,
                    m,
                    self.first_message,
                    &mut self.last_time,
                )?;
                if self.pending.len() >= PENDING {
                    self.write_pending()?;
                }
            }
            Format::Human => {
                if self.opts.filtered() || !m.findings.is_empty() || m.status.is_failure() {
                    render::human_message(&mut *self.out, m, self.opts.filtered())?;
                }
            }
        }
        self.first_message = false;
        Ok(())
    }

    /// Write the rendered messages gathered so far.
    fn write_pending(&mut self) -> io::Result<()> {
        let done = self.out.write_all(&self.pending);
        self.pending.clear();
        done
    }

    /// Fold a matched message into the summary, the span, the findings and the incidents.
    fn count(&mut self, m: &MessageChain) {
        self.summary.messages += 1;
        *self.summary.by_status.entry(m.status.as_str()).or_insert(0) += 1;
        let failed = failed(m);
        if failed {
            self.summary.failed += 1;
        }
        // Its hops' times, and its latest line's (a hop still queued has no `left_at`).
        let hops = m.hops.iter().flat_map(|h| [h.arrived_at, h.left_at]);
        for t in hops.chain([m.last_seen]).flatten() {
            self.span = Some(match self.span {
                None => Span { first: t, last: t },
                Some(s) => Span {
                    first: s.first.min(t),
                    last: s.last.max(t),
                },
            });
        }
        for f in &m.findings {
            tally(&mut self.by_code, f);
            if self.top_findings.len() < MAX_TOP_FINDINGS {
                self.top_findings.push(f.clone());
            } else {
                self.findings_truncated += 1;
            }
        }
        // A failed message's findings draft incidents, an open one's included.
        if failed {
            for f in &m.findings {
                self.groups.add(f);
            }
        }
    }

    /// With a filter, only host findings around the matched messages are relevant.
    fn relevant(&self, host_findings: Vec<Finding>) -> Vec<Finding> {
        if !self.opts.filtered() {
            return host_findings;
        }
        let Some(span) = self.span else {
            return Vec::new();
        };
        host_findings
            .into_iter()
            .filter(|f| {
                let first = f.first_seen.unwrap_or(span.first);
                let last = f.last_seen.unwrap_or(span.last);
                first <= span.last + HOST_FINDING_MARGIN && last >= span.first - HOST_FINDING_MARGIN
            })
            .collect()
    }

    /// What the correlator counted rather than reported.
    pub(super) fn correlator_counts(&mut self, stats: &CorrelatorStats) {
        self.summary.lines_dropped_over_cap = stats.lines_dropped_over_cap;
        self.summary.transactions_abandoned = stats.transactions_abandoned;
        self.summary.removed_only = stats.removed_only;
    }

    pub(super) fn end(
        mut self,
        host_findings: Vec<Finding>,
        skew: Vec<SkewEstimate>,
        sources: Vec<SourceReport>,
    ) -> io::Result<Summary> {
        let mut host_findings = self.relevant(host_findings);
        self.runbook
            .apply_cached(&mut host_findings, &self.facts, &mut self.hints);
        for f in &host_findings {
            self.groups.add(f);
        }
        if !self.opts.filtered() {
            self.summary.server_faults = host_findings
                .iter()
                .filter(|f| f.code.is_server_fault())
                .count() as u64;
        }
        let mut by_code = std::mem::take(&mut self.by_code);
        for f in &host_findings {
            tally(&mut by_code, f);
        }
        // The messages still gathered go first (none with the human format).
        self.write_pending()?;
        let tail = Tail {
            top_findings: &self.top_findings,
            host_findings: &host_findings,
            skew: &skew,
            sources: &sources,
            summary: &self.summary,
            findings_by_code: &by_code,
            findings_truncated: self.findings_truncated,
        };
        match self.opts.format {
            Format::Json => render::json_tail(&mut *self.out, &tail)?,
            Format::Human => render::human_tail(&mut *self.out, &tail, self.opts)?,
        }
        self.out.flush()?;
        self.summary.sources = sources;
        self.summary.incidents = std::mem::take(&mut self.groups).into_groups();
        Ok(std::mem::take(&mut self.summary))
    }
}

impl Drop for Report<'_> {
    /// The messages already rendered are written even when the run ends early (as a buffered
    /// writer's drop writes what it holds); a write error then has nowhere to go.
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.write_pending();
        }
    }
}

/// A message that failed: its status says so, or its fate is not known (queued, unknown) and a
/// finding says its last attempt failed (`QID: Cannot start TLS: handshake failure` with no
/// delivery line after it): a monitor reading the exit code must not take that for "all well".
fn failed(m: &MessageChain) -> bool {
    let open = matches!(m.status, MessageStatus::Queued | MessageStatus::Unknown);
    m.status.is_failure() || (open && m.findings.iter().any(|f| f.code.is_failure()))
}
