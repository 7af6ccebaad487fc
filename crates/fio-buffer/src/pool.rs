//! [`BufferPool`]: a pool of fixed-size buffers with O(1) lock-free take and give-back,
//! grown in page-aligned chunks up to a cap.

use std::fmt;
use std::ops::Range;
use std::sync::PoisonError;

use crate::arena::Arena;
use crate::config::{Geometry, PoolConfig};
use crate::free_list::FreeList;
use crate::primitive::sync::atomic::{AtomicUsize, Ordering};
use crate::primitive::sync::{Arc, Mutex};
use crate::{Buffer, Error};

/// A pool of fixed-size buffers: a cheap, clonable handle to shared state.
///
/// [`take`](Self::take) pops the most recently given-back buffer (so a hot buffer is reused
/// while it is still in cache) or, when none is free, grows the pool by one chunk of
/// [`PoolConfig::buffers_per_chunk`] buffers. At [`PoolConfig::max_buffers`] it fails with
/// [`Error::Exhausted`]; it never returns a null or dangling buffer. Dropping a [`Buffer`]
/// gives its slot back.
///
/// # Memory stability
///
/// **A buffer's memory never moves, and stays valid for as long as any handle to it exists**,
/// even after every `BufferPool` handle is dropped: each [`Buffer`] and
/// [`SharedBuffer`](crate::SharedBuffer) keeps the pool's arenas alive. Arenas are never freed
/// or reallocated while the pool's shared state lives; growth only adds chunks. This is what
/// lets fio-ring hand a buffer's address to the kernel for the duration of an operation.
///
/// # Threads
///
/// `BufferPool` is `Send + Sync`, and so are its buffers: a buffer received on one reactor
/// thread may be dropped on another, so give-back must work from any thread. The free list is
/// a lock-free Treiber stack, and only growth (adding a chunk, a rare event) takes a mutex.
///
/// # Examples
///
/// ```
/// use fio_buffer::{BufferPool, PoolConfig};
///
/// let pool = BufferPool::new(PoolConfig::new(4096))?;
/// let mut buffer = pool.take()?;
/// buffer.extend_from_slice(b"hello");
/// let address = buffer.as_ptr();
/// drop(buffer);
/// // The slot just given back is the next one handed out.
/// assert_eq!(pool.take()?.as_ptr(), address);
/// # Ok::<(), fio_buffer::Error>(())
/// ```
pub struct BufferPool {
    /// The shared state; every buffer taken from this pool holds a clone of it too.
    inner: Arc<PoolInner>,
}

/// The state shared by a pool's handles and all of its buffers.
#[derive(Debug)]
pub(crate) struct PoolInner {
    /// The validated shape of the pool.
    geometry: Geometry,
    /// The chunks holding the buffers; never shrinks while this state lives.
    arena: Arena,
    /// The slots that are allocated but not handed out.
    free: FreeList,
    /// Buffers in published chunks. Raised, under `grow_lock`, before the new slots are pushed
    /// to the free list.
    capacity: AtomicUsize,
    /// Live [`BufferPool`] handles. Every other strong reference to this state belongs to a
    /// slot in use (a [`Buffer`], or all clones of one `SharedBuffer` together), so
    /// `Arc::strong_count - handles` is the in-use figure. Deriving it this way keeps a
    /// separate in-use counter, two more atomic read-modify-writes, off the take and give-back
    /// path.
    handles: AtomicUsize,
    /// Serialises growth; guards the number of chunks published so far.
    grow_lock: Mutex<usize>,
}

/// A snapshot of a pool's figures, from [`BufferPool::stats`].
///
/// Taken without a lock: while other threads take, give back, or clone and drop pool handles,
/// the fields may come from slightly different instants (but `in_use <= capacity <=
/// max_buffers` always holds). When the pool is quiescent they are exact.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolStats {
    /// Capacity of each buffer, in bytes.
    pub buffer_size: usize,
    /// Buffers allocated in the pool's arenas (free or in use).
    pub capacity: usize,
    /// Buffers currently handed out, whether as [`Buffer`] or shared.
    pub in_use: usize,
    /// The cap: the most buffers the pool will ever allocate.
    pub max_buffers: usize,
    /// Arena chunks allocated so far.
    pub chunks: usize,
}

