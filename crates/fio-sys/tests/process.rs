//! Processes: forked children that exit, are killed, or set a parent-death signal, reaped with
//! `waitpid`.
//!
//! The test harness runs tests on several threads, so children come from `fork_unchecked`
//! and only make async-signal-safe calls (plain system calls) before `_exit`.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;

use fio_sys::{Fork, Pid, Signal, WaitOptions};

/// Forks a child that runs `child` (which must only make async-signal-safe calls) and exits
/// with the code it returns.
fn spawn_child(child: impl FnOnce() -> i32) -> Pid {
    // SAFETY: callers pass closures that only make plain system calls, which are
    // async-signal-safe, and the child ends with _exit.
    match unsafe { fio_sys::fork_unchecked() }.unwrap() {
        Fork::Child => fio_sys::exit_immediately(child()),
        Fork::Parent { child } => child,
    }
}

#[test]
fn waitpid_reports_the_exit_code() {
    let child = spawn_child(|| 7);
    let (reaped, status) = fio_sys::waitpid(Some(child), WaitOptions::empty())
        .unwrap()
        .unwrap();
    assert_eq!(reaped, child);
    assert_eq!(status.code(), Some(7));
    let error = fio_sys::waitpid(Some(child), WaitOptions::empty()).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::ECHILD), "already reaped");
}

#[test]
fn kill_terminates_a_blocked_child_and_nohang_sees_it_alive_first() {
    let (reader, writer) = fio_sys::pipe().unwrap();
    // The child blocks reading a pipe whose write end stays open (in both processes), so it
    // lives until killed.
    let child = spawn_child(move || {
        let mut byte = [0u8; 1];
        let _ = (&File::from(reader)).read(&mut byte);
        0
    });
    assert_eq!(
        fio_sys::waitpid(Some(child), WaitOptions::NOHANG).unwrap(),
        None
    );
    fio_sys::kill(child, Signal::TERM).unwrap();
    let (_, status) = fio_sys::waitpid(Some(child), WaitOptions::empty())
        .unwrap()
        .unwrap();
    assert_eq!(status.signal(), Some(Signal::TERM.as_raw()), "{status:?}");
    drop(writer);
}

#[test]
fn parent_death_signal_is_set_in_the_child() {
    let parent = Pid::current();
    let child = spawn_child(move || {
        if fio_sys::parent_pid() != Some(parent) {
            return 1;
        }
        if fio_sys::set_parent_death_signal(Some(Signal::TERM)).is_err() {
            return 2;
        }
        match fio_sys::parent_death_signal() {
            Ok(Some(signal)) if signal == Signal::TERM => 0,
            _ => 3,
        }
    });
    let (_, status) = fio_sys::waitpid(Some(child), WaitOptions::empty())
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn safe_fork_refuses_while_other_threads_run() {
    let (release, parked) = std::sync::mpsc::channel::<()>();
    let helper = std::thread::spawn(move || parked.recv());
    assert!(fio_sys::thread_count().unwrap() >= 2);
    let error = fio_sys::fork().unwrap_err();
    assert!(error.to_string().contains("threads"), "{error}");
    drop(release);
    assert!(helper.join().unwrap().is_err());
}

#[test]
fn pids_are_positive() {
    assert_eq!(Pid::new(0), None);
    assert_eq!(Pid::new(-1), None);
    assert_eq!(Pid::new(1).map(Pid::as_raw), Some(1));
    assert_eq!(Pid::current().as_raw() as u32, std::process::id());
    assert!(fio_sys::parent_pid().is_some());
    let _ = Pid::current().to_string();
    let fd = fio_sys::eventfd(0, true).unwrap();
    assert!(fio_sys::is_cloexec(fd.as_fd()).unwrap());
}
