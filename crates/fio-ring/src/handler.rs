//! [`StoredHandler`]: a completion handler kept in its in-flight slot without a heap
//! allocation when it is small.
//!
//! Handlers are closures, and the usual one captures a reference-counted pointer or two: a
//! `Box<dyn FnMut>` would cost an allocation and a free per submitted operation, more than
//! the rest of a nop's round trip. Closures of up to [`INLINE_WORDS`] words (pointer
//! alignment at most) are stored in place; larger ones are boxed, and the box, one pointer,
//! is stored in place instead. A per-type table of function pointers stands in for the
//! `dyn` vtable.

use std::fmt;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop, MaybeUninit};

use crate::completion::{Completion, creates_fd};
use crate::features::OpKind;
use crate::inflight::OpId;
use crate::ops::Resources;
use crate::ring::Ring;

/// Pointer-sized words of in-place storage: room for a closure capturing two pointers.
const INLINE_WORDS: usize = 2;

/// One word of handler storage, pointer-typed so that pointers a closure captures keep their
/// provenance.
type Word = MaybeUninit<*mut ()>;

/// The in-place storage.
type Storage = [Word; INLINE_WORDS];

/// The scalar part of a final completion, passed in registers: the callee builds the
/// [`Completion`] itself. A completion built by the dispatcher and passed by reference would be
/// copied by the callee as a block right after the dispatcher wrote it field by field, which
/// stalls store forwarding (a third of a nop's user-space dispatch cost).
#[derive(Clone, Copy)]
pub(crate) struct CompletionHead {
    /// `res` in the low half, the CQE flags in the high half: one register.
    res_flags: u64,
    id: OpId,
    kind: OpKind,
    /// Whether a non-negative result is a new descriptor: decided where the head is built,
    /// where the kind is often a constant.
    creates_fd: bool,
}

impl CompletionHead {
    /// Packs a final completion's scalars.
    #[inline(always)]
    pub(crate) fn new(id: OpId, kind: OpKind, res: i32, flags: u32) -> Self {
        Self {
            res_flags: u64::from(res as u32) | (u64::from(flags) << 32),
            id,
            kind,
            creates_fd: creates_fd(kind),
        }
    }

    /// The completion these scalars and `resources` make; `is_final` says whether it is the
    /// operation's last.
    #[inline(always)]
    fn completion(self, is_final: bool, resources: Resources) -> Completion {
        Completion::assemble(
            self.id,
            self.kind,
            self.res_flags as u32 as i32,
            (self.res_flags >> 32) as u32,
            is_final,
            self.creates_fd,
            resources,
        )
    }
}

/// What a stored handler can do, for one concrete closure type.
struct Table {
    /// Calls the closure stored at the pointer.
    call: unsafe fn(*mut (), &mut Ring, Completion),
    /// Calls the closure stored at the pointer with a completion that is not the final one
    /// (more of a multishot operation), built in the callee as `finish` builds its own.
    call_more: unsafe fn(*mut (), &mut Ring, CompletionHead, &mut Resources),
    /// Calls the closure held in the two storage words with a final completion, built in the
    /// callee, and drops the closure.
    finish: unsafe fn(Word, Word, &mut Ring, CompletionHead, &mut Resources),
    /// As `finish`, for a final completion without resources (nops, most closes and cancels).
    finish_bare: unsafe fn(Word, Word, &mut Ring, CompletionHead),
    /// Drops the closure stored at the pointer; `None` when it has no drop glue.
    drop: Option<unsafe fn(*mut ())>,
}

/// A type-erased `FnMut(&mut Ring, Completion)`, stored in place when it fits.
///
/// Moving it moves the closure bitwise, as moving any Rust value does; nothing points into
/// the storage from outside.
pub(crate) struct StoredHandler {
    storage: Storage,
    table: &'static Table,
    /// The closure may be `!Send` or `!Sync` (handlers hold `Rc`s).
    _not_send: PhantomData<*mut ()>,
}

/// Whether `F` can be stored in place.
const fn fits_inline<F>() -> bool {
    mem::size_of::<F>() <= mem::size_of::<Storage>()
        && mem::align_of::<F>() <= mem::align_of::<Storage>()
}

impl StoredHandler {
    /// Stores `handler`, in place if it fits, else boxed.
    #[inline(always)]
    pub(crate) fn new<F>(handler: F) -> Self
    where
        F: FnMut(&mut Ring, Completion) + 'static,
    {
        if fits_inline::<F>() {
            // SAFETY: `F` fits in place, checked just above.
            unsafe { Self::in_place(handler) }
        } else {
            // A box is one pointer, so it always fits; calling it calls the closure.
            let boxed: Box<F> = Box::new(handler);
            // SAFETY: `Box<F>` is one pointer, the size and alignment of a storage word.
            unsafe { Self::in_place(boxed) }
        }
    }

