//! The log files `flowtest diagnose` reads: `NAME=PATH` arguments, each opened as a stream for
//! the core's analysis (`core::diagnose`), a regular file entered near `--since` (binary search
//! on its timestamps) rather than read from the top, `-` for stdin. gzip-compressed sources
//! (rotated `mail.log.2.gz`, or piped) are decompressed transparently and read from the start;
//! a binary source is refused before anything is reported. Owns opening and the reference time
//! of each source (its mtime; now for stdin); does not parse or analyze lines.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::clock;
use crate::core::diagnose::{Input, Options, SourceReport};
use crate::edge::logfile::{check_text, storage_of, text_reader, Storage};
use crate::edge::logsource::seek_offset_for;

/// Read buffer per source: large, sequential reads.
const READ_BUFFER: usize = 1 << 20;
/// Read buffer of a `--message-id` run's source: smaller than the focused scan's reads, so
/// that they go straight to the file instead of through this buffer (one copy, into memory the
/// scan reuses).
const FOCUSED_READ_BUFFER: usize = 64 << 10;

/// A regular file read as it was when opened: one that grows meanwhile ends at its length then
/// (the scan ends instead of following the writer), one cut short meanwhile (rotation by
/// `copytruncate`) ends where it was cut, with a warning.
struct AsOpened {
    file: io::Take<File>,
    display: String,
}

impl Read for AsOpened {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        let left = self.file.limit();
        if n == 0 && !buf.is_empty() && left > 0 {
            tracing::warn!(
                source = %self.display,
                missing_bytes = left,
                "the log file became shorter while it was read (rotated?): its end was not read"
            );
            self.file.set_limit(0);
        }
        Ok(n)
    }
}

/// A source that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {err}")]
pub struct OpenError {
    pub path: String,
    pub err: io::Error,
}

/// A source argument: `NAME=PATH`, or a bare path.
#[derive(Debug, PartialEq, Eq)]
pub struct SourceArg {
    /// NAME, or the path's file stem.
    pub name: String,
    pub path: PathBuf,
    /// NAME was given: every line stands for it. A bare path's lines stand for the host each
    /// names (a central syslog server's file holds many), the stem for a line that names none.
    pub named: bool,
}

/// `NAME=PATH` or a bare path (its file stem names the source).
pub fn parse_source(s: &str) -> SourceArg {
    if let Some((name, path)) = s.split_once('=') {
        if !name.is_empty() && !name.contains('/') && !path.is_empty() {
            return SourceArg {
                name: name.to_owned(),
                path: PathBuf::from(path),
                named: true,
            };
        }
    }
    let path = PathBuf::from(s);
    let name = path
        .file_stem()
        .map(|x| x.to_string_lossy().into_owned())
        .filter(|x| !x.is_empty())
        .unwrap_or_else(|| "log".into());
    SourceArg {
        name,
        path,
        named: false,
    }
}

/// Open every `NAME=PATH` argument, in order; the first that cannot be opened is the error.
pub fn open_all(args: &[String], opts: &Options) -> Result<Vec<Input>, OpenError> {
    args.iter()
        .map(|s| {
            let arg = parse_source(s);
            let mut input = open(arg.name, &arg.path, opts)?;
            input.hosts_from_lines = !arg.named;
            Ok(input)
        })
        .collect()
}

/// Open one source (`-` is stdin). With `opts.since`, a regular file is entered near that time.
pub fn open(name: String, path: &Path, opts: &Options) -> Result<Input, OpenError> {
    let failed = |err| OpenError {
        path: path.display().to_string(),
        err,
    };
    if path == Path::new("-") {
        let mut reader = text_reader(io::stdin(), READ_BUFFER).map_err(failed)?;
        check_text(&mut reader, "stdin").map_err(failed)?;
        return Ok(Input {
            name,
            display: "-".into(),
            reader,
            reference: Some(clock::now()),
            skipped_bytes: 0,
            hosts_from_lines: false,
        });
    }
    let mut f = File::open(path).map_err(failed)?;
    let meta = f.metadata().map_err(failed)?;
    if meta.is_dir() {
        return Err(failed(io::Error::other("is a directory")));
    }
    let reference = meta.modified().ok().map(DateTime::<Utc>::from);
    let mut skipped_bytes = 0;
    // Only a plain regular file can be entered in the middle; a compressed one is read whole.
    let seekable = meta.is_file() && storage_of(&mut f).map_err(failed)? == Storage::Plain;
    if let (Some(since), true) = (opts.since, seekable) {
        let ctx = opts.context_for(&name, reference);
        skipped_bytes = seek_offset_for(path, since, &ctx)
            .and_then(|off| f.seek(SeekFrom::Start(off)))
            .map_err(failed)?;
    }
    let display = path.display().to_string();
    let capacity = if opts.message_id.is_some() {
        FOCUSED_READ_BUFFER
    } else {
        READ_BUFFER
    };
    let mut reader = if meta.is_file() {
        let start = f.stream_position().map_err(failed)?;
        let file = f.take(meta.len().saturating_sub(start));
        let display = display.clone();
        text_reader(AsOpened { file, display }, capacity)
    } else {
        text_reader(f, capacity)
    }
    .map_err(failed)?;
    check_text(&mut reader, &display).map_err(failed)?;
    Ok(Input {
        name,
        display,
        reader,
        reference,
        skipped_bytes,
        hosts_from_lines: false,
    })
}

/// Lines a source must have before "none of them is a log line" means it is not a log.
const NOT_A_LOG_MIN_LINES: u64 = 20;

