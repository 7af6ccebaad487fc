//! The flags a caller may add to operations: [`SendFlags`] (`MSG_*`, for the sends) and
//! [`AcceptFlags`] (`SOCK_*`, for the accepted sockets).
//!
//! `MSG_NOSIGNAL` is not among the send flags because it is always on: a ring thread must
//! never be killed by `SIGPIPE` because a peer went away, so the kernel reports `EPIPE`
//! instead. Likewise `SOCK_CLOEXEC` is always set on accepted sockets, so a descriptor never
//! leaks into a child process.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// The set operations, `|`, `|=` and `Debug` every flag type here shares; each type lists its
/// named flags (for `Debug`) and says in `$bits_doc` which bits `bits()` returns.
macro_rules! flag_set {
    ($name:ident, $bits_doc:literal, [$($flag:ident),* $(,)?]) => {
        impl $name {
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

            #[doc = $bits_doc]
            pub const fn bits(self) -> i32 {
                self.0
            }
        }

        impl BitOr for $name {
            type Output = Self;

            fn bitor(self, other: Self) -> Self {
                self.union(other)
            }
        }

        impl BitOrAssign for $name {
            fn bitor_assign(&mut self, other: Self) {
                *self = self.union(other);
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let set: Vec<&str> = [$((Self::$flag, stringify!($flag))),*]
                    .iter()
                    .filter(|(flag, _)| self.contains(*flag))
                    .map(|(_, name)| *name)
                    .collect();
                write!(f, "{}({})", stringify!($name), set.join(" | "))
            }
        }
    };
}

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
/// assert_eq!(flags.bits(), fio_ring::libc::MSG_MORE | fio_ring::libc::MSG_WAITALL);
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

    /// The bits the kernel gets.
    pub(crate) const fn with_nosignal(self) -> i32 {
        self.0 | libc::MSG_NOSIGNAL
    }
}

flag_set!(
    SendFlags,
    "The raw `MSG_*` bits, without the implied `MSG_NOSIGNAL`.",
    [MORE, WAITALL, DONTWAIT]
);

/// Extra `SOCK_*` flags for the sockets [`Op::accept_with_flags`](crate::Op::accept_with_flags)
/// and [`Op::accept_multishot_with_flags`](crate::Op::accept_multishot_with_flags) produce.
/// `SOCK_CLOEXEC` is always added.
///
/// # Examples
/// ```
/// use fio_ring::AcceptFlags;
/// assert!(AcceptFlags::NONBLOCK.contains(AcceptFlags::NONBLOCK));
/// assert!(AcceptFlags::empty().is_empty());
/// assert_eq!(AcceptFlags::NONBLOCK.bits(), fio_ring::libc::SOCK_NONBLOCK);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AcceptFlags(i32);

impl AcceptFlags {
    /// The accepted socket is non-blocking (`SOCK_NONBLOCK`), as an event loop that reads
    /// and writes it directly needs; saves the two `fcntl(2)` calls that would set it after.
    pub const NONBLOCK: Self = Self(libc::SOCK_NONBLOCK);

    /// The bits the kernel gets.
    pub(crate) const fn with_cloexec(self) -> i32 {
        self.0 | libc::SOCK_CLOEXEC
    }
}

flag_set!(
    AcceptFlags,
    "The raw `SOCK_*` bits, without the implied `SOCK_CLOEXEC`.",
    [NONBLOCK]
);

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

    #[test]
    fn cloexec_is_always_added() {
        assert_eq!(AcceptFlags::empty().with_cloexec(), libc::SOCK_CLOEXEC);
        assert_eq!(
            AcceptFlags::NONBLOCK.with_cloexec(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK
        );
        let mut flags = AcceptFlags::default();
        flags |= AcceptFlags::NONBLOCK;
        assert_eq!(format!("{flags:?}"), "AcceptFlags(NONBLOCK)");
        assert_eq!(format!("{:?}", AcceptFlags::empty()), "AcceptFlags()");
    }
}
