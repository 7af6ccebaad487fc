//! [`Datagram`]: one message received by a multishot `recvmsg`, still in its group buffer,
//! and the parsing of socket addresses the kernel wrote.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;

use fio_buffer::Buffer;
use io_uring::types::RecvMsgOut;

use crate::ops::multishot_template;

/// Bytes reserved for the sender's address: `sizeof(struct sockaddr_storage)`.
pub(crate) const NAME_LEN: usize = size_of::<libc::sockaddr_storage>();

/// `sizeof(struct io_uring_recvmsg_out)`: four `u32`s (name, control and payload lengths,
/// flags).
const RECVMSG_OUT_LEN: usize = 16;

/// One received datagram: the pooled buffer it arrived in, where its payload lies in that
/// buffer, its sender and its message flags.
///
/// A multishot `recvmsg` lays each datagram out behind a header and an address area, so the
/// payload does not start at the buffer's first byte. [`payload`](Self::payload) borrows it
/// in place; [`into_buffer`](Self::into_buffer) moves it to the front of the same buffer (one
/// `memmove`, no allocation); [`into_parts`](Self::into_parts) gives the buffer and the range
/// without touching the bytes.
///
/// # Examples
/// ```
/// use std::net::UdpSocket;
/// use std::{cell::RefCell, rc::Rc};
/// use fio_ring::{BufferPool, Op, PoolConfig, Ring, RingConfig};
///
/// let mut ring = Ring::new(RingConfig::new(8))?;
/// if !ring.features().multishot_recv() {
///     return Ok(()); // Linux < 6.0: use `Op::recvmsg`
/// }
/// let group = ring.register_buffer_group(BufferPool::new(PoolConfig::new(2048))?, 8)?;
/// let receiver = UdpSocket::bind("127.0.0.1:0")?;
/// let sender = UdpSocket::bind("127.0.0.1:0")?;
/// let got = Rc::new(RefCell::new(Vec::new()));
/// let sink = got.clone();
/// let id = ring.submit(Op::recvmsg_multishot(&receiver, group), move |_, mut done| {
///     if let Some(datagram) = done.take_datagram() {
///         sink.borrow_mut().push((datagram.source(), datagram.into_buffer().to_vec()));
///     }
/// })?;
/// sender.send_to(b"one", receiver.local_addr()?)?;
/// sender.send_to(b"two", receiver.local_addr()?)?;
/// for _ in 0..10 {
///     if got.borrow().len() == 2 { break; }
///     ring.wait(None)?;
/// }
/// let from = Some(sender.local_addr()?);
/// assert_eq!(*got.borrow(), [(from, b"one".to_vec()), (from, b"two".to_vec())]);
/// ring.cancel(id)?;
/// while !ring.is_idle() { ring.wait(None)?; }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Datagram {
    buffer: Buffer,
    payload: Range<usize>,
    source: Option<SocketAddr>,
    flags: i32,
}

impl Datagram {
    /// Bytes a multishot `recvmsg` puts in each group buffer before the payload: the
    /// 16-byte `io_uring_recvmsg_out` header and the 128-byte address area. A group used
    /// with [`Op::recvmsg_multishot`](crate::Op::recvmsg_multishot) needs larger buffers.
    pub const MULTISHOT_OVERHEAD: usize = RECVMSG_OUT_LEN + NAME_LEN;

    /// A datagram whose payload is `payload` within `buffer`.
    pub(crate) fn new(
        buffer: Buffer,
        payload: Range<usize>,
        source: Option<SocketAddr>,
        flags: i32,
    ) -> Self {
        Self {
            buffer,
            payload,
            source,
            flags,
        }
    }

    /// The payload, borrowed in place.
    pub fn payload(&self) -> &[u8] {
        &self.buffer[self.payload.clone()]
    }

    /// Where the payload lies in the buffer.
    pub fn payload_range(&self) -> Range<usize> {
        self.payload.clone()
    }

    /// The payload's length in bytes (0 for an empty datagram).
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the datagram carried no payload.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// The sender (`None` for an address family other than IPv4/IPv6, or an unnamed peer).
    pub fn source(&self) -> Option<SocketAddr> {
        self.source
    }

    /// The message flags the kernel reported (`MSG_TRUNC`, `MSG_CTRUNC`, ...).
    pub fn flags(&self) -> i32 {
        self.flags
    }

    /// Whether the datagram was longer than the buffer and was cut (`MSG_TRUNC`).
    pub fn is_truncated(&self) -> bool {
        self.flags & libc::MSG_TRUNC != 0
    }

    /// The buffer holding only the payload, moved to its front (a `memmove` inside the
    /// buffer when the payload does not start there; no allocation).
    pub fn into_buffer(self) -> Buffer {
        let Self {
            mut buffer,
            payload,
            ..
        } = self;
        if payload.start > 0 {
            let len = payload.len();
            buffer.as_mut_capacity().copy_within(payload, 0);
            buffer.set_len(len);
        } else {
            buffer.set_len(payload.end);
        }
        buffer
    }

    /// The raw buffer and the payload's range in it, without moving any byte.
    pub fn into_parts(self) -> (Buffer, Range<usize>) {
        (self.buffer, self.payload)
    }
}

impl fmt::Debug for Datagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Datagram")
            .field("payload", &self.payload)
            .field("source", &self.source)
            .field("flags", &format_args!("{:#x}", self.flags))
            .finish()
    }
}

/// What a multishot `recvmsg` buffer holds: the payload's range, the sender and the flags;
/// `None` when the buffer is too short to hold the layout.
pub(crate) fn parse_multishot(buffer: &[u8]) -> Option<(Range<usize>, Option<SocketAddr>, i32)> {
    let template = multishot_template();
    let out = RecvMsgOut::parse(buffer, &template).ok()?;
    let payload = out.payload_data();
    let start = payload.as_ptr() as usize - buffer.as_ptr() as usize;
    let source = socket_addr(out.name_data());
    let mut flags = out.flags() as i32;
    if out.is_payload_truncated() {
        flags |= libc::MSG_TRUNC;
    }
    Some((start..start + payload.len(), source, flags))
}

/// Reads an IPv4 or IPv6 `sockaddr` the kernel wrote, byte by byte (the bytes may sit at any
/// alignment inside a buffer); `None` for other families or a short address.
pub(crate) fn socket_addr(name: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(name.get(..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match i32::from(family) {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 if name.len() >= size_of::<libc::sockaddr_in6>() => {
            let flowinfo = u32::from_ne_bytes(name.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope_id = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flowinfo,
                scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ipv4_and_ipv6_names() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&4242u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(socket_addr(&v4), Some("127.0.0.1:4242".parse().unwrap()));

        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[23] = 1;
        v6[24..28].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(socket_addr(&v6), Some("[::1%2]:443".parse().unwrap()));
        assert_eq!(socket_addr(&v6[..20]), None, "short");
        assert_eq!(socket_addr(&[]), None);
        assert_eq!(socket_addr(&[0u8; 16]), None, "AF_UNSPEC");
    }

    #[test]
    fn the_payload_starts_after_the_overhead() {
        let mut buffer = vec![0u8; Datagram::MULTISHOT_OVERHEAD + 3];
        buffer[8..12].copy_from_slice(&3u32.to_ne_bytes());
        let (payload, source, flags) = parse_multishot(&buffer).unwrap();
        assert_eq!(payload, Datagram::MULTISHOT_OVERHEAD..buffer.len());
        assert_eq!((source, flags), (None, 0));
        assert!(parse_multishot(&buffer[..Datagram::MULTISHOT_OVERHEAD - 1]).is_none());
    }
}
