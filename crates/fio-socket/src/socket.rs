//! [`Socket`]: FastSocket's public face: creation, receive, transmit, close, and the event
//! delivery that lets handlers call back into the socket.
//!
//! The state lives in an `Rc<State>` (a `RefCell<Inner>`) shared by the [`Socket`] handle and the ring
//! handlers of its operations (the ring is single-threaded). Completions only change that
//! state and queue [`Event`]s; the user's handler runs afterwards, with the borrow released,
//! so it may transmit, receive or close re-entrantly. The receive path is in `inbound.rs`,
//! the send path in `outbound.rs`, closing in `close.rs`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use fio_buffer::{Buffer, Chunk, RecvQueue, SendQueue};
use fio_ring::{OpId, Ring};

use crate::config::{Mode, SocketConfig};
use crate::error::Error;
use crate::event::{CloseReason, Event};

/// A socket's event handler: called with the ring (to submit more work), the socket (to
/// transmit, receive or close, re-entrantly) and the event.
pub type EventHandler = Box<dyn FnMut(&mut Ring, &Socket, Event)>;

/// An event handler that already lives in an `Rc` (typically state its owner shares with the
/// socket anyway): [`Socket::with_shared_handler`] keeps a clone of that `Rc` instead of
/// boxing a closure, one allocation less per socket. Called as an [`EventHandler`] is.
///
/// # Examples
/// ```
/// use std::cell::Cell;
/// use fio_ring::Ring;
/// use fio_socket::{Event, SharedEventHandler, Socket};
///
/// /// Counts the events of the sockets it is shared with.
/// struct Counter(Cell<u64>);
///
/// impl SharedEventHandler for Counter {
///     fn on_event(&self, _ring: &mut Ring, _socket: &Socket, _event: Event) {
///         self.0.set(self.0.get() + 1);
///     }
/// }
/// let counter = std::rc::Rc::new(Counter(Cell::new(0)));
/// assert_eq!(counter.0.get(), 0);
/// ```
pub trait SharedEventHandler {
    /// One event of the socket.
    fn on_event(&self, ring: &mut Ring, socket: &Socket, event: Event);

    /// A quicker `Readable { buffered }` for a handler that only takes note of it: called
    /// straight from the receive completion, without the socket handle and the event
    /// delivery [`on_event`](Self::on_event) costs. It runs while the socket's state is
    /// borrowed, so it must not reach the socket (a handle kept elsewhere included: that
    /// would panic). Returns whether it took the event; `false` (the default) has it
    /// delivered to [`on_event`](Self::on_event) as usual.
    fn on_readable(&self, buffered: usize) -> bool {
        let _ = buffered;
        false
    }
}

/// The handler a socket calls: boxed, or shared.
pub(crate) enum Handler {
    Boxed(EventHandler),
    Shared(Rc<dyn SharedEventHandler>),
}

impl Handler {
    /// The shared handler to offer a `Readable` first ([`SharedEventHandler::on_readable`]).
    #[inline]
    pub(crate) fn shared(&self) -> Option<&Rc<dyn SharedEventHandler>> {
        match self {
            Self::Boxed(_) => None,
            Self::Shared(handler) => Some(handler),
        }
    }

    fn call(&mut self, ring: &mut Ring, socket: &Socket, event: Event) {
        match self {
            Self::Boxed(handler) => handler(ring, socket, event),
            Self::Shared(handler) => handler.on_event(ring, socket, event),
        }
    }
}

/// The state shared by a socket handle and its operations' handlers.
pub(crate) type Shared = Rc<State>;

/// A socket's state cell: a `RefCell` of its [`Inner`] (reached through `Deref`), in a type of
/// this crate so that it can wait in the ring's end-of-tick flush list
/// ([`Ring::flush_at_tick_end`]) as itself, with no callback built per flush.
pub(crate) struct State(RefCell<Inner>);

impl std::ops::Deref for State {
    type Target = RefCell<Inner>;

    #[inline]
    fn deref(&self) -> &RefCell<Inner> {
        &self.0
    }
}

