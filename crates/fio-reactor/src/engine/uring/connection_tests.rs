//! The io_uring engine's connections, driven directly with loopback peers from `std::net`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use fio_socket::Chunk;

use super::*;

/// How long any one expectation may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);
/// One engine wait while polling for an expectation.
const TICK: Duration = Duration::from_millis(10);
/// The default high-water mark the engine's sockets use.
const HIGH_WATER: usize = WaterMarks::DEFAULT_HIGH;

/// An engine and the events it reported that no check consumed yet.
struct Harness {
    engine: UringEngine,
    events: Vec<EngineEvent>,
}

impl Harness {
    /// An engine on this kernel, or `None` (printing why) when io_uring is unavailable here.
    fn new() -> Option<Self> {
        match availability() {
            Ok(()) => Some(Self {
                engine: UringEngine::new().unwrap(),
                events: Vec::new(),
            }),
            Err(reason) => {
                fio_test::skip(
                    fio_test::Feature::Uring,
                    &format!("io_uring unavailable: {reason}"),
                );
                None
            }
        }
    }

    /// One engine wait, collecting its events.
    fn tick(&mut self) {
        self.engine.wait(Some(TICK), &mut self.events).unwrap();
    }

    /// Waits until an event `wanted` accepts was reported and takes the first such event out.
    fn expect(&mut self, what: &str, wanted: impl Fn(&EngineEvent) -> bool) -> EngineEvent {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(index) = self.events.iter().position(&wanted) {
                return self.events.remove(index);
            }
            assert!(
                Instant::now() < deadline,
                "no {what} in time; events: {:?}",
                self.events
            );
            self.tick();
        }
    }

    /// Runs the engine until `step` (called after every wait) says it is done.
    fn pump(&mut self, what: &str, mut step: impl FnMut(&mut Self) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if step(self) {
                return;
            }
            assert!(Instant::now() < deadline, "{what} did not finish in time");
            self.tick();
        }
    }

    /// A connected stream opened on the engine, and its non-blocking loopback peer.
    fn pair(&mut self) -> (Uuid, TcpStream) {
        let (stream, peer) = loopback_pair();
        let conn = Uuid::from_parts(stream.as_raw_fd(), 1);
        self.engine.open(conn, stream, false).unwrap();
        self.expect(
            "initial drain",
            |event| matches!(event, EngineEvent::Drained { conn: c } if *c == conn),
        );
        (conn, peer)
    }

    /// Reads everything the engine has buffered for `conn`.
    fn read_all(&mut self, conn: Uuid) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.engine.read(conn, &mut buf).unwrap() {
                0 => return out,
                count => out.extend_from_slice(&buf[..count]),
            }
        }
    }

    /// Runs the engine until the peer has read `len` bytes (or its end of stream).
    fn peer_reads(&mut self, peer: &mut TcpStream, len: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        self.pump("the peer's read", |_| {
            loop {
                match peer.read(&mut buf) {
                    Ok(0) => return true,
                    Ok(count) => got.extend_from_slice(&buf[..count]),
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(error) => panic!("peer read: {error}"),
                }
            }
            got.len() >= len
        });
        got
    }
}

/// An accepted stream (non-blocking, for the engine) and its non-blocking client peer.
fn loopback_pair() -> (OwnedFd, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (stream, _) = listener.accept().unwrap();
    stream.set_nonblocking(true).unwrap();
    peer.set_nonblocking(true).unwrap();
    (stream.into(), peer)
}

/// `len` bytes of a pattern that shows where a lost or repeated piece would be.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|index| (index % 251) as u8).collect()
}

/// A non-blocking IPv4 socket whose connect to `addr` is in progress (or done).
fn connecting_socket(addr: SocketAddr) -> OwnedFd {
    let fd = fio_sys::socket(fio_sys::Domain::Ipv4, fio_sys::SockType::Stream, true).unwrap();
    fio_sys::connect(fd.as_fd(), &fio_sys::SockAddr::from(addr)).unwrap();
    fd
}

