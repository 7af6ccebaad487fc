//! The engine conformance suite: one set of tests written against the [`Engine`] trait and run
//! on every engine, so the io_uring and epoll backends are held to the same contract.
//!
//! Each test is a function of a [`Harness`] over the [`Backend`] built by [`create`];
//! [`conformance!`] instantiates all of them once per engine, as `conformance::uring::*` and
//! `conformance::epoll::*`. Peers are plain `std::net` sockets on 127.0.0.1 port 0, and every
//! wait is bounded: an expectation that doesn't come within [`DEADLINE`] fails the test.
//!
//! The io_uring instantiation must really run io_uring. Where io_uring is unavailable (an old
//! kernel, seccomp, `kernel.io_uring_disabled`) its tests print a skip line and pass, unless
//! `FIO_REQUIRE_URING=1` is set (CI sets it), in which case they fail.
//!
//! What only one engine has (the io_uring socket's statistics, its ring's operations in
//! flight; the epoll engine's throttle and retry bookkeeping) is tested in that engine's own
//! module, with this harness over the concrete engine type.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use fio_buffer::{Chunk, WaterMarks};

use super::{Backend, CloseMode, Engine, EngineEvent, EngineKind, SEND_SOFT_LIMIT, create};
use crate::uuid::Uuid;

/// How long any one expectation may take before the test fails.
pub(super) const DEADLINE: Duration = Duration::from_secs(20);
/// One engine wait while polling for an expectation.
pub(super) const TICK: Duration = Duration::from_millis(10);
/// A wait that something is expected to end early: a test that sleeps it out fails.
const LONG: Duration = Duration::from_secs(60);
/// The high-water mark every engine's streams use.
pub(super) const HIGH_WATER: usize = WaterMarks::DEFAULT_HIGH;
/// The variable that turns "io_uring is unavailable here" from a skip into a failure.
const REQUIRE_URING_VAR: &str = "FIO_REQUIRE_URING";

/// Whether io_uring can run the reactor here. When it can't, this prints a skip line and
/// returns `false`, or panics when [`REQUIRE_URING_VAR`] is `1`.
pub(crate) fn uring_runs_here() -> bool {
    let Err(reason) = super::uring::availability() else {
        return true;
    };
    // Fails under FIO_REQUIRE_URING=1 (or FIO_REQUIRE=uring), else prints a FIO-SKIP line.
    fio_test::skip(
        fio_test::Feature::Uring,
        &format!("io_uring unavailable: {reason}"),
    );
    false
}

/// An engine and the events it reported that no check consumed yet.
pub(super) struct Harness<E: Engine + ?Sized = Backend> {
    /// The engine under test.
    pub(super) engine: Box<E>,
    /// Reported and not yet taken out by a check.
    pub(super) events: Vec<EngineEvent>,
}

impl Harness {
    /// An engine of `kind` as the reactor builds it, or `None` after [`uring_runs_here`]
    /// said to skip.
    fn of(kind: EngineKind) -> Option<Self> {
        if kind == EngineKind::Uring && !uring_runs_here() {
            return None;
        }
        let engine = create(kind).unwrap();
        assert_eq!(
            engine.kind(),
            kind,
            "asked for {kind}, built another engine"
        );
        Some(Self {
            engine: Box::new(engine),
            events: Vec::new(),
        })
    }
}

impl<E: Engine> Harness<E> {
    /// A harness over a concrete engine, for engine-specific tests.
    pub(super) fn with(engine: E) -> Self {
        Self {
            engine: Box::new(engine),
            events: Vec::new(),
        }
    }
}

impl<E: Engine + ?Sized> Harness<E> {
    /// One engine wait of at most `timeout`, collecting its events; returns the IO events the
    /// engine counted.
    pub(super) fn wait(&mut self, timeout: Duration) -> usize {
        self.engine.wait(Some(timeout), &mut self.events).unwrap()
    }

    /// One short engine wait.
    pub(super) fn tick(&mut self) {
        self.wait(TICK);
    }

    /// Waits until an event `wanted` accepts was reported and takes the first such event out.
    pub(super) fn expect(
        &mut self,
        what: &str,
        wanted: impl Fn(&EngineEvent) -> bool,
    ) -> EngineEvent {
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

    /// Runs the engine until `step` (called before every wait) says it is done.
    pub(super) fn pump(&mut self, what: &str, mut step: impl FnMut(&mut Self) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if step(self) {
                return;
            }
            assert!(Instant::now() < deadline, "{what} did not finish in time");
            self.tick();
        }
    }

    /// Whether an event `wanted` accepts waits among the reported ones.
    pub(super) fn saw(&self, wanted: impl Fn(&EngineEvent) -> bool) -> bool {
        self.events.iter().any(wanted)
    }

