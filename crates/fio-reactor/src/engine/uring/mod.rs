//! The io_uring engine on `fio-ring`: one [`Ring`] per reactor thread, created on that thread.
//!
//! A `Ring` is `!Send`: it is built with `SINGLE_ISSUER`/`DEFER_TASKRUN` when the kernel has
//! them, which tie it to the thread that created it. So the reactor builds each thread's
//! engine on the thread itself (see `launch.rs`), and only the [`RingHandle`] crosses threads.
//!
//! Waiting is a [`Ring::wait`]: a single `io_uring_enter` that blocks in the kernel until a
//! completion or the timeout. The ring's handle keeps a read of an eventfd in flight for the
//! ring's whole life, so an idle ring always has something to block on and never spins. When
//! a blocking wait's completions leave nothing to report (a send finished), the engine waits
//! again for the rest of the timeout rather than returning for an empty tick; a wake ends it.
//!
//! Wakes are sticky, which the reactor's idle hand-shake (`thread.rs`) relies on:
//! [`RingHandle::wake`] writes the eventfd unless a write is already pending, and the ring
//! clears that "pending" flag only while dispatching the read's completion, inside a `wait`.
//! So a wake either writes the eventfd (the current or next wait returns), or finds a write
//! not yet dispatched, whose completion also ends the current or next wait, and that wait
//! returns after the wake, so the woken thread re-checks for work after it was published.
//! The engine's own waiting again stops at any wait that dispatched the wake-up read
//! ([`Ring::wakes_seen`] grew), so it keeps that guarantee.
//!
//! Connections (`accept.rs`, `conn.rs`): a listener is one multishot accept; a stream is a
//! `fio_socket::Socket` over the engine's shared receive buffer group, whose events its
//! handler pushes into the engine's [`Inbox`] during the ring's dispatch; `wait` hands them
//! over after the tick. The receive buffers (a pool of 16 KiB buffers feeding a 512-entry
//! provided-buffer ring, so up to 8 MiB lent to the kernel) are set up with the first stream,
//! so a thread that never serves a connection holds none.
//!
//! Whether io_uring can run the reactor at all is probed once per process
//! ([`availability`]): the setup (seccomp, `kernel.io_uring_disabled`, kernel support) and
//! the features the connection layer needs (multishot receive from provided-buffer rings,
//! Linux 6.0; multishot accept). A refusal makes the reactor fall back to epoll.

mod accept;
mod conn;
#[cfg(test)]
mod connection_tests;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fio_buffer::{Buffer, Chunk, WaterMarks};
use fio_ring::{BufferPool, Features, PoolConfig, Ring, RingConfig, RingHandle, SetupRefusal};
use fio_socket::SocketConfig;

use crate::engine::uring::accept::Listener;
use crate::engine::uring::conn::Stream;
use crate::engine::{CloseMode, Engine, EngineEvent, EngineKind, Wake};
use crate::fd_table::FdTable;
use crate::uuid::Uuid;

/// Submission queue entries per reactor thread's ring; the completion queue is four times
/// larger, so bursts of multishot completions don't overflow it.
const RING_ENTRIES: u32 = 256;

/// Receive buffer size: a TLS record, or a typical request, in one buffer; small enough that
/// a mostly idle connection's last few bytes don't pin much.
const RECV_BUFFER_SIZE: usize = 16 * 1024;

/// Slots in the provided-buffer ring shared by a thread's streams: the most buffers the
/// kernel can be lent at once before the tick hands them over and the group is refilled from
/// the pool. 512 covers a burst of 8 MiB; a dry group only parks receives until the next
/// tick, it loses nothing.
const GROUP_ENTRIES: u16 = 512;

/// Buffers the group lends at first. It doubles (up to [`GROUP_ENTRIES`]) each time a
/// receive finds it dry, so a thread serving a few light connections keeps a few buffers'
/// pages resident instead of all 512: the kernel fills ring entries in order, so every
/// buffer lent is eventually touched.
const GROUP_INITIAL: u16 = 32;

