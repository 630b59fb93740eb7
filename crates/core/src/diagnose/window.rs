//! The time window of a log analysis: which records fall inside `--since` / `--until`, when a
//! roughly ordered log has gone far enough past the end to stop reading it, and the accepted
//! spellings of a window's ends. Does not read or order records (`super::merge` does).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};

/// After `until`, a source is read this much longer (logs are only roughly ordered), then
/// dropped.
pub const UNTIL_SLACK: TimeDelta = TimeDelta::seconds(600);

/// Where a record's time lies relative to a [`Window`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Inside the window (or the window is open on that side).
    Inside,
    /// Before `since`, or after `until` by no more than [`UNTIL_SLACK`].
    Outside,
    /// After `until` by more than [`UNTIL_SLACK`]: the rest of the log is later still.
    Beyond,
}

/// A time window; an end left out is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Window {
    /// A window, or why `since` and `until` do not make one.
    pub fn new(
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Window, WindowError> {
        match (since, until) {
            (Some(a), Some(b)) if a > b => Err(WindowError::SinceAfterUntil),
            _ => Ok(Window { since, until }),
        }
    }

    /// Where `t` lies.
    pub fn place(&self, t: DateTime<Utc>) -> Placement {
        if self.since.is_some_and(|s| t < s) {
            return Placement::Outside;
        }
        match self.until {
            Some(u) if t > u + UNTIL_SLACK => Placement::Beyond,
            Some(u) if t > u => Placement::Outside,
            _ => Placement::Inside,
        }
    }
}

/// Why two times do not make a [`Window`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("the window starts after it ends")]
    SinceAfterUntil,
}

/// A window end: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(n.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(n) = d.and_hms_opt(0, 0, 0) {
            return Ok(n.and_utc());
        }
    }
    Err(format!(
        "'{s}' is not a time: use RFC 3339 (2025-11-04T18:12:34Z) or 'YYYY-MM-DD HH:MM:SS' (UTC)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    #[test]
    fn times() {
        assert_eq!(
            t("2025-11-04 18:12:34").to_rfc3339(),
            "2025-11-04T18:12:34+00:00"
        );
        assert_eq!(
            t("2025-11-04T19:12:34+01:00").to_rfc3339(),
            "2025-11-04T18:12:34+00:00"
        );
        assert_eq!(t("2025-11-04").to_rfc3339(), "2025-11-04T00:00:00+00:00");
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn placement_with_slack_after_the_end() {
        let w = Window::new(
            Some(t("2025-11-04 10:00:00")),
            Some(t("2025-11-04 11:00:00")),
        )
        .unwrap();
        assert_eq!(w.place(t("2025-11-04 09:59:59")), Placement::Outside);
        assert_eq!(w.place(t("2025-11-04 10:00:00")), Placement::Inside);
        assert_eq!(w.place(t("2025-11-04 11:00:00")), Placement::Inside);
        assert_eq!(w.place(t("2025-11-04 11:10:00")), Placement::Outside);
        assert_eq!(w.place(t("2025-11-04 11:10:01")), Placement::Beyond);
        assert_eq!(Window::default().place(t("1999-01-01")), Placement::Inside);
    }

    #[test]
    fn since_after_until_is_no_window() {
        assert_eq!(
            Window::new(Some(t("2025-11-05")), Some(t("2025-11-04"))),
            Err(WindowError::SinceAfterUntil)
        );
        assert!(Window::new(Some(t("2025-11-04")), Some(t("2025-11-04"))).is_ok());
    }
}
