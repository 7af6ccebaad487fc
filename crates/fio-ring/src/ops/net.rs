//! Socket operations: send (plain, vectored, zero-copy), receive (owned buffer, buffer group,
//! multishot), accept, connect, shutdown, socket and poll.

use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;

use std::os::fd::AsRawFd;

use io_uring::opcode;

use super::io::{check_iovec_count, fill_write_iovecs, write_iovecs};
use super::{
    AcceptFlags, Message, Op, Resources, SendFlags, SendStorage, SockAddr, raw, recv_group_entry,
    recv_multishot_entry,
};
use crate::buf::{IoBuf, KernelBox, WriteBuf};
use crate::error::Error;
use crate::features::OpKind;
use crate::provider::BufferGroup;

impl Op {
    /// Sends the unsent bytes of `buf` on a connected socket (`send(2)` with `MSG_NOSIGNAL`).
    /// The count may be short: [`WriteBuf::advance`] and send the rest.
    pub fn send(fd: impl AsFd, buf: impl Into<WriteBuf>) -> Op {
        Op::send_with_flags(fd, buf, SendFlags::empty())
    }

    /// As [`send`](Self::send), with `flags` added to `MSG_NOSIGNAL` (which is always on):
    /// [`SendFlags::MORE`] to cork a partial segment because more data follows,
    /// [`SendFlags::WAITALL`] to have the ring retry a short send until every byte is sent.
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// use std::net::{TcpListener, TcpStream};
    /// use std::{cell::Cell, rc::Rc};
    /// use fio_ring::{Op, Ring, RingConfig, SendFlags};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut server, _) = listener.accept()?;
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let done = Rc::new(Cell::new(0));
    /// for (part, flags) in [("hel", SendFlags::MORE), ("lo", SendFlags::empty())] {
    ///     let done = done.clone();
    ///     ring.submit(Op::send_with_flags(&client, part, flags), move |_, sent| {
    ///         assert!(sent.result().is_ok());
    ///         done.set(done.get() + 1);
    ///     })?;
    /// }
    /// for _ in 0..10 {
    ///     if done.get() == 2 { break; }
    ///     ring.wait(None)?;
    /// }
    /// let mut got = [0u8; 5];
    /// server.read_exact(&mut got)?;
    /// assert_eq!(&got, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn send_with_flags(fd: impl AsFd, buf: impl Into<WriteBuf>, flags: SendFlags) -> Op {
        let buf = buf.into();
        let (ptr, len) = buf.pending();
        let entry = opcode::Send::new(raw(fd), ptr, len)
            .flags(flags.with_nosignal())
            .build();
        let mut op = Op::new(entry, Resources::Write(buf), OpKind::Send);
        op.completes_at_submission = flags.contains(SendFlags::DONTWAIT);
        op
    }

    /// As [`send_with_flags`](Self::send_with_flags), reading the bytes `pin` holds in place
    /// in its [`SendQueue`](fio_buffer::SendQueue): nothing moves into the operation, which
    /// gives the pin back through
    /// [`take_send_pin`](crate::Completion::take_send_pin) for the queue to advance.
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// use std::net::{TcpListener, TcpStream};
    /// use std::{cell::RefCell, rc::Rc};
    /// use fio_ring::{BufferPool, Op, PoolConfig, Ring, RingConfig, SendFlags, SendQueue};
    /// use fio_ring::SpareBuffers;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut server, _) = listener.accept()?;
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let spares = Rc::new(RefCell::new(SpareBuffers::new(
    ///     BufferPool::new(PoolConfig::new(4096))?,
    ///     4,
    /// )));
    /// let queue = Rc::new(RefCell::new(SendQueue::new(1 << 20)));
    /// queue.borrow_mut().push_copy_from(b"hello", &mut spares.borrow_mut())?;
    /// let pin = queue.borrow_mut().lend_pinned().expect("one owned chunk");
    /// let (sent, recycled) = (queue.clone(), spares.clone());
    /// ring.submit(Op::send_pinned(&client, pin, SendFlags::empty()), move |_, mut done| {
    ///     let pin = done.take_send_pin().expect("a pinned send");
    ///     let count = done.result().unwrap_or(0) as usize;
    ///     let mut spares = recycled.borrow_mut();
    ///     assert!(sent.borrow_mut().finish_pinned(pin, count, &mut spares));
    /// })?;
    /// for _ in 0..10 {
    ///     if queue.borrow().is_empty() { break; }
    ///     ring.wait(None)?;
    /// }
    /// let mut got = [0u8; 5];
    /// server.read_exact(&mut got)?;
    /// assert_eq!(&got, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn send_pinned(fd: impl AsFd, pin: fio_buffer::SendPin, flags: SendFlags) -> Op {
        // The pin's bytes stay valid for as long as it lives (its queue parks or leaks the
        // chunk otherwise), and the op owns it until its completion.
        let len = u32::try_from(pin.len()).unwrap_or(u32::MAX);
        let entry = opcode::Send::new(raw(fd), pin.as_ptr(), len)
            .flags(flags.with_nosignal())
            .build();
        let mut op = Op::new(entry, Resources::Pinned(pin), OpKind::Send);
        op.completes_at_submission = flags.contains(SendFlags::DONTWAIT);
        op
    }

    /// Sends several buffers as one message (`sendmsg(2)` with `MSG_NOSIGNAL`), to `to` when
    /// given (unconnected datagram sockets). The completion returns the buffers through
    /// [`take_write_bufs`](crate::Completion::take_write_bufs).
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when more than [`MAX_IOVECS`](crate::MAX_IOVECS) buffers
    ///   are given.
    pub fn sendmsg(
        fd: impl AsFd,
        bufs: Vec<WriteBuf>,
        to: Option<SocketAddr>,
    ) -> Result<Op, Error> {
        Op::sendmsg_with_flags(fd, bufs, to, SendFlags::empty())
    }

    /// As [`sendmsg`](Self::sendmsg), with `flags` added to `MSG_NOSIGNAL` (see
    /// [`send_with_flags`](Self::send_with_flags)). On a datagram socket
    /// [`SendFlags::MORE`] appends the next message to this one (UDP corking).
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when more than [`MAX_IOVECS`](crate::MAX_IOVECS) buffers
    ///   are given.
    pub fn sendmsg_with_flags(
        fd: impl AsFd,
        bufs: Vec<WriteBuf>,
        to: Option<SocketAddr>,
        flags: SendFlags,
    ) -> Result<Op, Error> {
        check_iovec_count(bufs.len())?;
        let iovecs = write_iovecs(&bufs);
        let addr = to.map(sock_addr);
        let name_len = addr.as_ref().map_or(0, |addr| addr.len);
        let addr = addr.map(KernelBox::new);
        let name = addr
            .as_ref()
            .map_or(std::ptr::null_mut(), |addr| addr.as_ptr().cast());
        let header = KernelBox::new(msghdr(name, name_len, &iovecs));
        let entry = opcode::SendMsg::new(raw(fd), header.as_ptr().cast_const())
            .flags(flags.with_nosignal() as u32)
            .build();
        Ok(Op::new(
            entry,
            Resources::Message(Box::new(Message {
                bufs,
                iovecs,
                addr,
                header,
            })),
            OpKind::SendMsg,
        ))
    }

    /// [`sendmsg_with_flags`](Self::sendmsg_with_flags) of the buffers in `storage`, to a
    /// connected peer, reusing the storage's `iovec` array and message header: a socket that
    /// keeps one [`SendStorage`] and gets it back from each completion
    /// ([`Completion::take_send_storage`](crate::Completion::take_send_storage)) gathers
    /// its sends without allocating.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when more than [`MAX_IOVECS`](crate::MAX_IOVECS) buffers
    ///   are given; the storage is dropped with the op.
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// use std::net::{TcpListener, TcpStream};
    /// use std::{cell::RefCell, rc::Rc};
    /// use fio_ring::{Op, Ring, RingConfig, SendFlags, SendStorage};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut server, _) = listener.accept()?;
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let mut storage = SendStorage::new();
    /// storage.bufs_mut().extend(["gath".into(), "ered".into()]);
    /// let back = Rc::new(RefCell::new(None));
    /// let handed = back.clone();
    /// let op = Op::sendmsg_stored(&client, storage, SendFlags::empty())?;
    /// ring.submit(op, move |_, mut done| {
    ///     assert_eq!(done.result().ok(), Some(8));
    ///     *handed.borrow_mut() = done.take_send_storage();
    /// })?;
    /// for _ in 0..10 {
    ///     if back.borrow().is_some() { break; }
    ///     ring.wait(None)?;
    /// }
    /// let mut storage = back.borrow_mut().take().expect("the completion returns the storage");
    /// assert_eq!(storage.bufs_mut().len(), 2);
    /// let mut got = [0u8; 8];
    /// server.read_exact(&mut got)?;
    /// assert_eq!(&got, b"gathered");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sendmsg_stored(
        fd: impl AsFd,
        storage: SendStorage,
        flags: SendFlags,
    ) -> Result<Op, Error> {
        let mut message = storage.0;
        check_iovec_count(message.bufs.len())?;
        let Message {
            bufs,
            iovecs,
            addr,
            header,
        } = &mut *message;
        fill_write_iovecs(bufs, iovecs);
        *addr = None;
        let fresh = msghdr(std::ptr::null_mut(), 0, iovecs);
        // SAFETY: the header cell is live (owned by `message`), and no operation points at
        // it: the storage came back from its last operation's final completion, or is new.
        unsafe { header.as_ptr().write(fresh) };
        let entry = opcode::SendMsg::new(raw(fd), header.as_ptr().cast_const())
            .flags(flags.with_nosignal() as u32)
            .build();
        Ok(Op::new(entry, Resources::Message(message), OpKind::SendMsg))
    }

    /// Sends `buf` without copying it into the kernel (`IORING_OP_SEND_ZC`, Linux 6.0).
    ///
    /// The handler sees two completions: the byte count (not final), then a notification
    /// ([`Completion::is_notification`](crate::Completion::is_notification)) once the kernel no
    /// longer reads `buf`; `buf` is released only with that final notification.
    pub fn send_zc(fd: impl AsFd, buf: impl Into<WriteBuf>) -> Op {
        Op::send_zc_with_flags(fd, buf, SendFlags::empty())
    }

    /// As [`send_zc`](Self::send_zc), with `flags` added to `MSG_NOSIGNAL` (see
    /// [`send_with_flags`](Self::send_with_flags)).
    pub fn send_zc_with_flags(fd: impl AsFd, buf: impl Into<WriteBuf>, flags: SendFlags) -> Op {
        let buf = buf.into();
        let (ptr, len) = buf.pending();
        let entry = opcode::SendZc::new(raw(fd), ptr, len)
            .flags(flags.with_nosignal())
            .build();
        Op::new(entry, Resources::Write(buf), OpKind::SendZc)
    }

    /// Receives into the unfilled part of `buf` (`recv(2)`); `Ok(0)` means the peer closed.
    pub fn recv(fd: impl AsFd, buf: impl Into<IoBuf>) -> Op {
        let mut buf = buf.into();
        let (ptr, len) = buf.spare_mut();
        let entry = opcode::Recv::new(raw(fd), ptr, len).build();
        Op::new(entry, Resources::Read(buf), OpKind::Recv)
    }

    /// Receives once into a buffer the kernel picks from `group` (Linux 5.19); the buffer
    /// comes out of [`Completion::take_buffer`](crate::Completion::take_buffer) without a copy.
    /// If the group is empty the ring waits for buffers to come back and retries, instead of
    /// failing with `ENOBUFS`.
    pub fn recv_from_group(fd: impl AsFd, group: BufferGroup) -> Op {
        let fd = fd.as_fd().as_raw_fd();
        let entry = recv_group_entry(fd, group.id(), group.buffer_len());
        Op::group_receive(entry, OpKind::Recv, fd, group.id(), Resources::None)
    }

    /// Receives repeatedly into buffers from `group` (multishot receive, Linux 6.0): one
    /// completion per chunk of data, each with its buffer, until the peer closes (`Ok(0)`,
    /// final), an error, or a cancel.
    ///
    /// When the group runs dry the kernel ends the request with `ENOBUFS`; the ring hides
    /// that, records the operation as starved and re-arms it as soon as buffers are returned
    /// to the pool, so the handler sees one uninterrupted, ordered stream under one
    /// [`OpId`](crate::OpId).
    pub fn recv_multishot(fd: impl AsFd, group: BufferGroup) -> Op {
        let fd = fd.as_fd().as_raw_fd();
        let entry = recv_multishot_entry(fd, group.id());
        Op::group_receive(
            entry,
            OpKind::RecvMultishot,
            fd,
            group.id(),
            Resources::None,
        )
    }

    /// Accepts one connection (`accept4(2)` with `SOCK_CLOEXEC`); the new socket comes out of
    /// [`Completion::take_fd`](crate::Completion::take_fd), and is closed if nobody takes it
    /// (for example when the accept completes despite a cancel).
    pub fn accept(fd: impl AsFd) -> Op {
        Op::accept_with_flags(fd, AcceptFlags::empty())
    }

    /// As [`accept`](Self::accept), with `flags` added to `SOCK_CLOEXEC` (which is always on):
    /// [`AcceptFlags::NONBLOCK`] makes the accepted socket non-blocking from the start.
    pub fn accept_with_flags(fd: impl AsFd, flags: AcceptFlags) -> Op {
        let entry = opcode::Accept::new(raw(fd), std::ptr::null_mut(), std::ptr::null_mut())
            .flags(flags.with_cloexec())
            .build();
        Op::new(entry, Resources::None, OpKind::Accept)
    }

    /// Accepts connections until cancelled (multishot accept, Linux 5.19): one completion per
    /// connection, each with its descriptor.
    pub fn accept_multishot(fd: impl AsFd) -> Op {
        Op::accept_multishot_with_flags(fd, AcceptFlags::empty())
    }

    /// As [`accept_multishot`](Self::accept_multishot), with `flags` added to `SOCK_CLOEXEC`
    /// on every accepted socket.
    ///
    /// # Examples
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use std::{cell::RefCell, rc::Rc};
    /// use fio_ring::{AcceptFlags, Op, Ring, RingConfig};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// if !ring.features().multishot_accept() {
    ///     return Ok(());
    /// }
    /// let accepted = Rc::new(RefCell::new(Vec::new()));
    /// let sink = accepted.clone();
    /// let op = Op::accept_multishot_with_flags(&listener, AcceptFlags::NONBLOCK);
    /// let id = ring.submit(op, move |_, mut done| sink.borrow_mut().extend(done.take_fd()))?;
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// for _ in 0..10 {
    ///     if !accepted.borrow().is_empty() { break; }
    ///     ring.wait(None)?;
    /// }
    /// // A nonblocking socket with nothing to read says `WouldBlock` instead of waiting.
    /// let mut stream = TcpStream::from(accepted.borrow_mut().remove(0));
    /// let error = std::io::Read::read(&mut stream, &mut [0; 1]).unwrap_err();
    /// assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock);
    /// ring.cancel(id)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn accept_multishot_with_flags(fd: impl AsFd, flags: AcceptFlags) -> Op {
        let entry = opcode::AcceptMulti::new(raw(fd))
            .flags(flags.with_cloexec())
            .build();
        Op::new(entry, Resources::None, OpKind::AcceptMultishot)
    }

    /// Connects a socket to `addr` (`connect(2)`).
    pub fn connect(fd: impl AsFd, addr: SocketAddr) -> Op {
        let addr = sock_addr(addr);
        let len = addr.len;
        let addr = KernelBox::new(addr);
        let entry = opcode::Connect::new(raw(fd), addr.as_ptr().cast(), len).build();
        Op::new(entry, Resources::Addr(addr), OpKind::Connect)
    }

    /// Shuts down one or both directions of a socket (`shutdown(2)`).
    pub fn shutdown(fd: impl AsFd, how: Shutdown) -> Op {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        let entry = opcode::Shutdown::new(raw(fd), how).build();
        Op::new(entry, Resources::None, OpKind::Shutdown)
    }

    /// Creates a socket (`socket(2)` with `SOCK_CLOEXEC`, Linux 5.19); the descriptor comes
    /// out of [`Completion::take_fd`](crate::Completion::take_fd).
    pub fn socket(domain: i32, socket_type: i32, protocol: i32) -> Op {
        let entry = opcode::Socket::new(domain, socket_type | libc::SOCK_CLOEXEC, protocol).build();
        Op::new(entry, Resources::None, OpKind::Socket)
    }

    /// Waits once for `events` (`POLLIN`, `POLLOUT`, ...) on `fd`; the result is the ready
    /// event mask.
    pub fn poll(fd: impl AsFd, events: u32) -> Op {
        let entry = opcode::PollAdd::new(raw(fd), events).build();
        Op::new(entry, Resources::None, OpKind::Poll)
    }

    /// Reports `events` on `fd` every time they become ready, until cancelled (multishot
    /// poll, Linux 5.13; edge-triggered).
    pub fn poll_multishot(fd: impl AsFd, events: u32) -> Op {
        let entry = opcode::PollAdd::new(raw(fd), events).multi(true).build();
        Op::new(entry, Resources::None, OpKind::Poll)
    }
}

