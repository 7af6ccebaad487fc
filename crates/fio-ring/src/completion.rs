//! [`Completion`]: what a handler receives for each completion of its operation.

use std::fmt;
use std::io;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};

use fio_buffer::Buffer;
use io_uring::cqueue;

use crate::buf::{IoBuf, WriteBuf};
use crate::datagram::{self, Datagram};
use crate::features::OpKind;
use crate::inflight::OpId;
use crate::ops::Resources;

/// One completion of an operation, passed by value to its handler.
///
/// Multishot operations (and repeating timeouts) produce several; only the last one is
/// [`is_final`](Self::is_final), and only that one gives back the resources the operation
/// owned (`take_read_buf`, `take_write_buf`, ...). Buffers picked from a buffer group come
/// with every completion that carries data ([`take_buffer`](Self::take_buffer)).
///
/// Anything left in the completion is dropped with it: buffers return to their pool and a
/// descriptor from `accept`/`openat`/`socket` is closed.
pub struct Completion {
    id: OpId,
    kind: OpKind,
    res: i32,
    flags: u32,
    is_final: bool,
    /// Dropped by hand (see `Drop`), so the common empty case costs no drop-glue call.
    resources: ManuallyDrop<Resources>,
    fd: Option<OwnedFd>,
}

impl Drop for Completion {
    fn drop(&mut self) {
        if !matches!(*self.resources, Resources::None) {
            drop(mem::take(&mut *self.resources));
        }
    }
}

impl Completion {
    /// The empty completion an end-of-tick callback is called with (it ignores it).
    pub(crate) fn tick_end() -> Self {
        Self::new(
            OpId::from_user_data(crate::inflight::IGNORED_USER_DATA),
            OpKind::Nop,
            0,
            0,
            true,
            Resources::None,
        )
    }

    /// Builds a completion; a new descriptor in `res` is wrapped at once so that it cannot
    /// leak. The ring has already applied the transfer count to `resources`.
    #[inline(always)]
    pub(crate) fn new(
        id: OpId,
        kind: OpKind,
        res: i32,
        flags: u32,
        is_final: bool,
        resources: Resources,
    ) -> Self {
        Self::assemble(id, kind, res, flags, is_final, creates_fd(kind), resources)
    }

    /// As [`new`](Self::new), with whether `kind` creates descriptors ([`creates_fd`])
    /// decided by the caller.
    #[inline(always)]
    pub(crate) fn assemble(
        id: OpId,
        kind: OpKind,
        res: i32,
        flags: u32,
        is_final: bool,
        creates_fd: bool,
        resources: Resources,
    ) -> Self {
        debug_assert_eq!(creates_fd, self::creates_fd(kind));
        let fd = if res >= 0 && creates_fd {
            // SAFETY: for these opcodes a non-negative result is a descriptor the kernel has
            // just installed in our table and handed to nobody else.
            Some(unsafe { OwnedFd::from_raw_fd(res) })
        } else {
            None
        };
        Self {
            id,
            kind,
            res,
            flags,
            is_final,
            resources: ManuallyDrop::new(resources),
            fd,
        }
    }

    /// The operation this completion belongs to.
    #[inline]
    pub fn id(&self) -> OpId {
        self.id
    }

    /// The kind of operation.
    #[inline]
    pub fn kind(&self) -> OpKind {
        self.kind
    }

    /// The result: a byte count, descriptor, event mask or 0 on success, the OS error
    /// otherwise (`ECANCELED` after a cancel; a timeout's expiry is `Ok(0)`).
    ///
    /// # Errors
    /// - the OS error the kernel reported for the operation.
    #[inline]
    pub fn result(&self) -> io::Result<u32> {
        if self.res < 0 {
            Err(io::Error::from_raw_os_error(-self.res))
        } else {
            Ok(self.res as u32)
        }
    }

    /// The raw `res` field: non-negative on success, `-errno` on failure.
    #[inline]
    pub fn raw_result(&self) -> i32 {
        self.res
    }

    /// The raw CQE flags (`IORING_CQE_F_*`).
    #[inline]
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether this is the operation's last completion: its resources come back with it and
    /// its [`OpId`] is now stale.
    #[inline]
    pub fn is_final(&self) -> bool {
        self.is_final
    }

    /// Whether this is a zero-copy send's notification: the kernel no longer reads the
    /// buffer.
    pub fn is_notification(&self) -> bool {
        cqueue::notif(self.flags)
    }

    /// Whether the socket had more data queued after this receive.
    pub fn sock_nonempty(&self) -> bool {
        cqueue::sock_nonempty(self.flags)
    }

