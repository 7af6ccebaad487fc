//! Signals: the [`Signal`] type, dispositions installed with `sigaction(2)` and handed back as
//! a [`SavedAction`] that restores the previous one, and a built-in handler that records
//! signals for a reactor to pick up.
//!
//! A signal handler may only call async-signal-safe functions, and Rust cannot check that for
//! an arbitrary function, so installing one is `unsafe` ([`set_signal_handler`]). Crates that
//! forbid `unsafe` use [`catch_signal`] instead: its handler only sets a bit in an atomic set
//! and writes 8 bytes to an optional wake-up descriptor, then the reactor reads
//! [`take_pending_signals`] on its own thread.

use std::fmt;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use crate::syscall::syscall;

/// Highest signal number on Linux (`SIGRTMAX`, 64), so a `u64` holds one bit per signal.
const MAX_SIGNAL: libc::c_int = 64;

/// Signals recorded by [`record_signal`] and not yet taken: bit `n - 1` is signal `n`.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// Descriptor [`record_signal`] writes to after recording, or -1; set by
/// [`set_signal_wake_fd`], which takes a `BorrowedFd<'static>` so it never closes under us.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// A signal number, between 1 and 64.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signal(libc::c_int);

impl Signal {
    /// Hang-up: facil.io reloads (`SIGHUP`).
    pub const HUP: Self = Self(libc::SIGHUP);
    /// Interrupt, Ctrl-C: stop gracefully (`SIGINT`).
    pub const INT: Self = Self(libc::SIGINT);
    /// Quit (`SIGQUIT`).
    pub const QUIT: Self = Self(libc::SIGQUIT);
    /// Kill; cannot be caught or ignored (`SIGKILL`).
    pub const KILL: Self = Self(libc::SIGKILL);
    /// User signal 1: facil.io's hot restart of workers (`SIGUSR1`).
    pub const USR1: Self = Self(libc::SIGUSR1);
    /// User signal 2 (`SIGUSR2`).
    pub const USR2: Self = Self(libc::SIGUSR2);
    /// Segmentation fault (`SIGSEGV`).
    pub const SEGV: Self = Self(libc::SIGSEGV);
    /// Write to a closed pipe or socket (`SIGPIPE`).
    pub const PIPE: Self = Self(libc::SIGPIPE);
    /// Alarm clock (`SIGALRM`).
    pub const ALRM: Self = Self(libc::SIGALRM);
    /// Terminate: stop gracefully (`SIGTERM`).
    pub const TERM: Self = Self(libc::SIGTERM);
    /// A child stopped or exited (`SIGCHLD`).
    pub const CHLD: Self = Self(libc::SIGCHLD);
    /// Continue a stopped process (`SIGCONT`).
    pub const CONT: Self = Self(libc::SIGCONT);
    /// Stop; cannot be caught or ignored (`SIGSTOP`).
    pub const STOP: Self = Self(libc::SIGSTOP);

    /// Wraps a raw signal number; `None` unless it is in `1..=64`.
    pub const fn new(raw: libc::c_int) -> Option<Self> {
        if raw >= 1 && raw <= MAX_SIGNAL {
            Some(Self(raw))
        } else {
            None
        }
    }

    /// The raw signal number.
    pub const fn as_raw(self) -> libc::c_int {
        self.0
    }

    /// The conventional name (`"SIGTERM"`), if this is one of the named constants.
    pub fn name(self) -> Option<&'static str> {
        let name = match self {
            Self::HUP => "SIGHUP",
            Self::INT => "SIGINT",
            Self::QUIT => "SIGQUIT",
            Self::KILL => "SIGKILL",
            Self::USR1 => "SIGUSR1",
            Self::USR2 => "SIGUSR2",
            Self::SEGV => "SIGSEGV",
            Self::PIPE => "SIGPIPE",
            Self::ALRM => "SIGALRM",
            Self::TERM => "SIGTERM",
            Self::CHLD => "SIGCHLD",
            Self::CONT => "SIGCONT",
            Self::STOP => "SIGSTOP",
            _ => return None,
        };
        Some(name)
    }

    const fn bit(self) -> u64 {
        1 << (self.0 - 1)
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "signal {}", self.0),
        }
    }
}

/// A set of signals, as [`take_pending_signals`] returns it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SignalSet(u64);

impl SignalSet {
    /// The empty set.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Whether the set holds no signal.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether `signal` is in the set.
    pub const fn contains(self, signal: Signal) -> bool {
        self.0 & signal.bit() != 0
    }

    /// Adds `signal` to the set.
    pub fn insert(&mut self, signal: Signal) {
        self.0 |= signal.bit();
    }

    /// The signals in the set, lowest number first.
    pub fn iter(self) -> impl Iterator<Item = Signal> {
        (1..=MAX_SIGNAL)
            .filter_map(Signal::new)
            .filter(move |&signal| self.contains(signal))
    }
}

