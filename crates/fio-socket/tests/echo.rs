//! Echo through a socket, with handlers that call back into the socket from their events.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::rc::Rc;

use fio_socket::{CloseReason, Event};
use util::{Harness, recorder, saw, tcp_pair};

#[test]
fn echo_transmits_from_inside_the_readable_event() {
    let mut harness = Harness::new(4096, 64);
    let (ours, mut peer) = tcp_pair();
    let socket = harness.open(ours, |ring, socket, event| {
        if let Event::Readable { .. } = event {
            while let Some(buffer) = socket.receive_buffer(ring).expect("open") {
                socket.transmit_chunk(ring, buffer).expect("open");
            }
        }
    });
    peer.set_nonblocking(true).unwrap();
    let mut echoed = Vec::new();
    let mut sent = Vec::new();
    for round in 0..50u32 {
        let message = format!("message {round} {}", "x".repeat(round as usize * 37));
        peer.write_all(message.as_bytes()).unwrap();
        sent.extend_from_slice(message.as_bytes());
        harness.run_until(10, |_| {
            let mut buf = [0u8; 8192];
            match peer.read(&mut buf) {
                Ok(count) => echoed.extend_from_slice(&buf[..count]),
                Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock),
            }
            echoed.len() == sent.len()
        });
    }
    assert_eq!(echoed, sent);
    socket.close(&mut harness.ring).unwrap();
    harness.run_until_idle();
    assert!(socket.is_closed());
}

#[test]
fn copying_receive_honours_wait_all() {
    let mut harness = Harness::new(4096, 16);
    let (ours, mut peer) = tcp_pair();
    let (events, handler) = recorder();
    let socket = harness.open(ours, handler);
    let mut buf = [0u8; 10];
    assert_eq!(
        socket.receive(&mut harness.ring, &mut buf, false).unwrap(),
        0
    );
    peer.write_all(b"hello").unwrap();
    harness.run_until(10, |_| socket.buffered() == 5);
    assert!(saw(&events, Event::Readable { buffered: 5 }));
    assert_eq!(
        socket.receive(&mut harness.ring, &mut buf, true).unwrap(),
        0
    );
    peer.write_all(b" world").unwrap();
    harness.run_until(10, |_| socket.buffered() == 11);
    assert_eq!(
        socket.receive(&mut harness.ring, &mut buf, true).unwrap(),
        10
    );
    assert_eq!(&buf, b"hello worl");
    assert_eq!(
        socket.receive(&mut harness.ring, &mut buf, false).unwrap(),
        1
    );
    assert_eq!(buf[0], b'd');
    socket.abort(&mut harness.ring).unwrap();
    harness.run_until_idle();
}

#[test]
fn a_copying_receive_hands_emptied_buffers_back_to_the_group() {
    let mut harness = Harness::new(4096, 16);
    let (ours, mut peer) = tcp_pair();
    let (_events, handler) = recorder();
    let socket = harness.open(ours, handler);
    let group = harness.group;
    let spares = |ring: &fio_ring::Ring| ring.buffer_group(group).map_or(0, |g| g.spares());
    assert_eq!(spares(&harness.ring), 0);
    let mut received = Vec::new();
    let mut buf = [0u8; 3];
    for round in 0..20u8 {
        let message = [round; 5];
        peer.write_all(&message).unwrap();
        harness.run_until(10, |_| socket.buffered() >= 5);
        // Read in pieces: only the read that empties a buffer gives it back.
        while socket.buffered() > 0 {
            let count = socket.receive(&mut harness.ring, &mut buf, false).unwrap();
            received.extend_from_slice(&buf[..count]);
        }
        assert!(
            spares(&harness.ring) <= 1,
            "a spare is staged by the next receive"
        );
    }
    assert_eq!(
        spares(&harness.ring),
        1,
        "the last emptied buffer waits as a spare"
    );
    let expected: Vec<u8> = (0..20u8).flat_map(|round| [round; 5]).collect();
    assert_eq!(received, expected, "no byte lost or reordered");
    let provider = harness.ring.buffer_group(group).unwrap();
    assert_eq!(
        harness.inbound.stats().in_use,
        provider.available() + provider.spares(),
        "every buffer is lent to the kernel or held as a spare"
    );
    socket.abort(&mut harness.ring).unwrap();
    harness.run_until_idle();
}

