//! The connection functions: attach, read, write, close, timeouts, and how a call finds the
//! thread that owns its connection.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fio_buffer::Chunk;
use fio_sys::SockAddr;

use crate::conn::hook;
use crate::conn::outbox::{self, FileChunk, Payload};
use crate::conn::protocol::{IoEvent, Protocol};
use crate::conn::state::{Kind, attach_local, caught, close_local, set_suspended};
use crate::conn::table::{self, Record};
use crate::engine::{CloseMode, Engine};
use crate::error::Error;
use crate::reactor::{Inner, Reactor};
use crate::thread::Local;
use crate::uuid::Uuid;

/// Where a call on a uuid runs.
pub(crate) enum Route {
    /// On this thread, which owns the connection.
    Here(Rc<Local>),
    /// On thread `.1` of reactor `.0`.
    There(Arc<Inner>, usize),
}

/// Finds the thread that owns `uuid`.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is stale or was never open, or its reactor is gone.
pub(crate) fn route(uuid: Uuid) -> Result<Route, Error> {
    // The common case, a call on a connection of the calling reactor thread: its own table
    // answers, without the process-wide table's lock.
    if let Some(local) = owner_here(uuid) {
        return Ok(Route::Here(local));
    }
    let record = table::record(uuid).ok_or(Error::InvalidUuid(uuid))?;
    let inner = record.reactor.upgrade().ok_or(Error::InvalidUuid(uuid))?;
    match Local::current(&inner) {
        Some(local) if local.index() == record.thread => Ok(Route::Here(local)),
        _ => Ok(Route::There(inner, record.thread)),
    }
}

/// The calling reactor thread, if it owns `uuid`: a connection is in a thread's own table
/// from its open to its final close, exactly while the process-wide table names it.
pub(crate) fn owner_here(uuid: Uuid) -> Option<Rc<Local>> {
    let local = Local::on_this_thread()?;
    let owned = local.conns.borrow().map.contains_key(&uuid);
    owned.then_some(local)
}

/// Runs `op` on the thread that owns `uuid`: now when that is this thread, else on the owner's
/// next tick (its error, if any, is then only logged).
pub(crate) fn on_owner<F>(uuid: Uuid, op: F) -> Result<(), Error>
where
    F: FnOnce(&Local) -> Result<(), Error> + Send + 'static,
{
    match route(uuid)? {
        Route::Here(local) => op(&local),
        Route::There(inner, thread) => {
            inner.post(
                thread,
                Box::new(move || match route(uuid) {
                    Ok(Route::Here(local)) => {
                        if let Err(error) = op(&local) {
                            log::debug!("a call routed to connection {uuid} failed: {error}");
                        }
                    }
                    _ => log::debug!("connection {uuid} closed before a routed call reached it"),
                }),
            );
            Ok(())
        }
    }
}

/// Maps an engine error on `uuid` to the crate's error.
#[cold]
pub(crate) fn engine_error(uuid: Uuid, error: io::Error) -> Error {
    match error.kind() {
        io::ErrorKind::NotFound => Error::InvalidUuid(uuid),
        io::ErrorKind::BrokenPipe => Error::Closing(uuid),
        _ => Error::Connection {
            uuid,
            source: error,
        },
    }
}

/// Attaches `protocol` to `uuid` (facil.io's `fio_attach`); a protocol already attached is
/// replaced and its `on_close` runs. Attaching from inside one of the connection's callbacks
/// takes effect when that callback returns.
///
/// On the owner thread, outside the connection's own callbacks (from another connection's
/// callback, say), the replaced protocol's `on_close` runs before `attach` returns, on the
/// calling thread: hold no lock it takes. From another thread the attach is routed. See the
/// crate docs' "Threads and callbacks".
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection; `protocol.on_close` has
///   then run (as the spec asks). From another thread the attach is routed, and a connection
///   that closes before it arrives runs `protocol.on_close` on its thread.
///
/// # Examples
/// ```
/// struct Nothing;
/// impl fio_reactor::Protocol for Nothing {}
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// assert!(fio_reactor::attach(stale, Nothing).is_err());
/// ```
pub fn attach(uuid: Uuid, protocol: impl Protocol) -> Result<(), Error> {
    attach_boxed(uuid, Some(Box::new(protocol)))
}

