//! Provided-buffer rings backed by a [`BufferPool`]: the kernel picks a buffer per receive,
//! and the ring hands it to the handler without copying.
//!
//! Each group is a page-aligned array of `entries` ring entries shared with the kernel
//! (`IORING_REGISTER_PBUF_RING`, Linux 5.19). Slot `bid` holds the pooled [`Buffer`] whose
//! address was published under that id. When a completion carries buffer `bid`, the buffer
//! leaves the slot (zero-copy hand-off) and a fresh one from the pool is staged in its place.
//! If the pool is dry the slot stays empty, since a null or stale entry is never published,
//! and is refilled at a later tick. The tail is published with one release store per tick.

use std::mem::offset_of;
use std::sync::atomic::{AtomicU16, Ordering};
use std::{fmt, io};

use fio_buffer::{Buffer, BufferPool, SpareBuffers};
use io_uring::IoUring;
use io_uring::types::BufRingEntry;

use crate::error::Error;
use crate::ring::Ring;

/// The largest number of entries in one buffer group (the kernel's limit).
pub const MAX_GROUP_ENTRIES: u16 = 32768;

/// Emptied buffers a group keeps at hand (see [`Ring::recycle_buffer`]), at most: enough for
/// a tick's worth of one-buffer requests on a few dozen connections; past it they go back to
/// the pool.
const MAX_SPARES: usize = 64;

/// A registered buffer group: pass it to [`Op::recv_multishot`](crate::Op::recv_multishot)
/// or [`Op::recv_from_group`](crate::Op::recv_from_group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufferGroup {
    id: u16,
    buffer_len: u32,
}

impl BufferGroup {
    /// The kernel's buffer group id (`bgid`).
    pub fn id(self) -> u16 {
        self.id
    }

    /// The capacity of each buffer in the group.
    pub fn buffer_len(self) -> u32 {
        self.buffer_len
    }
}

/// The kernel's view of one ring entry (`struct io_uring_buf`). In entry 0, `resv` is the
/// ring's tail, which is why entries are written field by field and never as a whole.
#[repr(C)]
struct RawEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(size_of::<RawEntry>() == size_of::<BufRingEntry>());

/// Page-aligned, zeroed memory for the ring entries: an anonymous mapping from fio-sys,
/// unmapped when dropped.
struct RingMemory {
    map: fio_sys::Mmap,
}

impl RingMemory {
    fn new(entries: u16) -> io::Result<Self> {
        let len = usize::from(entries) * size_of::<RawEntry>();
        let map = fio_sys::Mmap::anonymous(len)?;
        // A forked child must not share the pages the kernel reads buffer addresses from.
        if let Err(error) = map.dontfork() {
            log::debug!("madvise(MADV_DONTFORK) on a buffer ring failed: {error}");
        }
        Ok(Self { map })
    }

    /// The start of the mapping, as the kernel's registration wants it.
    fn base(&self) -> *mut u8 {
        self.map.as_ptr().as_ptr()
    }

    fn entry(&self, index: u16) -> *mut RawEntry {
        self.base()
            .wrapping_add(usize::from(index) * size_of::<RawEntry>())
            .cast()
    }

    /// The tail the kernel reads, overlaid on entry 0's reserved field.
    fn tail(&self) -> &AtomicU16 {
        let ptr = self.base().wrapping_add(offset_of!(RawEntry, resv));
        // SAFETY: the address is inside the live mapping, 2-aligned (page base + 14), and
        // only ever accessed atomically: by this process through this reference and by the
        // kernel with acquire loads. The reference does not outlive `self`.
        unsafe { AtomicU16::from_ptr(ptr.cast::<u16>()) }
    }
}

/// One registered buffer group and the pooled buffers it lends to the kernel.
///
/// Owned by the [`Ring`]; see [`Ring::register_buffer_group`]. Inspect it with
/// [`Ring::buffer_group`].
pub struct BufferProvider {
    group: BufferGroup,
    /// The group's pool, fronted by the emptied buffers the application handed back through
    /// [`Ring::recycle_buffer`]: a received buffer read out and staged again never touches
    /// the pool's shared free list or reference count.
    spares: SpareBuffers,
    memory: RingMemory,
    mask: u16,
    /// The tail as staged locally; published to the kernel once per tick.
    tail: u16,
    published: u16,
    /// `slots[bid]` is the buffer the kernel may fill under `bid`, while it is in the ring.
    slots: Vec<Option<Buffer>>,
    /// Ids whose buffer was handed out and not yet replaced (the pool ran dry).
    missing: Vec<u16>,
    /// Buffers currently in the ring (staged or published).
    available: usize,
    /// How many buffers the group keeps lent to the kernel: starts at the group's initial
    /// size and doubles, up to the ring's entries, whenever a receive finds the group dry
    /// (`ENOBUFS`), so the memory lent follows the load instead of the worst case.
    target: usize,
    /// A receive found the group dry since the last refill.
    ran_dry: bool,
}

