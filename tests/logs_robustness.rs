//! Robustness of the log pipeline against hostile input: deterministic (fixed-seed) mutations
//! of real fixture lines plus random bytes go through the parser, the correlator and the whole
//! `diagnose` analysis. Nothing may panic, counts must add up, and the correlator must stay
//! within its bounds.

use std::fs;
use std::io::Cursor;
use std::path::Path;

use chrono::TimeDelta;
use flowtest::core::diagnose::{analyze, Format, Input, Options};
use flowtest::core::fusion::{Correlator, Limits};
use flowtest::core::logs::{parse_line, LineFormat, LineParser, ParseContext, Parsed};

/// xorshift64*: tiny, deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/logs")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        let mut paths: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "log") {
                for l in fs::read(&p).unwrap().split(|&c| c == b'\n') {
                    if l.len() < 4096 {
                        out.push(l.to_vec());
                    }
                }
            }
        }
    }
    assert!(out.len() > 100, "fixture corpus too small: {}", out.len());
    out
}

const TOKENS: &[&[u8]] = &[
    b": ",
    b"<",
    b">",
    b"(",
    b")",
    b"[",
    b"]",
    b"=",
    b", ",
    b"status=",
    b"queued as ",
    b"NOQUEUE: reject: ",
    b"msgid=",
    b"delays=",
    b"\xff\xfe",
    b"\x00",
    b"\r",
    b"Nov  4 ",
    b"2025-11-04T18:12:34.123456789Z ",
    b"lmtp(",
    b"postfix/",
    b"9999999999999999999999",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut l = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(4) {
        match rng.below(8) {
            0 => {
                let n = rng.below(l.len() + 1);
                l.truncate(n);
            }
            1 if !l.is_empty() => {
                let i = rng.below(l.len());
                l[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(l.len() + 1);
                let t = TOKENS[rng.below(TOKENS.len())];
                l.splice(i..i, t.iter().copied());
            }
            3 => {
                let other = &corpus[rng.below(corpus.len())];
                let i = rng.below(l.len() + 1);
                let j = rng.below(other.len() + 1);
                l.truncate(i);
                l.extend_from_slice(&other[j..]);
            }
            4 if !l.is_empty() => {
                let i = rng.below(l.len());
                let j = i + rng.below(l.len() - i);
                l.drain(i..j);
            }
            5 => {
                l = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
            }
            6 => {
                // Digits changed: impossible dates, huge numbers.
                for c in l.iter_mut() {
                    if c.is_ascii_digit() && rng.below(5) == 0 {
                        *c = b'0' + rng.below(10) as u8;
                    }
                }
            }
            _ => {}
        }
    }
    l.retain(|&c| c != b'\n');
    l
}

/// A record's text is its line (lossy, without its end-of-line bytes), or the line inside it
/// when `grep` printed a file name or line number before it (space-free, ending with `:` or
/// `-`, within 1 KiB). A journal or Docker entry's is the line it stands for.
fn is_line_or_grep_inner(raw: &str, line: &[u8]) -> bool {
    let end = line.len() - line.iter().rev().take_while(|&&c| c == b'\r').count();
    let line = &line[..end];
    if raw == String::from_utf8_lossy(line) {
        return true;
    }
    let token = line
        .iter()
        .position(|&c| c == b' ')
        .unwrap_or(line.len())
        .min(1024);
    let grep_cut = (1..=token).any(|at| {
        matches!(line[at - 1], b':' | b'-') && raw == String::from_utf8_lossy(&line[at..])
    });
    // The line after `docker compose logs`' `name | `, or another program's whole line in its
    // message (`...: `); or the line with its localized month in English.
    let lossy = String::from_utf8_lossy(line);
    let before = lossy.strip_suffix(raw);
    let inner = before.is_some_and(|b| b.ends_with("| ") || b.ends_with(": "));
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let english = raw.get(..3).is_some_and(|m| MONTHS.contains(&m))
        && raw.get(3..).is_some_and(|rest| {
            lossy
                .strip_suffix(rest)
                .is_some_and(|name| !name.contains(' '))
        });
    grep_cut || inner || english
}

#[test]
fn mutated_lines_never_panic_and_counts_add_up() {
    let corpus = corpus();
    let mut rng = Rng(0x5EED_F10E_7E57_0001);
    let ctx = ParseContext::new("ec2", 2025);
    let mut parser = LineParser::new(ctx.clone());
    let limits = Limits {
        max_open_chains: 64,
        max_finished: 256,
        max_host_findings: 32,
        settle: TimeDelta::seconds(1),
        grace: TimeDelta::seconds(2),
        idle_timeout: TimeDelta::seconds(30),
        ..Limits::default()
    };
    let mut corr = Correlator::new(limits);
    let n = 60_000;
    let mut records = 0u64;
    for i in 0..n {
        let line = mutate(&mut rng, &corpus);
        // The stateless entry point must agree with the stateful one on "understood or not".
        let stateless = parse_line(&line, &ctx).is_some();
        let parsed = parser.parse(&line);
        if let Parsed::Record(r) = parsed {
            assert!(
                stateless,
                "stateful parser accepted a line the stateless one rejected"
            );
            assert!(
                matches!(r.format, LineFormat::JournalJson | LineFormat::DockerJson)
                    || is_line_or_grep_inner(&r.raw, &line),
                "record text {:?} of line {:?}",
                r.raw,
                String::from_utf8_lossy(&line)
            );
            corr.push(*r);
            records += 1;
        }
        assert!(
            corr.open_chains() <= limits.max_open_chains + 1,
            "open chains {} over the cap at line {i}",
            corr.open_chains()
        );
        if i % 997 == 0 {
            let _ = corr.take_finished();
            let _ = corr.messages();
        }
    }
    let c = parser.counts();
    assert_eq!(c.lines, n as u64);
    assert_eq!(c.parsed + c.other_programs + c.unknown, c.lines);
    assert!(c.no_layout <= c.unknown && c.no_layout_sample.is_some() == (c.no_layout > 0));
    assert!(
        c.unknown > 0 && c.parsed > 0,
        "mutations should produce both: {c:?}"
    );
    assert!(
        records > 1000,
        "too few records survived mutation: {records}"
    );
    let outcome = corr.finish_all();
    assert!(outcome.host_findings.len() <= limits.max_host_findings);
    for m in &outcome.messages {
        assert!(m.lines.len() <= limits.max_lines);
        for f in &m.findings {
            assert!(f.evidence.len() <= limits.max_evidence);
        }
    }
}

#[test]
fn whole_analysis_survives_binary_and_interleaved_sources() {
    let corpus = corpus();
    let mut rng = Rng(42);
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..5_000 {
        a.extend(mutate(&mut rng, &corpus));
        a.push(b'\n');
        // Source b: raw binary with occasional newlines, and no final newline.
        for _ in 0..rng.below(200) {
            b.push(rng.next() as u8);
        }
    }
    let inputs = vec![
        Input {
            name: "ec2".into(),
            display: "a".into(),
            reader: Box::new(Cursor::new(a)),
            reference: None,
            skipped_bytes: 0,
            hosts_from_lines: false,
        },
        Input {
            name: "dell".into(),
            display: "b".into(),
            reader: Box::new(Cursor::new(b)),
            reference: None,
            skipped_bytes: 0,
            hosts_from_lines: false,
        },
    ];
    for format in [Format::Json, Format::Human] {
        let opts = Options {
            message_id: None,
            rcpt: None,
            since: None,
            until: None,
            year: Some(2025),
            fallback_year: 2025,
            tz: flowtest::core::logs::LogZone::UTC,
            format,
            limits: Limits::default(),
            prefilter: true,
        };
        let inputs: Vec<Input> = inputs
            .iter()
            .map(|i| Input {
                name: i.name.clone(),
                display: i.display.clone(),
                reader: Box::new(Cursor::new(Vec::<u8>::new())),
                reference: None,
                skipped_bytes: 0,
                hosts_from_lines: false,
            })
            .collect();
        let mut out = Vec::new();
        analyze(inputs, &opts, &mut out).unwrap();
        if format == Format::Json {
            let _: serde_json::Value = serde_json::from_slice(&out).unwrap();
        }
    }
    // And the real mutated inputs, JSON output must stay valid JSON.
    let opts = Options {
        message_id: None,
        rcpt: None,
        since: None,
        until: None,
        year: Some(2025),
        fallback_year: 2025,
        tz: flowtest::core::logs::LogZone::UTC,
        format: Format::Json,
        limits: Limits::default(),
        prefilter: true,
    };
    let mut out = Vec::new();
    let summary = analyze(inputs, &opts, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    let sources = v["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    for s in sources {
        let lines = s["lines"].as_u64().unwrap();
        let parsed = s["parsed"].as_u64().unwrap();
        let unknown = s["unknown"].as_u64().unwrap();
        let other = s["other_programs"].as_u64().unwrap();
        assert_eq!(parsed + other + unknown, lines, "{s}");
    }
    assert!(sources[1]["unknown"].as_u64().unwrap() > 0);
    assert_eq!(summary.sources.len(), 2);
}
