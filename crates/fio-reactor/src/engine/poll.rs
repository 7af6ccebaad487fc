//! The fallback engine on the `polling` crate: epoll on Linux, kqueue on the BSDs and macOS.
//!
//! A thread's `Poller` is shared (behind an `Arc`) only so other threads can call
//! [`polling::Poller::notify`], which is `polling`'s own cross-thread wake-up (an eventfd on
//! Linux) and is sticky: a notify that lands before the wait makes that wait return at once.
//!
//! Connections (see [`poll_conn`](super::poll_conn)) are keyed by descriptor, which is unique
//! while the engine owns it; each is registered through `fio_sys::PollRegistration`, which
//! deletes it from the poller before it closes. Received bytes go into pooled buffers (one
//! [`BufferPool`] per engine); send queues written during a tick are flushed at the start of
//! the next wait, before it blocks, so a reply goes out without waiting for writability.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::mem;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use fio_buffer::{Buffer, BufferPool, PoolConfig};
use fio_socket::Chunk;
use fio_sys::PollRegistration;
use polling::{Event, Events, PollMode, Poller};

use crate::engine::poll_conn::{Interest, PollConn, Role, Stream, key};
use crate::engine::{CloseMode, Engine, EngineEvent, EngineKind, Wake};
use crate::uuid::Uuid;

/// Connections accepted per listener event, so a connection storm can't starve the others.
const ACCEPT_BUDGET: usize = 64;

/// A reactor thread's `polling`-based engine.
pub(crate) struct PollEngine {
    /// Shared with [`PollWaker`]s; only the owning thread waits on it.
    poller: Arc<Poller>,
    /// Reused between waits so waiting never allocates.
    events: Events,
    /// Registered descriptors, by descriptor number.
    conns: HashMap<RawFd, PollConn>,
    /// Receive buffers for every connection of this thread.
    pool: BufferPool,
    /// One empty buffer kept for the next receive (see [`Stream::fill`]).
    spare: Option<Buffer>,
    /// Streams written to since the last flush.
    dirty: Vec<RawFd>,
    /// Events that happened outside a wait (an open's first `Drained`, an abortive close),
    /// reported by the next one.
    reports: Vec<EngineEvent>,
}

