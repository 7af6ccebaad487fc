//! The completion queue read in place: [`CompletionRing`].
//!
//! The io-uring crate hands out a completion as a copy made by an out-of-line `Clone`, and its
//! queue view loads both indices when it is made and stores the head when it is dropped: a
//! tick that dispatches entries one at a time (so that a panicking handler leaves the rest
//! queued) paid all of that per completion. This module maps the completion ring a second
//! time, reads the tail once per batch, reads each entry's three fields straight from the
//! shared memory and publishes the head before the entry is dispatched.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use fio_sys::SharedMap;
use io_uring::IoUring;

use crate::ring::RawCqe;

/// `IORING_OFF_CQ_RING`: the `mmap` offset that selects the completion ring.
const OFF_CQ_RING: libc::off_t = 0x800_0000;

/// `IORING_SETUP_CQE32`: 32-byte completion entries, which this reader does not handle.
const SETUP_CQE32: u32 = 1 << 11;

/// The kernel's `struct io_cqring_offsets`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CqOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    overflow: u32,
    cqes: u32,
    flags: u32,
    resv1: u32,
    user_addr: u64,
}

/// The kernel's `struct io_uring_params`, whose layout `io_uring::Parameters` (documented as
/// a transparent wrapper of it) has.
#[repr(C)]
struct Params {
    sq_entries: u32,
    cq_entries: u32,
    flags: u32,
    sq_thread_cpu: u32,
    sq_thread_idle: u32,
    features: u32,
    wq_fd: u32,
    resv: [u32; 3],
    /// `struct io_sqring_offsets`, not read here.
    sq_off: [u32; 10],
    cq_off: CqOffsets,
}

const _: () = assert!(size_of::<Params>() == 120);
const _: () = assert!(size_of::<io_uring::Parameters>() == size_of::<Params>());

/// The kernel's `struct io_uring_cqe` (16 bytes, without `CQE32`).
#[repr(C)]
struct Cqe {
    user_data: u64,
    res: i32,
    flags: u32,
}

/// A second mapping of a ring's completion queue, through which the tick reads completions.
///
/// Only this thread consumes completions (a `Ring` is `!Send`): the head is written here, or
/// by the io-uring crate's own queue view on the same thread (teardown), which reads the head
/// from the shared memory whenever it is made; the two never overlap.
#[derive(Debug)]
pub(crate) struct CompletionRing {
    /// The head index, written by us (release), read by the kernel.
    head: NonNull<AtomicU32>,
    /// The tail index, written by the kernel (release), read by us (acquire).
    tail: NonNull<AtomicU32>,
    mask: u32,
    /// The entries array: `mask + 1` entries.
    cqes: NonNull<Cqe>,
    /// The mapping the pointers above point into, unmapped when this drops.
    _map: SharedMap,
}

impl CompletionRing {
    /// Maps `uring`'s completion ring again (kept out of forked children, as the crate keeps
    /// its own mapping).
    ///
    /// # Errors
    /// - `Unsupported` for 32-byte completion entries, or offsets outside the ring.
    /// - `mmap(2)`'s error.
    pub(crate) fn map(uring: &IoUring) -> io::Result<Self> {
        let params: *const io_uring::Parameters = uring.params();
        // SAFETY: `io_uring::Parameters` is `repr(transparent)` over `io_uring_params`, as its
        // documentation says, and `Params` is that struct's layout (same size, checked above);
        // the reference lives as long as `uring`, and only reads follow.
        let params = unsafe { &*params.cast::<Params>() };
        if params.flags & SETUP_CQE32 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "32-byte completion entries",
            ));
        }
        let off = params.cq_off;
        let entries = params.cq_entries as usize;
        let len = off.cqes as usize + entries * size_of::<Cqe>();
        let word = size_of::<u32>();
        let inside =
            |offset: u32| offset as usize + word <= len && (offset as usize).is_multiple_of(word);
        if !(inside(off.head)
            && inside(off.tail)
            && inside(off.ring_mask)
            && (off.cqes as usize).is_multiple_of(align_of::<Cqe>())
            && entries.is_power_of_two())
        {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "completion ring offsets out of range",
            ));
        }
        // SAFETY: the descriptor is the ring's, open as long as `uring`, which outlives
        // this call.
        let fd = unsafe { BorrowedFd::borrow_raw(uring.as_raw_fd()) };
        let map = SharedMap::map(fd, OFF_CQ_RING, len)?;
        // Kept out of forked children, as the io-uring crate keeps its own mapping.
        map.dontfork()?;
        let base = map.as_ptr();
        let at = |offset: u32| {
            // SAFETY: every offset passed was checked above to lie inside the `len` bytes just
            // mapped, aligned for what is read there.
            unsafe { base.add(offset as usize) }
        };
        let (head, tail, cqes) = (
            at(off.head).cast::<AtomicU32>(),
            at(off.tail).cast::<AtomicU32>(),
            at(off.cqes).cast::<Cqe>(),
        );
        // SAFETY: the mask is an aligned u32 inside the mapping, written by the kernel at
        // setup and constant since.
        let mask = unsafe { at(off.ring_mask).cast::<u32>().read() };
        Ok(Self {
            head,
            tail,
            mask,
            cqes,
            _map: map,
        })
    }

    /// The head and the tail: the completions from `head` up to (not including) `tail` are
    /// ready to be read.
    #[inline(always)]
    pub(crate) fn bounds(&self) -> (u32, u32) {
        // SAFETY: the head points into the mapping `self` owns, and is written only on this
        // thread.
        let head = unsafe { self.head.as_ref() }.load(Ordering::Relaxed);
        // SAFETY: the tail points into the mapping `self` owns; the acquire load orders the
        // reads of the entries the kernel published before it.
        let tail = unsafe { self.tail.as_ref() }.load(Ordering::Acquire);
        (head, tail)
    }

    /// Whether no completion is ready.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        let (head, tail) = self.bounds();
        head == tail
    }

    /// Reads the completion at `head` and gives its slot back to the kernel (the head moves
    /// past it). `head` must be the current head, with `head != tail` from
    /// [`bounds`](Self::bounds).
    #[inline(always)]
    pub(crate) fn pop(&self, head: u32) -> RawCqe {
        let index = (head & self.mask) as usize;
        // SAFETY: `index` is within the `mask + 1` entries of the mapping. The entry at
        // the head was published by the kernel (the caller saw the tail past it with an
        // acquire load); the kernel does not write it again before the head moves past it,
        // which the store below does only after the fields are read.
        let entry = unsafe { self.cqes.add(index) };
        // SAFETY: as just said: a published entry inside the mapping, not written meanwhile.
        let cqe = unsafe { entry.read() };
        // SAFETY: the head points into the mapping `self` owns.
        unsafe { self.head.as_ref() }.store(head.wrapping_add(1), Ordering::Release);
        RawCqe {
            user_data: cqe.user_data,
            res: cqe.res,
            flags: cqe.flags,
        }
    }
}
