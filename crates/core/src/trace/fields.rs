//! One Received header's raw text: owns the comment-aware scan that mail-parser cannot give us
//! (which clauses appear outside comments, the protocol exactly as written, where the date is) and
//! the merge of that scan with mail-parser's typed fields into a [`Hop`]. It does not parse the
//! date text itself (`date.rs`) nor compute delays or stages (`mod.rs`, `stages.rs`).
//!
//! Rules, each for a reason seen in real headers:
//! - Only clauses outside comments count. mail-parser takes the word after *any* `from`, so
//!   qmail's `(qmail 123 invoked from network)` would yield a from-host "network"; we drop the
//!   from-side fields unless a `from` clause exists outside comments.
//! - The date is the text after the last `;` outside comments. When there is none (SendGrid's
//!   filter and API hops), the first word from which the rest of the header parses completely as
//!   a date is taken, trying at most [`MAX_DATE_CANDIDATES`] words (bounded work). A clause
//!   keyword soon after a date ends it (MDaemon's `; Tue, 4 Nov 2025 08:24:21 -0600 id 0000...`).
//! - `protocol` is the text after `with` as written (`ESMTPS`, `esmtpsa`, `LMTP`, `HTTPREST`,
//!   `Microsoft SMTP Server`, `mapi`): up to three words, stopping at a comment, `;`, another
//!   clause keyword, or something that starts a date. Comments right after `with` are skipped
//!   (qmail's TLS patch: `with (DHE-RSA-AES256-SHA encrypted) SMTP`); a bracketed name is taken
//!   whole (XMail: `with [XMail 1.20 ESMTP Server]`).
//! - A v4-mapped client (`[::ffff:192.0.2.7]`) is reported as its IPv4 address, and a webmail's
//!   `(NaSMail authenticated user x.y)` login is not taken for the client's reverse name.
//! - Exim 3's `from NAME (HELO) [IP]` names the reverse name first and the HELO in the comment,
//!   the other way round from Sendmail's and Postfix's `from HELO (NAME [IP])`.
//! - The client IP falls back to forms mail-parser does not read, on the from side only:
//!   qmail's SMTP AUTH `(user@192.0.2.4)` and Exim 3's `[192.0.2.4.51234]` (port as a fifth
//!   dotted part; the from-host is then kept as written, brackets included).
//! - `id` is the word as written when mail-parser's id is a cut-short prefix of it: it stops at
//!   `/`, which Dovecot's base64 LMTP ids (`m3Kp/Qx+8m...`) and ecelerity's (`7B/1C-...`) hold.
//! - `malformed`: the header names no clause outside comments and is not the comment-plus-date
//!   form (qmail's `(qmail 123 invoked by uid 89); 4 Nov 2025 ...` is well-formed).
use std::net::IpAddr;

use mail_parser::{HeaderValue, Host, Received, TlsVersion};

use super::client::{literal_at, read_client, Client};
use super::date::{parse_received_date, ParsedDate};
use super::{Hop, HopWarning, Timestamp};

/// How many word positions are tried as a date start in a header without `;`.
pub(crate) const MAX_DATE_CANDIDATES: usize = 64;

/// Tokens a date can span: weekday, day, month, year, time, zone and a comment, with room.
const DATE_TOKENS: usize = 12;

/// Longest `raw` text kept in a hop (the unfolded header value). Longer values are cut with `...`
/// so a hostile header cannot balloon the JSON report; real Received headers are under 1 KiB.
pub(crate) const MAX_RAW_KEPT: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok {
    /// A word outside comments: byte range into the text.
    Word(usize, usize),
    /// `;` outside comments, at this byte offset.
    Semicolon(usize),
    /// A whole comment: byte range into the text, parentheses included.
    Comment(usize, usize),
}

/// Split the header value into words, `;` and comments, all at comment depth 0.
pub(super) fn tokenize(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut word_start: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        let ends_word = matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';');
        if ends_word {
            if let Some(ws) = word_start.take() {
                toks.push(Tok::Word(ws, i));
            }
        }
        match c {
            b'(' => {
                // Skip the whole comment, nested, honouring quoted-pairs. Unclosed runs to the end.
                let start = i;
                let mut depth = 1u32;
                i += 1;
                while i < b.len() && depth > 0 {
                    match b[i] {
                        b'\\' => i += 1,
                        b'(' => depth = depth.saturating_add(1),
                        b')' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                toks.push(Tok::Comment(start, i.min(b.len())));
                continue;
            }
            b';' => toks.push(Tok::Semicolon(i)),
            b')' => {} // stray: ignored outside comments
            _ if !ends_word && word_start.is_none() => word_start = Some(i),
            _ => {}
        }
        i += 1;
    }
    if let Some(ws) = word_start {
        toks.push(Tok::Word(ws, b.len()));
    }
    toks
}

const KEYWORDS: [&str; 6] = ["from", "by", "via", "with", "id", "for"];

pub(super) fn is_keyword(w: &str) -> bool {
    KEYWORDS.iter().any(|k| w.eq_ignore_ascii_case(k))
}

const DAY_AND_MONTH_NAMES: [&str; 19] = [
    "mon", "tue", "wed", "thu", "fri", "sat", "sun", "jan", "feb", "mar", "apr", "may", "jun",
    "jul", "aug", "sep", "oct", "nov", "dec",
];

fn is_day_or_month_name(w: &str) -> bool {
    let w = w.trim_end_matches(',');
    w.len() >= 3
        && DAY_AND_MONTH_NAMES
            .iter()
            .any(|n| w.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(n)))
        && w.bytes().all(|c| c.is_ascii_alphabetic())
}

/// Could a date start at this word? A cheap filter before the full parse.
fn may_start_date(w: &str) -> bool {
    w.as_bytes().first().is_some_and(u8::is_ascii_digit) || is_day_or_month_name(w)
}

/// The client address written in a form mail-parser does not read, from the words and comments
/// after `from` up to the next clause keyword.
fn from_side_ip(text: &str, toks: &[Tok]) -> Option<IpAddr> {
    for t in toks {
        let (a, b) = match *t {
            Tok::Word(a, b) => {
                let w = text.get(a..b)?;
                if is_keyword(w) {
                    return None;
                }
                (a, b)
            }
            Tok::Comment(a, b) => (a, b),
            Tok::Semicolon(_) => return None,
        };
        let Some(chunk) = text.get(a..b) else {
            continue;
        };
        let found = chunk
            .split(|c: char| c.is_ascii_whitespace() || c == '(' || c == ')')
            .find_map(client_ip_word);
        if found.is_some() {
            return found;
        }
    }
    None
}

/// qmail's `user@192.0.2.4` or Exim 3's `[192.0.2.4.51234]`.
pub(super) fn client_ip_word(w: &str) -> Option<IpAddr> {
    if let Some(inner) = w.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        // `[IPv6:2001:db8::5]`, and Exchange's link-local `[fe80::250:56ff:fe85:5095%11]` with
        // its zone index: the address without the prefix and the zone.
        let bare = without_ipv6_tag(inner).unwrap_or(inner);
        let bare = bare.split_once('%').map_or(bare, |(a, _)| a);
        if let Ok(ip) = bare.parse::<std::net::Ipv6Addr>() {
            return Some(IpAddr::V6(ip));
        }
        // ecelerity's `[192.0.2.4:2525]`: the address, a colon, the port.
        if let Some((ip, port)) = inner.rsplit_once(':') {
            return port
                .parse::<u16>()
                .ok()
                .and_then(|_| ip.parse::<std::net::Ipv4Addr>().ok())
                .map(IpAddr::V4);
        }
        // Exim 3's `[192.0.2.4.51234]`: the address, a dot, the port.
        let (ip, port) = inner.rsplit_once('.')?;
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        return ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4);
    }
    let (user, ip) = w.rsplit_once('@')?;
    if user.is_empty() {
        return None;
    }
    ip.parse().ok()
}

/// The text of a word token (`None` for a comment or `;`).
pub(super) fn word_at<'a>(text: &'a str, t: &Tok) -> Option<&'a str> {
    match *t {
        Tok::Word(a, b) => text.get(a..b),
        _ => None,
    }
}

