//! systemd socket activation: the listening sockets a service manager handed this process.

use std::env;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::process;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::syscall::syscall;

/// The first descriptor of the handed-over sockets (`SD_LISTEN_FDS_START`).
const FIRST: RawFd = 3;

/// Set once the descriptors were taken, so a second call can't make a second owner.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes the sockets handed over by systemd socket activation (the `sd_listen_fds` protocol):
/// when `LISTEN_PID` names this process, the `LISTEN_FDS` descriptors from 3 on, each made
/// close-on-exec. Returns an empty list when the variables are absent or meant for another
/// process (a parent that passed its environment on), and on every call after the first.
///
/// The variables are left in the environment (removing them is not thread-safe); `LISTEN_PID`
/// already keeps child processes from taking the sockets again.
///
/// # Errors
/// - `InvalidData` when `LISTEN_FDS` is not a number;
/// - `EBADF` when one of the announced descriptors is not open.
///
/// # Examples
/// ```
/// // Not started by systemd: nothing was handed over.
/// assert!(fio_sys::listen_fds()?.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn listen_fds() -> io::Result<Vec<OwnedFd>> {
    let for_us = env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| pid == process::id());
    if !for_us {
        return Ok(Vec::new());
    }
    let count: RawFd = env::var("LISTEN_FDS")
        .ok()
        .and_then(|count| count.trim().parse().ok())
        .filter(|&count| count >= 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "LISTEN_FDS is not a count"))?;
    if TAKEN.swap(true, Ordering::AcqRel) {
        return Ok(Vec::new());
    }
    let mut sockets = Vec::new();
    for fd in FIRST..FIRST.saturating_add(count) {
        // SAFETY: F_SETFD takes an integer argument, not a pointer; a closed `fd` is EBADF.
        unsafe { syscall!(fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC)) }?;
        // SAFETY: the descriptor is open (F_SETFD succeeded) and was handed to this process by
        // its service manager for it to own; `TAKEN` makes this the only call that wraps it.
        sockets.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok(sockets)
}
