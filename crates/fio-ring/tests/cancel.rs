//! Cancellation: buffers stay owned until the final completion, stale ids are refused.

mod util;

use std::io::Write;

use fio_ring::{BufferPool, Error, Op, PoolConfig};
use util::{collector, has_final, ring, run_until, tcp_pair};

#[test]
fn cancelling_a_pending_recv_returns_its_buffer() {
    let mut ring = ring();
    let pool = BufferPool::new(PoolConfig::new(256)).unwrap();
    let (_client, server) = tcp_pair();
    let (received, handler) = collector();
    let id = ring
        .submit(Op::recv(&server, pool.take().unwrap()), handler)
        .unwrap();
    // Let the recv reach the kernel and park, then cancel it.
    ring.wait(Some(std::time::Duration::ZERO)).unwrap();
    assert!(ring.is_in_flight(id));
    assert_eq!(pool.stats().in_use, 1, "the ring holds the buffer");
    ring.cancel(id).unwrap();
    ring.cancel(id).unwrap();
    run_until(&mut ring, || has_final(&received));
    let mut done = received.borrow_mut().pop().unwrap();
    assert_eq!(
        done.result().unwrap_err().raw_os_error(),
        Some(libc::ECANCELED)
    );
    let buffer = done.take_buffer().unwrap();
    assert!(buffer.is_empty());
    drop(done);
    drop(buffer);
    assert_eq!(pool.stats().in_use, 0);
    assert!(matches!(ring.cancel(id), Err(Error::StaleOp(stale)) if stale == id));
}

#[test]
fn a_stale_id_never_reaches_the_op_reusing_its_slot() {
    let mut ring = ring();
    let (first, handler) = collector();
    let old = ring.submit(Op::nop(), handler).unwrap();
    run_until(&mut ring, || has_final(&first));
    let (_client, server) = tcp_pair();
    let (second, handler) = collector();
    let new = ring
        .submit(Op::recv(&server, Vec::with_capacity(8)), handler)
        .unwrap();
    assert_ne!(old, new);
    assert!(matches!(ring.cancel(old), Err(Error::StaleOp(_))));
    ring.wait(Some(std::time::Duration::ZERO)).unwrap();
    assert!(ring.is_in_flight(new), "the new op was not cancelled");
    assert!(second.borrow().is_empty());
    ring.cancel(new).unwrap();
    run_until(&mut ring, || has_final(&second));
}

#[test]
fn a_recv_that_completes_before_its_cancel_keeps_its_data() {
    let mut ring = ring();
    let (mut client, server) = tcp_pair();
    let (received, handler) = collector();
    let id = ring
        .submit(Op::recv(&server, Vec::with_capacity(16)), handler)
        .unwrap();
    client.write_all(b"raced").unwrap();
    ring.cancel(id).unwrap();
    run_until(&mut ring, || has_final(&received));
    let mut done = received.borrow_mut().pop().unwrap();
    // Either outcome is legal; data is never lost silently.
    match done.result() {
        Ok(n) => assert_eq!(&done.take_read_buf().unwrap()[..n as usize], b"raced"),
        Err(error) => assert_eq!(error.raw_os_error(), Some(libc::ECANCELED)),
    }
}

#[test]
fn cancelling_a_starved_multishot_completes_it() {
    let mut ring = ring();
    require!(ring, ring.features().multishot_recv(), "multishot recv");
    let pool = BufferPool::new(
        PoolConfig::new(8)
            .with_buffers_per_chunk(2)
            .with_max_buffers(2),
    )
    .unwrap();
    let group = ring.register_buffer_group(pool, 2).unwrap();
    let (mut client, server) = tcp_pair();
    client.write_all(&[7u8; 64]).unwrap();
    let (received, handler) = collector();
    let id = ring
        .submit(Op::recv_multishot(&server, group), handler)
        .unwrap();
    // The handler keeps its buffers (they stay in the collected completions), so the group
    // stays dry and the receive starves.
    run_until(&mut ring, || received.borrow().len() >= 2);
    ring.wait(Some(std::time::Duration::from_millis(10)))
        .unwrap();
    assert!(ring.is_in_flight(id));
    ring.cancel(id).unwrap();
    run_until(&mut ring, || has_final(&received));
    let received = received.borrow();
    let last = received.last().unwrap();
    assert_eq!(
        last.result().unwrap_err().raw_os_error(),
        Some(libc::ECANCELED)
    );
    assert!(!ring.is_in_flight(id));
}

#[test]
fn cancelling_a_pending_accept_ends_it() {
    let mut ring = ring();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (accepted, handler) = collector();
    let id = ring.submit(Op::accept(&listener), handler).unwrap();
    ring.wait(Some(std::time::Duration::ZERO)).unwrap();
    ring.cancel(id).unwrap();
    run_until(&mut ring, || has_final(&accepted));
    let mut done = accepted.borrow_mut().pop().unwrap();
    assert!(done.result().is_err() || done.take_fd().is_some());
}

#[test]
fn a_panicking_handler_leaves_other_cancelled_starved_receives_queued() {
    let mut ring = ring();
    require!(ring, ring.features().multishot_recv(), "multishot recv");
    let pool = BufferPool::new(
        PoolConfig::new(8)
            .with_buffers_per_chunk(2)
            .with_max_buffers(2),
    )
    .unwrap();
    let group = ring.register_buffer_group(pool, 2).unwrap();
    let (mut first_client, first_server) = tcp_pair();
    let (mut second_client, second_server) = tcp_pair();
    first_client.write_all(&[1u8; 64]).unwrap();
    second_client.write_all(&[2u8; 64]).unwrap();
    // The first handler keeps its buffers and panics on its final completion; the second
    // keeps its buffers too, so the group stays dry and both receives starve.
    let (first_received, mut first_collect) = collector();
    let first = ring
        .submit(
            Op::recv_multishot(&first_server, group),
            move |ring, done| {
                let last = done.is_final();
                first_collect(ring, done);
                assert!(!last, "the first handler fails on its final completion");
            },
        )
        .unwrap();
    let (second_received, second_handler) = collector();
    let second = ring
        .submit(Op::recv_multishot(&second_server, group), second_handler)
        .unwrap();
    run_until(&mut ring, || {
        first_received.borrow().len() + second_received.borrow().len() >= 2
    });
    for _ in 0..3 {
        ring.wait(Some(std::time::Duration::from_millis(5)))
            .unwrap();
    }
    assert!(ring.is_in_flight(first) && ring.is_in_flight(second));
    ring.cancel(first).unwrap();
    ring.cancel(second).unwrap();
    // Whichever is dispatched first, the panic must not swallow the other's completion.
    let mut panics = 0;
    for _ in 0..100 {
        if !ring.is_in_flight(first) && has_final(&second_received) {
            break;
        }
        let tick = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ring.wait(Some(std::time::Duration::from_millis(5)))
        }));
        panics += usize::from(tick.is_err());
    }
    assert_eq!(panics, 1, "the first handler panicked once");
    assert!(
        has_final(&second_received),
        "the second receive still completed"
    );
    assert!(!ring.is_in_flight(second));
}
