//! The lock-free free list: a Treiber stack of slot indices with an ABA tag.
//!
//! The stack's head is one `AtomicU64` packing the index of the top free slot (low 32 bits)
//! with a tag (high 32 bits) that every successful push or pop bumps. Each slot's link to the
//! slot below it lives in the slot's own metadata (an `AtomicU32`), reached through
//! [`Links`]. Pop and push are one compare-and-swap each when uncontended, so taking and giving
//! back a buffer is O(1) and never takes a lock.
//!
//! The tag defeats ABA: a popper that read head `(a, t)` and link `a -> b` cannot install `b`
//! after other threads popped `a`, popped `b` and pushed `a` again, because the head is then
//! `(a, t + 3)`. A false match needs exactly a multiple of 2^32 head updates to land inside one
//! popper's read-to-CAS window.
//!
//! Reading a stale link is harmless: slots are never freed while the pool lives, the link is an
//! atomic, and the tag makes the following CAS fail.

use crate::primitive::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The index that marks the bottom of the stack (and an empty stack in the head).
pub(crate) const EMPTY: u32 = u32::MAX;

/// Where the free list finds the link of each slot.
pub(crate) trait Links {
    /// The link of `slot`: the index of the free slot below it while `slot` is on the stack.
    ///
    /// Called only with indices that have been pushed at least once.
    fn link(&self, slot: u32) -> &AtomicU32;
}

/// A Treiber stack of free slot indices.
#[derive(Debug)]
pub(crate) struct FreeList {
    /// `(tag << 32) | top_index`, with `top_index == EMPTY` when no slot is free.
    head: AtomicU64,
}

impl FreeList {
    /// An empty free list.
    pub(crate) fn new() -> Self {
        Self {
            head: AtomicU64::new(pack(EMPTY, 0)),
        }
    }

    /// Takes the most recently pushed slot, or `None` if no slot is free.
    ///
    /// The successful CAS acquires, pairing with the release of the push that freed the slot,
    /// so the new owner sees every write the previous owner made to the buffer. Every write to
    /// the head is a read-modify-write, so that release sequence is never broken.
    #[inline]
    pub(crate) fn pop(&self, links: &impl Links) -> Option<u32> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let (top, tag) = unpack(head);
            if top == EMPTY {
                return None;
            }
            // Relaxed suffices: the acquire load of `head` above synchronised with the push
            // that stored this link, and if the link has changed since, so has the tag.
            let below = links.link(top).load(Ordering::Relaxed);
            let next = pack(below, tag.wrapping_add(1));
            match self
                .head
                .compare_exchange_weak(head, next, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(top),
                Err(actual) => head = actual,
            }
        }
    }

    /// Pushes one slot.
    #[inline]
    pub(crate) fn push(&self, slot: u32, links: &impl Links) {
        self.push_chain(slot, slot, links);
    }

    /// Pushes a chain of slots whose links already lead from `first` down to `last`, so that
    /// `first` becomes the top. One CAS publishes a whole new chunk this way.
    ///
    /// The successful CAS releases, so the links and the buffer contents written before it
    /// are visible to whichever thread pops these slots.
    #[inline]
    pub(crate) fn push_chain(&self, first: u32, last: u32, links: &impl Links) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let (top, tag) = unpack(head);
            links.link(last).store(top, Ordering::Relaxed);
            let next = pack(first, tag.wrapping_add(1));
            match self
                .head
                .compare_exchange_weak(head, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => head = actual,
            }
        }
    }
}

/// Packs a slot index and an ABA tag into one head word.
#[inline]
fn pack(index: u32, tag: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(index)
}

/// Splits a head word into its slot index and ABA tag.
#[inline]
fn unpack(word: u64) -> (u32, u32) {
    // Truncation is the point: the low half is the index, the high half the tag.
    #[allow(clippy::cast_possible_truncation)]
    (word as u32, (word >> 32) as u32)
}

#[cfg(all(test, not(fio_loom)))]
mod tests {
    use super::*;

    /// A plain array of links, standing in for the arena's slot metadata.
    struct Array(Vec<AtomicU32>);

    impl Array {
        fn new(len: u32) -> Self {
            Self((0..len).map(|_| AtomicU32::new(EMPTY)).collect())
        }
    }

    impl Links for Array {
        fn link(&self, slot: u32) -> &AtomicU32 {
            &self.0[slot as usize]
        }
    }

    #[test]
    fn pack_round_trips() {
        assert_eq!(unpack(pack(7, 9)), (7, 9));
        assert_eq!(unpack(pack(EMPTY, u32::MAX)), (EMPTY, u32::MAX));
    }

    #[test]
    fn pops_in_lifo_order() {
        let links = Array::new(4);
        let list = FreeList::new();
        assert_eq!(list.pop(&links), None);
        list.push(1, &links);
        list.push(3, &links);
        assert_eq!(list.pop(&links), Some(3));
        list.push(0, &links);
        assert_eq!(list.pop(&links), Some(0));
        assert_eq!(list.pop(&links), Some(1));
        assert_eq!(list.pop(&links), None);
    }

    #[test]
    fn chain_push_keeps_its_order_above_the_old_top() {
        let links = Array::new(5);
        let list = FreeList::new();
        list.push(0, &links);
        links.link(2).store(3, Ordering::Relaxed);
        links.link(3).store(4, Ordering::Relaxed);
        list.push_chain(2, 4, &links);
        let popped: Vec<_> = std::iter::from_fn(|| list.pop(&links)).collect();
        assert_eq!(popped, [2, 3, 4, 0]);
    }

    #[test]
    fn every_operation_bumps_the_tag() {
        let links = Array::new(1);
        let list = FreeList::new();
        list.push(0, &links);
        assert_eq!(list.pop(&links), Some(0));
        list.push(0, &links);
        let (top, tag) = unpack(list.head.load(Ordering::Relaxed));
        assert_eq!((top, tag), (0, 3));
    }
}
