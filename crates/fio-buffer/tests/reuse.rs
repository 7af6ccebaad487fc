//! Slots are really reused: a given-back buffer is the next one handed out (LIFO), with the
//! same address, and fresh slots start zeroed.

use fio_buffer::{BUFFER_ALIGN, BufferPool, PoolConfig};

fn small_pool() -> BufferPool {
    let config = PoolConfig::new(100)
        .with_buffers_per_chunk(4)
        .with_max_buffers(8);
    BufferPool::new(config).unwrap()
}

#[test]
fn a_given_back_buffer_is_taken_again_at_the_same_address() {
    let pool = small_pool();
    let first = pool.take().unwrap();
    let address = first.as_ptr();
    drop(first);
    let again = pool.take().unwrap();
    assert_eq!(again.as_ptr(), address);
    assert_eq!(pool.stats().capacity, 4, "reuse must not grow the pool");
}

#[test]
fn reuse_is_last_in_first_out() {
    let pool = small_pool();
    let a = pool.take().unwrap();
    let b = pool.take().unwrap();
    let c = pool.take().unwrap();
    let (pa, pb, pc) = (a.as_ptr(), b.as_ptr(), c.as_ptr());
    drop(a);
    drop(c);
    assert_eq!(pool.take().unwrap().as_ptr(), pc);
    let c_again = pool.take().unwrap();
    assert_eq!(c_again.as_ptr(), pc);
    assert_eq!(pool.take().unwrap().as_ptr(), pa);
    drop(b);
    assert_eq!(pool.take().unwrap().as_ptr(), pb);
}

#[test]
fn fresh_chunk_slots_come_out_in_ascending_address_order() {
    let pool = small_pool();
    let buffers: Vec<_> = (0..4).map(|_| pool.take().unwrap()).collect();
    let addresses: Vec<usize> = buffers.iter().map(|b| b.as_ptr() as usize).collect();
    for pair in addresses.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            128,
            "slots are spaced by the padded stride"
        );
    }
    assert_eq!(addresses[0], pool.chunk_base(0).unwrap() as usize);
}

#[test]
fn a_reused_buffer_is_empty_but_keeps_the_previous_bytes() {
    let pool = small_pool();
    let mut buffer = pool.take().unwrap();
    assert_eq!(buffer.extend_from_slice(b"previous owner"), 14);
    drop(buffer);
    let mut reused = pool.take().unwrap();
    assert!(reused.is_empty());
    assert_eq!(&reused.as_mut_capacity()[..14], b"previous owner");
}

#[test]
fn fresh_slots_are_zeroed_and_aligned() {
    let pool = small_pool();
    let mut buffers: Vec<_> = (0..8).map(|_| pool.take().unwrap()).collect();
    for buffer in &mut buffers {
        assert_eq!(buffer.as_ptr() as usize % BUFFER_ALIGN, 0);
        assert_eq!(buffer.capacity(), 100);
        assert!(buffer.as_mut_capacity().iter().all(|&byte| byte == 0));
    }
}

#[test]
fn buffer_contents_follow_len() {
    let pool = small_pool();
    let mut buffer = pool.take().unwrap();
    assert_eq!(buffer.extend_from_slice(&[7; 60]), 60);
    assert_eq!(buffer.extend_from_slice(&[8; 60]), 40);
    assert_eq!(buffer.extend_from_slice(b"x"), 0);
    assert_eq!((buffer.len(), buffer.remaining()), (100, 0));
    buffer.set_len(10);
    buffer[9] = 1;
    assert_eq!(&*buffer, &[7, 7, 7, 7, 7, 7, 7, 7, 7, 1]);
    buffer.clear();
    assert!(buffer.is_empty());
    assert_eq!(buffer.as_mut_ptr().cast_const(), buffer.as_ptr());
}

#[test]
fn io_write_fills_then_reports_write_zero() {
    use std::io::Write;

    let pool = small_pool();
    let mut buffer = pool.take().unwrap();
    buffer.write_all(&[1; 100]).unwrap();
    let error = buffer.write_all(b"overflow").unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::WriteZero);
    buffer.flush().unwrap();
}

#[test]
fn set_len_beyond_capacity_panics_without_corrupting_the_pool() {
    let pool = small_pool();
    let mut buffer = pool.take().unwrap();
    let address = buffer.as_ptr();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| buffer.set_len(101)));
    assert!(outcome.is_err());
    assert_eq!(buffer.len(), 0);
    drop(buffer);
    assert_eq!(pool.take().unwrap().as_ptr(), address);
}

#[test]
fn debug_output_names_the_figures_not_the_bytes() {
    let pool = small_pool();
    let mut buffer = pool.take().unwrap();
    buffer.extend_from_slice(b"secret");
    let text = format!("{buffer:?} {pool:?}");
    assert!(text.contains("len: 6"), "{text}");
    assert!(text.contains("in_use: 1"), "{text}");
    assert!(!text.contains("secret"));
}
