//! Message-id focus for huge logs: decide from a line's prefix and a few byte comparisons
//! whether it can concern the messages asked for, before any record is built. Owns the
//! learned queue ids / LMTP sessions and the small replay ring of `client=` lines and smtpd's
//! per-recipient rejects (logged before the Message-ID is known). Does not parse events (the
//! caller does, for lines that pass).
//!
//! Lines that always pass: Postfix `warning:`/`error:`/`fatal:`/`panic:` and `NOQUEUE:` lines,
//! Dovecot error/warning lines, auth and failed logins (host-level findings need them).

use std::sync::Arc;

use super::prefix::program_name;
use super::scan::{self, find, split_once};
use super::{Event, LogRecord};

/// What the caller wants to follow.
#[derive(Debug, Clone, Default)]
pub struct Focus {
    needles: Vec<Vec<u8>>,
    // A focus follows a handful of ids: a linear scan beats hashing every line's queue id.
    qids: Qids,
    sessions: Small,
    /// Bumped whenever `qids` or `sessions` grow (a buffer scanner's search set follows it).
    generation: u64,
}

/// A learned queue id and the log stream whose queue it numbers: its `message-id=` line's
/// (each host numbers its own queue, and the streams are read side by side, each a line or so
/// ahead of the merge: a queue id learned from one host's later line must not take in another
/// host's earlier lines of an entry under the same id). `None` for a hand-off's next queue id
/// (`queued as X`), which is another host's, or this one's behind a content filter.
#[derive(Debug, Clone)]
struct Known {
    scope: Option<Arc<str>>,
    qid: Vec<u8>,
}

/// The learned queue ids.
#[derive(Debug, Clone, Default)]
struct Qids(Vec<Known>);

impl Qids {
    fn contains(&self, scope: &str, q: &[u8]) -> bool {
        self.0
            .iter()
            .any(|k| k.qid == q && k.scope.as_deref().is_none_or(|s| s == scope))
    }

    /// Whether it was new to `scope` (`None`: to some stream).
    fn insert(&mut self, scope: Option<&Arc<str>>, q: &[u8]) -> bool {
        let known = self.0.iter().any(|k| {
            k.qid == q && (k.scope.is_none() || k.scope.as_deref() == scope.map(|s| &**s))
        });
        if !known {
            self.0.push(Known {
                scope: scope.cloned(),
                qid: q.to_vec(),
            });
        }
        !known
    }
}

/// A small set of byte strings.
#[derive(Debug, Clone, Default)]
struct Small(Vec<Vec<u8>>);

impl Small {
    fn contains(&self, k: &[u8]) -> bool {
        self.0.iter().any(|x| x == k)
    }

    /// Whether `k` was new.
    fn insert(&mut self, k: Vec<u8>) -> bool {
        let new = !self.contains(&k);
        if new {
            self.0.push(k);
        }
        new
    }
}

/// Markers of lines that always pass [`Focus::decide`] (host-level findings): Postfix's
/// `NOQUEUE:` and severity prefixes, Dovecot's severities, Dovecot auth processes (whose
/// token, and `auth failed` of the login processes, contain `auth`) and TLS alerts.
const ALWAYS_KEPT: [&[u8]; 11] = [
    b"NOQUEUE: ",
    b"warning: ",
    b"error: ",
    b"fatal: ",
    b"panic: ",
    b"Error: ",
    b"Warning: ",
    b"Fatal: ",
    b"Panic: ",
    b"auth",
    // A login's TLS handshake the client refused (`SSL alert number 46`).
    b"SSL alert number 4",
];

