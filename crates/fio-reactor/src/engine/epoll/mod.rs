//! The fallback engine: epoll, called directly through [`fio_sys::Epoll`].
//!
//! A wait is one `epoll_wait`, or none at all when the wait already has something to report
//! (the `Drained` of replies it flushed) and the wait before it polled: the caller's next wait
//! polls instead, so a request-reply tick costs one `epoll_wait`, not two. A wait that may
//! block has no timeout of its own: its deadline is kept in a timer descriptor in the set (see
//! [`alarm`](self::alarm)), set again only when the deadline comes earlier. Other threads end it
//! through the set's [`Waker`](fio_sys::Waker) (an eventfd registered in the same set, read
//! only on the waits it ended), which is sticky: a wake that lands before the wait makes that
//! wait return at once.
//!
//! Connections (see [`conn`](self::conn)) are kept in a table indexed by
//! descriptor, which is unique while the engine owns it (and small: the kernel hands out the
//! lowest free number); each is registered through [`fio_sys::EpollRegistration`], which
//! deletes it from the set before it closes. Streams are registered edge-triggered once and
//! never re-armed (no `epoll_ctl` per event), so the engine itself remembers what the kernel
//! reports only once: a stream that may hold unreceived bytes but couldn't be received from
//! (its budget ran out, or receiving was paused or throttled and then resumed) waits in a
//! retry list, served at the start of the next wait, which then doesn't block. A short receive
//! is trusted to have emptied the socket unless the events said the peer's end of stream or
//! urgent data came (see [`Stream::fill`]), so a half-closed peer is noticed at once and an
//! idle stream costs nothing. Received bytes and copied replies go into pooled buffers (one
//! [`BufferPool`] per engine, with a few [`SpareBuffers`] in front: a buffer read empty or
//! sent is kept for the next receive or reply, so a request-reply round trip makes no atomic
//! pool operation). The first copied write of a wait to a stream with nothing queued goes straight
//! to the socket from the caller's bytes (no buffer, no queue); other writes, and what a socket
//! didn't take, wait in send queues flushed at the start of the next wait, before it blocks, so
//! a reply goes out without waiting for writability, and a flush that the socket cut short
//! resumes on the writable edge the kernel then reports. A drained queue is reported only while
//! the connection layer wants it ([`Engine::report_drained`]).

use std::fmt;
use std::io::{self, IoSlice};
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use fio_buffer::{Buffer, BufferPool, Chunk, PoolConfig, SpareBuffers};
use fio_sys::{Epoll, EpollEvent, EventBuffer, SendFlags};

use self::alarm::{ALARM_KEY, Alarm};
use self::conn::{PollConn, Role, Stream, key};
use crate::engine::{CloseMode, Endpoints, Engine, EngineEvent, EngineKind, Wake};
use crate::uuid::Uuid;

mod alarm;
mod conn;
#[cfg(test)]
mod tests;

/// Connections accepted per listener event, so a connection storm can't starve the others.
const ACCEPT_BUDGET: usize = 64;

/// Empty buffers the engine keeps out of its pool (see [`SpareBuffers`]): a request's receive
/// buffer, emptied by the read, carries its reply, and the sent reply's buffer takes the next
/// receive, with no atomic pool operation. About one per connection served in a wait covers
/// a loaded tick; the spares are the pool's memory either way.
const SPARE_BUFFERS: usize = 64;

/// Streams one wait receives on at most; the others stay on the retry list for the next
/// wait. The connection layer runs about this many `on_data` calls per tick, so a burst of
/// thousands of readable connections can't pin a pooled buffer each before any is read
/// (10,000 connections echoing at once took 125 MiB of receive buffers without it).
const RECEIVE_BUDGET: usize = 256;

/// What one epoll event said about a descriptor.
#[derive(Debug, Clone, Copy)]
struct Readiness {
    /// The descriptor's epoll key.
    key: u64,
    /// Readable, urgent data, the peer's end of stream, hung up or failed.
    readable: bool,
    /// Writable, hung up or failed.
    writable: bool,
    /// Something a short receive could stop before may wait: a hang-up, an error, or urgent
    /// data.
    drain_fully: bool,
    /// The peer shut its write side: a short receive takes the last bytes.
    peer_shut: bool,
}