/// What the comment-aware scan found in one header value.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub has_from: bool,
    pub any_clause: bool,
    pub protocol: Option<String>,
    pub from_word: Option<String>,
    pub by_word: Option<String>,
    /// The word after `id` as written: mail-parser cuts ids at `/` (Dovecot's base64 LMTP ids,
    /// ecelerity's `80/0A-02454-...`).
    pub id_word: Option<String>,
    /// The client address from a from-side form mail-parser does not read: qmail's
    /// `(user@192.0.2.4)` and Exim 3's `[192.0.2.4.51234]` (the port as a fifth dotted part).
    pub client_ip: Option<IpAddr>,
    pub date: Option<ParsedDate>,
    /// Text follows the last `;` but is no date flowtest reads (not a missing date).
    pub date_unread: bool,
    /// Only comments and `;` precede the date (the qmail form).
    pub comment_only_prefix: bool,
    /// Exim 3's `from NAME (HELO) [IP]`: the HELO, when the from clause has that shape (NAME is
    /// then the client's reverse name, not the HELO).
    pub exim3_helo: Option<String>,
    /// The reverse name of Sendmail's and Postfix's `from HELO (NAME [IP])`: NAME, when the
    /// first comment after the from word has that shape and NAME is not `unknown`.
    pub comment_rdns: Option<String>,
    /// The reverse name of qmail's `from NAME (HELO x) (IP)` or `from NAME (IP)`: NAME, when
    /// it is a host name and not `unknown`.
    pub qmail_rdns: Option<String>,
    /// The `by` host and `id` of a comment that never closes and swallowed those clauses
    /// (`by x via smap (V1.3 id xma093673; date`), when the header has none outside it.
    pub unclosed_by: Option<String>,
    pub unclosed_id: Option<String>,
    /// What the from clause says of the client (`client.rs`).
    pub client: Client,
    /// The recipient after `for` as written: mail-parser cuts `<u@[192.0.2.7]>` to `u@` and
    /// drops a quoted local part (`<"x;y"@example.com>`).
    pub for_word: Option<String>,
}

pub(crate) fn scan(text: &str) -> Scan {
    // A trailing `;` (`...+0000;`) is noise: the date is before it.
    let text = text.trim_end_matches(|c: char| c.is_ascii_whitespace() || c == ';');
    let toks = tokenize(text);
    let word = |t: &Tok| word_at(text, t);
    let mut out = Scan::default();

    for (i, t) in toks.iter().enumerate() {
        let Some(w) = word(t) else { continue };
        if !is_keyword(w) {
            continue;
        }
        out.any_clause = true;
        let next_word = toks.get(i + 1).and_then(word).map(str::to_owned);
        if w.eq_ignore_ascii_case("from") && !out.has_from {
            out.has_from = true;
            out.from_word = next_word;
            out.client_ip = from_side_ip(text, toks.get(i + 1..).unwrap_or_default());
            out.exim3_helo = exim3_helo(text, toks.get(i + 1..).unwrap_or_default());
            out.comment_rdns = comment_rdns(text, toks.get(i + 1..).unwrap_or_default());
            out.qmail_rdns = qmail_rdns(text, toks.get(i + 1..).unwrap_or_default());
            out.client = read_client(text, &toks, i);
        } else if w.eq_ignore_ascii_case("for") && out.for_word.is_none() {
            out.for_word = toks.get(i + 1).and_then(|t| recipient(text, t));
        } else if w.eq_ignore_ascii_case("by") && out.by_word.is_none() {
            out.by_word = next_word;
        } else if w.eq_ignore_ascii_case("id") && out.id_word.is_none() {
            out.id_word = next_word;
        } else if w.eq_ignore_ascii_case("with") && out.protocol.is_none() {
            out.protocol = protocol(text, toks.get(i + 1..).unwrap_or_default());
        }
    }

    if !out.has_from {
        from_in_leading_comment(&mut out, text, &toks);
    }
    // The date: after the last `;` outside comments, else the first word that starts one.
    let last_semi = toks.iter().rposition(|t| matches!(t, Tok::Semicolon(_)));
    let mut candidates: Vec<(usize, usize)> = Vec::new(); // (byte offset, token index)
    if let Some(si) = last_semi {
        if let Some(Tok::Semicolon(pos)) = toks.get(si) {
            candidates.push((pos + 1, si + 1));
        }
    }
    // Words after the last `;` that could be a date: not a clause (OpenSMTPD writes
    // `...; for <x@y>;`, without any date).
    let words_after_semi = last_semi.is_some_and(|si| {
        toks.get(si + 1..)
            .unwrap_or_default()
            .iter()
            .find_map(&word)
            .is_some_and(|w| !is_keyword(w))
    });
    let region = last_semi.map_or(0, |si| si + 1);
    for (ti, t) in toks.iter().enumerate().skip(region) {
        if let (Tok::Word(a, _), Some(w)) = (t, word(t)) {
            if may_start_date(w) && candidates.last().map(|c| c.0) != Some(*a) {
                candidates.push((*a, ti));
            }
        }
    }
    for (pos, ti) in candidates.into_iter().take(MAX_DATE_CANDIDATES) {
        let parsed = text.get(pos..).and_then(parse_received_date).or_else(|| {
            // A clause written after the date (`...; Thu, 10 Nov 2005 08:24:21 -0600 id
            // 0000.1234`): the date is the text before it.
            let end = clause_after(text, &toks, ti)?;
            text.get(pos..end).and_then(parse_received_date)
        });
        if let Some(d) = parsed {
            out.date = Some(d);
            out.comment_only_prefix = toks
                .get(..ti)
                .unwrap_or_default()
                .iter()
                .all(|t| !matches!(t, Tok::Word(..)));
            break;
        }
    }
    if out.date.is_none() {
        out.date = date_in_unclosed_comment(text, &toks);
    }
    rescue_unclosed_clauses(&mut out, text, &toks);
    out.date_unread = out.date.is_none() && words_after_semi;
    out
}

/// The from clause inside the header's first comment, as Symantec's mail gateway writes it:
/// `(from h.example [192.0.2.1]) by mx.example with SMTP id A1; date`. Sendmail's local
/// submission `(from root@localhost) by h.example (8.17.1/8.17.1/Submit) id x; date` names a
/// user, not a client: no from clause.
fn from_in_leading_comment(out: &mut Scan, text: &str, toks: &[Tok]) {
    let Some(&Tok::Comment(a, b)) = toks.first() else {
        return;
    };
    let Some(inner) = text.get(a + 1..b).map(|c| c.strip_suffix(')').unwrap_or(c)) else {
        return;
    };
    let inner_toks = tokenize(inner);
    let is_from = inner_toks
        .first()
        .and_then(|t| word_at(inner, t))
        .is_some_and(|w| w.eq_ignore_ascii_case("from"));
    let from_word = inner_toks.get(1).and_then(|t| word_at(inner, t));
    let clause_after = toks
        .iter()
        .any(|t| word_at(text, t).is_some_and(is_keyword));
    if !is_from || !clause_after || from_word.is_none_or(|w| w.contains('@')) {
        return;
    }
    out.has_from = true;
    out.from_word = from_word.map(str::to_owned);
    out.client = read_client(inner, &inner_toks, 0);
}

/// A header whose comment never closes swallows its `; date` (`from a (by a (8.12.10/8.12.11)
/// with ESMTP id x for <u@b>; Mon, 22 Sep 2008 20:20:25 GMT`, as a Sendmail at webex.com
/// wrote it): the date after the last `;` of that unclosed comment, when one parses there.
fn date_in_unclosed_comment(text: &str, toks: &[Tok]) -> Option<ParsedDate> {
    let Some(Tok::Comment(start, end)) = toks.last() else {
        return None;
    };
    let comment = text.get(*start..*end)?;
    if *end != text.len() || comment.trim_end().ends_with(')') {
        return None;
    }
    let semi = comment.rfind(';')?;
    comment.get(semi + 1..).and_then(parse_received_date)
}

/// The clauses an unclosed comment swallowed, read as if it had no `(` (one level: a comment
/// left open inside it stays a comment), for those the header lacks outside it.
fn rescue_unclosed_clauses(out: &mut Scan, text: &str, toks: &[Tok]) {
    let Some(&Tok::Comment(start, end)) = toks.last() else {
        return;
    };
    let Some(inner) = text.get(start + 1..end) else {
        return;
    };
    if end != text.len() || inner.trim_end().ends_with(')') {
        return;
    }
    let toks = tokenize(inner);
    let after = |kw: &str| {
        let i = toks
            .iter()
            .position(|t| word_at(inner, t).is_some_and(|w| w.eq_ignore_ascii_case(kw)))?;
        toks.get(i + 1..)
    };
    let next_word = |kw: &str| after(kw)?.first().and_then(|t| word_at(inner, t));
    if out.by_word.is_none() {
        out.unclosed_by = next_word("by")
            .map(|w| w.trim_end_matches('.'))
            .filter(|w| is_host_name(w))
            .map(str::to_owned);
    }
    if out.id_word.is_none() {
        out.unclosed_id = next_word("id")
            .map(|w| w.trim_start_matches('<').trim_end_matches('>'))
            .filter(|w| !w.is_empty() && !w.contains(['(', ')']))
            .map(str::to_owned);
    }
    // Only after a `by` it swallowed: a header cut inside Postfix's `(using TLSv1.3 with
    // cipher ...` has no protocol there.
    if out.protocol.is_none() && out.unclosed_by.is_some() {
        out.protocol = after("with").and_then(|rest| protocol(inner, rest));
    }
}

