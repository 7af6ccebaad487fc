//! Objects linked to a connection's lifetime (facil.io's `fio_uuid_env_*` and
//! `fio_uuid_link`): [`uuid_env_set`], [`uuid_env_unset`], [`uuid_env_remove`].
//!
//! The objects live in the process-wide connection table beside the connection's record, so
//! every call works from any thread and answers at once. They are keyed by a name and a
//! numeric kind (facil.io's `type`). Their cleanup (the object's `Drop`, or the `on_close`
//! given to [`uuid_env_set_with`]) always runs outside the table's lock, so it may use the
//! whole API: when the connection closes (before the protocol's `on_close`), when
//! [`uuid_env_remove`] removes it, when a newer object takes its key, or at once when the uuid
//! isn't open.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;

use crate::conn::table;
use crate::error::Error;
use crate::panic::run_caught;
use crate::uuid::Uuid;

/// An object's type-erased cleanup: called with the object when the connection closes.
type OnClose = Box<dyn FnOnce(Box<dyn Any + Send>) + Send>;

/// One linked object.
pub(crate) struct Entry {
    /// Half of the key: the name.
    name: Cow<'static, str>,
    /// Half of the key: the numeric kind (facil.io's `type`).
    kind: isize,
    /// The object; dropping it is its cleanup unless `on_close` is set.
    object: Box<dyn Any + Send>,
    /// The cleanup given to `uuid_env_set_with`, which receives the object.
    on_close: Option<OnClose>,
}

impl Entry {
    /// Runs the cleanup (catching a panic, which is logged).
    fn clean_up(self, uuid: Uuid) {
        let Entry {
            name,
            kind,
            object,
            on_close,
        } = self;
        let what = format!("cleanup of object {name:?}/{kind} linked to connection {uuid}");
        run_caught(&what, move || match on_close {
            Some(on_close) => on_close(object),
            None => drop(object),
        });
    }

