//! The fallback engine on the `polling` crate: epoll on Linux, kqueue on the BSDs and macOS.
//!
//! A thread's `Poller` is shared (behind an `Arc`) only so other threads can call
//! [`polling::Poller::notify`], which is `polling`'s own cross-thread wake-up (an eventfd on
//! Linux) and is sticky: a notify that lands before the wait makes that wait return at once.
//!
//! Registering sockets is `unsafe` in `polling` 3 (`Poller::add`: the source must be removed
//! before it is closed). Connections on this engine will need that call wrapped behind a safe,
//! owning registration outside this `forbid(unsafe_code)` crate.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use polling::{Events, Poller};

use crate::engine::{Engine, EngineKind, Wake};

/// A reactor thread's `polling`-based engine.
pub(crate) struct PollEngine {
    /// Shared with [`PollWaker`]s; only the owning thread waits on it.
    poller: Arc<Poller>,
    /// Reused between waits so waiting never allocates.
    events: Events,
}

impl PollEngine {
    /// The engine `polling` runs on this platform; it picks the backend at compile time.
    pub(crate) const NATIVE: EngineKind = if cfg!(any(
        target_os = "linux",
        target_os = "android",
        target_os = "illumos",
        target_os = "solaris"
    )) {
        EngineKind::Epoll
    } else if cfg!(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )) {
        EngineKind::Kqueue
    } else {
        EngineKind::Poll
    };

    /// Creates the poller (an epoll fd plus its notify eventfd on Linux).
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            poller: Arc::new(Poller::new()?),
            events: Events::new(),
        })
    }
}

impl fmt::Debug for PollEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollEngine")
            .field("kind", &Self::NATIVE)
            .finish_non_exhaustive()
    }
}

impl Engine for PollEngine {
    fn kind(&self) -> EngineKind {
        Self::NATIVE
    }

    fn waker(&self) -> Arc<dyn Wake> {
        Arc::new(PollWaker(Arc::clone(&self.poller)))
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.events.clear();
        match self.poller.wait(&mut self.events, timeout) {
            Ok(count) => Ok(count),
            // A signal landing on this thread ends the wait early; the loop simply goes round.
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(error) => Err(error),
        }
    }
}

/// Wakes one [`PollEngine`] through `Poller::notify`.
struct PollWaker(Arc<Poller>);

impl Wake for PollWaker {
    fn wake(&self) -> io::Result<()> {
        self.0.notify()
    }
}

#[cfg(test)]
mod tests {
    use std::thread;
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_wake_before_the_wait_is_not_lost() {
        let mut engine = PollEngine::new().unwrap();
        engine.waker().wake().unwrap();
        // Without the earlier wake this would block for a minute and fail the deadline below.
        let started = Instant::now();
        assert_eq!(engine.wait(Some(Duration::from_secs(60))).unwrap(), 0);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn another_thread_wakes_a_blocked_wait() {
        let mut engine = PollEngine::new().unwrap();
        let waker = engine.waker();
        let other = thread::spawn(move || waker.wake().unwrap());
        assert_eq!(engine.wait(None).unwrap(), 0);
        other.join().unwrap();
    }

    #[test]
    fn a_zero_timeout_returns_at_once() {
        let mut engine = PollEngine::new().unwrap();
        assert_eq!(engine.wait(Some(Duration::ZERO)).unwrap(), 0);
    }
}