    /// A connected stream opened on the engine, and its non-blocking loopback peer; the
    /// stream's first `Drained` is taken.
    pub(super) fn pair(&mut self) -> (Uuid, TcpStream) {
        let (stream, peer) = loopback_pair();
        let conn = Uuid::from_parts(stream.as_raw_fd(), 1);
        self.engine.open(conn, stream, false).unwrap();
        self.expect("the first drain", |event| is_drained(event, conn));
        (conn, peer)
    }

    /// Reads everything the engine has buffered for `conn`.
    pub(super) fn read_all(&mut self, conn: Uuid) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.engine.read(conn, &mut buf).unwrap() {
                0 => return out,
                count => out.extend_from_slice(&buf[..count]),
            }
        }
    }

    /// Runs the engine until the peer has read `len` bytes, or its end of stream.
    pub(super) fn peer_reads(&mut self, peer: &mut TcpStream, len: usize) -> Vec<u8> {
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

    /// Fills `conn`'s receive queue to the high-water mark, then the kernel's buffers until
    /// the peer blocks (or wrote all of `data`); returns the count the peer wrote.
    pub(super) fn fill(&mut self, conn: Uuid, peer: &mut TcpStream, data: &[u8]) -> usize {
        let mut written = 0;
        self.pump("the fill to the high-water mark", |harness| {
            let blocked = peer_writes(peer, data, &mut written);
            harness.engine.buffered(conn) >= HIGH_WATER && (blocked || written == data.len())
        });
        written
    }
}

pub(super) fn is_readable(event: &EngineEvent, conn: Uuid) -> bool {
    matches!(event, EngineEvent::Readable { conn: c } if *c == conn)
}

pub(super) fn is_drained(event: &EngineEvent, conn: Uuid) -> bool {
    matches!(event, EngineEvent::Drained { conn: c } if *c == conn)
}

fn is_connected(event: &EngineEvent, conn: Uuid) -> bool {
    matches!(event, EngineEvent::Connected { conn: c, .. } if *c == conn)
}

fn is_closed(event: &EngineEvent, conn: Uuid) -> bool {
    matches!(event, EngineEvent::Closed { conn: c, .. } if *c == conn)
}

fn is_closed_cleanly(event: &EngineEvent, conn: Uuid) -> bool {
    matches!(event, EngineEvent::Closed { conn: c, error: None } if *c == conn)
}

/// An accepted stream (non-blocking, for the engine) and its non-blocking client peer.
pub(super) fn loopback_pair() -> (OwnedFd, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (stream, _) = listener.accept().unwrap();
    stream.set_nonblocking(true).unwrap();
    peer.set_nonblocking(true).unwrap();
    (stream.into(), peer)
}

/// `len` bytes of a pattern that shows where a lost or repeated piece would be.
pub(super) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|index| (index % 251) as u8).collect()
}

/// The peer writes as much of `data[*written..]` as its socket takes now; returns whether it
/// blocked before the end.
pub(super) fn peer_writes(peer: &mut TcpStream, data: &[u8], written: &mut usize) -> bool {
    while *written < data.len() {
        match peer.write(&data[*written..]) {
            Ok(count) => *written += count,
            Err(error) if error.kind() == ErrorKind::WouldBlock => return true,
            Err(error) => panic!("peer write: {error}"),
        }
    }
    false
}

/// A non-blocking IPv4 socket whose connect to `addr` is in progress (or done).
fn connecting_socket(addr: SocketAddr) -> OwnedFd {
    let fd = fio_sys::socket(fio_sys::Domain::Ipv4, fio_sys::SockType::Stream, true).unwrap();
    fio_sys::connect(fd.as_fd(), &fio_sys::SockAddr::from(addr)).unwrap();
    fd
}

/// A port on 127.0.0.1 nobody listens on: bound, noted, and closed again.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A non-blocking UDP socket on 127.0.0.1 port 0.
fn udp_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    socket
}

/// Runs the engine until `peer` received a datagram; returns it and its sender.
fn peer_receives(harness: &mut Harness, peer: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 256];
    let mut got = None;
    harness.pump("the peer's datagram", |_| {
        match peer.recv_from(&mut buf) {
            Ok((count, from)) => got = Some((buf[..count].to_vec(), from)),
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(error) => panic!("peer recv_from: {error}"),
        }
        got.is_some()
    });
    got.unwrap()
}

/// Instantiates every named test once per engine: `uring::name` and `epoll::name`.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        /// The suite on the io_uring engine; fails under `FIO_REQUIRE_URING=1` where io_uring
        /// can't run.
        mod uring {
            $(
                #[test]
                fn $test() {
                    if let Some(mut harness) = super::Harness::of(super::EngineKind::Uring) {
                        super::$test(&mut harness);
                    }
                }
            )*
        }

        /// The suite on the epoll engine.
        mod epoll {
            $(
                #[test]
                fn $test() {
                    if let Some(mut harness) = super::Harness::of(super::EngineKind::Epoll) {
                        super::$test(&mut harness);
                    }
                }
            )*
        }
    };
}

