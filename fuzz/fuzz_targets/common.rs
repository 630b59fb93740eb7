//! Shared by the log-line fuzz targets: the parse contexts every line is tried under and the
//! checks every parse must pass. Included with `#[path]`; not a target itself.
use flowtest::core::logs::{
    parse_line, Focus, LineFormat, LineParser, LogRecord, LogZone, ParseContext, Parsed,
};

/// Contexts that change how a line is read: zone (fixed or named), year inference with and
/// without a reference.
pub fn contexts() -> Vec<ParseContext> {
    let mut plain = ParseContext::new("ec2", 2025);
    plain.tz = chrono::FixedOffset::east_opt(0).expect("zero").into();
    let mut east = ParseContext::new("dell", 2024);
    east.tz = chrono::FixedOffset::east_opt(14 * 3600).expect("+14:00").into();
    let mut referenced = ParseContext::new("dovecot", 1970);
    referenced.tz = chrono::FixedOffset::west_opt(12 * 3600).expect("-12:00").into();
    referenced.reference = chrono::DateTime::from_timestamp(1_767_225_600, 0);
    // A named zone: its folds (the hour shown twice) and gaps.
    let mut named = ParseContext::new("mx", 2025);
    named.tz = LogZone::parse("Europe/Berlin").expect("a zone of the IANA database");
    vec![plain, east, referenced, named]
}

fn check_record(r: &LogRecord, line: &[u8]) {
    // The raw text is the line itself (lossy), without its end-of-line bytes; a journal entry's
    // is the line it stands for.
    let trimmed = {
        let mut l = line;
        while let Some((&last, rest)) = l.split_last() {
            if last == b'\n' || last == b'\r' {
                l = rest;
            } else {
                break;
            }
        }
        l
    };
    if matches!(r.format, LineFormat::JournalJson | LineFormat::DockerJson) {
        // A journal or Docker JSON entry's text is the line it stands for: one line, never
        // empty.
        assert!(!r.raw.is_empty() && !r.raw.contains(['\n', '\r']));
    } else {
        assert!(
            is_line_or_grep_inner(&r.raw, trimmed),
            "raw {:?} is neither the line {:?} nor a line grep prefixed",
            r.raw,
            String::from_utf8_lossy(trimmed)
        );
    }
    // The accessors never panic and agree with the event.
    let _ = r.event.queue_id();
    if let Some(m) = r.event.map_lookup() {
        assert!(!m.map.is_empty() && !m.map.contains(' '));
    }
}

/// Whether `raw` is `line` (lossy), or the line inside it after a prefix `grep` prints (a file
/// name and/or line number, space-free, ending with `:` or `-`, within 1 KiB).
fn is_line_or_grep_inner(raw: &str, line: &[u8]) -> bool {
    if raw == String::from_utf8_lossy(line) {
        return true;
    }
    let token = line
        .iter()
        .position(|&c| c == b' ')
        .unwrap_or(line.len())
        .min(1024);
    (1..=token).any(|at| {
        matches!(line[at - 1], b':' | b'-') && raw == String::from_utf8_lossy(&line[at..])
    })
}

/// The first byte picks one of `prefixes`; every line of the rest is put behind it. Lets a
/// target reach one grammar instead of dying in the line prefix. `None` for empty input.
pub fn behind_prefix(prefixes: &[&str], data: &[u8]) -> Option<Vec<u8>> {
    let (&pick, msg) = data.split_first()?;
    let prefix = prefixes[usize::from(pick) % prefixes.len()];
    let mut text = Vec::with_capacity(msg.len() * 2 + 96);
    for line in msg.split(|&c| c == b'\n') {
        text.extend_from_slice(prefix.as_bytes());
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    Some(text)
}

/// Parse `data` line by line through every entry point and check the counters add up.
pub fn parse_everywhere(data: &[u8]) {
    for ctx in contexts() {
        let mut stateful = LineParser::new(ctx.clone());
        let mut focused = LineParser::new(ctx.clone());
        let mut focus = Focus::message_ids(&["fuzz-1@corp.test", "<weekly@sender.example>"]);
        let mut out = Vec::new();
        let mut lines = 0u64;
        for line in data.split(|&c| c == b'\n') {
            lines += 1;
            if let Some(r) = parse_line(line, &ctx) {
                check_record(&r, line);
            }
            if let Parsed::Record(r) = stateful.parse(line) {
                check_record(&r, line);
            }
            out.clear();
            focused.parse_focused(line, &mut focus, &mut out);
            for r in &out {
                check_record(r, r.raw.as_bytes());
            }
        }
        for p in [&stateful, &focused] {
            let c = p.counts();
            assert_eq!(c.lines, lines);
            assert_eq!(
                c.lines,
                c.parsed + c.other_programs + c.unknown + c.filtered
            );
            assert!(c.invalid_utf8 <= c.lines);
            assert_eq!(c.formats.values().sum::<u64>(), c.parsed);
        }
    }
}
