//! Opening a local page in Debian's headless Chromium for tests: what the page wrote to the
//! console, which network requests it made, a screenshot, and the DOM as the browser parsed it.
//! Every run has its own empty profile, resolves no host name (nothing can leave the machine) and
//! is killed after [`TIMEOUT`]. A missing browser is a failure naming the package, never a skip.
//! Not here: what a page should contain (the tests).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{describe, run_with_timeout};

/// How long one browser run may take (a cold start on a busy two-core machine included).
pub const TIMEOUT: Duration = Duration::from_secs(120);

const MISSING: &str = "chromium is not installed: install Debian's `chromium` package \
                       (`apt-get install -y chromium`; lab/test installs it)";

/// Flags for every run: headless, no GPU or sandbox (tests run as root in a container), no
/// first-run, sync, update or background traffic, and every host name mapped to nothing.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-breakpad",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
];

/// The browser executable, from `PATH`.
pub fn executable() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{MISSING}"))
}

/// What a page did when it was opened.
#[derive(Debug)]
pub struct Visit {
    /// Every console message the page produced (script output, blocked loads, policy
    /// violations), as Chromium logged it.
    pub console: Vec<String>,
    /// URLs of the network requests the page started. A `file:` page is read outside the
    /// network stack, so a self-contained page has none.
    pub page_requests: Vec<String>,
    /// Requests the browser made on its own (update checks and the like), not the page's.
    pub browser_requests: Vec<String>,
}

fn file_url(page: &Path) -> String {
    let abs = page
        .canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    format!("file://{}", abs.display())
}

/// A command for one run with a fresh, empty profile in `profile`.
fn browser(profile: &Path) -> Command {
    let mut cmd = Command::new(executable());
    cmd.args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Opens `page` at 1280x2000, saves a screenshot to `screenshot`, and reports its console
/// messages and network requests.
pub fn visit(page: &Path, screenshot: &Path) -> Visit {
    let scratch = tempfile::tempdir().expect("temp dir");
    let net_log = scratch.path().join("net-log.json");
    let mut cmd = browser(&scratch.path().join("profile"));
    cmd.arg(format!("--log-net-log={}", net_log.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1280,2000")
        .arg(file_url(page));
    let out = run_with_timeout(cmd, b"", TIMEOUT);
    assert!(out.status.success(), "chromium failed: {}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let requests = requests(&net_log);
    Visit {
        console: console_messages(&stderr),
        page_requests: requests.page,
        browser_requests: requests.browser,
    }
}

/// The page's DOM after parsing, serialised by the browser.
pub fn dom(page: &Path) -> String {
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut cmd = browser(&scratch.path().join("profile"));
    cmd.arg("--dump-dom").arg(file_url(page));
    let out = run_with_timeout(cmd, b"", TIMEOUT);
    assert!(out.status.success(), "chromium failed: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Console messages in Chromium's log: `...:INFO:CONSOLE:12] "text", source: URL (12)`.
pub fn console_messages(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect()
}

pub struct Requests {
    pub page: Vec<String>,
    pub browser: Vec<String>,
}

/// The URL requests in a net log (`--log-net-log`), split by who started them: the browser's
/// own have no initiating origin (`"initiator": "not an origin"`); anything else came from a
/// page.
pub fn requests(net_log: &Path) -> Requests {
    let text = std::fs::read_to_string(net_log)
        .unwrap_or_else(|e| panic!("chromium wrote no net log at {}: {e}", net_log.display()));
    let log: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the net log {} is not JSON: {e}", net_log.display()));
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .expect("the net log names its URL_REQUEST_START_JOB event type");
    let events = log["events"].as_array().expect("the net log has events");
    let mut out = Requests {
        page: Vec::new(),
        browser: Vec::new(),
    };
    for e in events
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
    {
        let Some(url) = e["params"]["url"].as_str() else {
            continue;
        };
        match e["params"]["initiator"].as_str() {
            Some("not an origin") => out.browser.push(url.to_owned()),
            _ => out.page.push(url.to_owned()),
        }
    }
    out
}
