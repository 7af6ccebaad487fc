//! What only the epoll engine has: the bookkeeping behind edge-triggered readiness (the
//! throttle flag, the retry list), the spare buffers and the skipped polls. Everything the
//! [`Engine`] trait promises is tested on both engines by `engine::conformance`; these use its
//! harness over an [`EpollEngine`].

use std::io::Write;

use crate::engine::conformance::{HIGH_WATER, Harness, is_drained, is_readable, pattern};

use super::*;

fn harness() -> Harness<EpollEngine> {
    Harness::with(EpollEngine::new().unwrap())
}

#[test]
fn a_filled_stream_is_throttled_until_read_down() {
    let mut harness = harness();
    let (conn, mut peer) = harness.pair();
    let data = pattern(4 * HIGH_WATER);
    let written = harness.fill(conn, &mut peer, &data);
    let stream = harness.engine.conn(conn).unwrap().stream().unwrap();
    assert!(
        stream.throttled,
        "receiving did not stop at the high-water mark"
    );
    let mut got = Vec::new();
    harness.pump("receiving everything written", |harness| {
        got.extend(harness.read_all(conn));
        got.len() >= written
    });
    let stream = harness.engine.conn(conn).unwrap().stream().unwrap();
    assert!(!stream.throttled, "reading everything left the throttle on");
}

#[test]
fn an_idle_stream_leaves_nothing_to_check() {
    let mut harness = harness();
    let (conn, mut peer) = harness.pair();
    peer.write_all(b"ping").unwrap();
    harness.expect("the bytes", |event| is_readable(event, conn));
    assert_eq!(harness.read_all(conn), b"ping");
    // The short receive emptied the socket: no retry, no later receive, no timer.
    let stream = harness.engine.conn(conn).unwrap().stream().unwrap();
    assert!(!stream.readable && !stream.drain_fully && !stream.retry_queued);
    assert!(harness.engine.retry.is_empty());
}

#[test]
fn bytes_that_came_with_the_peers_shutdown_end_the_stream() {
    let mut harness = harness();
    let (conn, mut peer) = harness.pair();
    peer.write_all(b"bye").unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    harness.expect("the bytes", |event| is_readable(event, conn));
    // `EPOLLRDHUP` came with them: the short receive ends the stream (no receive for the 0).
    let stream = harness.engine.conn(conn).unwrap().stream().unwrap();
    assert!(stream.eof && !stream.readable && stream.peer_shut);
    assert_eq!(harness.read_all(conn), b"bye");
}

#[test]
fn a_request_and_its_reply_recycle_their_buffers() {
    let mut harness = harness();
    let (conn, mut peer) = harness.pair();
    for round in 0..3 {
        peer.write_all(b"ping").unwrap();
        harness.expect("the request", |event| is_readable(event, conn));
        assert_eq!(harness.read_all(conn), b"ping");
        harness.engine.write_copy(conn, b"pong").unwrap();
        assert_eq!(harness.peer_reads(&mut peer, 4), b"pong", "round {round}");
        // Every buffer the round trip used is a spare again, none lost or held by the stream.
        let spares = &harness.engine.spares;
        assert!(!spares.is_empty(), "round {round} kept no spare");
        assert_eq!(
            spares.pool().stats().in_use,
            spares.len(),
            "round {round}: a buffer is held outside the spares"
        );
    }
}

#[test]
fn waits_with_drains_to_report_still_poll_every_other_time() {
    let mut harness = harness();
    let (conn, mut peer) = harness.pair();
    // On loopback the bytes are in the engine's socket once `write_all` returns.
    peer.write_all(b"ping").unwrap();
    // Every wait below flushes a reply, so each has a `Drained` to report before polling;
    // one may skip `epoll_wait`, the next must not.
    let mut waits = 0;
    harness.pump("the request behind the drains", |harness| {
        if harness.saw(|event| is_readable(event, conn)) {
            return true;
        }
        harness.engine.write_copy(conn, b"x").unwrap();
        waits += 1;
        false
    });
    assert!(
        waits <= 2,
        "the request waited {waits} waits behind the drains"
    );
    let drains = harness
        .events
        .iter()
        .filter(|event| is_drained(event, conn))
        .count();
    assert_eq!(drains, waits, "a flushed reply's drain went unreported");
    assert_eq!(harness.read_all(conn), b"ping");
}

