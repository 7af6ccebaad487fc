//! The drills themselves, std only: starting a server, the loopback clients that drill it, and
//! what each drill measures and requires.
//!
//! `cargo xtask drills` runs them against the release examples; fio-examples' `drills` test
//! includes this file (`#[path]`) and runs the quick versions of a few against the debug
//! `drill_echo` binary, under the engine of the test run.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// A drill's result, or why it could not run to its verdict.
pub(crate) type DrillResult = Result<Outcome, String>;

/// What a drill measured and whether that is within its bound.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The figure, e.g. `612 B per connection`.
    pub(crate) figure: String,
    /// Whether the figure is within the bound.
    pub(crate) pass: bool,
    /// The bound, e.g. `<= 2048 B`.
    pub(crate) bound: String,
}

/// How to start one server: a program and its arguments (`--url` is added).
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The program.
    pub(crate) program: PathBuf,
    /// Its arguments, before the drill's extra ones and `--url`.
    pub(crate) args: Vec<String>,
}

/// What the drills run against.
#[derive(Debug)]
pub(crate) struct Lab {
    /// A pure byte echo (`echo --raw --threads 1`, or `drill_echo`).
    pub(crate) raw_echo: Launch,
    /// The spec's echo server (welcome, `Echo: ` prefix, the 5-second idle prompt).
    pub(crate) spec_echo: Option<Launch>,
    /// The test-only drill server (`drill_echo`).
    pub(crate) drill: Launch,
    /// `FIO_ENGINE` for the servers; None leaves the inherited environment.
    pub(crate) engine: Option<String>,
    /// Where the servers' logs go.
    pub(crate) log_dir: PathBuf,
    /// The short versions (CI-sized counts).
    pub(crate) quick: bool,
}

/// How long a server may take to log that it listens.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client waits on one socket call.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

impl Lab {
    /// Starts `launch` with `extra` arguments on a free loopback port; `name` names its log.
    pub(crate) fn start(
        &self,
        launch: &Launch,
        extra: &[&str],
        name: &str,
    ) -> Result<Server, String> {
        let port = free_port()?;
        fs::create_dir_all(&self.log_dir).map_err(|e| e.to_string())?;
        let engine = self.engine.as_deref().unwrap_or("env");
        let log = self.log_dir.join(format!("{name}-{engine}.log"));
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .args(extra)
            .arg("--url")
            .arg(format!("tcp://127.0.0.1:{port}"));
        if let Some(engine) = &self.engine {
            command.env("FIO_ENGINE", engine);
        }
        Server::start(command, port, log)
    }

    /// `quick` or `full`, by the lab's size.
    fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick { quick } else { full }
    }
}

/// A free port on 127.0.0.1 (bound, read and released; the server binds it right after).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// A started server; dropping it kills it and its children.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Server {
    /// Starts `command` (stdout and stderr to `log`) and waits until it logs that it listens.
    fn start(mut command: Command, port: u16, log: PathBuf) -> Result<Self, String> {
        let file = File::create(&log).map_err(|e| e.to_string())?;
        let clone = file.try_clone().map_err(|e| e.to_string())?;
        let child = command
            .stdin(Stdio::null())
            .stdout(clone)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let mut server = Self {
            child,
            port,
            log,
            exited: None,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("server exited ({status}): {}", server.log_tail()));
            }
            if server.log_text().contains("listening on") {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "server silent for {READY_TIMEOUT:?}: {}",
                    server.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server logged so far.
    pub(crate) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for error messages.
    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }

    /// The engine the server's start-up line names (`io_uring` or `epoll`).
    pub(crate) fn engine(&self) -> Option<String> {
        let text = self.log_text();
        let line = text.lines().find(|l| l.contains("listening on"))?;
        let before = &line[..line.find(" engine, pid")?];
        Some(before[before.rfind('(')? + 1..].to_owned())
    }

    /// Fails when the server has exited.
    pub(crate) fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.exited = Some(status);
                Err(format!("server exited ({status}): {}", self.log_tail()))
            }
            Err(error) => Err(error.to_string()),
        }
    }

    /// Sends `signal` (a `kill -s` name) to the server.
    pub(crate) fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Waits up to `timeout` for the server to exit.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                return Some(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            for pid in children(self.pid()) {
                send_signal(pid, "KILL");
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Sends a signal with `kill(1)`: std can only send `SIGKILL`, and only to its own children.
pub(crate) fn send_signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The direct children of every thread of `pid`.
pub(crate) fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> Result<u64, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))
}

/// The resident set of `pid`, KiB.
pub(crate) fn rss_kib(pid: u32) -> Result<u64, String> {
    status_kib(pid, "VmRSS")
}

/// The open descriptors of `pid`.
pub(crate) fn fd_count(pid: u32) -> Result<usize, String> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("/proc/{pid}/fd: {e}"))?
        .count())
}

