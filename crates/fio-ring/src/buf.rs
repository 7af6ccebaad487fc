//! Owned memory handed to the kernel: read targets ([`IoBuf`]), write sources ([`WriteBuf`])
//! and the heap cells that hold kernel-visible structs ([`KernelBox`]).
//!
//! Every type here keeps its bytes at a fixed heap address however often the owning value is
//! moved, which is what lets an [`Op`](crate::Op) compute the pointers for its submission entry
//! when it is built and then move into the in-flight table.

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;

use fio_buffer::{Buffer, Chunk, SharedBuffer};

/// A buffer the kernel reads *into*: a pooled [`Buffer`] or a `Vec<u8>`.
///
/// Reads and receives append after the current length, up to the capacity, and the length
/// grows by the number of bytes received (the `Vec`'s spare capacity is used; a full buffer
/// reads zero bytes).
///
/// # Examples
/// ```
/// use fio_ring::IoBuf;
/// let buf = IoBuf::from(Vec::with_capacity(16));
/// assert_eq!((buf.len(), buf.capacity()), (0, 16));
/// ```
pub enum IoBuf {
    /// A buffer from a [`fio_buffer::BufferPool`]; its memory never moves.
    Pooled(Buffer),
    /// A plain vector; its heap allocation does not move while the vector is owned by the ring.
    Vec(Vec<u8>),
}

impl IoBuf {
    /// Bytes filled.
    pub fn len(&self) -> usize {
        match self {
            IoBuf::Pooled(buffer) => buffer.len(),
            IoBuf::Vec(vec) => vec.len(),
        }
    }

    /// Whether no byte is filled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total capacity in bytes.
    pub fn capacity(&self) -> usize {
        match self {
            IoBuf::Pooled(buffer) => buffer.capacity(),
            IoBuf::Vec(vec) => vec.capacity(),
        }
    }

    /// The pooled buffer, if this is one.
    pub fn into_buffer(self) -> Option<Buffer> {
        match self {
            IoBuf::Pooled(buffer) => Some(buffer),
            IoBuf::Vec(_) => None,
        }
    }

    /// The bytes as a vector (copying out of a pooled buffer).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            IoBuf::Pooled(buffer) => buffer.to_vec(),
            IoBuf::Vec(vec) => vec,
        }
    }

    /// The unfilled tail the kernel may write: its address and length (capped at `u32::MAX`).
    pub(crate) fn spare_mut(&mut self) -> (*mut u8, u32) {
        match self {
            IoBuf::Pooled(buffer) => {
                let len = buffer.len();
                let tail = &mut buffer.as_mut_capacity()[len..];
                (tail.as_mut_ptr(), clamp_len(tail.len()))
            }
            IoBuf::Vec(vec) => {
                let spare = vec.spare_capacity_mut();
                (spare.as_mut_ptr().cast(), clamp_len(spare.len()))
            }
        }
    }

    /// Grows the length by `added` bytes the kernel wrote into the spare tail.
    pub(crate) fn commit(&mut self, added: usize) {
        match self {
            IoBuf::Pooled(buffer) => {
                let len = (buffer.len() + added).min(buffer.capacity());
                buffer.set_len(len);
            }
            IoBuf::Vec(vec) => {
                let len = (vec.len() + added).min(vec.capacity());
                // SAFETY: the kernel reported writing `added` bytes at the start of the spare
                // capacity it was given, so the bytes up to `len` (clamped to the capacity) are
                // initialised.
                unsafe { vec.set_len(len) };
            }
        }
    }
}

impl Deref for IoBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            IoBuf::Pooled(buffer) => buffer,
            IoBuf::Vec(vec) => vec,
        }
    }
}

impl From<Buffer> for IoBuf {
    fn from(buffer: Buffer) -> Self {
        IoBuf::Pooled(buffer)
    }
}

impl From<Vec<u8>> for IoBuf {
    fn from(vec: Vec<u8>) -> Self {
        IoBuf::Vec(vec)
    }
}

