//! The io_uring engine on `fio-ring`: one [`Ring`] per reactor thread, created on that thread.
//!
//! A `Ring` is `!Send`: it is built with `SINGLE_ISSUER`/`DEFER_TASKRUN` when the kernel has
//! them, which tie it to the thread that created it. So the reactor builds each thread's
//! engine on the thread itself (see `launch.rs`), and only the [`RingHandle`] crosses threads.
//!
//! Waiting is one [`Ring::wait`]: a single `io_uring_enter` that blocks in the kernel until a
//! completion or the timeout. The ring's handle keeps a read of an eventfd in flight for the
//! ring's whole life, so an idle ring always has something to block on and never spins.
//!
//! Wakes are sticky, which the reactor's idle hand-shake (`thread.rs`) relies on:
//! [`RingHandle::wake`] writes the eventfd unless a write is already pending, and the ring
//! clears that "pending" flag only while dispatching the read's completion, inside a `wait`.
//! So a wake either writes the eventfd (the current or next wait returns), or finds a write
//! not yet dispatched, whose completion also ends the current or next wait, and that wait
//! returns after the wake, so the woken thread re-checks for work after it was published.
//!
//! Whether io_uring can run the reactor at all is probed once per process
//! ([`availability`]): the setup (seccomp, `kernel.io_uring_disabled`, kernel support) and
//! the features the connection layer needs (multishot receive from provided-buffer rings,
//! Linux 6.0; multishot accept). A refusal makes the reactor fall back to epoll.

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fio_ring::{Features, Ring, RingConfig, RingHandle, SetupRefusal};
use fio_socket::Chunk;

use crate::engine::{CloseMode, Engine, EngineEvent, EngineKind, Wake};
use crate::uuid::Uuid;

/// Submission queue entries per reactor thread's ring; the completion queue is four times
/// larger, so bursts of multishot completions don't overflow it.
const RING_ENTRIES: u32 = 256;

/// The configuration every reactor ring (and the probe's) is built with.
fn ring_config() -> RingConfig {
    RingConfig::new(RING_ENTRIES)
}

/// A reactor thread's io_uring engine.
pub(crate) struct UringEngine {
    /// The thread's ring; its handle's wake-up read is always in flight.
    ring: Ring,
    /// Cloned into every waker handed to other threads.
    handle: RingHandle,
}

impl UringEngine {
    /// Builds a ring on the calling thread (which must be the one that waits on it) and arms
    /// its cross-thread wake-up.
    pub(crate) fn new() -> io::Result<Self> {
        Self::build().map_err(|refusal| match refusal {
            Refusal::Ring(error) => io::Error::from(error),
            missing @ Refusal::MissingFeatures { .. } => {
                io::Error::new(io::ErrorKind::Unsupported, missing.to_string())
            }
        })
    }

    /// [`new`](Self::new), keeping the reason a ring can't serve the reactor.
    fn build() -> Result<Self, Refusal> {
        let mut ring = Ring::new(ring_config()).map_err(Refusal::Ring)?;
        let missing = missing_features(ring.features());
        if !missing.is_empty() {
            return Err(Refusal::MissingFeatures {
                kernel: ring.features().kernel(),
                missing,
            });
        }
        let handle = ring.handle().map_err(Refusal::Ring)?;
        Ok(Self { ring, handle })
    }
}

impl fmt::Debug for UringEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringEngine")
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl Engine for UringEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Uring
    }

    fn waker(&self) -> Arc<dyn Wake> {
        Arc::new(UringWaker(self.handle.clone()))
    }

    fn wait(
        &mut self,
        timeout: Option<Duration>,
        _events: &mut Vec<EngineEvent>,
    ) -> io::Result<usize> {
        // `Ring::wait` returns at once when nothing is in flight. The wake-up read is always
        // in flight unless the ring gave up on it after an unexpected error, and then neither
        // blocking nor waking works any more: report it instead of spinning.
        if self.ring.in_flight() == 0 {
            return Err(io::Error::other(
                "the io_uring wake-up read ended; other threads can no longer wake this one",
            ));
        }
        self.ring.wait(timeout).map_err(io::Error::from)
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

/// Wakes one [`UringEngine`] through its ring's handle (an eventfd write, coalesced).
struct UringWaker(RingHandle);

impl Wake for UringWaker {
    fn wake(&self) -> io::Result<()> {
        match self.0.wake() {
            // The ring is dropped only after its thread left the reactor loop for good, so
            // there is nothing left to wake (a late stop or shutdown broadcast).
            Ok(()) | Err(fio_ring::Error::RingClosed) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

/// Why a ring can't serve as a reactor engine.
#[derive(Debug)]
enum Refusal {
    /// Creating the ring or its wake-up failed.
    Ring(fio_ring::Error),
    /// The kernel's io_uring lacks what the connection layer is built on.
    MissingFeatures {
        /// The running kernel, named in the reason.
        kernel: fio_ring::KernelVersion,
        /// What is missing, by name.
        missing: Vec<&'static str>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ring(fio_ring::Error::Setup {
                refusal, source, ..
            }) => {
                let what = match refusal {
                    SetupRefusal::Forbidden => "forbidden by seccomp or kernel.io_uring_disabled",
                    SetupRefusal::NotSupported => {
                        "not built into this kernel, or hidden by seccomp"
                    }
                    SetupRefusal::MemoryLocked => "out of memory or RLIMIT_MEMLOCK too small",
                    SetupRefusal::KernelTooOld => "the kernel is too old",
                    _ => "io_uring_setup failed",
                };
                write!(f, "{what}: {source}")
            }
            Self::Ring(error) => write!(f, "{error}"),
            Self::MissingFeatures { kernel, missing } => write!(
                f,
                "io_uring on Linux {}.{}.{} lacks {} (Linux 6.0 or later is needed)",
                kernel.major,
                kernel.minor,
                kernel.patch,
                missing.join(", ")
            ),
        }
    }
}

impl Refusal {
    /// Whether the refusal is a lasting property of this process and kernel (so the probe's
    /// answer can be kept), rather than a passing failure such as running out of descriptors.
    fn is_lasting(&self) -> bool {
        match self {
            Self::Ring(fio_ring::Error::Setup { refusal, .. }) => {
                *refusal != SetupRefusal::MemoryLocked && *refusal != SetupRefusal::Other
            }
            Self::Ring(fio_ring::Error::Unsupported { .. }) | Self::MissingFeatures { .. } => true,
            Self::Ring(_) => false,
        }
    }
}

/// The features the connection layer relies on that this kernel lacks, by name.
fn missing_features(features: &Features) -> Vec<&'static str> {
    [
        ("multishot recv", features.multishot_recv()),
        ("provided-buffer rings", features.buf_ring()),
        ("multishot accept", features.multishot_accept()),
    ]
    .into_iter()
    .filter_map(|(name, present)| (!present).then_some(name))
    .collect()
}

