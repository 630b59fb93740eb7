//! Following a growing log file like `tail -F`, read on demand: each call takes the complete
//! lines written since the last one, starts over when the file is truncated in place
//! (`copytruncate`), and moves to the new file once the old one is drained when it is replaced
//! (rename rotation). A missing file is waited for.
//!
//! Reading when asked, rather than from a task that polls, means a caller sees everything
//! written before it asked (no poll interval, no channel to drain) and spends work only on new
//! bytes. Owns bytes and line boundaries; not parsing the lines (`core::logs`) or deciding when
//! to ask (`edge::logwatch`).
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::edge::logsource::LINE_CAP;

/// Where a follower starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowFrom {
    Beginning,
    End,
    /// A byte offset measured by the caller (e.g. the size just before sending a probe), so
    /// nothing written after that moment can be missed however late the first read comes.
    Offset(u64),
}

/// One read() at a time: small enough to stay in the CPU cache while it is split into lines.
const CHUNK: usize = 64 * 1024;
/// Truncations or rotations followed within one call at most (a file rewritten in a loop must
/// not keep a call going).
const MAX_REOPENS: usize = 4;

struct Opened {
    file: File,
    id: u64,
    pos: u64,
}

/// A followed file. Lines come out whole, each ending in `\n`; the end of a line longer than
/// [`LINE_CAP`] is dropped (a binary file must not grow memory).
pub struct FileFollower {
    path: PathBuf,
    opened: Option<Opened>,
    /// Where the first opening starts; every later one (a new file) starts at its beginning.
    first: Option<FollowFrom>,
    /// The start of a line whose end has not been written yet (at most `LINE_CAP` bytes).
    partial: Vec<u8>,
    chunk: Vec<u8>,
}

impl FileFollower {
    /// Start following `path` (opened now when it exists, so a rotation before the first read
    /// still drains the old file).
    pub fn new(path: PathBuf, from: FollowFrom) -> FileFollower {
        let mut f = FileFollower {
            path,
            opened: None,
            first: Some(from),
            partial: Vec::new(),
            chunk: vec![0; CHUNK],
        };
        f.open();
        if f.opened.is_none() && !f.path.exists() {
            // An offset measured on a file that is not there any more says nothing about the
            // one that will appear: all of that one is new.
            f.first = Some(FollowFrom::Beginning);
        }
        f
    }

