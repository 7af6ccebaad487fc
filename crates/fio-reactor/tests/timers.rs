//! `run_every`: repetitions, early stop, `on_finish` on every path, stopping from a timer.

mod util;

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fio_reactor::{CallbackEvent, Error, ListenArgs, Repeat};

const TICK: Duration = Duration::from_millis(1);

/// Counters a timer's task and `on_finish` update.
#[derive(Clone, Default)]
struct Counts {
    runs: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
}

impl Counts {
    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

#[test]
fn a_timer_runs_its_repetitions_then_finishes() {
    let reactor = util::reactor(1);
    let counts = Counts::default();
    let (runs, finished) = (Arc::clone(&counts.runs), Arc::clone(&counts.finished));
    reactor
        .run_every(
            TICK,
            Repeat::times(5).unwrap(),
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                true
            },
            move || {
                finished.fetch_add(1, Ordering::SeqCst);
                fio_reactor::stop();
            },
        )
        .unwrap();
    util::start_bounded(&reactor).unwrap();
    assert_eq!((counts.runs(), counts.finished()), (5, 1));
}

#[test]
fn returning_false_stops_a_timer_early() {
    let reactor = util::reactor(2);
    let counts = Counts::default();
    let (runs, finished) = (Arc::clone(&counts.runs), Arc::clone(&counts.finished));
    reactor
        .run_every(
            TICK,
            Repeat::Forever,
            move || runs.fetch_add(1, Ordering::SeqCst) + 1 < 3,
            move || {
                finished.fetch_add(1, Ordering::SeqCst);
                fio_reactor::stop();
            },
        )
        .unwrap();
    util::start_bounded(&reactor).unwrap();
    assert_eq!((counts.runs(), counts.finished()), (3, 1));
}

#[test]
fn a_timer_can_stop_the_reactor() {
    let reactor = util::reactor(2);
    let counts = Counts::default();
    let (runs, finished) = (Arc::clone(&counts.runs), Arc::clone(&counts.finished));
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        let (runs, finished) = (Arc::clone(&runs), Arc::clone(&finished));
        // Added from a reactor callback on the start thread, not a reactor thread: the timer
        // goes through the inbox and a thread adopts it.
        fio_reactor::run_every(
            TICK,
            Repeat::Forever,
            move || {
                if runs.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
                    fio_reactor::stop();
                }
                true
            },
            move || {
                finished.fetch_add(1, Ordering::SeqCst);
            },
        )
        .unwrap();
    });
    util::start_bounded(&reactor).unwrap();
    // The forever-timer ended with the reactor, and its on_finish ran then. `stop` is
    // asynchronous: until thread 0 has run OnShutdown and told the threads to exit, the thread
    // holding the timer may tick it again, so only the lower bound is exact.
    assert!(counts.runs() >= 2, "ran {} times", counts.runs());
    assert_eq!(counts.finished(), 1);
}

#[test]
fn timers_added_from_a_task_live_on_that_thread() {
    let reactor = util::reactor(1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&order);
    reactor.defer(move || {
        for (name, ms) in [("slow", 20_u64), ("fast", 1)] {
            let log = Arc::clone(&log);
            let done = Arc::clone(&log);
            fio_reactor::run_every(
                Duration::from_millis(ms),
                Repeat::ONCE,
                move || {
                    log.lock().unwrap().push(name);
                    true
                },
                move || {
                    if done.lock().unwrap().len() == 2 {
                        fio_reactor::stop();
                    }
                },
            )
            .unwrap();
        }
    });
    util::start_bounded(&reactor).unwrap();
    assert_eq!(*order.lock().unwrap(), ["fast", "slow"]);
}

#[test]
fn a_panicking_timer_ends_and_finishes() {
    let reactor = util::reactor(1);
    let counts = Counts::default();
    let finished = Arc::clone(&counts.finished);
    reactor
        .run_every(
            TICK,
            Repeat::Forever,
            || panic!("this timer panics on purpose"),
            move || {
                finished.fetch_add(1, Ordering::SeqCst);
                fio_reactor::stop();
            },
        )
        .unwrap();
    util::start_bounded(&reactor).unwrap();
    assert_eq!(counts.finished(), 1);
}