/// Receive buffers per pool growth step: 256 KiB of address space. A chunk's pages become
/// resident only as the kernel writes into its buffers (fio-buffer maps chunks lazily), so a
/// 16 KiB buffer that only ever held small requests costs one page.
const RECV_BUFFERS_PER_CHUNK: usize = 16;

/// Buffers that `fio_socket::Socket::transmit` copies into, and that read/write hooks
/// encode into (`Engine::send_buffer`: TLS records). The engine's `write` takes ready-made
/// chunks and never copies, so this pool stays empty unless something transmits a slice or
/// a hook encodes; it allocates nothing until then.
const SEND_BUFFER_SIZE: usize = 16 * 1024;

/// Send buffers per pool growth step: 256 KiB, as for receiving. Measured with TLS
/// handshakes (whose records are encrypted into this pool), the default step of 64 raised
/// peak RSS by about half a MiB.
const SEND_BUFFERS_PER_CHUNK: usize = 16;

/// The configuration every reactor ring (and the probe's) is built with.
fn ring_config() -> RingConfig {
    RingConfig::new(RING_ENTRIES)
}

/// What the handlers of the engine's operations report, for `wait` to hand over. Handlers
/// run inside [`Ring::wait`], where the engine itself is borrowed, so they reach the engine
/// only through this.
///
/// Handing over is one swap of `events` with the caller's (empty) vector: the events reach
/// the connection layer without being copied or looked at again, and the two vectors' room
/// is reused turn by turn. What the engine itself must do with them (forget closed
/// connections, know which `Readable` was delivered) is recorded as they are pushed.
#[derive(Debug, Default)]
struct Inbox {
    events: RefCell<Vec<EngineEvent>>,
    /// The connections whose `Closed` is in `events`, for the engine to forget.
    closed: RefCell<Vec<Uuid>>,
    /// Hand-overs so far: a stream whose `Readable` was pushed during the current count is
    /// already waiting in `events`.
    hand_overs: Cell<u64>,
    /// Connect polls that ended, with their raw result, for `wait` to finish: opening the
    /// socket needs the engine's buffer group, which a handler can't reach.
    connects: RefCell<Vec<(Uuid, i32)>>,
    /// Whether `events` or `connects` holds anything: `wait` asks after every ring wait, and
    /// one flag is cheaper to look at than two borrowed vectors.
    pending: Cell<bool>,
}

impl Inbox {
    /// Inlined wherever an event is reported (two per request): the `Closed` check then
    /// folds away for the per-request kinds, and the call cost as much as the push.
    #[inline(always)]
    fn push(&self, event: EngineEvent) {
        if let EngineEvent::Closed { conn, .. } = &event {
            self.closed.borrow_mut().push(*conn);
        }
        self.events.borrow_mut().push(event);
        self.pending.set(true);
    }

    fn push_connect(&self, conn: Uuid, res: i32) {
        self.connects.borrow_mut().push((conn, res));
        self.pending.set(true);
    }

    /// Whether anything waits to be handed over, so `wait` must not block.
    fn is_empty(&self) -> bool {
        !self.pending.get()
    }
}

/// A reactor thread's io_uring engine.
pub(crate) struct UringEngine {
    /// The thread's ring; its handle's wake-up read is always in flight.
    ring: Ring,
    /// Cloned into every waker handed to other threads.
    handle: RingHandle,
    /// Shared with the handlers of every connection's operations.
    inbox: Rc<Inbox>,
    streams: FdTable<Stream>,
    listeners: FdTable<Listener>,
    /// Made with the first stream: the buffer group and pools every socket shares.
    sockets: Option<Rc<SocketConfig>>,
}

