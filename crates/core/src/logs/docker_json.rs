//! Docker's `json-file` log driver (`/var/lib/docker/containers/ID/ID-json.log`, what a
//! containerized Postfix or Dovecot writing to its standard output leaves on the host): one
//! object a line, `{"log":"LINE\n","stream":"stdout","time":"2025-11-04T18:12:34.123456789Z"}`,
//! turned into the `docker logs --timestamps` line it stands for (`TIME LINE`), which the rest
//! of the parser reads and evidence shows. Owns which fields make that line; does not parse the
//! line itself (`prefix`, `postfix`, `dovecot`).
//!
//! Docker cuts a line longer than its buffer (16 KiB) into entries whose `log` has no final
//! newline; each part is read as a line of its own (the first keeps the line's header).

use std::borrow::Cow;

use serde::Deserialize;

/// The fields a line is made of; `stream` and `attrs` are skipped unread.
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

/// Whether a line may be an entry: Docker writes `log` first. One compare for other lines,
/// journald's JSON entries among them.
pub(crate) fn is_entry(line: &[u8]) -> bool {
    line.starts_with(b"{\"log\":")
}

/// The `TIME LINE` line of an entry, or `None` when the line is no entry with a time and a
/// non-empty line.
pub(crate) fn timestamped_line(line: &str) -> Option<String> {
    let e: Entry<'_> = serde_json::from_str(line).ok()?;
    let log = e.log.trim_end_matches(['\n', '\r']);
    let time = e.time.as_ref();
    // The time is one RFC 3339 word; the line's own parser checks it.
    if log.trim().is_empty() || time.is_empty() || time.contains(char::is_whitespace) {
        return None;
    }
    let mut out = String::with_capacity(time.len() + 1 + log.len());
    out.push_str(time);
    out.push(' ');
    // One line: a stray newline inside the value is a space, as the journal's are.
    out.extend(log.chars().map(|c| match c {
        '\n' | '\r' => ' ',
        c => c,
    }));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_the_line_docker_logs_prints() {
        let l = r#"{"log":"Nov  4 18:12:33 mx postfix/smtpd[1]: connect from x[192.0.2.1]\n","stream":"stdout","time":"2025-11-04T18:12:34.123456789Z"}"#;
        assert!(is_entry(l.as_bytes()));
        assert_eq!(
            timestamped_line(l).as_deref(),
            Some(
                "2025-11-04T18:12:34.123456789Z Nov  4 18:12:33 mx postfix/smtpd[1]: connect \
                 from x[192.0.2.1]"
            )
        );
        // Escapes, a part without its newline, attributes.
        let l = r#"{"log":"a \"b\" \u00e9\tc","stream":"stderr","attrs":{"tag":"mx"},"time":"2025-11-04T18:12:34Z"}"#;
        assert_eq!(
            timestamped_line(l).as_deref(),
            Some("2025-11-04T18:12:34Z a \"b\" \u{e9}\tc")
        );
    }

    #[test]
    fn what_is_no_entry_is_none() {
        for l in [
            r#"{"log":"\n","stream":"stdout","time":"2025-11-04T18:12:34Z"}"#,
            r#"{"log":"x\n","stream":"stdout"}"#,
            r#"{"log":"x\n","stream":"stdout","time":"2025-11-04 18:12:34"}"#,
            r#"{"log":"x\n","time":"#,
            r#"{"log":7,"time":"2025-11-04T18:12:34Z"}"#,
            r#"{"MESSAGE":"x","__REALTIME_TIMESTAMP":"1"}"#,
        ] {
            assert_eq!(timestamped_line(l), None, "{l}");
        }
        assert!(!is_entry(br#"{"MESSAGE":"x"}"#));
    }
}
