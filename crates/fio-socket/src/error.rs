//! The crate's error type, [`Error`], and its mapping onto [`io::Error`].

use std::io;

/// Everything a socket operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket was closed (or is closing) locally: it takes no more data. FastSocket's
    /// `-EPIPE` after `ReleaseFastSocket`.
    #[error("the socket is closed")]
    Closed,
    /// The socket failed earlier (a receive or send error, a reset): it takes no more data.
    /// FastSocket's `-EPIPE` after `POLLERR`.
    #[error("the socket is broken (errno {errno})")]
    Broken {
        /// The error that broke it, as a positive errno.
        errno: i32,
    },
    /// An argument is out of range (a datagram on a stream socket, a destination address
    /// given outside message mode, a zero limit).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: &'static str,
    },
    /// The ring refused an operation (unsupported by the kernel, unknown buffer group, full
    /// in-flight table).
    #[error("the ring refused an operation")]
    Ring(#[from] fio_ring::Error),
    /// The outbound or inbound buffer pool is exhausted (FastSocket's `-ENOMEM`).
    #[error("the buffer pool refused a buffer")]
    Pool(#[from] fio_buffer::Error),
}

impl Error {
    /// The errno FastSocket's C API would return for this error (positive).
    pub fn errno(&self) -> i32 {
        match self {
            Error::Closed | Error::Broken { .. } => libc::EPIPE,
            Error::InvalidArgument { .. } => libc::EINVAL,
            Error::Pool(_) => libc::ENOMEM,
            Error::Ring(fio_ring::Error::Io(source)) => source.raw_os_error().unwrap_or(libc::EIO),
            Error::Ring(_) => libc::EIO,
        }
    }
}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        let kind = match &error {
            Error::Closed | Error::Broken { .. } => io::ErrorKind::BrokenPipe,
            Error::InvalidArgument { .. } => io::ErrorKind::InvalidInput,
            Error::Pool(_) => io::ErrorKind::OutOfMemory,
            Error::Ring(_) => {
                let Error::Ring(source) = error else {
                    return io::Error::other(error);
                };
                // The ring's own mapping keeps the OS error's kind.
                return io::Error::from(source);
            }
        };
        io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_errno_and_io_kinds() {
        assert_eq!(Error::Closed.errno(), libc::EPIPE);
        assert_eq!(
            Error::Broken {
                errno: libc::ECONNRESET
            }
            .errno(),
            libc::EPIPE
        );
        let invalid = Error::InvalidArgument { reason: "test" };
        assert_eq!(invalid.errno(), libc::EINVAL);
        assert_eq!(io::Error::from(invalid).kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            io::Error::from(Error::Closed).kind(),
            io::ErrorKind::BrokenPipe
        );
        let ring = Error::Ring(fio_ring::Error::Io(io::Error::from_raw_os_error(9)));
        assert_eq!(ring.errno(), 9);
        assert_eq!(
            io::Error::from(ring).kind(),
            io::Error::from_raw_os_error(9).kind()
        );
    }
}
