//! A reactor thread's connections: their protocols and flags, and how engine events become
//! protocol callbacks.
//!
//! The map lives in the thread's [`Local`] behind a `RefCell` that is never borrowed while
//! user code runs: a callback's protocol is taken out of its entry for the call and put back
//! afterwards, so callbacks can use the whole API on their own connection (and `attach` a new
//! protocol, which replaces the running one when it returns).

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crate::conn::connect::Connector;
use crate::conn::hook::{self, RwHook};
use crate::conn::notify::Notify;
use crate::conn::outbox::Outbox;
use crate::conn::protocol::{self, IoEvent, Protocol};
use crate::conn::table;
use crate::conn::tls::SharedTls;
use crate::engine::{CloseMode, Engine, EngineEvent, SEND_SOFT_LIMIT};
use crate::fd_table::FdTable;
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
    Listener(Box<Listening>),
    /// A datagram socket (`udp://`), bound by `listen` or connected by `connect`.
    Datagram {
        /// A listener's `on_finish`, called once when the socket closes.
        on_finish: Option<OnFinish>,
    },
    /// A client socket whose connect is in progress.
    Connecting {
        /// The `connect` it is an attempt of.
        connector: Arc<Connector>,
        /// When the connect counts as failed.
        deadline: Option<Instant>,
    },
}

/// A listening socket's callbacks and settings; boxed in [`Kind::Listener`] so the far more
/// numerous streams' entries stay small.
pub(crate) struct Listening {
    /// Called with each accepted connection's uuid.
    pub(crate) on_open: OnOpen,
    /// Called once when the listener closes.
    pub(crate) on_finish: Option<OnFinish>,
    /// Secures each accepted connection.
    pub(crate) tls: Option<SharedTls>,
    /// `TCP_NODELAY` is set on the listening socket, and accepted ones inherit it (Linux),
    /// which saves a system call per accepted connection.
    pub(crate) nodelay_inherited: bool,
    /// The local address of every stream it accepts, when it is bound to a specific address
    /// (one IP, or a Unix name), which saves a `getsockname` per accepted connection; `None`
    /// for a wildcard IP (each stream's own address is asked for).
    pub(crate) accepted_local: Option<fio_sys::SockAddr>,
}

/// One connection owned by this thread.
///
/// In C layout, with what each request reads or writes first (`readable`, then
/// `run_taken_data`: activity, protocol, read count, hook, outbox, the rare part's box and
/// the flags), right behind the table entry's uuid: the compiler's own order put the flags
/// and the uuid at the far end, so a request touched one cache line more of every entry.
#[repr(C)]
pub(crate) struct Conn {
    /// Last activity (bytes received or sent), for the idle timeout.
    pub(crate) active: Instant,
    /// The attached protocol; `None` before `attach`, after a detach, or while a callback runs.
    pub(crate) protocol: Option<Box<dyn Protocol>>,
    /// Bytes the protocol has read, to tell whether `on_data` made progress.
    pub(crate) read_total: u64,
    /// The read/write hook between the protocol and the engine's queues, if one is set.
    pub(crate) hook: Option<Box<dyn RwHook>>,
    /// Writes waiting behind a file being sent.
    pub(crate) outbox: Outbox,
    /// What few connections ever need, boxed on first use so an idle entry stays small.
    cold: Option<Box<Cold>>,
    /// A callback of this connection is running (its protocol is taken out).
    pub(crate) in_callback: bool,
    /// `on_data` is suspended until `force_event(OnData)` or the send queue drains.
    pub(crate) suspended: bool,
    /// The uuid waits in the `on_data` queue.
    pub(crate) queued: bool,
    /// Detached on purpose: no callbacks, but the connection stays open.
    pub(crate) hijacked: bool,
    /// A close was requested.
    pub(crate) closing: bool,
    /// The hook's `flush` should run at the end of the tick (it was written to, or still
    /// held bytes).
    pub(crate) flush_scheduled: bool,
    /// The hook's last `flush` reported bytes it still holds; retried on later ticks.
    pub(crate) hook_held: bool,
    /// The hook's `before_close` ran (it runs at most once).
    pub(crate) before_close_done: bool,
    /// During shutdown: `on_shutdown` returned `KeepOpen`; close only at the very end.
    pub(crate) lingers: bool,
    /// A connect attempt passed its deadline (it fails with `TimedOut`).
    pub(crate) timed_out: bool,
    /// The engine was asked to close abruptly (queued bytes are dropped).
    pub(crate) aborted: bool,
    /// The attached protocol's `on_ready` is the trait's default, which does nothing (learned
    /// from its first call, see [`protocol::default_on_ready_ran`]): a drained send queue
    /// that nothing else waits for then costs no callback. Cleared when the protocol changes.
    pub(crate) on_ready_is_default: bool,
    /// The idle timeout in seconds (0: none); the table's record holds a copy for other
    /// threads' `timeout_get`.
    pub(crate) timeout: u8,
    /// Stream, listener or connector.
    pub(crate) kind: Kind,
    /// Bytes sent and chunks pending at the last sweep, to notice write progress.
    pub(crate) progress: (u64, usize),
    /// The `connect` this client connection came from (for reconnecting and `on_finish`).
    pub(crate) connector: Option<Arc<Connector>>,
}

