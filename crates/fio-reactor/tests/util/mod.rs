//! Helpers shared by the reactor's integration tests.
//!
//! Every test builds its reactor through [`args`], which reads `FIO_ENGINE` through
//! [`engine`], so the whole suite runs under whichever engine the run selects
//! (`FIO_ENGINE=uring|epoll|poll cargo test`).
#![allow(dead_code)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use fio_reactor::{EngineKind, Error, Reactor, StartArgs};

/// How long any single reactor run may take before the watchdog stops it and fails the test.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// The engine this test run asks for (`FIO_ENGINE`), or `None` for the default choice.
pub(crate) fn engine() -> Option<EngineKind> {
    EngineKind::from_env().expect("FIO_ENGINE names a known engine")
}

/// Start arguments for a test reactor: `threads` threads, one process, the run's engine, and
/// no signal handling (tests run in parallel threads of one process).
pub(crate) fn args(threads: i16) -> StartArgs {
    StartArgs {
        threads,
        workers: 1,
        engine: engine(),
        signals: false,
    }
}

/// A fresh reactor with [`args`].
pub(crate) fn reactor(threads: i16) -> Reactor {
    Reactor::new(args(threads))
}

/// Runs `reactor.start()` with a watchdog: if it hasn't returned within [`DEADLINE`], the
/// watchdog stops it and the test fails instead of hanging.
pub(crate) fn start_bounded(reactor: &Reactor) -> Result<(), Error> {
    let (done, finished) = mpsc::channel::<()>();
    let watched = reactor.clone();
    let watchdog = thread::spawn(move || {
        let timed_out = finished.recv_timeout(DEADLINE) == Err(mpsc::RecvTimeoutError::Timeout);
        if timed_out {
            watched.stop();
        }
        timed_out
    });
    let result = reactor.start();
    drop(done);
    let timed_out = watchdog.join().expect("watchdog thread");
    assert!(!timed_out, "the reactor did not stop within {DEADLINE:?}");
    result
}