/// Where the inbound side stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// Nothing armed: not started, or paused above the high-water mark.
    Idle,
    /// A multishot receive is armed (the buffer queue is at or below the low-water mark).
    Multishot(OpId),
    /// A one-shot receive, read or `recvmsg` is armed.
    Oneshot(OpId),
    /// A cancel was requested; the operation's final completion is still to come.
    Cancelling(OpId),
}

/// Where the socket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Sending and receiving.
    Open,
    /// Closing: refusing new data, draining (unless aborted), then shutdown and close.
    Closing {
        /// The queue was dropped: no drain, no shutdown.
        aborted: bool,
        /// `shutdown(SHUT_WR)` was submitted.
        shutdown_sent: bool,
        /// `close` was submitted; the descriptor now belongs to the ring.
        close_sent: bool,
    },
    /// The descriptor is closed; `Closed { Local }` was queued.
    Closed,
}

/// Everything a socket knows; see the module docs for who borrows it when.
pub(crate) struct Inner {
    /// The descriptor; taken by the final close operation.
    pub(crate) fd: Option<OwnedFd>,
    /// Its number, kept for reports after the descriptor is gone.
    pub(crate) raw_fd: RawFd,
    /// Shared by the sockets built from one configuration (see [`Socket::new`]).
    pub(crate) config: Rc<SocketConfig>,
    /// Whether the kernel supports multishot receive (else one-shot receives are re-armed).
    pub(crate) multishot: bool,
    pub(crate) send: SendQueue,
    pub(crate) recv: RecvQueue,
    pub(crate) inbound: Inbound,
    /// The send operation in flight, until its result (not its zero-copy notification).
    pub(crate) sending: Option<OpId>,
    /// Bytes the send in flight offered the kernel: fewer sent is a short send.
    pub(crate) offered: usize,
    /// Zero-copy sends whose notification has not arrived yet.
    pub(crate) zc_pending: u32,
    /// The socket waits in the ring's end-of-tick flush list.
    pub(crate) flush_scheduled: bool,
    /// A lone queued chunk goes out as a pinned `send(2)` (a stream in the regular or
    /// auto-cork mode): the send path's shortcut, known without reaching the configuration.
    pub(crate) pinned_sends: bool,
    /// An end-of-tick event delivery is registered.
    pub(crate) delivery_scheduled: bool,
    pub(crate) lifecycle: Lifecycle,
    /// The errno that broke the stream; sticky.
    pub(crate) broken: Option<i32>,
    /// The peer ended its stream.
    pub(crate) eof: bool,
    /// [`Socket::pause_receive`]: nothing is received until resumed.
    pub(crate) receive_paused: bool,
    /// `Closed { Remote | Error }` was reported (at most once).
    pub(crate) hangup_reported: bool,
    /// Operations in flight that capture this state; the descriptor is closed at zero.
    pub(crate) in_flight: u32,
    pub(crate) events: VecDeque<Event>,
    /// The user's handler; `None` while it runs and after the final event.
    pub(crate) handler: Option<Handler>,
    /// The owning handle was dropped without a close: abort at the next chance.
    pub(crate) abandoned: bool,
    /// Whether a drained send queue is reported ([`Socket::report_drained`]).
    pub(crate) report_drained: bool,
    /// The last send that was not to wait for room found none (`EAGAIN`): the next one waits
    /// for room, as a send whose end someone awaits always does.
    pub(crate) send_found_no_room: bool,
    pub(crate) stats: SocketStats,
}

/// Counters of what a socket did, for tests, benches and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketStats {
    /// Send (or write) operations completed with a result.
    pub sends: u64,
    /// Of those, how many the kernel cut short (the rest went out in a later send).
    pub short_sends: u64,
    /// Zero-copy sends submitted.
    pub zero_copy_sends: u64,
    /// Zero-copy sends whose notification has not arrived yet: each still pins its buffer.
    pub zero_copy_pending: usize,
    /// Sends submitted with `MSG_MORE` because more data was queued behind them
    /// ([`Mode::AutoCork`]); the last send of each batch goes without and flushes.
    pub corked_sends: u64,
    /// Bytes the kernel took.
    pub bytes_sent: u64,
    /// Bytes received into the queue.
    pub bytes_received: u64,
    /// Times the multishot receive was cancelled because unread data passed the low-water
    /// mark (the socket then receives one buffer at a time up to the high-water mark).
    pub receive_throttles: u64,
}

