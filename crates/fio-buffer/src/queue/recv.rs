//! [`RecvQueue`]: received buffers waiting for the application, with the water marks that
//! decide when a socket stops and resumes receiving. Engine-neutral: the ring engine appends
//! the buffers its receives hand over, the epoll engine the ones `recv(2)` filled.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;

use crate::{Buffer, SpareBuffers};

/// Buffered-byte thresholds for inbound backpressure.
///
/// A socket stops receiving once `high` bytes wait unread and resumes when the application
/// has drained them to `low` or fewer, so a peer sending faster than the application reads
/// cannot grow memory without bound.
///
/// # Examples
/// ```
/// use fio_buffer::WaterMarks;
/// let marks = WaterMarks::new(256 * 1024, 64 * 1024).expect("low <= high");
/// assert_eq!(marks.high(), 256 * 1024);
/// assert!(WaterMarks::new(1, 2).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WaterMarks {
    // Stored in 32 bits: every stream socket keeps a copy, and no queue holds 4 GiB.
    high: u32,
    low: u32,
}

impl WaterMarks {
    /// The default high-water mark: 256 KiB per socket.
    pub const DEFAULT_HIGH: usize = 256 * 1024;
    /// The default low-water mark: 64 KiB.
    pub const DEFAULT_LOW: usize = 64 * 1024;

    /// Marks at `high` and `low` bytes; `None` unless `0 < high` and `low <= high`. Marks
    /// above 4 GiB count as 4 GiB.
    pub const fn new(high: usize, low: usize) -> Option<Self> {
        if high == 0 || low > high {
            None
        } else {
            Some(Self {
                high: clamp_mark(high),
                low: clamp_mark(low),
            })
        }
    }

    /// Stop receiving at this many buffered bytes.
    pub const fn high(self) -> usize {
        self.high as usize
    }

    /// Resume receiving at this many buffered bytes or fewer.
    pub const fn low(self) -> usize {
        self.low as usize
    }
}

/// A mark in the 32 bits [`WaterMarks`] keeps.
const fn clamp_mark(bytes: usize) -> u32 {
    if bytes > u32::MAX as usize {
        u32::MAX
    } else {
        bytes as u32
    }
}

impl Default for WaterMarks {
    fn default() -> Self {
        Self {
            high: clamp_mark(Self::DEFAULT_HIGH),
            low: clamp_mark(Self::DEFAULT_LOW),
        }
    }
}

/// One received buffer and the bytes of it already read. A datagram's sender is kept apart
/// (see [`RecvQueue::senders`]), so the entry a stream moves per receive and per read stays
/// 40 bytes instead of 72.
struct Segment {
    buffer: Buffer,
    /// Bytes at the front already copied out.
    start: usize,
}

// Moved once per receive and once per read: keep it to the buffer handle and a cursor.
// (Loom's model atomics make the handle larger; the size only matters in real builds.)
#[cfg(not(fio_loom))]
const _: () = assert!(std::mem::size_of::<Segment>() <= 40);

impl Segment {
    #[inline]
    fn unread(&self) -> &[u8] {
        &self.buffer[self.start..]
    }

    /// The buffer with its read bytes removed (moved down when some were read).
    fn into_buffer(mut self) -> Buffer {
        if self.start > 0 {
            let len = self.buffer.len();
            self.buffer
                .as_mut_capacity()
                .copy_within(self.start..len, 0);
            self.buffer.set_len(len - self.start);
        }
        self.buffer
    }
}

