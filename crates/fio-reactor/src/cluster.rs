//! The extension point `fio-cluster` plugs into: how `start` hands a multi-process run to a
//! process manager, and what the manager may do to the reactor around its forks.
//!
//! `fio-reactor` never forks and never depends on `fio-cluster`. When the start arguments
//! resolve to more than one worker, [`start`](crate::start) (and [`Reactor::start`]) consult the
//! [`ProcessManager`] installed with [`set_process_manager`]; without one they return
//! [`Error::ClusterRequired`]. `fio-cluster` installs itself (`fio_cluster::install`, or
//! implicitly through `fio_cluster::start`) and then drives the reactor through the functions
//! here:
//!
//! 1. in the root, [`run_root`] runs the reactor in this process as the cluster's root: one
//!    thread, `PreStart` but not `OnStart`, and only the `master_only` listeners and
//!    connectors opened before `start` (the others stay parked, their sockets open, for the
//!    workers to inherit at every fork);
//! 2. in each freshly forked worker, [`enter_worker`] forgets the root's run (the fork happens
//!    inside one of the root's callbacks, whose frames never return in the child), then
//!    [`run_worker`] runs the reactor as a worker: its own engines and threads, built after the
//!    fork, `OnStart` but not `PreStart`, and the listeners and connectors that aren't
//!    `master_only`;
//! 3. [`when_serving`] tells the manager when a worker has opened its inherited listeners.
//!
//! The fork and crash events (`BeforeFork`, `AfterFork`, `InChild`, `InMaster`,
//! `OnParentCrush`, `OnChildCrush`) are raised by the manager with
//! [`Reactor::state_callback_force`].

use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::args::{StartArgs, expected_concurrency};
use crate::error::Error;
pub use crate::process::Role;
use crate::process::{self, set_role};
use crate::reactor::{Reactor, forget_current_after_fork};
use crate::thread::forget_after_fork;

/// Runs a multi-process `start` (implemented by `fio-cluster`).
pub trait ProcessManager: Send + Sync + 'static {
    /// Runs `reactor` with `args` as a cluster of `workers` processes (already resolved, at
    /// least 2) and returns in the root once the whole cluster has stopped. Workers must never
    /// return from here: they end their process.
    ///
    /// # Errors
    /// Whatever keeps the cluster from starting, as an [`Error`] (typically
    /// [`Error::Cluster`]).
    fn start(&self, reactor: &Reactor, args: StartArgs, workers: u16) -> Result<(), Error>;
}

/// The installed process manager.
static MANAGER: OnceLock<&'static dyn ProcessManager> = OnceLock::new();

/// Installs the process manager `start` uses for more than one worker; returns `false` (and
/// keeps the first) when one was installed already.
///
/// # Examples
/// ```
/// use fio_reactor::{Reactor, StartArgs, cluster::ProcessManager};
/// #[derive(Debug)]
/// struct Refuse;
/// impl ProcessManager for Refuse {
///     fn start(&self, _: &Reactor, _: StartArgs, workers: u16) -> Result<(), fio_reactor::Error> {
///         Err(fio_reactor::Error::ClusterRequired { workers })
///     }
/// }
/// // A program would install it once, before `start`:
/// // fio_reactor::cluster::set_process_manager(&Refuse);
/// let refused = Refuse.start(&fio_reactor::Reactor::current(), StartArgs::default(), 2);
/// assert!(matches!(refused, Err(fio_reactor::Error::ClusterRequired { workers: 2 })));
/// ```
pub fn set_process_manager(manager: &'static dyn ProcessManager) -> bool {
    MANAGER.set(manager).is_ok()
}

/// Whether a process manager is installed.
pub fn process_manager_installed() -> bool {
    MANAGER.get().is_some()
}

/// The installed manager.
pub(crate) fn manager() -> Option<&'static dyn ProcessManager> {
    MANAGER.get().copied()
}

/// This process's role: [`Role::Single`] unless a process manager made it a cluster's root
/// or worker.
///
/// # Examples
/// ```
/// assert_eq!(fio_reactor::cluster::role(), fio_reactor::cluster::Role::Single);
/// ```
pub fn role() -> Role {
    process::role()
}