impl Inner {
    /// Queues an event, folding consecutive `Readable`s into the latest count. Inlined: a
    /// receive and a send completion each queue one, and the call cost as much as the push.
    #[inline]
    pub(crate) fn push_event(&mut self, event: Event) {
        if let (Some(Event::Readable { buffered }), Event::Readable { buffered: latest }) =
            (self.events.back_mut(), event)
        {
            *buffered = latest;
            return;
        }
        self.events.push_back(event);
    }

    /// Whether [`deliver`] has anything to do: queued events, or an abandoned socket to abort.
    #[inline]
    pub(crate) fn has_delivery(&self) -> bool {
        !self.events.is_empty() || self.abandoned
    }

    /// Whether the socket still takes data to send.
    pub(crate) fn check_writable(&self) -> Result<(), Error> {
        if self.lifecycle != Lifecycle::Open {
            return Err(Error::Closed);
        }
        if let Some(errno) = self.broken {
            return Err(Error::Broken { errno });
        }
        Ok(())
    }

    /// Breaks a stream: sticky error, `Error` then `Closed { Error }` events, queue dropped.
    pub(crate) fn fail(&mut self, errno: i32) {
        if self.broken.is_some() {
            return;
        }
        log::debug!("fd {}: failed with errno {errno}", self.raw_fd);
        self.broken = Some(errno);
        self.send.clear();
        self.push_event(Event::Error { errno });
        self.report_hangup(CloseReason::Error);
    }

    /// Reports `Closed { Remote | Error }` once, while the socket is open.
    pub(crate) fn report_hangup(&mut self, reason: CloseReason) {
        if !self.hangup_reported && self.lifecycle == Lifecycle::Open {
            self.hangup_reported = true;
            self.push_event(Event::Closed { reason });
        }
    }
}

/// An asynchronous socket on a [`Ring`]: FastSocket.
///
/// Created over a ring, a buffer group, an inbound and an outbound pool, a descriptor, a
/// [`SocketConfig`] and an [`EventHandler`]; creation starts the inbound receive. Every
/// method that may submit work takes the ring: the socket never owns it.
///
/// Close it with [`close`](Self::close) or [`abort`](Self::abort). A `Socket` dropped while
/// open is aborted at its next completion, which for an idle peer may be when the ring is
/// dropped.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use std::net::{TcpListener, TcpStream};
/// use std::time::Duration;
/// use fio_buffer::{BufferPool, PoolConfig};
/// use fio_ring::{Ring, RingConfig};
/// use fio_socket::{Event, Socket, SocketConfig};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut peer = TcpStream::connect(listener.local_addr()?)?;
/// let (stream, _) = listener.accept()?;
///
/// let mut ring = Ring::new(RingConfig::new(64))?;
/// let pool = BufferPool::new(PoolConfig::new(4096))?;
/// let group = ring.register_buffer_group(pool.clone(), 16)?;
/// // An echo: whatever arrives goes back.
/// let socket = Socket::new(
///     &mut ring,
///     stream.into(),
///     SocketConfig::new(group, pool.clone(), pool),
///     |ring, socket, event| {
///         if let Event::Readable { .. } = event {
///             while let Ok(Some(buffer)) = socket.receive_buffer(ring) {
///                 socket.transmit_chunk(ring, buffer).expect("socket open");
///             }
///         }
///     },
/// )?;
/// peer.write_all(b"ping")?;
/// let mut reply = [0u8; 4];
/// peer.set_nonblocking(true)?;
/// for _ in 0..1000 {
///     ring.wait(Some(Duration::from_millis(10)))?;
///     if peer.read_exact(&mut reply).is_ok() { break; }
/// }
/// assert_eq!(&reply, b"ping");
/// socket.close(&mut ring)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Socket {
    shared: Shared,
    /// The handle returned by [`Socket::new`]; the ones lent to handlers are not owners.
    owner: bool,
}

