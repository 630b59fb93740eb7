//! The log files `flowtest diagnose` reads: `NAME=PATH` arguments, each opened as a stream for
//! the core's analysis (`core::diagnose`), a regular file entered near `--since` (binary search
//! on its timestamps) rather than read from the top, `-` for stdin. Owns opening and the
//! reference time of each source (its mtime; now for stdin); does not parse or analyze lines.

use std::fs::File;
use std::io::{self, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::clock;
use crate::core::diagnose::{Input, Options};
use crate::edge::logsource::seek_offset_for;

/// Read buffer per source: large, sequential reads.
const READ_BUFFER: usize = 1 << 20;

/// A source that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {err}")]
pub struct OpenError {
    pub path: String,
    pub err: io::Error,
}

/// `NAME=PATH` or a bare path (its file stem names the source).
pub fn parse_source(s: &str) -> (String, PathBuf) {
    if let Some((name, path)) = s.split_once('=') {
        if !name.is_empty() && !name.contains('/') && !path.is_empty() {
            return (name.to_owned(), PathBuf::from(path));
        }
    }
    let p = PathBuf::from(s);
    let name = p
        .file_stem()
        .map(|x| x.to_string_lossy().into_owned())
        .filter(|x| !x.is_empty())
        .unwrap_or_else(|| "log".into());
    (name, p)
}

/// Open every `NAME=PATH` argument, in order; the first that cannot be opened is the error.
pub fn open_all(args: &[String], opts: &Options) -> Result<Vec<Input>, OpenError> {
    args.iter()
        .map(|s| {
            let (name, path) = parse_source(s);
            open(name, &path, opts)
        })
        .collect()
}

/// Open one source (`-` is stdin). With `opts.since`, a regular file is entered near that time.
pub fn open(name: String, path: &Path, opts: &Options) -> Result<Input, OpenError> {
    if path == Path::new("-") {
        return Ok(Input {
            name,
            display: "-".into(),
            reader: Box::new(BufReader::with_capacity(READ_BUFFER, io::stdin())),
            reference: Some(clock::now()),
            skipped_bytes: 0,
        });
    }
    let failed = |err| OpenError {
        path: path.display().to_string(),
        err,
    };
    let mut f = File::open(path).map_err(failed)?;
    let meta = f.metadata().map_err(failed)?;
    if meta.is_dir() {
        return Err(failed(io::Error::other("is a directory")));
    }
    let reference = meta.modified().ok().map(DateTime::<Utc>::from);
    let mut skipped_bytes = 0;
    if let (Some(since), true) = (opts.since, meta.is_file()) {
        let ctx = opts.context_for(&name, reference);
        skipped_bytes = seek_offset_for(path, since, &ctx)
            .and_then(|off| f.seek(SeekFrom::Start(off)))
            .map_err(failed)?;
    }
    Ok(Input {
        name,
        display: path.display().to_string(),
        reader: Box::new(BufReader::with_capacity(READ_BUFFER, f)),
        reference,
        skipped_bytes,
    })
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
            tz: crate::core::logs::parse_tz("UTC").unwrap(),
            format: Format::Json,
            limits: Limits::default(),
            prefilter: true,
        }
    }

    #[test]
    fn sources() {
        assert_eq!(
            parse_source("ec2=/var/log/a=b.log"),
            ("ec2".into(), PathBuf::from("/var/log/a=b.log"))
        );
        assert_eq!(
            parse_source("/var/log/dell-postfix.log"),
            (
                "dell-postfix".into(),
                PathBuf::from("/var/log/dell-postfix.log")
            )
        );
        assert_eq!(
            parse_source("./x=y/z.log"),
            ("z".into(), PathBuf::from("./x=y/z.log"))
        );
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
}