/// The sources that turned out not to be mail logs at all, one message each, naming it: many
/// lines and not one of them a Postfix or Dovecot line, or nothing parsed and lines in no log
/// layout flowtest knows (a pasted excerpt in another layout: however short, nothing of it was
/// read, which must not pass as "nothing failed").
pub fn not_mail_logs(sources: &[SourceReport]) -> Vec<String> {
    sources.iter().filter_map(not_a_mail_log).collect()
}

fn not_a_mail_log(s: &SourceReport) -> Option<String> {
    let c = &s.counts;
    let sample = c.no_layout_sample.as_deref();
    if c.parsed > 0 || (sample.is_none() && c.unknown + c.other_programs < NOT_A_LOG_MIN_LINES) {
        return None;
    }
    let esc = crate::core::text::escape_control;
    let unread = sample.map_or(String::new(), |first| {
        let n = c.no_layout;
        format!(
            "; {n} are in no log layout flowtest knows, the first: \"{}\"",
            esc(first)
        )
    });
    Some(format!(
        "{} is not a mail log flowtest reads: none of its {} lines is a Postfix or Dovecot log \
         line{unread}",
        esc(&s.path),
        c.lines
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::diagnose::Format;
    use crate::core::fusion::Limits;

    fn opts() -> Options {
        Options {
            message_id: None,
            rcpt: None,
            since: None,
            until: None,
            year: None,
            fallback_year: 2025,
            tz: crate::core::logs::LogZone::UTC,
            format: Format::Json,
            limits: Limits::default(),
            prefilter: true,
        }
    }

    #[test]
    fn sources() {
        let arg = |name: &str, path: &str, named| SourceArg {
            name: name.into(),
            path: PathBuf::from(path),
            named,
        };
        assert_eq!(
            parse_source("ec2=/var/log/a=b.log"),
            arg("ec2", "/var/log/a=b.log", true)
        );
        assert_eq!(
            parse_source("/var/log/dell-postfix.log"),
            arg("dell-postfix", "/var/log/dell-postfix.log", false)
        );
        assert_eq!(parse_source("./x=y/z.log"), arg("z", "./x=y/z.log", false));
    }

    #[test]
    fn unreadable_sources_name_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let e = open("x".into(), dir.path(), &opts()).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!("cannot read {}: is a directory", dir.path().display())
        );
        let missing = dir.path().join("missing.log");
        let e = open_all(&[format!("ec2={}", missing.display())], &opts())
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with(&format!("cannot read {}: ", missing.display())),
            "{e}"
        );
    }

    #[test]
    fn a_file_is_entered_near_since() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ec2.log");
        let mut text = String::new();
        for h in 0..24 {
            for m in 0..60 {
                for s in (0..60).step_by(10) {
                    text.push_str(&format!(
                        "2025-11-04T{h:02}:{m:02}:{s:02}.000000+00:00 mx postfix/qmgr[1]: 4ABC{h:02}{m:02}: removed\n"
                    ));
                }
            }
        }
        std::fs::write(&p, &text).unwrap();
        let mut o = opts();
        o.since = Some(crate::core::diagnose::parse_time("2025-11-04 20:00:00").unwrap());
        let input = open("ec2".into(), &p, &o).unwrap();
        assert!(input.skipped_bytes > 0);
        assert!(input.skipped_bytes < text.len() as u64);
        assert_eq!(text.as_bytes()[input.skipped_bytes as usize - 1], b'\n');
        assert!(input.reference.is_some());
    }

    #[test]
    fn gzip_sources_are_read_whole_and_binary_ones_refused() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let text = "2025-11-04T20:00:01.000000+00:00 mx postfix/qmgr[1]: 4ABC: removed\n";
        let gz = dir.path().join("ec2.log.2.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let mut o = opts();
        o.since = Some(crate::core::diagnose::parse_time("2025-11-04 20:00:00").unwrap());
        let mut input = open("ec2".into(), &gz, &o).unwrap();
        assert_eq!(input.skipped_bytes, 0);
        let mut got = String::new();
        input.reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, text);

        let bin = dir.path().join("core.dump");
        std::fs::write(&bin, b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0").unwrap();
        let e = open("x".into(), &bin, &opts()).err().unwrap();
        assert!(e.to_string().contains("not a log file"), "{e}");
    }

    #[test]
    fn a_file_is_read_as_long_as_it_was_when_opened() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ec2.log");
        let line = "Nov  4 18:00:00 mx postfix/qmgr[1]: 4ABC: removed\n";
        std::fs::write(&p, line.repeat(10_000)).unwrap();
        let mut o = opts();
        o.message_id = Some("<x@y>".into());
        // Growing while read: the reading ends at the length it had when opened.
        let mut input = open("ec2".into(), &p, &o).unwrap();
        let mut head = vec![0u8; 1000];
        input.reader.read_exact(&mut head).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(line.repeat(50_000).as_bytes()).unwrap();
        let mut rest = Vec::new();
        input.reader.read_to_end(&mut rest).unwrap();
        assert_eq!(head.len() + rest.len(), line.len() * 10_000);
        // Cut short while read (copytruncate): the reading ends where it was cut.
        let mut input = open("ec2".into(), &p, &o).unwrap();
        input.reader.read_exact(&mut head).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        let mut rest = Vec::new();
        input.reader.read_to_end(&mut rest).unwrap();
        assert!(
            rest.len() <= FOCUSED_READ_BUFFER,
            "only what was buffered: {}",
            rest.len()
        );
        assert_eq!(input.reader.read(&mut head).unwrap(), 0, "stays at its end");
    }
}
