//! Growth in page-aligned chunks up to the cap, `Exhausted` at the cap, recovery after
//! give-back, and the stats figures along the way.

use std::io;

use fio_buffer::{ARENA_ALIGN, BufferPool, Error, PoolConfig};

/// 3-chunk pool: chunks of 4, 4 and a shortened 2 buffers.
fn capped_pool() -> BufferPool {
    let config = PoolConfig::new(1000)
        .with_buffers_per_chunk(4)
        .with_max_buffers(10);
    BufferPool::new(config).unwrap()
}

#[test]
fn the_pool_grows_one_chunk_at_a_time_up_to_the_cap() {
    let pool = capped_pool();
    let stats = pool.stats();
    assert_eq!((stats.capacity, stats.in_use, stats.chunks), (0, 0, 0));
    assert_eq!((stats.buffer_size, stats.max_buffers), (1000, 10));

    let mut held = Vec::new();
    let mut seen = Vec::new();
    for taken in 1..=10 {
        held.push(pool.take().unwrap());
        let stats = pool.stats();
        assert_eq!(stats.in_use, taken);
        let expected_capacity = (taken.div_ceil(4) * 4).min(10);
        assert_eq!(stats.capacity, expected_capacity, "after {taken} takes");
        assert_eq!(stats.chunks, taken.div_ceil(4));
        assert_eq!(stats.idle(), expected_capacity - taken);
        seen.push(held.last().unwrap().as_ptr());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 10, "every buffer is a distinct slot");
    assert_eq!(pool.stats().capacity_bytes(), 10_000);

    let exhausted = pool.take().unwrap_err();
    assert_eq!(
        exhausted,
        Error::Exhausted {
            buffer_size: 1000,
            max_buffers: 10
        }
    );
    assert_eq!(
        io::Error::from(exhausted).kind(),
        io::ErrorKind::OutOfMemory
    );
    assert_eq!(pool.stats().capacity, 10, "a failed take does not grow");
}

#[test]
fn giving_back_at_the_cap_lets_takes_succeed_again() {
    let pool = capped_pool();
    let mut held: Vec<_> = (0..10).map(|_| pool.take().unwrap()).collect();
    assert!(matches!(pool.take(), Err(Error::Exhausted { .. })));
    let returned = held.swap_remove(3);
    let address = returned.as_ptr();
    drop(returned);
    let again = pool.take().unwrap();
    assert_eq!(again.as_ptr(), address);
    assert!(matches!(pool.take(), Err(Error::Exhausted { .. })));
    drop(held);
    drop(again);
    assert_eq!(pool.stats().in_use, 0);
    let all: Vec<_> = (0..10).map(|_| pool.take().unwrap()).collect();
    assert_eq!(all.len(), 10);
}

#[test]
fn chunk_bases_are_page_aligned_and_hold_their_buffers() {
    let pool = capped_pool();
    let held: Vec<_> = (0..10).map(|_| pool.take().unwrap()).collect();
    let bases: Vec<usize> = (0..3)
        .map(|i| pool.chunk_base(i).unwrap() as usize)
        .collect();
    assert!(pool.chunk_base(3).is_none());
    for &base in &bases {
        assert_eq!(base % ARENA_ALIGN, 0);
    }
    // Buffer size 1000 pads to a 1024-byte stride.
    for (index, buffer) in held.iter().enumerate() {
        let base = bases[index / 4];
        assert_eq!(buffer.as_ptr() as usize, base + (index % 4) * 1024);
    }
}

#[test]
fn page_multiple_buffers_are_page_aligned() {
    let pool = BufferPool::new(PoolConfig::new(8192).with_buffers_per_chunk(3)).unwrap();
    let held: Vec<_> = (0..7).map(|_| pool.take().unwrap()).collect();
    for buffer in &held {
        assert_eq!(buffer.as_ptr() as usize % ARENA_ALIGN, 0);
    }
}

#[test]
fn reserve_grows_ahead_of_demand_and_respects_the_cap() {
    let pool = capped_pool();
    pool.reserve(0).unwrap();
    assert_eq!(pool.stats().capacity, 0);
    pool.reserve(5).unwrap();
    assert_eq!(pool.stats().capacity, 8);
    assert_eq!(pool.stats().in_use, 0);
    assert!(matches!(pool.reserve(11), Err(Error::Exhausted { .. })));
    assert_eq!(pool.stats().capacity, 8);
    let first = pool.take().unwrap();
    assert_eq!(
        first.as_ptr(),
        pool.chunk_base(0).unwrap(),
        "reserved slots pop in order"
    );
    pool.reserve(10).unwrap();
    assert_eq!(pool.stats().capacity, 10);
    let rest: Vec<_> = (0..9).map(|_| pool.take().unwrap()).collect();
    assert_eq!(rest.len(), 9);
    assert!(pool.take().is_err());
}

#[test]
fn default_pool_grows_in_one_mebibyte_chunks() {
    let pool = BufferPool::new(PoolConfig::default()).unwrap();
    let buffer = pool.take().unwrap();
    assert_eq!(buffer.capacity(), 16 * 1024);
    let stats = pool.stats();
    assert_eq!(
        (stats.capacity, stats.chunks, stats.max_buffers),
        (64, 1, 65_536)
    );
    assert_eq!(stats.capacity_bytes(), 1 << 20);
}

#[test]
fn pool_handles_share_one_pool() {
    let pool = capped_pool();
    let other_handle = pool.clone();
    assert!(pool.same_pool(&other_handle));
    let buffer = other_handle.take().unwrap();
    assert_eq!(
        pool.stats().in_use,
        1,
        "pool handles are not counted as in use"
    );
    assert_eq!(pool.config(), other_handle.config());
    drop(other_handle);
    assert_eq!(pool.stats().in_use, 1);
    drop(buffer);
    assert_eq!(pool.stats().in_use, 0);
}

/// The resident KiB of the mapping that holds `address`, from `/proc/self/smaps`, with the
/// mapping's size in KiB. Adjacent anonymous mappings may be merged into one, so the figure
/// can include neighbours, never less than the mapping itself.
fn resident_kib_around(address: usize) -> (u64, u64) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    let mut size = 0;
    for line in smaps.lines() {
        let range = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = range.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            inside = (start..end).contains(&address);
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let kib = || value.trim().trim_end_matches(" kB").parse::<u64>().unwrap();
        match key {
            "Size" if inside => size = kib(),
            "Rss" if inside => return (kib(), size),
            _ => {}
        }
    }
    panic!("no mapping holds {address:#x}");
}

#[test]
fn a_chunk_is_resident_only_where_its_buffers_were_written() {
    // One 64 MiB chunk of 1 MiB buffers: far larger than anything it could be merged with.
    let pool = BufferPool::new(
        PoolConfig::new(1 << 20)
            .with_buffers_per_chunk(64)
            .with_max_buffers(64),
    )
    .unwrap();
    let mut buffers: Vec<_> = (0..64).map(|_| pool.take().unwrap()).collect();
    // A small message in every buffer touches one page of each.
    for buffer in &mut buffers {
        buffer.extend_from_slice(b"a small request");
    }
    let base = pool.chunk_base(0).unwrap() as usize;
    let (resident, size) = resident_kib_around(base);
    assert!(size >= 64 * 1024, "the chunk's mapping is {size} KiB");
    assert!(
        resident < 16 * 1024,
        "{resident} KiB of a 64 MiB chunk resident after writing 64 small messages"
    );
    assert!(
        buffers
            .iter()
            .all(|buffer| &buffer[..] == b"a small request")
    );
}
