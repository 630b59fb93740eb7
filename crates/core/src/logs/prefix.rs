//! Line-format detection: the timestamp / host / program prefix of one log line, in any of the
//! formats flowtest reads. Owns time parsing (year inference, zones); does not look at the
//! message text (that is `postfix.rs` / `dovecot.rs`).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde::Serialize;

use super::zone::Fold;
use super::ParseContext;
use super::{rfc5424, variants};

/// The layout a line was recognized in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineFormat {
    /// `Nov  4 18:12:34 host prog[pid]: msg` (BSD syslog, rsyslog's traditional format; no year).
    ClassicSyslog,
    /// Postfix's own `maillog_file` (postlogd): like classic syslog but the day is zero-padded
    /// (`Nov 04`). Only distinguishable from classic syslog on days 1-9.
    PostfixMaillog,
    /// `2025-11-04T18:12:34.123456+00:00 host prog[pid]: msg` (rsyslog high precision, RFC 5424 time).
    Rfc3339Syslog,
    /// `journalctl -o short-iso[-precise]`: `2025-11-04T18:12:34+0000 host prog[pid]: msg`.
    JournalShortIso,
    /// `docker logs --timestamps`: an RFC 3339 nanosecond UTC stamp before the container's line.
    Docker,
    /// Dovecot's own `log_path` file: `<log_timestamp>service(user)<pid><session>: Level: msg`.
    DovecotLog,
    /// RFC 5424: `<22>1 2025-11-04T18:12:34.123456+00:00 host prog pid msgid [sd] msg`
    /// (rsyslog's `RSYSLOG_SyslogProtocol23Format`, syslog-ng's `syslog-protocol`).
    Rfc5424Syslog,
    /// `journalctl -o short-full`: `Mon 2025-11-04 18:12:34 UTC host prog[pid]: msg`.
    JournalShortFull,
    /// `journalctl -o short-unix`: `1762279954.123456 host prog[pid]: msg`.
    JournalShortUnix,
    /// A `tai64n` label (multilog, s6-log, `svlogd -tt`) before the line: `@4000000069... msg`.
    Tai64n,
    /// `journalctl -o json` (or `json-seq`, `json-sse`): one entry a line, read as the
    /// `short-iso-precise` line it stands for (`journal_json`).
    JournalJson,
    /// No timestamp at all, but a recognizable `program[pid]:` / Dovecot prefix.
    Bare,
    /// A container runtime's CRI log (containerd, CRI-O: `/var/log/pods/...`): an RFC 3339
    /// nanosecond stamp, the stream and `F` (a whole line) or `P` (a part of a longer one)
    /// before the container's line: `2025-11-04T18:12:34.123456789Z stdout F Nov  4 ...`.
    Cri,
    /// Docker's `json-file` log (`/var/lib/docker/containers/ID/ID-json.log`): one object a
    /// line, read as the `docker logs --timestamps` line it stands for (`docker_json`).
    DockerJson,
}

impl LineFormat {
    pub const ALL: [LineFormat; 14] = [
        LineFormat::ClassicSyslog,
        LineFormat::PostfixMaillog,
        LineFormat::Rfc3339Syslog,
        LineFormat::JournalShortIso,
        LineFormat::Docker,
        LineFormat::DovecotLog,
        LineFormat::Rfc5424Syslog,
        LineFormat::JournalShortFull,
        LineFormat::JournalShortUnix,
        LineFormat::Tai64n,
        LineFormat::JournalJson,
        LineFormat::Bare,
        LineFormat::Cri,
        LineFormat::DockerJson,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LineFormat::ClassicSyslog => "classic_syslog",
            LineFormat::PostfixMaillog => "postfix_maillog",
            LineFormat::Rfc3339Syslog => "rfc3339_syslog",
            LineFormat::JournalShortIso => "journal_short_iso",
            LineFormat::Docker => "docker",
            LineFormat::DovecotLog => "dovecot_log",
            LineFormat::Rfc5424Syslog => "rfc5424_syslog",
            LineFormat::JournalShortFull => "journal_short_full",
            LineFormat::JournalShortUnix => "journal_short_unix",
            LineFormat::Tai64n => "tai64n",
            LineFormat::JournalJson => "journal_json",
            LineFormat::Bare => "bare",
            LineFormat::Cri => "cri",
            LineFormat::DockerJson => "docker_json",
        }
    }
}

/// The parsed prefix of a line; borrowed slices into the line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header<'a> {
    pub format: LineFormat,
    pub ts: Option<DateTime<Utc>>,
    /// The timestamp carries sub-second digits (otherwise it is a whole-second floor).
    pub subsecond: bool,
    pub host: Option<&'a [u8]>,
    /// The program token without `[pid]`, e.g. `postfix/smtpd`, `dovecot`, or Dovecot's own
    /// process token `lmtp(alice@x)<12><sess>` (kept whole: dovecot.rs splits it).
    pub program: &'a [u8],
    /// The program's name: its token up to the first `[`, `(` or `<` ([`program_name`]).
    pub name: &'a [u8],
    pub pid: Option<u32>,
    pub msg: &'a [u8],
}

/// Dovecot process names as they appear at the start of its own log lines.
const DOVECOT_SERVICES: &[&[u8]] = &[
    b"lmtp",
    b"lda",
    b"imap",
    b"pop3",
    b"imap-login",
    b"pop3-login",
    b"submission",
    b"submission-login",
    b"managesieve",
    b"managesieve-login",
    b"auth",
    b"auth-worker",
    b"master",
    b"config",
    b"dict",
    b"dict-async",
    b"indexer",
    b"indexer-worker",
    b"doveadm",
    b"anvil",
    b"log",
    b"stats",
    b"quota-status",
    b"dovecot",
    b"imap-hibernate",
    b"replicator",
    b"aggregator",
    // 2.2's DH parameter builder (`ssl-params: Info: Generating SSL parameters`), and the
    // services of director and URLAUTH setups.
    b"ssl-params",
    b"ssl-build-param",
    b"director",
    b"imap-urlauth",
    b"imap-urlauth-login",
    b"imap-urlauth-worker",
    b"old-stats",
    b"dns-client",
    b"health-check",
];

pub(crate) fn is_dovecot_service(name: &[u8]) -> bool {
    DOVECOT_SERVICES.contains(&name)
}

/// Name part of a program token: up to the first `[`, `(` or `<`.
pub(crate) fn program_name(token: &[u8]) -> &[u8] {
    let end = token
        .iter()
        .position(|&c| c == b'[' || c == b'(' || c == b'<')
        .unwrap_or(token.len());
    &token[..end]
}