/// A `msghdr` naming `name` and the buffers in `iovecs`, with no control data.
pub(crate) fn msghdr(
    name: *mut libc::c_void,
    name_len: libc::socklen_t,
    iovecs: &[libc::iovec],
) -> libc::msghdr {
    let zeroed = MaybeUninit::<libc::msghdr>::zeroed();
    // SAFETY: an all-zero `msghdr` is a valid value (integers and null pointers only); going
    // through `zeroed` avoids naming the private padding fields some targets add.
    let mut header = unsafe { zeroed.assume_init() };
    header.msg_name = name;
    header.msg_namelen = name_len;
    header.msg_iov = iovecs.as_ptr().cast_mut();
    header.msg_iovlen = iovecs.len() as _;
    header
}

/// Converts a standard socket address to the kernel's layout.
pub(crate) fn sock_addr(addr: SocketAddr) -> SockAddr {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and at least as aligned as
            // `sockaddr_in`, and `storage` is a live local.
            unsafe { storage.as_mut_ptr().cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: `sockaddr_storage` is larger than and at least as aligned as
            // `sockaddr_in6`, and `storage` is a live local.
            unsafe {
                storage
                    .as_mut_ptr()
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: the storage was zeroed (a valid `sockaddr_storage`: integers only) and then
    // partly overwritten with a valid address.
    let storage = unsafe { storage.assume_init() };
    SockAddr {
        storage,
        len: len as libc::socklen_t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_socket_addresses() {
        let v4 = sock_addr("127.0.0.1:8080".parse().unwrap());
        assert_eq!(v4.len as usize, size_of::<libc::sockaddr_in>());
        assert_eq!(v4.storage.ss_family, libc::AF_INET as libc::sa_family_t);
        let v6 = sock_addr("[::1]:443".parse().unwrap());
        assert_eq!(v6.len as usize, size_of::<libc::sockaddr_in6>());
        assert_eq!(v6.storage.ss_family, libc::AF_INET6 as libc::sa_family_t);
    }
}
