//! The cluster with real forks on loopback: the test server runs as a child process (fork is
//! refused inside the multithreaded test harness) on whichever engine `FIO_ENGINE` names.

mod util;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fio_sys::{Pid, Signal};

use util::{Server, connect, echo_once, exchange, is_gone, pid_of};

/// The issue's "within 1 s", with slack for a loaded two-core CI box.
const WITHIN_A_SECOND: Duration = Duration::from_millis(1500);

/// A steady connect-and-echo load on `threads` threads until the flag drops; counts
/// successes and failures (with the first failures' reasons).
struct Load {
    running: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Failures,
    threads: Vec<thread::JoinHandle<()>>,
}

/// Failure reasons, shared by threads.
type Failures = Arc<Mutex<Vec<String>>>;

impl Load {
    fn start(port: u16, threads: usize) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Failures::default();
        let threads = (0..threads)
            .map(|_| {
                let (running, ok, failed) =
                    (Arc::clone(&running), Arc::clone(&ok), Arc::clone(&failed));
                thread::spawn(move || {
                    // Bounded: the flag drops within the test's own deadlines.
                    for _ in 0..1_000_000 {
                        if !running.load(Ordering::Acquire) {
                            break;
                        }
                        match echo_once(port) {
                            Ok(()) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(reason) => failed.lock().unwrap().push(reason),
                        }
                    }
                })
            })
            .collect();
        Self {
            running,
            ok,
            failed,
            threads,
        }
    }

    /// Waits (at most 10 s) until `count` echoes succeeded.
    fn wait_for_echoes(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.ok.load(Ordering::Relaxed) < count && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the load; returns (successes, failures).
    fn stop(self) -> (usize, Vec<String>) {
        self.running.store(false, Ordering::Release);
        for thread in self.threads {
            thread.join().unwrap();
        }
        let failed = std::mem::take(&mut *self.failed.lock().unwrap());
        (self.ok.load(Ordering::Relaxed), failed)
    }
}