#[test]
fn a_listener_reports_accepted_streams_until_closed() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let uuid = Uuid::from_parts(listener.as_raw_fd(), 7);
    harness.engine.listen(uuid, listener.into()).unwrap();
    let clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for _ in &clients {
        let EngineEvent::Accepted { listener, stream } = harness
            .expect("an accepted stream", |event| {
                matches!(event, EngineEvent::Accepted { .. })
            })
        else {
            unreachable!()
        };
        assert_eq!(listener, uuid);
        assert!(fio_sys::is_nonblocking(stream.as_fd()).unwrap());
        assert!(fio_sys::is_cloexec(stream.as_fd()).unwrap());
    }
    harness.engine.close(uuid, CloseMode::Graceful).unwrap();
    let closed = harness.expect(
        "the listener's close",
        |event| matches!(event, EngineEvent::Closed { conn, .. } if *conn == uuid),
    );
    assert!(matches!(closed, EngineEvent::Closed { error: None, .. }));
    // The descriptor is closed: nobody listens there any more, and the uuid is forgotten.
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    let forgotten = harness.engine.close(uuid, CloseMode::Graceful);
    assert_eq!(forgotten.unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn an_opened_stream_is_drained_at_once_and_echoes() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let (stream, mut peer) = loopback_pair();
    let conn = Uuid::from_parts(stream.as_raw_fd(), 1);
    harness.engine.open(conn, stream, false).unwrap();
    // The first `Drained` is pending: a long wait must return at once with it.
    let started = Instant::now();
    harness
        .engine
        .wait(Some(Duration::from_secs(60)), &mut harness.events)
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(matches!(
        harness.events.as_slice(),
        [EngineEvent::Drained { conn: c }] if *c == conn
    ));
    harness.events.clear();
    let again = harness.engine.open(conn, loopback_pair().0, false);
    assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);

    peer.write_all(b"hello, engine").unwrap();
    harness.expect(
        "readable",
        |event| matches!(event, EngineEvent::Readable { conn: c } if *c == conn),
    );
    let mut received = Vec::new();
    harness.pump("the echo's read", |harness| {
        received.extend(harness.read_all(conn));
        received.len() >= 13
    });
    assert_eq!(received, b"hello, engine");
    assert_eq!(harness.engine.buffered(conn), 0);
    assert!(!harness.engine.is_eof(conn));
    harness
        .engine
        .write(conn, Chunk::from(received), false)
        .unwrap();
    harness
        .engine
        .write(conn, Chunk::from(&b">> "[..]), true)
        .unwrap();
    assert_eq!(harness.engine.pending(conn), 2);
    assert_eq!(harness.peer_reads(&mut peer, 16), b">> hello, engine");
    harness.expect(
        "the drain",
        |event| matches!(event, EngineEvent::Drained { conn: c } if *c == conn),
    );
    assert_eq!(harness.engine.pending(conn), 0);
    assert_eq!(harness.engine.sent(conn), 16);
}

#[test]
fn a_large_write_through_a_tiny_send_buffer_arrives_intact() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let (stream, mut peer) = loopback_pair();
    fio_sys::set_send_buffer_size(stream.as_fd(), 4096).unwrap();
    let conn = Uuid::from_parts(stream.as_raw_fd(), 1);
    harness.engine.open(conn, stream, false).unwrap();
    let data = pattern(2 << 20);
    for piece in data.chunks(100_000) {
        harness
            .engine
            .write(conn, Chunk::from(piece.to_vec()), false)
            .unwrap();
    }
    assert_eq!(harness.engine.pending(conn), data.len().div_ceil(100_000));
    // A slow reader: at most 64 KiB per tick, so the kernel takes the data in short sends.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let pieces = data.len().div_ceil(100_000);
    harness.pump("the slow read", |harness| {
        // Exact at every step: the pieces not yet fully taken by the kernel.
        let sent = usize::try_from(harness.engine.sent(conn)).unwrap();
        let done = if sent == data.len() {
            pieces
        } else {
            sent / 100_000
        };
        assert_eq!(harness.engine.pending(conn), pieces - done);
        match peer.read(&mut buf) {
            Ok(count) => got.extend_from_slice(&buf[..count]),
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(error) => panic!("peer read: {error}"),
        }
        got.len() >= data.len()
    });
    assert!(got == data, "the stream arrived damaged");
    assert_eq!(harness.engine.sent(conn), data.len() as u64);
    let stats = harness.engine.streams[&conn].stats().unwrap();
    assert!(stats.short_sends > 0, "no short send happened: {stats:?}");
}