/// The month (1-12) a line starts with as `Jan` ... `Dec`.
pub(crate) fn month_number(b: &[u8]) -> Option<u32> {
    Some(match b.get(..3)? {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

fn digits2(b: &[u8], i: usize) -> Option<u32> {
    let a = *b.get(i)?;
    let c = *b.get(i + 1)?;
    if a.is_ascii_digit() && c.is_ascii_digit() {
        Some(u32::from(a - b'0') * 10 + u32::from(c - b'0'))
    } else {
        None
    }
}

fn digits4(b: &[u8], i: usize) -> Option<i32> {
    let hi = digits2(b, i)?;
    let lo = digits2(b, i + 2)?;
    Some((hi * 100 + lo) as i32)
}

/// `HH:MM:SS[.frac]` at `i`: (h, m, s, nanos, fraction digits, end index).
fn parse_hms(b: &[u8], i: usize) -> Option<(u32, u32, u32, u32, usize, usize)> {
    let h = digits2(b, i)?;
    if b.get(i + 2) != Some(&b':') {
        return None;
    }
    let m = digits2(b, i + 3)?;
    if b.get(i + 5) != Some(&b':') {
        return None;
    }
    let s = digits2(b, i + 6)?;
    let mut j = i + 8;
    let mut nanos = 0u32;
    let mut frac = 0usize;
    if matches!(b.get(j), Some(b'.') | Some(b',')) && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
        j += 1;
        let mut n = 0;
        while let Some(c) = b.get(j).filter(|c| c.is_ascii_digit()) {
            if n < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
                n += 1;
            }
            frac += 1;
            j += 1;
        }
        while n < 9 {
            nanos *= 10;
            n += 1;
        }
    }
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    // A leap second (:60) is folded into :59.999999999 rather than rejected.
    let (s, nanos) = if s == 60 {
        (59, 999_999_999)
    } else {
        (s, nanos)
    };
    Some((h, m, s, nanos, frac, j))
}

/// Zone suffix kinds of an ISO timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    None,
    Z,
    Colon(i32),
    Compact(i32),
}

