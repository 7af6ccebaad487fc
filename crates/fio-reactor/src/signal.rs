//! Signals: SIGINT/SIGTERM stop the reactor that owns them, SIGPIPE is ignored, SIGCHLD reaps
//! zombies on request, and everything is restored when the reactor stops.
//!
//! A signal handler may only do async-signal-safe work, so the handler (`fio-sys`'s
//! `catch_signal`) only records the signal in an atomic set and writes to an eventfd. A small
//! watcher thread waits on that eventfd, takes the recorded signals and acts on them on an
//! ordinary thread: `stop()` on the owning reactor, `waitpid` for zombies.
//!
//! The eventfd is created once and never closed, and the owner is held weakly, so a signal that
//! arrives after a reactor is gone finds nothing to touch (facil.io's handler used freed memory
//! there, ejdb #287). facil.io also left its handlers installed after `fio_start` returned; here
//! the previous dispositions come back when `start` returns or on
//! [`signal_handler_reset`].

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, Weak};
use std::thread;

use parking_lot::Mutex;

use crate::error::Error;
use crate::reactor::{Inner, Reactor};

/// The reactor that owns SIGINT/SIGTERM, with the dispositions to restore.
struct Owner {
    /// Held weakly: a reactor that is dropped while owning the signals must not be kept alive
    /// (or touched) by a late signal.
    reactor: Weak<Inner>,
    /// Which claim this is, so a stale claim's release does nothing.
    claim: u64,
    /// SIGINT, SIGTERM and SIGPIPE as they were before the claim.
    saved: Vec<os::Saved>,
}

/// Process-wide signal state; never touched by the handler itself.
struct Signals {
    /// The current owner of SIGINT/SIGTERM.
    owner: Option<Owner>,
    /// SIGCHLD as it was before [`reap_children`], while reaping is on.
    reaping: Option<os::Saved>,
}

/// The process's signal state.
static SIGNALS: Mutex<Signals> = Mutex::new(Signals {
    owner: None,
    reaping: None,
});

/// Source of [`Owner::claim`].
static NEXT_CLAIM: AtomicU64 = AtomicU64::new(1);

/// The eventfd the handler writes to; created once, never closed (see the module docs).
static WAKE_FD: OnceLock<io::Result<OwnedFd>> = OnceLock::new();

/// Proof that a reactor owns the signals; dropping it restores the previous handlers.
#[derive(Debug)]
pub(crate) struct SignalClaim {
    /// The claim number in [`Owner::claim`].
    claim: u64,
}

impl Drop for SignalClaim {
    fn drop(&mut self) {
        let mut signals = SIGNALS.lock();
        // After `signal_handler_reset` (or a newer claim) there is nothing of ours to restore.
        let ours = signals.owner.take_if(|owner| owner.claim == self.claim);
        if let Some(owner) = ours {
            restore_all(owner.saved);
        }
    }
}

/// Makes `reactor` the owner of SIGINT/SIGTERM (graceful stop) and SIGPIPE (ignored) until the
/// returned claim drops. Returns `None` when another running reactor owns them already.
pub(crate) fn claim(reactor: &Reactor) -> Result<Option<SignalClaim>, Error> {
    let mut signals = SIGNALS.lock();
    if signals
        .owner
        .as_ref()
        .is_some_and(|owner| owner.reactor.strong_count() > 0)
    {
        log::debug!("another reactor owns the signals; this one runs without them");
        return Ok(None);
    }
    ensure_watcher().map_err(|source| Error::Signal { source })?;
    let mut saved = Vec::with_capacity(3);
    let installed = os::catch_stop_signals(&mut saved).and_then(|()| {
        saved.push(os::ignore_pipe()?);
        Ok(())
    });
    if let Err(source) = installed {
        restore_all(saved);
        return Err(Error::Signal { source });
    }
    let claim = NEXT_CLAIM.fetch_add(1, Ordering::Relaxed);
    signals.owner = Some(Owner {
        reactor: reactor.downgrade(),
        claim,
        saved,
    });
    Ok(Some(SignalClaim { claim }))
}

/// Turns on zombie reaping for the process: every exited child is collected with `waitpid`
/// (facil.io's `fio_reap_children`). Call it before `start`; it stays on until
/// [`signal_handler_reset`].
///
/// It collects *every* child (`waitpid(-1)`), so code that waits for its own children
/// (`std::process::Child::wait`) may find them already reaped and get an error.
///
/// # Errors
/// - [`Error::Signal`] when the SIGCHLD handler or the watcher thread can't be set up.
///
/// # Examples
/// ```
/// fio_reactor::reap_children()?;
/// // ... start the reactor; exited children no longer linger as zombies ...
/// fio_reactor::signal_handler_reset();
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn reap_children() -> Result<(), Error> {
    let mut signals = SIGNALS.lock();
    if signals.reaping.is_some() {
        return Ok(());
    }
    ensure_watcher().map_err(|source| Error::Signal { source })?;
    signals.reaping = Some(os::catch_child().map_err(|source| Error::Signal { source })?);
    drop(signals);
    // Children that exited before the handler was in place won't signal again.
    os::reap_exited();
    Ok(())
}

