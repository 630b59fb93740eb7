//! Log sources: where server logs come from, as configured per host in flowtest.toml
//! (`[[log_source]]`): a file (with its rotated `.1` or `.1.gz` sibling; gzip read transparently;
//! followed while it grows by `edge::follow`), a command printing log lines (`{since}` / `{until}` placeholders, timeout, killed on drop), or
//! a docker container (`docker logs --timestamps`). Owns reading bytes and lines; does not parse
//! them (`core::logs`) or correlate them (`core::fusion`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio::sync::mpsc;

use crate::core::logs::{parse_line, BoundedLines, LineParser, ParseContext, Parsed};
use crate::edge::logfile::{storage_of, text_reader, Storage};

/// Longest line delivered; longer ones are cut (binary files must not grow memory).
pub use crate::config::logsource::{CommandSpec, LogSourceConfig, LogSourceKind};

/// A source's configuration cannot be used as it is.
fn config_error(cfg: &LogSourceConfig, msg: impl Into<String>) -> LogSourceError {
    LogSourceError::Config {
        role: cfg.role.clone(),
        msg: msg.into(),
    }
}

/// Check a source before I/O, as an edge error.
fn checked(cfg: &LogSourceConfig) -> Result<(), LogSourceError> {
    cfg.validate().map_err(|msg| config_error(cfg, msg))
}

/// The parse context of a source, as an edge error.
fn context(cfg: &LogSourceConfig, now: DateTime<Utc>) -> Result<ParseContext, LogSourceError> {
    cfg.parse_context(now).map_err(|msg| config_error(cfg, msg))
}

pub const LINE_CAP: usize = 64 * 1024;
/// Most bytes one window fetch may return (a runaway command must not fill memory).
pub const MAX_WINDOW_BYTES: usize = 256 * 1024 * 1024;
/// Lines may be this much out of order in a log (several processes write it).
const ORDER_SLACK: TimeDelta = TimeDelta::minutes(5);

