//! Fuzz target: whole `diagnose` runs over two hosts' logs built from real line shapes, so the
//! correlator, the chain assembly, the findings and both report formats see message histories
//! (queue ids handed on, retries, rejects, Dovecot's saves and errors, clocks that jump) rather
//! than lines that die in a parser.
//!
//! Each input is a list of steps of four bytes and an optional text: a line shape, which source
//! and queue id / message id / recipient it names, and how far the log's clock moves (forward,
//! back, or over a new year). Checks, for every input:
//! - the JSON report parses, and its summary's statuses add up to its message count;
//! - the human report is written without a panic;
//! - the same input gives the same JSON twice (the full run uses two threads);
//! - asked for one Message-ID, the prefilter (lines skipped before parsing) gives the same
//!   verdicts (statuses, findings) as the run that parses every line, where each queue entry's
//!   log shows its `message-id=` line as real logs do and each hop keeps the Message-ID: at the
//!   CLI's open-message limit, and at a tiny one where no log's clock steps back and no chain
//!   of that message was emitted early at the limit.
#![no_main]
use flowtest::core::diagnose::{analyze, Format, Input, Options};
use flowtest::core::fusion::Limits;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Line shapes: `{T}` time, `{H}` host, `{P}` pid, `{Q}`/`{Q2}` queue ids, `{M}` a message id,
/// `{R}` a recipient, `{X}` text taken from the input.
const SHAPES: [&str; 40] = [
    "{T} {H} postfix/smtpd[{P}]: connect from mail.sender.example[203.0.113.9]",
    "{T} {H} postfix/smtpd[{P}]: {Q}: client=mail.sender.example[203.0.113.9]",
    "{T} {H} postfix/smtpd[{P}]: {Q}: client=unknown[100.64.0.1], sasl_method=PLAIN, sasl_username={R}",
    "{T} {H} postfix/pickup[{P}]: {Q}: uid=0 from=<root>",
    "{T} {H} postfix/cleanup[{P}]: {Q}: message-id=<{M}>",
    "{T} {H} postfix/cleanup[{P}]: {Q}: hold: header Subject: {X} from local; from=<a@b.example> to=<{R}>",
    "{T} {H} postfix/cleanup[{P}]: {Q}: milter-reject: END-OF-MESSAGE from x[192.0.2.4]: 5.7.1 {X}; from=<a@b.example> to=<{R}> proto=ESMTP helo=<h>",
    "{T} {H} postfix/qmgr[{P}]: {Q}: from=<a@sender.example>, size=1000, nrcpt=2 (queue active)",
    "{T} {H} postfix/qmgr[{P}]: {Q}: removed",
    "{T} {H} postfix/qmgr[{P}]: {Q}: from=<a@sender.example>, status=expired, returned to sender",
    "{T} {H} postfix/smtp[{P}]: {Q}: to=<{R}>, relay=100.64.0.2[100.64.0.2]:2525, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {Q2})",
    "{T} {H} postfix/smtp[{P}]: {Q}: to=<{R}>, relay=none, delay=31, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to 100.64.0.2[100.64.0.2]:2525: Connection refused)",
    "{T} {H} postfix/smtp[{P}]: {Q}: to=<{R}>, relay=none, delay=35, delays=0.1/0/35/0, dsn=4.4.1, status=deferred (connect to 100.64.0.2[100.64.0.2]:2525: Connection timed out)",
    "{T} {H} postfix/smtp[{P}]: {Q}: to=<{R}>, relay=mx.other.example[198.51.100.3]:25, delay=2, delays=0.1/0/0.5/1.4, dsn=5.1.1, status=bounced (host mx.other.example[198.51.100.3] said: 550 5.1.1 <{R}>: Recipient address rejected: User unknown (in reply to RCPT TO command))",
    "{T} {H} postfix/smtp[{P}]: {Q}: to=<{R}>, relay=mx.other.example[198.51.100.3]:25, delay=2, delays=0.1/0/0.5/1.4, dsn=4.0.0, status=deferred (host mx.other.example[198.51.100.3] said: {X})",
    "{T} {H} postfix/lmtp[{P}]: {Q}: to=<{R}>, relay=dell.corp.test[private/dovecot-lmtp], delay=0.1, delays=0.01/0/0.01/0.08, dsn=2.0.0, status=sent (250 2.0.0 <{R}> AbCdEf Saved)",
    "{T} {H} postfix/lmtp[{P}]: {Q}: to=<{R}>, relay=dell.corp.test[private/dovecot-lmtp], delay=0.1, delays=0.01/0/0.01/0.08, dsn=4.3.0, status=deferred (host dell.corp.test[private/dovecot-lmtp] said: 451 4.3.0 <{R}> Temporary internal error (in reply to end of DATA command))",
    "{T} {H} postfix/bounce[{P}]: {Q}: sender non-delivery notification: {Q2}",
    "{T} {H} postfix/smtpd[{P}]: NOQUEUE: reject: RCPT from x.example[203.0.113.7]: 554 5.7.1 <{R}>: Relay access denied; from=<a@b.example> to=<{R}> proto=ESMTP helo=<h>",
    "{T} {H} postfix/smtpd[{P}]: warning: x.example[203.0.113.7]: SASL LOGIN authentication failed: {X}",
    "{T} {H} postfix/smtpd[{P}]: disconnect from x.example[203.0.113.7] ehlo=1 auth=0/1 quit=1 commands=2/3",
    "{T} {H} postfix/trivial-rewrite[{P}]: warning: hash:/etc/postfix/transport is unavailable. open database /etc/postfix/transport.db: No such file or directory",
    "{T} {H} postfix/smtpd[{P}]: {Q}: reject: RCPT from x.example[203.0.113.7]: 451 4.3.0 <{R}>: Temporary lookup failure; from=<a@b.example> to=<{R}> proto=ESMTP helo=<h>",
    "{T} {H} postfix/smtp[{P}]: {Q}: host mx.other.example[198.51.100.3] said: 450 {X} (in reply to RCPT TO command)",
    "{T} {H} postfix/error[{P}]: {Q}: to=<{R}>, relay=none, delay=1, delays=1/0/0/0, dsn=4.4.1, status=deferred (delivery temporarily suspended: connect to 100.64.0.2[100.64.0.2]:2525: Connection refused)",
    "{T} {H} postfix/local[{P}]: {Q}: to=<{R}>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to command: /usr/lib/dovecot/deliver)",
    "{T} {H} postfix/smtp[{P}]: {Q}: to=<{R}>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.5, delays=0/0/0/0.5, dsn=2.7.0, status=sent (250 2.7.0 Ok, discarded, id=00001-01 - spam)",
    "{T} {H} postfix/qmgr[{P}]: {Q}: to=<{R}>, relay=none, delay=1, delays=1/0/0/0, dsn=4.3.0, status=deferred (mail transport unavailable)",
    "{T} {H} postfix/master[{P}]: warning: process /usr/lib/postfix/sbin/smtpd pid {P} exit status 1",
    "{T} {H} postfix/smtpd[{P}]: fatal: {X}",
    "{T} {H} postfix/smtp[{P}]: {Q}: to=<{R}>, relay=100.64.0.2[100.64.0.2]:2525, delay=0.2, delays=0/0/0.1/0.1, dsn=2.0.0, status=sent (250 2.0.0 {X})",
    "{T} {H} dovecot: lmtp({R})<{P}><AbCd{P}>: msgid=<{M}>: saved mail to INBOX",
    "{T} {H} dovecot: lmtp({R})<{P}><AbCd{P}>: msgid=<{M}>: save failed to INBOX: Permission denied",
    "{T} {H} dovecot: lmtp({R})<{P}><AbCd{P}>: Error: open(/var/mail/x/new) failed: Permission denied (euid=1000(x) egid=1000(x) missing +w perm: /var/mail/x)",
    "{T} {H} dovecot: auth-worker({P}): Error: sql({R},192.0.2.9): {X}",
    "{T} {H} dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{R}>, method=PLAIN, rip=192.0.2.9, lip=198.18.3.2, TLS, session=<abc{P}>",
    "{T} {H} dovecot: lmtp({R})<{P}><AbCd{P}>: sieve: msgid=<{M}>: stored mail into mailbox 'Junk'",
    "{T} {H} dovecot: lmtp({R})<{P}><AbCd{P}>: msgid=<{M}>: rejected: Quota exceeded (mailbox for user is full)",
    "{T} {H} dovecot: lmtp({P}): Error: {X}",
    "{T} {H} {X}",
];

