//! [`SharedBuffer`]: a reference-counted, read-only handle to one pooled buffer, for one
//! payload feeding several sends.

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::{fmt, process, slice};

use crate::Buffer;
use crate::pool::PoolInner;
use crate::primitive::sync::Arc;
use crate::primitive::sync::atomic::{Ordering, fence};

/// The most handles one slot may have; past it the process aborts, as `Arc` does, because a
/// wrapped count would give the slot back while handles still read it.
const MAX_REFS: usize = isize::MAX as usize;

/// A shared, read-only handle to a pooled buffer's filled bytes, made by
/// [`Buffer::into_shared`].
///
/// `Clone` bumps an atomic count kept in the pool's slot metadata (no allocation); the slot
/// returns to the pool when the last clone drops. [`try_unique`](Self::try_unique) turns the
/// last handle back into a writable [`Buffer`].
///
/// # Memory stability
///
/// As for [`Buffer`]: the bytes never move and stay valid while any clone exists, even after
/// every [`BufferPool`](crate::BufferPool) handle is dropped.
///
/// # Threads
///
/// `Send + Sync`, like `Arc<[u8]>`: clones only read the bytes, the count is atomic, and the
/// last drop, on whatever thread, gives the slot back after an acquire fence that orders every
/// clone's reads before the next owner's writes. So one payload can feed sends on several
/// reactor threads at once.
///
/// # Examples
///
/// ```
/// use fio_buffer::{BufferPool, PoolConfig};
///
/// let pool = BufferPool::new(PoolConfig::new(64))?;
/// let mut buffer = pool.take()?;
/// buffer.extend_from_slice(b"to everyone");
/// let shared = buffer.into_shared();
/// let handles: Vec<_> = (0..3).map(|_| shared.clone()).collect();
/// assert_eq!(shared.ref_count(), 4);
/// drop(handles);
/// let mut unique = shared.try_unique().expect("the other clones are gone");
/// unique.clear();
/// # Ok::<(), fio_buffer::Error>(())
/// ```
pub struct SharedBuffer {
    /// The pool the slot returns to; also keeps the arenas (and so `ptr`) alive. All clones
    /// of one shared buffer own a single strong reference together (made by `Arc::into_raw`),
    /// which the last of them releases. So a clone costs one atomic increment, not two, and the
    /// pool's in-use figure counts the slot once.
    pool: *const PoolInner,
    /// The slot's first byte.
    ptr: NonNull<u8>,
    /// The slot's index in the pool, whose metadata holds the shared count.
    slot: u32,
    /// Bytes filled when the buffer was shared; fixed from then on.
    len: usize,
}

// SAFETY: a `SharedBuffer` only reads its bytes, which no handle can write while the count
// is above zero; the count is atomic, the pool state is `Send + Sync`, and the strong reference
// the clones share is released by whichever thread drops the last one, as for `Arc<[u8]>`.
unsafe impl Send for SharedBuffer {}

// SAFETY: `&SharedBuffer` allows only reads of immutable bytes and an atomic increment
// (`clone`), both safe from many threads at once.
unsafe impl Sync for SharedBuffer {}

impl SharedBuffer {
    /// Wraps a slot whose shared count the caller has just set to 1; `pool` becomes the
    /// strong reference all clones share.
    #[inline]
    pub(crate) fn new(pool: Arc<PoolInner>, slot: u32, ptr: NonNull<u8>, len: usize) -> Self {
        Self {
            pool: Arc::into_raw(pool),
            ptr,
            slot,
            len,
        }
    }

