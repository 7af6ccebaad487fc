//! [`SendQueue`]: the bytes a socket still has to send, in order, engine-neutral.
//!
//! The queue knows nothing about io_uring or about sockets: fio-socket's ring engine *lends*
//! the front chunks to one send operation and gets them back with the count sent, the
//! reactor's epoll engine borrows them as [`IoSlice`]s for `writev(2)`. Both then
//! [`advance`](SendQueue::advance) by the count the kernel reported, so a short send continues
//! from the first unsent byte.
//!
//! Lending is what keeps the ring engine free of copies and of loss: pooled payloads are held
//! as [`SharedBuffer`]s and static slices are `Copy`, so lending them hands the operation a
//! cheap clone while the queue keeps the original; a `Vec<u8>` cannot be cloned cheaply, so
//! it moves into the operation and its slot records only its length until
//! [`finish`](SendQueue::finish) puts it back. [`lend_moving_into`](SendQueue::lend_moving_into)
//! moves pooled [`Buffer`]s the same way, for a send that gives its buffers back on its one
//! completion: no shared handle, no clone, and a fully sent buffer can become a spare
//! ([`finish_recycling`](SendQueue::finish_recycling)). The usual send, of a stream's only
//! queued chunk, moves nothing at all: [`lend_pinned`](SendQueue::lend_pinned) leaves the chunk
//! in its slot and hands the operation a [`SendPin`] on its unsent bytes, which the queue keeps
//! valid until the pin comes back. At most one send is lent at a time.

use std::collections::VecDeque;
use std::fmt;
use std::io::IoSlice;
use std::mem;
use std::net::SocketAddr;

use crate::{Buffer, BufferPool, SharedBuffer, SpareBuffers};

/// One piece of outgoing data.
///
/// # Examples
/// ```
/// use fio_buffer::Chunk;
/// let chunk = Chunk::from(&b"hello"[..]);
/// assert_eq!(chunk.len(), 5);
/// ```
pub enum Chunk {
    /// A pooled buffer handed over without copying; the queue turns it into a
    /// [`SharedBuffer`] (no allocation) so it can be lent to the kernel.
    Buffer(Buffer),
    /// A shared pooled payload, for one payload sent to several peers.
    Shared(SharedBuffer),
    /// An owned vector.
    Vec(Vec<u8>),
    /// Static bytes (a fixed response, a protocol preamble).
    Static(&'static [u8]),
}

impl Chunk {
    /// The chunk's length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether the chunk holds no byte.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chunk's bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Buffer(buffer) => buffer,
            Chunk::Shared(shared) => shared,
            Chunk::Vec(vec) => vec,
            Chunk::Static(bytes) => bytes,
        }
    }

    /// Whether the chunk lives in a buffer pool (zero-copy sends only pin pool memory or
    /// static bytes, whose addresses are stable for as long as a handle lives).
    pub fn is_pinned(&self) -> bool {
        !matches!(self, Chunk::Vec(_))
    }
}

impl From<Buffer> for Chunk {
    fn from(buffer: Buffer) -> Self {
        Chunk::Buffer(buffer)
    }
}

impl From<SharedBuffer> for Chunk {
    fn from(shared: SharedBuffer) -> Self {
        Chunk::Shared(shared)
    }
}

impl From<Vec<u8>> for Chunk {
    fn from(vec: Vec<u8>) -> Self {
        Chunk::Vec(vec)
    }
}

impl From<&'static [u8]> for Chunk {
    fn from(bytes: &'static [u8]) -> Self {
        Chunk::Static(bytes)
    }
}

impl From<&'static str> for Chunk {
    fn from(text: &'static str) -> Self {
        Chunk::Static(text.as_bytes())
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Chunk::Buffer(_) => "Buffer",
            Chunk::Shared(_) => "Shared",
            Chunk::Vec(_) => "Vec",
            Chunk::Static(_) => "Static",
        };
        write!(f, "Chunk::{kind}({} bytes)", self.len())
    }
}

/// What a queue slot holds.
enum Stored {
    Held(Chunk),
    /// A `Vec` (or, lent by move, a `Buffer`) moved into the send in flight; only its length
    /// stays behind.
    Lent(usize),
}

impl Stored {
    #[inline]
    fn len(&self) -> usize {
        match self {
            Stored::Held(chunk) => chunk.len(),
            Stored::Lent(len) => *len,
        }
    }
}

/// One queued chunk and, for datagrams, where its message goes.
struct Item {
    stored: Stored,
    /// The destination of the message this chunk belongs to (unconnected datagrams).
    to: Option<SocketAddr>,
    /// Whether this chunk ends a message (datagram sockets send one message per operation).
    ends_message: bool,
}

/// The front chunks handed to one send operation by [`SendQueue::lend`].
#[derive(Debug)]
pub struct Lent {
    /// The chunks, in queue order. Pooled and static chunks are clones (the queue keeps the
    /// originals); `Vec` chunks moved out and must come back through [`SendQueue::finish`].
    pub chunks: Vec<Chunk>,
    /// Bytes of the first chunk already sent: the operation must skip them.
    pub offset: usize,
    /// The destination of a datagram.
    pub to: Option<SocketAddr>,
}

/// The unsent bytes of a queued chunk that a send reads in place, from
/// [`SendQueue::lend_pinned`].
///
/// The queue keeps the chunk where it is, unchanged, for as long as the pin is out: only
/// [`SendQueue::finish_pinned`], given the pin back, lets it go. A queue cleared meanwhile
/// parks the chunk until then, and a queue dropped with a pin out leaks it, so the bytes stay
/// valid however the pin ends. That is what lets a ring operation hold a pin instead of the
/// chunk itself: nothing moves out of the queue and back per send.
///
/// # Examples
/// ```
/// use fio_buffer::{Chunk, SendQueue};
/// let mut queue = SendQueue::new(1 << 20);
/// queue.push(Chunk::from(b"hello".to_vec()));
/// let pin = queue.lend_pinned().expect("one owned chunk, nothing in flight");
/// assert_eq!(pin.len(), 5);
/// ```
pub struct SendPin {
    /// The first unsent byte.
    ptr: *const u8,
    len: usize,
}

impl SendPin {
    /// The address of the first pinned byte; the `len` bytes from it stay valid and unchanged
    /// for as long as the pin lives.
    #[inline]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// The bytes pinned: the unsent bytes of the chunk when it was lent.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is pinned.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for SendPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SendPin({:p}, {} bytes)", self.ptr, self.len)
    }
}

