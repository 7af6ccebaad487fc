//! Moving bytes: `recv`, `recvfrom`, `send`, `sendto`, `sendmsg`, `readv`, `writev`,
//! `sendfile`, `shutdown`, and `poll` on one descriptor.
//!
//! Every call returns the kernel's byte count, which may be short; looping until done, and
//! treating `WouldBlock` as "wait for readiness", is the caller's job (the reactor's).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;
use std::time::Duration;

use crate::addr::{RawSockAddr, SockAddr};
use crate::flags::flag_set;
use crate::syscall::syscall;

/// The most buffers one vectored call takes (`IOV_MAX` on Linux); longer lists are cut here,
/// which the caller sees as a short write.
const IOV_MAX: usize = 1024;

flag_set! {
    /// Flags for [`recv`] and [`recv_from`] (`MSG_*`).
    pub struct RecvFlags(libc::c_int) {
        /// Return the data without removing it from the queue (`MSG_PEEK`).
        const PEEK = libc::MSG_PEEK;
        /// Fail with `WouldBlock` instead of blocking, for this call only (`MSG_DONTWAIT`).
        const DONTWAIT = libc::MSG_DONTWAIT;
        /// Block until the whole buffer is filled, EOF, or a signal (`MSG_WAITALL`).
        const WAITALL = libc::MSG_WAITALL;
        /// Return a datagram's full length even when it did not fit the buffer (`MSG_TRUNC`).
        const TRUNC = libc::MSG_TRUNC;
    }
}

flag_set! {
    /// Flags for [`send`], [`send_to`] and [`sendmsg`] (`MSG_*`).
    pub struct SendFlags(libc::c_int) {
        /// Fail with `WouldBlock` instead of blocking, for this call only (`MSG_DONTWAIT`).
        const DONTWAIT = libc::MSG_DONTWAIT;
        /// Fail with `BrokenPipe` instead of raising `SIGPIPE` when the peer is gone
        /// (`MSG_NOSIGNAL`).
        const NOSIGNAL = libc::MSG_NOSIGNAL;
        /// More data follows: hold back a partial TCP segment (`MSG_MORE`).
        const MORE = libc::MSG_MORE;
        /// Send the byte as TCP urgent data (`MSG_OOB`).
        const OOB = libc::MSG_OOB;
    }
}

flag_set! {
    /// Readiness events for [`poll`] (`POLL*`).
    pub struct PollFlags(libc::c_short) {
        /// Readable, or a listener has a connection to accept (`POLLIN`).
        const IN = libc::POLLIN;
        /// Writable, or a non-blocking connect finished (`POLLOUT`).
        const OUT = libc::POLLOUT;
        /// The peer shut down its writing half (`POLLRDHUP`).
        const RDHUP = libc::POLLRDHUP;
        /// An error is pending; read it with [`take_error`](crate::take_error) (`POLLERR`,
        /// reported even when not asked for).
        const ERR = libc::POLLERR;
        /// Both directions are shut down (`POLLHUP`, reported even when not asked for).
        const HUP = libc::POLLHUP;
    }
}

/// Receives bytes from a connected socket (`recv(2)`), returning how many; 0 means EOF (or an
/// empty datagram).
///
/// # Errors
/// - `WouldBlock` when nothing is queued on a non-blocking socket or with
///   [`RecvFlags::DONTWAIT`];
/// - `ConnectionReset` when the peer reset the connection, `NotConnected` when never
///   connected, `Interrupted` when a signal arrived first;
/// - `ENOTSOCK`/`EBADF` when `fd` is not a socket.
///
/// # Examples
/// ```
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// use fio_sys::RecvFlags;
/// let (mut a, b) = std::os::unix::net::UnixStream::pair()?;
/// a.write_all(b"ping")?;
/// let mut buf = [0u8; 16];
/// let n = fio_sys::recv(b.as_fd(), &mut buf, RecvFlags::empty())?;
/// assert_eq!(&buf[..n], b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
// Inlined where it is hot (the epoll engine's receive loop): the call cost as much as the
// `syscall(2)` stub it wraps.
#[inline]
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: RecvFlags) -> io::Result<usize> {
    let (data, len) = (buf.as_mut_ptr().cast::<libc::c_void>(), buf.len());
    // SAFETY: `data` points to `len` writable bytes borrowed for the whole call; no address
    // is asked for (null pointers). `recvfrom` without an address is what libc's `recv` calls.
    let n = unsafe {
        syscall!(@direct SYS_recvfrom(
            libc::c_long::from(fd.as_raw_fd()),
            data,
            len,
            libc::c_long::from(flags.bits()),
            ptr::null_mut::<libc::sockaddr>(),
            ptr::null_mut::<libc::socklen_t>(),
        ))
    }?;
    Ok(count(n))
}

