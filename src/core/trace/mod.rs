//! Received-header trace engine (issue 3).
