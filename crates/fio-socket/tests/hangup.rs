//! Peer close, peer reset, local graceful and abortive close: the events and their order.

mod util;

use std::io::{Read, Write};

use fio_socket::{CloseReason, Error, Event};
use util::{Harness, recorder, saw, tcp_pair};

#[test]
fn a_peer_close_reports_closed_remote() {
    let mut harness = Harness::new(4096, 16);
    let (ours, mut peer) = tcp_pair();
    let (events, handler) = recorder();
    let socket = harness.open(ours, handler);
    peer.write_all(b"last words").unwrap();
    drop(peer);
    harness.run_until(10, |_| socket.is_eof());
    let remote = Event::Closed {
        reason: CloseReason::Remote,
    };
    assert_eq!(
        *events.borrow(),
        vec![Event::Readable { buffered: 10 }, remote],
        "the data is reported before the hang-up"
    );
    let mut buf = [0u8; 32];
    assert_eq!(
        socket.receive(&mut harness.ring, &mut buf, false).unwrap(),
        10
    );
    assert_eq!(&buf[..10], b"last words");
    assert_eq!(
        socket.receive(&mut harness.ring, &mut buf, false).unwrap(),
        0
    );
    socket.close(&mut harness.ring).unwrap();
    harness.run_until(10, |_| socket.is_closed());
    assert!(saw(
        &events,
        Event::Closed {
            reason: CloseReason::Local
        }
    ));
    harness.run_until_idle();
}

#[test]
fn a_peer_reset_reports_the_error_then_closed_error() {
    let mut harness = Harness::new(4096, 16);
    let (ours, peer) = tcp_pair();
    let (events, handler) = recorder();
    let socket = harness.open(ours, handler);
    // Closing a socket with unread data makes the kernel send a reset.
    socket
        .transmit(&mut harness.ring, b"unread by the peer")
        .unwrap();
    harness.run_until(10, |_| saw(&events, Event::Drained));
    // The peer's kernel has the bytes once they are acknowledged; give it the chance by
    // peeking them before the drop.
    let mut peek = [0u8; 4];
    peer.peek(&mut peek).unwrap();
    drop(peer);
    harness.run_until(10, |_| socket.error().is_some());
    let events = events.borrow().clone();
    let reset = Event::Error {
        errno: libc_econnreset(),
    };
    assert!(events.contains(&reset), "{events:?}");
    let position = |wanted: &Event| events.iter().position(|event| event == wanted);
    let closed = Event::Closed {
        reason: CloseReason::Error,
    };
    assert!(position(&reset) < position(&closed), "{events:?}");
    assert!(matches!(
        socket.transmit(&mut harness.ring, b"more"),
        Err(Error::Broken { errno }) if errno == libc_econnreset()
    ));
    assert_eq!(
        Error::Broken { errno: 1 }.errno(),
        32,
        "FastSocket's -EPIPE"
    );
    socket.close(&mut harness.ring).unwrap();
    harness.run_until(10, |_| socket.is_closed());
    harness.run_until_idle();
}

fn libc_econnreset() -> i32 {
    std::io::Error::from(std::io::ErrorKind::ConnectionReset)
        .raw_os_error()
        .unwrap_or(104)
}

#[test]
fn abort_drops_the_queue_and_closes() {
    let mut harness = Harness::new(4096, 16);
    let (ours, mut peer) = tcp_pair();
    let (events, handler) = recorder();
    let socket = harness.open(ours, handler);
    for _ in 0..64 {
        socket
            .transmit(&mut harness.ring, &[7u8; 64 * 1024])
            .unwrap();
    }
    socket.abort(&mut harness.ring).unwrap();
    assert!(matches!(
        socket.transmit(&mut harness.ring, b"x"),
        Err(Error::Closed)
    ));
    harness.run_until(10, |_| socket.is_closed());
    harness.run_until_idle();
    assert_eq!(
        events.borrow().last(),
        Some(&Event::Closed {
            reason: CloseReason::Local
        })
    );
    assert_eq!(harness.outbound.stats().in_use, 0, "the queue was dropped");
    // The peer sees the end of the stream (or a reset), never a hang.
    let mut sink = Vec::new();
    let _ = peer.read_to_end(&mut sink);
    assert!(sink.iter().all(|byte| *byte == 7));
}

#[test]
fn graceful_close_sends_everything_then_the_end_of_stream() {
    let mut harness = Harness::new(4096, 16);
    let (ours, mut peer) = tcp_pair();
    let socket = harness.open(ours, |_, _, _| {});
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        peer.read_to_end(&mut all).expect("read to the end");
        all
    });
    for round in 0..256u32 {
        socket
            .transmit(&mut harness.ring, &round.to_le_bytes().repeat(1000))
            .unwrap();
    }
    socket.close(&mut harness.ring).unwrap();
    harness.run_until(30, |_| socket.is_closed());
    let all = reader.join().expect("reader");
    assert_eq!(all.len(), 256 * 4000);
    for (round, block) in all.chunks(4000).enumerate() {
        assert!(
            block
                .chunks(4)
                .all(|word| word == (round as u32).to_le_bytes())
        );
    }
    harness.run_until_idle();
    // The socket's configuration keeps sent copies' buffers as spares until it drops.
    drop(socket);
    assert_eq!(harness.outbound.stats().in_use, 0);
}

#[test]
fn a_dropped_socket_is_aborted_at_its_next_completion() {
    let mut harness = Harness::new(4096, 16);
    let (ours, mut peer) = tcp_pair();
    let socket = harness.open(ours, |_, _, _| {});
    drop(socket);
    peer.write_all(b"wake it up").unwrap();
    harness.run_until_idle();
    let mut rest = Vec::new();
    let _ = peer.read_to_end(&mut rest);
    assert!(rest.is_empty());
}
