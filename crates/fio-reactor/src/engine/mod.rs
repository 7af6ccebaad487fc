//! The IO engine interface every backend implements, and how a backend is chosen.
//!
//! Each reactor thread owns one engine instance; nothing about an engine is shared between
//! threads except its [`Wake`] handle. A backend provides:
//!
//! - **wait with a timeout**: block the owning thread until an event arrives, another thread
//!   wakes it, or the timeout (the thread's earliest timer deadline) passes; `None` waits
//!   without a limit. This is the only place an idle reactor thread sleeps, so there is no
//!   sleep back-off and no spinning.
//! - **a wake handle**: a `Send + Sync` object any thread (or the signal watcher) uses to end
//!   the owner's current or next wait. A wake that arrives before the wait must not be lost.
//! - later, **connections**: registering sockets, receiving, the send queue. These land with
//!   the connection half of the reactor and the io_uring backend (`fio-socket`).
//!
//! Backends: `poll.rs` (the `polling` crate: epoll on Linux, kqueue on the BSDs and macOS).
//! The io_uring backend slots in as `uring.rs`, chosen by [`select_engine`].

mod poll;

use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::Error;

pub(crate) use poll::PollEngine;

/// The environment variable that picks the engine when `StartArgs::engine` is `None`.
pub(crate) const ENGINE_VAR: &str = "FIO_ENGINE";

/// Which IO engine a reactor runs on.
///
/// [`engine`](crate::engine()) reports the one in use as facil.io's strings: `"io_uring"`,
/// `"epoll"`, `"kqueue"` or `"poll"`.
///
/// # Examples
/// ```
/// use fio_reactor::EngineKind;
/// let kind: EngineKind = "epoll".parse()?;
/// assert_eq!(kind, EngineKind::Epoll);
/// assert_eq!(EngineKind::Uring.name(), "io_uring");
/// # Ok::<(), fio_reactor::Error>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// io_uring through `fio-ring`/`fio-socket` (not built yet: falls back to epoll).
    Uring,
    /// epoll through the `polling` crate.
    Epoll,
    /// kqueue through the `polling` crate (BSDs and macOS; reported, not selectable by name).
    Kqueue,
    /// `poll(2)`; on Linux the `polling` crate offers no run-time switch to it, so asking for it
    /// runs epoll.
    Poll,
}

impl EngineKind {
    /// The engine's name as facil.io's `fio_engine()` spells it.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(fio_reactor::EngineKind::Poll.name(), "poll");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::Uring => "io_uring",
            Self::Epoll => "epoll",
            Self::Kqueue => "kqueue",
            Self::Poll => "poll",
        }
    }

    /// Reads `FIO_ENGINE`: `Ok(None)` when it is unset or empty.
    ///
    /// # Errors
    /// - [`Error::UnknownEngine`] when it holds anything but `uring`, `io_uring`, `epoll` or
    ///   `poll` (case-insensitive).
    ///
    /// # Examples
    /// ```
    /// // Whatever the environment says, a known value parses.
    /// let _ = fio_reactor::EngineKind::from_env();
    /// ```
    pub fn from_env() -> Result<Option<Self>, Error> {
        match std::env::var(ENGINE_VAR) {
            Ok(name) if !name.trim().is_empty() => name.parse().map(Some),
            _ => Ok(None),
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EngineKind {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "uring" | "io_uring" => Ok(Self::Uring),
            "epoll" => Ok(Self::Epoll),
            "poll" => Ok(Self::Poll),
            _ => Err(Error::UnknownEngine {
                name: name.to_owned(),
            }),
        }
    }
}

/// Ends an engine's wait from any thread.
pub(crate) trait Wake: Send + Sync {
    /// Makes the owner's current wait return, or its next one if it isn't waiting yet.
    fn wake(&self) -> io::Result<()>;
}

/// One reactor thread's IO backend (see the module documentation for the contract).
pub(crate) trait Engine {
    /// The engine actually running, for `engine()`.
    fn kind(&self) -> EngineKind;

    /// A handle other threads use to end this engine's wait.
    fn waker(&self) -> Arc<dyn Wake>;

    /// Blocks until an event, a wake or the timeout; returns the number of IO events handled
    /// (wake-ups don't count).
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize>;
}

/// Picks the engine to run for a request (`None` = `FIO_ENGINE`, else io_uring first).
///
/// Returns the engine and, when it differs from what was asked for, the reason. Until the
/// io_uring engine is built, io_uring requests fall back to epoll; when it lands, this is where
/// its probe (setup flags, kernel version, buffer-ring registration) runs.
pub(crate) fn select_engine(requested: Option<EngineKind>) -> (EngineKind, Option<&'static str>) {
    let native = PollEngine::NATIVE;
    match requested.unwrap_or(EngineKind::Uring) {
        EngineKind::Uring => (
            native,
            Some("the io_uring engine is not built yet (it lands with fio-socket)"),
        ),
        asked if asked == native => (native, None),
        EngineKind::Poll => (
            native,
            Some("the polling crate can't force poll(2) at run time on this platform"),
        ),
        _ => (
            native,
            Some("that engine is not available on this platform"),
        ),
    }
}

/// Builds an engine instance for one reactor thread.
pub(crate) fn create(kind: EngineKind) -> io::Result<Box<dyn Engine + Send>> {
    // Every kind currently maps to the polling backend; `select_engine` already reported why.
    let _ = kind;
    Ok(Box::new(PollEngine::new()?))
}

/// Logs an engine fallback once per process, so a reactor started many times (tests) or with
/// many threads doesn't repeat it.
pub(crate) fn warn_fallback_once(requested: Option<EngineKind>, chosen: EngineKind, reason: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        let asked = requested.map_or("io_uring (default)", EngineKind::name);
        log::warn!("IO engine {asked} unavailable, using {chosen}: {reason}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_both_ways() {
        for kind in [EngineKind::Uring, EngineKind::Epoll, EngineKind::Poll] {
            let parsed: EngineKind = kind.name().parse().unwrap();
            assert_eq!(parsed, kind);
        }
        assert_eq!("URING".parse::<EngineKind>().unwrap(), EngineKind::Uring);
        assert!(matches!(
            "select".parse::<EngineKind>(),
            Err(Error::UnknownEngine { name }) if name == "select"
        ));
    }

    #[test]
    fn uring_falls_back_with_a_reason() {
        let (kind, reason) = select_engine(Some(EngineKind::Uring));
        assert_eq!(kind, PollEngine::NATIVE);
        assert!(reason.is_some());
        let (kind, reason) = select_engine(None);
        assert_eq!(kind, PollEngine::NATIVE);
        assert!(reason.is_some());
    }

    #[test]
    fn native_engine_needs_no_reason() {
        let (kind, reason) = select_engine(Some(PollEngine::NATIVE));
        assert_eq!(kind, PollEngine::NATIVE);
        assert_eq!(reason, None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn poll_runs_epoll_on_linux() {
        let (kind, reason) = select_engine(Some(EngineKind::Poll));
        assert_eq!(kind, EngineKind::Epoll);
        assert!(reason.unwrap().contains("poll(2)"));
    }
}
