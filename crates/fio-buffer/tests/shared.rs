//! Shared handles and lifetimes: a shared slot returns exactly once, after its last clone, and
//! buffers stay valid after every pool handle is gone.

use fio_buffer::{Buffer, BufferPool, PoolConfig, SharedBuffer};

/// Two buffers at most, so a slot pushed twice would show up as one address handed out twice.
fn two_slot_pool() -> BufferPool {
    BufferPool::new(
        PoolConfig::new(256)
            .with_buffers_per_chunk(1)
            .with_max_buffers(2),
    )
    .unwrap()
}

fn filled(pool: &BufferPool, payload: &[u8]) -> Buffer {
    let mut buffer = pool.take().unwrap();
    assert_eq!(buffer.extend_from_slice(payload), payload.len());
    buffer
}

/// Takes every buffer of a two-slot pool and checks that they are distinct and that the pool
/// is then exhausted: proof that no slot sits on the free list twice.
fn assert_each_slot_free_once(pool: &BufferPool) {
    assert_eq!(pool.stats().in_use, 0);
    let a = pool.take().unwrap();
    let b = pool.take().unwrap();
    assert_ne!(a.as_ptr(), b.as_ptr());
    assert!(pool.take().is_err());
}

#[test]
fn the_slot_returns_only_after_the_last_clone_drops() {
    let pool = two_slot_pool();
    let shared = filled(&pool, b"payload").into_shared();
    let address = shared.as_ptr();
    let clones: Vec<SharedBuffer> = (0..5).map(|_| shared.clone()).collect();
    assert_eq!(shared.ref_count(), 6);
    assert_eq!(
        pool.stats().in_use,
        1,
        "all clones count as one buffer in use"
    );
    for clone in &clones {
        assert_eq!((&**clone, clone.as_ptr()), (&b"payload"[..], address));
        assert_eq!((clone.len(), clone.capacity()), (7, 256));
    }
    drop(clones);
    assert_eq!(shared.ref_count(), 1);
    assert_eq!(pool.stats().in_use, 1);
    drop(shared);
    assert_eq!(pool.stats().in_use, 0);
    assert_eq!(
        pool.take().unwrap().as_ptr(),
        address,
        "the freed slot is reused first"
    );
    assert_each_slot_free_once(&pool);
}

#[test]
fn try_unique_succeeds_only_for_the_last_handle() {
    let pool = two_slot_pool();
    let shared = filled(&pool, b"abc").into_shared();
    let clone = shared.clone();
    let shared = shared.try_unique().unwrap_err();
    assert_eq!(shared.ref_count(), 2);
    drop(clone);
    let mut unique = shared.try_unique().unwrap();
    assert_eq!(&*unique, b"abc");
    unique.extend_from_slice(b"def");
    assert_eq!(&*unique, b"abcdef");
    // Sharing again starts a fresh count.
    let again = unique.into_shared();
    assert_eq!(again.ref_count(), 1);
    drop(again);
    assert_each_slot_free_once(&pool);
}

#[test]
fn an_empty_buffer_can_be_shared() {
    let pool = two_slot_pool();
    let shared = pool.take().unwrap().into_shared();
    assert!(shared.is_empty());
    assert_eq!(&*shared, b"");
    assert!(format!("{shared:?}").contains("ref_count: 1"));
}

#[test]
fn buffers_outlive_every_pool_handle() {
    let pool = two_slot_pool();
    let mut unique = filled(&pool, b"still here");
    let shared = filled(&pool, b"me too").into_shared();
    let clone = shared.clone();
    drop(pool);
    // The arenas must still be allocated: AddressSanitizer flags these accesses otherwise.
    assert_eq!(&*unique, b"still here");
    unique.extend_from_slice(b"!");
    unique.as_mut_capacity()[255] = 9;
    assert_eq!(&*shared, b"me too");
    drop(shared);
    assert_eq!(&*clone, b"me too");
    drop(unique);
    drop(clone);
}

#[test]
fn a_shared_buffer_keeps_the_pool_alive_until_its_last_clone() {
    let pool = two_slot_pool();
    let shared = filled(&pool, b"x").into_shared();
    drop(pool);
    let clones: Vec<_> = (0..3).map(|_| shared.clone()).collect();
    drop(shared);
    let mut unique = None;
    for clone in clones {
        match clone.try_unique() {
            Ok(buffer) => unique = Some(buffer),
            Err(still_shared) => drop(still_shared),
        }
    }
    // Only the last clone could become unique, and it did.
    let unique = unique.unwrap();
    assert_eq!(&*unique, b"x");
}
