//! Engine selection and idling: io_uring by default, epoll when a seccomp filter forbids
//! io_uring (in a child process of this test binary), and idle threads asleep in the kernel.

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fio_reactor::{CallbackEvent, Reactor, Repeat};
use fio_ring::{Ring, RingConfig};

/// Set in the child's environment to select its role: `forbid` installs the seccomp filter
/// first, `allow` doesn't.
const CHILD_MODE: &str = "FIO_REACTOR_ENGINE_CHILD";
/// The variable `tests/util` reads to pick the engine.
const ENGINE_VAR: &str = "FIO_ENGINE";
/// How long the parent waits for each line of the child, and for its exit.
const STEP: Duration = Duration::from_secs(30);

/// Kills the child if the test fails before it exited.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Keeps the warnings logged in the child, which prints them for the parent.
struct CapturingLogger {
    warnings: Mutex<Vec<String>>,
}

impl log::Log for CapturingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = record.args().to_string().replace('\n', " ");
            self.warnings.lock().unwrap().push(line);
        }
    }

    fn flush(&self) {}
}

static LOGGER: CapturingLogger = CapturingLogger {
    warnings: Mutex::new(Vec::new()),
};

/// The child's part: optionally forbid io_uring, run a reactor with the default engine
/// selection through a few timer ticks, and print the engine and the warnings logged.
fn run_child(mode: &str) {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    if mode == "forbid" {
        // First thing: the reactor's threads, spawned later, inherit the filter.
        fio_sys::forbid_io_uring().unwrap();
    }
    let reactor = Reactor::new(util::args(2).engine(None));
    let seen = std::sync::Arc::new(Mutex::new(None));
    let record = std::sync::Arc::clone(&seen);
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        let record = std::sync::Arc::clone(&record);
        // The ticks wait in the engine, so they show it works, not only that it was chosen.
        let finish = move || {
            *record.lock().unwrap() = Some(fio_reactor::engine());
            fio_reactor::stop();
        };
        fio_reactor::run_every(
            Duration::from_millis(1),
            Repeat::times(3).unwrap(),
            || true,
            finish,
        )
        .unwrap();
    });
    util::start_bounded(&reactor).unwrap();
    let engine = seen.lock().unwrap().take().unwrap_or("none");
    println!("child: engine {engine}");
    for warning in LOGGER.warnings.lock().unwrap().iter() {
        println!("child: warning {warning}");
    }
    println!("child: done");
}

/// What a child reported: the engine its reactor ran and the warnings it logged.
struct Report {
    engine: String,
    warnings: Vec<String>,
}

/// Runs this test again as a child in `mode`, with `FIO_ENGINE` set to `engine` (or unset),
/// and collects its report; kills it if it misses a deadline.
fn run_in_child(test: &str, mode: &str, engine: Option<&str>) -> Report {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match engine {
        Some(engine) => command.env(ENGINE_VAR, engine),
        None => command.env_remove(ENGINE_VAR),
    };
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reaper = Reaper(Some(child));
    let (lines, received) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints "test <name> ... " without a newline, so a line may carry it.
            let Some(at) = line.find("child: ") else {
                continue;
            };
            if lines.send(line[at + "child: ".len()..].to_owned()).is_err() {
                break;
            }
        }
    });
    let mut report = Report {
        engine: String::new(),
        warnings: Vec::new(),
    };
    // Bounded: the child prints one engine line, a few warnings, and "done".
    for _ in 0..100 {
        let line = received.recv_timeout(STEP).unwrap();
        if line == "done" {
            break;
        } else if let Some(engine) = line.strip_prefix("engine ") {
            engine.clone_into(&mut report.engine);
        } else if let Some(warning) = line.strip_prefix("warning ") {
            report.warnings.push(warning.to_owned());
        }
    }
    let mut child = reaper.0.take().unwrap();
    let pid = fio_sys::Pid::new(i32::try_from(child.id()).unwrap()).unwrap();
    let (done, exited) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = done.send(());
        status
    });
    if exited.recv_timeout(STEP).is_err() {
        let _ = fio_sys::kill(pid, fio_sys::Signal::KILL);
        panic!("the {mode} child did not exit");
    }
    let status = waiter.join().unwrap().unwrap();
    assert!(status.success(), "the {mode} child exited with {status}");
    reader.join().unwrap();
    report
}

/// Whether io_uring with the features the reactor needs works in this (unfiltered) process.
fn io_uring_usable() -> bool {
    Ring::new(RingConfig::new(8)).is_ok_and(|ring| {
        let features = ring.features();
        features.multishot_recv() && features.buf_ring() && features.multishot_accept()
    })
}

