//! The I/O edges: everything that touches the network, the filesystem or a clock.
pub mod logsource;
