//! The root process: forks the workers, reaps and respawns them with back-off, forwards stop
//! signals, and replaces them one at a time on SIGUSR1.
//!
//! Everything here runs on the root reactor's only thread: the supervision is a 20 ms timer
//! (signals are recorded by `fio-sys`'s handler and picked up by the next tick), and the
//! forwarding of a stop is the root's `OnShutdown` callback, which waits for the workers.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::ExitStatus;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use fio_reactor::cluster::{self as hook, Role};
use fio_reactor::{
    CallbackEvent, Concurrency, EngineKind, Error, Reactor, StartArgs, expected_concurrency,
};
use fio_sys::{Fork, Pid, PollFlags, SavedAction, Signal, SockAddr, WaitOptions};

use crate::{BACKOFF_FIRST, BACKOFF_MAX, STABLE_AFTER};

/// How often the root looks at its signals and workers.
const TICK: Duration = Duration::from_millis(20);

/// How long after a worker stopped the root watches the shared accept queues.
const WATCH_AFTER_EXIT: Duration = Duration::from_secs(3);

/// Ticks a shared accept queue may keep connections waiting before the root wakes the workers.
const STUCK_TICKS: u32 = 3;

/// How long the root's wake-up connection may take.
const KNOCK_TIMEOUT: Duration = Duration::from_millis(200);

/// How often the root polls for exited workers while it waits for them to stop.
const STOP_POLL: Duration = Duration::from_millis(5);

/// The signals the root handles: stop (INT, TERM), hot restart (USR1), a worker exited (CHLD).
const ROOT_SIGNALS: [Signal; 4] = [Signal::INT, Signal::TERM, Signal::USR1, Signal::CHLD];

/// Where a worker is in its life, as the root sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Forked; it hasn't reported that it serves yet.
    Starting,
    /// Serving since then.
    Serving(Instant),
    /// Still serving, but a hot restart is replacing it; it is sent SIGTERM once its
    /// replacement serves.
    Replaced,
    /// Sent SIGTERM: its exit is expected.
    Retiring,
}

impl State {
    /// Whether it has served for [`STABLE_AFTER`] by `now`.
    fn stable(self, now: Instant) -> bool {
        matches!(self, Self::Serving(since) if now.saturating_duration_since(since) >= STABLE_AFTER)
    }
}

/// One worker process.
#[derive(Debug)]
struct Child {
    /// Its pid.
    pid: Pid,
    /// The root's end of the link: the worker writes one byte once it serves; the worker's end
    /// sees EOF when the root dies.
    link: UnixStream,
    /// When it was forked.
    born: Instant,
    /// Its state.
    state: State,
}

/// The root's bookkeeping, shared by its timer and its `OnShutdown` callback (same thread).
#[derive(Debug)]
pub(crate) struct Supervisor {
    /// What each worker runs.
    worker_args: StartArgs,
    /// How many workers should serve.
    target: usize,
    /// The workers alive (or not reaped yet).
    children: Vec<Child>,
    /// Boot failures in a row.
    failures: u32,
    /// No fork before this (the back-off).
    next_spawn: Instant,
    /// Workers a hot restart still has to replace, oldest first.
    restart: VecDeque<Pid>,
    /// The root is stopping: no more forks.
    stopping: bool,
    /// Why forking is impossible, once it is (the root is multithreaded): the root stops.
    fatal: Option<Error>,
    /// The dispositions the root replaced, restored when it returns (and by each worker).
    saved: Vec<SavedAction>,
    /// The workers' shared accept queues, watched for a while after a worker stopped.
    listeners: Vec<Watched>,
    /// Until when the accept queues are watched.
    watch_until: Option<Instant>,
}

/// A shared listener the root watches; see [`Supervisor::unstick`].
#[derive(Debug)]
struct Watched {
    /// The root's own copy of the listening socket.
    socket: OwnedFd,
    /// Its address, to connect to.
    address: Option<SockAddr>,
    /// Ticks in a row it had connections waiting.
    waiting: u32,
}

