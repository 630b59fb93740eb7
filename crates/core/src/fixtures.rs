//! Values the core's unit tests build alike: a log hop with only a host and a status. Not here:
//! what a test checks (each test sets the fields it asserts about).
use crate::fusion::{Hop, HopStatus};

/// A hop of `host` in `status` after one attempt, every other field empty.
pub(crate) fn bare_hop(host: &str, status: HopStatus) -> Hop {
    Hop {
        host: host.into(),
        queue_id: None,
        service: None,
        status,
        relay: None,
        delay_ms: None,
        delays: None,
        dsn: None,
        reason: None,
        from: None,
        to: Vec::new(),
        client: None,
        next_queue_id: None,
        lmtp_session: None,
        mailbox: None,
        attempts: 1,
        arrived_at: None,
        left_at: None,
        whole_seconds: false,
        recipients: Vec::new(),
    }
}