#[test]
fn a_half_close_is_readable_then_eof_and_the_stream_still_sends() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let (conn, mut peer) = harness.pair();
    peer.write_all(b"last words").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    harness.expect(
        "readable",
        |event| matches!(event, EngineEvent::Readable { conn: c } if *c == conn),
    );
    let mut received = Vec::new();
    harness.pump("the read to the end of stream", |harness| {
        received.extend(harness.read_all(conn));
        harness.engine.is_eof(conn)
    });
    assert_eq!(received, b"last words");
    assert_eq!(harness.engine.buffered(conn), 0);
    // Half-closed: the write side still works.
    harness
        .engine
        .write(conn, Chunk::from(&b"noted"[..]), false)
        .unwrap();
    assert_eq!(harness.peer_reads(&mut peer, 5), b"noted");
    harness.engine.close(conn, CloseMode::Graceful).unwrap();
    harness.expect(
        "the close",
        |event| matches!(event, EngineEvent::Closed { conn: c, error: None } if *c == conn),
    );
}

#[test]
fn a_reset_closes_the_stream_with_its_error() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let (conn, peer) = harness.pair();
    // Closing a socket with unread data makes the kernel reset the connection.
    harness
        .engine
        .write(conn, Chunk::from(&b"unread"[..]), false)
        .unwrap();
    let mut byte = [0u8; 1];
    harness.pump("the peer's receipt", |_| peer.peek(&mut byte).is_ok());
    drop(peer);
    let closed = harness.expect(
        "the close",
        |event| matches!(event, EngineEvent::Closed { conn: c, .. } if *c == conn),
    );
    let EngineEvent::Closed { error, .. } = closed else {
        unreachable!()
    };
    assert_eq!(
        error.map(|error| error.kind()),
        Some(ErrorKind::ConnectionReset)
    );
    let mut buf = [0u8; 8];
    assert_eq!(
        harness.engine.read(conn, &mut buf).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn a_graceful_close_sends_what_was_queued_before_the_end_of_stream() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let (conn, mut peer) = harness.pair();
    let data = pattern(1 << 20);
    for piece in data.chunks(64 * 1024) {
        harness
            .engine
            .write(conn, Chunk::from(piece.to_vec()), false)
            .unwrap();
    }
    harness.engine.close(conn, CloseMode::Graceful).unwrap();
    let refused = harness.engine.write(conn, Chunk::from(&b"late"[..]), false);
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::BrokenPipe);
    // `peer_reads` stops at the end of stream; asking for more than was sent proves it came.
    let got = harness.peer_reads(&mut peer, usize::MAX);
    assert!(got == data, "the queued data arrived damaged");
    harness.expect(
        "the close",
        |event| matches!(event, EngineEvent::Closed { conn: c, error: None } if *c == conn),
    );
    // Nothing else was reported for the stream after its close (no `Drained`).
    assert!(
        !harness
            .events
            .iter()
            .any(|event| matches!(event, EngineEvent::Drained { conn: c } if *c == conn))
    );
}