impl UringEngine {
    /// Builds a ring on the calling thread (which must be the one that waits on it) and arms
    /// its cross-thread wake-up.
    pub(crate) fn new() -> io::Result<Self> {
        Self::build().map_err(|refusal| match refusal {
            Refusal::Ring(error) => io::Error::from(error),
            missing @ Refusal::MissingFeatures { .. } => {
                io::Error::new(io::ErrorKind::Unsupported, missing.to_string())
            }
        })
    }

    /// [`new`](Self::new), keeping the reason a ring can't serve the reactor.
    fn build() -> Result<Self, Refusal> {
        let mut ring = Ring::new(ring_config()).map_err(Refusal::Ring)?;
        let missing = missing_features(ring.features());
        if !missing.is_empty() {
            return Err(Refusal::MissingFeatures {
                kernel: ring.features().kernel(),
                missing,
            });
        }
        let handle = ring.handle().map_err(Refusal::Ring)?;
        Ok(Self {
            ring,
            handle,
            inbox: Rc::default(),
            streams: FdTable::default(),
            listeners: FdTable::default(),
            sockets: None,
        })
    }

    /// The configuration of a new socket, registering the shared buffer group first if this
    /// is the engine's first stream.
    fn socket_config(&mut self) -> io::Result<Rc<SocketConfig>> {
        if let Some(config) = &self.sockets {
            return Ok(Rc::clone(config));
        }
        let receive = BufferPool::new(
            PoolConfig::new(RECV_BUFFER_SIZE).with_buffers_per_chunk(RECV_BUFFERS_PER_CHUNK),
        )
        .map_err(fio_ring::Error::Pool)?;
        let group = self.ring.register_growing_buffer_group(
            receive.clone(),
            GROUP_INITIAL,
            GROUP_ENTRIES,
        )?;
        let send = BufferPool::new(
            PoolConfig::new(SEND_BUFFER_SIZE).with_buffers_per_chunk(SEND_BUFFERS_PER_CHUNK),
        )
        .map_err(fio_ring::Error::Pool)?;
        // The contract's water marks: 256 KiB unread stops a stream's receive, 64 KiB resumes.
        // One configuration, shared (not copied) by every stream socket of the thread.
        let config = Rc::new(
            SocketConfig::new(group, receive, send).with_water_marks(WaterMarks::default()),
        );
        self.sockets = Some(Rc::clone(&config));
        Ok(config)
    }

    /// Refuses a uuid the engine already serves.
    fn check_new(&self, uuid: Uuid) -> io::Result<()> {
        if self.streams.contains_key(&uuid) || self.listeners.contains_key(&uuid) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("connection {uuid} is already open on this engine"),
            ));
        }
        Ok(())
    }

    /// Finishes the connects whose poll ended during the tick.
    ///
    /// Called once per wait, and nearly always with nothing to do: the look is inlined.
    #[inline]
    fn finish_connects(&mut self) {
        if !self.inbox.connects.borrow().is_empty() {
            self.finish_connects_now();
        }
    }

    /// [`finish_connects`](Self::finish_connects) when some connect ended.
    #[inline(never)]
    fn finish_connects_now(&mut self) {
        let connects = std::mem::take(&mut *self.inbox.connects.borrow_mut());
        for (conn, res) in connects {
            // Without the buffer group no socket can open: the connect fails with its error.
            let config = self.socket_config();
            if let Some(stream) = self.streams.get_mut(&conn) {
                stream.connected(&mut self.ring, res, config);
            }
        }
    }

    /// Moves the inbox's events to `events` (by swapping the vectors when `events` is empty,
    /// as the reactor's loop passes it), forgetting the connections they close. Called after
    /// [`finish_connects`](Self::finish_connects), so the inbox is then empty.
    fn hand_over(&mut self, events: &mut Vec<EngineEvent>) {
        debug_assert!(self.inbox.connects.borrow().is_empty());
        self.inbox.pending.set(false);
        {
            let mut inbox = self.inbox.events.borrow_mut();
            if events.is_empty() {
                std::mem::swap(&mut *inbox, events);
            } else {
                events.append(&mut inbox);
            }
        }
        self.inbox
            .hand_overs
            .set(self.inbox.hand_overs.get().wrapping_add(1));
        // Looked at first: a busy tick rarely closes anything, and the removal loop, inlined,
        // loaded both tables' fields on every hand-over.
        if !self.inbox.closed.borrow().is_empty() {
            self.forget_closed();
        }
    }

    /// Forgets the connections whose `Closed` is being handed over.
    #[inline(never)]
    fn forget_closed(&mut self) {
        // One at a time: dropping a stream must not find the list borrowed.
        loop {
            let Some(conn) = self.inbox.closed.borrow_mut().pop() else {
                break;
            };
            self.streams.remove(&conn);
            self.listeners.remove(&conn);
        }
    }
}

