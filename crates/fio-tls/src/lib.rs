//! TLS for `fio-reactor` as read/write hooks, on rustls.
//!
//! Layer: above `fio-reactor`.
//!
//! This crate is not built yet: it holds only its crate documentation until its issue lands.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
