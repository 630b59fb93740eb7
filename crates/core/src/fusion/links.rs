//! How the correlator finds and joins chains: the chain of a (host, queue id), `queued as`
//! hand-offs to the next host (matched in either arrival order) or back into the same host
//! (a content filter re-injecting it), merges of two chains found to be one message, and the
//! clock-skew sample each hand-off between two hosts yields. Does not interpret events
//! (the `on_*` handlers do) nor decide when a chain is done (`correlator`).

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::logs::Delays;

use super::chain::{same_host, Chain, ChainId, Entry};
use super::correlator::{drop_from_list, Correlator};
use super::model::msgid_key;
use super::skew::{handoff_note, OffsetRange, OnConflict, Stamp};

/// The sending side of a hand-off between two hosts.
#[derive(Debug, Clone)]
pub(super) struct Handoff {
    /// The host that handed the message on.
    pub up_host: Arc<str>,
    /// Its log's time of the hand-off (the end of the sending).
    pub sent: Option<Stamp>,
    /// Connect + transmit of the hand-off in ms: the window in which the next host saw it.
    pub window_ms: i64,
    /// The relay is this host itself (a loopback address, or a content filter's port): the
    /// next queue entry may be on the same host.
    pub local: bool,
}

/// A `queued as` hand-off whose downstream entry has not been seen yet.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub handoff: Handoff,
    pub chain: ChainId,
}

/// Connection setup plus transmission of a hand-off (the window in which the next hop saw the
/// message), in ms; saturating because the figures come from untrusted log text.
fn handoff_window_ms(d: Delays) -> i64 {
    i64::try_from(d.conn_setup_ms.saturating_add(d.transmission_ms))
        .unwrap_or(i64::MAX)
        .min(86_400_000)
}

/// Ports content filters listen on (amavis) and re-inject into (Postfix's second smtpd).
const CONTENT_FILTER_PORTS: [u16; 2] = [10024, 10025];

/// The address inside the brackets of `name[addr]` or `name[addr]:port` (`ipv6:` prefix
/// allowed), if it is an IP address.
fn bracket_ip(s: &str) -> Option<IpAddr> {
    let open = s.find('[')?;
    let close = open + s[open..].find(']')?;
    let inner = &s[open + 1..close];
    inner
        .strip_prefix("ipv6:")
        .or_else(|| inner.strip_prefix("IPv6:"))
        .unwrap_or(inner)
        .parse()
        .ok()
}

/// The address in the brackets is a loopback address. Asked of every client and relay: an
/// IPv4 loopback is written `127.` first (leading zeros do not parse) and an IPv6 one has a
/// colon, so other addresses are not parsed at all. The two searches are memchr's: a loop
/// over the bytes cost ~270 instructions a call.
fn bracket_loopback(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(open) = memchr::memchr(b'[', b) else {
        return false;
    };
    let inner = &b[open + 1..];
    // One search of the address for a colon, ending at its `]`.
    let maybe = inner.starts_with(b"127.")
        || memchr::memchr2(b':', b']', inner).is_some_and(|i| inner[i] == b':');
    maybe && bracket_ip(s).is_some_and(|ip| ip.is_loopback())
}

/// A Postfix `relay=` that is this host itself: loopback (`127.0.0.1[127.0.0.1]:10024`,
/// `localhost[::1]:25`), a content filter port (`amavis[172.18.0.5]:10024`), or local(8)
/// (`relay=local`, whose `forwarded as QID` re-injects the message here).
pub(super) fn relay_is_local(relay: &str) -> bool {
    if relay == "local" || bracket_loopback(relay) {
        return true;
    }
    // The port after the last `]:`.
    let b = relay.as_bytes();
    let port = (0..b.len().saturating_sub(1))
        .rev()
        .find(|&i| b[i] == b']' && b[i + 1] == b':')
        .and_then(|i| relay[i + 2..].parse::<u16>().ok());
    port.is_some_and(|p| CONTENT_FILTER_PORTS.contains(&p))
}

/// An smtpd `client=` on the loopback (`localhost[127.0.0.1]`): a re-injection on this host.
pub(super) fn client_is_local(client: &str) -> bool {
    bracket_loopback(client)
}

/// Two message-ids do not contradict each other (the same, or one is unknown).
pub(super) fn msgids_agree(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => msgid_key(x) == msgid_key(y),
        _ => true,
    }
}

