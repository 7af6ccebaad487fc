//! Processes: `fork`, `waitpid`, `kill`, the parent's pid, the parent-death signal and
//! `_exit`.
//!
//! `fork` in a multithreaded process leaves the child with only the forking thread, and any
//! lock another thread held (the allocator's, stdout's) stays locked forever. So the safe
//! [`fork`] refuses unless the caller is the only thread, and [`fork_unchecked`] is `unsafe`,
//! with the child's duties spelled out.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::flags::flag_set;
use crate::signal::Signal;
use crate::syscall::syscall;

/// A process id; always positive, so it can never name a process group (`kill(0)`,
/// `kill(-pgid)`) or every process (`kill(-1)`) by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(libc::pid_t);

impl Pid {
    /// Wraps a raw pid; `None` unless it is positive.
    pub const fn new(raw: libc::pid_t) -> Option<Self> {
        if raw > 0 { Some(Self(raw)) } else { None }
    }

    /// The raw pid.
    pub const fn as_raw(self) -> libc::pid_t {
        self.0
    }

    /// The calling process's pid (`getpid(2)`).
    pub fn current() -> Self {
        // SAFETY: getpid takes no arguments and cannot fail.
        Self(unsafe { syscall!(@infallible getpid()) })
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which side of a [`fork`] the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fork {
    /// The original process; `child` is the new process's pid.
    Parent {
        /// The child's pid, for [`waitpid`] and [`kill`].
        child: Pid,
    },
    /// The new process.
    Child,
}

flag_set! {
    /// Options for [`waitpid`] (`W*`).
    pub struct WaitOptions(libc::c_int) {
        /// Return `Ok(None)` at once when no child has changed state (`WNOHANG`).
        const NOHANG = libc::WNOHANG;
    }
}

/// Forks the process, if the caller is its only thread.
///
/// With one thread there is no lock another thread could hold at the fork, so the child may
/// run any code, allocate, and build its own threads and rings, which is how the cluster starts
/// workers. The thread count is read from `/proc/self/status`; nothing else can start a thread
/// between that check and the fork, because only a running thread can create one.
///
/// io_uring worker threads (`iou-wrk-*`) count as threads, so build rings after forking (the
/// architecture does this anyway: rings are per worker).
///
/// # Errors
/// - `ErrorKind::Other`, naming the thread count, when the process has more than one thread;
/// - the error reading `/proc/self/status` (`NotFound` when `/proc` is not mounted);
/// - `EAGAIN` when a process limit (`RLIMIT_NPROC`, `pids` cgroup) is reached, `ENOMEM`.
///
/// # Examples
/// With a second thread alive, `fork` refuses (`tests/fork_single_thread.rs` shows a fork):
/// ```
/// let (release, parked) = std::sync::mpsc::channel::<()>();
/// let helper = std::thread::spawn(move || parked.recv());
/// let refusal = fio_sys::fork().unwrap_err();
/// assert!(refusal.to_string().contains("threads"));
/// drop(release);
/// assert!(helper.join().unwrap().is_err());
/// ```
pub fn fork() -> io::Result<Fork> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "refusing to fork a process with {threads} threads: only the forking thread would \
             survive in the child, and any lock the others held would stay locked"
        )));
    }
    // SAFETY: the caller is the process's only thread, so the child inherits no lock held by
    // a thread that does not exist in it, and may run any code.
    unsafe { fork_unchecked() }
}

/// Forks the process without checking how many threads it has (`fork(2)`).
///
/// # Safety
/// If the process has other threads, the child holds a copy of every lock they held at the
/// fork, locked forever. Until it calls [`exit_immediately`] (or `exec`), the child must then
/// call only async-signal-safe functions (see `signal-safety(7)`): no allocation, no `println!`,
/// no `std::sync` lock another thread may have held, no `std::process::exit` (it runs atexit
/// handlers). Wrappers in this crate that make one system call and allocate nothing on
/// success, such as [`exit_immediately`], [`set_parent_death_signal`], [`kill`], and reads
/// and writes on descriptors, are fine; [`resolve`](crate::resolve), [`thread_count`] and
/// [`host_name`](crate::host_name) allocate and are not.
///
/// If the caller is the only thread, this is as safe as [`fork`].
///
/// # Errors
/// - `EAGAIN` when a process limit (`RLIMIT_NPROC`, `pids` cgroup) is reached, `ENOMEM`.
pub unsafe fn fork_unchecked() -> io::Result<Fork> {
    // SAFETY: fork takes no arguments; the caller upholds the child's restrictions.
    let pid = unsafe { syscall!(fork()) }?;
    Ok(match Pid::new(pid) {
        Some(child) => Fork::Parent { child },
        None => Fork::Child,
    })
}

/// The number of threads in this process, from `/proc/self/status`.
///
/// # Errors
/// - the error reading `/proc/self/status` (`NotFound` when `/proc` is not mounted);
/// - `InvalidData` when the file has no `Threads:` line.
pub fn thread_count() -> io::Result<usize> {
    let status = fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "no Threads: line in /proc/self/status",
            )
        })
}