/// A blocking client of `addr` with [`IO_TIMEOUT`] on reads and writes.
fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream =
        TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Byte `index` of every payload the drills send, and of `drill_echo`'s bulk answers.
pub(crate) fn pattern(index: usize) -> u8 {
    (index % 251) as u8
}

/// `len` bytes of [`pattern`].
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(pattern).collect()
}

/// Sends `data` and echoes one round trip: writes it and reads as many bytes back.
fn round_trip(stream: &mut TcpStream, data: &[u8]) -> Result<(), String> {
    stream.write_all(data).map_err(|e| format!("write: {e}"))?;
    let mut back = vec![0; data.len()];
    stream
        .read_exact(&mut back)
        .map_err(|e| format!("read: {e}"))?;
    if back != data {
        return Err("the echo differs from what was sent".to_owned());
    }
    Ok(())
}

/// Reads until end of stream; a reset ends it too (returned as the error).
fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, Option<std::io::Error>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(count) => out.extend_from_slice(&buf[..count]),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return (out, Some(error)),
        }
    }
}

/// Sends `data` on a fresh connection from a second thread, half-closes, and reads the echo to
/// the server's FIN; true when every byte came back in order.
fn echo_to_fin(addr: SocketAddr, data: Arc<Vec<u8>>) -> Result<bool, String> {
    let mut stream = connect(addr)?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let sent = Arc::clone(&data);
    let sender = thread::spawn(move || -> Result<(), String> {
        writer.write_all(&sent).map_err(|e| format!("write: {e}"))?;
        writer
            .shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))
    });
    let (back, error) = read_to_end(&mut stream);
    sender
        .join()
        .map_err(|_| "the writer panicked".to_owned())??;
    if let Some(error) = error {
        return Err(format!("read after {} bytes: {error}", back.len()));
    }
    Ok(back == *data)
}

/// MiB, for figures.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