    /// The id of the group buffer this completion carries, if any.
    pub fn buffer_id(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }

    /// The pooled buffer holding the data: the one picked from a buffer group, or the
    /// read/receive target when it was a pooled buffer. Its length is the bytes received.
    /// Use this for buffer-group receives; for the `Vec<u8>` (or any [`IoBuf`]) you passed
    /// to a read, use [`take_read_buf`](Self::take_read_buf).
    ///
    /// A buffer from [`Op::recvmsg_multishot`](crate::Op::recvmsg_multishot) starts with the
    /// kernel's header and address area: use [`take_datagram`](Self::take_datagram) there.
    #[inline]
    pub fn take_buffer(&mut self) -> Option<Buffer> {
        if let Resources::RecvMessage(message) = &mut *self.resources {
            return match message.buf.take() {
                Some(IoBuf::Pooled(buffer)) => Some(buffer),
                other => {
                    message.buf = other;
                    None
                }
            };
        }
        // Looked at before it is taken: nothing is moved out and back when there is no buffer.
        if !matches!(
            *self.resources,
            Resources::Selected(_) | Resources::Read(IoBuf::Pooled(_))
        ) {
            return None;
        }
        match mem::take(&mut *self.resources) {
            Resources::Selected(buffer) | Resources::Read(IoBuf::Pooled(buffer)) => Some(buffer),
            // Not reached: checked above; kept whole rather than dropped.
            other => {
                *self.resources = other;
                None
            }
        }
    }

    /// The read or receive target you passed (also of a one-shot `recvmsg`), its length
    /// grown by the bytes read. Buffers the kernel picked from a buffer group come from
    /// [`take_buffer`](Self::take_buffer) instead.
    pub fn take_read_buf(&mut self) -> Option<IoBuf> {
        if let Resources::RecvMessage(message) = &mut *self.resources {
            return message.buf.take();
        }
        match mem::take(&mut *self.resources) {
            Resources::Read(buf) => Some(buf),
            other => {
                *self.resources = other;
                None
            }
        }
    }

    /// Old name of [`take_read_buf`](Self::take_read_buf).
    #[deprecated(note = "renamed to `take_read_buf` (the read target you passed)")]
    pub fn take_buf(&mut self) -> Option<IoBuf> {
        self.take_read_buf()
    }

    /// Old name of [`take_read_bufs`](Self::take_read_bufs).
    #[deprecated(note = "renamed to `take_read_bufs` (the read targets you passed)")]
    pub fn take_bufs(&mut self) -> Vec<IoBuf> {
        self.take_read_bufs()
    }

    /// The datagram a message receive brought, with its sender: the group buffer of an
    /// [`Op::recvmsg_multishot`](crate::Op::recvmsg_multishot) completion (payload in place,
    /// behind the kernel's header), or the pooled target of a successful
    /// [`Op::recvmsg`](crate::Op::recvmsg) (payload from its first byte). `None` for other
    /// operations, a `Vec` target (use [`take_read_buf`](Self::take_read_buf)) or a failed receive.
    pub fn take_datagram(&mut self) -> Option<Datagram> {
        if self.res < 0 {
            return None;
        }
        match &mut *self.resources {
            Resources::RecvMessage(message) => match message.buf.take() {
                Some(IoBuf::Pooled(buffer)) => {
                    let len = buffer.len();
                    Some(Datagram::new(
                        buffer,
                        0..len,
                        message.source,
                        message.msg_flags,
                    ))
                }
                other => {
                    message.buf = other;
                    None
                }
            },
            Resources::Selected(buffer) if self.kind == OpKind::RecvMsgMultishot => {
                let (payload, source, flags) = datagram::parse_multishot(buffer)?;
                let Resources::Selected(buffer) = mem::take(&mut *self.resources) else {
                    return None;
                };
                Some(Datagram::new(buffer, payload, source, flags))
            }
            _ => None,
        }
    }

    /// The sender of a message receive ([`Op::recvmsg`](crate::Op::recvmsg) or
    /// [`Op::recvmsg_multishot`](crate::Op::recvmsg_multishot)) while its data is still in
    /// the completion; `None` for other operations or non-IP senders.
    pub fn source_addr(&self) -> Option<SocketAddr> {
        match &*self.resources {
            Resources::RecvMessage(message) => message.source,
            Resources::Selected(buffer) if self.kind == OpKind::RecvMsgMultishot => {
                datagram::parse_multishot(buffer).and_then(|(_, source, _)| source)
            }
            _ => None,
        }
    }

