//! Server log line parsers (issue 5).
