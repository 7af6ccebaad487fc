//! Read/write hooks (facil.io's `fio_rw_hook_s`): an [`RwHook`] sits between a protocol's
//! [`read`](crate::read) / [`write`](crate::write()) and the engine's receive and send queues,
//! to transform the bytes (TLS is one hook) or hold them.
//!
//! A hook runs on the connection's owning thread with a [`HookIo`], its only door to the
//! connection: raw received bytes in, raw bytes out to the send queue. facil.io's rule that a
//! hook must never call the library becomes structural: the engine is borrowed while a hook
//! runs, so a reactor call from inside a hook panics, and the panic (like any panic in a
//! hook) is logged and closes the connection abruptly.
//!
//! [`RwHook`]'s documentation says when the reactor calls each method.

use std::any::Any;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use fio_buffer::{Buffer, Chunk};

use crate::conn::api::{engine_error, on_owner};
use crate::conn::shutdown::GRACE;
use crate::conn::state::{self, caught, close_local, engine_close};
use crate::engine::{CloseMode, Engine};
use crate::error::Error;
use crate::panic::message;
use crate::thread::Local;
use crate::uuid::Uuid;

/// A connection's read/write hook (facil.io's `fio_rw_hook_s`); set with [`rw_hook_set`].
///
/// Every method has a default that is the plain engine path, so a hook overrides only what it
/// changes; [`DefaultHook`] overrides nothing. The hook's `Drop` is facil.io's `cleanup`.
///
/// When the reactor calls each method:
/// - `read`: whenever the protocol calls [`read`](crate::read).
/// - `write`: whenever the protocol (or any thread, routed to the owner) writes;
///   `write_borrowed` instead for [`write`](crate::write()) on the owning thread with nothing
///   queued behind a file.
/// - `flush`: at the end of every tick in which the hook was written to (unless
///   [`wants_flush`](Self::wants_flush) said after each such write that it holds nothing),
///   again on later ticks (when the send queue drains, or at the latest on the once-a-second
///   timeout sweep) while it reports bytes held, and on [`flush`](crate::flush()); once the
///   connection is closing, also whenever raw bytes arrive (`on_data` no longer runs then, and
///   a hook may need the peer's bytes to finish, as TLS does a handshake). A flush may take
///   raw bytes too: what it leaves [`buffered`](Self::buffered) gets an `on_data`.
/// - `before_close`: once, on the first graceful close; returning `true` delays the close
///   until `flush` reports nothing held (bounded by the 8-second grace period, after which
///   the connection is closed abruptly). An abortive close ([`force_close`](crate::force_close),
///   errors, the end of shutdown) skips it, as facil.io may.
/// - cleanup is the hook's `Drop`: when the connection is gone, when [`rw_hook_set`] or
///   [`HookIo::replace`] replaces it, or at once when `rw_hook_set` is given a uuid that isn't
///   open. Exactly once. [`HookIo::replace_with`] runs none: the old hook moves on.
///
/// A hook must not call the reactor's functions: the engine is borrowed while it runs, so
/// such a call panics, which closes the connection.
///
/// # Examples
/// A hook that holds the protocol's writes and sends them in one piece at the end of the
/// tick, plus a last line before a graceful close:
/// ```
/// use fio_reactor::{Chunk, HookIo, RwHook};
///
/// #[derive(Default)]
/// struct Batch {
///     held: Vec<u8>,
/// }
///
/// impl RwHook for Batch {
///     fn write(&mut self, _io: &mut HookIo<'_>, data: Chunk) -> std::io::Result<()> {
///         self.held.extend_from_slice(data.bytes());
///         Ok(())
///     }
///
///     fn flush(&mut self, io: &mut HookIo<'_>) -> std::io::Result<usize> {
///         if !self.held.is_empty() {
///             io.send(std::mem::take(&mut self.held))?;
///         }
///         Ok(0)
///     }
///
///     fn before_close(&mut self, io: &mut HookIo<'_>) -> bool {
///         self.held.extend_from_slice(b"bye\n");
///         let _ = io;
///         true // close once flush has sent it
///     }
/// }
///
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// assert!(fio_reactor::rw_hook_set(stale, Batch::default()).is_err());
/// ```
pub trait RwHook: Any + Send {
    /// Reads decoded bytes into `buf` (facil.io's `read`), taking raw bytes from
    /// [`HookIo::receive`]; `Ok(0)` when none are ready. The default passes raw bytes through.
    /// A hook never reports the end of the stream itself: when its `read` returns `Ok(0)`,
    /// holds nothing ([`buffered`](Self::buffered)) and [`HookIo::is_eof`] is true, the
    /// protocol's [`read`](crate::read) gets [`Error::Eof`](crate::Error::Eof).
    ///
    /// # Errors
    /// Any error closes the connection the way a failed read does: the protocol's `read` gets
    /// [`Error::Connection`].
    fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> io::Result<usize> {
        io.receive(buf)
    }

