//! A reactor thread's connections: their protocols and flags, and how engine events become
//! protocol callbacks.
//!
//! The map lives in the thread's [`Local`] behind a `RefCell` that is never borrowed while
//! user code runs: a callback's protocol is taken out of its entry for the call and put back
//! afterwards, so callbacks can use the whole API on their own connection (and `attach` a new
//! protocol, which replaces the running one when it returns).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crate::conn::protocol::{IoEvent, Protocol};
use crate::conn::table;
use crate::engine::CloseMode;
use crate::panic::message;
use crate::thread::Local;
use crate::uuid::Uuid;

/// A listener's `on_open`.
pub(crate) type OnOpen = Arc<dyn Fn(Uuid) + Send + Sync>;
/// A one-shot callback with no argument (`on_finish`).
pub(crate) type OnFinish = Box<dyn FnOnce() + Send>;
/// A connector's failure callback.
pub(crate) type OnFail = Box<dyn FnOnce(io::Error) + Send>;

/// What kind of connection an entry is.
pub(crate) enum Kind {
    /// An open stream.
    Stream,
    /// A listening socket.
    Listener {
        /// Called with each accepted connection's uuid.
        on_open: OnOpen,
        /// Called once when the listener closes.
        on_finish: Option<OnFinish>,
    },
    /// A client socket whose connect is in progress.
    Connecting {
        /// Called once connected; must attach a protocol.
        on_open: OnOpen,
        /// Called if the connect fails or times out.
        on_fail: Option<OnFail>,
        /// When the connect counts as failed.
        deadline: Option<Instant>,
    },
}

/// One connection owned by this thread.
pub(crate) struct Conn {
    /// The attached protocol; `None` before `attach`, after a detach, or while a callback runs.
    pub(crate) protocol: Option<Box<dyn Protocol>>,
    /// A callback of this connection is running (its protocol is taken out).
    pub(crate) in_callback: bool,
    /// A protocol attached (or detached: `Some(None)`) while a callback ran.
    pub(crate) replacement: Option<Option<Box<dyn Protocol>>>,
    /// Stream, listener or connector.
    pub(crate) kind: Kind,
    /// `on_data` is suspended until `force_event(OnData)` or the send queue drains.
    pub(crate) suspended: bool,
    /// The uuid waits in the `on_data` queue.
    pub(crate) queued: bool,
    /// Detached on purpose: no callbacks, but the connection stays open.
    pub(crate) hijacked: bool,
    /// A close was requested.
    pub(crate) closing: bool,
    /// Last activity (bytes received or sent), for the idle timeout.
    pub(crate) active: Instant,
    /// Bytes sent and chunks pending at the last sweep, to notice write progress.
    pub(crate) progress: (u64, usize),
    /// Bytes the protocol has read, to tell whether `on_data` made progress.
    pub(crate) read_total: u64,
    /// During shutdown: close at this time (`on_shutdown` asked for a delay).
    pub(crate) close_at: Option<Instant>,
    /// During shutdown: `on_shutdown` returned 255; close only at the very end.
    pub(crate) lingers: bool,
}

impl Conn {
    /// A fresh entry of `kind`.
    pub(crate) fn new(kind: Kind, now: Instant) -> Self {
        Self {
            protocol: None,
            in_callback: false,
            replacement: None,
            kind,
            suspended: false,
            queued: false,
            hijacked: false,
            closing: false,
            active: now,
            progress: (0, 0),
            read_total: 0,
            close_at: None,
            lingers: false,
        }
    }

    /// Whether a protocol is attached (or running a callback right now).
    pub(crate) fn has_protocol(&self) -> bool {
        self.protocol.is_some() || self.in_callback
    }
}

