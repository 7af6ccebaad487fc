//! The epoll engine driven directly with loopback peers from `std::net`: wake-ups, and the
//! readiness the engine must remember because edge-triggered events come only once.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;
use std::time::Instant;

use fio_buffer::WaterMarks;

use super::*;

/// How long any one expectation may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);
/// One engine wait while polling for an expectation.
const TICK: Duration = Duration::from_millis(10);
/// The default high-water mark the engine's streams use.
const HIGH_WATER: usize = WaterMarks::DEFAULT_HIGH;

/// An engine and the events it reported that no check consumed yet.
struct Harness {
    engine: EpollEngine,
    events: Vec<EngineEvent>,
}

impl Harness {
    fn new() -> Self {
        Self {
            engine: EpollEngine::new().unwrap(),
            events: Vec::new(),
        }
    }

    /// One engine wait of at most `timeout`, collecting its events; returns the IO events the
    /// engine counted.
    fn wait(&mut self, timeout: Duration) -> usize {
        self.engine.wait(Some(timeout), &mut self.events).unwrap()
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
            self.wait(TICK);
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
            self.wait(TICK);
        }
    }

    /// A connected stream opened on the engine, and its non-blocking loopback peer.
    fn pair(&mut self) -> (Uuid, TcpStream) {
        let (stream, peer) = loopback_pair();
        let conn = Uuid::from_parts(stream.as_raw_fd(), 1);
        self.engine.open(conn, stream, false).unwrap();
        self.expect("initial drain", |event| is_drained(event, conn));
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

    /// Whether a `Readable` for `conn` waits among the events; takes them all out.
    fn take_readable(&mut self, conn: Uuid) -> bool {
        let before = self.events.len();
        self.events.retain(|event| !is_readable(event, conn));
        self.events.len() < before
    }
}

fn is_readable(event: &EngineEvent, conn: Uuid) -> bool {
    matches!(event, EngineEvent::Readable { conn: c } if *c == conn)
}