    /// Takes `data` written by the protocol (facil.io's `write`): encode it and hand the
    /// result to [`HookIo::send`], or hold it for [`flush`](Self::flush). The hook takes all
    /// of `data` (there is no short write: the send queue after it is unbounded, and
    /// [`pending`](crate::pending) is the protocol's backpressure signal). The default sends
    /// `data` as it is, with the write's urgency.
    ///
    /// # Errors
    /// Returned to the protocol's [`write`](crate::write()) as [`Error::Connection`] (or
    /// [`Error::Closing`] for `BrokenPipe`).
    fn write(&mut self, io: &mut HookIo<'_>, data: Chunk) -> io::Result<()> {
        io.send(data)
    }

    /// Takes bytes the protocol lent with [`write`](crate::write()) (not urgent): encode
    /// them at once, or copy what must wait. The default copies them into a chunk for
    /// [`write`](Self::write); a hook that encodes into [`HookIo::send_buffer`] overrides it
    /// to skip that copy and its allocation.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    fn write_borrowed(&mut self, io: &mut HookIo<'_>, data: &[u8]) -> io::Result<()> {
        self.write(io, Chunk::Vec(data.to_vec()))
    }

    /// Sends what the hook holds, as far as it can (facil.io's `flush`); returns how many
    /// bytes it still holds (0: nothing). The default holds nothing.
    ///
    /// # Errors
    /// An error closes the connection abruptly.
    fn flush(&mut self, io: &mut HookIo<'_>) -> io::Result<usize> {
        let _ = io;
        Ok(0)
    }

    /// The connection is about to close gracefully (facil.io's `before_close`): send a closing
    /// record (TLS's close_notify) through `io`, or hold it for `flush`. Return `true` to delay
    /// the close until [`flush`](Self::flush) returns 0. Runs at most once. The default
    /// returns `false`.
    fn before_close(&mut self, io: &mut HookIo<'_>) -> bool {
        let _ = io;
        false
    }

    /// Decoded bytes the hook holds, ready for `read` (a TLS record decrypted beyond what the
    /// protocol's buffer took). They count as buffered, so `on_data` runs again for them and
    /// the peer's end of stream doesn't close the connection before they are read. The default
    /// is 0. (No facil.io equivalent; its `fio_read` simply missed such bytes.)
    fn buffered(&self) -> usize {
        0
    }

    /// Whether the end of the tick must call [`flush`](Self::flush), asked right after each
    /// `write` and `write_borrowed`. The default, `true`, flushes every tick the hook was
    /// written to. A hook that hands everything to the send queue during the write itself,
    /// and so holds nothing a flush would send or finish, returns `false` to skip that call.
    fn wants_flush(&self) -> bool {
        true
    }

    /// Whether a `read` now could only decode raw bytes received from here on: the hook
    /// holds no decoded bytes and no raw ones of its own. When it says so and nothing raw is
    /// received, the protocol's [`read`](crate::read) returns 0 without calling the hook,
    /// which saves taking it out of its connection and putting it back on the read that
    /// ends every `on_data` loop. The default, `false`, always calls `read`.
    fn drained(&self) -> bool {
        false
    }

    /// Writes the hook holds and has not handed to the send queue yet (plaintext waiting
    /// for a TLS handshake, records gathered until the end of the tick), counted as chunks:
    /// [`pending`](crate::pending) adds them, so a protocol sees them as not sent. The
    /// default is 0.
    fn pending(&self) -> usize {
        0
    }
}

