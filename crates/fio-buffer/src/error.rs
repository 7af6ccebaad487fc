//! The crate's one error type, [`Error`], and its mapping onto [`io::Error`].

use std::io;

/// Everything that can go wrong when building or using a buffer pool.
///
/// Pools never hand out a null or dangling buffer: every failure is one of these variants.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A [`PoolConfig`](crate::PoolConfig) field that must be positive was zero.
    #[error("pool configuration field `{field}` must not be zero")]
    ZeroSize {
        /// The name of the zero field: `buffer_size`, `buffers_per_chunk` or `max_buffers`.
        field: &'static str,
    },
    /// The cap (`max_buffers`) is smaller than one chunk (`buffers_per_chunk`), so the first
    /// growth step could never be taken whole.
    #[error("max_buffers ({max_buffers}) is smaller than one chunk ({buffers_per_chunk} buffers)")]
    CapBelowChunk {
        /// The configured cap.
        max_buffers: usize,
        /// The configured chunk size, in buffers.
        buffers_per_chunk: usize,
    },
    /// The cap (`max_buffers`) is above what a pool can index.
    #[error("max_buffers ({max_buffers}) exceeds the limit of {limit} buffers per pool")]
    CapTooLarge {
        /// The configured cap.
        max_buffers: usize,
        /// The largest cap a pool accepts, [`MAX_BUFFERS_LIMIT`](crate::MAX_BUFFERS_LIMIT).
        limit: usize,
    },
    /// The cap needs more chunks than the pool's fixed chunk table holds; raise
    /// `buffers_per_chunk`.
    #[error("max_buffers / buffers_per_chunk needs {chunks} chunks, above the limit of {limit}")]
    TooManyChunks {
        /// Chunks the configuration would need at its cap.
        chunks: usize,
        /// The largest chunk table a pool accepts, [`MAX_CHUNKS_LIMIT`](crate::MAX_CHUNKS_LIMIT).
        limit: usize,
    },
    /// One chunk (`buffer_size * buffers_per_chunk`, rounded for alignment) does not fit the
    /// address space (`isize::MAX` bytes).
    #[error(
        "a chunk of {buffers_per_chunk} buffers of {buffer_size} bytes is too large to allocate"
    )]
    ChunkTooLarge {
        /// The configured buffer size, in bytes.
        buffer_size: usize,
        /// The configured chunk size, in buffers.
        buffers_per_chunk: usize,
    },
    /// Every buffer up to the pool's cap is in use; retry after some are given back, or
    /// configure a larger `max_buffers`.
    #[error(
        "buffer pool of {buffer_size}-byte buffers exhausted at its cap of {max_buffers} buffers"
    )]
    Exhausted {
        /// The buffer size of the exhausted pool, in bytes.
        buffer_size: usize,
        /// The pool's cap, in buffers.
        max_buffers: usize,
    },
    /// The kernel refused to map a new chunk (below the pool's cap): out of memory or address
    /// space.
    #[error("mapping a {bytes}-byte buffer arena failed")]
    ArenaAlloc {
        /// The size of the chunk that could not be allocated, in bytes.
        bytes: usize,
    },
    /// [`SizeClasses::take`](crate::SizeClasses::take) was asked for more bytes than its
    /// largest class holds.
    #[error("no size class holds {requested} bytes (largest class: {largest} bytes)")]
    TooLarge {
        /// The requested minimum length, in bytes.
        requested: usize,
        /// The buffer size of the largest class, in bytes.
        largest: usize,
    },
    /// [`SizeClasses::new`](crate::SizeClasses::new) was given no pool configuration.
    #[error("a size-class set needs at least one class")]
    NoSizeClasses,
    /// [`SizeClasses::new`](crate::SizeClasses::new) was given two classes of the same
    /// buffer size.
    #[error("two size classes share the buffer size {buffer_size}")]
    DuplicateSizeClass {
        /// The repeated buffer size, in bytes.
        buffer_size: usize,
    },
}

impl From<Error> for io::Error {
    /// Maps each variant onto an [`io::ErrorKind`], keeping the [`Error`] as the inner error.
    ///
    /// - [`Error::Exhausted`] and [`Error::ArenaAlloc`] become [`io::ErrorKind::OutOfMemory`]:
    ///   the pool is out of memory it may use. `WouldBlock` was rejected on purpose, because a
    ///   reactor reads it as "the socket is not ready" and would wait for readiness that never
    ///   frees a buffer.
    /// - [`Error::TooLarge`] and every configuration error become
    ///   [`io::ErrorKind::InvalidInput`].
    fn from(error: Error) -> Self {
        let kind = match error {
            Error::Exhausted { .. } | Error::ArenaAlloc { .. } => io::ErrorKind::OutOfMemory,
            Error::ZeroSize { .. }
            | Error::CapBelowChunk { .. }
            | Error::CapTooLarge { .. }
            | Error::TooManyChunks { .. }
            | Error::ChunkTooLarge { .. }
            | Error::TooLarge { .. }
            | Error::NoSizeClasses
            | Error::DuplicateSizeClass { .. } => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_maps_to_out_of_memory() {
        let error = Error::Exhausted {
            buffer_size: 16,
            max_buffers: 2,
        };
        let io_error = io::Error::from(error.clone());
        assert_eq!(io_error.kind(), io::ErrorKind::OutOfMemory);
        let inner = io_error.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert_eq!(inner, Some(&error));
    }

    #[test]
    fn bad_input_maps_to_invalid_input() {
        let too_large = Error::TooLarge {
            requested: 10,
            largest: 5,
        };
        assert_eq!(
            io::Error::from(too_large).kind(),
            io::ErrorKind::InvalidInput
        );
        let zero = Error::ZeroSize {
            field: "buffer_size",
        };
        assert_eq!(io::Error::from(zero).kind(), io::ErrorKind::InvalidInput);
    }
}