#[test]
fn a_zero_interval_is_an_error_and_still_finishes() {
    let reactor = util::reactor(1);
    let counts = Counts::default();
    for repeat in [Repeat::ONCE, Repeat::Forever] {
        let finished = Arc::clone(&counts.finished);
        let result = reactor.run_every(
            Duration::ZERO,
            repeat,
            || true,
            move || {
                finished.fetch_add(1, Ordering::SeqCst);
            },
        );
        assert!(matches!(result, Err(Error::ZeroInterval)), "got {result:?}");
    }
    assert_eq!(counts.finished(), 2);
}

#[test]
fn a_count_of_zero_cannot_be_written() {
    // facil.io took any int; zero and negatives other than -1 were runtime errors.
    assert_eq!(Repeat::times(0), None);
    assert_eq!(Repeat::times(1), Some(Repeat::ONCE));
}

#[test]
fn an_unstarted_reactor_finishes_its_timers_when_dropped() {
    let reactor = util::reactor(1);
    let counts = Counts::default();
    let finished = Arc::clone(&counts.finished);
    reactor
        .run_every(
            TICK,
            Repeat::Forever,
            || true,
            move || {
                finished.fetch_add(1, Ordering::SeqCst);
            },
        )
        .unwrap();
    assert_eq!(counts.finished(), 0);
    drop(reactor);
    assert_eq!(counts.finished(), 1);
}

/// Bytes the server sends a slowly reading client: many sends, each completing on its own
/// while the client reads, about 8 KiB a millisecond.
const SLOW_DOWNLOAD: usize = 4 << 20;

/// The period of the timer that must keep running during the slow download: much longer
/// than the gaps between the download's send completions, so a wait that started over for
/// its whole timeout after each completion would never reach the timer's deadline.
const DOWNLOAD_TIMER_PERIOD: Duration = Duration::from_millis(50);

#[test]
fn a_timer_keeps_firing_during_a_long_download() {
    // The io_uring engine waits again when a wait's completions leave the connection layer
    // nothing to do (a send done); timers must still run on time meanwhile.
    let reactor = util::reactor(1);
    let counts = Counts::default();
    let runs = Arc::clone(&counts.runs);
    reactor
        .run_every(
            DOWNLOAD_TIMER_PERIOD,
            Repeat::Forever,
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                true
            },
            || {},
        )
        .unwrap();
    // A small send buffer (inherited by accepted sockets) keeps the download going for a
    // while, its sends completing as the client reads.
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    fio_sys::set_send_buffer_size(std::os::fd::AsFd::as_fd(&socket), 16 << 10).unwrap();
    let addr = socket.local_addr().unwrap();
    reactor
        .listen(ListenArgs::inherited(OwnedFd::from(socket), |uuid| {
            fio_reactor::write2(uuid, vec![7u8; SLOW_DOWNLOAD], false).unwrap();
        }))
        .unwrap();
    let stopper = reactor.clone();
    let timer_runs = counts.clone();
    let client = std::thread::spawn(move || {
        use std::io::Read;
        let mut stream = util::client(addr);
        // A small, fixed receive buffer (no autotuning) holds the download back at the
        // server, which so gets a send completion every read or so and no other event.
        fio_sys::set_recv_buffer_size(std::os::fd::AsFd::as_fd(&stream), 16 << 10).unwrap();
        let mut buf = vec![0u8; 8 << 10];
        let mut received = 0;
        let first_runs = timer_runs.runs();
        let mut runs_while_reading = 0;
        while received < SLOW_DOWNLOAD {
            let count = stream.read(&mut buf).unwrap();
            assert!(count > 0, "the download ended early at {received} bytes");
            assert!(buf[..count].iter().all(|&byte| byte == 7));
            received += count;
            std::thread::sleep(Duration::from_millis(1));
            runs_while_reading = timer_runs.runs() - first_runs;
        }
        stopper.stop();
        runs_while_reading
    });
    util::start_bounded(&reactor).unwrap();
    let runs_while_reading = client.join().unwrap();
    // The download takes about 500 reads of 1 ms or more: the 50 ms timer runs about ten times.
    assert!(
        runs_while_reading >= 3,
        "the timer ran {runs_while_reading} times during the download"
    );
}
