//! Reaching a connection's protocol from outside its callbacks: [`defer_io_task`] (facil.io's
//! `fio_defer_io_task`) and [`protocol_try_lock`] with its [`ProtocolGuard`] (facil.io's
//! `fio_protocol_try_lock` / `fio_protocol_unlock`).
//!
//! facil.io guards a protocol with a lock that its callbacks hold. Here a callback takes the
//! protocol out of the owning thread's connection map while it runs, so "locked" means "taken
//! out": a task or a guard takes it the same way, and a callback can't run meanwhile because
//! callbacks, tasks and guards all run on the owning thread, one at a time.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use crate::conn::api::{Route, route};
use crate::conn::protocol::Protocol;
use crate::conn::state::{restore_protocol, take_protocol, with_protocol};
use crate::error::Error;
use crate::panic::run_caught;
use crate::thread::Local;
use crate::uuid::Uuid;

/// How often a task finding its protocol held re-queues itself before it gives up and runs
/// with `None`; only a [`ProtocolGuard`] kept alive across ticks can hold a protocol that long.
const MAX_REQUEUES: u32 = 1024;

/// Runs `task` on the thread that owns `uuid`, with the connection's protocol, never
/// concurrently with any of its callbacks (facil.io's `fio_defer_io_task`).
///
/// The task is queued, even when called on the owning thread: it runs on that thread's next
/// tick, after the running callback (if any) has returned. It receives `Some(protocol)` while
/// the connection is open with a protocol attached, and `None` (facil.io's NULL protocol, for
/// cleanup) when the connection closed first, the uuid is stale, or no protocol is attached;
/// [`downcast_mut`](trait.Protocol.html#method.downcast_mut) gives back the concrete type. A
/// protocol attached by the task replaces this one when the task returns, as in a callback. A
/// panic in the task is logged and closes the connection, as a panicking callback does.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection; `task(uuid, None)` has then
///   run on the calling thread.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// static FALLBACK: AtomicBool = AtomicBool::new(false);
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// let queued = fio_reactor::defer_io_task(stale, |_uuid, protocol| {
///     FALLBACK.store(protocol.is_none(), Ordering::SeqCst);
/// });
/// assert!(queued.is_err() && FALLBACK.load(Ordering::SeqCst));
/// ```
pub fn defer_io_task<F>(uuid: Uuid, task: F) -> Result<(), Error>
where
    F: FnOnce(Uuid, Option<&mut dyn Protocol>) + Send + 'static,
{
    let (inner, thread) = match route(uuid) {
        Ok(Route::Here(local)) => (local.inner().clone(), local.index()),
        Ok(Route::There(inner, thread)) => (inner, thread),
        Err(error) => {
            run_caught("an IO task's fallback", || task(uuid, None));
            return Err(error);
        }
    };
    inner.post(thread, Box::new(move || run_io_task(uuid, task, 0)));
    Ok(())
}

/// Runs a queued IO task on the owning thread (where the inbox runs it).
fn run_io_task<F>(uuid: Uuid, task: F, requeues: u32)
where
    F: FnOnce(Uuid, Option<&mut dyn Protocol>) + Send + 'static,
{
    let local = match route(uuid) {
        Ok(Route::Here(local)) => local,
        // Connections never change threads; if this one somehow did, follow it.
        Ok(Route::There(inner, thread)) if requeues < MAX_REQUEUES => {
            inner.post(
                thread,
                Box::new(move || run_io_task(uuid, task, requeues + 1)),
            );
            return;
        }
        _ => {
            run_caught("an IO task's fallback", || task(uuid, None));
            return;
        }
    };
    let held = local
        .conns
        .borrow()
        .map
        .get(&uuid)
        .is_some_and(|conn| conn.in_callback);
    if held && requeues < MAX_REQUEUES {
        let (inner, thread) = (local.inner().clone(), local.index());
        inner.post(
            thread,
            Box::new(move || run_io_task(uuid, task, requeues + 1)),
        );
        return;
    }
    let mut task = Some(task);
    with_protocol(&local, uuid, "an IO task", |protocol| {
        if let Some(task) = task.take() {
            task(uuid, Some(protocol));
        }
    });
    if let Some(task) = task {
        run_caught("an IO task's fallback", || task(uuid, None));
    }
}

