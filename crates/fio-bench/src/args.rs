//! The baselines' command line (`--port N [--threads N]`) and the runtime that serves it.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;

use crate::Error;

/// A baseline server's command line: `--port N [--threads N]`.
///
/// The benchmark starts every contender with the same two options, so `--threads` is accepted
/// here too; the baselines always run tokio's current-thread runtime and ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerArgs {
    /// The port to listen on, on 127.0.0.1; 0 lets the kernel pick one.
    pub port: u16,
    /// The threads asked for (ignored: the baselines are single-threaded).
    pub threads: usize,
}

impl Default for ServerArgs {
    fn default() -> Self {
        Self {
            port: 0,
            threads: 1,
        }
    }
}

impl ServerArgs {
    /// Parses the arguments after the program name; both options take `--opt N` or `--opt=N`.
    ///
    /// # Errors
    ///
    /// - [`Error::UnknownArgument`] for anything but `--port` and `--threads`;
    /// - [`Error::MissingValue`] when an option is the last argument;
    /// - [`Error::InvalidNumber`] when a value is not a number in range.
    ///
    /// # Examples
    ///
    /// ```
    /// use fio_bench::ServerArgs;
    ///
    /// let args = ServerArgs::parse(["--port", "8080", "--threads=1"].map(String::from))?;
    /// assert_eq!(args, ServerArgs { port: 8080, threads: 1 });
    /// assert!(ServerArgs::parse(["--port".to_string()]).is_err());
    /// # Ok::<(), fio_bench::Error>(())
    /// ```
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, Error> {
        let mut parsed = Self::default();
        let mut args = args.into_iter();
        while let Some(argument) = args.next() {
            let (option, inline) = match argument.split_once('=') {
                Some((option, value)) => (option.to_owned(), Some(value.to_owned())),
                None => (argument.clone(), None),
            };
            let option: &'static str = match option.as_str() {
                "--port" => "--port",
                "--threads" => "--threads",
                _ => return Err(Error::UnknownArgument { argument }),
            };
            let value = match inline {
                Some(value) => value,
                None => args.next().ok_or(Error::MissingValue { option })?,
            };
            let invalid = |source| Error::InvalidNumber {
                option,
                value: value.clone(),
                source,
            };
            if option == "--port" {
                parsed.port = value.parse().map_err(invalid)?;
            } else {
                parsed.threads = value.parse().map_err(invalid)?;
            }
        }
        Ok(parsed)
    }
}

/// Serves `127.0.0.1:args.port` with `serve` on a current-thread tokio runtime until it fails.
///
/// It prints `listening on 127.0.0.1:PORT` to stderr once the socket listens. The benchmark
/// does not read that line: it waits until a TCP connection is accepted.
///
/// # Errors
///
/// - [`Error::Runtime`] when the runtime cannot be built;
/// - [`Error::Bind`] when the port cannot be bound;
/// - whatever `serve` returns.
///
/// # Examples
///
/// ```
/// use fio_bench::{Error, ServerArgs, run_server};
///
/// // A "server" that returns at once, after its socket was bound on a free port.
/// run_server(&ServerArgs::default(), |listener| async move {
///     assert!(listener.local_addr().map_err(Error::Accept)?.port() != 0);
///     Ok(())
/// })?;
/// # Ok::<(), Error>(())
/// ```
pub fn run_server<F, S>(args: &ServerArgs, serve: S) -> Result<(), Error>
where
    S: FnOnce(TcpListener) -> F,
    F: Future<Output = Result<(), Error>>,
{
    if args.threads != 1 {
        eprintln!(
            "--threads {} ignored: the tokio baseline runs the current-thread runtime",
            args.threads
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| Error::Bind {
                port: args.port,
                source,
            })?;
        if let Ok(bound) = listener.local_addr() {
            eprintln!("listening on {bound}");
        }
        serve(listener).await
    })
}

/// Whether an `accept` error concerns one connection only, so the server should go on.
pub(crate) fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ServerArgs, Error> {
        ServerArgs::parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn both_spellings_parse() {
        assert_eq!(
            parse(&["--threads", "1", "--port=9"]).unwrap(),
            ServerArgs {
                port: 9,
                threads: 1
            }
        );
        assert_eq!(parse(&[]).unwrap(), ServerArgs::default());
    }

    #[test]
    fn bad_command_lines_are_typed_errors() {
        assert!(matches!(
            parse(&["--verbose"]),
            Err(Error::UnknownArgument { .. })
        ));
        assert!(matches!(
            parse(&["--threads"]),
            Err(Error::MissingValue {
                option: "--threads"
            })
        ));
        assert!(matches!(
            parse(&["--port", "70000"]),
            Err(Error::InvalidNumber {
                option: "--port",
                ..
            })
        ));
    }
}
