//! [`RingHandle`]: how other threads queue work for a ring's thread and wake it.
//!
//! The ring keeps a read of an eventfd armed. A handle pushes closures on a mutex-guarded
//! queue and writes the eventfd; an atomic flag coalesces wakes so that any number of
//! `queue` calls between two ticks cost one eventfd write. When the read completes, the ring
//! clears the flag, takes the queue, runs every closure with `&mut Ring` and re-arms the read.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use io_uring::opcode;

use crate::buf::KernelBox;
use crate::error::Error;
use crate::features::OpKind;
use crate::inflight::OpId;
use crate::ops::Resources;
use crate::ring::{OpSlot, Receiver, Ring};

/// Work queued from another thread; runs on the ring's thread during a tick.
pub type Job = Box<dyn FnOnce(&mut Ring) + Send>;

/// State shared between the ring and its handles.
pub(crate) struct Shared {
    jobs: Mutex<Vec<Job>>,
    /// Set once an eventfd write is pending, so further wakes skip the syscall.
    notified: AtomicBool,
    /// Set when the ring is dropped: queued work would never run.
    closed: AtomicBool,
    /// Completions of the wake-up read so far ([`Ring::wakes_seen`]); written only by the
    /// ring's thread.
    wakes: AtomicU64,
    eventfd: OwnedFd,
    /// The ring's read of `eventfd`: it keeps this slot (and id) across re-arms and gives it
    /// up only when the read ends for good (when `Ring::wake_read_armed` is cleared).
    read: OpId,
}

impl Shared {
    fn notify(&self) -> Result<(), Error> {
        if !self.notified.swap(true, Ordering::AcqRel) {
            fio_sys::eventfd_write(self.eventfd.as_fd(), 1)?;
        }
        Ok(())
    }

    /// Marks the ring gone and drops whatever was still queued.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner));
        drop(jobs);
    }
}

/// A `Send + Sync` handle to a [`Ring`], for other threads.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use fio_ring::{Ring, RingConfig};
///
/// let mut ring = Ring::new(RingConfig::new(8))?;
/// let handle = ring.handle()?;
/// let worker = std::thread::spawn(move || handle.queue(|ring| ring.on_tick_end(|_| ())));
/// worker.join().expect("worker thread")?;
/// // The queued closure runs during one of the next ticks.
/// for _ in 0..10 {
///     ring.wait(Some(Duration::from_secs(1)))?;
///     if ring.pending_jobs() == 0 { break; }
/// }
/// # Ok::<(), fio_ring::Error>(())
/// ```
#[derive(Clone)]
pub struct RingHandle {
    shared: Arc<Shared>,
}

impl RingHandle {
    /// Queues `job` to run on the ring's thread during a coming tick, and wakes the ring.
    ///
    /// # Errors
    /// - [`Error::RingClosed`] when the ring was dropped (the job is dropped unrun).
    /// - [`Error::Io`] when the eventfd write fails.
    pub fn queue<F>(&self, job: F) -> Result<(), Error>
    where
        F: FnOnce(&mut Ring) + Send + 'static,
    {
        {
            let mut jobs = self
                .shared
                .jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.shared.closed.load(Ordering::Acquire) {
                return Err(Error::RingClosed);
            }
            jobs.push(Box::new(job));
        }
        self.shared.notify()
    }

    /// Wakes the ring: its current or next [`Ring::wait`] returns soon.
    ///
    /// # Errors
    /// - [`Error::RingClosed`] when the ring was dropped.
    /// - [`Error::Io`] when the eventfd write fails.
    pub fn wake(&self) -> Result<(), Error> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::RingClosed);
        }
        self.shared.notify()
    }
}

