//! State callbacks: user code run at the reactor's life-cycle events (start-up, idle, shutdown).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::Error;
use crate::panic::run_caught;

/// A life-cycle event that state callbacks can be attached to (facil.io's `callback_type_e`).
///
/// Start-up events (up to and including [`OnIdle`](Self::OnIdle)) run their callbacks in the
/// order they were added (FIFO); the events after it ([`OnUsrReverse`](Self::OnUsrReverse) and
/// the tear-down events, [`OnShutdown`](Self::OnShutdown) and after) run them newest first
/// (LIFO), so clean-up unwinds set-up.
///
/// The reactor never raises the pub/sub events ([`OnPubsubConnect`](Self::OnPubsubConnect),
/// [`OnPubsubError`](Self::OnPubsubError), reserved for pub/sub engines) or the user queues
/// ([`OnUsr`](Self::OnUsr), [`OnUsrReverse`](Self::OnUsrReverse)): a program or library
/// raises them with [`state_callback_force`](crate::state_callback_force).
///
/// # Examples
/// A user event queue, run when the program says so:
/// ```
/// use std::sync::{Arc, Mutex};
/// use fio_reactor::{CallbackEvent, Reactor};
/// let reactor = Reactor::new(Default::default());
/// let order = Arc::new(Mutex::new(Vec::new()));
/// for n in 1..=2 {
///     let forward = Arc::clone(&order);
///     reactor.state_callback_add(CallbackEvent::OnUsr, move || forward.lock().unwrap().push(n));
///     let reverse = Arc::clone(&order);
///     reactor.state_callback_add(CallbackEvent::OnUsrReverse, move || {
///         reverse.lock().unwrap().push(10 + n)
///     });
/// }
/// reactor.state_callback_force(CallbackEvent::OnUsr);
/// reactor.state_callback_force(CallbackEvent::OnUsrReverse);
/// assert_eq!(*order.lock().unwrap(), [1, 2, 12, 11]);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallbackEvent {
    /// Once per reactor, the first time it starts (a callback added afterwards runs at once).
    OnInitialize,
    /// Before the reactor starts its threads, each time `start` is called.
    PreStart,
    /// Before each worker fork (raised by `fio-cluster`).
    BeforeFork,
    /// After each fork, in parent and child, before `InChild`/`InMaster` (raised by `fio-cluster`).
    AfterFork,
    /// In a worker right after forking (raised by `fio-cluster`).
    InChild,
    /// In the master after spawning a worker (raised by `fio-cluster`).
    InMaster,
    /// Every time a worker starts; in a single process, once per `start`.
    OnStart,
    /// Reserved for pub/sub engines, which should raise it after they (re)connect to their
    /// backend; the reactor never does.
    OnPubsubConnect,
    /// Reserved for pub/sub engines, which should raise it on a backend connection error; the
    /// reactor never does.
    OnPubsubError,
    /// A user event queue (FIFO): the reactor never raises it; the program forces it.
    OnUsr,
    /// When the reactor goes idle: every thread ran out of work after some work was done.
    /// The callbacks are scheduled as deferred tasks, not run during the event, so with
    /// several threads they may run out of order or concurrently (as facil.io says).
    OnIdle,
    /// A reversed user event queue (LIFO): the reactor never raises it; the program forces it.
    OnUsrReverse,
    /// Before the shutdown sequence starts, while the reactor threads still run.
    OnShutdown,
    /// Just before `start` returns, after the threads have stopped.
    OnFinish,
    /// In each worker that notices the master crashed (raised by `fio-cluster`).
    OnParentCrush,
    /// In the master after a worker crashed (raised by `fio-cluster`).
    OnChildCrush,
    /// When the reactor is done for good, once: for the process's default reactor at the end
    /// of the free [`start`](crate::start), or at process exit (`atexit`: `main` returned or
    /// `std::process::exit`) if `start` didn't run it; for a [`Reactor`](crate::Reactor)
    /// value when its last handle drops. At process exit the exiting thread's thread-locals
    /// are gone, so the free functions (which look up the current reactor) may panic there;
    /// such a panic is caught and logged.
    AtExit,
}

impl CallbackEvent {
    /// Every event, in facil.io's order.
    pub const ALL: [Self; 17] = [
        Self::OnInitialize,
        Self::PreStart,
        Self::BeforeFork,
        Self::AfterFork,
        Self::InChild,
        Self::InMaster,
        Self::OnStart,
        Self::OnPubsubConnect,
        Self::OnPubsubError,
        Self::OnUsr,
        Self::OnIdle,
        Self::OnUsrReverse,
        Self::OnShutdown,
        Self::OnFinish,
        Self::OnParentCrush,
        Self::OnChildCrush,
        Self::AtExit,
    ];