/// The rarely used part of a [`Conn`].
#[derive(Default)]
struct Cold {
    /// A protocol attached (or detached: `Some(None)`) while a callback ran.
    replacement: Option<Option<Box<dyn Protocol>>>,
    /// During shutdown: close at this time (`on_shutdown` asked for a delay).
    close_at: Option<Instant>,
    /// A graceful close waits for the hook's `flush` to report nothing held (its
    /// `before_close` asked for the delay); when it was requested, to bound the wait.
    close_after_flush: Option<Instant>,
    /// `write_notify` outcomes waiting for the send queue to drain.
    notify: Vec<Notify>,
}

impl Conn {
    /// A fresh entry of `kind`.
    pub(crate) fn new(kind: Kind, now: Instant) -> Self {
        Self {
            protocol: None,
            in_callback: false,
            kind,
            suspended: false,
            queued: false,
            hijacked: false,
            closing: false,
            timeout: 0,
            active: now,
            progress: (0, 0),
            read_total: 0,
            lingers: false,
            hook: None,
            flush_scheduled: false,
            hook_held: false,
            before_close_done: false,
            outbox: Outbox::default(),
            connector: None,
            timed_out: false,
            aborted: false,
            on_ready_is_default: false,
            cold: None,
        }
    }

    /// During shutdown: when `on_shutdown`'s delay ends.
    pub(crate) fn close_at(&self) -> Option<Instant> {
        self.cold.as_ref().and_then(|cold| cold.close_at)
    }

    /// Sets [`close_at`](Self::close_at).
    pub(crate) fn set_close_at(&mut self, at: Instant) {
        self.cold.get_or_insert_default().close_at = Some(at);
    }

    /// When a graceful close began waiting for the hook to flush, if it is waiting.
    pub(crate) fn close_after_flush(&self) -> Option<Instant> {
        self.cold.as_ref().and_then(|cold| cold.close_after_flush)
    }

    /// Sets [`close_after_flush`](Self::close_after_flush).
    pub(crate) fn set_close_after_flush(&mut self, since: Instant) {
        self.cold.get_or_insert_default().close_after_flush = Some(since);
    }

    /// Whether `write_notify` outcomes wait for the send queue to drain.
    pub(crate) fn has_notify(&self) -> bool {
        self.cold
            .as_ref()
            .is_some_and(|cold| !cold.notify.is_empty())
    }

    /// Adds a `write_notify` outcome to report once the send queue drains.
    pub(crate) fn push_notify(&mut self, notify: Notify) {
        self.cold.get_or_insert_default().notify.push(notify);
    }

    /// Takes the waiting `write_notify` outcomes.
    pub(crate) fn take_notify(&mut self) -> Vec<Notify> {
        self.cold
            .as_mut()
            .map(|cold| std::mem::take(&mut cold.notify))
            .unwrap_or_default()
    }

