//! The header of the line before, kept so that a line starting with the very same bytes (stamp,
//! host and program token up to the first `: `) is not parsed again: on a busy log about a
//! third of the lines do (one process logging several lines within a second). Owns only that
//! memo; the parsing itself is `prefix`'s.
//!
//! Why the same bytes give the same header: the header of a classic, ISO or Dovecot line is read
//! from its bytes up to the first `: ` after the stamp (the stamp, the first space, the program
//! token), and the message starts right after it. A line that shares those bytes shares that
//! first `: ` too (none comes earlier in the same bytes), so every part falls at the same place.
//! The time also depends on the parser's year and rollover state: the memo is kept with the
//! rollover count it was made under and used only under the same one. RFC 5424 lines, and
//! lines whose message does not follow a `: `, are not kept.

use std::ops::Range;

use chrono::{DateTime, Utc};

use super::prefix::{Header, LineFormat};

/// Longest prefix kept: longer ones are parsed every time.
const ROOM: usize = 128;

#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderMemo {
    /// The kept line's bytes up to its message (`..msg`); empty when nothing is kept.
    text: Vec<u8>,
    year_bump: i32,
    format: Option<LineFormat>,
    ts: Option<DateTime<Utc>>,
    subsecond: bool,
    host: Option<Range<usize>>,
    program: Range<usize>,
    name: Range<usize>,
    pid: Option<u32>,
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
    /// The kept header, if `line` starts with the kept line's bytes up to its message and the
    /// rollover count is the same.
    pub(crate) fn recall<'a>(&self, line: &'a [u8], year_bump: i32) -> Option<Header<'a>> {
        let format = self.format?;
        let n = self.text.len();
        if year_bump != self.year_bump || line.get(..n)? != self.text.as_slice() {
            return None;
        }
        Some(Header {
            format,
            ts: self.ts,
            subsecond: self.subsecond,
            host: self.host.clone().map(|r| &line[r]),
            program: &line[self.program.clone()],
            name: &line[self.name.clone()],
            pid: self.pid,
            msg: super::variants::without_solaris_id(&line[n..]),
        })
    }

    /// Keep `h`, the header just parsed from `line`, when it can be recalled safely.
    pub(crate) fn keep(&mut self, line: &[u8], year_bump: i32, h: &Header<'_>) {
        self.format = None;
        let Some(p) = places(line, h) else {
            return;
        };
        self.text.clear();
        self.text.extend_from_slice(&line[..p.msg]);
        self.year_bump = year_bump;
        self.ts = h.ts;
        self.subsecond = h.subsecond;
        self.host = p.host;
        self.program = p.program;
        self.name = p.name;
        self.pid = h.pid;
        self.format = Some(h.format);
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
        ctx.tz = chrono::FixedOffset::east_opt(3600).unwrap();
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
