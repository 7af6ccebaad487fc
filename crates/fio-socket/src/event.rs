//! [`Event`]: what a socket reports to its handler, FastSocket's `poll` constants as an enum.

use std::fmt;
use std::io;

/// Why a socket reports [`Event::Closed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer ended its stream (EOF): nothing more will arrive. The socket is still open,
    /// queued data still goes out, and the application should close it.
    Remote,
    /// The socket failed; an [`Event::Error`] with the cause came first. Close it.
    Error,
    /// The application's close (graceful or abortive) finished: the descriptor is closed and
    /// this is the last event the socket reports.
    Local,
}

/// A socket event, delivered to the handler given at creation.
///
/// | FastSocket (`poll` constant, parameter) | `Event` |
/// |---|---|
/// | `POLLIN`, buffered byte count | [`Event::Readable`] `{ buffered }` |
/// | `POLLOUT` (send queue drained / writable) | [`Event::Drained`] |
/// | `POLLERR`, positive errno | [`Event::Error`] `{ errno }` |
/// | `POLLHUP` (local or remote close, termination) | [`Event::Closed`] `{ reason }` |
///
/// # Examples
/// ```
/// use fio_socket::{CloseReason, Event};
/// let event = Event::Error { errno: 104 };
/// assert_eq!(event.error().map(|e| e.raw_os_error()), Some(Some(104)));
/// assert!(Event::Closed { reason: CloseReason::Local }.is_final());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// Received data waits: `buffered` bytes in total (`POLLIN`). Consecutive arrivals in one
    /// tick are reported once, with the latest count.
    Readable {
        /// Bytes waiting in the receive queue.
        buffered: usize,
    },
    /// The send queue drained: everything queued was handed to the kernel (`POLLOUT`).
    Drained,
    /// An I/O error (`POLLERR`). On a stream it breaks the socket; on a datagram socket it
    /// concerns one message and the socket goes on.
    Error {
        /// The error, as a positive errno.
        errno: i32,
    },
    /// The stream ended or the socket closed (`POLLHUP`).
    Closed {
        /// Who or what ended it.
        reason: CloseReason,
    },
}

impl Event {
    /// The error of an [`Event::Error`].
    pub fn error(&self) -> Option<io::Error> {
        match self {
            Event::Error { errno } => Some(io::Error::from_raw_os_error(*errno)),
            _ => None,
        }
    }

    /// Whether this is the socket's last event ([`CloseReason::Local`]).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Event::Closed {
                reason: CloseReason::Local
            }
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Readable { buffered } => write!(f, "readable ({buffered} bytes buffered)"),
            Event::Drained => f.write_str("send queue drained"),
            Event::Error { errno } => {
                write!(f, "error: {}", io::Error::from_raw_os_error(*errno))
            }
            Event::Closed { reason } => write!(f, "closed ({reason:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_and_classifies() {
        assert_eq!(Event::Drained.to_string(), "send queue drained");
        assert!(Event::Readable { buffered: 3 }.to_string().contains('3'));
        assert!(Event::Drained.error().is_none());
        assert!(
            !Event::Closed {
                reason: CloseReason::Remote
            }
            .is_final()
        );
    }
}
