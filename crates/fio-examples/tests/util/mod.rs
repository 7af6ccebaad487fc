//! Helpers for the examples' integration tests: fio-reactor's test helpers (one copy, shared
//! through `#[path]`; they read `FIO_ENGINE`, so these tests run under the run's engine too),
//! plus [`serve`], which only the examples' tests use.
#![allow(dead_code)]

use std::thread;

use fio_reactor::Reactor;

#[path = "../../../fio-reactor/tests/util/mod.rs"]
mod reactor_util;

pub(crate) use reactor_util::*;

/// Runs `reactor` until `client`, given a [`client`] connected to `addr`, returns (then stops
/// it); returns what `client` returned.
pub(crate) fn serve<T: Send + 'static>(
    reactor: &Reactor,
    addr: std::net::SocketAddr,
    client: impl FnOnce(std::net::TcpStream) -> T + Send + 'static,
) -> T {
    let stopper = reactor.clone();
    let running = thread::spawn(move || {
        let result = client(reactor_util::client(addr));
        stopper.stop();
        result
    });
    start_bounded(reactor).expect("the reactor runs");
    running.join().expect("the client thread")
}