impl fmt::Debug for UringEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringEngine")
            .field("ring", &self.ring)
            .field("streams", &self.streams.len())
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl Engine for UringEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Uring
    }

    fn waker(&self) -> Arc<dyn Wake> {
        Arc::new(UringWaker(self.handle.clone()))
    }

    fn wait_since(
        &mut self,
        timeout: Option<Duration>,
        since: u64,
        events: &mut Vec<EngineEvent>,
    ) -> io::Result<usize> {
        // `Ring::wait` returns at once when nothing is in flight, and blocks without a way to
        // be woken when only connections are. The wake-up read is always in flight unless the
        // ring gave up on it after an unexpected error, and then neither blocking nor waking
        // works as it should any more: report it instead of spinning or sleeping through
        // wakes.
        if !self.ring.wake_armed() {
            return Err(io::Error::other(
                "the io_uring wake-up read ended; other threads can no longer wake this one",
            ));
        }
        // The sends written since the last wait go out with this wait's kernel entry. Their
        // flush runs first, here, so that what it reports (a failed send) is seen before the
        // ring blocks, and the ring need not poll to be safe.
        if timeout != Some(Duration::ZERO) {
            self.ring.run_tick_end_now();
        }
        // Events reported outside a tick (the first `Drained`, a listener closed at once), or
        // connects whose poll ended in an earlier, failed wait, must not wait behind a
        // blocking tick; a zero timeout still flushes the sends.
        let mut timeout = if self.inbox.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        // A blocking wait often ends with completions the sockets settle alone (a send done,
        // its buffer recycled): nothing for the connection layer, whose tick would find no
        // work. At depth 1 that is every other wait, so such a wait goes on, for what is left
        // of its timeout after `since`, until an event, a wake (work another thread
        // published), or the deadline. The clock is read only to wait again.
        let bounded = timeout.filter(|limit| !limit.is_zero());
        let polling = timeout == Some(Duration::ZERO);
        // Looked at once: any wake ends the waiting, so the count can't change between waits.
        let wakes = self.ring.wakes_seen();
        let mut handled = 0;
        loop {
            let settled = self.ring.wait(timeout).map_err(io::Error::from)?;
            handled += settled;
            // An ended connect is in the inbox too: it stops the waiting, and is finished
            // below, once per call rather than after every wait.
            if settled == 0 || !self.inbox.is_empty() || self.ring.wakes_seen() != wakes || polling
            {
                break;
            }
            if let Some(limit) = bounded {
                let elapsed = fio_sys::monotonic_nanos().saturating_sub(since);
                match limit.checked_sub(Duration::from_nanos(elapsed)) {
                    Some(left) if !left.is_zero() => timeout = Some(left),
                    _ => break,
                }
            }
        }
        self.finish_connects();
        let before = events.len();
        self.hand_over(events);
        Ok(handled.max(events.len() - before))
    }

    fn listen(&mut self, listener: Uuid, socket: OwnedFd) -> io::Result<()> {
        self.check_new(listener)?;
        let started = Listener::start(&mut self.ring, listener, socket, Rc::clone(&self.inbox))?;
        self.listeners.insert(listener, started);
        Ok(())
    }

    fn open(&mut self, conn: Uuid, stream: OwnedFd, connecting: bool) -> io::Result<()> {
        self.check_new(conn)?;
        let inbox = Rc::clone(&self.inbox);
        let opened = if connecting {
            Stream::connect(&mut self.ring, conn, stream, inbox)?
        } else {
            let config = self.socket_config()?;
            Stream::open(&mut self.ring, conn, stream, config, inbox)?
        };
        self.streams.insert(conn, opened);
        Ok(())
    }

    fn open_datagram(&mut self, conn: Uuid, socket: OwnedFd) -> io::Result<()> {
        self.check_new(conn)?;
        let config = Rc::new((*self.socket_config()?).clone().with_message_mode(true));
        let inbox = Rc::clone(&self.inbox);
        let opened = Stream::open(&mut self.ring, conn, socket, config, inbox)?;
        self.streams.insert(conn, opened);
        Ok(())
    }

    fn recv_from(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        let stream = self.streams.get(&conn).ok_or_else(|| not_found(conn))?;
        stream.recv_from(&mut self.ring, buf)
    }

    fn send_to(&mut self, conn: Uuid, chunk: Chunk, to: SocketAddr) -> io::Result<()> {
        let stream = self.streams.get(&conn).ok_or_else(|| not_found(conn))?;
        stream.send_to(&mut self.ring, chunk, to)
    }

    fn read(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<usize> {
        let stream = self.streams.get(&conn).ok_or_else(|| not_found(conn))?;
        stream.read(&mut self.ring, buf)
    }

    /// One lookup for the read and the end-of-stream check.
    #[inline]
    fn read_or_eof(&mut self, conn: Uuid, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let stream = self.streams.get(&conn).ok_or_else(|| not_found(conn))?;
        let count = stream.read(&mut self.ring, buf)?;
        let ended = count == 0 && !buf.is_empty() && stream.is_eof();
        Ok((!ended).then_some(count))
    }

    fn read_buffer(&mut self, conn: Uuid) -> io::Result<Option<Buffer>> {
        let stream = self.streams.get(&conn).ok_or_else(|| not_found(conn))?;
        stream.read_buffer(&mut self.ring)
    }

    fn send_buffer(&mut self, conn: Uuid) -> io::Result<Buffer> {
        if !self.streams.contains_key(&conn) {
            return Err(not_found(conn));
        }
        let pool = self.socket_config()?.outbound().clone();
        pool.take().map_err(io::Error::from)
    }

    fn recycle_buffer(&mut self, buffer: Buffer) {
        // Back to the buffer group it was received into (or its pool, if none takes it).
        self.ring.recycle_buffer(buffer);
    }

    fn buffered(&self, conn: Uuid) -> usize {
        self.streams.get(&conn).map_or(0, Stream::buffered)
    }

    fn is_eof(&self, conn: Uuid) -> bool {
        self.streams.get(&conn).is_some_and(Stream::is_eof)
    }

    fn write(&mut self, conn: Uuid, chunk: Chunk, urgent: bool) -> io::Result<()> {
        let stream = self.streams.get_mut(&conn).ok_or_else(|| not_found(conn))?;
        stream.write(&mut self.ring, chunk, urgent)
    }

    /// Inlined into the connection layer's write, as the stream's part is: one call less
    /// per reply (a plain `#[inline]` left it out of line).
    #[inline(always)]
    fn write_copy(&mut self, conn: Uuid, data: &[u8]) -> io::Result<()> {
        match self.streams.get_mut(&conn) {
            Some(stream) => stream.write_copy(&mut self.ring, data),
            None => Err(not_found(conn)),
        }
    }

    fn send_now(&mut self, conn: Uuid) {
        if let Some(stream) = self.streams.get_mut(&conn) {
            stream.send_now(&mut self.ring);
        }
    }

    fn pending(&self, conn: Uuid) -> usize {
        self.streams.get(&conn).map_or(0, Stream::pending)
    }

    fn queued_bytes(&self, conn: Uuid) -> usize {
        self.streams.get(&conn).map_or(0, Stream::queued_bytes)
    }

    fn sent(&self, conn: Uuid) -> u64 {
        self.streams.get(&conn).map_or(0, Stream::sent)
    }

    fn after_data(&self, conn: Uuid) -> (usize, bool, usize) {
        self.streams.get(&conn).map_or((0, false, 0), |stream| {
            (stream.buffered(), stream.is_eof(), stream.queued_bytes())
        })
    }

    fn report_drained(&mut self, conn: Uuid, wanted: bool) {
        if let Some(stream) = self.streams.get(&conn) {
            stream.report_drained(wanted);
        }
    }

    fn pause_receive(&mut self, conn: Uuid, paused: bool) -> io::Result<()> {
        let stream = self.streams.get(&conn).ok_or_else(|| not_found(conn))?;
        stream.pause_receive(&mut self.ring, paused)
    }

    fn close(&mut self, conn: Uuid, mode: CloseMode) -> io::Result<()> {
        if let Some(stream) = self.streams.get_mut(&conn) {
            stream.close(&mut self.ring, mode);
            return Ok(());
        }
        let listener = self.listeners.get(&conn).ok_or_else(|| not_found(conn))?;
        listener.close(&mut self.ring);
        Ok(())
    }
}

