//! Streams on the io_uring engine: a `fio_socket::Socket` per connection, its events turned
//! into [`EngineEvent`]s, and the non-blocking connect that comes before it.
//!
//! A socket's handler runs inside the ring's dispatch (or at the end of the tick) and only
//! pushes events into the engine's [`Inbox`]; `wait` hands them to the connection layer. Two
//! socket events need the engine's own judgement: a failure (`Error`, then
//! `Closed { Error }`) makes the engine abort the socket, since the contract has the engine
//! close a connection that broke, and the peer's end of stream (`Closed { Remote }`) is
//! reported as `Readable`, after which [`Engine::is_eof`](crate::engine::Engine::is_eof)
//! turns true once the queue is read. The socket's last event, `Closed { Local }`, becomes
//! `Closed { conn, error }` with the error remembered from the failure, if any.
//!
//! After `close` the connection layer hears nothing more of the stream but its `Closed`.

use std::cell::Cell;
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use fio_buffer::{Buffer, Chunk};
use fio_ring::{Op, OpId, Ring};
use fio_socket::{CloseReason, Event, SharedEventHandler, Socket, SocketConfig};

use crate::engine::uring::Inbox;
use crate::engine::{CloseMode, Endpoints, EngineEvent};
use crate::uuid::Uuid;

/// One connection of the engine.
#[derive(Debug)]
pub(super) struct Stream {
    /// Shared with the socket's event handler.
    link: Rc<Link>,
    phase: Phase,
    /// A datagram socket (its socket is in message mode): one read, one datagram.
    datagram: bool,
}

/// Where a stream is in its life.
#[derive(Debug)]
enum Phase {
    /// A non-blocking connect is in progress; a `POLLOUT` poll waits for its end.
    Connecting(Box<Connecting>),
    /// Connected: the socket sends and receives.
    Open(Socket),
    /// `Closed` was reported without a socket (a failed or cancelled connect); the engine
    /// forgets the stream when it hands that event over.
    Ended,
}

/// A connect in progress, and what the connection layer did with it meanwhile.
#[derive(Debug)]
struct Connecting {
    /// The socket; the poll names it by number, so it stays open until the poll's end.
    fd: OwnedFd,
    /// The `POLLOUT` poll.
    poll: OpId,
    /// Chunks written before the connect finished, with their `urgent` flag.
    queued: Vec<(Chunk, bool)>,
    /// `close` was asked for before the connect finished.
    close: Option<CloseMode>,
}

/// What a stream's socket handler shares with the engine.
#[derive(Debug)]
struct Link {
    conn: Uuid,
    inbox: Rc<Inbox>,
    /// The errno that broke the stream, reported with its `Closed`.
    error: Cell<Option<i32>>,
    /// `pause_receive(true)`: the socket receives nothing and `Readable` is held back until
    /// resumed (a connect in progress applies it to its socket once connected).
    paused: Cell<bool>,
    /// `close` was asked for: only `Closed` is reported from now on.
    closing: Cell<bool>,
    /// [`Engine::report_drained`](crate::engine::Engine::report_drained): whether the
    /// socket reports its drained send queue (applied to the socket once connected).
    report_drained: Cell<bool>,
    /// The inbox's hand-over count when this stream last reported `Readable`: while it is
    /// the current one, that `Readable` still waits in the inbox and another one would say
    /// nothing new.
    readable_at: Cell<u64>,
}

impl Link {
    /// Reports `Readable` unless paused, closing, or already waiting in the inbox. Inlined:
    /// every receive completion calls it, and the call cost a sixth of the work.
    #[inline(always)]
    fn report_readable(&self) {
        let now = self.inbox.hand_overs.get();
        if self.paused.get() || self.closing.get() || self.readable_at.replace(now) == now {
            return;
        }
        self.inbox.push(EngineEvent::Readable { conn: self.conn });
    }

    /// Reports `Closed`, with the error that broke the stream if one did.
    fn report_closed(&self) {
        let error = self.error.get().map(io::Error::from_raw_os_error);
        self.inbox.push(EngineEvent::Closed {
            conn: self.conn,
            error,
        });
    }
}

