//! The wait's deadline, kept in a timer descriptor instead of `epoll_wait`'s timeout.
//!
//! `epoll_wait` with a timeout reads the clock and converts the timeout on every call, and
//! arms and cancels a kernel timer on every call that sleeps: about 1.5% of the server's CPU
//! at one request per connection in flight. The reactor's deadline (the next timer, the
//! connections' timeout check) stays put for many waits, so the engine keeps it in a timer
//! descriptor registered in the set and waits without a timeout: the descriptor is set again
//! only when the deadline comes earlier than the one it holds, or after it went off.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use fio_sys::{Epoll, EpollRegistration, Interest};

/// The key the alarm is registered under: no descriptor's (those are descriptor numbers, see
/// `conn::key`), nor the wake-up's (`u64::MAX`).
pub(super) const ALARM_KEY: u64 = u64::MAX - 2;

/// How late the alarm may go off, in nanoseconds: a deadline at most this much earlier than the
/// one it holds keeps it. `epoll_wait`'s timeout, in whole milliseconds rounded up, was as late.
const SLACK_NANOS: u64 = 1_000_000;

/// A timer descriptor in the engine's epoll set, and when it goes off.
pub(super) struct Alarm {
    /// The timer descriptor, edge-triggered: each expiry is one event, nothing to read.
    timer: EpollRegistration,
    /// When it goes off, if it is set, as a [`fio_sys::monotonic_nanos`] reading.
    due: Option<u64>,
}

impl Alarm {
    /// A disarmed alarm registered in `epoll`.
    pub(super) fn new(epoll: &Epoll) -> io::Result<Self> {
        let timer = epoll.register(
            fio_sys::timerfd()?,
            Interest::READABLE | Interest::EDGE,
            ALARM_KEY,
        )?;
        Ok(Self { timer, due: None })
    }

    /// Makes sure a wait without a timeout ends at most [`SLACK_NANOS`] after `timeout` from
    /// `since` (a [`fio_sys::monotonic_nanos`] reading: the caller's, so this reads no clock).
    /// An alarm due earlier than that is kept: it ends a wait early, and the next one sets it
    /// again. Returns `false` when the deadline is too far to express (no limit, then).
    /// Inlined into every wait, which nearly always finds the alarm set and keeps it: as a
    /// call it cost the wait half as much again.
    ///
    /// # Errors
    /// - `timerfd_settime(2)`'s, which refuses only a bad descriptor.
    #[inline]
    pub(super) fn ring_within(&mut self, timeout: Duration, since: u64) -> io::Result<bool> {
        let wanted = u64::try_from(timeout.as_nanos())
            .ok()
            .and_then(|timeout| since.checked_add(timeout));
        let Some(wanted) = wanted else {
            return Ok(false);
        };
        // Past due, it went off (its event is delivered or pending): set it again. Set from
        // a later clock reading than `since`, it goes off a little after `due`, no later than
        // an alarm set from a reading of its own went off after the wait's deadline.
        if let Some(due) = self.due
            && due > since
            && due <= wanted.saturating_add(SLACK_NANOS)
        {
            return Ok(true);
        }
        fio_sys::timerfd_set(self.timer.as_fd(), Some(timeout))?;
        self.due = Some(wanted);
        Ok(true)
    }

    /// Its event came: it is no longer set.
    pub(super) fn rang(&mut self) {
        self.due = None;
    }

    /// When the alarm goes off, if it is set and not past.
    #[cfg(test)]
    pub(super) fn due(&self) -> Option<u64> {
        self.due.filter(|due| *due > fio_sys::monotonic_nanos())
    }
}
