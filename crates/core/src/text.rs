//! Untrusted text made safe to show: server replies, Received fields, log lines and mailbox names
//! come from peers flowtest does not control, and a terminal obeys escape sequences in them (set
//! the title, clear the screen, rewrite earlier lines). Every human-readable output passes such
//! text through [`escape_control`]. JSON output needs nothing: its encoder escapes controls.
use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is a control character a terminal might act on (C0 but tab, DEL, C1) or a
/// bidirectional override that reorders what is shown.
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether no character of `s` is unsafe. Printable ASCII and tabs are checked a byte at a
/// time without decoding (a report's log lines and replies are mostly that: decoding each
/// character was a twentieth of a human report's rendering thread); a text with a control byte
/// or a non-ASCII one is then looked at a character at a time.
fn is_clean(s: &str) -> bool {
    let printable = s.bytes().fold(true, |all, b| {
        all & ((b' '..=b'~').contains(&b) | (b == b'\t'))
    });
    printable || !s.chars().any(is_unsafe)
}

/// `s` with control characters shown as escapes (`\x1b`, `\u{9b}`); borrowed when clean.
pub fn escape_control(s: &str) -> Cow<'_, str> {
    if is_clean(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// `s` with control characters escaped as by [`escape_control`], except its line breaks (`\n`):
/// for a multi-line text built by flowtest itself (an incident draft, a JUnit body) whose
/// untrusted parts are single lines.
pub fn escape_control_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for line in s.split_inclusive('\n') {
        match line.strip_suffix('\n') {
            Some(text) => {
                out.push_str(&escape_control(text));
                out.push('\n');
            }
            None => out.push_str(&escape_control(line)),
        }
    }
    Cow::Owned(out)
}

/// `s` as HTML or XML text or attribute value: the five markup characters become entities,
/// so untrusted text can neither open a tag nor close a quoted attribute. Controls are the
/// caller's to escape first ([`escape_control`] or [`escape_control_lines`]).
pub fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_borrowed_and_unchanged() {
        assert!(matches!(
            escape_control("250 2.0.0 Ok\tqueued"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn non_ascii_text_is_borrowed_and_its_controls_escaped() {
        assert!(matches!(escape_control("café <ü@ex.de>"), Cow::Borrowed(_)));
        assert_eq!(escape_control("é\u{85}x"), "é\\u{85}x");
        assert_eq!(escape_control("é\u{2067}x"), "é\\u{2067}x");
        // Every ASCII byte: only the printable ones and the tab pass unescaped.
        for b in 0u8..0x80 {
            let s = char::from(b).to_string();
            let kept = (0x20..0x7f).contains(&b) || b == b'\t';
            assert_eq!(
                matches!(escape_control(&s), Cow::Borrowed(_)),
                kept,
                "{b:#x}"
            );
        }
    }

    #[test]
    fn terminal_controls_are_escaped() {
        assert_eq!(escape_control("a\x1b]0;t\x07b"), "a\\x1b]0;t\\x07b");
        assert_eq!(escape_control("x\r\ny"), "x\\x0d\\x0ay");
        assert_eq!(escape_control("\u{9b}2J\u{7f}"), "\\u{9b}2J\\x7f");
        assert_eq!(escape_control("a\u{202e}b"), "a\\u{202e}b");
    }

    #[test]
    fn markup_characters_become_entities() {
        assert_eq!(
            escape_markup(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape_markup("plain text"), "plain text");
    }

    #[test]
    fn line_breaks_survive_escape_control_lines() {
        assert!(matches!(escape_control_lines("a\nb\n"), Cow::Borrowed(_)));
        assert_eq!(
            escape_control_lines("a\x1b[2J\nb\r\n"),
            "a\\x1b[2J\nb\\x0d\n"
        );
    }
}