    /// Whether this is a tear-down event, whose callbacks run newest first.
    ///
    /// # Examples
    /// ```
    /// use fio_reactor::CallbackEvent;
    /// assert!(CallbackEvent::OnFinish.is_teardown());
    /// assert!(!CallbackEvent::OnStart.is_teardown());
    /// ```
    pub fn is_teardown(self) -> bool {
        self >= Self::OnShutdown
    }

    /// Whether the event's callbacks run newest first (LIFO): every event after
    /// [`OnIdle`](Self::OnIdle), that is [`OnUsrReverse`](Self::OnUsrReverse) and the
    /// tear-down events.
    ///
    /// # Examples
    /// ```
    /// use fio_reactor::CallbackEvent;
    /// assert!(CallbackEvent::OnUsrReverse.runs_newest_first());
    /// assert!(CallbackEvent::AtExit.runs_newest_first());
    /// assert!(!CallbackEvent::OnUsr.runs_newest_first());
    /// ```
    pub fn runs_newest_first(self) -> bool {
        self > Self::OnIdle
    }

    /// The event's slot in the callback table.
    fn index(self) -> usize {
        self as usize
    }
}

/// Identifies one added state callback, for [`state_callback_remove`](crate::state_callback_remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId {
    /// The event the callback was added to.
    event: CallbackEvent,
    /// Unique within the reactor that issued it.
    serial: u64,
}

impl CallbackId {
    /// The event this callback belongs to.
    ///
    /// # Examples
    /// ```
    /// use fio_reactor::{CallbackEvent, Reactor, StartArgs};
    /// let reactor = Reactor::new(StartArgs::default());
    /// let id = reactor.state_callback_add(CallbackEvent::OnFinish, || {});
    /// assert_eq!(id.event(), CallbackEvent::OnFinish);
    /// ```
    pub fn event(self) -> CallbackEvent {
        self.event
    }
}

/// A registered callback; `Arc` so a running event can work on a snapshot of the list.
pub(crate) type Callback = Arc<dyn Fn() + Send + Sync>;

/// The per-reactor callback lists, one per event.
pub(crate) struct StateCallbacks {
    /// Lists in insertion order; a lock held only to edit or copy a list, never while
    /// callbacks run, so callbacks may add and remove callbacks.
    lists: Mutex<[Vec<(u64, Callback)>; CallbackEvent::ALL.len()]>,
    /// One bit per event (by index) whose list is not empty, kept with the lists under
    /// their lock, so [`has`](Self::has) answers without taking it.
    present: AtomicU64,
    /// Source of [`CallbackId::serial`].
    next_serial: AtomicU64,
}

impl StateCallbacks {
    /// Empty lists.
    pub(crate) fn new() -> Self {
        Self {
            lists: Mutex::new(Default::default()),
            present: AtomicU64::new(0),
            next_serial: AtomicU64::new(0),
        }
    }

    /// Appends a callback to an event's list.
    pub(crate) fn add(&self, event: CallbackEvent, callback: Callback) -> CallbackId {
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let mut lists = self.lists.lock();
        lists[event.index()].push((serial, callback));
        self.note(event, &lists[event.index()]);
        CallbackId { event, serial }
    }

    /// Removes one callback.
    pub(crate) fn remove(&self, id: CallbackId) -> Result<(), Error> {
        let mut lists = self.lists.lock();
        let list = &mut lists[id.event.index()];
        let position = list
            .iter()
            .position(|(serial, _)| *serial == id.serial)
            .ok_or(Error::CallbackNotFound(id))?;
        list.remove(position);
        self.note(id.event, list);
        Ok(())
    }

    /// Drops every callback of an event.
    pub(crate) fn clear(&self, event: CallbackEvent) {
        // Dropped outside the lock: a callback's captures may run arbitrary code when dropped.
        let removed = {
            let mut lists = self.lists.lock();
            let removed = std::mem::take(&mut lists[event.index()]);
            self.note(event, &lists[event.index()]);
            removed
        };
        drop(removed);
    }

    /// Records whether `event`'s `list` (just changed, its lock still held) is empty.
    fn note(&self, event: CallbackEvent, list: &[(u64, Callback)]) {
        let bit = 1u64 << event.index();
        if list.is_empty() {
            self.present.fetch_and(!bit, Ordering::Release);
        } else {
            self.present.fetch_or(bit, Ordering::Release);
        }
    }

