//! The IO engine interface every backend implements, and how a backend is chosen.
//!
//! Each reactor thread owns one engine instance, built on that thread (an io_uring ring is tied
//! to the thread that created it); nothing about an engine is shared between threads except
//! its [`Wake`] handle. A backend provides:
//!
//! - **wait with a timeout**: block the owning thread until an event arrives, another thread
//!   wakes it, or the timeout (the thread's earliest timer deadline) passes; `None` waits
//!   without a limit. This is the only place an idle reactor thread sleeps, so there is no
//!   sleep back-off and no spinning.
//! - **a wake handle**: a `Send + Sync` object any thread (or the signal watcher) uses to end
//!   the owner's current or next wait. A wake that arrives before the wait must not be lost.
//! - **connections**, each named by its [`Uuid`]: listening sockets whose accepted
//!   descriptors come back as [`EngineEvent::Accepted`]; streams whose received bytes wait in
//!   an engine-side receive queue (bounded by water marks: above the high mark the engine
//!   stops receiving for that connection, below the low mark it resumes; an idle connection
//!   holds no receive buffer) until [`Engine::read`] copies them out; a send queue per
//!   connection (`fio_buffer::SendQueue`, shared by both backends) flushed at the end of the
//!   tick with at most one send in flight, resuming after short sends; graceful close (drain,
//!   shut the write side, close) and abortive close. Events are reported by [`Engine::wait`];
//!   the connection layer turns them into protocol callbacks. An engine never calls user
//!   code.
//!
//! Backends: `uring/` (`fio-ring`, the default) and `epoll/` (epoll through
//! `fio_sys::Epoll`), chosen by [`select_engine`].

#[cfg(test)]
pub(crate) mod conformance;
mod epoll;
mod uring;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::os::fd::OwnedFd;

use fio_buffer::{Buffer, Chunk};

use crate::error::Error;
use crate::uuid::Uuid;

pub(crate) use epoll::EpollEngine;
pub(crate) use uring::UringEngine;

/// Bytes a connection may have queued for sending before its `on_data` pauses until the
/// queue drains: a peer that sends requests without reading the answers can't make the
/// server buffer without bound.
pub(crate) const SEND_SOFT_LIMIT: usize = 1 << 20;

/// The environment variable that picks the engine when `StartArgs::engine` is `None`.
pub(crate) const ENGINE_VAR: &str = "FIO_ENGINE";

/// Which IO engine a reactor runs on: one variant per engine fio has, so a kind can always be
/// running.
///
/// [`engine`](crate::engine()) reports the one in use as `"io_uring"` or `"epoll"`. facil.io's
/// other names have no engine here: fio is Linux only (no `"kqueue"`), and it has no `poll(2)`
/// engine, so the name `poll` parses as [`Epoll`](Self::Epoll).
///
/// # Examples
/// ```
/// use fio_reactor::EngineKind;
/// let kind: EngineKind = "epoll".parse()?;
/// assert_eq!(kind, EngineKind::Epoll);
/// assert_eq!(EngineKind::Uring.name(), "io_uring");
/// # Ok::<(), fio_reactor::Error>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// io_uring through `fio-ring`; the default. Needs Linux 6.0 (multishot receive from
    /// provided-buffer rings, multishot accept); where io_uring is refused (seccomp,
    /// `kernel.io_uring_disabled`, an older kernel) the reactor runs epoll instead.
    Uring,
    /// epoll, called directly (`fio_sys::Epoll`); the fallback, and what `poll` asks for.
    Epoll,
}

