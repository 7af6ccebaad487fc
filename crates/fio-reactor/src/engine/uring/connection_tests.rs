//! What only the io_uring engine has: its sockets' statistics, its shared buffer group, and
//! its ring's operations in flight. Everything the [`Engine`] trait promises is tested on both
//! engines by `engine::conformance`; these use its harness over a [`UringEngine`], and skip
//! (or fail, under `FIO_REQUIRE_URING=1`) where io_uring can't run.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};

use crate::engine::conformance::{
    HIGH_WATER, Harness, is_readable, loopback_pair, pattern, peer_writes, uring_runs_here,
};

use super::*;

/// An io_uring engine, or `None` where io_uring can't run (see [`uring_runs_here`]).
fn harness() -> Option<Harness<UringEngine>> {
    uring_runs_here().then(|| Harness::with(UringEngine::new().unwrap()))
}

#[test]
fn a_tiny_send_buffer_makes_short_sends_that_continue() {
    let Some(mut harness) = harness() else { return };
    let (stream, mut peer) = loopback_pair();
    fio_sys::set_send_buffer_size(stream.as_fd(), 4096).unwrap();
    let conn = Uuid::from_parts(stream.as_raw_fd(), 1);
    harness.engine.open(conn, stream, false).unwrap();
    let data = pattern(1 << 20);
    harness
        .engine
        .write(conn, Chunk::from(data.clone()), false)
        .unwrap();
    assert!(harness.peer_reads(&mut peer, data.len()) == data);
    let stats = harness.engine.streams.get(&conn).unwrap().stats().unwrap();
    assert!(stats.short_sends > 0, "no short send happened: {stats:?}");
}

#[test]
fn a_burst_past_the_marks_is_bounded_by_the_buffer_group() {
    let Some(mut harness) = harness() else { return };
    let (conn, mut peer) = harness.pair();
    let data = pattern(16 << 20);
    let mut written = harness.fill(conn, &mut peer, &data);
    for _ in 0..20 {
        peer_writes(&mut peer, &data, &mut written);
        harness.tick();
    }
    // A multishot burst below the low mark can fill at most the whole group.
    let buffered = harness.engine.buffered(conn);
    let burst = usize::from(GROUP_ENTRIES) * RECV_BUFFER_SIZE;
    assert!(buffered >= HIGH_WATER);
    assert!(
        buffered <= WaterMarks::DEFAULT_LOW + burst,
        "{buffered} bytes buffered"
    );
}

#[test]
fn pausing_cancels_the_receive_and_resuming_rearms_it() {
    let Some(mut harness) = harness() else { return };
    let (conn, mut peer) = harness.pair();
    assert_eq!(
        harness.engine.ring.in_flight(),
        2,
        "wake-up read and receive"
    );
    harness.engine.pause_receive(conn, true).unwrap();
    // The cancelled receive ends; only the wake-up read stays in flight.
    harness.pump("the cancel", |harness| harness.engine.ring.in_flight() == 1);
    harness.engine.pause_receive(conn, false).unwrap();
    peer.write_all(b"resumed").unwrap();
    harness.expect("readable", |event| is_readable(event, conn));
    assert_eq!(harness.read_all(conn), b"resumed");
}

#[test]
fn open_connections_keep_the_wake_up_read_armed() {
    let Some(mut harness) = harness() else { return };
    let (_conn, _peer) = harness.pair();
    harness.engine.waker().wake().unwrap();
    harness.wait(Duration::from_secs(60));
    assert!(harness.engine.ring.wake_armed());
}
