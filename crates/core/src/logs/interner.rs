//! The small cache of repeated names (program and host names) that lets a stream's records
//! share their text instead of allocating it per line. Does not parse (the caller hands it the
//! name's bytes).

use std::sync::Arc;

/// Small cache of repeated strings (program names, host names) so that records share them.
#[derive(Debug, Clone, Default)]
pub(super) struct Interner {
    items: Vec<(Box<[u8]>, Arc<str>)>,
    /// The last host name asked for, its bytes held here (see [`Interner::host`]).
    last_host: LastName,
}

/// A name's bytes, inline, beside its shared text.
#[derive(Debug, Clone)]
struct LastName {
    bytes: [u8; LastName::MAX],
    /// `usize::MAX` when the name is longer than `MAX` (or none is kept): never equal.
    len: usize,
    name: Arc<str>,
}

impl LastName {
    /// Longest name kept inline; longer ones are looked up every time.
    const MAX: usize = 32;

    fn new(b: &[u8], name: Arc<str>) -> Self {
        let mut bytes = [0; Self::MAX];
        let len = if b.len() <= Self::MAX {
            bytes[..b.len()].copy_from_slice(b);
            b.len()
        } else {
            usize::MAX
        };
        LastName { bytes, len, name }
    }

    fn is(&self, b: &[u8]) -> bool {
        self.len == b.len() && self.bytes[..self.len] == *b
    }
}

impl Default for LastName {
    fn default() -> Self {
        LastName {
            bytes: [0; Self::MAX],
            len: usize::MAX,
            name: Arc::from(""),
        }
    }
}

impl Interner {
    const CAP: usize = 64;

    /// The shared text of host name `b`, which is mostly the last line's host. It is compared
    /// with bytes kept here, not through the shared text: perf showed that compare waiting on
    /// the small block's cache line on every line (likely shared with a block another thread
    /// writes, such as the role name whose count the correlator changes).
    pub(super) fn host(&mut self, b: &[u8]) -> &Arc<str> {
        if !self.last_host.is(b) {
            let name = self.get(b);
            self.last_host = LastName::new(b, name);
        }
        &self.last_host.name
    }

    pub(super) fn get(&mut self, b: &[u8]) -> Arc<str> {
        if let Some((_, a)) = self.items.iter().find(|(k, _)| same_name(k, b)) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(String::from_utf8_lossy(b).as_ref());
        if self.items.len() < Self::CAP {
            self.items.push((b.into(), a.clone()));
        }
        a
    }
}

/// Whether two names are the same. Names of one length mostly differ at their end
/// (`postfix/qmgr`, `postfix/smtp`): the last byte rules most out before a full comparison.
pub(super) fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.last() == b.last() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name comes back as itself, shared when seen before, also past the names the cache
    /// keeps.
    #[test]
    fn the_interner_shares_names_and_never_mixes_them_up() {
        let mut i = Interner::default();
        let names: Vec<String> = (0..100)
            .map(|n| format!("postfix/svc{n}"))
            .chain(["postfix/smtp", "postfix/qmgr", "", "x", "postfix/smtpd"].map(String::from))
            .collect();
        let first: Vec<Arc<str>> = names.iter().map(|n| i.get(n.as_bytes())).collect();
        for _ in 0..2 {
            for (n, f) in names.iter().zip(&first).rev() {
                let again = i.get(n.as_bytes());
                assert_eq!(&*again, n.as_str());
                let kept = i.items.iter().any(|(k, _)| **k == *n.as_bytes());
                assert_eq!(Arc::ptr_eq(&again, f), kept, "{n}");
            }
        }
        assert_eq!(i.items.len(), Interner::CAP);
        assert_eq!(&*i.get(b"\xffbad"), "\u{fffd}bad");
    }

    /// A host name is found as itself whether it is the last one asked for or not, short or
    /// longer than what is kept inline, and the same name is the same shared text.
    #[test]
    fn the_last_host_is_itself() {
        let mut i = Interner::default();
        let long = "h".repeat(LastName::MAX + 1);
        let names = [
            "mx", "mx", "dell", "", "mx", &long, &long, "m", "mx2", "dell",
        ];
        let mut seen: Vec<(String, Arc<str>)> = Vec::new();
        for n in names {
            let got = i.host(n.as_bytes()).clone();
            assert_eq!(&*got, n);
            if let Some((_, first)) = seen.iter().find(|(k, _)| k == n) {
                assert!(Arc::ptr_eq(first, &got), "{n}");
            }
            seen.push((n.to_owned(), got));
        }
        assert_eq!(&**i.host(b"mx\xff"), "mx\u{fffd}");
        assert_eq!(&**i.host(b"mx"), "mx");
    }
}
