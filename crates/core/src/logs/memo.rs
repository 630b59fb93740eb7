//! The headers of the lines before, kept so that a line starting with the very same bytes as one
//! of them (stamp, host and program token up to the first `: `) is not parsed again. A busy log
//! interleaves a few processes within each second (postscreen, an smtpd, cleanup, qmgr, a
//! delivery agent): the last line alone shares a third of the lines' headers, the last
//! [`KEPT`] about two thirds. Owns only that memo; the parsing itself is `prefix`'s.
//!
//! Why the same bytes give the same header: the header of a classic, ISO or Dovecot line is read
//! from its bytes up to the first `: ` after the stamp (the stamp, the first space, the program
//! token), and the message starts right after it. A line that shares those bytes shares that
//! first `: ` too (none comes earlier in the same bytes), so every part falls at the same place.
//! The time also depends on the parser's year and rollover state: each header is kept with the
//! rollover count it was made under and used only under the same one. RFC 5424 lines, and
//! lines whose message does not follow a `: `, are not kept.

use std::ops::Range;

use chrono::{DateTime, Utc};

use super::prefix::{Header, LineFormat};

/// Longest prefix kept: longer ones are parsed every time.
const ROOM: usize = 128;

/// Headers kept: a miss compares the line with each of them, so a few more than the processes
/// that usually interleave within a second.
pub(crate) const KEPT: usize = 6;

/// One kept header.
#[derive(Debug, Clone)]
struct Kept {
    /// The kept line's bytes up to its message (`..msg`).
    text: Vec<u8>,
    /// The last 8 of those bytes (the program token's end and its `: `), compared first: the
    /// headers of one second differ there, and a miss then costs one compare, not a walk over
    /// the stamp and host they share.
    tail: [u8; 8],
    year_bump: i32,
    format: LineFormat,
    ts: Option<DateTime<Utc>>,
    subsecond: bool,
    host: Option<Range<usize>>,
    program: Range<usize>,
    name: Range<usize>,
    pid: Option<u32>,
}

impl Kept {
    fn recall<'a>(&self, line: &'a [u8], year_bump: i32) -> Option<Header<'a>> {
        let n = self.text.len();
        let head = line.get(..n)?;
        if year_bump != self.year_bump
            || head.last_chunk::<8>() != Some(&self.tail)
            || head != self.text.as_slice()
        {
            return None;
        }
        Some(Header {
            format: self.format,
            ts: self.ts,
            subsecond: self.subsecond,
            host: self.host.clone().map(|r| &line[r]),
            program: &line[self.program.clone()],
            name: &line[self.name.clone()],
            pid: self.pid,
            msg: super::variants::without_solaris_id(&line[n..]),
        })
    }
}

/// The last [`KEPT`] headers that can be recalled safely, the newest looked at first.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderMemo {
    kept: Vec<Kept>,
    /// Where the newest is in `kept` (a ring once full).
    newest: usize,
}

/// Where `part` (a slice of `line`) lies in `line`.
fn range_in(line: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= line.len()).then_some(start..end)
}

/// Where a header's parts lie in its line.
struct Places {
    /// Where the message starts: the bytes before it are what a recalled line shares.
    msg: usize,
    host: Option<Range<usize>>,
    program: Range<usize>,
    name: Range<usize>,
}

/// Where `h`'s parts lie in `line`, when a line sharing `line`'s bytes up to its message would
/// parse to the same header.
fn places(line: &[u8], h: &Header<'_>) -> Option<Places> {
    let msg = range_in(line, h.msg)?;
    let n = msg.start;
    let after_colon = n >= 2 && &line[n - 2..n] == b": ";
    let kept = h.format != LineFormat::Rfc5424Syslog && after_colon && n <= ROOM;
    if !kept || msg.end != line.len() {
        return None;
    }
    // Every part lies before the message, so within the bytes a recalled line shares.
    let before = |part: &[u8]| range_in(line, part).filter(|r| r.end <= n);
    let host = match h.host {
        Some(x) => Some(before(x)?),
        None => None,
    };
    Some(Places {
        msg: n,
        host,
        program: before(h.program)?,
        name: before(h.name)?,
    })
}