impl SharedEventHandler for Link {
    /// New data only needs reporting: straight from the receive completion.
    #[inline]
    fn on_readable(&self, _buffered: usize) -> bool {
        self.report_readable();
        true
    }

    /// The socket's event handler.
    fn on_event(&self, ring: &mut Ring, socket: &Socket, event: Event) {
        match event {
            // The peer's end of stream: the connection layer reads the rest, then sees EOF.
            Event::Readable { .. }
            | Event::Closed {
                reason: CloseReason::Remote,
            } => self.report_readable(),
            Event::Drained => {
                if !self.closing.get() {
                    self.inbox.push(EngineEvent::Drained { conn: self.conn });
                }
            }
            Event::Error { errno } => {
                if self.error.get().is_none() {
                    self.error.set(Some(errno));
                }
            }
            Event::Closed {
                reason: CloseReason::Error,
            } => {
                // The engine closes what broke; `Closed { Local }` follows.
                self.closing.set(true);
                if let Err(error) = socket.abort(ring) {
                    log::warn!("{}: aborting a failed stream: {error}", self.conn);
                }
            }
            Event::Closed {
                reason: CloseReason::Local,
            } => self.report_closed(),
            other => log::trace!("{}: ignoring socket event {other}", self.conn),
        }
    }
}

impl Stream {
    /// Wraps a connected stream in a socket and reports the initial `Drained`.
    ///
    /// # Errors
    /// - the socket's refusal (the ring refused the receive); the stream is closed.
    pub(super) fn open(
        ring: &mut Ring,
        conn: Uuid,
        fd: OwnedFd,
        config: Rc<SocketConfig>,
        inbox: Rc<Inbox>,
    ) -> io::Result<Self> {
        let link = Link::new(conn, inbox);
        let datagram = config.is_message_mode();
        let socket = new_socket(ring, fd, config, &link)?;
        link.inbox.push(EngineEvent::Drained { conn });
        Ok(Self {
            link,
            phase: Phase::Open(socket),
            datagram,
        })
    }

    /// Watches a stream whose non-blocking connect is in progress; the poll's completion
    /// reaches [`connected`](Self::connected) through the inbox.
    ///
    /// # Errors
    /// - the ring's refusal of the poll; the stream is closed.
    pub(super) fn connect(
        ring: &mut Ring,
        conn: Uuid,
        fd: OwnedFd,
        inbox: Rc<Inbox>,
    ) -> io::Result<Self> {
        let link = Link::new(conn, inbox);
        let writable = u32::from(fio_sys::PollFlags::OUT.bits().cast_unsigned());
        let handler_link = Rc::clone(&link);
        let poll = ring.submit(Op::poll(&fd, writable), move |_, completion| {
            handler_link
                .inbox
                .push_connect(conn, completion.raw_result());
        })?;
        Ok(Self {
            link,
            phase: Phase::Connecting(Box::new(Connecting {
                fd,
                poll,
                queued: Vec::new(),
                close: None,
            })),
            datagram: false,
        })
    }

