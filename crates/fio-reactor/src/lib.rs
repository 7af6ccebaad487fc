//! The facil.io evented core: engines, connections (uuids, protocols), defer queue, timers, state callbacks.
//!
//! Layer: above `fio-socket` (io_uring engine) and `polling` (fallback engine); used by `fio-cluster`, `fio-tls` and applications.
//!
//! This crate is not built yet: it holds only its crate documentation until its issue lands.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