/// A byte count the kernel returned, checked non-negative by `syscall!`.
fn count(n: libc::c_long) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// Receives one datagram (`recvfrom(2)`), returning its length and the sender's address.
///
/// A datagram longer than `buf` is cut; with [`RecvFlags::TRUNC`] the returned length is the
/// datagram's full length, so a length above `buf.len()` reveals the cut.
///
/// # Errors
/// - `WouldBlock` when nothing is queued on a non-blocking socket;
/// - `Interrupted` when a signal arrived first, `ENOTSOCK`/`EBADF` for a non-socket;
/// - `InvalidData` when the sender's family is not IPv4, IPv6 or Unix.
pub fn recv_from(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: RecvFlags,
) -> io::Result<(usize, SockAddr)> {
    let mut raw = RawSockAddr::empty();
    let (addr, addr_len) = raw.as_mut_parts();
    let (data, len) = (buf.as_mut_ptr().cast(), buf.len());
    // SAFETY: `data` points to `len` writable bytes borrowed for the call; `addr` and
    // `addr_len` point into `raw`, which outlives the call, with `addr_len` holding its size.
    let n = unsafe {
        syscall!(recvfrom(
            fd.as_raw_fd(),
            data,
            len,
            flags.bits(),
            addr,
            addr_len
        ))
    }?;
    Ok((n.unsigned_abs(), raw.to_sock_addr()?))
}

/// Sends bytes on a connected socket (`send(2)`), returning how many were queued.
///
/// Pass [`SendFlags::NOSIGNAL`] unless `SIGPIPE` is ignored (see
/// [`ignore_sigpipe`](crate::ignore_sigpipe)).
///
/// # Errors
/// - `WouldBlock` when the send buffer is full on a non-blocking socket;
/// - `BrokenPipe` when the peer is gone (and `SIGPIPE` is raised without `NOSIGNAL`),
///   `ConnectionReset`, `NotConnected`, `Interrupted`;
/// - `EMSGSIZE` for a datagram larger than the protocol allows.
///
/// # Examples
/// ```
/// use std::io::Read;
/// use std::os::fd::AsFd;
/// use fio_sys::SendFlags;
/// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
/// assert_eq!(fio_sys::send(a.as_fd(), b"pong", SendFlags::NOSIGNAL)?, 4);
/// let mut buf = [0u8; 4];
/// b.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"pong");
/// # Ok::<(), std::io::Error>(())
/// ```
// Always inlined: the epoll engine sends every reply through it, and as a call it cost as
// much again as the `syscall(2)` stub it wraps.
#[inline(always)]
pub fn send(fd: BorrowedFd<'_>, buf: &[u8], flags: SendFlags) -> io::Result<usize> {
    let (data, len) = (buf.as_ptr().cast::<libc::c_void>(), buf.len());
    // SAFETY: `data` points to `len` readable bytes borrowed for the whole call; no address
    // is given (null, length 0). `sendto` without an address is what libc's `send` calls.
    let n = unsafe {
        syscall!(@direct SYS_sendto(
            libc::c_long::from(fd.as_raw_fd()),
            data,
            len,
            libc::c_long::from(flags.bits()),
            ptr::null::<libc::sockaddr>(),
            libc::c_long::from(0_i32),
        ))
    }?;
    Ok(count(n))
}

/// Sends one datagram to `addr` (`sendto(2)`).
///
/// # Errors
/// As [`send`], plus `InvalidInput` when `addr` cannot be encoded or its family differs from
/// the socket's, and `ENETUNREACH`/`EHOSTUNREACH` when there is no route.
pub fn send_to(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    addr: &SockAddr,
    flags: SendFlags,
) -> io::Result<usize> {
    let raw = addr.to_raw()?;
    let (data, len) = (buf.as_ptr().cast(), buf.len());
    // SAFETY: `data` points to `len` readable bytes and `raw` is a valid address of
    // `raw.len()` bytes; both are borrowed for the whole call.
    let n = unsafe {
        syscall!(sendto(
            fd.as_raw_fd(),
            data,
            len,
            flags.bits(),
            raw.as_ptr(),
            raw.len()
        ))
    }?;
    Ok(n.unsigned_abs())
}