impl Handoff {
    pub fn new(
        up_host: Arc<str>,
        at: Option<DateTime<Utc>>,
        subsecond: bool,
        delays: Option<Delays>,
        relay: Option<&str>,
    ) -> Self {
        Handoff {
            up_host,
            sent: Stamp::of(at, subsecond),
            window_ms: delays.map(handoff_window_ms).unwrap_or(0),
            local: relay.is_some_and(relay_is_local),
        }
    }
}

impl Correlator {
    pub(super) fn new_chain(&mut self) -> ChainId {
        let id = self.next_id;
        self.next_id += 1;
        self.chains.insert(id, Chain::new(id));
        id
    }

    pub(super) fn find_entry(&self, host: &str, qid: &str) -> Option<ChainId> {
        self.qids
            .get(qid)?
            .iter()
            .find(|(h, _)| same_host(h, host))
            .map(|(_, c)| *c)
    }

    /// [`Correlator::entry_chain`] for a line logged only while a queue file is new (smtpd's
    /// `client=` and rejects, pickup's `uid=`). A queue id whose entry on `host` has left the
    /// queue (`removed`, or refused whole by cleanup or a milter) was given to another message
    /// (short ids repeat on a busy server): the old entry no longer answers to it.
    pub(super) fn fresh_entry_chain(
        &mut self,
        host: &Arc<str>,
        qid: &str,
        ts: Option<DateTime<Utc>>,
        subsecond: bool,
    ) -> ChainId {
        if let Some(cid) = self.find_entry(host, qid).filter(|&c| self.still_open(c)) {
            let gone = self
                .chains
                .get(&cid)
                .and_then(|ch| ch.entry(host, qid))
                .is_some_and(Entry::gone);
            if !gone {
                return cid;
            }
            drop_from_list(&mut self.qids, qid, |(h, c)| {
                *c == cid && same_host(h, host)
            });
        }
        self.new_entry_chain(host, qid, ts, subsecond)
    }

    /// The chain holding (host, qid), creating entry and chain on first sight. A chain done at
    /// the line's own time is emitted instead (the line starts another message, as after a
    /// sweep).
    pub(super) fn entry_chain(
        &mut self,
        host: &Arc<str>,
        qid: &str,
        ts: Option<DateTime<Utc>>,
        subsecond: bool,
    ) -> ChainId {
        if let Some(c) = self.find_entry(host, qid).filter(|&c| self.still_open(c)) {
            return c;
        }
        self.new_entry_chain(host, qid, ts, subsecond)
    }

    /// A new chain holding a new entry (host, qid), linked to what upstream said of it.
    fn new_entry_chain(
        &mut self,
        host: &Arc<str>,
        qid: &str,
        ts: Option<DateTime<Utc>>,
        subsecond: bool,
    ) -> ChainId {
        let cid = self.new_chain();
        if let Some(ch) = self.chains.get_mut(&cid) {
            // Most chains hold one entry: room for exactly one keeps the allocation small.
            ch.entries.reserve_exact(1);
            ch.entries
                .push(Entry::new(host.clone(), qid, ts, subsecond));
            ch.touch(ts);
        }
        self.qids
            .entry(qid.into())
            .or_default()
            .push((host.clone(), cid));
        // Someone upstream already said `queued as <qid>`?
        let upstream = self
            .pending_next
            .get(qid)
            .is_some_and(|p| p.handoff.up_host != *host || p.handoff.local);
        if let Some(p) = upstream.then(|| self.open_pending(qid)).flatten() {
            return self.link(p, host, qid, Stamp::of(ts, subsecond), cid);
        }
        cid
    }

    /// The wait for `qid` taken, when the chain that said `queued as qid` is still open at this
    /// line's own time; one done by then is emitted (and its wait with it), as a sweep between
    /// would have done: whether the entry joins must not hang on how many records came between
    /// (a `--message-id` run reads far fewer).
    fn open_pending(&mut self, qid: &str) -> Option<Pending> {
        let up = self.pending_next.get(qid)?.chain;
        if !self.still_open(up) {
            return None;
        }
        self.pending_next.remove(qid)
    }