impl fmt::Debug for IoBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            IoBuf::Pooled(_) => "Pooled",
            IoBuf::Vec(_) => "Vec",
        };
        f.debug_struct("IoBuf")
            .field("kind", &kind)
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// The storage behind a [`WriteBuf`].
enum Source {
    Pooled(Buffer),
    Shared(SharedBuffer),
    Vec(Vec<u8>),
    Static(&'static [u8]),
}

/// Bytes the kernel writes *from*: a pooled [`Buffer`], a [`SharedBuffer`], a `Vec<u8>` or a
/// `&'static [u8]`, plus a cursor so a short write can be resumed.
///
/// The bytes sent are `[consumed..len]`; after a short write, [`advance`](Self::advance) by
/// the count and submit the same `WriteBuf` again.
///
/// # Examples
/// ```
/// use fio_ring::WriteBuf;
/// let mut buf = WriteBuf::from(b"hello".to_vec());
/// buf.advance(2);
/// assert_eq!(&*buf, b"llo");
/// assert_eq!(buf.remaining(), 3);
/// ```
pub struct WriteBuf {
    source: Source,
    consumed: usize,
}

impl WriteBuf {
    /// Bytes not yet written.
    pub fn remaining(&self) -> usize {
        self.all().len() - self.consumed
    }

    /// Whether every byte has been written.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Marks `count` more bytes as written (clamped to what remains).
    #[inline]
    pub fn advance(&mut self, count: usize) {
        self.consumed = (self.consumed + count).min(self.all().len());
    }

    /// The pooled buffer, if this wraps one (the cursor is dropped).
    pub fn into_buffer(self) -> Option<Buffer> {
        match self.source {
            Source::Pooled(buffer) => Some(buffer),
            _ => None,
        }
    }

    /// The vector, if this wraps one (the cursor is dropped).
    pub fn into_vec(self) -> Option<Vec<u8>> {
        match self.source {
            Source::Vec(vec) => Some(vec),
            _ => None,
        }
    }

    /// The storage this owns and a queue lends by move: a pooled buffer as
    /// [`Chunk::Buffer`], a vector as [`Chunk::Vec`] (the cursor is dropped). Shared and
    /// static bytes give `None`: they were clones, the queue kept the originals.
    ///
    /// # Examples
    /// ```
    /// use fio_ring::WriteBuf;
    /// let mut buf = WriteBuf::from(b"hello".to_vec());
    /// buf.advance(2);
    /// // The whole vector comes back, whatever the cursor.
    /// let owned = buf.into_owned_chunk().expect("a vector is owned");
    /// assert_eq!(owned.bytes(), b"hello");
    /// assert!(WriteBuf::from(&b"static"[..]).into_owned_chunk().is_none());
    /// ```
    #[inline]
    pub fn into_owned_chunk(self) -> Option<Chunk> {
        match self.source {
            Source::Pooled(buffer) => Some(Chunk::Buffer(buffer)),
            Source::Vec(vec) => Some(Chunk::Vec(vec)),
            Source::Shared(_) | Source::Static(_) => None,
        }
    }

    #[inline]
    fn all(&self) -> &[u8] {
        match &self.source {
            Source::Pooled(buffer) => buffer,
            Source::Shared(shared) => shared,
            Source::Vec(vec) => vec,
            Source::Static(bytes) => bytes,
        }
    }

    /// The unwritten bytes' address and length (capped at `u32::MAX`).
    ///
    /// Always inlined: every send builds its entry from it, and as a call of its own (which
    /// `#[inline]` left it across crates) the call cost half as much as the body.
    #[inline(always)]
    pub(crate) fn pending(&self) -> (*const u8, u32) {
        let pending = &self.all()[self.consumed..];
        (pending.as_ptr(), clamp_len(pending.len()))
    }
}

impl Deref for WriteBuf {
    type Target = [u8];

    /// The bytes not yet written.
    fn deref(&self) -> &[u8] {
        &self.all()[self.consumed..]
    }
}

impl From<Buffer> for WriteBuf {
    #[inline]
    fn from(buffer: Buffer) -> Self {
        Self {
            source: Source::Pooled(buffer),
            consumed: 0,
        }
    }
}

impl From<SharedBuffer> for WriteBuf {
    fn from(shared: SharedBuffer) -> Self {
        Self {
            source: Source::Shared(shared),
            consumed: 0,
        }
    }
}

impl From<Vec<u8>> for WriteBuf {
    fn from(vec: Vec<u8>) -> Self {
        Self {
            source: Source::Vec(vec),
            consumed: 0,
        }
    }
}

impl From<&'static [u8]> for WriteBuf {
    fn from(bytes: &'static [u8]) -> Self {
        Self {
            source: Source::Static(bytes),
            consumed: 0,
        }
    }
}

