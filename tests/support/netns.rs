//! Running test code inside the lab's `internet` network namespace without a child process: a
//! fresh thread enters the namespace (setns applies to the calling thread only) and runs a
//! closure there. Sockets it creates stay in that namespace whichever thread later uses them, so
//! a listener bound there serves processes started with `lab/run`, and a connection made there
//! reaches their loopback ports. Not here: starting the lab or its processes (`super::Lab`).
use std::fs::File;
use std::net::TcpListener;
use std::os::fd::AsFd;

/// The namespace `lab/run` runs commands in.
const NETNS: &str = "/run/netns/internet";

/// Run `f` on a thread inside the lab's `internet` network namespace; its result.
pub fn in_lab_ns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let ns = File::open(NETNS).unwrap_or_else(|e| {
            panic!("cannot open {NETNS} (is the lab up, and are we root?): {e}")
        });
        rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap_or_else(|e| panic!("cannot enter the lab's network namespace: {e}"));
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A listener on a free loopback port inside the lab's `internet` namespace.
pub fn lab_listener() -> TcpListener {
    in_lab_ns(|| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port in the lab"))
}

/// A loopback port free inside the lab's `internet` namespace (for a process to bind).
pub fn lab_free_port() -> u16 {
    lab_listener().local_addr().expect("local address").port()
}

/// A process started in the lab (`lab/run`, which execs, so this is the process itself),
/// killed (SIGKILL) and reaped when dropped, even when the test panicked.
pub struct LabProcess {
    pub child: std::process::Child,
    /// Where its stdout and stderr go.
    pub log: std::path::PathBuf,
}

impl LabProcess {
    /// Start `argv` inside the lab with stdout and stderr appended to `log`.
    pub fn start(lab: &super::Lab, argv: &[&str], log: &std::path::Path) -> LabProcess {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let err = out.try_clone().expect("clone the log handle");
        let child = std::process::Command::new(lab.repo.join("lab/run"))
            .args(argv)
            .env("FLOWTEST_LAB_DIR", &lab.dir)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {argv:?} in the lab: {e}"));
        LabProcess {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal by name (`-HUP`, `-TERM`, `-KILL`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill {sig} {}", self.pid());
    }

    /// Wait at most `secs` for the process to exit; its status, or None if it still runs.
    pub fn wait_exit(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let deadline = ::flowtest::clock::std_instant() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            if ::flowtest::clock::std_instant() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// What it has written so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