/// The error for a uuid this engine doesn't serve (never opened here, or already closed).
#[cold]
fn not_found(uuid: Uuid) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no connection {uuid} on this engine"),
    )
}

/// Wakes one [`UringEngine`] through its ring's handle (an eventfd write, coalesced).
struct UringWaker(RingHandle);

impl Wake for UringWaker {
    fn wake(&self) -> io::Result<()> {
        match self.0.wake() {
            // The ring is dropped only after its thread left the reactor loop for good, so
            // there is nothing left to wake (a late stop or shutdown broadcast).
            Ok(()) | Err(fio_ring::Error::RingClosed) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

/// Why a ring can't serve as a reactor engine.
#[derive(Debug)]
enum Refusal {
    /// Creating the ring or its wake-up failed.
    Ring(fio_ring::Error),
    /// The kernel's io_uring lacks what the connection layer is built on.
    MissingFeatures {
        /// The running kernel, named in the reason.
        kernel: fio_ring::KernelVersion,
        /// What is missing, by name.
        missing: Vec<&'static str>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ring(fio_ring::Error::Setup {
                refusal, source, ..
            }) => {
                let what = match refusal {
                    SetupRefusal::Forbidden => "forbidden by seccomp or kernel.io_uring_disabled",
                    SetupRefusal::NotSupported => {
                        "not built into this kernel, or hidden by seccomp"
                    }
                    SetupRefusal::MemoryLocked => "out of memory or RLIMIT_MEMLOCK too small",
                    SetupRefusal::KernelTooOld => "the kernel is too old",
                    _ => "io_uring_setup failed",
                };
                write!(f, "{what}: {source}")
            }
            Self::Ring(error) => write!(f, "{error}"),
            Self::MissingFeatures { kernel, missing } => write!(
                f,
                "io_uring on Linux {}.{}.{} lacks {} (Linux 6.0 or later is needed)",
                kernel.major,
                kernel.minor,
                kernel.patch,
                missing.join(", ")
            ),
        }
    }
}

