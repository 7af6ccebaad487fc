//! The defer queue: a crossbeam-deque work-stealing scheduler shared by a reactor's threads.
//!
//! Tasks deferred from outside the reactor's threads go to the shared [`Injector`]; tasks
//! deferred from a reactor thread go to that thread's own [`Worker`] deque (no contention).
//! An idle thread takes work from the injector first, then steals from the other threads'
//! deques through their [`Stealer`]s.

use std::fmt;
use std::iter;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use parking_lot::RwLock;

use crate::panic::run_caught;

/// A deferred task.
pub(crate) type Task = Box<dyn FnOnce() + Send>;

/// How many passes `drain_leftovers` makes before giving up on tasks that keep deferring more.
const LEFTOVER_PASSES: usize = 64;

/// The queue state shared by all threads of one reactor.
pub(crate) struct DeferQueue {
    /// Tasks from threads that are not this reactor's (and leftovers of stopped threads).
    injector: Injector<Task>,
    /// One per running reactor thread, by thread index; emptied when the threads stop.
    stealers: RwLock<Vec<Stealer<Task>>>,
    /// How many `stealers` holds, readable without its lock: a thread looks for others'
    /// tasks on every tick, and with one thread there are none to look at.
    threads: AtomicUsize,
}

impl DeferQueue {
    /// An empty queue with no threads.
    pub(crate) fn new() -> Self {
        Self {
            injector: Injector::new(),
            stealers: RwLock::new(Vec::new()),
            threads: AtomicUsize::new(0),
        }
    }

    /// Queues a task from outside the reactor's threads.
    pub(crate) fn inject(&self, task: Task) {
        self.injector.push(task);
    }

    /// Registers the reactor threads' deques, in thread order, when the reactor starts.
    pub(crate) fn set_stealers(&self, stealers: Vec<Stealer<Task>>) {
        let mut list = self.stealers.write();
        self.threads.store(stealers.len(), Ordering::Release);
        *list = stealers;
    }

    /// Forgets the threads' deques once they have stopped (each moved its leftovers here).
    pub(crate) fn clear_stealers(&self) {
        let mut list = self.stealers.write();
        self.threads.store(0, Ordering::Release);
        list.clear();
    }

    /// Moves a stopping thread's leftover tasks to the injector, so none is lost.
    pub(crate) fn adopt(&self, worker: &Worker<Task>) {
        while let Some(task) = worker.pop() {
            self.injector.push(task);
        }
    }

    /// Finds the next task for thread `me`: its own deque, then the injector (moving a batch
    /// into its deque), then the other threads' deques, starting after `me` to spread the load.
    pub(crate) fn find(&self, me: usize, local: &Worker<Task>) -> Option<Task> {
        local.pop().or_else(|| {
            iter::repeat_with(|| {
                self.injector.steal_batch_and_pop(local).or_else(|| {
                    let stealers = self.stealers.read();
                    let count = stealers.len();
                    (1..count)
                        .map(|offset| stealers[(me + offset) % count].steal())
                        .collect()
                })
            })
            .find(|steal| !steal.is_retry())
            .and_then(Steal::success)
        })
    }

    /// Takes a task from the injector only (for threads that are not reactor threads).
    pub(crate) fn steal_injected(&self) -> Option<Task> {
        iter::repeat_with(|| self.injector.steal())
            .find(|steal| !steal.is_retry())
            .and_then(Steal::success)
    }

    /// Whether any task is queued anywhere in this reactor.
    pub(crate) fn has_queue(&self) -> bool {
        !self.injector.is_empty() || self.stealers.read().iter().any(|s| !s.is_empty())
    }

    /// Whether a task thread `me` could [`find`](Self::find) waits anywhere but in its own
    /// deque (which the caller looks at directly): in the injector or another thread's deque.
    /// With a single thread that is the injector alone, looked at without the stealers' lock:
    /// every tick of every thread asks this twice.
    pub(crate) fn has_queue_besides(&self, me: usize) -> bool {
        if !self.injector.is_empty() {
            return true;
        }
        if self.threads.load(Ordering::Acquire) <= 1 {
            return false;
        }
        self.stealers
            .read()
            .iter()
            .enumerate()
            .any(|(index, stealer)| index != me && !stealer.is_empty())
    }

