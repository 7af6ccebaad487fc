//! The one error type of the baselines: bad command lines and failures to start serving.

use std::io;

/// What can stop a baseline server.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line named an option the servers do not have.
    #[error("unknown argument {argument:?} (usage: --port N [--threads N])")]
    UnknownArgument {
        /// The argument as given.
        argument: String,
    },
    /// An option that needs a value was the last argument.
    #[error("{option} needs a value")]
    MissingValue {
        /// The option, e.g. `--port`.
        option: &'static str,
    },
    /// An option's value is not a number in range.
    #[error("{option} {value:?} is not a valid number")]
    InvalidNumber {
        /// The option, e.g. `--port`.
        option: &'static str,
        /// The value as given.
        value: String,
        /// Why it did not parse.
        #[source]
        source: std::num::ParseIntError,
    },
    /// The tokio runtime could not be built.
    #[error("cannot build the tokio runtime")]
    Runtime(#[source] io::Error),
    /// Binding `127.0.0.1:port` failed, e.g. because the port is taken.
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `accept` failed with an error that is not about one connection (e.g. out of files).
    #[error("accept failed")]
    Accept(#[source] io::Error),
}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        let kind = match &error {
            Error::UnknownArgument { .. }
            | Error::MissingValue { .. }
            | Error::InvalidNumber { .. } => io::ErrorKind::InvalidInput,
            Error::Runtime(source) | Error::Bind { source, .. } | Error::Accept(source) => {
                source.kind()
            }
        };
        io::Error::new(kind, error)
    }
}
