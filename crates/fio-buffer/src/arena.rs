//! The arenas behind a pool: zeroed, page-aligned chunks of buffer slots, found through a
//! fixed table of chunk pointers that each get set once.
//!
//! Each chunk is its own anonymous mapping ([`fio_sys::Mmap`]) rather than a heap
//! allocation: the kernel hands out zero pages only as they are first written, so a chunk
//! costs resident memory for the bytes its buffers actually held, not for its whole size.
//! (A page-aligned `alloc_zeroed` is a `posix_memalign` plus a `memset` that touches every
//! page up front: a receive pool of 16 KiB buffers that only ever held small requests was
//! fully resident.)
//!
//! Slot `i` lives in chunk `i / buffers_per_chunk` at offset `(i % buffers_per_chunk) *
//! stride`. The chunk table is allocated whole when the pool is built, so finding a slot is
//! one acquire load and never takes a lock, even while another thread adds a chunk. A chunk,
//! once published, is neither moved nor freed until the [`Arena`] drops, which happens only
//! when the last handle to the pool (pool, buffer or shared buffer) is gone. That is the
//! guarantee the kernel relies on when fio-ring hands it a buffer's address.

use std::ops::Range;
use std::ptr::{self, NonNull};

use fio_sys::Mmap;

use crate::Error;
use crate::config::{ARENA_ALIGN, Geometry};
use crate::free_list::{EMPTY, Links};
use crate::primitive::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// Bookkeeping for one buffer slot, kept beside (not inside) the buffer so that the buffer's
/// bytes all belong to its owner.
#[derive(Debug)]
pub(crate) struct SlotMeta {
    /// The free-list link: the slot below this one while this slot is free.
    pub(crate) next: AtomicU32,
    /// How many [`SharedBuffer`](crate::SharedBuffer) handles point at this slot; zero while
    /// the slot is free or held by a unique [`Buffer`](crate::Buffer).
    pub(crate) refs: AtomicUsize,
}

/// One arena allocation and the metadata of the slots it holds.
#[derive(Debug)]
struct Chunk {
    /// The chunk's zero-filled, page-aligned (so [`ARENA_ALIGN`]-aligned) memory, unmapped
    /// when the chunk drops.
    memory: Mmap,
    /// One entry per slot of this chunk.
    slots: Box<[SlotMeta]>,
}

/// The chunk table of one pool.
///
/// Sharing it between threads is sound although [`Chunk`] holds a raw pointer: a published
/// chunk is never written again (only its atomics are), and its memory is freed only through
/// `&mut self` in `Drop`.
#[derive(Debug)]
pub(crate) struct Arena {
    /// The pool's validated shape.
    geometry: Geometry,
    /// One pointer per chunk the pool may grow to; null until that chunk is published, then
    /// set once (release) and never changed.
    chunks: Box<[AtomicPtr<Chunk>]>,
}

impl Arena {
    /// An arena with no chunks yet.
    pub(crate) fn new(geometry: Geometry) -> Self {
        let chunks = (0..geometry.chunks)
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect();
        Self { geometry, chunks }
    }

    /// Allocates chunk `index` zeroed and publishes it, returning the slot indices it holds.
    ///
    /// The caller holds the pool's growth lock and passes the number of chunks published so
    /// far, which is below the table length.
    pub(crate) fn add_chunk(&self, index: usize) -> Result<Range<u32>, Error> {
        let Geometry {
            buffer_size,
            stride,
            buffers_per_chunk,
            ..
        } = self.geometry;
        let count = self.geometry.buffers_in_chunk(index);
        let bytes = stride.checked_mul(count).ok_or(Error::ChunkTooLarge {
            buffer_size,
            buffers_per_chunk,
        })?;
        // `bytes` is non-zero (`stride >= 64`, `count >= 1`, validated in
        // `PoolConfig::geometry`), so only the kernel's refusal can fail this.
        let memory = Mmap::anonymous(bytes).map_err(|_| Error::ArenaAlloc { bytes })?;
        debug_assert_eq!(memory.as_ptr().as_ptr() as usize % ARENA_ALIGN, 0);
        let slots = (0..count)
            .map(|_| SlotMeta {
                next: AtomicU32::new(EMPTY),
                refs: AtomicUsize::new(0),
            })
            .collect();
        let chunk = Box::new(Chunk { memory, slots });
        // Release pairs with the acquire in `chunk`: whoever learns a slot index of this
        // chunk also sees the chunk's fields.
        self.chunks[index].store(Box::into_raw(chunk), Ordering::Release);
        let first = index * buffers_per_chunk;
        Ok(slot_index(first)..slot_index(first + count))
    }

