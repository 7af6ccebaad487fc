//! The crate's error type and the classification of ring-setup refusals.

use std::fmt;
use std::io;

use crate::features::OpKind;
use crate::inflight::OpId;

/// Why the kernel refused to create an io_uring instance.
///
/// A reactor reads this to decide whether to fall back to a readiness (epoll) engine and what
/// to log: every variant except [`SetupRefusal::Other`] means "io_uring is unusable here".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetupRefusal {
    /// `EPERM`: a seccomp profile (Docker >= 25, containerd 2.0) or the
    /// `kernel.io_uring_disabled` sysctl forbids io_uring for this process.
    Forbidden,
    /// `ENOSYS`: the kernel was built without io_uring, or a seccomp filter hides the syscall
    /// (podman's default profile).
    NotSupported,
    /// `ENOMEM`: the ring could not be allocated; before Linux 5.12 ring memory was charged to
    /// `RLIMIT_MEMLOCK`, so a small memlock limit shows up here.
    MemoryLocked,
    /// `EINVAL` for every rung of the setup ladder: the kernel is too old for the minimal flag
    /// set (or lacks `IORING_FEAT_EXT_ARG`, Linux 5.11).
    KernelTooOld,
    /// Any other errno; the source error says which.
    Other,
}

impl SetupRefusal {
    /// Classifies the error returned by `io_uring_setup(2)`.
    pub fn classify(error: &io::Error) -> Self {
        match error.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Self::Forbidden,
            Some(libc::ENOSYS) => Self::NotSupported,
            Some(libc::ENOMEM) => Self::MemoryLocked,
            Some(libc::EINVAL) => Self::KernelTooOld,
            _ => Self::Other,
        }
    }
}

impl fmt::Display for SetupRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Forbidden => "io_uring is forbidden (seccomp or kernel.io_uring_disabled)",
            Self::NotSupported => "io_uring is not available in this kernel",
            Self::MemoryLocked => "out of memory or RLIMIT_MEMLOCK too small",
            Self::KernelTooOld => "kernel too old for the required io_uring features",
            Self::Other => "unexpected io_uring_setup failure",
        })
    }
}

/// Everything that can go wrong in `fio-ring`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `io_uring_setup(2)` failed on every rung of the setup ladder; io_uring is unusable and the
    /// caller should fall back to another engine.
    #[error("io_uring_setup with {entries} entries failed: {refusal}")]
    Setup {
        /// Submission queue entries asked for.
        entries: u32,
        /// What the failure means for the caller.
        refusal: SetupRefusal,
        /// The OS error of the last attempt.
        #[source]
        source: io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid ring configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// An operation's arguments are out of range (a buffer longer than `u32::MAX`, too many
    /// iovecs, a path with an interior NUL byte).
    #[error("invalid operation argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: &'static str,
    },
    /// The submission queue is full and the entry could not be staged (only returned by the
    /// raw escape hatch; the safe API queues entries until the next tick instead).
    #[error("submission queue full ({0} entries)")]
    SubmissionQueueFull(u32),
    /// The operation id refers to an operation that already completed (its slot was reused or
    /// freed).
    #[error("operation {0} is no longer in flight")]
    StaleOp(OpId),
    /// This kernel does not support the operation (probe or kernel version).
    #[error("operation {op:?} is not supported by this kernel")]
    Unsupported {
        /// The operation asked for.
        op: OpKind,
    },
    /// `Ring::wait` was called from inside a completion handler or tick-end callback.
    #[error("Ring::wait called re-entrantly from a handler")]
    Reentrant,
    /// Registering a provided-buffer ring failed (`EINVAL`: kernel older than 5.19;
    /// `EEXIST`: the group id is taken).
    #[error("registering buffer group {group} failed")]
    BufferRing {
        /// The buffer group id.
        group: u16,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No buffer group with this id is registered on the ring.
    #[error("no buffer group {0} is registered on this ring")]
    UnknownBufferGroup(u16),
    /// The ring this handle belongs to was dropped.
    #[error("the ring was dropped")]
    RingClosed,
    /// The buffer pool refused to hand out a buffer.
    #[error("buffer pool error")]
    Pool(#[from] fio_buffer::Error),
    /// `io_uring_enter(2)` or another system call failed.
    #[error("io_uring system call failed")]
    Io(#[from] io::Error),
}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        let kind = match &error {
            Error::Setup { refusal, .. } => match refusal {
                SetupRefusal::Forbidden => io::ErrorKind::PermissionDenied,
                SetupRefusal::NotSupported | SetupRefusal::KernelTooOld => {
                    io::ErrorKind::Unsupported
                }
                SetupRefusal::MemoryLocked => io::ErrorKind::OutOfMemory,
                SetupRefusal::Other => io::ErrorKind::Other,
            },
            Error::InvalidConfig { .. } | Error::InvalidArgument { .. } => {
                io::ErrorKind::InvalidInput
            }
            Error::SubmissionQueueFull(_) => io::ErrorKind::WouldBlock,
            Error::StaleOp(_) | Error::UnknownBufferGroup(_) => io::ErrorKind::NotFound,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            Error::Reentrant => io::ErrorKind::Other,
            Error::RingClosed => io::ErrorKind::BrokenPipe,
            Error::BufferRing { .. } => io::ErrorKind::Other,
            Error::Pool(_) => io::ErrorKind::OutOfMemory,
            Error::Io(source) => return io::Error::new(source.kind(), error),
        };
        io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_setup_errors() {
        let of = |errno| SetupRefusal::classify(&io::Error::from_raw_os_error(errno));
        assert_eq!(of(libc::EPERM), SetupRefusal::Forbidden);
        assert_eq!(of(libc::ENOSYS), SetupRefusal::NotSupported);
        assert_eq!(of(libc::ENOMEM), SetupRefusal::MemoryLocked);
        assert_eq!(of(libc::EINVAL), SetupRefusal::KernelTooOld);
        assert_eq!(of(libc::EFAULT), SetupRefusal::Other);
    }

    #[test]
    fn converts_to_io_error_kinds() {
        let setup = Error::Setup {
            entries: 8,
            refusal: SetupRefusal::Forbidden,
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        assert_eq!(
            io::Error::from(setup).kind(),
            io::ErrorKind::PermissionDenied
        );
        let io = Error::Io(io::Error::from_raw_os_error(libc::EBADF));
        assert_eq!(
            io::Error::from(io).kind(),
            io::Error::from_raw_os_error(libc::EBADF).kind()
        );
    }
}
