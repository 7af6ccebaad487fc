//! Wake-up primitives: `eventfd(2)` and `pipe2(2)`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

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
    let mut bytes = [0u8; 8];
    // SAFETY: `bytes` is a live, writable 8-byte buffer for the duration of the call.
    let read = unsafe { syscall!(read(fd.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len())) }?;
    if read != 8 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "short eventfd read",
        ));
    }
    Ok(u64::from_ne_bytes(bytes))
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