    /// The published chunk holding `slot`, and the slot's offset in it.
    #[inline]
    fn chunk(&self, slot: u32) -> (&Chunk, usize) {
        let slot = slot as usize;
        let per_chunk = self.geometry.buffers_per_chunk;
        // A shift and a mask replace the division for power-of-two chunk sizes (the default
        // 64 among them): this runs on every take and give-back.
        let (index, offset) = if per_chunk.is_power_of_two() {
            (slot >> per_chunk.trailing_zeros(), slot & (per_chunk - 1))
        } else {
            (slot / per_chunk, slot % per_chunk)
        };
        let raw = self.chunks[index].load(Ordering::Acquire);
        #[allow(clippy::expect_used)]
        let chunk =
            NonNull::new(raw).expect("a slot index exists only once its chunk is published");
        // SAFETY: `chunk` came from `Box::into_raw` in `add_chunk` and is freed only in `Drop`,
        // which needs `&mut self`; it is never mutated after publication, so a shared
        // reference for the lifetime of `&self` is valid.
        let chunk = unsafe { chunk.as_ref() };
        (chunk, offset)
    }

    /// The bookkeeping of `slot`.
    #[inline]
    pub(crate) fn meta(&self, slot: u32) -> &SlotMeta {
        let (chunk, offset) = self.chunk(slot);
        &chunk.slots[offset]
    }

    /// The first byte of `slot`'s buffer, valid for `buffer_size` bytes while the arena lives.
    #[inline]
    pub(crate) fn slot_ptr(&self, slot: u32) -> NonNull<u8> {
        let (chunk, offset) = self.chunk(slot);
        // SAFETY: `offset < chunk.slots.len()`, so `offset * stride` lies inside the chunk's
        // mapping of `slots.len() * stride` bytes.
        unsafe { chunk.memory.as_ptr().add(offset * self.geometry.stride) }
    }

    /// The base address of chunk `index`, or `None` if it is not published yet.
    pub(crate) fn chunk_base(&self, index: usize) -> Option<NonNull<u8>> {
        let raw = self.chunks.get(index)?.load(Ordering::Acquire);
        let chunk = NonNull::new(raw)?;
        // SAFETY: as in `chunk`: published chunks are immutable and live until `Drop`.
        let chunk = unsafe { chunk.as_ref() };
        Some(chunk.memory.as_ptr())
    }
}

impl Links for Arena {
    #[inline]
    fn link(&self, slot: u32) -> &AtomicU32 {
        &self.meta(slot).next
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for entry in &*self.chunks {
            let raw = entry.load(Ordering::Acquire);
            if raw.is_null() {
                continue;
            }
            // SAFETY: `raw` came from `Box::into_raw` in `add_chunk`, and `&mut self` means no
            // handle can reach it any more, so we own it again; dropping it unmaps its memory.
            drop(unsafe { Box::from_raw(raw) });
        }
    }
}

/// Converts a slot number to the free list's `u32` index.
fn slot_index(slot: usize) -> u32 {
    #[allow(clippy::expect_used)]
    u32::try_from(slot).expect("max_buffers <= MAX_BUFFERS_LIMIT keeps slot numbers in u32")
}
