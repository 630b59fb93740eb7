//! Month names in the system's language. `journalctl` writes its short stamps with the
//! locale's `LC_TIME` (`Okt 15 23:48:15` on a German system, `déc. 3 ...` on a French one), and
//! logs pasted from it are what operators hand over; the line parsers know English months
//! only, so such a line is read as the same line with its month in English.

/// Localized abbreviated month names (glibc's `abmon`, lowercase, without a trailing `.`) of
/// the languages mail operators' systems commonly run in, with the month each means. Names
/// spelled as English ones (Spanish `mar`, `oct`) are not here: [`month`] reads those in any
/// case but English's own.
const NAMES: &[(&str, u32)] = &[
    // German (Austria's `Jän` too), Dutch, Danish/Norwegian/Swedish.
    ("jän", 1),
    ("mär", 3),
    ("mrz", 3),
    ("mai", 5),
    ("okt", 10),
    ("dez", 12),
    ("mrt", 3),
    ("mei", 5),
    ("maj", 5),
    // French.
    ("janv", 1),
    ("févr", 2),
    ("fév", 2),
    ("mars", 3),
    ("avr", 4),
    ("juin", 6),
    ("juil", 7),
    ("août", 8),
    ("sept", 9),
    ("déc", 12),
    // Spanish, Italian, Portuguese.
    ("ene", 1),
    ("gen", 1),
    ("fev", 2),
    ("abr", 4),
    ("mag", 5),
    ("giu", 6),
    ("lug", 7),
    ("ago", 8),
    ("set", 9),
    ("ott", 10),
    ("out", 10),
    ("dic", 12),
    // Polish.
    ("sty", 1),
    ("lut", 2),
    ("kwi", 4),
    ("cze", 6),
    ("lip", 7),
    ("sie", 8),
    ("wrz", 9),
    ("paź", 10),
    ("lis", 11),
    ("gru", 12),
    // Russian.
    ("янв", 1),
    ("фев", 2),
    ("мар", 3),
    ("апр", 4),
    ("мая", 5),
    ("май", 5),
    ("июн", 6),
    ("июл", 7),
    ("авг", 8),
    ("сен", 9),
    ("окт", 10),
    ("ноя", 11),
    ("дек", 12),
];

const ENGLISH: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The month of a line that starts with a localized month name, then a space and the day
/// (`Okt 15`, `déc.  3`): the month and where the name ends. None for English names.
pub(crate) fn month(line: &[u8]) -> Option<(u32, usize)> {
    // An ISO stamp's digit: most lines that reach here (the rollover asks every line's month).
    if line.first().is_none_or(u8::is_ascii_digit) {
        return None;
    }
    // The longest name is 8 bytes (`févr`, `août` and the Cyrillic ones are 2 bytes a letter).
    let end = memchr::memchr(b' ', line.get(..10).unwrap_or(line))?;
    let after = line.get(end + 1..)?;
    let day_follows = match after.first()? {
        b' ' => after.get(1).is_some_and(u8::is_ascii_digit),
        c => c.is_ascii_digit(),
    };
    if end < 3 || !day_follows {
        return None;
    }
    let word = std::str::from_utf8(&line[..end]).ok()?;
    let word = word.strip_suffix('.').unwrap_or(word).to_lowercase();
    if let Some(&(_, m)) = NAMES.iter().find(|(name, _)| *name == word) {
        return Some((m, end));
    }
    // Spanish, Catalan and the Nordic languages write many months as English does, but in lower
    // case (`mar 13`, `oct 2`, Dutch `jan`); English as written is read as it is.
    let i = ENGLISH.iter().position(|e| e.eq_ignore_ascii_case(&word))?;
    (ENGLISH[i].as_bytes() != &line[..end]).then_some((i as u32 + 1, end))
}

/// The line with its localized month name in English (`Okt 15 ...` -> `Oct 15 ...`), when it
/// starts with one.
pub(crate) fn in_english(line: &str) -> Option<String> {
    let (m, end) = month(line.as_bytes())?;
    let mut out = String::with_capacity(line.len());
    out.push_str(ENGLISH[m as usize - 1]);
    out.push_str(&line[end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localized_months_are_read_in_english() {
        let cases = [
            (
                "Okt 15 23:48:15 c3 postfix/lmtp[1]: x",
                "Oct 15 23:48:15 c3 postfix/lmtp[1]: x",
            ),
            (
                "Mär  3 01:02:03 mx postfix/qmgr[1]: x",
                "Mar  3 01:02:03 mx postfix/qmgr[1]: x",
            ),
            (
                "déc. 03 10:00:00 mx dovecot: x",
                "Dec 03 10:00:00 mx dovecot: x",
            ),
            (
                "DEZ 24 10:00:00 mx dovecot: x",
                "Dec 24 10:00:00 mx dovecot: x",
            ),
            (
                "mar 13 10:59:32 mx postfix/smtp[3611]: x",
                "Mar 13 10:59:32 mx postfix/smtp[3611]: x",
            ),
            (
                "sep  7 10:00:00 mx dovecot: x",
                "Sep  7 10:00:00 mx dovecot: x",
            ),
            (
                "JAN  7 10:00:00 mx dovecot: x",
                "Jan  7 10:00:00 mx dovecot: x",
            ),
            (
                "окт 15 23:48:15 mx postfix/smtp[1]: x",
                "Oct 15 23:48:15 mx postfix/smtp[1]: x",
            ),
        ];
        for (line, english) in cases {
            assert_eq!(in_english(line).as_deref(), Some(english), "{line}");
        }
    }

    #[test]
    fn english_months_and_other_words_are_left_alone() {
        for line in [
            "Oct 15 23:48:15 mx postfix/qmgr[1]: x",
            "Mar  3 01:02:03 mx postfix/qmgr[1]: x",
            "settings 15",
            "out of memory",
            "mai",
            "2025-10-15T23:48:15 mx postfix/qmgr[1]: x",
        ] {
            assert_eq!(in_english(line), None, "{line}");
        }
    }
}