/// The prefilter's verdict for one line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision<'a> {
    /// Parse it fully.
    Full,
    /// Parse it fully, after replaying the remembered lines of this queue id.
    FullWithReplay(&'a [u8]),
    /// Remember it (a `client=`/`uid=` line or a recipient reject of a not-yet-known queue
    /// id, or another message's line that ends what came before: see `latest_use`), else
    /// skip.
    Remember(&'a [u8]),
    Skip,
}

impl Focus {
    /// Follow these Message-IDs (angle brackets optional).
    pub fn message_ids<S: AsRef<str>>(ids: &[S]) -> Self {
        Focus {
            needles: ids
                .iter()
                .map(|i| {
                    let k = i
                        .as_ref()
                        .trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>');
                    k.as_bytes().to_vec()
                })
                .filter(|k| !k.is_empty())
                .collect(),
            ..Focus::default()
        }
    }

    /// Changes whenever the focus learns a queue id or session.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The queue ids learned for stream `scope`.
    pub(crate) fn qids<'a>(&'a self, scope: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.qids
            .0
            .iter()
            .filter(move |k| k.scope.as_deref().is_none_or(|s| s == scope))
            .map(|k| k.qid.as_slice())
    }

    /// Byte strings at least one of which every line [`Focus::decide`] passes in full contains,
    /// given that its prefix reads as a Postfix or Dovecot line (see `focusscan`): the
    /// Message-IDs, `QID: ` of every learned queue id (of any stream: a superset), the learned
    /// LMTP sessions and the always-kept markers. (`Remember` lines are not covered: the
    /// scanner looks back for them.)
    pub(crate) fn patterns(&self) -> Vec<Vec<u8>> {
        let mut p: Vec<Vec<u8>> = self.needles.clone();
        p.extend(
            self.qids
                .0
                .iter()
                .map(|k| [k.qid.as_slice(), b": "].concat()),
        );
        p.extend(self.sessions.0.iter().cloned());
        p.extend(ALWAYS_KEPT.iter().map(|m| m.to_vec()));
        p
    }

    fn hits(&self, b: &[u8]) -> bool {
        self.needles.iter().any(|n| find(b, n).is_some())
    }

    /// Widen the focus with what a passed record of stream `scope` (its parser's role)
    /// reveals: the queue id of a focused Message-ID (this stream's), the next hop's queue id
    /// and the LMTP session of a focused delivery.
    pub fn learn(&mut self, scope: &Arc<str>, rec: &LogRecord) {
        match &rec.event {
            Event::MessageId {
                queue_id,
                message_id,
            } if self.hits(message_id.as_bytes()) => {
                let new = self.qids.insert(Some(scope), queue_id.as_bytes());
                self.bump(new);
            }
            Event::Delivery(d) if self.qids.contains(scope, d.queue_id.as_bytes()) => {
                if let Some(n) = &d.queued_as {
                    let new = self.qids.insert(None, n.as_bytes());
                    self.bump(new);
                }
                if let Some(s) = &d.lmtp_session {
                    let new = self.sessions.insert(s.as_bytes().to_vec());
                    self.bump(new);
                }
            }
            Event::DovecotDelivery(d)
                if d.message_id
                    .as_ref()
                    .is_some_and(|m| self.hits(m.as_bytes())) =>
            {
                if let Some(s) = &d.session {
                    let new = self.sessions.insert(s.as_bytes().to_vec());
                    self.bump(new);
                }
            }
            _ => {}
        }
    }

    fn bump(&mut self, new: bool) {
        if new {
            self.generation += 1;
        }
    }

    /// Decide for a Postfix line (`msg` after `program[pid]: `) of stream `scope`.
    fn postfix<'a>(&self, scope: &str, msg: &'a [u8]) -> Decision<'a> {
        const LEVELS: [&[u8]; 4] = [b"warning: ", b"error: ", b"fatal: ", b"panic: "];
        if msg.starts_with(b"NOQUEUE: ") {
            return Decision::Full;
        }
        if let Some(p) = LEVELS.iter().find(|p| msg.starts_with(p)) {
            // `warning: QID: ...` about one queue entry (cleanup refusing it): its remembered
            // `client=` line comes with it, as with a full parse.
            return match queue_id_head(&msg[p.len()..]) {
                Some(q) => Decision::FullWithReplay(q),
                None => Decision::Full,
            };
        }
        let head = &msg[..msg.len().min(24)];
        let Some((q, _)) = split_once(head, b": ") else {
            // smtpd's session end with `auth=0/N` (AUTH tried, never succeeded): a host-level
            // finding, as a SASL failure's warning is.
            if msg.starts_with(b"disconnect from ")
                && memchr::memmem::find(msg, b" auth=0/").is_some()
            {
                return Decision::Full;
            }
            return Decision::Skip;
        };
        if !scan::is_queue_id(q) {
            return Decision::Skip;
        }
        let rest = &msg[q.len() + 2..];
        // Before the known-id check: each host numbers its own queue, so a queue id learned
        // from another host's line can be this host's entry too, whose remembered lines come
        // with its `message-id=` line all the same.
        if rest.starts_with(b"message-id=") && self.hits(rest) {
            return Decision::FullWithReplay(q);
        }
        if self.qids.contains(scope, q) {
            return Decision::Full;
        }
        // `QID: warning: ...` passes like any warning, with the entry's remembered lines.
        if LEVELS.iter().any(|p| rest.starts_with(p)) {
            return Decision::FullWithReplay(q);
        }
        if remembered(rest) {
            return Decision::Remember(q);
        }
        Decision::Skip
    }

    /// Decide for a Dovecot line: `token` is its process token (`lmtp(user)<pid><session>`).
    fn dovecot(&self, token: &[u8], msg: &[u8]) -> Decision<'static> {
        const LEVELS: [&[u8]; 4] = [b"Error: ", b"Warning: ", b"Fatal: ", b"Panic: "];
        if LEVELS.iter().any(|p| msg.starts_with(p)) {
            return Decision::Full;
        }
        let name = program_name(token);
        if name == b"auth" || name == b"auth-worker" {
            return Decision::Full;
        }
        if name.ends_with(b"-login") {
            // The failed logins and the auth service's failures the parser reads
            // (`dovecot::parse`).
            let failed = super::dovecot::login_failed(msg)
                || super::dovecot::login_backend_failed(msg)
                || super::dovecot::login_certificate_refused(msg)
                || super::dovecot::login_auth_broken(msg);
            return if failed {
                Decision::Full
            } else {
                Decision::Skip
            };
        }
        if self.hits(msg) {
            return Decision::Full;
        }
        // `<pid><session>`: the session is the last angle-bracketed part.
        if let Some(open) = memchr::memrchr(b'<', token) {
            let s = token[open + 1..]
                .strip_suffix(b">")
                .unwrap_or(&token[open + 1..]);
            if self.sessions.contains(s) {
                return Decision::Full;
            }
        }
        Decision::Skip
    }

    /// Decide from a line's program token and message (see `prefix::quick_program_msg`), of
    /// stream `scope` (its parser's role).
    pub(crate) fn decide<'a>(&self, scope: &str, program: &'a [u8], msg: &'a [u8]) -> Decision<'a> {
        let name = program_name(program);
        if memchr::memchr(b'/', name).is_some() {
            return self.postfix(scope, msg);
        }
        if name == b"dovecot" {
            // Via syslog the process token starts the message.
            return match split_once(msg, b": ") {
                // Dovecot 1.x's `dovecot: auth(default): ...`: the process token follows.
                Some((b"dovecot", rest)) => match split_once(rest, b": ") {
                    Some((token, rest)) => self.dovecot(token, rest),
                    None => Decision::Full,
                },
                Some((token, rest)) => self.dovecot(token, rest),
                None => Decision::Full,
            };
        }
        if super::prefix::is_dovecot_service(name) {
            return self.dovecot(program, msg);
        }
        // Not Postfix or Dovecot: let the full parser call it unknown.
        Decision::Full
    }
}

