//! The facil.io evented core: engines, the defer queue, timers, state callbacks, and
//! connections.
//!
//! Layer: above `fio-sys`, `fio-buffer` (pooled buffers and the send and receive queues both
//! engines keep), and `fio-ring` and `fio-socket` (the io_uring engine); the epoll fallback
//! uses `fio-sys`'s `Epoll` and `fio-buffer`'s queues, no io_uring. Used by `fio-cluster`,
//! `fio-tls` and applications.
//!
//! # Connections
//!
//! [`listen`] and [`connect`] open connections, each named by a [`Uuid`]; a [`Protocol`]
//! attached to it (from `on_open`, with [`attach`]) gets its callbacks on the reactor thread
//! that owns it, never two at once. [`read`], [`write`](write()), [`close`] and the other connection
//! functions work from any thread: a process-wide table routes a uuid to its owner, and a
//! stale uuid (closed, or its descriptor reused) is [`Error::InvalidUuid`]. A call routed
//! from another thread can only fail in the log once it reaches the owner; a caller that must
//! know whether its bytes went out uses [`write_notify`] (or [`flush_strong`], which waits
//! until the connection drained). See the [`Protocol`] example for an echo server.
//!
//! # Model
//!
//! One reactor per process is facil.io's model and the default here: the free functions
//! ([`start`], [`stop`], [`defer`], [`run_every`], [`state_callback_add`], ...) act on the
//! process's default reactor, or, inside a callback or task, on the reactor running it. A
//! reactor is also a value ([`Reactor`]), so tests and libraries can run their own.
//!
//! More than one worker process is `fio-cluster`'s job: it plugs into [`cluster`], and
//! without it `start` refuses `workers > 1` with [`Error::ClusterRequired`].
//!
//! [`start`] blocks: it runs `threads` reactor threads (the calling thread is one of them),
//! each with its own engine instance, deque and timer heap. Idle threads block in their
//! engine's wait (no sleep back-off, no spinning) until work, a wake from another thread, or
//! their next timer deadline. Deferred tasks are spread by work stealing. [`stop`], SIGINT or
//! SIGTERM end the run gracefully: `OnShutdown`, the threads stop, queued tasks run,
//! `OnFinish`, and `start` returns.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Duration;
//! use fio_reactor::{CallbackEvent, Reactor, StartArgs};
//!
//! let reactor = Reactor::new(StartArgs { threads: 2, signals: false, ..Default::default() });
//! let ticks = Arc::new(AtomicUsize::new(0));
//! let counted = Arc::clone(&ticks);
//! reactor.state_callback_add(CallbackEvent::OnStart, move || {
//!     let counted = Arc::clone(&counted);
//!     // Five ticks, 1 ms apart; then stop the reactor running this callback.
//!     fio_reactor::run_every(Duration::from_millis(1), 5, move || {
//!         counted.fetch_add(1, Ordering::SeqCst);
//!         true
//!     }, fio_reactor::stop).expect("valid timer");
//! });
//! reactor.start()?;
//! assert_eq!(ticks.load(Ordering::SeqCst), 5);
//! # Ok::<(), fio_reactor::Error>(())
//! ```
//!
//! # Engines
//!
//! io_uring is the default. Each reactor thread builds its own engine on itself (an io_uring
//! ring belongs to the thread that created it) before any start-up callback runs. The engine
//! comes from [`StartArgs::engine`], else `FIO_ENGINE` (`uring`, `epoll` or `poll`), else
//! io_uring. Asking for io_uring probes it once per process: a ring is built as a reactor
//! thread would build it, and it must offer what connections need (Linux 6.0: multishot
//! receive from provided-buffer rings, multishot accept). If the kernel refuses io_uring
//! (seccomp, `kernel.io_uring_disabled`, no support) or lacks those features, the reactor runs
//! epoll instead and logs why once per process, for example `io_uring unavailable (forbidden
//! by seccomp or kernel.io_uring_disabled: Operation not permitted (os error 1)); using
//! epoll`. [`engine`] names the engine that runs.
//!
//! `FIO_URING_BATCH_WAIT=<microseconds>` (off by default) lets the io_uring engine's waits
//! hold out that long for a batch of completions while the previous wait handled several,
//! trading up to that much latency under load for fewer kernel entries; a lone connection
//! never batches. It measured no gain on the load benchmark (see the engine's notes), so it
//! is an experiment's switch, not a tuning advice.
//!
//! # Logging
//!
//! Through the `log` facade only: nothing is printed unless the application installs a logger.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![doc(test(attr(deny(warnings))))]