conformance!(
    a_wake_before_the_wait_is_not_lost,
    another_thread_wakes_a_blocked_wait,
    wakes_coalesce_and_rearm,
    a_zero_timeout_returns_at_once,
    a_timeout_ends_an_idle_wait,
    open_connections_do_not_hide_a_wake,
    a_listener_reports_accepted_streams_until_closed,
    an_opened_stream_is_drained_at_once_and_echoes,
    a_half_close_is_readable_then_eof_and_the_stream_still_sends,
    a_peer_that_closes_after_an_idle_while_is_noticed,
    bytes_past_the_urgent_mark_are_received,
    an_idle_stream_reports_nothing,
    a_large_write_through_a_tiny_send_buffer_arrives_intact,
    a_send_cut_short_finishes_as_the_peer_reads,
    queued_and_sent_bytes_account_for_every_byte,
    an_unread_stream_stops_receiving_at_the_high_water_mark,
    a_throttled_stream_resumes_below_the_low_water_mark,
    a_paused_stream_receives_nothing_until_resumed,
    a_graceful_close_sends_what_was_queued_before_the_end_of_stream,
    an_abort_drops_the_queue_and_closes,
    a_reset_closes_the_stream_with_its_error,
    a_connect_reports_connected_and_sends_what_was_written_early,
    a_connect_to_a_closed_port_reports_its_error_then_closed,
    a_connect_closed_before_it_finished_reports_only_closed,
    unknown_uuids_are_not_found,
    a_stale_uuid_never_reaches_the_live_connection,
    datagrams_keep_their_boundaries_and_senders,
    a_connected_datagram_socket_sends_one_datagram_per_write,
    datagram_calls_on_a_stream_are_unsupported,
);

// ---- the io_uring requirement --------------------------------------------------------------

/// Set in a child run of [`io_uring_is_required_when_asked_and_skipped_otherwise`]: the
/// child forbids io_uring on its thread (seccomp) before anything probes it.
const FORBID_CHILD_VAR: &str = "FIO_CONFORMANCE_FORBID_URING";

/// Where io_uring is forbidden, the io_uring instantiation fails under `FIO_REQUIRE_URING=1`
/// and skips, saying so, without it. Checked in child runs of this test binary, since a
/// seccomp filter can't be removed and the probe's answer is kept for the process.
#[test]
fn io_uring_is_required_when_asked_and_skipped_otherwise() {
    const TEST: &str = "engine::conformance::io_uring_is_required_when_asked_and_skipped_otherwise";
    if std::env::var_os(FORBID_CHILD_VAR).is_some() {
        fio_sys::forbid_io_uring().unwrap();
        assert!(Harness::of(EngineKind::Uring).is_none());
        return;
    }
    let run = |require: &str| {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(FORBID_CHILD_VAR, "1")
            .env(REQUIRE_URING_VAR, require)
            // The run's own policy and skip log are not the child's: its skip is on purpose.
            .env_remove(fio_test::REQUIRE_VAR)
            .env_remove(fio_test::SKIP_LOG_VAR)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The child's output is a few lines, far less than a pipe holds, so it can't block
        // the child before it exits.
        let deadline = Instant::now() + DEADLINE;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the child run did not finish in time");
            }
            thread::sleep(TICK);
        }
        let finished = child.wait_with_output().unwrap();
        let output = String::from_utf8_lossy(&finished.stdout).into_owned()
            + &String::from_utf8_lossy(&finished.stderr);
        (finished.status.success(), output)
    };
    let (passed, output) = run("");
    assert!(passed, "{output}");
    assert!(
        output.contains("FIO-SKIP:")
            && output.contains("io_uring unavailable: forbidden by seccomp"),
        "{output}"
    );
    let (passed, output) = run("1");
    assert!(!passed, "{output}");
    assert!(output.contains("is required here"), "{output}");
}

// ---- waking -------------------------------------------------------------------------------

fn a_wake_before_the_wait_is_not_lost(harness: &mut Harness) {
    harness.engine.waker().wake().unwrap();
    // Without the earlier wake this would block for a minute and fail the check below.
    let started = Instant::now();
    assert_eq!(harness.wait(LONG), 0);
    assert!(started.elapsed() < LONG / 2);
}

fn another_thread_wakes_a_blocked_wait(harness: &mut Harness) {
    let waker = harness.engine.waker();
    let other = thread::spawn(move || waker.wake().unwrap());
    let started = Instant::now();
    assert_eq!(harness.wait(LONG), 0);
    assert!(started.elapsed() < LONG / 2);
    other.join().unwrap();
}

