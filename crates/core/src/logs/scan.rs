//! Byte-scanning helpers shared by the line parsers. Owns nothing but slicing; never panics
//! (every index is checked), and allocates only the texts it hands out ([`lossy`],
//! [`LineText::owned`] past the inline length).

use super::EventText;
use memchr::memmem;

/// Haystacks shorter than this are searched by first-byte scan: building memchr's SIMD
/// searcher costs more than it saves on a log line.
const SHORT: usize = 512;

/// Position of `needle` in `hay`.
#[inline]
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    if hay.len() >= SHORT {
        return memmem::find(hay, needle);
    }
    let last_start = hay.len().checked_sub(needle.len())?;
    memchr::memchr_iter(first, &hay[..=last_start]).find(|&i| hay[i + 1..].starts_with(rest))
}

/// Position of the last `needle` in `hay`.
#[inline]
pub(crate) fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    if hay.len() >= SHORT {
        return memmem::rfind(hay, needle);
    }
    let last_start = hay.len().checked_sub(needle.len())?;
    memchr::memrchr_iter(first, &hay[..=last_start]).find(|&i| hay[i + 1..].starts_with(rest))
}

#[inline]
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Bytes a byte search looks at one by one before it calls memchr: the bytes looked for in a
/// header or a field are mostly within them, and memchr's call and set-up cost ~40
/// instructions however short the haystack.
const HEAD: usize = 16;

/// Position of the first `byte` in `hay`.
#[inline]
pub(crate) fn byte_pos(hay: &[u8], byte: u8) -> Option<usize> {
    let head = hay.len().min(HEAD);
    match hay[..head].iter().position(|&c| c == byte) {
        Some(i) => Some(i),
        None => memchr::memchr(byte, &hay[head..]).map(|i| i + head),
    }
}

/// Whether `hay` holds `byte`: for short texts (a program token), looked at in blocks of 16
/// without stopping inside one, which the compiler turns into vector compares.
#[inline]
pub(crate) fn has_byte(hay: &[u8], byte: u8) -> bool {
    if hay.len() > 64 {
        return memchr::memchr(byte, hay).is_some();
    }
    let (blocks, rest) = hay.as_chunks::<16>();
    let any = |block: &[u8; 16]| block.iter().fold(false, |any, &c| any | (c == byte));
    if blocks.iter().any(any) {
        return true;
    }
    rest.iter().fold(false, |any, &c| any | (c == byte))
}

/// `hay` starts with `prefix`. The first bytes are compared before the rest: most candidates
/// differ there, and comparing the rest is a call.
#[inline]
pub(crate) fn starts_with(hay: &[u8], prefix: &[u8]) -> bool {
    match (prefix.first(), hay.first()) {
        (None, _) => true,
        (Some(p), Some(h)) => p == h && hay.starts_with(prefix),
        (Some(_), None) => false,
    }
}

#[inline]
pub(crate) fn strip_prefix<'a>(hay: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    starts_with(hay, prefix).then(|| &hay[prefix.len()..])
}

/// Bytes as an owned `String`, replacing invalid UTF-8 (logs are not guaranteed to be UTF-8).
pub(crate) fn lossy(b: &[u8]) -> String {
    // std's validation has an ASCII fast path the lossy iterator lacks; logs are mostly ASCII.
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// A line as the grammars see it: its bytes, and its text when the whole line is valid UTF-8
/// (checked once, here). The parts a record keeps are cut from that text instead of being
/// checked again; the parts of an invalid line are converted lossily, each on its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineText<'a> {
    bytes: &'a [u8],
    text: Option<&'a str>,
}

impl<'a> LineText<'a> {
    pub(crate) fn check(bytes: &'a [u8]) -> Self {
        LineText {
            bytes,
            // The same answer as `std::str::from_utf8`, found with vector instructions.
            text: simdutf8::basic::from_utf8(bytes).ok(),
        }
    }

    /// A line known to be valid UTF-8.
    pub(crate) fn known(text: &'a str) -> Self {
        LineText {
            bytes: text.as_bytes(),
            text: Some(text),
        }
    }