mod args;
pub mod cluster;
mod conn;
mod crew;
mod defer;
mod engine;
mod error;
mod fd_table;
mod panic;
mod process;
mod reactor;
mod shared;
mod signal;
mod state;
mod thread;
mod timer;
mod uuid;

pub mod c_api;

use std::time::{Duration, Instant};

pub use args::{StartArgs, expected_concurrency};
pub use conn::{
    ConnectArgs, DefaultHook, FileChunk, HookIo, IoEvent, ListenArgs, Payload, Protocol,
    ProtocolGuard, RECONNECT_DELAY, RwHook, SocketRole, Tls, accept, accept_uuid, attach,
    attach_fd, capa, close, connect, defer_io_task, detach, fd2uuid, flush, flush_all,
    flush_strong, force_close, force_event, is_closed, is_valid, listen, local_addr,
    local_host_name, peer_addr, pending, ping_eternal, protocol_try_lock, read, read_from,
    rw_hook_set, sendfile, set_non_block, socket, socket_uuid, suspend, timeout_get, timeout_set,
    touch, uuid_env_remove, uuid_env_set, uuid_env_set_with, uuid_env_unset, write, write_notify,
    write_to, write2,
};
pub use engine::EngineKind;
pub use error::Error;
pub use fio_buffer::Chunk;
/// Errors of the buffer pools ([`shared_payload`], [`BufferPool`]).
pub use fio_buffer::Error as BufferError;
/// The pool types behind [`Chunk`], so a protocol can keep its own pool of payloads without
/// depending on `fio-buffer`; [`shared_payload`] covers the common broadcast case.
pub use fio_buffer::{Buffer, BufferPool, PoolConfig, SharedBuffer};
pub use fio_sys::SockAddr;
pub use process::{is_master, is_worker, master_pid, running_workers};
pub use reactor::Reactor;
pub use shared::{SHARED_PAYLOAD_SIZES, shared_payload};
pub use signal::{reap_children, signal_handler_reset};
pub use state::{CallbackEvent, CallbackId};
pub use uuid::Uuid;

/// Starts the process's default reactor with `args` and blocks until it stops (facil.io's
/// `fio_start`); then runs its `AtExit` callbacks.
///
/// With `args.signals` (the default) SIGINT and SIGTERM stop it gracefully and SIGPIPE is
/// ignored while it runs; the previous handlers come back when it returns. See
/// [`Reactor::start`] for the sequence of events.
///
/// # Errors
/// - [`Error::AlreadyRunning`] when called while the reactor runs (for example from one of its
///   callbacks);
/// - otherwise as [`Reactor::start`].
///
/// # Examples
/// ```
/// use fio_reactor::{CallbackEvent, StartArgs};
/// fio_reactor::state_callback_add(CallbackEvent::OnStart, fio_reactor::stop);
/// fio_reactor::start(StartArgs { threads: 1, ..Default::default() })?;
/// assert!(!fio_reactor::is_running());
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn start(args: StartArgs) -> Result<(), Error> {
    let reactor = Reactor::current();
    let result = reactor.start_with(args);
    if result.is_ok() {
        reactor.run_at_exit();
    }
    result
}

/// Stops the current reactor (see [`Reactor::current`]); `start` returns after its shutdown
/// sequence. A no-op when it isn't running.
///
/// # Examples
/// ```
/// fio_reactor::stop(); // nothing runs: nothing happens
/// ```
pub fn stop() {
    Reactor::current().stop();
}

