//! Shared golden-file bookkeeping for `trace_golden` and `logs_golden`: comparing a case's output
//! with its expected file, blessing (`FLOWTEST_BLESS=1`) only the cases whose output differs,
//! printing what changed as a short line diff, and the end-of-suite assertions. Running a case
//! and checking its must-hold facts belong to each test; a case whose facts fail is never blessed.
//!
//! A case without an expected file always fails, blessing or not: its output is written to the
//! `.actual` path for review, and a human renames it once it is checked.
#![allow(dead_code)] // each golden test binary uses its own subset

use std::io::Write;
use std::path::{Path, PathBuf};

/// At most this many changed lines are printed per case.
const DIFF_LINES: usize = 20;

/// One case's output and where its expectations live.
pub struct Case<'a> {
    pub name: &'a str,
    pub expected_path: PathBuf,
    pub actual_path: PathBuf,
    pub actual: String,
    /// Must-hold facts the output violates; any makes the case fail and blocks blessing.
    pub fact_errors: Vec<String>,
}

/// Collects case results over a suite run.
pub struct Golden {
    bless: bool,
    ran: usize,
    failures: Vec<String>,
}

impl Golden {
    pub fn from_env() -> Golden {
        Golden {
            bless: std::env::var_os("FLOWTEST_BLESS").is_some_and(|v| v == "1"),
            ran: 0,
            failures: Vec::new(),
        }
    }

    /// Records a case that could not run at all.
    pub fn error(&mut self, name: &str, error: &str) {
        self.failures.push(format!("{name}: {error}"));
    }

    /// Compares one case with its expected file; `same` decides equality (bytes, or parsed JSON).
    pub fn check(&mut self, case: Case<'_>, same: impl Fn(&str, &str) -> bool) {
        self.ran += 1;
        let Case {
            name,
            expected_path,
            actual_path,
            actual,
            fact_errors,
        } = case;
        if !fact_errors.is_empty() {
            write_file(&actual_path, &actual);
            self.failures.push(format!(
                "{name}: must-hold facts violated (output in {}):\n    {}",
                actual_path.display(),
                fact_errors.join("\n    ")
            ));
            return;
        }
        let expected = match std::fs::read_to_string(&expected_path) {
            Ok(e) => e,
            Err(e) => {
                write_file(&actual_path, &actual);
                self.failures.push(format!(
                    "{name}: no expected file {} ({e}); review {} and rename it",
                    expected_path.display(),
                    actual_path.display()
                ));
                return;
            }
        };
        if same(&expected, &actual) {
            let _ = std::fs::remove_file(&actual_path);
            return;
        }
        let diff = line_diff(&expected, &actual);
        if self.bless {
            write_file(&expected_path, &actual);
            let _ = std::fs::remove_file(&actual_path);
            report(&format!("blessed {name}:\n{diff}"));
        } else {
            write_file(&actual_path, &actual);
            self.failures.push(format!(
                "{name}: output differs from {} (actual in {}):\n{diff}",
                expected_path.display(),
                actual_path.display()
            ));
        }
    }

    /// Fails the test on any case failure, or when fewer than `min_cases` ran.
    pub fn finish(self, min_cases: usize) {
        assert!(
            self.failures.is_empty(),
            "golden failures:\n{}",
            self.failures.join("\n")
        );
        assert!(
            self.ran >= min_cases,
            "only {} golden cases ran (expected at least {min_cases})",
            self.ran
        );
    }
}

fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Writes straight to the process's stderr, past the test harness's output capture, so a bless
/// run shows what it rewrote.
fn report(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// A short diff of two texts: changed lines with `-`/`+` and their line numbers, from a longest
/// common subsequence of lines, at most [`DIFF_LINES`] of them.
pub fn line_diff(expected: &str, actual: &str) -> String {
    let old: Vec<&str> = expected.lines().collect();
    let new: Vec<&str> = actual.lines().collect();
    // lcs[i][j]: length of the longest common subsequence of old[i..] and new[j..].
    let mut lcs = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            i += 1;
            j += 1;
        } else if i < old.len() && (j == new.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("    -{:>4} {}", i + 1, old[i]));
            i += 1;
        } else {
            out.push(format!("    +{:>4} {}", j + 1, new[j]));
            j += 1;
        }
    }
    let total = out.len();
    out.truncate(DIFF_LINES);
    if total > DIFF_LINES {
        out.push(format!("    ... {} more changed lines", total - DIFF_LINES));
    }
    if total == 0 {
        out.push("    (no line changes: differs in formatting only)".into());
    }
    out.join("\n")
}

/// Compares an expected list with an actual one, naming the fact.
pub fn fact_eq<T: PartialEq + std::fmt::Debug>(
    errors: &mut Vec<String>,
    fact: &str,
    expected: T,
    actual: T,
) {
    if expected != actual {
        errors.push(format!("{fact}: expected {expected:?}, got {actual:?}"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn diff_names_changed_lines() {
        let d = super::line_diff("a\nb\nc\n", "a\nx\nc\nd\n");
        assert!(d.contains("-   2 b"), "{d}");
        assert!(d.contains("+   2 x"), "{d}");
        assert!(d.contains("+   4 d"), "{d}");
        assert!(!d.contains(" a"), "{d}");
    }
}