impl From<EpollEvent> for Readiness {
    fn from(event: EpollEvent) -> Self {
        let drain_fully = event.hangup() || event.error() || event.priority();
        let peer_shut = event.read_closed();
        Self {
            key: event.key(),
            readable: event.readable() || drain_fully || peer_shut,
            writable: event.writable() || event.hangup() || event.error(),
            drain_fully,
            peer_shut,
        }
    }
}

/// A reactor thread's epoll engine.
pub(crate) struct EpollEngine {
    /// The epoll set; only the owning thread waits on it, other threads hold its waker.
    epoll: Epoll,
    /// Reused between waits so waiting never allocates.
    events: EventBuffer,
    /// Ends blocking waits at their deadline (see [`alarm`](self::alarm)).
    alarm: Alarm,
    /// Registered descriptors, indexed by descriptor number.
    conns: Vec<Option<PollConn>>,
    /// Receive and send buffers for every connection of this thread: a pool with a few
    /// spares in front (see [`SPARE_BUFFERS`]); an idle stream holds none.
    spares: SpareBuffers,
    /// The gather list's allocation, lent to every flush (see [`Stream::flush`]).
    scratch: Vec<IoSlice<'static>>,
    /// Streams written to since the last flush.
    dirty: Vec<Uuid>,
    /// Streams to receive on at the next wait: they may hold bytes no new edge will announce.
    retry: Vec<Uuid>,
    /// Receives this wait may still start (see [`RECEIVE_BUDGET`]).
    receives_left: usize,
    /// The last [`wait`](Engine::wait) called `epoll_wait`; the next one that has something to
    /// report before polling may then skip it (see `wait`).
    polled_last_wait: bool,
    /// Events that happened outside a wait (an open's first `Drained`, an abortive close),
    /// reported by the next one.
    reports: Vec<EngineEvent>,
    /// Waits begun so far, from 1: a stream sends one write straight out per wait (see
    /// [`Stream::sends_directly`]).
    waits: u64,
}

impl EpollEngine {
    /// The engine this backend is: fio is Linux only, so always epoll.
    pub(crate) const NATIVE: EngineKind = EngineKind::Epoll;

    /// Creates the epoll set (with its wake-up eventfd) and the buffer pool.
    pub(crate) fn new() -> io::Result<Self> {
        let epoll = Epoll::new()?;
        let alarm = Alarm::new(&epoll)?;
        Ok(Self {
            epoll,
            events: EventBuffer::default(),
            alarm,
            conns: Vec::new(),
            spares: SpareBuffers::new(
                BufferPool::new(PoolConfig::default()).map_err(io::Error::from)?,
                SPARE_BUFFERS,
            ),
            scratch: Vec::new(),
            dirty: Vec::new(),
            retry: Vec::new(),
            receives_left: RECEIVE_BUDGET,
            polled_last_wait: false,
            reports: Vec::new(),
            waits: 1,
        })
    }

    /// The connection `uuid` names, if it is registered here and not stale.
    #[inline]
    fn conn(&self, uuid: Uuid) -> io::Result<&PollConn> {
        usize::try_from(uuid.fd())
            .ok()
            .and_then(|index| self.conns.get(index))
            .and_then(Option::as_ref)
            .filter(|conn| conn.uuid == uuid)
            .ok_or_else(not_found)
    }

