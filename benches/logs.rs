//! Parse and correlation throughput on realistic log lines (lines per second). Quick by
//! design: `cargo bench --bench logs`. The big-file comparison against `grep -F` is
//! `bench/diagnose_vs_grep.sh` (docs/benchmarks/diagnose.md).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowtest::core::fusion::{Correlator, Limits};
use flowtest::core::logs::{parse_line, Focus, LineParser, ParseContext, Parsed};

/// One realistic message's worth of lines per iteration of `i` (distinct queue ids).
fn corpus(n_msgs: usize) -> Vec<Vec<u8>> {
    let mut v = Vec::with_capacity(n_msgs * 8);
    for i in 0..n_msgs {
        let q = format!("{:010X}", 0x1000_0000u64 + i as u64);
        let n = format!("{:010X}", 0x9000_0000u64 + i as u64);
        let s = 10 + (i / 30) % 50;
        let ts = format!("Nov  4 18:{:02}:{:02}", (i / 1800) % 60, s);
        for l in [
            format!("{ts} mx postfix/smtpd[3301]: connect from smtp.provider.test[198.18.2.2]"),
            format!("{ts} mx postfix/smtpd[3301]: {q}: client=smtp.provider.test[198.18.2.2]"),
            format!("{ts} mx postfix/cleanup[3304]: {q}: message-id=<m{i}.x7f3a@mail.provider.test>"),
            format!("{ts} mx postfix/qmgr[1201]: {q}: from=<carol{i}@provider.test>, size=4410, nrcpt=1 (queue active)"),
            format!("{ts} mx postfix/smtpd[3301]: disconnect from smtp.provider.test[198.18.2.2] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"),
            format!("{ts} mx postfix/smtp[3306]: {q}: to=<bob@corp.test>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.12, delays=0.02/0/0.04/0.06, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {n})"),
            format!("{ts} mx postfix/qmgr[1201]: {q}: removed"),
        ] {
            v.push(l.into_bytes());
        }
        if i % 25 == 0 {
            v.push(format!("{ts} mx postfix/smtpd[3402]: NOQUEUE: reject: RCPT from unknown[198.18.1.1]: 554 5.7.1 <info@other.test>: Relay access denied; from=<x{i}@provider.test> to=<info@other.test> proto=ESMTP helo=<flowtest>").into_bytes());
        }
        if i % 10 == 0 {
            v.push(format!("2025-11-04T18:12:31.{:06} lmtp(alice@corp.test)<4502><mKq8JfPzCWmhEQAAzH4ZCA>: Info: msgid=<m{i}.x7f3a@mail.provider.test>: saved mail to INBOX delivery_time=3ms", i % 1_000_000).into_bytes());
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    let lines = corpus(2_000);
    let ctx = ParseContext::new("ec2", 2025);
    let mut g = c.benchmark_group("logs");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse_line (stateless, builds every record)", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(parse_line(black_box(l), &ctx));
            }
        })
    });
    g.bench_function("LineParser::parse (no allocation for info lines)", |b| {
        b.iter(|| {
            let mut p = LineParser::new(ctx.clone());
            for l in &lines {
                black_box(p.parse(black_box(l)));
            }
        })
    });
    g.bench_function("LineParser::parse_focused (message-id prefilter)", |b| {
        b.iter(|| {
            let mut p = LineParser::new(ctx.clone());
            let mut f = Focus::message_ids(&["m1000.x7f3a@mail.provider.test"]);
            let mut out = Vec::new();
            for l in &lines {
                p.parse_focused(black_box(l), &mut f, &mut out);
            }
            black_box(out.len())
        })
    });
    g.bench_function("parse + correlate (Correlator::push)", |b| {
        b.iter(|| {
            let mut p = LineParser::new(ctx.clone());
            let mut corr = Correlator::new(Limits::default());
            for l in &lines {
                if let Parsed::Record(r) = p.parse(l) {
                    corr.push(*r);
                }
            }
            black_box(corr.finish().len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