/// The protocol after `with`, as written: up to three words, stopping at a comment, `;`, another
/// clause keyword, a comma or something that starts a date. Comments right after `with` are
/// skipped (qmail's TLS patch writes `with (DHE-RSA-AES256-SHA encrypted) SMTP`), and a bracketed
/// name is taken whole without its brackets (XMail's `with [XMail 1.20 ESMTP Server]`).
fn protocol(text: &str, after_with: &[Tok]) -> Option<String> {
    let words_from = after_with
        .iter()
        .position(|t| !matches!(t, Tok::Comment(..)))?;
    let toks = after_with.get(words_from..)?;
    let word = |t: &Tok| word_at(text, t);
    let first = toks.first().and_then(word)?;
    if first.starts_with('[') {
        let Tok::Word(start, _) = toks[0] else {
            return None;
        };
        let close = text.get(start..)?.find(']')?;
        let inner = text.get(start + 1..start + close)?.trim();
        return (!inner.is_empty() && inner.len() <= 64 && !inner.contains(['(', ')', ';']))
            .then(|| inner.split_ascii_whitespace().collect::<Vec<_>>().join(" "));
    }
    let mut words: Vec<&str> = Vec::new();
    for t in toks {
        let Some(p) = word(t) else { break };
        if words.len() == 3 || is_keyword(p) || may_start_date(p) || p.ends_with(',') {
            break;
        }
        words.push(p);
    }
    (!words.is_empty()).then(|| words.join(" "))
}

/// What follows a `HELO ` or `EHLO ` verb (any case) that `s` starts with.
pub(super) fn helo_argument(s: &str) -> Option<&str> {
    let verb = s.get(..5)?;
    (verb.eq_ignore_ascii_case("helo ") || verb.eq_ignore_ascii_case("ehlo ")).then(|| &s[5..])
}

/// Exim 3 writes `from NAME (HELO) [IP]` (the literal outside the comment, a port possibly as a
/// fifth dotted part), where Sendmail and Postfix write `from HELO (NAME [IP])`, Exim 4
/// `from NAME ([IP] helo=HELO)` and qmail `from NAME (HELO x) (IP)`: the HELO of that shape.
fn exim3_helo(text: &str, after_from: &[Tok]) -> Option<String> {
    let [Tok::Word(..), Tok::Comment(ca, cb), Tok::Word(la, lb), ..] = after_from else {
        return None;
    };
    let literal = text.get(*la..*lb)?;
    let inner = literal.strip_prefix('[')?.strip_suffix(']')?;
    let is_ip = inner.parse::<IpAddr>().is_ok() || client_ip_word(literal).is_some();
    let helo = text.get(ca + 1..cb.checked_sub(1)?)?.trim();
    // GMX writes the verb: `from NAME (EHLO homepc) [IP]`.
    let helo = helo_argument(helo).map_or(helo, str::trim_start);
    let one_word =
        !helo.is_empty() && !helo.contains(|c: char| c.is_whitespace() || "()[]".contains(c));
    (is_ip && one_word).then(|| helo.to_owned())
}

/// NAME of `from HELO (NAME [IP])` (Sendmail, Postfix), also with Sendmail's `(may be forged)`
/// after the literal: the client's reverse name as the receiving server looked it up.
fn comment_rdns(text: &str, after_from: &[Tok]) -> Option<String> {
    let [Tok::Word(..), Tok::Comment(ca, cb), ..] = after_from else {
        return None;
    };
    let inner = text.get(ca + 1..cb.checked_sub(1)?)?.trim();
    // Folded headers break lines inside the comment: any white space separates.
    let (name, rest) = inner.split_once(|c: char| c.is_ascii_whitespace())?;
    let name = name.trim_end_matches('.');
    // A host name's characters (`_` too, which real names carry); not qmail's `(HELO [ip])`.
    let plausible = !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        && !["unknown", "helo", "ehlo"]
            .iter()
            .any(|w| name.eq_ignore_ascii_case(w))
        && rest.trim_start().starts_with('[');
    plausible.then(|| name.to_owned())
}

/// NAME of qmail's `from NAME (HELO x) (IP)` (the IP possibly as `user@IP`): the name
/// tcpserver looked up for the client's address (`unknown` when it found none). Without the
/// HELO comment (qmail leaves it out when it equals NAME) the shape is Exchange's too, whose
/// NAME is the HELO: then nothing is read.
fn qmail_rdns(text: &str, after_from: &[Tok]) -> Option<String> {
    let [name @ Tok::Word(..), rest @ ..] = after_from else {
        return None;
    };
    let inner = |t: &Tok| match *t {
        Tok::Comment(a, b) => text.get(a + 1..b.checked_sub(1)?).map(str::trim),
        _ => None,
    };
    let mut comments = rest.iter().map_while(inner);
    let helo = comments.next()?.get(..5)?;
    let address = comments.next()?;
    if !helo.eq_ignore_ascii_case("HELO ") {
        return None;
    }
    let ip = address.rsplit_once('@').map_or(address, |(_, ip)| ip);
    ip.parse::<IpAddr>().ok()?;
    let name = word_at(text, name)?.trim_end_matches('.');
    let plausible = !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        && !name.eq_ignore_ascii_case("unknown");
    plausible.then(|| name.to_owned())
}

/// The recipient that token `t` (the one after `for`) starts: `<...>` up to its `>` outside a
/// quoted local part, or a bare address; `None` for anything without an `@`.
fn recipient(text: &str, t: &Tok) -> Option<String> {
    let Tok::Word(start, end) = *t else {
        return None;
    };
    let rest = text.get(start..)?;
    let address = match rest.strip_prefix('<') {
        Some(inner) => inner.get(..angle_close(inner)?)?,
        None => text.get(start..end)?.trim_end_matches([',', ';']),
    };
    (address.contains('@') && address.len() <= 320).then(|| address.to_owned())
}

/// Where the `>` closing an address starts, outside a quoted local part; `None` at a line break.
fn angle_close(inner: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            '\r' | '\n' => return None,
            _ => {}
        }
    }
    None
}

/// Where the first clause keyword outside comments after token `from` starts, if it is near
/// enough to end a date there (a date is at most [`DATE_TOKENS`] tokens, a comment counting as one).
fn clause_after(text: &str, toks: &[Tok], from: usize) -> Option<usize> {
    toks.get(from..)?
        .iter()
        .take(DATE_TOKENS)
        .find_map(|t| match *t {
            Tok::Word(a, _) if word_at(text, t).is_some_and(is_keyword) => Some(a),
            _ => None,
        })
}

/// `name` is a login that mail-parser reads as the client's reverse DNS name: a webmail's
/// `(NaSMail authenticated user john.doe)`, or the SASL login Postfix adds with
/// `smtpd_sasl_authenticated_header = yes`, `(Authenticated sender: mail.example.net)`.
fn names_a_login(text: &str, name: &str) -> bool {
    ["authenticated user ", "Authenticated sender: "]
        .iter()
        .any(|login| {
            text.match_indices(login).any(|(at, _)| {
                text.get(at + login.len()..)
                    .and_then(|rest| rest.get(..name.len()))
                    .is_some_and(|w| w.eq_ignore_ascii_case(name))
            })
        })
}

/// Unfold and collapse whitespace runs to one space, for the `raw` field.
pub(crate) fn unfold(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_RAW_KEPT + 4));
    for w in text.split_ascii_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
        if out.len() > MAX_RAW_KEPT {
            let mut cut = MAX_RAW_KEPT;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("...");
            break;
        }
    }
    out
}

fn tls_name(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::SSLv2 => "SSLv2",
        TlsVersion::SSLv3 => "SSLv3",
        TlsVersion::TLSv1_0 => "TLSv1.0",
        TlsVersion::TLSv1_1 => "TLSv1.1",
        TlsVersion::TLSv1_2 => "TLSv1.2",
        TlsVersion::TLSv1_3 => "TLSv1.3",
        TlsVersion::DTLSv1_0 => "DTLSv1.0",
        TlsVersion::DTLSv1_2 => "DTLSv1.2",
        TlsVersion::DTLSv1_3 => "DTLSv1.3",
    }
}