impl fmt::Debug for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// What a [`SavedAction`] does when its signal arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// The default action (`SIG_DFL`): for most signals, end the process.
    Default,
    /// Nothing (`SIG_IGN`).
    Ignore,
    /// A handler function runs.
    Handler,
}

/// A signal's disposition as it was before a change, kept so it can be restored exactly
/// (handler, mask and flags).
#[derive(Clone, Copy)]
pub struct SavedAction {
    signal: Signal,
    action: libc::sigaction,
}

impl SavedAction {
    /// The signal this disposition belongs to.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// Whether the saved disposition was the default, ignore, or a handler.
    pub fn kind(&self) -> ActionKind {
        match self.action.sa_sigaction {
            libc::SIG_DFL => ActionKind::Default,
            libc::SIG_IGN => ActionKind::Ignore,
            _ => ActionKind::Handler,
        }
    }

    /// Reinstalls the saved disposition, returning the one it replaces.
    ///
    /// # Errors
    /// - none in practice: the saved action was valid when the kernel handed it out.
    pub fn restore(self) -> io::Result<SavedAction> {
        replace_action(self.signal, &self.action)
    }
}

impl fmt::Debug for SavedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedAction")
            .field("signal", &self.signal)
            .field("kind", &self.kind())
            .field("flags", &format_args!("{:#x}", self.action.sa_flags))
            .finish()
    }
}

/// Ignores `signal` (`SIG_IGN`), returning the previous disposition.
///
/// # Errors
/// - `EINVAL` for `SIGKILL` and `SIGSTOP`, which cannot be ignored.
///
/// # Examples
/// ```
/// use fio_sys::Signal;
/// let saved = fio_sys::ignore_signal(Signal::USR2)?;
/// saved.restore()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn ignore_signal(signal: Signal) -> io::Result<SavedAction> {
    install(signal, libc::SIG_IGN)
}

/// Ignores `SIGPIPE`, so writing to a closed socket fails with `BrokenPipe` instead of killing
/// the process. Rust programs start with it ignored already; C hosts may not.
///
/// # Errors
/// - none in practice (`SIGPIPE` can always be ignored).
///
/// # Examples
/// ```
/// let saved = fio_sys::ignore_sigpipe()?;
/// assert_eq!(fio_sys::signal_action(fio_sys::Signal::PIPE)?.kind(), fio_sys::ActionKind::Ignore);
/// saved.restore()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn ignore_sigpipe() -> io::Result<SavedAction> {
    ignore_signal(Signal::PIPE)
}

/// Restores the default disposition of `signal` (`SIG_DFL`), returning the previous one.
///
/// # Errors
/// - `EINVAL` for `SIGKILL` and `SIGSTOP`, whose disposition cannot change.
pub fn reset_signal(signal: Signal) -> io::Result<SavedAction> {
    install(signal, libc::SIG_DFL)
}

/// The current disposition of `signal`, without changing it.
///
/// # Errors
/// - none in practice (every signal in `1..=64` has a disposition to read).
pub fn signal_action(signal: Signal) -> io::Result<SavedAction> {
    let mut old = MaybeAction::new();
    // SAFETY: a null new action only reads the disposition into `old`, which outlives the call.
    unsafe { syscall!(sigaction(signal.as_raw(), ptr::null(), old.as_mut_ptr())) }?;
    Ok(SavedAction {
        signal,
        action: old.0,
    })
}

/// Handles `signal` by recording it: afterwards it appears in [`take_pending_signals`], and the
/// descriptor given to [`set_signal_wake_fd`] (if any) becomes readable. Returns the previous
/// disposition.
///
/// Interrupted system calls restart (`SA_RESTART`); for `SIGCHLD`, stopped children are not
/// reported (`SA_NOCLDSTOP`).
///
/// # Errors
/// - `EINVAL` for `SIGKILL` and `SIGSTOP`, which cannot be caught.
///
/// # Examples
/// ```
/// use fio_sys::{Pid, Signal};
/// let saved = fio_sys::catch_signal(Signal::USR1)?;
/// fio_sys::kill(Pid::current(), Signal::USR1)?;
/// // A signal a process sends itself is delivered before `kill` returns, unless another
/// // thread takes it; either way it is recorded before long.
/// let mut seen = fio_sys::take_pending_signals();
/// for _ in 0..100_000 {
///     if seen.contains(Signal::USR1) {
///         break;
///     }
///     std::thread::yield_now();
///     seen = fio_sys::take_pending_signals();
/// }
/// assert!(seen.contains(Signal::USR1));
/// saved.restore()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn catch_signal(signal: Signal) -> io::Result<SavedAction> {
    install(
        signal,
        record_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
    )
}

/// Installs `handler` for `signal`, returning the previous disposition.
///
/// # Safety
/// `handler` runs inside whatever code the signal interrupts, so it must call only
/// async-signal-safe functions (`signal-safety(7)`): no allocation, no locks, no `println!`.
/// It must also save and restore `errno` if it makes system calls. Violating this can corrupt
/// the allocator or deadlock.
///
/// # Errors
/// - `EINVAL` for `SIGKILL` and `SIGSTOP`, which cannot be caught.
pub unsafe fn set_signal_handler(
    signal: Signal,
    handler: extern "C" fn(libc::c_int),
) -> io::Result<SavedAction> {
    install(signal, handler as libc::sighandler_t)
}