#[test]
fn an_abort_drops_the_queue_and_closes() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let (conn, mut peer) = harness.pair();
    harness
        .engine
        .write(conn, Chunk::from(pattern(4 << 20)), false)
        .unwrap();
    harness.engine.close(conn, CloseMode::Abort).unwrap();
    harness.expect(
        "the close",
        |event| matches!(event, EngineEvent::Closed { conn: c, error: None } if *c == conn),
    );
    // The peer sees the end (an end of stream, or a reset) without all 4 MiB.
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    harness.pump("the peer's end", |_| {
        loop {
            match peer.read(&mut buf) {
                Ok(0) => return true,
                Ok(count) => got += count,
                Err(error) if error.kind() == ErrorKind::WouldBlock => return false,
                Err(error) if error.kind() == ErrorKind::ConnectionReset => return true,
                Err(error) => panic!("peer read: {error}"),
            }
        }
    });
    assert!(got < 4 << 20);
    assert_eq!(harness.engine.pending(conn), 0);
}

#[test]
fn a_connect_to_a_listener_reports_connected_and_sends_what_was_written_early() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fd = connecting_socket(listener.local_addr().unwrap());
    let conn = Uuid::from_parts(fd.as_raw_fd(), 3);
    harness.engine.open(conn, fd, true).unwrap();
    harness
        .engine
        .write(conn, Chunk::from(&b"early"[..]), false)
        .unwrap();
    assert_eq!(harness.engine.pending(conn), 1);
    let connected = harness.expect(
        "the connect",
        |event| matches!(event, EngineEvent::Connected { conn: c, .. } if *c == conn),
    );
    assert!(matches!(
        connected,
        EngineEvent::Connected { result: Ok(_), .. }
    ));
    let (mut accepted, _) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    assert_eq!(harness.peer_reads(&mut accepted, 5), b"early");
    harness.expect(
        "the drain",
        |event| matches!(event, EngineEvent::Drained { conn: c } if *c == conn),
    );
    harness.engine.close(conn, CloseMode::Graceful).unwrap();
    harness.expect(
        "the close",
        |event| matches!(event, EngineEvent::Closed { conn: c, error: None } if *c == conn),
    );
}

#[test]
fn a_connect_to_a_closed_port_reports_its_error_then_closed() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let fd = connecting_socket(addr);
    let conn = Uuid::from_parts(fd.as_raw_fd(), 4);
    harness.engine.open(conn, fd, true).unwrap();
    let connected = harness.expect(
        "the connect",
        |event| matches!(event, EngineEvent::Connected { conn: c, .. } if *c == conn),
    );
    let EngineEvent::Connected { result, .. } = connected else {
        unreachable!()
    };
    assert_eq!(result.unwrap_err().kind(), ErrorKind::ConnectionRefused);
    harness.expect(
        "the close",
        |event| matches!(event, EngineEvent::Closed { conn: c, error: Some(_) } if *c == conn),
    );
    assert!(
        !harness
            .events
            .iter()
            .any(|event| matches!(event, EngineEvent::Drained { conn: c } if *c == conn))
    );
}

#[test]
fn a_connect_closed_before_it_finished_reports_only_closed() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    // A listener whose backlog is never accepted still completes handshakes, so use one
    // that is never even polled: the close comes before any tick.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fd = connecting_socket(listener.local_addr().unwrap());
    let conn = Uuid::from_parts(fd.as_raw_fd(), 5);
    harness.engine.open(conn, fd, true).unwrap();
    harness.engine.close(conn, CloseMode::Abort).unwrap();
    harness.expect(
        "the close",
        |event| matches!(event, EngineEvent::Closed { conn: c, error: None } if *c == conn),
    );
    assert!(harness.events.iter().all(|event| !matches!(
        event,
        EngineEvent::Connected { .. } | EngineEvent::Drained { .. }
    )));
}

