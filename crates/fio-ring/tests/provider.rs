//! Buffer group registration and one-shot receives from a group.

mod util;

use std::io::Write;

use fio_ring::{BufferPool, Error, Op, PoolConfig};
use util::{collector, has_final, ring, run_until, tcp_pair};

fn pool(buffer_size: usize, count: usize) -> BufferPool {
    BufferPool::new(
        PoolConfig::new(buffer_size)
            .with_buffers_per_chunk(count)
            .with_max_buffers(count),
    )
    .unwrap()
}

#[test]
fn registration_validates_and_fills_only_what_the_pool_has() {
    let mut ring = ring();
    require!(ring, ring.features().buf_ring(), "provided-buffer rings");
    assert!(matches!(
        ring.register_buffer_group(pool(64, 4), 3),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        ring.register_buffer_group(pool(64, 4), 0),
        Err(Error::InvalidConfig { .. })
    ));
    // A pool of two cannot fill four entries: two are published, two wait; none is null.
    let small = pool(64, 2);
    let group = ring.register_buffer_group(small.clone(), 4).unwrap();
    let provider = ring.buffer_group(group).unwrap();
    assert_eq!(provider.entries(), 4);
    assert_eq!(provider.available(), 2);
    assert_eq!(provider.missing(), 2);
    assert_eq!(small.stats().in_use, 2);
    assert_eq!(group.buffer_len(), 64);

    let second = ring.register_buffer_group(pool(32, 8), 8).unwrap();
    assert_ne!(group.id(), second.id());
}

#[test]
fn one_shot_recv_from_a_group_hands_over_the_buffer() {
    let mut ring = ring();
    require!(ring, ring.features().buf_ring(), "provided-buffer rings");
    let pool = pool(128, 8);
    let group = ring.register_buffer_group(pool.clone(), 4).unwrap();
    let (mut client, server) = tcp_pair();
    client.write_all(b"zero copy").unwrap();
    let (received, handler) = collector();
    ring.submit(Op::recv_from_group(&server, group), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&received));
    let mut done = received.borrow_mut().pop().unwrap();
    assert!(done.buffer_id().is_some());
    let buffer = done.take_buffer().unwrap();
    assert_eq!(&buffer[..], b"zero copy");
    // The slot was refilled from the pool straight away.
    assert_eq!(ring.buffer_group(group).unwrap().available(), 4);
    assert_eq!(pool.stats().in_use, 5);
    drop(buffer);
    assert_eq!(pool.stats().in_use, 4);
}

#[test]
fn ops_on_unknown_groups_are_refused() {
    let mut ring = ring();
    require!(ring, ring.features().buf_ring(), "provided-buffer rings");
    let mut other = util::ring();
    let group = other.register_buffer_group(pool(16, 4), 4).unwrap();
    let (_client, server) = tcp_pair();
    let refused = ring.submit(Op::recv_multishot(&server, group), |_, _| {});
    assert!(matches!(refused, Err(Error::UnknownBufferGroup(id)) if id == group.id()));
    assert_eq!(ring.in_flight(), 0);
}
