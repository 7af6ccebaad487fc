//! The defer queue: exact counts across threads, work stealing, panics, and running by hand.

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fio_reactor::{CallbackEvent, Reactor};

const TASKS: usize = 1_000_000;

/// A task that counts itself and stops the reactor when it is the `TASKS`-th.
fn counting(counter: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    let counter = Arc::clone(counter);
    move || {
        if counter.fetch_add(1, Ordering::Relaxed) + 1 == TASKS {
            fio_reactor::stop();
        }
    }
}

/// Defers half the tasks from outside before `start` (the shared injector) and half from a
/// task on a reactor thread (its own deque, which the other threads steal from).
fn million_tasks_on(threads: u16) {
    let reactor = util::reactor(threads);
    let counter = Arc::new(AtomicUsize::new(0));
    for _ in 0..TASKS / 2 {
        reactor.defer(counting(&counter));
    }
    let inside = Arc::clone(&counter);
    reactor.defer(move || {
        for _ in 0..TASKS / 2 {
            fio_reactor::defer(counting(&inside));
        }
    });
    util::start_bounded(&reactor).unwrap();
    assert_eq!(counter.load(Ordering::Relaxed), TASKS);
    assert!(!reactor.defer_has_queue());
}

#[test]
fn a_million_tasks_on_one_thread() {
    million_tasks_on(1);
}

#[test]
fn a_million_tasks_on_two_threads() {
    million_tasks_on(2);
}

#[test]
fn a_million_tasks_on_four_threads() {
    million_tasks_on(4);
}

#[test]
fn idle_threads_steal_from_a_busy_one() {
    // One task floods its own thread's deque; with the first thread blocked until the others
    // have run some of them, progress proves they stole.
    let reactor = util::reactor(2);
    let (done, stolen) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (d, s) = (Arc::clone(&done), Arc::clone(&stolen));
    reactor.defer(move || {
        let me = std::thread::current().id();
        for _ in 0..1000 {
            let (d, s) = (Arc::clone(&d), Arc::clone(&s));
            fio_reactor::defer(move || {
                if std::thread::current().id() != me {
                    s.fetch_add(1, Ordering::SeqCst);
                }
                if d.fetch_add(1, Ordering::SeqCst) + 1 == 1000 {
                    fio_reactor::stop();
                }
            });
        }
        // Hold this thread until another thread has taken work from its deque (bounded).
        for _ in 0..10_000_000 {
            if s.load(Ordering::SeqCst) > 0 {
                break;
            }
            std::thread::yield_now();
        }
    });
    util::start_bounded(&reactor).unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 1000);
    assert!(stolen.load(Ordering::SeqCst) > 0);
}

#[test]
fn a_panicking_task_does_not_kill_its_thread() {
    let reactor = util::reactor(1);
    let after = Arc::new(AtomicUsize::new(0));
    reactor.defer(|| panic!("this task panics on purpose"));
    let counted = Arc::clone(&after);
    reactor.defer(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        // Same thread, after the panic: defer more and stop from there.
        fio_reactor::defer(|| panic!("and so does this one"));
        fio_reactor::defer(fio_reactor::stop);
    });
    util::start_bounded(&reactor).unwrap();
    assert_eq!(after.load(Ordering::SeqCst), 1);
}

#[test]
fn defer_perform_runs_the_queue_by_hand() {
    let reactor = util::reactor(1);
    let counter = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let counter = Arc::clone(&counter);
        reactor.defer(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            // Inside a task, the free functions act on this reactor.
            let again = Arc::clone(&counter);
            fio_reactor::defer(move || {
                again.fetch_add(100, Ordering::SeqCst);
            });
        });
    }
    assert!(reactor.defer_has_queue());
    reactor.defer_perform();
    assert!(!reactor.defer_has_queue());
    assert_eq!(counter.load(Ordering::SeqCst), 10 * 101);
}

#[test]
fn tasks_deferred_during_shutdown_still_run() {
    let reactor = util::reactor(2);
    let counter = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&counter);
    reactor.state_callback_add(CallbackEvent::OnShutdown, move || {
        for _ in 0..100 {
            let counted = Arc::clone(&counted);
            fio_reactor::defer(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    reactor.defer(fio_reactor::stop);
    util::start_bounded(&reactor).unwrap();
    assert_eq!(counter.load(Ordering::SeqCst), 100);
}

#[test]
fn separate_reactors_do_not_share_queues() {
    let (a, b) = (util::reactor(1), util::reactor(1));
    a.defer(|| {});
    assert!(a.defer_has_queue());
    assert!(!b.defer_has_queue());
    assert!(!a.same_as(&b));
    a.defer_perform();
    assert!(!Reactor::current().same_as(&a));
}
