//! Findings vocabulary and diagnosis rules with runbook hints (issue 5).
