//! [`Buffer`]: the unique handle to one pooled buffer, which gives its slot back on drop.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};
use std::{fmt, io, slice};

use crate::pool::PoolInner;
use crate::primitive::sync::Arc;
use crate::primitive::sync::atomic::Ordering;
use crate::{BufferPool, SharedBuffer};

/// A uniquely owned, fixed-capacity buffer taken from a [`BufferPool`](crate::BufferPool).
///
/// The buffer has a fixed [`capacity`](Self::capacity) and a length: `Deref` and `DerefMut`
/// cover the filled part `[..len]`, and [`as_mut_capacity`](Self::as_mut_capacity) the
/// whole capacity (for reading into). Every byte is always initialised: arenas are zeroed
/// when they are allocated, and afterwards only ever hold bytes someone wrote.
///
/// Dropping the buffer gives its slot back to its pool, from any thread.
///
/// # Memory stability
///
/// The memory behind [`as_ptr`](Self::as_ptr) never moves and stays valid while this handle
/// (or a [`SharedBuffer`] made from it) exists, even if every
/// [`BufferPool`](crate::BufferPool) handle is dropped: the buffer keeps its pool's arenas
/// alive. Moving the `Buffer` value itself does not move the memory.
///
/// # Threads
///
/// `Send + Sync`, like `Box<[u8]>`: the handle owns its slot exclusively, `&Buffer` only
/// reads, and giving the slot back is thread-safe.
///
/// # Examples
///
/// ```
/// use fio_buffer::{BufferPool, PoolConfig};
///
/// let pool = BufferPool::new(PoolConfig::new(16))?;
/// let mut buffer = pool.take()?;
/// assert_eq!(buffer.extend_from_slice(b"hello, world! and more"), 16);
/// assert_eq!(&buffer[..], b"hello, world! an");
/// buffer.clear();
/// buffer.as_mut_capacity()[..3].copy_from_slice(b"abc");
/// buffer.set_len(3);
/// assert_eq!(&*buffer, b"abc");
/// # Ok::<(), fio_buffer::Error>(())
/// ```
pub struct Buffer {
    /// The pool the slot returns to; also keeps the arenas (and so `ptr`) alive.
    pool: Arc<PoolInner>,
    /// The slot's first byte, cached so that access never touches the chunk table.
    ptr: NonNull<u8>,
    /// The slot's index in the pool, needed to give it back.
    slot: u32,
    /// Bytes filled, `<= capacity`.
    len: usize,
}

// SAFETY: a `Buffer` owns its slot exclusively (the free list hands each slot to one taker),
// so sending it moves that ownership like sending a `Box<[u8]>`; the pool state it refers to is
// itself `Send + Sync` (atomics and a mutex), and giving the slot back is a lock-free push that
// any thread may do.
unsafe impl Send for Buffer {}

// SAFETY: through `&Buffer` only shared reads of the bytes are possible (`Deref`, `as_ptr`),
// which many threads may do at once; every mutation needs `&mut Buffer`.
unsafe impl Sync for Buffer {}

impl Buffer {
    /// Wraps a slot just taken from `pool` (popped or freshly grown; `ptr` is its address).
    #[inline]
    pub(crate) fn new(pool: Arc<PoolInner>, slot: u32, ptr: NonNull<u8>) -> Self {
        Self::with_len(pool, slot, ptr, 0)
    }

    /// Wraps an owned slot whose first `len` bytes are filled.
    #[inline]
    pub(crate) fn with_len(pool: Arc<PoolInner>, slot: u32, ptr: NonNull<u8>, len: usize) -> Self {
        Self {
            pool,
            ptr,
            slot,
            len,
        }
    }