impl BufferProvider {
    fn register(
        uring: &IoUring,
        id: u16,
        pool: BufferPool,
        initial: u16,
        entries: u16,
    ) -> Result<Self, Error> {
        if entries == 0 || !entries.is_power_of_two() || entries > MAX_GROUP_ENTRIES {
            return Err(Error::InvalidConfig {
                reason: "buffer group entries must be a power of two between 1 and 32768",
            });
        }
        if initial == 0 || initial > entries {
            return Err(Error::InvalidConfig {
                reason: "a buffer group's initial size must be between 1 and its entries",
            });
        }
        let buffer_len = u32::try_from(pool.buffer_size()).unwrap_or(u32::MAX);
        let memory = RingMemory::new(entries)?;
        // SAFETY: `memory` is a page-aligned, zeroed mapping of `entries` ring entries that
        // the provider keeps until it has unregistered the group (or leaks when it cannot).
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(memory.base() as u64, entries, id, 0)
        }
        .map_err(|source| Error::BufferRing { group: id, source })?;
        let mut provider = Self {
            group: BufferGroup { id, buffer_len },
            spares: SpareBuffers::new(pool, usize::from(entries).min(MAX_SPARES)),
            memory,
            mask: entries - 1,
            tail: 0,
            published: 0,
            slots: (0..entries).map(|_| None).collect(),
            missing: (0..entries).rev().collect(),
            available: 0,
            target: usize::from(initial),
            ran_dry: false,
        };
        provider.refill();
        provider.publish();
        Ok(provider)
    }

    /// The group to name in receive operations.
    pub fn group(&self) -> BufferGroup {
        self.group
    }

    pub(crate) fn id(&self) -> u16 {
        self.group.id
    }

    /// Number of ring entries.
    pub fn entries(&self) -> usize {
        self.slots.len()
    }

    /// Buffers currently lent to the kernel.
    pub fn available(&self) -> usize {
        self.available
    }

    /// Entries without a buffer: waiting for the pool to give one back, or beyond the
    /// group's current [`target`](Self::target).
    pub fn missing(&self) -> usize {
        self.missing.len()
    }

    /// How many buffers the group currently keeps lent to the kernel (when the pool has
    /// them): its initial size, doubled each time a receive found the group dry, up to
    /// [`entries`](Self::entries).
    pub fn target(&self) -> usize {
        self.target
    }

    /// The pool the buffers come from.
    pub fn pool(&self) -> &BufferPool {
        self.spares.pool()
    }

    /// Emptied buffers held for the next receives (see [`Ring::recycle_buffer`]).
    pub fn spares(&self) -> usize {
        self.spares.len()
    }

    /// Whether the next refill has work: fewer buffers lent than the target, or a receive
    /// found the group dry since the last refill (the target grows).
    #[inline]
    pub(crate) fn is_short(&self) -> bool {
        self.available < self.target || self.ran_dry
    }

    /// Records that a receive found the group dry (`ENOBUFS`).
    pub(crate) fn note_dry(&mut self) {
        self.ran_dry = true;
    }

    /// Doubles the target (up to the ring's entries) if a receive found the group dry since
    /// the last refill: at most once per tick, however many receives starved in it, so a
    /// burst of connections grows the group by what one tick needed, not exponentially.
    fn grow_if_ran_dry(&mut self) {
        if !std::mem::take(&mut self.ran_dry) {
            return;
        }
        let grown = (self.target * 2).min(self.slots.len());
        if grown != self.target {
            log::debug!(
                "buffer group {} ran dry: lending up to {grown} buffers (was {})",
                self.group.id,
                self.target
            );
            self.target = grown;
        }
    }

    /// Takes buffer `bid` out of the ring with `res` bytes received, and stages a fresh one
    /// in its place when the pool has one.
    ///
    /// Inlined into the dispatcher's one out-of-line group lookup: a receiving server runs it
    /// for every receive, and a call of its own cost a fifth of it.
    #[inline(always)]
    pub(crate) fn take(&mut self, bid: u16, res: i32) -> Option<Buffer> {
        let index = usize::from(bid);
        if self.slots.get(index).is_none_or(Option::is_none) {
            log::error!(
                "kernel returned buffer {bid} of group {} twice",
                self.group.id
            );
            return None;
        }
        self.available -= 1;
        let fresh = if self.available < self.target {
            self.spares.take().ok()
        } else {
            None
        };
        // The fresh buffer takes the received one's place in one swap.
        let taken = match fresh {
            Some(mut fresh) => {
                self.write_entry(bid, &mut fresh);
                self.slots[index].replace(fresh)
            }
            None => {
                self.missing.push(bid);
                self.slots[index].take()
            }
        };
        let mut buffer = taken?;
        let len = usize::try_from(res).unwrap_or(0).min(buffer.capacity());
        buffer.set_len(len);
        Some(buffer)
    }

    /// Replaces missing buffers from the pool, as far as it allows, up to the target (grown
    /// first if the group ran dry).
    pub(crate) fn refill(&mut self) {
        self.grow_if_ran_dry();
        while self.available < self.target
            && let Some(&bid) = self.missing.last()
        {
            let Ok(buffer) = self.spares.take() else {
                break;
            };
            self.missing.pop();
            self.stage(bid, buffer);
        }
    }

    /// Makes every staged entry visible to the kernel: one release store of the tail.
    #[inline]
    pub(crate) fn publish(&mut self) {
        if self.tail != self.published {
            self.memory.tail().store(self.tail, Ordering::Release);
            self.published = self.tail;
        }
    }

    /// Writes `buffer` under `bid` at the local tail (not yet visible to the kernel).
    #[inline]
    fn stage(&mut self, bid: u16, mut buffer: Buffer) {
        self.write_entry(bid, &mut buffer);
        self.slots[usize::from(bid)] = Some(buffer);
    }

    /// Empties `buffer` and writes its ring entry under `bid` at the local tail; the caller
    /// puts it in `slots[bid]`.
    ///
    /// Inlined: every receive stages one buffer, and the call cost as much as the writes.
    #[inline]
    fn write_entry(&mut self, bid: u16, buffer: &mut Buffer) {
        buffer.clear();
        let entry = self.memory.entry(self.tail & self.mask);
        let addr = buffer.as_mut_ptr() as u64;
        let len = self
            .group
            .buffer_len
            .min(u32::try_from(buffer.capacity()).unwrap_or(u32::MAX));
        let base = entry.cast::<u8>();
        // Entries in [tail, head + entries) belong to userspace: the kernel reads only
        // published entries below the tail, and at most `entries` buffers are ever in the
        // ring, so this position is free. Fields are written one by one so entry 0's
        // `resv` (the tail) is never touched by a plain store.
        // SAFETY: in-bounds, 8-aligned field of a ring entry userspace owns (see above).
        unsafe {
            base.wrapping_add(offset_of!(RawEntry, addr))
                .cast::<u64>()
                .write(addr)
        };
        // SAFETY: as above, for the 4-aligned `len` field.
        unsafe {
            base.wrapping_add(offset_of!(RawEntry, len))
                .cast::<u32>()
                .write(len)
        };
        // SAFETY: as above, for the 2-aligned `bid` field.
        unsafe {
            base.wrapping_add(offset_of!(RawEntry, bid))
                .cast::<u16>()
                .write(bid)
        };
        self.tail = self.tail.wrapping_add(1);
        self.available += 1;
    }

    /// Unregisters the group; after this the kernel never reads the ring or its buffers.
    pub(crate) fn unregister(&self, uring: &IoUring) -> io::Result<()> {
        uring.submitter().unregister_buf_ring(self.group.id)
    }
}