    /// Join the upstream chain of `p` with the chain of the downstream entry (host, qid).
    fn link(
        &mut self,
        p: Pending,
        host: &Arc<str>,
        qid: &str,
        arrived: Option<Stamp>,
        down_chain: ChainId,
    ) -> ChainId {
        let keep = self.merge(p.chain, down_chain);
        {
            let Some(ch) = self.chains.get_mut(&keep) else {
                return keep;
            };
            ch.pending_links = ch.pending_links.saturating_sub(1);
            let up_qid = ch
                .entries
                .iter()
                .find(|e| e.host == p.handoff.up_host && e.sent_to(qid).is_some())
                .map(|e| e.qid.to_string());
            if let (Some(uq), Some(e)) = (up_qid, ch.entry_mut(host, qid)) {
                e.upstream = Some((p.handoff.up_host.clone(), uq));
            }
        }
        self.skew_sample(&p.handoff, host, arrived, keep);
        keep
    }

    /// A delivery line said `queued as next`: link to that entry if it is known, else wait for
    /// it. The entry is on another host, or on the same one when the message went through a
    /// local content filter (loopback relay or filter port, or re-injected by a localhost
    /// client).
    pub(super) fn on_queued_as(&mut self, cid: ChainId, next: &str, handoff: Handoff) {
        let down = self.qids.get(next).and_then(|v| {
            v.iter()
                .find(|(h, c)| {
                    *h != handoff.up_host || handoff.local || self.reinjected(h, next, *c)
                })
                .map(|(h, c)| (h.clone(), *c))
        });
        let p = Pending {
            handoff,
            chain: cid,
        };
        let Some((host, dcid)) = down else {
            if self.pending_next.get(next).is_some_and(|x| x.chain == cid) {
                return;
            }
            // With one host's log, another host's entry never comes: nothing to wait for.
            let awaited = !self.single_host || p.handoff.local;
            if let Some(ch) = self.chains.get_mut(&cid).filter(|_| awaited) {
                ch.pending_links += 1;
            }
            self.pending_next.insert(next.into(), p);
            return;
        };
        let Some((arrived, linked)) = self
            .chains
            .get(&dcid)
            .and_then(|ch| ch.entries.iter().find(|e| e.host == host && e.qid == next))
            .map(|e| (Stamp::of(e.arrived, e.subsecond), e.upstream.is_some()))
        else {
            return;
        };
        if linked {
            // Another recipient of the same hand-off: already joined and sampled.
            return;
        }
        if let Some(ch) = self.chains.get_mut(&cid) {
            ch.pending_links += 1;
        }
        self.link(p, &host, next, arrived, dcid);
    }

    /// The entry (host, qid) just named a localhost client: if a `queued as qid` of the same
    /// host waits for it (two instances logging to separate files), link them now.
    pub(super) fn on_local_client(&mut self, host: &Arc<str>, qid: &str) {
        if self
            .pending_next
            .get(qid)
            .is_none_or(|p| p.handoff.up_host != *host)
        {
            return;
        }
        let Some(cid) = self.find_entry(host, qid) else {
            return;
        };
        let arrived = self
            .chains
            .get(&cid)
            .and_then(|ch| ch.entries.iter().find(|e| e.host == *host && e.qid == qid))
            .and_then(|e| Stamp::of(e.arrived, e.subsecond));
        if let Some(p) = self.open_pending(qid) {
            self.link(p, host, qid, arrived, cid);
        }
    }

    /// The entry (host, qid) of chain `cid` came from a localhost client.
    fn reinjected(&self, host: &str, qid: &str, cid: ChainId) -> bool {
        self.chains
            .get(&cid)
            .and_then(|ch| ch.entries.iter().find(|e| &*e.host == host && e.qid == qid))
            .and_then(|e| e.client.as_deref())
            .is_some_and(client_is_local)
    }

    /// Two chains may be joined by a session id only if their message-ids do not contradict.
    pub(super) fn compatible(&self, a: ChainId, b: ChainId) -> bool {
        let ma = self.chains.get(&a).and_then(|c| c.message_id.as_deref());
        let mb = self.chains.get(&b).and_then(|c| c.message_id.as_deref());
        msgids_agree(ma, mb)
    }

    /// Record one hand-off's constraint on the `down - up` clock offset, and note it on the
    /// chain when this hand-off alone shows the clocks apart. A hand-off within one host
    /// (same clock) yields none.
    fn skew_sample(&mut self, h: &Handoff, down: &str, arrived: Option<Stamp>, chain: ChainId) {
        let (Some(sent), Some(arrived)) = (h.sent, arrived) else {
            return;
        };
        let up = &*h.up_host;
        if up == down {
            return;
        }
        let sample = OffsetRange::handoff(sent, arrived, h.window_ms);
        self.skew
            .entry((down.to_owned(), up.to_owned()))
            .or_default()
            .add(sample, OnConflict::KeepEarlier);
        if let Some(note) = handoff_note(down, up, sample) {
            if let Some(ch) = self.chains.get_mut(&chain) {
                ch.add_note(note);
            }
        }
    }

