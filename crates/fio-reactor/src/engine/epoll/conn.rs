//! One connection of the epoll engine: its registration, receive and send queues, and the
//! readiness the engine remembers for it.
//!
//! Streams are registered once, edge-triggered ([`Interest::EDGE`]) for reading, writing, the
//! peer's end of stream ([`Interest::READ_CLOSED`]) and urgent data ([`Interest::PRIORITY`]),
//! and never modified: an event costs no `epoll_ctl`. Edge triggering reports a change of
//! state once, so the engine keeps the state itself. [`Stream::readable`] says the socket may
//! still hold bytes: it is set by every readable event and cleared only by a receive that
//! proves the socket empty, so an edge that arrives while receiving is paused (suspended, or
//! throttled by the water marks) is not lost: resuming receives again instead of waiting for
//! an edge that already came. A receive shorter than its buffer is taken as proof the socket is
//! empty, which saves the receive that would only say `EAGAIN`, unless an event said something
//! may hide behind it (see [`Stream::fill`]). Writing needs no flag: the queue is sent until
//! the socket would block, which arms the kernel to report the next writable edge, and a
//! non-empty queue after a flush can only mean that such an edge is awaited.
//!
//! Listeners are registered level-triggered: accepting stops after a budget, and a level
//! registration reports the connections left over on the next wait without any bookkeeping.

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};

use fio_buffer::{Chunk, RecvQueue, SendQueue, SpareBuffers, WaterMarks};
use fio_sys::{EpollRegistration, Interest, RecvFlags, SendFlags, SockAddr};

use crate::engine::SEND_SOFT_LIMIT;
use crate::uuid::Uuid;

/// Receive calls per readiness event before the connection waits for the next tick, so one
/// fast peer can't starve the others.
const READ_BUDGET: usize = 16;

/// Chunks gathered into one `sendmsg`.
const GATHER: usize = 64;

/// Received buffers a stream or datagram socket may hold unread before receiving stops (until
/// half of them are read): the water marks count bytes, and a peer sending tiny segments or
/// datagrams would otherwise pin a whole pooled buffer per byte.
const RECV_SEGMENT_LIMIT: usize = 1024;

/// What a registered descriptor is.
pub(super) enum Role {
    /// A listening socket: readable means connections wait to be accepted.
    Listener,
    /// A stream.
    Stream(Box<Stream>),
}

impl Role {
    /// The interest a descriptor of this role is registered with, for good.
    pub(super) fn interest(&self) -> Interest {
        match self {
            // Level-triggered: connections left over by the accept budget report again.
            Self::Listener => Interest::READABLE,
            Self::Stream(_) => {
                Interest::READABLE
                    | Interest::WRITABLE
                    | Interest::READ_CLOSED
                    | Interest::PRIORITY
                    | Interest::EDGE
            }
        }
    }
}

/// A registered descriptor and what the engine knows about it.
pub(super) struct PollConn {
    /// The connection's uuid, checked on every call so a stale one is `NotFound`.
    pub(super) uuid: Uuid,
    /// Owns the descriptor; dropping it leaves the epoll set and closes it.
    pub(super) registration: EpollRegistration,
    /// Listener or stream.
    pub(super) role: Role,
}

/// What one call to [`Stream::fill`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Filled {
    /// Bytes or the end of stream arrived.
    pub(super) arrived: bool,
    /// The read budget ran out with the socket perhaps still holding bytes: receive again on
    /// the next tick, since no new edge will say so.
    pub(super) more: bool,
}

/// A stream's queues and state.
pub(super) struct Stream {
    /// Received bytes not read yet.
    pub(super) recv: RecvQueue,
    /// Bytes still to send.
    pub(super) send: SendQueue,
    /// A non-blocking connect is in progress.
    pub(super) connecting: bool,
    /// The peer shut its write side (a receive returned 0).
    pub(super) eof: bool,
    /// Receiving was paused by the connection layer.
    pub(super) paused: bool,
    /// The receive queue reached its high-water mark; receiving resumes once the connection
    /// layer has read it down to the low-water mark.
    pub(super) throttled: bool,
    /// A graceful close is under way: no more reads or writes, the queue drains.
    pub(super) closing: bool,
    /// The socket may hold bytes (or an end of stream, or an error) not received yet: a
    /// readable edge came after the last receive that found the socket empty.
    pub(super) readable: bool,
    /// An event said the peer hung up, the socket failed or urgent data came: a short
    /// receive may then stop before something no new edge will announce, so only `EAGAIN` or
    /// the end of stream proves the socket empty (see [`fill`](Self::fill)).
    pub(super) drain_fully: bool,
    /// An event said the peer shut its write side (`EPOLLRDHUP`): nothing can arrive after
    /// what the socket holds, so a short receive ends the stream (see [`fill`](Self::fill)).
    pub(super) peer_shut: bool,
    /// The stream waits in the engine's list of streams to receive on at the next wait.
    pub(super) retry_queued: bool,
    /// Bytes sent so far, for the connection layer's activity check.
    pub(super) sent: u64,
    /// A flush that empties the queue reports `Drained` (see [`Engine::report_drained`]).
    ///
    /// [`Engine::report_drained`]: crate::engine::Engine::report_drained
    pub(super) report_drained: bool,
    /// The engine's wait count when a write last went straight to the socket (see
    /// [`sends_directly`](Self::sends_directly)).
    pub(super) sent_directly_in: u64,
    /// A datagram socket: each receive and each queued chunk is one datagram.
    pub(super) datagram: bool,
}