/// The remembered lines of `q` (oldest first) that belong to its latest use: those after the
/// last line of another message under `q` (its `message-id=`, or `removed`), and from the last
/// `client=`/`uid=` line on (the first line of a queue file). Short queue ids repeat on a busy
/// server, and the lines before were another message's, which a full parse gives to that
/// message (`fusion::links`, `fresh_entry_chain`). The markers themselves are not replayed.
pub(crate) fn latest_use(mut lines: Vec<Vec<u8>>, q: &[u8]) -> Vec<Vec<u8>> {
    let cut = lines.iter().enumerate().rev().find_map(|(i, l)| {
        let rest = after_queue_id(l, q)?;
        if opens_use(rest) {
            Some(i)
        } else if ends_use(rest) {
            Some(i + 1)
        } else {
            None
        }
    });
    if let Some(i) = cut {
        lines.drain(..i);
    }
    lines
}

/// A remembered line's message after `q: `.
fn after_queue_id<'a>(line: &'a [u8], q: &[u8]) -> Option<&'a [u8]> {
    super::prefix::quick_program_msg(line)
        .and_then(|(_, msg)| msg.strip_prefix(q)?.strip_prefix(b": "))
}

/// Whether a line of a queue id not followed (yet) is remembered, by its message after
/// `QID: `: the lines that open a use of the queue id, smtpd's recipient reject (`QID: reject:
/// RCPT ...`, logged after the queue file exists and before cleanup logs the Message-ID: the
/// message's own finding), and another message's lines that end what was remembered before
/// them (see [`latest_use`]). Both prefilter paths (the line-at-a-time decision and
/// `focusscan`'s look-back) remember by this.
pub(crate) fn remembered(rest: &[u8]) -> bool {
    opens_use(rest) || rest.starts_with(b"reject: ") || ends_use(rest)
}

