//! Live verdict latency of the log watch (`bench/live_verdict.sh`): a busy Postfix log keeps
//! growing while a probe waits; the probe's bounce line is appended, and the watch is asked for
//! the probe's timeline on the runner's cadence until it says `bounced`. Prints the latency from
//! the append to the verdict, and the process CPU time spent while the busy lines were coming in.
//!
//! usage: live_verdict LOG_PATH BUSY_LINES [TICK_MS=100]
//! (100 ms is the runner's pace, `runner::logs::WATCH_EVERY`; before it was 250 ms.)

use std::io::Write;
use std::time::Duration;

use flowtest::clock;
use flowtest::core::fusion::{MessageStatus, ProbeContext};
use flowtest::edge::logsource::{LogSourceConfig, LogSourceKind};
use flowtest::edge::logwatch::LogWatch;

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn busy_line(i: u64) -> String {
    let q = format!("{:010X}", 0x1000_0000u64 + i);
    format!(
        "Nov  4 18:{:02}:{:02} mx postfix/smtp[4]: {q}: to=<u{i}@corp.test>, relay=dell[100.64.0.2]:25, \
         delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9{q})\n",
        (i / 60) % 60,
        i % 60
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::PathBuf::from(&args[1]);
    let busy: u64 = args[2].parse().expect("BUSY_LINES is a number");
    let tick = Duration::from_millis(args.get(3).map_or(100, |t| t.parse().expect("TICK_MS")));
    std::fs::write(&path, b"").expect("log file is writable");
    let cfg = LogSourceConfig {
        role: "ec2".into(),
        kind: LogSourceKind::File,
        path: Some(path.clone()),
        command: None,
        container: None,
        timezone: Some("+00:00".into()),
        timeout_secs: Some(5),
    };
    let probe = ProbeContext {
        message_id: "<probe-1@flowtest.test>".into(),
        mail_from: "ft@provider.test".into(),
        rcpt_to: vec!["bob@corp.test".into()],
        submitted_at: clock::now(),
        // As the runner knows them once the MX accepted the probe ("250 2.0.0 Ok: queued as").
        accepted_at: Some(clock::now()),
        submission_queue_id: Some("4ABC00000".into()),
        ..ProbeContext::default()
    };
    let (mut watch, _) = LogWatch::start(&[cfg]);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(
        log,
        "Nov  4 18:00:00 mx postfix/cleanup[2]: 4ABC00000: message-id=<probe-1@flowtest.test>"
    )
    .unwrap();
    // The busy log arrives over a few ticks while the watch polls, as during a probe's wait.
    let cpu0 = cpu_seconds();
    let batches = 8;
    for b in 0..batches {
        let mut chunk = String::new();
        for i in (b * busy / batches)..((b + 1) * busy / batches) {
            chunk.push_str(&busy_line(i));
        }
        log.write_all(chunk.as_bytes()).unwrap();
        tokio::time::sleep(tick).await;
        watch.refresh(false).await;
        let _ = watch.timeline(&probe, &[]);
    }
    let busy_cpu = cpu_seconds() - cpu0;
    writeln!(log, "Nov  4 18:59:59 mx postfix/smtp[4]: 4ABC00000: to=<bob@corp.test>, relay=dell[100.64.0.2]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host dell[100.64.0.2] said: 550 5.1.1 <bob@corp.test>: User unknown (in reply to RCPT TO command))").unwrap();
    let appended = clock::instant();
    let cpu1 = cpu_seconds();
    let mut ticks = 0;
    loop {
        tokio::time::sleep(tick).await;
        ticks += 1;
        watch.refresh(false).await;
        if watch.timeline(&probe, &[]).status == MessageStatus::Bounced {
            break;
        }
        if ticks > 400 {
            println!("verdict_ms=none");
            return;
        }
    }
    let ms = appended.elapsed().as_secs_f64() * 1000.0;
    println!(
        "busy_lines={busy} verdict_ms={ms:.0} ticks={ticks} cpu_busy_s={busy_cpu:.2} cpu_verdict_s={:.2}",
        cpu_seconds() - cpu1
    );
}
