//! Signal dispositions in the test process. Tests run in parallel threads, so each one uses
//! its own signal and restores what it changed.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fio_sys::{ActionKind, PollFlags, SendFlags, Signal};

#[test]
fn ignore_and_restore_round_trip() {
    // SIGWINCH, whose default action is to do nothing: once the disposition is restored, a
    // delivery of the signal sent below that the kernel still held (it keeps one for a thread
    // that blocks it, which the test harness doesn't control) can't end the test process, as
    // a late SIGUSR2 once did under CI.
    let signal = Signal::new(libc::SIGWINCH).unwrap();
    let original = fio_sys::signal_action(signal).unwrap();
    let before = fio_sys::ignore_signal(signal).unwrap();
    assert_eq!(before.kind(), original.kind());
    assert_eq!(before.signal(), signal);
    assert_eq!(
        fio_sys::signal_action(signal).unwrap().kind(),
        ActionKind::Ignore
    );
    // Sending an ignored signal to ourselves is harmless.
    fio_sys::kill(fio_sys::Pid::current(), signal).unwrap();
    let replaced = before.restore().unwrap();
    assert_eq!(replaced.kind(), ActionKind::Ignore);
    assert_eq!(
        fio_sys::signal_action(signal).unwrap().kind(),
        original.kind()
    );
}

#[test]
fn kill_and_stop_cannot_be_changed() {
    let error = fio_sys::ignore_signal(Signal::KILL).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EINVAL));
    assert!(fio_sys::catch_signal(Signal::STOP).is_err());
}

#[test]
fn ignored_sigpipe_turns_into_broken_pipe() {
    let saved = fio_sys::ignore_sigpipe().unwrap();
    assert_eq!(
        fio_sys::signal_action(Signal::PIPE).unwrap().kind(),
        ActionKind::Ignore
    );
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(b);
    // No MSG_NOSIGNAL: only the ignored disposition keeps the process alive.
    let error = fio_sys::send(a.as_fd(), b"x", SendFlags::empty()).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    saved.restore().unwrap();
}

#[test]
fn caught_signals_are_recorded_and_wake_the_registered_fd() {
    static WAKE: OnceLock<OwnedFd> = OnceLock::new();
    let wake = WAKE.get_or_init(|| fio_sys::eventfd(0, true).unwrap());
    fio_sys::set_signal_wake_fd(Some(wake.as_fd()));
    let saved = fio_sys::catch_signal(Signal::USR1).unwrap();
    assert_eq!(
        fio_sys::signal_action(Signal::USR1).unwrap().kind(),
        ActionKind::Handler
    );

    fio_sys::kill(fio_sys::Pid::current(), Signal::USR1).unwrap();
    let ready = fio_sys::poll(wake.as_fd(), PollFlags::IN, Some(Duration::from_secs(10)));
    assert!(ready.unwrap().contains(PollFlags::IN));
    assert!(fio_sys::eventfd_read(wake.as_fd()).unwrap() >= 1);
    let pending = fio_sys::take_pending_signals();
    assert!(pending.contains(Signal::USR1), "{pending:?}");

    fio_sys::set_signal_wake_fd(None);
    let replaced = saved.restore().unwrap();
    assert_eq!(replaced.kind(), ActionKind::Handler);
}

static RAW_HANDLER_RAN: AtomicBool = AtomicBool::new(false);

extern "C" fn note_signal(_: libc::c_int) {
    RAW_HANDLER_RAN.store(true, Ordering::SeqCst);
}

#[test]
fn raw_handlers_run_and_are_replaced_by_restore() {
    // A real-time signal no other test touches.
    let signal = Signal::new(40).unwrap();
    // SAFETY: note_signal only stores to an atomic, which is async-signal-safe.
    let saved = unsafe { fio_sys::set_signal_handler(signal, note_signal) }.unwrap();
    fio_sys::kill(fio_sys::Pid::current(), signal).unwrap();
    let started = Instant::now();
    while !RAW_HANDLER_RAN.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "handler never ran"
        );
        std::thread::yield_now();
    }
    saved.restore().unwrap();
    assert_eq!(
        fio_sys::signal_action(signal).unwrap().kind(),
        ActionKind::Default
    );
}