/// Runs the cluster in the root until it stops; see the crate docs.
pub(crate) fn run(reactor: &Reactor, args: StartArgs, workers: u16) -> Result<(), Error> {
    let (threads, _) = expected_concurrency(args.threads, args.workers);
    // Resolved counts are at least 1, so `exactly` never falls back.
    let per_worker = Concurrency::exactly(threads).unwrap_or(Concurrency::ONE);
    let worker_args = args.threads(per_worker).workers(Concurrency::ONE);
    let root_args = StartArgs::new()
        .threads(Concurrency::ONE)
        .workers(Concurrency::ONE)
        .engine(EngineKind::Epoll)
        .signals(false);
    let saved = catch_root_signals()?;
    let supervisor = Arc::new(Mutex::new(Supervisor {
        worker_args,
        target: usize::from(workers).max(1),
        children: Vec::new(),
        failures: 0,
        next_spawn: Instant::now(),
        restart: VecDeque::new(),
        stopping: false,
        fatal: None,
        saved,
        listeners: watch_listeners(),
        watch_until: None,
    }));
    let on_shutdown = {
        let supervisor = Arc::clone(&supervisor);
        reactor.state_callback_add(CallbackEvent::OnShutdown, move || {
            // Copied into every worker with the rest of the callbacks; only the root acts.
            if hook::role() == Role::Root {
                supervisor.lock().stop_all();
            }
        })
    };
    let ticking = Arc::clone(&supervisor);
    reactor.defer(move || {
        tick(&ticking);
        let every = Arc::clone(&ticking);
        let started = fio_reactor::run_every(
            TICK,
            fio_reactor::Repeat::Forever,
            move || tick(&every),
            || {},
        );
        if let Err(error) = started {
            log::error!("the cluster's supervision timer failed: {error}");
            fio_reactor::stop();
        }
    });
    log::info!(
        "cluster root {} starting {workers} workers of {threads} threads",
        std::process::id()
    );
    let result = hook::run_root(reactor, root_args, workers);
    let _ = reactor.state_callback_remove(on_shutdown);
    let mut supervisor = supervisor.lock();
    // Normally done by `OnShutdown`; this covers a start that failed before it.
    supervisor.stop_all();
    restore(std::mem::take(&mut supervisor.saved));
    match supervisor.fatal.take() {
        Some(error) => Err(error),
        None => result,
    }
}

/// One supervision round; returns `true` to keep the timer going.
fn tick(supervisor: &Arc<Mutex<Supervisor>>) -> bool {
    let reactor = Reactor::current();
    let mut supervisor = supervisor.lock();
    if supervisor.stopping {
        return false;
    }
    let pending = fio_sys::take_pending_signals();
    if pending.contains(Signal::INT) || pending.contains(Signal::TERM) {
        log::info!("cluster root: stop signal received, stopping the workers");
        reactor.stop();
        return false;
    }
    if pending.contains(Signal::USR1) {
        supervisor.begin_restart();
    }
    supervisor.reap(&reactor);
    supervisor.check_links();
    supervisor.progress_restart();
    supervisor.spawn_missing(&reactor);
    supervisor.unstick();
    true
}

/// Copies of the workers' shared listeners, to watch.
fn watch_listeners() -> Vec<Watched> {
    match hook::shared_listeners() {
        Ok(sockets) => sockets
            .into_iter()
            .map(|socket| Watched {
                address: fio_sys::local_addr(socket.as_fd()).ok(),
                socket,
                waiting: 0,
            })
            .collect(),
        Err(error) => {
            log::warn!("cluster root: can't watch the listeners: {error}");
            Vec::new()
        }
    }
}

impl Supervisor {
    /// Workers that count toward the target: forked or serving, not being replaced.
    fn active(&self) -> usize {
        self.children
            .iter()
            .filter(|child| matches!(child.state, State::Starting | State::Serving(_)))
            .count()
    }