impl Socket {
    /// Creates a socket over `fd` and starts receiving: a multishot receive on the config's
    /// buffer group (one-shot receives on kernels before 6.0), a re-armed read in
    /// [`Mode::FileIo`], a multishot `recvmsg` on the group (or a re-armed one-shot
    /// `recvmsg` into inbound-pool buffers) in message mode.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when the configuration is inconsistent (limit out of
    ///   range, message mode with file or zero-copy mode).
    /// - [`Error::Ring`] when the ring refuses the receive (unknown buffer group, unsupported
    ///   operation, full in-flight table).
    /// - [`Error::Pool`] when the inbound pool has no buffer for the first read.
    pub fn new<F>(
        ring: &mut Ring,
        fd: OwnedFd,
        config: impl Into<Rc<SocketConfig>>,
        handler: F,
    ) -> Result<Socket, Error>
    where
        F: FnMut(&mut Ring, &Socket, Event) + 'static,
    {
        Self::create(ring, fd, config.into(), Handler::Boxed(Box::new(handler)))
    }

    /// [`new`](Self::new) with a handler shared through an `Rc` (see [`SharedEventHandler`]).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_shared_handler(
        ring: &mut Ring,
        fd: OwnedFd,
        config: impl Into<Rc<SocketConfig>>,
        handler: Rc<dyn SharedEventHandler>,
    ) -> Result<Socket, Error> {
        Self::create(ring, fd, config.into(), Handler::Shared(handler))
    }

    fn create(
        ring: &mut Ring,
        fd: OwnedFd,
        config: Rc<SocketConfig>,
        handler: Handler,
    ) -> Result<Socket, Error> {
        config.validate()?;
        let raw_fd = fd.as_raw_fd();
        let multishot = ring.features().multishot_recv();
        let pinned_sends = !config.message && matches!(config.mode, Mode::Regular | Mode::AutoCork);
        let inner = Inner {
            fd: Some(fd),
            raw_fd,
            send: SendQueue::new(config.send_soft_limit),
            recv: RecvQueue::new(config.marks),
            config,
            multishot,
            inbound: Inbound::Idle,
            sending: None,
            offered: 0,
            zc_pending: 0,
            flush_scheduled: false,
            pinned_sends,
            delivery_scheduled: false,
            lifecycle: Lifecycle::Open,
            broken: None,
            eof: false,
            receive_paused: false,
            hangup_reported: false,
            in_flight: 0,
            events: VecDeque::new(),
            handler: Some(handler),
            abandoned: false,
            report_drained: true,
            send_found_no_room: false,
            stats: SocketStats::default(),
        };
        let shared = Rc::new(State(RefCell::new(inner)));
        crate::inbound::arm(&shared, &mut shared.borrow_mut(), ring)?;
        Ok(Socket {
            shared,
            owner: true,
        })
    }

    /// Copies buffered bytes into `buf` (FastSocket's `ReceiveFastSocketData`): returns the
    /// count, or 0 when nothing is buffered, or with `wait_all` while fewer than `buf.len()`
    /// bytes are. In message mode it copies one datagram, cut to `buf`. Draining below the
    /// low-water mark resumes a paused receive.
    ///
    /// # Errors
    /// - [`Error::Closed`] after [`close`](Self::close) or [`abort`](Self::abort).
    /// - [`Error::Broken`] when nothing is buffered and the socket failed.
    /// - [`Error::Ring`]/[`Error::Pool`] when resuming the receive fails.
    pub fn receive(&self, ring: &mut Ring, buf: &mut [u8], wait_all: bool) -> Result<usize, Error> {
        self.with_receive(ring, |inner, ring| {
            if inner.config.message {
                inner.recv.read_datagram(buf).map_or(0, |(count, _)| count)
            } else {
                // Emptied buffers go back to the ring's buffer group for the next receive,
                // not through the pool.
                inner
                    .recv
                    .read_with(buf, wait_all, |emptied| ring.recycle_buffer(emptied))
            }
        })
    }

    /// Takes one received buffer out without copying (FastSocket's
    /// `ReceiveFastSocketBuffer`); `None` when nothing is buffered.
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    pub fn receive_buffer(&self, ring: &mut Ring) -> Result<Option<Buffer>, Error> {
        self.with_receive(ring, |inner, _| inner.recv.take_buffer())
    }

    /// Takes one received datagram and its sender out without copying (message mode; the
    /// sender is FastSocket's `GetFastSocketMessageHeader` metadata). On a stream socket the
    /// sender is `None`.
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    pub fn receive_datagram(
        &self,
        ring: &mut Ring,
    ) -> Result<Option<(Buffer, Option<SocketAddr>)>, Error> {
        self.with_receive(ring, |inner, _| inner.recv.take_datagram())
    }

    /// Copies one received datagram into `buf` (cut to fit) and returns its length and
    /// sender; `None` when none waits.
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    pub fn receive_from(
        &self,
        ring: &mut Ring,
        buf: &mut [u8],
    ) -> Result<Option<(usize, Option<SocketAddr>)>, Error> {
        self.with_receive(ring, |inner, _| inner.recv.read_datagram(buf))
    }

    /// Runs a receive-queue read, then resumes a paused receive if the queue drained.
    fn with_receive<T: Empty>(
        &self,
        ring: &mut Ring,
        read: impl FnOnce(&mut Inner, &mut Ring) -> T,
    ) -> Result<T, Error> {
        let mut inner = self.shared.borrow_mut();
        if inner.lifecycle != Lifecycle::Open {
            return Err(Error::Closed);
        }
        let value = read(&mut inner, ring);
        if value.is_empty()
            && let Some(errno) = inner.broken
        {
            return Err(Error::Broken { errno });
        }
        // A read only shrinks the queue, so an armed multishot receive stays right: what
        // else could stop it (a close, a pause, a failure) re-arms then or at the receive's
        // next completion. Every other state may have to change (resume a throttled socket).
        let armed = if matches!(inner.inbound, Inbound::Multishot(_)) {
            Ok(())
        } else {
            crate::inbound::arm(&self.shared, &mut inner, ring)
        };
        schedule_delivery(&self.shared, &mut inner, ring);
        armed.map(|()| value)
    }

    /// Queues a copy of `data` (FastSocket's `TransmitFastSocketData` without an address):
    /// the bytes are copied into outbound-pool buffers, all or nothing, and sent at the end
    /// of the tick. In message mode `data` is one datagram to the connected peer.
    ///
    /// # Errors
    /// - [`Error::Closed`] after a close; [`Error::Broken`] after an error (the spec's
    ///   `-EPIPE`).
    /// - [`Error::Pool`] when the outbound pool cannot hold the copy (nothing is queued).
    #[inline]
    pub fn transmit(&self, ring: &mut Ring, data: &[u8]) -> Result<(), Error> {
        crate::outbound::transmit_copy(&self.shared, ring, data, None)
    }

    /// Queues a copy of `data` as one datagram to `to` (message mode; FastSocket's
    /// `TransmitFastSocketData` with an address).
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] outside message mode.
    /// - as [`transmit`](Self::transmit).
    pub fn transmit_to(&self, ring: &mut Ring, data: &[u8], to: SocketAddr) -> Result<(), Error> {
        crate::outbound::transmit_copy(&self.shared, ring, data, Some(to))
    }

    /// Queues a chunk without copying it (FastSocket's `TransmitFastSocketDescriptor` with an
    /// owning buffer): a pooled [`Buffer`], a [`SharedBuffer`](fio_buffer::SharedBuffer), a
    /// `Vec<u8>` or static bytes. In message mode the chunk is one datagram.
    ///
    /// # Errors
    /// - [`Error::Closed`]/[`Error::Broken`] as for [`transmit`](Self::transmit).
    pub fn transmit_chunk(&self, ring: &mut Ring, chunk: impl Into<Chunk>) -> Result<(), Error> {
        crate::outbound::transmit_one(&self.shared, ring, chunk.into(), false)
    }

    /// Queues one message made of `chunks`, sent to `to` when given (FastSocket's
    /// `TransmitFastSocketMessage`). On a stream socket the chunks simply join the stream and
    /// `to` must be `None`.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] for a destination outside message mode.
    /// - [`Error::Closed`]/[`Error::Broken`] as for [`transmit`](Self::transmit).
    pub fn transmit_message(
        &self,
        ring: &mut Ring,
        chunks: Vec<Chunk>,
        to: Option<SocketAddr>,
    ) -> Result<(), Error> {
        crate::outbound::transmit_chunks(&self.shared, ring, chunks, to, false)
    }

    /// Queues `chunk` ahead of everything not yet started (right after the send in flight),
    /// for control data that must not wait behind a long queue. Stream sockets only.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] in message mode.
    /// - [`Error::Closed`]/[`Error::Broken`] as for [`transmit`](Self::transmit).
    pub fn transmit_urgent(&self, ring: &mut Ring, chunk: impl Into<Chunk>) -> Result<(), Error> {
        crate::outbound::transmit_one(&self.shared, ring, chunk.into(), true)
    }

    /// Starts sending what is queued now instead of at the end of the tick (the flush a
    /// transmit scheduled then finds the send in flight), and hands it to the kernel with
    /// [`Ring::submit_staged`]: for a reply the peer waits on while this thread has more to
    /// do before its tick ends. Costs a system call; does nothing more when the socket is
    /// not open, nothing is queued or a send is already in flight.
    ///
    /// # Errors
    /// - [`Error::Ring`] when the kernel entry fails (the send then goes with the next
    ///   tick's).
    pub fn send_now(&self, ring: &mut Ring) -> Result<(), Error> {
        {
            let mut inner = self.shared.borrow_mut();
            let inner = &mut *inner;
            if inner.lifecycle != Lifecycle::Open {
                return Ok(());
            }
            crate::outbound::start(&self.shared, inner, ring);
            schedule_delivery(&self.shared, inner, ring);
        }
        ring.submit_staged().map_err(Error::from)
    }

    /// Closes gracefully (FastSocket's `ReleaseFastSocket`): refuses new data, drops what was
    /// received, cancels the receive, sends everything queued, shuts the write side down and
    /// closes the descriptor through the ring once nothing is in flight. The handler then
    /// gets `Closed { Local }`, its last event. Closing twice is harmless.
    ///
    /// # Errors
    /// - [`Error::Ring`] when the ring refuses the shutdown or close (the descriptor is then
    ///   closed directly).
    pub fn close(&self, ring: &mut Ring) -> Result<(), Error> {
        crate::close::close(&self.shared, ring, false)
    }

    /// Closes abortively: drops the send queue, cancels the send in flight and the receive,
    /// and closes the descriptor once nothing is in flight (no shutdown).
    ///
    /// # Errors
    /// As [`close`](Self::close).
    pub fn abort(&self, ring: &mut Ring) -> Result<(), Error> {
        crate::close::close(&self.shared, ring, true)
    }

    /// Bytes received and not yet read.
    #[inline]
    pub fn buffered(&self) -> usize {
        self.shared.borrow().recv.len()
    }

    /// Bytes queued and not yet sent.
    #[inline]
    pub fn queued(&self) -> usize {
        self.shared.borrow().send.len()
    }

    /// Chunks queued and not fully sent, the partly sent front one included (in message
    /// mode, a datagram made of several chunks counts each).
    pub fn queued_chunks(&self) -> usize {
        self.shared.borrow().send.chunks()
    }

    /// Stops receiving (`true`) or resumes (`false`), whatever the water marks say: the
    /// receive in flight is cancelled (what it already brought stays queued, in order), and
    /// none is armed until resumed. The kernel then holds what the peer sends, and TCP's flow
    /// control slows the peer down. Resuming arms a receive unless the queue is above its
    /// high-water mark. Reading while paused does not resume.
    ///
    /// While paused the socket also doesn't notice the peer's end of stream or a reset,
    /// since both arrive through the receive; sending still fails on a reset.
    ///
    /// # Errors
    /// - [`Error::Ring`] when the ring refuses the resumed receive; [`Error::Pool`] when a
    ///   file-mode read finds no buffer (the receive then resumes with the next read).
    ///
    /// # Examples
    /// ```
    /// use std::io::Write;
    /// use std::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    /// use fio_buffer::{BufferPool, PoolConfig};
    /// use fio_ring::{Ring, RingConfig};
    /// use fio_socket::{Socket, SocketConfig};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut peer = TcpStream::connect(listener.local_addr()?)?;
    /// let (stream, _) = listener.accept()?;
    /// let mut ring = Ring::new(RingConfig::new(64))?;
    /// let pool = BufferPool::new(PoolConfig::new(4096))?;
    /// let group = ring.register_buffer_group(pool.clone(), 16)?;
    /// let config = SocketConfig::new(group, pool.clone(), pool);
    /// let socket = Socket::new(&mut ring, stream.into(), config, |_, _, _| {})?;
    /// socket.pause_receive(&mut ring, true)?;
    /// // Once the cancelled receive is gone, nothing the peer sends is taken in.
    /// for _ in 0..100 {
    ///     if socket.in_flight() == 0 { break; }
    ///     ring.wait(Some(Duration::from_millis(10)))?;
    /// }
    /// peer.write_all(b"later")?;
    /// for _ in 0..5 {
    ///     ring.wait(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(socket.buffered(), 0);
    /// socket.pause_receive(&mut ring, false)?;
    /// for _ in 0..1000 {
    ///     if socket.buffered() == 5 { break; }
    ///     ring.wait(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(socket.buffered(), 5);
    /// socket.close(&mut ring)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pause_receive(&self, ring: &mut Ring, paused: bool) -> Result<(), Error> {
        let mut inner = self.shared.borrow_mut();
        inner.receive_paused = paused;
        crate::inbound::arm(&self.shared, &mut inner, ring)
    }

    /// Whether a send queue drained by a send completion is reported with
    /// [`Event::Drained`] (`true`, as a new socket does) or not. An owner with nothing
    /// waiting for the drain (a server whose replies nobody awaits) turns the reports off,
    /// which spares each reply's completion its event delivery, and back on before it starts
    /// waiting: only drains completed while on are reported, none is replayed.
    pub fn report_drained(&self, wanted: bool) {
        self.shared.borrow_mut().report_drained = wanted;
    }

    /// Whether [`pause_receive`](Self::pause_receive) stopped the receive.
    pub fn is_receive_paused(&self) -> bool {
        self.shared.borrow().receive_paused
    }

    /// Whether a transmit would be accepted and the send queue is under its soft limit.
    pub fn is_writable(&self) -> bool {
        let inner = self.shared.borrow();
        inner.check_writable().is_ok() && !inner.send.is_over_soft_limit()
    }

    /// Whether the socket is open (not closing or closed).
    pub fn is_open(&self) -> bool {
        self.shared.borrow().lifecycle == Lifecycle::Open
    }

    /// Whether the close finished: the descriptor is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.borrow().lifecycle == Lifecycle::Closed
    }

    /// Whether the peer ended its stream.
    #[inline]
    pub fn is_eof(&self) -> bool {
        self.shared.borrow().eof
    }

    /// The errno that broke the socket, if one did.
    pub fn error(&self) -> Option<i32> {
        self.shared.borrow().broken
    }

    /// The descriptor's number (still reported after the close).
    pub fn raw_fd(&self) -> RawFd {
        self.shared.borrow().raw_fd
    }

    /// The send mode.
    pub fn mode(&self) -> Mode {
        self.shared.borrow().config.mode
    }

    /// What the socket did so far.
    pub fn stats(&self) -> SocketStats {
        let inner = self.shared.borrow();
        SocketStats {
            zero_copy_pending: inner.zc_pending as usize,
            ..inner.stats
        }
    }

    /// Operations of this socket in flight on the ring.
    pub fn in_flight(&self) -> usize {
        self.shared.borrow().in_flight as usize
    }

    /// A non-owning handle on the same socket, for handlers.
    pub(crate) fn lent(shared: &Shared) -> Socket {
        Socket {
            shared: Rc::clone(shared),
            owner: false,
        }
    }
}

