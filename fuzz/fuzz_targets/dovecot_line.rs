//! Fuzz target: the Dovecot message grammar, both ways Dovecot logs: its own `log_path` file
//! (`<stamp> lmtp(user)<pid><session>: Level: msg`, the process token from the input) and via
//! syslog (`... dovecot: lmtp(user)<pid><session>: msg`). The first byte picks the layout.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const PREFIXES: [&str; 6] = [
    "2025-11-04 18:12:34.123456 ",
    "Nov 04 18:12:34 ",
    "Nov  4 18:12:34 imap dovecot: ",
    "2025-11-04T18:12:34.5+01:00 imap dovecot[77]: ",
    "Nov  4 18:12:34 imap dovecot: lmtp(alice@corp.test)<12><kJ8vBu4Hx2dFEwAAq1yZ0g>: ",
    "2025-11-04 18:12:34 auth-worker(4242): ",
];

fuzz_target!(|data: &[u8]| {
    if let Some(text) = common::behind_prefix(&PREFIXES, data) {
        common::parse_everywhere(&text);
    }
});
