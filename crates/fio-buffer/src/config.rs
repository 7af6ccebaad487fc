//! [`PoolConfig`]: the shape of one pool (buffer size, growth step, cap), and its validation
//! into the internal [`Geometry`] the arenas are laid out by.

use std::alloc::Layout;

use crate::Error;

/// Alignment of every arena chunk, in bytes: the x86-64 page size.
///
/// A buffer whose size is a multiple of this is itself page-aligned, which is what `O_DIRECT`
/// reads and kernel buffer registration prefer.
pub const ARENA_ALIGN: usize = 4096;

/// Alignment of every buffer inside a chunk, in bytes: one cache line.
///
/// Buffer slots are spaced by the buffer size rounded up to this, so two buffers never share a
/// cache line and writers on different threads don't contend.
pub const BUFFER_ALIGN: usize = 64;

/// The largest `max_buffers` a pool accepts.
///
/// Slot indices are `u32`s in the lock-free free list, with one value kept as the "empty"
/// marker; `2^31` leaves ample headroom and is far above any sensible pool.
pub const MAX_BUFFERS_LIMIT: usize = 1 << 31;

/// The largest number of chunks a pool may grow to (`max_buffers / buffers_per_chunk`, rounded
/// up).
///
/// The chunk table is allocated whole when the pool is built, so that finding a buffer's
/// chunk never takes a lock; this keeps that table at most 512 KiB.
pub const MAX_CHUNKS_LIMIT: usize = 1 << 16;

/// How large one pool's buffers are, how it grows, and where it stops.
///
/// A pool starts empty. Its first [`take`](crate::BufferPool::take) that finds no free buffer
/// allocates a *chunk*: one zeroed, [`ARENA_ALIGN`]-aligned arena holding
/// `buffers_per_chunk` buffers. Later growth adds further chunks until `max_buffers` buffers
/// exist; the last chunk is shortened if `max_buffers` is not a multiple of
/// `buffers_per_chunk`. A chunk is an anonymous mapping whose pages become resident only as
/// buffers are first written, so a pool of large buffers that hold small messages costs the
/// pages it touched, not its full size. Memory is never given back to the system while the
/// pool lives.
///
/// # Examples
///
/// ```
/// use fio_buffer::{BufferPool, PoolConfig};
///
/// let config = PoolConfig::new(2048).with_buffers_per_chunk(16).with_max_buffers(256);
/// let pool = BufferPool::new(config)?;
/// assert_eq!(pool.buffer_size(), 2048);
/// # Ok::<(), fio_buffer::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolConfig {
    /// Capacity of every buffer, in bytes. Must be positive.
    pub buffer_size: usize,
    /// How many buffers one growth step (one arena chunk) adds. Must be positive.
    pub buffers_per_chunk: usize,
    /// The cap: the most buffers the pool ever allocates. At the cap, `take` returns
    /// [`Error::Exhausted`]. Must be at least `buffers_per_chunk` and at most
    /// [`MAX_BUFFERS_LIMIT`].
    pub max_buffers: usize,
}

impl PoolConfig {
    /// The default buffer size: 16 KiB, large enough for a TLS record or a typical socket read.
    pub const DEFAULT_BUFFER_SIZE: usize = 16 * 1024;
    /// The default growth step: 64 buffers, i.e. 1 MiB chunks of 16 KiB buffers.
    pub const DEFAULT_BUFFERS_PER_CHUNK: usize = 64;
    /// The default cap on buffer count: 65 536 buffers.
    pub const DEFAULT_MAX_BUFFERS: usize = 65_536;
    /// The default cap on pool memory that [`PoolConfig::new`] derives `max_buffers` from:
    /// 1 GiB.
    ///
    /// Memory is only allocated on demand, so the cap is a ceiling rather than a reservation; 1
    /// GiB stops a runaway peer or a leak long before the machine swaps, while no realistic
    /// server needs that much in flight in one size class.
    pub const DEFAULT_MAX_BYTES: usize = 1 << 30;

