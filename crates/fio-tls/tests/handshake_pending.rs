//! Plaintext written before the handshake ends waits in the session, and still counts: fio's
//! client writes on open, sees it `pending`, and `flush_strong` (or a graceful close) waits
//! for the handshake and the record; a blocking rustls server receives all of it, then
//! close_notify.

mod util;

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use fio_reactor::{ConnectArgs, Protocol, Uuid};
use util::*;

/// What the client wrote before its handshake, large enough for several records.
fn message() -> Vec<u8> {
    (0..40_000u32).map(|i| (i % 253) as u8).collect()
}

/// Stops the reactor when its connection closes.
struct StopOnClose;

impl Protocol for StopOnClose {
    fn on_close(&mut self, _uuid: Uuid) {
        fio_reactor::stop();
    }
}

/// What the client saw on open.
#[derive(Debug, Default)]
struct Seen {
    pending_before: usize,
    flushed: Option<Result<(), String>>,
    pending_after: Option<usize>,
}

/// A blocking rustls server on a thread: reads until close_notify and returns the
/// plaintext, or the error that ended the stream.
fn rustls_server() -> (
    std::net::SocketAddr,
    thread::JoinHandle<Result<Vec<u8>, String>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = server_tls().server_config().unwrap();
    let server = thread::spawn(move || {
        let (sock, _) = listener.accept().map_err(|error| error.to_string())?;
        sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let conn = rustls::ServerConnection::new(config).map_err(|error| error.to_string())?;
        let mut stream = rustls::StreamOwned::new(conn, sock);
        let mut got = Vec::new();
        // rustls ends the stream at close_notify; a close without one is an error.
        stream
            .read_to_end(&mut got)
            .map_err(|error| error.to_string())?;
        Ok(got)
    });
    (addr, server)
}

/// Connects fio's client to a rustls server, writes [`message`] on open, then (with
/// `flush_first`) calls `flush_strong`, and closes.
fn write_before_the_handshake(flush_first: bool) -> (Seen, Result<Vec<u8>, String>) {
    let (addr, server) = rustls_server();
    let reactor = reactor(1);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let into = Arc::clone(&seen);
    reactor
        .connect(
            ConnectArgs::new(format!("tls://localhost:{}", addr.port()), move |uuid| {
                fio_reactor::attach(uuid, StopOnClose).unwrap();
                fio_reactor::write2(uuid, message(), false).unwrap();
                let mut seen = into.lock().unwrap();
                seen.pending_before = fio_reactor::pending(uuid).unwrap();
                if flush_first {
                    seen.flushed =
                        Some(fio_reactor::flush_strong(uuid).map_err(|error| error.to_string()));
                    seen.pending_after = Some(fio_reactor::pending(uuid).unwrap());
                }
                fio_reactor::close(uuid).unwrap();
            })
            .tls(client_tls()),
        )
        .unwrap();
    start_bounded(&reactor).unwrap();
    let received = server.join().unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (seen, received)
}

#[test]
fn flush_strong_waits_for_the_handshake_and_what_was_written_before_it() {
    let (seen, received) = write_before_the_handshake(true);
    assert!(seen.pending_before > 0, "held in the session: {seen:?}");
    assert_eq!(seen.flushed, Some(Ok(())));
    assert_eq!(seen.pending_after, Some(0), "all handed to the kernel");
    let received = received.expect("the server read to close_notify");
    assert!(received == message(), "{} bytes arrived", received.len());
}

#[test]
fn a_close_during_the_handshake_sends_what_was_written_then_close_notify() {
    let (seen, received) = write_before_the_handshake(false);
    assert!(seen.pending_before > 0, "held in the session: {seen:?}");
    let received = received.expect("the server read to close_notify");
    assert!(received == message(), "{} bytes arrived", received.len());
}
