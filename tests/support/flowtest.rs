//! Running the real `flowtest` binary inside the lab from tests: private configurations
//! (the lab's own flowtest.toml with a per-test state directory), edited copies of the lab
//! scenarios, and JSON results.
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use super::{describe, Lab};

/// A private configuration: the lab's flowtest.toml with its own state directory, plus the
/// given scenarios (name, TOML text). Runs never share state with other tests.
pub struct Cfg {
    dir: tempfile::TempDir,
}

impl Cfg {
    pub fn new(scenarios: &[(&str, String)]) -> Cfg {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let base = std::fs::read_to_string(repo().join("lab/flowtest.toml")).unwrap();
        let text = base.replace(
            "state_dir = \"${FLOWTEST_LAB_DIR}/state\"",
            &format!("state_dir = {:?}", state.display().to_string()),
        );
        assert_ne!(
            text, base,
            "lab/flowtest.toml changed shape: update this test"
        );
        std::fs::write(dir.path().join("flowtest.toml"), text).unwrap();
        std::fs::create_dir(dir.path().join("scenarios")).unwrap();
        for (name, toml) in scenarios {
            std::fs::write(dir.path().join(format!("scenarios/{name}.toml")), toml).unwrap();
        }
        Cfg { dir }
    }

    /// The shipped lab scenarios, unedited, as `lab/run flowtest run --all` uses them (with this
    /// configuration's own state directory).
    pub fn shipped() -> Cfg {
        let scen: Vec<(String, String)> = [
            "lab-inbound.toml",
            "lab-provider-inbound.toml",
            "lab-outbound.toml",
        ]
        .iter()
        .map(|f| lab_scenario(f, f.trim_end_matches(".toml"), |t| t))
        .collect();
        Cfg::new(
            &scen
                .iter()
                .map(|(n, t)| (n.as_str(), t.clone()))
                .collect::<Vec<_>>(),
        )
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("flowtest.toml")
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A shipped lab scenario's text, renamed and edited.
pub fn lab_scenario(file: &str, name: &str, edit: impl Fn(String) -> String) -> (String, String) {
    let text = std::fs::read_to_string(repo().join("lab/scenarios").join(file)).unwrap();
    let orig_name = file.trim_end_matches(".toml");
    let text = text.replace(
        &format!("name = \"{orig_name}\""),
        &format!("name = \"{name}\""),
    );
    (name.to_string(), edit(text))
}

pub fn flowtest(lab: &Lab, cfg: &Path, args: &[&str]) -> (Output, Value) {
    let bin = env!("CARGO_BIN_EXE_flowtest");
    let cfg = cfg.display().to_string();
    let mut argv = vec![bin, "--config", cfg.as_str()];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--format", "json", "--quiet"]);
    let out = lab.run(&argv);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("flowtest printed no JSON ({e}): {}", describe(&out)));
    (out, v)
}

/// The stage names of a result's hops, oldest first (hops without a stage left out).
pub fn hop_stages(r: &Value) -> Vec<String> {
    r["hops"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["stage"].as_str().map(str::to_string))
        .collect()
}

pub fn only(v: &Value) -> &Value {
    let r = v["results"].as_array().expect("results");
    assert_eq!(r.len(), 1, "{v:#}");
    &r[0]
}