const QUEUE_IDS: [&str; 6] = [
    "4AB12C3D4E",
    "6D07EF7B77",
    "D0E873A000",
    "9FC1F7CD5B",
    "3YvRtX0bNmz9kLp",
    "BE80C46D1F",
];
const MESSAGE_IDS: [&str; 3] = [
    "m1@sender.example",
    "m2@sender.example",
    "m1@SENDER.example",
];
const RECIPIENTS: [&str; 3] = ["bob@corp.test", "alice@corp.test", "Bob@corp.test"];
const HOSTS: [&str; 2] = ["ec2", "dell"];

/// The logs' reference time (2025-02-10T00:00:00Z), after every line the steps can write.
const REFERENCE: i64 = 1_739_145_600;

/// The log's clock, in seconds since Dec 31 23:00:00 of the run's year: the steps may cross
/// into January (the year-less syslog stamps' rollover) or step back.
fn stamp(t: i64) -> String {
    let base = chrono::NaiveDate::from_ymd_opt(2024, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 0, 0))
        .expect("a valid base time");
    let at = base + chrono::TimeDelta::seconds(t.clamp(0, 40 * 86_400));
    at.format("%b %e %H:%M:%S").to_string()
}

/// One line from a step; `text` is the input's text for `{X}`.
fn line(step: &[u8; 4], t: i64, text: &str) -> String {
    let [shape, ids, _, _] = *step;
    let q = usize::from(ids & 0x0f);
    SHAPES[usize::from(shape) % SHAPES.len()]
        .replace("{T}", &stamp(t))
        .replace("{H}", HOSTS[usize::from(shape >> 7)])
        .replace("{P}", &(100 + u32::from(ids >> 4)).to_string())
        .replace("{Q2}", QUEUE_IDS[(q + 1) % QUEUE_IDS.len()])
        .replace("{Q}", QUEUE_IDS[q % QUEUE_IDS.len()])
        .replace(
            "{M}",
            MESSAGE_IDS[usize::from(ids >> 4) % MESSAGE_IDS.len()],
        )
        .replace("{R}", RECIPIENTS[usize::from(ids >> 5) % RECIPIENTS.len()])
        .replace("{X}", text)
}