/// Detaches `uuid`'s protocol without closing the connection (facil.io's hijack: attaching
/// `NULL`): the old protocol's `on_close` runs and no callback runs until the next `attach`.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection.
pub fn detach(uuid: Uuid) -> Result<(), Error> {
    attach_boxed(uuid, None)
}

/// Attaches (or, with `None`, detaches) on the owning thread.
fn attach_boxed(uuid: Uuid, protocol: Option<Box<dyn Protocol>>) -> Result<(), Error> {
    let refuse = |protocol: Option<Box<dyn Protocol>>| {
        if let Some(mut protocol) = protocol {
            caught("on_close", uuid, || protocol.on_close(uuid));
        }
        Error::InvalidUuid(uuid)
    };
    match route(uuid) {
        Ok(Route::Here(local)) => attach_local(&local, uuid, protocol).map_err(refuse),
        Ok(Route::There(inner, thread)) => {
            inner.post(
                thread,
                Box::new(move || {
                    let _ = attach_boxed(uuid, protocol);
                }),
            );
            Ok(())
        }
        Err(error) => match (crate::conn::socket::take_unattached(uuid), protocol) {
            // A socket from `socket_uuid`/`accept_uuid`: the reactor takes it over now.
            (Some(fd), Some(protocol)) => adopt(uuid, fd, protocol),
            (Some(fd), None) => {
                // Detaching a socket nobody attached: it stays as it was.
                crate::conn::socket::put_unattached(uuid, fd);
                Err(error)
            }
            (None, protocol) => Err(refuse(protocol)),
        },
    }
}

/// Takes over a socket created elsewhere (facil.io's `fio_attach_fd`) on the current reactor
/// and attaches `protocol`; returns its uuid. The socket is made non-blocking. On a reactor
/// thread the connection belongs to that thread; elsewhere to the reactor's first thread,
/// once it runs.
///
/// # Errors
/// - [`Error::Connection`] when the descriptor can't be made non-blocking or the engine
///   refuses it (then `protocol.on_close` has run).
pub fn attach_fd(fd: OwnedFd, protocol: impl Protocol) -> Result<Uuid, Error> {
    let raw = fd.as_raw_fd();
    fio_sys::set_nonblocking(std::os::fd::AsFd::as_fd(&fd)).map_err(|source| {
        Error::Connection {
            uuid: Uuid::from_parts(raw, 0),
            source,
        }
    })?;
    let uuid = table::open(raw, Record::detached(&fd));
    adopt(uuid, fd, Box::new(protocol)).map(|()| uuid)
}

/// Hands `fd`, already in the table as `uuid` (owned by no reactor yet), to the current
/// reactor with `protocol`: on a reactor thread to that thread, elsewhere to the reactor's
/// first thread once it runs.
fn adopt(uuid: Uuid, fd: OwnedFd, protocol: Box<dyn Protocol>) -> Result<(), Error> {
    let inner = Reactor::current().inner().clone();
    let here = Local::current(&inner);
    let thread = here.as_ref().map_or(0, |local| local.index());
    table::update(uuid, |record| {
        record.reactor = Arc::downgrade(&inner);
        record.thread = thread;
    });
    let open = move |local: &Local| {
        let opened =
            crate::conn::dispatch::open_with(local, uuid, fd, Kind::Stream, false, Instant::now());
        match opened {
            Ok(()) => {
                attach_local(local, uuid, Some(protocol)).map_err(|_| Error::InvalidUuid(uuid))
            }
            Err(source) => {
                let mut protocol = protocol;
                caught("on_close", uuid, || protocol.on_close(uuid));
                Err(Error::Connection { uuid, source })
            }
        }
    };
    match here {
        Some(local) => open(&local),
        None => {
            inner.post(
                thread,
                Box::new(move || {
                    if let Some(local) = Local::current(&Reactor::current().inner().clone()) {
                        let _ = open(&local);
                    }
                }),
            );
            Ok(())
        }
    }
}