    /// Workers serving (not being replaced).
    fn serving(&self) -> usize {
        self.children
            .iter()
            .filter(|child| matches!(child.state, State::Serving(_)))
            .count()
    }

    /// SIGUSR1: queue every current worker for replacement.
    fn begin_restart(&mut self) {
        let old: Vec<Pid> = self
            .children
            .iter()
            .filter(|child| matches!(child.state, State::Starting | State::Serving(_)))
            .map(|child| child.pid)
            .filter(|pid| !self.restart.contains(pid))
            .collect();
        log::info!(
            "cluster root: hot restart, replacing {} workers one at a time",
            old.len()
        );
        self.restart.extend(old);
    }

    /// Collects exited workers; schedules replacements for the ones that died unasked.
    fn reap(&mut self, reactor: &Reactor) {
        let mut index = 0;
        while index < self.children.len() {
            let pid = self.children[index].pid;
            match fio_sys::waitpid(Some(pid), WaitOptions::NOHANG) {
                Ok(Some((_, status))) => {
                    let child = self.children.swap_remove(index);
                    self.exited(reactor, &child, status);
                }
                Ok(None) => index += 1,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    // ECHILD: someone else reaped it; it is gone either way.
                    log::warn!("cluster root: waiting for worker {pid} failed: {error}");
                    self.children.swap_remove(index);
                }
            }
        }
    }

    /// A worker exited with `status`.
    fn exited(&mut self, reactor: &Reactor, child: &Child, status: ExitStatus) {
        self.restart.retain(|&pid| pid != child.pid);
        self.watch_until = Some(Instant::now() + WATCH_AFTER_EXIT);
        if child.state == State::Retiring {
            log::info!("cluster root: worker {} exited ({status})", child.pid);
            return;
        }
        let now = Instant::now();
        let lived = now.saturating_duration_since(child.born);
        let stable = child.state.stable(now);
        if !status.success() {
            reactor.state_callback_force(CallbackEvent::OnChildCrush);
        }
        if self.stopping || child.state == State::Replaced {
            log::warn!(
                "cluster root: worker {} exited ({status}) after {lived:?}",
                child.pid
            );
            return;
        }
        if stable {
            self.failures = 0;
            self.next_spawn = now;
            log::warn!(
                "cluster root: worker {} died ({status}) after {lived:?}; respawning",
                child.pid
            );
        } else {
            self.failures = self.failures.saturating_add(1);
            let delay = backoff(self.failures);
            self.next_spawn = now + delay;
            log::warn!(
                "cluster root: worker {} died at boot ({status}) after {lived:?}; respawning in \
                 {delay:?} (failure {} in a row)",
                child.pid,
                self.failures
            );
        }
    }

    /// Notes the workers that reported that they serve, and resets the back-off once one has
    /// served a while.
    fn check_links(&mut self) {
        let now = Instant::now();
        for child in &mut self.children {
            if child.state != State::Starting {
                continue;
            }
            let mut byte = [0u8; 1];
            match child.link.read(&mut byte) {
                Ok(1) => {
                    child.state = State::Serving(now);
                    log::info!("cluster root: worker {} serving", child.pid);
                }
                // EOF: it died; `reap` will hear of it.
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => log::debug!("worker {} link: {error}", child.pid),
            }
        }
        let settled = self.children.iter().any(|child| child.state.stable(now));
        if settled && self.failures > 0 {
            log::info!("cluster root: workers serve again; respawn back-off reset");
            self.failures = 0;
        }
    }

    /// Moves a hot restart on: one worker at a time is marked replaced (its replacement is
    /// forked by `spawn_missing`), then stopped once the replacement serves.
    fn progress_restart(&mut self) {
        if self
            .children
            .iter()
            .any(|child| child.state == State::Retiring)
        {
            return;
        }
        let target = self.target;
        let serving = self.serving();
        if let Some(old) = self
            .children
            .iter_mut()
            .find(|child| child.state == State::Replaced)
        {
            if serving >= target {
                log::info!(
                    "cluster root: replacement serves; stopping worker {}",
                    old.pid
                );
                old.state = State::Retiring;
                self.watch_until = Some(Instant::now() + WATCH_AFTER_EXIT);
                if let Err(error) = fio_sys::kill(old.pid, Signal::TERM) {
                    log::warn!("cluster root: stopping worker {} failed: {error}", old.pid);
                }
            }
            return;
        }
        while let Some(pid) = self.restart.pop_front() {
            if let Some(old) = self
                .children
                .iter_mut()
                .find(|child| child.pid == pid && matches!(child.state, State::Serving(_)))
            {
                log::info!("cluster root: replacing worker {pid}");
                old.state = State::Replaced;
                return;
            }
        }
    }

    /// For a while after a worker stopped: a shared accept queue that keeps connections waiting
    /// for [`STUCK_TICKS`] ticks while workers serve has lost its wake-up (an io_uring worker
    /// that stopped accepting swallowed it, see `fio_reactor::cluster::shared_listeners`), so
    /// the root connects once (and hangs up) to wake a serving worker, which then accepts
    /// everything queued. Workers see that connection open and close.
    fn unstick(&mut self) {
        let now = Instant::now();
        if self.watch_until.is_none_or(|until| now >= until) {
            self.watch_until = None;
            return;
        }
        let serving = self.serving() > 0;
        for watched in &mut self.listeners {
            let waiting =
                fio_sys::poll(watched.socket.as_fd(), PollFlags::IN, Some(Duration::ZERO))
                    .is_ok_and(|ready| !ready.is_empty());
            watched.waiting = if waiting { watched.waiting + 1 } else { 0 };
            if watched.waiting < STUCK_TICKS || !serving {
                continue;
            }
            watched.waiting = 0;
            let Some(address) = &watched.address else {
                continue;
            };
            log::info!(
                "cluster root: connections wait on {address} unaccepted; waking the workers"
            );
            let knocked = match (address.as_inet(), address.as_unix_path()) {
                (Some(inet), _) => {
                    let inet = unspecified_to_loopback(inet);
                    TcpStream::connect_timeout(&inet, KNOCK_TIMEOUT).map(drop)
                }
                (None, Some(path)) => UnixStream::connect(path).map(drop),
                (None, None) => Ok(()),
            };
            if let Err(error) = knocked {
                log::warn!("cluster root: waking the workers on {address} failed: {error}");
            }
        }
    }

    /// Forks workers until the target is met, unless the back-off says wait (then one at a
    /// time).
    fn spawn_missing(&mut self, reactor: &Reactor) {
        while !self.stopping && self.fatal.is_none() && self.active() < self.target {
            if Instant::now() < self.next_spawn {
                return;
            }
            self.spawn(reactor);
            if self.failures > 0 {
                // Backing off: one at a time, each after its delay.
                self.next_spawn = Instant::now() + backoff(self.failures);
                return;
            }
        }
    }

    /// Forks one worker. In the child this never returns.
    fn spawn(&mut self, reactor: &Reactor) {
        let (link, worker_link) = match UnixStream::pair() {
            Ok(pair) => pair,
            Err(error) => {
                self.cannot_fork("creating a worker's link", error);
                return;
            }
        };
        reactor.state_callback_force(CallbackEvent::BeforeFork);
        match fio_sys::fork() {
            Ok(Fork::Child) => {
                drop(link);
                // This process's copies of the root's ends of the other workers' links: closed,
                // so each worker sees EOF only when the root itself dies.
                self.children.clear();
                self.listeners.clear();
                let saved = std::mem::take(&mut self.saved);
                let workers = u16::try_from(self.target).unwrap_or(u16::MAX);
                crate::worker::run(reactor, self.worker_args, workers, worker_link, saved)
            }
            Ok(Fork::Parent { child }) => {
                drop(worker_link);
                if let Err(error) = link.set_nonblocking(true) {
                    log::warn!("cluster root: worker {child} link: {error}");
                }
                reactor.state_callback_force(CallbackEvent::AfterFork);
                reactor.state_callback_force(CallbackEvent::InMaster);
                log::info!("cluster root: worker {child} started");
                self.children.push(Child {
                    pid: child,
                    link,
                    born: Instant::now(),
                    state: State::Starting,
                });
            }
            Err(error) => self.cannot_fork("forking a worker", error),
        }
    }

    /// Forking failed: a transient shortage (`EAGAIN`, `ENOMEM`) backs off; anything else (a
    /// multithreaded root) can't get better, so the root stops with the error.
    fn cannot_fork(&mut self, what: &str, error: io::Error) {
        let transient = matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::OutOfMemory
        );
        if transient {
            self.failures = self.failures.saturating_add(1);
            let delay = backoff(self.failures);
            self.next_spawn = Instant::now() + delay;
            log::error!("cluster root: {what} failed: {error}; retrying in {delay:?}");
            return;
        }
        log::error!("cluster root: {what} failed: {error}; stopping");
        self.fatal = Some(Error::Cluster {
            what: what.to_owned(),
            source: error,
        });
        fio_reactor::stop();
    }

    /// Sends SIGTERM to every worker and waits until all have exited, however long their
    /// `on_shutdown` delays take; a second SIGINT or SIGTERM to the root kills the ones left.
    /// No worker is forked afterwards.
    fn stop_all(&mut self) {
        self.stopping = true;
        self.restart.clear();
        if self.children.is_empty() {
            return;
        }
        for child in &mut self.children {
            if child.state != State::Retiring {
                child.state = State::Retiring;
                if let Err(error) = fio_sys::kill(child.pid, Signal::TERM) {
                    log::debug!("stopping worker {}: {error}", child.pid);
                }
            }
        }
        // The stop that brought us here was taken already; anything now is a second one.
        let reactor = Reactor::current();
        let mut killed = false;
        while !self.children.is_empty() {
            self.reap(&reactor);
            if self.children.is_empty() {
                break;
            }
            let pending = fio_sys::take_pending_signals();
            if !killed && (pending.contains(Signal::INT) || pending.contains(Signal::TERM)) {
                killed = true;
                for child in &self.children {
                    log::warn!(
                        "cluster root: second stop signal; killing worker {}",
                        child.pid
                    );
                    let _ = fio_sys::kill(child.pid, Signal::KILL);
                }
            }
            thread::sleep(STOP_POLL);
        }
        log::info!("cluster root: all workers stopped");
    }
}