    /// A configuration for `buffer_size`-byte buffers with the default growth step and a cap
    /// of [`DEFAULT_MAX_BYTES`](Self::DEFAULT_MAX_BYTES) worth of buffers, clamped between
    /// one chunk and [`DEFAULT_MAX_BUFFERS`](Self::DEFAULT_MAX_BUFFERS) buffers.
    ///
    /// Nothing is checked here; [`BufferPool::new`](crate::BufferPool::new) validates.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::PoolConfig;
    ///
    /// assert_eq!(PoolConfig::new(16 * 1024).max_buffers, 65_536);
    /// assert_eq!(PoolConfig::new(64 * 1024).max_buffers, 16_384);
    /// ```
    #[must_use]
    pub const fn new(buffer_size: usize) -> Self {
        let by_bytes = match Self::DEFAULT_MAX_BYTES.checked_div(buffer_size) {
            Some(buffers) => buffers,
            None => Self::DEFAULT_MAX_BUFFERS,
        };
        let max_buffers = if by_bytes < Self::DEFAULT_BUFFERS_PER_CHUNK {
            Self::DEFAULT_BUFFERS_PER_CHUNK
        } else if by_bytes > Self::DEFAULT_MAX_BUFFERS {
            Self::DEFAULT_MAX_BUFFERS
        } else {
            by_bytes
        };
        Self {
            buffer_size,
            buffers_per_chunk: Self::DEFAULT_BUFFERS_PER_CHUNK,
            max_buffers,
        }
    }

    /// This configuration with its growth step set to `buffers_per_chunk`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::PoolConfig;
    ///
    /// assert_eq!(PoolConfig::new(512).with_buffers_per_chunk(8).buffers_per_chunk, 8);
    /// ```
    #[must_use]
    pub const fn with_buffers_per_chunk(mut self, buffers_per_chunk: usize) -> Self {
        self.buffers_per_chunk = buffers_per_chunk;
        self
    }

    /// This configuration with its cap set to `max_buffers`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::PoolConfig;
    ///
    /// assert_eq!(PoolConfig::new(512).with_max_buffers(128).max_buffers, 128);
    /// ```
    #[must_use]
    pub const fn with_max_buffers(mut self, max_buffers: usize) -> Self {
        self.max_buffers = max_buffers;
        self
    }

    /// Checks the configuration and derives the arena layout from it.
    pub(crate) fn geometry(&self) -> Result<Geometry, Error> {
        let Self {
            buffer_size,
            buffers_per_chunk,
            max_buffers,
        } = *self;
        for (field, value) in [
            ("buffer_size", buffer_size),
            ("buffers_per_chunk", buffers_per_chunk),
            ("max_buffers", max_buffers),
        ] {
            if value == 0 {
                return Err(Error::ZeroSize { field });
            }
        }
        if max_buffers < buffers_per_chunk {
            return Err(Error::CapBelowChunk {
                max_buffers,
                buffers_per_chunk,
            });
        }
        if max_buffers > MAX_BUFFERS_LIMIT {
            return Err(Error::CapTooLarge {
                max_buffers,
                limit: MAX_BUFFERS_LIMIT,
            });
        }
        let chunks = max_buffers.div_ceil(buffers_per_chunk);
        if chunks > MAX_CHUNKS_LIMIT {
            return Err(Error::TooManyChunks {
                chunks,
                limit: MAX_CHUNKS_LIMIT,
            });
        }
        let too_large = Error::ChunkTooLarge {
            buffer_size,
            buffers_per_chunk,
        };
        let stride = buffer_size
            .checked_next_multiple_of(BUFFER_ALIGN)
            .ok_or(too_large.clone())?;
        let chunk_bytes = stride
            .checked_mul(buffers_per_chunk)
            .ok_or(too_large.clone())?;
        if Layout::from_size_align(chunk_bytes, ARENA_ALIGN).is_err() {
            return Err(too_large);
        }
        Ok(Geometry {
            buffer_size,
            stride,
            buffers_per_chunk,
            max_buffers,
            chunks,
        })
    }
}