    /// Bytes of payload.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let mut buffer = BufferPool::new(PoolConfig::new(64))?.take()?;
    /// buffer.extend_from_slice(b"abc");
    /// assert_eq!(buffer.into_shared().len(), 3);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let buffer = BufferPool::new(PoolConfig::new(64))?.take()?;
    /// assert!(buffer.into_shared().is_empty());
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Capacity of the underlying buffer, in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let buffer = BufferPool::new(PoolConfig::new(64))?.take()?;
    /// assert_eq!(buffer.into_shared().capacity(), 64);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.pool().buffer_size()
    }

    /// The payload's first byte; valid for [`len`](Self::len) bytes while any clone lives,
    /// and never moves. Every clone returns the same address.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let buffer = BufferPool::new(PoolConfig::new(64))?.take()?;
    /// let address = buffer.as_ptr();
    /// let shared = buffer.into_shared();
    /// assert_eq!(shared.clone().as_ptr(), address);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr().cast_const()
    }

    /// How many handles share the slot right now. Only a snapshot while other threads clone
    /// or drop; exact when this is the sole handle (`1`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let shared = BufferPool::new(PoolConfig::new(64))?.take()?.into_shared();
    /// let clone = shared.clone();
    /// assert_eq!(shared.ref_count(), 2);
    /// drop(clone);
    /// assert_eq!(shared.ref_count(), 1);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[must_use]
    pub fn ref_count(&self) -> usize {
        self.pool()
            .arena()
            .meta(self.slot)
            .refs
            .load(Ordering::Acquire)
    }

    /// Turns this handle back into a writable [`Buffer`] (keeping its length) if it is the
    /// only one; otherwise returns it unchanged.
    ///
    /// # Errors
    ///
    /// - `Err(self)` if other clones still exist.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let shared = BufferPool::new(PoolConfig::new(64))?.take()?.into_shared();
    /// let clone = shared.clone();
    /// let shared = shared.try_unique().expect_err("a clone is alive");
    /// drop(clone);
    /// assert!(shared.try_unique().is_ok());
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    pub fn try_unique(self) -> Result<Buffer, SharedBuffer> {
        // Acquire pairs with the release decrement of every clone dropped before, so their
        // reads happen before the writes the returned `Buffer` allows.
        if self.ref_count() != 1 {
            return Err(self);
        }
        // Nobody else can reach the slot: we are its only handle, and only a handle can
        // clone. Reset the count so the slot looks like any uniquely held one.
        self.pool()
            .arena()
            .meta(self.slot)
            .refs
            .store(0, Ordering::Relaxed);
        let this = ManuallyDrop::new(self);
        // SAFETY: `this.pool` came from `Arc::into_raw`, and as the last handle `this` owns
        // that strong reference; `this` is never dropped, so it is taken over exactly once.
        let pool = unsafe { Arc::from_raw(this.pool) };
        Ok(Buffer::with_len(pool, this.slot, this.ptr, this.len))
    }

    /// The pool this slot belongs to.
    #[inline]
    fn pool(&self) -> &PoolInner {
        // SAFETY: `self.pool` came from `Arc::into_raw`, and that strong reference is released
        // only by the last handle's `drop` or `try_unique`, after which no handle (so no
        // `&self`) exists.
        unsafe { &*self.pool }
    }
}

impl Clone for SharedBuffer {
    #[inline]
    fn clone(&self) -> Self {
        // Relaxed, as in `Arc::clone`: the new handle is made from an existing one, which
        // already keeps the slot from being given back.
        let before = self
            .pool()
            .arena()
            .meta(self.slot)
            .refs
            .fetch_add(1, Ordering::Relaxed);
        if before > MAX_REFS {
            process::abort();
        }
        Self {
            pool: self.pool,
            ptr: self.ptr,
            slot: self.slot,
            len: self.len,
        }
    }
}

impl Drop for SharedBuffer {
    #[inline]
    fn drop(&mut self) {
        let refs = &self.pool().arena().meta(self.slot).refs;
        // Release so this handle's reads happen before the last handle gives the slot back.
        if refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Acquire pairs with every other handle's release decrement above.
        fence(Ordering::Acquire);
        // SAFETY: `self.pool` came from `Arc::into_raw`, and as the last handle this one owns
        // that strong reference, taken over exactly once, here.
        let pool = unsafe { Arc::from_raw(self.pool) };
        pool.give_back(self.slot);
    }
}

impl Deref for SharedBuffer {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` points at this slot's bytes, kept allocated by `self.pool`; the first
        // `len` are initialised, and no handle can write them while the count is non-zero.
        unsafe { slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for SharedBuffer {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for SharedBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBuffer")
            .field("slot", &self.slot)
            .field("len", &self.len)
            .field("ref_count", &self.ref_count())
            .finish()
    }
}
