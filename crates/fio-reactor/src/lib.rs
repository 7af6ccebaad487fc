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
//! attached to it (from `on_open`, with [`attach`]) gets its callbacks. [`read`],
//! [`write`](write()), [`close`] and the other connection functions take the uuid, from any
//! thread; a stale uuid (closed, or its descriptor reused) is [`Error::InvalidUuid`]. Which
//! thread runs what, and what a call from another thread reports, is the next section. See the
//! [`Protocol`] example for an echo server.
//!
//! # Threads and callbacks
//!
//! This section is the one place that says it; everything else links here. It decides whether
//! your state needs a lock.
//!
//! **The owner thread.** Every connection (and listener) belongs to one reactor thread, its
//! *owner*, from its open to its `on_close`:
//! - an accepted connection: the reactor's threads take turns (round robin over all of them,
//!   whichever thread accepted it), so one listener's connections spread over every thread;
//! - a listener, a [`connect`], an [`attach_fd`], a [`socket_uuid`] handed to [`attach`]: the
//!   reactor thread that made the call, or thread 0 (the thread running `start`) when made
//!   from outside the reactor (a plain thread, or before `start`).
//!
//! **Who runs what.**
//!
//! | Code | Runs on |
//! |---|---|
//! | a listener's `on_open` | the new connection's owner (after the hand-over), not necessarily the thread that accepted it |
//! | a connector's `on_open`, `on_fail`, `on_finish`; a listener's `on_finish` | its owner |
//! | [`Protocol`] callbacks (`on_data`, `on_ready`, `on_timeout`, `on_shutdown`, `on_close`), [`RwHook`] methods, [`defer_io_task`] tasks, [`write_notify`] callbacks | the owner; one at a time per connection, but different connections' callbacks run in parallel on different threads |
//! | [`defer`] tasks | any reactor thread: the deferring thread's own queue first, and idle threads steal |
//! | a [`run_every`] task and its `on_finish` | the thread that added the timer (from outside the reactor: the first thread to pick it up), always the same one |
//! | `OnInitialize`, `PreStart`, `OnStart`, `OnFinish` | the thread that called `start`, before the reactor threads run / after they stopped |
//! | `OnShutdown` | thread 0, while the other threads still work |
//! | `AtExit` | the default reactor's: the thread ending the free [`start`], else the exiting thread; a [`Reactor`] value's: the thread dropping its last handle |
//! | `OnIdle` | as deferred tasks: any thread, possibly several at once |
//! | a forced event ([`state_callback_force`], `OnUsr`) | the calling thread |
//! | ALPN callbacks (`fio-tls`) | a deferred task after the handshake: usually the owner, any reactor thread when stolen |
//!
//! So a protocol's own fields (`&mut self`) need no lock. State shared by several connections,
//! tasks or timers needs `Arc` with a lock or atomics once `threads > 1`; with `threads: 1`
//! everything runs on one thread (the closures must still be `Send`).
//!
//! **Calls from another thread.** On the owner, a connection function acts at once. Elsewhere
//! (another reactor thread, a plain thread) [`write`](write()), [`write2`], [`close`],
//! [`timeout_set`], [`force_event`], [`attach`] and the like are routed to the owner and take
//! effect on its next tick, in order; they return `Ok` once routed, so a failure when the call
//! arrives (the connection closed meanwhile) only reaches the log (`log::debug!`). A program
//! that must know whether its bytes went out uses [`write_notify`] (its callback gets `Ok` or
//! [`Error::Unsent`]/[`Error::InvalidUuid`]/[`Error::Closing`]) or [`flush_strong`] (waits
//! until drained). [`read`], [`pending`], [`flush`](flush()) and [`protocol_try_lock`] answer
//! about the owner's queues and work on the owner only ([`Error::ForeignThread`] elsewhere);
//! [`defer_io_task`] runs code on the owner.
//!
//! **No re-entrancy, with named exceptions.** A call on *another* connection from inside a
//! callback never runs that connection's protocol before returning: [`close`] and
//! [`force_close`] mark it closing, and its `on_close` runs later on its owner, once the engine
//! reports it closed; [`write`](write()) only queues; [`force_event`] and [`defer_io_task`]
//! run on a later tick. These run user code before they return, on the calling thread:
//! - [`attach`] and [`detach`] on a connection of this thread that is not inside one of its
//!   own callbacks run the replaced protocol's `on_close` (inside its own callback: after that
//!   callback returns); on a stale uuid, `attach` runs the given protocol's `on_close`;
//! - [`uuid_env_set`] (replacing a key) and [`uuid_env_remove`] run the object's cleanup;
//! - [`write_notify`] refused at the call (a stale uuid) runs its callback, and
//!   [`defer_io_task`] on a stale uuid runs its task with `None`;
//! - [`defer_perform`] runs queued tasks, [`state_callback_force`] the event's callbacks.
//!
//! Don't hold a lock across these that the code they run takes (a `std` lock would deadlock
//! or panic). `tests/threads_callbacks.rs` checks both sides.
//!
//! **Panics.** A panic in a callback, task or timer is caught and logged (`log::error!`) and
//! the process and its thread go on: a panicking protocol callback closes its connection
//! abruptly (its `on_close` still runs), a task is dropped, a timer ends (its `on_finish`
//! runs). Unwinding releases the locks the panicking code held, but a `std::sync::Mutex` held
//! across the panic is *poisoned*: later `lock()` calls return `Err(PoisonError)` (take the data
//! anyway with `PoisonError::into_inner`, or use a lock without poisoning, such as
//! `parking_lot`'s). Built with `panic = "abort"`, nothing is caught.
//!
//! # Model
//!
//! One reactor per process is facil.io's model and the default here: the free functions
//! ([`start`], [`defer`], [`run_every`], [`state_callback_add`], ...) act on the process's
//! default reactor, or, inside a callback or task, on the reactor running it. A reactor is
//! also a value ([`Reactor`]), so tests and libraries can run their own. [`stop`] called off
//! the reactor (a plain thread, a signal-watching thread) stops every running reactor of the
//! process, the one the program built included; [`Reactor::stop`] on a clone stops only
//! that one.
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
//! use fio_reactor::{CallbackEvent, Concurrency, Reactor, StartArgs};
//!
//! let two = Concurrency::exactly(2).expect("2 > 0");
//! let reactor = Reactor::new(StartArgs::new().threads(two).signals(false));
//! let ticks = Arc::new(AtomicUsize::new(0));
//! let counted = Arc::clone(&ticks);
//! reactor.state_callback_add(CallbackEvent::OnStart, move || {
//!     let counted = Arc::clone(&counted);
//!     // Five ticks, 1 ms apart; then stop the reactor running this callback.
//!     let five = fio_reactor::Repeat::times(5).expect("5 is not zero");
//!     fio_reactor::run_every(Duration::from_millis(1), five, move || {
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

