//! Forked workers for `fio-reactor`: respawn, signal forwarding, parent-death detection.
//!
//! Layer: above `fio-reactor`.
//!
//! This crate is not built yet: it holds only its crate documentation until its issue lands.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
