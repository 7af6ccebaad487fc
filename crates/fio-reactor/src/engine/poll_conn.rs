//! One connection of the `polling` engine: its registration, receive and send queues, and the
//! interest it wants armed.
//!
//! Descriptors are registered in [`PollMode::Oneshot`]: every reported event disarms the
//! descriptor until the engine re-arms it with the interest the connection wants now. That is
//! one `epoll_ctl` per event, but it means an error or hang-up on a connection that wants
//! nothing (paused at its high-water mark) is reported once, not on every wait.

use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd};

use fio_buffer::{Buffer, BufferPool};
use fio_socket::{Chunk, RecvQueue, SendQueue, WaterMarks};
use fio_sys::{PollRegistration, RecvFlags, SendFlags};
use polling::{Event, PollMode};

use crate::uuid::Uuid;

/// Receive calls per readiness event before the connection waits for the next tick, so one
/// fast peer can't starve the others.
const READ_BUDGET: usize = 16;

/// Chunks gathered into one `sendmsg`.
const GATHER: usize = 64;

/// Above this many queued bytes, writers are told to wait (the send queue's soft limit).
pub(super) const SEND_SOFT_LIMIT: usize = 1 << 20;

/// The read and write interest armed (or wanted) for a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Interest {
    /// Report readability (or, for a listener, a pending connection).
    pub(super) read: bool,
    /// Report writability.
    pub(super) write: bool,
}

/// What a registered descriptor is.
pub(super) enum Role {
    /// A listening socket: readable means connections wait to be accepted.
    Listener,
    /// A stream.
    Stream(Box<Stream>),
}

/// A registered descriptor and what the engine knows about it.
pub(super) struct PollConn {
    /// The connection's uuid, checked on every call so a stale one is `NotFound`.
    pub(super) uuid: Uuid,
    /// Owns the descriptor; dropping it leaves the poller and closes it.
    pub(super) registration: PollRegistration,
    /// What is armed in the kernel now (nothing right after an event: one-shot).
    pub(super) armed: Interest,
    /// Listener or stream.
    pub(super) role: Role,
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
    /// A graceful close is under way: no more reads or writes, the queue drains.
    pub(super) closing: bool,
    /// Bytes sent so far, for the connection layer's activity check.
    pub(super) sent: u64,
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
            closing: false,
            sent: 0,
        }
    }

    /// Whether the engine should receive for this stream now.
    pub(super) fn wants_read(&self) -> bool {
        !self.connecting
            && !self.eof
            && !self.paused
            && !self.closing
            && !self.recv.is_above_high_water()
    }

    /// The interest this stream wants armed.
    pub(super) fn interest(&self) -> Interest {
        Interest {
            read: self.wants_read(),
            write: self.connecting || !self.send.is_empty(),
        }
    }

    /// Queues `chunk`; returns whether the queue was empty before (a flush is then needed).
    pub(super) fn queue(&mut self, chunk: Chunk, urgent: bool) -> bool {
        let was_empty = self.send.is_empty();
        if urgent {
            self.send.push_urgent(chunk);
        } else {
            self.send.push(chunk);
        }
        was_empty && !self.send.is_empty()
    }

    /// Receives into pooled buffers until the socket would block, the budget or the high-water
    /// mark is reached, or the peer's end of stream; returns whether anything new arrived (bytes
    /// or the end of stream). `spare` keeps one empty buffer between calls, so the receive
    /// that finds nothing costs no pool round trip and an idle stream holds no buffer.
    ///
    /// # Errors
    /// - the socket's receive error (`ConnectionReset`...), or the pool's when it is exhausted.
    pub(super) fn fill(
        &mut self,
        fd: BorrowedFd<'_>,
        pool: &BufferPool,
        spare: &mut Option<Buffer>,
    ) -> io::Result<bool> {
        let mut arrived = false;
        let mut reads = 0;
        while reads < READ_BUDGET && self.wants_read() {
            let mut buffer = match spare.take() {
                Some(buffer) => buffer,
                None => pool.take().map_err(io::Error::from)?,
            };
            buffer.clear();
            match fio_sys::recv(fd, buffer.as_mut_capacity(), RecvFlags::empty()) {
                Ok(0) => {
                    *spare = Some(buffer);
                    self.eof = true;
                    arrived = true;
                }
                Ok(count) => {
                    let short = count < buffer.capacity();
                    buffer.set_len(count);
                    self.recv.push(buffer);
                    arrived = true;
                    reads += 1;
                    // A short read drained the socket; one-shot re-arming reports more.
                    if short {
                        break;
                    }
                }
                Err(error) => {
                    *spare = Some(buffer);
                    match error.kind() {
                        io::ErrorKind::WouldBlock => break,
                        io::ErrorKind::Interrupted => reads += 1,
                        _ => return Err(error),
                    }
                }
            }
        }
        Ok(arrived)
    }

    /// Sends queued bytes, gathered, until the queue is empty or the socket would block;
    /// returns whether the queue is empty. Short sends advance the queue, so the next flush
    /// starts at the first unsent byte.
    ///
    /// # Errors
    /// - the socket's send error (`BrokenPipe`, `ConnectionReset`...). `MSG_NOSIGNAL` keeps a
    ///   closed peer from raising `SIGPIPE`.
    pub(super) fn flush(&mut self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        while !self.send.is_empty() {
            // Rebuilt per send: the slices borrow the queue, which `advance` then changes.
            let result = {
                let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(GATHER);
                self.send.io_slices(GATHER, &mut slices);
                fio_sys::sendmsg(fd, &slices, None, SendFlags::NOSIGNAL)
            };
            match result {
                Ok(count) => {
                    self.send.advance(count);
                    self.sent += count as u64;
                }
                Err(error) => match error.kind() {
                    io::ErrorKind::WouldBlock => return Ok(false),
                    io::ErrorKind::Interrupted => {}
                    _ => return Err(error),
                },
            }
        }
        Ok(true)
    }
}

