//! SMTP reply text: enhanced status codes and the server's queue id ("queued as ...").
//! Pure string work; the SMTP conversation itself lives in `edge::smtp`.

/// The enhanced status code (RFC 3463) at the start of a reply text, e.g. `5.7.1`.
pub fn enhanced_code(text: &str) -> Option<String> {
    let first = text.split_whitespace().next()?;
    let mut parts = first.split('.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    let ok = matches!(class, "2" | "4" | "5")
        && (1..=3).contains(&subject.len())
        && (1..=3).contains(&detail.len())
        && subject.bytes().all(|b| b.is_ascii_digit())
        && detail.bytes().all(|b| b.is_ascii_digit())
        && parts.next().is_none();
    ok.then(|| first.to_string())
}

/// The queue id a server reported for an accepted message, when its reply says so:
/// Postfix/SendGrid `queued as ID`, Exim `id=ID`, Exchange `... [InternalId=..]` is not one.
pub fn queue_id(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let after = if let Some(i) = lower.find("queued as ") {
        &text[i + "queued as ".len()..]
    } else if let Some(i) = lower.find(" id=") {
        &text[i + " id=".len()..]
    } else {
        return None;
    };
    let id: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let id = id.trim_end_matches('.').to_string();
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_codes() {
        assert_eq!(
            enhanced_code("5.7.1 <a@b>: Relay access denied").as_deref(),
            Some("5.7.1")
        );
        assert_eq!(
            enhanced_code("2.0.0 Ok: queued as 4XyZ1").as_deref(),
            Some("2.0.0")
        );
        assert_eq!(enhanced_code("Ok"), None);
        assert_eq!(enhanced_code("1.2.3 nope"), None);
        assert_eq!(enhanced_code("5.7.1.2 x"), None);
        assert_eq!(enhanced_code(""), None);
    }

    #[test]
    fn queue_ids() {
        assert_eq!(
            queue_id("2.0.0 Ok: queued as 4dN7Qk2XyZz8").as_deref(),
            Some("4dN7Qk2XyZz8")
        );
        assert_eq!(queue_id("Ok: queued as ABC123.").as_deref(), Some("ABC123"));
        assert_eq!(
            queue_id("OK id=1vXyZ-000123-AB").as_deref(),
            Some("1vXyZ-000123-AB")
        );
        assert_eq!(queue_id("2.0.0 OK 1700000000 x1si123 - gsmtp"), None);
        assert_eq!(queue_id("queued as "), None);
    }
}
