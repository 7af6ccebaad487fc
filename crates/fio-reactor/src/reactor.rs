//! The reactor as a value: its shared state, `start` (which blocks until stopped) and `stop`.
//!
//! A [`Reactor`] is a cheap handle (`Arc` inside). The process has a default one that the free
//! functions use; inside a reactor's callbacks and on its threads, the free functions act on
//! that reactor instead (the thread-local *current reactor*).

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{OnceLock, Weak};
use std::time::{Duration, Instant};

use crossbeam_deque::Stealer;
use parking_lot::{Mutex, RwLock};

use crate::args::{StartArgs, expected_concurrency};
use crate::crew::Crew;
use crate::defer::{DeferQueue, Task};
use crate::engine::{self, EngineKind, select_engine};
use crate::error::Error;
use crate::process::{self, Role};
use crate::signal;
use crate::state::{CallbackEvent, CallbackId, StateCallbacks};
use crate::thread::{Local, ThreadSlot};
use crate::timer::{Repeat, Timer};

/// Nanoseconds in a second.
const NANOS_PER_SEC: u64 = 1_000_000_000;

thread_local! {
    /// The reactor the free functions act on from this thread, when it is not the default.
    static CURRENT: RefCell<Option<Reactor>> = const { RefCell::new(None) };
}

/// The process's default reactor, built on first use with [`StartArgs::default`].
static DEFAULT: OnceLock<Reactor> = OnceLock::new();

/// Every reactor of this process whose `start` is in progress, so the free
/// [`stop`](crate::stop) called off the reactor (a plain thread) finds the one the program
/// built, not only the default. Weak: a running reactor is kept alive by its `start` call.
static RUNNING: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// An IO reactor: its threads, defer queue, timers and state callbacks.
///
/// Build one with [`Reactor::new`] and run it with [`Reactor::start`], which blocks until
/// [`Reactor::stop`]. Clones share the same reactor, so callbacks and other threads can hold
/// one. Most applications use the free functions instead ([`start`](crate::start),
/// [`defer`](crate::defer), ...), which act on the process's default reactor, or inside a
/// callback on the reactor running it.
///
/// A callback that captures a clone of its own reactor keeps the reactor alive (a reference
/// cycle), so its `AtExit` callbacks won't run; inside callbacks use the free functions or
/// [`Reactor::current`] instead.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use fio_reactor::{Concurrency, Reactor, StartArgs};
///
/// let two = Concurrency::exactly(2).expect("2 > 0");
/// let reactor = Reactor::new(StartArgs::new().threads(two).signals(false));
/// let done = Arc::new(AtomicUsize::new(0));
/// for _ in 0..100 {
///     let done = Arc::clone(&done);
///     reactor.defer(move || {
///         if done.fetch_add(1, Ordering::SeqCst) + 1 == 100 {
///             fio_reactor::stop(); // acts on the reactor running this task
///         }
///     });
/// }
/// reactor.start()?;
/// assert_eq!(done.load(Ordering::SeqCst), 100);
/// # Ok::<(), fio_reactor::Error>(())
/// ```
#[derive(Clone)]
pub struct Reactor {
    /// Shared with every clone and every reactor thread.
    inner: Arc<Inner>,
}

/// A reactor thread's pass through its idle path, from [`Inner::enter_idle`] to
/// [`Inner::leave_idle`].
#[derive(Debug)]
#[must_use = "hand the visit back to `leave_idle`"]
pub(crate) struct IdleVisit {
    /// The thread was counted in `idle_threads` (more than one thread runs).
    counted: bool,
    /// The whole reactor just went idle after doing work: `OnIdle` is due.
    pub(crate) went_idle: bool,
}

