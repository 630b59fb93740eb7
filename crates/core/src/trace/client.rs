//! Who the client of one hop was, as far as the from clause can say: the addresses it writes, the
//! address and reverse name Exim's layout names, and whether a HELO that imitates the receiving
//! server's own comment leaves more than one reading. It reads the tokens `fields.rs` makes and
//! decides nothing about the rest of the header.
//!
//! Rules, each for a reason seen in real or hostile headers:
//! - The from clause ends at the next clause keyword outside comments. A comment that never closes
//!   runs to the end of the header; the from clause then ends at the first keyword inside it, so a
//!   `for <u@[6.6.6.7]>` literal after it is never taken for the client (mail-parser takes it).
//! - Exim 4 writes `from NAME ([IP] helo=HELO)` (NAME a verified reverse name) or, without one,
//!   `from [IP] (helo=HELO)`; the client's address is that first literal, whatever the HELO's text
//!   holds. The layout is known by a first comment that starts with `helo=`, `ident=` or `port=`,
//!   or that starts with a literal in a header Exim signed (`(Exim 4.96)`, an Exim message id) or
//!   with `helo=` in it. Exim 3 writes `from NAME [IP]` when the HELO was NAME. CommuniGate Pro
//!   writes `from NAME ([IP] verified)` in the same order.
//! - Postfix and Sendmail write `from HELO (NAME [IP])`, the HELO first and as the client sent
//!   it: a HELO such as `x (a [6.6.6.6])` imitates the comment. When the from clause's comments
//!   hold two different literals (those of a qmail `(HELO [ip])` comment aside), or a comment
//!   with a literal sits between two `by` clauses, the client cannot be told: `ambiguous`.
//! - A comment that holds the HELO alone (qmail's and qpsmtpd's `(HELO x)`, `(helo=x)`) is the
//!   client's words: an address in it is never the client's (`(HELO h [8.8.8.8]) (1.2.3.4)`).
use std::net::IpAddr;

use super::fields::{
    client_ip_word, helo_argument, is_host_name, is_keyword, tokenize, word_at, Tok,
};

/// What the from clause says about the client.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Client {
    /// Every address the from clause writes: literals, bare addresses, qmail's `user@IP`.
    pub addresses: Vec<IpAddr>,
    /// The from clause as text (its end cut inside a comment that never closes).
    pub text: String,
    /// The from clause names the client first, as Exim (and CommuniGate Pro) lay it out.
    pub names_first: bool,
    /// In that layout, the client's address: the first literal (none when the clause starts
    /// with a name and a HELO: `from x (helo=[203.0.113.5])` names no client).
    pub named_ip: Option<IpAddr>,
    /// In that layout's `from NAME ([IP] ...)`, NAME: the reverse name the server verified.
    pub verified_name: Option<String>,
    /// A HELO imitates the server's comment: no address can be trusted.
    pub ambiguous: bool,
}

/// Read the client from the tokens after the `from` keyword (`after_from`) of header `text`.
pub(crate) fn read_client(text: &str, toks: &[Tok], from_at: usize) -> Client {
    let after_from = toks.get(from_at + 1..).unwrap_or_default();
    let clause = from_clause(text, after_from);
    let mut client = Client {
        text: text
            .get(clause.start..clause.end)
            .unwrap_or_default()
            .to_owned(),
        ..Client::default()
    };
    for t in &clause.toks {
        let (a, b) = span(t);
        let end = b.min(clause.end);
        let Some(chunk) = text.get(a..end) else {
            continue;
        };
        // qmail's and qpsmtpd's `(HELO x)` comment holds what the client said, not what the
        // server saw: `(HELO host [8.8.8.8]) (1.2.3.4)` names 1.2.3.4 alone.
        if matches!(t, Tok::Comment(..)) && is_helo_comment(chunk) {
            continue;
        }
        client.addresses.extend(addresses_in(chunk));
    }
    let signed = exim_signed(text, toks);
    match names_first(text, &clause, signed) {
        Some((ip, rdns)) => {
            client.names_first = true;
            client.named_ip = ip;
            client.verified_name = rdns;
        }
        None => {
            client.ambiguous = imitated_comment(text, &clause) || comment_between_bys(text, toks)
        }
    }
    client
}

/// A comment that holds the client's HELO alone: `(HELO x)`, `(EHLO x)`, `(helo=x)`.
fn is_helo_comment(comment: &str) -> bool {
    let inner = comment.strip_prefix('(').unwrap_or(comment).trim_start();
    helo_argument(inner).is_some()
        || inner
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("helo="))
}

/// The from clause: its tokens and the byte range they cover.
struct FromClause {
    toks: Vec<Tok>,
    start: usize,
    end: usize,
}

