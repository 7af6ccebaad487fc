//! [`FdTable`]: a reactor thread's own table of connections, indexed by the descriptor the
//! uuid carries, so finding a connection is an index and a compare, with no hash and no lock.
//!
//! Descriptors are unique per process while open, so at most one open connection sits at an
//! index. For a moment two may: a connection whose descriptor was closed by its engine but
//! whose close hasn't been processed yet, and a new connection the kernel already gave the
//! same number. The later one then waits in a short overflow list until the earlier leaves.
//! Each entry keeps its whole uuid, and a lookup compares it, so a stale uuid finds nothing.

use std::fmt;

use crate::uuid::Uuid;

/// Connections (or an engine's per-connection state) of one reactor thread, by uuid.
pub(crate) struct FdTable<T> {
    /// By descriptor; `None` where this thread has no connection.
    slots: Vec<Option<Box<Entry<T>>>>,
    /// Entries whose descriptor's slot was taken by an earlier, closing connection.
    overflow: Vec<Box<Entry<T>>>,
    /// Entries in all.
    len: usize,
}

/// One entry: its uuid, checked by every lookup, and the value. The uuid comes first (C
/// layout), next to the value's first fields, rather than wherever the compiler puts it:
/// behind a connection's whole entry it took a cache line of its own.
#[repr(C)]
struct Entry<T> {
    uuid: Uuid,
    value: T,
}

impl<T> Default for FdTable<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            overflow: Vec::new(),
            len: 0,
        }
    }
}

/// The slot index of `uuid`'s descriptor. Descriptors are never negative; one that were would
/// land past [`LAST_SLOT`], in the overflow list.
#[inline]
fn index(uuid: Uuid) -> usize {
    // The unsigned reading of the fd is one move, where a checked conversion costs a test
    // and a branch in each of the several lookups per request.
    uuid.fd().cast_unsigned() as usize
}

/// The highest index a (non-negative) descriptor gets.
const LAST_SLOT: usize = i32::MAX as usize;

impl<T> FdTable<T> {
    /// The value of `uuid`, if it is here.
    #[inline]
    pub(crate) fn get(&self, uuid: &Uuid) -> Option<&T> {
        match self.slots.get(index(*uuid)) {
            Some(Some(entry)) if entry.uuid == *uuid => Some(&entry.value),
            _ if self.overflow.is_empty() => None,
            _ => self
                .overflow
                .iter()
                .find(|entry| entry.uuid == *uuid)
                .map(|entry| &entry.value),
        }
    }

    /// The value of `uuid`, mutably, if it is here.
    #[inline]
    pub(crate) fn get_mut(&mut self, uuid: &Uuid) -> Option<&mut T> {
        // One indexing of `slots` (it borrows only that field, so the fallback may still use
        // `overflow`): this runs several times per request.
        match self.slots.get_mut(index(*uuid)) {
            Some(Some(entry)) if entry.uuid == *uuid => Some(&mut entry.value),
            _ => self
                .overflow
                .iter_mut()
                .find(|entry| entry.uuid == *uuid)
                .map(|entry| &mut entry.value),
        }
    }

    /// Whether `uuid` is here.
    #[inline]
    pub(crate) fn contains_key(&self, uuid: &Uuid) -> bool {
        self.get(uuid).is_some()
    }

    /// Adds `value` for `uuid`; returns the value `uuid` had, if it was here already.
    pub(crate) fn insert(&mut self, uuid: Uuid, value: T) -> Option<T> {
        if let Some(old) = self.get_mut(&uuid) {
            return Some(std::mem::replace(old, value));
        }
        let at = index(uuid);
        if at > LAST_SLOT {
            // Not a descriptor (a negative fd can't be built into a uuid); kept aside.
            self.overflow.push(Box::new(Entry { uuid, value }));
            self.len += 1;
            return None;
        }
        if self.slots.len() <= at {
            self.slots.resize_with(at + 1, || None);
        }
        let entry = Box::new(Entry { uuid, value });
        match &mut self.slots[at] {
            slot @ None => *slot = Some(entry),
            Some(_) => self.overflow.push(entry),
        }
        self.len += 1;
        None
    }