impl Drop for Socket {
    /// A lent handle (one per delivered event) drops with the inlined check alone.
    #[inline]
    fn drop(&mut self) {
        if self.owner {
            self.abandon();
        }
    }
}

impl Socket {
    /// The owner dropped an open socket: it is marked abandoned and aborted by the next
    /// delivery.
    #[inline(never)]
    fn abandon(&self) {
        if let Ok(mut inner) = self.shared.try_borrow_mut()
            && inner.lifecycle == Lifecycle::Open
        {
            inner.abandoned = true;
            inner.handler = None;
            log::debug!("fd {}: socket dropped while open; aborting", inner.raw_fd);
        }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Socket");
        match self.shared.try_borrow() {
            Ok(inner) => debug
                .field("fd", &inner.raw_fd)
                .field("mode", &inner.config.mode)
                .field("lifecycle", &inner.lifecycle)
                .field("inbound", &inner.inbound)
                .field("send", &inner.send)
                .field("recv", &inner.recv)
                .field("in_flight", &inner.in_flight)
                .field("broken", &inner.broken)
                .finish_non_exhaustive(),
            Err(_) => debug.finish_non_exhaustive(),
        }
    }
}

/// What a receive returns when nothing was there, to tell "empty" from data.
trait Empty {
    fn is_empty(&self) -> bool;
}