fn span(t: &Tok) -> (usize, usize) {
    match *t {
        Tok::Word(a, b) | Tok::Comment(a, b) => (a, b),
        Tok::Semicolon(a) => (a, a + 1),
    }
}

fn from_clause(text: &str, after_from: &[Tok]) -> FromClause {
    let toks: Vec<Tok> = after_from
        .iter()
        .take_while(|t| match t {
            Tok::Word(..) => !word_at(text, t).is_some_and(is_keyword),
            Tok::Semicolon(_) => false,
            Tok::Comment(..) => true,
        })
        .copied()
        .collect();
    let start = toks.first().map_or(0, |t| span(t).0);
    let mut end = toks.last().map_or(start, |t| span(t).1);
    if let Some(&Tok::Comment(a, b)) = toks.last() {
        let unclosed = b == text.len() && !text.get(a..b).unwrap_or_default().ends_with(')');
        if unclosed {
            end = a + 1 + keyword_inside(text.get(a + 1..b).unwrap_or_default());
        }
    }
    FromClause { toks, start, end }
}

/// Where the first clause keyword of `inner` starts (its length when there is none), one comment
/// level deep: a comment left open inside stays a comment.
fn keyword_inside(inner: &str) -> usize {
    tokenize(inner)
        .iter()
        .find_map(|t| match *t {
            Tok::Word(a, _) if word_at(inner, t).is_some_and(is_keyword) => Some(a),
            Tok::Semicolon(a) => Some(a),
            _ => None,
        })
        .unwrap_or(inner.len())
}

/// The addresses a piece of the from clause writes: `[IP]` anywhere in a word (also glued, as
/// in `<unknown.domain>[12.211.5.69]`), a bare address, `user@IP`, Exim 3's `[IP.port]`.
fn addresses_in(chunk: &str) -> impl Iterator<Item = IpAddr> + '_ {
    chunk
        .split(|c: char| c.is_ascii_whitespace() || matches!(c, '(' | ')' | ','))
        .filter_map(|w| {
            if let Some(open) = w.find('[') {
                return literal_at(w.get(open..)?);
            }
            let w = w.trim_end_matches(['.', ';']);
            w.parse::<IpAddr>()
                .ok()
                .or_else(|| client_ip_word(w))
                .or_else(|| with_port(w))
        })
}

/// An IPv4 address with its port, as MailEnable and others write it: `198.51.100.40:4012`.
fn with_port(w: &str) -> Option<IpAddr> {
    let (ip, port) = w.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The addresses of the literals `[...]` anywhere in `s`.
fn literals_in(s: &str) -> impl Iterator<Item = IpAddr> + '_ {
    s.match_indices('[')
        .filter_map(|(open, _)| s.get(open..).and_then(literal_at))
}

/// The address of the literal `[...]` that `s` starts with (a port after it is allowed).
pub(super) fn literal_at(s: &str) -> Option<IpAddr> {
    let close = s.find(']')?;
    let literal = s.get(..=close)?;
    let inner = literal.get(1..close)?;
    inner
        .parse::<IpAddr>()
        .ok()
        .or_else(|| client_ip_word(literal))
}

/// The header is Exim's: `(Exim 4.96)` in it, or an Exim message id after `id`.
fn exim_signed(text: &str, toks: &[Tok]) -> bool {
    if text.contains("(Exim ") {
        return true;
    }
    toks.iter().enumerate().any(|(i, t)| {
        word_at(text, t).is_some_and(|w| w.eq_ignore_ascii_case("id"))
            && toks
                .get(i + 1)
                .and_then(|n| word_at(text, n))
                .is_some_and(is_exim_id)
    })
}

/// `1aVFVG-0000me-LC` (Exim up to 4.96) or `1qAbCd-00000000ABC-DEFG` (4.97 on).
fn is_exim_id(w: &str) -> bool {
    let parts: Vec<&str> = w.trim_end_matches([';', ',']).split('-').collect();
    let alnum = |p: &str| p.bytes().all(|c| c.is_ascii_alphanumeric());
    matches!(parts.as_slice(), [a, b, c]
        if a.len() == 6 && (6..=11).contains(&b.len()) && (2..=4).contains(&c.len())
            && alnum(a) && alnum(b) && alnum(c))
}