#[test]
fn unknown_uuids_are_not_found() {
    let Some(mut engine) = Harness::new().map(|harness| harness.engine) else {
        return;
    };
    let unknown = Uuid::from_parts(1000, 1);
    let kinds = [
        engine.read(unknown, &mut [0u8; 4]).unwrap_err().kind(),
        engine
            .write(unknown, Chunk::from(&b"x"[..]), false)
            .unwrap_err()
            .kind(),
        engine.pause_receive(unknown, true).unwrap_err().kind(),
        engine.close(unknown, CloseMode::Abort).unwrap_err().kind(),
    ];
    assert_eq!(kinds, [ErrorKind::NotFound; 4]);
    assert_eq!(engine.buffered(unknown), 0);
    assert!(!engine.is_eof(unknown));
    assert_eq!(engine.pending(unknown), 0);
}

/// The peer writes as much of `data[*written..]` as its socket takes now.
fn peer_writes(peer: &mut TcpStream, data: &[u8], written: &mut usize) {
    while *written < data.len() {
        match peer.write(&data[*written..]) {
            Ok(count) => *written += count,
            Err(error) if error.kind() == ErrorKind::WouldBlock => return,
            Err(error) => panic!("peer write: {error}"),
        }
    }
}

#[test]
fn an_unread_stream_stops_receiving_at_the_high_water_mark() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let (conn, mut peer) = harness.pair();
    let data = pattern(16 << 20);
    let mut written = 0;
    harness.pump("the fill to the high-water mark", |harness| {
        peer_writes(&mut peer, &data, &mut written);
        harness.engine.buffered(conn) >= HIGH_WATER
    });
    // Let the receive that crossed the mark (a multishot's burst, or one buffer) settle.
    for _ in 0..20 {
        peer_writes(&mut peer, &data, &mut written);
        harness.tick();
    }
    let buffered = harness.engine.buffered(conn);
    // Above the mark nothing is received, however much the peer pushes.
    for _ in 0..20 {
        peer_writes(&mut peer, &data, &mut written);
        harness.tick();
        assert_eq!(harness.engine.buffered(conn), buffered);
    }
    // A burst below the low mark is bounded by the buffer group.
    let burst = usize::from(GROUP_ENTRIES) * RECV_BUFFER_SIZE;
    assert!(
        buffered <= WaterMarks::DEFAULT_LOW + burst,
        "{buffered} bytes buffered"
    );
    assert!(written < data.len(), "the peer was never held back");
    // Reading resumes the receive; everything arrives in order.
    let mut received = Vec::new();
    harness.pump("the drain of the stream", |harness| {
        peer_writes(&mut peer, &data, &mut written);
        received.extend(harness.read_all(conn));
        received.len() >= data.len()
    });
    assert!(received == data, "the stream arrived damaged");
}

#[test]
fn a_paused_stream_receives_nothing_until_resumed() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let (conn, mut peer) = harness.pair();
    harness.engine.pause_receive(conn, true).unwrap();
    // The cancelled receive ends; only the wake-up read stays in flight.
    harness.pump("the cancel", |harness| harness.engine.ring.in_flight() == 1);
    peer.write_all(b"while paused").unwrap();
    // The socket's receive is stopped: the bytes stay in the kernel, however many ticks pass.
    for _ in 0..20 {
        harness.tick();
        assert_eq!(harness.engine.buffered(conn), 0);
    }
    assert!(
        !harness
            .events
            .iter()
            .any(|event| matches!(event, EngineEvent::Readable { .. }))
    );
    harness.engine.pause_receive(conn, false).unwrap();
    harness.expect(
        "readable",
        |event| matches!(event, EngineEvent::Readable { conn: c } if *c == conn),
    );
    assert_eq!(harness.read_all(conn), b"while paused");
}

#[test]
fn connections_in_flight_do_not_hide_the_wake_up() {
    let Some(mut harness) = Harness::new() else {
        return;
    };
    let (_conn, _peer) = harness.pair();
    // Idle connections keep their receives in flight; a wake still ends a long wait.
    harness.engine.waker().wake().unwrap();
    let started = Instant::now();
    harness
        .engine
        .wait(Some(Duration::from_secs(60)), &mut harness.events)
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(harness.engine.ring.wake_armed());
}
