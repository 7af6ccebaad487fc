//! The crate's one error type.

use std::io;

use crate::state::CallbackId;
use crate::uuid::Uuid;

/// Everything that can go wrong in the reactor's runtime half.
///
/// Bad input is reported here rather than by a panic; every variant keeps the operating-system
/// cause, when there is one, in its `source`.
///
/// A connection call made off the connection's owner thread is routed, and returns `Ok` once
/// routed: an error on arrival reaches only the log. [`write_notify`](crate::write_notify)
/// reports a write's outcome to its caller instead; see the crate docs' "Threads and
/// callbacks".
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `start` was called on a reactor that is already running (possibly on another thread).
    #[error("the reactor is already running")]
    AlreadyRunning,
    /// More than one worker process was asked for; forking workers is `fio-cluster`'s job.
    #[error(
        "{workers} worker processes requested, but fio-reactor runs a single process: \
         use fio-cluster to fork workers, or set workers to 1"
    )]
    ClusterRequired {
        /// The worker count that `expected_concurrency` resolved to.
        workers: u16,
    },
    /// The process manager (`fio-cluster`) could not run the cluster.
    #[error("the cluster failed: {what}")]
    Cluster {
        /// What failed (forking a worker, installing the root's signal handlers, ...).
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `run_every` was given a zero interval, which would fire in a busy loop.
    #[error("a timer interval must be greater than zero")]
    ZeroInterval,
    /// An idle timeout was under a second, over [`TIMEOUT_MAX`](crate::TIMEOUT_MAX) (255 s), or
    /// not whole seconds.
    #[error("an idle timeout must be whole seconds from 1 to 255, got {0:?}")]
    TimeoutOutOfRange(std::time::Duration),
    /// A shutdown delay was zero or longer than
    /// [`ShutdownDelay::MAX`](crate::ShutdownDelay::MAX) (254 s).
    #[error("a shutdown delay must be above zero and at most 254 s, got {0:?}")]
    ShutdownDelayOutOfRange(std::time::Duration),
    /// An engine name (from `FIO_ENGINE` or parsed text) is not one of `uring`, `epoll`, `poll`.
    #[error("unknown IO engine {name:?}: expected uring, epoll or poll")]
    UnknownEngine {
        /// The name that was not recognised.
        name: String,
    },
    /// Creating a thread's engine instance failed.
    #[error("creating the {engine} engine for reactor thread {thread} failed")]
    Engine {
        /// The engine's name, as `engine()` reports it.
        engine: &'static str,
        /// The index of the reactor thread (0 is the thread that called `start`).
        thread: usize,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Spawning a reactor thread failed.
    #[error("spawning reactor thread {thread} failed")]
    SpawnThread {
        /// The index of the reactor thread that could not be spawned.
        thread: usize,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Installing or restoring the process's signal handlers failed.
    #[error("setting up the signal handlers failed")]
    Signal {
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `state_callback_remove` was given an id that is not (or no longer) registered.
    #[error("state callback {0:?} is not registered")]
    CallbackNotFound(CallbackId),
    /// The uuid is not an open connection: it was closed, never opened, or its descriptor now
    /// belongs to a newer connection.
    #[error("connection {0} is not open")]
    InvalidUuid(Uuid),
    /// The connection closed before a [`write_notify`](crate::write_notify) write was sent.
    #[error("connection {uuid} closed before the write was sent")]
    Unsent {
        /// The connection.
        uuid: Uuid,
        /// What ended the connection, when it ended by an error (a reset, an I/O error).
        #[source]
        source: Option<io::Error>,
    },
    /// The connection is closing, so it takes no more writes.
    #[error("connection {0} is closing")]
    Closing(Uuid),
    /// [`read`](crate::read) found nothing buffered and the peer has ended its side of the
    /// stream: no more bytes will come. (`Ok(0)` from `read` means only "nothing buffered
    /// now".)
    #[error("connection {0} reached the end of its stream")]
    Eof(Uuid),
    /// `read` or `pending` was called outside the reactor thread that owns the connection.
    #[error("connection {0} belongs to another reactor thread; call this from its callbacks")]
    ForeignThread(Uuid),
    /// A URL given to `listen` or `connect` doesn't parse.
    #[error("invalid URL")]
    Url(#[source] fio_sys::UrlError),
    /// `listen` couldn't create, bind or listen on its socket.
    #[error("listening on {url} failed")]
    Listen {
        /// The URL asked for.
        url: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `connect` couldn't resolve its URL or start connecting.
    #[error("connecting to {url} failed")]
    Connect {
        /// The URL asked for.
        url: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `uuid_env_unset` or `uuid_env_remove` found nothing linked under the key (or, for
    /// `uuid_env_unset`, an object of another type).
    #[error("no object {name:?} of kind {kind} is linked to connection {uuid}")]
    EnvNotFound {
        /// The connection.
        uuid: Uuid,
        /// The name asked for.
        name: String,
        /// The kind asked for.
        kind: isize,
    },
    /// `protocol_try_lock` found the protocol in use: one of the connection's callbacks (or
    /// another lock) holds it. Defer the work, e.g. with `defer_io_task`, instead of retrying
    /// in a loop.
    #[error("the protocol of connection {0} is in use by one of its callbacks")]
    Locked(Uuid),
    /// `protocol_try_lock` found no protocol attached to the connection.
    #[error("connection {0} has no protocol attached")]
    NoProtocol(Uuid),
    /// A socket call (`accept`, `set_non_block`) failed.
    #[error("{operation} failed")]
    Socket {
        /// The call that failed.
        operation: &'static str,
        /// The OS error; `WouldBlock` from `accept` means no connection is pending.
        #[source]
        source: io::Error,
    },
    /// A `tls://` URL was given to `listen` or `connect` without a [`Tls`](crate::Tls)
    /// provider (`ListenArgs::tls`, `ConnectArgs::tls`), so it would run in plain text.
    #[error("{url} asks for TLS, but no TLS provider was given")]
    TlsRequired {
        /// The URL asked for.
        url: String,
    },
    /// The engine failed an operation on a connection.
    #[error("connection {uuid} failed")]
    Connection {
        /// The connection.
        uuid: Uuid,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        let kind = match &error {
            Error::AlreadyRunning => io::ErrorKind::ResourceBusy,
            Error::ClusterRequired { .. } => io::ErrorKind::Unsupported,
            Error::ZeroInterval
            | Error::ShutdownDelayOutOfRange(_)
            | Error::TimeoutOutOfRange(_)
            | Error::UnknownEngine { .. } => io::ErrorKind::InvalidInput,
            Error::Engine { source, .. }
            | Error::SpawnThread { source, .. }
            | Error::Signal { source }
            | Error::Cluster { source, .. } => source.kind(),
            Error::CallbackNotFound(_) => io::ErrorKind::NotFound,
            Error::InvalidUuid(_) => io::ErrorKind::NotConnected,
            Error::Closing(_) => io::ErrorKind::BrokenPipe,
            Error::Eof(_) => io::ErrorKind::UnexpectedEof,
            Error::ForeignThread(_) => io::ErrorKind::Unsupported,
            Error::Url(_) | Error::TlsRequired { .. } => io::ErrorKind::InvalidInput,
            Error::EnvNotFound { .. } | Error::NoProtocol(_) => io::ErrorKind::NotFound,
            Error::Locked(_) => io::ErrorKind::WouldBlock,
            Error::Unsent { source, .. } => source
                .as_ref()
                .map_or(io::ErrorKind::ConnectionAborted, io::Error::kind),
            Error::Listen { source, .. }
            | Error::Connect { source, .. }
            | Error::Socket { source, .. }
            | Error::Connection { source, .. } => source.kind(),
        };
        io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_kinds_follow_the_variant() {
        let io: io::Error = Error::ClusterRequired { workers: 4 }.into();
        assert_eq!(io.kind(), io::ErrorKind::Unsupported);
        assert!(io.to_string().contains("fio-cluster"));
        let io: io::Error = Error::ZeroInterval.into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
        let io: io::Error = Error::SpawnThread {
            thread: 1,
            source: io::Error::from(io::ErrorKind::OutOfMemory),
        }
        .into();
        assert_eq!(io.kind(), io::ErrorKind::OutOfMemory);
    }
}
