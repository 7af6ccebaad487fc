//! Memory per idle connection: the server's resident set with N idle connections open, minus
//! before, divided by the connections it accepted.
//!
//! The connections are opened from this process (the load side) on loopback, one after the
//! other, within [`CONNECT_DEADLINE`]; they never send a byte. The server has accepted them when
//! its descriptor count (`/proc/PID/fd`) grew by as many. RLIMIT_NOFILE is raised first (with
//! `prlimit(1)`, since xtask has no libc), for this process and the servers it starts next.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::RunResult;
use super::parse::{parse_open_files_limit, parse_vm_rss_kib};

/// How long opening all the connections may take.
const CONNECT_DEADLINE: Duration = Duration::from_secs(60);

/// How long the server may take to accept what was opened.
const ACCEPT_DEADLINE: Duration = Duration::from_secs(20);

/// Descriptors beyond the idle connections: the process's own, and some slack.
const SPARE_FILES: u64 = 1024;

/// What one idle-connections run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct IdleMemory {
    /// Connections asked for.
    pub(super) wanted: usize,
    /// Connections the client opened.
    pub(super) opened: usize,
    /// Connections the server accepted (its descriptor count's growth).
    pub(super) accepted: usize,
    /// Resident set before and with the connections open, KiB.
    pub(super) rss_before_kib: u64,
    pub(super) rss_after_kib: u64,
}

impl IdleMemory {
    /// User memory per idle connection in bytes; None when nothing was accepted.
    pub(super) fn bytes_per_connection(&self) -> Option<f64> {
        (self.accepted > 0).then(|| {
            self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0
                / self.accepted as f64
        })
    }
}

impl std::fmt::Display for IdleMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per = self
            .bytes_per_connection()
            .map_or("n/a".to_owned(), |bytes| format!("{bytes:.0} B"));
        write!(
            f,
            "{per} per idle connection ({} of {} accepted; RSS {:.1} -> {:.1} MiB)",
            self.accepted,
            self.wanted,
            self.rss_before_kib as f64 / 1024.0,
            self.rss_after_kib as f64 / 1024.0
        )
    }
}

/// Raises this process's RLIMIT_NOFILE so it (and the servers it starts afterwards, which
/// inherit it) can hold `connections` sockets; returns what it did.
pub(super) fn raise_open_files(connections: usize) -> Result<String, String> {
    let need = connections as u64 + SPARE_FILES;
    let read = || {
        fs::read_to_string("/proc/self/limits")
            .ok()
            .as_deref()
            .and_then(parse_open_files_limit)
            .ok_or_else(|| "unreadable /proc/self/limits".to_owned())
    };
    let (soft, hard) = read()?;
    if soft.is_none_or(|soft| soft >= need) {
        let soft = soft.map_or("unlimited".to_owned(), |soft| soft.to_string());
        return Ok(format!("RLIMIT_NOFILE {soft} already allows {need} files"));
    }
    // Raising the hard limit needs privilege; without it, the soft limit goes up to the hard.
    let hard = hard.map_or(need, |hard| hard.max(need));
    let status = Command::new("prlimit")
        .args(["--pid", &std::process::id().to_string()])
        .arg(format!("--nofile={need}:{hard}"))
        .status()
        .map_err(|e| format!("cannot run prlimit: {e}"))?;
    let (now, _) = read()?;
    if !status.success() || now.is_some_and(|now| now < need) {
        return Err(format!(
            "prlimit --nofile={need}:{hard} failed ({status}); soft limit {now:?}: \
             fewer idle connections will be measured"
        ));
    }
    Ok(format!("RLIMIT_NOFILE raised to {need}:{hard}"))
}

/// The resident set (KiB) and the open descriptors of process `pid`.
fn rss_and_files(pid: u32) -> RunResult<(u64, usize)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = parse_vm_rss_kib(&status).ok_or("no VmRSS in /proc/PID/status")?;
    let files = fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    Ok((rss, files))
}

/// Opens `wanted` idle connections to `127.0.0.1:port`, waits until the server `pid` accepted
/// them, and measures the resident memory they added.
pub(super) fn measure_idle(pid: u32, port: u16, wanted: usize) -> RunResult<IdleMemory> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // Let the readiness probe's connection finish closing before the baseline is read.
    thread::sleep(Duration::from_millis(200));
    let (rss_before_kib, files_before) = rss_and_files(pid)?;
    let deadline = Instant::now() + CONNECT_DEADLINE;
    let mut connections = Vec::with_capacity(wanted);
    let mut stopped = None;
    while connections.len() < wanted && Instant::now() < deadline {
        match TcpStream::connect_timeout(&address, Duration::from_secs(5)) {
            Ok(stream) => connections.push(stream),
            Err(error) => {
                stopped = Some(error);
                break;
            }
        }
    }
    let opened = connections.len();
    // Wait until the server holds a descriptor per connection, or its count stops growing.
    let accept_deadline = Instant::now() + ACCEPT_DEADLINE;
    let mut last = (Instant::now(), 0);
    let (rss_after_kib, accepted) = loop {
        let (rss, files) = rss_and_files(pid)?;
        let accepted = files.saturating_sub(files_before);
        if accepted != last.1 {
            last = (Instant::now(), accepted);
        }
        let settled = last.0.elapsed() > Duration::from_secs(2);
        if accepted >= opened || settled || Instant::now() >= accept_deadline {
            // Give the last accepted connections' receives time to be armed, then measure.
            thread::sleep(Duration::from_millis(300));
            let (rss, _) = rss_and_files(pid).unwrap_or((rss, files));
            break (rss, accepted.min(opened));
        }
        thread::sleep(Duration::from_millis(50));
    };
    drop(connections);
    if opened == 0 {
        let why = stopped.map_or("deadline".to_owned(), |e| e.to_string());
        return Err(format!("no idle connection could be opened: {why}").into());
    }
    if let Some(error) = stopped {
        eprintln!("[memory] stopped opening at {opened} of {wanted}: {error}");
    }
    Ok(IdleMemory {
        wanted,
        opened,
        accepted,
        rss_before_kib,
        rss_after_kib,
    })
}
