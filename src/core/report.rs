//! Report rendering: human, JSON, JUnit, Nagios.