/// Takes the signals recorded since the last call (by handlers [`catch_signal`] installed),
/// clearing them.
pub fn take_pending_signals() -> SignalSet {
    SignalSet(PENDING.swap(0, Ordering::AcqRel))
}

/// Sets the descriptor the [`catch_signal`] handler writes 8 bytes (a native-endian `1u64`) to
/// after recording a signal, or stops writing for `None`.
///
/// An eventfd is the natural choice ([`eventfd`](crate::eventfd)); a pipe works too. It must be
/// non-blocking, or a full pipe would block the handler. The `'static` lifetime guarantees the
/// descriptor stays open while a handler may still use it: keep its `OwnedFd` in a `static`
/// (`OnceLock`) or leak it.
///
/// A forked child shares the parent's descriptor (and eventfd counter); a child that reacts to
/// signals should set its own.
pub fn set_signal_wake_fd(fd: Option<BorrowedFd<'static>>) {
    let raw: RawFd = fd.map_or(-1, |fd| fd.as_raw_fd());
    WAKE_FD.store(raw, Ordering::Release);
}

/// The handler [`catch_signal`] installs. It is async-signal-safe: one atomic `fetch_or`, an
/// atomic load, one `write(2)`, and saving and restoring `errno` around it.
extern "C" fn record_signal(signal: libc::c_int) {
    if let Some(signal) = Signal::new(signal) {
        PENDING.fetch_or(signal.bit(), Ordering::AcqRel);
    }
    let fd = WAKE_FD.load(Ordering::Acquire);
    if fd < 0 {
        return;
    }
    // SAFETY: __errno_location takes no arguments and returns this thread's errno slot.
    let errno = unsafe { syscall!(@infallible __errno_location()) };
    // SAFETY: `errno` points to this thread's errno, valid for the thread's whole life.
    let saved_errno = unsafe { errno.read() };
    let one = 1u64.to_ne_bytes();
    // SAFETY: `one` is 8 readable bytes; `fd` came from a BorrowedFd<'static>, so it is open.
    // A failure (a full non-blocking pipe) is fine: the signal is recorded in PENDING anyway.
    let _ = unsafe { syscall!(write(fd, one.as_ptr().cast(), one.len())) };
    // SAFETY: as above; restoring errno keeps the interrupted code's view of it intact.
    unsafe { errno.write(saved_errno) };
}

/// A `sigaction` buffer for the kernel to fill.
struct MaybeAction(libc::sigaction);

impl MaybeAction {
    fn new() -> Self {
        // SAFETY: sigaction is plain integers, a handler address and a bit mask, for which all
        // zero bytes (SIG_DFL, empty mask, no flags) is a valid value.
        Self(unsafe { mem::zeroed() })
    }

    fn as_mut_ptr(&mut self) -> *mut libc::sigaction {
        ptr::from_mut(&mut self.0)
    }
}

fn install(signal: Signal, handler: libc::sighandler_t) -> io::Result<SavedAction> {
    let mut action = MaybeAction::new();
    action.0.sa_sigaction = handler;
    action.0.sa_flags = libc::SA_RESTART;
    if signal == Signal::CHLD {
        action.0.sa_flags |= libc::SA_NOCLDSTOP;
    }
    let mask = ptr::from_mut(&mut action.0.sa_mask);
    // SAFETY: `mask` points to the sigset inside `action`, a live local.
    unsafe { syscall!(sigemptyset(mask)) }?;
    replace_action(signal, &action.0)
}

fn replace_action(signal: Signal, action: &libc::sigaction) -> io::Result<SavedAction> {
    let mut old = MaybeAction::new();
    // SAFETY: `action` is a valid sigaction whose handler is SIG_DFL, SIG_IGN, or a function
    // the caller vouched for; `old` is a live buffer for the previous one.
    unsafe { syscall!(sigaction(signal.as_raw(), action, old.as_mut_ptr())) }?;
    Ok(SavedAction {
        signal,
        action: old.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_numbers_are_checked() {
        assert_eq!(Signal::new(0), None);
        assert_eq!(Signal::new(65), None);
        assert_eq!(Signal::new(15), Some(Signal::TERM));
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(Signal::new(40).unwrap().to_string(), "signal 40");
    }

    #[test]
    fn sets_hold_every_signal() {
        let mut set = SignalSet::empty();
        assert!(set.is_empty());
        set.insert(Signal::HUP);
        set.insert(Signal::new(64).unwrap());
        assert!(set.contains(Signal::HUP) && !set.contains(Signal::INT));
        let listed: Vec<_> = set.iter().map(Signal::as_raw).collect();
        assert_eq!(listed, [1, 64]);
        assert_eq!(format!("{set:?}"), "{SIGHUP, signal 64}");
    }
}