impl EngineKind {
    /// The engine's name as facil.io's `fio_engine()` spells it.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(fio_reactor::EngineKind::Epoll.name(), "epoll");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Uring => "io_uring",
            Self::Epoll => "epoll",
        }
    }

    /// Reads `FIO_ENGINE`: `Ok(None)` when it is unset or empty. `poll` runs epoll (fio has no
    /// `poll(2)` engine), which is logged once per process.
    ///
    /// # Errors
    /// - [`Error::UnknownEngine`] when it holds anything but `uring`, `io_uring`, `epoll` or
    ///   `poll` (case-insensitive).
    ///
    /// # Examples
    /// ```
    /// // Whatever the environment says, a known value parses.
    /// let _ = fio_reactor::EngineKind::from_env();
    /// ```
    pub fn from_env() -> Result<Option<Self>, Error> {
        match std::env::var(ENGINE_VAR) {
            Ok(name) if !name.trim().is_empty() => {
                let kind = name.parse()?;
                if name.trim().eq_ignore_ascii_case("poll") {
                    Fallback::NoPollEngine.warn_once(kind);
                }
                Ok(Some(kind))
            }
            _ => Ok(None),
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `uring` or `io_uring`, `epoll`, and `poll` (as [`EngineKind::Epoll`]: there is no
/// `poll(2)` engine), ignoring case and surrounding blanks.
///
/// # Examples
/// ```
/// use fio_reactor::EngineKind;
/// assert_eq!(" IO_URING ".parse::<EngineKind>()?, EngineKind::Uring);
/// assert_eq!("poll".parse::<EngineKind>()?, EngineKind::Epoll);
/// assert!("kqueue".parse::<EngineKind>().is_err());
/// # Ok::<(), fio_reactor::Error>(())
/// ```
impl FromStr for EngineKind {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "uring" | "io_uring" => Ok(Self::Uring),
            "epoll" | "poll" => Ok(Self::Epoll),
            _ => Err(Error::UnknownEngine {
                name: name.to_owned(),
            }),
        }
    }
}

/// Ends an engine's wait from any thread.
pub(crate) trait Wake: Send + Sync {
    /// Makes the owner's current wait return, or its next one if it isn't waiting yet.
    fn wake(&self) -> io::Result<()>;
}

/// A connected socket's addresses, read when its connect finished: before that the kernel
/// knows no peer, and afterwards only the engine holds the descriptor.
#[derive(Debug, Clone, Default)]
pub(crate) struct Endpoints {
    /// `getpeername(2)`.
    pub(crate) peer: Option<fio_sys::SockAddr>,
    /// `getsockname(2)`.
    pub(crate) local: Option<fio_sys::SockAddr>,
}

impl Endpoints {
    /// The addresses of `socket`; one the kernel won't give stays `None`.
    pub(crate) fn of(socket: std::os::fd::BorrowedFd<'_>) -> Self {
        Self {
            peer: fio_sys::peer_addr(socket).ok(),
            local: fio_sys::local_addr(socket).ok(),
        }
    }
}

/// What a wait reports to the connection layer. Engines only report; the connection layer
/// runs the protocol callbacks afterwards, outside the engine.
#[derive(Debug)]
pub(crate) enum EngineEvent {
    /// The listener `listener` accepted a connection. The descriptor is not registered with
    /// the engine yet: the connection layer gives it a uuid and calls [`Engine::open`].
    Accepted {
        /// The listening connection.
        listener: Uuid,
        /// The accepted, non-blocking, close-on-exec stream.
        stream: OwnedFd,
        /// The peer's address when the accept returned it (`accept4`), which spares a
        /// `getpeername`; `None`: the connection layer asks. Boxed so that every event, a
        /// `Readable` per request included, stays small.
        peer: Option<Box<fio_sys::SockAddr>>,
    },
    /// Bytes arrived for `conn` and wait in its receive queue, or the peer shut its write side
    /// (then [`Engine::is_eof`] is true once the queue is read empty).
    Readable {
        /// The connection.
        conn: Uuid,
    },
    /// `conn`'s send queue drained (facil.io's `on_ready`); also reported once when a
    /// connection is opened, as facil.io does.
    Drained {
        /// The connection.
        conn: Uuid,
    },
    /// A non-blocking connect opened with `connecting: true` finished.
    Connected {
        /// The connection.
        conn: Uuid,
        /// The connected socket's addresses, or why the connect failed. Boxed: unboxed, the
        /// addresses made every event four times larger, and two events move per request.
        result: Box<io::Result<Endpoints>>,
    },
    /// The engine closed `conn`'s descriptor (after [`Engine::close`], a reset, or an I/O
    /// error) and forgot it; nothing else is reported for it.
    Closed {
        /// The connection.
        conn: Uuid,
        /// The error that ended it, if it did not end by request.
        error: Option<io::Error>,
    },
}

// The per-request events (`Readable`, `Drained`) are pushed and drained by value: keep the
// rare ones from making them large.
const _: () = assert!(std::mem::size_of::<EngineEvent>() <= 24);

/// How [`Engine::close`] ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseMode {
    /// Stop receiving, send everything queued, shut the write side, then close.
    Graceful,
    /// Drop whatever is queued and close now (facil.io's `force_close`).
    Abort,
}

