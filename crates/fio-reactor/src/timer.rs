//! Repeating timers (`run_every`): one min-heap per reactor thread on the monotonic clock.
//!
//! Each deadline is computed from the previous *planned* time, not from when the task ran, so
//! a timer doesn't drift. Ticks missed while the thread was busy are skipped, not replayed in a
//! burst: the next deadline is the first planned one still in the future.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::panic::run_caught;

/// A timer's task: returns `true` to keep repeating, `false` to stop.
pub(crate) type TimerTask = Box<dyn FnMut() -> bool + Send>;
/// Runs once when a timer ends, however it ends.
pub(crate) type FinishTask = Box<dyn FnOnce() + Send>;

/// How many times a [`run_every`](crate::run_every) timer runs its task (facil.io's
/// `repetitions`: `-1` for forever, else a positive count; zero and other negatives, which C
/// could pass, can't be written here).
///
/// A task that returns `false` ends the timer earlier either way.
///
/// # Examples
/// ```
/// use fio_reactor::Repeat;
/// assert_eq!(Repeat::times(1), Some(Repeat::ONCE));
/// assert_eq!(Repeat::times(0), None); // a timer that never runs isn't a timer
/// assert_ne!(Repeat::Forever, Repeat::ONCE);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repeat {
    /// Until the task returns `false` or the reactor stops (facil.io's `-1`).
    Forever,
    /// At most this many runs.
    Times(NonZeroU32),
}

impl Repeat {
    /// One run: a one-shot timer.
    pub const ONCE: Self = Self::Times(NonZeroU32::MIN);

    /// `count` runs, or `None` for zero.
    pub const fn times(count: u32) -> Option<Self> {
        match NonZeroU32::new(count) {
            Some(count) => Some(Self::Times(count)),
            None => None,
        }
    }
}

/// How many more times a timer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remaining {
    /// [`Repeat::Forever`].
    Forever,
    /// A count, decremented after each run.
    Times(u32),
}

/// One repeating task with its schedule.
pub(crate) struct Timer {
    /// The planned time of the next run.
    due: Instant,
    /// Time between planned runs; never zero.
    interval: Duration,
    /// Runs left.
    remaining: Remaining,
    /// The user's task.
    task: TimerTask,
    /// Called from `Drop`, so it runs exactly once on every path: last repetition, the task
    /// returning `false` or panicking, the reactor stopping, or the reactor being dropped.
    on_finish: Option<FinishTask>,
}

impl Timer {
    /// Validates the arguments of `run_every` and plans the first run one interval from `now`.
    ///
    /// On an error `on_finish` has already run, as the spec asks ("always called, even on
    /// error").
    pub(crate) fn new(
        now: Instant,
        interval: Duration,
        repeat: Repeat,
        task: TimerTask,
        on_finish: FinishTask,
    ) -> Result<Self, Error> {
        if interval.is_zero() {
            run_caught("timer on_finish", on_finish);
            return Err(Error::ZeroInterval);
        }
        let remaining = match repeat {
            Repeat::Forever => Remaining::Forever,
            Repeat::Times(count) => Remaining::Times(count.get()),
        };
        Ok(Self {
            due: now.checked_add(interval).unwrap_or(now),
            interval,
            remaining,
            task,
            on_finish: Some(on_finish),
        })
    }

    /// The planned time of the next run.
    pub(crate) fn due(&self) -> Instant {
        self.due
    }

    /// Runs the task once; returns the timer if it should run again, rescheduled.
    ///
    /// Dropping the returned `None`'s timer (done by this function) runs `on_finish`.
    pub(crate) fn fire(mut self, now: Instant) -> Option<Self> {
        let keep_going = run_caught("timer task", &mut self.task).unwrap_or(false);
        self.remaining = match self.remaining {
            Remaining::Forever => Remaining::Forever,
            Remaining::Times(n) => Remaining::Times(n.saturating_sub(1)),
        };
        if !keep_going || self.remaining == Remaining::Times(0) {
            return None;
        }
        self.due = next_planned(self.due, self.interval, now);
        Some(self)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(on_finish) = self.on_finish.take() {
            run_caught("timer on_finish", on_finish);
        }
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("due", &self.due)
            .field("interval", &self.interval)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// The first time `planned + k * interval` (k ≥ 1) that is later than `now`.
fn next_planned(planned: Instant, interval: Duration, now: Instant) -> Instant {
    let next = planned + interval;
    if next > now {
        return next;
    }
    // Skip the missed ticks in one step instead of looping over them.
    let behind = now.duration_since(next).as_nanos();
    let step = interval.as_nanos().max(1);
    let skipped = behind / step + 1;
    let skip = u64::try_from(skipped.saturating_mul(step)).unwrap_or(u64::MAX);
    next.checked_add(Duration::from_nanos(skip))
        .unwrap_or(now + interval)
}

/// A heap entry ordered by due time, then by insertion, so equal deadlines run FIFO.
struct Entry {
    /// Insertion order among timers with the same deadline.
    order: u64,
    /// The timer itself.
    timer: Timer,
}

impl Entry {
    /// The ordering key: earliest first (`BinaryHeap` is a max-heap, hence `Reverse`).
    fn key(&self) -> Reverse<(Instant, u64)> {
        Reverse((self.timer.due, self.order))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// One reactor thread's timers.
#[derive(Default)]
pub(crate) struct TimerHeap {
    /// Earliest deadline on top.
    heap: BinaryHeap<Entry>,
    /// Source of [`Entry::order`].
    next_order: u64,
}

impl TimerHeap {
    /// Adds a timer.
    pub(crate) fn push(&mut self, timer: Timer) {
        let order = self.next_order;
        self.next_order = self.next_order.wrapping_add(1);
        self.heap.push(Entry { order, timer });
    }

    /// The earliest deadline, which bounds the engine's wait.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|entry| entry.timer.due())
    }

    /// Takes the earliest timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        if self.next_deadline()? <= now {
            self.heap.pop().map(|entry| entry.timer)
        } else {
            None
        }
    }

    /// Removes every timer (their `on_finish` runs as they drop).
    pub(crate) fn drain(&mut self) -> Vec<Timer> {
        self.heap.drain().map(|entry| entry.timer).collect()
    }
}

impl fmt::Debug for TimerHeap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHeap")
            .field("len", &self.heap.len())
            .field("next_deadline", &self.next_deadline())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

