//! Large transfers in every mode, checked byte for byte by a reader on another thread.
//!
//! The size is 256 MiB, or `FIO_SOCKET_TRANSFER_MIB` when set.

mod util;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::thread;

use fio_socket::{Mode, Socket, SocketConfig};
use util::{Harness, Pattern, tcp_pair, transfer_bytes};

const CHUNK: usize = 64 * 1024;
/// Keep at most this much queued, so memory stays bounded whatever the total.
const MAX_QUEUED: usize = 4 << 20;

/// Reads everything from `source` and checks it against the pattern; returns the count.
fn check_reader(mut source: impl Read + Send + 'static) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let pattern = Pattern::new(CHUNK);
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let count = source.read(&mut buf).expect("read");
            if count == 0 {
                return total;
            }
            assert!(
                buf[..count] == *pattern.window(total, count),
                "mismatch in the {count} bytes at offset {total}"
            );
            total += count as u64;
        }
    })
}

/// Sends `transfer_bytes()` of the pattern through a socket over `fd` in `mode`, in pooled
/// chunks, then closes gracefully; returns the socket's figures.
fn send_all(
    mode: Mode,
    limit: usize,
    fd: OwnedFd,
    reader: thread::JoinHandle<u64>,
) -> fio_socket::SocketStats {
    let total = transfer_bytes();
    let mut harness = Harness::new(4096, 16);
    let config = harness.config().with_mode(mode).with_limit(limit);
    let socket = harness.open_with(config, fd, |_, _, _| {});
    let pattern = Pattern::new(CHUNK);
    let outbound = harness.outbound.clone();
    let mut queued = 0u64;
    harness.run_until(120, |ring| {
        while queued < total && socket.queued() < MAX_QUEUED {
            let len = CHUNK.min((total - queued) as usize);
            let mut buffer = outbound.take().expect("outbound buffer");
            buffer.extend_from_slice(pattern.window(queued, len));
            socket.transmit_chunk(ring, buffer).expect("socket open");
            queued += len as u64;
        }
        queued == total
    });
    socket.close(&mut harness.ring).unwrap();
    harness.run_until(120, |_| socket.is_closed());
    harness.run_until_idle();
    assert_eq!(reader.join().expect("reader"), total);
    assert_eq!(
        outbound.stats().in_use,
        0,
        "every chunk went back to the pool"
    );
    let stats = socket.stats();
    assert_eq!(stats.bytes_sent, total);
    stats
}

fn tcp_transfer(mode: Mode) -> fio_socket::SocketStats {
    tcp_transfer_with_limit(mode, SocketConfig::DEFAULT_LIMIT)
}

fn tcp_transfer_with_limit(mode: Mode, limit: usize) -> fio_socket::SocketStats {
    let (ours, peer) = tcp_pair();
    let reader = check_reader(peer);
    send_all(mode, limit, ours.into(), reader)
}

#[test]
fn regular_mode_transfers_intact() {
    let stats = tcp_transfer(Mode::Regular);
    assert_eq!(stats.corked_sends, 0, "only auto-cork sets MSG_MORE");
}

#[test]
fn auto_cork_mode_transfers_intact() {
    // Up to 64 chunks of 64 KiB are queued and a send takes 16: the sends that leave chunks
    // behind are corked, and the last of every batch is not, or the tail would sit in the
    // cork.
    let stats = tcp_transfer_with_limit(Mode::AutoCork, 16);
    if transfer_bytes() > 16 * CHUNK as u64 {
        assert!(stats.corked_sends > 0, "{stats:?}");
    }
    assert!(stats.corked_sends < stats.sends, "{stats:?}");
}

#[test]
fn zero_copy_mode_transfers_intact() {
    let stats = tcp_transfer(Mode::ZeroCopy {
        min_len: Mode::ZERO_COPY_MIN_LEN,
    });
    assert!(
        stats.zero_copy_sends > 0,
        "large chunks went through SEND_ZC"
    );
    assert_eq!(stats.zero_copy_pending, 0);
}

#[test]
fn file_mode_transfers_intact_through_a_pipe() {
    let (read_end, write_end) = fio_sys::pipe().unwrap();
    let reader = check_reader(File::from(read_end));
    send_all(Mode::FileIo, SocketConfig::DEFAULT_LIMIT, write_end, reader);
}

#[test]
fn receiving_transfers_intact() {
    let total = transfer_bytes();
    let (ours, mut peer) = tcp_pair();
    let writer = thread::spawn(move || {
        let pattern = Pattern::new(CHUNK);
        let mut sent = 0u64;
        while sent < total {
            let len = CHUNK.min((total - sent) as usize);
            peer.write_all(pattern.window(sent, len)).expect("write");
            sent += len as u64;
        }
    });
    let mut harness = Harness::new(16 * 1024, 64);
    let socket: Socket = harness.open(ours, |_, _, _| {});
    let pattern = Pattern::new(CHUNK);
    let mut received = 0u64;
    let mut buf = vec![0u8; CHUNK];
    harness.run_until(120, |ring| {
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
        received == total && socket.is_eof()
    });
    writer.join().expect("writer");
    socket.close(&mut harness.ring).unwrap();
    harness.run_until_idle();
    assert_eq!(socket.stats().bytes_received, total);
}

#[test]
fn auto_cork_corks_every_send_of_a_batch_but_the_last() {
    let (ours, mut peer) = tcp_pair();
    let mut harness = Harness::new(4096, 16);
    let config = harness.config().with_mode(Mode::AutoCork).with_limit(2);
    let socket = harness.open_with(config, ours, |_, _, _| {});
    // Five chunks queued in one tick, two per send: sends of 2, 2 and 1 chunks, the first
    // two with MSG_MORE (chunks wait behind them), the last without.
    for chunk in [&b"ab"[..], b"cd", b"ef", b"gh", b"ij"] {
        socket.transmit_chunk(&mut harness.ring, chunk).unwrap();
    }
    assert_eq!((socket.queued_chunks(), socket.queued()), (5, 10));
    harness.run_until(10, |_| socket.queued() == 0 && socket.stats().sends == 3);
    assert_eq!(socket.queued_chunks(), 0);
    let stats = socket.stats();
    assert_eq!((stats.corked_sends, stats.sends), (2, 3), "{stats:?}");
    assert_eq!(stats.short_sends, 0);
    let mut got = [0u8; 10];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"abcdefghij", "the last send flushed the cork");
    socket.close(&mut harness.ring).unwrap();
    harness.run_until(10, |_| socket.is_closed());
}