fn is_drained(event: &EngineEvent, conn: Uuid) -> bool {
    matches!(event, EngineEvent::Drained { conn: c } if *c == conn)
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
fn a_wake_before_the_wait_is_not_lost() {
    let mut engine = EpollEngine::new().unwrap();
    engine.waker().wake().unwrap();
    // Without the earlier wake this would block for a minute and fail the deadline below.
    let started = Instant::now();
    assert_eq!(
        engine
            .wait(Some(Duration::from_secs(60)), &mut Vec::new())
            .unwrap(),
        0
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn another_thread_wakes_a_blocked_wait() {
    let mut engine = EpollEngine::new().unwrap();
    let waker = engine.waker();
    let other = thread::spawn(move || waker.wake().unwrap());
    assert_eq!(engine.wait(None, &mut Vec::new()).unwrap(), 0);
    other.join().unwrap();
}

#[test]
fn a_zero_timeout_returns_at_once() {
    let mut engine = EpollEngine::new().unwrap();
    assert_eq!(
        engine.wait(Some(Duration::ZERO), &mut Vec::new()).unwrap(),
        0
    );
}

#[test]
fn bytes_that_arrived_while_paused_are_received_on_resume() {
    let mut harness = Harness::new();
    let (conn, mut peer) = harness.pair();
    harness.engine.pause_receive(conn, true).unwrap();
    peer.write_all(b"while paused").unwrap();
    // The one edge these bytes raise is spent on a paused stream.
    harness.pump("the paused stream's edge", |harness| harness.wait(TICK) > 0);
    assert!(
        !harness.take_readable(conn),
        "a paused stream reported bytes"
    );
    assert_eq!(harness.engine.buffered(conn), 0);

    harness.engine.pause_receive(conn, false).unwrap();
    // No new edge will come: the engine must remember the old one and receive without
    // waiting, so this wait doesn't sleep out its long timeout and reports the bytes.
    harness.wait(DEADLINE);
    assert!(harness.take_readable(conn), "resuming received nothing");
    assert_eq!(harness.read_all(conn), b"while paused");
}

#[test]
fn a_throttled_stream_resumes_below_the_low_water_mark() {
    let mut harness = Harness::new();
    let (conn, mut peer) = harness.pair();
    let data = pattern(4 * HIGH_WATER);
    let mut written = 0;
    // Fill the engine to its high-water mark, then the kernel's buffers until the peer blocks
    // (or wrote everything).
    harness.pump("filling the stream", |harness| {
        let mut blocked = false;
        while written < data.len() && !blocked {
            match peer.write(&data[written..]) {
                Ok(count) => written += count,
                Err(error) if error.kind() == ErrorKind::WouldBlock => blocked = true,
                Err(error) => panic!("peer write: {error}"),
            }
        }
        harness.engine.buffered(conn) >= HIGH_WATER && (blocked || written == data.len())
    });
    let stream = harness.engine.conn(conn).unwrap().stream().unwrap();
    assert!(
        stream.throttled,
        "receiving did not stop at the high-water mark"
    );
    // The peer writes nothing more: what the kernel holds raises no new edge, so every byte
    // below is received because reading to the low-water mark resumed receiving.
    let mut got = Vec::new();
    harness.pump("receiving everything written", |harness| {
        got.extend(harness.read_all(conn));
        got.len() >= written
    });
    assert_eq!(got, &data[..written]);
}

#[test]
fn an_end_of_stream_that_came_with_the_last_bytes_is_noticed() {
    let mut harness = Harness::new();
    let (conn, mut peer) = harness.pair();
    // Bytes and the end of stream land before the engine looks: one edge for both, and a
    // receive that returns the bytes stops before the end of stream.
    peer.write_all(b"last words").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    harness.pump("the end of stream", |harness| {
        got.extend(harness.read_all(conn));
        harness.engine.is_eof(conn)
    });
    assert_eq!(got, b"last words");
}

#[test]
fn a_send_the_socket_cuts_short_finishes_on_the_writable_edge() {
    let mut harness = Harness::new();
    let (conn, mut peer) = harness.pair();
    // Far more than loopback buffers hold: the flush stops at `EAGAIN`, and only writable
    // edges, raised as the peer reads, can send the rest.
    let data = pattern(16 << 20);
    harness
        .engine
        .write(conn, Chunk::from(data.clone()), false)
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    harness.pump("the peer's read", |_| {
        loop {
            match peer.read(&mut buf) {
                Ok(0) => panic!("the engine closed the stream"),
                Ok(count) => got.extend_from_slice(&buf[..count]),
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) => panic!("peer read: {error}"),
            }
        }
        got.len() == data.len()
    });
    assert!(got == data, "the bytes arrived damaged");
    harness.expect("the drain", |event| is_drained(event, conn));
    assert_eq!(harness.engine.queued_bytes(conn), 0);
    assert_eq!(harness.engine.sent(conn), data.len() as u64);
}

#[test]
fn bytes_written_while_connecting_go_out_once_connected() {
    let mut harness = Harness::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let socket = connecting_socket(listener.local_addr().unwrap());
    let conn = Uuid::from_parts(socket.as_raw_fd(), 2);
    harness.engine.open(conn, socket, true).unwrap();
    harness
        .engine
        .write(conn, Chunk::from(&b"early"[..]), false)
        .unwrap();
    let event = harness.expect(
        "the connect's end",
        |event| matches!(event, EngineEvent::Connected { conn: c, .. } if *c == conn),
    );
    assert!(matches!(
        event,
        EngineEvent::Connected { result: Ok(_), .. }
    ));
    let (mut accepted, _) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    harness.pump("the early bytes", |_| {
        match accepted.read(&mut buf) {
            Ok(count) => got.extend_from_slice(&buf[..count]),
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(error) => panic!("accepted read: {error}"),
        }
        got.len() >= 5
    });
    assert_eq!(got, b"early");
    // And the connected stream receives: its first bytes raise the first read edge.
    accepted.write_all(b"hello back").unwrap();
    harness.expect("the answer", |event| is_readable(event, conn));
    assert_eq!(harness.read_all(conn), b"hello back");
}

#[test]
fn a_failed_connect_reports_and_closes() {
    let mut harness = Harness::new();
    // A port nobody listens on: bind one, note it, and close it.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let socket = connecting_socket(addr);
    let conn = Uuid::from_parts(socket.as_raw_fd(), 3);
    harness.engine.open(conn, socket, true).unwrap();
    let event = harness.expect(
        "the connect's end",
        |event| matches!(event, EngineEvent::Connected { conn: c, .. } if *c == conn),
    );
    assert!(matches!(
        event,
        EngineEvent::Connected { result: Err(_), .. }
    ));
    harness.expect(
        "the close",
        |event| matches!(event, EngineEvent::Closed { conn: c, error: Some(_) } if *c == conn),
    );
}

#[test]
fn an_idle_stream_leaves_nothing_to_check() {
    let mut harness = Harness::new();
    let (conn, mut peer) = harness.pair();
    peer.write_all(b"ping").unwrap();
    harness.expect("the bytes", |event| is_readable(event, conn));
    assert_eq!(harness.read_all(conn), b"ping");
    // The short receive emptied the socket: no retry, no later receive, no timer.
    let stream = harness.engine.conn(conn).unwrap().stream().unwrap();
    assert!(!stream.readable && !stream.drain_fully && !stream.retry_queued);
    assert!(harness.engine.retry.is_empty());
    assert_eq!(harness.wait(Duration::ZERO), 0);
    assert!(!harness.engine.is_eof(conn));
}

#[test]
fn bytes_past_the_urgent_mark_are_received() {
    let mut harness = Harness::new();
    let (conn, peer) = harness.pair();
    // A receive stops at the urgent mark, short; what follows the urgent byte raises no new
    // edge, but the event says urgent data came, so the engine receives on.
    fio_sys::send(peer.as_fd(), b"abc", fio_sys::SendFlags::empty()).unwrap();
    fio_sys::send(peer.as_fd(), b"!", fio_sys::SendFlags::OOB).unwrap();
    fio_sys::send(peer.as_fd(), b"def", fio_sys::SendFlags::empty()).unwrap();
    let mut got = Vec::new();
    harness.pump("the bytes after the mark", |harness| {
        got.extend(harness.read_all(conn));
        got.len() >= 6
    });
    // Not inline: the urgent byte itself is skipped by ordinary receives.
    assert_eq!(got, b"abcdef");
}

#[test]
fn a_peer_that_closes_after_an_idle_while_is_noticed() {
    let mut harness = Harness::new();
    let (conn, mut peer) = harness.pair();
    peer.write_all(b"hello").unwrap();
    harness.expect("the bytes", |event| is_readable(event, conn));
    assert_eq!(harness.read_all(conn), b"hello");
    // The socket was taken as drained; the end of stream raises its own edge.
    drop(peer);
    harness.expect("the end of stream", |event| is_readable(event, conn));
    assert!(harness.engine.is_eof(conn));
}