pub use args::{Concurrency, StartArgs, expected_concurrency};
pub use conn::{
    ConnectArgs, DefaultHook, FileChunk, HookIo, IoEvent, ListenArgs, Payload, Protocol,
    ProtocolGuard, RECONNECT_DELAY, RwHook, ShutdownDelay, ShutdownResponse, SocketRole,
    TIMEOUT_MAX, Tls, accept, accept_uuid, attach, attach_fd, capa, close, connect, defer_io_task,
    detach, fd2uuid, flush, flush_all, flush_strong, force_close, force_event, is_closed, is_valid,
    listen, local_addr, local_host_name, peer_addr, pending, ping_eternal, protocol_try_lock, read,
    read_from, rw_hook_set, sendfile, set_non_block, socket, socket_uuid, suspend, timeout_get,
    timeout_set, touch, uuid_env_remove, uuid_env_set, uuid_env_set_with, uuid_env_unset, write,
    write_notify, write_to, write2,
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
pub use timer::Repeat;
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
/// use fio_reactor::{CallbackEvent, Concurrency, StartArgs};
/// fio_reactor::state_callback_add(CallbackEvent::OnStart, fio_reactor::stop);
/// fio_reactor::start(StartArgs::new().threads(Concurrency::ONE))?;
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

/// Stops the reactor (facil.io's `fio_stop`); its `start` returns after the shutdown
/// sequence.
///
/// - Inside a callback, task or timer, or on a reactor thread: the reactor running it.
/// - Anywhere else (a plain thread, `main` while another thread runs `start`): every reactor
///   of this process that is running, whether the default or a [`Reactor`] the program built,
///   as facil.io's one reactor per process would. To stop one reactor among several, keep a
///   clone of it (a `Reactor` is `Send + Sync + Clone`) and call [`Reactor::stop`].
///
/// A no-op when nothing runs.
///
/// # Examples
/// ```
/// use fio_reactor::{CallbackEvent, Concurrency, Reactor, StartArgs};
/// let reactor = Reactor::new(StartArgs::new().threads(Concurrency::ONE).signals(false));
/// let (started, on_start) = std::sync::mpsc::sync_channel(1);
/// reactor.state_callback_add(CallbackEvent::OnStart, move || {
///     let _ = started.try_send(());
/// });
/// let runner = reactor.clone();
/// let run = std::thread::spawn(move || runner.start());
/// on_start.recv().expect("the reactor started");
/// fio_reactor::stop(); // from this plain thread: stops `reactor`, not the default one
/// run.join().expect("reactor thread")?;
/// assert!(!reactor.is_running());
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn stop() {
    match Reactor::on_this_thread() {
        Some(reactor) => reactor.stop(),
        None => Reactor::stop_running(),
    }
}

/// Whether the current reactor ([`Reactor::current`]: the one running the calling callback,
/// else the process's default) is running. A program that built its own [`Reactor`] asks it:
/// [`Reactor::is_running`].
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
/// - [`Error::ZeroInterval`] when `interval` is zero; `on_finish` has run by then.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use fio_reactor::Repeat;
/// let bad = fio_reactor::run_every(Duration::ZERO, Repeat::ONCE, || true, || {});
/// assert!(matches!(bad, Err(fio_reactor::Error::ZeroInterval)));
/// ```
pub fn run_every<T, F>(
    interval: Duration,
    repeat: Repeat,
    task: T,
    on_finish: F,
) -> Result<(), Error>
where
    T: FnMut() -> bool + Send + 'static,
    F: FnOnce() + Send + 'static,
{
    Reactor::current().run_every(interval, repeat, task, on_finish)
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