    /// Whether `event` has any callback, without taking the lists' lock; a callback added
    /// or removed by another thread meanwhile may be seen a moment late.
    pub(crate) fn has(&self, event: CallbackEvent) -> bool {
        self.present.load(Ordering::Acquire) & (1u64 << event.index()) != 0
    }

    /// Runs an event's callbacks, FIFO or LIFO by event, each with its panics caught.
    ///
    /// Works on a copy of the list, so callbacks added or removed while the event runs take
    /// effect the next time.
    pub(crate) fn force(&self, event: CallbackEvent) {
        for callback in self.snapshot(event) {
            run_caught("state callback", || callback());
        }
    }

    /// A copy of an event's callbacks in the order they run (FIFO or LIFO by event).
    pub(crate) fn snapshot(&self, event: CallbackEvent) -> Vec<Callback> {
        let mut snapshot: Vec<Callback> = self.lists.lock()[event.index()]
            .iter()
            .map(|(_, callback)| Arc::clone(callback))
            .collect();
        if event.runs_newest_first() {
            snapshot.reverse();
        }
        snapshot
    }

    /// How many callbacks an event has.
    pub(crate) fn len(&self, event: CallbackEvent) -> usize {
        self.lists.lock()[event.index()].len()
    }
}

impl fmt::Debug for StateCallbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for event in CallbackEvent::ALL {
            map.entry(&event, &self.len(event));
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> (Arc<Mutex<Vec<u32>>>, impl Fn(u32) -> Callback) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&log);
        let make = move |n: u32| {
            let log = Arc::clone(&shared);
            Arc::new(move || log.lock().push(n)) as Callback
        };
        (log, make)
    }

    #[test]
    fn startup_is_fifo_and_teardown_is_lifo() {
        let callbacks = StateCallbacks::new();
        let (log, make) = recorder();
        for n in 1..=3 {
            callbacks.add(CallbackEvent::PreStart, make(n));
            callbacks.add(CallbackEvent::OnFinish, make(10 + n));
        }
        callbacks.force(CallbackEvent::PreStart);
        callbacks.force(CallbackEvent::OnFinish);
        assert_eq!(*log.lock(), [1, 2, 3, 13, 12, 11]);
    }

    #[test]
    fn remove_takes_exactly_one() {
        let callbacks = StateCallbacks::new();
        let (log, make) = recorder();
        let first = callbacks.add(CallbackEvent::OnStart, make(1));
        callbacks.add(CallbackEvent::OnStart, make(2));
        callbacks.remove(first).unwrap();
        assert!(matches!(callbacks.remove(first), Err(Error::CallbackNotFound(id)) if id == first));
        callbacks.force(CallbackEvent::OnStart);
        assert_eq!(*log.lock(), [2]);
        callbacks.clear(CallbackEvent::OnStart);
        assert_eq!(callbacks.len(CallbackEvent::OnStart), 0);
    }

    #[test]
    fn callbacks_added_during_an_event_wait_for_the_next() {
        let callbacks = Arc::new(StateCallbacks::new());
        let (log, make) = recorder();
        let inner = Arc::clone(&callbacks);
        let late = make(2);
        callbacks.add(
            CallbackEvent::OnIdle,
            Arc::new(move || {
                inner.add(CallbackEvent::OnIdle, Arc::clone(&late));
            }),
        );
        callbacks.add(CallbackEvent::OnIdle, make(1));
        callbacks.force(CallbackEvent::OnIdle);
        assert_eq!(*log.lock(), [1]);
        callbacks.force(CallbackEvent::OnIdle);
        assert_eq!(*log.lock(), [1, 1, 2]);
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_rest() {
        let callbacks = StateCallbacks::new();
        let (log, make) = recorder();
        callbacks.add(CallbackEvent::OnShutdown, make(1));
        callbacks.add(CallbackEvent::OnShutdown, Arc::new(|| panic!("boom")));
        callbacks.force(CallbackEvent::OnShutdown);
        assert_eq!(*log.lock(), [1]);
    }

    #[test]
    fn teardown_starts_at_on_shutdown() {
        let teardown: Vec<_> = CallbackEvent::ALL
            .into_iter()
            .filter(|event| event.is_teardown())
            .collect();
        assert_eq!(teardown.first(), Some(&CallbackEvent::OnShutdown));
        assert_eq!(teardown.len(), 5);
    }
}