/// Copies up to `buf.len()` received bytes of `uuid` into `buf` (facil.io's `fio_read`) and
/// returns how many; `Ok(0)` means nothing is buffered now (more may arrive: `on_data` runs
/// again then). Counts as progress for the `on_data` loop. With a read/write hook
/// ([`rw_hook_set`](crate::rw_hook_set)) the bytes come through the hook's `read`.
///
/// Unlike facil.io's `fio_read`, whose 0 also meant "the peer is gone", the end of the stream
/// is its own answer: once the peer shut its side and every byte was read,
/// `Err(`[`Error::Eof`]`)`. The reactor closes such a connection gracefully after the
/// `on_data` that saw it, so a protocol needs no action of its own.
///
/// # Errors
/// - [`Error::Eof`] when nothing is buffered and the peer ended the stream (never for an
///   empty `buf`, never on a datagram socket);
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection;
/// - [`Error::ForeignThread`] when called outside the thread that owns `uuid` (read inside
///   its callbacks).
///
/// # Examples
/// ```
/// fn on_data(uuid: fio_reactor::Uuid) {
///     let mut buf = [0u8; 4096];
///     loop {
///         match fio_reactor::read(uuid, &mut buf) {
///             Ok(0) => break, // nothing more for now
///             Ok(count) => {
///                 let _ = fio_reactor::write(uuid, &buf[..count]);
///             }
///             Err(fio_reactor::Error::Eof(_)) => break, // the peer is done
///             Err(_) => break,                          // closed, or not this thread's
///         }
///     }
/// }
/// on_data(fio_reactor::Uuid::from_parts(0, 0)); // a stale uuid: `InvalidUuid`
/// ```
pub fn read(uuid: Uuid, buf: &mut [u8]) -> Result<usize, Error> {
    // The common case, `on_data` reading its own hook-less connection: no lookup at all.
    if let Some(Some(count)) = Local::with_this_thread(|local| read_owned(local, uuid, buf)) {
        return Ok(count);
    }
    read_looked_up(uuid, buf)
}

/// [`read`] on the owner path ([`PlainData`](crate::conn::PlainData)): `Some` with the bytes
/// read, `None` when it doesn't apply or found no bytes but the end of the stream or an
/// error, which the general path then finds (and reports) the same way. Runs no user code.
#[inline]
fn read_owned(local: &Local, uuid: Uuid, buf: &mut [u8]) -> Option<usize> {
    if !local.plain_data.is(uuid) {
        return None;
    }
    let mut engine = local.engine.try_borrow_mut().ok()?;
    let count = engine.read_or_eof(uuid, buf).ok()??;
    local.plain_data.note_read(count);
    Some(count)
}

/// [`read`] off the owner path, with the lookups that find the connection. Out of line, so
/// that the owner path stays small.
#[inline(never)]
fn read_looked_up(uuid: Uuid, buf: &mut [u8]) -> Result<usize, Error> {
    // A protocol reading its own hook-less connection: one lookup.
    let hooked_here = match Local::with_this_thread(|local| read_plain(local, uuid, buf)) {
        Some(PlainRead::Done(read)) => return read_result(uuid, read),
        // Its own connection through a hook (TLS): the same lookup found both.
        Some(PlainRead::Hooked) => Local::on_this_thread(),
        _ => None,
    };
    let (local, hooked) = match hooked_here {
        Some(local) => (local, true),
        None => {
            let Route::Here(local) = route(uuid)? else {
                return Err(Error::ForeignThread(uuid));
            };
            let hooked = hook::has_hook(&local, uuid);
            (local, hooked)
        }
    };
    let count = if hooked {
        hook::read(&local, uuid, buf)
    } else {
        local.engine.borrow_mut().read(uuid, buf)
    }
    .map_err(|error| engine_error(uuid, error))?;
    if count == 0 && !buf.is_empty() {
        // Decoded bytes a hook still holds keep the stream open, as in `run_data`.
        let held = local
            .conns
            .borrow()
            .map
            .get(&uuid)
            .and_then(|conn| conn.hook.as_ref().map(|hook| hook.buffered()))
            .unwrap_or(0);
        if held == 0 && local.engine.borrow().is_eof(uuid) {
            return Err(Error::Eof(uuid));
        }
        return Ok(0);
    }
    if count > 0
        && let Some(conn) = local.conns.borrow_mut().map.get_mut(&uuid)
    {
        conn.read_total += count as u64;
    }
    Ok(count)
}

