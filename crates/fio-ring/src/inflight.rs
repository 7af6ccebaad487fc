//! The in-flight table: a generational slab whose keys travel through the kernel as `user_data`.
//!
//! Every operation owns one slot from submission until its final completion. The slot index
//! and a per-slot generation are packed into the 64-bit `user_data` (`slot << 32 |
//! generation`), so a completion that arrives for a slot that has since been freed and reused
//! carries the old generation and is ignored instead of being delivered to the wrong owner
//! (FastRing's generation tag, without pointer packing).
//!
//! This module is pure bookkeeping: no unsafe code and no kernel calls, so it is unit-tested
//! directly.

use std::fmt;

/// Identifies one submitted operation for as long as it is in flight.
///
/// An `OpId` is the operation's io_uring `user_data`. Once the operation's final completion
/// has been dispatched the id is *stale*: cancelling it returns
/// [`Error::StaleOp`](crate::Error::StaleOp) and can never reach another operation, even if
/// the slot is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(u64);

/// `user_data` reserved for internal requests whose completions are dropped unseen
/// (the `AsyncCancel` entries pushed by [`Ring::cancel`](crate::Ring::cancel)).
pub(crate) const IGNORED_USER_DATA: u64 = u64::MAX;

/// The largest slot index handed out; `u32::MAX` stays free so that no valid id can equal
/// [`IGNORED_USER_DATA`].
const MAX_SLOTS: usize = u32::MAX as usize - 1;

/// The stamp of a vacant slot ([`Slot::stamp`]): a generation never issued, so no id's
/// generation equals it.
const VACANT: u32 = u32::MAX;

/// The generation a slot issues after `generation`: counting up through `1..VACANT`, then
/// around. Generation 0 is never issued either, so a zeroed `user_data` can never look valid.
const fn next_generation(generation: u32) -> u32 {
    match generation.wrapping_add(1) {
        VACANT => 1,
        next => next,
    }
}

impl OpId {
    /// Packs a slot index and its generation.
    const fn new(slot: u32, generation: u32) -> Self {
        Self(((slot as u64) << 32) | generation as u64)
    }

    /// Rebuilds an id from a completion's `user_data`.
    pub(crate) const fn from_user_data(user_data: u64) -> Self {
        Self(user_data)
    }

    /// The `user_data` value this operation's entries carry.
    pub const fn user_data(self) -> u64 {
        self.0
    }

    /// The slab slot index.
    const fn slot(self) -> usize {
        (self.0 >> 32) as usize
    }

    /// The generation the slot had when this id was issued.
    const fn generation(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op#{}.{}", self.slot(), self.generation())
    }
}

/// One slab slot: its stamp, and the value, which stays in place (vacant values are
/// `T::default()`) so that hot paths fill and empty fields where they are instead of moving
/// whole entries in and out.
///
/// `repr(C)` with the header first and cache-line aligned, so that the header and the start of
/// the value (where `OpSlot` keeps its hot fields) share one line.
#[derive(Debug)]
#[repr(C, align(64))]
struct Slot<T> {
    /// A live slot's stamp is the generation of the id that owns it; a vacant one's is
    /// [`VACANT`]. So one comparison with an id's generation tells the live slot of that id
    /// from a stale or vacant one.
    stamp: u32,
    /// The generation a vacant slot issues next (unused while live).
    next: u32,
    value: T,
}

impl<T> Slot<T> {
    /// Whether an operation owns the slot.
    fn is_live(&self) -> bool {
        self.stamp != VACANT
    }

    /// Whether the slot is live and owned by `id`.
    #[inline(always)]
    fn is_owned_by(&self, id: OpId) -> bool {
        self.stamp == id.generation()
    }

    /// Frees the live slot: the next id it issues gets the next generation.
    #[inline(always)]
    fn vacate(&mut self) {
        self.next = next_generation(self.stamp);
        self.stamp = VACANT;
    }
}

/// What [`Slab::get_or_vacate`] found: the value of a slot it freed, or of one still live.
pub(crate) enum Lookup<'a, T> {
    /// The slot was freed; the value is the caller's to empty (see [`Slab::vacate`]).
    Vacated(&'a mut T),
    /// The slot is still live.
    Live(&'a mut T),
}

/// A generational slab. Freed slots are reused LIFO, which keeps the hot set small and the
/// memory warm for the common "submit, complete, submit again" loop.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// Indices of vacant slots; every slot is either live or listed here exactly once.
    free: Vec<u32>,
}

