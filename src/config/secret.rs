//! Secrets: referenced by environment variable or file, resolved at the edge, never printed.
//!
//! A [`Secret`] wraps `secrecy::SecretString`; its `Debug` and `Display` say `[redacted]`, so a
//! secret cannot leak through `{:?}` of any struct that holds it. Only [`Secret::expose`] reads
//! the value, and only the code that hands it to a server calls it.
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(SecretString::from(value))
    }
    /// The secret's value. Call only to hand it to a server or a MAC; never format it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret comes from. Config files hold only these references, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    /// A program (and its arguments, no shell) that prints the secret on stdout, e.g. one that
    /// refreshes an OAuth 2 access token; run at most [`COMMAND_TIMEOUT`].
    Command(Vec<String>),
}

/// How long a secret's command may run.
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a secret could not be had. The message names the reference, never a value; sources
/// carry no secret bytes either (`Utf8Error` holds positions only).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {name} is not set")]
    EnvMissing {
        name: String,
        #[source]
        source: std::env::VarError,
    },
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    #[error("cannot read secret file {}: {}", path.display(), describe_io(source))]
    FileUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read secret file {}: not UTF-8 text", path.display())]
    FileNotText {
        path: PathBuf,
        #[source]
        source: std::str::Utf8Error,
    },
    #[error("secret file {} is empty", .0.display())]
    FileEmpty(PathBuf),
    /// The message names the program and what went wrong, never its output.
    #[error("secret command {command}: {reason}")]
    CommandFailed { command: String, reason: String },
}

/// An I/O error's kind, or for an oversized file its message (which holds only the cap, never
/// file contents).
fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::InvalidData => e.to_string(),
        k => k.to_string(),
    }
}

impl SecretRef {
    /// Read the secret now. Trailing newlines of files and variables are not part of the secret.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            SecretRef::Env(name) => {
                let v = std::env::var(name).map_err(|source| SecretError::EnvMissing {
                    name: name.clone(),
                    source,
                })?;
                let v = v.trim_end_matches(['\r', '\n']).to_string();
                if v.is_empty() {
                    return Err(SecretError::EnvEmpty(name.clone()));
                }
                Ok(Secret::new(v))
            }
            SecretRef::File(path) => read_secret_file(path),
            SecretRef::Command(argv) => run_secret_command(argv),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(n) => format!("${n}"),
            SecretRef::File(p) => p.display().to_string(),
            SecretRef::Command(argv) => format!("`{}`", argv.join(" ")),
        }
    }
}

/// Run `argv` (no shell, stdin closed, stderr dropped) and take its stdout, trailing newlines
/// removed, as the secret; a non-zero exit, no output or a run past [`COMMAND_TIMEOUT`] is an
/// error.
fn run_secret_command(argv: &[String]) -> Result<Secret, SecretError> {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let failed = |reason: String| SecretError::CommandFailed {
        command: argv.first().cloned().unwrap_or_default(),
        reason,
    };
    let Some((program, args)) = argv.split_first() else {
        return Err(failed("is empty".into()));
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed(format!("cannot start: {}", e.kind())))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| failed("no stdout".into()))?;
    // Read on a thread so a command that fills the pipe cannot block its own exit.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.by_ref().take(64 * 1024).read_to_end(&mut out);
        out
    });
    let started = crate::clock::std_instant();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if started.elapsed() < COMMAND_TIMEOUT => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "still running after {} s; killed",
                    COMMAND_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(failed(format!("cannot wait for it: {}", e.kind()))),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(failed(format!("exited with {status}")));
    }
    let text =
        String::from_utf8(out).map_err(|_| failed("printed something that is not UTF-8".into()))?;
    let v = text.trim_end_matches(['\r', '\n']).to_string();
    if v.is_empty() {
        return Err(failed("printed nothing".into()));
    }
    Ok(Secret::new(v))
}

fn read_secret_file(path: &Path) -> Result<Secret, SecretError> {
    let raw =
        super::files::read_capped(path, super::files::MAX_CONFIG_FILE_BYTES).map_err(|source| {
            SecretError::FileUnreadable {
                path: path.to_path_buf(),
                source,
            }
        })?;
    let text = String::from_utf8(raw).map_err(|e| SecretError::FileNotText {
        path: path.to_path_buf(),
        source: e.utf8_error(),
    })?;
    let v = text.trim_end_matches(['\r', '\n']).to_string();
    if v.is_empty() {
        return Err(SecretError::FileEmpty(path.to_path_buf()));
    }
    Ok(Secret::new(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2-very-secret".into());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            password: Secret,
        }
        let h = Holder { password: s };
        assert!(!format!("{h:?}").contains("hunter2"));
        assert_eq!(h.password.expose(), "hunter2-very-secret");
    }

    #[test]
    fn file_secret_trims_newline_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        assert_eq!(
            SecretRef::File(p.clone()).resolve().unwrap().expose(),
            "s3cret"
        );
        std::fs::write(&p, "\n").unwrap();
        assert!(matches!(
            SecretRef::File(p.clone()).resolve().unwrap_err(),
            SecretError::FileEmpty(f) if f == p
        ));
        let missing = dir.path().join("nope");
        let e = SecretRef::File(missing.clone()).resolve().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot read secret file {}: entity not found",
                missing.display()
            )
        );
        let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(io.map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));

        std::fs::write(&p, b"s3cret\xff\n").unwrap();
        let e = SecretRef::File(p.clone()).resolve().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot read secret file {}: not UTF-8 text", p.display())
        );
        assert!(
            !format!("{e:?}").contains("115, 51"),
            "no secret bytes: {e:?}"
        );
    }

    #[test]
    fn command_secret_is_its_output_and_failures_say_why_not_what() {
        let cmd = |s: &str| SecretRef::Command(vec!["sh".into(), "-c".into(), s.into()]);
        assert_eq!(cmd("echo ya29.tok").resolve().unwrap().expose(), "ya29.tok");
        let e = cmd("echo leaked; exit 3")
            .resolve()
            .unwrap_err()
            .to_string();
        assert_eq!(e, "secret command sh: exited with exit status: 3");
        let e = cmd("true").resolve().unwrap_err().to_string();
        assert!(e.ends_with("printed nothing"), "{e}");
        let e = SecretRef::Command(vec!["/nonexistent/flowtest-token".into()])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot start"), "{e}");
    }

    #[test]
    fn missing_env_names_the_variable() {
        let e = SecretRef::Env("FLOWTEST_TEST_SURELY_UNSET_VAR".into())
            .resolve()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable FLOWTEST_TEST_SURELY_UNSET_VAR is not set"
        );
    }
}