    /// Skew sample between a Postfix LMTP hand-off and Dovecot's saved line in chain `cid`.
    pub(super) fn sample_dovecot(&mut self, cid: ChainId, session: &str) {
        let Some(ch) = self.chains.get(&cid) else {
            return;
        };
        let up = ch.entries.iter().find_map(|e| {
            e.rcpts
                .iter()
                .filter_map(|r| r.last.as_ref())
                .find(|a| a.lmtp_session.as_deref() == Some(session))
                .map(|a| Handoff::new(e.host.clone(), a.at, a.subsecond, a.delays, None))
        });
        let down = ch
            .dovecot
            .iter()
            .find(|d| d.session.as_deref() == Some(session))
            .map(|d| (d.host.clone(), Stamp::of(d.at, d.subsecond)));
        if let (Some(up), Some((host, arrived))) = (up, down) {
            self.skew_sample(&up, &host, arrived, cid);
        }
    }

    /// Merge chain `b` into `a` (the older id survives); returns the survivor.
    pub(super) fn merge(&mut self, a: ChainId, b: ChainId) -> ChainId {
        if a == b {
            return a;
        }
        let (keep, gone) = if a < b { (a, b) } else { (b, a) };
        let Some(g) = self.chains.remove(&gone) else {
            return keep;
        };
        if !self.chains.contains_key(&keep) {
            // Survivor already emitted (should not happen): put the other back.
            self.chains.insert(gone, g);
            return gone;
        }
        self.repoint(&g, gone, keep);
        let limits = self.limits;
        if let Some(k) = self.chains.get_mut(&keep) {
            k.absorb(g, &limits);
        }
        keep
    }

    /// Make every index entry of chain `g` that points at `gone` point at `keep`.
    fn repoint(&mut self, g: &Chain, gone: ChainId, keep: ChainId) {
        let sessions = &mut self.sessions;
        let mut repoint_session = |s: &str| {
            if sessions.get(s) == Some(&gone) {
                sessions.insert(s.into(), keep);
            }
        };
        for e in &g.entries {
            if let Some(v) = self.qids.get_mut(&e.qid) {
                for (h, c) in v.iter_mut() {
                    if *h == e.host && *c == gone {
                        *c = keep;
                    }
                }
            }
            for a in e.rcpts.iter().filter_map(|r| r.last.as_ref()) {
                if let Some(s) = &a.lmtp_session {
                    repoint_session(s);
                }
                if let Some(p) = a
                    .queued_as
                    .as_deref()
                    .and_then(|n| self.pending_next.get_mut(n))
                {
                    if p.chain == gone {
                        p.chain = keep;
                    }
                }
            }
        }
        for s in g.dovecot.iter().filter_map(|d| d.session.as_ref()) {
            repoint_session(s);
        }
        for to in g.noqueue.iter().filter_map(|nq| nq.reject.to.as_ref()) {
            if let Some(v) = self
                .noqueue_by_rcpt
                .get_mut(&to.as_str().to_ascii_lowercase())
            {
                for c in v.iter_mut().filter(|c| **c == gone) {
                    *c = keep;
                }
            }
        }
        if let Some(m) = &g.message_id {
            if self.msgids.get(msgid_key(m)) == Some(&gone) {
                self.msgids.insert(msgid_key(m).into(), keep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_loopback_check_is_the_parsed_one() {
        let names = ["", "h", "localhost", "smtp2.mail.example.org", "a[b"];
        let addrs = [
            "127.0.0.1",
            "127.1.2.3",
            "0127.0.0.1",
            "128.0.0.1",
            "100.64.0.2",
            "::1",
            "IPv6:::1",
            "ipv6:::1",
            "IPv6:0:0:0:0:0:0:0:1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
            "fe80::1%eth0",
            "unknown",
            "",
            "127.",
            ":",
            "]",
        ];
        let ends = ["]", "]:25", "]:10025", "", "]x:1"];
        for n in names {
            for a in addrs {
                for e in ends {
                    let s = format!("{n}[{a}{e}");
                    let want = bracket_ip(&s).is_some_and(|ip| ip.is_loopback());
                    assert_eq!(bracket_loopback(&s), want, "{s}");
                }
            }
        }
        assert!(!bracket_loopback("no brackets 127.0.0.1"));
    }
}