    /// Queues on `conn`'s stream with `queue` (given the buffers), which says whether the
    /// queue was empty before; a queue that wasn't is flushed already (at the end of this
    /// tick, or when the socket's writable edge comes), so only the first write marks it.
    ///
    /// # Errors
    /// - `InvalidInput` for a listener, `BrokenPipe` once closing, `NotFound` for a stale
    ///   uuid, and what `queue` reports.
    #[inline]
    fn queue_on(
        &mut self,
        conn: Uuid,
        queue: impl FnOnce(&mut Stream, &mut SpareBuffers) -> io::Result<bool>,
    ) -> io::Result<()> {
        let Some(stream) = stream_mut(&mut self.conns, conn)? else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a listening socket can't be written to",
            ));
        };
        if stream.closing {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if queue(stream, &mut self.spares)? && !stream.connecting {
            self.dirty.push(conn);
        }
        Ok(())
    }

    /// Registers `fd` for `uuid`, for good, with the interest its role wants.
    fn register(&mut self, uuid: Uuid, fd: OwnedFd, role: Role) -> io::Result<()> {
        let index = usize::try_from(uuid.fd()).map_err(|_| not_found())?;
        if self.conns.get(index).is_some_and(Option::is_some) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the descriptor is already registered with this engine",
            ));
        }
        let conn = PollConn {
            uuid,
            registration: self.epoll.register(fd, role.interest(), key(uuid))?,
            role,
        };
        if self.conns.len() <= index {
            self.conns.resize_with(index + 1, || None);
        }
        self.conns[index] = Some(conn);
        Ok(())
    }

    /// Forgets `fd`'s connection (closing its descriptor) and reports why.
    fn drop_conn(&mut self, fd: RawFd, error: Option<io::Error>, out: &mut Vec<EngineEvent>) {
        let removed = usize::try_from(fd)
            .ok()
            .and_then(|index| self.conns.get_mut(index))
            .and_then(Option::take);
        if let Some(conn) = removed {
            out.push(EngineEvent::Closed {
                conn: conn.uuid,
                error,
            });
        }
    }

    /// Flushes `fd`'s send queue; reports `Drained` when it empties, finishes a graceful
    /// close, or drops the connection on a send error.
    fn flush(&mut self, fd: RawFd, out: &mut Vec<EngineEvent>) {
        let Some(conn) = slot(&mut self.conns, fd) else {
            return;
        };
        let uuid = conn.uuid;
        let Role::Stream(stream) = &mut conn.role else {
            return;
        };
        if stream.connecting || stream.send.is_empty() && !stream.closing {
            return;
        }
        let result = stream.flush(
            conn.registration.as_fd(),
            &mut self.scratch,
            &mut self.spares,
        );
        match result {
            Ok(true) if stream.closing => {
                conn.finish_graceful(&mut self.spares);
                self.drop_conn(fd, None, out);
            }
            Ok(true) if stream.report_drained => out.push(EngineEvent::Drained { conn: uuid }),
            Ok(_) => {}
            Err(error) => self.drop_conn(fd, Some(error), out),
        }
    }

    /// Receives on `fd`'s stream if it may hold bytes and receiving is allowed; reports
    /// `Readable` when something arrived, puts the stream back on the retry list when its
    /// budget ran out first, and drops the connection on a receive error. Returns whether
    /// anything arrived.
    fn receive(&mut self, fd: RawFd, out: &mut Vec<EngineEvent>) -> bool {
        let Some(conn) = slot(&mut self.conns, fd) else {
            return false;
        };
        let uuid = conn.uuid;
        let socket = conn.registration.as_fd();
        let Role::Stream(stream) = &mut conn.role else {
            return false;
        };
        let mut receiving = Receiving {
            spares: &mut self.spares,
            retry: &mut self.retry,
            receives_left: &mut self.receives_left,
        };
        match receiving.receive(uuid, socket, stream, out) {
            Ok(arrived) => arrived,
            Err(error) => {
                self.drop_conn(fd, Some(error), out);
                true
            }
        }
    }

    /// Receives on the streams of the retry list: the kernel won't announce their bytes
    /// again. A stream whose budget runs out again goes back on the list (a fresh one, so
    /// this ends). Returns how many received something.
    fn receive_retries(&mut self, events: &mut Vec<EngineEvent>) -> usize {
        let mut handled = 0;
        let mut retry = mem::take(&mut self.retry);
        for uuid in retry.drain(..) {
            let Some(Role::Stream(stream)) =
                named(&mut self.conns, uuid).map(|conn| &mut conn.role)
            else {
                continue;
            };
            stream.retry_queued = false;
            if self.receive(uuid.fd(), events) {
                handled += 1;
            }
        }
        if self.retry.is_empty() {
            self.retry = retry;
        }
        handled
    }

    /// Handles one epoll event.
    fn ready(&mut self, event: Readiness, out: &mut Vec<EngineEvent>) {
        let Ok(fd) = RawFd::try_from(event.key) else {
            return;
        };
        let Some(conn) = slot(&mut self.conns, fd) else {
            return;
        };
        let uuid = conn.uuid;
        let socket = conn.registration.as_fd();
        let stream = match &mut conn.role {
            Role::Listener => {
                accept(uuid, socket, out);
                return;
            }
            Role::Stream(stream) => stream,
        };
        // Edge-triggered: remember what the edge said until a receive proves it spent.
        stream.readable |= event.readable;
        stream.drain_fully |= event.drain_fully;
        stream.peer_shut |= event.peer_shut;
        if stream.connecting {
            // The connect ends with a writable edge, or a failure (reported writable too).
            if !event.writable {
                return;
            }
            stream.connecting = false;
            let result = match fio_sys::take_error(socket) {
                Ok(None) => Ok(()),
                Ok(Some(error)) | Err(error) => Err(error),
            };
            if let Err(error) = result {
                let copy = copy_error(&error);
                out.push(EngineEvent::Connected {
                    conn: uuid,
                    result: Box::new(Err(error)),
                });
                self.drop_conn(fd, Some(copy), out);
                return;
            }
            out.push(EngineEvent::Connected {
                conn: uuid,
                result: Box::new(Ok(Endpoints::of(socket))),
            });
            out.push(EngineEvent::Drained { conn: uuid });
        }
        // Bytes written while connecting, or cut short by a full socket, go out now. Decided
        // here, while the stream is at hand: most events come with a writable edge and an empty
        // queue (receiving doesn't change it), and then `flush` would only look it up again.
        let flush = event.writable && (stream.closing || !stream.send.is_empty());
        // Received with the stream at hand too, rather than through `receive`'s lookup.
        let mut receiving = Receiving {
            spares: &mut self.spares,
            retry: &mut self.retry,
            receives_left: &mut self.receives_left,
        };
        if let Err(error) = receiving.receive(uuid, socket, stream, out) {
            self.drop_conn(fd, Some(error), out);
            return;
        }
        if flush {
            self.flush(fd, out);
        }
    }
}

