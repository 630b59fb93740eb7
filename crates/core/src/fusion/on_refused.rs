//! Correlator handler for a message cleanup refused with a temporary error because a map lookup
//! failed (`QID: virtual_alias_maps map lookup problem for KEY -- message not accepted, try
//! again later`): the entry closes as refused, with a lookup finding and the `lookup error`
//! lines that explain it, and joins the upstream host's deferral that quotes smtpd's reply
//! (`451 4.3.0 Error: queue file write error`), in whichever order the two logs arrive. Other
//! warnings are `on_host`'s.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::diagnosis::{Finding, FindingCode};
use crate::logs::{LogRecord, MapLookup, MapProblem};

use super::chain::{clip, within, ChainId};
use super::correlator::{remember, Correlator};

/// What smtpd replies when cleanup could not accept the message for a temporary reason; the
/// upstream deferral quotes it.
const CLEANUP_TEMP_REPLY: &str = "said: 451 4.3.0";

/// A refused entry, kept a while for the upstream deferral logged after it.
#[derive(Debug, Clone)]
pub(super) struct RecentRefusal {
    pub host: Arc<str>,
    pub qid: String,
    /// The key looked up (the recipient), lower-cased.
    pub key: String,
    pub at: Option<DateTime<Utc>>,
}

/// The refusal's text: `cleanup could not look up MAP for KEY: REASON`.
fn refusal_text(m: &MapLookup<'_>, reason: &str) -> String {
    let what = match m.kind {
        MapProblem::LookupFailed => "could not look up",
        MapProblem::Nesting => "found too deep a nesting of",
        MapProblem::Expansion => "found too large an expansion of",
    };
    match m.key {
        Some(k) => format!("cleanup {what} {} for {k}: {reason}", m.map),
        None => format!("cleanup {what} {}: {reason}", m.map),
    }
}

impl Correlator {
    /// A map lookup problem that names a queue id: when cleanup did not accept the message,
    /// close the entry as refused. Returns whether the line was taken as such.
    pub(super) fn on_map_refusal(
        &mut self,
        rec: &LogRecord,
        queue_id: &str,
        m: &MapLookup<'_>,
    ) -> bool {
        let Some(reason) = m.reason.filter(|r| r.contains("not accepted")) else {
            return false;
        };
        let ts = rec.timestamp;
        let text = clip(&refusal_text(m, reason), 300);
        let explaining = self.lookup_errors(&rec.role, ts, m);
        let cid = self.on_entry_line(rec, queue_id, |e| e.refused = Some(text.clone()));
        let f = Finding::new(
            FindingCode::LookupFailure,
            Some(&rec.role),
            format!("{}: {text}", rec.role),
        );
        self.add_record_finding(cid, rec, f, &explaining);
        let Some(key) = m.key.map(str::to_ascii_lowercase) else {
            return true;
        };
        if let Some((up_host, up_qid)) = self.deferral_quoting_refusal(&rec.role, &key, ts) {
            self.join_refusal(&up_host, &up_qid, &rec.role, queue_id);
        }
        remember(
            &mut self.recent_refusals,
            RecentRefusal {
                host: rec.role.clone(),
                qid: queue_id.to_owned(),
                key,
                at: ts,
            },
        );
        true
    }

    /// A deferral on `host` to `to_key` quoting cleanup's temporary reply: the refusal on
    /// another host it ran into joins its chain. Returns the (possibly merged) chain.
    pub(super) fn join_quoted_refusal(
        &mut self,
        host: &Arc<str>,
        qid: &str,
        to_key: &str,
        ts: Option<DateTime<Utc>>,
        reason: &str,
        cid: ChainId,
    ) -> ChainId {
        if !reason.contains(CLEANUP_TEMP_REPLY) {
            return cid;
        }
        let hit = self
            .recent_refusals
            .iter()
            .rev()
            .find(|r| {
                r.key == to_key && r.host != *host && within(r.at, ts, self.limits.link_window)
            })
            .map(|r| (r.host.clone(), r.qid.clone()));
        hit.and_then(|(down_host, down_qid)| self.join_refusal(host, qid, &down_host, &down_qid))
            .unwrap_or(cid)
    }

    /// The latest deferral on another host to `key`, within the window, that quotes cleanup's
    /// temporary reply: (host, queue id).
    fn deferral_quoting_refusal(
        &self,
        host: &Arc<str>,
        key: &str,
        ts: Option<DateTime<Utc>>,
    ) -> Option<(Arc<str>, String)> {
        self.failure_elsewhere(host, key, ts, |x| x.reason.contains(CLEANUP_TEMP_REPLY))
            .map(|x| (x.host.clone(), x.qid.to_string()))
    }

    /// Join the upstream entry (whose deferral quotes the refusal) with the refused entry,
    /// which then follows it in the message's path. Returns the surviving chain, `None` when
    /// either entry's chain is gone or their message-ids disagree.
    fn join_refusal(
        &mut self,
        up_host: &Arc<str>,
        up_qid: &str,
        down_host: &Arc<str>,
        down_qid: &str,
    ) -> Option<ChainId> {
        let up = self.find_entry(up_host, up_qid)?;
        let down = self.find_entry(down_host, down_qid)?;
        if !self.compatible(up, down) {
            return None;
        }
        let keep = self.merge(up, down);
        if let Some(e) = self
            .chains
            .get_mut(&keep)
            .and_then(|ch| ch.entry_mut(down_host, down_qid))
        {
            if e.upstream.is_none() {
                e.upstream = Some((up_host.clone(), up_qid.to_owned()));
            }
        }
        Some(keep)
    }

    /// Recent `lookup error` lines on `host` about the same key (or, without one, the same
    /// map): what made the lookup fail. Earlier refusals are not their own explanation.
    fn lookup_errors(
        &self,
        host: &str,
        ts: Option<DateTime<Utc>>,
        m: &MapLookup<'_>,
    ) -> Vec<String> {
        let needle = m.key.unwrap_or(m.map);
        let mut hits: Vec<String> = self
            .recent_problems
            .iter()
            .rev()
            .filter(|p| {
                &*p.host == host
                    && p.code == Some(FindingCode::LookupFailure)
                    && within(p.at, ts, self.limits.link_window)
                    && p.raw.contains(needle)
                    && !p.raw.contains("map lookup problem")
            })
            .take(3)
            .map(|p| p.raw.clone())
            .collect();
        hits.reverse();
        hits
    }
}