/// Runs `reactor` in this process as the root of a cluster of `workers` processes, with
/// `args`' engine and thread count (the root serves only `master_only` listeners and
/// connectors, so one thread is plenty); blocks until it stops, like [`Reactor::start`].
///
/// From here on [`is_worker`](crate::is_worker) is false and
/// [`running_workers`](crate::running_workers) reports `workers`.
///
/// # Errors
/// As [`Reactor::start`], except [`Error::ClusterRequired`].
pub fn run_root(reactor: &Reactor, args: StartArgs, workers: u16) -> Result<(), Error> {
    set_role(Role::Root, workers);
    run(reactor, args)
}

/// In a child the manager just forked inside one of the root reactor's callbacks: leaks the
/// root's reactor thread and handles (never dropping them: their engine and sockets are
/// shared with the root), resets `reactor`'s run state, drops this process's copies of the
/// `master_only` sockets still parked, and marks the process as a worker of `workers`.
///
/// Call it first thing in the child, before raising `AfterFork`.
pub fn enter_worker(reactor: &Reactor, workers: u16) {
    forget_after_fork();
    forget_current_after_fork();
    set_role(Role::Worker, workers);
    reactor.inner().reset_after_fork();
    // The root's copies: closed here, the worker serves its own.
    drop(std::mem::take(&mut *SHARED_LISTENERS.lock()));
}

/// Runs `reactor` in this (worker) process with `args` (its `workers` count is ignored):
/// builds its engines and threads now, runs `OnStart`, serves the inherited listeners, and
/// blocks until it stops, like [`Reactor::start`].
///
/// # Errors
/// As [`Reactor::start`], except [`Error::ClusterRequired`].
pub fn run_worker(reactor: &Reactor, args: StartArgs) -> Result<(), Error> {
    run(reactor, args)
}

/// Runs `task` on `reactor`'s first thread right after the listeners and connectors parked
/// before `start` were opened there (on its first tick), or on its next tick when it runs
/// already: how a worker tells the root it is serving.
pub fn when_serving(reactor: &Reactor, task: impl FnOnce() + Send + 'static) {
    reactor.inner().post(0, Box::new(task));
}

/// Runs `AtExit` (once), as the free [`start`](crate::start) does when it returns: for a worker,
/// which ends its process instead of returning.
pub fn run_at_exit(reactor: &Reactor) {
    reactor.run_at_exit();
}

/// Copies of the stream listeners opened before `start` (not `master_only`): the accept
/// queues a cluster's workers share.
static SHARED_LISTENERS: Mutex<Vec<OwnedFd>> = Mutex::new(Vec::new());

/// Keeps a copy of a listener parked before `start` for [`shared_listeners`].
pub(crate) fn note_shared_listener(socket: &OwnedFd) {
    match socket.try_clone() {
        Ok(copy) => SHARED_LISTENERS.lock().push(copy),
        Err(error) => log::debug!("keeping a copy of a listener failed: {error}"),
    }
}

/// Copies (new descriptors) of the stream listeners opened before `start` that the workers
/// share (every listener but `master_only` and datagram ones), for the root to watch their
/// accept queues: under io_uring a worker that stops accepting can swallow the wake-up of a
/// connection arriving at that moment (its accept waits exclusively), leaving it queued until
/// the next connection wakes another worker. A root that sees a queue stay non-empty can wake
/// the workers by connecting once.
///
/// # Errors
/// - duplicating a descriptor failed (out of descriptors).
pub fn shared_listeners() -> std::io::Result<Vec<OwnedFd>> {
    SHARED_LISTENERS
        .lock()
        .iter()
        .map(|socket| socket.as_fd().try_clone_to_owned())
        .collect()
}

/// Runs the reactor's threads in the role already set.
fn run(reactor: &Reactor, args: StartArgs) -> Result<(), Error> {
    if reactor.is_running() {
        return Err(Error::AlreadyRunning);
    }
    let (threads, _) = expected_concurrency(args.threads, args.workers);
    reactor.run_threads(args, threads)
}