impl Stream {
    /// A fresh stream; `connecting` while its non-blocking connect is in progress.
    pub(super) fn new(connecting: bool) -> Self {
        Self {
            recv: RecvQueue::new(WaterMarks::default()),
            send: SendQueue::new(SEND_SOFT_LIMIT),
            connecting,
            eof: false,
            paused: false,
            throttled: false,
            closing: false,
            readable: false,
            drain_fully: false,
            peer_shut: false,
            retry_queued: false,
            sent: 0,
            report_drained: true,
            sent_directly_in: 0,
            datagram: false,
        }
    }

    /// A datagram socket, bound or connected: receives datagrams with their senders and
    /// sends each queued chunk as one datagram.
    pub(super) fn datagram() -> Self {
        Self {
            datagram: true,
            ..Self::new(false)
        }
    }

    /// Whether the receive queue is full: at its high-water mark or its buffer limit.
    fn is_recv_full(&self) -> bool {
        self.recv.is_above_high_water() || self.recv.segments() >= RECV_SEGMENT_LIMIT
    }

    /// Whether the engine may receive for this stream now (whether or not bytes wait).
    pub(super) fn wants_read(&self) -> bool {
        !self.connecting && !self.eof && !self.paused && !self.throttled && !self.closing
    }

    /// Whether a receive now could find something the engine hasn't seen: the socket may hold
    /// bytes and receiving is allowed.
    pub(super) fn can_receive(&self) -> bool {
        self.readable && self.wants_read()
    }

    /// Whether a copied write may go straight to the socket, during the engine's wait number
    /// `wait`: nothing is queued (so nothing can be overtaken), the stream is connected and
    /// open, and no write went straight out since the last wait. One per wait: a reply goes
    /// out with no copy and no queue, and a protocol that writes in pieces still has the rest
    /// gathered into one send at the end of the tick.
    pub(super) fn sends_directly(&self, wait: u64) -> bool {
        self.send.is_empty()
            && !self.connecting
            && !self.closing
            && !self.datagram
            && self.sent_directly_in != wait
    }

    /// Queues `chunk`; returns whether the queue was empty before (a flush is then needed).
    pub(super) fn queue(&mut self, chunk: Chunk, urgent: bool) -> bool {
        if self.datagram {
            return self.queue_datagram(chunk, None);
        }
        let was_empty = self.send.is_empty();
        if urgent {
            self.send.push_urgent(chunk);
        } else {
            self.send.push(chunk);
        }
        was_empty && !self.send.is_empty()
    }

    /// Queues a copy of `data` in pooled buffers from `spares` (one datagram on a datagram
    /// socket); returns whether the queue was empty before.
    ///
    /// # Errors
    /// - the pool's exhaustion; nothing is queued then.
    #[inline]
    pub(super) fn queue_copy(
        &mut self,
        data: &[u8],
        spares: &mut SpareBuffers,
    ) -> io::Result<bool> {
        if self.datagram {
            return Ok(self.queue_datagram(Chunk::Vec(data.to_vec()), None));
        }
        let was_empty = self.send.is_empty();
        self.send
            .push_copy_from(data, spares)
            .map_err(io::Error::from)?;
        Ok(was_empty && !self.send.is_empty())
    }

    /// Queues `chunk` as one datagram to `to` (`None`: the connected peer); returns whether
    /// the queue was empty before. Even an empty datagram is a message, and none jumps the
    /// queue.
    pub(super) fn queue_datagram(&mut self, chunk: Chunk, to: Option<SocketAddr>) -> bool {
        let was_empty = self.send.is_empty();
        self.send.push_message([chunk], to);
        was_empty
    }

    /// Notes that the connection layer read from the receive queue; returns whether that
    /// ended a throttle with bytes still waiting in the socket (receive again, then).
    pub(super) fn note_read(&mut self) -> bool {
        if self.throttled
            && self.recv.is_below_low_water()
            && self.recv.segments() <= RECV_SEGMENT_LIMIT / 2
        {
            self.throttled = false;
            return self.can_receive();
        }
        false
    }