impl HeaderMemo {
    /// A kept header, if `line` starts with that header's line's bytes up to its message and
    /// the rollover count is the same.
    pub(crate) fn recall<'a>(&self, line: &'a [u8], year_bump: i32) -> Option<Header<'a>> {
        // Newest first, round the ring (a step down, not a modulo: no division per look).
        let n = self.kept.len();
        let mut i = self.newest;
        for _ in 0..n {
            if let Some(h) = self.kept.get(i).and_then(|k| k.recall(line, year_bump)) {
                return Some(h);
            }
            i = i.checked_sub(1).unwrap_or(n - 1);
        }
        None
    }

    /// Keep `h`, the header just parsed from `line`, when it can be recalled safely: in place
    /// of the oldest once [`KEPT`] are kept.
    pub(crate) fn keep(&mut self, line: &[u8], year_bump: i32, h: &Header<'_>) {
        let Some(p) = places(line, h) else {
            return;
        };
        let Some(&tail) = line[..p.msg].last_chunk::<8>() else {
            return;
        };
        let full = self.kept.len() == KEPT;
        let slot = if full {
            (self.newest + 1) % KEPT
        } else {
            self.kept.len()
        };
        // The oldest's room is reused for the newest.
        let mut text = if full {
            std::mem::take(&mut self.kept[slot].text)
        } else {
            Vec::new()
        };
        text.clear();
        text.extend_from_slice(&line[..p.msg]);
        let k = Kept {
            text,
            tail,
            year_bump,
            format: h.format,
            ts: h.ts,
            subsecond: h.subsecond,
            host: p.host,
            program: p.program,
            name: p.name,
            pid: h.pid,
        };
        if full {
            self.kept[slot] = k;
        } else {
            self.kept.push(k);
        }
        self.newest = slot;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::logs::prefix::{parse_header_with, Days};
    use crate::logs::ParseContext;

    /// Every line of the project's log fixtures, file by file in order.
    fn fixture_lines() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/logs")];
        while let Some(d) = dirs.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().collect();
            entries.sort_by_key(|e| e.path());
            for e in entries {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "log") {
                    let bytes = std::fs::read(&p).unwrap();
                    out.extend(bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec));
                }
            }
        }
        out
    }

    /// Each line followed by lines that share all or part of its prefix: its message changed,
    /// cut around its first `: `, its pid changed, and nothing after the `: `.
    fn near_misses(lines: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for l in lines {
            out.push(l.clone());
            let Some(c) = l.windows(2).position(|w| w == b": ") else {
                continue;
            };
            let head = &l[..c + 2];
            out.push([head, b"another message: with: colons"].concat());
            out.push(head.to_vec());
            for cut in [c, c + 1] {
                out.push(l[..cut].to_vec());
                out.push([&l[..cut], b"x: y"].concat());
            }
            out.push(
                l.iter()
                    .map(|&b| if b == b'1' { b'2' } else { b })
                    .collect(),
            );
            out.push([head, b"", &l[c + 2..]].concat());
        }
        out
    }

    /// Parsed one after the other with the memo, as a parser does, and each alone: the same
    /// header every time. Returns how many came from the memo.
    fn same_as_alone(lines: &[Vec<u8>], bump_of: impl Fn(usize) -> i32) -> usize {
        let mut ctx = ParseContext::new("ec2", 2025);
        ctx.tz = chrono::FixedOffset::east_opt(3600).unwrap().into();
        let (mut memo, mut days) = (HeaderMemo::default(), Days::default());
        let mut recalled = 0;
        for (i, line) in lines.iter().enumerate() {
            let bump = bump_of(i);
            let got = match memo.recall(line, bump) {
                Some(h) => {
                    recalled += 1;
                    Some(h)
                }
                None => {
                    let h = parse_header_with(line, &ctx, bump, &mut days);
                    if let Some(h) = &h {
                        memo.keep(line, bump, h);
                    }
                    h
                }
            };
            let alone = parse_header_with(line, &ctx, bump, &mut Days::default());
            assert_eq!(got, alone, "{}", String::from_utf8_lossy(line));
        }
        recalled
    }

    #[test]
    fn a_recalled_header_is_the_one_the_line_parses_to() {
        let lines = near_misses(&fixture_lines());
        assert!(lines.len() > 5_000, "{}", lines.len());
        let recalled = same_as_alone(&lines, |_| 0);
        assert!(recalled > 1_000, "the memo is used: {recalled}");
        // A change of year (the rollover count) is never answered from the memo.
        same_as_alone(&lines, |i| i32::from(i % 3 == 0));
    }

    #[test]
    fn interleaved_processes_are_recalled_until_pushed_out() {
        let ctx = ParseContext::new("ec2", 2025);
        let line = |proc_: &str| format!("Nov  7 12:00:05 mx {proc_}: 1A1A1A1A1A: removed");
        let procs: Vec<String> = (0..KEPT + 1)
            .map(|i| format!("postfix/smtpd[{}]", 100 + i))
            .collect();
        let mut memo = HeaderMemo::default();
        let mut days = Days::default();
        let mut look = |memo: &mut HeaderMemo, l: &str| match memo.recall(l.as_bytes(), 0) {
            Some(h) => (true, h.pid),
            None => {
                let h = parse_header_with(l.as_bytes(), &ctx, 0, &mut days).unwrap();
                memo.keep(l.as_bytes(), 0, &h);
                (false, h.pid)
            }
        };
        // The first KEPT processes, one line each, then again in another order: all recalled,
        // each with its own pid.
        for p in &procs[..KEPT] {
            assert!(!look(&mut memo, &line(p)).0);
        }
        for (i, p) in procs[..KEPT].iter().enumerate().rev() {
            let pid = u32::try_from(100 + i).unwrap();
            assert_eq!(look(&mut memo, &line(p)), (true, Some(pid)), "{p}");
        }
        // One more process pushes the oldest out; the others stay.
        assert!(!look(&mut memo, &line(&procs[KEPT])).0);
        assert!(
            !look(&mut memo, &line(&procs[0])).0,
            "the oldest was replaced"
        );
        assert!(look(&mut memo, &line(&procs[KEPT])).0);
        assert!(look(&mut memo, &line(&procs[2])).0);
    }

    #[test]
    fn what_is_kept_and_what_is_not() {
        let ctx = ParseContext::new("ec2", 2025);
        let kept = |line: &[u8]| {
            let mut memo = HeaderMemo::default();
            let h = parse_header_with(line, &ctx, 0, &mut Days::default()).unwrap();
            memo.keep(line, 0, &h);
            memo.recall(line, 0).is_some()
        };
        assert!(kept(
            b"Nov  7 12:00:05 mx postfix/qmgr[3]: 1A1A1A1A1A: removed"
        ));
        assert!(kept(
            b"<22>Nov  7 12:00:05 mx postfix/qmgr[3]: 1A1A1A1A1A: removed"
        ));
        assert!(kept(
            b"2025-11-07T12:00:05.123+01:00 mx dovecot: lmtp(a@x): saved"
        ));
        // The message does not follow a `: `.
        assert!(!kept(b"Nov  7 12:00:05 mx postfix/qmgr[3]:"));
        // RFC 5424: its header is not read up to a `: `.
        assert!(!kept(
            b"<22>1 2025-11-07T12:00:05Z mx postfix/qmgr 3 - - 1A1A1A1A1A: removed"
        ));
    }
}