/// An ordered queue of outgoing chunks with a cursor into the front one.
///
/// # Examples
/// ```
/// use fio_buffer::{Chunk, SendQueue};
/// let mut queue = SendQueue::new(1 << 20);
/// queue.push(Chunk::from(&b"hello "[..]));
/// queue.push(Chunk::from(b"world".to_vec()));
/// let lent = queue.lend(8).expect("nothing is in flight");
/// assert_eq!(lent.chunks.len(), 2);
/// // The kernel took 8 bytes: the queue gets the vector back and keeps "rld".
/// let vecs = lent.chunks.into_iter().filter_map(|chunk| match chunk {
///     Chunk::Vec(vec) => Some(vec),
///     _ => None,
/// });
/// assert!(queue.finish(8, vecs));
/// assert_eq!(queue.len(), 3);
/// ```
pub struct SendQueue {
    items: VecDeque<Item>,
    /// Bytes of the front chunk already sent.
    offset: usize,
    /// Unsent bytes over every chunk.
    bytes: usize,
    /// Front chunks lent to the send in flight (0 when none is).
    lent: usize,
    /// How many of the lent chunks moved into the send (0: the case of shared and static
    /// chunks only, whose completion has nothing to put back).
    lent_moved: usize,
    /// Above this many queued bytes, writers should wait until the queue drains (fio-socket
    /// reports that as its `Event::Drained`, the reactor as `on_ready`).
    soft_limit: usize,
    /// The address of the [`SendPin`] out, 0 when none is: the front chunk's unsent bytes, or
    /// those of `parked`.
    pinned_at: usize,
    /// The pinned chunk, when it left the queue (cleared, or advanced past) before its pin
    /// came back. Boxed: it is rare (an abort during a send), and every connection's queue
    /// is smaller for it.
    parked: Option<Box<Chunk>>,
}

impl SendQueue {
    /// An empty queue whose writers are asked to wait above `soft_limit` queued bytes.
    pub fn new(soft_limit: usize) -> Self {
        Self {
            items: VecDeque::new(),
            offset: 0,
            bytes: 0,
            lent: 0,
            lent_moved: 0,
            soft_limit,
            pinned_at: 0,
            parked: None,
        }
    }

    /// Appends `chunk` to a byte stream (empty chunks are dropped).
    pub fn push(&mut self, chunk: Chunk) {
        if chunk.is_empty() {
            return;
        }
        self.bytes += chunk.len();
        self.items.push_back(Item {
            stored: Stored::Held(share(chunk)),
            to: None,
            ends_message: true,
        });
    }

