//! Fuzz target: the configuration loader on files. The input is split at the first NUL byte
//! into `flowtest.toml` and one scenario file, written into a private temporary directory
//! (`scenarios/` beside the config), and loaded with `Config::load`. It must never panic, and
//! every error must say which file it is about.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use flowtest::config::Config;
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("flowtest-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(d.join("scenarios")).expect("temp dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let (config, scenario) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let config_path = dir().join("flowtest.toml");
    let scenario_path = dir().join("scenarios").join("fuzz.toml");
    std::fs::write(&config_path, config).expect("write config");
    if scenario.is_empty() {
        let _ = std::fs::remove_file(&scenario_path);
    } else {
        std::fs::write(&scenario_path, scenario).expect("write scenario");
    }
    if let Err(e) = Config::load(&config_path) {
        // The file is named (a scenarios_dir elsewhere names that directory's file).
        assert!(!e.file.as_os_str().is_empty());
        let text = e.to_string();
        assert!(text.starts_with(&*e.file.to_string_lossy()), "{text}");
        if let Some(line) = e.line {
            assert!(line >= 1, "{text}");
        }
    }
});