/// In Exim's layout (and CommuniGate's), the client's address and verified reverse name;
/// `None` when the from clause is not laid out so.
fn names_first(
    text: &str,
    clause: &FromClause,
    signed: bool,
) -> Option<(Option<IpAddr>, Option<String>)> {
    let (first, ca, cb) = match clause.toks.as_slice() {
        [first @ Tok::Word(..), Tok::Comment(ca, cb), ..] => (first, *ca, *cb),
        // Exim 3's `from NAME [IP]`, when the HELO was NAME.
        [name @ Tok::Word(..), literal @ Tok::Word(..), ..] if signed => {
            let ip = literal_at(word_at(text, literal)?)?;
            let name = word_at(text, name)?.trim_end_matches('.');
            return Some((Some(ip), is_host_name(name).then(|| name.to_owned())));
        }
        _ => return None,
    };
    let word = word_at(text, first)?;
    let inner = text.get(ca + 1..cb.min(clause.end))?.trim_start();
    let inner = inner.strip_suffix(')').unwrap_or(inner);
    let lower = inner.to_ascii_lowercase();
    if ["helo=", "ident=", "port="]
        .iter()
        .any(|k| lower.starts_with(k))
    {
        // `from [IP] (helo=HELO)`: the literal is the client.
        return Some((literal_at(word), None));
    }
    let ip = inner
        .starts_with('[')
        .then(|| literal_at(inner))
        .flatten()?;
    // CommuniGate Pro: `from NAME ([IP] verified)`, NAME checked against the address.
    let verified = lower.trim_end().ends_with("] verified");
    if !(signed || verified || lower.contains("helo=")) {
        return None;
    }
    let name = word.trim_end_matches('.');
    let rdns = (is_host_name(name) && literal_at(word).is_none()).then(|| name.to_owned());
    Some((Some(ip), rdns))
}

/// Two different literals in the from clause's comments (a `(HELO [ip])` comment aside): the
/// HELO holds text shaped like the server's own `(NAME [IP])`.
fn imitated_comment(text: &str, clause: &FromClause) -> bool {
    let mut seen: Vec<IpAddr> = Vec::new();
    for t in &clause.toks {
        let Tok::Comment(a, b) = *t else { continue };
        let Some(inner) = text.get(a + 1..b.min(clause.end)) else {
            continue;
        };
        if helo_argument(inner.trim_start()).is_some() {
            continue;
        }
        for ip in literals_in(inner) {
            if !seen.contains(&ip) {
                seen.push(ip);
            }
        }
    }
    seen.len() > 1
}