/// Whether a queue entry's line of this shape is one the prefilter remembers until the entry's
/// `message-id=` line (smtpd's `client=`, pickup's `uid=`, a recipient's `reject:`).
fn remembered(shape: &str) -> bool {
    ["{Q}: client=", "{Q}: uid=", "{Q}: reject: "]
        .iter()
        .any(|k| shape.contains(k))
}

/// The two sources' texts: steps of `[shape, ids, clock, source]`, each followed by its text
/// up to a NUL when `source`'s high bit is set. And whether each queue entry a log shows has
/// cleanup's `message-id=` line in that log, with only remembered lines before it, as real logs
/// do: the prefilter finds an entry by that line (or by the hand-off that names it, from an
/// entry it found), so an entry whose log lacks it (a log cut short or rotated mid-message) is
/// found by a full parse only.
fn build(data: &[u8]) -> ([String; 2], bool, bool) {
    let mut logs = [String::new(), String::new()];
    // Per log: the queue ids seen, and whether each is still as real logs show an entry
    // (`None` until its `message-id=` line, then `Some(true)`; `Some(false)` once broken).
    // The message id an entry's `message-id=` line named: another one for the same entry is a
    // queue id in use by two messages at once, which Postfix never does.
    let mut seen: [Vec<(usize, Option<bool>, usize)>; 2] = [Vec::new(), Vec::new()];
    // Every (queue id, message) a `message-id=` line paired, in either log, and every hand-off
    // (`queued as Q2`) with the message of the entry that made it: a next hop's entry of another
    // message is a hop that rewrote the Message-ID, which `--message-id` does not follow.
    let mut named_ids: Vec<(usize, usize)> = Vec::new();
    let mut handoffs: Vec<(usize, usize)> = Vec::new();
    let mut abandoned = false;
    // Per log and smtpd process: the queue id its last `client=` line announced. Its next
    // transaction ends that one, which never reached DATA if it had no `message-id=` line yet:
    // no real log has more lines of it (a full parse drops it; the prefilter may replay its
    // `client=` line to a later one), unless its queue id starts anew.
    let mut last_client: Vec<(usize, u8, usize)> = Vec::new();
    let mut left: Vec<(usize, usize)> = Vec::new();
    // Per log and queue id, the time of its last line. A queue id's line after 6 h of quiet
    // (the correlator's idle timeout for an entry not in the queue) joins the chain or starts
    // another by whether a sweep came by since, which the prefilter's fewer records change:
    // outside the check (a queue entry's lines are minutes apart, or its retries' hours).
    let mut last_line: Vec<(usize, usize, i64)> = Vec::new();
    let mut quiet_gap = false;
    // Per log, the time of its last line; whether any line came before its log's last in time.
    let mut last_t: [Option<i64>; 2] = [None, None];
    let mut stepped_back = false;
    let mut t: i64 = 0;
    let mut rest = data;
    while rest.len() >= 4 {
        let step: [u8; 4] = rest[..4].try_into().expect("four bytes");
        rest = &rest[4..];
        let text = if step[3] & 0x80 != 0 {
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let s = String::from_utf8_lossy(&rest[..end]).replace(['\n', '\r'], " ");
            rest = rest.get(end + 1..).unwrap_or(&[]);
            s
        } else {
            "Service unavailable".to_string()
        };
        t += match step[2] {
            0..=239 => i64::from(step[2] & 0x1f),
            240..=247 => -i64::from(step[2] - 239) * 7,
            248..=251 => 3_600,
            _ => 86_400,
        };
        t = t.max(0);
        // An hour or a day later, no SMTP session is still on its way from `client=` to
        // cleanup's `message-id=` (smtpd times a client out after 300 s): an entry still
        // waiting for that line is cut short (a full parse has long emitted it by then).
        if step[2] >= 248 {
            for (_, state, _) in seen.iter_mut().flatten() {
                if state.is_none() {
                    *state = Some(false);
                }
            }
        }
        let source = usize::from(step[3] & 1);
        let shape = SHAPES[usize::from(step[0]) % SHAPES.len()];
        if shape.contains("{Q}") {
            let q = usize::from(step[1] & 0x0f) % QUEUE_IDS.len();
            match last_line
                .iter_mut()
                .find(|(s, l, _)| (*s, *l) == (source, q))
            {
                Some((_, _, last)) => {
                    quiet_gap |= t - *last >= 6 * 3_600;
                    *last = t;
                }
                None => last_line.push((source, q, t)),
            }
            let existed = seen[source].iter().position(|&(s, _, _)| s == q);
            let i = existed.unwrap_or_else(|| {
                seen[source].push((q, None, 0));
                seen[source].len() - 1
            });
            // m1 and M1 are two messages: flowtest compares Message-IDs byte for byte, as
            // they travel unchanged from hop to hop.
            let named = usize::from(step[1] >> 4) % MESSAGE_IDS.len();
            let (_, state, message) = &mut seen[source][i];
            let message_id = shape.contains("{Q}: message-id=");
            if state.is_none() {
                if message_id {
                    *state = Some(true);
                    *message = named;
                } else if !remembered(shape) {
                    *state = Some(false);
                }
            } else if message_id && *message != named {
                *state = Some(false);
            }
            // A queue entry starts once (smtpd's `client=` or pickup's `uid=`): another start
            // while the queue id is in use is a second message under it, which Postfix never
            // does (the prefilter replays only the last one).
            let starts = shape.contains("{Q}: client=") || shape.contains("{Q}: uid=");
            if starts && existed.is_some() {
                *state = Some(false);
            }
            if let Some(at) = left.iter().position(|&l| l == (source, q)) {
                if starts {
                    left.remove(at);
                } else {
                    *state = Some(false);
                }
            }
            let (state, message) = (*state, *message);
            if message_id {
                named_ids.push((q, named));
            }
            if shape.contains("{Q}: client=") {
                let pid = step[1] >> 4;
                let last = last_client
                    .iter_mut()
                    .find(|(s, p, _)| (*s, *p) == (source, pid));
                let before = match last {
                    Some((_, _, before)) => Some(std::mem::replace(before, q)),
                    None => {
                        last_client.push((source, pid, q));
                        None
                    }
                };
                let bare = |b: usize| {
                    seen[source]
                        .iter()
                        .any(|&(s, st, _)| s == b && st.is_none())
                };
                if let Some(b) = before.filter(|&b| b != q && bare(b)) {
                    left.push((source, b));
                }
            }
            if shape.contains("queued as {Q2}") && state == Some(true) {
                handoffs.push(((q + 1) % QUEUE_IDS.len(), message));
            }
            // Removed, or refused whole by a milter (the queue file is gone, unlogged), the
            // queue id can name a new message: which needs its own line.
            let gone = shape.ends_with("{Q}: removed") || shape.contains("{Q}: milter-reject:");
            if gone && state == Some(true) {
                seen[source].remove(i);
            }
        }
        stepped_back |= last_t[source].is_some_and(|last| t < last);
        last_t[source] = Some(t);
        let l = line(&step, t, &text);
        // smtpd's disconnect with recipients counted (in a text line: `disconnect from x
        // ehlo=1 mail=1 rcpt=1 quit=1 commands=4`) can say its transaction was left before
        // DATA, dropping the entry its process announced, a drop the prefilter (which skips
        // the line) does not make: real logs then have no more lines of that entry, which the
        // steps do not ensure.
        abandoned |= l.contains("disconnect from ") && l.contains(" rcpt=");
        logs[source].push_str(&l);
        logs[source].push('\n');
    }
    let rewritten = handoffs
        .iter()
        .any(|&(q2, m)| named_ids.iter().any(|&(q, n)| q == q2 && n != m));
    let whole = !rewritten
        && !abandoned
        && !quiet_gap
        && seen
            .iter()
            .flatten()
            .all(|&(_, state, _)| state == Some(true));
    (logs, whole, !stepped_back)
}

