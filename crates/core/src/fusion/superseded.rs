//! Chains superseded by a later chain of their Message-ID: a line that would join a chain by its
//! Message-ID found it done at the line's own time, so the line went to a new chain. The done
//! chain is held (unbuilt, out of the indices) until that Message-ID's next chain is emitted,
//! instead of being emitted at once: a later-read line of the same Message-ID whose own time is
//! before the held chain was done (a log whose clock steps back, read after another host's
//! later line) brings it back into the chain it joins, as it would have joined it had it been
//! read in time order (which `--message-id`'s prefilter, skipping other messages' lines, can
//! do). Does not decide when a chain is done (`correlator`) nor which chain a line joins.

use super::chain::{Chain, ChainId};
use super::correlator::Correlator;
use super::model::msgid_key;

/// The held chains, oldest first; nearly always none.
#[derive(Debug, Default)]
pub(super) struct Superseded(Vec<Chain>);

/// Whether chain `ch` is of Message-ID `key` (comparison key).
fn of(ch: &Chain, key: &str) -> bool {
    ch.message_id
        .as_deref()
        .is_some_and(|m| msgid_key(m) == key)
}

impl Superseded {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Chain> {
        self.0.iter()
    }

    /// Take out the oldest held chain of `key` that `pick` accepts.
    fn take(&mut self, key: &str, pick: impl Fn(&Chain) -> bool) -> Option<Chain> {
        let at = self.0.iter().position(|ch| of(ch, key) && pick(ch))?;
        Some(self.0.remove(at))
    }
}

impl Correlator {
    /// Chain `id`, done at the line's own time, leaves the open chains for the held ones: a
    /// line of its Message-ID went to another chain.
    pub(super) fn supersede(&mut self, id: ChainId) {
        if let Some(ch) = self.remove_chain(id) {
            self.superseded.0.push(ch);
        }
    }

    /// The line being read joined chain `into` by Message-ID `key`: every held chain of that
    /// Message-ID not yet done at the line's own time joins it too.
    pub(super) fn bridge(&mut self, key: &str, into: ChainId) {
        if self.superseded.is_empty() || !self.chains.contains_key(&into) {
            return;
        }
        let (at, limits, single_host) = (self.at(), self.limits, self.single_host);
        let open = |ch: &Chain| !Correlator::done_at(&limits, single_host, ch, at);
        while let Some(ch) = self.superseded.take(key, open) {
            self.reindex(&ch, into);
            self.line_budget.bytes += ch.line_bytes;
            if let Some(keep) = self.chains.get_mut(&into) {
                keep.absorb(ch, &limits);
            }
        }
    }

    /// The held chains of the Message-ID of a chain being emitted, which go first: no line
    /// joins that chain any more, so none brings them back.
    pub(super) fn release_superseded(&mut self, key: &str) -> Vec<Chain> {
        let mut out = Vec::new();
        while let Some(ch) = self.superseded.take(key, |_| true) {
            out.push(ch);
        }
        out
    }

    /// Every held chain (the end of input).
    pub(super) fn release_all_superseded(&mut self) -> Vec<Chain> {
        std::mem::take(&mut self.superseded.0)
    }

    /// Point the queue ids and LMTP sessions of `ch` (out of the indices) at chain `into`
    /// where no open chain holds them since.
    fn reindex(&mut self, ch: &Chain, into: ChainId) {
        for e in &ch.entries {
            let on = self.qids.entry(e.qid.clone()).or_default();
            if !on.iter().any(|(h, _)| *h == e.host) {
                on.push((e.host.clone(), into));
            }
        }
        let sessions = ch
            .entries
            .iter()
            .flat_map(|e| e.rcpts.iter().filter_map(|r| r.last.as_ref()))
            .filter_map(|a| a.lmtp_session.as_deref())
            .chain(ch.dovecot.iter().filter_map(|d| d.session.as_deref()));
        for s in sessions {
            if !self.sessions.contains_key(s) {
                self.sessions.insert(s.into(), into);
            }
        }
    }
}