/// Sends several buffers as one message (`sendmsg(2)`), to `addr` if given (datagrams) or to
/// the connected peer. Only the first `IOV_MAX` (1024) buffers are sent.
///
/// # Errors
/// As [`send_to`].
///
/// # Examples
/// ```
/// use std::io::{IoSlice, Read};
/// use std::os::fd::AsFd;
/// use fio_sys::SendFlags;
/// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
/// let parts = [IoSlice::new(b"hello, "), IoSlice::new(b"world")];
/// assert_eq!(fio_sys::sendmsg(a.as_fd(), &parts, None, SendFlags::NOSIGNAL)?, 12);
/// let mut text = [0u8; 12];
/// b.read_exact(&mut text)?;
/// assert_eq!(&text, b"hello, world");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn sendmsg(
    fd: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    addr: Option<&SockAddr>,
    flags: SendFlags,
) -> io::Result<usize> {
    let raw = addr.map(SockAddr::to_raw).transpose()?;
    // SAFETY: msghdr is plain integers and pointers, for which zero (null) is a valid value.
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    if let Some(raw) = &raw {
        header.msg_name = raw.as_ptr().cast_mut().cast();
        header.msg_namelen = raw.len();
    }
    // IoSlice is guaranteed ABI-compatible with iovec on Unix, so the slice is an iovec array.
    header.msg_iov = bufs.as_ptr().cast_mut().cast();
    header.msg_iovlen = bufs.len().min(IOV_MAX);
    // SAFETY: `header` points at `raw` and `bufs`, both borrowed for the whole call; the kernel
    // only reads through msg_name and msg_iov for sendmsg.
    let n = unsafe {
        syscall!(@direct SYS_sendmsg(
            libc::c_long::from(fd.as_raw_fd()),
            ptr::from_ref(&header),
            libc::c_long::from(flags.bits()),
        ))
    }?;
    Ok(count(n))
}

/// Writes several buffers in one call (`writev(2)`); works on any descriptor. Only the first
/// `IOV_MAX` (1024) buffers are written.
///
/// # Errors
/// - `WouldBlock` when a non-blocking descriptor is full, `BrokenPipe` when the reader is
///   gone (and `SIGPIPE` is raised unless ignored), `Interrupted`, `EBADF` when not writable.
///
/// # Examples
/// ```
/// use std::io::{IoSlice, Read};
/// use std::os::fd::AsFd;
/// let (reader, writer) = fio_sys::pipe()?;
/// assert_eq!(fio_sys::writev(writer.as_fd(), &[IoSlice::new(b"ab"), IoSlice::new(b"cd")])?, 4);
/// drop(writer);
/// let mut text = String::new();
/// std::fs::File::from(reader).read_to_string(&mut text)?;
/// assert_eq!(text, "abcd");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn writev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let count = iov_count(bufs.len());
    // SAFETY: IoSlice is ABI-compatible with iovec, and `bufs` (with every buffer it names)
    // is borrowed for the whole call; `count` is at most its length.
    let n = unsafe { syscall!(writev(fd.as_raw_fd(), bufs.as_ptr().cast(), count)) }?;
    Ok(n.unsigned_abs())
}

/// Reads into several buffers in one call (`readv(2)`), filling them in order; 0 means EOF.
///
/// # Errors
/// - `WouldBlock` when nothing is ready on a non-blocking descriptor, `Interrupted`, `EBADF`
///   when not readable.
pub fn readv(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let count = iov_count(bufs.len());
    // SAFETY: IoSliceMut is ABI-compatible with iovec, and `bufs` (with every buffer it names)
    // is exclusively borrowed for the whole call; `count` is at most its length.
    let n = unsafe { syscall!(readv(fd.as_raw_fd(), bufs.as_mut_ptr().cast(), count)) }?;
    Ok(n.unsigned_abs())
}