pub(super) struct Iso {
    naive: NaiveDateTime,
    zone: Zone,
    frac_digits: usize,
    /// Where the stamp ends (the index of the byte after it).
    pub end: usize,
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|±hh:mm|±hhmm|±hh]` at the start of `b`.
pub(super) fn parse_iso(b: &[u8]) -> Option<Iso> {
    let y = digits4(b, 0)?;
    if b.get(4) != Some(&b'-') {
        return None;
    }
    let mo = digits2(b, 5)?;
    if b.get(7) != Some(&b'-') {
        return None;
    }
    let d = digits2(b, 8)?;
    if !matches!(b.get(10), Some(b'T') | Some(b' ')) {
        return None;
    }
    let (h, mi, s, nanos, frac_digits, mut j) = parse_hms(b, 11)?;
    let date = NaiveDate::from_ymd_opt(y, mo, d)?;
    let naive = date.and_hms_nano_opt(h, mi, s, nanos)?;
    let zone = match b.get(j) {
        Some(b'Z') | Some(b'z') => {
            j += 1;
            Zone::Z
        }
        Some(&sign @ (b'+' | b'-')) => {
            let sgn = if sign == b'-' { -1 } else { 1 };
            let hh = digits2(b, j + 1)?;
            if b.get(j + 3) == Some(&b':') {
                let mm = digits2(b, j + 4)?;
                j += 6;
                Zone::Colon(sgn * (hh as i32 * 3600 + mm as i32 * 60))
            } else if let Some(mm) = digits2(b, j + 3) {
                j += 5;
                Zone::Compact(sgn * (hh as i32 * 3600 + mm as i32 * 60))
            } else {
                j += 3;
                Zone::Compact(sgn * hh as i32 * 3600)
            }
        }
        _ => Zone::None,
    };
    if let Zone::Colon(o) | Zone::Compact(o) = zone {
        if o.abs() > 18 * 3600 {
            return None;
        }
    }
    // A timestamp must end the token.
    match b.get(j) {
        None | Some(b' ') | Some(b'\t') => {}
        _ => return None,
    }
    Some(Iso {
        naive,
        zone,
        frac_digits,
        end: j,
    })
}

impl Iso {
    /// The stamp in UTC; without a zone, in the source's (`ctx`), read where `days` says the
    /// log stands in a fold of that zone.
    fn utc(&self, ctx: &ParseContext, days: &mut Days) -> DateTime<Utc> {
        let offset = match self.zone {
            Zone::None => return days.resolve(ctx, self.naive),
            Zone::Z => 0,
            Zone::Colon(o) | Zone::Compact(o) => o,
        };
        to_utc(self.naive, offset)
    }

    /// The stamp's wall time read in the zone `offset_secs` east of UTC (its own zone ignored).
    pub(super) fn utc_at(&self, offset_secs: i32) -> DateTime<Utc> {
        to_utc(self.naive, offset_secs)
    }

    /// The stamp's wall time read in `zone`, outside any log's course: a wall time in a fold
    /// is read at its earlier offset.
    pub(super) fn utc_in(&self, zone: &super::LogZone) -> DateTime<Utc> {
        zone.instant(self.naive, &mut Fold::default()).ts
    }

    pub(super) fn has_zone(&self) -> bool {
        !matches!(self.zone, Zone::None)
    }

    pub(super) fn subsecond(&self) -> bool {
        self.frac_digits > 0
    }
}

fn to_utc(naive: NaiveDateTime, offset_secs: i32) -> DateTime<Utc> {
    (naive - TimeDelta::seconds(i64::from(offset_secs))).and_utc()
}

/// The source's offset when it is a fixed one; `i32::MIN` (no offset) for a named zone.
fn ctx_offset(ctx: &ParseContext) -> i32 {
    ctx.tz.fixed_secs().unwrap_or(i32::MIN)
}

struct Classic {
    month: u32,
    day: u32,
    h: u32,
    m: u32,
    s: u32,
    nanos: u32,
    frac: usize,
    zero_padded: bool,
    end: usize,
}

/// `Mmm dd HH:MM:SS[.frac]` (day space- or zero-padded) at the start of `b`.
fn parse_classic(b: &[u8]) -> Option<Classic> {
    let month = month_number(b)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let (day, zero_padded, i) = match (b.get(4), b.get(5)) {
        (Some(b' '), Some(c)) if c.is_ascii_digit() => (u32::from(c - b'0'), false, 6),
        (Some(&a), Some(&c)) if a.is_ascii_digit() && c.is_ascii_digit() => {
            (u32::from(a - b'0') * 10 + u32::from(c - b'0'), a == b'0', 6)
        }
        (Some(&a), Some(b' ')) if a.is_ascii_digit() => (u32::from(a - b'0'), false, 5),
        _ => return None,
    };
    if b.get(i) != Some(&b' ') || !(1..=31).contains(&day) {
        return None;
    }
    let (h, m, s, nanos, frac, end) = parse_hms(b, i + 1)?;
    match b.get(end) {
        None | Some(b' ') => {}
        _ => return None,
    }
    Some(Classic {
        month,
        day,
        h,
        m,
        s,
        nanos,
        frac,
        zero_padded,
        end,
    })
}

/// The day the last year-less stamp fell on, with the UTC time of its local midnight, and that
/// stamp itself with its resolved time: lines come in time order, so most are on the day of the
/// line before (the calendar work is done once a day instead of once a line), and on a busy log
/// most share the very stamp of the line before (which is then not parsed again).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Days {
    last: Option<LastDay>,
    stamp: Option<LastStamp>,
    /// Where the log stands in a fold of a named zone (`super::zone`).
    fold: Fold,
    /// The last header parsed read a wall time in a fold: its time depends on the lines
    /// before it, so it is not remembered for a line with the same bytes.
    pub(crate) folded: bool,
}

/// Longest classic stamp kept as the last one (`Mmm dd HH:MM:SS` and a fraction of up to 16
/// digits); longer ones are parsed every time.
const STAMP_ROOM: usize = 32;

/// A classic stamp as resolved for a line: its time, what it looked like and where it ends.
#[derive(Debug, Clone, Copy)]
struct ClassicStamp {
    ts: DateTime<Utc>,
    subsecond: bool,
    zero_padded: bool,
    end: usize,
    /// It lay in a fold of a named zone ([`Days::folded`]).
    folded: bool,
}

/// What a classic stamp's time depends on besides its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StampKey {
    year_bump: i32,
    year: i32,
    reference: Option<DateTime<Utc>>,
    utc_offset: i32,
}

impl StampKey {
    fn new(ctx: &ParseContext, year_bump: i32) -> Self {
        StampKey {
            year_bump,
            year: ctx.year,
            reference: ctx.reference,
            utc_offset: ctx_offset(ctx),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct LastStamp {
    text: [u8; STAMP_ROOM],
    key: StampKey,
    stamp: ClassicStamp,
}

/// A calendar day in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Day {
    year: i32,
    month: u32,
    day: u32,
    utc_offset: i32,
}

#[derive(Debug, Clone, Copy)]
struct LastDay {
    day: Day,
    /// Its local midnight in UTC (`None`: no such date).
    midnight: Option<DateTime<Utc>>,
}

impl Days {
    /// The last stamp, if `line` starts with the same one (and the same context would resolve
    /// it). `parse_classic` reads a stamp's bytes up to its end and the byte after it only, so
    /// the same bytes there give the same stamp.
    fn recall(&self, line: &[u8], key: StampKey) -> Option<ClassicStamp> {
        let last = self.stamp.as_ref().filter(|l| l.key == key)?;
        let end = last.stamp.end;
        let same =
            line.get(..end) == last.text.get(..end) && matches!(line.get(end), None | Some(b' '));
        same.then_some(last.stamp)
    }

    fn remember(&mut self, line: &[u8], key: StampKey, stamp: ClassicStamp) {
        let Some(text) = line.get(..stamp.end) else {
            return;
        };
        if text.len() > STAMP_ROOM {
            self.stamp = None;
            return;
        }
        let mut room = [0u8; STAMP_ROOM];
        room[..text.len()].copy_from_slice(text);
        self.stamp = Some(LastStamp {
            text: room,
            key,
            stamp,
        });
    }

    /// A zone-less wall time in UTC, in the source's zone.
    fn resolve(&mut self, ctx: &ParseContext, local: NaiveDateTime) -> DateTime<Utc> {
        let r = ctx.tz.instant(local, &mut self.fold);
        self.folded |= r.ambiguous;
        r.ts
    }

    fn midnight(&mut self, day: Day) -> Option<DateTime<Utc>> {
        if let Some(last) = self.last.filter(|l| l.day == day) {
            return last.midnight;
        }
        let midnight = NaiveDate::from_ymd_opt(day.year, day.month, day.day)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|n| n.checked_sub_signed(TimeDelta::seconds(i64::from(day.utc_offset))))
            .map(|n| n.and_utc());
        self.last = Some(LastDay { day, midnight });
        midnight
    }
}

/// Resolve a year-less timestamp. With a reference time (e.g. the file's mtime, or "now" for a
/// live command), a date more than two days after the reference belongs to the previous year
/// (the usual syslog rule: logs are not written in the future). Without one, `ctx.year` plus
/// the caller's rollover count is used.
fn classic_to_utc(
    c: &Classic,
    ctx: &ParseContext,
    year_bump: i32,
    days: &mut Days,
) -> Option<DateTime<Utc>> {
    let off = ctx_offset(ctx);
    // `parse_hms` has checked the time of day (a leap second is already folded into :59).
    let since_midnight = TimeDelta::new(i64::from(c.h * 3600 + c.m * 60 + c.s), c.nanos)?;
    let mut build = |year: i32| -> Option<DateTime<Utc>> {
        if off == i32::MIN {
            // A named zone: the offset is the wall time's own, not the day's.
            let local = NaiveDate::from_ymd_opt(year, c.month, c.day)?.and_time(
                chrono::NaiveTime::from_hms_nano_opt(c.h, c.m, c.s, c.nanos)?,
            );
            return Some(days.resolve(ctx, local));
        }
        let day = Day {
            year,
            month: c.month,
            day: c.day,
            utc_offset: off,
        };
        days.midnight(day)?.checked_add_signed(since_midnight)
    };
    match ctx.reference {
        Some(r) => {
            let local_year = (r + TimeDelta::seconds(i64::from(ctx.tz.offset_at_utc(r)))).year();
            match build(local_year) {
                Some(t) if t <= r + TimeDelta::days(2) => Some(t),
                // Future (or 29 Feb in a non-leap year): previous year.
                _ => build(local_year - 1),
            }
        }
        None => build(ctx.year.saturating_add(year_bump)),
    }
}

/// The classic stamp at the start of `line`, resolved: `None` when there is none, `Some(None)`
/// when it names no time (29 February of a common year, say).
fn resolve_classic(
    line: &[u8],
    ctx: &ParseContext,
    year_bump: i32,
    days: &mut Days,
) -> Option<Option<ClassicStamp>> {
    let key = StampKey::new(ctx, year_bump);
    if let Some(s) = days.recall(line, key) {
        // A line with the same header bytes later may be in the other pass of the fold.
        days.folded |= s.folded;
        return Some(Some(s));
    }
    let c = parse_classic(line)?;
    let Some(ts) = classic_to_utc(&c, ctx, year_bump, days) else {
        return Some(None);
    };
    let stamp = ClassicStamp {
        ts,
        subsecond: c.frac > 0,
        zero_padded: c.zero_padded,
        end: c.end,
        folded: days.folded,
    };
    // A stamp in a fold is remembered too: only the next line's very same stamp recalls it,
    // and that line is read in the same pass (a pass ends only where the clock steps back).
    days.remember(line, key, stamp);
    Some(Some(stamp))
}

/// Split `prog[pid]` into name-with-suffix and pid. Dovecot tokens (`lmtp(x)<1><s>`) are kept
/// whole; only `[digits]` counts as a pid here.
fn split_pid(token: &[u8]) -> (&[u8], Option<u32>) {
    // Tokens are short: a plain loop beats setting up a vector search.
    match token.iter().position(|&c| c == b'[') {
        Some(open) => split_pid_at(token, open),
        None => (token, None),
    }
}

/// [`split_pid`] with the token's first `[` at `open`.
fn split_pid_at(token: &[u8], open: usize) -> (&[u8], Option<u32>) {
    if token.last() == Some(&b']') && open + 1 < token.len() {
        return (&token[..open], pid(&token[open + 1..token.len() - 1]));
    }
    (token, None)
}

/// The pid between a token's brackets: decimal digits that fit in 32 bits.
fn pid(b: &[u8]) -> Option<u32> {
    // The usual pid, at most nine digits, cannot overflow: one pass that adds up the digits
    // and notes any other byte (the sum is dropped then), with no branch per byte.
    if (1..=9).contains(&b.len()) {
        let (n, all_digits) = b.iter().fold((0u32, true), |(n, ok), &c| {
            let d = c.wrapping_sub(b'0');
            (n.wrapping_mul(10).wrapping_add(u32::from(d)), ok & (d < 10))
        });
        return all_digits.then_some(n);
    }
    super::scan::parse_u64(b).and_then(|p| u32::try_from(p).ok())
}

/// A program token's program and pid ([`split_pid`]) with the program's name
/// ([`program_name`]), from one scan of the usual `name[pid]` token.
fn split_token(token: &[u8]) -> (&[u8], &[u8], Option<u32>) {
    let cut = token
        .iter()
        .position(|&c| c == b'[' || c == b'(' || c == b'<');
    // The program is the token or the part before its first `[`; either way its name ends at
    // the token's first `[`, `(` or `<`.
    let name = &token[..cut.unwrap_or(token.len())];
    let (program, pid) = match cut {
        Some(open) if token[open] == b'[' => split_pid_at(token, open),
        Some(_) => split_pid(token),
        None => (token, None),
    };
    (program, name, pid)
}

fn valid_program(token: &[u8]) -> bool {
    token.first().is_some_and(u8::is_ascii_alphabetic)
        && token.len() <= 200
        // In blocks: `contains` went a byte at a time, and memchr's call cost more than the
        // search on a token this short.
        && (!super::scan::has_byte(token, b' ') || spaces_in_parens(token))
}

/// Every space of `token` is inside its parentheses (Dovecot 2.2's `lmtp(6100, alice@x)`). Out
/// of line: a token with a space is rare, and [`valid_program`] is asked of every line.
#[cold]
#[inline(never)]
fn spaces_in_parens(token: &[u8]) -> bool {
    let (Some(open), Some(close)) = (memchr::memchr(b'(', token), memchr::memrchr(b')', token))
    else {
        return false;
    };
    open < close && !token[..open].contains(&b' ') && !token[close..].contains(&b' ')
}

/// `prog:` alone at the end of the line (empty message).
fn prog_at_end(t: &[u8]) -> Option<(&[u8], &[u8])> {
    let t = t.strip_suffix(b":")?;
    Some((t, &b""[..]))
}

/// `[host ]program[pid]: msg` (host optional). Returns (host, program token, message).
/// (host, program token, message) of a line's remainder.
type Rest<'a> = (Option<&'a [u8]>, &'a [u8], &'a [u8]);

fn parse_rest(r: &[u8]) -> Option<Rest<'_>> {
    let r = match r.first() {
        Some(b'<') => super::variants::without_bsd_priority(r),
        _ => r,
    };
    let sp = super::scan::byte_pos(r, b' ');
    let colon = super::scan::find(r, b": ");
    // A space inside a program token's parentheses (Dovecot 2.2's own log: `lmtp(6100,
    // alice@corp.test): Info: ...`) is no host's end: a host name has no parenthesis.
    let in_token = |s: usize| {
        // Looked at past a comma only: every syslog line's host ends at a space.
        let word = &r[..s];
        word.last() == Some(&b',')
            && memchr::memchr(b'(', word).is_some()
            && memchr::memchr(b')', word).is_none()
    };
    match (sp, colon) {
        (_, Some(c)) if sp.is_none_or(|s| c < s || in_token(s)) => {
            Some((None, &r[..c], &r[c + 2..]))
        }
        (Some(s), _) => {
            let host = &r[..s];
            let rest = &r[s + 1..];
            // The first `: ` after the host is the line's first (`colon`, past the space here).
            let (prog, msg) = match colon {
                Some(c) => (&r[s + 1..c], &r[c + 2..]),
                None => prog_at_end(rest)?,
            };
            if host.is_empty() {
                return None;
            }
            Some((Some(host), prog, msg))
        }
        (None, None) => {
            let (p, m) = prog_at_end(r)?;
            Some((None, p, m))
        }
        _ => None,
    }
}

/// Parse the prefix of `line` (no trailing newline). `year_bump` is the caller's Dec -> Jan
/// rollover count for year-less formats.
#[cfg(test)]
pub(crate) fn parse_header<'a>(
    line: &'a [u8],
    ctx: &ParseContext,
    year_bump: i32,
) -> Option<Header<'a>> {
    parse_header_with(line, ctx, year_bump, &mut Days::default())
}

/// [`parse_header`] with the caller's day of the last year-less stamp. A leading syslog
/// priority (`<22>`) is skipped; after one, the line may be RFC 5424.
pub(crate) fn parse_header_with<'a>(
    line: &'a [u8],
    ctx: &ParseContext,
    year_bump: i32,
    days: &mut Days,
) -> Option<Header<'a>> {
    days.folded = false;
    let (line, pri) = rfc5424::strip_pri(line);
    if pri {
        if let Some(h) = rfc5424_header(line, ctx, days) {
            return Some(h);
        }
    }
    let format;
    let ts;
    let subsecond;
    let rest: &[u8];

    // A classic stamp starts with a letter and an ISO one with a digit: at most one is found,
    // and the classic one (most logs' own) is looked for first.
    if let Some(c) = resolve_classic(line, ctx, year_bump, days) {
        let c = c?;
        ts = Some(c.ts);
        subsecond = c.subsecond;
        format = if c.zero_padded {
            LineFormat::PostfixMaillog
        } else {
            LineFormat::ClassicSyslog
        };
        rest = line.get(c.end + 1..).unwrap_or(&[]);
    } else if let Some(iso) = parse_iso(line) {
        let after = line.get(iso.end + 1..).unwrap_or(&[]);
        // A CRI log's stream and tag come between its stamp and the container's line.
        let (after, wrapper) = match cri_tag(after) {
            Some(inner) => (inner, LineFormat::Cri),
            None => (after, LineFormat::Docker),
        };
        // docker --timestamps: an inner line with its own timestamp follows the stamp.
        let inner_iso = parse_iso(after);
        let inner_classic = if inner_iso.is_none() {
            parse_classic(after)
        } else {
            None
        };
        ts = Some(iso.utc(ctx, days));
        subsecond = iso.frac_digits > 0;
        if let Some(inner) = inner_iso {
            format = wrapper;
            rest = after.get(inner.end + 1..).unwrap_or(&[]);
        } else if let Some(inner) = inner_classic {
            format = wrapper;
            rest = after.get(inner.end + 1..).unwrap_or(&[]);
        } else {
            format = match iso.zone {
                _ if wrapper == LineFormat::Cri => LineFormat::Cri,
                Zone::Compact(_) => LineFormat::JournalShortIso,
                Zone::Z if iso.frac_digits == 9 => LineFormat::Docker,
                _ => LineFormat::Rfc3339Syslog,
            };
            rest = after;
        }
    } else if let Some(other) = variants::stamp(line, ctx) {
        ts = Some(other.ts);
        subsecond = other.subsecond;
        format = other.format;
        rest = line.get(other.end + 1..).unwrap_or(&[]);
    } else {
        ts = None;
        subsecond = false;
        format = LineFormat::Bare;
        rest = line;
    }

    // Tolerate the double space some writers put after the stamp.
    let rest = rest.trim_ascii_start();
    let rest = match format {
        LineFormat::Rfc3339Syslog => variants::without_severity(rest),
        _ => rest,
    };
    let (host, token, msg) = parse_rest(rest)?;
    let stamp = Stamp {
        format,
        ts,
        subsecond,
    };
    checked(stamp, host, token, None, msg).or_else(|| {
        let token = variants::without_priority(token)?;
        checked(stamp, host, token, None, msg)
    })
}