    /// Runs what is left in the injector after the threads stopped, in passes, so clean-up
    /// tasks deferred during shutdown still run; a task that re-defers itself forever is
    /// dropped after [`LEFTOVER_PASSES`] passes instead of keeping `start` from returning.
    pub(crate) fn drain_leftovers(&self) {
        for _ in 0..LEFTOVER_PASSES {
            let pass = self.injector.len();
            if pass == 0 {
                return;
            }
            for task in iter::from_fn(|| self.steal_injected()).take(pass) {
                run_task(task);
            }
        }
        let dropped = iter::from_fn(|| self.steal_injected()).count();
        if dropped > 0 {
            log::warn!("dropped {dropped} deferred tasks that kept re-deferring during shutdown");
        }
    }
}

impl fmt::Debug for DeferQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferQueue")
            .field("injected", &self.injector.len())
            .field("threads", &self.stealers.read().len())
            .finish()
    }
}

/// Runs one task, logging a panic instead of unwinding into the reactor thread.
pub(crate) fn run_task(task: Task) {
    run_caught("deferred task", task);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn counting_task(counter: &Arc<AtomicUsize>) -> Task {
        let counter = Arc::clone(counter);
        Box::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })
    }

    #[test]
    fn threads_find_injected_and_stolen_work() {
        let queue = DeferQueue::new();
        let (a, b) = (Worker::new_fifo(), Worker::new_fifo());
        queue.set_stealers(vec![a.stealer(), b.stealer()]);
        let counter = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            a.push(counting_task(&counter));
        }
        queue.inject(counting_task(&counter));
        assert!(queue.has_queue());
        let mut found = 0;
        while let Some(task) = queue.find(1, &b) {
            run_task(task);
            found += 1;
            assert!(found <= 4, "more tasks found than queued");
        }
        assert_eq!(
            found, 4,
            "thread 1 took the injected task and stole thread 0's"
        );
        assert_eq!(counter.load(Ordering::Relaxed), 4);
        assert!(!queue.has_queue());
    }

    #[test]
    fn only_other_threads_tasks_and_injected_ones_count_as_besides() {
        let queue = DeferQueue::new();
        let (a, b) = (Worker::new_fifo(), Worker::new_fifo());
        let counter = Arc::new(AtomicUsize::new(0));
        queue.set_stealers(vec![a.stealer()]);
        a.push(counting_task(&counter));
        assert!(queue.has_queue());
        assert!(
            !queue.has_queue_besides(0),
            "a single thread's own deque is its own to look at"
        );
        queue.inject(counting_task(&counter));
        assert!(queue.has_queue_besides(0), "injected tasks always count");
        while let Some(task) = queue.find(0, &a) {
            run_task(task);
        }
        queue.set_stealers(vec![a.stealer(), b.stealer()]);
        b.push(counting_task(&counter));
        assert!(queue.has_queue_besides(0), "thread 1's task may be stolen");
        assert!(!queue.has_queue_besides(1));
        queue.clear_stealers();
        assert!(!queue.has_queue_besides(0));
        while let Some(task) = b.pop() {
            run_task(task);
        }
        assert_eq!(counter.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn leftovers_are_adopted_and_drained() {
        let queue = DeferQueue::new();
        let worker = Worker::new_fifo();
        let counter = Arc::new(AtomicUsize::new(0));
        worker.push(counting_task(&counter));
        worker.push(Box::new(|| panic!("a leftover panics")));
        queue.adopt(&worker);
        queue.drain_leftovers();
        assert_eq!(counter.load(Ordering::Relaxed), 1);
        assert!(!queue.has_queue());
    }

    #[test]
    fn endless_re_deferral_is_bounded() {
        fn again(queue: Arc<DeferQueue>, runs: Arc<AtomicUsize>) {
            runs.fetch_add(1, Ordering::Relaxed);
            let q = Arc::clone(&queue);
            queue.inject(Box::new(move || again(q, runs)));
        }
        let queue = Arc::new(DeferQueue::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let (q, r) = (Arc::clone(&queue), Arc::clone(&runs));
        queue.inject(Box::new(move || again(q, r)));
        queue.drain_leftovers();
        assert_eq!(runs.load(Ordering::Relaxed), LEFTOVER_PASSES);
        assert!(!queue.has_queue());
    }
}