impl PoolStats {
    /// Buffers allocated and free: how many takes succeed before the pool must grow.
    #[must_use]
    pub fn idle(&self) -> usize {
        self.capacity - self.in_use
    }

    /// Bytes held in the pool's arenas, counting each buffer's configured size (slot padding
    /// to 64 bytes excluded).
    #[must_use]
    pub fn capacity_bytes(&self) -> usize {
        self.capacity * self.buffer_size
    }
}

impl BufferPool {
    /// Builds an empty pool; no arena is allocated until the first take.
    ///
    /// # Errors
    ///
    /// - [`Error::ZeroSize`] if `buffer_size`, `buffers_per_chunk` or `max_buffers` is zero.
    /// - [`Error::CapBelowChunk`] if `max_buffers < buffers_per_chunk`.
    /// - [`Error::CapTooLarge`] if `max_buffers` exceeds
    ///   [`MAX_BUFFERS_LIMIT`](crate::MAX_BUFFERS_LIMIT).
    /// - [`Error::TooManyChunks`] if reaching the cap needs more than
    ///   [`MAX_CHUNKS_LIMIT`](crate::MAX_CHUNKS_LIMIT) chunks.
    /// - [`Error::ChunkTooLarge`] if one chunk's byte size overflows the address space.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, Error, PoolConfig};
    ///
    /// let pool = BufferPool::new(PoolConfig::default())?;
    /// assert_eq!(pool.stats().capacity, 0);
    /// let bad = PoolConfig::new(1024).with_buffers_per_chunk(8).with_max_buffers(4);
    /// assert!(matches!(BufferPool::new(bad), Err(Error::CapBelowChunk { .. })));
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    pub fn new(config: PoolConfig) -> Result<Self, Error> {
        let geometry = config.geometry()?;
        let inner = PoolInner {
            geometry,
            arena: Arena::new(geometry),
            free: FreeList::new(),
            capacity: AtomicUsize::new(0),
            handles: AtomicUsize::new(1),
            grow_lock: Mutex::new(0),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Takes a buffer, empty (`len() == 0`) with [`buffer_size`](Self::buffer_size) bytes of
    /// capacity. Its bytes hold whatever the previous owner left (zeros for a fresh slot).
    ///
    /// O(1): one lock-free pop, or, when no buffer is free, one chunk allocation under the
    /// growth mutex.
    ///
    /// # Errors
    ///
    /// - [`Error::Exhausted`] if all [`max_buffers`](PoolConfig::max_buffers) buffers are in
    ///   use.
    /// - [`Error::ArenaAlloc`] if the kernel refuses to map a new chunk.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, Error, PoolConfig};
    ///
    /// let config = PoolConfig::new(64).with_buffers_per_chunk(1).with_max_buffers(1);
    /// let pool = BufferPool::new(config)?;
    /// let held = pool.take()?;
    /// assert!(matches!(pool.take(), Err(Error::Exhausted { max_buffers: 1, .. })));
    /// drop(held);
    /// assert!(pool.take().is_ok());
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn take(&self) -> Result<Buffer, Error> {
        let slot = match self.inner.free.pop(&self.inner.arena) {
            Some(slot) => slot,
            None => self.inner.grow_for_take()?,
        };
        let ptr = self.inner.arena.slot_ptr(slot);
        Ok(Buffer::new(Arc::clone(&self.inner), slot, ptr))
    }

    /// Grows the pool until at least `buffers` buffers are allocated, so that later takes up
    /// to that count never allocate. Does nothing if the pool is already that large.
    ///
    /// # Errors
    ///
    /// - [`Error::Exhausted`] if `buffers` exceeds [`max_buffers`](PoolConfig::max_buffers);
    ///   the pool is left unchanged.
    /// - [`Error::ArenaAlloc`] if the kernel refuses to map a chunk; the chunks added
    ///   before it stay.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let pool = BufferPool::new(PoolConfig::new(1024).with_buffers_per_chunk(8))?;
    /// pool.reserve(20)?;
    /// assert_eq!(pool.stats().capacity, 24);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    pub fn reserve(&self, buffers: usize) -> Result<(), Error> {
        self.inner.reserve(buffers)
    }

    /// Capacity of every buffer of this pool, in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// assert_eq!(BufferPool::new(PoolConfig::new(2048))?.buffer_size(), 2048);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn buffer_size(&self) -> usize {
        self.inner.geometry.buffer_size
    }