    use super::*;

    fn counted(
        repeat: Repeat,
        keep_going: bool,
    ) -> (Result<Timer, Error>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let runs = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let (r, f) = (Arc::clone(&runs), Arc::clone(&finished));
        let timer = Timer::new(
            Instant::now(),
            Duration::from_millis(10),
            repeat,
            Box::new(move || {
                r.fetch_add(1, AtomicOrdering::Relaxed);
                keep_going
            }),
            Box::new(move || {
                f.fetch_add(1, AtomicOrdering::Relaxed);
            }),
        );
        (timer, runs, finished)
    }

    #[test]
    fn repetitions_are_counted_and_finish_once() {
        let (timer, runs, finished) = counted(Repeat::times(3).unwrap(), true);
        let mut timer = timer.unwrap();
        for _ in 0..2 {
            let due = timer.due();
            timer = timer.fire(due).unwrap();
        }
        let due = timer.due();
        assert!(timer.fire(due).is_none());
        assert_eq!(runs.load(AtomicOrdering::Relaxed), 3);
        assert_eq!(finished.load(AtomicOrdering::Relaxed), 1);
    }

    #[test]
    fn returning_false_stops_and_finishes() {
        let (timer, runs, finished) = counted(Repeat::Forever, false);
        let timer = timer.unwrap();
        let due = timer.due();
        assert!(timer.fire(due).is_none());
        assert_eq!(runs.load(AtomicOrdering::Relaxed), 1);
        assert_eq!(finished.load(AtomicOrdering::Relaxed), 1);
    }

    #[test]
    fn bad_arguments_still_run_on_finish() {
        let finished = Arc::new(AtomicUsize::new(0));
        let f = Arc::clone(&finished);
        let timer = Timer::new(
            Instant::now(),
            Duration::ZERO,
            Repeat::ONCE,
            Box::new(|| true),
            Box::new(move || {
                f.fetch_add(1, AtomicOrdering::Relaxed);
            }),
        );
        assert!(matches!(timer, Err(Error::ZeroInterval)));
        assert_eq!(finished.load(AtomicOrdering::Relaxed), 1);
    }

    #[test]
    fn dropping_an_unfinished_timer_finishes_it() {
        let (timer, runs, finished) = counted(Repeat::Forever, true);
        drop(timer);
        assert_eq!(runs.load(AtomicOrdering::Relaxed), 0);
        assert_eq!(finished.load(AtomicOrdering::Relaxed), 1);
    }

    #[test]
    fn deadlines_follow_the_plan_not_the_run() {
        let start = Instant::now();
        let interval = Duration::from_millis(10);
        // On time or a little late: the next run is one interval after the planned one.
        assert_eq!(
            next_planned(start, interval, start + Duration::from_millis(3)),
            start + interval
        );
        // Three and a half intervals late: missed ticks are skipped, the phase is kept.
        assert_eq!(
            next_planned(start, interval, start + Duration::from_millis(35)),
            start + Duration::from_millis(40)
        );
        // Exactly on a planned tick: that tick counts as missed (it is not in the future).
        assert_eq!(
            next_planned(start, interval, start + Duration::from_millis(20)),
            start + Duration::from_millis(30)
        );
    }

    #[test]
    fn heap_pops_in_deadline_order() {
        let mut heap = TimerHeap::default();
        let now = Instant::now();
        for ms in [30, 10, 20] {
            let timer = Timer::new(
                now,
                Duration::from_millis(ms),
                Repeat::ONCE,
                Box::new(|| true),
                Box::new(|| {}),
            )
            .unwrap();
            heap.push(timer);
        }
        assert_eq!(heap.next_deadline(), Some(now + Duration::from_millis(10)));
        assert!(heap.pop_due(now).is_none());
        let late = now + Duration::from_millis(25);
        let first = heap.pop_due(late).unwrap();
        let second = heap.pop_due(late).unwrap();
        assert!(first.due() < second.due());
        assert!(heap.pop_due(late).is_none());
        assert_eq!(heap.drain().len(), 1);
        assert_eq!(heap.next_deadline(), None);
    }
}