/// The engine's state a receive uses besides the stream, borrowed apart from the connection
/// table so a caller that already holds the stream needn't look it up again.
struct Receiving<'a> {
    /// The engine's buffers.
    spares: &'a mut SpareBuffers,
    /// The engine's retry list.
    retry: &'a mut Vec<Uuid>,
    /// Receives this wait may still start.
    receives_left: &'a mut usize,
}

impl Receiving<'_> {
    /// Receives on `stream` (named `uuid`, on `socket`) if it may hold bytes and receiving is
    /// allowed; reports `Readable` when something arrived, and puts the stream back on the
    /// retry list when the wait's or the stream's budget ran out first. Returns whether
    /// anything arrived.
    ///
    /// # Errors
    /// - the socket's receive error: the caller drops the connection.
    // Always inlined: it runs once per readable event, and as a call its prologue and
    // epilogue cost a quarter of its own instructions.
    #[inline(always)]
    fn receive(
        &mut self,
        uuid: Uuid,
        socket: BorrowedFd<'_>,
        stream: &mut Stream,
        out: &mut Vec<EngineEvent>,
    ) -> io::Result<bool> {
        if !stream.can_receive() {
            return Ok(false);
        }
        if *self.receives_left == 0 {
            // The edge stays remembered (`readable`); the next wait receives.
            queue_retry(self.retry, uuid, stream);
            return Ok(false);
        }
        *self.receives_left -= 1;
        let filled = stream.fill(socket, self.spares)?;
        if filled.more {
            queue_retry(self.retry, uuid, stream);
        }
        if filled.arrived {
            out.push(EngineEvent::Readable { conn: uuid });
        }
        Ok(filled.arrived)
    }
}

/// The connection registered under descriptor `fd`.
#[inline]
fn slot(conns: &mut [Option<PollConn>], fd: RawFd) -> Option<&mut PollConn> {
    let index = usize::try_from(fd).ok()?;
    conns.get_mut(index)?.as_mut()
}

/// The connection `uuid` names, if it is registered and not stale.
#[inline]
fn named(conns: &mut [Option<PollConn>], uuid: Uuid) -> Option<&mut PollConn> {
    slot(conns, uuid.fd()).filter(|conn| conn.uuid == uuid)
}

/// The stream `uuid` names; `Ok(None)` for a listener.
#[inline]
fn stream_mut(conns: &mut [Option<PollConn>], uuid: Uuid) -> io::Result<Option<&mut Stream>> {
    Ok(match &mut named(conns, uuid).ok_or_else(not_found)?.role {
        Role::Stream(stream) => Some(stream),
        Role::Listener => None,
    })
}

/// The error of a datagram call on a stream or listener.
fn not_datagram() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "the connection is not a datagram socket",
    )
}

/// Puts `stream` (named `uuid`) on the retry list, once.
fn queue_retry(retry: &mut Vec<Uuid>, uuid: Uuid, stream: &mut Stream) {
    if !stream.retry_queued {
        stream.retry_queued = true;
        retry.push(uuid);
    }
}

