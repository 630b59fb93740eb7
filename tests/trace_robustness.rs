//! Deterministic robustness checks for the trace engine, run by plain `cargo test` so CI always
//! exercises them (the cargo-fuzz targets in `fuzz/` explore further but need a nightly-style
//! toolchain). A fixed-seed mutation loop over the golden fixtures plus random bytes: no input may
//! panic, and the trace's own invariants must hold for every input that has headers.
//! Hostile shapes (deep comments, huge headers, thousands of hops) check that work stays bounded.
use std::path::Path;

use chrono::{DateTime, Utc};
use flowtest::core::trace::{
    parse_received_date, render_human, trace_message, HopWarning, Trace, TraceOptions,
};

/// SplitMix64: tiny, deterministic, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Tokens that matter to Received and date parsing; splicing them in reaches deep paths fast.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "\\",
    ";",
    ":",
    ",",
    ".",
    "[",
    "]",
    "<",
    ">",
    "\"",
    "\r\n",
    "\n",
    "\n\t",
    "\r\n ",
    " ",
    "Received: ",
    "from ",
    "by ",
    "with ",
    "id ",
    "for ",
    "via ",
    "IPv6:",
    "helo=",
    "2001:db8::1",
    "192.0.2.1",
    "Tue, ",
    "31 Feb ",
    "4 Nov ",
    "99 ",
    "2025 ",
    "23:59:60 ",
    "18:12",
    ".123456789123",
    " +0000",
    " -2400",
    " EST",
    " Z",
    " CET",
    " UTC m=+1.5",
    "2018-03-26 ",
    "\u{0}",
    "\u{ff}",
    "é",
    "\u{FFFD}",
    "9999999999999999999999",
];

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..=rng.below(6) {
        let pos = rng.below(v.len() + 1);
        match rng.below(7) {
            0 => {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                v.splice(pos..pos, t.iter().copied());
            }
            2 => {
                let end = (pos + rng.below(40)).min(v.len());
                v.drain(pos..end);
            }
            3 => {
                let end = (pos + rng.below(200)).min(v.len());
                let chunk = v[pos..end].to_vec();
                v.splice(pos..pos, chunk);
            }
            4 => v.truncate(pos),
            5 => {
                let b = (rng.next() & 0xff) as u8;
                v.insert(pos, b);
            }
            _ => {
                let i = rng.below(v.len().max(1));
                if let Some(b) = v.get_mut(i) {
                    *b = b"0123456789:;() \n"[rng.below(16)];
                }
            }
        }
    }
    v
}

fn now() -> DateTime<Utc> {
    "2026-11-28T00:00:00Z".parse().expect("time")
}

/// Invariants every successful trace must satisfy.
fn check(t: &Trace) {
    let mut timed_seen = 0;
    for hop in &t.hops {
        match hop.timestamp {
            None => {
                // Exactly one of the two: no date at all, or text that is no date.
                let no_date = hop.warnings.contains(&HopWarning::NoDate);
                let unreadable = hop.warnings.contains(&HopWarning::UnreadableDate);
                assert!(no_date != unreadable, "{hop:?}");
                assert_eq!(hop.delay_ms, None);
            }
            Some(_) => {
                assert!(!hop.warnings.contains(&HopWarning::NoDate), "{hop:?}");
                assert!(
                    !hop.warnings.contains(&HopWarning::UnreadableDate),
                    "{hop:?}"
                );
                assert_eq!(hop.delay_ms.is_some(), timed_seen > 0, "{hop:?}");
                timed_seen += 1;
            }
        }
        if hop.warnings.contains(&HopWarning::ClockSkew) {
            assert!(hop.delay_ms.is_some_and(|d| d < 0), "{hop:?}");
        }
        let mut sorted = hop.warnings.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, hop.warnings);
        for s in [
            &hop.from,
            &hop.by,
            &hop.id,
            &hop.for_,
            &hop.protocol,
            &hop.from_ip,
        ] {
            assert!(
                s.as_deref() != Some(""),
                "empty string instead of null: {hop:?}"
            );
        }
    }
    assert_eq!(t.total_ms.is_some(), timed_seen >= 2);
    let json = serde_json::to_string(t).expect("serialize");
    // JSON is the contract: reading it back and writing it again must give the same text. (The
    // in-memory value may differ: minute precision prints `:00` and reads back as seconds.)
    let back: Trace = serde_json::from_str(&json).expect("round trip");
    assert_eq!(serde_json::to_string(&back).expect("serialize"), json);
    let _ = render_human(t, 80);
    let _ = render_human(t, 0);
}