impl PollEngine {
    /// The engine `polling` runs on this platform; it picks the backend at compile time.
    pub(crate) const NATIVE: EngineKind = if cfg!(any(
        target_os = "linux",
        target_os = "android",
        target_os = "illumos",
        target_os = "solaris"
    )) {
        EngineKind::Epoll
    } else if cfg!(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )) {
        EngineKind::Kqueue
    } else {
        EngineKind::Poll
    };

    /// Creates the poller (an epoll fd plus its notify eventfd on Linux) and the buffer pool.
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            poller: Arc::new(Poller::new()?),
            events: Events::new(),
            conns: HashMap::new(),
            pool: BufferPool::new(PoolConfig::default()).map_err(io::Error::from)?,
            spare: None,
            dirty: Vec::new(),
            reports: Vec::new(),
        })
    }

    /// The connection `uuid` names, if it is registered here and not stale.
    fn conn(&self, uuid: Uuid) -> io::Result<&PollConn> {
        self.conns
            .get(&uuid.fd())
            .filter(|conn| conn.uuid == uuid)
            .ok_or_else(not_found)
    }

    /// The stream `uuid` names, mutably.
    fn stream_mut(&mut self, uuid: Uuid) -> io::Result<(&mut PollConn, bool)> {
        let conn = self
            .conns
            .get_mut(&uuid.fd())
            .filter(|conn| conn.uuid == uuid)
            .ok_or_else(not_found)?;
        let is_stream = matches!(conn.role, Role::Stream(_));
        Ok((conn, is_stream))
    }

    /// Registers `fd` for `uuid` with the interest its role wants.
    fn register(&mut self, uuid: Uuid, fd: OwnedFd, role: Role) -> io::Result<()> {
        if self.conns.contains_key(&uuid.fd()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the descriptor is already registered with this engine",
            ));
        }
        let mut conn = PollConn {
            uuid,
            registration: PollRegistration::new(
                &self.poller,
                fd,
                Event::none(key(uuid)),
                PollMode::Oneshot,
            )?,
            armed: Interest::default(),
            role,
        };
        conn.sync()?;
        self.conns.insert(uuid.fd(), conn);
        Ok(())
    }

    /// Forgets `fd`'s connection (closing its descriptor) and reports why.
    fn drop_conn(&mut self, fd: RawFd, error: Option<io::Error>, out: &mut Vec<EngineEvent>) {
        if let Some(conn) = self.conns.remove(&fd) {
            out.push(EngineEvent::Closed {
                conn: conn.uuid,
                error,
            });
        }
    }

    /// Flushes `fd`'s send queue; reports `Drained` when it empties, finishes a graceful
    /// close, or drops the connection on a send error.
    fn flush(&mut self, fd: RawFd, out: &mut Vec<EngineEvent>) {
        let Some(conn) = self.conns.get_mut(&fd) else {
            return;
        };
        let Role::Stream(stream) = &mut conn.role else {
            return;
        };
        if stream.connecting || stream.send.is_empty() && !stream.closing {
            return;
        }
        let result = stream.flush(conn.registration.as_fd());
        match result {
            Ok(true) if stream.closing => {
                conn.finish_graceful(&mut self.spare, &self.pool);
                self.drop_conn(fd, None, out);
            }
            Ok(drained) => {
                if drained {
                    out.push(EngineEvent::Drained { conn: conn.uuid });
                }
                if let Err(error) = conn.sync() {
                    self.drop_conn(fd, Some(error), out);
                }
            }
            Err(error) => self.drop_conn(fd, Some(error), out),
        }
    }

    /// Handles one readiness event for `fd`.
    fn ready(&mut self, fd: RawFd, readable: bool, writable: bool, out: &mut Vec<EngineEvent>) {
        let Some(conn) = self.conns.get_mut(&fd) else {
            return;
        };
        // One-shot: the event disarmed the descriptor.
        conn.armed = Interest::default();
        let uuid = conn.uuid;
        let socket = conn.registration.as_fd();
        let mut flush = false;
        let failed = match &mut conn.role {
            Role::Listener => {
                accept(uuid, socket, out);
                None
            }
            Role::Stream(stream) if stream.connecting => {
                stream.connecting = false;
                let result = match fio_sys::take_error(socket) {
                    Ok(None) => Ok(()),
                    Ok(Some(error)) | Err(error) => Err(error),
                };
                match result {
                    Ok(()) => {
                        out.push(EngineEvent::Connected {
                            conn: uuid,
                            result: Ok(()),
                        });
                        out.push(EngineEvent::Drained { conn: uuid });
                        // Bytes written while connecting go out now.
                        flush = !stream.send.is_empty();
                        None
                    }
                    Err(error) => {
                        let copy = copy_error(&error);
                        out.push(EngineEvent::Connected {
                            conn: uuid,
                            result: Err(error),
                        });
                        Some(copy)
                    }
                }
            }
            Role::Stream(stream) => {
                flush = writable;
                if readable && stream.wants_read() {
                    match stream.fill(socket, &self.pool, &mut self.spare) {
                        Ok(true) => {
                            out.push(EngineEvent::Readable { conn: uuid });
                            None
                        }
                        Ok(false) => None,
                        Err(error) => Some(error),
                    }
                } else {
                    None
                }
            }
        };
        if let Some(error) = failed {
            self.drop_conn(fd, Some(error), out);
            return;
        }
        if flush {
            self.flush(fd, out);
        }
        if let Some(conn) = self.conns.get_mut(&fd)
            && let Err(error) = conn.sync()
        {
            self.drop_conn(fd, Some(error), out);
        }
    }
}