/// The word as written when it denotes `ip` (`[192.0.2.7]`, `[IPv6:2001:db8::1]`, a bare IP),
/// else the canonical text of `ip`. Keeps Gmail's `by 2002:a05:...` exactly as written.
fn ip_as_written(ip: IpAddr, written: Option<&str>) -> String {
    if let Some(w) = written {
        let inner = w.trim_start_matches('[').trim_end_matches(']');
        let inner = inner
            .strip_prefix("IPv6:")
            .or_else(|| inner.strip_prefix("ipv6:"))
            .unwrap_or(inner);
        if inner.parse::<IpAddr>().ok() == Some(ip) {
            return w.to_owned();
        }
    }
    ip.to_string()
}

/// A host as text. mail-parser yields an empty name for non-UTF-8 bytes (`caf\xe9.example`);
/// the word as written (lossily decoded) is better than an empty string.
fn host_text(h: &Host, written: Option<&str>) -> Option<String> {
    match h {
        Host::Name(n) if n.is_empty() => written.map(str::to_owned).filter(|w| !w.is_empty()),
        // `from [IPv6:2001:db8::5]` (an IPv6 client's address-literal HELO, as Postfix and
        // Sendmail write it): mail-parser stops at the colon and yields "IPv6".
        Host::Name(n) if n.eq_ignore_ascii_case("ipv6") && written.is_some_and(is_ipv6_literal) => {
            written.map(str::to_owned)
        }
        Host::Name(n) => Some(n.to_string()),
        Host::IpAddr(ip) => Some(ip_as_written(*ip, written)),
    }
}

/// The receiving host: the first `by` clause's. mail-parser keeps the last `by` it reads, so a
/// `by` among the protocol's words (`by mx.example with SMTP by AOL`) would replace it; and a
/// first `by` word that is a mailbox, not a host (a forged header's `by x@mail.example with gg
/// login by AOL ...`), leaves the hop without one.
fn by_host(parsed: Option<&Host>, first_word: Option<&str>) -> Option<String> {
    match (parsed, first_word) {
        (_, Some(w)) if w.contains('@') => None,
        (Some(Host::Name(n)), Some(w))
            if is_host_name(w) && !n.eq_ignore_ascii_case(w.trim_end_matches('.')) =>
        {
            Some(w.trim_end_matches('.').to_owned())
        }
        // mail-parser lost it (a `"` inside a comment before it reads as a quoted string to
        // the header's end): the word after `by` outside comments, as written.
        (None, Some(w)) if is_host_name(w) => Some(w.trim_end_matches('.').to_owned()),
        (h, w) => h.and_then(|h| host_text(h, w)),
    }
}