/// Waits for a child to exit or be killed (`waitpid(2)`): the child `child`, or any child for
/// `None`. Returns the child's pid and status, or `None` with [`WaitOptions::NOHANG`] when no
/// child has finished yet.
///
/// # Errors
/// - `ECHILD` when there is no such child (or none at all), or it was already reaped;
/// - `Interrupted` when a signal arrived while blocking (retry).
///
/// # Examples
/// ```
/// // std spawns (fork + exec) the child; fio_sys reaps it.
/// let child = std::process::Command::new("true").spawn()?;
/// let pid = fio_sys::Pid::new(child.id() as i32).unwrap();
/// let (reaped, status) = fio_sys::waitpid(Some(pid), fio_sys::WaitOptions::empty())?.unwrap();
/// assert_eq!((reaped, status.code()), (pid, Some(0)));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn waitpid(child: Option<Pid>, options: WaitOptions) -> io::Result<Option<(Pid, ExitStatus)>> {
    let target = child.map_or(-1, Pid::as_raw);
    let mut status: libc::c_int = 0;
    let status_ptr = std::ptr::from_mut(&mut status);
    // SAFETY: `status_ptr` points to a live int that waitpid fills.
    let pid = unsafe { syscall!(waitpid(target, status_ptr, options.bits())) }?;
    Ok(Pid::new(pid).map(|pid| (pid, ExitStatus::from_raw(status))))
}

/// Sends `signal` to the process `pid` (`kill(2)`).
///
/// # Errors
/// - `ESRCH` when no such process exists (it may have been reaped already);
/// - `EPERM` when the caller may not signal it.
pub fn kill(pid: Pid, signal: Signal) -> io::Result<()> {
    // SAFETY: kill takes no pointers; `pid` is positive, so it names one process.
    unsafe { syscall!(kill(pid.as_raw(), signal.as_raw())) }?;
    Ok(())
}

/// The parent's pid (`getppid(2)`); `None` when the parent lives in another pid namespace (the
/// kernel reports 0).
///
/// A worker compares it with the pid it was forked from: a change means the parent died and the
/// worker was re-parented.
///
/// # Examples
/// ```
/// assert!(fio_sys::parent_pid().is_some());
/// ```
pub fn parent_pid() -> Option<Pid> {
    // SAFETY: getppid takes no arguments and cannot fail.
    Pid::new(unsafe { syscall!(@infallible getppid()) })
}

/// Asks the kernel to send `signal` to this process when the thread that forked it dies
/// (`prctl(PR_SET_PDEATHSIG)`); `None` clears it.
///
/// Set it in the child right after [`fork`], then check [`parent_pid`] once: the parent may
/// have died before the call. Note the trigger is the parent *thread*, so fork from a thread
/// that lives as long as the parent process (its main thread).
///
/// # Errors
/// - `EINVAL` for an invalid signal number.
pub fn set_parent_death_signal(signal: Option<Signal>) -> io::Result<()> {
    let signal = signal.map_or(0, Signal::as_raw);
    let signal = libc::c_ulong::try_from(signal).unwrap_or(0);
    // SAFETY: PR_SET_PDEATHSIG takes an integer argument, not a pointer.
    unsafe { syscall!(prctl(libc::PR_SET_PDEATHSIG, signal)) }?;
    Ok(())
}

/// The signal set by [`set_parent_death_signal`], if any (`prctl(PR_GET_PDEATHSIG)`).
///
/// # Errors
/// - none in practice; `prctl` fails only on a bad pointer, which cannot happen here.
pub fn parent_death_signal() -> io::Result<Option<Signal>> {
    let mut signal: libc::c_int = 0;
    let signal_ptr = std::ptr::from_mut(&mut signal);
    // SAFETY: PR_GET_PDEATHSIG writes one int through `signal_ptr`, which points to a live int.
    unsafe { syscall!(prctl(libc::PR_GET_PDEATHSIG, signal_ptr)) }?;
    Ok(Signal::new(signal))
}

/// Ends the process at once with `code` (`_exit(2)`): no destructors, no atexit handlers, no
/// stdio flush.
///
/// It is async-signal-safe, so it is how a child of [`fork_unchecked`] ends, and how a worker
/// leaves without running the parent's cleanup twice.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit takes an integer and never returns; skipping destructors is allowed (it is
    // what mem::forget does), so no Rust invariant depends on them running.
    unsafe { syscall!(@infallible _exit(code)) }
}

/// Runs `handler` when the process exits normally (`atexit(3)`): when `main` returns or
/// `std::process::exit` is called, in every process that inherited the registration through
/// `fork`; not on `_exit` ([`exit_immediately`]), a fatal signal or an abort. Handlers run
/// newest first, after the exiting thread's thread-locals were destroyed, so `handler` must
/// not rely on them, and must not unwind (a panic leaving an `extern "C" fn` aborts): catch
/// panics inside it.
///
/// # Errors
/// - `OutOfMemory` when the C library can't record another handler.
///
/// # Examples
/// ```
/// extern "C" fn goodbye() {}
/// fio_sys::at_exit(goodbye)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn at_exit(handler: extern "C" fn()) -> io::Result<()> {
    // SAFETY: atexit only stores the function pointer, and any `extern "C" fn()` stays a valid
    // handler for the rest of the process (code of a Rust binary is never unloaded).
    let status = unsafe { syscall!(@infallible atexit(handler)) };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            "atexit: no room for another handler",
        ))
    }
}