/// What [`read_plain`] found.
enum PlainRead {
    /// The read is done: the engine's answer, for [`read_result`] (it stays small until
    /// then, where the crate's error would be copied on the way out).
    Done(io::Result<Option<usize>>),
    /// A connection this thread owns, with a read/write hook.
    Hooked,
    /// Not one of this thread's connections, or the thread's tables are busy.
    Elsewhere,
}

/// [`read`] on a connection this thread owns and that has no read/write hook, with the one
/// lookup that finds it; `Hooked` for one of this thread's with a hook; `Elsewhere` for the
/// general path (not here, or the thread's tables busy). Runs no user code.
#[inline]
fn read_plain(local: &Local, uuid: Uuid, buf: &mut [u8]) -> PlainRead {
    let Ok(mut conns) = local.conns.try_borrow_mut() else {
        return PlainRead::Elsewhere;
    };
    let Some(conn) = conns.map.get_mut(&uuid) else {
        return PlainRead::Elsewhere;
    };
    if conn.hook.is_some() {
        return PlainRead::Hooked;
    }
    let Ok(mut engine) = local.engine.try_borrow_mut() else {
        return PlainRead::Elsewhere;
    };
    let read = engine.read_or_eof(uuid, buf);
    if let Ok(Some(count)) = read {
        conn.read_total += count as u64;
    }
    PlainRead::Done(read)
}

/// What [`read`] returns for the engine's `read_or_eof` answer.
#[inline]
fn read_result(uuid: Uuid, read: io::Result<Option<usize>>) -> Result<usize, Error> {
    match read {
        Ok(Some(count)) => Ok(count),
        Ok(None) => Err(Error::Eof(uuid)),
        Err(error) => Err(engine_error(uuid, error)),
    }
}

/// Queues a copy of `data` for `uuid` (facil.io's `fio_write`); it is sent at the end of the
/// owner's tick, gathered with the other writes of that tick. Never runs a callback.
///
/// From another thread the write is routed to the owner and `Ok` means only that: a
/// connection found closed on arrival, or failing before the bytes leave, is logged
/// (`log::debug!`), which a program without a logger never sees. Use
/// [`write_notify`](crate::write_notify) to learn the outcome (see the crate docs' "Threads
/// and callbacks").
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection;
/// - [`Error::Closing`] once the connection is closing. From another thread the write is
///   routed and these are only logged.
pub fn write(uuid: Uuid, data: &[u8]) -> Result<(), Error> {
    // On the owner the copy goes straight into pooled send buffers.
    match Local::with_this_thread(|local| outbox::write_copy_plain(local, uuid, data)) {
        Some(Some(Ok(()))) => Ok(()),
        Some(Some(Err(error))) => Err(engine_error(uuid, error)),
        _ => write_looked_up(uuid, data),
    }
}

/// [`write`] where its common case doesn't apply (a hook, a waiting outbox, another thread's
/// connection). Out of line, so that the common case stays small.
#[inline(never)]
fn write_looked_up(uuid: Uuid, data: &[u8]) -> Result<(), Error> {
    if let Some(local) = Local::on_this_thread()
        && let Some(written) = outbox::write_copy(&local, uuid, data)
    {
        return written.map_err(|error| engine_error(uuid, error));
    }
    write2(uuid, Chunk::Vec(data.to_vec()), false)
}

/// Queues `payload` for `uuid` without copying it (facil.io's `fio_write2`: the data moves
/// into the connection, and dropping it once sent is the `dealloc`). A [`FileChunk`] is read
/// and sent a piece at a time (`.is_fd`), and writes made after it wait for it. `urgent`
/// puts a chunk of bytes right after the chunk being sent, ahead of any file. With a
/// read/write hook ([`rw_hook_set`](crate::rw_hook_set)) the bytes go to the hook's `write`,
/// whose output keeps the urgency.
///
/// # Errors
/// As [`write`](write()).
///
/// # Examples
/// ```
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// assert!(fio_reactor::write2(stale, b"moved".to_vec(), false).is_err());
/// ```
pub fn write2(uuid: Uuid, payload: impl Into<Payload>, urgent: bool) -> Result<(), Error> {
    let payload = payload.into();
    on_owner(uuid, move |local| {
        outbox::write(local, uuid, payload, urgent).map_err(|error| engine_error(uuid, error))
    })
}

