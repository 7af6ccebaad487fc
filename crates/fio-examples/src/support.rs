//! What the example programs share: their command line ([`Options`]), TLS and socket
//! activation setup, a stderr logger, [`LogFailure`] for results only worth a log line, and
//! the [`main`] that ties them together.
//!
//! # Examples
//! ```
//! use fio_examples::support::Options;
//! let args = ["--port", "8080", "--threads", "-2"].map(String::from);
//! let options = Options::parse(args).expect("valid").expect("not --help");
//! assert_eq!(options.url, "tcp://0.0.0.0:8080");
//! // `--threads` takes facil.io's signed count: -2 is half the cores.
//! assert_eq!(options.threads, fio_reactor::Concurrency::from_c(-2));
//! ```

use std::cell::RefCell;
use std::error::Error;
use std::process::ExitCode;

use log::{LevelFilter, Log, Metadata, Record};

use std::os::fd::OwnedFd;
use std::sync::Arc;

use fio_reactor::{Concurrency, ListenArgs, Reactor, StartArgs, Uuid};

/// The spec's default address (`fio_listen`'s `url` when none is given).
pub const DEFAULT_URL: &str = "tcp://0.0.0.0:3000";

/// The spec's echo server runs `fio_start(.threads = 4)`.
const FOUR_THREADS: Concurrency = match Concurrency::exactly(4) {
    Some(four) => four,
    None => Concurrency::ONE,
};

/// The size of each reactor thread's read buffer (see [`with_read_buffer`]).
pub const READ_BUFFER: usize = 16 * 1024;

thread_local! {
    /// One read buffer per reactor thread: zeroing a fresh 16 KiB stack buffer on every
    /// `on_data` showed up in profiles of the one-request-per-read loads.
    static READ_SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUFFER].into_boxed_slice());
}

/// Runs `f` with this thread's [`READ_BUFFER`]-byte read buffer (its contents are whatever
/// the last user left).
pub fn with_read_buffer<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    READ_SCRATCH.with(|scratch| {
        let (mut kept, mut fresh);
        let buf: &mut [u8] = match scratch.try_borrow_mut() {
            Ok(buf) => {
                kept = buf;
                &mut kept
            }
            // Only when a callback runs inside another on the same thread: a fresh buffer then.
            Err(_) => {
                fresh = vec![0; READ_BUFFER];
                &mut fresh
            }
        };
        // One call site, so that `f` (an `on_data`'s loop) is inlined here.
        f(buf)
    })
}

/// The options every example server takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where to listen, in `fio_listen`'s URL form.
    pub url: String,
    /// Reactor threads (`fio_start`'s `.threads`; `--threads` takes facil.io's signed count,
    /// negative for a fraction of the cores).
    pub threads: Concurrency,
    /// Worker processes (`fio_start`'s `.workers`); above 1, fio-cluster forks them.
    pub workers: Concurrency,
    /// `--raw`: the example's load-test form, nothing but its protocol's bytes and no
    /// periodic work (each example's `--help` says what that leaves out).
    pub raw: bool,
    /// Whether and how connections are secured (`--tls`, `--cert`/`--key`).
    pub tls: TlsSource,
}

/// Where the examples' TLS certificate comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsSource {
    /// Plain TCP.
    #[default]
    Off,
    /// `--tls`: a fresh self-signed certificate for localhost (its fingerprint is logged).
    SelfSigned,
    /// `--cert PEM --key PEM`.
    Files {
        /// The certificate chain's PEM file.
        cert: String,
        /// The private key's PEM file.
        key: String,
    },
}

impl Default for Options {
    /// The spec's echo server: `tcp://0.0.0.0:3000`, `fio_start(.threads = 4, .workers = 1)`.
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            threads: FOUR_THREADS,
            workers: Concurrency::ONE,
            raw: false,
            tls: TlsSource::Off,
        }
    }
}

