//! Socket creation and life: `socket`, `bind`, `listen`, `connect`, `accept4`, and the
//! non-blocking and close-on-exec descriptor flags.
//!
//! Every descriptor this module creates is close-on-exec, so a worker that execs never leaks
//! the reactor's sockets into the new program.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::addr::{Domain, RawSockAddr, SockAddr};
use crate::syscall::syscall;

/// A socket's type, as `socket(2)` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockType {
    /// A byte stream: TCP, or a stream Unix socket (`SOCK_STREAM`).
    Stream,
    /// Datagrams: UDP, or a datagram Unix socket (`SOCK_DGRAM`).
    Datagram,
}

impl SockType {
    /// The `SOCK_*` constant.
    pub const fn as_raw(self) -> libc::c_int {
        match self {
            Self::Stream => libc::SOCK_STREAM,
            Self::Datagram => libc::SOCK_DGRAM,
        }
    }
}

/// What a non-blocking [`connect`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectStatus {
    /// The connection is established (Unix sockets, UDP, and sometimes TCP on loopback).
    Connected,
    /// The handshake goes on in the background (`EINPROGRESS`): wait until the socket is
    /// writable, then read [`take_error`](crate::take_error) for the outcome.
    InProgress,
}

/// Creates a close-on-exec socket, non-blocking if asked.
///
/// # Errors
/// - `EAFNOSUPPORT` when the kernel lacks the family (IPv6 compiled out);
/// - `EMFILE`/`ENFILE` when out of descriptors, `ENOBUFS`/`ENOMEM` when out of memory;
/// - `EACCES` when a security policy forbids the socket.
///
/// # Examples
/// ```
/// use fio_sys::{Domain, SockType};
/// let fd = fio_sys::socket(Domain::Ipv4, SockType::Stream, true)?;
/// assert!(fio_sys::is_nonblocking(std::os::fd::AsFd::as_fd(&fd))?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn socket(domain: Domain, kind: SockType, nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = kind.as_raw() | libc::SOCK_CLOEXEC;
    if nonblocking {
        flags |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: socket takes no pointers; the kernel validates every argument.
    let fd = unsafe { syscall!(socket(domain.as_raw(), flags, 0)) }?;
    // SAFETY: socket returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds a socket to an address (`bind(2)`).
///
/// # Errors
/// - `AddrInUse` when another socket holds the address (set
///   [`set_reuse_addr`](crate::set_reuse_addr) first for servers);
/// - `AddrNotAvailable` when the IP is not local, `EACCES` for a port below 1024 without
///   privilege or a Unix path in a directory that is not writable;
/// - `InvalidInput` when the socket is already bound, the family differs from the socket's, or
///   a Unix path cannot be encoded (see [`SockAddr::to_raw`]).
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// use fio_sys::{Domain, SockAddr, SockType};
/// let fd = fio_sys::socket(Domain::Ipv4, SockType::Stream, true)?;
/// fio_sys::bind(fd.as_fd(), &SockAddr::from("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap()))?;
/// let port = fio_sys::local_addr(fd.as_fd())?.as_inet().map(|a| a.port());
/// assert_ne!(port, Some(0));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn bind(fd: BorrowedFd<'_>, addr: &SockAddr) -> io::Result<()> {
    let raw = addr.to_raw()?;
    // SAFETY: `raw` is a valid address of `raw.len()` bytes that outlives the call.
    unsafe { syscall!(bind(fd.as_raw_fd(), raw.as_ptr(), raw.len())) }?;
    Ok(())
}

/// Marks a stream socket as accepting connections (`listen(2)`).
///
/// `None` asks for the system's maximum: the kernel caps any backlog at
/// `net.core.somaxconn` (4096 by default since Linux 5.4), so the largest value is passed and
/// the kernel trims it. `Some(n)` above `i32::MAX` is treated the same way.
///
/// # Errors
/// - `EADDRINUSE` when another socket listens on the same port;
/// - `EOPNOTSUPP` for a datagram socket, `ENOTSOCK`/`EBADF` for a non-socket.
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// use fio_sys::{Domain, SockAddr, SockType};
/// let fd = fio_sys::socket(Domain::Ipv4, SockType::Stream, true)?;
/// fio_sys::bind(fd.as_fd(), &SockAddr::from("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap()))?;
/// fio_sys::listen(fd.as_fd(), None)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn listen(fd: BorrowedFd<'_>, backlog: Option<u32>) -> io::Result<()> {
    let backlog = backlog.map_or(libc::c_int::MAX, |n| {
        libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX)
    });
    // SAFETY: listen takes no pointers.
    unsafe { syscall!(listen(fd.as_raw_fd(), backlog)) }?;
    Ok(())
}

