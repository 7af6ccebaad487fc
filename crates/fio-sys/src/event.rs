//! Wake-up primitives: `eventfd(2)`, `timerfd_create(2)` and `pipe2(2)`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::syscall::syscall;

/// Creates an eventfd counter (close-on-exec), optionally non-blocking.
///
/// Reactors use it to wake a thread blocked in the kernel: another thread adds to the counter
/// with [`eventfd_write`], which makes the fd readable.
///
/// # Errors
/// - the process or system ran out of file descriptors (`EMFILE`, `ENFILE`), or memory.
///
/// # Examples
/// ```
/// let fd = fio_sys::eventfd(0, true)?;
/// fio_sys::eventfd_write(std::os::fd::AsFd::as_fd(&fd), 2)?;
/// assert_eq!(fio_sys::eventfd_read(std::os::fd::AsFd::as_fd(&fd))?, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn eventfd(initial: u32, nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = libc::EFD_CLOEXEC;
    if nonblocking {
        flags |= libc::EFD_NONBLOCK;
    }
    // SAFETY: eventfd takes no pointers; any flag combination is checked by the kernel.
    let fd = unsafe { syscall!(eventfd(initial, flags)) }?;
    // SAFETY: eventfd returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds `value` to an eventfd counter.
///
/// # Errors
/// - `WouldBlock` when the counter would overflow on a non-blocking eventfd;
/// - `EINVAL` for `u64::MAX`, or when `fd` is not an eventfd (`EBADF` if not writable).
pub fn eventfd_write(fd: BorrowedFd<'_>, value: u64) -> io::Result<()> {
    let bytes = value.to_ne_bytes();
    // SAFETY: `bytes` is a live 8-byte buffer for the duration of the call.
    let written = unsafe { syscall!(write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len())) }?;
    debug_assert_eq!(written, 8, "eventfd writes are all or nothing");
    Ok(())
}

/// Reads and resets an eventfd counter, returning its value.
///
/// # Errors
/// - `WouldBlock` when the counter is zero on a non-blocking eventfd;
/// - `EINVAL` or `EBADF` when `fd` is not a readable eventfd.
pub fn eventfd_read(fd: BorrowedFd<'_>) -> io::Result<u64> {
    read_counter(fd, "short eventfd read")
}

/// Reads the 8-byte counter an eventfd or a timerfd hands out (and resets).
fn read_counter(fd: BorrowedFd<'_>, short: &'static str) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    // SAFETY: `bytes` is a live, writable 8-byte buffer for the duration of the call.
    let read = unsafe { syscall!(read(fd.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len())) }?;
    if read != 8 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, short));
    }
    Ok(u64::from_ne_bytes(bytes))
}

/// Creates a timer descriptor on the monotonic clock (close-on-exec, non-blocking), disarmed.
///
/// It becomes readable when the time set by [`timerfd_set`] has passed. A reactor waiting in
/// `epoll_wait(2)` can keep its next deadline in one (registered edge-triggered in the set)
/// and wait without a timeout: the kernel then sets up no timer and reads no clock per wait,
/// and the timer descriptor is set again only when the deadline moves earlier.
///
/// # Errors
/// - the process or system ran out of file descriptors (`EMFILE`, `ENFILE`), or memory.
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// let timer = fio_sys::timerfd()?;
/// fio_sys::timerfd_set(timer.as_fd(), Some(Duration::from_millis(1)))?;
/// fio_sys::poll(timer.as_fd(), fio_sys::PollFlags::IN, Some(Duration::from_secs(10)))?;
/// assert_eq!(fio_sys::timerfd_read(timer.as_fd())?, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn timerfd() -> io::Result<OwnedFd> {
    // SAFETY: timerfd_create takes no pointers; the clock and flags are valid ones.
    let fd = unsafe {
        syscall!(timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK
        ))
    }?;
    // SAFETY: timerfd_create returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets a [`timerfd`] to expire once, `after` from now (a zero duration expires at once), or
/// disarms it (`None`). Setting it again replaces the previous expiry and resets the count of
/// expirations.
///
/// # Errors
/// - `EINVAL` or `EBADF` when `fd` is not a timer descriptor.
pub fn timerfd_set(fd: BorrowedFd<'_>, after: Option<Duration>) -> io::Result<()> {
    let value = match after {
        // An all-zero value would disarm: the shortest real expiry is one nanosecond.
        Some(after) if after.is_zero() => libc::timespec {
            tv_sec: 0,
            tv_nsec: 1,
        },
        Some(after) => libc::timespec {
            tv_sec: libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(after.subsec_nanos()),
        },
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
    };
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: value,
    };
    // SAFETY: `spec` is a live itimerspec for the duration of the call; a null old value
    // asks for none.
    unsafe {
        syscall!(timerfd_settime(
            fd.as_raw_fd(),
            0,
            &raw const spec,
            std::ptr::null_mut()
        ))
    }?;
    Ok(())
}

/// Reads and resets a [`timerfd`]'s count of expirations since it was last read or set.
///
/// # Errors
/// - `WouldBlock` when it has not expired since;
/// - `EINVAL` or `EBADF` when `fd` is not a timer descriptor.
pub fn timerfd_read(fd: BorrowedFd<'_>) -> io::Result<u64> {
    read_counter(fd, "short timerfd read")
}

/// Creates a pipe with both ends close-on-exec, returning `(read_end, write_end)`.
///
/// # Errors
/// - the process or system ran out of file descriptors (`EMFILE`, `ENFILE`).
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// let (reader, writer) = fio_sys::pipe()?;
/// std::fs::File::from(writer).write_all(b"hi")?;
/// let mut text = String::new();
/// std::fs::File::from(reader).read_to_string(&mut text)?;
/// assert_eq!(text, "hi");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a live array of two ints that pipe2 fills.
    unsafe { syscall!(pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC)) }?;
    // SAFETY: pipe2 succeeded, so fds[0] is a fresh descriptor owned by nobody else.
    let reader = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: as above, for the write end.
    let writer = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    Ok((reader, writer))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_timer_set_to_zero_expires_and_a_disarmed_one_never_does() {
        let timer = timerfd().unwrap();
        let wait = |timer: &OwnedFd| {
            crate::poll(
                timer.as_fd(),
                crate::PollFlags::IN,
                Some(Duration::from_millis(50)),
            )
        };
        timerfd_set(timer.as_fd(), Some(Duration::ZERO)).unwrap();
        wait(&timer).unwrap();
        assert_eq!(timerfd_read(timer.as_fd()).unwrap(), 1);
        // Set far ahead, then disarmed: nothing to read, now or after a wait.
        timerfd_set(timer.as_fd(), Some(Duration::from_secs(3600))).unwrap();
        timerfd_set(timer.as_fd(), None).unwrap();
        let _ = wait(&timer);
        let error = timerfd_read(timer.as_fd()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }
}
