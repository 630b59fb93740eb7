//! Field checks shared by the configuration files: no control characters in anything that
//! reaches a protocol line or a header, bare addresses, environment-variable names, bounded
//! durations. Each returns a message for the caller to place (file, line, field); none echoes
//! a value that might be a secret. Not here: parsing TOML or resolving anything.
use std::time::Duration;

/// Refused in any value flowtest writes into an SMTP or IMAP command or a message header: CR
/// and LF would start a new command or header, NUL and the other controls (C0, DEL, C1) are
/// never meaningful there.
pub(crate) fn no_controls(value: &str) -> Result<(), String> {
    match value.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(format!(
            "{} holds the control character U+{:04X}; protocol and header values must be one printable line",
            crate::core::text::escape_control(&format!("{value:?}")),
            c as u32
        )),
    }
}

/// A bare address `local@domain`: both parts present, no spaces, angle brackets or controls.
/// The empty string (the null sender) only when `allow_null`.
pub(crate) fn address(value: &str, allow_null: bool) -> Result<(), String> {
    no_controls(value)?;
    if value.is_empty() && allow_null {
        return Ok(());
    }
    let ok = match value.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains(|c: char| c.is_alphanumeric())
                && !value.contains(|c: char| c.is_whitespace() || c == '<' || c == '>')
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a bare address like user@example.com (a local part, '@', a domain; no spaces or angle brackets)"
        ))
    }
}

/// An environment variable's name, `[A-Za-z_][A-Za-z0-9_]*`. The value is never repeated in
/// the error: someone who wrote the secret itself here must not see it printed back.
pub(crate) fn env_name(value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(
            "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*); name the variable \
             that holds the secret, never the secret itself (value not shown)"
                .into(),
        )
    }
}

/// Longest wait flowtest accepts (scenario timeouts, `--timeout`, poll and command bounds).
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Longest age setting (`sweep_after`): a left-over probe is swept within a month at most.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// `d` when it is at most `max`, else a message naming both.
pub(crate) fn at_most(s: &str, d: Duration, max: Duration) -> Result<Duration, String> {
    if d > max {
        return Err(format!(
            "{s:?} is longer than the maximum of {}",
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_refused_and_shown_escaped() {
        assert!(no_controls("mx.example.com").is_ok());
        for bad in [
            "a\r\nRCPT TO:<x@y>",
            "a\0b",
            "a\x1b[2J",
            "a\x7f",
            "a\u{9b}b",
            "a\tb",
        ] {
            let e = no_controls(bad).unwrap_err();
            assert!(!e.chars().any(char::is_control), "{e:?}");
        }
    }

    #[test]
    fn addresses() {
        assert!(address("probe@lab.test", false).is_ok());
        assert!(address("", true).is_ok());
        for bad in [
            "",
            "alice",
            "@corp.test",
            "alice@",
            "alice @corp.test",
            "<alice@corp.test>",
            "alice@corp.test\r\nDATA",
        ] {
            assert!(address(bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn env_names_never_echo_the_value() {
        assert!(env_name("FLOWTEST_PROBE_KEY").is_ok());
        assert!(env_name("_x1").is_ok());
        for bad in ["", "1X", "hunter2!", "my secret", "A-B"] {
            let e = env_name(bad).unwrap_err();
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
        }
    }

    #[test]
    fn durations_have_a_ceiling() {
        assert!(at_most("1h", Duration::from_secs(3600), MAX_WAIT).is_ok());
        let e = at_most("2d", Duration::from_secs(2 * 86400), MAX_WAIT).unwrap_err();
        assert!(e.contains("1day"), "{e}");
    }
}