#[derive(Debug, thiserror::Error)]
pub enum LogSourceError {
    #[error("log source {role}: {msg}")]
    Config { role: String, msg: String },
    #[error("log source {role}: cannot read {path}: {err}")]
    Io {
        role: String,
        path: String,
        err: io::Error,
    },
    #[error("log source {role}: command failed to start: {err}")]
    Spawn { role: String, err: io::Error },
    #[error("log source {role}: command timed out after {secs} s (killed)")]
    Timeout { role: String, secs: u64 },
    #[error("log source {role}: command exited with {status}: {stderr}")]
    Failed {
        role: String,
        status: String,
        stderr: String,
    },
    #[error("log source {role}: more than {MAX_WINDOW_BYTES} bytes of output; narrow the window")]
    TooLarge { role: String },
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Substitute `{since}`, `{until}`, `{since_epoch}`, `{until_epoch}`.
pub fn substitute(s: &str, since: DateTime<Utc>, until: DateTime<Utc>) -> String {
    s.replace("{since_epoch}", &since.timestamp().to_string())
        .replace("{until_epoch}", &until.timestamp().to_string())
        .replace("{since}", &rfc3339(since))
        .replace("{until}", &rfc3339(until))
}

/// The argv a command or docker source runs for a window.
pub fn command_argv(
    cfg: &LogSourceConfig,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<Vec<String>> {
    match cfg.kind {
        LogSourceKind::File => None,
        LogSourceKind::Command => Some(match cfg.command.as_ref()? {
            CommandSpec::Shell(s) => vec!["sh".into(), "-c".into(), substitute(s, since, until)],
            CommandSpec::Argv(v) => v.iter().map(|a| substitute(a, since, until)).collect(),
        }),
        LogSourceKind::Docker => Some(vec![
            "docker".into(),
            "logs".into(),
            "--timestamps".into(),
            "--since".into(),
            rfc3339(since),
            "--until".into(),
            rfc3339(until),
            cfg.container.clone()?,
        ]),
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// First timestamp found in the lines following byte `pos` (after skipping the partial line).
fn first_time_after(
    f: &mut File,
    pos: u64,
    ctx: &ParseContext,
) -> io::Result<Option<(DateTime<Utc>, u64)>> {
    f.seek(SeekFrom::Start(pos))?;
    let mut r = BufReader::with_capacity(64 * 1024, &mut *f);
    let mut off = pos;
    let mut buf = Vec::new();
    if pos > 0 {
        // Skip the rest of the line we landed in.
        off += r.read_until(b'\n', &mut buf)? as u64;
    }
    for _ in 0..64 {
        buf.clear();
        let n = r
            .by_ref()
            .take(LINE_CAP as u64)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(t) = parse_line(&buf, ctx).and_then(|r| r.timestamp) {
            return Ok(Some((t, off)));
        }
        off += n as u64;
    }
    Ok(None)
}

/// Byte offset at which to start reading `path` so that no line at or after `since` (minus the
/// ordering slack) is missed: a binary search on line timestamps. Files whose lines carry no
/// timestamp are read from the start.
///
/// Where that time falls in the hour a named zone's clock shows twice, the search aims before
/// the fold's first pass: a line read on its own is taken at the first pass, so the second
/// pass looks an hour older than it is, and a parser that started inside it would read it so.
pub fn seek_offset_for(path: &Path, since: DateTime<Utc>, ctx: &ParseContext) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let target = since - ORDER_SLACK;
    let target = ctx.tz.before_fold(target).unwrap_or(target);
    let (mut lo, mut hi) = (0u64, len);
    // Invariant: every line starting before `lo` is older than `target`.
    while hi - lo > 256 * 1024 {
        let mid = lo + (hi - lo) / 2;
        match first_time_after(&mut f, mid, ctx)? {
            Some((t, off)) if t < target => lo = off.max(lo),
            Some(_) => hi = mid,
            None => hi = mid,
        }
    }
    if lo == 0 {
        return Ok(0);
    }
    // Start at a line boundary at or before `lo`.
    let start = lo.saturating_sub(1);
    f.seek(SeekFrom::Start(start))?;
    let mut r = BufReader::new(&mut f);
    let mut skip = Vec::new();
    let n = r.read_until(b'\n', &mut skip)? as u64;
    Ok(start + n)
}

/// The rotated sibling of `path`: `<path>.1`, else `<path>.1.gz` (logrotate without
/// `delaycompress`), when one exists.
fn rotated_sibling(path: &Path) -> Option<PathBuf> {
    [".1", ".1.gz"].iter().find_map(|suffix| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        p.exists().then_some(p)
    })
}

/// The lines of a file source covering [since, until]: the rotated sibling first when the
/// current file starts after `since`, then `<path>`; reading starts near `since` (binary search;
/// a gzip file is read from its start, its older lines skipped) and stops once lines are well
/// past `until`.
pub fn read_file_window(
    cfg: &LogSourceConfig,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Vec<u8>>, LogSourceError> {
    checked(cfg)?;
    let path = cfg
        .path
        .clone()
        .ok_or_else(|| config_error(cfg, "no path"))?;
    let ctx = context(cfg, now)?;
    let io_err = |p: &Path, err: io::Error| LogSourceError::Io {
        role: cfg.role.clone(),
        path: p.display().to_string(),
        err,
    };
    let mut files = Vec::new();
    if let Some(rotated) = rotated_sibling(&path) {
        // The current file's first line: if it is newer than `since`, the window reaches back
        // into the rotated file. A first line in a named zone's fold, read alone, may be an
        // hour older than it is: the rotated file is read then too.
        let mut f = File::open(&path).map_err(|e| io_err(&path, e))?;
        let first = first_time_after(&mut f, 0, &ctx).map_err(|e| io_err(&path, e))?;
        if first.is_none_or(|(t, _)| t > since || ctx.tz.before_fold(t).is_some()) {
            files.push(rotated);
        }
    }
    files.push(path);
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for p in files {
        let mut f = File::open(&p).map_err(|e| io_err(&p, e))?;
        let compressed = storage_of(&mut f).map_err(|e| io_err(&p, e))? == Storage::Gzip;
        if !compressed {
            let start = seek_offset_for(&p, since, &ctx).map_err(|e| io_err(&p, e))?;
            f.seek(SeekFrom::Start(start)).map_err(|e| io_err(&p, e))?;
        }
        let reader = text_reader(f, 1 << 20).map_err(|e| io_err(&p, e))?;
        let mut lines = BoundedLines::new(reader, LINE_CAP);
        let mut parser = LineParser::new(ctx.clone());
        while let Some(l) = lines.next_line().map_err(|e| io_err(&p, e))? {
            let parsed = parser.parse_read(&l);
            let l = l.bytes();
            if let Parsed::Record(r) = parsed {
                if r.timestamp.is_some_and(|t| t > until + ORDER_SLACK) {
                    break;
                }
                // What a seek skips in a plain file is skipped line by line in a gzip one.
                if compressed && r.timestamp.is_some_and(|t| t < since - ORDER_SLACK) {
                    continue;
                }
            }
            bytes += l.len();
            if bytes > MAX_WINDOW_BYTES {
                return Err(LogSourceError::TooLarge {
                    role: cfg.role.clone(),
                });
            }
            out.push(l.to_vec());
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Commands and docker

fn docker_time(line: &[u8]) -> Option<DateTime<Utc>> {
    let sp = memchr::memchr(b' ', line)?;
    let s = std::str::from_utf8(&line[..sp]).ok()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Run a command or docker source for [since, until] and return its lines. The child is killed
/// on timeout and when this future is dropped. docker's stderr is the container's stderr (where
/// Dovecot logs), so for docker both streams are lines, merged by their docker timestamps.
pub async fn fetch_window(
    cfg: &LogSourceConfig,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Vec<u8>>, LogSourceError> {
    // A file source is checked by its reader.
    if cfg.kind == LogSourceKind::File {
        let role = cfg.role.clone();
        let cfg = cfg.clone();
        return tokio::task::spawn_blocking(move || read_file_window(&cfg, since, until, now))
            .await
            .map_err(|e| LogSourceError::Spawn {
                role,
                err: io::Error::other(e),
            })?;
    }
    checked(cfg)?;
    let argv =
        command_argv(cfg, since, until).ok_or_else(|| config_error(cfg, "nothing to run"))?;
    let role = cfg.role.clone();
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|err| LogSourceError::Spawn {
        role: role.clone(),
        err,
    })?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let limit = MAX_WINDOW_BYTES as u64 + 1;
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut so = (&mut stdout).take(limit);
        let mut se = (&mut stderr).take(limit);
        let (a, b) = tokio::join!(so.read_to_end(&mut out), se.read_to_end(&mut err));
        a?;
        b?;
        let status = child.wait().await?;
        Ok::<_, io::Error>((status, out, err))
    };
    let secs = cfg.timeout().as_secs();
    let (status, out, err) = match tokio::time::timeout(cfg.timeout(), work).await {
        Ok(r) => r.map_err(|err| LogSourceError::Spawn {
            role: role.clone(),
            err,
        })?,
        // Dropping `work` drops the child: kill_on_drop ends it.
        Err(_) => return Err(LogSourceError::Timeout { role, secs }),
    };
    if out.len() > MAX_WINDOW_BYTES || err.len() > MAX_WINDOW_BYTES {
        return Err(LogSourceError::TooLarge { role });
    }
    if !status.success() {
        let msg = String::from_utf8_lossy(&err);
        let first = msg.lines().next().unwrap_or("").chars().take(300).collect();
        return Err(LogSourceError::Failed {
            role,
            status: status.to_string(),
            stderr: first,
        });
    }
    let split = |b: &[u8]| -> Vec<Vec<u8>> {
        b.split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| l[..l.len().min(LINE_CAP)].to_vec())
            .collect()
    };
    let mut lines = split(&out);
    if cfg.kind == LogSourceKind::Docker {
        lines.extend(split(&err));
        // Stable: lines without a docker stamp keep their relative place at the start.
        lines.sort_by_key(|l| docker_time(l));
    }
    Ok(lines)
}

// ---------------------------------------------------------------------------------------------
// Following a command

/// Run a long-lived command (e.g. `docker logs -f`, `ssh host tail -F`) and deliver its stdout
/// lines. The child is killed when the handle is dropped.
pub fn follow_command(
    argv: Vec<String>,
) -> Result<(CommandFollow, mpsc::Receiver<Vec<u8>>), io::Error> {
    let Some((prog, args)) = argv.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let mut child = tokio::process::Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel(4096);
    let task = tokio::spawn(async move {
        let mut r = tokio::io::BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut r)
                .take(LINE_CAP as u64)
                .read_until(b'\n', &mut line)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if line.last() != Some(&b'\n') {
                        // Cut at the cap: skip the rest of that line.
                        let mut sink = Vec::new();
                        let _ = r.read_until(b'\n', &mut sink).await;
                    }
                    while line.last() == Some(&b'\n') || line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if tx.send(line.clone()).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok((
        CommandFollow {
            _child: child,
            task,
        },
        rx,
    ))
}

/// A followed command; dropping it kills the child and stops the reader.
pub struct CommandFollow {
    _child: tokio::process::Child,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CommandFollow {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::io::Write;
    use std::time::Duration;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 11, 4, h, m, s).unwrap()
    }

    #[test]
    fn config_kinds_and_validation() {
        let c: LogSourceConfig = toml::from_str(
            "role = \"ec2\"\nkind = \"command\"\ncommand = \"ssh ec2 docker logs --timestamps --since {since} mailserver-postfix\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        let argv = command_argv(&c, t(18, 0, 0), t(18, 5, 0)).unwrap();
        assert_eq!(argv[..2], ["sh", "-c"]);
        assert_eq!(
            argv[2],
            "ssh ec2 docker logs --timestamps --since 2025-11-04T18:00:00Z mailserver-postfix"
        );
        let d: LogSourceConfig = toml::from_str(
            "role = \"dell\"\nkind = \"docker\"\ncontainer = \"dovecot\"\ntimezone = \"+01:00\"\n",
        )
        .unwrap();
        d.validate().unwrap();
        assert_eq!(
            command_argv(&d, t(18, 0, 0), t(18, 5, 0)).unwrap(),
            [
                "docker",
                "logs",
                "--timestamps",
                "--since",
                "2025-11-04T18:00:00Z",
                "--until",
                "2025-11-04T18:05:00Z",
                "dovecot"
            ]
        );
        assert_eq!(
            d.parse_context(t(18, 0, 0)).unwrap().tz.fixed_secs(),
            Some(3600)
        );
        // A zone name: its offset follows daylight saving, so it is no fixed one.
        let named: LogSourceConfig = toml::from_str(
            "role = \"dell\"\nkind = \"file\"\npath = \"/x\"\ntimezone = \"Europe/Berlin\"\n",
        )
        .unwrap();
        named.validate().unwrap();
        let tz = named.parse_context(t(18, 0, 0)).unwrap().tz;
        assert_eq!(
            (tz.to_string(), tz.fixed_secs()),
            ("Europe/Berlin".into(), None)
        );
        let a: LogSourceConfig = toml::from_str(
            "role = \"x\"\nkind = \"command\"\ncommand = [\"journalctl\", \"-o\", \"short-iso\", \"--since\", \"@{since_epoch}\"]\n",
        )
        .unwrap();
        assert_eq!(
            command_argv(&a, t(0, 0, 0), t(0, 0, 1)).unwrap()[4],
            format!("@{}", t(0, 0, 0).timestamp())
        );
        for bad in [
            "role = \"x\"\nkind = \"file\"\n",
            "role = \"x\"\nkind = \"docker\"\ncontainer = \"\"\n",
            "role = \"x\"\nkind = \"command\"\ncommand = []\n",
            "role = \"x\"\nkind = \"file\"\npath = \"/x\"\ntimezone = \"Europe/Atlantis\"\n",
            "role = \"\"\nkind = \"file\"\npath = \"/x\"\n",
        ] {
            let c: LogSourceConfig = toml::from_str(bad).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
        assert!(toml::from_str::<LogSourceConfig>(
            "role = \"x\"\nkind = \"file\"\npath = \"/x\"\npaht = 1\n"
        )
        .is_err());
        assert!(toml::from_str::<LogSourceConfig>("role = \"x\"\nkind = \"ftp\"\n").is_err());
    }

    fn file_cfg(path: &Path) -> LogSourceConfig {
        LogSourceConfig {
            role: "ec2".into(),
            kind: LogSourceKind::File,
            path: Some(path.to_path_buf()),
            command: None,
            container: None,
            timezone: None,
            timeout_secs: None,
        }
    }

    fn line(h: u32, m: u32, s: u32, n: usize) -> String {
        format!("Nov  4 {h:02}:{m:02}:{s:02} mx postfix/qmgr[1]: {n:010X}: removed\n")
    }

    fn texts(lines: &[Vec<u8>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    #[test]
    fn file_window_seeks_in_a_journal_json_export() {
        // `journalctl -o json > mail.json`: an entry a second from 17:00 to 20:59.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail.json");
        let mut f = File::create(&p).unwrap();
        let start = t(17, 0, 0).timestamp_micros();
        for i in 0..4 * 3600i64 {
            writeln!(
                f,
                r#"{{"__REALTIME_TIMESTAMP":"{}","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/qmgr","SYSLOG_PID":"1","MESSAGE":"{i:010X}: removed"}}"#,
                start + i * 1_000_000 + 250_000
            )
            .unwrap();
        }
        drop(f);
        let w = read_file_window(&file_cfg(&p), t(19, 0, 0), t(19, 1, 0), t(23, 0, 0)).unwrap();
        let text = texts(&w);
        let at = |h: i64, m: i64| format!("{:010X}: removed", (h - 17) * 3600 + m * 60);
        assert!(
            text.iter().any(|l| l.contains(&at(19, 0))),
            "{:?}",
            text.first()
        );
        assert!(text.iter().any(|l| l.contains(&at(19, 1))));
        // Seeked near the window, not read from the top.
        assert!(w.len() < 3000, "read {} lines: no seek?", w.len());
        assert!(!text.iter().any(|l| l.contains(&at(17, 30))));
    }

    #[test]
    fn file_window_reads_a_gzipped_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail.log");
        let mut old = String::new();
        for i in 0..60 {
            old.push_str(&line(17, i, 0, i as usize));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(old.as_bytes()).unwrap();
        std::fs::write(dir.path().join("mail.log.1.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(&p, line(18, 0, 0, 1000)).unwrap();
        let w = read_file_window(&file_cfg(&p), t(17, 58, 0), t(18, 1, 0), t(23, 0, 0)).unwrap();
        let text = texts(&w);
        assert!(
            text.iter().any(|l| l.starts_with("Nov  4 17:58:00")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|l| l.starts_with("Nov  4 18:00:00")),
            "{text:?}"
        );
        // Lines well before the window are skipped as a seek would have.
        assert!(
            !text.iter().any(|l| l.starts_with("Nov  4 17:10:00")),
            "{text:?}"
        );
    }

    #[test]
    fn file_window_uses_rotated_file_and_seeks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail.log");
        let mut old = File::create(dir.path().join("mail.log.1")).unwrap();
        for i in 0..60 {
            old.write_all(line(17, i, 0, i as usize).as_bytes())
                .unwrap();
        }
        // A big current file so that the binary search has work to do.
        let mut cur = File::create(&p).unwrap();
        let mut n = 1000;
        for h in 18..21 {
            for m in 0..60 {
                for s in 0..60 {
                    cur.write_all(line(h, m, s, n).as_bytes()).unwrap();
                    n += 1;
                }
            }
        }
        drop(cur);
        let now = t(23, 0, 0);
        // Window inside the rotated file's last minutes and the current file's first.
        let w = read_file_window(&file_cfg(&p), t(17, 58, 0), t(18, 1, 0), now).unwrap();
        let text = texts(&w);
        assert!(
            text.iter().any(|l| l.starts_with("Nov  4 17:58:00")),
            "{:?}",
            &text[..3]
        );
        assert!(text.iter().any(|l| l.starts_with("Nov  4 18:01:00")));
        // Far later lines are not read (stop after until + slack).
        assert!(!text.iter().any(|l| l.starts_with("Nov  4 19:")));
        // A window late in the big file starts near it (seeked), not at the top.
        let w = read_file_window(&file_cfg(&p), t(20, 30, 0), t(20, 31, 0), now).unwrap();
        assert!(w.len() < 3000, "read {} lines: no seek?", w.len());
        let first = String::from_utf8_lossy(&w[0]).into_owned();
        assert!(first.as_str() <= "Nov  4 20:25:00", "{first}");
        assert!(w.iter().any(|l| l.starts_with(b"Nov  4 20:30:30")));
        // Missing file: an error naming the path.
        let e = read_file_window(
            &file_cfg(&dir.path().join("nope.log")),
            t(0, 0, 0),
            t(1, 0, 0),
            now,
        )
        .unwrap_err();
        assert!(e.to_string().contains("nope.log"), "{e}");
    }

    /// A Berlin log through the night its clock goes back (2025-10-26: wall 02:00-02:59 first
    /// at +02:00, then again at +01:00), four lines a second (4 MB, so that the seek's binary
    /// search has steps to take), each naming its UTC instant.
    fn berlin_fold_log(path: &Path) {
        let mut f = io::BufWriter::new(File::create(path).unwrap());
        let start = Utc.with_ymd_and_hms(2025, 10, 25, 22, 0, 0).unwrap();
        for i in 0..(4 * 5 * 3600) {
            let at = start + TimeDelta::seconds(i / 4);
            let offset = if at < Utc.with_ymd_and_hms(2025, 10, 26, 1, 0, 0).unwrap() {
                2
            } else {
                1
            };
            let wall = at + TimeDelta::hours(offset);
            let utc = at.format("%H%M%S");
            writeln!(
                f,
                "{} mx postfix/qmgr[1]: {utc}{i:05X}: removed",
                wall.format("%b %d %H:%M:%S")
            )
            .unwrap();
        }
    }

    /// The records of a window's lines, read in order as the canary reads them.
    fn window_records(
        lines: &[Vec<u8>],
        cfg: &LogSourceConfig,
        now: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, String)> {
        let mut parser = LineParser::new(context(cfg, now).unwrap());
        lines
            .iter()
            .filter_map(|l| match parser.parse(l) {
                Parsed::Record(r) => Some((r.timestamp?, r.raw.clone())),
                _ => None,
            })
            .collect()
    }

    /// The window's lines, read in order, hold each line logged in [since, until] (four a
    /// second) and stamp it with the UTC instant its text names.
    fn assert_window_reads_right(
        cfg: &LogSourceConfig,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) {
        let now = Utc.with_ymd_and_hms(2025, 10, 26, 5, 0, 0).unwrap();
        let w = read_file_window(cfg, since, until, now).unwrap();
        let recs = window_records(&w, cfg, now);
        let inside: Vec<_> = recs
            .iter()
            .filter(|(t, _)| (since..=until).contains(t))
            .collect();
        let seconds = (until - since).num_seconds() + 1;
        assert_eq!(
            inside.len() as i64,
            4 * seconds,
            "{since}: {} records, {:?} .. {:?}",
            recs.len(),
            &recs[..recs.len().min(3)],
            recs.last()
        );
        for (t, raw) in inside {
            let named = format!("{}", t.format("%H%M%S"));
            assert!(raw.contains(&format!(": {named}")), "{t} read from {raw}");
        }
    }

    fn fold_utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 10, 26, h, m, 0).unwrap()
    }

    #[test]
    fn a_window_in_either_pass_of_a_named_zones_fold_gets_its_own_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail.log");
        berlin_fold_log(&p);
        let mut cfg = file_cfg(&p);
        cfg.timezone = Some("Europe/Berlin".into());
        // 01:30 UTC is wall 02:30 in the second pass; 00:30 UTC the same wall time in the
        // first; 02:03 UTC is just past the fold, its slack reaching back into the second pass.
        for (since, until) in [
            (fold_utc(1, 30), fold_utc(1, 31)),
            (fold_utc(0, 30), fold_utc(0, 31)),
            (fold_utc(2, 3), fold_utc(2, 4)),
        ] {
            assert_window_reads_right(&cfg, since, until);
        }
    }

    #[test]
    fn a_log_rotated_in_the_second_pass_of_a_fold_is_read_back_into() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail.log");
        berlin_fold_log(&p);
        // Rotated at 01:40 UTC (wall 02:40, second pass): the current file's first line reads
        // alone as 00:40 UTC, before the window, though it is after it.
        let text = std::fs::read_to_string(&p).unwrap();
        let cut = text.find(": 014000").unwrap();
        let cut = text[..cut].rfind('\n').unwrap() + 1;
        std::fs::write(dir.path().join("mail.log.1"), &text[..cut]).unwrap();
        std::fs::write(&p, &text[cut..]).unwrap();
        let mut cfg = file_cfg(&p);
        cfg.timezone = Some("Europe/Berlin".into());
        assert_window_reads_right(&cfg, fold_utc(1, 35), fold_utc(1, 36));
        assert_window_reads_right(&cfg, fold_utc(1, 38), fold_utc(1, 42));
    }

    #[tokio::test]
    async fn command_placeholders_timeout_and_failure() {
        let mut c = file_cfg(Path::new("/x"));
        c.kind = LogSourceKind::Command;
        c.command = Some(CommandSpec::Shell("printf '%s\\n' {since} {until}".into()));
        let lines = fetch_window(&c, t(18, 0, 0), t(18, 5, 0), t(19, 0, 0))
            .await
            .unwrap();
        assert_eq!(
            lines,
            vec![
                b"2025-11-04T18:00:00Z".to_vec(),
                b"2025-11-04T18:05:00Z".to_vec()
            ]
        );

        c.command = Some(CommandSpec::Shell("sleep 20".into()));
        c.timeout_secs = Some(1);
        let start = crate::clock::std_instant();
        let e = fetch_window(&c, t(18, 0, 0), t(18, 5, 0), t(19, 0, 0))
            .await
            .unwrap_err();
        assert!(matches!(e, LogSourceError::Timeout { .. }), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));

        c.command = Some(CommandSpec::Shell("echo nope >&2; exit 3".into()));
        let e = fetch_window(&c, t(18, 0, 0), t(18, 5, 0), t(19, 0, 0))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");

        c.command = Some(CommandSpec::Argv(vec!["/nonexistent/flowtest-cmd".into()]));
        assert!(matches!(
            fetch_window(&c, t(18, 0, 0), t(18, 5, 0), t(19, 0, 0)).await,
            Err(LogSourceError::Spawn { .. })
        ));
    }

    async fn recv(rx: &mut mpsc::Receiver<Vec<u8>>) -> String {
        let l = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("line within 5 s")
            .expect("follower alive");
        String::from_utf8(l).unwrap()
    }

    #[tokio::test]
    async fn follow_command_streams_and_is_killed_on_drop() {
        let (h, mut rx) = follow_command(vec![
            "sh".into(),
            "-c".into(),
            "echo a; echo b; sleep 30".into(),
        ])
        .unwrap();
        assert_eq!(recv(&mut rx).await, "a");
        assert_eq!(recv(&mut rx).await, "b");
        drop(h);
        // The reader ends once the child is killed.
        let end = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        assert!(end.is_none());
    }
}