#[test]
fn drains_go_unreported_while_the_connection_layer_needs_none() {
    let mut harness = harness();
    // The open's own `Drained` (facil.io's first `on_ready`) came regardless: `pair` took it.
    let (conn, mut peer) = harness.pair();
    harness.engine.report_drained(conn, false);
    harness.engine.write_copy(conn, b"quiet").unwrap();
    assert_eq!(harness.peer_reads(&mut peer, 5), b"quiet");
    harness.tick();
    assert!(
        !harness.saw(|event| is_drained(event, conn)),
        "a drain was reported with reports off"
    );
    // Turned back on, the next drain is reported again.
    harness.engine.report_drained(conn, true);
    harness.engine.write_copy(conn, b"loud").unwrap();
    assert_eq!(harness.peer_reads(&mut peer, 4), b"loud");
    harness.expect("the drain after reports came back", |event| {
        is_drained(event, conn)
    });
}

#[test]
fn the_first_write_of_a_wait_goes_straight_out_and_later_ones_queue_behind_it() {
    let mut harness = harness();
    let (conn, mut peer) = harness.pair();
    harness.engine.write_copy(conn, b"first").unwrap();
    assert_eq!(
        harness.engine.queued_bytes(conn),
        0,
        "the first write was queued"
    );
    assert_eq!(harness.engine.sent(conn), 5);
    // The same wait's next write queues, and goes out after it at the flush.
    harness.engine.write_copy(conn, b" second").unwrap();
    assert_eq!(harness.engine.queued_bytes(conn), 7);
    assert_eq!(harness.peer_reads(&mut peer, 12), b"first second");
    assert_eq!(harness.engine.sent(conn), 12);
    // Past a wait, with the queue empty again, a write goes straight out again.
    harness.tick();
    harness.engine.write_copy(conn, b"third").unwrap();
    assert_eq!(harness.engine.queued_bytes(conn), 0);
    assert_eq!(harness.peer_reads(&mut peer, 5), b"third");
}

#[test]
fn the_alarm_is_set_again_only_for_an_earlier_deadline() {
    let mut engine = EpollEngine::new().unwrap();
    let alarm = &mut engine.alarm;
    assert!(
        alarm
            .ring_within(Duration::from_secs(60), fio_sys::monotonic_nanos())
            .unwrap()
    );
    let first = alarm.due().expect("set");
    // A later deadline keeps it: it ends that wait early, and the next one sets it again.
    assert!(
        alarm
            .ring_within(Duration::from_secs(120), fio_sys::monotonic_nanos())
            .unwrap()
    );
    assert_eq!(alarm.due(), Some(first));
    // An earlier one sets it again.
    assert!(
        alarm
            .ring_within(Duration::from_secs(30), fio_sys::monotonic_nanos())
            .unwrap()
    );
    assert!(alarm.due().expect("set") < first);
    // Too far to express: no alarm, the wait has no limit.
    assert!(
        !alarm
            .ring_within(Duration::MAX, fio_sys::monotonic_nanos())
            .unwrap()
    );
}

#[test]
fn a_blocking_wait_ends_when_the_alarm_goes_off() {
    let mut engine = EpollEngine::new().unwrap();
    let mut events = Vec::new();
    // Nothing registered, nothing to report: only the alarm can end these waits.
    for _ in 0..3 {
        engine
            .wait(Some(Duration::from_millis(2)), &mut events)
            .unwrap();
    }
    assert!(events.is_empty());
    assert_eq!(engine.alarm.due(), None, "it went off");
}
