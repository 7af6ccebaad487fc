//! One reactor thread: its loop, its own engine, deque and timers, and how other threads wake it.
//!
//! A tick: note the time, turn the previous wait's events into callbacks, adopt timers added
//! from other threads, fire due timers, run a batch of tasks, then wait in the engine. A thread
//! with nothing to do blocks in its engine's wait until the earliest timer deadline; other
//! threads wake it through its [`ThreadSlot`]. The idle hand-shake is the
//! classic one: the thread publishes `idle = true`, fences, then re-checks for work; a producer
//! publishes the work, fences, then checks `idle`. One of the two always sees the other, and the
//! engine's wake is sticky, so no wake-up is lost.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::time::{Duration, Instant};

use crossbeam_deque::Worker;
use parking_lot::Mutex;

use crate::conn::{self, Conns, PlainData};
use crate::defer::{Task, run_task};
use crate::engine::{Backend, Engine, EngineEvent, Wake};
use crate::reactor::{Inner, Reactor, Scope};
use crate::state::CallbackEvent;
use crate::timer::{Timer, TimerHeap};

/// Tasks run per tick before the thread looks at its timers and the stop flag again.
const TASK_BATCH: usize = 64;

thread_local! {
    /// The reactor thread running on this OS thread, if any.
    static LOCAL: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
    /// `OnIdle` callbacks run as tasks on this thread since the last look: they don't count
    /// as work, or going idle would schedule them again and again.
    static IDLE_TASKS: Cell<usize> = const { Cell::new(0) };
}

/// What other threads see of a reactor thread: how to wake it and whether it needs waking.
pub(crate) struct ThreadSlot {
    /// Ends the thread's engine wait.
    waker: Arc<dyn Wake>,
    /// True while the thread is (about to be) blocked in its engine; producers that see it
    /// swap it to false and wake the thread, so one wake serves one idle period.
    idle: AtomicBool,
    /// Connection operations other threads routed to this one.
    inbox: Mutex<Vec<Task>>,
    /// Lets the thread skip the inbox lock on every tick.
    has_inbox: AtomicBool,
}

impl ThreadSlot {
    /// A slot for a thread whose engine `waker` ends.
    pub(crate) fn new(waker: Arc<dyn Wake>) -> Self {
        Self {
            waker,
            idle: AtomicBool::new(false),
            inbox: Mutex::new(Vec::new()),
            has_inbox: AtomicBool::new(false),
        }
    }

    /// Queues a connection operation for this thread and wakes it if it is idle.
    pub(crate) fn post(&self, task: Task) {
        self.inbox.lock().push(task);
        self.has_inbox.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.wake_if_idle();
    }

    /// Whether operations wait in the inbox.
    pub(crate) fn has_inbox(&self) -> bool {
        self.has_inbox.load(Ordering::SeqCst)
    }

    /// Takes the operations routed here.
    pub(crate) fn take_inbox(&self) -> Vec<Task> {
        if !self.has_inbox() {
            return Vec::new();
        }
        let mut inbox = self.inbox.lock();
        self.has_inbox.store(false, Ordering::SeqCst);
        std::mem::take(&mut *inbox)
    }

    /// Wakes the thread if it is idle; returns whether it was.
    pub(crate) fn wake_if_idle(&self) -> bool {
        if self.idle.load(Ordering::Relaxed) && self.idle.swap(false, Ordering::AcqRel) {
            self.wake();
            true
        } else {
            false
        }
    }

    /// Wakes the thread unconditionally (stop, shutdown).
    pub(crate) fn wake(&self) {
        if let Err(error) = self.waker.wake() {
            log::error!("waking a reactor thread failed: {error}");
        }
    }
}