    pub(crate) fn bytes(self) -> &'a [u8] {
        self.bytes
    }

    /// The line from byte `at` on, its text too when the line's was valid there.
    pub(crate) fn from(self, at: usize) -> Self {
        match self.text.and_then(|t| t.get(at..)) {
            Some(t) => LineText::known(t),
            None => LineText::check(self.bytes.get(at..).unwrap_or_default()),
        }
    }

    /// The whole line, when it is valid UTF-8.
    pub(crate) fn text(self) -> Option<&'a str> {
        self.text
    }

    /// `part` as an event's text, as [`lossy`] makes it. A part of this line is cut from its
    /// text when the line is valid and the part starts and ends on character boundaries.
    pub(crate) fn owned(self, part: &[u8]) -> EventText {
        match self.text.zip(self.range_of(part)) {
            Some((text, range)) => match text.get(range) {
                Some(s) => EventText::from(s),
                None => lossy(part).into(),
            },
            None => lossy(part).into(),
        }
    }

    /// Where `part` lies in the line, when it is a slice of it.
    fn range_of(self, part: &[u8]) -> Option<std::ops::Range<usize>> {
        range_in(self.bytes, part)
    }
}

/// Where `part` lies in `hay`, when it is a slice of it (compared by address: the grammars
/// hand back slices of the line they were given).
fn range_in(hay: &[u8], part: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = part.as_ptr().addr().checked_sub(hay.as_ptr().addr())?;
    let end = start.checked_add(part.len())?;
    (end <= hay.len()).then_some(start..end)
}

/// The bytes of `hay` after `part`, a sub-slice of it (empty when `part` is not one).
pub(crate) fn after<'a>(hay: &'a [u8], part: &[u8]) -> &'a [u8] {
    range_in(hay, part).map_or(&[], |r| &hay[r.end..])
}

pub(crate) fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Split at the first occurrence of `sep`: (before, after).
pub(crate) fn split_once<'a>(hay: &'a [u8], sep: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let i = find(hay, sep)?;
    Some((&hay[..i], &hay[i + sep.len()..]))
}

/// The value of `key=` in a Postfix-style field list (`a=<x>, b=y c=z`). The key must start at a
/// field boundary (line start, space or comma) so `to=` does not match inside `orig_to=`.
/// Values in angle brackets are returned without the brackets (and may contain spaces and
/// commas); other values end at `,` or space.
pub(crate) fn field<'a>(hay: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut from = 0;
    while from < hay.len() {
        let rel = find(&hay[from..], key)?;
        let at = from + rel;
        let boundary = at == 0 || is_field_boundary(hay[at - 1]);
        if boundary {
            return Some(value_at(&hay[at + key.len()..]));
        }
        from = at + 1;
    }
    None
}

/// What [`field`] finds for each of `keys`, in one pass over `hay` instead of a search per key.
/// Each key must end with `=` (so none is the start of another).
pub(crate) fn fields<'a, const N: usize>(hay: &'a [u8], keys: [&[u8]; N]) -> [Option<&'a [u8]>; N] {
    let mut found = [None; N];
    let mut left = N;
    // The keys' first bytes: a field whose first byte is none of them is passed over without
    // comparing any key (most boundaries, since `, ` makes two of each).
    let mut firsts = [false; 256];
    for k in &keys {
        debug_assert!(k.first().is_some_and(|&c| !is_field_boundary(c)));
        if let Some(&c) = k.first() {
            firsts[usize::from(c)] = true;
        }
    }
    let mut at = 0;
    // Every field boundary, in order: the line start and each byte after a separator.
    while at < hay.len() && left > 0 {
        let rest = &hay[at..];
        if firsts[usize::from(rest[0])] {
            let slot = keys
                .iter()
                .zip(found.iter_mut())
                .find(|(k, f)| f.is_none() && rest.starts_with(k));
            if let Some((k, f)) = slot {
                *f = Some(value_at(&rest[k.len()..]));
                left -= 1;
            }
        }
        match rest.iter().position(|&c| is_field_boundary(c)) {
            Some(i) => at += i + 1,
            None => break,
        }
    }
    found
}

fn is_field_boundary(c: u8) -> bool {
    matches!(c, b' ' | b',' | b'\t')
}

/// A field's value starting at `rest`: inside angle brackets (without them), else up to `,`,
/// space or `;`. An opening bracket never closed (a cut or hand-edited line) ends like a bare
/// value, not at the line's end.
fn value_at(rest: &[u8]) -> &[u8] {
    if let Some(inner) = rest.strip_prefix(b"<") {
        if let Some(end) = memchr::memchr(b'>', inner) {
            return &inner[..end];
        }
        return bare_value(inner);
    }
    bare_value(rest)
}