/// One reactor thread's IO backend (see the module documentation for the contract).
///
/// Not `Send`: an engine is built on the thread that waits on it and stays there. Every
/// connection method takes the connection's uuid; an unknown uuid (never opened here, or
/// already closed) is `ErrorKind::NotFound`.
pub(crate) trait Engine {
    /// The engine actually running, for `engine()`.
    fn kind(&self) -> EngineKind;

    /// A handle other threads use to end this engine's wait.
    fn waker(&self) -> Arc<dyn Wake>;

    /// Blocks until an event, a wake or the timeout, flushes send queues written during the
    /// tick, and appends what happened to `events`; returns the number of IO events handled
    /// (wake-ups don't count).
    fn wait(
        &mut self,
        timeout: Option<Duration>,
        events: &mut Vec<EngineEvent>,
    ) -> io::Result<usize> {
        self.wait_since(timeout, fio_sys::monotonic_nanos(), events)
    }

    /// [`wait`](Self::wait) with the timeout counted from `since`, a
    /// [`fio_sys::monotonic_nanos`] reading the caller took (the reactor's tick start): an
    /// engine that blocks more than once in a call stops at that deadline without first
    /// reading the clock itself.
    fn wait_since(
        &mut self,
        timeout: Option<Duration>,
        since: u64,
        events: &mut Vec<EngineEvent>,
    ) -> io::Result<usize>;

    /// Starts accepting on a bound, listening, non-blocking socket; each accepted stream is
    /// reported as [`EngineEvent::Accepted`] until `close(listener)`.
    fn listen(&mut self, listener: Uuid, socket: OwnedFd) -> io::Result<()>;

    /// Takes over a stream socket and starts receiving on it. With `connecting`, the socket's
    /// non-blocking connect is still in progress: [`EngineEvent::Connected`] reports its end.
    fn open(&mut self, conn: Uuid, stream: OwnedFd, connecting: bool) -> io::Result<()>;

    /// Takes over a datagram socket (bound, or connected to one peer) and starts receiving:
    /// each datagram waits, with its source, until read ([`EngineEvent::Readable`] reports
    /// arrivals). [`read`](Self::read) returns the next datagram's payload, cut to the buffer;
    /// [`write`](Self::write) sends each chunk as one datagram to the connected peer.
    fn open_datagram(&mut self, conn: Uuid, socket: OwnedFd) -> io::Result<()>;