/// What follows a CRI log's stamp before the container's line: the stream (`stdout`,
/// `stderr`) and the tag (`F`: the whole line; `P`: a part of a line longer than the runtime's
/// buffer, whose rest comes in the next; a part is read as the line it starts, its rest as a
/// line of its own).
fn cri_tag(b: &[u8]) -> Option<&[u8]> {
    let rest = b
        .strip_prefix(b"stdout ")
        .or_else(|| b.strip_prefix(b"stderr "))?;
    rest.strip_prefix(b"F ")
        .or_else(|| rest.strip_prefix(b"P "))
}

/// How a line's time was written, and the time.
#[derive(Clone, Copy)]
struct Stamp {
    format: LineFormat,
    ts: Option<DateTime<Utc>>,
    subsecond: bool,
}

/// The header of a line from its parts, if they read as one: a valid program token; without a
/// time, only a line that is unmistakably Postfix or Dovecot; a host without spaces or colons.
/// `procid` is a pid given apart from the program token (RFC 5424).
fn checked<'a>(
    stamp: Stamp,
    host: Option<&'a [u8]>,
    token: &'a [u8],
    procid: Option<u32>,
    msg: &'a [u8],
) -> Option<Header<'a>> {
    let Stamp {
        mut format,
        ts,
        subsecond,
    } = stamp;
    let (program, name, pid) = split_token(token);
    let pid = pid.or(procid);
    if !valid_program(program) {
        return None;
    }
    let dovecot_own = host.is_none() && is_dovecot_service(name) && name != b"dovecot";
    let own_stamp = matches!(
        format,
        LineFormat::Docker | LineFormat::Cri | LineFormat::Rfc5424Syslog | LineFormat::Tai64n
    );
    if dovecot_own && !own_stamp {
        format = LineFormat::DovecotLog;
    }
    if ts.is_none() {
        // Without a timestamp, only accept lines that are unmistakably Postfix or Dovecot.
        let postfixish = memchr::memchr(b'/', name).is_some() && pid.is_some();
        if !(postfixish || dovecot_own) {
            return None;
        }
    }
    if let Some(h) = host {
        if h.len() > 255 || h.iter().any(|&c| c < 0x21 || c == b':') {
            return None;
        }
    }
    Some(Header {
        format,
        ts,
        subsecond,
        host,
        program,
        name,
        pid,
        msg: variants::without_solaris_id(msg),
    })
}

