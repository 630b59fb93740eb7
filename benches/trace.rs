//! Criterion benchmark for the Received trace engine: Received headers traced per second over
//! the golden corpus (`fixtures/received/*.eml`, real-world header shapes), beside a baseline of
//! mail-parser parsing the same header blocks alone (so the cost of the trace on top of parsing is
//! measured side by side in one run), plus the standalone date parser.
//!
//! Run: `cargo bench --bench trace` (short measurement windows keep it cheap; see
//! docs/benchmarks/trace.md for figures).
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowtest::core::trace::{parse_received_date, trace_message, TraceOptions};
use mail_parser::{HeaderName, MessageParser};

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/received");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures/received")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("read fixture"))
        .collect()
}

/// Date texts as they appear after the `;` (or without one) in the corpus's headers.
const DATES: &[&str] = &[
    "Tue,  4 Nov 2025 18:12:31 +0000 (UTC)",
    "Tue, 04 Nov 2025 10:12:32 -0800 (PST)",
    "Tue, 4 Nov 2025\r\n 18:12:35 +0000",
    "Tue, 04 Nov 2025 18:12:38.338 +0000 (UTC)",
    "2025-11-04 18:12:38.520394051 +0000 UTC m=+2418763.124917233",
    "4 Nov 2025 18:12:34 -0000",
    "Tue, 4 Nov 2025 13:12:30 -0500 (EST)",
    "Thu, 4 Nov 99 13:12:35 -0500 (EST)",
    "Tue, 4 Nov 2025 19:12 +0100",
    "Tue, 4 Nov 2025 10:12:34 PST",
    "Tue, 31 Feb 2025 18:12:49 +0000",
    "Tuesday the fourth of never",
];

fn bench(c: &mut Criterion) {
    let corpus = corpus();
    let opts = TraceOptions {
        now: "2026-11-28T00:00:00Z".parse().expect("time"),
        fetched_at: None,
        stages: &[],
    };
    let received: u64 = corpus
        .iter()
        .map(|m| trace_message(m, &opts).map_or(0, |t| t.hops.len() as u64))
        .sum();
    assert!(
        received > 100,
        "the corpus should hold many Received headers"
    );

    let mut g = c.benchmark_group("received_headers");
    g.throughput(Throughput::Elements(received))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("trace_message (fixture corpus)", |b| {
        b.iter(|| {
            for m in &corpus {
                let _ = black_box(trace_message(black_box(m), &opts));
            }
        })
    });
    g.bench_function("baseline: mail-parser parse_headers only", |b| {
        b.iter(|| {
            for m in &corpus {
                let n = MessageParser::new()
                    .parse_headers(black_box(m))
                    .map_or(0, |msg| {
                        msg.headers()
                            .iter()
                            .filter(|h| h.name == HeaderName::Received)
                            .count()
                    });
                black_box(n);
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("received_dates");
    g.throughput(Throughput::Elements(DATES.len() as u64))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("parse_received_date", |b| {
        b.iter(|| {
            for d in DATES {
                black_box(parse_received_date(black_box(d)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
