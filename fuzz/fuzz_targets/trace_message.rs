//! Fuzz target: the whole trace on arbitrary bytes, with stage matching, JSON and the human table.
#![no_main]
use std::sync::OnceLock;

use flowtest::core::trace::{render_human, trace_message, StageMatcher, TraceOptions};
use libfuzzer_sys::fuzz_target;

fn stages() -> &'static [StageMatcher] {
    static S: OnceLock<Vec<StageMatcher>> = OnceLock::new();
    S.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct P {
            path: Vec<StageMatcher>,
        }
        let p: P = toml::from_str(
            r#"
            [[path]]
            stage = "mx"
            by = "*.example.com"
            from_ip = "192.0.2.0/24"
            [[path]]
            stage = "relay"
            from = "*example*"
            protocol = "ESMTP*"
            [[path]]
            stage = "lmtp"
            protocol = "LMTP"
            optional = true
            "#,
        )
        .expect("fixed stages");
        p.path
    })
}

fuzz_target!(|data: &[u8]| {
    let opts = TraceOptions {
        now: chrono::DateTime::from_timestamp(1_795_824_000, 0).expect("fixed time"),
        fetched_at: None,
        stages: stages(),
    };
    if let Ok(t) = trace_message(data, &opts) {
        let json = serde_json::to_string(&t).expect("serialize");
        assert!(json.starts_with('{'));
        let _ = render_human(&t, 80);
    }
});