    /// Replace `out` with the complete lines written since the last call, about `max` bytes at
    /// most (whole lines; a longer backlog is left for the next call). Returns whether more may
    /// be waiting. An error reading the file is returned after the lines read before it.
    pub fn read_new(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<bool> {
        out.clear();
        if self.opened.is_none() {
            self.open();
        }
        for _ in 0..=MAX_REOPENS {
            if self.opened.is_none() {
                return Ok(false);
            }
            if self.drain(out, max)? {
                return Ok(true);
            }
            if !self.reopen_if_replaced()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Read to the end of the open file (or until `out` holds `max` bytes: then true).
    fn drain(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<bool> {
        let Some(o) = self.opened.as_mut() else {
            return Ok(false);
        };
        while out.len() < max {
            let n = match o.file.read(&mut self.chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            o.pos += n as u64;
            let data = &self.chunk[..n];
            match memchr::memrchr(b'\n', data) {
                None => keep_partial(&mut self.partial, data),
                Some(end) => {
                    out.extend_from_slice(&self.partial);
                    out.extend_from_slice(&data[..=end]);
                    self.partial.clear();
                    keep_partial(&mut self.partial, &data[end + 1..]);
                }
            }
        }
        Ok(true)
    }

    /// At the end of the open file: was it truncated (start over) or replaced (open the new
    /// one, from its beginning)? True when there is something new to read.
    fn reopen_if_replaced(&mut self) -> io::Result<bool> {
        let Some(o) = self.opened.as_mut() else {
            return Ok(false);
        };
        let Ok(m) = std::fs::metadata(&self.path) else {
            // Renamed away and not yet created again: keep the old file until a new one shows.
            return Ok(false);
        };
        if file_id(&m) != o.id {
            self.partial.clear();
            self.opened = None;
            self.open();
            return Ok(self.opened.is_some());
        }
        if m.len() < o.pos {
            o.file.seek(SeekFrom::Start(0))?;
            o.pos = 0;
            self.partial.clear();
            return Ok(true);
        }
        Ok(false)
    }

    /// Open the file where this opening starts; stays closed when it cannot be opened yet.
    fn open(&mut self) {
        let Ok(mut file) = File::open(&self.path) else {
            return;
        };
        let Ok(m) = file.metadata() else {
            return;
        };
        let pos = match self.first.take() {
            Some(FollowFrom::End) => m.len(),
            // A file shorter than the offset was truncated or replaced meanwhile.
            Some(FollowFrom::Offset(o)) if o <= m.len() => o,
            _ => 0,
        };
        if file.seek(SeekFrom::Start(pos)).is_ok() {
            self.opened = Some(Opened {
                file,
                id: file_id(&m),
                pos,
            });
        }
    }
}

/// Keep the start of an unfinished line, up to the line cap.
fn keep_partial(partial: &mut Vec<u8>, bytes: &[u8]) {
    let room = LINE_CAP.saturating_sub(partial.len());
    partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// The lines of a [`FileFollower::read_new`] buffer, each without its `\n` and cut at
/// [`LINE_CAP`].
pub fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    body.split(|&b| b == b'\n')
        .filter(move |_| !buf.is_empty())
        .map(|l| &l[..l.len().min(LINE_CAP)])
}

#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.ino() ^ (m.dev() << 32)
}

#[cfg(not(unix))]
fn file_id(_m: &std::fs::Metadata) -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn take(f: &mut FileFollower) -> Vec<String> {
        let mut buf = Vec::new();
        let more = f.read_new(&mut buf, 1 << 20).unwrap();
        assert!(!more);
        lines(&buf)
            .map(|l| String::from_utf8(l.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn growth_truncation_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail.log");
        std::fs::write(&p, "old line\n").unwrap();
        let mut f = FileFollower::new(p.clone(), FollowFrom::End);
        assert!(take(&mut f).is_empty());
        let mut w = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        w.write_all(b"one\ntw").unwrap();
        assert_eq!(take(&mut f), ["one"]);
        w.write_all(b"o\n").unwrap();
        assert_eq!(take(&mut f), ["two"]);
        // Truncation (copytruncate rotation): start over.
        drop(w);
        std::fs::write(&p, "after\n").unwrap();
        assert_eq!(take(&mut f), ["after"]);
        // Rename rotation: the old file is drained first, then the new one read from its start.
        let mut w = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        w.write_all(b"last of old\n").unwrap();
        std::fs::rename(&p, dir.path().join("mail.log.1")).unwrap();
        assert_eq!(take(&mut f), ["last of old"]);
        std::fs::write(&p, "new file\n").unwrap();
        w.write_all(b"late write to old\n").unwrap();
        assert_eq!(take(&mut f), ["late write to old", "new file"]);
        assert!(take(&mut f).is_empty());
    }

    #[test]
    fn a_missing_file_is_waited_for_and_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail.log");
        let mut f = FileFollower::new(p.clone(), FollowFrom::Offset(10));
        assert!(take(&mut f).is_empty());
        std::fs::write(&p, "first line, longer than the offset\n").unwrap();
        assert_eq!(take(&mut f), ["first line, longer than the offset"]);
    }

    #[test]
    fn an_offset_past_the_end_means_the_file_was_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail.log");
        std::fs::write(&p, "short\n").unwrap();
        let mut f = FileFollower::new(p.clone(), FollowFrom::Offset(1000));
        assert_eq!(take(&mut f), ["short"]);
        let mut f = FileFollower::new(p.clone(), FollowFrom::Offset(2));
        assert_eq!(take(&mut f), ["ort"]);
    }

    #[test]
    fn a_backlog_comes_in_bounded_calls_of_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail.log");
        let body: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &body).unwrap();
        let mut f = FileFollower::new(p, FollowFrom::Beginning);
        let mut buf = Vec::new();
        let mut all = Vec::new();
        let mut calls = 0;
        loop {
            calls += 1;
            let more = f.read_new(&mut buf, 100_000).unwrap();
            assert!(buf.len() < 100_000 + CHUNK + LINE_CAP);
            assert!(buf.is_empty() || buf.ends_with(b"\n"));
            all.extend(lines(&buf).map(<[u8]>::to_vec));
            if !more {
                break;
            }
        }
        assert!(calls > 3, "{calls}");
        assert_eq!(all.len(), 50_000);
        assert_eq!(all[49_999], b"line 49999");
    }

    #[test]
    fn an_endless_line_is_cut_at_the_cap_and_the_next_line_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail.log");
        let mut body = vec![b'x'; 5 * LINE_CAP];
        body.extend_from_slice(b"\nnext\n");
        std::fs::write(&p, &body).unwrap();
        let mut f = FileFollower::new(p.clone(), FollowFrom::Beginning);
        let mut buf = Vec::new();
        f.read_new(&mut buf, 1 << 30).unwrap();
        let got: Vec<&[u8]> = lines(&buf).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), LINE_CAP);
        assert_eq!(got[1], b"next");
        // A line still being written is held back, and never past the cap.
        let mut w = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        w.write_all(&vec![b'y'; 3 * LINE_CAP]).unwrap();
        assert!(take(&mut f).is_empty());
        assert!(f.partial.len() <= LINE_CAP);
    }
}
