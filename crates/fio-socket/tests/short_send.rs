//! Short sends: a tiny send buffer and a slow reader make the kernel take part of each
//! gathered send; the rest must follow from the first unsent byte.

mod util;

use std::io::Read;
use std::os::fd::AsFd;
use std::thread;

use fio_socket::Mode;
use util::{Harness, Pattern, tcp_pair};

const TOTAL: u64 = 4 << 20;

/// Sends `TOTAL` bytes in `mode` against a slow reader; returns the socket's figures.
fn slow_reader_transfer(mode: Mode) -> fio_socket::SocketStats {
    let (ours, mut peer) = tcp_pair();
    fio_sys::set_send_buffer_size(ours.as_fd(), 4096).unwrap();
    // A slow reader: small reads, each checked.
    let reader = thread::spawn(move || {
        let pattern = Pattern::new(4096);
        let mut buf = [0u8; 700];
        let mut total = 0u64;
        loop {
            let count = peer.read(&mut buf).expect("read");
            if count == 0 {
                return total;
            }
            assert!(
                buf[..count] == *pattern.window(total, count),
                "mismatch at {total}"
            );
            total += count as u64;
        }
    });
    let mut harness = Harness::new(4096, 16);
    let config = harness.config().with_mode(mode).with_limit(8);
    let socket = harness.open_with(config, ours, |_, _, _| {});
    let pattern = Pattern::new(40_000);
    let mut queued = 0u64;
    // Odd-sized chunks of mixed kinds, so that cuts land anywhere.
    let mut round = 0usize;
    harness.run_until(60, |ring| {
        while queued < TOTAL && socket.queued() < 1 << 20 {
            round += 1;
            let len = (1000 + round * 7919 % 39_000).min((TOTAL - queued) as usize);
            let bytes = pattern.window(queued, len);
            if round.is_multiple_of(2) {
                socket.transmit(ring, bytes).expect("open");
            } else {
                socket.transmit_chunk(ring, bytes.to_vec()).expect("open");
            }
            queued += len as u64;
        }
        queued == TOTAL
    });
    socket.close(&mut harness.ring).unwrap();
    harness.run_until(60, |_| socket.is_closed());
    assert_eq!(reader.join().expect("reader"), TOTAL);
    let stats = socket.stats();
    assert_eq!(stats.bytes_sent, TOTAL);
    stats
}

#[test]
fn short_sends_continue_from_the_first_unsent_byte() {
    let stats = slow_reader_transfer(Mode::Regular);
    assert!(
        stats.short_sends > 0,
        "the tiny send buffer cut some sends short: {stats:?}"
    );
}

#[test]
fn zero_copy_sends_against_a_slow_reader_stay_intact() {
    // The kernel may complete a stream's SEND_ZC in full; either way the stream is intact.
    let stats = slow_reader_transfer(Mode::ZeroCopy { min_len: 16 * 1024 });
    assert!(stats.zero_copy_sends > 0);
}