impl Refusal {
    /// Whether the refusal is a lasting property of this process and kernel (so the probe's
    /// answer can be kept), rather than a passing failure such as running out of descriptors.
    fn is_lasting(&self) -> bool {
        match self {
            Self::Ring(fio_ring::Error::Setup { refusal, .. }) => {
                *refusal != SetupRefusal::MemoryLocked && *refusal != SetupRefusal::Other
            }
            Self::Ring(fio_ring::Error::Unsupported { .. }) | Self::MissingFeatures { .. } => true,
            Self::Ring(_) => false,
        }
    }
}

/// The features the connection layer relies on that this kernel lacks, by name.
fn missing_features(features: &Features) -> Vec<&'static str> {
    [
        ("multishot recv", features.multishot_recv()),
        ("provided-buffer rings", features.buf_ring()),
        ("multishot accept", features.multishot_accept()),
    ]
    .into_iter()
    .filter_map(|(name, present)| (!present).then_some(name))
    .collect()
}

/// Whether the reactor can run on io_uring in this process; `Err` holds the reason it
/// can't, for the fallback's log line.
///
/// The first call builds (and drops) a ring exactly as a reactor thread would. A lasting
/// answer (usable, or refused by the setup or for missing features) is kept for the rest of
/// the process; a passing failure (out of memory or descriptors) is not kept, and io_uring is
/// then selected anyway so that the thread that builds its ring reports the real error.
pub(crate) fn availability() -> Result<(), &'static str> {
    static PROBED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Some(known) = PROBED.get() {
        return known.as_ref().copied().map_err(String::as_str);
    }
    let answer = match UringEngine::build() {
        Ok(engine) => {
            log::debug!("{}", engine.ring.features());
            Ok(())
        }
        Err(refusal) if refusal.is_lasting() => Err(refusal.to_string()),
        Err(passing) => {
            log::debug!("io_uring probe failed for now ({passing}); trying io_uring anyway");
            return Ok(());
        }
    };
    PROBED
        .get_or_init(|| answer)
        .as_ref()
        .copied()
        .map_err(String::as_str)
}