    /// The configuration this pool was built with.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let config = PoolConfig::new(2048);
    /// assert_eq!(BufferPool::new(config)?.config(), config);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[must_use]
    pub fn config(&self) -> PoolConfig {
        self.inner.config()
    }

    /// A snapshot of the pool's figures; see [`PoolStats`] for how exact it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let pool = BufferPool::new(PoolConfig::new(1024).with_buffers_per_chunk(4))?;
    /// let buffer = pool.take()?;
    /// let stats = pool.stats();
    /// assert_eq!((stats.capacity, stats.in_use, stats.chunks), (4, 1, 1));
    /// # drop(buffer);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        let strong = Arc::strong_count(&self.inner);
        let handles = self.inner.handles.load(Ordering::Relaxed);
        self.inner.stats(strong.saturating_sub(handles))
    }

    /// The base address of arena chunk `index`, or `None` if the pool has not grown that far.
    /// Every chunk base is aligned to [`ARENA_ALIGN`](crate::ARENA_ALIGN).
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{ARENA_ALIGN, BufferPool, PoolConfig};
    ///
    /// let pool = BufferPool::new(PoolConfig::new(100))?;
    /// assert!(pool.chunk_base(0).is_none());
    /// let _buffer = pool.take()?;
    /// let base = pool.chunk_base(0).expect("the first take grew one chunk");
    /// assert_eq!(base as usize % ARENA_ALIGN, 0);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[must_use]
    pub fn chunk_base(&self, index: usize) -> Option<*const u8> {
        self.inner
            .arena
            .chunk_base(index)
            .map(|base| base.as_ptr().cast_const())
    }

    /// Whether `self` and `other` are handles to the same pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let pool = BufferPool::new(PoolConfig::default())?;
    /// assert!(pool.same_pool(&pool.clone()));
    /// assert!(!pool.same_pool(&BufferPool::new(PoolConfig::default())?));
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[must_use]
    pub fn same_pool(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Whether `inner` is this pool's shared state (a buffer holding it belongs here).
    #[inline]
    pub(crate) fn is_inner(&self, inner: &Arc<PoolInner>) -> bool {
        Arc::ptr_eq(&self.inner, inner)
    }
}