fn bare_value(rest: &[u8]) -> &[u8] {
    let end = rest
        .iter()
        .position(|&c| c == b',' || c == b' ' || c == b';')
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Parse a decimal like `0.52` / `12` / `1.2e-3`-free Postfix delay into milliseconds, rounded.
pub(crate) fn seconds_to_ms(b: &[u8]) -> Option<u64> {
    if let Some(ms) = whole_ms(b) {
        return Some(ms);
    }
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some((v * 1000.0).round() as u64)
}

/// Postfix's usual delays (`0.52`, `31`: at most three decimals) in integers: a whole number of
/// milliseconds, which the floating-point parse also rounds to (its error is far below half a
/// millisecond at these sizes). `None`: another form, left to that parse. One pass over the
/// bytes: a delivery line has five of these.
fn whole_ms(b: &[u8]) -> Option<u64> {
    let mut digits: u64 = 0;
    let mut int_len = 0;
    // Digits after the dot, once there is one.
    let mut frac_len: Option<usize> = None;
    for &c in b {
        match (c, &mut frac_len) {
            (b'0'..=b'9', None) if int_len < 12 => int_len += 1,
            (b'0'..=b'9', Some(f)) if *f < 3 => *f += 1,
            (b'.', None) => {
                frac_len = Some(0);
                continue;
            }
            _ => return None,
        }
        // At most 15 digits: no overflow.
        digits = digits * 10 + u64::from(c - b'0');
    }
    if int_len == 0 {
        return None;
    }
    Some(digits * [1000, 100, 10, 1][frac_len.unwrap_or(0)])
}

/// Parse an unsigned decimal integer of at most 19 digits.
pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &c| {
        acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// Longest queue id: a short id is 5 hex digits of microseconds and the queue file's inode
/// number in hex, up to 21 with a 64-bit inode (XFS, btrfs); a long id is a little longer
/// (seconds and microseconds, `z`, the inode in base 51: up to 23).
const QUEUE_ID_MAX: usize = 24;

/// A Postfix queue id: short ids are upper-case hex; long ids (`enable_long_queue_ids`) are
/// alphanumerics from an alphabet without vowels. Requiring one of the two keeps words such as
/// `statistics:` from passing for queue ids.
pub(crate) fn is_queue_id(b: &[u8]) -> bool {
    if !(5..=QUEUE_ID_MAX).contains(&b.len()) {
        return false;
    }
    // Every line of a log asks this: one table look-up per byte, no branch.
    let (mut all, mut any) = (u8::MAX, 0);
    for &c in b {
        let k = BYTE_CLASS[usize::from(c)];
        all &= k;
        any |= k;
    }
    all & ALNUM != 0 && (all & HEX != 0 || any & VOWEL == 0)
}

/// Bytes up to the first that is not an ASCII letter or digit.
pub(crate) fn alnum_len(b: &[u8]) -> usize {
    b.iter()
        .position(|&c| BYTE_CLASS[usize::from(c)] & ALNUM == 0)
        .unwrap_or(b.len())
}

const ALNUM: u8 = 1;
/// A digit or an upper-case hex letter (short queue ids).
const HEX: u8 = 2;
/// A vowel, either case (long queue ids have none).
const VOWEL: u8 = 4;

/// [`ALNUM`], [`HEX`] and [`VOWEL`] of each byte.
static BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let mut k = 0;
        if b.is_ascii_alphanumeric() {
            k |= ALNUM;
        }
        if matches!(b, b'0'..=b'9' | b'A'..=b'F') {
            k |= HEX;
        }
        if matches!(b.to_ascii_lowercase(), b'a' | b'e' | b'i' | b'o' | b'u') {
            k |= VOWEL;
        }
        t[c] = k;
        c += 1;
    }
    t
};

