//! Multishot receive through provided-buffer rings, including a ring that runs dry mid-stream.

mod util;

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;

use fio_ring::{Buffer, BufferPool, Op, PoolConfig, Ring};
use util::{pattern, ring, run_until, tcp_pair};

fn tiny_pool(buffer_size: usize, count: usize) -> BufferPool {
    BufferPool::new(
        PoolConfig::new(buffer_size)
            .with_buffers_per_chunk(count)
            .with_max_buffers(count),
    )
    .unwrap()
}

/// What a receiving handler saw.
#[derive(Default)]
struct Stream {
    bytes: Vec<u8>,
    completions: usize,
    ended: Option<i32>,
}

#[test]
fn multishot_recv_delivers_chunks_in_order_until_eof() {
    let mut ring = ring();
    require!(ring, ring.features().multishot_recv(), "multishot recv");
    let group = ring.register_buffer_group(tiny_pool(64, 16), 16).unwrap();
    let (mut client, server) = tcp_pair();
    let stream = Rc::new(RefCell::new(Stream::default()));
    let sink = stream.clone();
    let id = ring
        .submit(Op::recv_multishot(&server, group), move |_, mut done| {
            let mut sink = sink.borrow_mut();
            sink.completions += 1;
            if let Some(buffer) = done.take_buffer() {
                sink.bytes.extend_from_slice(&buffer);
            }
            if done.is_final() {
                sink.ended = Some(done.raw_result());
            }
        })
        .unwrap();
    for chunk in [&b"first "[..], b"second ", b"third"] {
        client.write_all(chunk).unwrap();
        let want = stream.borrow().bytes.len() + chunk.len();
        run_until(&mut ring, || stream.borrow().bytes.len() >= want);
    }
    assert!(ring.is_in_flight(id));
    drop(client);
    run_until(&mut ring, || stream.borrow().ended.is_some());
    let stream = stream.borrow();
    assert_eq!(stream.bytes, b"first second third");
    assert_eq!(stream.ended, Some(0), "EOF ends the multishot");
    assert!(!ring.is_in_flight(id));
    let provider = ring.buffer_group(group).unwrap();
    assert_eq!(
        provider.available(),
        16,
        "every buffer went back into the ring"
    );
}

#[test]
fn a_dry_buffer_ring_starves_and_recovers_without_losing_bytes() {
    let mut ring = ring();
    require!(ring, ring.features().multishot_recv(), "multishot recv");
    // Four 8-byte buffers and not one more: 4 KiB needs 512 refills.
    let group = ring.register_buffer_group(tiny_pool(8, 4), 4).unwrap();
    let (mut client, server) = tcp_pair();
    let data = pattern(4096);
    client.write_all(&data).unwrap();

    let stream = Rc::new(RefCell::new(Stream::default()));
    // Buffers are held past the handler and only released at the end of the tick, so the
    // ring stays dry until then.
    let held: Rc<RefCell<Vec<Buffer>>> = Rc::default();
    let saw_missing = Rc::new(Cell::new(0usize));
    let (sink, hold, missing) = (stream.clone(), held.clone(), saw_missing.clone());
    let id = ring
        .submit(
            Op::recv_multishot(&server, group),
            move |ring: &mut Ring, mut done| {
                sink.borrow_mut().completions += 1;
                if let Some(buffer) = done.take_buffer() {
                    sink.borrow_mut().bytes.extend_from_slice(&buffer);
                    hold.borrow_mut().push(buffer);
                }
                if done.is_final() {
                    sink.borrow_mut().ended = Some(done.raw_result());
                }
                let (hold, missing) = (hold.clone(), missing.clone());
                ring.on_tick_end(move |ring| {
                    let dry = ring.buffer_group(group).map_or(0, |g| g.missing());
                    missing.set(missing.get().max(dry));
                    hold.borrow_mut().clear();
                });
            },
        )
        .unwrap();
    run_until(&mut ring, || stream.borrow().bytes.len() >= data.len());
    let received = stream.borrow();
    assert_eq!(received.bytes, data, "every byte, in order");
    assert_eq!(received.ended, None, "ENOBUFS never reaches the handler");
    assert!(received.completions >= 4096 / 8);
    assert_eq!(saw_missing.get(), 4, "the ring really ran dry");
    assert!(ring.is_in_flight(id), "one operation across every re-arm");
    drop(received);
    ring.cancel(id).unwrap();
    run_until(&mut ring, || stream.borrow().ended.is_some());
    assert_eq!(stream.borrow().ended, Some(-libc::ECANCELED));
}

