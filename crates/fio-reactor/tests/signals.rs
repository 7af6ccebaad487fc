//! SIGTERM stops a process blocked in `start`: the test binary re-runs itself as a child.

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use fio_reactor::CallbackEvent;
use fio_sys::{Pid, Signal};

/// Set in the child's environment to select its role.
const CHILD_MODE: &str = "FIO_REACTOR_TEST_CHILD";
/// How long the parent waits for each step of the child.
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

/// The child's part: print lines at each event, block in `start` until SIGTERM.
fn run_child() {
    let say = |line: &'static str| {
        move || {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    };
    fio_reactor::state_callback_add(CallbackEvent::OnStart, say("child: ready"));
    fio_reactor::state_callback_add(CallbackEvent::OnShutdown, say("child: shutdown"));
    fio_reactor::state_callback_add(CallbackEvent::OnFinish, say("child: finish"));
    fio_reactor::state_callback_add(CallbackEvent::AtExit, say("child: at exit"));
    let result = fio_reactor::start(util::args(2).signals(true));
    println!("child: returned {result:?}");
}

#[test]
fn sigterm_stops_start() {
    if std::env::var_os(CHILD_MODE).is_some() {
        run_child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "sigterm_stops_start",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, "sigterm")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let pid = Pid::new(i32::try_from(child.id()).unwrap()).unwrap();
    let mut reaper = Reaper(Some(child));

    let (lines, received) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints "test <name> ... " without a newline, so a line may carry it.
            let Some(at) = line.find("child: ") else {
                continue;
            };
            if lines.send(line[at..].to_owned()).is_err() {
                break;
            }
        }
    });
    assert_eq!(received.recv_timeout(STEP).unwrap(), "child: ready");
    fio_sys::kill(pid, Signal::TERM).unwrap();

    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(received.recv_timeout(STEP).unwrap());
    }
    assert_eq!(
        seen,
        [
            "child: shutdown",
            "child: finish",
            "child: at exit",
            "child: returned Ok(())",
        ]
    );
    let mut child = reaper.0.take().unwrap();
    let (done, exited) = mpsc::channel();
    thread::spawn(move || done.send(child.wait()));
    let status = exited.recv_timeout(STEP).unwrap_or_else(|timeout| {
        let _ = fio_sys::kill(pid, Signal::KILL);
        panic!("the child did not exit: {timeout}");
    });
    let status = status.unwrap();
    assert!(status.success(), "child exited with {status}");
    reader.join().unwrap();
}

#[test]
fn handlers_are_installed_while_running_and_restored_after() {
    let before = fio_sys::signal_action(Signal::TERM).unwrap().kind();
    let reactor = fio_reactor::Reactor::new(util::args(1).signals(true));
    let during = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = std::sync::Arc::clone(&during);
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        *seen.lock().unwrap() = Some(fio_sys::signal_action(Signal::TERM).map(|a| a.kind()));
        fio_reactor::stop();
    });
    util::start_bounded(&reactor).unwrap();
    reactor.state_callback_clear(CallbackEvent::OnStart);
    let during = during.lock().unwrap().take().unwrap().unwrap();
    assert_eq!(during, fio_sys::ActionKind::Handler);
    assert_eq!(fio_sys::signal_action(Signal::TERM).unwrap().kind(), before);
}
