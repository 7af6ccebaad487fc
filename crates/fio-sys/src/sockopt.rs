//! Socket options: address and port reuse, `TCP_NODELAY`, buffer sizes, and the pending error
//! that finishes a non-blocking connect.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;

use crate::syscall::syscall;

/// Sets `SO_REUSEADDR`, so a restarted server can bind while old connections sit in
/// `TIME_WAIT`.
///
/// # Errors
/// - `ENOTSOCK`/`EBADF` when `fd` is not a socket.
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// let fd = fio_sys::socket(fio_sys::Domain::Ipv4, fio_sys::SockType::Stream, true)?;
/// fio_sys::set_reuse_addr(fd.as_fd(), true)?;
/// assert!(fio_sys::reuse_addr(fd.as_fd())?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_reuse_addr(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, on.into())
}

/// Whether `SO_REUSEADDR` is set.
///
/// # Errors
/// - `ENOTSOCK`/`EBADF` when `fd` is not a socket.
pub fn reuse_addr(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR)? != 0)
}

/// Whether the socket is listening (`SO_ACCEPTCONN`).
///
/// # Errors
/// - `ENOTSOCK`/`EBADF` when `fd` is not a socket.
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// assert!(fio_sys::is_listening(listener.as_fd())?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn is_listening(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)? != 0)
}

/// Sets `SO_REUSEPORT`, so several sockets (one per worker) can listen on one port and the
/// kernel spreads connections between them. Set it on every socket before `bind`.
///
/// # Errors
/// - `ENOTSOCK`/`EBADF` when `fd` is not a socket; `ENOPROTOOPT` for a Unix socket.
pub fn set_reuse_port(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, on.into())
}

/// Whether `SO_REUSEPORT` is set.
///
/// # Errors
/// - `ENOTSOCK`/`EBADF` when `fd` is not a socket.
pub fn reuse_port(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT)? != 0)
}

/// Sets `TCP_NODELAY`: small writes go out at once instead of waiting for Nagle's algorithm.
///
/// # Errors
/// - `EOPNOTSUPP`/`ENOPROTOOPT` when `fd` is not a TCP socket; `ENOTSOCK`/`EBADF` for a
///   non-socket.
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// let fd = fio_sys::socket(fio_sys::Domain::Ipv4, fio_sys::SockType::Stream, true)?;
/// fio_sys::set_nodelay(fd.as_fd(), true)?;
/// assert!(fio_sys::nodelay(fd.as_fd())?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_nodelay(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on.into())
}

/// Whether `TCP_NODELAY` is set.
///
/// # Errors
/// - `EOPNOTSUPP`/`ENOPROTOOPT` when `fd` is not a TCP socket.
pub fn nodelay(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
}

/// Asks for a send buffer of `bytes` (`SO_SNDBUF`).
///
/// Linux doubles the value to leave room for its bookkeeping and caps it at
/// `net.core.wmem_max`, so [`send_buffer_size`] reports what the kernel actually chose.
///
/// # Errors
/// - `ENOTSOCK`/`EBADF` when `fd` is not a socket.
pub fn set_send_buffer_size(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, clamp_size(bytes))
}

/// The send buffer size in bytes (`SO_SNDBUF`), as the kernel sized it.
///
/// # Errors
/// - `ENOTSOCK`/`EBADF` when `fd` is not a socket.
pub fn send_buffer_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(usize::try_from(int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF)?).unwrap_or(0))
}

/// Asks for a receive buffer of `bytes` (`SO_RCVBUF`).
///
/// Linux doubles the value and caps it at `net.core.rmem_max`; read it back with
/// [`recv_buffer_size`].
///
/// # Errors
/// - `ENOTSOCK`/`EBADF` when `fd` is not a socket.
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// let fd = fio_sys::socket(fio_sys::Domain::Ipv4, fio_sys::SockType::Stream, true)?;
/// fio_sys::set_recv_buffer_size(fd.as_fd(), 64 * 1024)?;
/// assert!(fio_sys::recv_buffer_size(fd.as_fd())? >= 4096);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_recv_buffer_size(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, clamp_size(bytes))
}

/// The receive buffer size in bytes (`SO_RCVBUF`), as the kernel sized it.
///
/// # Errors
/// - `ENOTSOCK`/`EBADF` when `fd` is not a socket.
pub fn recv_buffer_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(usize::try_from(int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)?).unwrap_or(0))
}

/// Takes the socket's pending error (`SO_ERROR`), clearing it.
///
/// After a non-blocking [`connect`](crate::connect) returned
/// [`InProgress`](crate::ConnectStatus::InProgress) and the socket became writable, `Ok(None)`
/// means the connection is up and `Ok(Some(e))` says why it failed (`ConnectionRefused`...).
///
/// # Errors
/// - `ENOTSOCK`/`EBADF` when `fd` is not a socket (the outer error; the socket's own error is
///   the `Some` value).
pub fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let code = int(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((code != 0).then(|| io::Error::from_raw_os_error(code)))
}

/// The kernel takes sizes as `int`; anything larger is asking for the maximum anyway.
fn clamp_size(bytes: usize) -> libc::c_int {
    libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX)
}

fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = size_of::<libc::c_int>() as libc::socklen_t;
    let value_ptr = ptr::from_ref(&value).cast();
    // SAFETY: `value_ptr` points to an int that outlives the call, and `len` is its size.
    unsafe { syscall!(setsockopt(fd.as_raw_fd(), level, name, value_ptr, len)) }?;
    Ok(())
}

fn int(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    let (value_ptr, len_ptr) = (ptr::from_mut(&mut value).cast(), ptr::from_mut(&mut len));
    // SAFETY: both pointers point to live locals; `len` holds the int's size, so the kernel
    // writes at most that many bytes into `value`.
    unsafe { syscall!(getsockopt(fd.as_raw_fd(), level, name, value_ptr, len_ptr)) }?;
    Ok(value)
}