/// The state shared by a reactor's handles and threads.
pub(crate) struct Inner {
    /// The arguments the next `start` uses.
    args: Mutex<StartArgs>,
    /// Deferred tasks (injector plus the running threads' stealers).
    pub(crate) queue: DeferQueue,
    /// Life-cycle callbacks.
    pub(crate) callbacks: StateCallbacks,
    /// Timers added from threads that aren't this reactor's; a reactor thread adopts them into
    /// its own heap on its next tick.
    timer_inbox: Mutex<Vec<Timer>>,
    /// Lets threads skip the inbox lock on every tick.
    has_timer_inbox: AtomicBool,
    /// Connection operations for a thread that isn't running (a `listen` before `start`), by
    /// thread index and by the processes they belong to; the thread runs the ones its process
    /// serves on its first tick (a cluster's root keeps the workers' ones for the next fork).
    parked: Mutex<Vec<(usize, Scope, Task)>>,
    /// Lets threads skip the parked lock on every tick.
    has_parked: AtomicBool,
    /// The running threads' wake handles, by thread index; empty when not running.
    slots: RwLock<Vec<Arc<ThreadSlot>>>,
    /// How many threads run (for idle detection).
    thread_count: AtomicUsize,
    /// Round-robin counter choosing the thread that owns the next accepted connection.
    next_owner: AtomicUsize,
    /// How many threads are currently in their idle path.
    idle_threads: AtomicUsize,
    /// Set when tasks ran since the last `OnIdle`, so `OnIdle` fires once per busy period.
    did_work: AtomicBool,
    /// `start` is in progress.
    running: AtomicBool,
    /// `stop` was called during this run.
    stop_requested: AtomicBool,
    /// Thread 0 has begun the shutdown sequence (`OnShutdown` runs once).
    shutdown_started: AtomicBool,
    /// Every reactor thread should leave its loop.
    exit_threads: AtomicBool,
    /// How many threads have begun shutting their connections down (this run).
    shutdown_begun: AtomicUsize,
    /// How many threads still have connections that aren't lingering (`on_shutdown`'s `KeepOpen`):
    /// lingering connections close once this is 0 on every thread.
    shutdown_draining: AtomicUsize,
    /// Reference point for `last_tick`, which is kept as nanoseconds after it.
    clock_origin: Instant,
    /// The [`fio_sys::monotonic_nanos`] reading taken just after `clock_origin`: ticks read
    /// the clock that way and count from here, so their instants trail the real ones by the
    /// few nanoseconds between the two readings, never lead them.
    clock_origin_nanos: u64,
    /// When a thread last began a tick, in nanoseconds after `clock_origin`.
    last_tick_nanos: AtomicU64,
    /// The engine chosen by the latest `start`.
    engine: Mutex<Option<EngineKind>>,
    /// `OnInitialize` has run.
    initialized: AtomicBool,
    /// `AtExit` has run (at the end of the free `start`, or on drop).
    at_exit_done: AtomicBool,
}

impl Reactor {
    /// Creates a reactor that will run with `args`; nothing starts until [`start`](Self::start).
    ///
    /// # Examples
    /// ```
    /// let reactor = fio_reactor::Reactor::new(fio_reactor::StartArgs::default());
    /// assert!(!reactor.is_running());
    /// ```
    pub fn new(args: StartArgs) -> Self {
        // Read first: the tick clock's origin must not come before it (see `clock_origin_nanos`).
        let clock_origin = Instant::now();
        Self::from_inner(Arc::new(Inner {
            args: Mutex::new(args),
            queue: DeferQueue::new(),
            callbacks: StateCallbacks::new(),
            timer_inbox: Mutex::new(Vec::new()),
            has_timer_inbox: AtomicBool::new(false),
            parked: Mutex::new(Vec::new()),
            has_parked: AtomicBool::new(false),
            slots: RwLock::new(Vec::new()),
            thread_count: AtomicUsize::new(0),
            next_owner: AtomicUsize::new(0),
            idle_threads: AtomicUsize::new(0),
            did_work: AtomicBool::new(false),
            running: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            shutdown_started: AtomicBool::new(false),
            exit_threads: AtomicBool::new(false),
            shutdown_begun: AtomicUsize::new(0),
            shutdown_draining: AtomicUsize::new(0),
            clock_origin,
            clock_origin_nanos: fio_sys::monotonic_nanos(),
            last_tick_nanos: AtomicU64::new(0),
            engine: Mutex::new(None),
            initialized: AtomicBool::new(false),
            at_exit_done: AtomicBool::new(false),
        }))
    }