/// A comment with a literal between two `by` clauses: `from x (a [6.6.6.6]) by (unknown
/// [192.0.2.1]) by mx.example.com`, a HELO that wrote a `by` of its own.
fn comment_between_bys(text: &str, toks: &[Tok]) -> bool {
    let is_by = |t: &Tok| word_at(text, t).is_some_and(|w| w.eq_ignore_ascii_case("by"));
    let Some(first) = toks.iter().position(is_by) else {
        return false;
    };
    let Some(last) = toks.iter().rposition(is_by) else {
        return false;
    };
    toks.get(first + 1..last)
        .unwrap_or_default()
        .iter()
        .any(|t| match *t {
            Tok::Comment(a, b) => text
                .get(a..b)
                .is_some_and(|c| literals_in(c).next().is_some()),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(header: &str) -> Client {
        let toks = tokenize(header);
        let from_at = toks
            .iter()
            .position(|t| word_at(header, t).is_some_and(|w| w.eq_ignore_ascii_case("from")))
            .expect("a from clause");
        read_client(header, &toks, from_at)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn an_unclosed_comment_ends_the_clause_at_its_first_keyword() {
        let c = client("from x (y [192.0.2.1] by mx.example.com (Postfix) with ESMTP id A for <u@[6.6.6.7]>; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!(c.addresses, [ip("192.0.2.1")]);
        assert_eq!(c.text, "x (y [192.0.2.1] ");
        assert!(!c.ambiguous);
    }

    #[test]
    fn exim_names_the_client_first() {
        let c = client("from [192.0.2.66] (helo=(unknown [6.6.6.6])x) by mx.example.net with esmtp (Exim 4.96) id 1abcDE-000001-AB; Mon, 21 Sep 2026 10:00:00 +0000");
        assert_eq!(c.named_ip, Some(ip("192.0.2.66")));
        assert_eq!(c.verified_name, None);
        let c = client("from mail.example.org ([192.0.2.10] helo=(unknown [6.6.6.6])x) by mx.example.net with esmtp id 1abcDE-000001-AB; Mon, 21 Sep 2026 10:00:00 +0000");
        assert_eq!(c.named_ip, Some(ip("192.0.2.10")));
        assert_eq!(c.verified_name.as_deref(), Some("mail.example.org"));
        // Without a HELO, Exim's signature tells its layout from Sendmail's `HELO ([IP])`.
        let c = client("from rdns.example.com ([217.70.183.195]) by by.example.org with esmtps (TLSv1.2:DHE-RSA-AES256-SHA:256) (Exim 4.85) id 1aVFVG-0000me-LC; Mon, 15 Feb 2016 10:31:35 +0100");
        assert_eq!(c.verified_name.as_deref(), Some("rdns.example.com"));
        let c = client("from helo.example.com ([217.70.183.195]) by mx.example.org (8.17.1/8.17.1) with ESMTP id 5B4IA1x; Tue, 4 Nov 2025 18:12:30 +0100");
        assert_eq!((c.named_ip, c.verified_name), (None, None));
        // Exim 3, the HELO the same as the name.
        let c = client("from boggle.ihug.co.nz [203.109.252.209] by grunt6.ihug.co.nz with esmtp (Exim 3.35 #1 (Debian)) id 18SWRe-0006X6-00; Sun, 29 Dec 2002 18:57:06 +1300");
        assert_eq!(c.named_ip, Some(ip("203.109.252.209")));
        assert_eq!(c.verified_name.as_deref(), Some("boggle.ihug.co.nz"));
        // CommuniGate Pro.
        let c = client("from host.example.com ([192.0.2.1] verified) by mail.example.net (CommuniGate Pro SMTP 5.1.13) with ESMTP id 9786656; Thu, 27 Mar 2008 15:08:17 +0600");
        assert_eq!(c.verified_name.as_deref(), Some("host.example.com"));
        assert_eq!(c.named_ip, Some(ip("192.0.2.1")));
        // An ident and no HELO.
        let c = client("from [2a01:4f8:161:124b::3026] (ident=mail) by parser.example.com with esmtpa (Exim 4.85) id 1akrrE-2016TL-NN; Tue, 29 Mar 2016 14:30:49 +0300");
        assert_eq!(c.named_ip, Some(ip("2a01:4f8:161:124b::3026")));
    }

    #[test]
    fn a_helo_imitating_the_comment_is_ambiguous() {
        for header in [
            "from x (y [6.6.6.6] (unknown [192.0.2.1]) by mx.example.com (Postfix) with ESMTP id ABC; Thu, 1 Jan 2026 00:00:00 +0000",
            "from x (a [6.6.6.6]) (using TLS) (unknown [192.0.2.1]) by mx.example.com (Postfix) with ESMTP id ABC; Thu, 1 Jan 2026 00:00:00 +0000",
            "from x (a [6.6.6.6]) by (unknown [192.0.2.1]) by mx.example.com (Postfix) with ESMTP id ABC; Thu, 1 Jan 2026 00:00:00 +0000",
            "from (a [6.6.6.6]) by mx ; (unknown [192.0.2.1]) by mx.example (Postfix); Mon, 21 Sep 2026 10:00:00 +0000",
        ] {
            assert!(client(header).ambiguous, "{header}");
        }
        for header in [
            "from a.example (mail.a.example [203.0.113.62]) by mx.example (Postfix) with ESMTP id 4dJ; Tue, 4 Nov 2025 18:12:30 +0000",
            "from [10.1.2.3] (unknown [198.51.100.9]) (Authenticated sender: mail.example.org) by mx.example.com (Postfix) with ESMTPSA id 4dJq0T2; Tue, 4 Nov 2025 18:12:31 +0000 (UTC)",
            "from unknown (HELO [10.0.0.5]) ([203.0.113.9]) by mx.example with SMTP; 4 Nov 2025 06:00:00 -0000",
            "from x (a [192.0.2.1]) by mx.example with SMTP by AOL 6.0; 4 Nov 2025 06:00:00 -0000",
        ] {
            assert!(!client(header).ambiguous, "{header}");
        }
    }

    #[test]
    fn addresses_in_every_form() {
        let c = client("from a (<unknown.domain>[12.211.5.69]) by b; 4 Nov 2025 06:00:00 -0000");
        assert_eq!(c.addresses, [ip("12.211.5.69")]);
        let c = client("from a (HELO b) (carol@203.0.113.77) by c; 4 Nov 2025 06:00:00 -0000");
        assert_eq!(c.addresses, [ip("203.0.113.77")]);
        let c =
            client("from 211.245.85.228 (EHLO ) (211.245.85.228) by c; 4 Nov 2025 06:00:00 -0000");
        assert_eq!(c.addresses, [ip("211.245.85.228"), ip("211.245.85.228")]);
        let c = client("from gw (laptop) [192.0.2.71.40112] by c; 4 Nov 2025 06:00:00 -0000");
        assert_eq!(c.addresses, [ip("192.0.2.71")]);
        let c = client("from a (198.51.100.40:4012) by c; 4 Nov 2025 06:00:00 -0000");
        assert_eq!(c.addresses, [ip("198.51.100.40")]);
        let c = client("from a (a [10.128.128.81]:50999) by c; 4 Nov 2025 06:00:00 -0000");
        assert_eq!(c.addresses, [ip("10.128.128.81")]);
    }

    #[test]
    fn exim_ids() {
        assert!(is_exim_id("1aVFVG-0000me-LC"));
        assert!(is_exim_id("1qAbCd-00000000ABC-DEFG;"));
        assert!(!is_exim_id("4dJq0T1"));
        assert!(!is_exim_id("a-b-c"));
    }
}