    /// Capacity in bytes: the pool's [`buffer_size`](crate::BufferPool::buffer_size).
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let pool = BufferPool::new(PoolConfig::new(100))?;
    /// assert_eq!(pool.take()?.capacity(), 100);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.pool.buffer_size()
    }

    /// Bytes filled.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let mut buffer = BufferPool::new(PoolConfig::new(100))?.take()?;
    /// buffer.extend_from_slice(b"abc");
    /// assert_eq!(buffer.len(), 3);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is filled.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// assert!(BufferPool::new(PoolConfig::new(100))?.take()?.is_empty());
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that can still be appended: `capacity() - len()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let mut buffer = BufferPool::new(PoolConfig::new(100))?.take()?;
    /// buffer.extend_from_slice(b"abc");
    /// assert_eq!(buffer.remaining(), 97);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.capacity() - self.len
    }

    /// Sets the filled length, typically after the kernel or
    /// [`as_mut_capacity`](Self::as_mut_capacity) wrote `len` bytes. Safe because every byte
    /// of the buffer is always initialised.
    ///
    /// # Panics
    ///
    /// If `len > capacity()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let mut buffer = BufferPool::new(PoolConfig::new(8))?.take()?;
    /// buffer.as_mut_capacity()[..2].copy_from_slice(b"ok");
    /// buffer.set_len(2);
    /// assert_eq!(&*buffer, b"ok");
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        let capacity = self.capacity();
        assert!(
            len <= capacity,
            "Buffer::set_len({len}) beyond its capacity of {capacity} bytes"
        );
        self.len = len;
    }

    /// Empties the buffer (`len = 0`); the bytes stay as they were.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let mut buffer = BufferPool::new(PoolConfig::new(8))?.take()?;
    /// buffer.extend_from_slice(b"abc");
    /// buffer.clear();
    /// assert!(buffer.is_empty());
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The whole capacity as a mutable slice, regardless of the filled length: the place to
    /// read into before [`set_len`](Self::set_len).
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let mut buffer = BufferPool::new(PoolConfig::new(8))?.take()?;
    /// assert_eq!(buffer.as_mut_capacity().len(), 8);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn as_mut_capacity(&mut self) -> &mut [u8] {
        let capacity = self.capacity();
        // SAFETY: `ptr` points at this slot's `capacity` bytes, inside a chunk that `self.pool`
        // keeps allocated; all of them are initialised (zeroed at growth, then only written);
        // and `&mut self` plus the slot's exclusive ownership make this the only reference.
        unsafe { slice::from_raw_parts_mut(self.ptr.as_ptr(), capacity) }
    }

    /// The buffer's first byte. Valid for [`capacity`](Self::capacity) bytes for as long as
    /// this handle (or a [`SharedBuffer`] made from it) lives; it never moves.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let buffer = BufferPool::new(PoolConfig::new(8))?.take()?;
    /// assert_eq!(buffer.as_ptr() as usize % 64, 0);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr().cast_const()
    }

    /// The buffer's first byte, for writing (for example by the kernel). Same validity as
    /// [`as_ptr`](Self::as_ptr); writes through it must stay within the capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let mut buffer = BufferPool::new(PoolConfig::new(8))?.take()?;
    /// assert_eq!(buffer.as_mut_ptr().cast_const(), buffer.as_ptr());
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Appends as much of `data` as fits and returns how many bytes were copied.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let mut buffer = BufferPool::new(PoolConfig::new(4))?.take()?;
    /// assert_eq!(buffer.extend_from_slice(b"abc"), 3);
    /// assert_eq!(buffer.extend_from_slice(b"def"), 1);
    /// assert_eq!(&*buffer, b"abcd");
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn extend_from_slice(&mut self, data: &[u8]) -> usize {
        let start = self.len;
        let count = data.len().min(self.remaining());
        self.as_mut_capacity()[start..start + count].copy_from_slice(&data[..count]);
        self.len = start + count;
        count
    }

    /// Turns this buffer into a reference-counted [`SharedBuffer`] over its filled bytes, for
    /// one payload feeding several sends. No allocation: the count lives in the pool's slot
    /// metadata.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig};
    ///
    /// let mut buffer = BufferPool::new(PoolConfig::new(64))?.take()?;
    /// buffer.extend_from_slice(b"broadcast");
    /// let shared = buffer.into_shared();
    /// let copy = shared.clone();
    /// assert_eq!((&*copy, shared.ref_count()), (&b"broadcast"[..], 2));
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn into_shared(self) -> SharedBuffer {
        let (pool, slot, ptr, len) = self.into_parts();
        // Relaxed: the slot is exclusively ours until the `SharedBuffer` built below is cloned
        // or sent, and both of those synchronise on their own.
        pool.arena().meta(slot).refs.store(1, Ordering::Relaxed);
        SharedBuffer::new(pool, slot, ptr, len)
    }

    /// Dismantles the handle without giving the slot back.
    /// Whether this buffer's slot belongs to `pool`.
    #[inline]
    pub(crate) fn is_from(&self, pool: &BufferPool) -> bool {
        pool.is_inner(&self.pool)
    }

    #[inline]
    fn into_parts(self) -> (Arc<PoolInner>, u32, NonNull<u8>, usize) {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so moving `pool` out of it leaves no
        // second owner of that `Arc`.
        let pool = unsafe { ptr::read(&this.pool) };
        (pool, this.slot, this.ptr, this.len)
    }
}

impl Drop for Buffer {
    #[inline]
    fn drop(&mut self) {
        self.pool.give_back(self.slot);
    }
}

impl Deref for Buffer {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` points at this slot's bytes, kept allocated by `self.pool`; the first
        // `len <= capacity` of them are initialised, and no `&mut` to them can coexist with
        // `&self`.
        unsafe { slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Buffer {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.as_mut_capacity()[..len]
    }
}

impl AsRef<[u8]> for Buffer {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for Buffer {
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl io::Write for Buffer {
    /// Appends what fits; returns `Ok(0)` once the buffer is full, so `write_all` past the
    /// capacity fails with [`io::ErrorKind::WriteZero`].
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Ok(self.extend_from_slice(data))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("slot", &self.slot)
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish()
    }
}