/// Received buffers in arrival order, with a byte count and water marks.
///
/// # Examples
/// ```
/// use fio_buffer::{BufferPool, PoolConfig, RecvQueue, WaterMarks};
/// let pool = BufferPool::new(PoolConfig::new(64))?;
/// let mut queue = RecvQueue::new(WaterMarks::default());
/// let mut buffer = pool.take()?;
/// buffer.extend_from_slice(b"hello");
/// queue.push(buffer);
/// let mut out = [0u8; 8];
/// assert_eq!(queue.read(&mut out, true), 0, "wait-all: 8 bytes are not there yet");
/// assert_eq!(queue.read(&mut out, false), 5);
/// assert!(queue.is_empty());
/// # Ok::<(), fio_buffer::Error>(())
/// ```
pub struct RecvQueue {
    /// The oldest segment, `None` only when the queue is empty. Kept out of the deque because
    /// a socket nearly always holds a single buffer (one receive, read whole before the next):
    /// filling and emptying this slot costs a few moves, the deque's ring index arithmetic
    /// more.
    front: Option<Segment>,
    /// The segments behind `front`, in arrival order.
    rest: VecDeque<Segment>,
    /// The senders of the queued segments, front first: empty while no datagram is queued
    /// (a stream never fills it), else exactly one per segment (`None` for stream bytes).
    senders: Senders,
    bytes: usize,
    marks: WaterMarks,
}

/// [`RecvQueue`]'s datagram senders, boxed on first use: a stream never has any, and every
/// stream socket's queue is two words smaller for it (memory per idle connection).
#[derive(Debug, Default)]
#[allow(
    clippy::box_collection,
    reason = "the box is the point: one word in every stream queue instead of the deque's four"
)]
struct Senders(Option<Box<VecDeque<Option<SocketAddr>>>>);

impl Senders {
    #[inline]
    fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|senders| senders.is_empty())
    }

    fn resize(&mut self, len: usize, sender: Option<SocketAddr>) {
        self.0.get_or_insert_default().resize(len, sender);
    }

    fn push_back(&mut self, sender: Option<SocketAddr>) {
        self.0.get_or_insert_default().push_back(sender);
    }

    #[inline]
    fn pop_front(&mut self) -> Option<Option<SocketAddr>> {
        self.0.as_mut()?.pop_front()
    }

    fn clear(&mut self) {
        if let Some(senders) = &mut self.0 {
            senders.clear();
        }
    }
}

impl RecvQueue {
    /// An empty queue with the given water marks.
    pub fn new(marks: WaterMarks) -> Self {
        Self {
            front: None,
            rest: VecDeque::new(),
            senders: Senders::default(),
            bytes: 0,
            marks,
        }
    }

    /// Appends received stream bytes; an empty buffer is dropped.
    #[inline]
    pub fn push(&mut self, buffer: Buffer) {
        if buffer.is_empty() {
            return;
        }
        self.bytes += buffer.len();
        self.push_segment(Segment { buffer, start: 0 });
        if !self.senders.is_empty() {
            self.senders.push_back(None);
        }
    }

    /// Appends a segment: into the front slot when the queue is empty, else behind it.
    #[inline]
    fn push_segment(&mut self, segment: Segment) {
        if self.front.is_none() {
            self.front = Some(segment);
        } else {
            self.rest.push_back(segment);
        }
    }

    /// Appends one datagram from `from` (empty datagrams are kept: they are messages too).
    pub fn push_datagram(&mut self, buffer: Buffer, from: Option<SocketAddr>) {
        // The first sender of a queue also gives the segments ahead of it theirs (none).
        if self.senders.is_empty() {
            self.senders.resize(self.segments(), None);
        }
        self.bytes += buffer.len();
        self.push_segment(Segment { buffer, start: 0 });
        self.senders.push_back(from);
    }

    /// Takes the front segment out with its sender.
    #[inline]
    fn pop_front(&mut self) -> Option<(Segment, Option<SocketAddr>)> {
        let segment = self.front.take()?;
        self.front = self.rest.pop_front();
        // Never-taken branch on a stream: `senders` is empty.
        let from = if self.senders.is_empty() {
            None
        } else {
            self.senders.pop_front().flatten()
        };
        Some((segment, from))
    }

    /// Takes out the front buffer a read emptied: [`pop_front`](Self::pop_front) without
    /// moving out the sender nobody asked for, and refilling the front slot only when a segment
    /// waits behind it.
    #[inline]
    fn pop_read(&mut self) -> Option<Buffer> {
        let segment = match self.rest.pop_front() {
            Some(next) => self.front.replace(next),
            None => self.front.take(),
        };
        if !self.senders.is_empty() {
            self.senders.pop_front();
        }
        segment.map(|segment| segment.buffer)
    }