fn inputs(logs: &[String; 2]) -> Vec<Input> {
    HOSTS
        .iter()
        .zip(logs)
        .filter(|(_, log)| !log.is_empty())
        .map(|(name, log)| Input {
            name: (*name).to_string(),
            display: format!("{name}.log"),
            reader: Box::new(std::io::Cursor::new(log.clone().into_bytes())),
            // As the CLI does by default (the file's time): every line takes the year that puts
            // it before the reference, in both logs alike. (A year given instead starts each log
            // in that year, so a log that starts in January is a year before one that starts in
            // December: two hosts' lines a year apart, which no message survives.)
            reference: chrono::DateTime::from_timestamp(REFERENCE, 0),
            skipped_bytes: 0,
            hosts_from_lines: false,
        })
        .collect()
}

/// An open-message limit small enough that fuzz-sized logs reach it.
const TINY_OPEN_CHAINS: usize = 4;

fn options(format: Format, message_id: Option<&str>, prefilter: bool) -> Options {
    let mut limits = Limits::default();
    // Small enough that the caps and the idle emission are reached by fuzz-sized logs.
    limits.max_open_chains = TINY_OPEN_CHAINS;
    limits.max_evidence = 3;
    limits.max_lines = 5;
    Options {
        message_id: message_id.map(str::to_string),
        rcpt: None,
        since: None,
        until: None,
        year: None,
        fallback_year: 2024,
        tz: chrono::FixedOffset::east_opt(0).expect("UTC").into(),
        format,
        limits,
        prefilter,
    }
}