fn run(input: &[u8]) {
    let opts = TraceOptions {
        now: now(),
        fetched_at: None,
        stages: &[],
    };
    if let Ok(t) = trace_message(input, &opts) {
        check(&t);
    }
}

#[test]
fn mutated_fixtures_and_random_bytes_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/received");
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| std::fs::read(p).expect("read fixture"))
        .collect();
    corpus.sort();
    assert!(
        corpus.len() >= 30,
        "the corpus should be the golden fixtures"
    );

    let mut rng = Rng(0x5EED_F10E_7E57_0003);
    let mut traced = 0;
    for i in 0..4000 {
        let input = if i % 10 == 9 {
            let len = rng.below(600);
            (0..len).map(|_| (rng.next() & 0xff) as u8).collect()
        } else {
            let base = &corpus[rng.below(corpus.len())];
            mutate(&mut rng, base)
        };
        run(&input);
        traced += 1;
    }
    assert_eq!(traced, 4000);
}

#[test]
fn date_parser_survives_mutated_dates() {
    let seeds = [
        "Tue, 04 Nov 2025 18:12:30.123456789 +0000 (UTC)",
        "2018-03-26 13:35:36.270951634 +0000 UTC m=+266323.963383415",
        "4 Nov 99 18:12 EST",
        "Tuesday, 4 November 2025 08:02:34 +05:30 (x (y) \\) z)",
        "2025-11-04T18:12:30.5Z",
    ];
    let mut rng = Rng(42);
    for i in 0..20_000 {
        let base = seeds[i % seeds.len()].as_bytes();
        let bytes = mutate(&mut rng, base);
        let s = String::from_utf8_lossy(&bytes);
        if let Some(p) = parse_received_date(&s) {
            // Whatever parses must be a real, formattable instant in the accepted range.
            let y = p.utc.format("%Y").to_string();
            let y: i32 = y.parse().expect("year");
            assert!((1899..=10_000).contains(&y), "{s:?} -> {y}");
            assert!(p.offset_seconds.abs() <= 18 * 3600);
        }
    }
}

#[test]
fn hostile_shapes_stay_bounded() {
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // Deeply nested comment.
    cases.push(
        format!(
            "Received: from a {} by b; 4 Nov 2025 18:12:30 +0000\n\n",
            "(".repeat(200_000)
        )
        .into_bytes(),
    );
    cases.push(format!("Received: {}\n\n", ")".repeat(200_000)).into_bytes());
    // A huge header of digit words and no `;`: the date candidates are capped.
    cases.push(format!("Received: from a by b {}\n\n", "4 Nov ".repeat(100_000)).into_bytes());
    // One enormous folded header.
    cases.push(
        format!(
            "Received: from a by b{}; 4 Nov 2025 18:12:30 +0000\n\n",
            "\n\tx".repeat(200_000)
        )
        .into_bytes(),
    );
    // Thousands of hops.
    cases.push(
        "Received: from a by b with SMTP; Tue, 4 Nov 2025 18:12:30 +0000\n"
            .repeat(20_000)
            .into_bytes(),
    );
    // Many header lines that are not headers.
    cases.push("x\n".repeat(200_000).into_bytes());
    for c in &cases {
        run(c);
    }
    // The thousands-of-hops case keeps every hop.
    let t = trace_message(
        &cases[4],
        &TraceOptions {
            now: now(),
            fetched_at: None,
            stages: &[],
        },
    )
    .expect("trace");
    assert_eq!(t.hops.len(), 20_000);
    assert!(t.hops.iter().all(|h| h.warnings.is_empty()));
    // The huge hop's raw text is capped.
    let big = trace_message(
        &cases[3],
        &TraceOptions {
            now: now(),
            fetched_at: None,
            stages: &[],
        },
    )
    .expect("trace");
    assert!(big.hops[0].raw.len() <= 2048 + 3);
    assert!(big.hops[0].timestamp.is_some());
}