    /// The next datagram of a datagram connection: its payload copied into `buf` (cut to
    /// fit) and its source; `Ok(None)` when none waits.
    ///
    /// # Errors
    /// - `Unsupported` for a stream.
    fn recv_from(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>>;

    /// Queues `chunk` as one datagram to `to`, sent at the end of the tick.
    ///
    /// # Errors
    /// - `Unsupported` for a stream; `BrokenPipe` once the connection is closing.
    fn send_to(&mut self, conn: Uuid, chunk: Chunk, to: SocketAddr) -> io::Result<()>;

    /// Copies received bytes into `buf`; `Ok(0)` when none are buffered.
    fn read(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<usize>;

    /// [`read`](Self::read), and when it copied nothing into a non-empty `buf`, whether that
    /// is the end of the stream ([`is_eof`](Self::is_eof)): then `Ok(None)`. The connection
    /// layer's `read` asks this, and a protocol's read loop ends with the read that finds
    /// nothing, so both engines answer with one lookup.
    fn read_or_eof(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// Takes the front received buffer of a stream out without copying (what a partial
    /// [`read`](Self::read) left of it, moved to its start); `Ok(None)` when none is buffered.
    /// Draining it counts as a read (a throttled receive resumes).
    ///
    /// # Errors
    /// - `Unsupported` for a datagram socket.
    fn read_buffer(&mut self, conn: Uuid) -> io::Result<Option<Buffer>>;

    /// An empty buffer from the pool `conn`'s sends are copied into, to fill and queue with
    /// [`write`](Self::write) as [`Chunk::Buffer`] without another copy.
    ///
    /// # Errors
    /// - the pool's exhaustion; `NotFound` for a uuid this engine doesn't serve.
    fn send_buffer(&mut self, conn: Uuid) -> io::Result<Buffer>;

    /// Takes back a buffer a hook is done with (one from [`read_buffer`](Self::read_buffer),
    /// decoded and emptied), to receive into again: cheaper than dropping it into its pool
    /// and taking another. A buffer the engine can't use (another pool's, or one more than
    /// it keeps) goes back to its pool.
    fn recycle_buffer(&mut self, buffer: Buffer);

    /// Bytes received and not yet read.
    fn buffered(&self, conn: Uuid) -> usize;

    /// Whether the peer shut its write side and every byte before that was read.
    fn is_eof(&self, conn: Uuid) -> bool;

    /// Queues `chunk` for sending; `urgent` puts it right after the chunk being sent. Sent at
    /// the end of the tick.
    ///
    /// # Errors
    /// - `BrokenPipe` once the connection failed or is closing.
    fn write(&mut self, conn: Uuid, chunk: Chunk, urgent: bool) -> io::Result<()>;

    /// Sends what `conn` has queued now instead of at the end of the tick, for a reply the
    /// peer waits on that took long to make (a TLS handshake flight): the peer goes on while
    /// this thread serves the others. Costs a system call of its own. What it causes (a
    /// `Drained`, a `Closed` after a send error) is reported by the next wait; nothing
    /// happens for an unknown, connecting or closing connection.
    fn send_now(&mut self, conn: Uuid);

    /// Queues a copy of `data`, like [`write`](Self::write) with a chunk holding it, but
    /// copied into the engine's pooled send buffers: the spare room of the last queued buffer
    /// first, so the small writes of one tick gather into one send, with no allocation.
    ///
    /// # Errors
    /// - as [`write`](Self::write); the pool's exhaustion (nothing is queued then).
    fn write_copy(&mut self, conn: Uuid, data: &[u8]) -> io::Result<()>;

    /// Chunks queued and not yet fully sent (facil.io's `fio_pending`).
    fn pending(&self, conn: Uuid) -> usize;

    /// Bytes of `conn` sent so far (0 for an unknown uuid). The connection layer counts a
    /// change as activity, so a long drain doesn't time out.
    fn sent(&self, conn: Uuid) -> u64;

    /// Bytes queued for `conn` and not yet sent (0 for an unknown uuid). The connection layer
    /// stops calling `on_data` past [`SEND_SOFT_LIMIT`] until the queue drains.
    fn queued_bytes(&self, conn: Uuid) -> usize;

    /// [`buffered`](Self::buffered), [`is_eof`](Self::is_eof) and
    /// [`queued_bytes`](Self::queued_bytes) at once, as the connection layer asks after every
    /// `on_data`, with one lookup.
    fn after_data(&self, conn: Uuid) -> (usize, bool, usize);

    /// Whether `conn`'s drained send queue is reported ([`EngineEvent::Drained`]); `true` for a
    /// new connection. The connection layer turns reports off while nothing waits for them (no
    /// `on_ready`, file, suspension, notification or hook holding bytes: its `drained` would
    /// do nothing) and back on before anything starts waiting, which saves an event per
    /// reply. A report is always harmless: reporting more than asked is never wrong.
    fn report_drained(&mut self, conn: Uuid, wanted: bool);

    /// Stops (`true`) or resumes receiving for `conn`, independently of the water marks.
    fn pause_receive(&mut self, conn: Uuid, paused: bool) -> io::Result<()>;

    /// Closes `conn`; [`EngineEvent::Closed`] follows once its descriptor is closed.
    fn close(&mut self, conn: Uuid, mode: CloseMode) -> io::Result<()>;
}

/// Why the engine that runs differs from the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fallback {
    /// io_uring can't run the reactor in this process; the reason, for the log.
    UringUnavailable(&'static str),
    /// `FIO_ENGINE=poll` was asked for; fio has no `poll(2)` engine, so epoll runs.
    NoPollEngine,
}

impl Fallback {
    /// Logs this fallback once per process (per kind of fallback), so a reactor started many
    /// times (tests) or with many threads doesn't repeat it.
    pub(crate) fn warn_once(self, chosen: EngineKind) {
        static URING: AtomicBool = AtomicBool::new(false);
        static POLL: AtomicBool = AtomicBool::new(false);
        let warned = match self {
            Self::UringUnavailable(_) => &URING,
            Self::NoPollEngine => &POLL,
        };
        if warned.swap(true, Ordering::Relaxed) {
            return;
        }
        match self {
            Self::UringUnavailable(reason) => {
                log::warn!("io_uring unavailable ({reason}); using {chosen}");
            }
            Self::NoPollEngine => {
                log::warn!("fio has no poll(2) engine; using {chosen}");
            }
        }
    }
}

/// Picks the engine to run for a request (`None`: io_uring first).
///
/// Returns the engine and, when it differs from what was asked for, why. Asking for io_uring
/// probes it (once per process, see [`uring::availability`]); any refusal runs the epoll
/// engine instead.
pub(crate) fn select_engine(requested: Option<EngineKind>) -> (EngineKind, Option<Fallback>) {
    match requested.unwrap_or(EngineKind::Uring) {
        EngineKind::Uring => match uring::availability() {
            Ok(()) => (EngineKind::Uring, None),
            Err(reason) => (EngineKind::Epoll, Some(Fallback::UringUnavailable(reason))),
        },
        EngineKind::Epoll => (EngineKind::Epoll, None),
    }
}

/// Builds an engine instance of `kind` (as [`select_engine`] chose it) for the calling
/// reactor thread, which is the one that will wait on it.
pub(crate) fn create(kind: EngineKind) -> io::Result<Backend> {
    Ok(match kind {
        EngineKind::Uring => Backend::Uring(Box::new(UringEngine::new()?)),
        EngineKind::Epoll => Backend::Epoll(Box::new(EpollEngine::new()?)),
    })
}

/// A reactor thread's engine: one of the backends, chosen at start.
///
/// An enum rather than a `Box<dyn Engine>`: the connection layer calls the engine several
/// times per request (read, write, what is left after `on_data`, the wait), and a match on
/// a discriminant that never changes is a direct call the compiler can inline, where a
/// virtual call is a barrier to it.
pub(crate) enum Backend {
    /// The io_uring engine.
    Uring(Box<UringEngine>),
    /// The epoll engine.
    Epoll(Box<EpollEngine>),
}

/// Forwards one [`Engine`] method to whichever backend runs.
macro_rules! forward {
    ($self:ident, $engine:ident => $call:expr) => {
        match $self {
            Backend::Uring($engine) => $call,
            Backend::Epoll($engine) => $call,
        }
    };
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        forward!(self, engine => fmt::Debug::fmt(engine, f))
    }
}

impl Engine for Backend {
    #[inline]
    fn kind(&self) -> EngineKind {
        forward!(self, engine => engine.kind())
    }

    fn waker(&self) -> Arc<dyn Wake> {
        forward!(self, engine => engine.waker())
    }

    #[inline]
    fn wait_since(
        &mut self,
        timeout: Option<Duration>,
        since: u64,
        events: &mut Vec<EngineEvent>,
    ) -> io::Result<usize> {
        forward!(self, engine => engine.wait_since(timeout, since, events))
    }

    fn listen(&mut self, listener: Uuid, socket: OwnedFd) -> io::Result<()> {
        forward!(self, engine => engine.listen(listener, socket))
    }

    fn open(&mut self, conn: Uuid, stream: OwnedFd, connecting: bool) -> io::Result<()> {
        forward!(self, engine => engine.open(conn, stream, connecting))
    }

    fn open_datagram(&mut self, conn: Uuid, socket: OwnedFd) -> io::Result<()> {
        forward!(self, engine => engine.open_datagram(conn, socket))
    }

    fn recv_from(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        forward!(self, engine => engine.recv_from(conn, buf))
    }

    fn send_to(&mut self, conn: Uuid, chunk: Chunk, to: SocketAddr) -> io::Result<()> {
        forward!(self, engine => engine.send_to(conn, chunk, to))
    }

    #[inline]
    fn read(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<usize> {
        forward!(self, engine => engine.read(conn, buf))
    }

    #[inline]
    fn read_or_eof(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<Option<usize>> {
        forward!(self, engine => engine.read_or_eof(conn, buf))
    }

    fn read_buffer(&mut self, conn: Uuid) -> io::Result<Option<Buffer>> {
        forward!(self, engine => engine.read_buffer(conn))
    }

    fn send_buffer(&mut self, conn: Uuid) -> io::Result<Buffer> {
        forward!(self, engine => engine.send_buffer(conn))
    }

    #[inline]
    fn recycle_buffer(&mut self, buffer: Buffer) {
        forward!(self, engine => engine.recycle_buffer(buffer))
    }

    #[inline]
    fn buffered(&self, conn: Uuid) -> usize {
        forward!(self, engine => engine.buffered(conn))
    }

    #[inline]
    fn is_eof(&self, conn: Uuid) -> bool {
        forward!(self, engine => engine.is_eof(conn))
    }

    #[inline]
    fn write(&mut self, conn: Uuid, chunk: Chunk, urgent: bool) -> io::Result<()> {
        forward!(self, engine => engine.write(conn, chunk, urgent))
    }

    fn send_now(&mut self, conn: Uuid) {
        forward!(self, engine => engine.send_now(conn))
    }

    #[inline]
    fn write_copy(&mut self, conn: Uuid, data: &[u8]) -> io::Result<()> {
        forward!(self, engine => engine.write_copy(conn, data))
    }

    #[inline]
    fn pending(&self, conn: Uuid) -> usize {
        forward!(self, engine => engine.pending(conn))
    }

    fn sent(&self, conn: Uuid) -> u64 {
        forward!(self, engine => engine.sent(conn))
    }

    #[inline]
    fn queued_bytes(&self, conn: Uuid) -> usize {
        forward!(self, engine => engine.queued_bytes(conn))
    }

    #[inline]
    fn after_data(&self, conn: Uuid) -> (usize, bool, usize) {
        forward!(self, engine => engine.after_data(conn))
    }

    fn report_drained(&mut self, conn: Uuid, wanted: bool) {
        forward!(self, engine => engine.report_drained(conn, wanted))
    }

    fn pause_receive(&mut self, conn: Uuid, paused: bool) -> io::Result<()> {
        forward!(self, engine => engine.pause_receive(conn, paused))
    }

    fn close(&mut self, conn: Uuid, mode: CloseMode) -> io::Result<()> {
        forward!(self, engine => engine.close(conn, mode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_both_ways() {
        for kind in [EngineKind::Uring, EngineKind::Epoll] {
            let parsed: EngineKind = kind.name().parse().unwrap();
            assert_eq!(parsed, kind);
        }
        assert_eq!("URING".parse::<EngineKind>().unwrap(), EngineKind::Uring);
        assert_eq!("Poll".parse::<EngineKind>().unwrap(), EngineKind::Epoll);
        assert!(matches!(
            "kqueue".parse::<EngineKind>(),
            Err(Error::UnknownEngine { .. })
        ));
        assert!(matches!(
            "select".parse::<EngineKind>(),
            Err(Error::UnknownEngine { name }) if name == "select"
        ));
    }

    #[test]
    fn uring_runs_or_falls_back_with_a_reason() {
        for requested in [Some(EngineKind::Uring), None] {
            let (kind, fallback) = select_engine(requested);
            match uring::availability() {
                Ok(()) => assert_eq!((kind, fallback), (EngineKind::Uring, None)),
                Err(reason) => {
                    assert_eq!(kind, EngineKind::Epoll);
                    assert_eq!(fallback, Some(Fallback::UringUnavailable(reason)));
                }
            }
        }
    }

    #[test]
    fn every_selected_kind_can_be_created() {
        for requested in [None, Some(EngineKind::Uring), Some(EngineKind::Epoll)] {
            let (kind, _) = select_engine(requested);
            assert_eq!(create(kind).unwrap().kind(), kind);
        }
    }

    #[test]
    fn epoll_needs_no_reason() {
        let (kind, fallback) = select_engine(Some(EngineKind::Epoll));
        assert_eq!(kind, EngineKind::Epoll);
        assert_eq!(fallback, None);
    }
}