fn run(logs: &[String; 2], opts: &Options) -> Vec<u8> {
    let mut out = Vec::new();
    analyze(inputs(logs), opts, &mut out).expect("in-memory logs read and write");
    out
}

fn json(report: &[u8]) -> Value {
    serde_json::from_slice(report).expect("the JSON report parses")
}

/// Whether a message of report `v` was emitted early at the open-message limit.
fn evicted(v: &Value) -> bool {
    v["messages"].as_array().into_iter().flatten().any(|m| {
        m["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n.as_str().is_some_and(|n| n.contains("open-message limit")))
    })
}

/// A focused run's verdicts: each message's status and its findings' codes and hosts, and the
/// host findings. The prefilter must not change them where every entry's log shows its
/// `message-id=` line as real logs do (see [`build`]).
fn focused_view(
    logs: &[String; 2],
    id: &str,
    prefilter: bool,
    max_open_chains: usize,
) -> Option<Vec<String>> {
    let mut opts = options(Format::Json, Some(id), prefilter);
    opts.limits.max_open_chains = max_open_chains;
    let v = json(&run(logs, &opts));
    // A chain emitted early at the open-message limit takes no more lines: with fewer lines
    // read, the prefilter's run reaches the limit less often, which is the limit's purpose
    // (memory), not a change of what the lines say.
    if evicted(&v) {
        return None;
    }
    let finding = |f: &Value| format!("{} at {}", f["code"], f["host"]);
    let mut view: Vec<String> = v["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let codes: Vec<String> = m["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .map(finding)
                .collect();
            format!("{} {}: {}", m["message_id"], m["status"], codes.join(", "))
        })
        .collect();
    view.extend(v["findings"].as_array().into_iter().flatten().map(finding));
    Some(view)
}