    /// Appends a copy of `data` to a byte stream: into the spare room of the last queued
    /// pooled buffer when it is still open (filled by an earlier copy and not yet lent to a
    /// send), then into new buffers taken from `pool`. Small writes made during one tick
    /// thus gather into one buffer, and queueing allocates nothing once the pool is warm.
    ///
    /// # Errors
    /// - the pool's error when it can't supply a buffer; nothing is queued then (the bytes
    ///   already copied are taken back), so the stream stays intact.
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig, SendQueue};
    /// let pool = BufferPool::new(PoolConfig::new(4096))?;
    /// let mut queue = SendQueue::new(1 << 20);
    /// queue.push_copy(b"hello ", &pool)?;
    /// queue.push_copy(b"world", &pool)?;
    /// assert_eq!((queue.len(), queue.chunks()), (11, 1));
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    pub fn push_copy(&mut self, data: &[u8], pool: &BufferPool) -> Result<(), crate::Error> {
        self.push_copy_with(data, || pool.take())
    }

    /// [`push_copy`](Self::push_copy) taking new buffers from `spares` (then its pool), so a
    /// loop that gives sent buffers back ([`advance_recycling`](Self::advance_recycling))
    /// queues its replies without a trip through the pool.
    ///
    /// # Errors
    /// - as [`push_copy`](Self::push_copy).
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig, SendQueue, SpareBuffers};
    /// let mut spares = SpareBuffers::new(BufferPool::new(PoolConfig::new(4096))?, 4);
    /// let mut queue = SendQueue::new(1 << 20);
    /// queue.push_copy_from(b"hello ", &mut spares)?;
    /// queue.push_copy_from(b"world", &mut spares)?;
    /// assert_eq!((queue.len(), queue.chunks()), (11, 1));
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn push_copy_from(
        &mut self,
        data: &[u8],
        spares: &mut SpareBuffers,
    ) -> Result<(), crate::Error> {
        // The usual copy (a reply per request, into an idle queue or behind a lent send): one
        // fresh buffer takes it whole, with none of the general path's appending or undoing.
        if !data.is_empty() && !self.has_open_tail() {
            let mut buffer = spares.take()?;
            if data.len() <= buffer.capacity() {
                buffer.extend_from_slice(data);
                self.items.push_back(Item {
                    stored: Stored::Held(Chunk::Buffer(buffer)),
                    to: None,
                    ends_message: true,
                });
                self.bytes += data.len();
                return Ok(());
            }
            spares.give(buffer);
        }
        self.push_copy_with(data, || spares.take())
    }

    /// Whether the last queued chunk is a pooled buffer still open for copies (filled by
    /// [`push_copy`](Self::push_copy) and not lent).
    #[inline]
    fn has_open_tail(&self) -> bool {
        self.items.len() > self.lent
            && matches!(
                self.items.back(),
                Some(Item {
                    stored: Stored::Held(Chunk::Buffer(_)),
                    ..
                })
            )
    }

    /// [`push_copy`](Self::push_copy) with new buffers from `take`.
    #[inline]
    fn push_copy_with(
        &mut self,
        data: &[u8],
        mut take: impl FnMut() -> Result<Buffer, crate::Error>,
    ) -> Result<(), crate::Error> {
        if data.is_empty() {
            return Ok(());
        }
        let items_before = self.items.len();
        let mut rest = data;
        let mut tail_before = None;
        if self.items.len() > self.lent
            && let Some(Item {
                stored: Stored::Held(Chunk::Buffer(tail)),
                ..
            }) = self.items.back_mut()
        {
            tail_before = Some(tail.len());
            let copied = tail.extend_from_slice(rest);
            rest = &rest[copied..];
        }
        while !rest.is_empty() {
            let mut buffer = match take() {
                Ok(buffer) => buffer,
                Err(error) => {
                    // All or nothing: take back what this call queued.
                    self.items.truncate(items_before);
                    if let (
                        Some(len),
                        Some(Item {
                            stored: Stored::Held(Chunk::Buffer(tail)),
                            ..
                        }),
                    ) = (tail_before, self.items.back_mut())
                    {
                        tail.set_len(len);
                    }
                    return Err(error);
                }
            };
            let copied = buffer.extend_from_slice(rest);
            rest = &rest[copied..];
            self.items.push_back(Item {
                stored: Stored::Held(Chunk::Buffer(buffer)),
                to: None,
                ends_message: true,
            });
        }
        self.bytes += data.len();
        Ok(())
    }

    /// Appends one message made of `chunks` (possibly empty: an empty datagram is valid),
    /// sent to `to` when given.
    pub fn push_message(
        &mut self,
        chunks: impl IntoIterator<Item = Chunk>,
        to: Option<SocketAddr>,
    ) {
        let start = self.items.len();
        for chunk in chunks {
            self.bytes += chunk.len();
            self.items.push_back(Item {
                stored: Stored::Held(share(chunk)),
                to,
                ends_message: false,
            });
        }
        if self.items.len() == start {
            self.items.push_back(Item {
                stored: Stored::Held(Chunk::Static(&[])),
                to,
                ends_message: true,
            });
        } else if let Some(last) = self.items.back_mut() {
            last.ends_message = true;
        }
    }

    /// Inserts `chunk` ahead of everything not yet started: right after the chunks of the
    /// send in flight, or after a partly sent front chunk, so no byte stream is split.
    pub fn push_urgent(&mut self, chunk: Chunk) {
        if chunk.is_empty() {
            return;
        }
        let index = self
            .lent
            .max(usize::from(self.offset > 0 || self.front_pinned()))
            .min(self.items.len());
        self.bytes += chunk.len();
        self.items.insert(
            index,
            Item {
                stored: Stored::Held(share(chunk)),
                to: None,
                ends_message: true,
            },
        );
    }

    /// Unsent bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is left to send (a queued empty datagram still counts as something).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Queued chunks, including the partly sent front one.
    pub fn chunks(&self) -> usize {
        self.items.len()
    }

    /// Whether a send operation holds the front chunks.
    #[inline]
    pub fn is_lent(&self) -> bool {
        self.lent > 0
    }

    /// Unsent bytes of the chunks lent to the send in flight: what it was asked to send.
    pub fn lent_len(&self) -> usize {
        match self.lent {
            0 => 0,
            // The usual send: one chunk, net of the cursor.
            1 => self
                .items
                .front()
                .map_or(0, |item| item.stored.len() - self.offset),
            lent => self.pending_lens().take(lent).sum(),
        }
    }

    /// The soft limit in bytes.
    pub fn soft_limit(&self) -> usize {
        self.soft_limit
    }

    /// Whether the queue holds at least its soft limit: writers should wait for a drain.
    #[inline]
    pub fn is_over_soft_limit(&self) -> bool {
        self.bytes >= self.soft_limit
    }

    /// The unsent length of each chunk from the front (the first one net of the cursor).
    pub fn pending_lens(&self) -> impl Iterator<Item = usize> + '_ {
        self.items
            .iter()
            .enumerate()
            .map(|(index, item)| item.stored.len() - if index == 0 { self.offset } else { 0 })
    }

    /// The destination of the front message (message mode); `None` for a connected peer, a
    /// stream, or an empty queue.
    pub fn front_destination(&self) -> Option<SocketAddr> {
        self.items.front().and_then(|item| item.to)
    }

    /// How many front chunks make up the first message.
    pub fn front_message_chunks(&self) -> usize {
        self.items
            .iter()
            .position(|item| item.ends_message)
            .map_or(self.items.len(), |index| index + 1)
    }

    /// The unsent bytes of the queue's only chunk, when it holds exactly one and no send is
    /// lent: what one plain `send(2)` can take, without building a gather list. `None` when
    /// the queue is empty, holds several chunks, or is lent.
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{Chunk, SendQueue};
    /// let mut queue = SendQueue::new(1 << 20);
    /// assert_eq!(queue.only_chunk(), None);
    /// queue.push(Chunk::Static(b"hello"));
    /// queue.advance(1);
    /// assert_eq!(queue.only_chunk(), Some(&b"ello"[..]));
    /// queue.push(Chunk::Static(b"!"));
    /// assert_eq!(queue.only_chunk(), None);
    /// ```
    #[inline]
    pub fn only_chunk(&self) -> Option<&[u8]> {
        if self.lent > 0 || self.pinned_at != 0 || self.items.len() != 1 {
            return None;
        }
        match &self.items.front()?.stored {
            Stored::Held(chunk) => chunk.bytes().get(self.offset..),
            Stored::Lent(_) => None,
        }
    }

    /// Borrows up to `limit` front chunks' unsent bytes for a vectored write (the epoll
    /// engine's `writev`), appending them to `out`. Borrows nothing while a send is lent.
    pub fn io_slices<'a>(&'a self, limit: usize, out: &mut Vec<IoSlice<'a>>) {
        if self.lent > 0 {
            return;
        }
        for (index, item) in self.items.iter().take(limit).enumerate() {
            let Stored::Held(chunk) = &item.stored else {
                return;
            };
            let skip = if index == 0 { self.offset } else { 0 };
            out.push(IoSlice::new(&chunk.bytes()[skip..]));
        }
    }

    /// Lends the first `count` chunks (at least one, when any is queued) to a send
    /// operation. Returns `None` when the queue is empty or a send is already lent: at most
    /// one send is in flight per queue.
    pub fn lend(&mut self, count: usize) -> Option<Lent> {
        let mut chunks = Vec::new();
        let (offset, to) = self.lend_into(count, &mut chunks)?;
        Some(Lent { chunks, offset, to })
    }

    /// [`lend`](Self::lend) into `chunks` (cleared first), whose capacity a caller can reuse
    /// from send to send; returns the offset into the first chunk and the destination.
    pub fn lend_into(
        &mut self,
        count: usize,
        chunks: &mut Vec<Chunk>,
    ) -> Option<(usize, Option<SocketAddr>)> {
        self.lend_with(count, chunks, false)
    }

    /// [`lend_into`](Self::lend_into), moving pooled [`Buffer`] chunks into the send as it
    /// moves `Vec`s, instead of sharing them and lending a clone. For a send that gives every
    /// moved chunk back with its one completion ([`finish_recycling`](Self::finish_recycling)
    /// or, when no copy was queued, [`finish`](Self::finish)); a send that keeps its buffers past its
    /// completion (zero-copy) must use [`lend`](Self::lend).
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{BufferPool, Chunk, PoolConfig, SendQueue, SpareBuffers};
    /// let mut spares = SpareBuffers::new(BufferPool::new(PoolConfig::new(4096))?, 4);
    /// let mut queue = SendQueue::new(1 << 20);
    /// queue.push_copy_from(b"pong", &mut spares)?;
    /// let mut chunks = Vec::new();
    /// assert_eq!(queue.lend_moving_into(8, &mut chunks), Some((0, None)));
    /// assert!(matches!(chunks[..], [Chunk::Buffer(_)]), "moved, not shared");
    /// // The send took all 4 bytes and gave its buffer back: it is a spare again.
    /// assert!(queue.finish_recycling(4, chunks.drain(..), &mut spares));
    /// assert!(queue.is_empty());
    /// assert_eq!(spares.len(), 1);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn lend_moving_into(
        &mut self,
        count: usize,
        chunks: &mut Vec<Chunk>,
    ) -> Option<(usize, Option<SocketAddr>)> {
        self.lend_with(count, chunks, true)
    }

    /// Lends the front chunk's unsent bytes in place, for the usual send (a stream's next
    /// chunk): the chunk stays in its slot and the operation holds only the returned pin, to
    /// give back with its completion ([`finish_pinned`](Self::finish_pinned)). `None` when the
    /// queue is empty, a send is lent, or the front chunk is not an owned one (a pooled
    /// [`Buffer`] or a `Vec`) or belongs to an addressed datagram.
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig, SendQueue, SpareBuffers};
    /// let mut spares = SpareBuffers::new(BufferPool::new(PoolConfig::new(4096))?, 4);
    /// let mut queue = SendQueue::new(1 << 20);
    /// queue.push_copy_from(b"pong", &mut spares)?;
    /// let pin = queue.lend_pinned().expect("one chunk, nothing in flight");
    /// assert!(queue.lend_pinned().is_none(), "already lent");
    /// // The send took all 4 bytes: the buffer leaves the queue and is a spare again.
    /// assert!(queue.finish_pinned(pin, 4, &mut spares));
    /// assert!(queue.is_empty());
    /// assert_eq!(spares.len(), 1);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn lend_pinned(&mut self) -> Option<SendPin> {
        if self.lent > 0 || self.pinned_at != 0 {
            return None;
        }
        let item = self.items.front()?;
        // Only memory the queue owns alone is pinned, so no other queue's pin can have the
        // same address (shared and static chunks are lent as clones instead).
        let Stored::Held(chunk @ (Chunk::Buffer(_) | Chunk::Vec(_))) = &item.stored else {
            return None;
        };
        if item.to.is_some() {
            return None;
        }
        let pending = chunk.bytes().get(self.offset..)?;
        let pin = SendPin {
            ptr: pending.as_ptr(),
            len: pending.len(),
        };
        self.pinned_at = pin.ptr as usize;
        self.lent = 1;
        self.lent_moved = 0;
        Some(pin)
    }

    /// Ends the send of a [`lend_pinned`](Self::lend_pinned) pin: advances past the `sent`
    /// bytes, the chunk keeping its slot after a short send, and a fully sent copy's buffer
    /// becoming a spare. Returns `false` when the pin is not this queue's (nothing changes).
    /// After a [`clear`](Self::clear) the parked chunk is let go and nothing else changes.
    #[inline]
    pub fn finish_pinned(&mut self, pin: SendPin, sent: usize, spares: &mut SpareBuffers) -> bool {
        if self.pinned_at != pin.ptr as usize || self.pinned_at == 0 {
            return false;
        }
        self.pinned_at = 0;
        if let Some(parked) = self.parked.take() {
            recycle(*parked, spares);
            return true;
        }
        self.lent = 0;
        let sent = sent.min(pin.len);
        // The usual completion: the whole chunk went, it leaves the queue.
        if sent == pin.len {
            self.offset = 0;
            self.bytes -= sent;
            if let Some(Item {
                stored: Stored::Held(chunk),
                ..
            }) = self.items.pop_front()
            {
                recycle(chunk, spares);
            }
            return true;
        }
        self.advance_recycling(sent, spares);
        true
    }

    /// Keeps the pinned chunk out of the queue until its pin comes back. Only a misuse (a
    /// pinned chunk advanced past, twice) finds one parked already: it is leaked, as its pin
    /// may still be out.
    #[cold]
    fn park(&mut self, chunk: Chunk) {
        if let Some(older) = self.parked.replace(Box::new(chunk)) {
            mem::forget(older);
        }
    }

    /// The pinned bytes while the pinned chunk is the front one (tests).
    #[cfg(test)]
    fn only_pinned(&self) -> Option<&[u8]> {
        match &self.items.front()?.stored {
            Stored::Held(chunk) if self.front_pinned() => chunk.bytes().get(self.offset..),
            _ => None,
        }
    }

    /// Whether the front chunk is the pinned one, still in the queue.
    #[inline]
    fn front_pinned(&self) -> bool {
        self.pinned_at != 0 && self.parked.is_none()
    }

    /// [`lend_into`](Self::lend_into), moving `Buffer`s when `move_buffers`.
    #[inline]
    fn lend_with(
        &mut self,
        count: usize,
        chunks: &mut Vec<Chunk>,
        move_buffers: bool,
    ) -> Option<(usize, Option<SocketAddr>)> {
        chunks.clear();
        if self.lent > 0 || self.pinned_at != 0 || self.items.is_empty() {
            return None;
        }
        // The usual send (a reply per request): one queued copy, moved. No loop, and no
        // destination to look up (a stream has none).
        if move_buffers
            && (count <= 1 || self.items.len() == 1)
            && let Some(item) = self.items.front_mut()
            && let Stored::Held(Chunk::Buffer(_) | Chunk::Vec(_)) = item.stored
            && item.to.is_none()
        {
            let len = item.stored.len();
            if let Stored::Held(chunk) = std::mem::replace(&mut item.stored, Stored::Lent(len)) {
                chunks.push(chunk);
                self.lent = 1;
                self.lent_moved = 1;
                return Some((self.offset, None));
            }
        }
        let count = count.clamp(1, self.items.len());
        let to = self.items.front().and_then(|item| item.to);
        let mut moved = 0;
        for item in self.items.iter_mut().take(count) {
            // A buffer still open for copies is closed now: the send holds a clone.
            if !move_buffers
                && let Stored::Held(Chunk::Buffer(_)) = item.stored
                && let Stored::Held(open) = std::mem::replace(&mut item.stored, Stored::Lent(0))
            {
                item.stored = Stored::Held(share(open));
            }
            let chunk = match &mut item.stored {
                Stored::Held(Chunk::Vec(_) | Chunk::Buffer(_)) => {
                    moved += 1;
                    let len = item.stored.len();
                    match std::mem::replace(&mut item.stored, Stored::Lent(len)) {
                        Stored::Held(chunk) => chunk,
                        Stored::Lent(_) => Chunk::Vec(Vec::new()),
                    }
                }
                Stored::Held(Chunk::Shared(shared)) => Chunk::Shared(shared.clone()),
                Stored::Held(Chunk::Static(bytes)) => Chunk::Static(bytes),
                Stored::Lent(_) => break,
            };
            chunks.push(chunk);
        }
        if chunks.is_empty() {
            return None;
        }
        self.lent = chunks.len();
        self.lent_moved = moved;
        Some((self.offset, to))
    }

    /// Ends the lent send: puts the `Vec` chunks the operation gives back (in order) into
    /// their slots, then advances past the `sent` bytes. Returns `false` when fewer vectors
    /// came back than were lent; those slots can no longer be sent and the caller must treat
    /// the stream as broken (only a ring that lost an operation's buffers could cause it).
    pub fn finish(&mut self, sent: usize, returned: impl IntoIterator<Item = Vec<u8>>) -> bool {
        let complete = self.restore(returned.into_iter().map(Chunk::Vec));
        self.lent = 0;
        self.lent_moved = 0;
        self.advance(sent);
        complete
    }

    /// [`finish`](Self::finish) for a send lent by
    /// [`lend_moving_into`](Self::lend_moving_into): puts the moved chunks it gives back (in
    /// order) into their slots, then advances past the `sent` bytes keeping fully sent
    /// copies' buffers as `spares` ([`advance_recycling`](Self::advance_recycling)).
    pub fn finish_recycling(
        &mut self,
        sent: usize,
        returned: impl IntoIterator<Item = Chunk>,
        spares: &mut SpareBuffers,
    ) -> bool {
        let mut returned = returned.into_iter();
        // The usual completion (a reply per request): one moved chunk, sent whole. It leaves
        // the queue and its buffer goes straight to the spares, without being put back into
        // its slot first only to be taken out again.
        if self.lent == 1
            && self.lent_moved == 1
            && let Some(Item {
                stored: Stored::Lent(len),
                ..
            }) = self.items.front()
            && sent == len - self.offset
        {
            let len = *len;
            match returned.next() {
                Some(Chunk::Buffer(buffer)) if buffer.len() == len => spares.give(buffer),
                Some(Chunk::Vec(vec)) if vec.len() == len => drop(vec),
                other => {
                    return self.finish_restoring(sent, other.into_iter().chain(returned), spares);
                }
            }
            self.items.pop_front();
            self.offset = 0;
            self.bytes -= sent;
            self.lent = 0;
            self.lent_moved = 0;
            return true;
        }
        self.finish_restoring(sent, returned, spares)
    }

    /// [`finish_recycling`](Self::finish_recycling) in general: every returned chunk back
    /// into its slot, then the queue advanced. Never inlined, so the usual completion's fast
    /// path stays small.
    #[inline(never)]
    fn finish_restoring(
        &mut self,
        sent: usize,
        returned: impl Iterator<Item = Chunk>,
        spares: &mut SpareBuffers,
    ) -> bool {
        let complete = self.restore(returned);
        self.lent = 0;
        self.lent_moved = 0;
        self.advance_recycling(sent, spares);
        complete
    }

    /// Ends the lent send of a whole message, sent or failed: drops its chunks. Returns the
    /// bytes dropped.
    pub fn finish_message(&mut self) -> usize {
        // Without a lent send (a synchronous `sendmsg`), the whole front message went.
        let whole = self.front_message_chunks();
        let count = if self.lent == 0 {
            whole
        } else {
            self.lent.min(whole)
        };
        self.lent = 0;
        self.lent_moved = 0;
        let mut dropped = 0;
        for _ in 0..count {
            let pinned = self.front_pinned();
            if let Some(item) = self.items.pop_front() {
                dropped += item.stored.len() - self.offset;
                self.offset = 0;
                if pinned && let Stored::Held(chunk) = item.stored {
                    self.park(chunk);
                }
            }
        }
        self.bytes -= dropped;
        dropped
    }

    /// Marks `count` more bytes as sent, dropping the chunks fully sent (clamped to what is
    /// queued). Must not be called while a send is lent (use [`finish`](Self::finish)).
    #[inline]
    pub fn advance(&mut self, count: usize) {
        self.advance_with(count, drop);
    }

    /// [`advance`](Self::advance), keeping the buffers of fully sent copies
    /// ([`push_copy`](Self::push_copy)) as `spares` instead of giving them back to the pool.
    /// Shared, owned and static chunks are dropped as `advance` drops them.
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig, SendQueue, SpareBuffers};
    /// let pool = BufferPool::new(PoolConfig::new(4096))?;
    /// let mut spares = SpareBuffers::new(pool.clone(), 4);
    /// let mut queue = SendQueue::new(1 << 20);
    /// queue.push_copy_from(b"pong", &mut spares)?;
    /// queue.advance_recycling(4, &mut spares);
    /// assert!(queue.is_empty());
    /// assert_eq!(spares.len(), 1, "the sent copy's buffer is a spare again");
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn advance_recycling(&mut self, count: usize, spares: &mut SpareBuffers) {
        self.advance_with(count, |chunk| {
            if let Chunk::Buffer(buffer) = chunk {
                spares.give(buffer);
            }
        });
    }

    /// [`advance`](Self::advance), handing each fully sent held chunk to `sent`.
    #[inline]
    fn advance_with(&mut self, count: usize, mut sent: impl FnMut(Chunk)) {
        let mut left = count.min(self.bytes);
        self.bytes -= left;
        while left > 0 {
            let Some(front) = self.items.front() else {
                break;
            };
            let pending = front.stored.len() - self.offset;
            if left < pending {
                self.offset += left;
                return;
            }
            left -= pending;
            self.offset = 0;
            let pinned = self.front_pinned();
            if let Some(Item {
                stored: Stored::Held(chunk),
                ..
            }) = self.items.pop_front()
            {
                if pinned {
                    self.park(chunk);
                } else {
                    sent(chunk);
                }
            }
        }
    }

    /// Drops everything (an abortive close), including the slots of a lent send whose
    /// completion will then be ignored. Returns the bytes dropped.
    pub fn clear(&mut self) -> usize {
        let dropped = self.bytes;
        if self.front_pinned()
            && let Some(Item {
                stored: Stored::Held(chunk),
                ..
            }) = self.items.pop_front()
        {
            self.park(chunk);
        }
        self.items.clear();
        self.offset = 0;
        self.bytes = 0;
        self.lent = 0;
        self.lent_moved = 0;
        dropped
    }

    /// Puts returned moved chunks into the lent slots, in order.
    fn restore(&mut self, returned: impl IntoIterator<Item = Chunk>) -> bool {
        // Shared and static chunks were lent as clones: no slot waits for anything.
        if self.lent_moved == 0 {
            return true;
        }
        let mut returned = returned.into_iter();
        let mut complete = true;
        for item in self.items.iter_mut().take(self.lent) {
            if let Stored::Lent(len) = item.stored {
                match returned.next() {
                    Some(chunk @ (Chunk::Vec(_) | Chunk::Buffer(_))) if chunk.len() == len => {
                        item.stored = Stored::Held(chunk);
                    }
                    _ => complete = false,
                }
            }
        }
        complete
    }
}