    /// Receives into pooled buffers until the socket is drained, the budget or the high-water
    /// mark is reached, or the peer's end of stream. Buffers come from the engine's `spares`
    /// and an unfilled one goes back there, so the receive that finds nothing costs no pool
    /// round trip and an idle stream holds no buffer.
    ///
    /// A receive that fills less than its buffer took everything the socket held: a stream
    /// socket hands over all it has queued up to the buffer's size, and bytes that arrive
    /// later raise a new edge, so the receive that would only say `EAGAIN` is skipped (as
    /// tokio does on Linux). The peer's end of stream can hide behind a short receive, when it
    /// came together with the last bytes (a receive stops before it), and raises no edge of its
    /// own; but the edge that brought it says so (`EPOLLRDHUP`, which sets
    /// [`peer_shut`](Self::peer_shut)), and nothing can follow it: a short receive then ends
    /// the stream, which saves the receive that would only return 0. Bytes past TCP's urgent
    /// mark, a hang-up or an error can hide behind a short receive too (`EPOLLPRI`,
    /// `EPOLLHUP`, `EPOLLERR` set [`drain_fully`](Self::drain_fully)): then a short receive
    /// proves nothing, and receiving goes on to the end of stream or `EAGAIN`. Until the
    /// socket is known drained, [`readable`](Self::readable) stays set.
    ///
    /// A datagram socket receives one datagram per buffer, with its sender; one larger than a
    /// buffer is cut, as `recvfrom(2)` cuts it. It has no end of stream, and a short receive
    /// is just a small datagram: only `EAGAIN` proves it empty.
    ///
    /// The caller calls it only when [`can_receive`](Self::can_receive).
    ///
    /// # Errors
    /// - the socket's receive error (`ConnectionReset`...), or the pool's when it is exhausted.
    // Always inlined into the engine's one receive path: it runs once per readable event.
    #[inline(always)]
    pub(super) fn fill(
        &mut self,
        fd: BorrowedFd<'_>,
        spares: &mut SpareBuffers,
    ) -> io::Result<Filled> {
        let mut filled = Filled {
            arrived: false,
            more: false,
        };
        let mut reads = 0;
        // The caller checked `can_receive` (the first round needn't look again): each round
        // ends with a check below.
        debug_assert!(self.can_receive());
        loop {
            if reads == READ_BUDGET {
                filled.more = true;
                break;
            }
            reads += 1;
            let mut buffer = spares.take().map_err(io::Error::from)?;
            // A datagram comes with its sender (`Some`); stream bytes don't.
            let received = if self.datagram {
                fio_sys::recv_from(fd, buffer.as_mut_capacity(), RecvFlags::empty())
                    .map(|(count, from)| (count, Some(from.as_inet())))
            } else {
                fio_sys::recv(fd, buffer.as_mut_capacity(), RecvFlags::empty())
                    .map(|count| (count, None))
            };
            match received {
                Ok((0, None)) => {
                    spares.give(buffer);
                    self.eof = true;
                    self.readable = false;
                    filled.arrived = true;
                }
                Ok((count, sender)) => {
                    buffer.set_len(count);
                    match sender {
                        Some(from) => self.recv.push_datagram(buffer, from),
                        None => {
                            if count < buffer.capacity() && !self.drain_fully {
                                self.readable = false;
                                // The socket is empty and the peer's end of stream came
                                // before this receive: it is next.
                                self.eof = self.peer_shut;
                            }
                            self.recv.push(buffer);
                        }
                    }
                    filled.arrived = true;
                    if self.is_recv_full() {
                        self.throttled = true;
                    }
                }
                Err(error) => {
                    spares.give(buffer);
                    match error.kind() {
                        io::ErrorKind::WouldBlock => {
                            self.readable = false;
                            self.drain_fully = false;
                        }
                        io::ErrorKind::Interrupted => {}
                        _ => return Err(error),
                    }
                }
            }
            if !self.can_receive() {
                break;
            }
        }
        Ok(filled)
    }

