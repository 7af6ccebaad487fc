//! Dropping a ring with operations in flight neither leaks pooled memory nor frees memory the
//! kernel still uses.

mod util;

use std::io::Write;
use std::time::Duration;

use fio_ring::{BufferPool, Op, PoolConfig, Ring, RingConfig};
use util::{ring, tcp_pair};

#[test]
fn dropping_a_ring_returns_every_buffer_after_the_kernel_let_go() {
    let pool = BufferPool::new(PoolConfig::new(512)).unwrap();
    let (_client, server) = tcp_pair();
    let (reader, _writer) = fio_sys::pipe().unwrap();
    {
        let mut ring = ring();
        for _ in 0..4 {
            ring.submit(Op::recv(&server, pool.take().unwrap()), |_, _| {})
                .unwrap();
            ring.submit(Op::read(&reader, pool.take().unwrap(), None), |_, _| {})
                .unwrap();
        }
        ring.submit(Op::timeout_repeating(Duration::from_millis(1)), |_, _| {})
            .unwrap();
        ring.submit(Op::timeout(Duration::from_secs(3600)), |_, _| {})
            .unwrap();
        // Half reach the kernel before the drop, half are still queued.
        ring.wait(Some(Duration::ZERO)).unwrap();
        for _ in 0..2 {
            ring.submit(Op::recv(&server, pool.take().unwrap()), |_, _| {})
                .unwrap();
        }
        assert_eq!(pool.stats().in_use, 10);
    }
    assert_eq!(pool.stats().in_use, 0, "every buffer came back");
}

#[test]
fn dropping_a_ring_with_a_busy_buffer_group() {
    let pool = BufferPool::new(
        PoolConfig::new(16)
            .with_buffers_per_chunk(8)
            .with_max_buffers(8),
    )
    .unwrap();
    let (mut client, server) = tcp_pair();
    {
        let mut ring = ring();
        if !ring.features().multishot_recv() {
            fio_test::skip(
                fio_test::Feature::Uring,
                &format!(
                    "multishot recv not supported by kernel {:?}",
                    ring.features().kernel()
                ),
            );
            return;
        }
        let group = ring.register_buffer_group(pool.clone(), 8).unwrap();
        ring.submit(Op::recv_multishot(&server, group), |_, _| {})
            .unwrap();
        client.write_all(&[1u8; 400]).unwrap();
        for _ in 0..3 {
            ring.wait(Some(Duration::from_millis(10))).unwrap();
        }
        assert!(pool.stats().in_use > 0);
    }
    assert_eq!(
        pool.stats().in_use,
        0,
        "group buffers are freed after unregistering"
    );
}

#[test]
fn accepted_descriptors_are_closed_when_nobody_takes_them() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    {
        let mut ring = Ring::new(RingConfig::new(8).drop_timeout(Duration::from_secs(2))).unwrap();
        ring.submit(Op::accept(&listener), |_, _| {}).unwrap();
        for _ in 0..100 {
            if ring.in_flight() == 0 {
                break;
            }
            ring.wait(Some(Duration::from_millis(50))).unwrap();
        }
        assert_eq!(ring.in_flight(), 0);
    }
    // The server side was closed with the dropped completion: the client sees EOF.
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    let read = std::io::Read::read(&mut client, &mut byte);
    assert!(
        matches!(read, Ok(0))
            || read.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset)
    );
}