/// Lets a sent chunk go: a pooled buffer becomes a spare, anything else is dropped. Always
/// inlined: every reply's completion ends here, and the call copied the chunk once more.
#[inline(always)]
fn recycle(chunk: Chunk, spares: &mut SpareBuffers) {
    if let Chunk::Buffer(buffer) = chunk {
        spares.give(buffer);
    }
}

impl Drop for SendQueue {
    /// A pin still out (its send in flight as the socket goes away with its ring) may be read
    /// by the kernel later: its chunk is leaked rather than freed.
    fn drop(&mut self) {
        if self.pinned_at == 0 {
            return;
        }
        if let Some(parked) = self.parked.take() {
            mem::forget(parked);
        } else if let Some(front) = self.items.pop_front() {
            mem::forget(front);
        }
    }
}

/// Pooled buffers are queued as shared handles so a send can hold a clone.
fn share(chunk: Chunk) -> Chunk {
    match chunk {
        Chunk::Buffer(buffer) => Chunk::Shared(buffer.into_shared()),
        other => other,
    }
}

impl fmt::Debug for SendQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendQueue")
            .field("bytes", &self.bytes)
            .field("chunks", &self.items.len())
            .field("offset", &self.offset)
            .field("lent", &self.lent)
            .field("soft_limit", &self.soft_limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{BufferPool, PoolConfig};

    use super::*;

    /// Collects what a lent send would transmit, skipping the offset.
    fn flatten(lent: &Lent) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, chunk) in lent.chunks.iter().enumerate() {
            let skip = if index == 0 { lent.offset } else { 0 };
            out.extend_from_slice(&chunk.bytes()[skip..]);
        }
        out
    }

    fn vecs(lent: Lent) -> Vec<Vec<u8>> {
        lent.chunks
            .into_iter()
            .filter_map(|chunk| match chunk {
                Chunk::Vec(vec) => Some(vec),
                _ => None,
            })
            .collect()
    }

    /// Drains the queue by lending `limit` chunks at a time and sending `step` bytes of each
    /// send, as a kernel with short sends would; returns the byte stream produced.
    fn drain(queue: &mut SendQueue, limit: usize, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let Some(lent) = queue.lend(limit) else { break };
            let bytes = flatten(&lent);
            let sent = step.min(bytes.len());
            out.extend_from_slice(&bytes[..sent]);
            assert!(queue.finish(sent, vecs(lent)));
        }
        assert!(queue.is_empty());
        out
    }

    fn mixed_queue() -> (SendQueue, Vec<u8>) {
        let pool = BufferPool::new(PoolConfig::new(64)).unwrap();
        let mut queue = SendQueue::new(1 << 20);
        let mut expected = Vec::new();
        for round in 0..20u8 {
            let mut buffer = pool.take().unwrap();
            buffer.extend_from_slice(&[round; 37]);
            expected.extend_from_slice(&[round; 37]);
            queue.push(Chunk::Buffer(buffer));
            queue.push(Chunk::Vec(vec![round.wrapping_add(100); 11]));
            expected.extend_from_slice(&[round.wrapping_add(100); 11]);
            queue.push(Chunk::Static(b"static"));
            expected.extend_from_slice(b"static");
        }
        (queue, expected)
    }

    #[test]
    fn short_sends_continue_from_the_first_unsent_byte() {
        for (limit, step) in [(1, 1), (3, 5), (4, 50), (64, 7), (64, 100_000)] {
            let (mut queue, expected) = mixed_queue();
            assert_eq!(queue.len(), expected.len());
            assert_eq!(
                drain(&mut queue, limit, step),
                expected,
                "limit {limit} step {step}"
            );
            assert_eq!(queue.len(), 0);
        }
    }

    #[test]
    fn only_one_send_is_lent_at_a_time() {
        let (mut queue, _) = mixed_queue();
        let lent = queue.lend(2).unwrap();
        assert!(queue.is_lent());
        assert!(queue.lend(2).is_none());
        let mut slices = Vec::new();
        queue.io_slices(8, &mut slices);
        assert!(slices.is_empty(), "a lent queue lends nothing to writev");
        assert!(queue.finish(0, vecs(lent)));
        assert!(queue.lend(2).is_some());
    }

    #[test]
    fn lent_len_counts_the_lent_chunks_net_of_the_cursor() {
        let mut queue = SendQueue::new(100);
        assert_eq!(queue.lent_len(), 0);
        queue.push(Chunk::Static(b"hello"));
        queue.push(Chunk::Vec(b"world".to_vec()));
        queue.advance(2);
        let lent = queue.lend(1).unwrap();
        assert_eq!(queue.lent_len(), 3, "one chunk, past its cursor");
        assert!(
            queue.finish(1, vecs(lent)),
            "a static chunk needs nothing back"
        );
        let lent = queue.lend(2).unwrap();
        assert_eq!(queue.lent_len(), 7);
        assert!(
            !queue.finish(0, Vec::new()),
            "the lent vector did not come back"
        );
        drop(lent);
    }

    #[test]
    fn a_vector_lent_behind_pooled_chunks_must_come_back() {
        let pool = BufferPool::new(PoolConfig::new(64)).unwrap();
        let mut queue = SendQueue::new(100);
        queue.push_copy(b"pooled", &pool).unwrap();
        queue.push(Chunk::Vec(b"owned".to_vec()));
        let lent = queue.lend(2).unwrap();
        assert_eq!(flatten(&lent), b"pooledowned");
        assert!(queue.finish(3, vecs(lent)));
        assert_eq!(drain(&mut queue, 4, 100), b"ledowned");
    }

    #[test]
    fn a_lost_vector_is_reported() {
        let mut queue = SendQueue::new(100);
        queue.push(Chunk::Vec(b"abc".to_vec()));
        let lent = queue.lend(1).unwrap();
        drop(lent);
        assert!(!queue.finish(0, Vec::new()));
    }

    #[test]
    fn urgent_chunks_go_after_the_send_in_flight() {
        let mut queue = SendQueue::new(100);
        queue.push(Chunk::Static(b"aaaa"));
        queue.push(Chunk::Static(b"bbbb"));
        queue.push(Chunk::Static(b"cccc"));
        let lent = queue.lend(2).unwrap();
        queue.push_urgent(Chunk::Static(b"!!"));
        assert!(queue.finish(6, vecs(lent)));
        // "bb" is the rest of the second chunk, then the urgent bytes, then the third chunk.
        assert_eq!(drain(&mut queue, 8, 100), b"bb!!cccc");

        queue.push(Chunk::Static(b"xyz"));
        queue.advance(1);
        queue.push_urgent(Chunk::Static(b"#"));
        let mut slices = Vec::new();
        queue.io_slices(8, &mut slices);
        let joined: Vec<u8> = slices.iter().flat_map(|slice| slice.to_vec()).collect();
        assert_eq!(joined, b"yz#", "a partly sent chunk is finished first");
    }

    #[test]
    fn io_slices_respect_the_cursor_and_the_limit() {
        let mut queue = SendQueue::new(4);
        queue.push(Chunk::Static(b"hello"));
        queue.push(Chunk::Vec(b" big".to_vec()));
        queue.push(Chunk::Static(b" world"));
        assert!(queue.is_over_soft_limit());
        queue.advance(2);
        let mut slices = Vec::new();
        queue.io_slices(2, &mut slices);
        assert_eq!(slices.len(), 2);
        assert_eq!(&*slices[0], b"llo");
        assert_eq!(&*slices[1], b" big");
        assert_eq!(queue.pending_lens().collect::<Vec<_>>(), vec![3, 4, 6]);
    }

    #[test]
    fn messages_keep_their_boundaries_and_destinations() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut queue = SendQueue::new(100);
        queue.push_message([Chunk::Static(b"ab"), Chunk::Static(b"cd")], Some(to));
        queue.push_message([], None);
        queue.push_message([Chunk::Static(b"e")], None);
        assert_eq!(queue.front_message_chunks(), 2);
        let lent = queue.lend(queue.front_message_chunks()).unwrap();
        assert_eq!((flatten(&lent), lent.to), (b"abcd".to_vec(), Some(to)));
        assert_eq!(queue.finish_message(), 4);
        let lent = queue.lend(queue.front_message_chunks()).unwrap();
        assert!(
            flatten(&lent).is_empty(),
            "an empty datagram is still a message"
        );
        assert_eq!(queue.finish_message(), 0);
        assert_eq!(queue.chunks(), 1);
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn pooled_chunks_stay_alive_while_lent() {
        let pool = BufferPool::new(PoolConfig::new(64)).unwrap();
        let mut queue = SendQueue::new(100);
        let mut buffer = pool.take().unwrap();
        buffer.extend_from_slice(b"pinned");
        queue.push(Chunk::Buffer(buffer));
        let lent = queue.lend(1).unwrap();
        assert!(queue.finish(6, Vec::new()));
        assert!(queue.is_empty());
        assert_eq!(
            pool.stats().in_use,
            1,
            "the operation still holds its clone"
        );
        drop(lent);
        assert_eq!(pool.stats().in_use, 0);
    }

    #[test]
    fn buffers_lent_by_move_come_back_and_resume_after_a_short_send() {
        let pool = BufferPool::new(PoolConfig::new(4)).unwrap();
        let mut spares = SpareBuffers::new(pool.clone(), 4);
        let mut queue = SendQueue::new(100);
        queue.push_copy_from(b"abcdef", &mut spares).unwrap();
        queue.push(Chunk::from(b"gh".to_vec()));
        let mut chunks = Vec::new();
        assert_eq!(queue.lend_moving_into(8, &mut chunks), Some((0, None)));
        assert_eq!(chunks.len(), 3);
        assert!(queue.lend_moving_into(8, &mut Vec::new()).is_none());
        // Copies queued while the send is in flight never land in a lent buffer.
        queue.push_copy_from(b"ij", &mut spares).unwrap();
        assert!(queue.finish_recycling(5, chunks.drain(..), &mut spares));
        assert_eq!(spares.len(), 1, "the fully sent buffer is a spare");
        let mut rest = Vec::new();
        let (offset, _) = queue.lend_moving_into(8, &mut chunks).unwrap();
        for (index, chunk) in chunks.iter().enumerate() {
            rest.extend_from_slice(&chunk.bytes()[if index == 0 { offset } else { 0 }..]);
        }
        assert_eq!(rest, b"fghij");
        assert!(queue.finish_recycling(5, chunks.drain(..), &mut spares));
        assert!(queue.is_empty());
        drop(spares);
        assert_eq!(pool.stats().in_use, 0);
    }

    #[test]
    fn a_single_moved_buffer_finishes_whole_after_a_short_send() {
        let pool = BufferPool::new(PoolConfig::new(64)).unwrap();
        let mut spares = SpareBuffers::new(pool.clone(), 4);
        let mut queue = SendQueue::new(100);
        queue.push_copy_from(b"abcdef", &mut spares).unwrap();
        let mut chunks = Vec::new();
        assert_eq!(queue.lend_moving_into(1, &mut chunks), Some((0, None)));
        assert!(queue.finish_recycling(2, chunks.drain(..), &mut spares));
        assert_eq!(
            (queue.len(), spares.len()),
            (4, 0),
            "short: the buffer is back in its slot"
        );
        assert_eq!(queue.lend_moving_into(1, &mut chunks), Some((2, None)));
        assert_eq!(&chunks[0].bytes()[2..], b"cdef");
        assert!(queue.finish_recycling(4, chunks.drain(..), &mut spares));
        assert!(queue.is_empty() && !queue.is_lent());
        assert_eq!((queue.len(), spares.len()), (0, 1));
        // The queue goes on as new.
        queue.push_copy_from(b"gh", &mut spares).unwrap();
        assert_eq!(queue.only_chunk(), Some(&b"gh"[..]));
        drop((queue, spares));
        assert_eq!(pool.stats().in_use, 0);
    }

    #[test]
    fn a_wrong_chunk_back_from_a_single_send_is_reported() {
        let pool = BufferPool::new(PoolConfig::new(64)).unwrap();
        let mut spares = SpareBuffers::new(pool.clone(), 4);
        let mut queue = SendQueue::new(100);
        queue.push_copy_from(b"four", &mut spares).unwrap();
        let mut chunks = Vec::new();
        queue.lend_moving_into(1, &mut chunks).unwrap();
        assert!(!queue.finish_recycling(4, [Chunk::Vec(b"other length".to_vec())], &mut spares));
    }

    #[test]
    fn a_lost_moved_buffer_is_reported() {
        let pool = BufferPool::new(PoolConfig::new(64)).unwrap();
        let mut spares = SpareBuffers::new(pool, 4);
        let mut queue = SendQueue::new(100);
        queue.push_copy_from(b"gone", &mut spares).unwrap();
        let mut chunks = Vec::new();
        queue.lend_moving_into(1, &mut chunks).unwrap();
        assert!(!queue.finish_recycling(0, Vec::new(), &mut spares));
    }

    #[test]
    fn clear_drops_everything() {
        let (mut queue, expected) = mixed_queue();
        let _lent = queue.lend(3).unwrap();
        assert_eq!(queue.clear(), expected.len());
        assert!(queue.is_empty() && !queue.is_lent());
    }

    /// The bytes a pin covers, read through its address only as a test may: the queue still
    /// holds the chunk, whose bytes `expected` must equal.
    fn pinned_bytes(queue: &SendQueue, pin: &SendPin) -> Vec<u8> {
        let front = queue
            .only_pinned()
            .expect("the pinned chunk is the front one");
        assert_eq!(front.as_ptr(), pin.as_ptr());
        front.to_vec()
    }

    #[test]
    fn a_copy_larger_than_a_buffer_spans_fresh_buffers_all_or_nothing() {
        let pool = BufferPool::new(
            PoolConfig::new(4096)
                .with_buffers_per_chunk(2)
                .with_max_buffers(2),
        )
        .unwrap();
        let mut spares = SpareBuffers::new(pool.clone(), 4);
        let mut queue = SendQueue::new(1 << 20);
        let data: Vec<u8> = (0..6000u32).map(|i| i as u8).collect();
        queue.push_copy_from(&data, &mut spares).unwrap();
        assert_eq!((queue.len(), queue.chunks()), (6000, 2));
        let mut out = Vec::new();
        let mut slices = Vec::new();
        queue.io_slices(8, &mut slices);
        for slice in &slices {
            out.extend_from_slice(slice);
        }
        assert_eq!(out, data);
        // The pool is spent: a copy into a fresh buffer fails and queues nothing.
        queue.advance_recycling(6000, &mut spares);
        let hold = (spares.take().unwrap(), spares.take().unwrap());
        assert!(queue.push_copy_from(b"x", &mut spares).is_err());
        assert!(queue.is_empty());
        drop(hold);
    }

    #[test]
    fn a_pinned_send_resumes_from_the_first_unsent_byte() {
        let pool = BufferPool::new(PoolConfig::new(4096)).unwrap();
        let mut spares = SpareBuffers::new(pool.clone(), 4);
        let mut queue = SendQueue::new(1 << 20);
        queue.push_copy_from(b"hello world", &mut spares).unwrap();
        let pin = queue.lend_pinned().unwrap();
        assert_eq!(pinned_bytes(&queue, &pin), b"hello world");
        assert!(queue.is_lent() && queue.lend(4).is_none() && queue.only_chunk().is_none());
        // Copies made meanwhile go behind the pinned chunk, never into it.
        queue.push_copy_from(b"!", &mut spares).unwrap();
        assert_eq!(queue.chunks(), 2);
        assert!(queue.finish_pinned(pin, 6, &mut spares));
        assert_eq!(queue.len(), 6);
        let pin = queue.lend_pinned().unwrap();
        assert_eq!(pinned_bytes(&queue, &pin), b"world");
        assert!(queue.finish_pinned(pin, 5, &mut spares));
        assert_eq!(spares.len(), 1, "the sent copy's buffer is a spare");
        assert_eq!(queue.only_chunk(), Some(&b"!"[..]));
    }

    #[test]
    fn a_cleared_queue_keeps_the_pinned_chunk_until_the_pin_comes_back() {
        let pool = BufferPool::new(PoolConfig::new(4096)).unwrap();
        let mut spares = SpareBuffers::new(pool.clone(), 4);
        let mut queue = SendQueue::new(1 << 20);
        queue.push_copy_from(b"pong", &mut spares).unwrap();
        let pin = queue.lend_pinned().unwrap();
        assert_eq!(queue.clear(), 4);
        assert!(queue.is_empty() && !queue.is_lent());
        assert_eq!(pool.stats().in_use, 1, "parked, not given back");
        queue.push(Chunk::from(b"next".to_vec()));
        assert!(queue.lend_pinned().is_none(), "one pin at a time");
        assert!(queue.finish_pinned(pin, 4, &mut spares));
        assert_eq!(queue.len(), 4, "the queue itself did not move");
        assert_eq!(spares.len(), 1);
        let pin = queue.lend_pinned().expect("the pin is back");
        assert!(queue.finish_pinned(pin, 4, &mut spares));
    }

    #[test]
    fn a_pinned_chunk_advanced_past_by_mistake_is_parked() {
        let mut queue = SendQueue::new(1 << 20);
        queue.push(Chunk::from(b"abc".to_vec()));
        let pin = queue.lend_pinned().unwrap();
        // A general finish while the pin is out must not free the pinned bytes.
        assert!(queue.finish(3, Vec::new()));
        assert!(queue.is_empty());
        queue.push(Chunk::from(b"d".to_vec()));
        assert!(queue.lend(1).is_none() && queue.lend_pinned().is_none());
        let mut spares = SpareBuffers::new(BufferPool::new(PoolConfig::new(64)).unwrap(), 1);
        assert!(queue.finish_pinned(pin, 3, &mut spares));
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn another_queues_pin_is_refused() {
        let mut spares = SpareBuffers::new(BufferPool::new(PoolConfig::new(64)).unwrap(), 1);
        let mut ours = SendQueue::new(1 << 20);
        let mut theirs = SendQueue::new(1 << 20);
        ours.push(Chunk::from(b"ours".to_vec()));
        // Their pin is lost here, so their queue leaks its chunk: a buffer of a pool kept
        // reachable, not to upset the leak sanitizer.
        theirs.push_copy(b"theirs", &kept_pool()).unwrap();
        let our_pin = ours.lend_pinned().unwrap();
        let their_pin = theirs.lend_pinned().unwrap();
        assert!(!ours.finish_pinned(their_pin, 6, &mut spares));
        assert!(ours.is_lent() && ours.len() == 4);
        assert!(ours.finish_pinned(our_pin, 4, &mut spares));
        assert!(ours.is_empty());
    }

    #[test]
    fn shared_and_static_chunks_are_not_pinned() {
        let pool = BufferPool::new(PoolConfig::new(64)).unwrap();
        let mut queue = SendQueue::new(1 << 20);
        queue.push(Chunk::Static(b"static"));
        assert!(queue.lend_pinned().is_none());
        queue.advance(6);
        queue.push(Chunk::Shared(pool.take().unwrap().into_shared()));
        assert!(queue.lend_pinned().is_none());
    }

    #[test]
    fn a_queue_dropped_with_a_pin_out_leaks_the_chunk() {
        let pool = BufferPool::new(PoolConfig::new(64)).unwrap();
        let mut queue = SendQueue::new(1 << 20);
        queue.push_copy(b"x", &pool).unwrap();
        let pin = queue.lend_pinned().unwrap();
        drop(queue);
        let _lost = pin;
        assert_eq!(pool.stats().in_use, 1, "the kernel might still read it");
        // Kept reachable, so that the leak sanitizer sees the leaked buffer's pool in use.
        kept_pools().lock().unwrap().push(pool);
    }

    /// Pools that tests leak buffers of on purpose, kept reachable for the leak sanitizer.
    fn kept_pools() -> &'static std::sync::Mutex<Vec<BufferPool>> {
        static POOLS: std::sync::Mutex<Vec<BufferPool>> = std::sync::Mutex::new(Vec::new());
        &POOLS
    }

    /// A pool kept reachable for good (see [`kept_pools`]).
    fn kept_pool() -> BufferPool {
        let pool = BufferPool::new(PoolConfig::new(64)).unwrap();
        kept_pools().lock().unwrap().push(pool.clone());
        pool
    }
}