    /// Takes the protocol attached (`Some(Some)`) or detached (`Some(None)`) during a callback.
    fn take_replacement(&mut self) -> Option<Option<Box<dyn Protocol>>> {
        self.cold.as_mut().and_then(|cold| cold.replacement.take())
    }

    /// Takes the protocol out for an `on_data` call (marking the entry in a callback), with
    /// the read count to compare after it and whether the call may use the owner path
    /// ([`PlainData`]); clears the queued mark either way. `None` when suspended, closing, or
    /// without a protocol (one already running included).
    #[inline]
    pub(crate) fn take_for_data(&mut self) -> Option<(Box<dyn Protocol>, u64, bool)> {
        self.queued = false;
        if self.suspended || self.closing {
            return None;
        }
        let protocol = self.protocol.take()?;
        self.in_callback = true;
        let plain = self.hook.is_none() && self.outbox.is_empty();
        Some((protocol, self.read_total, plain))
    }

    /// Whether a protocol was attached (or detached) while a callback ran, to replace the
    /// one that runs when it returns.
    #[inline]
    fn replacement_pending(&self) -> bool {
        self.cold
            .as_ref()
            .is_some_and(|cold| cold.replacement.is_some())
    }

    /// Whether a protocol is attached (or running a callback right now).
    pub(crate) fn has_protocol(&self) -> bool {
        self.protocol.is_some() || self.in_callback
    }

    /// Marks the entry queued for `on_data` unless it is queued, suspended or has no
    /// protocol; returns whether the caller must push its uuid on [`Conns::ready`]. Lets a
    /// caller holding the entry queue it without looking it up again.
    pub(crate) fn mark_data_queued(&mut self) -> bool {
        let queue = !self.queued && !self.suspended && self.has_protocol();
        self.queued |= queue;
        queue
    }

    /// Marks the entry's hook for a `flush` at the end of the tick unless it has no hook or
    /// is marked already; returns whether the caller must push its uuid on
    /// [`Conns::flush_queue`].
    pub(crate) fn mark_flush_scheduled(&mut self) -> bool {
        let schedule = self.hook.is_some() && !self.flush_scheduled;
        self.flush_scheduled |= schedule;
        schedule
    }

    /// Puts `protocol` in (or takes it out with `None`), forgetting what was learned about
    /// the previous one.
    fn set_protocol(&mut self, protocol: Option<Box<dyn Protocol>>) -> Option<Box<dyn Protocol>> {
        self.on_ready_is_default = false;
        std::mem::replace(&mut self.protocol, protocol)
    }
}

/// The connections a reactor thread owns.
#[derive(Default)]
pub(crate) struct Conns {
    /// By uuid: indexed by the descriptor it carries, so the owner finds a connection
    /// without hashing or locking.
    pub(crate) map: FdTable<Conn>,
    /// Connections whose `on_data` should run, in order.
    pub(crate) ready: VecDeque<Uuid>,
    /// Events forced with `force_event`, run on the next tick.
    pub(crate) forced: VecDeque<(Uuid, IoEvent)>,
    /// The next timeout sweep.
    pub(crate) next_sweep: Option<Instant>,
    /// The shutdown's grace deadline, once it began.
    pub(crate) shutdown: Option<Instant>,
    /// During shutdown: this thread still counts in the reactor's draining threads (it has
    /// connections that aren't lingering).
    pub(crate) draining: bool,
    /// During shutdown: lingering connections close by then whatever the other threads do.
    pub(crate) linger_until: Option<Instant>,
    /// Connections whose hook's `flush` runs at the end of the tick.
    pub(crate) flush_queue: Vec<Uuid>,
    /// Engine events gathered while `flush_strong` drove the engine inside a callback; handled
    /// at the start of the next tick.
    pub(crate) stashed: Vec<EngineEvent>,
}

impl Conns {
    /// Queues `uuid`'s `on_data` unless it is queued, suspended or has no protocol.
    pub(crate) fn schedule_data(&mut self, uuid: Uuid) {
        if self.map.get_mut(&uuid).is_some_and(Conn::mark_data_queued) {
            self.ready.push_back(uuid);
        }
    }