/// The header of an RFC 5424 line (its `<PRI>` stripped), if it is one. Its APP-NAME is the
/// program token and its PROCID the pid; a nil TIMESTAMP is a line without a time.
fn rfc5424_header<'a>(b: &'a [u8], ctx: &ParseContext, days: &mut Days) -> Option<Header<'a>> {
    let f = rfc5424::fields(b)?;
    let (ts, subsecond) = match f.stamp {
        None => (None, false),
        Some(s) => {
            let iso = parse_iso(s).filter(|iso| iso.end == s.len())?;
            (Some(iso.utc(ctx, days)), iso.frac_digits > 0)
        }
    };
    let procid = f
        .procid
        .and_then(super::scan::parse_u64)
        .and_then(|p| u32::try_from(p).ok());
    let stamp = Stamp {
        format: LineFormat::Rfc5424Syslog,
        ts,
        subsecond,
    };
    checked(stamp, f.host, f.app?, procid, f.msg)
}

/// Where a classic stamp at the start of `b` ends (`Nov  4 18:12:34`, `Nov 04 ...`), when there
/// is one: without a year or zone, so not resolved to a time.
pub(crate) fn classic_stamp_end(b: &[u8]) -> Option<usize> {
    parse_classic(b).map(|c| c.end)
}

/// The month of a line's classic stamp (after a syslog priority, if any), if it has one, in
/// English or in the system's language (`journalctl` writes the locale's).
pub(crate) fn classic_month(line: &[u8]) -> Option<u32> {
    let line = rfc5424::strip_pri(line).0;
    month_number(line).or_else(|| super::locale_month::month(line).map(|(m, _)| m))
}

