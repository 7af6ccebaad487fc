//! `BufferPool::new` rejects invalid configurations with typed errors.

use std::io;

use fio_buffer::{BufferPool, Error, MAX_BUFFERS_LIMIT, MAX_CHUNKS_LIMIT, PoolConfig};

fn error_of(config: PoolConfig) -> Error {
    BufferPool::new(config).unwrap_err()
}

#[test]
fn zero_sizes_are_rejected_by_field() {
    let valid = PoolConfig::new(512)
        .with_buffers_per_chunk(4)
        .with_max_buffers(16);
    assert_eq!(
        error_of(PoolConfig {
            buffer_size: 0,
            ..valid
        }),
        Error::ZeroSize {
            field: "buffer_size"
        }
    );
    assert_eq!(
        error_of(valid.with_buffers_per_chunk(0)),
        Error::ZeroSize {
            field: "buffers_per_chunk"
        }
    );
    assert_eq!(
        error_of(valid.with_max_buffers(0)),
        Error::ZeroSize {
            field: "max_buffers"
        }
    );
}

#[test]
fn a_cap_smaller_than_one_chunk_is_rejected() {
    let error = error_of(
        PoolConfig::new(512)
            .with_buffers_per_chunk(64)
            .with_max_buffers(63),
    );
    assert_eq!(
        error,
        Error::CapBelowChunk {
            max_buffers: 63,
            buffers_per_chunk: 64
        }
    );
    assert_eq!(io::Error::from(error).kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn caps_beyond_the_index_and_chunk_table_limits_are_rejected() {
    assert_eq!(
        error_of(PoolConfig::new(64).with_max_buffers(MAX_BUFFERS_LIMIT + 1)),
        Error::CapTooLarge {
            max_buffers: MAX_BUFFERS_LIMIT + 1,
            limit: MAX_BUFFERS_LIMIT
        }
    );
    assert_eq!(
        error_of(
            PoolConfig::new(64)
                .with_buffers_per_chunk(2)
                .with_max_buffers(1 << 20)
        ),
        Error::TooManyChunks {
            chunks: 1 << 19,
            limit: MAX_CHUNKS_LIMIT
        }
    );
}

#[test]
fn chunks_that_cannot_be_laid_out_are_rejected() {
    assert!(matches!(
        error_of(PoolConfig::new(usize::MAX)),
        Error::ChunkTooLarge {
            buffer_size: usize::MAX,
            ..
        }
    ));
    assert!(matches!(
        error_of(PoolConfig::new(1 << 60).with_buffers_per_chunk(64)),
        Error::ChunkTooLarge { .. }
    ));
}

#[test]
fn the_largest_valid_shapes_are_accepted_and_allocate_nothing_up_front() {
    let pool = BufferPool::new(
        PoolConfig::new(64)
            .with_buffers_per_chunk(MAX_BUFFERS_LIMIT / MAX_CHUNKS_LIMIT)
            .with_max_buffers(MAX_BUFFERS_LIMIT),
    )
    .unwrap();
    assert_eq!(pool.stats().capacity, 0);
    let single = BufferPool::new(
        PoolConfig::new(1)
            .with_buffers_per_chunk(1)
            .with_max_buffers(1),
    )
    .unwrap();
    let buffer = single.take().unwrap();
    assert_eq!(buffer.capacity(), 1);
}