impl From<&'static str> for WriteBuf {
    fn from(text: &'static str) -> Self {
        Self::from(text.as_bytes())
    }
}

impl fmt::Debug for WriteBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.source {
            Source::Pooled(_) => "Pooled",
            Source::Shared(_) => "Shared",
            Source::Vec(_) => "Vec",
            Source::Static(_) => "Static",
        };
        f.debug_struct("WriteBuf")
            .field("kind", &kind)
            .field("consumed", &self.consumed)
            .field("remaining", &self.remaining())
            .finish()
    }
}

/// Lengths in submission entries are `u32`; longer buffers are submitted partially, which the
/// completion's byte count reports like any short transfer.
fn clamp_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A heap cell whose address the kernel holds while an operation is in flight.
///
/// A `Box<T>` asserts unique access whenever it is moved or passed by value, which is at odds
/// with the kernel holding a pointer to its contents. `KernelBox` keeps only a raw pointer, so
/// moving it says nothing about the pointee; it frees the cell on drop like a box.
pub(crate) struct KernelBox<T>(NonNull<T>);

impl<T> KernelBox<T> {
    /// Moves `value` to the heap.
    pub(crate) fn new(value: T) -> Self {
        Self(NonNull::from(Box::leak(Box::new(value))))
    }

    /// The cell's address, stable for the life of the `KernelBox`.
    pub(crate) fn as_ptr(&self) -> *mut T {
        self.0.as_ptr()
    }

    /// A copy of the value, for reading back what the kernel wrote.
    ///
    /// # Safety
    /// The kernel must be done with the cell: the operation that points at it has had its
    /// final completion (otherwise the read races the kernel's writes).
    pub(crate) unsafe fn read(&self) -> T
    where
        T: Copy,
    {
        // SAFETY: the pointer came from `Box::leak` and is live until drop; the caller
        // guarantees that nothing writes the cell concurrently.
        unsafe { self.0.as_ptr().read() }
    }

    /// Takes the value back once the kernel is done with it.
    pub(crate) fn into_inner(self) -> T {
        let this = ManuallyDrop::new(self);
        // SAFETY: the pointer came from `Box::leak` in `new`, and `this` is never dropped, so
        // ownership of the allocation passes to the box rebuilt here exactly once.
        let boxed = unsafe { Box::from_raw(this.0.as_ptr()) };
        *boxed
    }
}

impl<T> Drop for KernelBox<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `new` and is released only here or in
        // `into_inner` (which forgets `self`), so the allocation is freed exactly once.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

impl<T> fmt::Debug for KernelBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KernelBox({:p})", self.0)
    }
}

/// An `iovec` over `len` bytes at `ptr`.
pub(crate) fn iovec(ptr: *const u8, len: u32) -> libc::iovec {
    libc::iovec {
        iov_base: ptr.cast_mut().cast(),
        iov_len: len as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_buf_appends_into_spare_capacity() {
        let mut buf = IoBuf::from(Vec::with_capacity(8));
        let (_, spare) = buf.spare_mut();
        assert_eq!(spare, 8);
        buf.commit(3);
        assert_eq!(buf.len(), 3);
        let (_, spare) = buf.spare_mut();
        assert_eq!(spare, 5);
        buf.commit(100);
        assert_eq!(buf.len(), 8, "commit is clamped to the capacity");
    }

    #[test]
    fn write_buf_cursor() {
        let mut buf = WriteBuf::from("abcdef");
        assert_eq!(buf.pending().1, 6);
        buf.advance(4);
        assert_eq!(&*buf, b"ef");
        buf.advance(10);
        assert!(buf.is_empty());
        assert_eq!(buf.pending().1, 0);
    }

    #[test]
    fn kernel_box_round_trips() {
        let cell = KernelBox::new(41u64);
        // SAFETY: the cell is live and nothing else accesses it.
        unsafe { *cell.as_ptr() += 1 };
        assert_eq!(cell.into_inner(), 42);
        drop(KernelBox::new(String::from("freed on drop")));
    }
}
