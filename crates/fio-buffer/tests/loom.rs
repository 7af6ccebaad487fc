//! Loom model checks of the pool's atomics: the Treiber free list (including ABA), growth under
//! the mutex, the cap under contention, and the shared-buffer reference count.
//!
//! Run with `RUSTFLAGS="--cfg fio_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p fio-buffer
//! --release --test loom`. Under `fio_loom` the crate's `primitive` module swaps its atomics,
//! `Arc` and `Mutex` for loom's, so these tests explore the interleavings of the real code.

#![cfg(fio_loom)]

use loom::thread;

use fio_buffer::{Buffer, BufferPool, Error, PoolConfig};

/// A pool of `slots` one-buffer chunks; `reserve` grows them all up front when asked, so a
/// test can leave the growth path out of its state space.
fn pool(slots: usize, reserve: bool) -> BufferPool {
    let config = PoolConfig::new(8)
        .with_buffers_per_chunk(1)
        .with_max_buffers(slots);
    let pool = BufferPool::new(config).unwrap();
    if reserve {
        pool.reserve(slots).unwrap();
    }
    pool
}

/// Checks, after all threads are joined, that every slot is free exactly once: all can be
/// taken, at distinct addresses, and then the pool is exhausted.
fn assert_all_slots_free_once(pool: &BufferPool, slots: usize) {
    let stats = pool.stats();
    assert_eq!((stats.in_use, stats.capacity), (0, slots));
    let all: Vec<Buffer> = (0..slots).map(|_| pool.take().unwrap()).collect();
    let mut addresses: Vec<_> = all.iter().map(Buffer::as_ptr).collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), slots, "a slot was on the free list twice");
    assert!(matches!(pool.take(), Err(Error::Exhausted { .. })));
}

/// Takes a buffer, stamps it, checks the stamp survived (no other owner), and keeps it.
fn take_and_stamp(pool: &BufferPool, stamp: u8) -> Buffer {
    let mut buffer = pool.take().unwrap();
    buffer.as_mut_capacity()[0] = stamp;
    buffer.set_len(1);
    thread::yield_now();
    assert_eq!(buffer[0], stamp, "another thread owns this slot too");
    buffer
}

#[test]
fn concurrent_takes_get_distinct_slots_and_all_come_back() {
    loom::model(|| {
        let pool = pool(2, true);
        let other = pool.clone();
        let worker = thread::spawn(move || take_and_stamp(&other, 1));
        let mine = take_and_stamp(&pool, 2);
        let theirs = worker.join().unwrap();
        assert_ne!(mine.as_ptr(), theirs.as_ptr());
        drop((mine, theirs));
        assert_all_slots_free_once(&pool, 2);
    });
}

#[test]
fn free_list_survives_the_aba_pattern() {
    // The classic ABA: while this thread's pop has read top `a` and link `a -> b`, the worker
    // pops `a`, pops `b` and pushes `a` back, keeping `b`. The top is `a` again, so without the
    // tag a stale CAS would install `b` as the top and hand out `b` a second time.
    loom::model(|| {
        let pool = pool(3, true);
        let other = pool.clone();
        let worker = thread::spawn(move || {
            let first = other.take().unwrap();
            let second = other.take().unwrap();
            assert_ne!(first.as_ptr(), second.as_ptr());
            drop(first);
            second
        });
        let mine = take_and_stamp(&pool, 7);
        let kept = worker.join().unwrap();
        assert_ne!(mine.as_ptr(), kept.as_ptr(), "one slot handed out twice");
        drop((mine, kept));
        assert_all_slots_free_once(&pool, 3);
    });
}

#[test]
fn racing_growth_allocates_each_chunk_once() {
    loom::model(|| {
        let pool = pool(2, false);
        let other = pool.clone();
        let worker = thread::spawn(move || take_and_stamp(&other, 1));
        let mine = take_and_stamp(&pool, 2);
        let theirs = worker.join().unwrap();
        assert_ne!(mine.as_ptr(), theirs.as_ptr());
        assert_eq!(pool.stats().chunks, 2);
        drop((mine, theirs));
        assert_all_slots_free_once(&pool, 2);
    });
}

#[test]
fn exactly_one_taker_wins_the_last_slot() {
    loom::model(|| {
        let pool = pool(1, false);
        let other = pool.clone();
        let worker = thread::spawn(move || other.take());
        let mine = pool.take();
        let theirs = worker.join().unwrap();
        let winners = usize::from(mine.is_ok()) + usize::from(theirs.is_ok());
        assert_eq!(winners, 1, "a held buffer can't be handed out again");
        for outcome in [&mine, &theirs] {
            if let Err(error) = outcome {
                assert!(matches!(error, Error::Exhausted { max_buffers: 1, .. }));
            }
        }
        drop((mine, theirs));
        assert_all_slots_free_once(&pool, 1);
    });
}

#[test]
fn the_last_shared_clone_returns_the_slot_exactly_once() {
    loom::model(|| {
        let pool = pool(2, true);
        let mut buffer = pool.take().unwrap();
        buffer.extend_from_slice(b"x");
        let shared = buffer.into_shared();
        let clone = shared.clone();
        let worker = thread::spawn(move || {
            assert_eq!(&*clone, b"x");
            drop(clone);
        });
        drop(shared);
        worker.join().unwrap();
        assert_all_slots_free_once(&pool, 2);
    });
}

#[test]
fn try_unique_races_a_dropping_clone_safely() {
    loom::model(|| {
        let pool = pool(2, true);
        let shared = pool.take().unwrap().into_shared();
        let clone = shared.clone();
        let worker = thread::spawn(move || drop(clone));
        // Either the clone is already gone and we get the buffer back, or we keep a shared
        // handle; both paths must give the slot back exactly once in the end.
        match shared.try_unique() {
            Ok(mut unique) => {
                unique.extend_from_slice(b"mine");
                drop(unique);
            }
            Err(still_shared) => drop(still_shared),
        }
        worker.join().unwrap();
        assert_all_slots_free_once(&pool, 2);
    });
}

#[test]
fn three_takers_for_two_slots_get_exactly_one_exhausted() {
    loom::model(|| {
        let pool = pool(2, false);
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let other = pool.clone();
                thread::spawn(move || other.take())
            })
            .collect();
        let mut outcomes = vec![pool.take()];
        outcomes.extend(workers.into_iter().map(|worker| worker.join().unwrap()));
        let exhausted = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Err(Error::Exhausted { .. })))
            .count();
        assert_eq!(exhausted, 1);
        let mut addresses: Vec<_> = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().ok().map(Buffer::as_ptr))
            .collect();
        addresses.dedup();
        assert_eq!(addresses.len(), 2);
        drop(outcomes);
        assert_all_slots_free_once(&pool, 2);
    });
}
