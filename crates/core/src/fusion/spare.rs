//! The room a reported message leaves behind, taken again by the next message assembled: its
//! lists (hops, recipients, findings, notes) and the assembly's own working lists. A full
//! diagnosis assembles a message every few records and drops it once its text is written; made
//! new each time, these lists were a quarter of the correlating thread's allocations, each one
//! handing out a block last touched long before. Does not decide what goes in them (`assemble`).

use crate::diagnosis::Finding;
use crate::logs::EventText;

use super::assemble::HopOf;
use super::model::{Hop, MessageChain};

/// Lists longer than this are let go rather than kept: one unusual message must not hold its
/// room for the rest of the run.
const MAX_KEPT_LEN: usize = 64;
/// Empty recipient lists kept at most (one per hop of the last message, and its own).
const MAX_LISTS: usize = 16;

/// Empty lists with room, to be filled by the next message assembled.
#[derive(Debug, Clone, Default)]
pub(super) struct Spare {
    hops: Vec<Hop>,
    findings: Vec<Finding>,
    notes: Vec<String>,
    lists: Vec<Vec<EventText>>,
    /// The assembly's working lists: entry indices in path order, the walk's stack, where
    /// each hop comes from.
    pub order: Vec<usize>,
    pub stack: Vec<usize>,
    pub walk: Vec<HopOf>,
}

/// `v` emptied, if it is worth keeping.
fn emptied<T>(mut v: Vec<T>) -> Option<Vec<T>> {
    v.clear();
    (v.capacity() > 0 && v.capacity() <= MAX_KEPT_LEN).then_some(v)
}

impl Spare {
    /// Keep the lists of a message that has been reported.
    pub fn keep(&mut self, m: MessageChain) {
        let MessageChain {
            mut hops,
            to,
            findings,
            notes,
            ..
        } = m;
        for h in &mut hops {
            self.keep_list(std::mem::take(&mut h.to));
        }
        self.keep_list(to);
        if let Some(v) = emptied(hops) {
            self.hops = v;
        }
        if let Some(v) = emptied(findings) {
            self.findings = v;
        }
        if let Some(v) = emptied(notes) {
            self.notes = v;
        }
    }

    fn keep_list(&mut self, list: Vec<EventText>) {
        if self.lists.len() < MAX_LISTS {
            if let Some(v) = emptied(list) {
                self.lists.push(v);
            }
        }
    }

    /// An empty list of hops (with room, when a message left some).
    pub fn hops(&mut self) -> Vec<Hop> {
        std::mem::take(&mut self.hops)
    }

    pub fn findings(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.findings)
    }

    pub fn notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// An empty list of recipients.
    pub fn list(&mut self) -> Vec<EventText> {
        self.lists.pop().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::FindingCode;
    use crate::fixtures::bare_hop;
    use crate::fusion::{HopStatus, MessageStatus};

    fn hop(to: &[&str]) -> Hop {
        Hop {
            to: to.iter().map(|t| EventText::from(*t)).collect(),
            ..bare_hop("ec2", HopStatus::Sent)
        }
    }

    fn message(hops: Vec<Hop>, notes: usize) -> MessageChain {
        MessageChain {
            message_id: None,
            status: MessageStatus::Delivered,
            from: None,
            to: vec!["a@b".into()],
            hops,
            findings: vec![Finding::new(FindingCode::DiskFull, None, "full")],
            notes: (0..notes).map(|i| i.to_string()).collect(),
            complete: true,
            lines: vec![],
            lines_dropped: 0,
            last_seen: None,
        }
    }

    #[test]
    fn lists_come_back_empty_with_their_room() {
        let mut spare = Spare::default();
        assert_eq!(spare.hops().capacity(), 0);
        spare.keep(message(vec![hop(&["x@y", "z@y"]), hop(&["x@y"])], 2));
        let hops = spare.hops();
        assert!(hops.is_empty() && hops.capacity() >= 2);
        // The message's own list and one per hop.
        let lists: Vec<_> = (0..3).map(|_| spare.list()).collect();
        assert!(lists.iter().all(|l| l.is_empty() && l.capacity() >= 1));
        assert_eq!(spare.list().capacity(), 0);
        let (f, n) = (spare.findings(), spare.notes());
        assert!(f.is_empty() && f.capacity() >= 1 && n.is_empty() && n.capacity() >= 2);
        // Taken: nothing left until the next message is kept.
        assert_eq!(spare.hops().capacity(), 0);
        assert_eq!(spare.notes().capacity(), 0);
    }

    #[test]
    fn long_lists_and_many_lists_are_let_go() {
        let mut spare = Spare::default();
        spare.keep(message(vec![], MAX_KEPT_LEN + 1));
        assert_eq!(spare.notes().capacity(), 0);
        let many: Vec<Hop> = (0..MAX_LISTS + 5).map(|_| hop(&["x@y"])).collect();
        spare.keep(message(many, 0));
        let mut kept = 0;
        while spare.list().capacity() > 0 {
            kept += 1;
        }
        assert_eq!(kept, MAX_LISTS);
    }
}