/// The connections a reactor thread owns.
#[derive(Default)]
pub(crate) struct Conns {
    /// By uuid.
    pub(crate) map: HashMap<Uuid, Conn>,
    /// Connections whose `on_data` should run, in order.
    pub(crate) ready: VecDeque<Uuid>,
    /// Events forced with `force_event`, run on the next tick.
    pub(crate) forced: VecDeque<(Uuid, IoEvent)>,
    /// The next timeout sweep.
    pub(crate) next_sweep: Option<Instant>,
    /// The shutdown's grace deadline, once it began.
    pub(crate) shutdown: Option<Instant>,
}

impl Conns {
    /// Queues `uuid`'s `on_data` unless it is queued, suspended or has no protocol.
    pub(crate) fn schedule_data(&mut self, uuid: Uuid) {
        if let Some(conn) = self.map.get_mut(&uuid)
            && !conn.queued
            && !conn.suspended
            && conn.has_protocol()
        {
            conn.queued = true;
            self.ready.push_back(uuid);
        }
    }

    /// Whether queued callbacks wait to run.
    pub(crate) fn has_work(&self) -> bool {
        !self.ready.is_empty() || !self.forced.is_empty()
    }
}

impl fmt::Debug for Conns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conns")
            .field("connections", &self.map.len())
            .field("ready", &self.ready.len())
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

/// Runs `f`, catching a panic and logging it with `what` and `uuid`; returns whether it
/// returned normally.
pub(crate) fn caught(what: &str, uuid: Uuid, f: impl FnOnce()) -> bool {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(payload) => {
            log::error!(
                "{what} of connection {uuid} panicked: {}; closing it",
                message(payload.as_ref())
            );
            false
        }
    }
}

/// Runs one callback of `uuid`'s protocol with the protocol taken out of the map; returns
/// whether it ran. A protocol attached meanwhile replaces it afterwards (the old one's
/// `on_close` runs); a panic closes the connection at once.
pub(crate) fn with_protocol(
    local: &Local,
    uuid: Uuid,
    what: &str,
    f: impl FnOnce(&mut dyn Protocol),
) -> bool {
    let mut protocol = {
        let mut conns = local.conns.borrow_mut();
        let Some(conn) = conns.map.get_mut(&uuid) else {
            return false;
        };
        let Some(protocol) = conn.protocol.take() else {
            return false;
        };
        conn.in_callback = true;
        protocol
    };
    let returned = caught(what, uuid, || f(protocol.as_mut()));
    let replaced = {
        let mut conns = local.conns.borrow_mut();
        match conns.map.get_mut(&uuid) {
            Some(conn) => {
                conn.in_callback = false;
                match conn.replacement.take() {
                    Some(next) => {
                        conn.hijacked = next.is_none();
                        conn.protocol = next;
                        Some(protocol)
                    }
                    None => {
                        conn.protocol = Some(protocol);
                        None
                    }
                }
            }
            None => Some(protocol),
        }
    };
    if let Some(mut old) = replaced {
        caught("on_close", uuid, || old.on_close(uuid));
    }
    if !returned {
        close_local(local, uuid, CloseMode::Abort);
    }
    true
}

/// Closes `uuid` (owned by this thread); its `on_close` runs when the engine reports it closed.
pub(crate) fn close_local(local: &Local, uuid: Uuid, mode: CloseMode) {
    let connecting = {
        let mut conns = local.conns.borrow_mut();
        let Some(conn) = conns.map.get_mut(&uuid) else {
            return;
        };
        conn.closing = true;
        matches!(conn.kind, Kind::Connecting { .. })
    };
    table::update(uuid, |record| record.closing = true);
    let mode = if connecting { CloseMode::Abort } else { mode };
    if let Err(error) = local.engine.borrow_mut().close(uuid, mode)
        && error.kind() != io::ErrorKind::NotFound
    {
        log::warn!("closing connection {uuid} failed: {error}");
    }
}

