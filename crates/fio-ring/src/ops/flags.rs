//! [`SendFlags`]: the `MSG_*` flags a caller may add to the send operations.
//!
//! `MSG_NOSIGNAL` is not among them because it is always on: a ring thread must never be
//! killed by `SIGPIPE` because a peer went away, so the kernel reports `EPIPE` instead.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// Extra `MSG_*` flags for [`Op::send_with_flags`](crate::Op::send_with_flags),
/// [`Op::sendmsg_with_flags`](crate::Op::sendmsg_with_flags) and
/// [`Op::send_zc_with_flags`](crate::Op::send_zc_with_flags). `MSG_NOSIGNAL` is always added.
///
/// # Examples
/// ```
/// use fio_ring::SendFlags;
/// let flags = SendFlags::MORE | SendFlags::WAITALL;
/// assert!(flags.contains(SendFlags::MORE));
/// assert!(!SendFlags::empty().contains(SendFlags::WAITALL));
/// assert_eq!(flags.bits(), libc::MSG_MORE | libc::MSG_WAITALL);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SendFlags(i32);

impl SendFlags {
    /// More data follows: on TCP, hold back a partial segment until a send without this flag
    /// (or the 200 ms cork timer); on UDP, append the next message to this datagram
    /// (`MSG_MORE`).
    pub const MORE: Self = Self(libc::MSG_MORE);
    /// On a stream socket, let the ring retry a short send until every byte is sent, an
    /// error, or a cancel, so the result is the whole length (`MSG_WAITALL`, honoured for
    /// sends since Linux 5.18; older kernels may still return a short count).
    pub const WAITALL: Self = Self(libc::MSG_WAITALL);
    /// Fail with `EAGAIN` instead of waiting for room in the socket buffer (`MSG_DONTWAIT`).
    pub const DONTWAIT: Self = Self(libc::MSG_DONTWAIT);

    /// No extra flag.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag in `other` is also set here.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags of both sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The raw `MSG_*` bits, without the implied `MSG_NOSIGNAL`.
    pub const fn bits(self) -> i32 {
        self.0
    }

    /// The bits the kernel gets.
    pub(crate) const fn with_nosignal(self) -> i32 {
        self.0 | libc::MSG_NOSIGNAL
    }
}

impl BitOr for SendFlags {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        self.union(other)
    }
}

impl BitOrAssign for SendFlags {
    fn bitor_assign(&mut self, other: Self) {
        *self = self.union(other);
    }
}

impl fmt::Debug for SendFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::MORE, "MORE"),
            (Self::WAITALL, "WAITALL"),
            (Self::DONTWAIT, "DONTWAIT"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect();
        write!(f, "SendFlags({})", set.join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nosignal_is_always_added() {
        assert_eq!(SendFlags::empty().with_nosignal(), libc::MSG_NOSIGNAL);
        let flags = SendFlags::MORE | SendFlags::DONTWAIT;
        assert_eq!(
            flags.with_nosignal(),
            libc::MSG_NOSIGNAL | libc::MSG_MORE | libc::MSG_DONTWAIT
        );
        assert_eq!(format!("{flags:?}"), "SendFlags(MORE | DONTWAIT)");
        assert_eq!(format!("{:?}", SendFlags::default()), "SendFlags()");
    }
}
