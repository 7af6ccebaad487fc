//! Which process this is: the root (master) process, and whether it serves connections.
//!
//! `fio-reactor` alone runs a single process, which is both the root and the worker.
//! `fio-cluster` forks workers: it marks the root and each worker through
//! [`cluster`](crate::cluster), and a forked child inherits the root pid recorded here, so it
//! knows it is not the root. The pid is recorded when `start` runs, not when the library loads,
//! so a process that daemonises (forks) before starting reports its own pid (facil.io issue
//! #83).

use std::process;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, Ordering};

/// The root process's pid, or 0 before any reactor started.
static ROOT_PID: AtomicU32 = AtomicU32::new(0);

/// This process's [`Role`], as a number.
static ROLE: AtomicU8 = AtomicU8::new(Role::Single as u8);

/// How many worker processes the cluster runs (0: no cluster).
static WORKERS: AtomicU16 = AtomicU16::new(0);

/// What this process does in a cluster (see [`cluster`](crate::cluster)).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// One process that is both the root and the only worker (no cluster).
    Single = 0,
    /// The root (master) of a cluster: it forks and supervises the workers and serves only
    /// `master_only` listeners and connectors.
    Root = 1,
    /// A forked worker: it serves every listener and connector that isn't `master_only`.
    Worker = 2,
}

/// This process's role.
pub(crate) fn role() -> Role {
    match ROLE.load(Ordering::Acquire) {
        1 => Role::Root,
        2 => Role::Worker,
        _ => Role::Single,
    }
}

/// Sets this process's role; the root also records its pid and the worker count.
pub(crate) fn set_role(role: Role, workers: u16) {
    if role == Role::Root {
        note_root();
    }
    ROLE.store(role as u8, Ordering::Release);
    WORKERS.store(workers, Ordering::Release);
}

/// Records this process as the root, unless a root was recorded already (in a parent).
pub(crate) fn note_root() {
    let _ = ROOT_PID.compare_exchange(0, process::id(), Ordering::AcqRel, Ordering::Acquire);
}

/// The root (master) process's pid: the process that first called `start`, or this process
/// before any reactor started (facil.io's `fio_master_pid`). Workers forked by `fio-cluster`
/// report their root's pid.
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

/// Whether this is the root (master) process (facil.io's `fio_is_master`): true in a single
/// process, false in `fio-cluster`'s workers.
///
/// # Examples
/// ```
/// assert!(fio_reactor::is_master());
/// ```
pub fn is_master() -> bool {
    master_pid() == process::id()
}

/// Whether this process serves connections (facil.io's `fio_is_worker`): true in a single
/// process (the root is also the only worker) and in `fio-cluster`'s workers, false in a
/// cluster's root.
///
/// # Examples
/// ```
/// assert!(fio_reactor::is_worker());
/// ```
pub fn is_worker() -> bool {
    role() != Role::Root
}

/// How many worker processes run (facil.io's `fio_is_running` count): 0 when the current
/// reactor isn't running, 1 in a single process, the cluster's worker count in a cluster's
/// root and workers.
///
/// # Examples
/// ```
/// assert_eq!(fio_reactor::running_workers(), 0);
/// ```
pub fn running_workers() -> u16 {
    if !crate::is_running() {
        return 0;
    }
    match role() {
        Role::Single => 1,
        Role::Root | Role::Worker => WORKERS.load(Ordering::Acquire).max(1),
    }
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
        assert!(is_worker());
        assert_eq!(role(), Role::Single);
    }
}
