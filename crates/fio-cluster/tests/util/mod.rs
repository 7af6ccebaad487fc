//! Running `fio-cluster-test-server` as a child process, reading its output as it comes, and
//! talking to it over loopback. Every wait has a deadline; dropping a [`Server`] kills the root
//! and every worker it announced.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use fio_sys::{Pid, Signal};

/// The test server's path.
pub const SERVER: &str = env!("CARGO_BIN_EXE_fio-cluster-test-server");

/// One line of output, when it arrived.
#[derive(Debug, Clone)]
pub struct Line {
    /// When the test read it.
    pub at: Instant,
    /// From stderr (the cluster's log) rather than stdout.
    pub stderr: bool,
    /// The text.
    pub text: String,
}

/// A running test server.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    lines: Receiver<Line>,
    /// Every line read so far.
    pub history: Vec<Line>,
}

impl Server {
    /// Starts the test server with `args`.
    pub fn start(args: &[&str]) -> Self {
        let mut command = Command::new(SERVER);
        command.args(args);
        Self::spawn(command)
    }

    /// Starts `command` (the test server, possibly behind a shell) with piped output.
    pub fn spawn(mut command: Command) -> Self {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("start the test server");
        let (send, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for (stream, is_stderr) in [
            (Box::new(stdout) as Box<dyn Read + Send>, false),
            (Box::new(stderr), true),
        ] {
            let send = send.clone();
            thread::spawn(move || {
                for text in BufReader::new(stream).lines() {
                    let Ok(text) = text else { break };
                    let line = Line {
                        at: Instant::now(),
                        stderr: is_stderr,
                        text,
                    };
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child: Some(child),
            lines,
            history: Vec::new(),
        }
    }

    /// The root's pid.
    pub fn pid(&self) -> Pid {
        let child = self.child.as_ref().expect("running");
        Pid::new(i32::try_from(child.id()).expect("pid")).expect("pid")
    }

    /// Reads lines until one matches `matches` (earlier lines count too, once); `None` after
    /// `timeout`.
    pub fn wait_for(&mut self, timeout: Duration, matches: impl Fn(&Line) -> bool) -> Option<Line> {
        self.wait_count(timeout, 1, matches).pop()
    }

    /// Waits until `count` lines match (counting the history); returns them, or fewer after
    /// `timeout`.
    pub fn wait_count(
        &mut self,
        timeout: Duration,
        count: usize,
        matches: impl Fn(&Line) -> bool,
    ) -> Vec<Line> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<Line> = self
                .history
                .iter()
                .filter(|l| matches(l))
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.history.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return found,
            }
        }
    }

    /// Takes whatever output arrived by now.
    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.history.push(line);
        }
    }

    /// The port of the `LISTENING <port>` line.
    pub fn port(&mut self) -> u16 {
        self.number_after("LISTENING ")
    }

    /// The number after `prefix` on a stdout line.
    pub fn number_after(&mut self, prefix: &str) -> u16 {
        let line = self
            .wait_for(Duration::from_secs(10), |l| l.text.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line: {:#?}", self.history));
        line.text[prefix.len()..].trim().parse().expect("a port")
    }

    /// Waits until `count` workers reported serving; returns their pids.
    pub fn serving(&mut self, count: usize) -> Vec<i32> {
        let lines = self.wait_count(Duration::from_secs(15), count, |l| {
            l.text.contains("cluster root: worker") && l.text.ends_with(" serving")
        });
        assert!(
            lines.len() >= count,
            "workers didn't serve: {:#?}",
            self.history
        );
        lines.iter().map(|l| worker_pid(&l.text)).collect()
    }

    /// Sends `signal` to the root.
    pub fn signal(&self, signal: Signal) {
        fio_sys::kill(self.pid(), signal).expect("signal the root");
    }

    /// Waits for the root to exit; `None` after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                // Let the readers finish.
                let _ = self.wait_count(Duration::from_millis(300), usize::MAX, |_| true);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then the exit status (within 20 s).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(Signal::TERM);
        let status = self.wait_exit(Duration::from_secs(20));
        status.unwrap_or_else(|| panic!("the root didn't exit: {:#?}", self.history))
    }

    /// Every pid the root announced as a started worker.
    pub fn worker_pids(&self) -> Vec<i32> {
        self.history
            .iter()
            .filter(|l| l.text.contains("cluster root: worker") && l.text.ends_with(" started"))
            .map(|l| worker_pid(&l.text))
            .collect()
    }

    /// Whether any output reports a parent crash.
    pub fn reported_parent_crash(&self) -> bool {
        self.history
            .iter()
            .any(|l| l.text.contains("the root process") || l.text.contains("OnParentCrush"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.drain();
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        for pid in self.worker_pids() {
            // Only a worker still alive: its pid may have been reused once it was reaped.
            let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.starts_with(SERVER.as_bytes()));
            if let Some(pid) = Pid::new(pid).filter(|_| ours && !is_gone(pid)) {
                let _ = fio_sys::kill(pid, Signal::KILL);
            }
        }
    }
}

/// The pid in `cluster root: worker <pid> ...`.
pub fn worker_pid(text: &str) -> i32 {
    let rest = &text[text.find("worker ").expect("a worker line") + "worker ".len()..];
    rest.split_whitespace()
        .next()
        .and_then(|pid| pid.parse().ok())
        .expect("a pid")
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
pub fn is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// A loopback connection with 3 s timeouts.
pub fn connect(port: u16) -> std::io::Result<TcpStream> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.set_write_timeout(Some(Duration::from_secs(3)))?;
    Ok(stream)
}

/// Sends `message` and reads back exactly its length.
pub fn exchange(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(message)?;
    let mut answer = vec![0; message.len()];
    stream.read_exact(&mut answer)?;
    Ok(answer)
}

/// One connect-send-echo-close round; an error says what failed.
pub fn echo_once(port: u16) -> Result<(), String> {
    let mut stream = connect(port).map_err(|e| format!("connect: {e}"))?;
    let answer = exchange(&mut stream, b"hello\n").map_err(|e| format!("exchange: {e}"))?;
    if answer == b"hello\n" {
        Ok(())
    } else {
        Err(format!("wrong echo {answer:?}"))
    }
}

/// The pid of the worker serving `stream`.
pub fn pid_of(stream: &mut TcpStream) -> std::io::Result<i32> {
    stream.write_all(b"PID\n")?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while byte[0] != b'\n' {
        stream.read_exact(&mut byte)?;
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line)
        .trim()
        .parse()
        .map_err(|_| std::io::Error::other("not a pid"))
}