fn wakes_coalesce_and_rearm(harness: &mut Harness) {
    let waker = harness.engine.waker();
    // Many wakes before one wait cost one wait; after it, a new wake works again.
    for round in 0..3 {
        for _ in 0..10 {
            waker.wake().unwrap();
        }
        let started = Instant::now();
        harness.wait(LONG);
        assert!(started.elapsed() < LONG / 2, "round {round}");
    }
}

fn a_zero_timeout_returns_at_once(harness: &mut Harness) {
    let started = Instant::now();
    assert_eq!(harness.wait(Duration::ZERO), 0);
    assert!(started.elapsed() < DEADLINE);
}

fn a_timeout_ends_an_idle_wait(harness: &mut Harness) {
    // Nothing wakes it: the timeout ends the wait, not sooner, and a wake still works after.
    let started = Instant::now();
    assert_eq!(harness.wait(Duration::from_millis(20)), 0);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(15) && waited < DEADLINE,
        "{waited:?}"
    );
    harness.engine.waker().wake().unwrap();
    let started = Instant::now();
    assert_eq!(harness.wait(LONG), 0);
    assert!(started.elapsed() < LONG / 2);
}

fn open_connections_do_not_hide_a_wake(harness: &mut Harness) {
    let (_conn, _peer) = harness.pair();
    // An idle connection keeps its receive armed; a wake still ends a long wait.
    harness.engine.waker().wake().unwrap();
    let started = Instant::now();
    harness.wait(LONG);
    assert!(started.elapsed() < LONG / 2);
}

// ---- listeners and opening ----------------------------------------------------------------