/// Accepts up to [`ACCEPT_BUDGET`] connections from `listener`; a level-triggered listener
/// reports the ones left over on the next wait.
fn accept(listener: Uuid, socket: BorrowedFd<'_>, out: &mut Vec<EngineEvent>) {
    for _ in 0..ACCEPT_BUDGET {
        match fio_sys::accept(socket) {
            Ok((stream, peer)) => out.push(EngineEvent::Accepted {
                listener,
                stream,
                peer: Some(Box::new(peer)),
            }),
            Err(error) => match error.kind() {
                io::ErrorKind::WouldBlock => return,
                // The peer gave up before we got to it, or a signal: try the next one.
                io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted => {}
                _ => {
                    // EMFILE and friends: the connection stays queued; try again next event.
                    log::warn!("accepting on {listener} failed: {error}");
                    return;
                }
            },
        }
    }
}

/// A copy of an error for a second report (io::Error isn't `Clone`).
fn copy_error(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

impl fmt::Debug for EpollEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpollEngine")
            .field("kind", &Self::NATIVE)
            .field("connections", &self.conns.iter().flatten().count())
            .finish_non_exhaustive()
    }
}

impl Engine for EpollEngine {
    fn kind(&self) -> EngineKind {
        Self::NATIVE
    }

    fn waker(&self) -> Arc<dyn Wake> {
        Arc::new(EpollWake(self.epoll.waker()))
    }

    fn wait_since(
        &mut self,
        timeout: Option<Duration>,
        since: u64,
        events: &mut Vec<EngineEvent>,
    ) -> io::Result<usize> {
        let before = events.len();
        self.waits += 1;
        // Each list is looked at before it is taken: a loaded server's wait mostly finds them
        // all empty, and taking, draining and putting back an empty vector costs more.
        if !self.reports.is_empty() {
            events.append(&mut self.reports);
        }
        self.receives_left = RECEIVE_BUDGET;
        if !self.dirty.is_empty() {
            let mut dirty = mem::take(&mut self.dirty);
            for uuid in dirty.drain(..) {
                self.flush(uuid.fd(), events);
            }
            self.dirty = dirty;
        }
        let mut handled = 0;
        if !self.retry.is_empty() {
            handled += self.receive_retries(events);
        }
        let reporting = events.len() > before;
        // Something to report already (typically the `Drained` of the replies just flushed):
        // return it without asking the kernel, when the last wait did ask. The caller handles
        // it and waits again, and that wait polls, blocking if nothing else is to do. Asking
        // here too would mostly find nothing (the peers can't have answered replies sent
        // microseconds ago) and cost one `epoll_wait` per tick; alternating keeps a caller
        // that always has something to report from starving the descriptors.
        if reporting && self.polled_last_wait {
            self.polled_last_wait = false;
            return Ok(handled);
        }
        self.polled_last_wait = true;
        // Something to report already: look at the set without blocking. A wait that may
        // block leaves its deadline to the alarm.
        let timeout = match timeout {
            _ if reporting => Some(Duration::ZERO),
            Some(timeout) if !timeout.is_zero() && self.alarm.ring_within(timeout, since)? => None,
            timeout => timeout,
        };
        // A signal landing on this thread ends the wait early with no events; the loop simply
        // goes round.
        let count = self.epoll.wait(&mut self.events, timeout)?;
        let mut io_events = count;
        // Read one at a time rather than copied out first: handling an event needs the
        // engine, and an event is two words.
        for index in 0..count {
            let Some(event) = self.events.get(index) else {
                break;
            };
            if event.key() == ALARM_KEY {
                // Like a wake-up, the alarm is not an IO event.
                self.alarm.rang();
                io_events -= 1;
                continue;
            }
            self.ready(Readiness::from(event), events);
        }
        Ok(handled + io_events)
    }

    fn listen(&mut self, listener: Uuid, socket: OwnedFd) -> io::Result<()> {
        self.register(listener, socket, Role::Listener)
    }

    fn open(&mut self, conn: Uuid, stream: OwnedFd, connecting: bool) -> io::Result<()> {
        self.register(
            conn,
            stream,
            Role::Stream(Box::new(Stream::new(connecting))),
        )?;
        if !connecting {
            // facil.io's first `on_ready`: every new connection can be written to.
            self.reports.push(EngineEvent::Drained { conn });
        }
        Ok(())
    }

