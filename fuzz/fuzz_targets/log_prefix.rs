//! Fuzz target: whole log lines in any layout (classic syslog, RFC 3339, journald, docker,
//! Postfix maillog, Dovecot's own log, bare) through `parse_line`, the stateful `LineParser`
//! (year rollover) and the message-id prefilter. Never panics; counters always add up.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[allow(dead_code)] // behind_prefix is for the single-grammar targets
mod common;

fuzz_target!(|data: &[u8]| {
    common::parse_everywhere(data);
});