/// The plain engine path as a hook (facil.io's `FIO_DEFAULT_RW_HOOKS`): `rw_hook_set(uuid,
/// DefaultHook)` removes a connection's hook (running its cleanup).
///
/// # Examples
/// ```
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// assert!(fio_reactor::rw_hook_set(stale, fio_reactor::DefaultHook).is_err());
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultHook;

impl RwHook for DefaultHook {}

/// A hook's access to its connection while one of its methods runs: the raw receive queue,
/// the send queue, and [`replace`](Self::replace).
pub struct HookIo<'a> {
    /// The connection.
    uuid: Uuid,
    /// The owning thread's engine, borrowed for the call.
    engine: &'a mut dyn Engine,
    /// Whether the write being handled was urgent; `send` keeps its urgency.
    urgent: bool,
    /// Raw bytes taken from the receive queue, counted as the protocol's read progress.
    received: u64,
    /// What [`received_len`](Self::received_len) answers until bytes are taken: the reactor
    /// asked the engine just before the call (see `to_read`).
    received_known: Option<usize>,
    /// What takes over when the call returns (`replace`, `replace_with`).
    replacement: Option<Replacement>,
}

/// A hook replacement requested from inside a hook.
enum Replacement {
    /// `replace`: this hook takes over; the running one is dropped (cleaned up).
    Hook(Box<dyn RwHook>),
    /// `replace_with`: the running hook is handed to the closure, which makes the next one.
    With(MakeNext),
}

/// `replace_with`'s closure: the old hook in, the next one out.
type MakeNext = Box<dyn FnOnce(Box<dyn RwHook>) -> Box<dyn RwHook>>;