/// A queue file's first line (`QID: client=`, `QID: uid=`): a use of the queue id opens.
fn opens_use(rest: &[u8]) -> bool {
    rest.starts_with(b"client=") || rest.starts_with(b"uid=")
}

/// A queue entry's line after which its queue id can only name another message: its
/// `message-id=` (remembered only when it is not a followed message's) or `removed`.
fn ends_use(rest: &[u8]) -> bool {
    rest.starts_with(b"message-id=") || rest == b"removed"
}

/// The queue id a message starts with (`QID: ...`), if it does.
fn queue_id_head(msg: &[u8]) -> Option<&[u8]> {
    let (q, _) = split_once(&msg[..msg.len().min(24)], b": ")?;
    scan::is_queue_id(q).then_some(q)
}

/// The last `client=`/`uid=`/`reject:` lines of queue ids nobody asked for yet, in a fixed ring whose
/// buffers are reused (no allocation once warm).
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    slots: Vec<(Vec<u8>, Vec<u8>)>,
    next: usize,
}

impl Ring {
    const SIZE: usize = 8192;

    pub(crate) fn new() -> Self {
        Ring {
            slots: Vec::new(),
            next: 0,
        }
    }

    pub(crate) fn put(&mut self, qid: &[u8], line: &[u8]) {
        if self.slots.len() < Self::SIZE {
            self.slots.push((qid.to_vec(), line.to_vec()));
            return;
        }
        let (q, l) = &mut self.slots[self.next];
        q.clear();
        q.extend_from_slice(qid);
        l.clear();
        l.extend_from_slice(line);
        self.next = (self.next + 1) % Self::SIZE;
    }

    /// Take the remembered lines of `qid`'s latest use (oldest first; see [`latest_use`]).
    pub(crate) fn take(&mut self, qid: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let n = self.slots.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            let (q, l) = &mut self.slots[i];
            if q == qid {
                out.push(std::mem::take(l));
                q.clear();
            }
        }
        latest_use(out, qid)
    }
}

#[cfg(test)]
mod tests {
    use super::{Decision, Focus};

    /// Lines of no message that still make a host-level finding pass, as in a full parse.
    #[test]
    fn host_level_lines_pass_the_prefilter() {
        let focus = Focus::message_ids(&["<a@x>"]);
        let smtpd = b"postfix/smtpd";
        for msg in [
            &b"disconnect from x.example[203.0.113.7] ehlo=1 auth=0/1 quit=1 commands=2/3"[..],
            b"warning: x.example[203.0.113.7]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
            b"NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1 <b@y>: Relay access denied; from=<a@x> to=<b@y> proto=ESMTP helo=<x>",
        ] {
            assert_eq!(focus.decide("mx", smtpd, msg), Decision::Full, "{}", String::from_utf8_lossy(msg));
        }
        let tls = |n: u8| {
            format!("imap-login: Info: Disconnected (no auth attempts): rip=192.0.2.7, lip=198.18.3.2, TLS handshaking: SSL_accept() failed: error:14094416:SSL routines:SSL3_READ_BYTES:sslv3 alert: SSL alert number {n}")
        };
        assert_eq!(
            focus.decide("mx", b"dovecot", tls(46).as_bytes()),
            Decision::Full
        );
        assert_eq!(
            focus.decide("mx", b"dovecot", tls(20).as_bytes()),
            Decision::Skip
        );
        for msg in [
            &b"disconnect from x.example[203.0.113.7] ehlo=1 auth=1/1 quit=1 commands=3"[..],
            b"connect from x.example[203.0.113.7]",
        ] {
            assert_eq!(
                focus.decide("mx", smtpd, msg),
                Decision::Skip,
                "{}",
                String::from_utf8_lossy(msg)
            );
        }
    }
}