    /// Takes `uuid`'s value out.
    pub(crate) fn remove(&mut self, uuid: &Uuid) -> Option<T> {
        let at = index(*uuid);
        let in_slot = matches!(self.slots.get(at), Some(Some(entry)) if entry.uuid == *uuid);
        let removed = if in_slot {
            let entry = self.slots[at].take();
            // A connection that waited for this descriptor's slot moves in.
            if let Some(waiting) = self
                .overflow
                .iter()
                .position(|entry| index(entry.uuid) == at)
            {
                self.slots[at] = Some(self.overflow.swap_remove(waiting));
            }
            entry
        } else {
            let position = self.overflow.iter().position(|entry| entry.uuid == *uuid)?;
            Some(self.overflow.swap_remove(position))
        };
        removed.map(|entry| {
            self.len -= 1;
            entry.value
        })
    }

    /// Entries here.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is here.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry's uuid and value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Uuid, &T)> {
        self.slots
            .iter()
            .flatten()
            .chain(&self.overflow)
            .map(|entry| (&entry.uuid, &entry.value))
    }

    /// Every entry's uuid and value, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&Uuid, &mut T)> {
        self.slots
            .iter_mut()
            .flatten()
            .chain(&mut self.overflow)
            .map(|entry| (&entry.uuid, &mut entry.value))
    }

    /// Every uuid here.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &Uuid> {
        self.iter().map(|(uuid, _)| uuid)
    }

    /// Every value here.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.iter().map(|(_, value)| value)
    }
}

impl<T> fmt::Debug for FdTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FdTable")
            .field("len", &self.len)
            .field("overflow", &self.overflow.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_compare_the_whole_uuid() {
        let mut table = FdTable::default();
        let first = Uuid::from_parts(5, 1);
        assert_eq!(table.insert(first, "a"), None);
        assert_eq!(table.get(&first), Some(&"a"));
        assert_eq!(
            table.get(&Uuid::from_parts(5, 2)),
            None,
            "stale or newer uuid"
        );
        assert_eq!(table.get(&Uuid::from_parts(6, 1)), None);
        assert_eq!(table.insert(first, "b"), Some("a"));
        assert_eq!(table.len(), 1);
        assert_eq!(table.remove(&first), Some("b"));
        assert!(table.is_empty());
        assert_eq!(table.remove(&first), None);
    }

    #[test]
    fn a_reused_descriptor_waits_in_the_overflow_until_the_old_entry_leaves() {
        let mut table = FdTable::default();
        let old = Uuid::from_parts(9, 1);
        let new = Uuid::from_parts(9, 2);
        table.insert(old, 1);
        table.insert(new, 2);
        assert_eq!(
            (table.get(&old), table.get(&new), table.len()),
            (Some(&1), Some(&2), 2)
        );
        if let Some(value) = table.get_mut(&new) {
            *value = 3;
        }
        assert_eq!(table.remove(&old), Some(1));
        assert_eq!(table.get(&new), Some(&3), "moved into the slot");
        assert!(table.overflow.is_empty());
        let mut seen: Vec<_> = table
            .iter_mut()
            .map(|(uuid, value)| (*uuid, *value))
            .collect();
        seen.sort();
        assert_eq!(seen, [(new, 3)]);
        assert_eq!(table.remove(&new), Some(3));
        assert!(table.is_empty());
    }

    #[test]
    fn iteration_sees_every_entry_once() {
        let mut table = FdTable::default();
        for fd in [3, 10, 4] {
            table.insert(Uuid::from_parts(fd, 1), fd);
        }
        table.insert(Uuid::from_parts(10, 2), 100);
        let mut values: Vec<_> = table.values().copied().collect();
        values.sort_unstable();
        assert_eq!(values, [3, 4, 10, 100]);
        assert_eq!(table.keys().count(), 4);
    }
}