    fn open_datagram(&mut self, conn: Uuid, socket: OwnedFd) -> io::Result<()> {
        let mut stream = Stream::datagram();
        // A datagram socket may already hold datagrams, which raise no new edge.
        stream.readable = true;
        stream.retry_queued = true;
        self.register(conn, socket, Role::Stream(Box::new(stream)))?;
        self.retry.push(conn);
        self.reports.push(EngineEvent::Drained { conn });
        Ok(())
    }

    fn recv_from(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        let Some(stream) = stream_mut(&mut self.conns, conn)?.filter(|stream| stream.datagram)
        else {
            return Err(not_datagram());
        };
        // A datagram without an inet sender can't be answered: skip it.
        let mut received = None;
        while let Some((count, from)) = stream.recv.read_datagram(buf) {
            if let Some(from) = from {
                received = Some((count, from));
                break;
            }
        }
        if received.is_some() && stream.note_read() {
            queue_retry(&mut self.retry, conn, stream);
        }
        Ok(received)
    }

    fn send_to(&mut self, conn: Uuid, chunk: Chunk, to: SocketAddr) -> io::Result<()> {
        let Some(stream) = stream_mut(&mut self.conns, conn)?.filter(|stream| stream.datagram)
        else {
            return Err(not_datagram());
        };
        if stream.closing {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if stream.queue_datagram(chunk, Some(to)) {
            self.dirty.push(conn);
        }
        Ok(())
    }

    fn read(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_or_eof(conn, buf)?.unwrap_or(0))
    }

    /// One lookup for the read and, when it found nothing, the end of stream.
    #[inline]
    fn read_or_eof(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let Some(stream) = stream_mut(&mut self.conns, conn)? else {
            return Ok(Some(0));
        };
        // The read that ends a protocol's read loop finds nothing: answer it at once.
        if stream.recv.is_empty() {
            let ended = !buf.is_empty() && stream.eof;
            return Ok((!ended).then_some(0));
        }
        let count = if stream.datagram {
            stream.recv.read_datagram(buf).map_or(0, |(count, _)| count)
        } else {
            // The buffers read empty carry the replies this read leads to.
            stream.recv.read_recycling(buf, false, &mut self.spares)
        };
        // Reading down to the low-water mark ends a throttle; the socket's waiting bytes
        // raise no new edge, so they are received at the next wait.
        if count > 0 && stream.note_read() {
            queue_retry(&mut self.retry, conn, stream);
        }
        Ok(Some(count))
    }

