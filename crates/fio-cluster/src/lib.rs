//! Forked workers for `fio-reactor`: facil.io's cluster mode (`fio_start` with `.workers`).
//!
//! Layer: above `fio-reactor` (through its [`fio_reactor::cluster`] extension point) and
//! `fio-sys`. `fio-reactor` alone runs one process and refuses more than one worker with
//! [`fio_reactor::Error::ClusterRequired`]; a program that calls
//! [`install`] (or [`start`], which installs and starts) gets workers from the same
//! `fio_reactor::start`.
//!
//! # The processes
//!
//! The *root* (master) process binds every listener opened before `start`, then forks the
//! workers one at a time, each time raising `BeforeFork`, then `AfterFork` and `InMaster` (in
//! the root) and `AfterFork`, `InChild` and `OnStart` (in the worker). Each worker builds its
//! own engines and reactor threads after the fork and serves the inherited listeners; the
//! kernel's accept queue is shared, so it stays open while workers come and go. The root itself
//! runs a one-thread epoll reactor for the `master_only` listeners and connectors (which
//! workers never serve) and for its supervision, every 20 ms:
//!
//! - **Crashes.** A worker that dies unasked is reaped, logged with its pid and status,
//!   `OnChildCrush` runs (for a failure status), and a replacement is forked. A worker that
//!   dies before it served for [`STABLE_AFTER`] counts as a boot failure: the next fork waits
//!   [`BACKOFF_FIRST`], doubling with each further failure up to [`BACKOFF_MAX`], and the
//!   delay resets once a worker has served for [`STABLE_AFTER`]. So a worker that can't boot
//!   is retried slowly, never in a fork loop.
//! - **Stop.** SIGINT or SIGTERM to the root (or [`fio_reactor::stop`] in the root) stops it:
//!   its `OnShutdown` sends SIGTERM to every worker and waits for all of them (each drains its
//!   connections through `on_shutdown` and the grace; a second SIGINT or SIGTERM kills the ones
//!   left); then the root's own shutdown runs and `start` returns `Ok` (exit code 0).
//!   `fio_reactor::stop` in a worker stops that worker only, and the root forks a new one.
//! - **Hot restart.** SIGUSR1 to the root replaces the workers one at a time: a new worker is
//!   forked, and only once it reports that it serves (its listeners are open) is the old one
//!   sent SIGTERM, to drain through `on_shutdown` and the grace while the new one accepts. No
//!   connection is refused: the listening socket never closes.
//! - **Parent death.** Each worker is linked to the root by a socket pair and asks the kernel
//!   for SIGTERM when the root dies (`PR_SET_PDEATHSIG`). When its end of the link reports that
//!   the root is gone, the worker runs `OnParentCrush`, stops, and exits within a second. The
//!   root outlives its workers on every normal path, so a normal shutdown never reports a
//!   parent crash.
//!
//! [`fio_reactor::is_worker`], [`fio_reactor::is_master`], [`fio_reactor::master_pid`],
//! [`fio_reactor::is_running`] and [`fio_reactor::running_workers`] answer for the process
//! they are called in.
//!
//! # What runs where
//!
//! - Listeners and connectors opened before `start`: in every worker (`master_only` ones: in
//!   the root only). Opened after `start`: in the calling process only.
//! - Tasks deferred and timers added before `start`: in the root, once (they run on its first
//!   tick, before the first fork). Use an `OnStart` callback for per-worker work.
//! - `PreStart` and `OnInitialize`: in the root, once. `OnStart`: in each worker.
//!   `OnShutdown`, `OnFinish`, `AtExit`: in every process.
//! - `start` returns in the root only: a worker ends its process when its reactor stops
//!   (status 0 after a clean stop) without returning to the caller, so code after `start` and
//!   destructors of `main`'s values run in the root alone. Put per-worker clean-up in
//!   `OnFinish` or `AtExit`.
//! - A worker inherits copies of the root's `master_only` sockets that were open at its fork
//!   (they are never served there, and close when it exits), and the uuids of the root's own
//!   connections stay valid-looking there; don't hand uuids between processes.
//!
//! # Requirements
//!
//! `fork` is refused unless the root is single-threaded when it forks (see `fio_sys::fork`):
//! don't start threads before `start` in the root, and don't call
//! `fio_reactor::reap_children` (its signal thread would count; the root reaps its workers
//! itself).
//!
//! # Example
//!
//! ```no_run
//! use fio_reactor::{Concurrency, ListenArgs, StartArgs};
//! fio_reactor::listen(ListenArgs::new("tcp://0.0.0.0:3000", |uuid| {
//!     let _ = fio_reactor::close(uuid);
//! }))?;
//! // Four workers of two threads each; returns in the root after SIGINT/SIGTERM.
//! let (two, four) = (Concurrency::exactly(2), Concurrency::exactly(4));
//! let args = StartArgs::new().threads(two.expect("2 > 0")).workers(four.expect("4 > 0"));
//! fio_cluster::start(args)?;
//! # Ok::<(), fio_reactor::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod root;
mod worker;

use std::time::Duration;

use fio_reactor::cluster::ProcessManager;
use fio_reactor::{Error, Reactor, StartArgs};

/// The delay before the first respawn after a boot failure; it doubles with each further
/// failure.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);

/// The longest delay between respawns of workers that keep failing at boot.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How long a worker must serve for its death not to count as a boot failure, and for the
/// respawn back-off to reset.
pub const STABLE_AFTER: Duration = Duration::from_secs(1);

/// The process manager `fio-reactor` hands multi-worker starts to.
#[derive(Debug)]
struct Cluster;

impl ProcessManager for Cluster {
    fn start(&self, reactor: &Reactor, args: StartArgs, workers: u16) -> Result<(), Error> {
        root::run(reactor, args, workers)
    }
}

/// The one manager instance.
static CLUSTER: Cluster = Cluster;

/// Makes `fio_reactor::start` (and `Reactor::start`) fork workers when its arguments resolve
/// to more than one; idempotent.
///
/// # Examples
/// ```
/// fio_cluster::install();
/// assert!(fio_reactor::cluster::process_manager_installed());
/// ```
pub fn install() {
    if !fio_reactor::cluster::set_process_manager(&CLUSTER) {
        log::debug!("a process manager was installed already");
    }
}

/// [`install`], then [`fio_reactor::start`]: runs the process's default reactor with `args`,
/// forking `workers` processes when they resolve to more than one (including facil.io's
/// both counts `0`, [`Concurrency::MatchOther`](fio_reactor::Concurrency::MatchOther), and
/// negative fractions, [`Concurrency::FractionOfCores`](fio_reactor::Concurrency::FractionOfCores); see
/// [`fio_reactor::expected_concurrency`]), and returns in the root once all of them stopped.
/// With one worker it is exactly `fio_reactor::start`.
///
/// # Errors
/// - as [`fio_reactor::start`];
/// - [`Error::Cluster`] when the root can't install its signal handlers or can't fork (for
///   example because it runs other threads).
///
/// # Examples
/// ```
/// use fio_reactor::{CallbackEvent, Concurrency, StartArgs};
/// fio_reactor::state_callback_add(CallbackEvent::OnStart, fio_reactor::stop);
/// // One worker: no fork, a plain single-process run.
/// fio_cluster::start(StartArgs::new().threads(Concurrency::ONE).workers(Concurrency::ONE))?;
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn start(args: StartArgs) -> Result<(), Error> {
    install();
    fio_reactor::start(args)
}
