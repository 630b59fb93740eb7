//! Fuzz target: the standalone Received date parser on arbitrary text. Anything it accepts must
//! format back to RFC 3339 and lie in the documented range.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(p) = flowtest::core::trace::parse_received_date(&text) {
        let s = flowtest::core::trace::format_rfc3339(&p.utc, p.precision);
        assert!(s.ends_with('Z'));
        assert!(p.offset_seconds.abs() <= 18 * 3600);
    }
});
