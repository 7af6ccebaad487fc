//! `write_notify`: a write from another thread whose caller learns what became of it.

mod util;

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use fio_reactor::{Error, Protocol, Uuid};
use util::{IO_TIMEOUT, client, listen_local, reactor, start_bounded};

/// Reads and drops whatever arrives.
struct Sink;

impl Protocol for Sink {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 1024];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
    }
}

/// Bytes written: more than the socket buffers of both ends hold.
const BULK: usize = 32 << 20;

/// Starts a reactor with one accepted connection, runs `drive` on a plain thread with the
/// connection's uuid and the client's stream, and returns what `drive` returns.
fn with_connection<T: Send + 'static>(
    drive: impl FnOnce(Uuid, std::net::TcpStream) -> T + Send + 'static,
) -> T {
    let reactor = reactor(2);
    let (opened, accepted) = mpsc::channel();
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(uuid, Sink).unwrap();
        let _ = opened.send(uuid);
    });
    let stopper = reactor.clone();
    let driver = std::thread::spawn(move || {
        let stream = client(addr);
        let uuid = accepted.recv_timeout(IO_TIMEOUT).unwrap();
        let out = drive(uuid, stream);
        stopper.stop();
        out
    });
    start_bounded(&reactor).unwrap();
    driver.join().unwrap()
}

#[test]
fn a_write_from_another_thread_reports_that_it_was_sent() {
    let (result, received) = with_connection(|uuid, mut stream| {
        let (tx, rx) = mpsc::channel();
        fio_reactor::write_notify(uuid, vec![5u8; BULK], move |result| {
            let _ = tx.send(result);
        });
        // Routed after the write, in order: the close waits for the bytes.
        fio_reactor::close(uuid).unwrap();
        let received = util::read_to_end(&mut stream).len();
        (rx.recv_timeout(IO_TIMEOUT).unwrap(), received)
    });
    assert_eq!(received, BULK);
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_write_from_another_thread_learns_that_the_peer_reset_the_connection() {
    let (written_to, result) = with_connection(|uuid, mut stream| {
        let (tx, rx) = mpsc::channel();
        fio_reactor::write_notify(uuid, vec![6u8; BULK], move |result| {
            let _ = tx.send(result);
        });
        // Some bytes arrive and stay unread: closing now makes the kernel send a reset.
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(stream);
        (uuid, rx.recv_timeout(IO_TIMEOUT).unwrap())
    });
    match result {
        Err(Error::Unsent { uuid, .. }) => assert_eq!(uuid, written_to),
        other => panic!("expected Unsent, got {other:?}"),
    }
}

#[test]
fn a_write_cut_off_by_force_close_reports_unsent() {
    let result = with_connection(|uuid, _stream| {
        let (tx, rx) = mpsc::channel();
        fio_reactor::write_notify(uuid, vec![7u8; BULK], move |result| {
            let _ = tx.send(result);
        });
        // The client never reads, so the queue can't drain before this arrives.
        fio_reactor::force_close(uuid).unwrap();
        rx.recv_timeout(IO_TIMEOUT).unwrap()
    });
    assert!(
        matches!(result, Err(Error::Unsent { source: None, .. })),
        "{result:?}"
    );
}

#[test]
fn a_write_to_a_closed_connection_reports_invalid_uuid() {
    let (closed, result) = with_connection(|uuid, _stream| {
        fio_reactor::force_close(uuid).unwrap();
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        while fio_reactor::is_valid(uuid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (tx, rx) = mpsc::channel();
        fio_reactor::write_notify(uuid, b"late".to_vec(), move |result| {
            let _ = tx.send(result);
        });
        // Refused at the call: reported at once, on this thread.
        (uuid, rx.try_recv().unwrap())
    });
    assert!(
        matches!(result, Err(Error::InvalidUuid(uuid)) if uuid == closed),
        "{result:?}"
    );
}

/// Echoes what arrives.
struct Echo;

impl Protocol for Echo {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 1024];
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            fio_reactor::write(uuid, &buf[..count]).unwrap();
        }
    }
}

#[test]
fn a_small_write_after_many_replies_still_reports_that_it_was_sent() {
    // Replies with nothing waiting for their drain go unreported by the engine; a write that
    // waits for its drain must turn the reports back on, or it would hear nothing until close.
    let reactor = reactor(1);
    let (opened, accepted) = mpsc::channel();
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(uuid, Echo).unwrap();
        let _ = opened.send(uuid);
    });
    let stopper = reactor.clone();
    let driver = std::thread::spawn(move || {
        let mut stream = client(addr);
        let uuid = accepted.recv_timeout(IO_TIMEOUT).unwrap();
        for round in 0..4u8 {
            std::io::Write::write_all(&mut stream, &[round; 3]).unwrap();
            let mut reply = [0u8; 3];
            stream.read_exact(&mut reply).unwrap();
            assert_eq!(reply, [round; 3]);
        }
        let (tx, rx) = mpsc::channel();
        fio_reactor::write_notify(uuid, b"note".to_vec(), move |result| {
            let _ = tx.send(result);
        });
        let mut note = [0u8; 4];
        stream.read_exact(&mut note).unwrap();
        let result = rx.recv_timeout(IO_TIMEOUT);
        stopper.stop();
        (note, result)
    });
    start_bounded(&reactor).unwrap();
    let (note, result) = driver.join().unwrap();
    assert_eq!(&note, b"note");
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
}