    /// A weak reference, for holders that must not keep the reactor alive (signals).
    pub(crate) fn downgrade(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    /// The shared state (for the connection layer, which routes to a reactor's threads).
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Wraps shared state in a handle.
    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The reactor the free functions act on from this thread: the one running the current
    /// callback or reactor thread, else the process's default reactor.
    ///
    /// # Examples
    /// ```
    /// let a = fio_reactor::Reactor::current();
    /// let b = fio_reactor::Reactor::current();
    /// assert!(a.same_as(&b));
    /// ```
    pub fn current() -> Self {
        CURRENT
            .with(|current| current.borrow().clone())
            .unwrap_or_else(|| {
                DEFAULT
                    .get_or_init(|| {
                        // The default reactor is never dropped: its `AtExit` runs at process
                        // exit unless the free `start` already ran it.
                        if let Err(error) = fio_sys::at_exit(default_reactor_at_exit) {
                            log::warn!("the default reactor's AtExit can't run at exit: {error}");
                        }
                        Self::new(StartArgs::default())
                    })
                    .clone()
            })
    }

    /// The reactor running on this thread (a reactor thread, or a callback's), if any; unlike
    /// [`current`](Self::current), never the default reactor.
    pub(crate) fn on_this_thread() -> Option<Self> {
        CURRENT.with(|current| current.borrow().clone())
    }

    /// Stops every reactor of this process that is running; see [`stop`](crate::stop).
    pub(crate) fn stop_running() {
        let running: Vec<Self> = RUNNING
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .map(Self::from_inner)
            .collect();
        for reactor in running {
            reactor.stop();
        }
    }

    /// Whether two handles refer to the same reactor.
    ///
    /// # Examples
    /// ```
    /// let reactor = fio_reactor::Reactor::new(Default::default());
    /// assert!(reactor.same_as(&reactor.clone()));
    /// assert!(!reactor.same_as(&fio_reactor::Reactor::new(Default::default())));
    /// ```
    pub fn same_as(&self, other: &Reactor) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The arguments the next [`start`](Self::start) will use.
    pub fn args(&self) -> StartArgs {
        *self.inner.args.lock()
    }

    /// Runs the reactor on this thread plus `threads - 1` more, until [`stop`](Self::stop).
    ///
    /// In order: `OnInitialize` (first start only), `PreStart`, `OnStart`, then the threads run
    /// deferred tasks and timers. After `stop` (or SIGINT/SIGTERM when this reactor owns the
    /// signals, see [`StartArgs::signals`]): `OnShutdown` while the threads still run, the
    /// threads stop (their timers' `on_finish` run), tasks still queued run, `OnFinish`, and the
    /// previous signal handlers are restored.
    ///
    /// # Errors
    /// - [`Error::ClusterRequired`] when the arguments resolve to more than one worker process
    ///   and no [`cluster::ProcessManager`](crate::cluster::ProcessManager) is installed (with
    ///   one, the run is the manager's: `fio-cluster` forks the workers);
    /// - [`Error::AlreadyRunning`] when this reactor is already running;
    /// - [`Error::Engine`] when a thread's engine can't be created (each thread builds its own,
    ///   on itself, before any callback runs; none has run);
    /// - [`Error::SpawnThread`] when a reactor thread can't be spawned (no callbacks have run);
    /// - [`Error::Signal`] when the signal handlers can't be installed (no callbacks have run).
    ///
    /// # Examples
    /// See [`Reactor`].
    pub fn start(&self) -> Result<(), Error> {
        let args = self.args();
        self.run(args)
    }

    /// `start` with explicit arguments, which are also stored for later starts.
    pub(crate) fn start_with(&self, args: StartArgs) -> Result<(), Error> {
        if self.inner.running.load(Ordering::Acquire) {
            return Err(Error::AlreadyRunning);
        }
        *self.inner.args.lock() = args;
        self.run(args)
    }

    /// The body of `start`.
    fn run(&self, args: StartArgs) -> Result<(), Error> {
        let (threads, workers) = expected_concurrency(args.threads, args.workers);
        if workers > 1 && process::role() == Role::Single {
            return match crate::cluster::manager() {
                Some(manager) => manager.start(self, args, workers),
                None => Err(Error::ClusterRequired { workers }),
            };
        }
        self.run_threads(args, threads)
    }

    /// Runs `threads` reactor threads in this process, in its [`Role`]: a cluster's root skips
    /// `OnStart` (it is a worker event), a worker skips `OnInitialize` and `PreStart` (the root
    /// ran them).
    pub(crate) fn run_threads(&self, args: StartArgs, threads: u16) -> Result<(), Error> {
        let role = process::role();
        let inner = &self.inner;
        if inner
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(Error::AlreadyRunning);
        }
        for flag in [
            &inner.stop_requested,
            &inner.shutdown_started,
            &inner.exit_threads,
        ] {
            flag.store(false, Ordering::SeqCst);
        }
        inner.shutdown_begun.store(0, Ordering::SeqCst);
        inner.shutdown_draining.store(0, Ordering::SeqCst);
        // Listed for the free `stop` only now, so its request isn't reset by the lines above.
        let _running = RunningGuard::enter(inner);
        let kind = Self::choose_engine(args.engine);
        // Every thread builds its engine (on itself) before any callback runs, so a failure
        // leaves no trace.
        let crew = Crew::assemble(inner, kind, usize::from(threads))?;
        // Report the engine that actually runs, which is the backend's to say.
        *inner.engine.lock() = Some(crew.kind());
        let _current = CurrentGuard::install(self.clone());
        let _signals = if args.signals {
            signal::claim(self)?
        } else {
            None
        };
        process::note_root();
        if !inner.initialized.swap(true, Ordering::AcqRel) {
            inner.callbacks.force(CallbackEvent::OnInitialize);
        }
        if role != Role::Worker {
            inner.callbacks.force(CallbackEvent::PreStart);
        }
        if role != Role::Root {
            inner.callbacks.force(CallbackEvent::OnStart);
        }
        crew.run();
        self.finish();
        Ok(())
    }