impl<T: Default> Slab<T> {
    /// An empty slab with room for `capacity` live entries before it reallocates.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            slots: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
        }
    }

    /// Number of live entries.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Claims a vacant slot and returns its id and its (default) value for the caller to
    /// fill, or `None` when four billion slots are live.
    #[inline]
    pub(crate) fn claim(&mut self) -> Option<(OpId, &mut T)> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                if self.slots.len() >= MAX_SLOTS {
                    return None;
                }
                self.slots.push(Slot {
                    stamp: VACANT,
                    next: 1,
                    value: T::default(),
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        debug_assert!(!slot.is_live(), "free list holds a live slot");
        slot.stamp = slot.next;
        Some((OpId::new(index, slot.stamp), &mut slot.value))
    }

    /// Stores `value` and returns its id, or `None` when four billion slots are live.
    pub(crate) fn insert(&mut self, value: T) -> Option<OpId> {
        let (id, slot) = self.claim()?;
        *slot = value;
        Some(id)
    }

    /// The live entry for `id`, or `None` when the id is stale.
    #[inline]
    pub(crate) fn get(&self, id: OpId) -> Option<&T> {
        let slot = self.slots.get(id.slot())?;
        slot.is_owned_by(id).then_some(&slot.value)
    }

    /// The live entry for `id`, mutably, or `None` when the id is stale.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self, id: OpId) -> Option<&mut T> {
        let slot = self.slots.get_mut(id.slot())?;
        slot.is_owned_by(id).then_some(&mut slot.value)
    }

    /// Frees the entry for `id` and returns it; the slot's generation moves on so that `id`
    /// and any completion still carrying it become stale.
    pub(crate) fn remove(&mut self, id: OpId) -> Option<T> {
        let value = std::mem::take(self.get_mut(id)?);
        self.release(id);
        Some(value)
    }

    /// Frees the slot of `id` without touching its value, which the caller has already
    /// emptied back to its vacant state (anything left in it is dropped when the slot is
    /// claimed and overwritten, or with the slab).
    #[inline(always)]
    pub(crate) fn release(&mut self, id: OpId) {
        let Some(slot) = self.slots.get_mut(id.slot()) else {
            return;
        };
        if !slot.is_owned_by(id) {
            return;
        }
        slot.vacate();
        self.free.push(id.slot() as u32);
    }

    /// Frees the slot of `id`, like [`release`](Self::release), and returns its value for
    /// the caller to empty back to its vacant state before the next [`claim`](Self::claim);
    /// `None` when the id is stale. One lookup where `get_mut` and `release` take two.
    #[inline(always)]
    pub(crate) fn vacate(&mut self, id: OpId) -> Option<&mut T> {
        match self.get_or_vacate(id, |_| true)? {
            Lookup::Vacated(value) | Lookup::Live(value) => Some(value),
        }
    }

    /// Looks `id` up once and, when `vacate` says so of its value, frees the slot as
    /// [`vacate`](Self::vacate) does; `None` when the id is stale. For a caller that decides
    /// from the value whether this is its end, without a second lookup either way.
    #[inline(always)]
    pub(crate) fn get_or_vacate(
        &mut self,
        id: OpId,
        vacate: impl FnOnce(&T) -> bool,
    ) -> Option<Lookup<'_, T>> {
        let slot = self.slots.get_mut(id.slot())?;
        if !slot.is_owned_by(id) {
            return None;
        }
        if !vacate(&slot.value) {
            return Some(Lookup::Live(&mut slot.value));
        }
        slot.vacate();
        self.free.push(id.slot() as u32);
        Some(Lookup::Vacated(&mut slot.value))
    }

    /// Ids of every live entry, in slot order.
    pub(crate) fn ids(&self) -> Vec<OpId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.is_live())
            .map(|(index, slot)| OpId::new(index as u32, slot.stamp))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_slot_and_generation() {
        let id = OpId::new(7, 3);
        assert_eq!(id.user_data(), (7 << 32) | 3);
        assert_eq!(id.slot(), 7);
        assert_eq!(id.generation(), 3);
        assert_eq!(OpId::from_user_data(id.user_data()), id);
        assert_eq!(id.to_string(), "op#7.3");
    }

    #[test]
    fn stale_ids_never_reach_a_reused_slot() {
        let mut slab = Slab::with_capacity(2);
        let first = slab.insert("first").unwrap();
        assert_eq!(slab.remove(OpId::new(9, 1)), None);
        assert_eq!(slab.remove(first), Some("first"));
        let second = slab.insert("second").unwrap();
        assert_eq!(first.slot(), second.slot(), "slot is reused");
        assert_ne!(first, second);
        assert_eq!(slab.get(first), None);
        assert_eq!(slab.get_mut(first), None);
        assert_eq!(slab.remove(first), None);
        assert_eq!(slab.get(second), Some(&"second"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn counts_and_lists_live_entries() {
        let mut slab = Slab::with_capacity(0);
        let ids: Vec<_> = (0..5).map(|n| slab.insert(n).unwrap()).collect();
        assert_eq!(slab.len(), 5);
        assert_eq!(slab.remove(ids[1]), Some(1));
        assert_eq!(slab.remove(ids[3]), Some(3));
        assert_eq!(slab.ids(), vec![ids[0], ids[2], ids[4]]);
        assert_eq!(slab.len(), 3);
        // Double removal is refused.
        assert_eq!(slab.remove(ids[3]), None);
        assert_eq!(slab.len(), 3);
        slab.release(ids[0]);
        slab.release(ids[0]);
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.get(ids[0]), None);
    }

    #[test]
    fn vacate_frees_once_and_leaves_the_value_to_empty() {
        let mut slab = Slab::with_capacity(1);
        let id = slab.insert(5).unwrap();
        let value = slab.vacate(id).unwrap();
        assert_eq!(std::mem::take(value), 5);
        assert_eq!(slab.len(), 0);
        assert!(slab.vacate(id).is_none(), "stale after the first vacate");
        let next = slab.insert(6).unwrap();
        assert_ne!(next, id);
        assert_eq!(slab.get(next), Some(&6));
    }

    #[test]
    fn get_or_vacate_frees_only_when_asked() {
        let mut slab = Slab::with_capacity(1);
        let id = slab.insert(5).unwrap();
        assert!(matches!(
            slab.get_or_vacate(id, |value| *value == 6),
            Some(Lookup::Live(&mut 5))
        ));
        assert_eq!(slab.len(), 1);
        assert!(matches!(
            slab.get_or_vacate(id, |value| *value == 5),
            Some(Lookup::Vacated(&mut 5))
        ));
        assert_eq!(slab.len(), 0);
        assert!(
            slab.get_or_vacate(id, |_| true).is_none(),
            "stale once vacated"
        );
    }

    #[test]
    fn generation_skips_zero_on_wrap() {
        let mut slab = Slab::with_capacity(1);
        let id = slab.insert(()).unwrap();
        let (claimed, value) = (id, slab.get_mut(id).unwrap());
        *value = ();
        assert_eq!(claimed, id);
        slab.slots[0].stamp = VACANT - 1;
        let wrapped = OpId::new(0, VACANT - 1);
        assert_eq!(slab.remove(wrapped), Some(()));
        assert_eq!(slab.slots[0].next, 1);
        assert_eq!(slab.get(id), None);
        assert_eq!(slab.insert(()), Some(OpId::new(0, 1)));
    }

    #[test]
    fn vacant_slots_match_no_id() {
        let mut slab = Slab::with_capacity(1);
        let id = slab.insert(()).unwrap();
        assert_eq!(slab.remove(id), Some(()));
        // Neither the generation it issues next nor any other that can be issued finds the
        // vacant slot (ids carry only issued generations: `VACANT` is never one).
        let next = slab.slots[0].next;
        for generation in [0, 1, next, VACANT - 1] {
            assert_eq!(slab.get(OpId::new(0, generation)), None);
            assert!(
                slab.get_or_vacate(OpId::new(0, generation), |_| true)
                    .is_none()
            );
        }
        assert_eq!(slab.len(), 0);
    }

    #[test]
    fn ignored_user_data_is_never_a_valid_id() {
        let mut slab: Slab<()> = Slab::with_capacity(0);
        assert_eq!(slab.get(OpId::from_user_data(IGNORED_USER_DATA)), None);
        assert_eq!(slab.remove(OpId::from_user_data(IGNORED_USER_DATA)), None);
    }
}