impl HookIo<'_> {
    /// The connection.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// Copies raw received bytes into `buf`; `Ok(0)` when none are buffered, which is also
    /// what it returns after the peer's end of stream: [`is_eof`](Self::is_eof) tells the two
    /// apart.
    ///
    /// # Errors
    /// - `NotFound` when the connection is gone.
    pub fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.received_known = None;
        let count = self.engine.read(self.uuid, buf)?;
        self.received += count as u64;
        Ok(count)
    }

    /// Takes the front received buffer out of the receive queue without copying: the hook
    /// owns it and may decode in place (TLS decrypts records where they landed), keeping it
    /// as long as it needs. `Ok(None)` when nothing is buffered.
    ///
    /// A unit the hook decodes (a TLS record) may span two buffers; the hook then keeps the
    /// part at the end of one and joins it with the start of the next, which costs one copy
    /// of that unit into a buffer of its own. Bytes the hook holds are not
    /// [`received_len`](Self::received_len) any more: report what they decode to in
    /// [`RwHook::buffered`].
    ///
    /// # Errors
    /// - `NotFound` when the connection is gone.
    pub fn receive_buffer(&mut self) -> io::Result<Option<Buffer>> {
        self.received_known = None;
        let buffer = self.engine.read_buffer(self.uuid)?;
        if let Some(buffer) = &buffer {
            self.received += buffer.len() as u64;
        }
        Ok(buffer)
    }

    /// An empty pooled buffer from the connection's send pool: fill it (encode into it) and
    /// queue it with [`send`](Self::send), which moves it into the send queue without
    /// copying. Dropping it unsent returns it to the pool.
    ///
    /// # Errors
    /// - the pool's exhaustion (`OutOfMemory`);
    /// - `NotFound` when the connection is gone.
    pub fn send_buffer(&mut self) -> io::Result<Buffer> {
        self.engine.send_buffer(self.uuid)
    }

    /// Gives back a buffer from [`receive_buffer`](Self::receive_buffer) the hook has
    /// decoded and no longer needs: the engine receives into it again, which is cheaper than
    /// dropping it (its pool takes it back then, and the engine takes another).
    pub fn recycle_buffer(&mut self, buffer: Buffer) {
        self.engine.recycle_buffer(buffer);
    }

    /// Raw bytes received and not yet taken.
    pub fn received_len(&self) -> usize {
        self.received_known
            .unwrap_or_else(|| self.engine.buffered(self.uuid))
    }

    /// Whether the peer shut its write side and every raw byte was taken.
    pub fn is_eof(&self) -> bool {
        self.engine.is_eof(self.uuid)
    }

    /// Queues raw bytes for sending, after everything queued before. Inside
    /// [`RwHook::write`] they keep that write's urgency; elsewhere they are not urgent.
    ///
    /// # Errors
    /// - `BrokenPipe` once the engine is closing the connection;
    /// - `NotFound` when the connection is gone.
    pub fn send(&mut self, chunk: impl Into<Chunk>) -> io::Result<()> {
        self.engine.write(self.uuid, chunk.into(), self.urgent)
    }

    /// Queues a copy of `data` for sending, after everything queued before, the way the
    /// protocol's [`write`](crate::write()) copies: into the spare room of the engine's last
    /// queued send buffer, so a small piece (a short TLS record) takes no pooled buffer of its
    /// own, and the small pieces of one tick gather into one send. Inside an urgent
    /// [`RwHook::write`] it keeps that urgency (as a chunk of its own).
    ///
    /// # Errors
    /// As [`send`](Self::send); also the pool's exhaustion (nothing is queued then).
    pub fn send_copy(&mut self, data: &[u8]) -> io::Result<()> {
        if self.urgent {
            return self.send(data.to_vec());
        }
        self.engine.write_copy(self.uuid, data)
    }

    /// Sends what is queued now instead of at the end of the tick: for a reply the peer
    /// waits on that took long to make (a TLS handshake flight), so the peer goes on while
    /// this thread serves its other connections. It costs a system call of its own (the end
    /// of the tick sends every connection's queue together), so it is for expensive replies,
    /// not every write.
    ///
    /// # Examples
    /// A hook that sends every write at once:
    /// ```
    /// use fio_reactor::{Chunk, HookIo, RwHook};
    ///
    /// struct Immediate;
    /// impl RwHook for Immediate {
    ///     fn write(&mut self, io: &mut HookIo<'_>, data: Chunk) -> std::io::Result<()> {
    ///         io.send(data)?;
    ///         io.send_now();
    ///         Ok(())
    ///     }
    /// }
    /// # let stale = fio_reactor::Uuid::from_parts(0, 0);
    /// # assert!(fio_reactor::rw_hook_set(stale, Immediate).is_err());
    /// ```
    pub fn send_now(&mut self) {
        self.engine.send_now(self.uuid);
    }

    /// Raw chunks queued and not yet sent.
    pub fn pending(&self) -> usize {
        self.engine.pending(self.uuid)
    }

    /// Replaces the running hook with `hook` once the current method returns, and drops the
    /// running hook, so its `Drop` (its cleanup) runs: move whatever should survive (buffers,
    /// session state) into `hook` first. [`replace_with`](Self::replace_with) is facil.io's
    /// `fio_rw_hook_replace_unsafe`, which calls no cleanup.
    pub fn replace(&mut self, hook: impl RwHook) {
        self.replacement = Some(Replacement::Hook(Box::new(hook)));
    }

    /// Replaces the running hook once the current method returns with what `next` makes of
    /// it (facil.io's `fio_rw_hook_replace_unsafe`, made safe by being reachable only from
    /// inside a hook). No cleanup runs: `next` owns the old hook, and may keep it (wrap it,
    /// or take its state out with a downcast) or drop it. A panic in `next` closes the
    /// connection abruptly. Called again before the method returns, the last call wins.
    ///
    /// # Examples
    /// A hook that, on its first read, puts a counting layer over itself; the old hook is
    /// kept inside the new one, not cleaned up:
    /// ```
    /// use fio_reactor::{HookIo, RwHook};
    ///
    /// struct Plain;
    /// impl RwHook for Plain {
    ///     fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> std::io::Result<usize> {
    ///         io.replace_with(|old| Box::new(Counted { inner: old, bytes: 0 }));
    ///         io.receive(buf)
    ///     }
    /// }
    ///
    /// struct Counted {
    ///     inner: Box<dyn RwHook>,
    ///     bytes: usize,
    /// }
    /// impl RwHook for Counted {
    ///     fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> std::io::Result<usize> {
    ///         let count = self.inner.read(io, buf)?;
    ///         self.bytes += count;
    ///         Ok(count)
    ///     }
    /// }
    ///
    /// let stale = fio_reactor::Uuid::from_parts(0, 0);
    /// assert!(fio_reactor::rw_hook_set(stale, Plain).is_err());
    /// ```
    pub fn replace_with<F>(&mut self, next: F)
    where
        F: FnOnce(Box<dyn RwHook>) -> Box<dyn RwHook> + 'static,
    {
        self.replacement = Some(Replacement::With(Box::new(next)));
    }
}