#[test]
fn slow_consumer_recovers_when_buffers_come_back_between_ticks() {
    let mut ring = ring();
    require!(ring, ring.features().multishot_recv(), "multishot recv");
    let group = ring.register_buffer_group(tiny_pool(8, 4), 4).unwrap();
    let (mut client, server) = tcp_pair();
    let data = pattern(1000);
    client.write_all(&data).unwrap();
    let held: Rc<RefCell<Vec<Buffer>>> = Rc::default();
    let hold = held.clone();
    ring.submit(Op::recv_multishot(&server, group), move |_, mut done| {
        if let Some(buffer) = done.take_buffer() {
            hold.borrow_mut().push(buffer);
        }
    })
    .unwrap();
    // The application drains its buffers only between ticks: the starved receive must be
    // re-armed by the next wait, not by a timer and not by spinning.
    let mut received = Vec::new();
    let mut ticks = 0;
    run_until(&mut ring, || {
        ticks += 1;
        for buffer in held.borrow_mut().drain(..) {
            received.extend_from_slice(&buffer);
        }
        received.len() >= data.len()
    });
    assert_eq!(received, data);
    assert!(ticks > 1000 / 32, "needed many refills: {ticks} ticks");
}

#[test]
fn a_growing_group_starts_small_and_grows_when_dry_without_losing_bytes() {
    let mut ring = ring();
    require!(ring, ring.features().multishot_recv(), "multishot recv");
    // 64 slots, 2 lent at first; 8-byte buffers so that 4 KiB keeps running it dry.
    let group = ring
        .register_growing_buffer_group(tiny_pool(8, 64), 2, 64)
        .unwrap();
    {
        let provider = ring.buffer_group(group).unwrap();
        assert_eq!((provider.available(), provider.target()), (2, 2));
        assert_eq!(provider.pool().stats().capacity, 64, "one chunk of 64");
    }
    let (mut client, server) = tcp_pair();
    let data = pattern(4096);
    client.write_all(&data).unwrap();
    let stream = Rc::new(RefCell::new(Stream::default()));
    let sink = stream.clone();
    let id = ring
        .submit(Op::recv_multishot(&server, group), move |_, mut done| {
            let mut sink = sink.borrow_mut();
            if let Some(buffer) = done.take_buffer() {
                sink.bytes.extend_from_slice(&buffer);
            }
            if done.is_final() {
                sink.ended = Some(done.raw_result());
            }
        })
        .unwrap();
    run_until(&mut ring, || stream.borrow().bytes.len() >= data.len());
    assert_eq!(stream.borrow().bytes, data, "every byte, in order");
    assert_eq!(
        stream.borrow().ended,
        None,
        "ENOBUFS never reaches the handler"
    );
    assert!(ring.is_in_flight(id), "one operation across every re-arm");
    let provider = ring.buffer_group(group).unwrap();
    assert!(provider.target() > 2, "grew after running dry");
    assert!(provider.target() <= 64, "never past its entries");
    assert_eq!(provider.available(), provider.target(), "lends its target");
    assert_eq!(
        provider.available() + provider.missing(),
        64,
        "every slot is lent or missing"
    );
}

#[test]
fn a_growing_group_refuses_a_bad_initial_size() {
    let mut ring = ring();
    let too_big = ring.register_growing_buffer_group(tiny_pool(8, 4), 8, 4);
    assert!(matches!(
        too_big,
        Err(fio_ring::Error::InvalidConfig { .. })
    ));
    let zero = ring.register_growing_buffer_group(tiny_pool(8, 4), 0, 4);
    assert!(matches!(zero, Err(fio_ring::Error::InvalidConfig { .. })));
}

#[test]
fn a_one_shot_group_receive_waits_for_a_dry_group_and_then_receives() {
    let mut ring = ring();
    // One 8-byte buffer: the second receive finds the group dry and is re-armed (its entry
    // built again by the ring) once the first buffer is given back.
    let group = ring.register_buffer_group(tiny_pool(8, 1), 1).unwrap();
    let (mut client, server) = tcp_pair();
    let data = pattern(16);
    client.write_all(&data).unwrap();

    let held: Rc<RefCell<Vec<Buffer>>> = Rc::default();
    let results: Rc<RefCell<Vec<i32>>> = Rc::default();
    for _ in 0..2 {
        let (hold, seen) = (held.clone(), results.clone());
        ring.submit(Op::recv_from_group(&server, group), move |_, mut done| {
            seen.borrow_mut().push(done.raw_result());
            if let Some(buffer) = done.take_buffer() {
                hold.borrow_mut().push(buffer);
            }
        })
        .unwrap();
    }
    run_until(&mut ring, || !results.borrow().is_empty());
    assert_eq!(
        *results.borrow(),
        [8],
        "the second receive waits, it does not fail"
    );
    let mut received: Vec<u8> = held
        .borrow_mut()
        .drain(..)
        .flat_map(|b| b.to_vec())
        .collect();
    run_until(&mut ring, || results.borrow().len() == 2);
    assert_eq!(
        *results.borrow(),
        [8, 8],
        "ENOBUFS never reaches the handler"
    );
    received.extend(held.borrow_mut().drain(..).flat_map(|b| b.to_vec()));
    assert_eq!(received, data, "every byte, in order");
}