    /// Queues a `flush` of `uuid`'s hook for the end of the tick (once).
    pub(crate) fn schedule_flush(&mut self, uuid: Uuid) {
        if self
            .map
            .get_mut(&uuid)
            .is_some_and(Conn::mark_flush_scheduled)
        {
            self.flush_queue.push(uuid);
        }
    }

    /// Whether queued callbacks wait to run.
    pub(crate) fn has_work(&self) -> bool {
        !self.ready.is_empty() || !self.forced.is_empty() || !self.stashed.is_empty()
    }

    /// Whether a tick at `now` would find nothing to do here: no queued callbacks or hook
    /// flushes, and the timeout sweep neither due nor to be planned or dropped.
    pub(crate) fn quiet(&self, now: Instant) -> bool {
        !self.has_work()
            && self.flush_queue.is_empty()
            && match self.next_sweep {
                None => self.map.is_empty(),
                Some(next) => now < next && !self.map.is_empty(),
            }
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

/// The owner path of `on_data`: the connection whose `on_data` runs now, while its own `read`
/// and `write` need nothing from its entry (it has no read/write hook, nothing waits in its
/// outbox, and it isn't closing). Those calls then go straight to the engine, without
/// borrowing the thread's connections or looking the entry up: a request's read and reply
/// each save a lookup. Whatever could change one of the three conditions forgets it
/// ([`forget`](Self::forget)); the engine still checks the uuid itself, so a connection gone
/// meanwhile is still refused.
#[derive(Debug)]
pub(crate) struct PlainData {
    /// The connection (its [`Uuid::as_u64`]), while its `on_data` runs and the conditions
    /// hold; else [`PlainData::NONE`]. One word rather than an `Option`: one compare per
    /// call.
    uuid: Cell<u64>,
    /// Whether the running `on_data` read bytes through the owner path: its progress,
    /// besides what the entry's `read_total` counts.
    read: Cell<bool>,
}

impl Default for PlainData {
    fn default() -> Self {
        Self {
            uuid: Cell::new(Self::NONE),
            read: Cell::new(false),
        }
    }
}

impl PlainData {
    /// No connection: no uuid is this value, whose descriptor half is beyond any
    /// descriptor's (see [`Uuid::from_u64`]).
    const NONE: u64 = u64::MAX;

    /// Whether `uuid`'s `read` and `write` may take the owner path now.
    #[inline]
    pub(crate) fn is(&self, uuid: Uuid) -> bool {
        self.uuid.get() == uuid.as_u64()
    }

    /// Notes `count` bytes read through the owner path.
    #[inline]
    pub(crate) fn note_read(&self, count: usize) {
        self.read.set(self.read.get() | (count > 0));
    }

    /// Something that may add a hook, queue behind a file or close a connection ran: no
    /// connection takes the owner path until the next `on_data`.
    #[inline]
    pub(crate) fn forget(&self) {
        self.uuid.set(Self::NONE);
    }

    /// `uuid`'s `on_data` is about to run; `plain`: whether its entry meets the conditions.
    #[inline]
    fn enter(&self, uuid: Uuid, plain: bool) {
        self.uuid
            .set(if plain { uuid.as_u64() } else { Self::NONE });
        self.read.set(false);
    }

    /// The `on_data` returned (or panicked): whether it read bytes through the owner path.
    /// An `on_data` nested in it (none is known to happen) would only leave it the longer
    /// path, and hide its reads from it, as if it had read nothing that way.
    #[inline]
    fn leave(&self) -> bool {
        self.uuid.set(Self::NONE);
        self.read.get()
    }
}

/// Runs `f`, catching a panic and logging it with `what` and `uuid` (the connection, or what
/// else the callback belongs to); returns whether it returned normally.
pub(crate) fn caught(what: &str, uuid: impl fmt::Display, f: impl FnOnce()) -> bool {
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
    let Some(mut protocol) = take_protocol(local, uuid) else {
        return false;
    };
    let returned = caught(what, uuid, || f(protocol.as_mut()));
    let mut conns = local.conns.borrow_mut();
    if let Err(protocol) = put_back(conns.map.get_mut(&uuid), protocol, returned) {
        drop(conns);
        settle(local, uuid, protocol, returned);
    }
    true
}

/// Runs `uuid`'s `on_ready` (its send queue drained, or the event was forced), learning on the
/// way whether it is the trait's default no-op: drains that nothing else waits for then skip
/// it (see [`Conn::on_ready_is_default`]).
pub(crate) fn run_ready(local: &Local, uuid: Uuid) {
    let mut is_default = false;
    with_protocol(local, uuid, "on_ready", |protocol| {
        protocol.on_ready(uuid);
        is_default = protocol::default_on_ready_ran(protocol);
    });
    // The default runs no user code, so the protocol called is still the attached one.
    if is_default && let Some(conn) = local.conns.borrow_mut().map.get_mut(&uuid) {
        conn.on_ready_is_default = true;
    }
}

/// The common end of a callback, in the caller's borrow of the entry: the callback returned
/// and no protocol was attached meanwhile, so `protocol` simply goes back (`Ok`, with the
/// entry). Otherwise (or when the entry is gone) `protocol` is handed back for
/// [`restore_protocol`] and, after a panic, the close.
#[inline]
fn put_back(
    conn: Option<&mut Conn>,
    protocol: Box<dyn Protocol>,
    returned: bool,
) -> Result<&mut Conn, Box<dyn Protocol>> {
    match conn {
        Some(conn) if returned && !conn.replacement_pending() => {
            conn.in_callback = false;
            conn.protocol = Some(protocol);
            Ok(conn)
        }
        _ => Err(protocol),
    }
}

/// Turns `uuid`'s [`Drained`](EngineEvent::Drained) reports back on (see
/// [`Engine::report_drained`]): called before anything starts waiting for its queue to drain
/// (a suspension, a payload behind a file, a notification, a hook, a protocol whose
/// `on_ready` may not be the default). With the engine borrowed (a hook running) the thread
/// does it as a task, which runs before the tick's wait unless the task batch is full.
pub(crate) fn want_drained(local: &Local, uuid: Uuid) {
    if let Ok(mut engine) = local.engine.try_borrow_mut() {
        engine.report_drained(uuid, true);
        return;
    }
    local.push_task(Box::new(move || {
        Local::with_this_thread(|local| {
            if let Ok(mut engine) = local.engine.try_borrow_mut() {
                engine.report_drained(uuid, true);
            }
        });
    }));
}

/// Takes `uuid`'s protocol out of the map for a callback (or a lock); `None` when the
/// connection isn't here, has no protocol, or a callback already holds it.
pub(crate) fn take_protocol(local: &Local, uuid: Uuid) -> Option<Box<dyn Protocol>> {
    let mut conns = local.conns.borrow_mut();
    let conn = conns.map.get_mut(&uuid)?;
    let protocol = conn.protocol.take()?;
    conn.in_callback = true;
    Some(protocol)
}

/// The slow end of a callback, when `put_back` couldn't simply return the protocol: the
/// connection changed meanwhile (a protocol attached, or it closed), or the callback panicked,
/// which closes the connection at once.
fn settle(local: &Local, uuid: Uuid, protocol: Box<dyn Protocol>, returned: bool) {
    restore_protocol(local, uuid, protocol);
    if !returned {
        close_local(local, uuid, CloseMode::Abort);
    }
}

/// Puts a protocol taken by [`take_protocol`] back, unless a protocol was attached meanwhile
/// or the connection closed; then the taken one's `on_close` runs.
pub(crate) fn restore_protocol(local: &Local, uuid: Uuid, protocol: Box<dyn Protocol>) {
    let replaced = {
        let mut conns = local.conns.borrow_mut();
        match conns.map.get_mut(&uuid) {
            Some(conn) => {
                conn.in_callback = false;
                match conn.take_replacement() {
                    Some(next) => {
                        conn.hijacked = next.is_none();
                        conn.set_protocol(next);
                        want_drained(local, uuid);
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
}

/// Closes `uuid` (owned by this thread); its `on_close` runs when the engine reports it closed.
///
/// A graceful close first gives the connection's read/write hook its one `before_close`; when
/// that asks for a delay, the engine's close waits until the hook's `flush` reports nothing
/// held (see [`hook::flush_scheduled`]).
pub(crate) fn close_local(local: &Local, uuid: Uuid, mode: CloseMode) {
    let (connecting, ask_hook) = {
        let mut conns = local.conns.borrow_mut();
        let Some(conn) = conns.map.get_mut(&uuid) else {
            return;
        };
        conn.closing = true;
        // Its writes must now be refused.
        local.plain_data.forget();
        let connecting = matches!(conn.kind, Kind::Connecting { .. });
        if mode == CloseMode::Graceful && conn.close_after_flush().is_some() {
            // Already waiting for the hook to flush its last bytes.
            return;
        }
        if mode == CloseMode::Graceful && conn.outbox.defer_close() {
            // A file is still being sent: the outbox closes the connection once it is empty.
            drop(conns);
            table::update(uuid, |record| record.closing = true);
            return;
        }
        let ask_hook = mode == CloseMode::Graceful
            && !connecting
            && conn.hook.is_some()
            && !conn.before_close_done;
        conn.before_close_done = true;
        (connecting, ask_hook)
    };
    table::update(uuid, |record| record.closing = true);
    if ask_hook && hook::before_close(local, uuid) == Some(true) {
        let mut conns = local.conns.borrow_mut();
        if let Some(conn) = conns.map.get_mut(&uuid) {
            conn.set_close_after_flush(Instant::now());
        }
        conns.schedule_flush(uuid);
        return;
    }
    let mode = if connecting { CloseMode::Abort } else { mode };
    engine_close(local, uuid, mode);
}

/// Asks the engine to close `uuid`, logging a failure other than "already gone".
pub(crate) fn engine_close(local: &Local, uuid: Uuid, mode: CloseMode) {
    if mode == CloseMode::Abort
        && let Some(conn) = local.conns.borrow_mut().map.get_mut(&uuid)
    {
        conn.aborted = true;
    }
    if let Err(error) = local.engine.borrow_mut().close(uuid, mode)
        && error.kind() != io::ErrorKind::NotFound
    {
        log::warn!("closing connection {uuid} failed: {error}");
    }
}

/// Forgets a closed connection and runs its last callbacks: a listener's `on_finish`, a
/// failed connector's `on_fail`, the protocol's `on_close`.
pub(crate) fn finalize(local: &Local, uuid: Uuid, error: Option<io::Error>) {
    let Some(mut conn) = local.conns.borrow_mut().map.remove(&uuid) else {
        return;
    };
    let env = table::close(uuid);
    // A graceful close that ended by request sent everything queued; anything else didn't.
    let delivered = error.is_none() && !conn.aborted && conn.outbox.is_empty();
    for notify in conn.take_notify() {
        if delivered {
            notify.report(Ok(()));
        } else {
            notify.unsent(error.as_ref());
        }
    }
    // Cleanup order as facil.io's: the hook's, the linked objects', then the protocol's.
    if let Some(hook) = conn.hook.take() {
        caught("rw hook cleanup", uuid, || drop(hook));
    }
    crate::conn::env::clean_up(uuid, env);
    match conn.kind {
        Kind::Stream => {}
        Kind::Listener(listening) => {
            if let Some(on_finish) = listening.on_finish {
                caught("on_finish", uuid, on_finish);
            }
        }
        Kind::Datagram { on_finish } => {
            if let Some(on_finish) = on_finish {
                caught("on_finish", uuid, on_finish);
            }
        }
        Kind::Connecting { connector, .. } => {
            let error = match error {
                Some(error) => error,
                None if conn.timed_out => {
                    io::Error::new(io::ErrorKind::TimedOut, "connect timed out")
                }
                None => io::Error::from(io::ErrorKind::ConnectionAborted),
            };
            connector.failed(local, error);
        }
    }
    if let Some(mut protocol) = conn.protocol {
        caught("on_close", uuid, || protocol.on_close(uuid));
    }
    if let Some(connector) = conn.connector {
        connector.closed(local);
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
            conn.cold.get_or_insert_default().replacement = Some(protocol);
            return Ok(());
        }
        conn.hijacked = protocol.is_none();
        let old = conn.set_protocol(protocol);
        want_drained(local, uuid);
        // Bytes that arrived before the protocol did are its to read.
        let attached = conn.protocol.is_some();
        let held = conn.hook.as_ref().map_or(0, |hook| hook.buffered());
        if attached && local.engine.borrow().buffered(uuid) + held > 0 {
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
    if suspended {
        // Resumed by the drain.
        want_drained(local, uuid);
    }
    if let Err(error) = local.engine.borrow_mut().pause_receive(uuid, suspended)
        && error.kind() != io::ErrorKind::NotFound
    {
        log::warn!("pausing receive on {uuid} failed: {error}");
    }
}

/// Runs one queued `on_data` and decides what follows: another call while it makes progress
/// on buffered bytes, a graceful close after the peer's end of stream.
pub(crate) fn run_data(local: &Local, uuid: Uuid) {
    // As `with_protocol`, but the entry is looked up once before the call and once after it
    // (restoring the protocol and deciding what follows together): this runs per request.
    let taken = {
        let mut conns = local.conns.borrow_mut();
        let Some(conn) = conns.map.get_mut(&uuid) else {
            return;
        };
        conn.take_for_data()
    };
    if let Some((protocol, before, plain)) = taken {
        run_taken_data(local, uuid, protocol, before, plain);
    }
}

/// [`run_data`] once the protocol was taken out of its entry by [`Conn::take_for_data`]
/// (`before`: the entry's `read_total` then; `plain`: the owner path may be taken): a caller
/// that has the entry at hand takes it there, sparing `run_data`'s lookup.
pub(crate) fn run_taken_data(
    local: &Local,
    uuid: Uuid,
    mut protocol: Box<dyn Protocol>,
    before: u64,
    plain: bool,
) {
    local.plain_data.enter(uuid, plain);
    let returned = caught("on_data", uuid, || protocol.on_data(uuid));
    let read_plainly = local.plain_data.leave();
    let mut conns = local.conns.borrow_mut();
    // The common case (the protocol goes back, nothing replaced it) reads what decides the
    // next step through the same lookup that restores it: this runs per request.
    let after = match put_back(conns.map.get_mut(&uuid), protocol, returned) {
        Ok(conn) => AfterData::of(conn),
        Err(protocol) => {
            drop(conns);
            settle(local, uuid, protocol, returned);
            conns = local.conns.borrow_mut();
            match conns.map.get(&uuid) {
                Some(conn) => AfterData::of(conn),
                None => return,
            }
        }
    };
    let (buffered, eof, queued) = local.engine.borrow().after_data(uuid);
    // Plaintext a hook holds counts as buffered, and keeps the end of stream from closing.
    let (buffered, eof) = (buffered + after.held, eof && after.held == 0);
    let progressed = read_plainly || after.read_total > before;
    let (suspended, closing) = (after.suspended, after.closing);
    // Answers pile up faster than the peer reads them: no more `on_data` (and no more
    // receiving) until the send queue drains, which resumes it as it does after `suspend`.
    let backlogged = queued >= SEND_SOFT_LIMIT;
    if eof && !closing {
        drop(conns);
        close_local(local, uuid, CloseMode::Graceful);
    } else if backlogged && !closing && !suspended {
        drop(conns);
        set_suspended(local, uuid, true);
    } else if buffered > 0 && progressed && !suspended {
        conns.schedule_data(uuid);
    }
}

/// What [`run_taken_data`] reads from the entry after `on_data` to decide what follows.
struct AfterData {
    /// Plaintext the connection's hook holds.
    held: usize,
    /// The entry's `read_total`.
    read_total: u64,
    /// Whether `on_data` is suspended.
    suspended: bool,
    /// Whether the connection is closing.
    closing: bool,
}

impl AfterData {
    /// The entry's state as it is now.
    #[inline]
    fn of(conn: &Conn) -> Self {
        Self {
            held: conn.hook.as_ref().map_or(0, |hook| hook.buffered()),
            read_total: conn.read_total,
            suspended: conn.suspended,
            closing: conn.closing,
        }
    }
}