/// Polls `probe` every 20 ms until it returns true or `timeout` passes; returns the time it
/// took, or None.
fn wait_for(timeout: Duration, mut probe: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if probe() {
            return Some(start.elapsed());
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

// ---- the drills --------------------------------------------------------------------------

/// A drill: its name in the table and its run.
pub(crate) type Drill = (&'static str, fn(&Lab) -> DrillResult);

/// Every drill, in table order.
pub(crate) const DRILLS: &[Drill] = &[
    ("10k concurrent echoing connections", concurrent),
    ("client that never reads", never_reads),
    ("half-close", half_close),
    ("connect/echo/close cycles", churn),
    ("resets with data queued", resets),
    ("slow readers beside a fast client", slow_readers),
    ("slowloris", slowloris),
    ("SIGTERM with data queued", sigterm),
    ("io_uring refused by seccomp", seccomp),
    ("panic in on_data", panic_in_on_data),
    ("worker killed under load", worker_killed),
    ("TLS handshake garbage", tls_garbage),
];

/// User memory per connection bound, with every connection echoing at once: the idle
/// connection (under 1 KiB) plus the pooled buffers one in-flight 64-byte echo may pin.
const PER_CONNECTION_BOUND: u64 = 8192;

/// Connections open at once, each echoing: the server's resident set per connection, idle
/// (all opened) and after every one echoed 64 bytes at the same time.
pub(crate) fn concurrent(lab: &Lab) -> DrillResult {
    let wanted = lab.pick(500, 10_000);
    let mut server = lab.start(&lab.raw_echo, &[], "concurrent")?;
    let pid = server.pid();
    thread::sleep(Duration::from_millis(200));
    let before = rss_kib(pid)?;
    let files = fd_count(pid)?;
    let message = payload(64);
    let mut streams = Vec::with_capacity(wanted);
    for _ in 0..wanted {
        streams.push(connect(server.addr())?);
    }
    wait_for(Duration::from_secs(10), || {
        fd_count(pid).is_ok_and(|now| now >= files + wanted)
    })
    .ok_or("the server did not accept every connection")?;
    thread::sleep(Duration::from_millis(300));
    let idle = rss_kib(pid)?;
    for stream in &mut streams {
        stream
            .write_all(&message)
            .map_err(|e| format!("write: {e}"))?;
    }
    let mut back = [0u8; 64];
    for stream in &mut streams {
        stream
            .read_exact(&mut back)
            .map_err(|e| format!("read: {e}"))?;
        if back[..] != message[..] {
            return Err("an echo differs from what was sent".to_owned());
        }
    }
    thread::sleep(Duration::from_millis(300));
    let after = rss_kib(pid)?;
    server.alive()?;
    drop(streams);
    let per = |kib: u64| kib.saturating_sub(before) * 1024 / wanted as u64;
    Ok(Outcome {
        figure: format!(
            "{} B per connection ({} B idle; {wanted} open, all echoed; RSS {:.1} -> {:.1} MiB)",
            per(after),
            per(idle),
            before as f64 / 1024.0,
            after as f64 / 1024.0
        ),
        pass: per(after) <= PER_CONNECTION_BOUND,
        bound: format!("<= {PER_CONNECTION_BOUND} B"),
    })
}

/// How far the server's resident set may grow for one client that never reads: the send
/// queue's soft limit (1 MiB, past which `on_data` pauses), one `on_data`'s reads on top of it
/// (up to 1 MiB in the examples), the receive high-water mark (256 KiB), and the pools' growth
/// steps.
const NEVER_READS_BOUND_KIB: u64 = 4096;

/// A client that writes without ever reading: the server's memory must stay bounded.
pub(crate) fn never_reads(lab: &Lab) -> DrillResult {
    let total: usize = lab.pick(16 << 20, 64 << 20);
    let mut server = lab.start(&lab.raw_echo, &[], "never-reads")?;
    let pid = server.pid();
    thread::sleep(Duration::from_millis(100));
    let before = rss_kib(pid)?;
    let mut peak = before;
    let stream = connect(server.addr())?;
    stream.set_nonblocking(true).map_err(|e| e.to_string())?;
    let chunk = payload(64 * 1024);
    let mut written = 0usize;
    let started = Instant::now();
    let mut last_progress = Instant::now();
    while written < total && started.elapsed() < Duration::from_secs(20) {
        match (&stream).write(&chunk[..chunk.len().min(total - written)]) {
            Ok(count) => {
                written += count;
                last_progress = Instant::now();
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                peak = peak.max(rss_kib(pid)?);
                if last_progress.elapsed() > Duration::from_millis(1500) {
                    break;
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(error) => return Err(format!("write after {written} bytes: {error}")),
        }
    }
    thread::sleep(Duration::from_millis(200));
    peak = peak.max(rss_kib(pid)?);
    server.alive()?;
    let growth = peak.saturating_sub(before);
    Ok(Outcome {
        figure: format!(
            "RSS +{:.1} MiB after the client wrote {:.1} of {:.0} MiB unread",
            growth as f64 / 1024.0,
            mib(written as u64),
            mib(total as u64)
        ),
        pass: growth <= NEVER_READS_BOUND_KIB,
        bound: format!("RSS +<= {} MiB", NEVER_READS_BOUND_KIB / 1024),
    })
}

/// Streams that half-close after sending: every byte must come back before the server's FIN.
pub(crate) fn half_close(lab: &Lab) -> DrillResult {
    let (streams, size) = lab.pick((4, 1 << 20), (32, 4 << 20));
    let mut server = lab.start(&lab.raw_echo, &[], "half-close")?;
    let data = Arc::new(payload(size));
    let addr = server.addr();
    let runs: Vec<_> = (0..streams)
        .map(|_| {
            let data = Arc::clone(&data);
            thread::spawn(move || echo_to_fin(addr, data))
        })
        .collect();
    let mut complete = 0;
    for run in runs {
        if run.join().map_err(|_| "a client panicked".to_owned())?? {
            complete += 1;
        }
    }
    server.alive()?;
    Ok(Outcome {
        figure: format!(
            "{complete}/{streams} streams got all {:.0} MiB back before the FIN",
            mib(size as u64)
        ),
        pass: complete == streams,
        bound: "all bytes, every stream".to_owned(),
    })
}

/// RSS growth allowed over the cycles after the warm-up.
const CHURN_RSS_BOUND_KIB: u64 = 1024;

/// Connect, echo, half-close, read to the FIN, close, many times: descriptors and memory flat.
pub(crate) fn churn(lab: &Lab) -> DrillResult {
    let cycles: usize = lab.pick(2_000, 20_000);
    let warm_up = cycles / 10;
    let mut server = lab.start(&lab.raw_echo, &[], "churn")?;
    let pid = server.pid();
    let message = payload(32);
    let mut baseline = (0, 0);
    for cycle in 0..cycles {
        if cycle == warm_up {
            thread::sleep(Duration::from_millis(200));
            baseline = (fd_count(pid)?, rss_kib(pid)?);
        }
        let mut stream = connect(server.addr())?;
        stream
            .write_all(&message)
            .map_err(|e| format!("cycle {cycle}: {e}"))?;
        stream
            .shutdown(Shutdown::Write)
            .map_err(|e| e.to_string())?;
        let (back, error) = read_to_end(&mut stream);
        if error.is_some() || back != message {
            return Err(format!("cycle {cycle}: echo {back:?}, {error:?}"));
        }
    }
    let mut fds = fd_count(pid)?;
    wait_for(Duration::from_secs(3), || {
        fds = fd_count(pid).unwrap_or(usize::MAX);
        fds <= baseline.0
    });
    let rss = rss_kib(pid)?;
    server.alive()?;
    let growth = rss.saturating_sub(baseline.1);
    Ok(Outcome {
        figure: format!(
            "{cycles} cycles: fds {} -> {fds}, RSS {:.1} -> {:.1} MiB (from cycle {warm_up})",
            baseline.0,
            baseline.1 as f64 / 1024.0,
            rss as f64 / 1024.0
        ),
        pass: fds <= baseline.0 && growth <= CHURN_RSS_BOUND_KIB,
        bound: format!("fds flat, RSS +<= {} MiB", CHURN_RSS_BOUND_KIB / 1024),
    })
}

/// RSS growth always allowed over the second half of the resets (the first half fills the
/// pools, whose high-water mark depends on how many echoes were in flight at once; on a busy
/// machine the server falls behind and the mark can rise late: 6.7 MiB was seen). A leak of
/// what the resets queue is far more: 100 connections of up to 256 KiB each per half.
const RESETS_RSS_BOUND_KIB: u64 = 8 * 1024;

/// Connections reset (closed with unread echoes) while the server still has data queued for
/// them, in ten batches, each sent once the server has dropped the previous one:
/// descriptors back to the baseline, and memory levelling off: the second half may add at
/// most half what the first half added (a leak adds as much), or [`RESETS_RSS_BOUND_KIB`].
pub(crate) fn resets(lab: &Lab) -> DrillResult {
    let total: usize = lab.pick(200, 1_000);
    let batch = total / 10;
    let mut server = lab.start(&lab.raw_echo, &[], "resets")?;
    let pid = server.pid();
    thread::sleep(Duration::from_millis(100));
    let (fds_before, rss_before) = (fd_count(pid)?, rss_kib(pid)?);
    let chunk = payload(256 * 1024);
    let mut queued = 0u64;
    let mut halfway = 0;
    for round in 0..10 {
        if round == 5 {
            halfway = rss_kib(pid)?;
        }
        let mut streams = Vec::with_capacity(batch);
        for _ in 0..batch {
            let stream = connect(server.addr())?;
            stream.set_nonblocking(true).map_err(|e| e.to_string())?;
            let mut sent = 0;
            while sent < chunk.len() {
                match (&stream).write(&chunk[sent..]) {
                    Ok(count) => sent += count,
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(error) => return Err(format!("write: {error}")),
                }
            }
            queued += sent as u64;
            streams.push(stream);
        }
        // Let the echoes arrive unread, so closing resets each connection: the server has
        // answered every stream of the batch (bounded: a slow one is checked at the end).
        wait_for(Duration::from_secs(5), || {
            streams
                .iter()
                .all(|stream| stream.peek(&mut [0u8; 1]).is_ok_and(|count| count > 0))
        });
        drop(streams);
        // One batch at a time: the server drops this batch's connections before the next
        // comes. Otherwise a server starved of CPU (a busy machine) would hold several
        // batches' echoes at once, and the pools' high-water mark, a function of scheduling,
        // could rise in the second half and pass for a leak.
        wait_for(Duration::from_secs(5), || {
            fd_count(pid).is_ok_and(|fds| fds <= fds_before)
        });
    }
    let mut fds = 0;
    let settled = wait_for(Duration::from_secs(5), || {
        fds = fd_count(pid).unwrap_or(usize::MAX);
        fds <= fds_before
    });
    server.alive()?;
    let mut fresh = connect(server.addr())?;
    round_trip(&mut fresh, b"still serving")?;
    let rss = rss_kib(pid)?;
    let first = halfway.saturating_sub(rss_before);
    let second = rss.saturating_sub(halfway);
    Ok(Outcome {
        figure: format!(
            "{total} resets ({:.0} MiB sent): fds back to {fds} (was {fds_before}) {}; RSS \
             {:.1} -> {:.1} MiB at half, {:.1} MiB at the end; still serving",
            mib(queued),
            settled.map_or("never".to_owned(), |t| format!("in {} ms", t.as_millis())),
            rss_before as f64 / 1024.0,
            halfway as f64 / 1024.0,
            rss as f64 / 1024.0
        ),
        pass: settled.is_some() && second <= RESETS_RSS_BOUND_KIB.max(first / 2),
        bound: format!(
            "fds back within 5 s; 2nd half RSS +<= max({} MiB, 1st half / 2)",
            RESETS_RSS_BOUND_KIB / 1024
        ),
    })
}

/// The times of `count` 64-byte round trips on `stream`, in microseconds.
fn round_trips_us(stream: &mut TcpStream, count: usize) -> Result<Vec<f64>, String> {
    let message = payload(64);
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        round_trip(stream, &message)?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(times)
}

/// The 99th percentile of `times`.
fn p99(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[(times.len() * 99 / 100).min(times.len().saturating_sub(1))]
}

/// How much slower the fast client's p99 may be with the slow readers than without.
const SLOW_READERS_RATIO: f64 = 1.2;

/// Slow readers beside one fast client: each slow reader has 256 KiB of echo outstanding
/// that it reads 1 KiB at a time every 500 ms, writing back what it read (so the server always
/// has answers queued that it can't send yet). The fast client's p99 round trip must stay
/// within 1.2x of its p99 while the slow readers pause (the round trips of alternating runs
/// pooled per condition).
pub(crate) fn slow_readers(lab: &Lab) -> DrillResult {
    let (readers, trips, reps) = lab.pick((50, 300, 4), (200, 500, 20));
    let mut server = lab.start(&lab.raw_echo, &[], "slow-readers")?;
    let addr = server.addr();
    let mut fast = connect(addr)?;
    round_trips_us(&mut fast, 200)?; // warm-up
    let outstanding = payload(256 * 1024);
    let mut slow = Vec::with_capacity(readers);
    for _ in 0..readers {
        let mut stream = connect(addr)?;
        stream
            .write_all(&outstanding)
            .map_err(|e| format!("write: {e}"))?;
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        slow.push(stream);
    }
    let loaded = Arc::new(AtomicBool::new(false));
    let quit = Arc::new(AtomicBool::new(false));
    let moved = Arc::new(AtomicU64::new(0));
    let load = {
        let (loaded, quit, moved) = (Arc::clone(&loaded), Arc::clone(&quit), Arc::clone(&moved));
        thread::spawn(move || {
            // Each reader every 500 ms, a fifth of them every 100 ms: few wake-ups of this
            // thread, which shares the two cores with the fast client and the server.
            let mut buf = [0u8; 1024];
            let per_step = slow.len().div_ceil(5);
            let mut next = 0;
            while !quit.load(Ordering::Relaxed) {
                if loaded.load(Ordering::Relaxed) {
                    for _ in 0..per_step {
                        let stream = &slow[next];
                        next = (next + 1) % slow.len();
                        if let Ok(count) = (&*stream).read(&mut buf) {
                            let _ = (&*stream).write(&buf[..count]);
                            moved.fetch_add(count as u64, Ordering::Relaxed);
                        }
                    }
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let (mut unloaded, mut with_load) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        loaded.store(false, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(100));
        unloaded.extend(round_trips_us(&mut fast, trips)?);
        loaded.store(true, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(200));
        with_load.extend(round_trips_us(&mut fast, trips)?);
    }
    quit.store(true, Ordering::Relaxed);
    load.join()
        .map_err(|_| "the slow readers panicked".to_owned())?;
    server.alive()?;
    let (unloaded, with_load) = (p99(unloaded), p99(with_load));
    let ratio = with_load / unloaded;
    Ok(Outcome {
        figure: format!(
            "p99 {with_load:.0} us beside {readers} slow readers vs {unloaded:.0} us with them \
             paused ({ratio:.2}x; they read {:.1} MiB)",
            mib(moved.load(Ordering::Relaxed))
        ),
        pass: ratio <= SLOW_READERS_RATIO,
        bound: format!("<= {SLOW_READERS_RATIO}x"),
    })
}

/// The spec echo's prompt to an idle connection.
const PROMPT: &[u8] = b"Server: Are you there?\n";

/// The echo example's idle timeout (its `on_timeout` prompts and keeps the connection).
const SPEC_TIMEOUT: Duration = Duration::from_secs(5);

/// How late after the timeout a prompt may come (the reactor's timer granularity and load).
const PROMPT_SLACK: Duration = Duration::from_millis(2500);

/// The slowest answer the served client may get while the slowloris connections trickle.
const SERVED_BOUND: Duration = Duration::from_millis(250);

/// Slowloris connections, a byte every 10 s, against the spec echo: each is timed out (the
/// example's `on_timeout` prompts `Server: Are you there?`) 5 s after its last byte, within
/// [`PROMPT_SLACK`], while another client is served throughout.
pub(crate) fn slowloris(lab: &Lab) -> DrillResult {
    let Some(spec) = &lab.spec_echo else {
        return Err("no spec echo server in this lab".to_owned());
    };
    let (count, bytes) = lab.pick((100, 1), (1_000, 2));
    let interval = Duration::from_secs(10);
    let mut server = lab.start(spec, &[], "slowloris")?;
    let addr = server.addr();
    // Each connection: its stream, what it read, the times of its bytes and its prompts.
    struct Loris {
        stream: TcpStream,
        tail: Vec<u8>,
        sent: Vec<Instant>,
        prompts: Vec<Instant>,
    }
    let mut lorises = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = connect(addr)?;
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        lorises.push(Loris {
            stream,
            tail: Vec::new(),
            sent: Vec::new(),
            prompts: Vec::new(),
        });
    }
    let quit = Arc::new(AtomicBool::new(false));
    let served = {
        let quit = Arc::clone(&quit);
        let mut client = connect(addr)?;
        thread::spawn(move || -> Result<(usize, Duration), String> {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            let (mut answered, mut slowest) = (0, Duration::ZERO);
            // Skip the welcome line.
            while !line.ends_with(b"\n") {
                client.read_exact(&mut byte).map_err(|e| e.to_string())?;
                line.push(byte[0]);
            }
            while !quit.load(Ordering::Relaxed) {
                let start = Instant::now();
                client.write_all(b"ping\n").map_err(|e| e.to_string())?;
                line.clear();
                while line != b"Echo: ping\n" {
                    client.read_exact(&mut byte).map_err(|e| e.to_string())?;
                    line.push(byte[0]);
                    if byte[0] == b'\n' && line != b"Echo: ping\n" {
                        line.clear();
                    }
                }
                answered += 1;
                slowest = slowest.max(start.elapsed());
                thread::sleep(Duration::from_millis(100));
            }
            Ok((answered, slowest))
        })
    };
    let started = Instant::now();
    let end =
        started + interval * (bytes - 1) + SPEC_TIMEOUT + PROMPT_SLACK + Duration::from_millis(500);
    let mut buf = [0u8; 256];
    let mut next_byte = 0;
    while Instant::now() < end {
        if next_byte < bytes && started.elapsed() >= interval * next_byte {
            for loris in &mut lorises {
                (&loris.stream)
                    .write_all(b"x")
                    .map_err(|e| format!("slowloris write: {e}"))?;
                loris.sent.push(Instant::now());
            }
            next_byte += 1;
        }
        for loris in &mut lorises {
            loop {
                match (&loris.stream).read(&mut buf) {
                    Ok(0) => break,
                    Ok(count) => {
                        loris.tail.extend_from_slice(&buf[..count]);
                        let found = loris
                            .tail
                            .windows(PROMPT.len())
                            .filter(|w| *w == PROMPT)
                            .count();
                        loris.prompts.extend((0..found).map(|_| Instant::now()));
                        // Shorter than a prompt: what is kept can't be counted twice.
                        let keep = loris.tail.len().saturating_sub(PROMPT.len() - 1);
                        loris.tail.drain(..keep);
                    }
                    Err(_) => break,
                }
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    quit.store(true, Ordering::Relaxed);
    let (answered, slowest) = served
        .join()
        .map_err(|_| "the served client panicked".to_owned())??;
    server.alive()?;
    // Each byte must be followed by a prompt 5 s (+ slack) after it.
    let (mut timed_out, mut latest) = (0, Duration::ZERO);
    for loris in &lorises {
        let ok = loris.sent.iter().all(|&sent| {
            loris.prompts.iter().any(|&prompt| {
                let after = prompt.saturating_duration_since(sent);
                if after >= SPEC_TIMEOUT - Duration::from_millis(100)
                    && after <= SPEC_TIMEOUT + PROMPT_SLACK
                {
                    latest = latest.max(after);
                    true
                } else {
                    false
                }
            })
        });
        if ok {
            timed_out += 1;
        }
    }
    Ok(Outcome {
        figure: format!(
            "{timed_out}/{count} prompted <= {:.1} s after each of {bytes} bytes; other client \
             {answered} answers, slowest {} ms",
            latest.as_secs_f64(),
            slowest.as_millis()
        ),
        pass: timed_out == count && answered > 0 && slowest <= SERVED_BOUND,
        bound: format!(
            "all timed out in {}-{:.1} s; served < {} ms",
            SPEC_TIMEOUT.as_secs(),
            (SPEC_TIMEOUT + PROMPT_SLACK).as_secs_f64(),
            SERVED_BOUND.as_millis()
        ),
    })
}

/// SIGTERM while `drill_echo` has a bulk answer queued: all of it must arrive before the close.
pub(crate) fn sigterm(lab: &Lab) -> DrillResult {
    let size: usize = lab.pick(8 << 20, 64 << 20);
    let bytes = size.to_string();
    let mut server = lab.start(
        &lab.drill,
        &["--bulk-on", "BULK", "--bulk-bytes", &bytes],
        "sigterm",
    )?;
    let pid = server.pid();
    let before = rss_kib(pid)?;
    let mut stream = connect(server.addr())?;
    stream.write_all(b"BULK").map_err(|e| e.to_string())?;
    // Queued once the server's memory holds it (the client reads nothing yet).
    let queued = wait_for(Duration::from_secs(5), || {
        rss_kib(pid).is_ok_and(|rss| rss >= before + (size as u64 / 1024) * 3 / 4)
    });
    if queued.is_none() {
        return Err("the bulk answer was never queued".to_owned());
    }
    server.signal("TERM");
    let signalled = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let (back, error) = read_to_end(&mut stream);
    let intact = back.len() == size && back.iter().enumerate().all(|(i, &b)| b == pattern(i));
    let status = server.wait_exit(Duration::from_secs(10));
    let exited = status.is_some_and(|status| status.success());
    Ok(Outcome {
        figure: format!(
            "{:.1} of {:.0} MiB delivered{}{}, {} {:.1} s after SIGTERM",
            mib(back.len() as u64),
            mib(size as u64),
            if intact { " intact" } else { " (NOT intact)" },
            error.map_or(String::new(), |e| format!(" (then {e})")),
            status.map_or("none".to_owned(), |s| s.to_string()),
            signalled.elapsed().as_secs_f64()
        ),
        pass: intact && exited,
        bound: "all bytes, then a clean exit".to_owned(),
    })
}

/// The streams the seccomp drill compares.
fn seccomp_streams(addr: SocketAddr, lab: &Lab) -> Result<Vec<bool>, String> {
    let size = lab.pick(1 << 20, 8 << 20);
    let data = Arc::new(payload(size));
    (0..4)
        .map(|_| echo_to_fin(addr, Arc::clone(&data)))
        .collect()
}

/// `drill_echo` under a seccomp filter refusing io_uring: it must fall back to epoll and echo
/// exactly as it does without the filter.
pub(crate) fn seccomp(lab: &Lab) -> DrillResult {
    let plain = {
        let mut server = lab.start(&lab.drill, &[], "seccomp-plain")?;
        let results = seccomp_streams(server.addr(), lab)?;
        server.alive()?;
        (server.engine().unwrap_or_default(), results)
    };
    let mut server = lab.start(&lab.drill, &["--forbid-uring"], "seccomp")?;
    let engine = server.engine().unwrap_or_default();
    let results = seccomp_streams(server.addr(), lab)?;
    server.alive()?;
    let same = results == plain.1 && results.iter().all(|&ok| ok);
    Ok(Outcome {
        figure: format!(
            "{} -> {engine} under the filter; {}/{} echo streams identical",
            plain.0,
            results.iter().filter(|&&ok| ok).count(),
            results.len()
        ),
        pass: engine == "epoll" && same,
        bound: "epoll, same echoes".to_owned(),
    })
}

/// A panic in `on_data` of one connection: that one closes, the others and new ones are served.
pub(crate) fn panic_in_on_data(lab: &Lab) -> DrillResult {
    let others = 7;
    let mut server = lab.start(&lab.drill, &["--panic-on", "PANIC"], "panic")?;
    let mut streams = (0..=others)
        .map(|_| connect(server.addr()))
        .collect::<Result<Vec<_>, _>>()?;
    for stream in &mut streams {
        round_trip(stream, b"hello")?;
    }
    let mut victim = streams.remove(0);
    victim.write_all(b"PANIC").map_err(|e| e.to_string())?;
    let (back, _) = read_to_end(&mut victim);
    let closed = back.is_empty();
    let survivors = streams
        .iter_mut()
        .filter_map(|stream| round_trip(stream, b"still there?").ok())
        .count();
    let fresh = connect(server.addr()).and_then(|mut s| round_trip(&mut s, b"new"));
    server.alive()?;
    let logged = server.log_text().contains("panicked");
    Ok(Outcome {
        figure: format!(
            "panicking connection {}; {survivors}/{others} others echo; new connection {}",
            if closed { "closed" } else { "NOT closed" },
            if fresh.is_ok() { "served" } else { "refused" }
        ),
        pass: closed && survivors == others && fresh.is_ok() && logged,
        bound: "only that connection closes".to_owned(),
    })
}

/// Two workers under load, one killed with SIGKILL: the other's clients go on, reconnects
/// succeed, and the root respawns the worker.
pub(crate) fn worker_killed(lab: &Lab) -> DrillResult {
    let clients = 8;
    let mut server = lab.start(&lab.raw_echo, &["--workers", "2"], "worker-killed")?;
    let root = server.pid();
    let mut workers = Vec::new();
    wait_for(Duration::from_secs(10), || {
        workers = children(root);
        workers.len() == 2 && server.log_text().matches("listening on").count() >= 2
    })
    .ok_or("two workers never started")?;
    let addr = server.addr();
    let quit = Arc::new(AtomicBool::new(false));
    let after_kill = Arc::new(AtomicBool::new(false));
    let runs: Vec<_> = (0..clients)
        .map(|_| {
            let (quit, after_kill) = (Arc::clone(&quit), Arc::clone(&after_kill));
            thread::spawn(move || {
                // (echoes after the kill, connections lost, reconnects refused)
                let (mut served, mut lost, mut refused) = (0u64, 0u64, 0u64);
                let message = payload(1024);
                let mut stream = None;
                while !quit.load(Ordering::Relaxed) {
                    let current = match stream.take() {
                        Some(stream) => stream,
                        None => match connect(addr) {
                            Ok(stream) => stream,
                            Err(_) => {
                                refused += 1;
                                thread::sleep(Duration::from_millis(10));
                                continue;
                            }
                        },
                    };
                    let mut current = current;
                    if round_trip(&mut current, &message).is_ok() {
                        if after_kill.load(Ordering::Relaxed) {
                            served += 1;
                        }
                        stream = Some(current);
                    } else {
                        lost += 1;
                    }
                }
                (served, lost, refused)
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(1000));
    // The worker holding the most connections (epoll may have handed it all of them).
    let victim = workers
        .iter()
        .copied()
        .max_by_key(|&pid| fd_count(pid).unwrap_or(0))
        .ok_or("no worker")?;
    send_signal(victim, "KILL");
    after_kill.store(true, Ordering::Relaxed);
    let respawned = wait_for(Duration::from_secs(10), || {
        let now = children(root);
        now.len() == 2 && !now.contains(&victim)
    });
    thread::sleep(Duration::from_millis(1000));
    quit.store(true, Ordering::Relaxed);
    let (mut served, mut lost, mut refused) = (0, 0, 0);
    for run in runs {
        let (s, l, r) = run.join().map_err(|_| "a client panicked".to_owned())?;
        served += s;
        lost += l;
        refused += r;
    }
    server.alive()?;
    Ok(Outcome {
        figure: format!(
            "respawned {}; {lost} connections lost with it, {refused} reconnects refused, \
             {served} echoes after the kill",
            respawned.map_or("never".to_owned(), |t| format!("in {} ms", t.as_millis()))
        ),
        pass: respawned.is_some() && refused == 0 && served > 0,
        bound: "respawn <= 10 s, no refusal, serving".to_owned(),
    })
}

/// What the TLS garbage drill sends, one connection each: bytes that are no TLS record, a
/// record header announcing more than TLS allows, and a handshake cut off after its header.
const TLS_GARBAGE: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    &[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00, 0x00],
    &[
        0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03,
    ],
];

/// Connections per kind of garbage.
const TLS_GARBAGE_ROUNDS: usize = 20;

/// Handshake garbage against `echo --tls`: each bad connection gets an alert or a close (the
/// truncated handshake by the handshake timeout, which the drill doesn't wait for: it closes
/// its end), and afterwards a real TLS client (`openssl s_client`) still gets its echo.
pub(crate) fn tls_garbage(lab: &Lab) -> DrillResult {
    let mut server = lab.start(&lab.raw_echo, &["--tls"], "tls-garbage")?;
    let mut closed = 0;
    let mut alerts = 0;
    let mut sent = 0;
    for garbage in TLS_GARBAGE.iter().take(2) {
        for _ in 0..TLS_GARBAGE_ROUNDS {
            let mut stream = connect(server.addr())?;
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            stream
                .write_all(garbage)
                .map_err(|e| format!("write: {e}"))?;
            sent += 1;
            let (back, error) = read_to_end(&mut stream);
            // A TLS alert record: content type 21.
            if back.first() == Some(&21) {
                alerts += 1;
            }
            if error.is_none() || error.is_some_and(|e| e.kind() == ErrorKind::ConnectionReset) {
                closed += 1;
            }
        }
    }
    // Truncated handshakes: left hanging by the client, which gives up first.
    for _ in 0..TLS_GARBAGE_ROUNDS {
        let mut stream = connect(server.addr())?;
        stream
            .write_all(TLS_GARBAGE[2])
            .map_err(|e| format!("write: {e}"))?;
    }
    server.alive()?;
    let served = openssl_echo(server.addr())?;
    Ok(Outcome {
        figure: format!(
            "{closed}/{sent} garbage connections closed ({alerts} with an alert), \
             {TLS_GARBAGE_ROUNDS} truncated handshakes abandoned; a real client {}",
            if served {
                "still echoed"
            } else {
                "was NOT served"
            }
        ),
        pass: closed == sent && served,
        bound: "each closed, the server serves on".to_owned(),
    })
}

/// Whether `openssl s_client` completes a handshake with `addr` and gets its line echoed.
fn openssl_echo(addr: SocketAddr) -> Result<bool, String> {
    let mut child = std::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &addr.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("openssl s_client: {e} (install openssl)"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(count @ 1..) = stdout.read(&mut buf) {
            got.extend_from_slice(&buf[..count]);
            if got.windows(10).any(|w| w == b"drill-ping") {
                return true;
            }
        }
        false
    });
    let _ = stdin.write_all(b"drill-ping\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    Ok(reader.is_finished() && reader.join().unwrap_or(false))
}
