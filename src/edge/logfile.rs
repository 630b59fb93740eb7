//! Log files as users keep them: plain, or rotated and gzip-compressed (`mail.log.2.gz`), told
//! apart by their first bytes (not their name) and decompressed transparently in pure Rust; and
//! the first check that a file is text at all. Owns opening and sniffing; reading lines and
//! choosing where to start is `loginput`'s and `logsource`'s.
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;

/// How a log file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Plain text: seekable, so a reader can start near a time.
    Plain,
    /// gzip (possibly several members, as `cat a.gz b.gz` makes): read from the start only.
    Gzip,
}

/// The gzip magic number.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How `f` is stored, judged by its first bytes; `f` is left at offset 0.
pub fn storage_of(f: &mut File) -> io::Result<Storage> {
    let mut head = [0u8; 2];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    f.seek(SeekFrom::Start(0))?;
    Ok(if n == 2 && head == GZIP_MAGIC {
        Storage::Gzip
    } else {
        Storage::Plain
    })
}

/// Whether the file at `path` is gzip-compressed.
pub fn is_gzip(path: &Path) -> io::Result<bool> {
    Ok(storage_of(&mut File::open(path)?)? == Storage::Gzip)
}

/// A buffered reader of the text `r` delivers, decompressing when its first bytes are gzip's.
/// Works on pipes and stdin too: it peeks into its own buffer rather than seeking.
pub fn text_reader<R: Read + Send + 'static>(
    r: R,
    capacity: usize,
) -> io::Result<Box<dyn BufRead + Send>> {
    let mut b = BufReader::with_capacity(capacity, r);
    let gzip = b.fill_buf()?.starts_with(&GZIP_MAGIC);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(capacity, MultiGzDecoder::new(b)))
    } else {
        Box::new(b)
    })
}

/// How much of a source's start is looked at to decide it is binary.
pub const SNIFF_BYTES: usize = 8 * 1024;

/// Whether `head` (a source's first bytes) is binary rather than log text: text logs never
/// hold NUL bytes, while executables, images, databases and archives other than gzip do.
pub fn looks_binary(head: &[u8]) -> bool {
    memchr::memchr(0, &head[..head.len().min(SNIFF_BYTES)]).is_some()
}

/// Compressions that logrotate's `compresscmd` can produce besides gzip, by their magic
/// numbers: the name and the command that writes the text to stdout.
const OTHER_COMPRESSIONS: [(&[u8], &str, &str); 4] = [
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz", "xz -dc"),
    (&[0x28, 0xb5, 0x2f, 0xfd], "zstd", "zstd -dc"),
    (&[0x04, 0x22, 0x4d, 0x18], "lz4", "lz4 -dc"),
    // `BZh`, the block size digit, then the first block's magic (the digits of pi).
    (b"BZh", "bzip2", "bzip2 -dc"),
];

/// The compression (other than gzip, which is read) whose magic number `head` starts with: its
/// name and the command that decompresses it to stdout.
pub fn other_compression(head: &[u8]) -> Option<(&'static str, &'static str)> {
    OTHER_COMPRESSIONS
        .iter()
        .find(|(magic, name, _)| {
            head.starts_with(magic)
                && (*name != "bzip2"
                    || (head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d))
                        && head.get(4..10) == Some(&[0x31, 0x41, 0x59, 0x26, 0x53, 0x59][..])))
        })
        .map(|&(_, name, command)| (name, command))
}

/// Check the text `r` is about to deliver without consuming it: an error naming the source
/// when it is binary (and the compression, when it is one flowtest does not read, with the
/// command that decompresses it into flowtest's stdin). Decompression errors surface here too,
/// before any output.
pub fn check_text(r: &mut dyn BufRead, display: &str) -> io::Result<()> {
    let head = r.fill_buf()?;
    if let Some((name, command)) = other_compression(head) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{display} is {name}-compressed; flowtest reads plain and gzip logs only: \
                 give it the text on stdin as the source `-` (`{command} {display} | flowtest \
                 diagnose ROLE=-`)"
            ),
        ));
    }
    if looks_binary(head) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{display} is not a log file: it holds binary data"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_is_recognized_by_content_and_read_transparently() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("mail.log.gz");
        std::fs::write(&plain, b"not compressed despite the name\n").unwrap();
        assert!(!is_gzip(&plain).unwrap());
        let gz = dir.path().join("mail.log.2");
        let mut two = gzip(b"line 1\n");
        two.extend(gzip(b"line 2\n"));
        std::fs::write(&gz, two).unwrap();
        assert!(is_gzip(&gz).unwrap());
        let mut text = String::new();
        text_reader(File::open(&gz).unwrap(), 4096)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "line 1\nline 2\n");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(!is_gzip(&empty).unwrap());
    }

    #[test]
    fn binary_heads_are_refused_with_the_source_named() {
        let mut r: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0";
        let e = check_text(&mut r, "/bin/ls").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/bin/ls is not a log file: it holds binary data"
        );
        let mut ok: &[u8] = b"Nov  4 18:12:31 mx postfix/smtpd[1]: connect\n";
        // A text line that merely starts like bzip2's magic is text.
        let mut bz_like: &[u8] = b"BZh9 is not bzip2 without its block magic\n";
        check_text(&mut bz_like, "notes.log").unwrap();
        check_text(&mut ok, "mail.log").unwrap();
        assert_eq!(ok.len(), 45, "nothing consumed");
    }

    /// The heads the real tools write (`xz`, `zstd`, `lz4`, `bzip2` on a one-line log, first
    /// bytes as `od` shows them) are named, with the command that decompresses them.
    #[test]
    fn other_compressions_are_named_with_the_command_that_reads_them() {
        let heads: [(&[u8], &str); 4] = [
            (b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46", "xz -dc"),
            (b"\x28\xb5\x2f\xfd\x24\x2d\x69\x01", "zstd -dc"),
            (b"\x04\x22\x4d\x18\x64\x40\xa7", "lz4 -dc"),
            (b"BZh91AY&SY\x8e\x27\x45\x02", "bzip2 -dc"),
        ];
        for (head, command) in heads {
            let mut r = head;
            let e = check_text(&mut r, "mail.log.2.x").unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains(&format!(
                    "`{command} mail.log.2.x | flowtest diagnose ROLE=-`"
                )),
                "{text}"
            );
            assert_eq!(r.len(), head.len(), "nothing consumed");
        }
    }
}
