//! Flushing (facil.io's `fio_flush`, `fio_flush_strong`, `fio_flush_all`): a connection's
//! read/write hook hands on what it holds, and `flush_strong` waits until the connection has
//! sent everything.

use std::io;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::conn::api::{Route, route};
use crate::conn::hook::flush_one;
use crate::conn::outbox;
use crate::conn::shutdown::GRACE;
use crate::engine::{Engine, EngineEvent};
use crate::error::Error;
use crate::reactor::Inner;
use crate::thread::Local;
use crate::uuid::Uuid;

/// Flushes `uuid` now (facil.io's `fio_flush`): runs its read/write hook's `flush`, and
/// completes a close that waited for it; returns whether data remains unsent (facil.io's 1),
/// `false` when everything was handed to the kernel (facil.io's 0). What remains is in the
/// hook, behind a file being sent, or in the send queue, which the engine sends at the end of
/// the tick (it can't be written from inside a callback without blocking the thread; that is
/// [`flush_strong`]).
///
/// # Errors
/// facil.io's -1:
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection;
/// - [`Error::ForeignThread`] outside the owning thread;
/// - [`Error::Connection`] when the hook's flush failed (the connection is then closing).
///
/// # Examples
/// ```
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// assert!(matches!(fio_reactor::flush(stale), Err(fio_reactor::Error::InvalidUuid(_))));
/// ```
pub fn flush(uuid: Uuid) -> Result<bool, Error> {
    match route(uuid)? {
        Route::Here(local) => {
            let held = flush_one(&local, uuid, Instant::now())?;
            Ok(held > 0 || unsent(&local, uuid))
        }
        Route::There(..) => Err(Error::ForeignThread(uuid)),
    }
}

/// Blocks until `uuid` is drained (facil.io's `fio_flush_strong`): its hook holds nothing and
/// every queued byte, files included, was handed to the kernel. Bounded by the 8-second grace
/// period, so a peer that stops reading can't stall the caller forever.
///
/// On the owning thread (inside a callback) the thread drives its engine for this
/// connection's sends meanwhile; the other events that come in are handled when the callback
/// returns, so no callback runs inside another. From a thread outside the reactor the call is
/// routed to the owner, which drains the connection the same way (blocking that reactor
/// thread meanwhile, as facil.io's busy loop did), and the caller waits for it.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection;
/// - [`Error::ForeignThread`] from another reactor thread (two reactor threads waiting on each
///   other could only end by the timeout): use [`write_notify`](crate::write_notify) there;
/// - [`Error::Connection`] when the connection failed or closed before it drained, or with
///   `TimedOut` when it didn't drain within the grace period.
///
/// # Examples
/// ```
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// assert!(fio_reactor::flush_strong(stale).is_err());
/// ```
pub fn flush_strong(uuid: Uuid) -> Result<(), Error> {
    match route(uuid)? {
        Route::Here(local) => drain(&local, uuid),
        Route::There(inner, thread) => {
            if Local::on_this_thread().is_some() {
                return Err(Error::ForeignThread(uuid));
            }
            let (done, result) = mpsc::channel();
            inner.post(
                thread,
                Box::new(move || {
                    let drained = match route(uuid) {
                        Ok(Route::Here(local)) => drain(&local, uuid),
                        _ => Err(Error::InvalidUuid(uuid)),
                    };
                    let _ = done.send(drained);
                }),
            );
            // The owner spends at most the grace period draining; the rest is its next tick.
            result
                .recv_timeout(GRACE + ROUTED_SLACK)
                .unwrap_or_else(|_| Err(timed_out(uuid)))
        }
    }
}

/// Flushes every open connection of the current reactor (facil.io's `fio_flush_all`): their
/// hooks' pending bytes are handed on and closes that waited for them complete; returns how
/// many connections still have bytes to send (in a hook, behind a file, or in a send queue).
///
/// Each reactor thread flushes its own connections. Called on a reactor thread, that thread's
/// connections are flushed now and counted; the other threads' are flushed on their next tick
/// and not counted (waiting for them here could deadlock two threads calling this at once).
/// Called from outside the reactor, it waits (up to a second) for every thread's flush and
/// count. 0 when the reactor isn't running.
///
/// # Examples
/// ```
/// assert_eq!(fio_reactor::flush_all(), 0);
/// ```
pub fn flush_all() -> usize {
    crate::Reactor::current().flush_all()
}

impl crate::Reactor {
    /// [`flush_all`](crate::flush_all) on this reactor: from outside it, a thread that isn't
    /// one of its own can name the reactor to flush.
    ///
    /// # Examples
    /// ```
    /// let reactor = fio_reactor::Reactor::new(Default::default());
    /// assert_eq!(reactor.flush_all(), 0); // not running: nothing to flush
    /// ```
    pub fn flush_all(&self) -> usize {
        flush_all_of(self.inner())
    }
}

