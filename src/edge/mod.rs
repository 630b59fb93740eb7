//! The I/O edges: everything that touches the network, the filesystem or a clock.
pub mod bounded;
pub mod doctor;
pub mod follow;
pub mod imap;
pub mod incidents;
pub mod logfile;
pub mod loginput;
pub mod logsource;
pub mod logwatch;
pub mod oauth;
pub mod sendgrid;
pub mod smtp;
pub mod store;
pub mod tcp;
pub mod tls;
