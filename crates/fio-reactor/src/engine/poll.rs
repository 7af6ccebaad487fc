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
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use fio_socket::Chunk;
use polling::{Events, Poller};

use crate::engine::{CloseMode, Engine, EngineEvent, EngineKind, Wake};
use crate::uuid::Uuid;

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

    fn wait(
        &mut self,
        timeout: Option<Duration>,
        _events: &mut Vec<EngineEvent>,
    ) -> io::Result<usize> {
        self.events.clear();
        match self.poller.wait(&mut self.events, timeout) {
            Ok(count) => Ok(count),
            // A signal landing on this thread ends the wait early; the loop simply goes round.
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(error) => Err(error),
        }
    }
    fn listen(&mut self, _listener: Uuid, _socket: OwnedFd) -> io::Result<()> {
        Err(not_yet())
    }

    fn open(&mut self, _conn: Uuid, _stream: OwnedFd, _connecting: bool) -> io::Result<()> {
        Err(not_yet())
    }

    fn read(&mut self, _conn: Uuid, _buf: &mut [u8]) -> io::Result<usize> {
        Err(not_yet())
    }

    fn buffered(&self, _conn: Uuid) -> usize {
        0
    }

    fn is_eof(&self, _conn: Uuid) -> bool {
        false
    }

    fn write(&mut self, _conn: Uuid, _chunk: Chunk, _urgent: bool) -> io::Result<()> {
        Err(not_yet())
    }

    fn pending(&self, _conn: Uuid) -> usize {
        0
    }

    fn pause_receive(&mut self, _conn: Uuid, _paused: bool) -> io::Result<()> {
        Err(not_yet())
    }

    fn close(&mut self, _conn: Uuid, _mode: CloseMode) -> io::Result<()> {
        Err(not_yet())
    }
}

/// Connections are not implemented on this engine yet.
fn not_yet() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "connections are not implemented on this engine yet",
    )
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
        assert_eq!(
            engine
                .wait(Some(Duration::from_secs(60)), &mut Vec::new())
                .unwrap(),
            0
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn another_thread_wakes_a_blocked_wait() {
        let mut engine = PollEngine::new().unwrap();
        let waker = engine.waker();
        let other = thread::spawn(move || waker.wake().unwrap());
        assert_eq!(engine.wait(None, &mut Vec::new()).unwrap(), 0);
        other.join().unwrap();
    }

    #[test]
    fn a_zero_timeout_returns_at_once() {
        let mut engine = PollEngine::new().unwrap();
        assert_eq!(
            engine.wait(Some(Duration::ZERO), &mut Vec::new()).unwrap(),
            0
        );
    }
}