    /// Whether this entry has the key `(name, kind)`.
    fn is(&self, name: &str, kind: isize) -> bool {
        self.kind == kind && self.name == name
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A connection's linked objects. Connections link few, so a vector searched in order beats a
/// map.
#[derive(Debug, Default)]
pub(crate) struct Env {
    /// In the order they were linked.
    entries: Vec<Entry>,
}

impl Env {
    /// Links `entry`; returns the entry that had its key.
    pub(crate) fn insert(&mut self, entry: Entry) -> Option<Entry> {
        match self
            .entries
            .iter_mut()
            .find(|old| old.is(&entry.name, entry.kind))
        {
            Some(old) => Some(std::mem::replace(old, entry)),
            None => {
                self.entries.push(entry);
                None
            }
        }
    }

    /// Unlinks the entry with the key `(name, kind)` if `accept` takes it.
    fn take_if(
        &mut self,
        name: &str,
        kind: isize,
        accept: impl FnOnce(&Entry) -> bool,
    ) -> Option<Entry> {
        let position = self.entries.iter().position(|entry| entry.is(name, kind))?;
        if accept(&self.entries[position]) {
            Some(self.entries.remove(position))
        } else {
            None
        }
    }

    /// Whether nothing is linked.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Runs the cleanup of every object in `env` (unlinked from `uuid`), in the order they were
/// linked.
pub(crate) fn clean_up(uuid: Uuid, env: Env) {
    for entry in env.entries {
        entry.clean_up(uuid);
    }
}

/// Links `object` to `uuid`'s lifetime under the key `(name, kind)` (facil.io's
/// `fio_uuid_env_set`); dropping it is its cleanup, which runs once the connection has closed
/// (before the protocol's `on_close`). An object already linked under that key is replaced,
/// and its cleanup runs now.
///
/// `kind` is facil.io's numeric `type` filter (0 unless you need two objects of one name);
/// negative kinds are reserved for fio's own crates. A `&'static str` name is stored without
/// copying (facil.io's `const_name`).
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection; `object` has then been
///   dropped (its cleanup ran at once, as facil.io's `fio_uuid_link` does).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// let shared = Arc::new(());
/// // Not an open connection: the object is cleaned up at once.
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// assert!(fio_reactor::uuid_env_set(stale, "session", 0, Arc::clone(&shared)).is_err());
/// assert_eq!(Arc::strong_count(&shared), 1);
/// ```
pub fn uuid_env_set<T>(
    uuid: Uuid,
    name: impl Into<Cow<'static, str>>,
    kind: isize,
    object: T,
) -> Result<(), Error>
where
    T: Any + Send,
{
    link(uuid, name.into(), kind, Box::new(object), None)
}

/// Links `object` to `uuid`'s lifetime like [`uuid_env_set`], with `on_close(object)` as its
/// cleanup instead of a plain drop (facil.io's `on_close` argument).
///
/// `on_close` runs on whichever thread ends the link: the connection's owner when it closes,
/// the caller of [`uuid_env_remove`] or of a replacing `uuid_env_set`, or this caller when
/// `uuid` isn't open. A panic in it is caught and logged.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection; `on_close(object)` has then
///   run.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// static CLOSED: AtomicBool = AtomicBool::new(false);
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// let linked = fio_reactor::uuid_env_set_with(stale, "buffer", 0, vec![0u8; 16], |buffer| {
///     assert_eq!(buffer.len(), 16);
///     CLOSED.store(true, Ordering::SeqCst);
/// });
/// assert!(linked.is_err() && CLOSED.load(Ordering::SeqCst));
/// ```
pub fn uuid_env_set_with<T, F>(
    uuid: Uuid,
    name: impl Into<Cow<'static, str>>,
    kind: isize,
    object: T,
    on_close: F,
) -> Result<(), Error>
where
    T: Any + Send,
    F: FnOnce(T) + Send + 'static,
{
    let on_close: OnClose = Box::new(move |object: Box<dyn Any + Send>| {
        // The entry pairs this closure with its own object, so the downcast always succeeds.
        if let Ok(object) = object.downcast::<T>() {
            on_close(*object);
        }
    });
    link(uuid, name.into(), kind, Box::new(object), Some(on_close))
}

/// Links an entry, cleaning up what it replaces, or itself when `uuid` isn't open.
fn link(
    uuid: Uuid,
    name: Cow<'static, str>,
    kind: isize,
    object: Box<dyn Any + Send>,
    on_close: Option<OnClose>,
) -> Result<(), Error> {
    let entry = Entry {
        name,
        kind,
        object,
        on_close,
    };
    match table::env_insert(uuid, entry) {
        Ok(replaced) => {
            if let Some(replaced) = replaced {
                replaced.clean_up(uuid);
            }
            Ok(())
        }
        Err(entry) => {
            entry.clean_up(uuid);
            Err(Error::InvalidUuid(uuid))
        }
    }
}

/// Unlinks the object under `(name, kind)` from `uuid` and returns it, WITHOUT running its
/// cleanup (facil.io's `fio_uuid_env_unset`): it is the caller's again.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection (facil.io's `EBADF`);
/// - [`Error::EnvNotFound`] when nothing is linked under that key, or what is linked there is
///   not a `T` (it then stays linked). As facil.io notes, a miss often means the connection
///   closed and the cleanup already ran.
///
/// # Examples
/// ```
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// let taken = fio_reactor::uuid_env_unset::<String>(stale, "session", 0);
/// assert!(matches!(taken, Err(fio_reactor::Error::InvalidUuid(_))));
/// ```
pub fn uuid_env_unset<T>(uuid: Uuid, name: &str, kind: isize) -> Result<T, Error>
where
    T: Any + Send,
{
    let taken = table::with_env(uuid, |env| {
        env.take_if(name, kind, |entry| entry.object.is::<T>())
    })
    .map_err(|()| Error::InvalidUuid(uuid))?;
    let missing = || Error::EnvNotFound {
        uuid,
        name: name.to_owned(),
        kind,
    };
    let entry = taken.ok_or_else(missing)?;
    entry
        .object
        .downcast::<T>()
        .map(|object| *object)
        .map_err(|_| missing())
}

/// Unlinks the object under `(name, kind)` from `uuid` and runs its cleanup now, as if the
/// connection had closed (facil.io's `fio_uuid_env_remove`).
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection;
/// - [`Error::EnvNotFound`] when nothing is linked under that key.
///
/// # Examples
/// ```
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// assert!(fio_reactor::uuid_env_remove(stale, "session", 0).is_err());
/// ```
pub fn uuid_env_remove(uuid: Uuid, name: &str, kind: isize) -> Result<(), Error> {
    let taken = table::with_env(uuid, |env| env.take_if(name, kind, |_| true))
        .map_err(|()| Error::InvalidUuid(uuid))?;
    let entry = taken.ok_or_else(|| Error::EnvNotFound {
        uuid,
        name: name.to_owned(),
        kind,
    })?;
    entry.clean_up(uuid);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn entry(name: &'static str, kind: isize, object: Arc<()>) -> Entry {
        Entry {
            name: Cow::Borrowed(name),
            kind,
            object: Box::new(object),
            on_close: None,
        }
    }

    #[test]
    fn the_key_is_name_and_kind() {
        let object = Arc::new(());
        let mut env = Env::default();
        assert!(env.insert(entry("a", 0, Arc::clone(&object))).is_none());
        assert!(env.insert(entry("a", 1, Arc::clone(&object))).is_none());
        assert!(env.insert(entry("b", 0, Arc::clone(&object))).is_none());
        let replaced = env.insert(entry("a", 0, Arc::clone(&object)));
        assert!(replaced.is_some_and(|old| old.is("a", 0)));
        assert_eq!(Arc::strong_count(&object), 4);
        assert!(env.take_if("a", 1, |_| false).is_none(), "refused stays");
        assert!(env.take_if("a", 1, |_| true).is_some());
        assert!(env.take_if("a", 1, |_| true).is_none());
        clean_up(Uuid::from_parts(0, 0), env);
        assert_eq!(Arc::strong_count(&object), 1);
    }
}
