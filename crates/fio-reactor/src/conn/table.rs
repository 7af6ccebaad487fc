//! The process-wide connection table: one slot per file descriptor.
//!
//! Descriptors are unique per process, so a table indexed by descriptor can tell, from any
//! thread and for any reactor, whether a uuid is current and which reactor thread owns it.
//! Each slot's generation goes up when a connection opens on it and again when it closes, and
//! a uuid is valid only while its generation is the slot's. Closing compares generations
//! first: an engine closes a descriptor before the owner thread hears of it, so the kernel may
//! already have handed the number to a new connection, whose slot must not be cleared.

use std::os::fd::RawFd;
use std::sync::{Arc, Weak};

use fio_sys::SockAddr;
use parking_lot::{Mutex, RwLock};

use crate::conn::env::{Entry, Env};
use crate::reactor::Inner;
use crate::uuid::Uuid;

/// Slots by descriptor; grows to the highest descriptor seen.
static TABLE: RwLock<Vec<Slot>> = RwLock::new(Vec::new());

/// One descriptor's slot.
#[derive(Default)]
struct Slot {
    /// Bumped on every open and close.
    generation: u32,
    /// The open connection's record; `None` while the descriptor isn't a connection.
    conn: Option<Record>,
    /// Objects linked to the open connection's lifetime (`uuid_env_set`). Kept beside the
    /// record, not in it, because records are copied out and these are not copyable. The
    /// mutex only makes the `Send`-but-not-`Sync` objects shareable; it is reached through
    /// `get_mut` under the table's write lock, never locked; boxed when first used, so a
    /// connection without linked objects costs one pointer here.
    env: Mutex<Option<Box<Env>>>,
}

/// What any thread may learn about an open connection.
#[derive(Clone)]
pub(crate) struct Record {
    /// The reactor whose thread owns the connection.
    pub(crate) reactor: Weak<Inner>,
    /// The owning thread's index in that reactor.
    pub(crate) thread: usize,
    /// The peer's address, when known.
    pub(crate) peer: Option<SockAddr>,
    /// The local address, when known.
    pub(crate) local: Option<SockAddr>,
    /// The idle timeout in seconds (0: none).
    pub(crate) timeout: u8,
    /// A close was requested (graceful or not).
    pub(crate) closing: bool,
}

impl Record {
    /// The record of a socket no reactor owns yet (`socket_uuid`, `accept_uuid`, or
    /// `attach_fd` before it hands the socket over), with the socket's addresses.
    pub(crate) fn detached(fd: &impl std::os::fd::AsFd) -> Self {
        Self {
            reactor: Weak::new(),
            thread: 0,
            peer: fio_sys::peer_addr(fd.as_fd()).ok(),
            local: fio_sys::local_addr(fd.as_fd()).ok(),
            timeout: 0,
            closing: false,
        }
    }

    /// A record for a connection owned by `thread` of `reactor`.
    pub(crate) fn new(reactor: &Arc<Inner>, thread: usize) -> Self {
        Self {
            reactor: Arc::downgrade(reactor),
            thread,
            peer: None,
            local: None,
            timeout: 0,
            closing: false,
        }
    }
}

/// The slot index of a descriptor (descriptors are never negative).
fn index(fd: RawFd) -> Option<usize> {
    usize::try_from(fd).ok()
}

/// Opens a connection on `fd` and returns its uuid.
pub(crate) fn open(fd: RawFd, record: Record) -> Uuid {
    let Some(index) = index(fd) else {
        return Uuid::from_parts(0, 0);
    };
    let mut table = TABLE.write();
    if table.len() <= index {
        table.resize_with(index + 1, Slot::default);
    }
    let slot = &mut table[index];
    slot.generation = slot.generation.wrapping_add(1);
    slot.conn = Some(record);
    // A connection whose close was never processed (its descriptor was reused first) leaves
    // its linked objects behind; they are cleaned up now, outside the lock.
    let stale = slot
        .env
        .get_mut()
        .take()
        .map(|env| *env)
        .unwrap_or_default();
    let uuid = Uuid::from_parts(fd, slot.generation);
    drop(table);
    crate::conn::env::clean_up(uuid, stale);
    uuid
}