/// Program token and message of a line without parsing or validating its timestamp: the cheap
/// first look the message-id focus needs to skip most lines. Lines it accepts still go through
/// [`parse_header`] before they count as parsed.
pub(crate) fn quick_program_msg(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let (line, pri) = rfc5424::strip_pri(line);
    if let Some(f) = pri.then(|| rfc5424::fields(line)).flatten() {
        let (program, _) = split_pid(f.app?);
        return valid_program(program).then_some((program, f.msg));
    }
    fn skip_stamp(b: &[u8]) -> Option<&[u8]> {
        let iso = b.len() > 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
        if iso {
            let sp = memchr::memchr(b' ', b)?;
            return Some(&b[sp + 1..]);
        }
        let classic = b.len() > 16 && month_number(b).is_some() && b[3] == b' ';
        if classic {
            // `Mmm dd HH:MM:SS` (maybe `.frac`), then a space.
            let sp = memchr::memchr(b' ', &b[15..]).map(|i| i + 15)?;
            return Some(&b[sp + 1..]);
        }
        None
    }
    let mut rest = skip_stamp(line)
        .or_else(|| variants::skip(line))
        .unwrap_or(line);
    // docker --timestamps and CRI logs wrap a line that has its own stamp.
    rest = cri_tag(rest).unwrap_or(rest);
    if let Some(inner) = skip_stamp(rest) {
        rest = inner;
    }
    let (_, token, msg) = parse_rest(rest.trim_ascii_start())?;
    let program = match split_pid(token).0 {
        p if valid_program(p) => p,
        _ => Some(split_pid(variants::without_priority(token)?).0).filter(|p| valid_program(p))?,
    };
    Some((program, variants::without_solaris_id(msg)))
}

