//! Message receives: `recvmsg(2)` once into an owned buffer, and multishot `recvmsg(2)` from a
//! buffer group, both reporting the sender's address (UDP and other datagram sockets).
//!
//! A one-shot receive owns a [`RecvMessage`]: the target buffer, a control buffer, the
//! `iovec`, the name storage and the `msghdr` pointing at them. The kernel writes the name,
//! the control data and the header's lengths and flags; the final completion reads them back
//! (see [`RecvMessage::finish`]).
//!
//! A multishot receive owns only its `msghdr` *template*: the kernel reads its name and
//! control lengths each time it lays a datagram out in a group buffer (`io_uring_recvmsg_out`
//! header, then the name, then the control area, then the payload), so the template stays in
//! the in-flight slot, next to the re-arm entry, for the whole life of the operation.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use io_uring::opcode;

use super::net::msghdr;
use super::{Op, Resources, raw, recvmsg_multishot_entry};
use crate::buf::{IoBuf, KernelBox, iovec};
use crate::datagram::{NAME_LEN, socket_addr};
use crate::features::OpKind;
use crate::provider::BufferGroup;

impl Op {
    /// Receives one message into the unfilled part of `buf` (`recvmsg(2)`), with room for
    /// `control_len` bytes of ancillary data (0 for none). The final completion gives the
    /// sender through [`Completion::source_addr`](crate::Completion::source_addr), the data
    /// through [`take_read_buf`](crate::Completion::take_read_buf) (or
    /// [`take_datagram`](crate::Completion::take_datagram) for a pooled buffer), the
    /// ancillary data through [`take_control`](crate::Completion::take_control) and the
    /// message flags (`MSG_TRUNC`, `MSG_CTRUNC`) through
    /// [`msg_flags`](crate::Completion::msg_flags). An empty datagram completes with `Ok(0)`
    /// and its sender.
    ///
    /// # Examples
    /// ```
    /// use std::net::UdpSocket;
    /// use std::{cell::RefCell, rc::Rc};
    /// use fio_ring::{Op, Ring, RingConfig};
    ///
    /// let receiver = UdpSocket::bind("127.0.0.1:0")?;
    /// let sender = UdpSocket::bind("127.0.0.1:0")?;
    /// sender.send_to(b"hi", receiver.local_addr()?)?;
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let got = Rc::new(RefCell::new(None));
    /// let sink = got.clone();
    /// ring.submit(Op::recvmsg(&receiver, Vec::with_capacity(64), 0), move |_, mut done| {
    ///     let data = done.take_read_buf().map(|buf| buf.into_vec());
    ///     *sink.borrow_mut() = Some((data, done.source_addr()));
    /// })?;
    /// for _ in 0..10 {
    ///     if got.borrow().is_some() { break; }
    ///     ring.wait(None)?;
    /// }
    /// let (data, from) = got.borrow_mut().take().expect("received");
    /// assert_eq!(data.as_deref(), Some(&b"hi"[..]));
    /// assert_eq!(from, Some(sender.local_addr()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recvmsg(fd: impl AsFd, buf: impl Into<IoBuf>, control_len: usize) -> Op {
        let mut buf = buf.into();
        let (ptr, len) = buf.spare_mut();
        let vector = KernelBox::new(iovec(ptr, len));
        let mut control = IoBuf::from(Vec::with_capacity(control_len));
        let (control_ptr, control_cap) = control.spare_mut();
        let name = KernelBox::new([0u8; NAME_LEN]);
        let mut header = msghdr(name.as_ptr().cast(), NAME_LEN as libc::socklen_t, &[]);
        header.msg_iov = vector.as_ptr();
        header.msg_iovlen = 1;
        if control_len > 0 {
            header.msg_control = control_ptr.cast();
            header.msg_controllen = control_cap as _;
        }
        let header = KernelBox::new(header);
        let entry = opcode::RecvMsg::new(raw(fd), header.as_ptr()).build();
        Op::new(
            entry,
            Resources::RecvMessage(Box::new(RecvMessage {
                buf: Some(buf),
                control: Some(control),
                source: None,
                msg_flags: 0,
                header,
                name,
                vector,
            })),
            OpKind::RecvMsg,
        )
    }

    /// Receives datagrams repeatedly into buffers from `group` (multishot `recvmsg(2)`,
    /// Linux 6.0): one completion per datagram, each with its buffer, until an error or a
    /// cancel. [`Completion::take_datagram`](crate::Completion::take_datagram) gives the
    /// buffer with the payload's place in it and the sender, without copying.
    ///
    /// Each group buffer holds a 16-byte `io_uring_recvmsg_out` header and a 128-byte
    /// address area before the payload
    /// ([`Datagram::MULTISHOT_OVERHEAD`](crate::Datagram::MULTISHOT_OVERHEAD)), so buffers
    /// must be larger than that plus the largest datagram expected; a longer datagram is cut and flagged `MSG_TRUNC`
    /// ([`Datagram::is_truncated`](crate::Datagram::is_truncated)).
    ///
    /// A dry group is handled as for [`recv_multishot`](Self::recv_multishot): the ring hides
    /// the `ENOBUFS`, parks the operation and re-arms it when buffers come back (datagrams
    /// wait in the socket's receive queue meanwhile, or are dropped by the kernel if it
    /// overflows, as UDP does).
    pub fn recvmsg_multishot(fd: impl AsFd, group: BufferGroup) -> Op {
        let template = KernelBox::new(multishot_template());
        let fd = fd.as_fd().as_raw_fd();
        let entry = recvmsg_multishot_entry(fd, template.as_ptr().cast_const(), group.id());
        Op::group_receive(
            entry,
            OpKind::RecvMsgMultishot,
            fd,
            group.id(),
            Resources::MsgTemplate(template),
        )
    }
}

/// The header of a multishot `recvmsg`: only the name and control lengths matter (they size
/// the areas the kernel reserves in each buffer); it has no buffers of its own.
pub(crate) fn multishot_template() -> libc::msghdr {
    msghdr(std::ptr::null_mut(), NAME_LEN as libc::socklen_t, &[])
}

/// What a one-shot `recvmsg` owns, and what its final completion reads back.
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) struct RecvMessage {
    /// The payload target (taken by the completion's accessors).
    pub(crate) buf: Option<IoBuf>,
    /// The ancillary-data target; its capacity is the header's control length.
    pub(crate) control: Option<IoBuf>,
    /// The sender, filled in by [`finish`](Self::finish).
    pub(crate) source: Option<SocketAddr>,
    /// The header's `msg_flags` after the receive.
    pub(crate) msg_flags: i32,
    header: KernelBox<libc::msghdr>,
    name: KernelBox<[u8; NAME_LEN]>,
    vector: KernelBox<libc::iovec>,
}

impl RecvMessage {
    /// Records a successful receive of `count` bytes: the buffer grows by them, and the
    /// sender, the control data and the flags are read back from the kernel-written header.
    /// Called only with the final completion, when the kernel is done with the memory.
    pub(crate) fn finish(&mut self, count: usize) {
        if let Some(buf) = &mut self.buf {
            buf.commit(count);
        }
        // SAFETY: the operation's final completion arrived, so the kernel no longer writes
        // the header.
        let header = unsafe { self.header.read() };
        // SAFETY: as above, for the name storage.
        let name = unsafe { self.name.read() };
        let name_len = (header.msg_namelen as usize).min(NAME_LEN);
        self.source = socket_addr(&name[..name_len]);
        self.msg_flags = header.msg_flags;
        if let Some(control) = &mut self.control {
            control.commit(header.msg_controllen);
        }
    }
}
