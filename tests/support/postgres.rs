//! A throwaway PostgreSQL cluster for tests: Debian's `postgresql` binaries
//! (`/usr/lib/postgresql/*/bin`), a fresh cluster in a temporary directory (under /tmp/store when
//! it exists), listening on a free loopback port and on a socket directory inside it, with
//! password (SCRAM) authentication for its one user. Run as `nobody` when the test runs as root
//! (PostgreSQL refuses root). Stopped and removed when dropped, also when the test panicked.
//! It never skips: missing binaries are a failure that says which package to install.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::{describe, run_with_timeout};

/// The cluster's one user (its superuser) and its password.
pub const USER: &str = "flowtest";
pub const PASSWORD: &str = "pg-test-secret-7f3a";

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    as_nobody: bool,
}

/// The directory holding Debian's PostgreSQL binaries, the newest version installed.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.retain(|v| v.join("bin/initdb").exists());
    versions.sort_by_key(|v| {
        v.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().map(|v| v.join("bin")).expect(
        "PostgreSQL is not installed: `apt-get install -y postgresql` (lab/test installs it)",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// initdb and start a new cluster; panics with the server's log when it does not come up.
    pub fn start() -> Cluster {
        let bin = bin_dir();
        let parent = Path::new("/tmp/store");
        let dir = if parent.is_dir() {
            tempfile::tempdir_in(parent).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let as_nobody = is_root();
        let cluster = Cluster {
            dir,
            bin,
            port: free_port(),
            as_nobody,
        };
        std::fs::write(cluster.dir.path().join("pwfile"), PASSWORD).unwrap();
        std::fs::create_dir(cluster.socket_dir()).unwrap();
        if as_nobody {
            let out = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(cluster.dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "chown: {}", describe(&out));
        }
        let data = cluster.data_dir();
        cluster.pg(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                USER,
                "--pwfile",
                &cluster.dir.path().join("pwfile").display().to_string(),
                "--auth",
                "scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale",
                "C",
            ],
        );
        cluster.restart();
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Where the server's Unix socket is (reachable from the lab's network namespaces too).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// Run one of the PostgreSQL programs (as `nobody` when root); panics with its output and
    /// the server log when it fails.
    fn pg(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).current_dir(self.dir.path());
        let out = run_with_timeout(cmd, b"", Duration::from_secs(90));
        assert!(
            out.status.success(),
            "{program} failed: {}\nserver log:\n{}",
            describe(&out),
            std::fs::read_to_string(self.log_file()).unwrap_or_default()
        );
        out
    }

    /// Run SQL as the cluster's superuser over the socket; its output (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.psql_env(db, sql);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn psql_env(&self, db: &str, sql: &str) -> Output {
        let exe = self.bin.join("psql");
        let sock = self.socket_dir().display().to_string();
        let port = self.port.to_string();
        let args = [
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &sock,
            "-p",
            &port,
            "-U",
            USER,
            "-d",
            db,
            "-c",
            sql,
        ];
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--", "env"])
                .arg(format!("PGPASSWORD={PASSWORD}"))
                .arg(&exe);
            c
        } else {
            let mut c = Command::new(&exe);
            c.env("PGPASSWORD", PASSWORD);
            c
        };
        cmd.args(args).current_dir(self.dir.path());
        let out = run_with_timeout(cmd, b"", Duration::from_secs(60));
        assert!(out.status.success(), "psql {sql:?}: {}", describe(&out));
        out
    }

    /// A new, empty database.
    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
    }

    /// The URL of `db` over TCP loopback.
    pub fn tcp_url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// The URL of `db` over the Unix socket (a percent-encoded socket directory as the host).
    pub fn socket_url(&self, db: &str) -> String {
        let host = self.socket_dir().display().to_string().replace('/', "%2F");
        format!("postgres://{USER}@{host}:{}/{db}", self.port)
    }

    /// End every session of `db` but psql's own, as a lost connection would.
    pub fn kill_sessions(&self, db: &str) -> usize {
        let n = self.psql(
            "postgres",
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = '{db}' AND pid <> pg_backend_pid()"
            ),
        );
        n.parse().unwrap_or(0)
    }

    /// Stop the server now (the store's next operation finds nobody there).
    pub fn stop(&self) {
        let data = self.data_dir().display().to_string();
        self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    /// Start the server (again, after [`Cluster::stop`]).
    pub fn restart(&self) {
        let data = self.data_dir().display().to_string();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.socket_dir().display()
        );
        let log = self.log_file().display().to_string();
        self.pg(
            "pg_ctl",
            &[
                "-D", &data, "-o", &options, "-l", &log, "-w", "-t", "60", "start",
            ],
        );
    }
}

impl Cluster {
    /// Turn TLS on with a certificate for `127.0.0.1` and `localhost` from a new private CA, and
    /// accept TCP connections over TLS only (`hostssl`; the socket stays for psql). Returns the
    /// CA certificate's path.
    pub fn require_tls(&self) -> PathBuf {
        let d = self.dir.path();
        let openssl = |args: &[&str]| {
            let mut c = Command::new("openssl");
            c.args(args).current_dir(d);
            let out = run_with_timeout(c, b"", Duration::from_secs(60));
            assert!(out.status.success(), "openssl {args:?}: {}", describe(&out));
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=flowtest test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        let data = self.data_dir();
        for f in ["server.crt", "server.key"] {
            std::fs::copy(d.join(f), data.join(f)).unwrap();
        }
        if self.as_nobody {
            let out = Command::new("chown")
                .args(["nobody:nogroup"])
                .arg(data.join("server.crt"))
                .arg(data.join("server.key"))
                .output()
                .unwrap();
            assert!(out.status.success(), "chown: {}", describe(&out));
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        self.psql("postgres", "ALTER SYSTEM SET ssl = on");
        self.psql("postgres", "SELECT pg_reload_conf()");
        // The reload is asynchronous: wait until the server says TLS is on.
        for _ in 0..100 {
            if self.psql("postgres", "SHOW ssl") == "on" {
                return d.join("ca.pem");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("TLS did not come on");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        if !data.join("postmaster.pid").exists() {
            return;
        }
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        // No panic in a drop: pg_ctl's own timeout bounds the wait.
        let _ = cmd
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .stdin(std::process::Stdio::null())
            .output();
    }
}