impl fmt::Debug for ThreadSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadSlot")
            .field("idle", &self.idle.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The state a reactor thread owns; reachable from user callbacks on that thread through
/// [`Local::current`], which is how `defer` and `run_every` find the local deque and heap.
pub(crate) struct Local {
    /// The reactor this thread belongs to.
    inner: Arc<Inner>,
    /// Index among the reactor's threads; 0 is the thread that called `start`.
    index: usize,
    /// This thread's end of the work-stealing deque.
    worker: Worker<Task>,
    /// This thread's timers; borrowed only briefly, never while user code runs.
    timers: RefCell<TimerHeap>,
    /// This thread's engine; borrowed only briefly, never while user code runs.
    pub(crate) engine: RefCell<Backend>,
    /// The connections this thread owns; borrowed only briefly, never while user code runs.
    pub(crate) conns: RefCell<Conns>,
    /// The connection whose `on_data` runs, when its own reads and writes may skip `conns`.
    pub(crate) plain_data: PlainData,
    /// The latest wait deadline and its [`Inner::nanos_since_origin`]: the deadline (the
    /// timeout sweep's, mostly) stays the same for many ticks, so its conversion is cached.
    deadline_nanos: Cell<Option<(Instant, u64)>>,
    /// Engine waits so far: tests tell by it which tick ran a callback.
    #[cfg(test)]
    pub(crate) waits: Cell<u64>,
}

impl Local {
    /// The reactor thread on this OS thread, if it belongs to `inner`'s reactor.
    pub(crate) fn current(inner: &Arc<Inner>) -> Option<Rc<Local>> {
        LOCAL.with(|local| {
            local
                .borrow()
                .as_ref()
                .filter(|local| Arc::ptr_eq(&local.inner, inner))
                .cloned()
        })
    }

    /// The reactor thread on this OS thread, whichever reactor it belongs to.
    pub(crate) fn on_this_thread() -> Option<Rc<Local>> {
        LOCAL.with(|local| local.borrow().clone())
    }

    /// Runs `op` with the reactor thread on this OS thread, without cloning its `Rc`: the
    /// per-request fast paths use it. `None` when this is no reactor thread.
    ///
    /// `op` must run no user code: `LOCAL` stays borrowed meanwhile, and a reactor started
    /// inside a callback installs itself there.
    #[inline]
    pub(crate) fn with_this_thread<R>(op: impl FnOnce(&Local) -> R) -> Option<R> {
        // `try_with` (inlined) rather than `with`, which the compiler may leave out of line in
        // the per-request paths (a profile counted ~50 instructions per `read` for it); during
        // the thread's teardown this is then no reactor thread rather than a panic.
        LOCAL
            .try_with(|local| local.try_borrow().ok()?.as_deref().map(op))
            .ok()
            .flatten()
    }

    /// Runs `op` on reactor thread `thread` of `inner`: at once when `here` (the caller's
    /// reactor thread, if it is one) is that thread, else through that thread's inbox on its
    /// next tick; not at all if the reactor is gone by then.
    pub(crate) fn run_on<F>(inner: &Arc<Inner>, here: Option<&Local>, thread: usize, op: F)
    where
        F: FnOnce(&Local) + Send + 'static,
    {
        Self::run_on_scoped(inner, here, thread, Scope::Any, op);
    }

    /// [`run_on`](Self::run_on) for a listener or connector, which a cluster's root and
    /// workers run according to `scope` when it is parked before `start`.
    pub(crate) fn run_on_scoped<F>(
        inner: &Arc<Inner>,
        here: Option<&Local>,
        thread: usize,
        scope: Scope,
        op: F,
    ) where
        F: FnOnce(&Local) + Send + 'static,
    {
        if let Some(local) = here.filter(|local| local.index == thread) {
            op(local);
            return;
        }
        let owner = Arc::clone(inner);
        inner.post_scoped(
            thread,
            scope,
            Box::new(move || {
                if let Some(local) = Local::current(&owner) {
                    op(&local);
                }
            }),
        );
    }

    /// The reactor this thread belongs to.
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// This thread's index among the reactor's threads.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Queues a task on this thread's own deque.
    pub(crate) fn push_task(&self, task: Task) {
        self.worker.push(task);
    }

    /// Adds a timer to this thread's heap.
    pub(crate) fn push_timer(&self, timer: Timer) {
        self.timers.borrow_mut().push(timer);
    }

    /// Runs this thread's and the injector's tasks until none is left (`defer_perform` on a
    /// reactor thread).
    pub(crate) fn perform_all(&self) {
        while let Some(task) = self.inner.queue.find(self.index, &self.worker) {
            run_task(task);
        }
    }

    /// Whether this thread's deque holds tasks.
    pub(crate) fn has_local_tasks(&self) -> bool {
        !self.worker.is_empty()
    }

    /// Runs up to [`TASK_BATCH`] tasks; returns how many ran, and how many of them were work
    /// (not `OnIdle` callbacks).
    fn run_batch(&self) -> (usize, usize) {
        // Looking is cheaper than a failed search (a steal attempt on every queue), and a
        // server's tick mostly finds no task.
        if self.worker.is_empty() && !self.inner.queue.has_queue_besides(self.index) {
            return (0, 0);
        }
        let idle_before = IDLE_TASKS.with(Cell::get);
        let mut ran = 0;
        while ran < TASK_BATCH {
            let Some(task) = self.inner.queue.find(self.index, &self.worker) else {
                break;
            };
            run_task(task);
            ran += 1;
        }
        let idle = IDLE_TASKS.with(Cell::get).wrapping_sub(idle_before);
        (ran, ran.saturating_sub(idle))
    }

    /// The reactor went idle: schedules each `OnIdle` callback as a task (facil.io schedules
    /// them rather than running them during the event), so idle threads may run them
    /// concurrently.
    fn schedule_idle(&self) {
        // Looked up without the lists' lock: this runs each time the reactor goes idle,
        // which a loaded server does nearly every tick, and most register no `OnIdle`.
        if !self.inner.callbacks.has(CallbackEvent::OnIdle) {
            return;
        }
        for callback in self.inner.callbacks.snapshot(CallbackEvent::OnIdle) {
            self.push_task(Box::new(move || {
                IDLE_TASKS.with(|count| count.set(count.get().wrapping_add(1)));
                callback();
            }));
            self.inner.wake_one();
        }
    }

    /// Fires every timer due at `now`; returns how many fired.
    fn fire_timers(&self, now: Instant) -> usize {
        let mut fired = 0;
        // Bounded: a rescheduled timer is due strictly after `now`, so each timer fires once.
        loop {
            let due = self.timers.borrow_mut().pop_due(now);
            let Some(timer) = due else { break };
            fired += 1;
            if let Some(again) = timer.fire(now) {
                self.timers.borrow_mut().push(again);
            }
        }
        fired
    }

    /// Whether there is anything to do before blocking. A timer already due needs no look
    /// here: the wait's timeout until it is zero.
    fn has_work(&self, slot: &ThreadSlot) -> bool {
        self.has_local_tasks()
            || self.inner.queue.has_queue_besides(self.index)
            || self.inner.has_timer_inbox()
            || self.inner.should_shut_down(self.index)
            || (self.inner.threads_should_exit() && self.conns.borrow().shutdown.is_none())
            || conn::has_work(self, slot)
    }

    /// The wait's timeout until `deadline` from a tick that began `now_nanos` after the clock
    /// origin: `deadline.saturating_duration_since(now)`, without converting an `Instant`
    /// on every tick.
    fn timeout_until(&self, deadline: Instant, now_nanos: u64) -> Duration {
        let deadline_nanos = match self.deadline_nanos.get() {
            Some((cached, nanos)) if cached == deadline => nanos,
            _ => {
                let nanos = self.inner.nanos_since_origin(deadline);
                self.deadline_nanos.set(Some((deadline, nanos)));
                nanos
            }
        };
        Duration::from_nanos(deadline_nanos.saturating_sub(now_nanos))
    }

    /// Waits in the engine for IO: without blocking when `busy`, else (the thread is idle)
    /// until an event, a wake, the next timer deadline or the connections' next deadline.
    ///
    /// `now_nanos` is the tick's start after the clock origin: an idle tick ran no timer, task
    /// or connection work since, so reading the clock again would tell the same, unless it
    /// `dispatched` a wait's events (callbacks that may have taken a while).
    fn poll(
        &self,
        busy: bool,
        mut now_nanos: u64,
        dispatched: bool,
        slot: &ThreadSlot,
        events: &mut Vec<EngineEvent>,
    ) {
        let inner = &self.inner;
        if busy {
            let since = inner.monotonic_at(now_nanos);
            let waited = self
                .engine
                .borrow_mut()
                .wait_since(Some(Duration::ZERO), since, events);
            if let Err(error) = waited {
                self.engine_failed(&error);
            }
            return;
        }
        let visit = inner.enter_idle();
        if visit.went_idle {
            // The last busy thread went idle after real work: the reactor is idle.
            self.schedule_idle();
        }
        // The store may be relaxed: the SeqCst fence after it orders it before the work
        // checks below, and a producer publishes its work, then runs a SeqCst fence, then
        // reads `idle`. The two fences are ordered one way or the other: if ours comes first,
        // the producer's read sees `idle` true and wakes us; if theirs does, our checks see
        // the work. One fence (no locked store besides) is the whole cost per idle tick.
        slot.idle.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let timeout = if self.has_work(slot) {
            Some(Duration::ZERO)
        } else {
            let timer = self.timers.borrow().next_deadline();
            // A timer due while the events' callbacks ran must not wait for their duration
            // longer; the connections' once-a-second deadlines can.
            if dispatched && timer.is_some() {
                now_nanos = inner.nanos_now();
            }
            let deadline = match (timer, conn::next_deadline(self)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            deadline.map(|deadline| self.timeout_until(deadline, now_nanos))
        };
        // The timeout counts from `now_nanos`: a wait the engine must repeat ends at the
        // deadline without reading the clock first.
        let since = inner.monotonic_at(now_nanos);
        let waited = self.engine.borrow_mut().wait_since(timeout, since, events);
        if let Err(error) = waited {
            self.engine_failed(&error);
        }
        // Relaxed too: it only spares producers needless wakes while the thread runs, and
        // the next idle period's store follows it in `idle`'s modification order anyway.
        slot.idle.store(false, Ordering::Relaxed);
        inner.leave_idle(visit);
    }

    /// A broken engine can't be waited on again without spinning: stop the reactor.
    fn engine_failed(&self, error: &std::io::Error) {
        log::error!("reactor thread {} engine wait failed: {error}", self.index);
        Reactor::from_inner(Arc::clone(&self.inner)).stop();
    }
}

impl fmt::Debug for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local")
            .field("index", &self.index)
            .field("timers", &self.timers.borrow())
            .finish_non_exhaustive()
    }
}

