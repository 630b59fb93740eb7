//! Draft incident files: each draft of `core::grouping` written into a directory without ever
//! overwriting one (a person may be editing it): `NAME.md`, else `NAME_2.md`, ... Owns the file
//! I/O and the date of drafts without evidence times (today); does not group or render.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::clock;
use crate::core::grouping;
use crate::core::incident::{candidate_file_name, IncidentGroup};
use crate::core::runbook::{Facts, Runbook};

/// Names tried per draft before giving up.
const MAX_CANDIDATES: u32 = 1000;

/// Write one draft per group into `dir` (created if missing); `source` names the command.
/// Returns the paths written.
pub fn write_drafts(
    dir: &Path,
    groups: &[IncidentGroup],
    source: &str,
    runbook: &Runbook,
    facts: &Facts,
) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let today = clock::now().date_naive();
    grouping::drafts(groups, today, source, runbook, facts)
        .iter()
        .map(|d| write_new(dir, &d.stem, d.body.as_bytes()))
        .collect()
}

/// Write `body` under the first free candidate name for `stem`.
fn write_new(dir: &Path, stem: &str, body: &[u8]) -> io::Result<PathBuf> {
    let mut n = 0;
    loop {
        let p = dir.join(candidate_file_name(stem, n));
        match OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(mut f) => {
                f.write_all(body)?;
                return Ok(p);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n + 1 < MAX_CANDIDATES => n += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::diagnosis::{Finding, FindingCode};

    #[test]
    fn drafts_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Finding::new(FindingCode::RelayAccessDenied, Some("ec2"), "denied");
        f.seen(Some(
            chrono::DateTime::parse_from_rfc3339("2025-11-05T10:00:00Z")
                .unwrap()
                .into(),
        ));
        let groups = [IncidentGroup::new(&f)];
        let write = || {
            write_drafts(
                dir.path(),
                &groups,
                "test",
                Runbook::builtin(),
                &Facts::default(),
            )
            .unwrap()
        };
        let first = write();
        assert_eq!(first.len(), 1);
        let name = first[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with("_2025-11-05.md"), "{name}");
        std::fs::write(&first[0], "edited").unwrap();
        let second = write();
        assert_ne!(second, first);
        assert!(second[0].to_string_lossy().ends_with("_2025-11-05_2.md"));
        assert_eq!(std::fs::read_to_string(&first[0]).unwrap(), "edited");
    }
}