/// Sends up to `len` bytes of `file` from `offset` (0: up to its end) and closes it afterwards
/// (facil.io's `fio_sendfile`); the bytes go out in order with the connection's other writes,
/// a piece at a time, so memory stays bounded however large the file is. Same as
/// `write2(uuid, FileChunk::new(file).offset(offset).max_len(len), false)`.
///
/// # Errors
/// As [`write`](write()); the file is closed on error too.
///
/// # Examples
/// ```
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// let file = std::fs::File::open("/proc/self/status")?;
/// assert!(fio_reactor::sendfile(stale, file, 0, 0).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn sendfile(uuid: Uuid, file: impl Into<OwnedFd>, offset: u64, len: u64) -> Result<(), Error> {
    let mut chunk = FileChunk::new(file).offset(offset);
    if len > 0 {
        chunk = chunk.max_len(len);
    }
    write2(uuid, chunk, false)
}

/// Chunks queued for `uuid` and not yet sent (facil.io's `fio_pending`), those its
/// read/write hook still holds included ([`RwHook::pending`](crate::RwHook::pending): what a
/// TLS session keeps while its handshake runs).
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection;
/// - [`Error::ForeignThread`] outside the owning thread.
pub fn pending(uuid: Uuid) -> Result<usize, Error> {
    match route(uuid)? {
        Route::Here(local) => {
            let waiting = local.conns.borrow().map.get(&uuid).map_or(0, |conn| {
                // What the hook holds hasn't reached the send queue yet.
                let held = conn.hook.as_ref().map_or(0, |hook| hook.pending());
                conn.outbox.len() + held
            });
            Ok(local.engine.borrow().pending(uuid) + waiting)
        }
        Route::There(..) => Err(Error::ForeignThread(uuid)),
    }
}

/// Closes `uuid` once its queued data is sent (facil.io's `fio_close`); `on_close` follows,
/// later, on the owner (never inside this call, even from another connection's callback).
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection.
pub fn close(uuid: Uuid) -> Result<(), Error> {
    if crate::conn::socket::close_unattached(uuid) {
        return Ok(());
    }
    table::update(uuid, |record| record.closing = true);
    on_owner(uuid, move |local| {
        close_local(local, uuid, CloseMode::Graceful);
        Ok(())
    })
}

/// Closes `uuid` now, dropping queued data (facil.io's `fio_force_close`).
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection.
pub fn force_close(uuid: Uuid) -> Result<(), Error> {
    if crate::conn::socket::close_unattached(uuid) {
        return Ok(());
    }
    table::update(uuid, |record| record.closing = true);
    on_owner(uuid, move |local| {
        close_local(local, uuid, CloseMode::Abort);
        Ok(())
    })
}

/// Whether `uuid` is an open connection (facil.io's `fio_is_valid`).
///
/// # Examples
/// ```
/// assert!(!fio_reactor::is_valid(fio_reactor::Uuid::from_parts(0, 0)));
/// ```
pub fn is_valid(uuid: Uuid) -> bool {
    table::record(uuid).is_some()
}

/// Whether `uuid` is invalid or closing (facil.io's `fio_is_closed`).
pub fn is_closed(uuid: Uuid) -> bool {
    table::record(uuid).is_none_or(|record| record.closing)
}

/// The current uuid of the connection on descriptor `fd` (facil.io's `fio_fd2uuid`); the
/// reverse is [`Uuid::fd`].
pub fn fd2uuid(fd: RawFd) -> Option<Uuid> {
    table::uuid_of(fd)
}

/// The peer's address, when `uuid` is open and it is known (facil.io's `fio_peer_addr`).
pub fn peer_addr(uuid: Uuid) -> Option<SockAddr> {
    table::record(uuid).and_then(|record| record.peer)
}

/// The connection's local address, when `uuid` is open and it is known.
pub fn local_addr(uuid: Uuid) -> Option<SockAddr> {
    table::record(uuid).and_then(|record| record.local)
}

