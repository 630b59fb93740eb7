//! A log line inside another program's line: a container's output that syslog or the
//! journal took in under the container's name, its message a whole Postfix or Dovecot line.

use super::prefix::{self, Header};
use super::scan::LineText;
use super::ParseContext;

/// Where the whole log line another program logged starts, when its message is one: a
/// container's output the journal or syslog took in under the container's name
/// (`Mar 15 14:00:33 host mailserver[4087]: 2026-03-15T15:00:33.52+01:00 mail postfix/...`).
/// Looked at only for a line of another program: a stamp must start its message.
fn relogged_at(line: &[u8], h: &Header<'_>) -> Option<usize> {
    let first = *h.msg.first()?;
    let stamp = first.is_ascii_digit() || prefix::month_number(h.msg).is_some();
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
