//! Which process this is: the root (master) process, and whether it serves connections.
//!
//! `fio-reactor` runs a single process, which is both the root and the worker. `fio-cluster`
//! will fork workers; a forked child inherits the root pid recorded here, so it knows it is not
//! the root. The pid is recorded when `start` runs, not when the library loads, so a process
//! that daemonises (forks) before starting reports its own pid (facil.io issue #83).

use std::process;
use std::sync::atomic::{AtomicU32, Ordering};

/// The root process's pid, or 0 before any reactor started.
static ROOT_PID: AtomicU32 = AtomicU32::new(0);

/// Records this process as the root, unless a root was recorded already (in a parent).
pub(crate) fn note_root() {
    let _ = ROOT_PID.compare_exchange(0, process::id(), Ordering::AcqRel, Ordering::Acquire);
}

/// The root (master) process's pid: the process that first called `start`, or this process
/// before any reactor started (facil.io's `fio_master_pid`).
///
/// # Examples
/// ```
/// assert_eq!(fio_reactor::master_pid(), std::process::id());
/// ```
pub fn master_pid() -> u32 {
    match ROOT_PID.load(Ordering::Acquire) {
        0 => process::id(),
        pid => pid,
    }
}

/// Whether this is the root (master) process (facil.io's `fio_is_master`).
///
/// # Examples
/// ```
/// assert!(fio_reactor::is_master());
/// ```
pub fn is_master() -> bool {
    master_pid() == process::id()
}

/// Whether this process serves connections (facil.io's `fio_is_worker`): always true without
/// `fio-cluster`, where the root process is also the only worker.
///
/// # Examples
/// ```
/// assert!(fio_reactor::is_worker());
/// ```
pub fn is_worker() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_root_sticks() {
        note_root();
        note_root();
        assert_eq!(master_pid(), process::id());
        assert!(is_master());
    }
}
