//! Fuzz target: the Postfix message grammar. The first byte picks a syslog name and service
//! (multi-instance names included), the rest is the message after `program[pid]: `, so every
//! input reaches the Postfix parser rather than dying in the prefix.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const PROGRAMS: [&str; 18] = [
    "Nov  4 18:12:34 mx postfix/smtpd[123]: ",
    "Nov  4 18:12:34 mx postfix/cleanup[123]: ",
    "Nov  4 18:12:34 mx postfix/qmgr[123]: ",
    "Nov  4 18:12:34 mx postfix/smtp[123]: ",
    "Nov  4 18:12:34 mx postfix/lmtp[123]: ",
    "Nov  4 18:12:34 mx postfix/bounce[123]: ",
    "Nov  4 18:12:34 mx postfix/postscreen[123]: ",
    "Nov  4 18:12:34 mx postfix/pickup[123]: ",
    "Nov  4 18:12:34 mx postfix/local[123]: ",
    "Nov  4 18:12:34 mx postfix/error[123]: ",
    "Nov  4 18:12:34 mx postfix/virtual[123]: ",
    "Nov  4 18:12:34 mx postfix/trivial-rewrite[123]: ",
    "Nov  4 18:12:34 mx postfix-out/submission/smtpd[123]: ",
    "Nov  4 18:12:34 mx postfix-in/smtpd[123]: ",
    "Nov  4 18:12:34 mx mta/cleanup[123]: ",
    "Nov  4 18:12:34 mx postfix/tlsmgr[123]: ",
    "2025-11-04T18:12:34.123456789Z stdout F Nov  4 18:12:34 mx postfix/smtp[123]: ",
    "Nov  4 18:12:34 mx postfix/master[123]: ",
];

fuzz_target!(|data: &[u8]| {
    if let Some(text) = common::behind_prefix(&PROGRAMS, data) {
        common::parse_everywhere(&text);
    }
});
