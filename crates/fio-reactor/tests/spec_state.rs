//! State callbacks the spec names that the reactor itself never raises (the user queues and
//! the pub/sub events), and `OnIdle` being scheduled rather than run during the event.

mod util;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use fio_reactor::CallbackEvent;

#[test]
fn user_and_pub_sub_events_are_kept_and_run_only_when_forced() {
    let reactor = util::reactor(1);
    let log = Arc::new(Mutex::new(Vec::new()));
    let events = [
        CallbackEvent::OnPubsubConnect,
        CallbackEvent::OnPubsubError,
        CallbackEvent::OnUsr,
        CallbackEvent::OnUsrReverse,
    ];
    for event in events {
        for n in 1..=2 {
            let log = Arc::clone(&log);
            reactor.state_callback_add(event, move || log.lock().unwrap().push((event, n)));
        }
    }
    reactor.state_callback_add(CallbackEvent::OnStart, fio_reactor::stop);
    util::start_bounded(&reactor).unwrap();
    assert!(
        log.lock().unwrap().is_empty(),
        "a reactor's run raises none of them"
    );
    for event in events {
        reactor.state_callback_force(event);
    }
    use CallbackEvent::*;
    assert_eq!(
        *log.lock().unwrap(),
        [
            (OnPubsubConnect, 1),
            (OnPubsubConnect, 2),
            (OnPubsubError, 1),
            (OnPubsubError, 2),
            (OnUsr, 1),
            (OnUsr, 2),
            (OnUsrReverse, 2),
            (OnUsrReverse, 1),
        ],
        "FIFO up to OnIdle, LIFO after it"
    );
}

/// Two parties that each wait, within a bound, until both have arrived.
struct Meeting {
    arrived: Mutex<usize>,
    all_here: Condvar,
}

impl Meeting {
    /// Arrives and waits for the other; returns whether both were here at once.
    fn arrive(&self) -> bool {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.all_here.notify_all();
        let (arrived, _) = self
            .all_here
            .wait_timeout_while(arrived, Duration::from_secs(20), |arrived| *arrived < 2)
            .unwrap();
        *arrived >= 2
    }
}

#[test]
fn on_idle_callbacks_are_scheduled_tasks_that_idle_threads_run_concurrently() {
    let reactor = util::reactor(2);
    let meeting = Arc::new(Meeting {
        arrived: Mutex::new(0),
        all_here: Condvar::new(),
    });
    let met = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let fired = Arc::new(AtomicBool::new(false));
    for _ in 0..2 {
        let (meeting, met, ran, fired) = (
            Arc::clone(&meeting),
            Arc::clone(&met),
            Arc::clone(&ran),
            Arc::clone(&fired),
        );
        reactor.state_callback_add(CallbackEvent::OnIdle, move || {
            // Only the first idle period is this test's.
            if fired.load(Ordering::SeqCst) {
                return;
            }
            // Run during the event, one after the other on one thread, the first would wait
            // for the second in vain.
            if meeting.arrive() {
                met.fetch_add(1, Ordering::SeqCst);
            }
            if ran.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
                fired.store(true, Ordering::SeqCst);
                fio_reactor::stop();
            }
        });
    }
    // Some work first: the reactor goes idle after work is done.
    reactor.defer(|| {});
    util::start_bounded(&reactor).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    assert_eq!(
        met.load(Ordering::SeqCst),
        2,
        "both callbacks ran at the same time"
    );
}

#[test]
fn on_idle_does_not_count_as_work_so_an_idle_reactor_stays_quiet() {
    let reactor = util::reactor(1);
    let idles = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&idles);
    reactor.state_callback_add(CallbackEvent::OnIdle, move || {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    reactor.defer(|| {});
    // Half a second of nothing after the one task: OnIdle once, not once per loop.
    reactor
        .run_every(
            Duration::from_millis(500),
            fio_reactor::Repeat::ONCE,
            || true,
            fio_reactor::stop,
        )
        .unwrap();
    util::start_bounded(&reactor).unwrap();
    let idles = idles.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&idles),
        "OnIdle ran {idles} times in one quiet half second"
    );
}

/// Set in the child run of [`at_exit_runs_when_the_process_exits`]: the file its `AtExit`
/// callback writes.
const AT_EXIT_FILE: &str = "FIO_SPEC_AT_EXIT_FILE";

#[test]
fn at_exit_runs_when_the_process_exits() {
    const TEST: &str = "at_exit_runs_when_the_process_exits";
    if let Some(path) = std::env::var_os(AT_EXIT_FILE) {
        // The child: the default reactor never starts, so only process exit can run AtExit.
        fio_reactor::state_callback_add(CallbackEvent::AtExit, move || {
            std::fs::write(&path, b"at exit").unwrap();
        });
        assert!(!std::path::Path::new(&std::env::var_os(AT_EXIT_FILE).unwrap()).exists());
        return;
    }
    let path = std::env::temp_dir().join(format!("fio-spec-at-exit-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--test-threads=1"])
        .env(AT_EXIT_FILE, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the child exited with {status}");
    let written = std::fs::read(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(written.unwrap(), b"at exit");
}
