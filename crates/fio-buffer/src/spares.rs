//! [`SpareBuffers`]: a few empty buffers one thread keeps at hand in front of its pool.

use std::fmt;

use crate::{Buffer, BufferPool, Error};

/// A bounded stack of empty buffers from one [`BufferPool`], owned by one thread.
///
/// An event loop that receives into a pooled buffer, copies the bytes out, and queues a reply
/// in another pooled buffer takes and gives back two buffers per request. Each trip through
/// the pool is a compare-and-swap on its lock-free stack plus a reference-count update, all
/// atomic read-modify-writes. Keeping the buffers a loop has just emptied and taking them
/// again first makes the steady state touch no shared memory at all. The spares stay the
/// pool's memory (a pool never shrinks), so keeping them costs nothing the pool doesn't
/// already hold; they only count as in use in [`BufferPool::stats`] until this drops.
///
/// # Examples
/// ```
/// use fio_buffer::{BufferPool, PoolConfig, SpareBuffers};
///
/// let pool = BufferPool::new(PoolConfig::new(4096))?;
/// let mut spares = SpareBuffers::new(pool.clone(), 4);
/// let mut buffer = spares.take()?;
/// buffer.extend_from_slice(b"used");
/// spares.give(buffer);
/// assert_eq!(spares.len(), 1);
/// // The spare comes back empty, without a trip through the pool.
/// assert!(spares.take()?.is_empty());
/// # Ok::<(), fio_buffer::Error>(())
/// ```
pub struct SpareBuffers {
    /// Where buffers come from when no spare is left, and go to past the limit.
    pool: BufferPool,
    /// Empty buffers of `pool`, most recently given on top (warmest in cache).
    spares: Vec<Buffer>,
    /// Spares kept at most; the allocation is made for this many up front.
    limit: usize,
}

impl SpareBuffers {
    /// Keeps up to `limit` spare buffers of `pool`. The stack is allocated here, whole, so
    /// taking and giving never allocate.
    pub fn new(pool: BufferPool, limit: usize) -> Self {
        Self {
            pool,
            spares: Vec::with_capacity(limit),
            limit,
        }
    }

    /// The pool behind the spares.
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig, SpareBuffers};
    /// let pool = BufferPool::new(PoolConfig::new(4096))?;
    /// let spares = SpareBuffers::new(pool.clone(), 4);
    /// assert!(spares.pool().same_pool(&pool));
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    pub fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// An empty buffer: the last spare given back, or a new one from the pool.
    ///
    /// # Errors
    /// - [`Error::Exhausted`] when no spare is left and the pool is at its cap.
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig, SpareBuffers};
    /// let mut spares = SpareBuffers::new(BufferPool::new(PoolConfig::new(4096))?, 1);
    /// assert_eq!(spares.take()?.capacity(), 4096);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn take(&mut self) -> Result<Buffer, Error> {
        match self.spares.pop() {
            Some(buffer) => Ok(buffer),
            None => self.pool.take(),
        }
    }

    /// Keeps `buffer`, emptied, as a spare; past the limit, or when it belongs to another
    /// pool, it goes back to its pool.
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig, SpareBuffers};
    /// let pool = BufferPool::new(PoolConfig::new(4096))?;
    /// let mut spares = SpareBuffers::new(pool.clone(), 1);
    /// spares.give(pool.take()?);
    /// spares.give(pool.take()?);
    /// assert_eq!(spares.len(), 1, "the second went back to the pool");
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn give(&mut self, buffer: Buffer) {
        if self.spares.len() < self.limit && buffer.is_from(&self.pool) {
            // Emptied where it lands: clearing it first made one more copy of the buffer.
            self.spares.push(buffer);
            if let Some(spare) = self.spares.last_mut() {
                spare.clear();
            }
        } else {
            give_back(buffer);
        }
    }

    /// Keeps `buffer`, emptied, as a spare when it belongs to this pool and the limit leaves
    /// room; otherwise hands it back untouched, for its caller to place elsewhere (another
    /// thread-local cache, or its pool by dropping it).
    ///
    /// # Errors
    /// - `Err(buffer)` when it is another pool's or the spares are at their limit.
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig, SpareBuffers};
    /// let ours = BufferPool::new(PoolConfig::new(4096))?;
    /// let theirs = BufferPool::new(PoolConfig::new(4096))?;
    /// let mut spares = SpareBuffers::new(ours.clone(), 4);
    /// assert!(spares.try_give(ours.take()?).is_ok());
    /// assert!(spares.try_give(theirs.take()?).is_err(), "not this pool's");
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn try_give(&mut self, mut buffer: Buffer) -> Result<(), Buffer> {
        if self.spares.len() < self.limit && buffer.is_from(&self.pool) {
            buffer.clear();
            self.spares.push(buffer);
            Ok(())
        } else {
            Err(buffer)
        }
    }

    /// Spares held now.
    pub fn len(&self) -> usize {
        self.spares.len()
    }

    /// Whether no spare is held.
    pub fn is_empty(&self) -> bool {
        self.spares.is_empty()
    }
}

/// Gives `buffer` back to its pool: the rare path of [`SpareBuffers::give`], kept out of line
/// so the kept-as-spare path inlines into the loops that recycle a buffer per request.
#[cold]
#[inline(never)]
fn give_back(buffer: Buffer) {
    drop(buffer);
}

impl fmt::Debug for SpareBuffers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpareBuffers")
            .field("spares", &self.spares.len())
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use crate::PoolConfig;

    use super::*;

    #[test]
    fn spares_skip_the_pool_and_past_the_limit_return_to_it() {
        let pool = BufferPool::new(PoolConfig::new(4096)).unwrap();
        let mut spares = SpareBuffers::new(pool.clone(), 2);
        let taken: Vec<Buffer> = (0..3).map(|_| spares.take().unwrap()).collect();
        assert_eq!(pool.stats().in_use, 3);
        for buffer in taken {
            spares.give(buffer);
        }
        assert_eq!(spares.len(), 2);
        assert_eq!(pool.stats().in_use, 2, "the third went back to the pool");
        let again = spares.take().unwrap();
        assert_eq!(pool.stats().in_use, 2, "a spare was taken, not the pool's");
        drop(again);
        drop(spares);
        assert_eq!(pool.stats().in_use, 0);
    }

    #[test]
    fn a_buffer_of_another_pool_goes_home() {
        let ours = BufferPool::new(PoolConfig::new(4096)).unwrap();
        let theirs = BufferPool::new(PoolConfig::new(8192)).unwrap();
        let mut spares = SpareBuffers::new(ours, 4);
        spares.give(theirs.take().unwrap());
        assert!(spares.is_empty());
        assert_eq!(theirs.stats().in_use, 0);
    }

    #[test]
    fn a_given_buffer_comes_back_empty() {
        let pool = BufferPool::new(PoolConfig::new(4096)).unwrap();
        let mut spares = SpareBuffers::new(pool, 1);
        let mut buffer = spares.take().unwrap();
        buffer.extend_from_slice(b"stale");
        spares.give(buffer);
        assert!(spares.take().unwrap().is_empty());
    }
}