    /// Stores `handler` in place.
    ///
    /// # Safety
    /// `F` must fit: `fits_inline::<F>()`.
    #[inline(always)]
    unsafe fn in_place<F>(handler: F) -> Self
    where
        F: FnMut(&mut Ring, Completion) + 'static,
    {
        debug_assert!(fits_inline::<F>(), "handler does not fit in place");
        let mut stored = Self {
            storage: [MaybeUninit::uninit(); INLINE_WORDS],
            table: const {
                &Table {
                    call: call_in_place::<F>,
                    call_more: call_more_in_place::<F>,
                    finish: finish_by_value::<F>,
                    finish_bare: finish_bare_by_value::<F>,
                    drop: if mem::needs_drop::<F>() {
                        Some(drop_in_place::<F>)
                    } else {
                        None
                    },
                }
            },
            _not_send: PhantomData,
        };
        let place = stored.storage.as_mut_ptr().cast::<F>();
        // SAFETY: the storage is large and aligned enough for `F` (the caller's contract), is
        // owned by `stored` and holds nothing yet; `table` was made for this same `F`.
        unsafe { place.write(handler) };
        stored
    }

    /// Calls the handler with one completion.
    #[inline(always)]
    pub(crate) fn call(&mut self, ring: &mut Ring, completion: Completion) {
        let place = self.storage.as_mut_ptr().cast::<()>();
        // SAFETY: the storage holds a live closure of the type `table` was made for (written
        // by `in_place`, dropped only by `Drop`), and `&mut self` makes this the only access
        // to it. The closure is not part of `ring` (the ring takes a handler out of its slot
        // before calling it), so the two mutable borrows are disjoint.
        unsafe { (self.table.call)(place, ring, completion) }
    }
}

impl StoredHandler {
    /// Calls the handler with a completion that is not its operation's last, made of `head`
    /// and what `resources` held (taken, leaving `Resources::None`).
    ///
    /// The resources go by address: passed by value, their 56 bytes would be copied once
    /// more at the call, a by-value argument being a fresh copy the callee owns.
    #[inline(always)]
    pub(crate) fn call_more(
        &mut self,
        ring: &mut Ring,
        head: CompletionHead,
        resources: &mut Resources,
    ) {
        let place = self.storage.as_mut_ptr().cast::<()>();
        // SAFETY: as in `call`.
        unsafe { (self.table.call_more)(place, ring, head, resources) }
    }

    /// Calls the handler with its operation's final completion, made of `head` and what
    /// `resources` held (taken, leaving `Resources::None`; by address as in
    /// [`call_more`](Self::call_more)), then drops it.
    #[inline(always)]
    pub(crate) fn finish(self, ring: &mut Ring, head: CompletionHead, resources: &mut Resources) {
        let this = ManuallyDrop::new(self);
        let [first, second] = this.storage;
        // SAFETY: the words hold a live closure of the type `table` was made for, and `this`
        // never drops it, so the callee takes the only copy in use.
        unsafe { (this.table.finish)(first, second, ring, head, resources) }
    }

    /// As [`finish`](Self::finish), for a completion without resources.
    #[inline(always)]
    pub(crate) fn finish_bare(self, ring: &mut Ring, head: CompletionHead) {
        let this = ManuallyDrop::new(self);
        let [first, second] = this.storage;
        // SAFETY: as in `finish`.
        unsafe { (this.table.finish_bare)(first, second, ring, head) }
    }
}

impl Drop for StoredHandler {
    #[inline]
    fn drop(&mut self) {
        if let Some(drop) = self.table.drop {
            let place = self.storage.as_mut_ptr().cast::<()>();
            // SAFETY: the storage holds a live closure of the type `table` was made for, and
            // this is the last use of it.
            unsafe { drop(place) }
        }
    }
}

impl fmt::Debug for StoredHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredHandler").finish_non_exhaustive()
    }
}

/// Calls the `F` stored at `place`.
///
/// # Safety
/// `place` must point to a live `F` that nothing else accesses during the call.
unsafe fn call_in_place<F>(place: *mut (), ring: &mut Ring, completion: Completion)
where
    F: FnMut(&mut Ring, Completion),
{
    // SAFETY: `place` points to a live, unaliased `F` (this function's contract).
    let handler = unsafe { &mut *place.cast::<F>() };
    handler(ring, completion);
}