    /// Unread bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Whether no buffer waits.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.front.is_none()
    }

    /// Buffers waiting (datagrams, in message mode).
    #[inline]
    pub fn segments(&self) -> usize {
        usize::from(self.front.is_some()) + self.rest.len()
    }

    /// The water marks.
    pub fn marks(&self) -> WaterMarks {
        self.marks
    }

    /// Whether the queue holds the high-water mark or more: stop receiving.
    #[inline]
    pub fn is_above_high_water(&self) -> bool {
        self.bytes >= self.marks.high()
    }

    /// Whether the queue holds the low-water mark or less: receiving may resume.
    #[inline]
    pub fn is_below_low_water(&self) -> bool {
        self.bytes <= self.marks.low()
    }

    /// Copies unread stream bytes into `out` and returns how many: 0 when nothing is
    /// buffered, or, with `wait_all`, while fewer than `out.len()` bytes are.
    #[inline]
    pub fn read(&mut self, out: &mut [u8], wait_all: bool) -> usize {
        self.read_with(out, wait_all, drop)
    }

    /// [`read`](Self::read), keeping the buffers it empties as `spares` for the next receive
    /// or reply instead of giving them back to the pool.
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig, RecvQueue, SpareBuffers, WaterMarks};
    /// let pool = BufferPool::new(PoolConfig::new(4096))?;
    /// let mut spares = SpareBuffers::new(pool.clone(), 4);
    /// let mut queue = RecvQueue::new(WaterMarks::default());
    /// let mut buffer = spares.take()?;
    /// buffer.extend_from_slice(b"ping");
    /// queue.push(buffer);
    /// let mut out = [0u8; 8];
    /// assert_eq!(queue.read_recycling(&mut out, false, &mut spares), 4);
    /// assert_eq!(spares.len(), 1, "the emptied buffer is a spare again");
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn read_recycling(
        &mut self,
        out: &mut [u8],
        wait_all: bool,
        spares: &mut SpareBuffers,
    ) -> usize {
        self.read_with(out, wait_all, |buffer| spares.give(buffer))
    }

    /// [`read`](Self::read), handing each buffer it empties to `emptied` (a cache the next
    /// receive draws from, say) instead of dropping it.
    ///
    /// # Examples
    /// ```
    /// use fio_buffer::{BufferPool, PoolConfig, RecvQueue, WaterMarks};
    /// let pool = BufferPool::new(PoolConfig::new(4096))?;
    /// let mut queue = RecvQueue::new(WaterMarks::default());
    /// let mut buffer = pool.take()?;
    /// buffer.extend_from_slice(b"ping");
    /// queue.push(buffer);
    /// let mut kept = Vec::new();
    /// let mut out = [0u8; 8];
    /// assert_eq!(queue.read_with(&mut out, false, |emptied| kept.push(emptied)), 4);
    /// assert_eq!(kept.len(), 1);
    /// # Ok::<(), fio_buffer::Error>(())
    /// ```
    #[inline]
    pub fn read_with(
        &mut self,
        out: &mut [u8],
        wait_all: bool,
        mut emptied: impl FnMut(Buffer),
    ) -> usize {
        if wait_all && self.bytes < out.len() {
            return 0;
        }
        // The usual read (a request that arrived in one receive) is served by the front
        // buffer alone: one copy and no loop.
        let only_one = self.rest.is_empty();
        let Some(front) = &mut self.front else {
            return 0;
        };
        let unread = front.unread();
        if only_one || unread.len() >= out.len() {
            let available = unread.len();
            let count = available.min(out.len());
            copy_bytes(&mut out[..count], &unread[..count]);
            if count < available {
                front.start += count;
            } else if let Some(buffer) = self.pop_read() {
                emptied(buffer);
            }
            self.bytes -= count;
            return count;
        }
        let mut copied = 0;
        while copied < out.len() {
            let Some(front) = &mut self.front else {
                break;
            };
            let unread = front.unread();
            let count = unread.len().min(out.len() - copied);
            copy_bytes(&mut out[copied..copied + count], &unread[..count]);
            copied += count;
            front.start += count;
            if front.start == front.buffer.len()
                && let Some(buffer) = self.pop_read()
            {
                emptied(buffer);
            }
        }
        self.bytes -= copied;
        copied
    }

    /// Takes the front buffer out without copying its bytes (only the bytes a partial
    /// [`read`](Self::read) left are moved to its start).
    pub fn take_buffer(&mut self) -> Option<Buffer> {
        self.take_datagram().map(|(buffer, _)| buffer)
    }

    /// Takes the front datagram and its sender out without copying.
    pub fn take_datagram(&mut self) -> Option<(Buffer, Option<SocketAddr>)> {
        let (segment, from) = self.pop_front()?;
        self.bytes -= segment.unread().len();
        Some((segment.into_buffer(), from))
    }

    /// Copies the front datagram into `out` (cutting what does not fit, as `recvfrom(2)`
    /// does) and returns the count copied and its sender; `None` when none waits.
    pub fn read_datagram(&mut self, out: &mut [u8]) -> Option<(usize, Option<SocketAddr>)> {
        let (segment, from) = self.pop_front()?;
        let unread = segment.unread();
        self.bytes -= unread.len();
        let count = unread.len().min(out.len());
        out[..count].copy_from_slice(&unread[..count]);
        Some((count, from))
    }

    /// Drops every buffer (the socket closed). Returns the bytes dropped.
    pub fn clear(&mut self) -> usize {
        let dropped = self.bytes;
        self.front = None;
        self.rest.clear();
        self.senders.clear();
        self.bytes = 0;
        dropped
    }
}