impl Options {
    /// Parses the arguments after the program name, the same for every example. Options take
    /// `--opt V` or `--opt=V`; `--port N` is a shorthand for `--url tcp://0.0.0.0:N`, the form
    /// the load benchmark uses; `--raw` and `--tls` take no value.
    ///
    /// Returns `Ok(None)` for `--help`.
    ///
    /// # Errors
    /// A message naming the argument, when one is unknown, lacks its value, or its value is
    /// not a number in range.
    pub fn parse<I>(args: I) -> Result<Option<Self>, String>
    where
        I: IntoIterator<Item = String>,
    {
        let mut options = Self::default();
        let (mut cert, mut key) = (None, None);
        let mut args = args.into_iter();
        while let Some(argument) = args.next() {
            if argument == "--help" || argument == "-h" {
                return Ok(None);
            }
            if argument == "--tls" {
                options.tls = TlsSource::SelfSigned;
                continue;
            }
            if argument == "--raw" {
                options.raw = true;
                continue;
            }
            let (option, inline) = match argument.split_once('=') {
                Some((option, value)) => (option.to_owned(), Some(value.to_owned())),
                None => (argument.clone(), None),
            };
            if !matches!(
                option.as_str(),
                "--url" | "--port" | "--threads" | "--workers" | "--cert" | "--key"
            ) {
                return Err(format!("unknown argument {argument:?}"));
            }
            let value = match inline {
                Some(value) => value,
                None => args
                    .next()
                    .ok_or_else(|| format!("{option} needs a value"))?,
            };
            let number = |what: &str| format!("{option} takes {what}, not {value:?}");
            match option.as_str() {
                "--url" => options.url = value,
                "--cert" => cert = Some(value),
                "--key" => key = Some(value),
                "--port" => {
                    let port: u16 = value.parse().map_err(|_| number("a port number"))?;
                    options.url = format!("tcp://0.0.0.0:{port}");
                }
                "--threads" => {
                    let count = value.parse().map_err(|_| number("a thread count"))?;
                    options.threads = Concurrency::from_c(count);
                }
                _ => {
                    let count = value.parse().map_err(|_| number("a worker count"))?;
                    options.workers = Concurrency::from_c(count);
                }
            }
        }
        match (cert, key) {
            (Some(cert), Some(key)) => options.tls = TlsSource::Files { cert, key },
            (None, None) => {}
            _ => return Err("--cert and --key go together".to_owned()),
        }
        Ok(Some(options))
    }

    /// The arguments for `fio_cluster::start`: these counts, the engine from `FIO_ENGINE` (or
    /// io_uring first), and SIGINT/SIGTERM stopping the server gracefully.
    pub fn start_args(&self) -> StartArgs {
        StartArgs::new().threads(self.threads).workers(self.workers)
    }
}

/// The TLS provider `options` ask for (`None`: plain TCP). A self-signed certificate's
/// SHA-256 fingerprint is logged, so a client can check what it was given.
///
/// # Errors
/// `Error::Listen` naming the certificate source, when it can't be loaded or generated.
pub fn tls(options: &Options) -> Result<Option<Arc<dyn fio_reactor::Tls>>, fio_reactor::Error> {
    let failed = |url: &str, error: fio_tls::Error| fio_reactor::Error::Listen {
        url: url.to_owned(),
        source: std::io::Error::other(error),
    };
    let identity = match &options.tls {
        TlsSource::Off => return Ok(None),
        TlsSource::SelfSigned => {
            let identity = fio_tls::Identity::self_signed(&["localhost", "127.0.0.1", "::1"])
                .map_err(|error| failed("a self-signed certificate", error))?;
            log::info!(
                "TLS with a self-signed certificate for localhost, SHA-256 fingerprint {}",
                identity.fingerprint()
            );
            identity
        }
        TlsSource::Files { cert, key } => {
            fio_tls::Identity::from_pem_files(cert, key).map_err(|error| failed(cert, error))?
        }
    };
    let tls = fio_tls::TlsBuilder::new()
        .cert_add(None, identity)
        .build()
        .map_err(|error| failed("the TLS configuration", error))?;
    Ok(Some(tls))
}