/// Takes `uuid`'s protocol for exclusive use until the guard drops (facil.io's
/// `fio_protocol_try_lock`; dropping the guard is `fio_protocol_unlock`).
///
/// No callback of the connection can run while the guard lives: the guard holds the protocol,
/// and both live on the owning thread. Use it there outside the connection's own callbacks:
/// from a timer, a deferred task that runs there, or another connection's callback on that
/// thread. Inside the connection's own callbacks the protocol is already in hand, so the lock
/// reports [`Error::Locked`]. A protocol attached while the guard lives replaces the guarded
/// one when it drops (whose `on_close` then runs), and a connection that closed meanwhile gets
/// its `on_close` then.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection;
/// - [`Error::ForeignThread`] when called outside the thread that owns `uuid` (use
///   [`defer_io_task`](crate::defer_io_task) instead);
/// - [`Error::Locked`] when a callback of the connection (or another guard) holds the protocol;
///   don't spin on this, defer the work instead;
/// - [`Error::NoProtocol`] when no protocol is attached.
///
/// # Examples
/// ```
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// assert!(matches!(
///     fio_reactor::protocol_try_lock(stale),
///     Err(fio_reactor::Error::InvalidUuid(_))
/// ));
/// ```
pub fn protocol_try_lock(uuid: Uuid) -> Result<ProtocolGuard, Error> {
    let local = match route(uuid)? {
        Route::Here(local) => local,
        Route::There(..) => return Err(Error::ForeignThread(uuid)),
    };
    let state = local
        .conns
        .borrow()
        .map
        .get(&uuid)
        .map(|conn| (conn.in_callback, conn.protocol.is_some()));
    match state {
        None => Err(Error::InvalidUuid(uuid)),
        Some((true, _)) => Err(Error::Locked(uuid)),
        Some((false, false)) => Err(Error::NoProtocol(uuid)),
        Some((false, true)) => {
            let protocol = take_protocol(&local, uuid).ok_or(Error::NoProtocol(uuid))?;
            Ok(ProtocolGuard {
                local,
                uuid,
                protocol: Some(protocol),
            })
        }
    }
}

/// A connection's protocol, held by [`protocol_try_lock`] until the guard drops.
///
/// Dereferences to the protocol (`dyn Protocol`; see
/// [`downcast_mut`](trait.Protocol.html#method.downcast_mut)). It is not `Send`: it lives on
/// the thread that owns the connection.
pub struct ProtocolGuard {
    /// The owning thread, where the protocol goes back.
    local: Rc<Local>,
    /// The connection.
    uuid: Uuid,
    /// The protocol, taken out of the connection's entry; `None` only inside `drop`.
    protocol: Option<Box<dyn Protocol>>,
}

impl ProtocolGuard {
    /// The connection whose protocol this is.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }
}

impl Deref for ProtocolGuard {
    type Target = dyn Protocol;

    fn deref(&self) -> &Self::Target {
        #[allow(clippy::expect_used)]
        self.protocol
            .as_deref()
            .expect("a live guard holds its protocol")
    }
}

impl DerefMut for ProtocolGuard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        #[allow(clippy::expect_used)]
        self.protocol
            .as_deref_mut()
            .expect("a live guard holds its protocol")
    }
}

impl Drop for ProtocolGuard {
    fn drop(&mut self) {
        if let Some(protocol) = self.protocol.take() {
            restore_protocol(&self.local, self.uuid, protocol);
        }
    }
}

impl fmt::Debug for ProtocolGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolGuard")
            .field("uuid", &self.uuid)
            .finish_non_exhaustive()
    }
}