    /// Resolves the engine (`FIO_ENGINE` when `requested` is `None`), logging a fallback once.
    fn choose_engine(requested: Option<EngineKind>) -> EngineKind {
        let requested = requested.or_else(|| {
            EngineKind::from_env().unwrap_or_else(|error| {
                log::warn!("ignoring {}: {error}", engine::ENGINE_VAR);
                None
            })
        });
        let (kind, fallback) = select_engine(requested);
        if let Some(fallback) = fallback {
            fallback.warn_once(kind);
        }
        kind
    }

    /// The tear-down after the threads stopped: leftovers, timers, `OnFinish`.
    fn finish(&self) {
        let inner = &self.inner;
        inner.slots.write().clear();
        inner.thread_count.store(0, Ordering::SeqCst);
        inner.queue.clear_stealers();
        inner.queue.drain_leftovers();
        // Timers added from outside that no thread adopted end here, running their on_finish.
        drop(inner.take_timer_inbox());
        inner.callbacks.force(CallbackEvent::OnFinish);
    }

    /// Asks the reactor to stop; `start` returns once the shutdown sequence is done.
    ///
    /// Safe to call from any thread and from inside callbacks; a no-op when not running.
    ///
    /// # Examples
    /// ```
    /// let reactor = fio_reactor::Reactor::new(Default::default());
    /// reactor.stop(); // not running: nothing happens
    /// assert!(!reactor.is_running());
    /// ```
    pub fn stop(&self) {
        let inner = &self.inner;
        if inner.running.load(Ordering::Acquire) {
            inner.stop_requested.store(true, Ordering::SeqCst);
            inner.wake_all();
        }
    }