/// [`flush_all`] on the reactor `inner`.
fn flush_all_of(inner: &Arc<Inner>) -> usize {
    let here = Local::current(inner);
    let (counted, counts) = mpsc::channel();
    let mut expected = 0;
    for thread in 0..inner.running_threads() {
        if here.as_ref().is_some_and(|local| local.index() == thread) {
            continue;
        }
        let counted = counted.clone();
        let owner = Arc::clone(inner);
        inner.post(
            thread,
            Box::new(move || {
                if let Some(local) = Local::current(&owner) {
                    let _ = counted.send(flush_here(&local));
                }
            }),
        );
        expected += 1;
    }
    drop(counted);
    match here {
        Some(local) => flush_here(&local),
        None => {
            let deadline = Instant::now() + FLUSH_ALL_WAIT;
            let mut unsent = 0;
            for _ in 0..expected {
                let left = deadline.saturating_duration_since(Instant::now());
                match counts.recv_timeout(left) {
                    Ok(count) => unsent += count,
                    Err(_) => break,
                }
            }
            unsent
        }
    }
}

/// Flushes the hooks of every connection this thread owns; returns how many still have bytes
/// to send.
fn flush_here(local: &Local) -> usize {
    let now = Instant::now();
    let uuids: Vec<Uuid> = local.conns.borrow().map.keys().copied().collect();
    let mut unsent_conns = 0;
    for uuid in uuids {
        let held = match flush_one(local, uuid, now) {
            Ok(held) => held,
            Err(_) => continue,
        };
        if held > 0 || unsent(local, uuid) {
            unsent_conns += 1;
        }
    }
    unsent_conns
}

/// Whether `uuid` (owned here) has bytes waiting behind a file or in its send queue.
fn unsent(local: &Local, uuid: Uuid) -> bool {
    outbox::is_waiting(local, uuid) || local.engine.borrow().pending(uuid) > 0
}

/// [`flush_strong`] on the owning thread: flush the hook and wait in the engine until nothing
/// is held or queued; the events gathered meanwhile are kept for the next tick.
fn drain(local: &Local, uuid: Uuid) -> Result<(), Error> {
    let deadline = Instant::now() + GRACE;
    let mut events = Vec::new();
    // Bytes sent once everything queued so far is out. An engine that dropped the connection
    // (a reset) answers 0 for both `pending` and `sent` before its `Closed` event comes, so
    // "nothing pending" alone could pass for drained; reaching this count can't.
    let mut target = 0;
    let result = loop {
        let now = Instant::now();
        if let Some(source) = closed_in(&events, uuid) {
            break Err(Error::Connection { uuid, source });
        }
        let held = match flush_one(local, uuid, now) {
            Ok(held) => held,
            Err(error) => break Err(error),
        };
        let sent = {
            let engine = local.engine.borrow();
            let sent = engine.sent(uuid);
            target = target.max(sent + engine.queued_bytes(uuid) as u64);
            sent
        };
        if held == 0 && !unsent(local, uuid) && sent >= target {
            break Ok(());
        }
        if now >= deadline {
            break Err(timed_out(uuid));
        }
        let from = events.len();
        let waited = local
            .engine
            .borrow_mut()
            .wait(Some(DRAIN_STEP), &mut events);
        if let Err(source) = waited {
            break Err(Error::Connection { uuid, source });
        }
        // A file being sent refills the queue as it drains (its `on_ready` comes later).
        let drained = events[from..]
            .iter()
            .any(|event| matches!(event, EngineEvent::Drained { conn } if *conn == uuid));
        if drained && outbox::is_waiting(local, uuid) {
            outbox::pump(local, uuid);
        }
    };
    local.conns.borrow_mut().stashed.extend(events);
    result
}

/// The error `uuid`'s `Closed` event among `events` carries, if it closed.
fn closed_in(events: &[EngineEvent], uuid: Uuid) -> Option<io::Error> {
    events.iter().find_map(|event| match event {
        EngineEvent::Closed { conn, error } if *conn == uuid => Some(match error {
            Some(error) => io::Error::new(error.kind(), error.to_string()),
            None => io::Error::new(io::ErrorKind::ConnectionAborted, "closed before it drained"),
        }),
        _ => None,
    })
}

/// `flush_strong`'s error when the connection didn't drain in time.
fn timed_out(uuid: Uuid) -> Error {
    Error::Connection {
        uuid,
        source: io::Error::new(
            io::ErrorKind::TimedOut,
            "not drained within the grace period",
        ),
    }
}

/// How long one engine wait of [`drain`] may block.
const DRAIN_STEP: Duration = Duration::from_millis(5);

/// What a routed `flush_strong` allows beyond the owner's grace period (reaching the owner).
const ROUTED_SLACK: Duration = Duration::from_secs(2);

/// How long `flush_all` from outside the reactor waits for the threads' counts.
const FLUSH_ALL_WAIT: Duration = Duration::from_secs(1);
