//! Zero-copy sends pin their pooled buffers until the kernel's notification. On loopback the
//! kernel copies anyway, but it still posts the notifications, so the ordering is observable.
//! `cargo xtask ci` can run this file under AddressSanitizer, which would flag a buffer the
//! kernel still reads being reused.

mod util;

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;
use std::thread;

use fio_socket::{Event, Mode};
use util::{Harness, Pattern, tcp_pair};

const CHUNK: usize = 64 * 1024;

#[test]
fn buffers_return_to_the_pool_only_after_the_notification() {
    let mut harness = Harness::new(4096, 16);
    if !harness.ring.features().send_zc() {
        fio_test::skip(
            fio_test::Feature::SendZc,
            &format!(
                "SEND_ZC not supported by kernel {:?}",
                harness.ring.features().kernel()
            ),
        );
        return;
    }
    let (ours, mut peer) = tcp_pair();
    let total = 64 * CHUNK as u64;
    let reader = thread::spawn(move || {
        let pattern = Pattern::new(CHUNK);
        let mut buf = vec![0u8; CHUNK];
        let mut received = 0u64;
        loop {
            let count = peer.read(&mut buf).expect("read");
            if count == 0 {
                return received;
            }
            assert!(buf[..count] == *pattern.window(received, count));
            received += count as u64;
        }
    });
    let outbound = harness.outbound.clone();
    // (zero-copy sends pending, buffers in use + short sends) seen at each drain, when the queue no longer
    // holds anything: only the operations' own handles keep buffers out of the pool.
    let seen: Rc<RefCell<Vec<(usize, usize)>>> = Rc::default();
    let sink = seen.clone();
    let pool = outbound.clone();
    let config = harness.config().with_mode(Mode::ZeroCopy { min_len: 4096 });
    let socket = harness.open_with(config, ours, move |_, socket, event| {
        if event == Event::Drained {
            assert_eq!(socket.queued(), 0);
            let stats = socket.stats();
            sink.borrow_mut().push((
                stats.zero_copy_pending,
                pool.stats().in_use + stats.short_sends as usize,
            ));
        }
    });
    let pattern = Pattern::new(CHUNK);
    let mut queued = 0u64;
    harness.run_until(30, |ring| {
        // A short send re-sends the rest of the same buffer, so two pending sends can share
        // one buffer: every pending send beyond the short ones needs a buffer of its own.
        let stats = socket.stats();
        assert!(
            outbound.stats().in_use + stats.short_sends as usize >= stats.zero_copy_pending,
            "a pinned buffer went back early"
        );
        if queued < total && socket.queued() == 0 {
            let mut buffer = outbound.take().expect("buffer");
            buffer.extend_from_slice(pattern.window(queued, CHUNK));
            socket.transmit_chunk(ring, buffer).expect("open");
            queued += CHUNK as u64;
        }
        queued == total && socket.queued() == 0
    });
    socket.close(&mut harness.ring).unwrap();
    harness.run_until(30, |_| socket.is_closed());
    harness.run_until_idle();
    assert_eq!(reader.join().expect("reader"), total);
    let seen = seen.borrow();
    assert!(
        seen.iter().all(|(pending, in_use)| in_use >= pending),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(pending, in_use)| *pending > 0 && *in_use > 0),
        "some drain came before its notification, with the buffer still out: {seen:?}"
    );
    assert!(socket.stats().zero_copy_sends >= 64);
    assert_eq!(socket.stats().zero_copy_pending, 0);
    assert_eq!(
        outbound.stats().in_use,
        0,
        "every buffer came back after its notification"
    );
}
