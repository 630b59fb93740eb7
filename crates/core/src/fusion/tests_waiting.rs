//! How long a done-looking chain is kept open waiting for another host's lines: the grace time
//! when that host's log may come, the settle time when only one host's log is read.

use super::tests::{feed, EC2};
use super::*;
use crate::logs::{parse_line, ParseContext};

/// `n` quiet records (a warning of no message) logged at `hms`.
fn quiet_at(c: &mut Correlator, hms: &str, n: u64) {
    let ctx = ParseContext::new("ec2", 2025);
    let line = format!(
        "Nov  7 {hms} mx postfix/smtpd[9]: warning: hostname x.test does not resolve to \
         address 192.0.2.1"
    );
    for _ in 0..n {
        c.push(parse_line(line.as_bytes(), &ctx).expect("a warning line"));
    }
}

/// Records 15 s after the message (past the settle time, within the grace time), enough for
/// the correlator's periodic sweep to run; then what it emitted.
fn quiet_for_15s(c: &mut Correlator) -> Vec<MessageChain> {
    quiet_at(c, "12:00:20", 4096);
    c.take_finished()
}

/// EC2's delivery with the relay replaced (its `queued as 2B2B2B2B2B` kept).
fn relayed_to(relay: &str) -> String {
    EC2.replace("100.64.0.2[100.64.0.2]:2525", relay)
}

/// The hand-off's next entry (`2B2B2B2B2B`) on this host, from a localhost client, at `hms`.
fn reinject_at(c: &mut Correlator, hms: &str) {
    let lines = format!(
        "Nov  7 {hms} mx postfix/smtpd[5]: 2B2B2B2B2B: client=localhost[127.0.0.1]\n\
         Nov  7 {hms} mx postfix/qmgr[3]: 2B2B2B2B2B: removed"
    );
    feed(c, "ec2", &lines);
}

/// The message was joined across its hand-off: one message, both entries its hops.
fn one_message_of_two_hops(c: Correlator) {
    let ms = c.finish();
    assert_eq!(ms.len(), 1, "{ms:#?}");
    assert_eq!(ms[0].hops.len(), 2, "{ms:#?}");
}

#[test]
fn one_hosts_log_does_not_wait_for_the_next_hops_log() {
    let mut single = Correlator::new(Limits::default()).single_host();
    let mut several = Correlator::new(Limits::default());
    for c in [&mut single, &mut several] {
        feed(c, "ec2", EC2);
    }
    let done = quiet_for_15s(&mut single);
    assert_eq!(done.len(), 1, "done after the settle time: {done:#?}");
    assert!(done[0].has_message_id("p1@flowtest"));
    assert_eq!(done[0].status, MessageStatus::Delivered);
    assert_eq!(single.open_chains(), 0);
    // With other hosts' logs read too, the next hop's lines may still come: it waits.
    assert!(quiet_for_15s(&mut several).is_empty());
    assert_eq!(several.open_chains(), 1);
    // Either way the message is the same.
    let waited = several.finish();
    assert_eq!(format!("{:?}", done[0]), format!("{:?}", waited[0]));
}

/// A done chain is emitted at the next look for done chains, within [`SWEEP_EVERY`] records of
/// falling due, and not before it is due.
#[test]
fn a_done_chain_is_emitted_within_one_sweep_interval() {
    let mut c = Correlator::new(Limits::default()).single_host();
    feed(&mut c, "ec2", EC2);
    // A whole interval of lines within the settle time: looked at, not due yet.
    quiet_at(&mut c, "12:00:05", SWEEP_EVERY);
    assert!(c.take_finished().is_empty());
    assert_eq!(c.open_chains(), 1);
    // Past the settle time: emitted by the time the next interval's records are in.
    quiet_at(&mut c, "12:00:20", SWEEP_EVERY);
    let done = c.take_finished();
    assert_eq!(done.len(), 1, "{done:#?}");
    assert!(done[0].has_message_id("p1@flowtest"));
    assert_eq!(c.open_chains(), 0);
}

#[test]
fn one_hosts_content_filter_is_still_waited_for() {
    // The hand-off stays on this host: its re-injected entry can still come.
    let mut c = Correlator::new(Limits::default()).single_host();
    feed(&mut c, "ec2", &relayed_to("127.0.0.1[127.0.0.1]:10024"));
    assert!(quiet_for_15s(&mut c).is_empty());
    assert_eq!(c.open_chains(), 1);
    reinject_at(&mut c, "12:00:21");
    one_message_of_two_hops(c);
}