impl Empty for usize {
    fn is_empty(&self) -> bool {
        *self == 0
    }
}

impl<T> Empty for Option<T> {
    fn is_empty(&self) -> bool {
        self.is_none()
    }
}

/// Runs the user's handler for every queued event, with the state unborrowed so the handler
/// may call back into the socket. Afterwards an abandoned socket is aborted.
///
/// Every completion calls this once or twice, and most calls find nothing queued: that is
/// decided here, inlined, so only calls with work pay for the delivery loop.
#[inline]
pub(crate) fn deliver(shared: &Shared, ring: &mut Ring) {
    let pending = shared.borrow().has_delivery();
    if pending {
        deliver_pending(shared, ring);
    }
}

/// [`deliver`] for a caller that saw [`Inner::has_delivery`] while it held the state, sparing
/// a second borrow to look again.
#[inline]
pub(crate) fn deliver_pending(shared: &Shared, ring: &mut Ring) {
    deliver_queued(shared, ring, None);
}

/// [`deliver`] for a completion that brought `first` to report while nothing was queued:
/// `first` goes straight to the handler, never through the queue, then whatever the
/// completion queued after it. A receive completion reports its data this way.
#[inline]
pub(crate) fn deliver_first(shared: &Shared, ring: &mut Ring, first: Event) {
    deliver_queued(shared, ring, Some(first));
}

