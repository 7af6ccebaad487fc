//! Message mode over UDP: datagrams keep their boundaries and their senders, and replies go
//! to the address given.

mod util;

use std::net::UdpSocket;
use std::time::Duration;

use fio_socket::{Chunk, Error, Event};
use util::{Harness, recorder, saw};

#[test]
fn datagrams_arrive_with_their_sources_and_replies_reach_them() {
    let mut harness = Harness::new(2048, 16);
    let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = ours.local_addr().unwrap();
    let first = UdpSocket::bind("127.0.0.1:0").unwrap();
    let second = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (events, handler) = recorder();
    let config = harness.config().with_message_mode(true);
    let socket = harness.open_with(config, ours, handler);

    first.send_to(b"from the first", address).unwrap();
    second.send_to(b"from the second", address).unwrap();
    first.send_to(b"", address).unwrap();
    harness.run_until(10, |_| socket.buffered() == 29 && saw_three(&events));

    let (buffer, from) = socket.receive_datagram(&mut harness.ring).unwrap().unwrap();
    assert_eq!(
        (&*buffer, from),
        (&b"from the first"[..], Some(first.local_addr().unwrap()))
    );
    let mut small = [0u8; 8];
    let (count, from) = socket
        .receive_from(&mut harness.ring, &mut small)
        .unwrap()
        .unwrap();
    assert_eq!(
        (count, &small, from),
        (8, b"from the", Some(second.local_addr().unwrap()))
    );
    let (empty, from) = socket.receive_datagram(&mut harness.ring).unwrap().unwrap();
    assert!(empty.is_empty(), "an empty datagram is a message too");
    assert_eq!(from, Some(first.local_addr().unwrap()));
    assert!(
        socket
            .receive_datagram(&mut harness.ring)
            .unwrap()
            .is_none()
    );

    // Replies, one datagram each, to the address given.
    socket
        .transmit_to(
            &mut harness.ring,
            b"hello first",
            first.local_addr().unwrap(),
        )
        .unwrap();
    socket
        .transmit_message(
            &mut harness.ring,
            vec![Chunk::from(&b"hello "[..]), Chunk::from(b"second".to_vec())],
            Some(second.local_addr().unwrap()),
        )
        .unwrap();
    assert!(matches!(
        socket.transmit_urgent(&mut harness.ring, &b"no"[..]),
        Err(Error::InvalidArgument { .. })
    ));
    harness.run_until(10, |_| saw(&events, Event::Drained));
    for (peer, expected) in [(&first, &b"hello first"[..]), (&second, b"hello second")] {
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 64];
        let (count, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..count], from), (expected, address));
    }
    socket.close(&mut harness.ring).unwrap();
    harness.run_until(10, |_| socket.is_closed());
    harness.run_until_idle();
}

fn saw_three(events: &util::Events) -> bool {
    events
        .borrow()
        .iter()
        .any(|event| matches!(event, Event::Readable { buffered: 29 }))
}

#[test]
fn a_destination_needs_message_mode() {
    let mut harness = Harness::new(2048, 16);
    let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ours.local_addr().unwrap();
    let socket = harness.open(ours, |_, _, _| {});
    assert!(matches!(
        socket.transmit_to(&mut harness.ring, b"x", to),
        Err(Error::InvalidArgument { .. })
    ));
    socket.abort(&mut harness.ring).unwrap();
    harness.run_until_idle();
}

#[test]
fn small_group_buffers_fall_back_to_one_shot_recvmsg() {
    // 128-byte group buffers cannot hold the multishot header and address area, so the
    // socket re-arms one-shot `recvmsg` into the (same) inbound pool.
    let mut harness = Harness::new(128, 16);
    let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = ours.local_addr().unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (events, handler) = recorder();
    let config = harness.config().with_message_mode(true);
    let socket = harness.open_with(config, ours, handler);
    let expected: Vec<Vec<u8>> = (0..10u8).map(|n| vec![n; usize::from(n) * 10]).collect();
    for payload in &expected {
        peer.send_to(payload, address).unwrap();
    }
    let total: usize = expected.iter().map(Vec::len).sum();
    harness.run_until(10, |_| socket.buffered() == total);
    for payload in &expected {
        let (buffer, from) = socket.receive_datagram(&mut harness.ring).unwrap().unwrap();
        assert_eq!(
            (&buffer[..], from),
            (&payload[..], Some(peer.local_addr().unwrap()))
        );
    }
    assert!(
        events
            .borrow()
            .iter()
            .any(|event| matches!(event, Event::Readable { .. }))
    );
    socket.close(&mut harness.ring).unwrap();
    harness.run_until(10, |_| socket.is_closed());
    harness.run_until_idle();
}