impl fmt::Debug for BufferProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferProvider")
            .field("group", &self.group)
            .field("entries", &self.slots.len())
            .field("available", &self.available)
            .field("missing", &self.missing.len())
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Ring {
    /// Registers a provided-buffer ring of `entries` buffers from `pool` and returns its
    /// group for [`Op::recv_multishot`](crate::Op::recv_multishot). The ring owns the group
    /// until it is dropped. Requires Linux 5.19.
    ///
    /// # Errors
    /// - [`Error::InvalidConfig`] unless `entries` is a power of two up to 32768.
    /// - [`Error::BufferRing`] when the kernel refuses the registration.
    /// - [`Error::Io`] when the ring memory cannot be mapped.
    ///
    /// # Examples
    /// ```
    /// use fio_ring::{BufferPool, PoolConfig, Ring, RingConfig};
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let pool = BufferPool::new(PoolConfig::new(2048)).map_err(fio_ring::Error::Pool)?;
    /// let group = ring.register_buffer_group(pool, 16)?;
    /// assert_eq!(ring.buffer_group(group).map(|g| g.available()), Some(16));
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    pub fn register_buffer_group(
        &mut self,
        pool: BufferPool,
        entries: u16,
    ) -> Result<BufferGroup, Error> {
        self.register_growing_buffer_group(pool, entries, entries)
    }

    /// Registers a provided-buffer ring of `entries` slots that lends only `initial` buffers
    /// from `pool` at first and doubles that, up to `entries`, each time a receive finds the
    /// group dry. The kernel then ends that receive with `ENOBUFS`, which the ring hides as
    /// always: the receive is re-armed (same [`OpId`](crate::OpId)) once the new buffers are
    /// lent, at the end of the same tick, and nothing is lost or reordered.
    ///
    /// Memory follows the load: a pool touches a buffer's pages only once it is lent, and
    /// the kernel fills ring entries in order, so a group that lends all its entries
    /// eventually touches every one of them even under a light load.
    ///
    /// # Errors
    /// - [`Error::InvalidConfig`] unless `entries` is a power of two up to 32768 and
    ///   `initial` is between 1 and `entries`.
    /// - [`Error::BufferRing`] when the kernel refuses the registration.
    /// - [`Error::Io`] when the ring memory cannot be mapped.
    ///
    /// # Examples
    /// ```
    /// use fio_ring::{BufferPool, PoolConfig, Ring, RingConfig};
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let pool = BufferPool::new(PoolConfig::new(2048)).map_err(fio_ring::Error::Pool)?;
    /// let group = ring.register_growing_buffer_group(pool, 4, 64)?;
    /// let provider = ring.buffer_group(group).unwrap();
    /// assert_eq!((provider.available(), provider.entries()), (4, 64));
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    pub fn register_growing_buffer_group(
        &mut self,
        pool: BufferPool,
        initial: u16,
        entries: u16,
    ) -> Result<BufferGroup, Error> {
        let id = (0..PROBE_GROUP)
            .find(|id| self.providers.iter().all(|provider| provider.id() != *id))
            .ok_or(Error::InvalidConfig {
                reason: "every buffer group id is taken",
            })?;
        let provider = BufferProvider::register(&self.uring, id, pool, initial, entries)?;
        let group = provider.group();
        self.replenish_due |= provider.is_short();
        self.providers.push(provider);
        Ok(group)
    }

    /// Hands back a received buffer the application has emptied, for a later receive: kept
    /// by the buffer group whose pool it came from, up to a few dozen per group, and staged
    /// again before that pool is asked for another. A buffer of no group's pool, or one past
    /// the limit, simply goes back to its pool. Dropping the buffer instead is always
    /// correct; this only saves the pool's shared free list and reference-count updates
    /// (atomic operations) on the next receive.
    ///
    /// # Examples
    /// ```
    /// use fio_ring::{BufferPool, PoolConfig, Ring, RingConfig};
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let pool = BufferPool::new(PoolConfig::new(2048)).map_err(fio_ring::Error::Pool)?;
    /// let group = ring.register_buffer_group(pool.clone(), 4)?;
    /// let mut emptied = pool.take().map_err(fio_ring::Error::Pool)?;
    /// emptied.extend_from_slice(b"read already");
    /// ring.recycle_buffer(emptied);
    /// assert_eq!(ring.buffer_group(group).map(|g| g.spares()), Some(1));
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    #[inline]
    pub fn recycle_buffer(&mut self, buffer: Buffer) {
        let mut buffer = buffer;
        for provider in &mut self.providers {
            match provider.spares.try_give(buffer) {
                Ok(()) => return,
                Err(other) => buffer = other,
            }
        }
        give_back(buffer);
    }

    /// The provider behind `group`, for its figures.
    pub fn buffer_group(&self, group: BufferGroup) -> Option<&BufferProvider> {
        self.providers
            .iter()
            .find(|provider| provider.id() == group.id)
    }
}