/// Listens for `reactor` on the sockets systemd handed over (socket activation: `LISTEN_FDS`
/// and `LISTEN_PID`), with `on_open` serving each accepted connection (secured by `tls`), or else with
/// `listen_url` (the example's own `listen` on `--url`). Returns the listeners' uuids.
///
/// # Errors
/// - `Error::Listen` when `LISTEN_FDS` is malformed or names a closed descriptor;
/// - what `Reactor::listen` reports (for example the port is taken).
pub fn listen_all(
    reactor: &Reactor,
    tls: Option<Arc<dyn fio_reactor::Tls>>,
    on_open: impl Fn(Uuid) + Clone + Send + Sync + 'static,
    listen_url: impl FnOnce() -> Result<Uuid, fio_reactor::Error>,
) -> Result<Vec<Uuid>, fio_reactor::Error> {
    let sockets: Vec<OwnedFd> =
        fio_sys::listen_fds().map_err(|source| fio_reactor::Error::Listen {
            url: "LISTEN_FDS".to_owned(),
            source,
        })?;
    if sockets.is_empty() {
        return Ok(vec![listen_url()?]);
    }
    sockets
        .into_iter()
        .map(|socket| {
            let args = ListenArgs::inherited(socket, on_open.clone());
            reactor.listen(match &tls {
                Some(tls) => args.tls(Arc::clone(tls)),
                None => args,
            })
        })
        .collect()
}

/// The listeners' addresses, for the start-up log line.
pub fn addresses(listeners: &[Uuid], url: &str) -> String {
    let known: Vec<String> = listeners
        .iter()
        .filter_map(|&uuid| fio_reactor::local_addr(uuid).map(|a| a.to_string()))
        .collect();
    if known.is_empty() {
        url.to_owned()
    } else {
        known.join(", ")
    }
}

/// Runs the process's reactor until SIGINT or SIGTERM: `fio_cluster::start`, which forks
/// `--workers` processes when there are more than one (the root logs each worker's start,
/// exit and respawn with its pid).
///
/// # Errors
/// What `fio_cluster::start` reports.
pub fn start(options: &Options) -> Result<(), fio_reactor::Error> {
    fio_cluster::start(options.start_args())
}

/// Writes every log record at or above the global level to stderr, one line each.
#[derive(Debug)]
struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            // One write per line: the root and its workers share stderr, and a line
            // written in pieces could interleave with another process's.
            let line = format!("[{}] {}\n", record.level(), record.args());
            // A logger whose stderr is gone has nowhere left to report that to.
            std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes()).ok();
        }
    }

    fn flush(&self) {}
}

/// The one logger of the process.
static LOGGER: StderrLogger = StderrLogger;

/// Installs the stderr logger at `level`; a logger installed earlier stays.
pub fn init_logger(level: LevelFilter) {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// An error and its causes on one line: `listening on ... failed: Address in use`.
pub fn describe(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Logs the failure of an operation whose failure changes nothing for the caller, instead of
/// discarding it with `let _ =`: typically a write or close from a connection's callback,
/// which fails only when the connection closed (or is closing) meanwhile, and is closed
/// either way.
///
/// # Examples
/// ```
/// use fio_examples::support::LogFailure;
/// // A connection that isn't open: the write fails, and a debug line says so.
/// fio_reactor::write(fio_reactor::Uuid::from_parts(0, 0), b"hello").or_log("greeting");
/// ```
pub trait LogFailure {
    /// Logs the error, if any, at debug level after `what` (for example `"echo"`); the
    /// reactor's errors already name the connection.
    fn or_log(self, what: &str);
}

impl<T> LogFailure for Result<T, fio_reactor::Error> {
    /// Inlined, with the logging out of line: the echo examples call it on every reply, and
    /// the call cost as much as the check.
    #[inline]
    fn or_log(self, what: &str) {
        if let Err(error) = self {
            log_failure(what, &error);
        }
    }
}

/// [`LogFailure::or_log`]'s log line.
#[cold]
#[inline(never)]
fn log_failure(what: &str, error: &fio_reactor::Error) {
    log::debug!("{what} failed: {}", describe(error));
}

/// An example's `main`: parses the command line (`usage` for `--help` and mistakes), runs
/// `run`, and turns a failure into a message on stderr and exit status 1
/// (2 for a bad command line).
pub fn main<E: Error>(
    name: &str,
    usage: &str,
    run: impl FnOnce(Options) -> Result<(), E>,
) -> ExitCode {
    match Options::parse(std::env::args().skip(1)) {
        Ok(Some(options)) => match run(options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("{name}: {}", describe(&error));
                ExitCode::FAILURE
            }
        },
        Ok(None) => {
            println!("{usage}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{name}: {message}\n{usage}");
            ExitCode::from(2)
        }
    }
}