/// Closes `uuid`'s slot if `uuid` is still its connection; returns the objects linked to it
/// (empty when it wasn't current), for the caller to clean up outside the table's lock.
pub(crate) fn close(uuid: Uuid) -> Env {
    let mut table = TABLE.write();
    match index(uuid.fd()).and_then(|index| table.get_mut(index)) {
        Some(slot) if slot.generation == uuid.generation() && slot.conn.is_some() => {
            slot.generation = slot.generation.wrapping_add(1);
            slot.conn = None;
            slot.env
                .get_mut()
                .take()
                .map(|env| *env)
                .unwrap_or_default()
        }
        _ => Env::default(),
    }
}

/// Runs `change` on the linked objects of `uuid`, if it is current (`Err(())` otherwise).
/// `change` must not run user code: the table is locked meanwhile.
pub(crate) fn with_env<R>(uuid: Uuid, change: impl FnOnce(&mut Env) -> R) -> Result<R, ()> {
    let mut table = TABLE.write();
    match index(uuid.fd()).and_then(|index| table.get_mut(index)) {
        Some(slot) if slot.generation == uuid.generation() && slot.conn.is_some() => {
            Ok(change(slot.env.get_mut().get_or_insert_default()))
        }
        _ => Err(()),
    }
}

/// Links `entry` to `uuid`; returns the entry it replaced, or `entry` back when `uuid` is not
/// current.
pub(crate) fn env_insert(uuid: Uuid, entry: Entry) -> Result<Option<Entry>, Entry> {
    let mut entry = Some(entry);
    let replaced = with_env(uuid, |env| entry.take().and_then(|entry| env.insert(entry)));
    match (replaced, entry) {
        (Ok(replaced), _) => Ok(replaced),
        (Err(()), Some(entry)) => Err(entry),
        // `with_env` fails only before running `change`, so the entry is still here.
        (Err(()), None) => Ok(None),
    }
}

/// A copy of `uuid`'s record, if it is current.
pub(crate) fn record(uuid: Uuid) -> Option<Record> {
    let table = TABLE.read();
    let slot = table.get(index(uuid.fd())?)?;
    if slot.generation == uuid.generation() {
        slot.conn.clone()
    } else {
        None
    }
}

/// Changes `uuid`'s record in place; returns whether it is current.
pub(crate) fn update(uuid: Uuid, change: impl FnOnce(&mut Record)) -> bool {
    let mut table = TABLE.write();
    match index(uuid.fd()).and_then(|index| table.get_mut(index)) {
        Some(Slot {
            generation,
            conn: Some(record),
            ..
        }) if *generation == uuid.generation() => {
            change(record);
            true
        }
        _ => false,
    }
}

/// The current uuid of the connection on `fd`, if there is one.
pub(crate) fn uuid_of(fd: RawFd) -> Option<Uuid> {
    let table = TABLE.read();
    let slot = table.get(index(fd)?)?;
    slot.conn
        .as_ref()
        .map(|_| Uuid::from_parts(fd, slot.generation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::StartArgs;
    use crate::reactor::Reactor;

    #[test]
    fn a_reused_descriptor_gets_a_new_generation_and_the_old_close_is_ignored() {
        let reactor = Reactor::new(StartArgs::default());
        let inner = reactor.inner();
        // A descriptor number no real connection in this test process uses.
        let fd = 900_000;
        let first = open(fd, Record::new(inner, 0));
        assert!(record(first).is_some());
        assert_eq!(uuid_of(fd), Some(first));
        // The kernel reused the number before the first connection's close was processed.
        let second = open(fd, Record::new(inner, 1));
        assert_ne!(first, second);
        assert!(record(first).is_none(), "the stale uuid is invalid");
        assert!(
            close(first).is_empty() && record(second).is_some(),
            "the stale close leaves the new connection alone"
        );
        assert_eq!(record(second).map(|record| record.thread), Some(1));
        assert!(update(second, |record| record.timeout = 5));
        assert_eq!(record(second).map(|record| record.timeout), Some(5));
        assert!(with_env(second, |_| ()).is_ok());
        let _ = close(second);
        assert!(record(second).is_none());
        assert!(with_env(second, |_| ()).is_err());
        assert_eq!(uuid_of(fd), None);
        assert!(!update(second, |_| {}));
    }
}
