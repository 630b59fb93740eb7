//! `lab-sendgrid-inbound` against the real lab: a probe submitted to the SendGrid API stand-in
//! (started by `lab/up`) is queued (202 + X-Message-Id), relayed to the ec2 MX and delivered,
//! with SendGrid's two hops named as the scenario's stages.
//!
//! Needs the lab (`lab/up`); panics with a clear message when it is absent.
mod support;

use support::flowtest::{flowtest, hop_stages, lab_scenario, only, Cfg};
use support::{describe, lab};

#[test]
fn sendgrid_inbound_is_delivered_with_sendgrids_hops_as_stages() {
    let lab = lab();
    let _g = lab.healthy();
    let (name, text) = lab_scenario("lab-sendgrid-inbound.toml", "lab-sendgrid-inbound", |t| t);
    let cfg = Cfg::new(&[(name.as_str(), text)]);
    let (out, v) = flowtest(&lab, &cfg.path(), &["run", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = only(&v);
    assert_eq!(r["status"], "delivered", "{r:#}");
    let sub = &r["submission"];
    assert_eq!(sub["phase"], "http_api", "{r:#}");
    assert_eq!(sub["code"], 202, "{r:#}");
    assert_eq!(sub["queue_id"].as_str().map(str::len), Some(22), "{r:#}");
    assert_eq!(
        hop_stages(r),
        [
            "sendgrid-api",
            "sendgrid-filter",
            "ec2-mx",
            "tailscale-relay",
            "dovecot-lmtp"
        ],
        "{r:#}"
    );
    let hops = r["hops"].as_array().unwrap();
    assert_eq!(hops[0]["protocol"], "HTTP", "{r:#}");
    // The intake hop's milliseconds and the filter hop's Go time are both read.
    assert!(
        hops[0]["timestamp"]
            .as_str()
            .is_some_and(|t| t.contains('.')),
        "{r:#}"
    );
    assert!(hops[1]["timestamp"].is_string(), "{r:#}");
    assert_eq!(r["missing_stages"].as_array().unwrap().len(), 0, "{r:#}");
    assert_eq!(r["cleanup"]["deleted"], 1, "own probe removed: {r:#}");
}
