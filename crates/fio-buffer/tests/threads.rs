//! Cross-thread use: buffers taken on one thread and dropped on another, shared payloads read on
//! several threads, and a bounded multi-thread stress of take and give-back.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use fio_buffer::{Buffer, BufferPool, Error, PoolConfig, SharedBuffer, SizeClasses};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn handles_are_send_and_sync() {
    assert_send_sync::<BufferPool>();
    assert_send_sync::<Buffer>();
    assert_send_sync::<SharedBuffer>();
    assert_send_sync::<SizeClasses>();
}

#[test]
fn a_buffer_taken_here_can_be_given_back_from_another_thread() {
    let pool = BufferPool::new(
        PoolConfig::new(64)
            .with_buffers_per_chunk(2)
            .with_max_buffers(2),
    )
    .unwrap();
    // A rendezvous channel: at most one buffer waits with the dropper while the next is taken,
    // so two slots suffice only if the dropper's give-backs really reach this pool.
    let (sender, receiver) = mpsc::sync_channel::<Buffer>(0);
    let dropper = thread::spawn(move || {
        for buffer in receiver {
            assert_eq!(&*buffer, b"sent");
        }
    });
    for _ in 0..100 {
        let mut buffer = pool.take().unwrap();
        buffer.extend_from_slice(b"sent");
        sender.send(buffer).unwrap();
    }
    drop(sender);
    dropper.join().unwrap();
    assert_eq!(pool.stats().in_use, 0);
    assert_eq!(pool.stats().capacity, 2);
}

#[test]
fn one_shared_payload_is_read_on_several_threads() {
    let pool = BufferPool::new(
        PoolConfig::new(64)
            .with_buffers_per_chunk(1)
            .with_max_buffers(1),
    )
    .unwrap();
    let mut buffer = pool.take().unwrap();
    buffer.extend_from_slice(b"fan-out");
    let shared = buffer.into_shared();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let mine = shared.clone();
            thread::spawn(move || {
                for _ in 0..1000 {
                    let extra = mine.clone();
                    assert_eq!(&*extra, b"fan-out");
                }
            })
        })
        .collect();
    drop(shared);
    for reader in readers {
        reader.join().unwrap();
    }
    assert_eq!(pool.stats().in_use, 0);
    assert!(pool.take().is_ok());
}

#[test]
fn concurrent_take_and_give_back_never_hands_a_slot_out_twice() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 5_000;
    // Fewer buffers than the threads can hold at once, so the cap is hit under contention.
    let config = PoolConfig::new(64)
        .with_buffers_per_chunk(2)
        .with_max_buffers(6);
    let pool = BufferPool::new(config).unwrap();
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|worker| {
            let pool = pool.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let mark = u8::try_from(worker + 1).unwrap();
                let (mut served, mut exhausted) = (0_usize, 0_usize);
                let mut held: Vec<Buffer> = Vec::new();
                for round in 0..ROUNDS {
                    match pool.take() {
                        Ok(mut buffer) => {
                            buffer.as_mut_capacity().fill(mark);
                            buffer.set_len(64);
                            held.push(buffer);
                            served += 1;
                        }
                        Err(Error::Exhausted { .. }) => exhausted += 1,
                        Err(other) => panic!("unexpected error {other}"),
                    }
                    // Every held buffer must still carry this thread's mark: a slot handed to
                    // two threads at once would be overwritten by the other one.
                    for buffer in &held {
                        assert!(buffer.iter().all(|&byte| byte == mark));
                    }
                    if round % 3 == 2 || held.len() == 2 {
                        held.clear();
                    }
                }
                (served, exhausted)
            })
        })
        .collect();
    let mut served = 0;
    for worker in workers {
        let (worker_served, _exhausted) = worker.join().unwrap();
        served += worker_served;
    }
    assert!(served > 0);
    let stats = pool.stats();
    assert_eq!(stats.in_use, 0, "every buffer came back");
    assert!(stats.capacity <= 6);
    // All slots are on the free list exactly once.
    let everything: Vec<_> = (0..stats.capacity).map(|_| pool.take().unwrap()).collect();
    let mut addresses: Vec<_> = everything.iter().map(Buffer::as_ptr).collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), stats.capacity);
}

#[test]
fn concurrent_growth_reaches_the_cap_exactly() {
    const THREADS: usize = 4;
    let config = PoolConfig::new(32)
        .with_buffers_per_chunk(3)
        .with_max_buffers(20);
    let pool = BufferPool::new(config).unwrap();
    let start = Arc::new(Barrier::new(THREADS));
    let takers: Vec<_> = (0..THREADS)
        .map(|_| {
            let pool = pool.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let mut mine = Vec::new();
                while let Ok(buffer) = pool.take() {
                    mine.push(buffer);
                    assert!(mine.len() <= 20);
                }
                mine
            })
        })
        .collect();
    let all: Vec<Buffer> = takers.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(all.len(), 20, "exactly the cap is handed out");
    let stats = pool.stats();
    assert_eq!((stats.capacity, stats.in_use, stats.chunks), (20, 20, 7));
    drop(all);
    assert_eq!(pool.stats().in_use, 0);
}
