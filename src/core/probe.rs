//! Probe identity: ids, tags and their HMAC signatures.