/// Restores every signal disposition this crate changed: the running reactor's SIGINT,
/// SIGTERM and SIGPIPE handling, and [`reap_children`]'s SIGCHLD handler.
///
/// `start` calls this for its own handlers when it returns. After it, SIGINT/SIGTERM no longer
/// stop a running reactor (they do whatever they did before: by default, end the process).
///
/// # Examples
/// ```
/// fio_reactor::signal_handler_reset(); // nothing installed: nothing happens
/// ```
pub fn signal_handler_reset() {
    let mut signals = SIGNALS.lock();
    if let Some(owner) = signals.owner.take() {
        restore_all(owner.saved);
    }
    if let Some(saved) = signals.reaping.take() {
        restore_all(vec![saved]);
    }
}

/// Restores saved dispositions, newest first (so a signal saved twice ends as it began).
fn restore_all(saved: Vec<os::Saved>) {
    for action in saved.into_iter().rev() {
        if let Err(error) = os::restore(action) {
            log::error!("restoring a signal handler failed: {error}");
        }
    }
}

/// Creates the wake eventfd and starts the watcher thread, once per process.
fn ensure_watcher() -> io::Result<()> {
    static WATCHER: OnceLock<Result<(), io::ErrorKind>> = OnceLock::new();
    let started = WATCHER.get_or_init(|| {
        let fd = match WAKE_FD.get_or_init(|| fio_sys::eventfd(0, true)) {
            Ok(fd) => fd,
            Err(error) => return Err(error.kind()),
        };
        os::set_wake_fd(fd);
        thread::Builder::new()
            .name("fio-signals".into())
            .spawn(move || watch(fd))
            .map(drop)
            .map_err(|error| error.kind())
    });
    started.map_err(io::Error::from)
}

/// The watcher thread: waits for the handler's write, then acts on the recorded signals.
fn watch(fd: &'static OwnedFd) {
    loop {
        match fio_sys::poll(fd.as_fd(), fio_sys::PollFlags::IN, None) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                log::error!("the signal watcher stopped: {error}");
                return;
            }
        }
        // Resetting the counter re-arms the wait; WouldBlock means another read emptied it.
        let _ = fio_sys::eventfd_read(fd.as_fd());
        let pending = os::take_pending();
        if pending.stop {
            let owner = SIGNALS
                .lock()
                .owner
                .as_ref()
                .and_then(|owner| owner.reactor.upgrade());
            match owner {
                Some(inner) => {
                    log::info!("stop signal received, shutting down");
                    Reactor::from_inner(inner).stop();
                }
                None => log::debug!("stop signal received with no reactor owning it"),
            }
        }
        if pending.child && SIGNALS.lock().reaping.is_some() {
            os::reap_exited();
        }
    }
}

/// The `fio-sys` calls this module relies on, in one place.
mod os {
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};

    use fio_sys::{Signal, WaitOptions};

    /// A disposition to restore.
    pub(super) type Saved = fio_sys::SavedAction;

    /// What the handler recorded since the last look.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Pending {
        /// SIGINT or SIGTERM arrived.
        pub(super) stop: bool,
        /// SIGCHLD arrived.
        pub(super) child: bool,
    }

    /// Catches SIGINT and SIGTERM, pushing their previous dispositions onto `saved`.
    pub(super) fn catch_stop_signals(saved: &mut Vec<Saved>) -> io::Result<()> {
        for signal in [Signal::INT, Signal::TERM] {
            saved.push(fio_sys::catch_signal(signal)?);
        }
        Ok(())
    }

    /// Ignores SIGPIPE.
    pub(super) fn ignore_pipe() -> io::Result<Saved> {
        fio_sys::ignore_sigpipe()
    }

    /// Catches SIGCHLD.
    pub(super) fn catch_child() -> io::Result<Saved> {
        fio_sys::catch_signal(Signal::CHLD)
    }

    /// Puts a disposition back.
    pub(super) fn restore(saved: Saved) -> io::Result<()> {
        saved.restore().map(drop)
    }

    /// Points the handler's wake-up write at `fd`.
    pub(super) fn set_wake_fd(fd: &'static OwnedFd) {
        fio_sys::set_signal_wake_fd(Some(fd.as_fd()));
    }

    /// Takes the recorded signals.
    pub(super) fn take_pending() -> Pending {
        let set = fio_sys::take_pending_signals();
        Pending {
            stop: set.contains(Signal::INT) || set.contains(Signal::TERM),
            child: set.contains(Signal::CHLD),
        }
    }

    /// Collects every child that has exited, without blocking.
    pub(super) fn reap_exited() {
        // Bounded by the number of exited children; ECHILD (none left) ends it.
        while let Ok(Some((pid, status))) = fio_sys::waitpid(None, WaitOptions::NOHANG) {
            log::debug!("reaped child {pid}: {status}");
        }
    }
}
