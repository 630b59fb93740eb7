//! Which open chains a sweep has to look at: those quiet for at least the shortest wait (the
//! only ones that can be done), found through a queue ordered by last activity instead of a pass
//! over every open chain. Does not decide whether a chain is done (`correlator`); the queue is
//! lazy, so chains are neither re-queued on activity nor removed on emission here.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, Utc};

use super::chain::{Chain, ChainId};
use super::correlator::Index;

#[derive(Debug, Default)]
pub(super) struct QuietQueue {
    /// (last activity when queued, chain), oldest first. An entry is stale when its chain has
    /// been active since (re-queued when popped) or is gone (dropped when popped).
    heap: BinaryHeap<Reverse<(DateTime<Utc>, ChainId)>>,
    /// Chains opened since the last look, queued then (their activity time is set after
    /// opening).
    fresh: Vec<ChainId>,
    /// Chains quiet long enough but not done yet, or without any activity time: looked at on
    /// every sweep, because what they wait for can change without new activity.
    watch: Vec<ChainId>,
}

impl QuietQueue {
    /// A chain was opened.
    pub fn opened(&mut self, id: ChainId) {
        self.fresh.push(id);
    }

    /// Every open chain last active at or before `threshold` (or never): a superset of the
    /// chains a sweep at `threshold + shortest wait` finds done. Chains active since are queued
    /// again by their newest activity.
    pub fn quiet(
        &mut self,
        chains: &Index<ChainId, Chain>,
        threshold: DateTime<Utc>,
    ) -> Vec<ChainId> {
        for id in std::mem::take(&mut self.fresh) {
            match chains.get(&id).map(|ch| ch.last_activity) {
                None => {}
                Some(Some(t)) => self.heap.push(Reverse((t, id))),
                Some(None) => self.watch.push(id),
            }
        }
        while let Some(&Reverse((queued, id))) = self.heap.peek() {
            if queued > threshold {
                break;
            }
            self.heap.pop();
            match chains.get(&id).map(|ch| ch.last_activity) {
                None => {}
                Some(Some(t)) if t != queued => self.heap.push(Reverse((t, id))),
                Some(_) => self.watch.push(id),
            }
        }
        let heap = &mut self.heap;
        self.watch
            .retain(|id| match chains.get(id).map(|ch| ch.last_activity) {
                None => false,
                Some(Some(t)) if t > threshold => {
                    heap.push(Reverse((t, *id)));
                    false
                }
                Some(_) => true,
            });
        self.watch.clone()
    }
}
