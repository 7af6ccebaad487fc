//! Receive pause: a paused socket takes nothing more from the kernel, however long the peer
//! keeps sending, and the whole stream arrives in order once it resumes.

mod util;

use std::io::Write;
use std::thread;
use std::time::Duration;

use util::{Harness, Pattern, tcp_pair};

const BUFFER: usize = 16 * 1024;

#[test]
fn a_paused_socket_stops_receiving_and_resumes_in_order() {
    let total: u64 = 8 << 20;
    let mut harness = Harness::new(BUFFER, 64);
    let (ours, mut peer) = tcp_pair();
    // The peer writes everything, blocking while we don't receive.
    let writer = thread::spawn(move || {
        let pattern = Pattern::new(BUFFER);
        let mut sent = 0u64;
        while sent < total {
            let len = BUFFER.min((total - sent) as usize);
            peer.write_all(pattern.window(sent, len)).expect("write");
            sent += len as u64;
        }
    });
    let socket = harness.open(ours, |_, _, _| {});
    harness.run_until(30, |_| socket.buffered() > 0);
    socket.pause_receive(&mut harness.ring, true).unwrap();
    assert!(socket.is_receive_paused());
    // The cancelled receive's final completion ends the socket's last operation.
    harness.run_until(10, |_| socket.in_flight() == 0);
    let buffered = socket.buffered();
    assert!((buffered as u64) < total, "the peer was never held back");
    for _ in 0..50 {
        harness.ring.wait(Some(Duration::from_millis(10))).unwrap();
        assert_eq!(socket.buffered(), buffered, "a paused socket received");
    }
    // Reading while paused does not resume.
    let mut buf = vec![0u8; BUFFER];
    let pattern = Pattern::new(BUFFER);
    let mut received = 0u64;
    // Reads what is buffered, checking it against the pattern; returns the total so far.
    let mut check = |socket: &fio_socket::Socket, ring: &mut fio_ring::Ring| loop {
        let count = socket.receive(ring, &mut buf, false).expect("open");
        if count == 0 {
            return received;
        }
        assert!(
            buf[..count] == *pattern.window(received, count),
            "mismatch at {received}"
        );
        received += count as u64;
    };
    assert_eq!(check(&socket, &mut harness.ring), buffered as u64);
    assert_eq!(socket.buffered(), 0);
    assert_eq!(socket.in_flight(), 0, "a read resumed a paused receive");

    socket.pause_receive(&mut harness.ring, false).unwrap();
    assert!(!socket.is_receive_paused());
    harness.run_until(60, |ring| check(&socket, ring) == total);
    writer.join().expect("writer");
    socket.close(&mut harness.ring).unwrap();
    harness.run_until_idle();
}

#[test]
fn pausing_an_idle_socket_twice_and_resuming_twice_is_harmless() {
    let mut harness = Harness::new(BUFFER, 16);
    let (ours, mut peer) = tcp_pair();
    let socket = harness.open(ours, |_, _, _| {});
    for _ in 0..2 {
        socket.pause_receive(&mut harness.ring, true).unwrap();
    }
    harness.run_until(10, |_| socket.in_flight() == 0);
    for _ in 0..2 {
        socket.pause_receive(&mut harness.ring, false).unwrap();
    }
    assert_eq!(socket.in_flight(), 1, "one receive, armed once");
    peer.write_all(b"after").unwrap();
    harness.run_until(10, |_| socket.buffered() == 5);
    socket.close(&mut harness.ring).unwrap();
    harness.run_until_idle();
}