/// Accepts up to [`ACCEPT_BUDGET`] connections from `listener`.
fn accept(listener: Uuid, socket: BorrowedFd<'_>, out: &mut Vec<EngineEvent>) {
    for _ in 0..ACCEPT_BUDGET {
        match fio_sys::accept(socket) {
            Ok((stream, _peer)) => out.push(EngineEvent::Accepted { listener, stream }),
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

impl fmt::Debug for PollEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollEngine")
            .field("kind", &Self::NATIVE)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Engine for PollEngine {
    fn kind(&self) -> EngineKind {
        Self::NATIVE
    }

    fn waker(&self) -> Arc<dyn Wake> {
        Arc::new(PollWaker(Arc::clone(&self.poller)))
    }

    fn wait(
        &mut self,
        timeout: Option<Duration>,
        events: &mut Vec<EngineEvent>,
    ) -> io::Result<usize> {
        events.append(&mut self.reports);
        for fd in mem::take(&mut self.dirty) {
            self.flush(fd, events);
        }
        // Something to report already: look at the poller without blocking.
        let timeout = if events.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        self.events.clear();
        match self.poller.wait(&mut self.events, timeout) {
            Ok(_) => {}
            // A signal landing on this thread ends the wait early; the loop simply goes round.
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(error) => return Err(error),
        }
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|event| (event.key, event.readable, event.writable))
            .collect();
        for &(key, readable, writable) in &ready {
            if let Ok(fd) = RawFd::try_from(key) {
                self.ready(fd, readable, writable, events);
            }
        }
        Ok(ready.len())
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

    fn read(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<usize> {
        let (entry, _) = self.stream_mut(conn)?;
        let Role::Stream(stream) = &mut entry.role else {
            return Ok(0);
        };
        let count = stream.recv.read(buf, false);
        if count > 0 && stream.recv.is_below_low_water() {
            entry.sync()?;
        }
        Ok(count)
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
        let (entry, _) = self.stream_mut(conn)?;
        let Role::Stream(stream) = &mut entry.role else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a listening socket can't be written to",
            ));
        };
        if stream.closing {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if stream.queue(chunk, urgent) && !stream.connecting {
            self.dirty.push(conn.fd());
        }
        Ok(())
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

    fn pause_receive(&mut self, conn: Uuid, paused: bool) -> io::Result<()> {
        let (entry, _) = self.stream_mut(conn)?;
        if let Role::Stream(stream) = &mut entry.role {
            stream.paused = paused;
            entry.sync()?;
        }
        Ok(())
    }

    fn close(&mut self, conn: Uuid, mode: CloseMode) -> io::Result<()> {
        let fd = conn.fd();
        let entry = self
            .conns
            .get_mut(&fd)
            .filter(|entry| entry.uuid == conn)
            .ok_or_else(not_found)?;
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
                entry.finish_graceful(&mut self.spare, &self.pool);
            } else {
                finished = false;
                entry.sync()?;
                self.dirty.push(fd);
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

/// Wakes one [`PollEngine`] through `Poller::notify`.
struct PollWaker(Arc<Poller>);

impl Wake for PollWaker {
    fn wake(&self) -> io::Result<()> {
        self.0.notify()
    }
}

#[cfg(test)]
mod tests {
    use std::thread;
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_wake_before_the_wait_is_not_lost() {
        let mut engine = PollEngine::new().unwrap();
        engine.waker().wake().unwrap();
        // Without the earlier wake this would block for a minute and fail the deadline below.
        let started = Instant::now();
        assert_eq!(
            engine
                .wait(Some(Duration::from_secs(60)), &mut Vec::new())
                .unwrap(),
            0
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn another_thread_wakes_a_blocked_wait() {
        let mut engine = PollEngine::new().unwrap();
        let waker = engine.waker();
        let other = thread::spawn(move || waker.wake().unwrap());
        assert_eq!(engine.wait(None, &mut Vec::new()).unwrap(), 0);
        other.join().unwrap();
    }

    #[test]
    fn a_zero_timeout_returns_at_once() {
        let mut engine = PollEngine::new().unwrap();
        assert_eq!(
            engine.wait(Some(Duration::ZERO), &mut Vec::new()).unwrap(),
            0
        );
    }
}
