//! Operations: safe constructors that take ownership of everything the kernel will touch.
//!
//! An [`Op`] is a prepared submission entry plus the resources its pointers refer to. All
//! those resources live on the heap (a `Vec`'s buffer, a pooled [`Buffer`](fio_buffer::Buffer),
//! a [`KernelBox`]), so the pointers stay valid as the `Op` moves into the ring's in-flight
//! table, where it stays until its final completion. Constructors are grouped by family:
//! `io.rs` (files and streams), `net.rs` (sockets), `time.rs` (timeouts).

mod flags;
mod io;
pub use flags::{AcceptFlags, SendFlags};
pub use io::MAX_IOVECS;
mod msg;
pub(crate) use msg::{RecvMessage, multishot_template};
mod net;
pub(crate) mod time;

use std::ffi::CString;
use std::fmt;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use io_uring::squeue;
use io_uring::types::Timespec;

use crate::buf::{IoBuf, KernelBox, WriteBuf};
use crate::features::OpKind;

/// One operation, ready to be submitted with [`Ring::submit`](crate::Ring::submit).
///
/// Built by the constructors below; each takes ownership of its buffers, paths and addresses
/// and gives them back in the final [`Completion`](crate::Completion).
///
/// # File descriptors
///
/// Constructors borrow a descriptor only long enough to read its number. The kernel takes its
/// own reference to the open file when the entry is *submitted* (at the next
/// [`Ring::wait`](crate::Ring::wait)), so closing the descriptor afterwards cannot make the
/// kernel touch freed memory. But if the descriptor is closed *before* that and its number is
/// reused by another open, the operation acts on the new file: keep descriptors open until
/// their operations complete.
pub struct Op {
    pub(crate) entry: squeue::Entry,
    pub(crate) resources: Resources,
    pub(crate) kind: OpKind,
    /// The buffer group a buffer-select operation picks from.
    pub(crate) group: Option<u16>,
    /// A buffer-group receive's descriptor (`-1` for other operations): with the kind, the
    /// group and the resources, all the ring needs to build the entry again when it re-arms
    /// the receive ([`group_receive_entry`]).
    pub(crate) group_fd: RawFd,
    /// A timeout that fires repeatedly.
    pub(crate) repeat: bool,
    /// Nobody waits on the completion promptly ([`Op::unawaited`]).
    pub(crate) unawaited: bool,
    /// The operation completes while it is submitted, never later: a send with
    /// [`SendFlags::DONTWAIT`](crate::SendFlags::DONTWAIT).
    pub(crate) completes_at_submission: bool,
}

impl Op {
    #[inline]
    fn new(entry: squeue::Entry, resources: Resources, kind: OpKind) -> Self {
        Self {
            entry,
            resources,
            kind,
            group: None,
            group_fd: -1,
            repeat: false,
            unawaited: false,
            completes_at_submission: false,
        }
    }

    /// What kind of operation this is.
    pub fn kind(&self) -> OpKind {
        self.kind
    }

    /// Marks the operation as one whose completion nobody waits on promptly, such as the
    /// send of a reply whose end no one awaits. On a send with
    /// [`SendFlags::DONTWAIT`](crate::SendFlags::DONTWAIT), which completes while it is
    /// submitted (with `EAGAIN`, nothing sent, when the socket has no room), a blocking
    /// [`Ring::wait`](crate::Ring::wait) that submits it does not return for its completion
    /// alone: it asks the kernel for one completion besides those, so a reply and the wait
    /// for the next request take one kernel entry instead of two. Its completion is then
    /// delivered with that next one. On any other operation the mark changes nothing.
    ///
    /// # Examples
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use fio_ring::{Op, Ring, RingConfig, SendFlags};
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let (socket, _peer) = UnixStream::pair()?;
    /// let reply = Op::send_with_flags(&socket, b"pong".to_vec(), SendFlags::DONTWAIT);
    /// ring.submit(reply.unawaited(), |_, sent| assert_eq!(sent.result().unwrap(), 4))?;
    /// // Something else to wait for: the wait returns with both.
    /// ring.submit(Op::nop(), |_, _| {})?;
    /// assert_eq!(ring.wait(None)?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn unawaited(mut self) -> Self {
        self.unawaited = true;
        self
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Op")
            .field("kind", &self.kind)
            .field("resources", &self.resources)
            .field("group", &self.group)
            .field("repeat", &self.repeat)
            .field("unawaited", &self.unawaited)
            .finish()
    }
}