#[test]
fn one_hosts_relay_still_joins_an_entry_that_comes_while_it_is_open() {
    // Relayed to an address of this host, re-injected by a localhost client (two instances
    // logging to one file): joined, though the chain no longer waits for it.
    let mut c = Correlator::new(Limits::default()).single_host();
    feed(&mut c, "ec2", &relayed_to("mx2.corp.test[192.0.2.7]:25"));
    reinject_at(&mut c, "12:00:06");
    one_message_of_two_hops(c);
}

/// Dell's LMTP hand-off of `2B2B2B2B2B` to Dovecot, its session `c2tldzFza2V3MXNrZXcxcw`.
const LMTP: &str = "\
Nov  7 12:00:05 dell postfix/cleanup[2]: 2B2B2B2B2B: message-id=<p1@flowtest>
Nov  7 12:00:05 dell postfix/lmtp[4]: 2B2B2B2B2B: to=<bob@corp.test>, relay=dell[private/dovecot-lmtp], delay=0.03, delays=0.01/0/0.01/0.01, dsn=2.0.0, status=sent (250 2.0.0 <bob@corp.test> c2tldzFza2V3MXNrZXcxcw Saved)
Nov  7 12:00:05 dell postfix/qmgr[3]: 2B2B2B2B2B: removed";
/// Dovecot's side of that hand-off.
const SAVED: &str =
    "Nov  7 12:00:05 dell dovecot: lmtp(bob@corp.test)<77><c2tldzFza2V3MXNrZXcxcw>: \
                     msgid=<p1@flowtest>: saved mail to INBOX";

/// One side of an LMTP hand-off fed alone: with one host's log it is done after the settle
/// time; with several hosts' it waits for the other side, which then joins it.
fn lmtp_side_waits_only_with_several_hosts(side: (&str, &str), other: (&str, &str)) {
    let mut single = Correlator::new(Limits::default()).single_host();
    let mut several = Correlator::new(Limits::default());
    for c in [&mut single, &mut several] {
        feed(c, side.0, side.1);
    }
    let done = quiet_for_15s(&mut single);
    assert_eq!(done.len(), 1, "done after the settle time: {done:#?}");
    assert_eq!(single.open_chains(), 0);
    assert!(quiet_for_15s(&mut several).is_empty());
    assert_eq!(several.open_chains(), 1);
    feed(&mut several, other.0, other.1);
    let joined = several.finish();
    assert_eq!(joined.len(), 1, "{joined:#?}");
    assert_eq!(joined[0].hops.len(), 2, "both sides: {joined:#?}");
}

#[test]
fn one_hosts_lmtp_hand_off_does_not_wait_for_dovecots_line() {
    lmtp_side_waits_only_with_several_hosts(("dell", LMTP), ("dovecot", SAVED));
}

#[test]
fn one_hosts_dovecot_line_does_not_wait_for_postfixs() {
    lmtp_side_waits_only_with_several_hosts(("dovecot", SAVED), ("dell", LMTP));
}

/// On one host, both sides in one log: joined whichever comes first (Dovecot's usually).
#[test]
fn one_hosts_lmtp_hand_off_joins_dovecots_line_in_either_order() {
    for (first, second) in [(LMTP, SAVED), (SAVED, LMTP)] {
        let mut c = Correlator::new(Limits::default()).single_host();
        feed(&mut c, "dell", first);
        feed(&mut c, "dell", second);
        let ms = c.finish();
        assert_eq!(ms.len(), 1, "{ms:#?}");
        assert_eq!(ms[0].status, MessageStatus::Delivered);
        assert_eq!(ms[0].hops.len(), 2, "{ms:#?}");
    }
}

/// Every message of the correlator: those it emitted so far, then the rest.
fn all_messages(mut c: Correlator) -> Vec<MessageChain> {
    let mut ms = c.take_finished();
    ms.extend(c.finish());
    ms
}

/// Dell's entry of EC2's hand-off (`2B2B2B2B2B`), its first line at `hms`.
fn dell_entry_at(c: &mut Correlator, hms: &str) {
    let lines = format!(
        "Nov  7 {hms} dell postfix/smtpd[1]: 2B2B2B2B2B: client=unknown[100.64.0.1]\n\
         Nov  7 {hms} dell postfix/qmgr[3]: 2B2B2B2B2B: removed"
    );
    feed(c, "dell", &lines);
}