/// Parse a time zone setting: `UTC`, `Z`, `+02:00`, `-0500`, `+2`.
pub fn parse_tz(s: &str) -> Result<FixedOffset, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("gmt")
    {
        return Ok(FixedOffset::east_opt(0).expect("zero offset is valid"));
    }
    let bad = || {
        format!(
            "time zone '{s}' is not a fixed offset: use UTC, +HH:MM or -HH:MM \
             (named zones such as Europe/Berlin are not supported)"
        )
    };
    let b = t.as_bytes();
    let sign = match b.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(bad()),
    };
    let body = &t[1..];
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h, m),
        None if body.len() == 4 => (&body[..2], &body[2..]),
        None => (body, "0"),
    };
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if !(0..=18).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ctx() -> ParseContext {
        ParseContext::new("ec2", 2025)
    }

    fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    /// `ALL` lists the formats in their declared order: a parser counts each format at the
    /// index `format as usize`, and names it by `ALL` at that index.
    #[test]
    fn all_formats_in_declared_order() {
        for (i, f) in LineFormat::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i, "{f:?}");
        }
    }

    #[test]
    fn classic_and_maillog() {
        let l = b"Nov  4 18:12:34 mx postfix/smtpd[123]: connect from x[1.2.3.4]";
        let h = parse_header(l, &ctx(), 0).unwrap();
        assert_eq!(h.format, LineFormat::ClassicSyslog);
        assert_eq!(h.ts, Some(ts(2025, 11, 4, 18, 12, 34)));
        assert_eq!(h.host, Some(&b"mx"[..]));
        assert_eq!(h.program, b"postfix/smtpd");
        assert_eq!(h.pid, Some(123));
        assert_eq!(h.msg, b"connect from x[1.2.3.4]");
        let l = b"Nov 04 18:12:34 mx postfix/qmgr[9]: ABCDEF123: removed";
        let h = parse_header(l, &ctx(), 0).unwrap();
        assert_eq!(h.format, LineFormat::PostfixMaillog);
    }

    #[test]
    fn a_severity_in_the_hosts_place_is_no_host() {
        // boky/postfix's rsyslog template: the severity, uppercase, padded to 8.
        for (l, msg) in [
            (&b"2023-12-30T21:20:26.617755+00:00 INFO    postfix/smtpd[481]: connect from unknown[10.0.1.22]"[..], &b"connect from unknown[10.0.1.22]"[..]),
            (b"2023-12-30T21:20:26.625192+00:00 WARNING postfix/smtpd[481]: warning: TLS library problem", b"warning: TLS library problem"),
        ] {
            let h = parse_header(l, &ctx(), 0).unwrap();
            assert_eq!((h.host, h.program, h.pid, h.msg), (None, &b"postfix/smtpd"[..], Some(481), msg));
        }
        // A host's name in capitals is still a host.
        let h = parse_header(
            b"2023-12-30T21:20:26+00:00 MAILGW postfix/smtpd[1]: x",
            &ctx(),
            0,
        )
        .unwrap();
        assert_eq!(h.host, Some(&b"MAILGW"[..]));
    }

    #[test]
    fn iso_variants() {
        let l = b"2025-11-04T18:12:34.123456+01:00 mx postfix/smtpd[1]: x";
        let h = parse_header(l, &ctx(), 0).unwrap();
        assert_eq!(h.format, LineFormat::Rfc3339Syslog);
        assert_eq!(
            h.ts.unwrap(),
            ts(2025, 11, 4, 17, 12, 34) + TimeDelta::microseconds(123456)
        );
        assert!(h.subsecond);
        let l = b"2025-11-04T18:12:34+0000 mx postfix/smtpd[1]: x";
        let h = parse_header(l, &ctx(), 0).unwrap();
        assert_eq!(h.format, LineFormat::JournalShortIso);
        assert!(!h.subsecond);
        let l = b"2025-11-04T18:12:34.123456789Z Nov  4 18:12:34 mx postfix/smtpd[1]: x";
        let h = parse_header(l, &ctx(), 0).unwrap();
        assert_eq!(h.format, LineFormat::Docker);
        assert_eq!(h.host, Some(&b"mx"[..]));
        assert_eq!(h.msg, b"x");
        // CRI (containerd, CRI-O): the stream and tag between the stamps; the runtime's stamp
        // is the line's time.
        for l in [
            &b"2025-11-04T18:12:34.123456789Z stdout F Nov  4 18:12:33 mx postfix/smtpd[1]: x"[..],
            b"2025-11-04T18:12:34.123456789Z stderr P Nov  4 18:12:33 mx postfix/smtpd[1]: x",
            b"2025-11-04T19:12:34.123456789+01:00 stdout F 2025-11-04T18:12:33Z mx postfix/smtpd[1]: x",
        ] {
            let h = parse_header(l, &ctx(), 0).unwrap();
            assert_eq!(h.format, LineFormat::Cri, "{}", String::from_utf8_lossy(l));
            assert_eq!(h.host, Some(&b"mx"[..]));
            assert_eq!(h.program, b"postfix/smtpd");
            assert_eq!(h.msg, b"x");
            assert_eq!(
                h.ts.unwrap(),
                ts(2025, 11, 4, 18, 12, 34) + TimeDelta::nanoseconds(123456789)
            );
            assert_eq!(quick_program_msg(l), Some((&b"postfix/smtpd"[..], &b"x"[..])));
        }
        // Dovecot logging to the container's stderr without a stamp of its own.
        let l = b"2025-11-04T18:12:34.123456789Z stderr F lmtp(alice@corp.test)<12><abc>: Info: hi";
        let h = parse_header(l, &ctx(), 0).unwrap();
        assert_eq!(h.format, LineFormat::Cri);
        assert_eq!(h.program, b"lmtp(alice@corp.test)<12><abc>");
        // Only the runtime's words make a CRI tag.
        let l = b"2025-11-04T18:12:34.123456789Z stdin F Nov  4 18:12:33 mx postfix/smtpd[1]: x";
        assert!(parse_header(l, &ctx(), 0).is_none_or(|h| h.format != LineFormat::Cri));
        let l = b"2025-11-04T18:12:34.123456 lmtp(alice@corp.test)<12><abc>: Info: hi";
        let h = parse_header(l, &ctx(), 0).unwrap();
        assert_eq!(h.format, LineFormat::DovecotLog);
        assert_eq!(h.program, b"lmtp(alice@corp.test)<12><abc>");
        assert_eq!(h.msg, b"Info: hi");
        // Dovecot 2.2's own log: a space inside the token's parentheses.
        let l = b"Nov 04 06:06:01 lmtp(22587, alice@corp.test): Info: saved";
        let h = parse_header(l, &ctx(), 0).unwrap();
        assert_eq!(h.format, LineFormat::DovecotLog);
        assert_eq!(
            (h.host, h.program),
            (None, &b"lmtp(22587, alice@corp.test)"[..])
        );
        // A space outside them is no token's.
        assert!(!spaces_in_parens(b"lmtp (1)"));
        assert!(!spaces_in_parens(b"lmtp(1) x"));
        assert!(!spaces_in_parens(b"a)b (c"));
    }

    #[test]
    fn rfc_5424_lines() {
        let l = b"<22>1 2025-11-04T18:12:34.123456+01:00 mx postfix/smtpd 4401 - - 5C2E: client=x";
        let h = parse_header(l, &ctx(), 0).unwrap();
        assert_eq!(h.format, LineFormat::Rfc5424Syslog);
        assert_eq!(
            h.ts.unwrap(),
            ts(2025, 11, 4, 17, 12, 34) + TimeDelta::microseconds(123456)
        );
        assert!(h.subsecond);
        assert_eq!(h.host, Some(&b"mx"[..]));
        assert_eq!(
            (h.program, h.name, h.pid),
            (&b"postfix/smtpd"[..], &b"postfix/smtpd"[..], Some(4401))
        );
        assert_eq!(h.msg, b"5C2E: client=x");
        assert_eq!(
            quick_program_msg(l),
            Some((&b"postfix/smtpd"[..], &b"5C2E: client=x"[..]))
        );
        // Dovecot through syslog, with structured data and a byte-order mark.
        let l = "<166>1 2025-11-04T18:12:34Z dell dovecot - - [timeQuality isSynced=\"1\"] \u{feff}lmtp(a@x)<9><s>: Info: hi";
        let h = parse_header(l.as_bytes(), &ctx(), 0).unwrap();
        assert_eq!(
            (h.format, h.program, h.pid),
            (LineFormat::Rfc5424Syslog, &b"dovecot"[..], None)
        );
        assert_eq!(h.msg, b"lmtp(a@x)<9><s>: Info: hi");
        assert!(!h.subsecond);
        // Without a time, only an unmistakable Postfix line is one; without a program, none is.
        let h = parse_header(b"<22>1 - - postfix/qmgr 9 - - 5C2E: removed", &ctx(), 0).unwrap();
        assert_eq!((h.ts, h.host, h.pid), (None, None, Some(9)));
        for l in [
            &b"<22>1 - mx sshd 9 - - Accepted key"[..],
            b"<22>1 2025-11-04T18:12:34Z mx - 9 - - 5C2E: removed",
            b"<22>1 2025-11-04T18:12:34Zjunk mx postfix/qmgr 9 - - 5C2E: removed",
            b"<22>1 2025-02-30T18:12:34Z mx postfix/qmgr 9 - - 5C2E: removed",
        ] {
            assert!(
                parse_header(l, &ctx(), 0).is_none(),
                "{:?}",
                l.escape_ascii()
            );
        }
    }

    #[test]
    fn a_priority_before_a_classic_or_iso_line_is_skipped() {
        let l = b"<22>Nov  4 18:12:34 mx postfix/smtpd[123]: connect from x[1.2.3.4]";
        let h = parse_header(l, &ctx(), 0).unwrap();
        assert_eq!(h.format, LineFormat::ClassicSyslog);
        assert_eq!(h.ts, Some(ts(2025, 11, 4, 18, 12, 34)));
        assert_eq!((h.program, h.pid), (&b"postfix/smtpd"[..], Some(123)));
        assert_eq!(classic_month(l), Some(11));
        assert_eq!(
            quick_program_msg(l),
            Some((&b"postfix/smtpd"[..], &b"connect from x[1.2.3.4]"[..]))
        );
        let l = b"<13>2025-11-04T18:12:34.5+00:00 mx postfix/qmgr[9]: 5C2E: removed";
        let h = parse_header(l, &ctx(), 0).unwrap();
        assert_eq!(h.format, LineFormat::Rfc3339Syslog);
        // Not a priority: left alone (and not a line flowtest reads).
        assert!(parse_header(b"<999>Nov  4 18:12:34 mx postfix/smtpd[1]: x", &ctx(), 0).is_none());
    }

    #[test]
    fn year_inference_with_reference() {
        let mut c = ctx();
        c.reference = Some(ts(2026, 1, 3, 0, 0, 0));
        let h = parse_header(b"Dec 31 23:59:59 mx postfix/smtpd[1]: x", &c, 0).unwrap();
        assert_eq!(h.ts, Some(ts(2025, 12, 31, 23, 59, 59)));
        let h = parse_header(b"Jan  2 00:00:01 mx postfix/smtpd[1]: x", &c, 0).unwrap();
        assert_eq!(h.ts, Some(ts(2026, 1, 2, 0, 0, 1)));
    }

    #[test]
    fn the_day_kept_from_the_line_before_gives_each_line_its_own_time() {
        let lines: [&[u8]; 7] = [
            b"Nov  4 23:59:59.250 mx postfix/smtpd[1]: x",
            b"Nov  4 00:00:00 mx postfix/smtpd[1]: x",
            b"Nov  5 00:00:01 mx postfix/smtpd[1]: x",
            b"Feb 29 12:00:00 mx postfix/smtpd[1]: x",
            b"Feb 28 23:59:60 mx postfix/smtpd[1]: x",
            b"Nov  5 07:08:09 mx postfix/smtpd[1]: x",
            b"Dec 31 22:30:00 mx postfix/smtpd[1]: x",
        ];
        for tz in ["+00:00", "+02:00", "-05:30"] {
            let mut c = ctx();
            c.tz = parse_tz(tz).unwrap().into();
            let mut days = Days::default();
            for bump in [0, 1] {
                for l in lines {
                    let kept = parse_header_with(l, &c, bump, &mut days).map(|h| h.ts);
                    let fresh = parse_header(l, &c, bump).map(|h| h.ts);
                    assert_eq!(kept, fresh, "{tz} {}", String::from_utf8_lossy(l));
                    let naive = std::str::from_utf8(l)
                        .unwrap()
                        .split(" mx ")
                        .next()
                        .unwrap();
                    let year = 2025 + bump;
                    let want = NaiveDateTime::parse_from_str(
                        &format!("{year} {naive}"),
                        "%Y %b %e %H:%M:%S%.f",
                    )
                    .ok()
                    .map(|n| to_utc(n, c.tz.fixed_secs().unwrap()));
                    if !naive.ends_with(":60") {
                        assert_eq!(fresh.flatten(), want, "{tz} {naive}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_stamp_kept_from_the_line_before_is_reused_only_when_it_would_parse_the_same() {
        let lines: [&[u8]; 8] = [
            b"Nov  5 07:08:09 mx postfix/smtpd[1]: x",
            b"Nov  5 07:08:09 mx postfix/smtpd[1]: y",
            b"Nov  5 07:08:09.5 mx postfix/smtpd[1]: x",
            b"Nov  5 07:08:09.5 mx postfix/smtpd[1]: x",
            b"Nov  5 07:08:09.51 mx postfix/smtpd[1]: x",
            b"Nov  5 07:08:09x mx postfix/smtpd[1]: x",
            b"Nov  5 07:08:0",
            b"Nov  5 07:08:09.12345678901234567890 mx postfix/smtpd[1]: x",
        ];
        let mut other = ctx();
        other.tz = parse_tz("+02:00").unwrap().into();
        let mut referenced = ctx();
        referenced.reference = Some(ts(2026, 1, 3, 0, 0, 0));
        let mut days = Days::default();
        for c in [ctx(), other, referenced] {
            for bump in [0, 1, 0] {
                for l in lines.iter().chain(lines.iter().rev()) {
                    let kept = parse_header_with(l, &c, bump, &mut days).map(|h| (h.ts, h.msg));
                    let fresh = parse_header(l, &c, bump).map(|h| (h.ts, h.msg));
                    assert_eq!(kept, fresh, "{}", String::from_utf8_lossy(l));
                }
            }
        }
    }

    #[test]
    fn one_scan_of_a_token_splits_it_as_pid_then_name_would() {
        for t in [
            &b"postfix/smtpd[4007]"[..],
            b"postfix/smtpd",
            b"postfix/smtpd[]",
            b"postfix/smtpd[12",
            b"postfix/smtpd[x]",
            b"lmtp(alice@corp.test)<12><abc>",
            b"lmtp(a)[12]",
            b"lmtp<1>[2]",
            b"a[1](b)",
            b"[",
            b"(",
            b"",
        ] {
            let (program, pid) = split_pid(t);
            let want = (program, program_name(program), pid);
            assert_eq!(split_token(t), want, "{}", String::from_utf8_lossy(t));
        }
    }

    #[test]
    fn a_pid_is_the_digits_that_fit_in_32_bits() {
        for (b, want) in [
            (&b"4007"[..], Some(4007)),
            (b"0", Some(0)),
            (b"999999999", Some(999_999_999)),
            (b"4294967295", Some(u32::MAX)),
            (b"4294967296", None),
            (b"00000000012", Some(12)),
            (b"", None),
            (b"12a", None),
            (b"-1", None),
            (b"+1", None),
            (b"99999999999999999999", None),
        ] {
            assert_eq!(pid(b), want, "{}", String::from_utf8_lossy(b));
        }
        // Every pair of bytes, and each in a nine-digit pid: the digits, or nothing.
        let reference = |b: &[u8]| {
            if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(b).ok()?.parse::<u32>().ok()
        };
        for x in 0..=255u8 {
            for y in 0..=255u8 {
                let two = [x, y];
                assert_eq!(pid(&two), reference(&two), "{two:?}");
                let nine = [b'1', x, b'2', b'3', b'4', y, b'5', b'6', b'7'];
                assert_eq!(pid(&nine), reference(&nine), "{nine:?}");
            }
        }
    }

    #[test]
    fn timezone_applies_to_naive_stamps() {
        let mut c = ctx();
        c.tz = parse_tz("+02:00").unwrap().into();
        let h = parse_header(b"Nov  4 18:12:34 mx postfix/smtpd[1]: x", &c, 0).unwrap();
        assert_eq!(h.ts, Some(ts(2025, 11, 4, 16, 12, 34)));
        assert!(parse_tz("Europe/Berlin").is_err());
        assert_eq!(
            parse_tz("-0530").unwrap().local_minus_utc(),
            -(5 * 3600 + 1800)
        );
    }

    #[test]
    fn rejects_non_log_lines() {
        for l in [
            &b"hello world"[..],
            b"",
            b"Nov 44 18:12:34 mx postfix/smtpd[1]: x",
            b"2025-13-04T18:12:34Z mx p[1]: x",
            b"-- Logs begin at Tue 2025-11-04 --",
            b"Nov  4 18:12:34",
            b"2025-02-30T00:00:00Z mx p[1]: x",
        ] {
            assert!(
                parse_header(l, &ctx(), 0).is_none(),
                "{:?}",
                String::from_utf8_lossy(l)
            );
        }
    }
}
