//! The processes of the load benchmark: servers started, watched and always stopped, and load
//! generators run to completion within a deadline.

use std::fs::{self, File};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::RunResult;
use super::parse::{parse_stat_cpu_ticks, parse_vm_hwm_kib};
use crate::drills::kit::{children, send_signal};

/// How long a server may take to accept its first connection (strace makes startup slow).
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a server may take to exit after `SIGTERM` before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A free port on 127.0.0.1 (bound, read and released; the server binds it right after).
pub(super) fn free_port() -> RunResult<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Runs a program to completion within `timeout`, returning its stdout; kills it on timeout.
pub(super) fn run_bounded(mut command: Command, timeout: Duration) -> RunResult<String> {
    let shown = format!("{command:?}").replace('"', "");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    // Both pipes are drained on threads so a chatty child never blocks on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let Some(status) = wait_until(&mut child, Instant::now() + timeout)? else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("`{shown}` did not finish within {timeout:?}").into());
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("`{shown}` failed ({status}): {}", tail(&stderr)).into());
    }
    Ok(stdout)
}

/// Reads a pipe to its end on a thread; the text is what the thread returns.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Polls `child` until it exits or `deadline` passes (None).
fn wait_until(child: &mut Child, deadline: Instant) -> RunResult<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The last few lines of a log, for error messages.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// A started server; dropping it kills it and its children, so no error leaves one behind.
#[derive(Debug)]
pub(super) struct Server {
    /// `taskset` execs the program, so this is the server itself, or strace when traced.
    child: Child,
    /// Whether `child` is strace, whose own child is the server.
    traced: bool,
    port: u16,
    /// The server's stdout and stderr, shown when it fails.
    log: PathBuf,
    /// Set by `stop`, after which `Drop` only reaps what is left.
    stopped: bool,
}

impl Server {
    /// Starts `command` (stdout and stderr to `log`) and waits until something accepts TCP
    /// connections on `port`.
    pub(super) fn start(
        mut command: Command,
        port: u16,
        traced: bool,
        log: PathBuf,
    ) -> RunResult<Self> {
        let file = File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let mut server = Self {
            child,
            traced,
            port,
            log,
            stopped: false,
        };
        server.wait_ready()?;
        Ok(server)
    }

    pub(super) fn port(&self) -> u16 {
        self.port
    }

    /// Waits until the server accepts a TCP connection, or fails with the end of its log.
    fn wait_ready(&mut self) -> RunResult<()> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = self.log_tail();
                return Err(format!("server exited ({status}) before listening: {log}").into());
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let log = self.log_tail();
                return Err(format!("server not listening after {READY_TIMEOUT:?}: {log}").into());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        tail(&fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// The server's process id: strace's child when traced.
    pub(super) fn server_pid(&self) -> RunResult<u32> {
        if !self.traced {
            return Ok(self.child.id());
        }
        children(self.child.id())
            .first()
            .copied()
            .ok_or_else(|| "strace has no child".into())
    }

    /// Reads one of the server's `/proc/PID` files, failing if it already exited.
    fn proc_file(&mut self, name: &str) -> RunResult<String> {
        if let Some(status) = self.child.try_wait()? {
            let log = self.log_tail();
            return Err(format!("server exited ({status}) during the load: {log}").into());
        }
        let path = format!("/proc/{}/{name}", self.server_pid()?);
        Ok(fs::read_to_string(path)?)
    }

    /// The server's `utime + stime` in clock ticks (all its threads).
    pub(super) fn cpu_ticks(&mut self) -> RunResult<u64> {
        parse_stat_cpu_ticks(&self.proc_file("stat")?)
            .ok_or_else(|| "unreadable /proc/PID/stat".into())
    }

    /// The server's peak resident set size (`VmHWM`) in KiB.
    pub(super) fn peak_rss_kib(&mut self) -> RunResult<u64> {
        parse_vm_hwm_kib(&self.proc_file("status")?)
            .ok_or_else(|| "no VmHWM in /proc/PID/status".into())
    }

    /// Sends `SIGTERM` to the server itself (strace blocks fatal signals, and exits with its
    /// summary once its child has) and waits for the process to exit, killing it past
    /// [`STOP_TIMEOUT`].
    pub(super) fn stop(mut self) -> RunResult<()> {
        self.stopped = true;
        let pid = self.server_pid()?;
        send_signal(pid, "TERM");
        if wait_until(&mut self.child, Instant::now() + STOP_TIMEOUT)?.is_none() {
            self.kill();
            return Err(format!("server ignored SIGTERM for {STOP_TIMEOUT:?}; killed").into());
        }
        Ok(())
    }

    /// Kills the server and its children and reaps it.
    fn kill(&mut self) {
        for pid in children(self.child.id()) {
            send_signal(pid, "KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped || matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}