    /// [`flush`](Self::flush) for a datagram socket: one `sendmsg(2)` per queued datagram, to
    /// its destination or the connected peer. A datagram the kernel refuses (too large, no
    /// route, refused by the peer) is dropped and logged, not fatal: the socket serves other
    /// peers, and datagrams may be lost anyway.
    fn flush_datagrams(
        &mut self,
        fd: BorrowedFd<'_>,
        scratch: &mut Vec<IoSlice<'static>>,
    ) -> io::Result<bool> {
        while !self.send.is_empty() {
            let to = self.send.front_destination().map(SockAddr::from);
            let result = {
                let mut slices = recycle(std::mem::take(scratch));
                let chunks = self.send.front_message_chunks();
                self.send.io_slices(chunks, &mut slices);
                let result = fio_sys::sendmsg(fd, &slices, to.as_ref(), SendFlags::NOSIGNAL);
                *scratch = recycle(slices);
                result
            };
            match result {
                Ok(count) => {
                    self.sent += count as u64;
                    self.send.finish_message();
                }
                Err(error) => match error.kind() {
                    io::ErrorKind::WouldBlock => return Ok(false),
                    io::ErrorKind::Interrupted => {}
                    _ => {
                        log::debug!("dropping a datagram the kernel refused: {error}");
                        self.send.finish_message();
                    }
                },
            }
        }
        Ok(true)
    }

    /// Sends queued bytes, gathered, until the queue is empty or the socket would block;
    /// returns whether the queue is empty. Short sends advance the queue, so the next flush
    /// starts at the first unsent byte. `scratch` lends its allocation to the gather list, so
    /// a flush doesn't allocate.
    ///
    /// # Errors
    /// - the socket's send error (`BrokenPipe`, `ConnectionReset`...). `MSG_NOSIGNAL` keeps a
    ///   closed peer from raising `SIGPIPE`.
    pub(super) fn flush(
        &mut self,
        fd: BorrowedFd<'_>,
        scratch: &mut Vec<IoSlice<'static>>,
        spares: &mut SpareBuffers,
    ) -> io::Result<bool> {
        if self.datagram {
            return self.flush_datagrams(fd, scratch);
        }
        while !self.send.is_empty() {
            // One chunk (a typical reply) goes by `send`, straight from the queue: no gather
            // list to build, and the kernel copies in no message header or iovec.
            let result = if let Some(only) = self.send.only_chunk() {
                fio_sys::send(fd, only, SendFlags::NOSIGNAL)
            } else {
                // Rebuilt per send: the slices borrow the queue, which `advance` then changes.
                let mut slices = recycle(std::mem::take(scratch));
                self.send.io_slices(GATHER, &mut slices);
                let result = fio_sys::sendmsg(fd, &slices, None, SendFlags::NOSIGNAL);
                *scratch = recycle(slices);
                result
            };
            match result {
                Ok(count) => {
                    // Sent copies' buffers stay at hand for the next receive or reply.
                    self.send.advance_recycling(count, spares);
                    self.sent += count as u64;
                }
                Err(error) => match error.kind() {
                    // The kernel now reports the next writable edge, which flushes again.
                    io::ErrorKind::WouldBlock => return Ok(false),
                    io::ErrorKind::Interrupted => {}
                    _ => return Err(error),
                },
            }
        }
        Ok(true)
    }
}

/// Empties `slices` and hands its allocation over for slices of another lifetime: the list of
/// one flush can't outlive the queue it borrows, but its memory can serve the next one.
/// Collecting a vector's own iterator, mapped to a type of the same layout, reuses its buffer.
fn recycle<'to>(mut slices: Vec<IoSlice<'_>>) -> Vec<IoSlice<'to>> {
    slices.clear();
    slices.into_iter().map(|_| IoSlice::new(&[])).collect()
}

impl PollConn {
    /// The stream state, if this is a stream.
    pub(super) fn stream(&self) -> Option<&Stream> {
        match &self.role {
            Role::Stream(stream) => Some(stream),
            Role::Listener => None,
        }
    }

    /// Ends a graceful close: shuts the write side and reads what the peer already sent, so
    /// closing with unread bytes doesn't turn the FIN into a reset that could destroy the
    /// peer's copy of what was just sent. Once the peer's FIN was read there is nothing to
    /// read and the close sends ours: both calls are skipped (the shutdown would fail with
    /// ENOTCONN anyway once the peer has reset).
    pub(super) fn finish_graceful(&self, spares: &mut SpareBuffers) {
        if self.stream().is_some_and(|stream| stream.eof) {
            return;
        }
        let fd = self.registration.as_fd();
        let _ = fio_sys::shutdown(fd, Shutdown::Write);
        let Ok(mut buffer) = spares.take() else {
            return;
        };
        for _ in 0..READ_BUDGET {
            match fio_sys::recv(fd, buffer.as_mut_capacity(), RecvFlags::empty()) {
                Ok(count) if count > 0 => {}
                _ => break,
            }
        }
        spares.give(buffer);
    }
}

/// The epoll key for a connection: its descriptor, unique while the engine owns it.
pub(super) fn key(uuid: Uuid) -> u64 {
    // Descriptors are non-negative; a negative one (never registered) maps to an unused key.
    u64::try_from(uuid.fd()).unwrap_or(u64::MAX - 1)
}