/// A listener bound to every address is reached on loopback.
fn unspecified_to_loopback(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), address.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), address.port())
        }
        _ => address,
    }
}

/// The respawn delay after `failures` boot failures in a row.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX)
}

/// Catches the root's signals, returning the dispositions they replace.
fn catch_root_signals() -> Result<Vec<SavedAction>, Error> {
    let mut saved = Vec::with_capacity(ROOT_SIGNALS.len());
    for signal in ROOT_SIGNALS {
        match fio_sys::catch_signal(signal) {
            Ok(previous) => saved.push(previous),
            Err(source) => {
                restore(saved);
                return Err(Error::Cluster {
                    what: "installing the root's signal handlers".to_owned(),
                    source,
                });
            }
        }
    }
    // Whatever was recorded before belongs to no one.
    let _ = fio_sys::take_pending_signals();
    Ok(saved)
}

/// Puts saved dispositions back, newest first.
pub(crate) fn restore(saved: Vec<SavedAction>) {
    for action in saved.into_iter().rev() {
        if let Err(error) = action.restore() {
            log::warn!("restoring a signal disposition failed: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), BACKOFF_FIRST);
        assert_eq!(backoff(2), BACKOFF_FIRST * 2);
        assert_eq!(backoff(3), BACKOFF_FIRST * 4);
        assert_eq!(backoff(100), BACKOFF_MAX);
        assert!(backoff(0) <= BACKOFF_FIRST);
    }
}