impl fmt::Debug for HookIo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookIo")
            .field("uuid", &self.uuid)
            .field("urgent", &self.urgent)
            .field("replacing", &self.replacement.is_some())
            .finish_non_exhaustive()
    }
}

/// Sets `uuid`'s read/write hook (facil.io's `fio_rw_hook_set`); the hook it replaces is
/// dropped (its cleanup). Set it before bytes flow, typically in `on_open` (bytes already
/// received are read through the new hook). From another thread the call is routed to the
/// owner and takes effect on its next tick. [`DefaultHook`] removes the hook.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection; `hook` has then been
///   dropped (facil.io: "cleanup is always called, even if `fio_rw_hook_set` fails").
///
/// # Examples
/// See [`RwHook`].
pub fn rw_hook_set(uuid: Uuid, hook: impl RwHook) -> Result<(), Error> {
    let hook: Box<dyn RwHook> = Box::new(hook);
    on_owner(uuid, move |local| {
        if local.conns.borrow().map.contains_key(&uuid) {
            install(local, uuid, hook);
            Ok(())
        } else {
            Err(Error::InvalidUuid(uuid))
        }
    })
}

/// Sets `uuid`'s hook (owned here; [`DefaultHook`] removes it) and drops the one it
/// replaces; drops `hook` when `uuid` isn't here.
pub(crate) fn install(local: &Local, uuid: Uuid, hook: Box<dyn RwHook>) {
    let hook = if (hook.as_ref() as &dyn Any).is::<DefaultHook>() {
        None
    } else {
        Some(hook)
    };
    let old = {
        let mut conns = local.conns.borrow_mut();
        let Some(conn) = conns.map.get_mut(&uuid) else {
            drop(conns);
            if let Some(hook) = hook {
                caught("rw hook cleanup", uuid, || drop(hook));
            }
            return;
        };
        conn.hook_held = false;
        // Its reads and writes must now go through the hook.
        local.plain_data.forget();
        std::mem::replace(&mut conn.hook, hook)
    };
    // A hook may hold bytes until the queue drains.
    state::want_drained(local, uuid);
    if let Some(old) = old {
        caught("rw hook cleanup", uuid, || drop(old));
    }
}

/// Whether `uuid` (owned here) has a hook.
pub(crate) fn has_hook(local: &Local, uuid: Uuid) -> bool {
    local
        .conns
        .borrow()
        .map
        .get(&uuid)
        .is_some_and(|conn| conn.hook.is_some())
}

/// The protocol's read through the hook.
pub(crate) fn read(local: &Local, uuid: Uuid, buf: &mut [u8]) -> io::Result<usize> {
    let received = match to_read(local, uuid) {
        Some(0) => return Ok(0),
        received => received,
    };
    call(local, uuid, "rw hook read", false, |hook, io| {
        io.received_known = received;
        hook.read(io, buf)
    })
    .unwrap_or_else(|| Err(panicked()))
}

/// The raw bytes waiting when `uuid`'s hook is [`drained`](RwHook::drained) (`Some(0)`: a
/// read would return 0; otherwise the hook's [`HookIo::received_len`] is known without
/// asking again). `None` when the hook holds bytes, or the tables are busy (a read from
/// inside a hook takes the usual path and its usual error).
fn to_read(local: &Local, uuid: Uuid) -> Option<usize> {
    let conns = local.conns.try_borrow().ok()?;
    let drained = conns
        .map
        .get(&uuid)
        .and_then(|conn| conn.hook.as_ref())
        .is_some_and(|hook| hook.drained());
    if !drained {
        return None;
    }
    local
        .engine
        .try_borrow()
        .ok()
        .map(|engine| engine.buffered(uuid))
}