#[cfg(test)]
mod tests {
    //! The ring-specific side of waiting; what every engine does (wakes before the wait, from
    //! other threads, coalesced; timeouts) is in `engine::conformance`.

    use super::*;

    /// An engine on this kernel, or `None` where io_uring can't run here (a skip, or a
    /// failure under `FIO_REQUIRE_URING=1`).
    fn engine() -> Option<UringEngine> {
        crate::engine::conformance::uring_runs_here().then(|| UringEngine::new().unwrap())
    }

    #[test]
    fn a_timeout_ends_an_idle_wait() {
        let Some(mut engine) = engine() else { return };
        // Nothing wakes it: the timeout ends the wait, and the wake-up read stays armed.
        assert_eq!(
            engine
                .wait(Some(Duration::from_millis(5)), &mut Vec::new())
                .unwrap(),
            0
        );
        assert_eq!(engine.ring.in_flight(), 1);
        engine.waker().wake().unwrap();
        assert_eq!(
            engine
                .wait(Some(Duration::from_secs(60)), &mut Vec::new())
                .unwrap(),
            0
        );
        assert_eq!(engine.ring.in_flight(), 1);
    }

    #[test]
    fn a_closed_ring_is_nothing_to_wake() {
        let Some(engine) = engine() else { return };
        let waker = engine.waker();
        drop(engine);
        waker.wake().unwrap();
    }

    #[test]
    fn refusals_name_their_cause() {
        let forbidden = Refusal::Ring(fio_ring::Error::Setup {
            entries: RING_ENTRIES,
            refusal: SetupRefusal::Forbidden,
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        });
        assert!(forbidden.is_lasting());
        assert!(forbidden.to_string().contains("forbidden by seccomp"));
        let old = Refusal::MissingFeatures {
            kernel: fio_ring::KernelVersion::new(5, 15, 0),
            missing: vec!["multishot recv"],
        };
        assert!(old.is_lasting());
        assert_eq!(
            old.to_string(),
            "io_uring on Linux 5.15.0 lacks multishot recv (Linux 6.0 or later is needed)"
        );
        let passing = Refusal::Ring(fio_ring::Error::Io(io::Error::from(
            io::ErrorKind::OutOfMemory,
        )));
        assert!(!passing.is_lasting());
    }
}