/// Whether the reactor can run on io_uring in this process; `Err` holds the reason it
/// can't, for the fallback's log line.
///
/// The first call builds (and drops) a ring exactly as a reactor thread would. A lasting
/// answer (usable, or refused by the setup or for missing features) is kept for the rest of
/// the process; a passing failure (out of memory or descriptors) is not kept, and io_uring is
/// then selected anyway so that the thread that builds its ring reports the real error.
pub(crate) fn availability() -> Result<(), &'static str> {
    static PROBED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Some(known) = PROBED.get() {
        return known.as_ref().copied().map_err(String::as_str);
    }
    let answer = match UringEngine::build() {
        Ok(engine) => {
            log::debug!("{}", engine.ring.features());
            Ok(())
        }
        Err(refusal) if refusal.is_lasting() => Err(refusal.to_string()),
        Err(passing) => {
            log::debug!("io_uring probe failed for now ({passing}); trying io_uring anyway");
            return Ok(());
        }
    };
    PROBED
        .get_or_init(|| answer)
        .as_ref()
        .copied()
        .map_err(String::as_str)
}

#[cfg(test)]
mod tests {
    use std::thread;
    use std::time::Instant;

    use super::*;

    /// An engine on this kernel, or `None` (printing why) when io_uring is unavailable here.
    fn engine() -> Option<UringEngine> {
        match availability() {
            Ok(()) => Some(UringEngine::new().unwrap()),
            Err(reason) => {
                println!("skipped: io_uring unavailable ({reason})");
                None
            }
        }
    }

    #[test]
    fn a_wake_before_the_wait_is_not_lost() {
        let Some(mut engine) = engine() else { return };
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
        let Some(mut engine) = engine() else { return };
        let waker = engine.waker();
        let other = thread::spawn(move || waker.wake().unwrap());
        // Without the other thread's wake this would block for a minute.
        let started = Instant::now();
        assert_eq!(
            engine
                .wait(Some(Duration::from_secs(60)), &mut Vec::new())
                .unwrap(),
            0
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        other.join().unwrap();
    }

    #[test]
    fn wakes_coalesce_and_rearm() {
        let Some(mut engine) = engine() else { return };
        let waker = engine.waker();
        // Many wakes before one wait cost one wait; after it, a new wake works again.
        for round in 0..3 {
            for _ in 0..10 {
                waker.wake().unwrap();
            }
            let started = Instant::now();
            engine
                .wait(Some(Duration::from_secs(60)), &mut Vec::new())
                .unwrap();
            assert!(started.elapsed() < Duration::from_secs(30), "round {round}");
        }
    }

    #[test]
    fn a_zero_timeout_returns_at_once() {
        let Some(mut engine) = engine() else { return };
        assert_eq!(
            engine.wait(Some(Duration::ZERO), &mut Vec::new()).unwrap(),
            0
        );
    }

    #[test]
    fn a_timeout_ends_an_idle_wait() {
        let Some(mut engine) = engine() else { return };
        // Nothing wakes it: the timeout ends the wait, and the wake-up read stays armed.
        assert_eq!(
            engine
                .wait(Some(Duration::from_millis(5)), &mut Vec::new())
                .unwrap(),
            0
        );
        assert_eq!(engine.ring.in_flight(), 1);
        engine.waker().wake().unwrap();
        assert_eq!(
            engine
                .wait(Some(Duration::from_secs(60)), &mut Vec::new())
                .unwrap(),
            0
        );
        assert_eq!(engine.ring.in_flight(), 1);
    }

    #[test]
    fn a_closed_ring_is_nothing_to_wake() {
        let Some(engine) = engine() else { return };
        let waker = engine.waker();
        drop(engine);
        waker.wake().unwrap();
    }

    #[test]
    fn refusals_name_their_cause() {
        let forbidden = Refusal::Ring(fio_ring::Error::Setup {
            entries: RING_ENTRIES,
            refusal: SetupRefusal::Forbidden,
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        });
        assert!(forbidden.is_lasting());
        assert!(forbidden.to_string().contains("forbidden by seccomp"));
        let old = Refusal::MissingFeatures {
            kernel: fio_ring::KernelVersion::new(5, 15, 0),
            missing: vec!["multishot recv"],
        };
        assert!(old.is_lasting());
        assert_eq!(
            old.to_string(),
            "io_uring on Linux 5.15.0 lacks multishot recv (Linux 6.0 or later is needed)"
        );
        let passing = Refusal::Ring(fio_ring::Error::Io(io::Error::from(
            io::ErrorKind::OutOfMemory,
        )));
        assert!(!passing.is_lasting());
    }
}