/// `dst.copy_from_slice(src)` (equal lengths). A short request, 8 to 32 bytes (a ping, a small
/// command), is copied as two overlapping fixed-size words, which costs less than the `memcpy`
/// call a slice copy of unknown length becomes. (From 33 bytes on, four words cost as much as
/// the call.)
#[inline(always)]
fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    let len = src.len();
    if len != dst.len() {
        // Not reached: both are cut to the same count. Keeps the word paths free of bounds
        // checks on `dst`.
        dst.copy_from_slice(src);
        return;
    }
    // Every word is loaded before any is stored: as plain slice copies, the compiler folds the
    // paths back into one `memcpy` call.
    match len {
        8..=16 => {
            let (head, tail) = (word::<8>(src, 0), word::<8>(src, len - 8));
            dst[..8].copy_from_slice(&u64::from_ne_bytes(head).to_ne_bytes());
            dst[len - 8..].copy_from_slice(&u64::from_ne_bytes(tail).to_ne_bytes());
        }
        17..=32 => {
            let (head, tail) = (word::<16>(src, 0), word::<16>(src, len - 16));
            dst[..16].copy_from_slice(&u128::from_ne_bytes(head).to_ne_bytes());
            dst[len - 16..].copy_from_slice(&u128::from_ne_bytes(tail).to_ne_bytes());
        }
        _ => dst.copy_from_slice(src),
    }
}

/// The `N` bytes of `bytes` from `at` (which has them).
#[inline(always)]
fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut word = [0; N];
    word.copy_from_slice(&bytes[at..at + N]);
    word
}