/// The memory an operation's entry points at, owned until the final completion.
///
/// Many fields are never read: holding them is the point, since the kernel reads or writes
/// them through the entry's pointers.
#[derive(Debug, Default)]
#[allow(dead_code)]
pub(crate) enum Resources {
    /// Nothing: the entry carries only integers.
    #[default]
    None,
    /// A read or receive target.
    Read(IoBuf),
    /// A write or send source.
    Write(WriteBuf),
    /// The bytes of a send read in place from its queue ([`Op::send_pinned`]).
    Pinned(fio_buffer::SendPin),
    /// Vectored read targets and the `iovec` array describing them.
    ReadVectored(Vec<IoBuf>, Vec<libc::iovec>),
    /// Vectored write sources and the `iovec` array describing them.
    WriteVectored(Vec<WriteBuf>, Vec<libc::iovec>),
    /// `sendmsg`: boxed, as the largest and rarest variant.
    Message(Box<Message>),
    /// A one-shot `recvmsg`: boxed like `Message`.
    RecvMessage(Box<RecvMessage>),
    /// A multishot `recvmsg`'s header template, read by the kernel at every datagram.
    MsgTemplate(KernelBox<libc::msghdr>),
    /// A socket address (`connect`).
    Addr(KernelBox<SockAddr>),
    /// A timeout's interval.
    Time(KernelBox<Timespec>),
    /// A path (`openat`).
    Path(CString),
    /// `statx`: the path and the result buffer.
    Statx(CString, KernelBox<MaybeUninit<libc::statx>>),
    /// A descriptor to close: owned until submission, then the kernel's.
    Close(Option<OwnedFd>),
    /// An 8-byte counter read from an eventfd (the ring's wake-up op).
    Counter(KernelBox<u64>),
    /// Not owned by an op: the buffer a completion carries from a buffer group (group ops
    /// own nothing else, so it travels in the completion's resources).
    Selected(fio_buffer::Buffer),
}

impl Resources {
    /// Records `count` transferred bytes in the buffers an operation owned: read targets grow
    /// by the bytes read, write sources advance past the bytes written, a `recvmsg` reads its
    /// sender and flags back. Called for every successful final completion, even of 0 bytes.
    pub(crate) fn apply_transfer(&mut self, count: usize) {
        match self {
            Resources::Read(buf) => buf.commit(count),
            Resources::ReadVectored(bufs, _) => {
                let mut left = count;
                for buf in bufs {
                    let room = buf.capacity() - buf.len();
                    let filled = left.min(room);
                    buf.commit(filled);
                    left -= filled;
                }
            }
            Resources::Write(buf) => buf.advance(count),
            Resources::WriteVectored(bufs, _) => advance_all(bufs, count),
            Resources::Message(message) => advance_all(&mut message.bufs, count),
            Resources::RecvMessage(message) => message.finish(count),
            _ => {}
        }
    }

    /// Called when the op is handed to the ring: a descriptor being closed now belongs to the
    /// kernel, so it must not be closed again when the resources are dropped.
    pub(crate) fn on_submit(&mut self) {
        if let Resources::Close(fd) = self
            && let Some(fd) = fd.take()
        {
            let _kernel_owned: RawFd = std::os::fd::IntoRawFd::into_raw_fd(fd);
        }
    }
}

/// Advances write sources in order past `count` written bytes.
fn advance_all(bufs: &mut [WriteBuf], count: usize) {
    let mut left = count;
    for buf in bufs {
        let sent = left.min(buf.remaining());
        buf.advance(sent);
        left -= sent;
    }
}

/// What a `sendmsg` owns: the sources, their `iovec`s, the optional destination and the
/// header that points at them.
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) struct Message {
    pub(crate) bufs: Vec<WriteBuf>,
    pub(crate) iovecs: Vec<libc::iovec>,
    pub(crate) addr: Option<KernelBox<SockAddr>>,
    pub(crate) header: KernelBox<libc::msghdr>,
}