#[test]
fn a_handler_may_close_its_socket_from_inside_an_event() {
    let mut harness = Harness::new(4096, 16);
    let (ours, mut peer) = tcp_pair();
    let events = Rc::new(RefCell::new(Vec::new()));
    let sink = events.clone();
    let socket = harness.open(ours, move |ring, socket, event| {
        sink.borrow_mut().push(event);
        if let Event::Readable { .. } = event {
            socket.transmit(ring, b"goodbye").expect("still open");
            socket.close(ring).expect("close");
            // A second close, and calls after it, are harmless.
            socket.close(ring).expect("close twice");
            assert!(socket.transmit(ring, b"late").is_err());
        }
    });
    peer.write_all(b"bye?").unwrap();
    harness.run_until(10, |_| socket.is_closed());
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"goodbye", "the queue drained before the shutdown");
    let events = events.borrow();
    assert_eq!(
        events.last(),
        Some(&Event::Closed {
            reason: CloseReason::Local
        })
    );
    assert_eq!(
        events.iter().filter(|event| event.is_final()).count(),
        1,
        "Closed {{ Local }} comes once and last"
    );
    harness.run_until_idle();
}

#[test]
fn the_handler_receives_nothing_after_the_final_event() {
    let mut harness = Harness::new(4096, 16);
    let (ours, mut peer) = tcp_pair();
    let calls = Rc::new(Cell::new(0));
    let counter = calls.clone();
    let socket = harness.open(ours, move |_, _, _| counter.set(counter.get() + 1));
    socket.close(&mut harness.ring).unwrap();
    harness.run_until(10, |_| socket.is_closed());
    let after_close = calls.get();
    assert_eq!(after_close, 1, "only Closed {{ Local }}");
    let _ = peer.write_all(b"ignored");
    harness.run_until_idle();
    assert_eq!(calls.get(), after_close);
}

/// A shared handler that takes `Readable` quickly (counting it) and records the rest.
struct QuickReader {
    quick: Cell<usize>,
    refuse: bool,
    events: RefCell<Vec<Event>>,
}

impl fio_socket::SharedEventHandler for QuickReader {
    fn on_event(&self, _ring: &mut fio_ring::Ring, _socket: &fio_socket::Socket, event: Event) {
        self.events.borrow_mut().push(event);
    }

    fn on_readable(&self, buffered: usize) -> bool {
        assert!(buffered > 0);
        if !self.refuse {
            self.quick.set(self.quick.get() + 1);
        }
        !self.refuse
    }
}

#[test]
fn a_shared_handler_can_take_readable_without_the_event() {
    for refuse in [false, true] {
        let mut harness = Harness::new(4096, 16);
        let (ours, mut peer) = tcp_pair();
        let reader = Rc::new(QuickReader {
            quick: Cell::new(0),
            refuse,
            events: RefCell::new(Vec::new()),
        });
        let config = harness.config();
        let socket = fio_socket::Socket::with_shared_handler(
            &mut harness.ring,
            ours.into(),
            config,
            Rc::clone(&reader) as Rc<dyn fio_socket::SharedEventHandler>,
        )
        .expect("socket creation");
        peer.write_all(b"hello").unwrap();
        harness.run_until(10, |_| socket.buffered() == 5);
        let readable_events = reader
            .events
            .borrow()
            .iter()
            .filter(|event| matches!(event, Event::Readable { .. }))
            .count();
        if refuse {
            assert_eq!((reader.quick.get(), readable_events), (0, 1));
        } else {
            assert_eq!((reader.quick.get(), readable_events), (1, 0));
        }
        let mut buf = [0u8; 8];
        assert_eq!(
            socket.receive(&mut harness.ring, &mut buf, false).unwrap(),
            5
        );
        assert_eq!(&buf[..5], b"hello");
        // The end of stream is still an event.
        drop(peer);
        harness.run_until(10, |_| {
            reader.events.borrow().contains(&Event::Closed {
                reason: CloseReason::Remote,
            })
        });
        socket.close(&mut harness.ring).unwrap();
        harness.run_until_idle();
        assert!(socket.is_closed());
    }
}