fuzz_target!(|data: &[u8]| {
    let (logs, whole, monotonic) = build(data);
    let report = run(&logs, &options(Format::Json, None, false));
    let v = json(&report);
    let summary = &v["summary"];
    let total: u64 = summary["by_status"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    assert_eq!(Some(total), summary["messages"].as_u64(), "{summary}");
    assert_eq!(
        report,
        run(&logs, &options(Format::Json, None, false)),
        "the same logs gave two different reports"
    );
    let human = run(&logs, &options(Format::Human, None, false));
    assert!(std::str::from_utf8(&human).is_ok());
    let first_id = v["messages"]
        .as_array()
        .and_then(|ms| ms.iter().find_map(|m| m["message_id"].as_str()))
        .map(str::to_string);
    // Checked at the CLI's open-message limit, and at the tiny one where no log's clock steps
    // back: the tiny limit sweeps for done messages nearly every line, and a message a sweep
    // found done by a later time read before a line of it (a clock that stepped back) is not
    // taken back (README, `diagnose`), which the prefilter's fewer lines change.
    // At the tiny limit, a chain emitted early in the full parse is outside the check too when
    // the focused run drops it unbuilt (no Message-ID yet: a recipient's reject before
    // cleanup's line), which leaves no note in the focused report.
    let mut caps = vec![Limits::default().max_open_chains];
    if monotonic && !evicted(&v) {
        caps.push(TINY_OPEN_CHAINS);
    }
    if let Some(id) = first_id.filter(|_| whole) {
        for cap in caps {
            let views = (
                focused_view(&logs, &id, true, cap),
                focused_view(&logs, &id, false, cap),
            );
            if let (Some(skipping), Some(parsing)) = views {
                assert_eq!(
                    skipping, parsing,
                    "the prefilter changed what {id} looks like (at most {cap} open messages)"
                );
            }
        }
    }
});