/// Copies up to `count` bytes from `file` at `*offset` to `out` inside the kernel
/// (`sendfile(2)`), advancing `*offset` by the amount sent, which it returns. 0 means `offset`
/// is at or past the end of the file.
///
/// The file's own position is not used or changed, so one file can feed many sockets at once.
///
/// # Errors
/// - `WouldBlock` when `out` is a full non-blocking socket;
/// - `EINVAL` when `file` cannot be mapped (a socket or pipe as the source);
/// - `BrokenPipe`, `ConnectionReset` when the peer is gone; `EOVERFLOW` when the offset does
///   not fit `off_t`.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use std::os::fd::AsFd;
/// let path = std::env::temp_dir().join(format!("fio-sys-sendfile-doc-{}", std::process::id()));
/// std::fs::File::create(&path)?.write_all(b"0123456789")?;
/// let file = std::fs::File::open(&path)?;
/// std::fs::remove_file(&path)?;
/// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
/// let mut offset = 4;
/// assert_eq!(fio_sys::sendfile(a.as_fd(), file.as_fd(), &mut offset, 100)?, 6);
/// assert_eq!(offset, 10);
/// let mut tail = [0u8; 6];
/// b.read_exact(&mut tail)?;
/// assert_eq!(&tail, b"456789");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn sendfile(
    out: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    let mut kernel_offset = libc::off_t::try_from(*offset)
        .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    let offset_ptr = ptr::from_mut(&mut kernel_offset);
    // SAFETY: `offset_ptr` points to a live local the kernel reads and updates.
    let n = unsafe {
        syscall!(sendfile(
            out.as_raw_fd(),
            file.as_raw_fd(),
            offset_ptr,
            count
        ))
    }?;
    *offset = kernel_offset.unsigned_abs();
    Ok(n.unsigned_abs())
}

/// Shuts down one or both directions of a connection (`shutdown(2)`); the peer reads EOF
/// after [`Shutdown::Write`] even while other descriptors for the socket stay open.
///
/// # Errors
/// - `NotConnected` when the socket is not connected; `ENOTSOCK`/`EBADF` for a non-socket.
///
/// # Examples
/// ```
/// use std::io::Read;
/// use std::net::Shutdown;
/// use std::os::fd::AsFd;
/// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
/// fio_sys::shutdown(a.as_fd(), Shutdown::Write)?;
/// assert_eq!(b.read(&mut [0u8; 1])?, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn shutdown(fd: BorrowedFd<'_>, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown takes no pointers.
    unsafe { syscall!(shutdown(fd.as_raw_fd(), how)) }?;
    Ok(())
}

/// Waits until `fd` is ready for one of `interest`, or `timeout` passes (`poll(2)` on one
/// descriptor). Returns the events that occurred; empty means the timeout passed.
///
/// `None` waits without limit; a timeout is rounded up to whole milliseconds.
///
/// # Errors
/// - `Interrupted` when a signal arrived first (retry with the time left);
/// - `ENOMEM` when the kernel could not allocate its wait table.
///
/// # Examples
/// ```
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use fio_sys::PollFlags;
/// let (mut a, b) = std::os::unix::net::UnixStream::pair()?;
/// assert!(fio_sys::poll(b.as_fd(), PollFlags::IN, Some(Duration::ZERO))?.is_empty());
/// a.write_all(b"x")?;
/// let ready = fio_sys::poll(b.as_fd(), PollFlags::IN, Some(Duration::from_secs(10)))?;
/// assert!(ready.contains(PollFlags::IN));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn poll(
    fd: BorrowedFd<'_>,
    interest: PollFlags,
    timeout: Option<Duration>,
) -> io::Result<PollFlags> {
    let mut entry = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: interest.bits(),
        revents: 0,
    };
    let timeout_ms = timeout.map_or(-1, |timeout| {
        let ms = timeout.as_nanos().div_ceil(1_000_000);
        libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
    });
    let entry_ptr = ptr::from_mut(&mut entry);
    // SAFETY: `entry_ptr` points to one live pollfd, and the count passed is 1.
    unsafe { syscall!(poll(entry_ptr, 1, timeout_ms)) }?;
    Ok(PollFlags::from_bits_retain(entry.revents))
}

fn iov_count(len: usize) -> libc::c_int {
    // IOV_MAX is 1024, so the clamped length always fits an int.
    libc::c_int::try_from(len.min(IOV_MAX)).unwrap_or(0)
}
