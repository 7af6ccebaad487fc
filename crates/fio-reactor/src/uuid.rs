//! Connection ids that can't reach a recycled file descriptor.
//!
//! facil.io packs `fd << 8 | counter` into an `intptr_t`, with an 8-bit counter that wraps
//! after a few hundred reuses of one fd, so an old uuid can alias a new connection. A [`Uuid`]
//! keeps a 32-bit generation beside the fd instead: the reactor's connection table bumps an
//! fd's generation every time the fd is opened or closed, and every call that takes a uuid
//! checks it, so a stale uuid is an error, never the new connection.

use std::fmt;
use std::os::fd::RawFd;

/// A connection's id: its file descriptor and the generation of that descriptor's slot.
///
/// # Examples
/// ```
/// use fio_reactor::Uuid;
/// let uuid = Uuid::from_parts(7, 3);
/// assert_eq!((uuid.fd(), uuid.generation()), (7, 3));
/// assert_eq!(Uuid::from_u64(uuid.as_u64()), Some(uuid));
/// assert_eq!(uuid.to_string(), "7.3");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(u64);

impl Uuid {
    /// Packs a descriptor and a generation.
    ///
    /// # Panics
    /// Never for a real descriptor; a negative `fd` is a programming error and is clamped to 0
    /// in release builds (debug builds assert).
    pub const fn from_parts(fd: RawFd, generation: u32) -> Self {
        debug_assert!(fd >= 0, "file descriptors are never negative");
        let fd = if fd < 0 { 0 } else { fd as u32 };
        Self(((fd as u64) << 32) | generation as u64)
    }

    /// Rebuilds a uuid from [`as_u64`](Self::as_u64); `None` if the value can't be one (its
    /// fd half is beyond what a descriptor can be).
    pub const fn from_u64(value: u64) -> Option<Self> {
        if (value >> 32) > i32::MAX as u64 {
            None
        } else {
            Some(Self(value))
        }
    }

    /// The uuid as one integer, for logs and foreign interfaces.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The file descriptor (facil.io's `fio_uuid2fd`).
    pub const fn fd(self) -> RawFd {
        (self.0 >> 32) as RawFd
    }

    /// The generation of the descriptor's slot when this uuid was issued.
    pub const fn generation(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({}.{})", self.fd(), self.generation())
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.fd(), self.generation())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_at_the_extremes() {
        for (fd, generation) in [(0, 0), (i32::MAX, u32::MAX), (1, u32::MAX), (i32::MAX, 0)] {
            let uuid = Uuid::from_parts(fd, generation);
            assert_eq!((uuid.fd(), uuid.generation()), (fd, generation));
            assert_eq!(Uuid::from_u64(uuid.as_u64()), Some(uuid));
        }
        assert_eq!(Uuid::from_u64(u64::MAX), None);
    }

    #[test]
    fn generations_tell_reuses_of_one_fd_apart() {
        assert_ne!(Uuid::from_parts(5, 1), Uuid::from_parts(5, 2));
    }
}