impl fmt::Debug for RingHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingHandle")
            .field("notified", &self.shared.notified.load(Ordering::Relaxed))
            .field("closed", &self.shared.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Ring {
    /// A handle other threads use to queue work for this ring and wake it. The first call
    /// creates an eventfd and arms a read on it (one in-flight operation for the ring's
    /// lifetime); later calls clone the same handle.
    ///
    /// # Errors
    /// - [`Error::Io`] when the eventfd cannot be created.
    /// - [`Error::Unsupported`] when the kernel cannot read through io_uring.
    pub fn handle(&mut self) -> Result<RingHandle, Error> {
        if let Some(shared) = &self.handle {
            return Ok(RingHandle {
                shared: shared.clone(),
            });
        }
        if !self.features.supports(OpKind::Read) {
            return Err(Error::Unsupported { op: OpKind::Read });
        }
        // Blocking on purpose: io_uring reads it with IOCB_NOWAIT and arms a poll, whereas an
        // O_NONBLOCK eventfd would complete the read with EAGAIN instead.
        let eventfd = fio_sys::eventfd(0, false)?;
        let counter = KernelBox::new(0u64);
        let entry = opcode::Read::new(
            io_uring::types::Fd(std::os::fd::AsRawFd::as_raw_fd(&eventfd)),
            counter.as_ptr().cast::<u8>(),
            8,
        )
        .build();
        let slot = OpSlot::new(OpKind::Read, Receiver::Wake, Resources::Counter(counter));
        let id = self.ops.insert(slot).ok_or(Error::InvalidArgument {
            reason: "the in-flight table is full",
        })?;
        let entry = entry.user_data(id.user_data());
        if let Some(slot) = self.ops.get_mut(id) {
            slot.rearm = Some(Box::new(entry.clone()));
        }
        self.stage_entry(entry);
        self.wake_read_armed = true;
        let shared = Arc::new(Shared {
            jobs: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            wakes: AtomicU64::new(0),
            eventfd,
            read: id,
        });
        self.handle = Some(shared.clone());
        Ok(RingHandle { shared })
    }

    /// Whether the wake-up read of [`handle`](Self::handle) is in flight, so that a
    /// [`RingHandle::wake`] (or `queue`) from another thread ends a blocking
    /// [`wait`](Self::wait). O(1).
    ///
    /// `false` before the first `handle` call, and after the read ended for good: the kernel
    /// failed it with an error other than an interruption (the ring logs it and stops
    /// re-arming, since it would fail again at once), or it was cancelled. A ring that relies
    /// on handles to wake it should then stop blocking without a timeout.
    ///
    /// # Examples
    /// ```
    /// use fio_ring::{Ring, RingConfig};
    ///
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// assert!(!ring.wake_armed());
    /// let _handle = ring.handle()?;
    /// assert!(ring.wake_armed());
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    #[inline]
    pub fn wake_armed(&self) -> bool {
        // A flag, not a lookup of the read's slot: a reactor asks before every tick.
        debug_assert_eq!(
            self.wake_read_armed,
            self.handle
                .as_ref()
                .is_some_and(|shared| self.ops.get(shared.read).is_some()),
            "the wake-up read's flag disagrees with its slot"
        );
        self.wake_read_armed
    }

    /// How many times the wake-up read of [`handle`](Self::handle) has completed: a `wait`
    /// during which this grew dispatched a wake, so it returned after a [`RingHandle::wake`]
    /// (or `queue`) that may have published work for this thread. A caller that waits again
    /// when a wait brought it nothing to do compares this across the wait, so it never sleeps
    /// through a wake. 0 before the first `handle` call.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use fio_ring::{Ring, RingConfig};
    ///
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let handle = ring.handle()?;
    /// let before = ring.wakes_seen();
    /// handle.wake()?;
    /// for _ in 0..100 {
    ///     if ring.wakes_seen() != before {
    ///         break;
    ///     }
    ///     ring.wait(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(ring.wakes_seen(), before + 1);
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    #[inline]
    pub fn wakes_seen(&self) -> u64 {
        self.handle
            .as_ref()
            .map_or(0, |shared| shared.wakes.load(Ordering::Relaxed))
    }

    /// Jobs queued by handles and not yet run.
    pub fn pending_jobs(&self) -> usize {
        self.handle.as_ref().map_or(0, |shared| {
            shared
                .jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
        })
    }

    /// The wake-up read completed: re-arm it and run the queued jobs.
    pub(crate) fn on_wake(&mut self, id: OpId, res: i32) {
        // Re-arm unless cancelled or broken: a read failing for another reason than an
        // interruption would fail again at once, on every tick.
        let healthy = res >= 0 || res == -libc::EINTR || res == -libc::EAGAIN;
        let rearm = match self.ops.get(id) {
            Some(slot) if !slot.cancelled && healthy => slot.rearm.as_deref().cloned(),
            _ => None,
        };
        match rearm {
            Some(entry) => self.stage_entry(entry),
            None => {
                if !healthy && res != -libc::ECANCELED {
                    log::error!(
                        "ring wake-up read failed; handles can no longer wake the ring: {}",
                        std::io::Error::from_raw_os_error(-res)
                    );
                }
                drop(self.ops.remove(id));
                self.wake_read_armed = false;
            }
        }
        let Some(shared) = self.handle.clone() else {
            return;
        };
        // Clear the flag before taking the queue: a job pushed after the take sees it clear
        // and writes the eventfd again, so no job is stranded.
        shared.notified.store(false, Ordering::SeqCst);
        // Only this thread writes it: a load and a store, no read-modify-write.
        shared
            .wakes
            .store(shared.wakes.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        let jobs = std::mem::take(&mut *shared.jobs.lock().unwrap_or_else(PoisonError::into_inner));
        for job in jobs {
            job(self);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::RingConfig;
    use crate::ring::Ring;

    #[test]
    fn wake_armed_follows_the_wake_up_read() {
        let mut ring = Ring::new(RingConfig::new(8)).unwrap();
        assert!(!ring.wake_armed(), "no handle, no read");
        let handle = ring.handle().unwrap();
        assert!(ring.wake_armed());
        // Completions re-arm the same read, which stays armed through any number of wakes.
        for _ in 0..3 {
            handle.wake().unwrap();
            ring.wait(Some(Duration::from_secs(10))).unwrap();
            assert!(ring.wake_armed());
        }
        // A cancelled read is not re-armed: once its final completion is dispatched, the
        // ring can no longer be woken.
        let read = ring.handle.as_ref().unwrap().read;
        ring.cancel(read).unwrap();
        for _ in 0..10 {
            if !ring.wake_armed() {
                break;
            }
            ring.wait(Some(Duration::from_secs(1))).unwrap();
        }
        assert!(!ring.wake_armed());
        assert_eq!(ring.in_flight(), 0);
    }
}