/// The protocol's write through the hook; the hook's flush follows at the end of the tick.
/// (The caller checks that the connection isn't closing: a file still being sent when the
/// close came keeps writing until it is done.)
pub(crate) fn write(local: &Local, uuid: Uuid, chunk: Chunk, urgent: bool) -> io::Result<()> {
    write_with(local, uuid, urgent, |hook, io| hook.write(io, chunk))
}

/// The protocol's borrowed write through the hook; the hook's flush follows at the end of the
/// tick. (The caller checked that the connection isn't closing.)
pub(crate) fn write_borrowed(local: &Local, uuid: Uuid, data: &[u8]) -> io::Result<()> {
    write_with(local, uuid, false, |hook, io| hook.write_borrowed(io, data))
}

/// Runs one of the hook's writes and schedules the hook's flush unless it says it holds
/// nothing after it.
fn write_with(
    local: &Local,
    uuid: Uuid,
    urgent: bool,
    write: impl FnOnce(&mut dyn RwHook, &mut HookIo<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let (written, flush) = call(local, uuid, "rw hook write", urgent, |hook, io| {
        let written = write(hook, io);
        (written, wants_flush(hook, io))
    })
    .unwrap_or_else(|| (Err(panicked()), true));
    if flush {
        local.conns.borrow_mut().schedule_flush(uuid);
    }
    written
}

/// Whether a write leaves the hook to flush at the end of the tick: always when it asked for
/// its replacement (the next hook has not said).
fn wants_flush(hook: &dyn RwHook, io: &HookIo<'_>) -> bool {
    io.replacement.is_some() || hook.wants_flush()
}

/// The hook's `before_close`; `None` when there is no hook or it panicked.
pub(crate) fn before_close(local: &Local, uuid: Uuid) -> Option<bool> {
    call(local, uuid, "rw hook before_close", false, |hook, io| {
        hook.before_close(io)
    })
}

/// The end of a tick: flushes the hooks queued for it. A hook that still holds bytes is
/// queued again for the next tick.
///
/// Every tick ends here, nearly always with no hook written to: that look is inlined.
#[inline]
pub(crate) fn flush_queued(local: &Local, now: Instant) {
    if !local.conns.borrow().flush_queue.is_empty() {
        flush_queue(local, now);
    }
}

/// [`flush_queued`] with flushes queued.
#[inline(never)]
fn flush_queue(local: &Local, now: Instant) {
    let mut queued = std::mem::take(&mut local.conns.borrow_mut().flush_queue);
    for uuid in queued.drain(..) {
        let due = match local.conns.borrow_mut().map.get_mut(&uuid) {
            Some(conn) if conn.flush_scheduled => {
                conn.flush_scheduled = false;
                true
            }
            _ => false,
        };
        if due && let Err(error) = flush_one(local, uuid, now) {
            log::debug!("flushing the rw hook of {uuid} failed: {error}");
        }
    }
    // The emptied queue goes back with its capacity, so the next tick's writes through a
    // hook queue their flush without allocating (unless a flush queued one meanwhile).
    let mut conns = local.conns.borrow_mut();
    if conns.flush_queue.is_empty() {
        conns.flush_queue = queued;
    }
}

/// The send queue drained: a hook that held bytes gets another flush.
pub(crate) fn drained(local: &Local, uuid: Uuid) {
    let mut conns = local.conns.borrow_mut();
    if conns.map.get(&uuid).is_some_and(|conn| conn.hook_held) {
        conns.schedule_flush(uuid);
    }
}

/// Flushes `uuid`'s hook; queues a retry while it holds bytes, and finishes (or, past the
/// grace period, aborts) a close that waits for it.
pub(crate) fn flush_one(local: &Local, uuid: Uuid, now: Instant) -> Result<usize, Error> {
    if !has_hook(local, uuid) {
        return if local.conns.borrow().map.contains_key(&uuid) {
            Ok(0)
        } else {
            Err(Error::InvalidUuid(uuid))
        };
    }
    let flushed = call(local, uuid, "rw hook flush", false, |hook, io| {
        hook.flush(io)
    })
    .unwrap_or_else(|| Err(panicked()));
    let held = match flushed {
        Ok(held) => held,
        Err(error) => {
            close_local(local, uuid, CloseMode::Abort);
            return Err(engine_error(uuid, error));
        }
    };
    let (close, newly_held) = {
        let mut conns = local.conns.borrow_mut();
        let Some(conn) = conns.map.get_mut(&uuid) else {
            return Ok(held);
        };
        let newly_held = held > 0 && !conn.hook_held;
        conn.hook_held = held > 0;
        let waiting = conn.close_after_flush();
        // The flush took raw bytes and holds decoded ones: the protocol reads them.
        let decoded = conn.hook.as_ref().is_some_and(|hook| hook.buffered() > 0);
        if decoded && !conn.closing {
            conns.schedule_data(uuid);
        }
        if held > 0 {
            conns.schedule_flush(uuid);
        }
        let close = match waiting {
            Some(_) if held == 0 => Some(CloseMode::Graceful),
            Some(since) if now.saturating_duration_since(since) >= GRACE => {
                log::debug!("the rw hook of {uuid} held {held} bytes past the grace period");
                Some(CloseMode::Abort)
            }
            _ => None,
        };
        (close, newly_held)
    };
    if newly_held {
        // The hook waits for room in the send queue: its drain must be reported (reports
        // are off while nothing waits for them).
        state::want_drained(local, uuid);
    }
    if let Some(mode) = close {
        engine_close(local, uuid, mode);
    }
    Ok(held)
}

/// The error a panicking hook's caller sees.
fn panicked() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "the rw hook panicked")
}

