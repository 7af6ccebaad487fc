//! FastSocket: asynchronous socket send and receive on `fio-ring` and `fio-buffer`.
//!
//! Layer: above `fio-ring` and `fio-buffer`, under `fio-reactor`'s io_uring engine.
//!
//! This crate is not built yet: it holds only its crate documentation until its issue lands.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
