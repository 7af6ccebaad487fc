//! `Socket::report_drained`: a drained send queue is reported only while wanted.

mod util;

use std::io::Read;

use fio_socket::Event;
use util::{Harness, recorder, saw, tcp_pair};

#[test]
fn drains_are_reported_only_while_wanted() {
    let mut harness = Harness::new(4096, 16);
    let (ours, mut peer) = tcp_pair();
    let (events, handler) = recorder();
    let socket = harness.open(ours, handler);
    let mut reply = [0u8; 5];

    // Off: the send completes (the peer gets the bytes), and no `Drained` follows.
    socket.report_drained(false);
    socket.transmit(&mut harness.ring, b"first").unwrap();
    harness.run_until(10, |_| socket.queued() == 0);
    peer.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"first");
    assert!(!saw(&events, Event::Drained), "{:?}", events.borrow());

    // On again: the next drain is reported.
    socket.report_drained(true);
    socket.transmit(&mut harness.ring, b"again").unwrap();
    harness.run_until(10, |_| saw(&events, Event::Drained));
    peer.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"again");

    socket.close(&mut harness.ring).unwrap();
    harness.run_until(10, |_| socket.is_closed());
    harness.run_until_idle();
}