/// The `EVENT` lines by pid, in order.
fn events(server: &Server) -> HashMap<u32, Vec<(String, String)>> {
    let mut by_pid: HashMap<u32, Vec<(String, String)>> = HashMap::new();
    for line in &server.history {
        let Some(rest) = line.text.strip_prefix("EVENT ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let name = parts.next().unwrap().to_owned();
        let pid: u32 = parts.next().unwrap()["pid=".len()..].parse().unwrap();
        let flags = parts.collect::<Vec<_>>().join(" ");
        by_pid.entry(pid).or_default().push((name, flags));
    }
    by_pid
}

#[test]
fn state_callbacks_run_in_order_across_the_fork() {
    // The spec's shorthand: threads -2 with workers 0 is two workers of cores/2 threads.
    let mut server = Server::start(&["--threads", "-2", "--workers", "0", "--events"]);
    let port = server.port();
    server.serving(2);
    echo_once(port).unwrap();
    let status = server.stop();
    assert!(status.success(), "{status:?}: {:#?}", server.history);
    let root = server.pid().as_raw().cast_unsigned();
    let by_pid = events(&server);
    let names =
        |pid: u32| -> Vec<&str> { by_pid[&pid].iter().map(|(name, _)| name.as_str()).collect() };
    assert_eq!(
        names(root),
        [
            "OnInitialize",
            "PreStart",
            "BeforeFork",
            "AfterFork",
            "InMaster",
            "BeforeFork",
            "AfterFork",
            "InMaster",
            "OnShutdown",
            "OnFinish",
            "AtExit"
        ],
        "{:#?}",
        server.history
    );
    for (name, flags) in &by_pid[&root] {
        if name != "AtExit" && name != "OnInitialize" {
            assert_eq!(flags, "worker=0 master=1 running=2", "root at {name}");
        }
    }
    let workers: Vec<u32> = by_pid.keys().copied().filter(|&pid| pid != root).collect();
    assert_eq!(workers.len(), 2, "{by_pid:#?}");
    for worker in workers {
        assert_eq!(
            names(worker),
            [
                "AfterFork",
                "InChild",
                "OnStart",
                "OnShutdown",
                "OnFinish",
                "AtExit"
            ]
        );
        for (name, flags) in &by_pid[&worker] {
            assert!(
                flags.starts_with("worker=1 master=0"),
                "worker at {name}: {flags}"
            );
            if name == "OnStart" || name == "OnShutdown" {
                assert_eq!(flags, "worker=1 master=0 running=2", "worker at {name}");
            }
        }
    }
    assert!(!server.reported_parent_crash());
}

#[test]
fn zero_and_zero_is_cores_by_cores() {
    use fio_reactor::Concurrency;
    let (threads, workers) =
        fio_reactor::expected_concurrency(Concurrency::MatchOther, Concurrency::MatchOther);
    let mut server = Server::start(&["--threads", "0", "--workers", "0", "--events"]);
    let port = server.port();
    if workers > 1 {
        server.serving(usize::from(workers));
    }
    echo_once(port).unwrap();
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    let starts = server
        .history
        .iter()
        .filter(|l| l.text.starts_with("EVENT OnStart"))
        .count();
    assert_eq!(starts, usize::from(workers), "{:#?}", server.history);
    if workers > 1 {
        let announced = format!("starting {workers} workers of {threads} threads");
        assert!(server.history.iter().any(|l| l.text.contains(&announced)));
    }
}

#[test]
fn a_killed_worker_is_replaced_and_only_its_connections_drop() {
    let mut server = Server::start(&["--workers", "2", "--threads", "1"]);
    let port = server.port();
    let first = server.serving(2);
    let mut streams: Vec<_> = (0..8)
        .map(|_| {
            let mut stream = connect(port).unwrap();
            let pid = pid_of(&mut stream).unwrap();
            (stream, pid)
        })
        .collect();
    let load = Load::start(port, 2);
    thread::sleep(Duration::from_millis(100));
    let victim = streams[0].1;
    let killed = Instant::now();
    fio_sys::kill(Pid::new(victim).unwrap(), Signal::KILL).unwrap();
    let replacement = server
        .wait_for(Duration::from_secs(10), |l| {
            l.text.ends_with(" serving") && !first.contains(&util::worker_pid(&l.text))
        })
        .unwrap_or_else(|| panic!("no replacement: {:#?}", server.history));
    let took = replacement.at.saturating_duration_since(killed);
    assert!(
        took <= WITHIN_A_SECOND,
        "the replacement served after {took:?}"
    );
    let fresh = util::worker_pid(&replacement.text);
    // The victim's connections are gone; the other worker's still echo.
    for (stream, pid) in &mut streams {
        let answer = exchange(stream, b"still there?\n");
        if *pid == victim {
            assert!(
                answer.is_err(),
                "a connection of the killed worker answered"
            );
        } else {
            assert_eq!(answer.unwrap(), b"still there?\n");
        }
    }
    // New connections are served by a replacement once the original workers are gone (the
    // others are killed first, so that the connection can't go to them).
    for pid in first.iter().filter(|&&pid| pid != victim && !is_gone(pid)) {
        let _ = fio_sys::kill(Pid::new(*pid).unwrap(), Signal::KILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reached = None;
    while reached.is_none() && Instant::now() < deadline {
        let served = connect(port).and_then(|mut stream| pid_of(&mut stream));
        match served {
            Ok(pid) if !first.contains(&pid) => reached = Some(pid),
            _ => thread::sleep(Duration::from_millis(10)),
        }
    }
    assert!(
        reached.is_some(),
        "no replacement served: {:#?}",
        server.history
    );
    let _ = fresh;
    let (ok, _failed) = load.stop();
    assert!(ok > 0);
    assert!(
        server
            .history
            .iter()
            .any(|l| l.text.contains(&format!("worker {victim} died")))
    );
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(!server.reported_parent_crash());
}

#[test]
fn the_workers_share_the_connections_of_a_shared_listener() {
    let mut server = Server::start(&["--workers", "2", "--threads", "1"]);
    let port = server.port();
    let workers = server.serving(2);
    let mut served: HashMap<i32, usize> = HashMap::new();
    // Which worker wins a given connection is the scheduler's call (on a loaded machine one
    // can win 40 in a row), so connect until both served one, up to 200: a worker kept first
    // for good takes all 200.
    for _ in 0..200 {
        let mut stream = connect(port).unwrap();
        *served.entry(pid_of(&mut stream).unwrap()).or_default() += 1;
        if workers.iter().all(|pid| served.contains_key(pid)) {
            break;
        }
    }
    assert!(
        workers.iter().all(|pid| served.contains_key(pid)),
        "every worker accepts (a multishot accept would keep one worker first in the \
         listener's queue): {served:?}"
    );
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_worker_that_dies_at_boot_is_respawned_with_growing_delays() {
    let mut server = Server::start(&["--workers", "2", "--exit-at-boot"]);
    let started = server.wait_count(Duration::from_secs(10), 5, |l| {
        l.text.contains("cluster root: worker") && l.text.ends_with(" started")
    });
    assert_eq!(started.len(), 5, "{:#?}", server.history);
    let gaps: Vec<Duration> = started
        .windows(2)
        .map(|pair| pair[1].at.saturating_duration_since(pair[0].at))
        .collect();
    // Two at once, then one at a time, each wait about twice the last.
    assert!(
        gaps[2] > gaps[1] && gaps[3] > gaps[2] && gaps[3] >= crate_backoff() * 2,
        "respawn gaps don't grow: {gaps:?}"
    );
    assert!(
        server
            .history
            .iter()
            .any(|l| l.text.contains("died at boot"))
    );
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}

/// The first back-off delay.
fn crate_backoff() -> Duration {
    fio_cluster::BACKOFF_FIRST
}

#[test]
fn fifty_sigterm_shutdowns_under_load_exit_cleanly() {
    const RUNS: usize = 50;
    const PARALLEL: usize = 5;
    let failures = Failures::default();
    for _ in 0..RUNS / PARALLEL {
        let batch: Vec<_> = (0..PARALLEL)
            .map(|_| {
                let failures = Arc::clone(&failures);
                thread::spawn(move || {
                    let mut server = Server::start(&["--workers", "2", "--threads", "1"]);
                    let port = server.port();
                    server.serving(2);
                    let load = Load::start(port, 1);
                    load.wait_for_echoes(1);
                    let status = server.stop();
                    let (ok, _) = load.stop();
                    if !status.success() || server.reported_parent_crash() || ok == 0 {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{status:?}, {ok} echoes: {:#?}", server.history));
                    }
                })
            })
            .collect();
        for run in batch {
            run.join().unwrap();
        }
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} bad shutdowns: {}",
        failures.len(),
        failures[0]
    );
}

#[test]
fn sigterm_under_load_delivers_queued_data_and_says_goodbye() {
    const BIG: usize = 64 << 20;
    let mut server = Server::start(&["--workers", "2", "--threads", "1", "--farewell"]);
    let port = server.port();
    server.serving(2);
    let mut idle = connect(port).unwrap();
    assert_eq!(exchange(&mut idle, b"hi\n").unwrap(), b"hi\n");
    let mut big = connect(port).unwrap();
    big.write_all(b"BIG\n").unwrap();
    let mut received = vec![0u8; 1 << 20];
    big.read_exact(&mut received).unwrap();
    let load = Load::start(port, 1);
    load.wait_for_echoes(1);
    // Most of the 64 MiB is still queued in the worker when the stop comes.
    server.signal(Signal::TERM);
    let mut total = received.len();
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        match big.read(&mut buf) {
            Ok(0) => break,
            Ok(len) => {
                assert!(buf[..len].iter().all(|&b| b == b'x'));
                total += len;
            }
            Err(error) => panic!("after {total} bytes: {error}"),
        }
    }
    assert_eq!(total, BIG, "queued data was cut short");
    // The idle connection got its on_shutdown (the farewell), then was closed.
    let mut farewell = String::new();
    idle.read_to_string(&mut farewell).unwrap();
    assert_eq!(farewell, "FAREWELL\n");
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the root exits");
    let _ = load.stop();
    assert!(status.success(), "{status:?}");
    assert!(!server.reported_parent_crash());
}

#[test]
fn a_hot_restart_refuses_no_connection() {
    let mut server = Server::start(&["--workers", "2", "--threads", "1", "--shutdown-delay", "1"]);
    let port = server.port();
    let old = server.serving(2);
    let load = Load::start(port, 2);
    load.wait_for_echoes(20);
    server.signal(Signal::USR1);
    let exited = server.wait_count(Duration::from_secs(20), 2, |l| {
        l.text.contains("cluster root: worker")
            && l.text.contains(" exited")
            && old.contains(&util::worker_pid(&l.text))
    });
    assert_eq!(exited.len(), 2, "{:#?}", server.history);
    thread::sleep(Duration::from_millis(200));
    let (ok, failed) = load.stop();
    assert!(
        failed.is_empty(),
        "{} failed of {}: {:?}",
        failed.len(),
        ok + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 0);
    // Replaced one at a time: the second replacement was forked after the first old worker was
    // told to stop.
    let order: Vec<&str> = server
        .history
        .iter()
        .filter(|l| l.text.contains("replacing worker") || l.text.contains("stopping worker"))
        .map(|l| {
            if l.text.contains("replacing") {
                "replace"
            } else {
                "stop"
            }
        })
        .collect();
    assert_eq!(order, ["replace", "stop", "replace", "stop"]);
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(!server.reported_parent_crash());
}

#[test]
fn a_killed_root_takes_its_workers_down_within_a_second() {
    let mut server = Server::start(&["--workers", "2", "--threads", "1", "--events"]);
    server.port();
    let workers = server.serving(2);
    let killed = Instant::now();
    server.signal(Signal::KILL);
    let deadline = killed + Duration::from_secs(5);
    while !workers.iter().all(|&pid| is_gone(pid)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let took = killed.elapsed();
    assert!(
        workers.iter().all(|&pid| is_gone(pid)),
        "workers outlived their root"
    );
    assert!(took <= WITHIN_A_SECOND, "workers took {took:?} to go");
    let crushes = server.wait_count(Duration::from_secs(2), 2, |l| {
        l.text.starts_with("EVENT OnParentCrush")
    });
    assert_eq!(crushes.len(), 2, "{:#?}", server.history);
}

#[test]
fn master_only_listeners_live_in_the_root() {
    let mut server = Server::start(&["--workers", "2", "--threads", "1", "--master-only"]);
    let port = server.port();
    let master_port = server.number_after("MASTER ");
    server.serving(2);
    let root = server.pid().as_raw();
    for _ in 0..4 {
        let mut stream = connect(master_port).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stream, &mut text).unwrap();
        assert_eq!(text.trim().parse::<i32>().unwrap(), root);
        let mut stream = connect(port).unwrap();
        assert_ne!(pid_of(&mut stream).unwrap(), root);
    }
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn master_only_connectors_connect_from_the_root_only() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port().to_string();
    let mut server = Server::start(&[
        "--workers",
        "2",
        "--threads",
        "1",
        "--connect-master",
        &port,
    ]);
    server.port();
    server.serving(2);
    let root = server.pid().as_raw();
    let (mut first, _) = target.accept().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut line = String::new();
    let mut byte = [0u8; 1];
    while !line.ends_with('\n') {
        first.read_exact(&mut byte).unwrap();
        line.push(char::from(byte[0]));
    }
    assert_eq!(line.trim().parse::<i32>().unwrap(), root);
    // No worker connects: nothing else arrives while the workers serve.
    target.set_nonblocking(true).unwrap();
    thread::sleep(Duration::from_millis(300));
    assert!(target.accept().is_err(), "a second process connected");
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn socket_activation_serves_the_inherited_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // systemd's protocol: the socket as descriptor 3, LISTEN_FDS=1, LISTEN_PID naming the
    // server (the shell's pid, which `exec` keeps).
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"exec 3<&0 0</dev/null; export LISTEN_FDS=1 LISTEN_PID=$$; exec "$0" "$@""#)
        .arg(util::SERVER)
        .args(["--activated", "--workers", "2", "--threads", "1"])
        .stdin(Stdio::from(OwnedFd::from(listener)));
    let mut server = Server::spawn(command);
    assert_eq!(server.port(), port);
    server.serving(2);
    for _ in 0..4 {
        echo_once(port).unwrap();
    }
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}
