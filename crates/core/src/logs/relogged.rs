//! A log line inside another program's line: a container's output that syslog or the
//! journal took in under the container's name, its message a whole Postfix or Dovecot line.

use super::prefix::{self, Header};
use super::scan::LineText;
use super::ParseContext;

/// Where the whole log line another program logged starts, when its message is one: a
/// container's output the journal or syslog took in under the container's name
/// (`Mar 15 14:00:33 host mailserver[4087]: 2026-03-15T15:00:33.52+01:00 mail postfix/...`).
/// Looked at only for a line of another program: an ISO or classic stamp must start its
/// message.
fn relogged_at(line: &[u8], h: &Header<'_>) -> Option<usize> {
    // An ISO date (`2026-03-15T...`) or a classic month and its space: not merely a digit,
    // which another program's queue-id lines (opendkim's `4A1B2C3D4E: ...`) start with.
    let m = h.msg;
    let iso = m.len() > 5 && m[..4].iter().all(u8::is_ascii_digit) && m[4] == b'-';
    let stamp = iso || (prefix::month_number(m).is_some() && m.get(3) == Some(&b' '));
    let at = (h.msg.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
    (stamp && at > 0 && at < line.len()).then_some(at)
}

/// The whole log line another program's line carries as its message ([`relogged_at`]), when
/// a layout reads it with its own stamp.
#[inline(never)]
pub(super) fn relogged<'a>(
    text: LineText<'a>,
    h: &Header<'_>,
    ctx: &ParseContext,
    bump: i32,
) -> Option<LineText<'a>> {
    let inner = text.from(relogged_at(text.bytes(), h)?);
    let mut days = prefix::Days::default();
    let stamped = prefix::parse_header_with(inner.bytes(), ctx, bump, &mut days)?.ts;
    stamped.map(|_| inner)
}