impl Default for PoolConfig {
    /// 16 KiB buffers, grown 64 at a time (1 MiB chunks), capped at 65 536 buffers (1 GiB).
    fn default() -> Self {
        Self::new(Self::DEFAULT_BUFFER_SIZE)
    }
}

/// A validated [`PoolConfig`] plus the arena layout derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Usable bytes per buffer, as configured.
    pub(crate) buffer_size: usize,
    /// Distance between two buffers in a chunk: `buffer_size` rounded up to [`BUFFER_ALIGN`].
    pub(crate) stride: usize,
    /// Buffers in every chunk but possibly the last.
    pub(crate) buffers_per_chunk: usize,
    /// The cap on buffers.
    pub(crate) max_buffers: usize,
    /// Chunks needed to reach the cap: the length of the chunk table.
    pub(crate) chunks: usize,
}

impl Geometry {
    /// How many buffers chunk `chunk` holds: a full step, except a shortened last chunk.
    pub(crate) fn buffers_in_chunk(&self, chunk: usize) -> usize {
        let first = chunk * self.buffers_per_chunk;
        self.buffers_per_chunk.min(self.max_buffers - first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_sixteen_kib_capped_at_one_gib() {
        let config = PoolConfig::default();
        assert_eq!(config.buffer_size, 16 * 1024);
        assert_eq!(config.buffers_per_chunk, 64);
        assert_eq!(config.max_buffers, 65_536);
        assert_eq!(config.buffer_size * config.max_buffers, 1 << 30);
    }

    #[test]
    fn new_clamps_the_cap_between_a_chunk_and_the_default_count() {
        assert_eq!(PoolConfig::new(512).max_buffers, 65_536);
        assert_eq!(PoolConfig::new(1 << 20).max_buffers, 1024);
        assert_eq!(PoolConfig::new(1 << 28).max_buffers, 64);
        assert_eq!(PoolConfig::new(0).max_buffers, 65_536);
    }

    #[test]
    fn geometry_rounds_the_stride_to_a_cache_line() {
        let geometry = PoolConfig::new(100)
            .with_buffers_per_chunk(3)
            .with_max_buffers(7)
            .geometry()
            .unwrap();
        assert_eq!(geometry.stride, 128);
        assert_eq!(geometry.chunks, 3);
        assert_eq!(geometry.buffers_in_chunk(0), 3);
        assert_eq!(geometry.buffers_in_chunk(1), 3);
        assert_eq!(geometry.buffers_in_chunk(2), 1);
    }

    #[test]
    fn geometry_rejects_bad_shapes() {
        let base = PoolConfig::new(64)
            .with_buffers_per_chunk(4)
            .with_max_buffers(8);
        assert_eq!(
            base.with_max_buffers(0).geometry(),
            Err(Error::ZeroSize {
                field: "max_buffers"
            })
        );
        assert_eq!(
            base.with_max_buffers(3).geometry(),
            Err(Error::CapBelowChunk {
                max_buffers: 3,
                buffers_per_chunk: 4
            })
        );
        assert!(matches!(
            base.with_max_buffers(MAX_BUFFERS_LIMIT + 1).geometry(),
            Err(Error::CapTooLarge { .. })
        ));
        assert!(matches!(
            base.with_buffers_per_chunk(1)
                .with_max_buffers(MAX_CHUNKS_LIMIT + 1)
                .geometry(),
            Err(Error::TooManyChunks { .. })
        ));
        assert!(matches!(
            PoolConfig::new(usize::MAX).geometry(),
            Err(Error::ChunkTooLarge { .. })
        ));
        assert!(matches!(
            PoolConfig::new(isize::MAX as usize / 2)
                .with_buffers_per_chunk(4)
                .geometry(),
            Err(Error::ChunkTooLarge { .. })
        ));
    }
}
