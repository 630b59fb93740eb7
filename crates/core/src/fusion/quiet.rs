//! When open chains fall due: the open chains themselves ([`Chains`], which notes every chain
//! handed out for change) and a queue of chains by the time each can first be done
//! ([`DueQueue`]), so that a sweep looks at the chains that are due instead of every open one.
//! Does not decide how long a chain waits (the correlator's `wait` does); the queue is lazy:
//! entries of changed or emitted chains are dropped when they come up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Deref;

use chrono::{DateTime, Utc};

use super::chain::{Chain, ChainId};
use super::correlator::Index;

/// The open chains. Reading goes through `Deref`; every chain handed out mutably (or inserted)
/// is noted, since a change can change when it is due.
#[derive(Debug, Default)]
pub(super) struct Chains {
    map: Index<ChainId, Chain>,
    changed: Vec<ChainId>,
}

impl Deref for Chains {
    type Target = Index<ChainId, Chain>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl Chains {
    pub fn get_mut(&mut self, id: &ChainId) -> Option<&mut Chain> {
        let ch = self.map.get_mut(id)?;
        if !ch.changed {
            ch.changed = true;
            self.changed.push(*id);
        }
        Some(ch)
    }

    pub fn insert(&mut self, id: ChainId, mut ch: Chain) {
        ch.changed = true;
        self.changed.push(id);
        self.map.insert(id, ch);
    }

    pub fn remove(&mut self, id: &ChainId) -> Option<Chain> {
        self.map.remove(id)
    }
}

/// Open chains by the time each falls due.
#[derive(Debug, Default)]
pub(super) struct DueQueue {
    /// (due time when queued, chain), earliest first. An entry is live while the chain is open
    /// and its `due` is still that time.
    heap: BinaryHeap<Reverse<(DateTime<Utc>, ChainId)>>,
    /// Chains that have no activity time (so no due time): looked at on every sweep.
    untimed: Vec<ChainId>,
}

impl DueQueue {
    /// Every open chain whose due time (by `due_of`, from its state) is at or before `now`, and
    /// those without one, in no particular order; possibly with repeats. Chains changed since the
    /// last call are queued anew first.
    pub fn due(
        &mut self,
        chains: &mut Chains,
        now: DateTime<Utc>,
        due_of: impl Fn(&Chain) -> Option<DateTime<Utc>>,
    ) -> Vec<ChainId> {
        // The list is handed back emptied: regrowing it from nothing after every look would
        // mean large allocations, where the allocator consolidates its free lists.
        let mut changed = std::mem::take(&mut chains.changed);
        for id in changed.drain(..) {
            let Some(ch) = chains.map.get_mut(&id) else {
                continue;
            };
            ch.changed = false;
            ch.due = due_of(ch);
            match (ch.due, ch.last_activity) {
                (Some(t), _) => self.heap.push(Reverse((t, id))),
                (None, None) if !self.untimed.contains(&id) => self.untimed.push(id),
                (None, None) => {}
                // Out of range: never due by time alone.
                (None, Some(_)) => {}
            }
        }
        chains.changed = changed;
        self.untimed
            .retain(|id| chains.get(id).is_some_and(|ch| ch.last_activity.is_none()));
        let mut out = self.untimed.clone();
        while let Some(&Reverse((t, id))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            if chains.get(&id).is_some_and(|ch| ch.due == Some(t)) {
                out.push(id);
            }
        }
        out
    }
}
