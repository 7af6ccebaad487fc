//! The monotonic clock as a plain count of nanoseconds.

use crate::syscall::syscall;

/// Nanoseconds per second.
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Reads `CLOCK_MONOTONIC`, the clock `std::time::Instant` reads on Linux, as nanoseconds
/// from its unspecified origin (the boot): one vDSO call and a multiply-add.
///
/// For loops that read the clock on every iteration and only compare or subtract readings:
/// `Instant::now` followed by `Instant::duration_since` costs several times more, in checked
/// `timespec` arithmetic. Readings are comparable with each other only, never with an
/// `Instant`; the count wraps after 584 years of uptime.
///
/// # Examples
/// ```
/// let before = fio_sys::monotonic_nanos();
/// std::thread::sleep(std::time::Duration::from_millis(1));
/// assert!(fio_sys::monotonic_nanos() - before >= 1_000_000);
/// ```
#[inline]
#[must_use]
pub fn monotonic_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a live, writable `timespec` for the call's duration, and
    // CLOCK_MONOTONIC exists on every Linux fio runs on, so the only failures (EFAULT, EINVAL)
    // can't happen; were one to, `now` would read as the origin, never garbage.
    let _ = unsafe { syscall!(clock_gettime(libc::CLOCK_MONOTONIC, &mut now)) };
    // Both fields are non-negative on the monotonic clock: the casts are exact.
    (now.tv_sec as u64)
        .wrapping_mul(NANOS_PER_SEC)
        .wrapping_add(now.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn readings_never_go_back_and_follow_instant() {
        let start = Instant::now();
        let first = monotonic_nanos();
        std::thread::sleep(Duration::from_millis(2));
        let second = monotonic_nanos();
        let elapsed = start.elapsed();
        assert!(second >= first + 2_000_000);
        // The readings lie inside the span `Instant` measured around them.
        assert!(Duration::from_nanos(second - first) <= elapsed);
    }
}
