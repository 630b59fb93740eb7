//! A real Prometheus (Debian's `/usr/bin/prometheus`) for canary tests: started inside the lab's
//! `internet` namespace with its own configuration and data directory in a temp dir, a 1 s
//! scrape interval and a free loopback port, killed when dropped. PromQL goes through its HTTP
//! API (`/api/v1/query`, `/api/v1/query_range`). Never the system service.
use std::time::Duration;

use serde_json::Value;

use super::http::{encode, get, wait_for};
use super::netns::{in_lab_ns, lab_free_port, LabProcess};
use super::Lab;

const BINARY: &str = "/usr/bin/prometheus";

/// One series of an instant query: its labels and value.
#[derive(Debug)]
pub struct Sample {
    pub labels: Value,
    pub value: f64,
}

pub struct Prometheus {
    /// host:port inside the lab's namespace.
    pub addr: String,
    process: LabProcess,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Start Prometheus scraping `target` (host:port inside the lab) every second, and wait
    /// (bounded) until it is ready.
    pub fn start(lab: &Lab, target: &str) -> Prometheus {
        assert!(
            std::path::Path::new(BINARY).is_file(),
            "{BINARY} is missing: `apt-get install -y prometheus` (lab/test installs it)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: flowtest\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", lab_free_port());
        let args = [
            BINARY.to_string(),
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={addr}"),
            "--log.level=warn".to_string(),
        ];
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut process = LabProcess::start(lab, &argv, &dir.path().join("prometheus.log"));
        let ready_addr = addr.clone();
        wait_for(30, "Prometheus to be ready", || {
            if let Some(s) = process.child.try_wait().expect("try_wait") {
                panic!("Prometheus exited ({s}): {}", process.output());
            }
            let a = ready_addr.clone();
            match in_lab_ns(move || get(&a, "/-/ready")) {
                Some((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        Prometheus {
            addr,
            process,
            _dir: dir,
        }
    }

    /// GET an API path; its `data`, or Err with what came back.
    fn api(&self, path: String) -> Result<Value, String> {
        let addr = self.addr.clone();
        let (status, body) = in_lab_ns(move || get(&addr, &path))
            .ok_or_else(|| format!("Prometheus did not answer; log:\n{}", self.process.output()))?;
        let v: Value =
            serde_json::from_str(&body).map_err(|e| format!("HTTP {status}, {e}: {body}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!("HTTP {status}: {body}"));
        }
        Ok(v["data"].clone())
    }

    /// An instant PromQL query, evaluated now or at `at` (Unix seconds).
    pub fn query(&self, expr: &str, at: Option<f64>) -> Result<Vec<Sample>, String> {
        let time = at.map(|t| format!("&time={t:.3}")).unwrap_or_default();
        let data = self.api(format!("/api/v1/query?query={}{time}", encode(expr)))?;
        let result = data["result"].as_array().ok_or_else(|| format!("{data}"))?;
        result
            .iter()
            .map(|r| {
                let value = r["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("no value in {r}"))?;
                Ok(Sample {
                    labels: r["metric"].clone(),
                    value,
                })
            })
            .collect()
    }

    /// The single value of an instant query, or Err when it has no (or several) series.
    pub fn value(&self, expr: &str, at: Option<f64>) -> Result<f64, String> {
        match self.query(expr, at)?.as_slice() {
            [one] => Ok(one.value),
            other => Err(format!("{expr}: expected one series, got {other:?}")),
        }
    }

    /// A range query of an expression with one series: its (Unix time, value) points.
    pub fn range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<(f64, f64)>, String> {
        let data = self.api(format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={}",
            encode(expr),
            step.as_secs_f64()
        ))?;
        let series = match data["result"].as_array().map(Vec::as_slice) {
            Some([one]) => one.clone(),
            _ => return Err(format!("{expr}: expected one series, got {data}")),
        };
        series["values"]
            .as_array()
            .ok_or_else(|| format!("no values: {series}"))?
            .iter()
            .map(|p| {
                let t = p[0].as_f64().ok_or_else(|| format!("bad point {p}"))?;
                let v = p[1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("bad point {p}"))?;
                Ok((t, v))
            })
            .collect()
    }
}