/// Leading token of alphanumerics (for `queued as XYZ` and session ids).
pub(crate) fn alnum_token(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .position(|c| {
            !(c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_' || *c == b'/' || *c == b'+')
        })
        .unwrap_or(b.len());
    &b[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_part_of_the_line() {
        let line = b"from=<a@b>, status=expired";
        assert_eq!(after(line, &line[6..9]), b">, status=expired");
        assert_eq!(after(line, &line[line.len()..]), b"");
        // Not a part of it: nothing.
        let other = b"a@b".to_vec();
        assert_eq!(after(line, &other), b"");
    }

    /// The floating-point reading every delay had before the integer one.
    fn float_ms(b: &[u8]) -> Option<u64> {
        let s = std::str::from_utf8(b).ok()?;
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            return None;
        }
        let v: f64 = s.parse().ok()?;
        Some((v * 1000.0).round() as u64)
    }

    #[test]
    fn whole_milliseconds_agree_with_the_floating_point_reading() {
        let mut cases: Vec<String> = [
            "0",
            "1.",
            ".5",
            ".",
            "",
            "00.100",
            "0.07",
            "0.005",
            "0.0005",
            "1.2345",
            "12.3",
            "999999999999.999",
            "9999999999999",
            "1..2",
            "1.2.3",
            "x",
            "1.x",
            "-1",
            "+1",
            "0.1000",
            "4294967296.5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for int in [0u64, 1, 7, 31, 99, 432_001, 123_456_789_012] {
            for frac in [
                "", "0", "5", "9", "07", "52", "99", "001", "005", "125", "999",
            ] {
                cases.push(if frac.is_empty() {
                    int.to_string()
                } else {
                    format!("{int}.{frac}")
                });
            }
        }
        for c in &cases {
            assert_eq!(seconds_to_ms(c.as_bytes()), float_ms(c.as_bytes()), "{c:?}");
        }
        // Postfix's own forms take the integer path.
        for c in [
            "0",
            "1.",
            "0.52",
            "31",
            "00.100",
            "999999999999.999",
            "0.005",
        ] {
            assert_eq!(whole_ms(c.as_bytes()), float_ms(c.as_bytes()), "{c:?}");
        }
        for c in [
            ".5",
            "",
            ".",
            "1.2345",
            "9999999999999",
            "1..2",
            "1.x",
            "+1",
        ] {
            assert_eq!(whole_ms(c.as_bytes()), None, "{c:?}");
        }
    }

    #[test]
    fn parts_of_a_line_come_out_as_lossy_makes_them() {
        let valid = "to=<é@x.test>, relay=mx€".as_bytes();
        let invalid = &b"to=<\xff@x.test>, relay=mx\xc3"[..];
        for line in [valid, invalid] {
            let t = LineText::check(line);
            assert_eq!(t.text().is_some(), line == valid);
            // Every part, including those cutting a character in two.
            for a in 0..=line.len() {
                for b in a..=line.len() {
                    assert_eq!(t.owned(&line[a..b]), lossy(&line[a..b]), "{a}..{b}");
                }
            }
            // Bytes that are not this line's are converted on their own.
            let copy = line.to_vec();
            assert_eq!(t.owned(&copy[3..9]), lossy(&copy[3..9]));
            assert_eq!(t.owned(b"\xffz"), "\u{fffd}z");
        }
    }

    #[test]
    fn byte_searches_agree_with_a_plain_scan() {
        // Every length around the head and the blocks, the byte at every place or nowhere.
        for len in 0..150 {
            for at in (0..len).map(Some).chain([None]) {
                let mut hay = vec![b'a'; len];
                if let Some(i) = at {
                    hay[i] = b' ';
                    // A second one after it: the first is the one found.
                    if i + 5 < len {
                        hay[i + 5] = b' ';
                    }
                }
                assert_eq!(byte_pos(&hay, b' '), at, "{len} {at:?}");
                assert_eq!(has_byte(&hay, b' '), at.is_some(), "{len} {at:?}");
            }
        }
        assert!(contains(b"status=sent (250 ok)", b"250"));
        assert!(!contains(b"status=sent", b"250"));
        assert!(contains(&[b'x'; 600], b"xx"));
    }

    #[test]
    fn field_respects_boundaries() {
        let l = b"to=<a@x>, orig_to=<b@x>, relay=none, delay=0.5, dsn=4.4.1, status=deferred (x)";
        assert_eq!(field(l, b"to="), Some(&b"a@x"[..]));
        assert_eq!(field(l, b"orig_to="), Some(&b"b@x"[..]));
        assert_eq!(field(l, b"relay="), Some(&b"none"[..]));
        assert_eq!(field(l, b"dsn="), Some(&b"4.4.1"[..]));
        let l2 = b"orig_to=<b@x>, to=<a@x>";
        assert_eq!(field(l2, b"to="), Some(&b"a@x"[..]));
        assert_eq!(field(b"x", b"to="), None);
        assert_eq!(field(b"to=", b"to="), Some(&b""[..]));
        assert_eq!(
            field(b"to=<unterminated", b"to="),
            Some(&b"unterminated"[..])
        );
    }

    /// One pass finds what a search per key finds, on well-formed lists and on odd ones: keys
    /// inside other keys or values, repeated keys, brackets left open, separators in a row.
    #[test]
    fn fields_in_one_pass_agree_with_field() {
        // Not the order of a line's fields: the pass must not depend on it.
        let keys: [&[u8]; 8] = [
            b"dsn=",
            b"to=",
            b"helo=",
            b"relay=",
            b"from=",
            b"delays=",
            b"orig_to=",
            b"delay=",
        ];
        let lists: &[&[u8]] = &[
            b"; from=<a@x> to=<b@x> proto=ESMTP helo=<h.x>: 5.7.1 text to=<c@x>",
            b"to=<a@x>, orig_to=<b@x>, relay=none, delay=0.5, delays=0/0/0/0.5, dsn=4.4.1, ",
            b"orig_to=<b@x>, to=<a@x>",
            b"to=<a relay=x>, relay=r, delay=1",
            b"xto=<no>, to=<yes>, delay=2, delay=3",
            b"to=<unterminated, relay=r",
            b"to=",
            b"",
            b",, \t to=<a>;delay=1 dsn=5.0.0;relay=x",
            b"delays=1/2/3/4, delay=9",
            b"to=a,b relay=[1.2.3.4]:25,delay=0.01",
            "to=<\u{e9}@x>, relay=\u{e9}".as_bytes(),
        ];
        for l in lists {
            let one = fields(l, keys);
            for (k, got) in keys.iter().zip(one) {
                assert_eq!(got, field(l, k), "{} in {}", lossy(k), lossy(l));
            }
        }
        let [to, relay] = fields(b"relay=r, to=<a@x>", [b"to=", b"relay="]);
        assert_eq!((to, relay), (Some(&b"a@x"[..]), Some(&b"r"[..])));
        // A bracket never closed ends the value where a bare one would.
        let [to, relay] = fields(b"to=<a@x, relay=r, delay=1", [b"to=", b"relay="]);
        assert_eq!((to, relay), (Some(&b"a@x"[..]), Some(&b"r"[..])));
    }

    /// The queue id rules written out byte by byte, as they were before the table.
    fn queue_id_by_rules(b: &[u8]) -> bool {
        (5..=24).contains(&b.len())
            && b.iter().all(u8::is_ascii_alphanumeric)
            && (b.iter().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F'))
                || !b.iter().any(|c| b"aeiouAEIOU".contains(c)))
    }

    #[test]
    fn queue_ids_by_table_and_by_rules_agree() {
        assert!(is_queue_id(b"9F1C2A0B4D"));
        assert!(is_queue_id(b"4dJHx72Wm3z1"));
        assert!(!is_queue_id(b"statistics"));
        assert!(
            !is_queue_id(b"9f1c2a0b4d"),
            "lower-case hex has no long-id form"
        );
        let bases: [&[u8]; 4] = [
            b"9F1C2A0B4D",
            b"4dJHx72Wm3z1",
            b"ABCDE",
            b"bcdfghjklmnpqrstvwxzbcdf",
        ];
        for base in bases {
            for len in 4..=base.len() {
                for at in 0..len {
                    for c in 0..=255u8 {
                        let mut id = base[..len].to_vec();
                        id[at] = c;
                        assert_eq!(is_queue_id(&id), queue_id_by_rules(&id), "{id:?}");
                        let n = id.iter().position(|c| !c.is_ascii_alphanumeric());
                        assert_eq!(alnum_len(&id), n.unwrap_or(id.len()), "{id:?}");
                    }
                }
            }
        }
        // A short id with a 64-bit inode number (21 bytes) passes; 25 bytes are too many.
        assert!(is_queue_id(b"A1B2C3D4E5F60718293A4"));
        assert!(!is_queue_id(b"BCDFGHJKLMNPQRSTVWXZBCDFG"), "25 bytes");
    }

    #[test]
    fn numbers() {
        assert_eq!(seconds_to_ms(b"0.52"), Some(520));
        assert_eq!(seconds_to_ms(b"0"), Some(0));
        assert_eq!(seconds_to_ms(b"12"), Some(12000));
        assert_eq!(seconds_to_ms(b"-1"), None);
        assert_eq!(seconds_to_ms(b"1..2"), None);
        assert_eq!(seconds_to_ms(b"432001"), Some(432_001_000));
        assert_eq!(seconds_to_ms(b"0.0005"), Some(1));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"1234"), Some(1234));
        assert_eq!(find(b"abcabc", b"ca"), Some(2));
        assert_eq!(rfind(b"abcabc", b"ab"), Some(3));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"abc", b""), None);
        let long = [b"x".repeat(600), b"needle".to_vec()].concat();
        assert_eq!(find(&long, b"needle"), Some(600));
        assert_eq!(rfind(&long, b"x"), Some(599));
    }
}