impl fmt::Debug for RecvQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvQueue")
            .field("bytes", &self.bytes)
            .field("segments", &self.segments())
            .field("marks", &self.marks)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{BufferPool, PoolConfig};

    use super::*;

    fn filled(pool: &BufferPool, bytes: &[u8]) -> Buffer {
        let mut buffer = pool.take().unwrap();
        buffer.extend_from_slice(bytes);
        buffer
    }

    fn pool() -> BufferPool {
        BufferPool::new(PoolConfig::new(16)).unwrap()
    }

    #[test]
    fn reads_span_buffers_in_order() {
        let pool = pool();
        let mut queue = RecvQueue::new(WaterMarks::default());
        queue.push(filled(&pool, b"abc"));
        queue.push(filled(&pool, b""));
        queue.push(filled(&pool, b"defgh"));
        assert_eq!((queue.len(), queue.segments()), (8, 2));
        let mut out = [0u8; 4];
        assert_eq!(queue.read(&mut out, true), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(queue.read(&mut out, true), 4);
        assert_eq!(&out, b"efgh");
        assert!(queue.is_empty());
    }

    #[test]
    fn an_empty_queue_reads_nothing_and_recycles_nothing() {
        let pool = pool();
        let mut spares = SpareBuffers::new(pool.clone(), 4);
        let mut queue = RecvQueue::new(WaterMarks::default());
        let mut out = [0u8; 4];
        assert_eq!(queue.read_recycling(&mut out, false, &mut spares), 0);
        assert_eq!(queue.read_recycling(&mut [], false, &mut spares), 0);
        assert!(spares.is_empty());
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_front_buffer_read_in_parts_is_recycled_once_emptied() {
        let pool = pool();
        let mut spares = SpareBuffers::new(pool.clone(), 4);
        let mut queue = RecvQueue::new(WaterMarks::default());
        queue.push(filled(&pool, b"abcdefgh"));
        queue.push(filled(&pool, b"ij"));
        let mut out = [0u8; 3];
        assert_eq!(queue.read_recycling(&mut out, false, &mut spares), 3);
        assert_eq!((&out, queue.len(), spares.len()), (b"abc", 7, 0));
        // Exactly the rest of the front buffer: it empties without touching the next one.
        let mut rest = [0u8; 5];
        assert_eq!(queue.read_recycling(&mut rest, false, &mut spares), 5);
        assert_eq!((&rest, queue.len(), spares.len()), (b"defgh", 2, 1));
        assert_eq!(queue.segments(), 1);
        // A read larger than the only buffer takes what there is.
        let mut big = [0u8; 8];
        assert_eq!(queue.read_recycling(&mut big, false, &mut spares), 2);
        assert_eq!((&big[..2], spares.len()), (&b"ij"[..], 2));
        assert!(queue.is_empty());
    }

    #[test]
    fn a_read_spanning_buffers_keeps_order_and_the_unread_tail() {
        let pool = pool();
        let mut spares = SpareBuffers::new(pool.clone(), 4);
        let mut queue = RecvQueue::new(WaterMarks::default());
        queue.push(filled(&pool, b"ab"));
        queue.push(filled(&pool, b"cd"));
        queue.push(filled(&pool, b"efg"));
        let mut out = [0u8; 5];
        assert_eq!(queue.read_recycling(&mut out, false, &mut spares), 5);
        assert_eq!(&out, b"abcde");
        assert_eq!((queue.len(), queue.segments(), spares.len()), (2, 1, 2));
        assert_eq!(queue.read(&mut out, false), 2);
        assert_eq!(&out[..2], b"fg");
        assert!(queue.is_empty());
    }

    #[test]
    fn wait_all_returns_zero_until_enough_is_buffered() {
        let pool = pool();
        let mut queue = RecvQueue::new(WaterMarks::default());
        queue.push(filled(&pool, b"abc"));
        let mut out = [0u8; 5];
        assert_eq!(queue.read(&mut out, true), 0);
        assert_eq!(queue.len(), 3, "nothing was consumed");
        queue.push(filled(&pool, b"de"));
        assert_eq!(queue.read(&mut out, true), 5);
        assert_eq!(&out, b"abcde");
        assert_eq!(queue.read(&mut out, false), 0, "empty reads 0");
    }

    #[test]
    fn taking_a_partly_read_buffer_returns_only_its_unread_bytes() {
        let pool = pool();
        let mut queue = RecvQueue::new(WaterMarks::default());
        queue.push(filled(&pool, b"hello world"));
        let mut out = [0u8; 6];
        assert_eq!(queue.read(&mut out, false), 6);
        let rest = queue.take_buffer().unwrap();
        assert_eq!(&*rest, b"world");
        assert_eq!(queue.len(), 0);
        assert!(queue.take_buffer().is_none());
    }

    #[test]
    fn datagrams_keep_boundaries_and_senders() {
        let pool = pool();
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut queue = RecvQueue::new(WaterMarks::default());
        queue.push_datagram(filled(&pool, b"first datagram"), Some(from));
        queue.push_datagram(filled(&pool, b""), None);
        queue.push_datagram(filled(&pool, b"third"), Some(from));
        let mut out = [0u8; 5];
        assert_eq!(queue.read_datagram(&mut out), Some((5, Some(from))));
        assert_eq!(&out, b"first", "a long datagram is cut");
        assert_eq!(queue.read_datagram(&mut out), Some((0, None)));
        let (buffer, sender) = queue.take_datagram().unwrap();
        assert_eq!((&*buffer, sender), (&b"third"[..], Some(from)));
        assert!(queue.is_empty());
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn stream_bytes_and_datagrams_mixed_keep_their_senders() {
        let pool = pool();
        let mut queue = RecvQueue::new(WaterMarks::default());
        let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        queue.push(filled(&pool, b"stream"));
        queue.push_datagram(filled(&pool, b"datagram"), Some(from));
        queue.push(filled(&pool, b"more"));
        assert_eq!(queue.take_datagram().map(|(_, sender)| sender), Some(None));
        assert_eq!(
            queue
                .take_datagram()
                .map(|(buffer, sender)| (buffer.len(), sender)),
            Some((8, Some(from)))
        );
        assert_eq!(queue.take_datagram().map(|(_, sender)| sender), Some(None));
        assert!(queue.take_datagram().is_none());
        // Emptied, the queue is a plain stream again: no sender is kept for its bytes.
        queue.push(filled(&pool, b"again"));
        assert!(queue.senders.is_empty());
    }

    #[test]
    fn the_front_slot_refills_from_the_buffers_behind_it_in_order() {
        let pool = pool();
        let mut queue = RecvQueue::new(WaterMarks::default());
        queue.push(filled(&pool, b"abcd"));
        queue.push(filled(&pool, b"ef"));
        let mut two = [0u8; 2];
        assert_eq!(queue.read(&mut two, false), 2);
        assert_eq!(&two, b"ab");
        queue.push(filled(&pool, b"ghi"));
        assert_eq!((queue.len(), queue.segments()), (7, 3));
        // Exactly the front's rest: the next buffer moves up to the front slot.
        assert_eq!(queue.read(&mut two, false), 2);
        assert_eq!((&two, queue.segments()), (b"cd", 2));
        let rest = queue.take_buffer().unwrap();
        assert_eq!(&*rest, b"ef");
        let mut out = [0u8; 8];
        assert_eq!(queue.read(&mut out, false), 3);
        assert_eq!(&out[..3], b"ghi");
        assert!(queue.is_empty());
        assert_eq!((queue.segments(), queue.len()), (0, 0));
        queue.push(filled(&pool, b"jk"));
        queue.push(filled(&pool, b"lm"));
        assert_eq!(queue.clear(), 4);
        assert!(queue.is_empty() && queue.segments() == 0);
        queue.push(filled(&pool, b"n"));
        assert_eq!(queue.read(&mut out, false), 1);
        assert_eq!(out[0], b'n');
    }

    #[test]
    fn copies_of_every_short_length_are_exact() {
        let src: Vec<u8> = (1..=80).collect();
        for len in 0..=80 {
            let mut dst = [0u8; 80];
            copy_bytes(&mut dst[..len], &src[..len]);
            assert_eq!(&dst[..len], &src[..len], "length {len}");
            assert!(
                dst[len..].iter().all(|&byte| byte == 0),
                "length {len} wrote past"
            );
        }
    }

    #[test]
    fn water_marks_have_hysteresis() {
        let pool = pool();
        let marks = WaterMarks::new(32, 8).unwrap();
        let mut queue = RecvQueue::new(marks);
        assert!(queue.is_below_low_water() && !queue.is_above_high_water());
        for _ in 0..2 {
            queue.push(filled(&pool, &[1; 16]));
        }
        assert!(queue.is_above_high_water());
        let mut out = [0u8; 20];
        assert_eq!(queue.read(&mut out, false), 20);
        assert!(!queue.is_above_high_water() && !queue.is_below_low_water());
        assert_eq!(queue.read(&mut out[..4], false), 4);
        assert!(queue.is_below_low_water());
        assert_eq!(queue.clear(), 8);
        assert_eq!(WaterMarks::new(0, 0), None);
    }
}