impl PollConn {
    /// The interest this descriptor wants armed.
    pub(super) fn interest(&self) -> Interest {
        match &self.role {
            Role::Listener => Interest {
                read: true,
                write: false,
            },
            Role::Stream(stream) => stream.interest(),
        }
    }

    /// Re-arms the descriptor when what it wants differs from what is armed.
    ///
    /// # Errors
    /// - `epoll_ctl`'s (`ENOMEM`).
    pub(super) fn sync(&mut self) -> io::Result<()> {
        let wanted = self.interest();
        if wanted != self.armed {
            let key = key(self.uuid);
            self.registration.modify(
                Event::new(key, wanted.read, wanted.write),
                PollMode::Oneshot,
            )?;
            self.armed = wanted;
        }
        Ok(())
    }

    /// The stream state, if this is a stream.
    pub(super) fn stream(&self) -> Option<&Stream> {
        match &self.role {
            Role::Stream(stream) => Some(stream),
            Role::Listener => None,
        }
    }

    /// Ends a graceful close: shuts the write side and reads what the peer already sent, so
    /// closing with unread bytes doesn't turn the FIN into a reset that could destroy the
    /// peer's copy of what was just sent.
    pub(super) fn finish_graceful(&self, spare: &mut Option<Buffer>, pool: &BufferPool) {
        let fd = self.registration.as_fd();
        let _ = fio_sys::shutdown(fd, Shutdown::Write);
        let Some(mut buffer) = spare.take().or_else(|| pool.take().ok()) else {
            return;
        };
        for _ in 0..READ_BUDGET {
            match fio_sys::recv(fd, buffer.as_mut_capacity(), RecvFlags::empty()) {
                Ok(count) if count > 0 => {}
                _ => break,
            }
        }
        buffer.clear();
        *spare = Some(buffer);
    }
}

/// The poller key for a connection: its descriptor, unique while the engine owns it.
pub(super) fn key(uuid: Uuid) -> usize {
    usize::try_from(uuid.fd()).unwrap_or(usize::MAX)
}