/// Returns a buffer no group keeps to its pool: the rare path of [`Ring::recycle_buffer`],
/// out of line so the kept path inlines into the reads that empty a buffer per request.
#[cold]
#[inline(never)]
fn give_back(buffer: Buffer) {
    drop(buffer);
}

/// The group id used for the registration test at ring creation.
const PROBE_GROUP: u16 = u16::MAX;

/// Whether the kernel accepts provided-buffer rings: registers and unregisters a one-entry
/// ring.
pub(crate) fn probe_buf_ring(uring: &IoUring) -> bool {
    let Ok(memory) = RingMemory::new(1) else {
        return false;
    };
    // SAFETY: `memory` is a page-aligned, zeroed one-entry mapping that outlives the
    // registration, which is undone below before `memory` is dropped.
    let registered = unsafe {
        uring
            .submitter()
            .register_buf_ring_with_flags(memory.base() as u64, 1, PROBE_GROUP, 0)
    };
    match registered {
        Ok(()) => {
            if uring.submitter().unregister_buf_ring(PROBE_GROUP).is_err() {
                // Keep the memory mapped rather than free pages still registered.
                std::mem::forget(memory);
            }
            true
        }
        Err(error) => {
            log::debug!("provided-buffer rings unavailable: {error}");
            false
        }
    }
}