/// [`deliver`]'s loop, for a socket with events queued (or `first`, ahead of them) or
/// abandoned.
///
/// One lent handle serves the whole delivery, and the state stays borrowed except while the
/// handler runs: most deliveries carry one event, whose cost is mostly this bookkeeping.
#[inline(never)]
fn deliver_queued(shared: &Shared, ring: &mut Ring, mut first: Option<Event>) {
    let socket = Socket::lent(shared);
    let mut inner = shared.borrow_mut();
    while let Some(event) = first.take().or_else(|| inner.events.pop_front()) {
        // No handler: it is running further up the stack (the outer loop delivers the
        // rest), or the socket reported its last event or was dropped.
        let Some(mut handler) = inner.handler.take() else {
            if inner.abandoned || inner.lifecycle == Lifecycle::Closed {
                inner.events.clear();
            } else {
                inner.events.push_front(event);
            }
            break;
        };
        drop(inner);
        handler.call(ring, &socket, event);
        inner = shared.borrow_mut();
        if !event.is_final() && !inner.abandoned {
            inner.handler = Some(handler);
        } else {
            // Dropped unborrowed: the handler's captures may reach the socket.
            drop(inner);
            drop(handler);
            inner = shared.borrow_mut();
        }
    }
    let abandoned = inner.abandoned && inner.lifecycle == Lifecycle::Open;
    drop(inner);
    if abandoned && let Err(error) = crate::close::close(shared, ring, true) {
        log::warn!("aborting a dropped socket: {error}");
    }
}

/// Makes sure queued events reach the handler: at the end of this tick when called outside a
/// completion (a user call that failed a socket, a close whose descriptor closed at once).
pub(crate) fn schedule_delivery(shared: &Shared, inner: &mut Inner, ring: &mut Ring) {
    if inner.events.is_empty() || inner.delivery_scheduled {
        return;
    }
    inner.delivery_scheduled = true;
    let shared = Rc::clone(shared);
    ring.on_tick_end(move |ring| {
        shared.borrow_mut().delivery_scheduled = false;
        deliver(&shared, ring);
    });
}