/// A word made of a host name's characters only (no brackets, no address literal).
pub(super) fn is_host_name(w: &str) -> bool {
    w.bytes().any(|b| b.is_ascii_alphanumeric())
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// `[IPv6:...]`, the address-literal form of RFC 5321.
fn is_ipv6_literal(w: &str) -> bool {
    w.strip_prefix('[').and_then(without_ipv6_tag).is_some() && w.ends_with(']')
}

/// `s` without its leading `IPv6:` tag (any case), when it has one.
fn without_ipv6_tag(s: &str) -> Option<&str> {
    s.get(..5)
        .filter(|p| p.eq_ignore_ascii_case("ipv6:"))
        .map(|_| &s[5..])
}

/// The HELO as an address literal, as written: Exim's `helo=[IPv6:2001:db8::7]` (mail-parser
/// stops at the colon and yields "IPv6"), qmail's and Sendmail's `(HELO [192.0.2.7])` (mail-
/// parser drops the brackets, and a bracketed literal is a valid HELO where a bare address is
/// not).
fn helo_literal(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = ["helo=[", "helo [", "ehlo ["]
        .iter()
        .filter_map(|k| lower.find(k).map(|i| i + k.len() - 1))
        .min()?;
    let len = text.get(start..)?.find(']')? + 1;
    text.get(start..start + len).map(str::to_owned)
}

/// mail-parser strips the brackets of a literal it cannot read as an address (Exim 3's
/// `[192.0.2.4.51234]`); the from-host is reported as written, like other literals.
fn bracketed_as_written(from: String, written: Option<&str>) -> String {
    let Some(w) = written else {
        return from;
    };
    // `[192.0.2.4]`, or with the client's port after it (`[10.128.128.81]:50999`).
    let inner = w.strip_prefix('[').and_then(|r| {
        let (inner, after) = r.split_once(']')?;
        let port = after.strip_prefix(':').unwrap_or(after);
        port.bytes().all(|c| c.is_ascii_digit()).then_some(inner)
    });
    if inner == Some(from.as_str()) {
        w.to_owned()
    } else {
        from
    }
}

/// The id as written when mail-parser cut it short (it stops at `/`, which Dovecot's base64
/// LMTP ids and ecelerity's ids contain).
fn whole_id<'a>(parsed: &'a str, written: Option<&'a str>) -> &'a str {
    match written {
        Some(w) if w.len() > parsed.len() && w.starts_with(parsed) => w,
        _ => parsed,
    }
}

/// The cipher as the header writes it, for names mail-parser does not take for one (`RC4-SHA`,
/// `AECDH-AES256-SHA`, `CAMELLIA256-SHA`): Postfix's `with cipher NAME`, Sendmail's and
/// Microsoft's `cipher=NAME`, Exim's `(TLSv1:NAME:128)`.
fn written_cipher(text: &str) -> Option<String> {
    let word = |rest: &str| {
        let end = rest
            .find(|c: char| c.is_ascii_whitespace() || matches!(c, ')' | ',' | ';'))
            .unwrap_or(rest.len());
        non_empty(&rest[..end])
    };
    let lower = text.to_ascii_lowercase();
    for key in ["with cipher ", "cipher="] {
        if let Some(i) = lower.find(key) {
            return word(text[i + key.len()..].trim_start());
        }
    }
    // Exim: `with esmtps (TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256)`, `(TLSv1:RC4-SHA:128)`.
    text.split('(').skip(1).find_map(|c| {
        let inner = c.split(')').next()?;
        let mut parts = inner.split(':');
        let (version, cipher, bits) = (parts.next()?, parts.next()?, parts.next()?);
        let tls = ["tls", "ssl"]
            .iter()
            .any(|p| version.get(..3).is_some_and(|v| v.eq_ignore_ascii_case(p)));
        let plain = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
        (tls && parts.next().is_none() && plain(cipher) && bits.parse::<u32>().is_ok())
            .then(|| cipher.to_owned())
    })
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The client's address: none when a HELO imitates the server's comment; the first literal in
/// Exim's (and CommuniGate's) layout; else mail-parser's, or the from-side form it does not
/// read, as long as the from clause writes it (mail-parser reads on into a comment that never
/// closes); else the last address the from clause writes (where Postfix and Sendmail put the
/// client's).
fn client_ip(r: &Received, s: &Scan) -> Option<IpAddr> {
    let c = &s.client;
    if c.ambiguous {
        return None;
    }
    if c.names_first {
        return c.named_ip;
    }
    let parsed_from = match r.from {
        Some(Host::IpAddr(ip)) => Some(ip),
        _ => None,
    };
    let written = |ip: &IpAddr| {
        c.addresses
            .iter()
            .any(|a| a.to_canonical() == ip.to_canonical())
    };
    [r.from_ip, parsed_from, s.client_ip]
        .into_iter()
        .flatten()
        .find(written)
        .or_else(|| c.addresses.last().copied())
}

/// `name` is written in the from clause (mail-parser reads names on into a comment that never
/// closes: `(unknown [192.0.2.1] by mx.example.com` is no reverse name `mx.example.com`).
fn in_clause(clause: &str, name: &str) -> bool {
    clause
        .to_ascii_lowercase()
        .contains(&name.to_ascii_lowercase())
}

/// A word servers write where they have no name: `<unknown.domain>`, `softdnserr`, `unknown`.
fn is_placeholder(name: &str, clause: &str) -> bool {
    ["unknown", "unknown.domain", "softdnserr"]
        .iter()
        .any(|p| name.eq_ignore_ascii_case(p))
        || clause.contains(&format!("<{name}>"))
}

/// Build one hop from the header's raw value bytes and mail-parser's parse of it.
pub(crate) fn build_hop(raw_value: &[u8], parsed: &HeaderValue) -> Hop {
    let text = String::from_utf8_lossy(raw_value);
    let s = scan(&text);
    let rec: Option<&Received> = match parsed {
        HeaderValue::Received(r) => Some(r),
        _ => None,
    };

    let mut hop = Hop {
        protocol: s.protocol.clone(),
        timestamp: s.date.map(|d| Timestamp {
            utc: d.utc,
            precision: d.precision,
        }),
        raw: unfold(&text),
        ..Hop::default()
    };

    if let Some(r) = rec {
        if s.has_from {
            hop.from = r
                .from
                .as_ref()
                .and_then(|h| host_text(h, s.from_word.as_deref()))
                .map(|f| bracketed_as_written(f, s.from_word.as_deref()));
            // `[::ffff:192.0.2.7]` is an IPv4 client on a dual-stack socket: the address the
            // servers' logs and the lab's ranges name is the IPv4 one.
            hop.from_ip = client_ip(r, &s).map(|ip| ip.to_canonical().to_string());
            hop.helo = match &r.helo {
                Some(Host::Name(n)) if n.is_empty() || n.eq_ignore_ascii_case("ipv6") => {
                    helo_literal(&text)
                }
                Some(Host::IpAddr(ip)) => Some(
                    helo_literal(&text)
                        .filter(|l| literal_at(l) == Some(*ip))
                        .unwrap_or_else(|| ip.to_string()),
                ),
                Some(h) => host_text(h, None),
                None => None,
            };
            // The `(NAME [IP])` comment right after the from-host names the client, whatever
            // mail-parser made of the comments (it takes words from a later one, and passes
            // over single-label names such as `localhost` and names with `_`); else mail-
            // parser's name, unless that is a login (not the client's name).
            hop.from_rdns = s
                .client
                .verified_name
                .clone()
                .or_else(|| s.comment_rdns.clone())
                .or_else(|| s.qmail_rdns.clone())
                .or_else(|| {
                    r.from_iprev
                        .as_ref()
                        .and_then(|n| non_empty(n.trim_end_matches('.')))
                        .filter(|n| !names_a_login(&text, n) && in_clause(&s.client.text, n))
                })
                .filter(|n| !is_placeholder(n, &s.client.text) && n.parse::<IpAddr>().is_err());
            if let Some(helo) = &s.exim3_helo {
                // mail-parser reads the comment as the reverse name; in Exim 3's form it is the
                // HELO, and the name before it is the reverse name.
                hop.helo = Some(helo.clone());
                hop.from_rdns = s
                    .from_word
                    .as_deref()
                    .filter(|w| !w.starts_with('['))
                    .and_then(non_empty);
            }
        }
        hop.by = by_host(r.by.as_ref(), s.by_word.as_deref()).or(s.unclosed_by);
        hop.id =
            r.id.as_deref()
                .map(|id| whole_id(id, s.id_word.as_deref()))
                .and_then(non_empty)
                .or_else(|| s.id_word.clone().filter(|w| !w.is_empty()))
                .or(s.unclosed_id);
        hop.for_ = s
            .for_word
            .clone()
            .or_else(|| r.for_.as_deref().and_then(non_empty));
        hop.tls = r.tls_version.map(|v| tls_name(v).to_owned());
        hop.tls_cipher = r
            .tls_cipher
            .as_deref()
            .and_then(non_empty)
            .or_else(|| written_cipher(&text));
    }

    let malformed = rec.is_none() || !(s.any_clause || (s.date.is_some() && s.comment_only_prefix));
    if malformed {
        hop.warnings.push(HopWarning::Malformed);
    }
    if s.client.ambiguous && rec.is_some() && s.has_from {
        hop.warnings.push(HopWarning::AmbiguousClient);
        hop.from_rdns = None;
    }
    if hop.timestamp.is_none() {
        hop.warnings.push(if s.date_unread {
            HopWarning::UnreadableDate
        } else {
            HopWarning::NoDate
        });
    }
    hop
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_as_written() {
        let p = |s: &str| scan(s).protocol;
        assert_eq!(
            p("from a by b with ESMTPS id 4X for <x@y>; Tue, 4 Nov 2025 18:12:30 +0000").as_deref(),
            Some("ESMTPS")
        );
        assert_eq!(
            p("from a (a) by b (b) with Microsoft SMTP Server (version=TLS1_2) id 15.20.1.2; Tue, 4 Nov 2025 18:12:30 +0000")
                .as_deref(),
            Some("Microsoft SMTP Server")
        );
        assert_eq!(
            p("from [192.0.2.7] by b with esmtps  (TLS1.3) tls X (Exim 4.96) id 1; Tue, 4 Nov 2025 18:12:30 +0000")
                .as_deref(),
            Some("esmtps")
        );
        assert_eq!(
            p("by b with HTTP; Tue, 4 Nov 2025 18:12:30 +0000").as_deref(),
            Some("HTTP")
        );
        // No `;`: the date must not be swallowed into the protocol.
        assert_eq!(
            p("by b with SMTP Tue, 4 Nov 2025 18:12:30 +0000").as_deref(),
            Some("SMTP")
        );
        // `with` inside a comment is not a clause.
        assert_eq!(
            p("from a (using TLSv1.3 with cipher X) by b; 4 Nov 2025 18:12:30 +0000"),
            None
        );
    }

    /// The date `scan` finds in a header value, as RFC 3339.
    fn date_of(s: &str) -> Option<String> {
        scan(s)
            .date
            .map(|d| super::super::date::format_rfc3339(&d.utc, d.precision))
    }

    #[test]
    fn date_location() {
        let d = date_of;
        assert_eq!(
            d("by f with SMTP id f-1-2 2018-03-26 13:35:36.270951634 +0000 UTC m=+266323.963383415")
                .as_deref(),
            Some("2018-03-26T13:35:36.270951634Z")
        );
        assert_eq!(
            d("from X (unknown) by g (SG) with HTTP id 3p Thu, 17 Jun 2021 14:45:16.434 +0000 (UTC)")
                .as_deref(),
            Some("2021-06-17T14:45:16.434Z")
        );
        // A date inside a comment is not the header's date.
        assert_eq!(
            d("from a by b (Oracle (built Jan  1 2025)) with ESMTP id 1; 4 Nov 2025 18:12:30 +0000")
                .as_deref(),
            Some("2025-11-04T18:12:30Z")
        );
        assert_eq!(d("from a (built 4 Nov 2025 18:12:30 +0000) by b"), None);
        // Trailing semicolon.
        assert_eq!(
            d("from a by b; Tue, 4 Nov 2025 18:12:30 +0000;").as_deref(),
            Some("2025-11-04T18:12:30Z")
        );
        assert_eq!(d("from a by b; garbage"), None);
        assert_eq!(d("from a by b;"), None);
        // A comment left open swallows the rest (a real Sendmail header of webex.com's, from
        // the Ruby mail gem's test messages): the date after its last `;`.
        assert_eq!(
            d("from jsj1wlrmd001.webex.com (by jsj1wlrmd001.webex.com\r\n  (8.12.10/8.12.11) with ESMTP id m8MKKPTs022429\r\n  for <xxxx@example.com>; Mon, 22 Sep 2008 20:20:25 GMT")
                .as_deref(),
            Some("2008-09-22T20:20:25Z")
        );
        // Closed, a date inside a comment is still not the header's.
        assert_eq!(d("from a (by a; Mon, 22 Sep 2008 20:20:25 GMT)"), None);
    }

    #[test]
    fn client_ip_forms_mail_parser_misses() {
        let ip = |s: &str| scan(s).client_ip.map(|i| i.to_string());
        // qmail with SMTP AUTH: `(user@ip)`.
        assert_eq!(
            ip("from unknown (HELO h) (carol@198.51.100.23) by m with ESMTPA; 4 Nov 2025 18:12:34 -0000")
                .as_deref(),
            Some("198.51.100.23")
        );
        // Exim 3: the port as a fifth dotted part, in the comment or as the from-host.
        assert_eq!(
            ip("from h ([203.0.113.9.1042] helo=h) by r with esmtp id 1; 4 Nov 2025 18:12:34 -0000")
                .as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(
            ip("from [203.0.113.44.2310] by g with smtp id 1; 4 Nov 2025 18:12:34 -0000")
                .as_deref(),
            Some("203.0.113.44")
        );
        // Only the from side counts, and only these shapes.
        assert_eq!(
            ip("from h by m (envelope-from <a@192.0.2.1>) with SMTP; 4 Nov 2025 18:12:34 -0000"),
            None
        );
        assert_eq!(
            ip("from h ([192.0.2.1]) by m; 4 Nov 2025 18:12:34 -0000"),
            None
        );
        assert_eq!(ip("from h (@192.0.2.1) by m"), None);
        assert_eq!(ip("from h ([999.0.2.1.25]) by m"), None);
        assert_eq!(ip("from h ([192.0.2.1.123456]) by m"), None);
        assert_eq!(ip("(carol@192.0.2.1); 4 Nov 2025 18:12:34 -0000"), None);
    }

    #[test]
    fn ids_keep_slashes_as_written() {
        let s =
            scan("by i with LMTP id m3Kp/Qx+8mVZRwAA1d0Lqw for <f@x>; 4 Nov 2025 18:12:34 -0000");
        assert_eq!(s.id_word.as_deref(), Some("m3Kp/Qx+8mVZRwAA1d0Lqw"));
        assert_eq!(
            whole_id("m3Kp", s.id_word.as_deref()),
            "m3Kp/Qx+8mVZRwAA1d0Lqw"
        );
        // mail-parser's id wins when the written word is not its extension.
        assert_eq!(whole_id("abc", Some("<abc")), "abc");
        assert_eq!(whole_id("abc", None), "abc");
        // `id` inside a comment is not the clause.
        assert_eq!(scan("from a (id x/y) by b").id_word, None);
    }

    #[test]
    fn comment_only_prefix() {
        let s = scan("(qmail 28031 invoked by uid 89); 4 Nov 2025 18:12:34 -0000");
        assert!(!s.any_clause && s.comment_only_prefix && s.date.is_some());
        let s = scan("garbage; 4 Nov 2025 18:12:34 -0000");
        assert!(!s.any_clause && !s.comment_only_prefix && s.date.is_some());
    }

    #[test]
    fn clauses_an_unclosed_comment_swallowed_are_read() {
        // TIS smap's header as SpamAssassin's received-parser tests hold it, and a Sendmail
        // header of webex.com's (from the Ruby mail gem's test messages).
        let s = scan("from snake.corp.yahoo.com(216.145.52.229) by x.x.org via smap (V1.3 id xma093673; Wed, 26 Mar 03 20:43:24 -0600");
        assert_eq!(s.by_word.as_deref(), Some("x.x.org"));
        assert_eq!(s.unclosed_by, None);
        assert_eq!(s.unclosed_id.as_deref(), Some("xma093673"));
        let s = scan("from jsj1wlrmd001.webex.com (by jsj1wlrmd001.webex.com (8.12.10/8.12.11) with ESMTP id m8MKKPTs022429 for <xxxx@example.com>; Mon, 22 Sep 2008 20:20:25 GMT");
        assert_eq!(s.unclosed_by.as_deref(), Some("jsj1wlrmd001.webex.com"));
        assert_eq!(s.unclosed_id.as_deref(), Some("m8MKKPTs022429"));
        assert_eq!(s.protocol.as_deref(), Some("ESMTP"));
        // Closed, a comment's words are no clauses; nor are those of a comment left open when
        // the header has the clause outside it.
        let s = scan("from a (by c with X id y) by b; 4 Nov 2025 18:12:34 -0000");
        assert_eq!(
            (s.unclosed_by, s.unclosed_id, s.protocol),
            (None, None, None)
        );
        let s = scan("from a by b with SMTP id q (by c id y with X");
        assert_eq!((s.unclosed_by, s.unclosed_id), (None, None));
        assert_eq!(s.protocol.as_deref(), Some("SMTP"));
        // A header cut inside Postfix's TLS comment: no protocol from it.
        let s = scan("from a (a [192.0.2.1]) (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384");
        assert_eq!(
            (s.unclosed_by, s.unclosed_id, s.protocol),
            (None, None, None)
        );
        // One level only: a comment left open inside the open one stays a comment.
        let s = scan(&format!("from a {}by b id c", "(".repeat(10_000)));
        assert_eq!((s.unclosed_by, s.unclosed_id), (None, None));
    }

    #[test]
    fn tokenizer_survives_unbalanced_and_escapes() {
        for s in [
            "((((",
            "))))",
            "(\\",
            "\\(",
            "a (b \\) c",
            ";;;",
            "(;) ;",
            "",
        ] {
            let _ = scan(s);
        }
        let s = scan("from a (x \\) by y) by b; 4 Nov 2025 18:12:34 -0000");
        assert_eq!(s.by_word.as_deref(), Some("b"));
    }

    #[test]
    fn unfold_collapses_and_caps() {
        assert_eq!(unfold(" from a\r\n\tby b;  x \n"), "from a by b; x");
        let long = "é".repeat(3000);
        let u = unfold(&long);
        assert!(u.ends_with("...") && u.len() <= MAX_RAW_KEPT + 3);
    }

    #[test]
    fn protocol_after_a_comment_or_in_brackets() {
        let p = |s: &str| scan(s).protocol;
        // qmail's TLS patch puts the cipher between `with` and the protocol.
        assert_eq!(
            p("from a (HELO a) (192.0.2.9) by b with (ECDHE-RSA-AES256-GCM-SHA384 encrypted) ESMTPS; 4 Nov 2025 18:12:30 -0000")
                .as_deref(),
            Some("ESMTPS")
        );
        // XMail names itself in brackets.
        assert_eq!(
            p("from a (192.0.2.9:4012) by b with [XMail 1.27 ESMTP Server] id <S1F> for <x@y>; Tue, 4 Nov 2025 18:12:30 +0000")
                .as_deref(),
            Some("XMail 1.27 ESMTP Server")
        );
        // An unclosed bracket, or a comment alone: no protocol rather than a fragment.
        assert_eq!(
            p("from a by b with [XMail 1.27; 4 Nov 2025 18:12:30 -0000"),
            None
        );
        assert_eq!(
            p("from a by b with (only a comment); 4 Nov 2025 18:12:30 -0000"),
            None
        );
    }

    #[test]
    fn a_clause_after_the_date_ends_it() {
        let d = date_of;
        assert_eq!(
            d("from pc (pc.example [192.0.2.4]) by mx.example with esmtp; Tue, 4 Nov 2025 08:24:21 -0600 id 0000012C.690A1B35.00003F1E")
                .as_deref(),
            Some("2025-11-04T14:24:21Z")
        );
        // Other trailing text still leaves the header without a date.
        assert_eq!(
            d("from a by b; Tue, 4 Nov 2025 08:24:21 -0600 trailing words"),
            None
        );
        // The keyword must come within a date's length.
        assert_eq!(
            d("from a by b; Tue, 4 Nov 2025 08:24:21 -0600 x x x x x x x x x x x x id 1"),
            None
        );
    }

    fn hop_of(value: &str) -> Hop {
        let raw = format!("Received: {value}\r\n\r\n");
        let msg = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .expect("a message");
        let parsed = msg.header("Received").expect("a Received header");
        build_hop(value.as_bytes(), parsed)
    }

    #[test]
    fn a_v4_mapped_client_is_its_ipv4_address() {
        let h = hop_of("from relay.example ([::ffff:198.51.100.40]) by mx.example with esmtp; Tue, 4 Nov 2025 18:12:30 +0200");
        assert_eq!(h.from_ip.as_deref(), Some("198.51.100.40"));
        let h = hop_of("from relay.example ([IPv6:2001:db8::40]) by mx.example with esmtp; Tue, 4 Nov 2025 18:12:30 +0200");
        assert_eq!(h.from_ip.as_deref(), Some("2001:db8::40"));
    }

    #[test]
    fn a_webmail_login_is_not_a_reverse_name() {
        let h = hop_of("from 203.0.113.61 (NaSMail authenticated user erin.r) by webmail.example.org with HTTP; Tue, 4 Nov 2025 18:12:30 +0000");
        assert_eq!(h.from_ip.as_deref(), Some("203.0.113.61"));
        assert_eq!(h.from_rdns, None);
        // A reverse name in the usual place is kept.
        let h = hop_of("from a.example (mail.a.example [203.0.113.62]) by mx.example (Postfix) with ESMTP id 4dJ; Tue, 4 Nov 2025 18:12:30 +0000");
        assert_eq!(h.from_rdns.as_deref(), Some("mail.a.example"));
    }

    #[test]
    fn postfix_authenticated_sender_is_not_a_reverse_name() {
        // `smtpd_sasl_authenticated_header = yes`: the login comes after the client's comment.
        let h = hop_of("from relay.example.org (relay.example.org [192.0.2.80]) (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) (Authenticated sender: gw.example.net) by mx.example.com (Postfix) with ESMTPSA id 4dJq0T1; Tue, 4 Nov 2025 18:12:30 +0000 (UTC)");
        assert_eq!(h.from_rdns.as_deref(), Some("relay.example.org"));
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.80"));
        assert_eq!(h.id.as_deref(), Some("4dJq0T1"));
        // A client without a reverse name keeps none, whatever the login looks like.
        let h = hop_of("from [10.1.2.3] (unknown [198.51.100.9]) (Authenticated sender: mail.example.org) by mx.example.com (Postfix) with ESMTPSA id 4dJq0T2; Tue, 4 Nov 2025 18:12:31 +0000 (UTC)");
        assert_eq!(h.from_rdns, None);
        assert_eq!(h.from_ip.as_deref(), Some("198.51.100.9"));
        // An address or a bare user name as the login leaves the reverse name as it was.
        let h = hop_of("from laptop (host.example.net [203.0.113.5]) (Authenticated sender: erin@example.org) by mx.example.com (Postfix) with ESMTPSA id 4dJq0T3; Tue, 4 Nov 2025 18:12:32 +0000 (UTC)");
        assert_eq!(h.from_rdns.as_deref(), Some("host.example.net"));
    }

    #[test]
    fn exim3_names_the_reverse_name_before_the_helo() {
        let h = hop_of("from gw.example.net (laptop.lan) [192.0.2.71.40112] (mail) by mx.example.org with esmtp (Exim 3.36 #1) id 1CO5y7-0001vC-00; Tue, 4 Nov 2025 18:12:30 +0100");
        assert_eq!(h.from_rdns.as_deref(), Some("gw.example.net"));
        assert_eq!(h.helo.as_deref(), Some("laptop.lan"));
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.71"));
        // Sendmail's and Postfix's `HELO (NAME [IP])` keep their reading.
        let h = hop_of("from laptop.lan (gw.example.net [192.0.2.71]) by mx.example.org (8.17.1/8.17.1) with ESMTP id 5B4IA1x; Tue, 4 Nov 2025 18:12:30 +0100");
        assert_eq!(h.from_rdns.as_deref(), Some("gw.example.net"));
        assert_eq!(h.helo, None);
        // A comment of several words before a literal is not Exim 3's HELO.
        let h = hop_of("from gw.example.net (may be forged) [192.0.2.71] by mx.example.org; Tue, 4 Nov 2025 18:12:30 +0100");
        assert_eq!(h.helo, None);
    }

    #[test]
    fn qmail_names_the_reverse_name_before_the_helo() {
        let h = hop_of("from mail.example.com (HELO mx.example.com) (192.0.2.1) by mx.corp.test with SMTP; 4 Nov 2025 06:00:00 -0000");
        assert_eq!(h.from_rdns.as_deref(), Some("mail.example.com"));
        assert_eq!(h.helo.as_deref(), Some("mx.example.com"));
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.1"));
        // A user before the address.
        let h = hop_of("from gw.example.net (HELO laptop) (carol@203.0.113.77) by mail.example.org with SMTP; 12 Mar 2026 09:41:04 -0000");
        assert_eq!(h.from_rdns.as_deref(), Some("gw.example.net"));
        assert_eq!(h.from_ip.as_deref(), Some("203.0.113.77"));
        // No reverse name, or a comment that is no address: none.
        let h = hop_of("from unknown (HELO mx.example.com) (192.0.2.1) by mx.corp.test with SMTP; 4 Nov 2025 06:00:00 -0000");
        assert_eq!(h.from_rdns, None);
        let h = hop_of("from mail.example.com (HELO mx.example.com) by mx.corp.test with SMTP; 4 Nov 2025 06:00:00 -0000");
        assert_eq!(h.from_rdns, None);
        // Without the HELO comment the shape is Exchange's, whose from-host is the HELO.
        let h = hop_of("from mail.example.com (192.0.2.1) by mx.corp.test with SMTP; 4 Nov 2025 06:00:00 -0000");
        assert_eq!(h.from_rdns, None);
    }

    #[test]
    fn recipients_as_written() {
        let h = hop_of("from x (unknown [192.0.2.1]) by mx.example with ESMTP id A for <u@[192.0.2.7]>; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!(h.for_.as_deref(), Some("u@[192.0.2.7]"));
        let h = hop_of("from x (unknown [192.0.2.1]) by mx.example with ESMTP id A for <\"x;y z\"@example.com>; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!(h.for_.as_deref(), Some("\"x;y z\"@example.com"));
        assert!(h.timestamp.is_some());
        let h = hop_of("from x by mx.example with esmtp id 1aVFVG-0000me-LC for user@example.org; Mon, 15 Feb 2016 10:31:35 +0100");
        assert_eq!(h.for_.as_deref(), Some("user@example.org"));
        // No address: nothing.
        let h = hop_of("from x by mx.example with SMTP for <>; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!(h.for_, None);
    }

    #[test]
    fn the_client_is_read_from_the_from_clause_only() {
        // A comment left open: neither the `for` literal nor the `by` host is the client.
        let h = hop_of("from x (unknown [192.0.2.1] by mx.example.com (Postfix) with ESMTP id ABC for <u@[6.6.6.7]>; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(h.from_rdns, None);
        // Exim: the literal before the HELO, whatever the HELO holds.
        let h = hop_of("from mail.example.org ([192.0.2.10] helo=(unknown [6.6.6.6])x) by mx.example.net with esmtp (Exim 4.96) id 1abcDE-000001-AB; Mon, 21 Sep 2026 10:00:00 +0000");
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.10"));
        assert_eq!(h.from_rdns.as_deref(), Some("mail.example.org"));
        // A HELO imitating Postfix's comment: no client, and a warning.
        let h = hop_of("from x (a [6.6.6.6]) (using TLS) (unknown [192.0.2.1]) by mx.example.com (Postfix) with ESMTP id ABC; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!((h.from_ip, h.from_rdns), (None, None));
        assert_eq!(h.warnings, [HopWarning::AmbiguousClient]);
    }

    #[test]
    fn placeholders_are_no_reverse_names() {
        let h = hop_of("from 12-211-5-69.client.attbi.com (<unknown.domain>[12.211.5.69]) by rwcrmhc53.attbi.com (rwcrmhc53) with SMTP id <2002112823351305300akl1ue>; Thu, 28 Nov 2002 23:35:13 +0000");
        assert_eq!(h.from_rdns, None);
        assert_eq!(h.from_ip.as_deref(), Some("12.211.5.69"));
        let h = hop_of("from bushinternet.com (softdnserr [::ffff:61.99.99.67]) by mail.cs.helsinki.fi with esmtp; Fri, 22 Aug 2003 12:25:41 +0300");
        assert_eq!(h.from_rdns, None);
        assert_eq!(h.from_ip.as_deref(), Some("61.99.99.67"));
    }

    #[test]
    fn literals_as_ecelerity_and_qmail_write_them() {
        // ecelerity: the port inside the brackets.
        let h = hop_of("from ([192.0.2.1:2525]) by mx.example with ESMTP id 7B/1C-01234-56789ABC; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.1"));
        // A HELO that is an address literal keeps its brackets; a bare address stays bare.
        let h = hop_of("from unknown (HELO [10.10.10.10]) (192.0.2.5) by mx.example with SMTP; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!(h.helo.as_deref(), Some("[10.10.10.10]"));
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.5"));
        let h = hop_of("from [192.0.2.5] (helo=10.10.10.10) by mx.example with esmtp (Exim 4.96) id 1abcDE-000001-AB; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!(h.helo.as_deref(), Some("10.10.10.10"));
        // An address is no reverse name.
        let h = hop_of("from 212.202.243.194 ([212.202.243.194] helo=blackstar) by mx.example with esmtp (Exim 4.96) id 1abcDE-000001-AB; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!(h.from_rdns, None);
        assert_eq!(h.helo.as_deref(), Some("blackstar"));
    }

    #[test]
    fn a_from_clause_in_the_first_comment() {
        // Symantec's mail gateway.
        let h = hop_of("(from h.example [192.0.2.1]) by mx.example with SMTP id A1; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!(h.from.as_deref(), Some("h.example"));
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.1"));
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
        // Sendmail's local submission names a user, not a client.
        let h = hop_of("(from root@localhost) by h.example (8.17.1/8.17.1/Submit) id 5B4IA1x; Thu, 1 Jan 2026 00:00:00 +0000");
        assert_eq!((h.from, h.from_ip), (None, None));
        assert_eq!(h.by.as_deref(), Some("h.example"));
        // qmail's comment is no from clause.
        let h = hop_of("(qmail 123 invoked from network); 4 Nov 2025 06:00:00 -0000");
        assert_eq!(h.from, None);
    }

    #[test]
    fn gmx_writes_the_helo_verb() {
        let h = hop_of("from dslb-082-083-045-064.pools.arcor-ip.net (EHLO homepc) [82.83.45.64] by mail.gmx.net (mp010) with SMTP; 03 Feb 2007 13:13:47 +0100");
        assert_eq!(
            h.from_rdns.as_deref(),
            Some("dslb-082-083-045-064.pools.arcor-ip.net")
        );
        assert_eq!(h.helo.as_deref(), Some("homepc"));
        assert_eq!(h.from_ip.as_deref(), Some("82.83.45.64"));
    }

    #[test]
    fn communigate_forms() {
        let h = hop_of("from [203.0.113.90] (account carol@example.org HELO [10.0.0.5]) by cgp.example.org (CommuniGate Pro SMTP 6.3.9) with ESMTPSA id 4412731 for dave@example.com; Tue, 04 Nov 2025 10:12:30 -0800");
        assert_eq!(h.from_ip.as_deref(), Some("203.0.113.90"));
        assert_eq!(h.protocol.as_deref(), Some("ESMTPSA"));
        assert_eq!(h.id.as_deref(), Some("4412731"));
        let h = hop_of("from relay.example.net ([198.51.100.14] verified) by cgp.example.org (CommuniGate Pro SMTP 6.3.9) with ESMTPS id 4412732 for dave@example.com; Tue, 04 Nov 2025 10:12:31 -0800");
        assert_eq!(h.from_ip.as_deref(), Some("198.51.100.14"));
        assert_eq!(h.from.as_deref(), Some("relay.example.net"));
        assert!(h.timestamp.is_some() && h.warnings.is_empty());
    }

    /// Shapes from other projects' Received-parser tests (SpamAssassin, mail-parser, pyreceived).
    #[test]
    fn address_literals_ciphers_and_reverse_names_as_written() {
        // An IPv6 client's address-literal HELO, and an IPv6 literal as the by-host.
        let h = hop_of("from [IPv6:2a02:8070:a184:1e00::5] (unknown [IPv6:2a02:8070:a184:1e00::5]) (using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits)) by mail.example.org (Postfix) with ESMTPSA id 4SgQxB1Lz5; Thu, 30 Nov 2023 10:23:19 +0100 (CET)");
        assert_eq!(h.from.as_deref(), Some("[IPv6:2a02:8070:a184:1e00::5]"));
        assert_eq!(h.from_ip.as_deref(), Some("2a02:8070:a184:1e00::5"));
        let h = hop_of("from a.example by [IPv6:2001:db8::7] with ESMTPS id 3AUAN9; Thu, 30 Nov 2023 10:23:18 +0100");
        assert_eq!(h.by.as_deref(), Some("[IPv6:2001:db8::7]"));
        // Exchange's link-local literal with its zone index.
        let h = hop_of("from EXCH02.CORP.LOCAL ([fe80::250:56ff:fe85:5095%11]) by EXCH02.CORP.LOCAL ([fe80::250:56ff:fe85:5095%11]) with Microsoft SMTP Server id 14.03.0123.003; Tue, 24 Jun 2014 10:16:07 -0500");
        assert_eq!(h.from_ip.as_deref(), Some("fe80::250:56ff:fe85:5095"));
        // Ciphers mail-parser does not take for one, in Postfix's, Sendmail's and Exim's words.
        for (value, cipher) in [
            ("from out.example (out.example [192.30.254.192]) (using TLSv1.2 with cipher AECDH-AES256-SHA (256/256 bits)) by mx.example (Postfix) with ESMTPS id C7B1A30014A; Tue, 3 Jul 2018 15:40:19 +0300 (MSK)", "AECDH-AES256-SHA"),
            ("from a.example (a.example [80.137.77.231]) (authenticated bits=0) by mx.example (8.12.10/8.12.10) with ESMTP id i9IGfNdk; (version=TLSv1/SSLv3 cipher=RC4-MD5 bits=128 verify=NO); Mon, 18 Oct 2004 18:41:23 +0200", "RC4-MD5"),
            ("from [192.0.2.9] (helo=a.example) by mx.example with esmtp (TLSv1:RC4-SHA:128) (Exim 4.04) id 1CJaZW-0006rU-00; Mon, 18 Oct 2004 18:41:23 +0200", "RC4-SHA"),
        ] {
            assert_eq!(hop_of(value).tls_cipher.as_deref(), Some(cipher), "{value}");
        }
        // The `(NAME [IP])` comment names the client, single-label and `_` names too; a later
        // comment does not; qmail's `(HELO x)` is no name.
        let h = hop_of("from localhost (localhost [127.0.0.1]) (ftp://ftp.isi.edu/in-notes/rfc1894.txt) by mx.example.org with dsn; Sat, 11 Dec 2010 12:19:59 +0900");
        assert_eq!(h.from_rdns.as_deref(), Some("localhost"));
        let h = hop_of("from [10.10.10.215] (Collation_Software.demarc.example.com [66.250.6.18]) by waste.example; Thu, 6 May 2004 17:40:44 -0500");
        assert_eq!(
            h.from_rdns.as_deref(),
            Some("Collation_Software.demarc.example.com")
        );
        let h = hop_of("from unknown (HELO [10.0.0.12]) (carol@203.0.113.77) by mail.example.org with SMTP; 12 Mar 2026 09:41:04 -0000");
        assert_eq!(h.from_rdns, None);
        // A literal with the client's port is the from-host as written.
        let h = hop_of("from [10.128.128.81]:50999 (HELO intra.example.com) by av4.example ([10.128.128.74]:25) with SMTP; Tue, 5 Mar 2002 14:11:53 -0000");
        assert_eq!(h.from.as_deref(), Some("[10.128.128.81]:50999"));
        assert_eq!(h.from_ip.as_deref(), Some("10.128.128.81"));
        // OpenSMTPD's `; for <x@y>;` has no date at all; an impossible date is unreadable.
        let h = hop_of("from localhost (localhost [local]); by localhost (OpenSMTPD) with ESMTPA id 1e2a9eaa; for <k@example.jp>;");
        assert_eq!(h.warnings, [HopWarning::NoDate]);
        let h =
            hop_of("from a.example by b.example with ESMTP id 1; Thu, 31 Feb 2023 10:23:19 +0000");
        assert_eq!(h.warnings, [HopWarning::UnreadableDate]);
    }

    #[test]
    fn a_double_quote_in_a_comment_is_comment_text() {
        // RFC 5322 3.2.2: only `\` and parentheses are special in a comment. mail-parser reads
        // the `"` as a quoted string to the header's end and loses `by` and `id`.
        let h = hop_of("from a.example (b.example [192.0.2.1]) (authenticated sender \"x) by mx.example (Postfix) with ESMTPSA id ABC; Thu, 01 Oct 2026 12:00:00 +0000");
        assert_eq!(h.by.as_deref(), Some("mx.example"));
        assert_eq!(h.id.as_deref(), Some("ABC"));
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.1"));
        let h = hop_of("from sender.example (quoted-looking \" by relay; still comment) by mx.example with ESMTP; Thu, 01 Oct 2026 12:00:00 +0000");
        assert_eq!(h.by.as_deref(), Some("mx.example"));
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
    }

    #[test]
    fn a_helo_comment_never_names_the_client() {
        // qmail/qpsmtpd write `(HELO x) (IP)`: what the client said, then what the server saw.
        for value in [
            "from source (HELO host [8.8.8.8]) (1.2.3.4) by mx.example (qpsmtpd/0.84) with ESMTP; Thu, 01 Oct 2026 12:00:00 +0000",
            "from source (1.2.3.4) (HELO host [8.8.8.8]) by mx.example; Thu, 01 Oct 2026 12:00:00 +0000",
        ] {
            assert_eq!(hop_of(value).from_ip.as_deref(), Some("1.2.3.4"), "{value}");
        }
        // With nothing the server wrote, there is no client address; also when the HELO
        // escapes a parenthesis or quotes a `by`.
        for value in [
            "from source (HELO host [8.8.8.8]) by mx.example; Thu, 01 Oct 2026 12:00:00 +0000",
            "from source (HELO x\\) [8.8.8.8]) by mx.example; Thu, 01 Oct 2026 12:00:00 +0000",
            "from source (HELO \"x by y\" [8.8.8.8]) by mx.example; Thu, 01 Oct 2026 12:00:00 +0000",
        ] {
            let h = hop_of(value);
            assert_eq!(h.from_ip, None, "{value}");
            assert_eq!(h.by.as_deref(), Some("mx.example"), "{value}");
        }
        // qmail's literal HELO stays the HELO; the address is the server's.
        let h = hop_of("from unknown (HELO [10.0.0.5]) (192.0.2.9) by mail.example.com with SMTP; Thu, 01 Oct 2026 12:00:00 +0000");
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.9"));
        assert_eq!(h.helo.as_deref(), Some("[10.0.0.5]"));
    }
}