/// In a freshly forked child: leaks the reactor thread the fork happened on, without running
/// any of its drops (its engine and sockets are shared with the parent, and closing or
/// deregistering them here could disturb the parent's).
pub(crate) fn forget_after_fork() {
    LOCAL.with(|local| std::mem::forget(local.borrow_mut().take()));
}

/// Installs a reactor thread in `LOCAL` and the current-reactor slot for its lifetime.
struct LocalGuard {
    /// What `LOCAL` held before, restored on drop (a reactor started inside another's callback).
    previous: Option<Rc<Local>>,
}

impl LocalGuard {
    fn install(local: Rc<Local>) -> Self {
        let previous = LOCAL.with(|slot| slot.borrow_mut().replace(local));
        Self { previous }
    }
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        LOCAL.with(|slot| *slot.borrow_mut() = previous);
    }
}

/// Runs reactor thread `index` until the reactor tells its threads to exit.
///
/// Thread 0 (the one that called `start`) also notices the stop request and runs the
/// `OnShutdown` callbacks while the other threads still work, then tells every thread to exit.
/// On the way out the thread hands its queued tasks to the injector (they run before `start`
/// returns) and drops its timers, which runs their `on_finish`.
pub(crate) fn run(
    inner: Arc<Inner>,
    index: usize,
    engine: Backend,
    worker: Worker<Task>,
    slot: Arc<ThreadSlot>,
) {
    let _current = crate::reactor::CurrentGuard::install(Reactor::from_inner(Arc::clone(&inner)));
    let local = Rc::new(Local {
        inner: Arc::clone(&inner),
        index,
        worker,
        timers: RefCell::new(TimerHeap::default()),
        engine: RefCell::new(engine),
        conns: RefCell::new(Conns::default()),
        plain_data: PlainData::default(),
        deadline_nanos: Cell::new(None),
        #[cfg(test)]
        waits: Cell::new(0),
    });
    let guard = LocalGuard::install(Rc::clone(&local));
    let mut events = Vec::new();
    loop {
        let (now, now_nanos) = inner.read_clock();
        // The previous wait's events, dispatched as its tick's last step used to be, but
        // after this tick's clock reading: one reading serves both.
        let dispatched = !events.is_empty();
        if dispatched {
            inner.note_work();
            conn::dispatch_at(&local, &mut events, now);
        }
        if inner.should_shut_down(index) {
            inner.shut_down();
        }
        if inner.threads_should_exit() {
            if local.conns.borrow().shutdown.is_none() {
                conn::begin_shutdown(&local, now);
            }
            if conn::progress(&local, now) {
                break;
            }
        }
        inner.touch(now_nanos);
        if inner.has_timer_inbox() {
            for timer in inner.take_timer_inbox() {
                local.push_timer(timer);
            }
        }
        let fired = local.fire_timers(now);
        let (ran, worked) = local.run_batch();
        let handled = conn::tick(&local, &slot, now);
        if worked + handled > 0 {
            inner.note_work();
        }
        local.poll(
            fired + ran + handled > 0,
            now_nanos,
            dispatched,
            &slot,
            &mut events,
        );
        #[cfg(test)]
        local.waits.set(local.waits.get() + 1);
    }
    conn::finish_shutdown(&local);
    // Operations routed here too late find their connections closed (attach runs on_close).
    for task in slot.take_inbox() {
        run_task(task);
    }
    drop(guard);
    inner.queue.adopt(&local.worker);
    let timers = local.timers.borrow_mut().drain();
    drop(timers);
}