/// Calls the `F` stored at `place` with a completion that is not the final one, built here.
///
/// # Safety
/// `place` must point to a live `F` that nothing else accesses during the call.
unsafe fn call_more_in_place<F>(
    place: *mut (),
    ring: &mut Ring,
    head: CompletionHead,
    resources: &mut Resources,
) where
    F: FnMut(&mut Ring, Completion),
{
    // SAFETY: `place` points to a live, unaliased `F` (this function's contract).
    let handler = unsafe { &mut *place.cast::<F>() };
    handler(ring, head.completion(false, mem::take(resources)));
}

/// Moves the `F` held in the two words out, calls it once with a final completion built here
/// and drops it.
///
/// # Safety
/// The words must hold a live `F` (as written by `StoredHandler::in_place`) that nothing else
/// uses or drops afterwards.
unsafe fn finish_by_value<F>(
    first: Word,
    second: Word,
    ring: &mut Ring,
    head: CompletionHead,
    resources: &mut Resources,
) where
    F: FnMut(&mut Ring, Completion),
{
    let storage: Storage = [first, second];
    // SAFETY: the storage holds a live `F` that this call now owns (this function's
    // contract); it is read from a local copy, aligned as the original storage was.
    let mut handler = unsafe { storage.as_ptr().cast::<F>().read() };
    handler(ring, head.completion(true, mem::take(resources)));
}

/// As [`finish_by_value`], with no resources.
///
/// # Safety
/// As [`finish_by_value`].
unsafe fn finish_bare_by_value<F>(first: Word, second: Word, ring: &mut Ring, head: CompletionHead)
where
    F: FnMut(&mut Ring, Completion),
{
    let storage: Storage = [first, second];
    // SAFETY: as in `finish_by_value`.
    let mut handler = unsafe { storage.as_ptr().cast::<F>().read() };
    handler(ring, head.completion(true, Resources::None));
}

/// Drops the `F` stored at `place`.
///
/// # Safety
/// `place` must point to a live `F`, never used again afterwards.
unsafe fn drop_in_place<F>(place: *mut ()) {
    // SAFETY: `place` points to a live `F` that is not used again (this function's contract).
    unsafe { place.cast::<F>().drop_in_place() }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn small_closures_fit_in_place_and_large_ones_are_boxed() {
        assert!(fits_inline::<()>());
        assert!(fits_inline::<Rc<()>>());
        assert!(fits_inline::<(Rc<()>, usize)>());
        assert!(!fits_inline::<(Rc<()>, usize, usize)>());
        assert!(fits_inline::<Box<[usize; 4]>>());
    }

    #[test]
    fn drops_captures_exactly_once_in_place_and_boxed() {
        let small = Rc::new(Cell::new(0));
        let large = Rc::new(Cell::new(0));
        let padding = [7_u64; 8];
        let captured_small = small.clone();
        let stored_small = StoredHandler::new(move |_: &mut Ring, _: Completion| {
            captured_small.set(captured_small.get() + 1);
        });
        let captured_large = large.clone();
        let stored_large = StoredHandler::new(move |_: &mut Ring, _: Completion| {
            captured_large.set(captured_large.get() + padding.len());
        });
        assert_eq!(Rc::strong_count(&small), 2);
        assert_eq!(Rc::strong_count(&large), 2);
        // Moving a stored handler moves the closure, never duplicates or drops it.
        let moved = [stored_small, stored_large];
        assert_eq!(Rc::strong_count(&small), 2);
        drop(moved);
        assert_eq!(Rc::strong_count(&small), 1);
        assert_eq!(Rc::strong_count(&large), 1);
    }

    #[test]
    fn ring_calls_in_place_and_boxed_handlers() {
        let mut ring = Ring::new(crate::RingConfig::new(8)).unwrap();
        let calls = Rc::new(Cell::new(0));
        let small = calls.clone();
        ring.submit(crate::Op::nop(), move |_, completion| {
            assert!(completion.is_final());
            small.set(small.get() + 1);
        })
        .unwrap();
        let large = calls.clone();
        let weights = [10_usize; 6];
        ring.submit(crate::Op::nop(), move |_, _| {
            large.set(large.get() + weights[5]);
        })
        .unwrap();
        for _ in 0..10 {
            if calls.get() == 11 {
                break;
            }
            ring.wait(None).unwrap();
        }
        assert_eq!(calls.get(), 11);
        // Both closures were dropped with their final completions.
        assert_eq!(Rc::strong_count(&calls), 1);
    }
}
