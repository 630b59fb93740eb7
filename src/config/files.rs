//! Reading the small files a configuration names (CA files, password and key files, the
//! runbook) with a size cap, so a wrong path such as `/dev/zero` or a multi-gigabyte log fails at
//! once with a clear error instead of filling memory. Not here: what the bytes mean.
use std::io::{self, Read};
use std::path::Path;

/// Largest file a configuration may name; the real ones are a few KiB.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1 << 20;

/// The whole of `path`, refused with `InvalidData` when larger than `cap` bytes. Reads at most
/// `cap + 1` bytes whatever the file is (a device, a pipe, a growing file).
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    if f.metadata()?.is_dir() {
        return Err(io::Error::other("is a directory"));
    }
    let mut buf = Vec::new();
    f.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {cap} bytes; is this the right file?"),
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_are_read_and_endless_ones_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "abc").unwrap();
        assert_eq!(read_capped(&p, 3).unwrap(), b"abc");
        let e = read_capped(&p, 2).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("larger than 2 bytes"), "{e}");
        let e = read_capped(Path::new("/dev/zero"), MAX_CONFIG_FILE_BYTES).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(read_capped(dir.path(), 10)
            .unwrap_err()
            .to_string()
            .contains("directory"));
    }
}