/// Whether the current reactor is running.
///
/// # Examples
/// ```
/// assert!(!fio_reactor::is_running());
/// ```
pub fn is_running() -> bool {
    Reactor::current().is_running()
}

/// When the current reactor last began a tick; see [`Reactor::last_tick`].
///
/// # Examples
/// ```
/// assert!(fio_reactor::last_tick() <= std::time::Instant::now());
/// ```
pub fn last_tick() -> Instant {
    Reactor::current().last_tick()
}

/// The current reactor's engine: `"io_uring"` or `"epoll"`.
///
/// # Examples
/// ```
/// assert!(!fio_reactor::engine().is_empty());
/// ```
pub fn engine() -> &'static str {
    Reactor::current().engine()
}

/// Defers a task to the current reactor; see [`Reactor::defer`].
///
/// # Examples
/// ```
/// fio_reactor::defer(|| {});
/// fio_reactor::defer_perform();
/// ```
pub fn defer<F>(task: F)
where
    F: FnOnce() + Send + 'static,
{
    Reactor::current().defer(task);
}

/// Runs the current reactor's queued tasks on this thread; see [`Reactor::defer_perform`].
///
/// # Examples
/// ```
/// fio_reactor::defer_perform();
/// assert!(!fio_reactor::defer_has_queue());
/// ```
pub fn defer_perform() {
    Reactor::current().defer_perform();
}

/// Whether the current reactor has deferred tasks waiting.
///
/// # Examples
/// ```
/// let _ = fio_reactor::defer_has_queue();
/// ```
pub fn defer_has_queue() -> bool {
    Reactor::current().defer_has_queue()
}

/// Runs a repeating timer on the current reactor; see [`Reactor::run_every`].
///
/// # Errors
/// `on_finish` has run before either of these returns:
/// - [`Error::ZeroInterval`] when `interval` is zero;
/// - [`Error::InvalidRepetitions`] when `repetitions` is 0 or below -1.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let bad = fio_reactor::run_every(Duration::ZERO, 1, || true, || {});
/// assert!(matches!(bad, Err(fio_reactor::Error::ZeroInterval)));
/// ```
pub fn run_every<T, F>(
    interval: Duration,
    repetitions: i32,
    task: T,
    on_finish: F,
) -> Result<(), Error>
where
    T: FnMut() -> bool + Send + 'static,
    F: FnOnce() + Send + 'static,
{
    Reactor::current().run_every(interval, repetitions, task, on_finish)
}

/// Adds a state callback to the current reactor; see [`Reactor::state_callback_add`].
///
/// # Examples
/// ```
/// use fio_reactor::CallbackEvent;
/// let id = fio_reactor::state_callback_add(CallbackEvent::PreStart, || {});
/// fio_reactor::state_callback_remove(id)?;
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn state_callback_add<F>(event: CallbackEvent, callback: F) -> CallbackId
where
    F: Fn() + Send + Sync + 'static,
{
    Reactor::current().state_callback_add(event, callback)
}

/// Removes a state callback from the current reactor.
///
/// # Errors
/// - [`Error::CallbackNotFound`] when `id` is not registered there.
///
/// # Examples
/// See [`state_callback_add`].
pub fn state_callback_remove(id: CallbackId) -> Result<(), Error> {
    Reactor::current().state_callback_remove(id)
}

/// Runs an event's callbacks on the current reactor now; see
/// [`Reactor::state_callback_force`].
///
/// # Examples
/// ```
/// fio_reactor::state_callback_force(fio_reactor::CallbackEvent::OnIdle);
/// ```
pub fn state_callback_force(event: CallbackEvent) {
    Reactor::current().state_callback_force(event);
}

/// Removes every callback of an event from the current reactor.
///
/// # Examples
/// ```
/// fio_reactor::state_callback_clear(fio_reactor::CallbackEvent::OnIdle);
/// ```
pub fn state_callback_clear(event: CallbackEvent) {
    Reactor::current().state_callback_clear(event);
}
