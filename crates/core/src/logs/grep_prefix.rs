//! Log lines as `grep` prints them: with the file's name before each line when it searched
//! several files (`grep -F ID /var/log/maillog*`, `zgrep`, `grep -r`: `FILE:line`), `-` instead
//! of `:` before a context line (`-A`, `-B`, `-C`), and the line's number after the name or
//! alone with `-n` (`FILE:12:line`, `12-line`). That is how operators cut a message out of
//! rotated logs; `diagnose` reads the lines inside. `docker compose logs` puts its container's
//! name, padded with spaces, and `| ` before each line (`postfix-mailcow_1    | Feb  7 ...`):
//! read the same way. Only a line that no layout understood is
//! looked at again, so the common path pays nothing; owns where such a line starts, not how it
//! is parsed.

use super::prefix::classic_month;

/// How far into a line the file name and line number may reach.
const MAX_PREFIX: usize = 1024;
/// Cuts tried at most per line (a name holds few `:` and `-`; a line of garbage, many).
const MAX_CUTS: usize = 8;

/// Where the line inside `line` may start: after each `:` or `-` within its first space-free
/// token (the name and number hold no space; the inner line's stamp ends the token), when a
/// stamp or a program name can start there. `line` may run on into the lines after it (a
/// block's rest): the token ends at the line's end too. A token that starts as an ISO date and
/// time is a stamp (one run into its host, say), not a file name: it is not cut.
pub(crate) fn cuts(line: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let end = if starts_with_iso_date_time(line) {
        0
    } else {
        memchr::memchr2(b' ', b'\n', line)
            .unwrap_or(line.len())
            .min(MAX_PREFIX)
    };
    let names = memchr::memchr2_iter(b':', b'-', &line[..end]).map(|i| i + 1);
    compose_cut(line)
        .into_iter()
        .chain(names)
        .filter(move |&at| line.get(at).is_some_and(|&b| can_start_line(b)))
        .take(MAX_CUTS)
}

/// Where the line after `docker compose logs`' prefix starts: a space-free container name,
/// spaces, `| `.
fn compose_cut(line: &[u8]) -> Option<usize> {
    let name = memchr::memchr(b' ', &line[..line.len().min(MAX_PREFIX)])?;
    let pad = line[name..].iter().take_while(|&&b| b == b' ').count();
    let bar = name + pad;
    (name > 0 && line.get(bar..bar + 2) == Some(b"| ")).then_some(bar + 2)
}

/// A byte a log line can start with: a stamp's digit, month, weekday or `@`, a syslog
/// priority's `<`, a program's name.
fn can_start_line(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'<' || b == b'@'
}

/// Whether a classic stamp (whose month the Dec -> Jan rollover follows) may stand behind a
/// `grep` prefix at the start of `line`, which has no classic stamp of its own. A line that
/// starts with a stamp with a year (RFC 3339, ISO, Unix seconds) pays one look.
pub(crate) fn may_hide_month(line: &[u8]) -> bool {
    !starts_with_dated_stamp(line) && cuts(line).any(|at| classic_month(&line[at..]).is_some())
}