/// Runs one hook method with the hook taken out of the connection's entry and the engine
/// borrowed; puts the hook (or its replacement) back. `None` when there is no hook, or it
/// panicked (logged; the connection is then closed abruptly).
fn call<R>(
    local: &Local,
    uuid: Uuid,
    what: &str,
    urgent: bool,
    f: impl FnOnce(&mut dyn RwHook, &mut HookIo<'_>) -> R,
) -> Option<R> {
    let mut hook = local.conns.borrow_mut().map.get_mut(&uuid)?.hook.take()?;
    let (result, received, replacement) = {
        let mut engine = local.engine.borrow_mut();
        let mut io = HookIo {
            uuid,
            engine: &mut *engine,
            urgent,
            received: 0,
            received_known: None,
            replacement: None,
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(hook.as_mut(), &mut io)));
        (result, io.received, io.replacement)
    };
    let (keep, leftover) = match replacement {
        Some(Replacement::Hook(next)) => (Some(next), Some(hook)),
        Some(Replacement::With(next)) => {
            // The old hook moves into `next`: no cleanup here, whatever `next` does with it.
            match catch_unwind(AssertUnwindSafe(move || next(hook))) {
                Ok(next) => (Some(next), None),
                Err(payload) => {
                    log::error!(
                        "the rw hook replacement of connection {uuid} panicked: {}; closing it",
                        message(payload.as_ref())
                    );
                    (None, None)
                }
            }
        }
        None => (Some(hook), None),
    };
    let replaced_badly = keep.is_none();
    let gone = {
        let mut conns = local.conns.borrow_mut();
        match conns.map.get_mut(&uuid) {
            Some(conn) => {
                conn.read_total += received;
                conn.hook = keep;
                None
            }
            // The connection closed while the hook ran.
            None => keep,
        }
    };
    // Two plain checks, not an iterator: this runs on every hook call.
    if let Some(old) = leftover {
        caught("rw hook cleanup", uuid, || drop(old));
    }
    if let Some(old) = gone {
        caught("rw hook cleanup", uuid, || drop(old));
    }
    if replaced_badly {
        close_local(local, uuid, CloseMode::Abort);
    }
    match result {
        Ok(value) => Some(value),
        Err(payload) => {
            log::error!(
                "{what} of connection {uuid} panicked: {}; closing it",
                message(payload.as_ref())
            );
            close_local(local, uuid, CloseMode::Abort);
            None
        }
    }
}