    /// The connect poll ended with `res`: reports `Connected` and opens the socket, or
    /// reports the failure and `Closed`. A connect closed meanwhile reports only `Closed`
    /// (after sending what was written, for a graceful close).
    /// `config` is the error that kept the engine from making the socket configuration.
    pub(super) fn connected(
        &mut self,
        ring: &mut Ring,
        res: i32,
        config: io::Result<Rc<SocketConfig>>,
    ) {
        let Phase::Connecting(connecting) = mem::replace(&mut self.phase, Phase::Ended) else {
            return;
        };
        let Connecting {
            fd, queued, close, ..
        } = *connecting;
        let conn = self.link.conn;
        let inbox = &self.link.inbox;
        if close == Some(CloseMode::Abort) {
            drop(fd);
            inbox.push(EngineEvent::Closed { conn, error: None });
            return;
        }
        let opened = connect_result(&fd, res).and(config).and_then(|config| {
            // Read now: once the socket owns the descriptor, the engine can't lend it out.
            let endpoints = Endpoints::of(fd.as_fd());
            new_socket(ring, fd, config, &self.link).map(|socket| (socket, endpoints))
        });
        let (socket, endpoints) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                log::debug!("{conn}: connect failed: {error}");
                if close.is_none() {
                    inbox.push(EngineEvent::Connected {
                        conn,
                        result: Box::new(Err(copy_error(&error))),
                    });
                }
                inbox.push(EngineEvent::Closed {
                    conn,
                    error: Some(error),
                });
                return;
            }
        };
        let drained = queued.is_empty();
        for (chunk, urgent) in queued {
            self.transmit(ring, &socket, chunk, urgent);
        }
        if close.is_some() {
            if let Err(error) = socket.close(ring) {
                log::warn!("{conn}: closing after the connect: {error}");
            }
        } else {
            inbox.push(EngineEvent::Connected {
                conn,
                result: Box::new(Ok(endpoints)),
            });
            if drained {
                inbox.push(EngineEvent::Drained { conn });
            }
        }
        self.phase = Phase::Open(socket);
    }

    /// Queues one chunk on the socket, logging a refusal (the socket then fails on its own).
    fn transmit(&self, ring: &mut Ring, socket: &Socket, chunk: Chunk, urgent: bool) {
        let sent = if urgent {
            socket.transmit_urgent(ring, chunk)
        } else {
            socket.transmit_chunk(ring, chunk)
        };
        if let Err(error) = sent {
            log::debug!("{}: dropping a chunk: {error}", self.link.conn);
        }
    }

    /// See [`Engine::read`](crate::engine::Engine::read); a closing stream reads nothing.
    #[inline]
    pub(super) fn read(&self, ring: &mut Ring, buf: &mut [u8]) -> io::Result<usize> {
        let Phase::Open(socket) = &self.phase else {
            return Ok(0);
        };
        match socket.receive(ring, buf, false) {
            Ok(count) => Ok(count),
            Err(fio_socket::Error::Closed) => Ok(0),
            Err(error) => Err(error.into()),
        }
    }

    /// See [`Engine::read_buffer`](crate::engine::Engine::read_buffer); a closing stream
    /// has none.
    pub(super) fn read_buffer(&self, ring: &mut Ring) -> io::Result<Option<Buffer>> {
        if self.datagram {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a datagram socket has no received stream buffers",
            ));
        }
        let Phase::Open(socket) = &self.phase else {
            return Ok(None);
        };
        match socket.receive_buffer(ring) {
            Ok(buffer) => Ok(buffer),
            Err(fio_socket::Error::Closed) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// See [`Engine::recv_from`](crate::engine::Engine::recv_from).
    pub(super) fn recv_from(
        &self,
        ring: &mut Ring,
        buf: &mut [u8],
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        if !self.datagram {
            return Err(not_datagram());
        }
        let Phase::Open(socket) = &self.phase else {
            return Ok(None);
        };
        match socket.receive_from(ring, buf) {
            Ok(Some((count, Some(from)))) => Ok(Some((count, from))),
            // A datagram socket's receive always names the sender; one that doesn't (a Unix
            // datagram from an unbound peer) can't be answered, so it is dropped.
            Ok(Some((_, None))) | Ok(None) | Err(fio_socket::Error::Closed) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// See [`Engine::send_to`](crate::engine::Engine::send_to).
    pub(super) fn send_to(&self, ring: &mut Ring, chunk: Chunk, to: SocketAddr) -> io::Result<()> {
        if !self.datagram {
            return Err(not_datagram());
        }
        if self.link.closing.get() {
            return Err(broken_pipe());
        }
        let Phase::Open(socket) = &self.phase else {
            return Err(broken_pipe());
        };
        socket
            .transmit_message(ring, vec![chunk], Some(to))
            .map_err(io::Error::from)
    }

    /// Bytes received and not yet read.
    pub(super) fn buffered(&self) -> usize {
        match &self.phase {
            Phase::Open(socket) => socket.buffered(),
            _ => 0,
        }
    }

    /// Whether the peer ended its stream and everything before that was read.
    pub(super) fn is_eof(&self) -> bool {
        match &self.phase {
            Phase::Open(socket) => socket.is_eof() && socket.buffered() == 0,
            _ => false,
        }
    }

    /// See [`Engine::write`](crate::engine::Engine::write).
    pub(super) fn write(&mut self, ring: &mut Ring, chunk: Chunk, urgent: bool) -> io::Result<()> {
        if self.link.closing.get() {
            return Err(broken_pipe());
        }
        match &mut self.phase {
            Phase::Connecting(connecting) => {
                connecting.queued.push((chunk, urgent));
                Ok(())
            }
            Phase::Open(socket) => {
                // Datagrams have no stream to jump ahead in: an urgent one simply goes next.
                let sent = if urgent && !self.datagram {
                    socket.transmit_urgent(ring, chunk)
                } else {
                    socket.transmit_chunk(ring, chunk)
                };
                sent.map_err(io::Error::from)
            }
            Phase::Ended => Err(broken_pipe()),
        }
    }

    /// See [`Engine::send_now`](crate::engine::Engine::send_now): an open stream's socket
    /// starts its send and the ring submits it (a failed entry leaves it to the tick's).
    pub(super) fn send_now(&mut self, ring: &mut Ring) {
        if let Phase::Open(socket) = &self.phase
            && !self.link.closing.get()
            && let Err(error) = socket.send_now(ring)
        {
            log::debug!("sending now: {error}");
        }
    }

    /// See [`Engine::write_copy`](crate::engine::Engine::write_copy): into the socket's
    /// pooled send buffers (a datagram socket sends the copy as one datagram).
    #[inline]
    pub(super) fn write_copy(&mut self, ring: &mut Ring, data: &[u8]) -> io::Result<()> {
        if self.link.closing.get() {
            return Err(broken_pipe());
        }
        match &mut self.phase {
            Phase::Connecting(connecting) => {
                connecting.queue_copy(data);
                Ok(())
            }
            Phase::Open(socket) => socket.transmit(ring, data).map_err(io::Error::from),
            Phase::Ended => Err(broken_pipe()),
        }
    }

    /// Chunks queued and not fully sent.
    pub(super) fn pending(&self) -> usize {
        match &self.phase {
            Phase::Connecting(connecting) => connecting.queued.len(),
            Phase::Open(socket) => socket.queued_chunks(),
            Phase::Ended => 0,
        }
    }

    /// Bytes queued and not yet sent (those written while connecting count once open).
    pub(super) fn queued_bytes(&self) -> usize {
        match &self.phase {
            Phase::Open(socket) => socket.queued(),
            _ => 0,
        }
    }

    /// Bytes the kernel took so far.
    pub(super) fn sent(&self) -> u64 {
        match &self.phase {
            Phase::Open(socket) => socket.stats().bytes_sent,
            _ => 0,
        }
    }

    /// See [`Engine::report_drained`](crate::engine::Engine::report_drained): the socket
    /// itself stops (or resumes) reporting, so a reply nobody waits for completes without an
    /// event delivery.
    pub(super) fn report_drained(&self, wanted: bool) {
        self.link.report_drained.set(wanted);
        if let Phase::Open(socket) = &self.phase {
            socket.report_drained(wanted);
        }
    }

    /// Stops the socket's receive and holds `Readable` back (`true`), or resumes both,
    /// reporting what was left unread. A paused stream buffers nothing more: the kernel holds
    /// what the peer sends, and TCP's flow control slows the peer down.
    ///
    /// # Errors
    /// - the ring's refusal of the resumed receive.
    pub(super) fn pause_receive(&self, ring: &mut Ring, paused: bool) -> io::Result<()> {
        let was = self.link.paused.replace(paused);
        let Phase::Open(socket) = &self.phase else {
            return Ok(());
        };
        socket.pause_receive(ring, paused)?;
        if was && !paused && (socket.buffered() > 0 || socket.is_eof()) {
            self.link.report_readable();
        }
        Ok(())
    }

    /// See [`Engine::close`](crate::engine::Engine::close): `Closed` follows through the
    /// inbox.
    pub(super) fn close(&mut self, ring: &mut Ring, mode: CloseMode) {
        let conn = self.link.conn;
        self.link.closing.set(true);
        match &mut self.phase {
            Phase::Open(socket) => {
                let closed = match mode {
                    CloseMode::Graceful => socket.close(ring),
                    CloseMode::Abort => socket.abort(ring),
                };
                // The socket closes its descriptor directly when the ring refuses, and still
                // reports the end.
                if let Err(error) = closed {
                    log::warn!("{conn}: close: {error}");
                }
            }
            Phase::Connecting(connecting) => {
                let abort = mode == CloseMode::Abort || connecting.queued.is_empty();
                if abort {
                    connecting.close = Some(CloseMode::Abort);
                    if let Err(error) = ring.cancel(connecting.poll) {
                        log::debug!("{conn}: cancelling the connect: {error}");
                    }
                } else if connecting.close.is_none() {
                    connecting.close = Some(CloseMode::Graceful);
                }
            }
            Phase::Ended => {}
        }
    }

    /// The socket's counters, for tests.
    #[cfg(test)]
    pub(super) fn stats(&self) -> Option<fio_socket::SocketStats> {
        match &self.phase {
            Phase::Open(socket) => Some(socket.stats()),
            _ => None,
        }
    }
}

impl Link {
    fn new(conn: Uuid, inbox: Rc<Inbox>) -> Rc<Self> {
        Rc::new(Self {
            conn,
            inbox,
            error: Cell::new(None),
            paused: Cell::new(false),
            closing: Cell::new(false),
            report_drained: Cell::new(true),
            // Not reported yet: no hand-over count matches (it would take 2^64 of them).
            readable_at: Cell::new(u64::MAX),
        })
    }
}

/// A socket over `fd` whose events go through `link`; paused if the stream was paused while
/// it connected.
fn new_socket(
    ring: &mut Ring,
    fd: OwnedFd,
    config: Rc<SocketConfig>,
    link: &Rc<Link>,
) -> io::Result<Socket> {
    let paused = link.paused.get();
    // The link is the handler: the socket shares it rather than boxing a closure around it.
    let handler: Rc<dyn SharedEventHandler> = Rc::clone(link) as Rc<dyn SharedEventHandler>;
    let socket = Socket::with_shared_handler(ring, fd, config, handler)?;
    socket.report_drained(link.report_drained.get());
    if paused {
        socket.pause_receive(ring, true)?;
    }
    Ok(socket)
}

/// How a connect ended: the poll's result, then the socket's pending error.
fn connect_result(fd: &OwnedFd, res: i32) -> io::Result<()> {
    if res < 0 {
        return Err(io::Error::from_raw_os_error(-res));
    }
    match fio_sys::take_error(fd.as_fd()) {
        Ok(None) => Ok(()),
        Ok(Some(error)) | Err(error) => Err(error),
    }
}

/// A second `io::Error` saying the same (an OS error keeps its code).
pub(super) fn copy_error(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

/// The error of a datagram call on a stream.
fn not_datagram() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "the connection is a stream, not a datagram socket",
    )
}

impl Connecting {
    /// Queues a copy of `data` until the connect finishes. Out of line and cold: inlined, its
    /// allocation made every per-reply [`Stream::write_copy`] save registers for it.
    #[cold]
    #[inline(never)]
    fn queue_copy(&mut self, data: &[u8]) {
        self.queued.push((Chunk::Vec(data.to_vec()), false));
    }
}

/// The error of a write to a stream that failed or is closing.
#[cold]
fn broken_pipe() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the connection failed or is closing",
    )
}