impl Clone for BufferPool {
    fn clone(&self) -> Self {
        // `stats` reads the strong count and `handles` separately, so while a handle is being
        // cloned or dropped elsewhere its in-use figure may be off by one for that instant.
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        self.inner.handles.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl PoolInner {
    /// The configuration the geometry was derived from.
    pub(crate) fn config(&self) -> PoolConfig {
        PoolConfig {
            buffer_size: self.geometry.buffer_size,
            buffers_per_chunk: self.geometry.buffers_per_chunk,
            max_buffers: self.geometry.max_buffers,
        }
    }

    /// Capacity of every buffer, in bytes.
    #[inline]
    pub(crate) fn buffer_size(&self) -> usize {
        self.geometry.buffer_size
    }

    /// The arena, for the slot metadata the buffer handles use.
    #[inline]
    pub(crate) fn arena(&self) -> &Arena {
        &self.arena
    }

    /// Returns `slot` to the free list. Called exactly once per take, by the last handle.
    #[inline]
    pub(crate) fn give_back(&self, slot: u32) {
        self.free.push(slot, &self.arena);
    }

    /// The slow path of `take`: the free list was empty, so grow by one chunk and return one
    /// of its slots, or find a slot freed meanwhile.
    fn grow_for_take(&self) -> Result<u32, Error> {
        let exhausted = || Error::Exhausted {
            buffer_size: self.geometry.buffer_size,
            max_buffers: self.geometry.max_buffers,
        };
        // At the cap, fail without contending for the growth lock.
        if self.capacity.load(Ordering::Acquire) == self.geometry.max_buffers {
            return self.free.pop(&self.arena).ok_or_else(exhausted);
        }
        let mut published = self
            .grow_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Another thread may have grown the pool, or given a buffer back, while we waited.
        if let Some(slot) = self.free.pop(&self.arena) {
            return Ok(slot);
        }
        if *published == self.geometry.chunks {
            return Err(exhausted());
        }
        let slots = self.add_chunk(&mut published)?;
        // The caller gets the chunk's first slot; the rest go on the free list in ascending
        // order, linked here while still private and published with one CAS.
        let first = slots.start;
        let rest = first + 1..slots.end;
        self.push_range(rest);
        Ok(first)
    }

    /// Grows until at least `buffers` buffers exist; see [`BufferPool::reserve`].
    fn reserve(&self, buffers: usize) -> Result<(), Error> {
        if buffers > self.geometry.max_buffers {
            return Err(Error::Exhausted {
                buffer_size: self.geometry.buffer_size,
                max_buffers: self.geometry.max_buffers,
            });
        }
        let mut published = self
            .grow_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Consecutive chunks hold consecutive slot indices, so everything added here is one
        // range, pushed as one chain (lowest index on top) even if a later chunk fails.
        let mut added: Option<Range<u32>> = None;
        let outcome = loop {
            if self.capacity.load(Ordering::Relaxed) >= buffers {
                break Ok(());
            }
            match self.add_chunk(&mut published) {
                Ok(slots) => {
                    added = Some(added.map_or(slots.clone(), |earlier| earlier.start..slots.end));
                }
                Err(error) => break Err(error),
            }
        };
        if let Some(slots) = added {
            self.push_range(slots);
        }
        outcome
    }

    /// Allocates and publishes the next chunk; the caller holds the growth lock (`published`).
    fn add_chunk(&self, published: &mut usize) -> Result<Range<u32>, Error> {
        let slots = self.arena.add_chunk(*published)?;
        *published += 1;
        // Release: a reader that sees the new capacity also sees the chunk published above.
        self.capacity.fetch_add(slots.len(), Ordering::Release);
        Ok(slots)
    }

    /// Pushes the fresh slots `slots` (not yet reachable by other threads) so that they are
    /// popped in ascending order.
    fn push_range(&self, slots: Range<u32>) {
        let Some(last) = slots.end.checked_sub(1).filter(|&last| last >= slots.start) else {
            return;
        };
        for slot in slots.start..last {
            self.arena
                .meta(slot)
                .next
                .store(slot + 1, Ordering::Relaxed);
        }
        self.free.push_chain(slots.start, last, &self.arena);
    }

    /// See [`BufferPool::stats`]; `in_use` was read first, so the later, only-growing
    /// `capacity` is at least as large unless the two raced, which the clamp hides.
    fn stats(&self, in_use: usize) -> PoolStats {
        let capacity = self.capacity.load(Ordering::Acquire);
        PoolStats {
            buffer_size: self.geometry.buffer_size,
            capacity,
            in_use: in_use.min(capacity),
            max_buffers: self.geometry.max_buffers,
            chunks: capacity.div_ceil(self.geometry.buffers_per_chunk),
        }
    }
}
