//! Which chains the correlator builds for one message: only the asked Message-ID's in a
//! `--message-id` run, and a refused probe's own sender's rejections in the live watch.

use super::tests::{feed, DELL, EC2};
use super::*;

#[test]
fn only_the_asked_message_id_is_built() {
    let noqueue = "Nov  7 12:00:04 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from x.test[192.0.2.9]: \
                   554 5.7.1 <a@other.test>: Relay access denied; from=<m@x.test> to=<a@other.test> \
                   proto=ESMTP helo=<x.test>";
    let mut all = Correlator::new(Limits::default());
    let mut one = Correlator::new(Limits::default()).only_message_id("<p1@flowtest>");
    for c in [&mut all, &mut one] {
        feed(c, "ec2", noqueue);
        feed(c, "ec2", EC2);
        feed(c, "dell", DELL);
    }
    let everything = all.finish_all();
    assert_eq!(everything.messages.len(), 2);
    assert_eq!(everything.stats.chains_skipped, 0);
    let kept = one.finish_all();
    assert_eq!(kept.messages.len(), 1, "{:#?}", kept.messages);
    assert!(kept.messages[0].has_message_id("p1@flowtest"));
    // The one built is the same message, across both hosts.
    let same = everything
        .messages
        .iter()
        .find(|m| m.has_message_id("p1@flowtest"));
    assert_eq!(
        format!("{:?}", kept.messages[0]),
        format!("{:?}", same.unwrap())
    );
    assert_eq!(kept.stats.chains_skipped, 1);
    assert_eq!(kept.host_findings, everything.host_findings);
}

#[test]
fn a_refused_probe_is_looked_for_among_its_senders_rejections_only() {
    let log = "\
Nov  7 12:00:04 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from x.test[192.0.2.9]: 554 5.7.1 <a@new.test>: Relay access denied; from=<probe@provider.test> to=<a@new.test> proto=ESMTP helo=<x.test>
Nov  7 12:00:04 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from y.test[192.0.2.8]: 554 5.7.1 <b@new.test>: Relay access denied; from=<other@y.test> to=<b@new.test> proto=ESMTP helo=<y.test>";
    let mut c = Correlator::new(Limits::default());
    feed(&mut c, "ec2", log);
    let found = c.probe_candidates("<p9@flowtest>", None, Some("Probe@Provider.test"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].from.as_deref(), Some("probe@provider.test"));
    // An accepted probe is never matched to a rejection without a Message-ID.
    assert!(c.probe_candidates("<p9@flowtest>", None, None).is_empty());
}

#[test]
fn a_single_host_run_builds_no_chain_for_noqueue_rejects() {
    let noqueue = "Nov  7 12:00:04 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from x.test[192.0.2.9]: \
                   554 5.7.1 <a@other.test>: Relay access denied; from=<m@x.test> to=<a@other.test> \
                   proto=ESMTP helo=<x.test>";
    let mut plain = Correlator::new(Limits::default()).only_message_id("<p1@flowtest>");
    let mut single = Correlator::new(Limits::default())
        .only_message_id("<p1@flowtest>")
        .single_host();
    for c in [&mut plain, &mut single] {
        feed(c, "ec2", noqueue);
        feed(c, "ec2", EC2);
        feed(c, "ec2", noqueue);
    }
    let (plain, single) = (plain.finish_all(), single.finish_all());
    assert_eq!(plain.stats.chains_skipped, 2);
    assert_eq!(
        single.stats.chains_skipped, 0,
        "no chain was built for them"
    );
    assert_eq!(single.stats.records, plain.stats.records);
    assert_eq!(single.messages.len(), 1);
    assert_eq!(
        format!("{:?}", single.messages),
        format!("{:?}", plain.messages)
    );
    assert_eq!(single.host_findings, plain.host_findings);
}