/// `2025-11-04T18` (or with a space, or `t`, before the hour): a stamp's date and hour.
fn starts_with_iso_date_time(line: &[u8]) -> bool {
    let digits = |r: std::ops::Range<usize>| {
        line.get(r)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    digits(0..4)
        && line.get(4) == Some(&b'-')
        && digits(5..7)
        && line.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(line.get(10), Some(b'T' | b't' | b' '))
        && digits(11..13)
}

/// `2025-11-04...` or `1762279954.123456 ...`: a stamp with its year, not a file name.
fn starts_with_dated_stamp(line: &[u8]) -> bool {
    let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
    match line.get(digits) {
        Some(b'-') => {
            digits == 4
                && line
                    .get(5..7)
                    .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        }
        Some(b'.' | b' ') => digits >= 9,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner(line: &str) -> Vec<&str> {
        cuts(line.as_bytes()).map(|at| &line[at..]).collect()
    }

    #[test]
    fn a_compose_logs_prefix_is_cut() {
        for (line, want) in [
            (
                "postfix-mailcow_1    | Feb  7 11:18:26 mail postfix/smtp[396]: x",
                "Feb  7 11:18:26 mail postfix/smtp[396]: x",
            ),
            (
                "mailserver-1  | 2024-02-07T11:18:26.1Z mail postfix/smtp[396]: x",
                "2024-02-07T11:18:26.1Z mail postfix/smtp[396]: x",
            ),
            (
                "mail | Feb  7 11:18:26 mail dovecot: x",
                "Feb  7 11:18:26 mail dovecot: x",
            ),
        ] {
            assert_eq!(inner(line).first().copied(), Some(want), "{line}");
        }
        assert!(inner("mail |Feb  7 11:18:26 mail dovecot: x").is_empty());
        assert!(inner(" | Feb  7 11:18:26 mail dovecot: x").is_empty());
    }

    #[test]
    fn cuts_follow_every_separator_of_the_name_and_number() {
        let got = inner("/var/log/mail.log-20250105:12:May 15 02:05:02 mail postfix/qmgr[9]: x");
        assert_eq!(
            got,
            [
                "20250105:12:May 15 02:05:02 mail postfix/qmgr[9]: x",
                "12:May 15 02:05:02 mail postfix/qmgr[9]: x",
                "May 15 02:05:02 mail postfix/qmgr[9]: x",
            ]
        );
        // A context line, and `-n` alone.
        assert_eq!(
            inner("maillog-May 15 02:05:02 mail postfix/smtpd[1]: y")[0],
            "May 15 02:05:02 mail postfix/smtpd[1]: y"
        );
        assert_eq!(
            inner("7:2025-05-15T02:05:02+00:00 mail postfix/smtpd[1]: y")[0],
            "2025-05-15T02:05:02+00:00 mail postfix/smtpd[1]: y"
        );
    }

    #[test]
    fn a_stamp_run_into_its_host_is_not_a_file_name() {
        // A CRI line that lost its stream and tag (the fuzz smoke's input): cutting after the
        // hour or minute made `01.210dell` a host and the line's tail a record.
        for line in [
            "2025-11-04T18:30:01.210dell postfix/smtpd[201]: 0F9E8D7C6B: client=x[1.2.3.4]",
            "2025-11-04t18:30:01-mx:postfix/smtpd[201]: x",
        ] {
            assert_eq!(cuts(line.as_bytes()).count(), 0, "{line}");
        }
        // A file named by its date is still a file name.
        assert_eq!(
            inner("2025-11-04.log:Nov  4 18:30:01 mx postfix/smtpd[1]: x"),
            [
                "11-04.log:Nov  4 18:30:01 mx postfix/smtpd[1]: x",
                "04.log:Nov  4 18:30:01 mx postfix/smtpd[1]: x",
                "Nov  4 18:30:01 mx postfix/smtpd[1]: x"
            ]
        );
    }

    #[test]
    fn cuts_are_bounded_on_garbage() {
        let colons = ":a".repeat(10_000);
        assert_eq!(cuts(colons.as_bytes()).count(), MAX_CUTS);
        assert_eq!(cuts(b"::::::::::::").count(), 0);
        assert_eq!(cuts(b"").count(), 0);
        assert_eq!(cuts(b"no separator here").count(), 0);
        let long = format!("{}:May 15 02:05:02 h p[1]: x", "a".repeat(MAX_PREFIX));
        assert_eq!(cuts(long.as_bytes()).count(), 0);
    }

    #[test]
    fn a_month_behind_a_prefix_is_seen_and_stamps_with_years_are_not_one() {
        for line in [
            "/var/log/maillog:May 15 02:05:02 mail postfix/smtpd[1]: x",
            "maillog.1-Dec 31 23:59:59 mail postfix/smtpd[1]: x",
            "12:Jan  1 00:00:01 mail postfix/smtpd[1]: x",
            "12-Jan  1 00:00:01 mail postfix/smtpd[1]: x",
            // A file name that starts with digits, as a date.
            "20250101-maillog:Jan  1 00:00:01 mail postfix/smtpd[1]: x",
            "2025-maillog:Jan  1 00:00:01 mail postfix/smtpd[1]: x",
        ] {
            assert!(may_hide_month(line.as_bytes()), "{line}");
        }
        for line in [
            "2025-11-04T18:12:34.123456+00:00 mx postfix/smtpd[1]: x",
            "1762279954.123456 mx postfix/smtpd[1]: x",
            "Mon 2025-11-04 18:12:34 UTC mx postfix/smtpd[1]: x",
            "postfix/smtpd[123]: NOQUEUE: reject: x",
            "@4000000069000000 postfix/smtpd[1]: x",
            "<22>1 2025-11-04T18:12:34Z mx postfix 1 - - x",
            "garbage",
            "",
        ] {
            assert!(!may_hide_month(line.as_bytes()), "{line}");
        }
    }
}
