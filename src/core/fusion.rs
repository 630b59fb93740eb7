//! Timeline fusion of client times, Received hops and server logs (issue 5).