    /// The message flags of a one-shot [`Op::recvmsg`](crate::Op::recvmsg) (`MSG_TRUNC`,
    /// `MSG_CTRUNC`, ...); 0 otherwise (a multishot datagram carries its own,
    /// [`Datagram::flags`]).
    pub fn msg_flags(&self) -> i32 {
        match &*self.resources {
            Resources::RecvMessage(message) => message.msg_flags,
            _ => 0,
        }
    }

    /// The ancillary data (raw `cmsghdr` records) a one-shot
    /// [`Op::recvmsg`](crate::Op::recvmsg) received, empty when none came.
    pub fn take_control(&mut self) -> Option<Vec<u8>> {
        match &mut *self.resources {
            Resources::RecvMessage(message) => message.control.take().map(IoBuf::into_vec),
            _ => None,
        }
    }

    /// The targets of a vectored read, filled in order.
    pub fn take_read_bufs(&mut self) -> Vec<IoBuf> {
        match mem::take(&mut *self.resources) {
            Resources::ReadVectored(bufs, _) => bufs,
            other => {
                *self.resources = other;
                Vec::new()
            }
        }
    }

    /// The source of a write or send, advanced past the bytes written: after a short write
    /// it still holds the rest.
    #[inline]
    pub fn take_write_buf(&mut self) -> Option<WriteBuf> {
        // Looked at before it is taken: taking and putting back moves the resources twice.
        if !matches!(*self.resources, Resources::Write(_)) {
            return None;
        }
        match mem::take(&mut *self.resources) {
            Resources::Write(buf) => Some(buf),
            other => {
                *self.resources = other;
                None
            }
        }
    }

    /// The pin of an [`Op::send_pinned`](crate::Op::send_pinned), for its queue to advance
    /// past the bytes sent ([`SendQueue::finish_pinned`](fio_buffer::SendQueue::finish_pinned)).
    #[inline]
    pub fn take_send_pin(&mut self) -> Option<fio_buffer::SendPin> {
        if !matches!(*self.resources, Resources::Pinned(_)) {
            return None;
        }
        match mem::take(&mut *self.resources) {
            Resources::Pinned(pin) => Some(pin),
            other => {
                *self.resources = other;
                None
            }
        }
    }

    /// The sources of a vectored write or `sendmsg`, advanced past the bytes written.
    pub fn take_write_bufs(&mut self) -> Vec<WriteBuf> {
        match mem::take(&mut *self.resources) {
            Resources::WriteVectored(bufs, _) => bufs,
            Resources::Message(message) => message.bufs,
            other => {
                *self.resources = other;
                Vec::new()
            }
        }
    }

    /// The storage of an [`Op::sendmsg_stored`](crate::Op::sendmsg_stored) (or any
    /// `sendmsg`), with its buffers advanced past the bytes sent, for the next send to reuse.
    pub fn take_send_storage(&mut self) -> Option<crate::SendStorage> {
        if !matches!(*self.resources, Resources::Message(_)) {
            return None;
        }
        match mem::take(&mut *self.resources) {
            Resources::Message(message) => Some(crate::SendStorage(message)),
            other => {
                *self.resources = other;
                None
            }
        }
    }

    /// The descriptor an `accept`, `openat` or `socket` produced.
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fd.take()
    }

    /// The metadata a successful `statx` read, as the kernel's full record (a
    /// [`libc::statx`](struct@crate::libc::statx)); [`take_stat`](Self::take_stat) is the typed form.
    pub fn take_statx(&mut self) -> Option<libc::statx> {
        if self.res < 0 {
            return None;
        }
        match mem::take(&mut *self.resources) {
            Resources::Statx(_, statx) => {
                let statx: MaybeUninit<libc::statx> = statx.into_inner();
                // SAFETY: the cell was zero-initialised (a valid `statx`: integers only) and
                // the kernel filled it before posting this successful final completion.
                Some(unsafe { statx.assume_init() })
            }
            other => {
                *self.resources = other;
                None
            }
        }
    }
}

impl Completion {
    /// The size, mode and modification time a successful [`Op::stat`](crate::Op::stat) (or
    /// `statx`) read; `None` for other operations or a failure (see
    /// [`result`](Self::result)).
    pub fn take_stat(&mut self) -> Option<crate::FileStat> {
        self.take_statx()
            .map(|statx| crate::FileStat::from_statx(&statx))
    }
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("res", &self.res)
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("is_final", &self.is_final)
            .field("resources", &*self.resources)
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

/// Whether a non-negative result of `kind` is a descriptor the kernel installed.
#[inline(always)]
pub(crate) fn creates_fd(kind: OpKind) -> bool {
    matches!(
        kind,
        OpKind::Accept | OpKind::AcceptMultishot | OpKind::OpenAt | OpKind::Socket
    )
}