/// Forgets a closed connection and runs its last callbacks: a listener's `on_finish`, a
/// failed connector's `on_fail`, the protocol's `on_close`.
pub(crate) fn finalize(local: &Local, uuid: Uuid, error: Option<io::Error>) {
    let Some(conn) = local.conns.borrow_mut().map.remove(&uuid) else {
        return;
    };
    table::close(uuid);
    match conn.kind {
        Kind::Stream => {}
        Kind::Listener { on_finish, .. } => {
            if let Some(on_finish) = on_finish {
                caught("on_finish", uuid, on_finish);
            }
        }
        Kind::Connecting { on_fail, .. } => {
            if let Some(on_fail) = on_fail {
                let error =
                    error.unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionAborted));
                caught("on_fail", uuid, || on_fail(error));
            }
        }
    }
    if let Some(mut protocol) = conn.protocol {
        caught("on_close", uuid, || protocol.on_close(uuid));
    }
}

/// Attaches `protocol` to `uuid` (owned by this thread), or detaches with `None`; returns the
/// protocol back when `uuid` isn't here.
pub(crate) fn attach_local(
    local: &Local,
    uuid: Uuid,
    protocol: Option<Box<dyn Protocol>>,
) -> Result<(), Option<Box<dyn Protocol>>> {
    let old = {
        let mut conns = local.conns.borrow_mut();
        let Some(conn) = conns.map.get_mut(&uuid) else {
            return Err(protocol);
        };
        if conn.in_callback {
            conn.replacement = Some(protocol);
            return Ok(());
        }
        conn.hijacked = protocol.is_none();
        let old = std::mem::replace(&mut conn.protocol, protocol);
        // Bytes that arrived before the protocol did are its to read.
        let attached = conn.protocol.is_some();
        if attached && local.engine.borrow().buffered(uuid) > 0 {
            conns.schedule_data(uuid);
        }
        old
    };
    if let Some(mut old) = old {
        caught("on_close", uuid, || old.on_close(uuid));
    }
    Ok(())
}

/// Suspends (or resumes) `uuid`'s `on_data`; the engine stops receiving meanwhile, so a
/// suspended connection slows its peer down instead of buffering. Resuming queues `on_data`.
pub(crate) fn set_suspended(local: &Local, uuid: Uuid, suspended: bool) {
    let mut conns = local.conns.borrow_mut();
    let Some(conn) = conns.map.get_mut(&uuid) else {
        return;
    };
    if conn.suspended == suspended {
        return;
    }
    conn.suspended = suspended;
    if !suspended {
        conns.schedule_data(uuid);
    }
    drop(conns);
    if let Err(error) = local.engine.borrow_mut().pause_receive(uuid, suspended)
        && error.kind() != io::ErrorKind::NotFound
    {
        log::warn!("pausing receive on {uuid} failed: {error}");
    }
}

/// Runs one queued `on_data` and decides what follows: another call while it makes progress
/// on buffered bytes, a graceful close after the peer's end of stream.
pub(crate) fn run_data(local: &Local, uuid: Uuid) {
    let before = {
        let mut conns = local.conns.borrow_mut();
        let Some(conn) = conns.map.get_mut(&uuid) else {
            return;
        };
        conn.queued = false;
        if conn.suspended || conn.closing {
            return;
        }
        conn.read_total
    };
    if !with_protocol(local, uuid, "on_data", |protocol| protocol.on_data(uuid)) {
        return;
    }
    let (buffered, eof) = {
        let engine = local.engine.borrow();
        (engine.buffered(uuid), engine.is_eof(uuid))
    };
    let mut conns = local.conns.borrow_mut();
    let Some(conn) = conns.map.get(&uuid) else {
        return;
    };
    let progressed = conn.read_total > before;
    let (suspended, closing) = (conn.suspended, conn.closing);
    if eof && !closing {
        drop(conns);
        close_local(local, uuid, CloseMode::Graceful);
    } else if buffered > 0 && progressed && !suspended {
        conns.schedule_data(uuid);
    }
}