fn a_listener_reports_accepted_streams_until_closed(harness: &mut Harness) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let uuid = Uuid::from_parts(listener.as_raw_fd(), 7);
    harness.engine.listen(uuid, listener.into()).unwrap();
    let clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for _ in &clients {
        let EngineEvent::Accepted {
            listener, stream, ..
        } = harness.expect("an accepted stream", |event| {
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
    harness.expect("the listener's close", |event| {
        is_closed_cleanly(event, uuid)
    });
    // The descriptor is closed: nobody listens there any more, and the uuid is forgotten.
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    let forgotten = harness.engine.close(uuid, CloseMode::Graceful);
    assert_eq!(forgotten.unwrap_err().kind(), ErrorKind::NotFound);
}

fn an_opened_stream_is_drained_at_once_and_echoes(harness: &mut Harness) {
    let (stream, mut peer) = loopback_pair();
    let conn = Uuid::from_parts(stream.as_raw_fd(), 1);
    harness.engine.open(conn, stream, false).unwrap();
    // The first `Drained` is pending: a long wait must return at once with it.
    let started = Instant::now();
    harness.wait(LONG);
    assert!(started.elapsed() < LONG / 2);
    assert!(
        matches!(harness.events.as_slice(), [EngineEvent::Drained { conn: c }] if *c == conn),
        "{:?}",
        harness.events
    );
    harness.events.clear();
    let again = harness.engine.open(conn, loopback_pair().0, false);
    assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);

    peer.write_all(b"hello, engine").unwrap();
    harness.expect("readable", |event| is_readable(event, conn));
    let mut received = Vec::new();
    harness.pump("the echo's read", |harness| {
        received.extend(harness.read_all(conn));
        received.len() >= 13
    });
    assert_eq!(received, b"hello, engine");
    assert_eq!(harness.engine.buffered(conn), 0);
    assert!(!harness.engine.is_eof(conn));
    // An urgent chunk goes ahead of everything not yet started.
    harness
        .engine
        .write(conn, Chunk::from(received), false)
        .unwrap();
    harness
        .engine
        .write(conn, Chunk::from(&b">> "[..]), true)
        .unwrap();
    assert_eq!(harness.engine.pending(conn), 2);
    assert_eq!(harness.engine.queued_bytes(conn), 16);
    assert_eq!(harness.peer_reads(&mut peer, 16), b">> hello, engine");
    harness.expect("the drain", |event| is_drained(event, conn));
    assert_eq!(harness.engine.pending(conn), 0);
    assert_eq!(harness.engine.sent(conn), 16);
}

// ---- reading and the end of stream --------------------------------------------------------

fn a_half_close_is_readable_then_eof_and_the_stream_still_sends(harness: &mut Harness) {
    let (conn, mut peer) = harness.pair();
    // The bytes and the end of stream land before the engine looks.
    peer.write_all(b"last words").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    harness.expect("readable", |event| is_readable(event, conn));
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
    harness.expect("the close", |event| is_closed_cleanly(event, conn));
}

fn a_peer_that_closes_after_an_idle_while_is_noticed(harness: &mut Harness) {
    let (conn, mut peer) = harness.pair();
    peer.write_all(b"hello").unwrap();
    harness.expect("the bytes", |event| is_readable(event, conn));
    assert_eq!(harness.read_all(conn), b"hello");
    for _ in 0..5 {
        harness.tick();
    }
    // The stream was idle; the end of stream alone must be reported.
    drop(peer);
    harness.expect("the end of stream", |event| is_readable(event, conn));
    harness.pump("the end of stream", |harness| harness.engine.is_eof(conn));
    assert_eq!(harness.engine.buffered(conn), 0);
}

fn bytes_past_the_urgent_mark_are_received(harness: &mut Harness) {
    let (conn, peer) = harness.pair();
    // A receive stops short at the urgent mark; what follows must still be received.
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

fn an_idle_stream_reports_nothing(harness: &mut Harness) {
    let (conn, mut peer) = harness.pair();
    peer.write_all(b"ping").unwrap();
    harness.expect("the bytes", |event| is_readable(event, conn));
    assert_eq!(harness.read_all(conn), b"ping");
    harness.events.clear();
    // Everything was read and nothing was written: no event, and no false end of stream.
    for _ in 0..5 {
        harness.tick();
    }
    assert_eq!(harness.wait(Duration::ZERO), 0);
    assert!(harness.events.is_empty(), "{:?}", harness.events);
    assert!(!harness.engine.is_eof(conn));
    assert_eq!(harness.engine.after_data(conn), (0, false, 0));
}

// ---- writing ------------------------------------------------------------------------------

fn a_large_write_through_a_tiny_send_buffer_arrives_intact(harness: &mut Harness) {
    let (stream, mut peer) = loopback_pair();
    fio_sys::set_send_buffer_size(stream.as_fd(), 4096).unwrap();
    let conn = Uuid::from_parts(stream.as_raw_fd(), 1);
    harness.engine.open(conn, stream, false).unwrap();
    let data = pattern(2 << 20);
    const PIECE: usize = 100_000;
    let pieces = data.len().div_ceil(PIECE);
    for piece in data.chunks(PIECE) {
        harness
            .engine
            .write(conn, Chunk::from(piece.to_vec()), false)
            .unwrap();
    }
    assert_eq!(harness.engine.pending(conn), pieces);
    // A slow reader: at most 64 KiB per tick, so the kernel takes the data in short sends.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    harness.pump("the slow read", |harness| {
        // Exact at every step: the pieces not yet fully taken by the kernel.
        let sent = usize::try_from(harness.engine.sent(conn)).unwrap();
        let done = if sent == data.len() {
            pieces
        } else {
            sent / PIECE
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
}

fn a_send_cut_short_finishes_as_the_peer_reads(harness: &mut Harness) {
    let (conn, mut peer) = harness.pair();
    // Far more than loopback buffers hold, in one chunk: the first send is cut short, and
    // only the peer's reads make room for the rest.
    let data = pattern(16 << 20);
    harness
        .engine
        .write(conn, Chunk::from(data.clone()), false)
        .unwrap();
    let got = harness.peer_reads(&mut peer, data.len());
    assert!(got == data, "the bytes arrived damaged");
    harness.expect("the drain", |event| is_drained(event, conn));
    assert_eq!(harness.engine.queued_bytes(conn), 0);
    assert_eq!(harness.engine.pending(conn), 0);
    assert_eq!(harness.engine.sent(conn), data.len() as u64);
}

fn queued_and_sent_bytes_account_for_every_byte(harness: &mut Harness) {
    let (conn, mut peer) = harness.pair();
    // Far more than the soft limit and than loopback buffers hold, to a peer that doesn't
    // read yet.
    let data = pattern(16 * SEND_SOFT_LIMIT);
    for piece in data.chunks(SEND_SOFT_LIMIT / 2) {
        harness
            .engine
            .write(conn, Chunk::from(piece.to_vec()), false)
            .unwrap();
    }
    let total = data.len() as u64;
    for _ in 0..10 {
        harness.tick();
        let queued = harness.engine.queued_bytes(conn) as u64;
        assert_eq!(queued + harness.engine.sent(conn), total);
    }
    assert!(
        harness.engine.queued_bytes(conn) > 0,
        "loopback took everything"
    );
    peer.write_all(b"question").unwrap();
    harness.pump("the question", |harness| harness.engine.buffered(conn) == 8);
    let queued = harness.engine.queued_bytes(conn);
    assert_eq!(harness.engine.after_data(conn), (8, false, queued));
    let mut got = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    harness.pump("the peer's read", |harness| {
        let queued = harness.engine.queued_bytes(conn) as u64;
        assert_eq!(queued + harness.engine.sent(conn), total);
        match peer.read(&mut buf) {
            Ok(count) => got.extend_from_slice(&buf[..count]),
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(error) => panic!("peer read: {error}"),
        }
        got.len() >= data.len()
    });
    assert!(got == data, "the bytes arrived damaged");
    harness.expect("the drain", |event| is_drained(event, conn));
    assert_eq!(harness.engine.after_data(conn), (8, false, 0));
}

// ---- backpressure -------------------------------------------------------------------------

fn an_unread_stream_stops_receiving_at_the_high_water_mark(harness: &mut Harness) {
    let (conn, mut peer) = harness.pair();
    let data = pattern(16 << 20);
    let mut written = harness.fill(conn, &mut peer, &data);
    // Let the receive that crossed the mark settle.
    for _ in 0..20 {
        peer_writes(&mut peer, &data, &mut written);
        harness.tick();
    }
    let buffered = harness.engine.buffered(conn);
    assert!(buffered >= HIGH_WATER);
    // Above the mark nothing is received, however much the peer pushes.
    for _ in 0..20 {
        peer_writes(&mut peer, &data, &mut written);
        harness.tick();
        assert_eq!(harness.engine.buffered(conn), buffered);
    }
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

fn a_throttled_stream_resumes_below_the_low_water_mark(harness: &mut Harness) {
    let (conn, mut peer) = harness.pair();
    let data = pattern(4 * HIGH_WATER);
    let written = harness.fill(conn, &mut peer, &data);
    // The peer writes nothing more: what the kernel holds raises no new readiness, so every
    // byte below is received because reading to the low-water mark resumed receiving.
    let mut got = Vec::new();
    harness.pump("receiving everything written", |harness| {
        got.extend(harness.read_all(conn));
        got.len() >= written
    });
    assert_eq!(got, &data[..written]);
}

fn a_paused_stream_receives_nothing_until_resumed(harness: &mut Harness) {
    let (conn, mut peer) = harness.pair();
    harness.engine.pause_receive(conn, true).unwrap();
    for _ in 0..5 {
        harness.tick();
    }
    peer.write_all(b"while paused").unwrap();
    // The bytes stay in the kernel, however many ticks pass (and whatever readiness they
    // raised is spent on a paused stream).
    for _ in 0..20 {
        harness.tick();
        assert_eq!(harness.engine.buffered(conn), 0);
    }
    assert!(!harness.saw(|event| is_readable(event, conn)));
    harness.engine.pause_receive(conn, false).unwrap();
    // No new readiness will come: resuming must receive at once, not sleep out the wait.
    let started = Instant::now();
    harness.wait(LONG);
    assert!(started.elapsed() < LONG / 2);
    harness.expect("readable", |event| is_readable(event, conn));
    assert_eq!(harness.read_all(conn), b"while paused");
}

// ---- closing ------------------------------------------------------------------------------

fn a_graceful_close_sends_what_was_queued_before_the_end_of_stream(harness: &mut Harness) {
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
    harness.expect("the close", |event| is_closed_cleanly(event, conn));
    // Nothing else was reported for the stream after its close (no `Drained`).
    assert!(!harness.saw(|event| is_drained(event, conn)));
}

fn an_abort_drops_the_queue_and_closes(harness: &mut Harness) {
    let (conn, mut peer) = harness.pair();
    harness
        .engine
        .write(conn, Chunk::from(pattern(4 << 20)), false)
        .unwrap();
    harness.engine.close(conn, CloseMode::Abort).unwrap();
    harness.expect("the close", |event| is_closed_cleanly(event, conn));
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
    assert!(!harness.saw(|event| is_drained(event, conn)));
}

fn a_reset_closes_the_stream_with_its_error(harness: &mut Harness) {
    let (conn, peer) = harness.pair();
    // Closing a socket with unread data makes the kernel reset the connection.
    harness
        .engine
        .write(conn, Chunk::from(&b"unread"[..]), false)
        .unwrap();
    let mut byte = [0u8; 1];
    harness.pump("the peer's receipt", |_| peer.peek(&mut byte).is_ok());
    drop(peer);
    let EngineEvent::Closed { error, .. } =
        harness.expect("the close", |event| is_closed(event, conn))
    else {
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

// ---- connecting ---------------------------------------------------------------------------

fn a_connect_reports_connected_and_sends_what_was_written_early(harness: &mut Harness) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = connecting_socket(addr);
    let conn = Uuid::from_parts(fd.as_raw_fd(), 3);
    harness.engine.open(conn, fd, true).unwrap();
    harness
        .engine
        .write(conn, Chunk::from(&b"early"[..]), false)
        .unwrap();
    assert_eq!(harness.engine.pending(conn), 1);
    let EngineEvent::Connected { result, .. } =
        harness.expect("the connect", |event| is_connected(event, conn))
    else {
        unreachable!()
    };
    let endpoints = (*result).unwrap();
    assert_eq!(endpoints.peer.and_then(|peer| peer.as_inet()), Some(addr));
    let (mut accepted, _) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    assert_eq!(harness.peer_reads(&mut accepted, 5), b"early");
    harness.expect("the drain", |event| is_drained(event, conn));
    // And the connected stream receives.
    accepted.write_all(b"hello back").unwrap();
    harness.expect("the answer", |event| is_readable(event, conn));
    let mut got = Vec::new();
    harness.pump("the answer's bytes", |harness| {
        got.extend(harness.read_all(conn));
        got.len() >= 10
    });
    assert_eq!(got, b"hello back");
    harness.engine.close(conn, CloseMode::Graceful).unwrap();
    harness.expect("the close", |event| is_closed_cleanly(event, conn));
}

fn a_connect_to_a_closed_port_reports_its_error_then_closed(harness: &mut Harness) {
    let fd = connecting_socket(closed_port());
    let conn = Uuid::from_parts(fd.as_raw_fd(), 4);
    harness.engine.open(conn, fd, true).unwrap();
    let EngineEvent::Connected { result, .. } =
        harness.expect("the connect", |event| is_connected(event, conn))
    else {
        unreachable!()
    };
    assert_eq!((*result).unwrap_err().kind(), ErrorKind::ConnectionRefused);
    harness.expect(
        "the close",
        |event| matches!(event, EngineEvent::Closed { conn: c, error: Some(_) } if *c == conn),
    );
    assert!(!harness.saw(|event| is_drained(event, conn)));
}

fn a_connect_closed_before_it_finished_reports_only_closed(harness: &mut Harness) {
    // The close comes before any wait, so the connect can't have been reported yet.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fd = connecting_socket(listener.local_addr().unwrap());
    let conn = Uuid::from_parts(fd.as_raw_fd(), 5);
    harness.engine.open(conn, fd, true).unwrap();
    harness.engine.close(conn, CloseMode::Abort).unwrap();
    harness.expect("the close", |event| is_closed_cleanly(event, conn));
    for _ in 0..5 {
        harness.tick();
    }
    assert!(
        !harness.saw(|event| is_connected(event, conn) || is_drained(event, conn)),
        "{:?}",
        harness.events
    );
}

// ---- uuids --------------------------------------------------------------------------------

/// Every connection call names an unknown `uuid` as not found, and every query answers
/// "nothing".
fn assert_not_found(harness: &mut Harness, uuid: Uuid) {
    let engine = &mut harness.engine;
    let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let kinds = [
        engine.read(uuid, &mut [0u8; 4]).unwrap_err().kind(),
        engine
            .write(uuid, Chunk::from(&b"x"[..]), false)
            .unwrap_err()
            .kind(),
        engine
            .recv_from(uuid, &mut [0u8; 4])
            .map(|_| ())
            .unwrap_err()
            .kind(),
        engine
            .send_to(uuid, Chunk::from(&b"x"[..]), to)
            .unwrap_err()
            .kind(),
        engine.pause_receive(uuid, true).unwrap_err().kind(),
        engine.close(uuid, CloseMode::Abort).unwrap_err().kind(),
    ];
    assert_eq!(kinds, [ErrorKind::NotFound; 6], "uuid {uuid}");
    assert_eq!(engine.buffered(uuid), 0);
    assert!(!engine.is_eof(uuid));
    assert_eq!(engine.pending(uuid), 0);
    assert_eq!(engine.queued_bytes(uuid), 0);
    assert_eq!(engine.sent(uuid), 0);
    assert_eq!(engine.after_data(uuid), (0, false, 0));
}

fn unknown_uuids_are_not_found(harness: &mut Harness) {
    assert_not_found(harness, Uuid::from_parts(1000, 1));
    // An open connection doesn't change that.
    let (_conn, _peer) = harness.pair();
    assert_not_found(harness, Uuid::from_parts(1000, 1));
}

fn a_stale_uuid_never_reaches_the_live_connection(harness: &mut Harness) {
    let (conn, mut peer) = harness.pair();
    peer.write_all(b"for the live one").unwrap();
    harness.pump("the bytes", |harness| harness.engine.buffered(conn) == 16);
    harness
        .engine
        .write(conn, Chunk::from(&b"queued"[..]), false)
        .unwrap();
    // The same descriptor under another generation: an earlier connection on a reused fd.
    let stale = Uuid::from_parts(conn.fd(), conn.generation() + 1);
    assert_not_found(harness, stale);
    // The live connection lost nothing to the stale calls.
    assert_eq!(harness.peer_reads(&mut peer, 6), b"queued");
    assert_eq!(harness.read_all(conn), b"for the live one");
    harness.engine.close(conn, CloseMode::Abort).unwrap();
    harness.expect("the close", |event| is_closed_cleanly(event, conn));
    // Once closed, the uuid itself is stale.
    assert_not_found(harness, conn);
}

// ---- datagrams ----------------------------------------------------------------------------

fn datagrams_keep_their_boundaries_and_senders(harness: &mut Harness) {
    let socket = udp_socket();
    let addr = socket.local_addr().unwrap();
    let conn = Uuid::from_parts(socket.as_raw_fd(), 8);
    harness.engine.open_datagram(conn, socket.into()).unwrap();
    harness.expect("the first drain", |event| is_drained(event, conn));
    let peer = udp_socket();
    let peer_addr = peer.local_addr().unwrap();
    peer.send_to(b"first", addr).unwrap();
    peer.send_to(b"a longer second datagram", addr).unwrap();
    harness.expect("readable", |event| is_readable(event, conn));
    let mut got = Vec::new();
    let mut buf = [0u8; 8];
    harness.pump("both datagrams", |harness| {
        while let Some((count, from)) = harness.engine.recv_from(conn, &mut buf).unwrap() {
            got.push((buf[..count].to_vec(), from));
        }
        got.len() >= 2
    });
    // One datagram per call, cut to the buffer like recvfrom(2), each with its sender.
    assert_eq!(
        got,
        [
            (b"first".to_vec(), peer_addr),
            (b"a longer".to_vec(), peer_addr)
        ]
    );
    assert_eq!(harness.engine.recv_from(conn, &mut buf).unwrap(), None);
    assert_eq!(harness.engine.buffered(conn), 0);
    // Answers go to the address they are sent to, one datagram each.
    harness
        .engine
        .send_to(conn, Chunk::from(&b"reply"[..]), peer_addr)
        .unwrap();
    harness
        .engine
        .send_to(conn, Chunk::from(b"second reply".to_vec()), peer_addr)
        .unwrap();
    assert_eq!(
        peer_receives(harness, &peer),
        (b"reply".to_vec(), addr),
        "the first answer"
    );
    assert_eq!(
        peer_receives(harness, &peer),
        (b"second reply".to_vec(), addr)
    );
    harness.expect("the drain", |event| is_drained(event, conn));
    harness.engine.close(conn, CloseMode::Graceful).unwrap();
    harness.expect("the close", |event| is_closed_cleanly(event, conn));
    let late = harness
        .engine
        .send_to(conn, Chunk::from(&b"late"[..]), peer_addr);
    assert_eq!(late.unwrap_err().kind(), ErrorKind::NotFound);
}

fn a_connected_datagram_socket_sends_one_datagram_per_write(harness: &mut Harness) {
    let peer = udp_socket();
    let socket = udp_socket();
    socket.connect(peer.local_addr().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let conn = Uuid::from_parts(socket.as_raw_fd(), 9);
    harness.engine.open_datagram(conn, socket.into()).unwrap();
    harness.expect("the first drain", |event| is_drained(event, conn));
    harness
        .engine
        .write(conn, Chunk::from(&b"one"[..]), false)
        .unwrap();
    harness
        .engine
        .write(conn, Chunk::from(&b"two"[..]), false)
        .unwrap();
    assert_eq!(peer_receives(harness, &peer), (b"one".to_vec(), addr));
    assert_eq!(peer_receives(harness, &peer), (b"two".to_vec(), addr));
    // The connected peer's datagrams are read one per call.
    peer.send_to(b"back", addr).unwrap();
    peer.send_to(b"again", addr).unwrap();
    harness.expect("readable", |event| is_readable(event, conn));
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    harness.pump("both datagrams", |harness| {
        loop {
            match harness.engine.read(conn, &mut buf).unwrap() {
                0 => break,
                count => got.push(buf[..count].to_vec()),
            }
        }
        got.len() >= 2
    });
    assert_eq!(got, [b"back".to_vec(), b"again".to_vec()]);
    harness.engine.close(conn, CloseMode::Abort).unwrap();
    harness.expect("the close", |event| is_closed_cleanly(event, conn));
}

fn datagram_calls_on_a_stream_are_unsupported(harness: &mut Harness) {
    let (conn, _peer) = harness.pair();
    let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let received = harness.engine.recv_from(conn, &mut [0u8; 4]);
    assert_eq!(received.unwrap_err().kind(), ErrorKind::Unsupported);
    let sent = harness.engine.send_to(conn, Chunk::from(&b"x"[..]), to);
    assert_eq!(sent.unwrap_err().kind(), ErrorKind::Unsupported);
    assert_eq!(harness.engine.pending(conn), 0);
}
