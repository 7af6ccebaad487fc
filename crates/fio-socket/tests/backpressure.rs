//! Inbound backpressure: a reader that stops reading bounds the socket's memory, and a dry
//! buffer group (`ENOBUFS`) never ends the stream.

mod util;

use std::io::Write;
use std::thread;

use fio_buffer::{BufferPool, PoolConfig};
use fio_socket::{CloseReason, Event, WaterMarks};
use util::{Harness, Pattern, recorder, tcp_pair};

const BUFFER: usize = 16 * 1024;

/// A peer thread that writes `total` pattern bytes (blocking when we stop reading), then
/// closes.
fn writer(mut peer: std::net::TcpStream, total: u64) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let pattern = Pattern::new(BUFFER);
        let mut sent = 0u64;
        while sent < total {
            let len = BUFFER.min((total - sent) as usize);
            peer.write_all(pattern.window(sent, len)).expect("write");
            sent += len as u64;
        }
    })
}

#[test]
fn a_reader_that_stops_reading_bounds_buffered_memory() {
    let total: u64 = 64 << 20;
    let high = 512 * 1024;
    // Sixteen group buffers: a multishot burst (armed at or below the low mark) adds at most
    // 256 KiB, which stays under the high mark; above it one buffer at a time is received.
    let mut harness = Harness::new(BUFFER, 16);
    let config = harness
        .config()
        .with_water_marks(WaterMarks::new(high, 128 * 1024).unwrap());
    let (ours, peer) = tcp_pair();
    let writer = writer(peer, total);
    let socket = harness.open_with(config, ours, |_, _, _| {});

    let bound = high + BUFFER;
    let mut most = 0;
    harness.run_until(30, |_| {
        most = most.max(socket.buffered());
        socket.buffered() >= high
    });
    // Paused: more ticks bring nothing more, however long the peer keeps trying.
    for _ in 0..50 {
        harness
            .ring
            .wait(Some(std::time::Duration::from_millis(10)))
            .unwrap();
        most = most.max(socket.buffered());
    }
    assert!(most <= bound, "buffered {most} bytes, bound {bound}");
    assert!(socket.stats().receive_throttles > 0);

    // Reading resumes the receive, and the whole stream arrives intact.
    let pattern = Pattern::new(BUFFER);
    let mut received = 0u64;
    let mut buf = vec![0u8; BUFFER];
    harness.run_until(60, |ring| {
        loop {
            let count = socket.receive(ring, &mut buf, false).expect("open");
            if count == 0 {
                break;
            }
            assert!(
                buf[..count] == *pattern.window(received, count),
                "mismatch at {received}"
            );
            received += count as u64;
        }
        most = most.max(socket.buffered());
        received == total
    });
    writer.join().expect("writer");
    assert!(most <= bound, "buffered {most} bytes, bound {bound}");
    socket.close(&mut harness.ring).unwrap();
    harness.run_until_idle();
}

#[test]
fn a_dry_buffer_group_is_not_the_end_of_the_stream() {
    // Four 1 KiB buffers and no more: the multishot runs dry every 4 KiB.
    let inbound = BufferPool::new(
        PoolConfig::new(1024)
            .with_buffers_per_chunk(4)
            .with_max_buffers(4),
    )
    .unwrap();
    let outbound = BufferPool::new(PoolConfig::new(4096)).unwrap();
    let mut harness = Harness::with_pools(inbound, outbound, 4);
    let total: u64 = 1 << 20;
    let (ours, peer) = tcp_pair();
    let writer = writer(peer, total);
    let (events, handler) = recorder();
    let socket = harness.open(ours, handler);
    let pattern = Pattern::new(BUFFER);
    let mut received = 0u64;
    let mut buf = vec![0u8; 3000];
    let mut reads = 0u64;
    harness.run_until(60, |ring| {
        reads += 1;
        // Read only every other tick, so the group does run dry in between.
        if reads.is_multiple_of(2) {
            loop {
                let count = socket.receive(ring, &mut buf, false).expect("open");
                if count == 0 {
                    break;
                }
                assert!(
                    buf[..count] == *pattern.window(received, count),
                    "mismatch at {received}"
                );
                received += count as u64;
            }
        }
        received == total && socket.is_eof()
    });
    writer.join().expect("writer");
    let events = events.borrow();
    let remote = Event::Closed {
        reason: CloseReason::Remote,
    };
    assert_eq!(events.iter().filter(|event| **event == remote).count(), 1);
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, Event::Error { .. }))
    );
    drop(events);
    socket.close(&mut harness.ring).unwrap();
    harness.run_until_idle();
}