#[test]
fn a_hand_offs_entry_joins_only_while_its_upstream_is_still_open() {
    // Within the grace time: joined.
    let mut c = Correlator::new(Limits::default());
    feed(&mut c, "ec2", EC2);
    dell_entry_at(&mut c, "12:01:00");
    one_message_of_two_hops(c);
    // Past it, the upstream chain is done at the entry's own time: the entry is a message of
    // its own, whether a sweep came by between (as in a busy log) or not (as with the few
    // lines a `--message-id` run reads).
    let messages = |sweep_between: bool| {
        let mut c = Correlator::new(Limits::default());
        feed(&mut c, "ec2", EC2);
        if sweep_between {
            quiet_at(&mut c, "12:02:10", SWEEP_EVERY);
        }
        dell_entry_at(&mut c, "12:03:00");
        all_messages(c)
            .iter()
            .map(|m| (m.message_id.clone(), m.hops.len()))
            .collect::<Vec<_>>()
    };
    let swept = messages(true);
    assert_eq!(swept.len(), 2, "{swept:?}");
    assert_eq!(messages(false), swept);
}

/// EC2's message (its entry `1A1A1A1A1A` removed at 12:00:05), then the queue id named again
/// at `hms` by a deferral of another message whose first lines the log lacks, with a sweep
/// between or not: each message's Message-ID and status.
fn queue_id_named_again_at(
    hms: &str,
    sweep_between: bool,
) -> Vec<(Option<crate::logs::EventText>, MessageStatus)> {
    let mut c = Correlator::new(Limits::default()).single_host();
    feed(&mut c, "ec2", EC2);
    if sweep_between {
        quiet_at(&mut c, "12:00:20", SWEEP_EVERY);
    }
    let line = format!(
        "Nov  7 {hms} mx postfix/smtp[4]: 1A1A1A1A1A: to=<carol@corp.test>, relay=none, \
         delay=0.1, delays=0/0/0.1/0, dsn=4.4.1, status=deferred (connect to \
         mx.corp.test[192.0.2.5]:25: Connection refused)"
    );
    feed(&mut c, "ec2", &line);
    all_messages(c)
        .iter()
        .map(|m| (m.message_id.clone(), m.status))
        .collect()
}

#[test]
fn a_removed_entrys_queue_id_named_after_its_message_was_done_is_another_message() {
    // Past the settle time (10 s): another message, whether a sweep came by between or not.
    let swept = queue_id_named_again_at("12:00:30", true);
    assert_eq!(swept.len(), 2, "{swept:?}");
    assert_eq!(queue_id_named_again_at("12:00:30", false), swept);
    // Done exactly at the settle time; a second before it, still open to the line.
    assert_eq!(queue_id_named_again_at("12:00:15", false).len(), 2);
    assert_eq!(queue_id_named_again_at("12:00:14", false).len(), 1);
}

/// A chain waiting for the next hop's log stays open, but its entry's queue file is gone once
/// `removed`: a `message-id=` line of that queue id a second or more later is another
/// message's (cleanup names an entry's Message-ID before the queue manager takes it), even
/// though the entry named none. In the same second it may be the entry's own line written out
/// of order, and joins.
#[test]
fn a_message_id_after_its_entry_was_removed_starts_another_message() {
    let at = |hms: &str| {
        let mut c = Correlator::new(Limits::default());
        let lines = format!(
            "Jan  1 01:00:40 ec2 postfix/smtp[114]: 4AB12C3D4E: to=<alice@corp.test>, \
             relay=100.64.0.2[100.64.0.2]:2525, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, \
             status=sent (250 2.0.0 Ok: queued as 6D07EF7B77)\n\
             Jan  1 01:01:08 ec2 postfix/qmgr[100]: 4AB12C3D4E: removed\n\
             Jan  1 {hms} ec2 postfix/cleanup[107]: 4AB12C3D4E: message-id=<m2@sender.example>"
        );
        feed(&mut c, "ec2", &lines);
        let mut out: Vec<_> = all_messages(c)
            .iter()
            .map(|m| (m.message_id.clone(), m.status))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    assert_eq!(
        at("01:01:36"),
        [
            (None, MessageStatus::Delivered),
            (Some("<m2@sender.example>".into()), MessageStatus::Queued)
        ]
    );
    assert_eq!(
        at("01:01:08"),
        [(Some("<m2@sender.example>".into()), MessageStatus::Delivered)]
    );
}
