//! The fio example servers, kept in their own unpublished crate because they use both
//! `fio-reactor` and `fio-cluster` (and later `fio-tls`), which `fio-reactor`'s own examples
//! can't depend on.
//!
//! - `echo`: the spec's `fio_listen` echo server (`--raw`: a pure byte echo);
//! - `http_hello`: a keep-alive, pipelining HTTP hello server;
//! - `chat`: a line-based chat room;
//! - `client`: `fio_connect`, one HTTP request, the answer on stdout.
//!
//! The servers take `--url`/`--port`, `--threads` and `--workers` (forked by `fio-cluster`),
//! and serve sockets handed over by systemd socket activation instead of `--url` when there are
//! any. Run one with `cargo run --release -p fio-examples --example echo`.
//!
//! The library is what they share: [`support`].
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod support;
