//! Start-up and tear-down: the order of state callbacks, stopping, restarting, and errors.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use fio_reactor::{CallbackEvent, Concurrency, Error, Reactor};

/// Records labelled events in order.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn note(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// A callback that notes `label`.
    fn callback(&self, label: &str) -> impl Fn() + Send + Sync + 'static {
        let journal = self.clone();
        let label = label.to_owned();
        move || journal.note(label.clone())
    }
}

#[test]
fn startup_events_run_fifo_and_teardown_events_lifo() {
    let reactor = util::reactor(2);
    let journal = Journal::default();
    for event in [
        CallbackEvent::OnInitialize,
        CallbackEvent::PreStart,
        CallbackEvent::OnStart,
        CallbackEvent::OnShutdown,
        CallbackEvent::OnFinish,
    ] {
        for n in 1..=2 {
            reactor.state_callback_add(event, journal.callback(&format!("{event:?}{n}")));
        }
    }
    let in_task = journal.clone();
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        let journal = in_task.clone();
        fio_reactor::defer(move || {
            journal.note("task");
            fio_reactor::stop();
        });
    });
    util::start_bounded(&reactor).unwrap();
    assert_eq!(
        journal.entries(),
        [
            "OnInitialize1",
            "OnInitialize2",
            "PreStart1",
            "PreStart2",
            "OnStart1",
            "OnStart2",
            "task",
            "OnShutdown2",
            "OnShutdown1",
            "OnFinish2",
            "OnFinish1",
        ]
    );
}

#[test]
fn a_reactor_restarts_and_initializes_once() {
    let reactor = util::reactor(1);
    let journal = Journal::default();
    reactor.state_callback_add(CallbackEvent::OnInitialize, journal.callback("init"));
    reactor.state_callback_add(CallbackEvent::OnStart, journal.callback("start"));
    reactor.state_callback_add(CallbackEvent::OnStart, fio_reactor::stop);
    reactor.state_callback_add(CallbackEvent::OnFinish, journal.callback("finish"));
    util::start_bounded(&reactor).unwrap();
    util::start_bounded(&reactor).unwrap();
    // A late OnInitialize callback runs at once, since initialisation is over.
    reactor.state_callback_add(CallbackEvent::OnInitialize, journal.callback("late init"));
    assert_eq!(
        journal.entries(),
        ["init", "start", "finish", "start", "finish", "late init"]
    );
}

#[test]
fn at_exit_runs_when_the_last_handle_drops() {
    let journal = Journal::default();
    let reactor = util::reactor(1);
    reactor.state_callback_add(CallbackEvent::AtExit, journal.callback("exit 1"));
    reactor.state_callback_add(CallbackEvent::AtExit, journal.callback("exit 2"));
    let clone = reactor.clone();
    drop(reactor);
    assert!(
        journal.entries().is_empty(),
        "a clone still holds the reactor"
    );
    drop(clone);
    assert_eq!(journal.entries(), ["exit 2", "exit 1"]);
}

#[test]
fn on_idle_runs_once_the_work_is_done() {
    let reactor = util::reactor(2);
    let done = Arc::new(AtomicUsize::new(0));
    let idle_seen_after = Arc::new(AtomicUsize::new(usize::MAX));
    let (counted, seen) = (Arc::clone(&done), Arc::clone(&idle_seen_after));
    reactor.state_callback_add(CallbackEvent::OnIdle, move || {
        // Only the first idle period matters here; stop from inside the callback.
        let _ = seen.compare_exchange(
            usize::MAX,
            counted.load(Ordering::SeqCst),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        fio_reactor::stop();
    });
    for _ in 0..1000 {
        let done = Arc::clone(&done);
        reactor.defer(move || {
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    util::start_bounded(&reactor).unwrap();
    assert_eq!(idle_seen_after.load(Ordering::SeqCst), 1000);
}

#[test]
fn callbacks_added_during_an_event_wait_for_the_next_one() {
    let reactor = util::reactor(1);
    let journal = Journal::default();
    let adder = journal.clone();
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        fio_reactor::state_callback_add(CallbackEvent::OnStart, adder.callback("added"));
        fio_reactor::stop();
    });
    util::start_bounded(&reactor).unwrap();
    assert!(journal.entries().is_empty());
    util::start_bounded(&reactor).unwrap();
    assert_eq!(journal.entries(), ["added"]);
}

#[test]
fn removed_and_cleared_callbacks_do_not_run() {
    let reactor = util::reactor(1);
    let journal = Journal::default();
    let removed = reactor.state_callback_add(CallbackEvent::OnFinish, journal.callback("removed"));
    reactor.state_callback_add(CallbackEvent::OnFinish, journal.callback("kept"));
    reactor.state_callback_add(CallbackEvent::PreStart, journal.callback("cleared"));
    reactor.state_callback_remove(removed).unwrap();
    assert!(matches!(
        reactor.state_callback_remove(removed),
        Err(Error::CallbackNotFound(id)) if id == removed
    ));
    reactor.state_callback_clear(CallbackEvent::PreStart);
    reactor.state_callback_add(CallbackEvent::OnStart, fio_reactor::stop);
    util::start_bounded(&reactor).unwrap();
    assert_eq!(journal.entries(), ["kept"]);
}

#[test]
fn starting_a_running_reactor_is_an_error() {
    let reactor = util::reactor(1);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (inner, report) = (reactor.clone(), Arc::clone(&seen));
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        let mut report = report.lock().unwrap();
        report.push(format!("{:?}", inner.start()));
        // The free functions act on the reactor running this callback, too.
        report.push(format!("{:?}", fio_reactor::start(util::args(1))));
        report.push(format!("running: {}", fio_reactor::is_running()));
        fio_reactor::stop();
    });
    util::start_bounded(&reactor).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "Err(AlreadyRunning)",
            "Err(AlreadyRunning)",
            "running: true"
        ]
    );
    assert!(!reactor.is_running());
    // The callback holds a clone of the reactor; clearing it breaks the cycle.
    reactor.state_callback_clear(CallbackEvent::OnStart);
}

#[test]
fn more_than_one_worker_points_to_fio_cluster() {
    let reactor = Reactor::new(util::args(1).workers(Concurrency::exactly(2).unwrap()));
    let result = reactor.start();
    assert!(matches!(result, Err(Error::ClusterRequired { workers: 2 })));
    assert!(result.unwrap_err().to_string().contains("fio-cluster"));
    assert!(!reactor.is_running());
}

#[test]
fn the_engine_is_reported_by_name() {
    let reactor = util::reactor(1);
    reactor.state_callback_add(CallbackEvent::OnStart, || {
        assert!(["io_uring", "epoll"].contains(&fio_reactor::engine()));
        fio_reactor::stop();
    });
    util::start_bounded(&reactor).unwrap();
    assert!(["io_uring", "epoll"].contains(&reactor.engine()));
}

#[test]
fn last_tick_moves_while_running() {
    let reactor = util::reactor(1);
    let before = reactor.last_tick();
    reactor.defer(fio_reactor::stop);
    util::start_bounded(&reactor).unwrap();
    assert!(reactor.last_tick() > before);
}