/// Storage for a gathered send ([`Op::sendmsg_stored`]): the source buffers, their `iovec`
/// array and the message header, kept from send to send so gathering allocates nothing once
/// the vectors have grown to the largest batch.
pub struct SendStorage(pub(crate) Box<Message>);

impl SendStorage {
    /// Empty storage.
    pub fn new() -> Self {
        Self(Box::new(Message {
            bufs: Vec::new(),
            iovecs: Vec::new(),
            addr: None,
            header: KernelBox::new(net::msghdr(std::ptr::null_mut(), 0, &[])),
        }))
    }

    /// The buffers the next send gathers, in order; after a completion, the buffers that
    /// send held, advanced past the bytes it sent.
    pub fn bufs_mut(&mut self) -> &mut Vec<WriteBuf> {
        &mut self.0.bufs
    }
}

impl Default for SendStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SendStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendStorage")
            .field("bufs", &self.0.bufs.len())
            .finish_non_exhaustive()
    }
}

/// A socket address in the kernel's layout.
pub(crate) struct SockAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SockAddr(family {}, {} bytes)",
            self.storage.ss_family, self.len
        )
    }
}

/// A descriptor's number for an entry (see the type-level note on [`Op`]).
fn raw(fd: impl AsFd) -> io_uring::types::Fd {
    io_uring::types::Fd(fd.as_fd().as_raw_fd())
}

/// The entry of a buffer-group receive of `kind` on `fd` from group `group` (whose buffers
/// hold `buffer_len` bytes); `template` is a multishot `recvmsg`'s header template. `None` for
/// kinds that are not buffer-group receives.
///
/// The constructors build their entries with the same functions, and the ring builds them
/// again here each time it re-arms a receive (after `ENOBUFS`, or a multishot the kernel ended
/// with data), so the two never differ and no copy of the 64-byte entry is kept per operation
/// in flight.
pub(crate) fn group_receive_entry(
    kind: OpKind,
    fd: RawFd,
    group: u16,
    buffer_len: u32,
    template: *const libc::msghdr,
) -> Option<squeue::Entry> {
    match kind {
        OpKind::Recv => Some(recv_group_entry(fd, group, buffer_len)),
        OpKind::RecvMultishot => Some(recv_multishot_entry(fd, group)),
        OpKind::RecvMsgMultishot => Some(recvmsg_multishot_entry(fd, template, group)),
        _ => None,
    }
}

/// A one-shot receive into a buffer the kernel picks from `group`.
fn recv_group_entry(fd: RawFd, group: u16, buffer_len: u32) -> squeue::Entry {
    io_uring::opcode::Recv::new(io_uring::types::Fd(fd), std::ptr::null_mut(), buffer_len)
        .buf_group(group)
        .build()
        .flags(squeue::Flags::BUFFER_SELECT)
}

/// A multishot receive into buffers from `group`.
fn recv_multishot_entry(fd: RawFd, group: u16) -> squeue::Entry {
    io_uring::opcode::RecvMulti::new(io_uring::types::Fd(fd), group).build()
}

/// A multishot `recvmsg` into buffers from `group`, shaped by the header `template`.
fn recvmsg_multishot_entry(fd: RawFd, template: *const libc::msghdr, group: u16) -> squeue::Entry {
    io_uring::opcode::RecvMsgMulti::new(io_uring::types::Fd(fd), template, group).build()
}

impl Op {
    /// A buffer-group receive: `entry` (from one of the builders above) on `fd` from `group`,
    /// with what the ring needs to build it again.
    fn group_receive(
        entry: squeue::Entry,
        kind: OpKind,
        fd: RawFd,
        group: u16,
        resources: Resources,
    ) -> Op {
        let mut op = Op::new(entry, resources, kind);
        op.group = Some(group);
        op.group_fd = fd;
        op
    }
}

/// `offset` as io_uring expects it: `None` means "the current file position" (`-1`), which is
/// also what pipes and sockets want.
fn offset(offset: Option<u64>) -> u64 {
    offset.unwrap_or(u64::MAX)
}