    fn read_buffer(&mut self, conn: Uuid) -> io::Result<Option<Buffer>> {
        let Some(stream) = stream_mut(&mut self.conns, conn)? else {
            return Ok(None);
        };
        if stream.datagram {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a datagram socket has no received stream buffers",
            ));
        }
        let buffer = stream.recv.take_buffer();
        // As in `read`: draining to the low-water mark ends a throttle.
        if buffer.is_some() && stream.note_read() {
            queue_retry(&mut self.retry, conn, stream);
        }
        Ok(buffer)
    }

    fn send_buffer(&mut self, conn: Uuid) -> io::Result<Buffer> {
        self.conn(conn)?;
        self.spares.take().map_err(io::Error::from)
    }

    fn recycle_buffer(&mut self, buffer: Buffer) {
        // A buffer of another pool, or one more than the spares keep, goes back to its pool.
        drop(self.spares.try_give(buffer));
    }

    fn buffered(&self, conn: Uuid) -> usize {
        self.conn(conn)
            .ok()
            .and_then(PollConn::stream)
            .map_or(0, |stream| stream.recv.len())
    }

    fn is_eof(&self, conn: Uuid) -> bool {
        self.conn(conn)
            .ok()
            .and_then(PollConn::stream)
            .is_some_and(|stream| stream.eof && stream.recv.is_empty())
    }

    fn write(&mut self, conn: Uuid, chunk: Chunk, urgent: bool) -> io::Result<()> {
        self.queue_on(conn, |stream, _| Ok(stream.queue(chunk, urgent)))
    }

    /// The first write of a wait to a stream with nothing queued goes straight to the socket,
    /// as `send(2)` from `data`: no copy into a send buffer, no queue, no flush. What the
    /// socket doesn't take queues as any write does.
    // Always inlined into the connection layer's write: it runs once per reply.
    #[inline(always)]
    fn write_copy(&mut self, conn: Uuid, data: &[u8]) -> io::Result<()> {
        let wait = self.waits;
        if let Some(entry) = named(&mut self.conns, conn)
            && let Role::Stream(stream) = &mut entry.role
            && !data.is_empty()
            && stream.sends_directly(wait)
        {
            stream.sent_directly_in = wait;
            // A failed send leaves it all queued: the flush meets the error again and handles
            // it as always (`WouldBlock` waits for the writable edge, a reset closes).
            if let Ok(count) = fio_sys::send(entry.registration.as_fd(), data, SendFlags::NOSIGNAL)
            {
                stream.sent += count as u64;
                if count == data.len() {
                    if stream.report_drained {
                        self.reports.push(EngineEvent::Drained { conn });
                    }
                    return Ok(());
                }
                let rest = &data[count..];
                return self.queue_on(conn, |stream, spares| stream.queue_copy(rest, spares));
            }
        }
        self.queue_on(conn, |stream, spares| stream.queue_copy(data, spares))
    }

    fn send_now(&mut self, conn: Uuid) {
        let sendable = named(&mut self.conns, conn).is_some_and(|entry| match &entry.role {
            Role::Stream(stream) => !stream.connecting && !stream.closing,
            Role::Listener => false,
        });
        if sendable {
            // It stays on the dirty list: the tick's flush finds its queue empty, or sends
            // what the kernel did not take now.
            let mut reports = mem::take(&mut self.reports);
            self.flush(conn.fd(), &mut reports);
            self.reports = reports;
        }
    }

    /// One lookup for the three answers.
    #[inline]
    fn after_data(&self, conn: Uuid) -> (usize, bool, usize) {
        match self.conn(conn).ok().and_then(PollConn::stream) {
            Some(stream) => (
                stream.recv.len(),
                stream.eof && stream.recv.is_empty(),
                stream.send.len(),
            ),
            None => (0, false, 0),
        }
    }

    fn pending(&self, conn: Uuid) -> usize {
        self.conn(conn)
            .ok()
            .and_then(PollConn::stream)
            .map_or(0, |stream| stream.send.chunks())
    }

    fn queued_bytes(&self, conn: Uuid) -> usize {
        self.conn(conn)
            .ok()
            .and_then(PollConn::stream)
            .map_or(0, |stream| stream.send.len())
    }

    fn sent(&self, conn: Uuid) -> u64 {
        self.conn(conn)
            .ok()
            .and_then(PollConn::stream)
            .map_or(0, |stream| stream.sent)
    }

    fn report_drained(&mut self, conn: Uuid, wanted: bool) {
        if let Ok(Some(stream)) = stream_mut(&mut self.conns, conn) {
            stream.report_drained = wanted;
        }
    }

    fn pause_receive(&mut self, conn: Uuid, paused: bool) -> io::Result<()> {
        if let Some(stream) = stream_mut(&mut self.conns, conn)? {
            stream.paused = paused;
            // An edge that came while paused was remembered, not received: receive it now.
            if stream.can_receive() {
                queue_retry(&mut self.retry, conn, stream);
            }
        }
        Ok(())
    }

    fn close(&mut self, conn: Uuid, mode: CloseMode) -> io::Result<()> {
        let fd = conn.fd();
        let entry = named(&mut self.conns, conn).ok_or_else(not_found)?;
        let mut finished = true;
        if let (Role::Stream(stream), CloseMode::Graceful) = (&mut entry.role, mode)
            && !stream.connecting
        {
            if stream.closing {
                return Ok(());
            }
            stream.closing = true;
            stream.recv.clear();
            if stream.send.is_empty() {
                entry.finish_graceful(&mut self.spares);
            } else {
                finished = false;
                self.dirty.push(conn);
            }
        }
        if finished {
            let mut reports = mem::take(&mut self.reports);
            self.drop_conn(fd, None, &mut reports);
            self.reports = reports;
        }
        Ok(())
    }
}

/// The error for a uuid this engine doesn't know (never opened here, closed, or stale).
fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such connection on this engine")
}

/// Wakes one [`EpollEngine`] through its epoll set's eventfd.
struct EpollWake(fio_sys::Waker);

impl Wake for EpollWake {
    fn wake(&self) -> io::Result<()> {
        self.0.wake()
    }
}