    /// Whether `start` is in progress (between its start-up and its return).
    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::Acquire)
    }

    /// When a reactor thread last began a tick (reviewed its queues, timers and events), on the
    /// monotonic clock; the reactor's creation time before its first tick.
    ///
    /// # Examples
    /// ```
    /// let reactor = fio_reactor::Reactor::new(Default::default());
    /// assert!(reactor.last_tick() <= std::time::Instant::now());
    /// ```
    pub fn last_tick(&self) -> Instant {
        let nanos = self.inner.last_tick_nanos.load(Ordering::Relaxed);
        self.inner.clock_origin + Duration::from_nanos(nanos)
    }

    /// The engine's name (`"io_uring"` or `"epoll"`): the one the latest
    /// `start` chose, or the one the next `start` would choose.
    ///
    /// # Examples
    /// ```
    /// let reactor = fio_reactor::Reactor::new(Default::default());
    /// assert!(["io_uring", "epoll"].contains(&reactor.engine()));
    /// ```
    pub fn engine(&self) -> &'static str {
        if let Some(kind) = *self.inner.engine.lock() {
            return kind.name();
        }
        let requested = self
            .args()
            .engine
            .or_else(|| EngineKind::from_env().ok().flatten());
        select_engine(requested).0.name()
    }

    /// Queues a task to run on one of the reactor's threads.
    ///
    /// From a reactor thread the task goes to that thread's own queue (idle threads steal from
    /// it); from anywhere else it goes to the shared queue. Either way any reactor thread may
    /// run it (idle threads steal), so what it shares needs `Send + Sync` sharing (see the
    /// crate docs' "Threads and callbacks"). Tasks deferred before `start` run once it starts.
    /// A panicking task is logged and the thread goes on.
    ///
    /// # Examples
    /// ```
    /// let reactor = fio_reactor::Reactor::new(Default::default());
    /// reactor.defer(|| println!("later"));
    /// assert!(reactor.defer_has_queue());
    /// reactor.defer_perform();
    /// assert!(!reactor.defer_has_queue());
    /// ```
    pub fn defer<F>(&self, task: F)
    where
        F: FnOnce() + Send + 'static,
    {
        let task: Task = Box::new(task);
        match Local::current(&self.inner) {
            Some(local) => local.push_task(task),
            None => self.inner.queue.inject(task),
        }
        self.inner.wake_one();
    }

    /// Runs queued tasks on the calling thread until none is left.
    ///
    /// On one of this reactor's threads it runs that thread's queue, the shared queue and
    /// what it can steal; elsewhere it runs the shared queue (tasks deferred from outside).
    /// Tasks that keep deferring more keep this running.
    pub fn defer_perform(&self) {
        match Local::current(&self.inner) {
            Some(local) => local.perform_all(),
            None => {
                let _current = CurrentGuard::install(self.clone());
                while let Some(task) = self.inner.queue.steal_injected() {
                    crate::defer::run_task(task);
                }
            }
        }
    }

    /// Whether any deferred task is waiting to run.
    pub fn defer_has_queue(&self) -> bool {
        Local::current(&self.inner).is_some_and(|local| local.has_local_tasks())
            || self.inner.queue.has_queue()
    }

    /// Runs `task` every `interval`, as often as `repeat` says ([`Repeat::Forever`] or
    /// [`Repeat::Times`]), until it returns `false`; then, and in every other case, runs
    /// `on_finish` once.
    ///
    /// The first run is one interval from now. Deadlines follow the plan, not the runs, so the
    /// timer doesn't drift; ticks missed while the thread was busy are skipped. The timer lives
    /// on the reactor thread that added it, or (when added from elsewhere) on the first thread
    /// to pick it up; every run and `on_finish` happen on that thread. A panicking task is
    /// logged and ends the timer. When the reactor stops, its timers end; `on_finish` runs
    /// then.
    ///
    /// # Errors
    /// - [`Error::ZeroInterval`] when `interval` is zero; `on_finish` has run by then.
    ///
    /// # Examples
    /// ```
    /// use fio_reactor::Repeat;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::time::Duration;
    /// use fio_reactor::{Concurrency, StartArgs};
    /// let reactor = fio_reactor::Reactor::new(StartArgs::new().threads(Concurrency::ONE).signals(false));
    /// let ticks = Arc::new(AtomicUsize::new(0));
    /// let counted = Arc::clone(&ticks);
    /// let tick = move || {
    ///     counted.fetch_add(1, Ordering::SeqCst);
    ///     true
    /// };
    /// // The third tick ends the timer, whose on_finish stops the reactor.
    /// let three = Repeat::times(3).expect("3 is not zero");
    /// reactor.run_every(Duration::from_millis(1), three, tick, fio_reactor::stop)?;
    /// reactor.start()?;
    /// assert_eq!(ticks.load(Ordering::SeqCst), 3);
    /// # Ok::<(), fio_reactor::Error>(())
    /// ```
    pub fn run_every<T, F>(
        &self,
        interval: Duration,
        repeat: Repeat,
        task: T,
        on_finish: F,
    ) -> Result<(), Error>
    where
        T: FnMut() -> bool + Send + 'static,
        F: FnOnce() + Send + 'static,
    {
        let timer = Timer::new(
            Instant::now(),
            interval,
            repeat,
            Box::new(task),
            Box::new(on_finish),
        )?;
        match Local::current(&self.inner) {
            Some(local) => local.push_timer(timer),
            None => {
                let mut inbox = self.inner.timer_inbox.lock();
                inbox.push(timer);
                self.inner.has_timer_inbox.store(true, Ordering::SeqCst);
                drop(inbox);
                self.inner.wake_one();
            }
        }
        Ok(())
    }

    /// Adds a callback for a life-cycle event; see [`CallbackEvent`] for when each runs, and
    /// the crate docs' "Threads and callbacks" for on which thread.
    ///
    /// Adding an `OnInitialize` callback to a reactor that has already started runs it at
    /// once (and keeps it, so forcing the event runs it again).
    ///
    /// # Examples
    /// ```
    /// use fio_reactor::{CallbackEvent, Reactor};
    /// let reactor = Reactor::new(Default::default());
    /// let id = reactor.state_callback_add(CallbackEvent::OnShutdown, || {});
    /// reactor.state_callback_remove(id)?;
    /// # Ok::<(), fio_reactor::Error>(())
    /// ```
    pub fn state_callback_add<F>(&self, event: CallbackEvent, callback: F) -> CallbackId
    where
        F: Fn() + Send + Sync + 'static,
    {
        let callback = Arc::new(callback);
        let late_initialize =
            event == CallbackEvent::OnInitialize && self.inner.initialized.load(Ordering::Acquire);
        let id = self.inner.callbacks.add(event, callback.clone());
        if late_initialize {
            crate::panic::run_caught("state callback", || callback());
        }
        id
    }

    /// Removes a callback added with [`state_callback_add`](Self::state_callback_add).
    ///
    /// # Errors
    /// - [`Error::CallbackNotFound`] when `id` was already removed or cleared, or came from
    ///   another reactor.
    pub fn state_callback_remove(&self, id: CallbackId) -> Result<(), Error> {
        self.inner.callbacks.remove(id)
    }

    /// Runs an event's callbacks now, as if the event happened (FIFO for start-up events,
    /// LIFO for tear-down ones). Callbacks added or removed meanwhile count from the next time.
    ///
    /// # Examples
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use fio_reactor::{CallbackEvent, Reactor};
    /// let reactor = Reactor::new(Default::default());
    /// let order = Arc::new(Mutex::new(Vec::new()));
    /// for n in 1..=2 {
    ///     let order = Arc::clone(&order);
    ///     reactor.state_callback_add(CallbackEvent::OnFinish, move || order.lock().unwrap().push(n));
    /// }
    /// reactor.state_callback_force(CallbackEvent::OnFinish);
    /// assert_eq!(*order.lock().unwrap(), [2, 1]);
    /// ```
    pub fn state_callback_force(&self, event: CallbackEvent) {
        let _current = CurrentGuard::install(self.clone());
        self.inner.callbacks.force(event);
    }

    /// Removes every callback of an event.
    pub fn state_callback_clear(&self, event: CallbackEvent) {
        self.inner.callbacks.clear(event);
    }

    /// Runs the `AtExit` callbacks unless they already ran.
    pub(crate) fn run_at_exit(&self) {
        self.inner.run_at_exit();
    }
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("args", &self.args())
            .field("running", &self.is_running())
            .field("queue", &self.inner.queue)
            .field("callbacks", &self.inner.callbacks)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Publishes a starting reactor's threads: their wake handles and stealers, by index.
    pub(crate) fn install_threads(
        &self,
        slots: Vec<Arc<ThreadSlot>>,
        stealers: Vec<Stealer<Task>>,
    ) {
        self.queue.set_stealers(stealers);
        self.thread_count.store(slots.len(), Ordering::SeqCst);
        self.idle_threads.store(0, Ordering::SeqCst);
        *self.slots.write() = slots;
    }

    /// Reads the clock for a tick: the instant (what timers and connections compare), and the
    /// same reading in nanoseconds after the clock origin (what [`touch`](Self::touch) and the
    /// wait's timeout use). One vDSO call and integer arithmetic: `Instant::now` and then
    /// `duration_since` cost three times as much, in checked `timespec` arithmetic.
    #[inline]
    pub(crate) fn read_clock(&self) -> (Instant, u64) {
        let nanos = self.nanos_now();
        (self.clock_origin + Duration::from_nanos(nanos), nanos)
    }

    /// Now, in nanoseconds after the clock origin (see [`read_clock`](Self::read_clock)).
    #[inline]
    pub(crate) fn nanos_now(&self) -> u64 {
        fio_sys::monotonic_nanos().saturating_sub(self.clock_origin_nanos)
    }

    /// A [`fio_sys::monotonic_nanos`] reading for `nanos` after the clock origin, which is what
    /// an engine's wait counts its timeout from.
    #[inline]
    pub(crate) fn monotonic_at(&self, nanos: u64) -> u64 {
        self.clock_origin_nanos.wrapping_add(nanos)
    }

    /// Records the start of a tick, `nanos` after the clock origin, for `last_tick`.
    #[inline]
    pub(crate) fn touch(&self, nanos: u64) {
        self.last_tick_nanos.store(nanos, Ordering::Relaxed);
    }

    /// `instant` in nanoseconds after the reactor's clock origin (0 before it, saturating
    /// after 584 years): u64 arithmetic, cheaper than `Duration::as_nanos`'s u128 on every tick.
    pub(crate) fn nanos_since_origin(&self, instant: Instant) -> u64 {
        let since = instant.saturating_duration_since(self.clock_origin);
        since
            .as_secs()
            .saturating_mul(NANOS_PER_SEC)
            .saturating_add(u64::from(since.subsec_nanos()))
    }

    /// How many reactor threads run (0 when the reactor isn't running).
    pub(crate) fn running_threads(&self) -> usize {
        self.slots.read().len()
    }

    /// Whether timers wait in the inbox.
    pub(crate) fn has_timer_inbox(&self) -> bool {
        self.has_timer_inbox.load(Ordering::SeqCst)
    }

    /// Takes the timers added from outside the reactor's threads.
    pub(crate) fn take_timer_inbox(&self) -> Vec<Timer> {
        if !self.has_timer_inbox() {
            return Vec::new();
        }
        let mut inbox = self.timer_inbox.lock();
        self.has_timer_inbox.store(false, Ordering::SeqCst);
        std::mem::take(&mut *inbox)
    }

    /// Runs `task` on reactor thread `thread`: through its inbox (waking it) while it runs,
    /// else parked until it does.
    pub(crate) fn post(&self, thread: usize, task: Task) {
        self.post_scoped(thread, Scope::Any, task);
    }

    /// [`post`](Self::post) for an operation that belongs to some processes of a cluster only
    /// (a listener or connector); the scope matters only while it is parked.
    pub(crate) fn post_scoped(&self, thread: usize, scope: Scope, task: Task) {
        let slot = self.slots.read().get(thread).cloned();
        match slot {
            Some(slot) => slot.post(task),
            None => {
                self.parked.lock().push((thread, scope, task));
                self.has_parked.store(true, Ordering::SeqCst);
                self.wake_one();
            }
        }
    }

    /// The thread that owns the next accepted connection: round robin over the running
    /// threads, so connections spread over all of them whichever thread accepts.
    pub(crate) fn next_owner(&self) -> usize {
        let threads = self.thread_count.load(Ordering::Relaxed).max(1);
        self.next_owner.fetch_add(1, Ordering::Relaxed) % threads
    }

    /// Whether operations are parked for some thread.
    pub(crate) fn has_parked(&self) -> bool {
        self.has_parked.load(Ordering::SeqCst)
    }

    /// Takes the operations parked for `thread`.
    pub(crate) fn take_parked(&self, thread: usize) -> Vec<Task> {
        if !self.has_parked() {
            return Vec::new();
        }
        let role = process::role();
        let mut parked = self.parked.lock();
        let (mine, rest): (Vec<_>, Vec<_>) = parked
            .drain(..)
            .partition(|(index, scope, _)| *index == thread && scope.runs_in(role));
        *parked = rest;
        // What stays parked for another process (a cluster's workers) is no work here.
        let waiting = parked.iter().any(|(_, scope, _)| scope.runs_in(role));
        self.has_parked.store(waiting, Ordering::SeqCst);
        mine.into_iter().map(|(_, _, task)| task).collect()
    }

    /// In a freshly forked worker: forgets the root's run (its flags and thread handles; the
    /// root's thread state itself is leaked by [`cluster`](crate::cluster)), and drops the
    /// operations parked for the root only.
    pub(crate) fn reset_after_fork(&self) {
        for flag in [
            &self.running,
            &self.stop_requested,
            &self.shutdown_started,
            &self.exit_threads,
        ] {
            flag.store(false, Ordering::SeqCst);
        }
        // The root's wakers are this process's copies of its descriptors: closing them here
        // touches nothing of the root's.
        self.slots.write().clear();
        self.thread_count.store(0, Ordering::SeqCst);
        self.idle_threads.store(0, Ordering::SeqCst);
        self.queue.clear_stealers();
        // Tasks the root deferred and hasn't run yet are the root's: they run there.
        let root_tasks = std::iter::from_fn(|| self.queue.steal_injected()).count();
        if root_tasks > 0 {
            log::debug!("a forked worker dropped {root_tasks} of the root's deferred tasks");
        }
        *self.engine.lock() = None;
        let root_only: Vec<_> = {
            let mut parked = self.parked.lock();
            let (root_only, keep): (Vec<_>, Vec<_>) = parked
                .drain(..)
                .partition(|(_, scope, _)| *scope == Scope::Master);
            *parked = keep;
            self.has_parked.store(!parked.is_empty(), Ordering::SeqCst);
            root_only
        };
        // Dropped outside the lock: closes this process's copies of the root's sockets.
        drop(root_only);
    }

    /// Notes that tasks ran, so the next time every thread is idle counts as going idle.
    pub(crate) fn note_work(&self) {
        self.did_work.store(true, Ordering::Relaxed);
    }

    /// A thread enters its idle path; `went_idle` is true when the whole reactor just went idle
    /// after doing work (this thread then runs `OnIdle`). Hand the visit back to
    /// [`leave_idle`](Self::leave_idle).
    ///
    /// A loaded server passes here nearly every tick, so the common cases cost no atomic
    /// read-modify-write (each a full barrier): a lone thread is idle exactly while it is here
    /// and isn't counted, and `did_work` is only consumed when an `OnIdle` callback exists (it
    /// stays set meanwhile, so a callback registered later fires on the next idle).
    pub(crate) fn enter_idle(&self) -> IdleVisit {
        // Constant while the threads run: `leave_idle` undoes exactly what this did.
        let threads = self.thread_count.load(Ordering::Relaxed);
        let counted = threads != 1;
        let all_idle = !counted || self.idle_threads.fetch_add(1, Ordering::SeqCst) + 1 == threads;
        let went_idle = all_idle
            && self.callbacks.has(CallbackEvent::OnIdle)
            && self.did_work.swap(false, Ordering::AcqRel)
            && !self.stop_requested.load(Ordering::SeqCst);
        IdleVisit { counted, went_idle }
    }

    /// A thread leaves its idle path.
    pub(crate) fn leave_idle(&self, visit: IdleVisit) {
        if visit.counted {
            self.idle_threads.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether `stop` was called (the reactor is stopping or stopped).
    pub(crate) fn is_stopping(&self) -> bool {
        self.stop_requested.load(Ordering::SeqCst)
    }

    /// Whether thread `index` should begin the shutdown sequence (thread 0 does it, once).
    pub(crate) fn should_shut_down(&self, index: usize) -> bool {
        index == 0
            && self.stop_requested.load(Ordering::SeqCst)
            && !self.shutdown_started.load(Ordering::SeqCst)
    }

    /// Runs `OnShutdown` (the other threads still work meanwhile), then tells every thread to
    /// leave its loop.
    pub(crate) fn shut_down(&self) {
        if self.shutdown_started.swap(true, Ordering::SeqCst) {
            return;
        }
        self.callbacks.force(CallbackEvent::OnShutdown);
        self.exit_threads.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    /// A thread began shutting its connections down; `draining`: some of them are not
    /// lingering, so lingering connections everywhere wait for [`Self::shutdown_drained`].
    pub(crate) fn shutdown_begun(&self, draining: bool) {
        if draining {
            self.shutdown_draining.fetch_add(1, Ordering::SeqCst);
        }
        self.shutdown_begun.fetch_add(1, Ordering::SeqCst);
    }

    /// A thread that was draining has only lingering connections left (or none); the last one
    /// wakes every thread, so lingering connections close at once.
    pub(crate) fn shutdown_drained(&self) {
        if self.shutdown_draining.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.wake_all();
        }
    }

    /// Whether every thread began its shutdown and none has non-lingering connections left:
    /// lingering connections may now close (facil.io: "when all other sockets have finished
    /// their graceful shutdown").
    pub(crate) fn only_lingering_left(&self) -> bool {
        self.shutdown_begun.load(Ordering::SeqCst) >= self.thread_count.load(Ordering::SeqCst)
            && self.shutdown_draining.load(Ordering::SeqCst) == 0
    }

    /// Whether reactor threads should leave their loops.
    pub(crate) fn threads_should_exit(&self) -> bool {
        self.exit_threads.load(Ordering::SeqCst)
    }

    /// Wakes one idle thread, if any, after new work was published.
    pub(crate) fn wake_one(&self) {
        fence(Ordering::SeqCst);
        for slot in self.slots.read().iter() {
            if slot.wake_if_idle() {
                return;
            }
        }
    }

    /// Wakes every thread (stop, shutdown).
    pub(crate) fn wake_all(&self) {
        for slot in self.slots.read().iter() {
            slot.wake();
        }
    }

    /// Runs `AtExit` once.
    fn run_at_exit(&self) {
        if !self.at_exit_done.swap(true, Ordering::AcqRel) {
            self.callbacks.force(CallbackEvent::AtExit);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: the reactor can't run again, so this is its exit.
        self.run_at_exit();
    }
}

/// The process exits normally (`atexit`): runs the default reactor's `AtExit` callbacks,
/// unless they already ran. Each callback's panic is caught and logged; nothing unwinds out.
extern "C" fn default_reactor_at_exit() {
    let run = std::panic::catch_unwind(|| {
        if let Some(reactor) = DEFAULT.get() {
            reactor.inner.run_at_exit();
        }
    });
    if run.is_err() {
        log::error!("the default reactor's AtExit panicked at process exit");
    }
}

/// Which processes of a cluster run a parked connection operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Any process (everything but listeners and connectors).
    Any,
    /// The workers (and a single process): listeners and connectors by default.
    Workers,
    /// The root only (and a single process): `master_only` listeners and connectors.
    Master,
}

impl Scope {
    /// Whether a process in `role` runs operations of this scope.
    pub(crate) fn runs_in(self, role: Role) -> bool {
        match (self, role) {
            (Self::Any, _) | (_, Role::Single) => true,
            (Self::Workers, role) => role == Role::Worker,
            (Self::Master, role) => role == Role::Root,
        }
    }

    /// The scope of a listener or connector.
    pub(crate) fn for_master_only(master_only: bool) -> Self {
        if master_only {
            Self::Master
        } else {
            Self::Workers
        }
    }
}

/// Clears `running` when `start` returns, on every path.
struct RunningGuard<'a>(&'a Arc<Inner>);

impl<'a> RunningGuard<'a> {
    /// Lists `inner` among the process's running reactors until the guard drops.
    fn enter(inner: &'a Arc<Inner>) -> Self {
        RUNNING.lock().push(Arc::downgrade(inner));
        Self(inner)
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
        let me = Arc::as_ptr(self.0);
        // Also forgets the entries of reactors dropped meanwhile (a forked child's copies).
        RUNNING
            .lock()
            .retain(|entry| entry.strong_count() > 0 && entry.as_ptr() != me);
    }
}

/// In a freshly forked child: leaks this thread's current reactor handle (the fork happened
/// inside one of its callbacks, whose frames never return in the child).
pub(crate) fn forget_current_after_fork() {
    CURRENT.with(|current| std::mem::forget(current.borrow_mut().take()));
}

/// Makes a reactor the current one on this thread for a scope.
pub(crate) struct CurrentGuard {
    /// What was current before, restored on drop.
    previous: Option<Reactor>,
}

impl CurrentGuard {
    /// Installs `reactor` as this thread's current reactor until the guard drops.
    pub(crate) fn install(reactor: Reactor) -> Self {
        let previous = CURRENT.with(|current| current.borrow_mut().replace(reactor));
        Self { previous }
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}
