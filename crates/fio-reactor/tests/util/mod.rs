//! Helpers shared by the reactor's integration tests.
//!
//! Every test builds its reactor through [`args`], which reads `FIO_ENGINE` through
//! [`engine`], so the whole suite runs under whichever engine the run selects
//! (`FIO_ENGINE=uring|epoll|poll cargo test`).
#![allow(dead_code)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use fio_reactor::{Concurrency, EngineKind, Error, Reactor, StartArgs};

/// How long any single reactor run may take before the watchdog stops it and fails the test.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// The engine this test run asks for (`FIO_ENGINE`), or `None` for the default choice.
pub(crate) fn engine() -> Option<EngineKind> {
    EngineKind::from_env().expect("FIO_ENGINE names a known engine")
}

/// Start arguments for a test reactor: `threads` threads, one process, the run's engine, and
/// no signal handling (tests run in parallel threads of one process).
pub(crate) fn args(threads: u16) -> StartArgs {
    let threads = Concurrency::exactly(threads).expect("a test runs at least one thread");
    StartArgs::new()
        .threads(threads)
        .workers(Concurrency::ONE)
        .engine(engine())
        .signals(false)
}

/// A fresh reactor with [`args`].
pub(crate) fn reactor(threads: u16) -> Reactor {
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
    check_engine_ran(reactor);
    result
}

/// Checks that `reactor`'s latest start ran the engine this run asks for: under
/// `FIO_ENGINE=uring`, a reactor that fell back to epoll did not test io_uring, which is a
/// failure where the run requires io_uring (`FIO_REQUIRE_URING=1`) and a `FIO-SKIP:` line
/// elsewhere (`fio_test::skip`).
pub(crate) fn check_engine_ran(reactor: &Reactor) {
    let ran = reactor.engine();
    if engine() == Some(EngineKind::Uring) && ran != "io_uring" {
        fio_test::skip(
            fio_test::Feature::Uring,
            &format!("FIO_ENGINE=uring, but the reactor ran on {ran} (io_uring refused here)"),
        );
    }
}

/// How long a test client waits on one socket call before failing.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Listens on 127.0.0.1:0 for `reactor`; returns the listener's uuid and address.
pub(crate) fn listen_local(
    reactor: &Reactor,
    on_open: impl Fn(fio_reactor::Uuid) + Send + Sync + 'static,
) -> (fio_reactor::Uuid, std::net::SocketAddr) {
    let listener = reactor
        .listen(fio_reactor::ListenArgs::new("tcp://127.0.0.1:0", on_open))
        .expect("listen on 127.0.0.1:0");
    let addr = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .expect("a TCP listener has an inet address");
    (listener, addr)
}

/// A blocking client connected to `addr`, with [`IO_TIMEOUT`] on reads and writes.
pub(crate) fn client(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    stream
}

/// Reads until end of stream (or a reset, which ends it too); returns the bytes.
pub(crate) fn read_to_end(stream: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(count) => out.extend_from_slice(&buf[..count]),
        }
    }
}

/// Echoes every byte back and counts its `on_close` calls.
pub(crate) struct Echo {
    pub(crate) closes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl fio_reactor::Protocol for Echo {
    fn on_data(&mut self, uuid: fio_reactor::Uuid) {
        let mut buf = [0u8; 16384];
        // Bounded: the receive queue holds at most its high-water mark plus one read's worth.
        for _ in 0..1024 {
            match fio_reactor::read(uuid, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(count) => {
                    let _ = fio_reactor::write(uuid, &buf[..count]);
                }
            }
        }
    }

    fn on_close(&mut self, _uuid: fio_reactor::Uuid) {
        self.closes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A client protocol: collects what it reads and stops the reactor once `expected` bytes
/// arrived.
pub(crate) struct Pinger {
    pub(crate) got: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    pub(crate) expected: usize,
}

impl fio_reactor::Protocol for Pinger {
    fn on_data(&mut self, uuid: fio_reactor::Uuid) {
        let mut buf = [0u8; 64];
        let count = fio_reactor::read(uuid, &mut buf).unwrap_or(0);
        let mut got = self.got.lock().expect("pinger lock");
        got.extend_from_slice(&buf[..count]);
        if got.len() >= self.expected {
            fio_reactor::stop();
        }
    }
}

/// Runs `reactor` while a client thread sends `request` to `addr` and reads until the server
/// ends the stream; the client then stops the reactor. Returns what the client read.
pub(crate) fn run_exchange(
    reactor: &Reactor,
    addr: std::net::SocketAddr,
    request: &'static [u8],
) -> Vec<u8> {
    use std::io::Write;
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(request).expect("send the request");
        let received = read_to_end(&mut stream);
        stopper.stop();
        received
    });
    start_bounded(reactor).expect("the reactor runs");
    client.join().expect("the client thread")
}