/// Starts connecting a socket to `addr` (`connect(2)`).
///
/// On a non-blocking socket `EINPROGRESS` is success: it returns
/// [`ConnectStatus::InProgress`]. An `EINTR` on a blocking socket also means the connection
/// goes on in the background, so it is reported the same way.
///
/// # Errors
/// - `ConnectionRefused` (nobody listens; for Unix sockets, a stale socket file);
/// - `WouldBlock` (`EAGAIN`) for a Unix socket whose listener's backlog is full;
/// - `ENETUNREACH`/`EHOSTUNREACH`, `ETIMEDOUT` (blocking sockets only), `ENOENT` for a missing
///   Unix path, `EACCES` for a Unix path without permission;
/// - `InvalidInput` when `addr` cannot be encoded or its family differs from the socket's.
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// use fio_sys::{Domain, SockAddr, SockType};
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let fd = fio_sys::socket(Domain::Ipv4, SockType::Stream, true)?;
/// let status = fio_sys::connect(fd.as_fd(), &SockAddr::from(listener.local_addr()?))?;
/// println!("connect: {status:?}");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn connect(fd: BorrowedFd<'_>, addr: &SockAddr) -> io::Result<ConnectStatus> {
    let raw = addr.to_raw()?;
    // SAFETY: `raw` is a valid address of `raw.len()` bytes that outlives the call.
    match unsafe { syscall!(connect(fd.as_raw_fd(), raw.as_ptr(), raw.len())) } {
        Ok(_) => Ok(ConnectStatus::Connected),
        Err(error) if matches!(error.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => {
            Ok(ConnectStatus::InProgress)
        }
        Err(error) => Err(error),
    }
}

/// Accepts a connection (`accept4(2)`), returning it non-blocking and close-on-exec, with the
/// peer's address.
///
/// This is `fio_accept` without the reactor: the socket is not attached to anything.
///
/// # Errors
/// - `WouldBlock` when a non-blocking listener has no pending connection;
/// - `ECONNABORTED` when a pending connection was reset before being accepted (try again);
/// - `EMFILE`/`ENFILE` when out of descriptors, `ENOBUFS`/`ENOMEM` when out of memory;
/// - `EINVAL` when the socket is not listening, `Interrupted` when a signal arrived first;
/// - `InvalidData` when the peer's family is not IPv4, IPv6 or Unix.
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (conn, peer) = fio_sys::accept(listener.as_fd())?;
/// assert_eq!(peer.as_inet(), Some(client.local_addr()?));
/// assert!(fio_sys::is_nonblocking(conn.as_fd())? && fio_sys::is_cloexec(conn.as_fd())?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn accept(fd: BorrowedFd<'_>) -> io::Result<(OwnedFd, SockAddr)> {
    let mut raw = RawSockAddr::empty();
    let (addr, len) = raw.as_mut_parts();
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `addr` and `len` point into `raw`, which outlives the call, and `len` holds the
    // storage's size, so the kernel writes no more than that.
    let conn = unsafe { syscall!(accept4(fd.as_raw_fd(), addr, len, flags)) }?;
    // SAFETY: accept4 returned a fresh descriptor that nothing else owns.
    let conn = unsafe { OwnedFd::from_raw_fd(conn) };
    Ok((conn, raw.to_sock_addr()?))
}

/// Makes a descriptor non-blocking and close-on-exec: `fio_set_non_block`.
///
/// # Errors
/// - `EBADF` when `fd` is not open (impossible for a live `BorrowedFd`).
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// fio_sys::set_nonblocking(listener.as_fd())?;
/// assert!(fio_sys::is_nonblocking(listener.as_fd())?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    update_status_flags(fd, |flags| flags | libc::O_NONBLOCK)?;
    update_descriptor_flags(fd, |flags| flags | libc::FD_CLOEXEC)
}

/// Makes a descriptor blocking again; its close-on-exec flag is left alone.
///
/// # Errors
/// - `EBADF` when `fd` is not open (impossible for a live `BorrowedFd`).
pub fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    update_status_flags(fd, |flags| flags & !libc::O_NONBLOCK)
}

/// Whether `O_NONBLOCK` is set on the open file behind `fd`.
///
/// # Errors
/// - `EBADF` when `fd` is not open (impossible for a live `BorrowedFd`).
pub fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = unsafe { syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFL)) }?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// Whether `FD_CLOEXEC` is set on `fd`.
///
/// # Errors
/// - `EBADF` when `fd` is not open (impossible for a live `BorrowedFd`).
pub fn is_cloexec(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFD takes no pointer argument.
    let flags = unsafe { syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFD)) }?;
    Ok(flags & libc::FD_CLOEXEC != 0)
}

fn update_status_flags(
    fd: BorrowedFd<'_>,
    update: impl FnOnce(libc::c_int) -> libc::c_int,
) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = unsafe { syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFL)) }?;
    let wanted = update(flags);
    if wanted != flags {
        // SAFETY: F_SETFL takes an integer argument, not a pointer.
        unsafe { syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFL, wanted)) }?;
    }
    Ok(())
}

fn update_descriptor_flags(
    fd: BorrowedFd<'_>,
    update: impl FnOnce(libc::c_int) -> libc::c_int,
) -> io::Result<()> {
    // SAFETY: F_GETFD takes no pointer argument.
    let flags = unsafe { syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFD)) }?;
    let wanted = update(flags);
    if wanted != flags {
        // SAFETY: F_SETFD takes an integer argument, not a pointer.
        unsafe { syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFD, wanted)) }?;
    }
    Ok(())
}