/// Sets `uuid`'s idle timeout: when nothing was received or sent for that long,
/// [`on_timeout`](crate::Protocol::on_timeout) runs. `None` (the default) means no timeout
/// (facil.io's 0).
///
/// Idle connections are checked once a second, so a timeout is whole seconds, and at most
/// [`TIMEOUT_MAX`] (facil.io's `uint8_t`).
///
/// # Errors
/// - [`Error::TimeoutOutOfRange`] when `timeout` is under a second, above [`TIMEOUT_MAX`], or
///   not whole seconds; nothing changes then;
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use fio_reactor::{Error, Uuid};
/// let closed = Uuid::from_parts(0, 0);
/// let half = fio_reactor::timeout_set(closed, Some(Duration::from_millis(500)));
/// assert!(matches!(half, Err(Error::TimeoutOutOfRange(_))));
/// let fine = fio_reactor::timeout_set(closed, Some(Duration::from_secs(30)));
/// assert!(matches!(fine, Err(Error::InvalidUuid(_)))); // valid timeout, but no connection
/// ```
pub fn timeout_set(uuid: Uuid, timeout: Option<Duration>) -> Result<(), Error> {
    let seconds = match timeout {
        None => 0,
        Some(timeout) => timeout_seconds(timeout)?,
    };
    // The record answers `timeout_get` from any thread; the owner's entry is what its
    // once-a-second sweep reads, without the process-wide table's lock.
    if !table::update(uuid, |record| record.timeout = seconds) {
        return Err(Error::InvalidUuid(uuid));
    }
    on_owner(uuid, move |local| {
        if let Some(conn) = local.conns.borrow_mut().map.get_mut(&uuid) {
            conn.timeout = seconds;
            conn.active = Instant::now();
        }
        Ok(())
    })
}

/// `uuid`'s idle timeout, as [`timeout_set`] left it (`None`: no timeout).
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection.
pub fn timeout_get(uuid: Uuid) -> Result<Option<Duration>, Error> {
    table::record(uuid)
        .map(|record| (record.timeout > 0).then(|| Duration::from_secs(record.timeout.into())))
        .ok_or(Error::InvalidUuid(uuid))
}

/// The longest idle timeout [`timeout_set`] takes: 255 seconds, facil.io's `uint8_t` limit.
pub const TIMEOUT_MAX: Duration = Duration::from_secs(u8::MAX as u64);

/// `timeout` as the whole seconds (1..=255) a connection keeps, or why it can't be.
fn timeout_seconds(timeout: Duration) -> Result<u8, Error> {
    let whole = timeout.subsec_nanos() == 0;
    match u8::try_from(timeout.as_secs()) {
        Ok(seconds @ 1..) if whole => Ok(seconds),
        _ => Err(Error::TimeoutOutOfRange(timeout)),
    }
}

/// Restarts `uuid`'s idle timeout (facil.io's `fio_touch`).
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection.
pub fn touch(uuid: Uuid) -> Result<(), Error> {
    on_owner(uuid, move |local| {
        if let Some(conn) = local.conns.borrow_mut().map.get_mut(&uuid) {
            conn.active = Instant::now();
        }
        Ok(())
    })
}

/// Stops `on_data` for `uuid` until [`force_event`]`(uuid, IoEvent::OnData)` or its send queue
/// drains (facil.io's `fio_suspend`). Bytes keep arriving up to the high-water mark.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection.
pub fn suspend(uuid: Uuid) -> Result<(), Error> {
    on_owner(uuid, move |local| {
        set_suspended(local, uuid, true);
        Ok(())
    })
}

/// Schedules one of `uuid`'s callbacks on its next tick, whether or not the event happened
/// (facil.io's `fio_force_event`); `OnData` also resumes a suspended connection.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection.
pub fn force_event(uuid: Uuid, event: IoEvent) -> Result<(), Error> {
    on_owner(uuid, move |local| {
        if event == IoEvent::OnData {
            set_suspended(local, uuid, false);
        }
        let mut conns = local.conns.borrow_mut();
        if conns.map.contains_key(&uuid) {
            conns.forced.push_back((uuid, event));
        }
        Ok(())
    })
}