#[test]
fn seccomp_forbidding_io_uring_falls_back_to_epoll() {
    const TEST: &str = "seccomp_forbidding_io_uring_falls_back_to_epoll";
    if let Ok(mode) = std::env::var(CHILD_MODE) {
        run_child(&mode);
        return;
    }
    let forbidden = run_in_child(TEST, "forbid", None);
    assert_eq!(forbidden.engine, "epoll");
    let fallbacks: Vec<&String> = forbidden
        .warnings
        .iter()
        .filter(|warning| warning.contains("io_uring unavailable"))
        .collect();
    assert_eq!(fallbacks.len(), 1, "{:?}", forbidden.warnings);
    let reason = fallbacks[0];
    assert!(reason.contains("forbidden by seccomp"), "{reason}");
    assert!(reason.contains("os error 1"), "EPERM expected: {reason}");
    assert!(reason.ends_with("using epoll"), "{reason}");

    if !io_uring_usable() {
        fio_test::skip(
            fio_test::Feature::Uring,
            "io_uring is unavailable here, so FIO_ENGINE=uring can't select it",
        );
        return;
    }
    let allowed = run_in_child(TEST, "allow", Some("uring"));
    assert_eq!(allowed.engine, "io_uring");
    assert!(allowed.warnings.is_empty(), "{:?}", allowed.warnings);
}

#[test]
fn the_engine_the_run_asks_for_is_the_one_that_runs() {
    // The whole suite runs under `FIO_ENGINE`; a silent fallback would test the wrong engine.
    let reactor = util::reactor(1);
    let (seen, engine) = mpsc::channel::<&'static str>();
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        let _ = seen.send(fio_reactor::engine());
        fio_reactor::stop();
    });
    util::start_bounded(&reactor).unwrap();
    let inside = engine.recv_timeout(STEP).expect("the reactor started");
    assert_eq!(
        inside,
        reactor.engine(),
        "the engine seen from inside the reactor"
    );
    // Under `FIO_ENGINE=uring`, `start_bounded` has checked io_uring (a skip or a failure by
    // the run's policy); epoll is always there.
    if util::engine() == Some(fio_reactor::EngineKind::Epoll) {
        assert_eq!(inside, "epoll");
    }
}

/// Set in the child of [`a_silent_fallback_under_fio_engine_uring_is_caught`].
const FALLBACK_CHILD: &str = "FIO_REACTOR_FALLBACK_CHILD";

#[test]
fn a_silent_fallback_under_fio_engine_uring_is_caught() {
    const TEST: &str = "a_silent_fallback_under_fio_engine_uring_is_caught";
    if std::env::var_os(FALLBACK_CHILD).is_some() {
        // The child: io_uring refused by seccomp, a reactor asked for it (FIO_ENGINE=uring).
        fio_sys::forbid_io_uring().unwrap();
        let reactor = util::reactor(1);
        reactor.state_callback_add(CallbackEvent::OnStart, fio_reactor::stop);
        util::start_bounded(&reactor).unwrap();
        return;
    }
    let run = |require_uring: &str| {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--test-threads=1"])
            .env(FALLBACK_CHILD, "1")
            .env(ENGINE_VAR, "uring")
            .env(fio_test::REQUIRE_URING_VAR, require_uring)
            .env_remove(fio_test::REQUIRE_VAR)
            .env_remove(fio_test::SKIP_LOG_VAR)
            .output()
            .unwrap()
    };
    let fell_back = "FIO_ENGINE=uring, but the reactor ran on epoll";
    // Where the run requires io_uring, the fallback fails the test...
    let required = run("1");
    assert!(!required.status.success(), "{required:?}");
    let stdout = String::from_utf8_lossy(&required.stdout);
    assert!(stdout.contains(fell_back), "{stdout}");
    // ...elsewhere it is a skip line, not a silent pass.
    let reported = run("0");
    assert!(reported.status.success(), "{reported:?}");
    let stderr = String::from_utf8_lossy(&reported.stderr);
    let line = format!("FIO-SKIP: {TEST} : uring: {fell_back}");
    assert!(stderr.contains(&line), "{stderr}");
}

/// The state letter of thread `tid` of this process (`R` running, `S` sleeping, ...).
fn thread_state(tid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the state follows the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

#[test]
fn idle_threads_sleep_in_the_kernel() {
    let reactor = util::reactor(2);
    let (tids, tid) = mpsc::channel::<String>();
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        let tids = tids.clone();
        // A task runs on a reactor thread, which then has nothing left to do.
        fio_reactor::defer(move || {
            let link = std::fs::read_link("/proc/thread-self").unwrap();
            let tid = link.file_name().unwrap().to_string_lossy().into_owned();
            let _ = tids.send(tid);
        });
    });
    let watched = reactor.clone();
    let watcher = thread::spawn(move || {
        let tid = tid.recv_timeout(STEP);
        // Poll the thread's state until it has been seen asleep several times in a row;
        // a spinning thread shows `R`. Bounded in count and time.
        let deadline = Instant::now() + STEP;
        let mut asleep_in_a_row = 0;
        if let Ok(tid) = &tid {
            for _ in 0..20_000 {
                if asleep_in_a_row == 5 || Instant::now() > deadline {
                    break;
                }
                match thread_state(tid) {
                    Some('S') => asleep_in_a_row += 1,
                    _ => asleep_in_a_row = 0,
                }
                // A poll interval, not synchronisation: the loop ends on what it observes.
                thread::sleep(Duration::from_millis(1));
            }
        }
        watched.stop();
        (tid.is_ok(), asleep_in_a_row)
    });
    util::start_bounded(&reactor).unwrap();
    let (got_tid, asleep_in_a_row) = watcher.join().unwrap();
    assert!(got_tid, "the deferred task never ran");
    assert_eq!(
        asleep_in_a_row, 5,
        "the idle reactor thread was not seen asleep"
    );
}
