//! The spec's echo server (the `fio_listen` example of the facil.io core API), on fio-reactor.
//!
//! Every new connection gets `Echo Service: Welcome` and a 5-second timeout; every chunk read
//! comes back prefixed with `Echo: `; a chunk starting with `bye` (any case) also gets
//! `Goodbye.` and closes the connection; an idle connection is asked `Server: Are you there?`
//! and stays open; when the server stops, each open connection is told `Echo server shutting
//! down` before it closes. New connections and closes are logged to stderr.
//!
//! `--raw` turns it into a pure byte echo (no welcome, prefix or timeout) for load tests.
//!
//! Usage: `cargo run --release -p fio-examples --example echo -- [--url URL | --port N]
//! [--threads N] [--workers N] [--raw]`, then `printf 'hello\n' | nc -q1 127.0.0.1 3000`.
//! Ctrl-C (or SIGTERM) stops it gracefully.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use log::LevelFilter;

use fio_reactor::{
    CallbackEvent, Chunk, Error, ListenArgs, Protocol, Reactor, ShutdownResponse, Uuid,
};

use fio_examples::support::{self, LogFailure, Options};

/// What `--help` prints.
const USAGE: &str = "usage: echo [--url URL | --port N] [--threads N] [--workers N] [--raw]
            [--tls | --cert PEM --key PEM]
  --url URL      where to listen (default tcp://0.0.0.0:3000)
  --port N       shorthand for --url tcp://0.0.0.0:N
  --threads N    reactor threads (default 4; negative: a fraction of the cores)
  --workers N    worker processes (default 1; more are forked by fio-cluster)
  --raw          a pure byte echo: no welcome, no prefix, no timeout (for load tests)
  --tls          TLS with a self-signed certificate for localhost (fingerprint logged)
  --cert PEM     TLS with this certificate chain (needs --key)
  --key PEM      the private key of --cert";

/// What the service writes in front of every chunk it echoes.
const PREFIX: &[u8] = b"Echo: ";

/// The spec's read buffer: 1024 bytes, the first six holding the prefix.
const BUFFER: usize = 1024;

/// Reads per `on_data` call at most; bytes left buffered bring `on_data` back next tick.
const READS_PER_CALL: usize = 64;

/// How the service behaves; [`Service::SPEC`] is the spec's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Service {
    /// A pure byte echo instead of the spec's protocol.
    pub(crate) raw: bool,
    /// The idle timeout that triggers `Server: Are you there?` (spec mode only).
    pub(crate) timeout: Option<Duration>,
}

impl Service {
    /// The spec's echo server: a 5-second timeout.
    pub(crate) const SPEC: Self = Self {
        raw: false,
        timeout: Some(Duration::from_secs(5)),
    };

    /// The byte echo of `--raw`.
    pub(crate) const RAW: Self = Self {
        raw: true,
        timeout: None,
    };
}

/// The spec's echo protocol on one connection.
#[derive(Debug)]
struct Echo;

impl Protocol for Echo {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; BUFFER];
        buf[..PREFIX.len()].copy_from_slice(PREFIX);
        for _ in 0..READS_PER_CALL {
            let len = match fio_reactor::read(uuid, &mut buf[PREFIX.len()..]) {
                Ok(0) | Err(_) => return,
                Ok(len) => len,
            };
            let chunk = &buf[PREFIX.len()..PREFIX.len() + len];
            log::info!("Read: {}", String::from_utf8_lossy(chunk).trim_end());
            fio_reactor::write(uuid, &buf[..PREFIX.len() + len]).or_log("echo");
            if chunk
                .get(..3)
                .is_some_and(|start| start.eq_ignore_ascii_case(b"bye"))
            {
                fio_reactor::write2(uuid, Chunk::Static(b"Goodbye.\n"), false).or_log("goodbye");
                fio_reactor::close(uuid).or_log("closing after bye");
                return;
            }
        }
    }

    fn on_timeout(&mut self, uuid: Uuid) {
        // Unlike the default, which closes: the prompt is activity, so the timer restarts.
        fio_reactor::write2(uuid, Chunk::Static(b"Server: Are you there?\n"), false)
            .or_log("the prompt");
    }

    fn on_shutdown(&mut self, uuid: Uuid) -> ShutdownResponse {
        let farewell = b"Echo server shutting down\nGoodbye.\n";
        fio_reactor::write2(uuid, Chunk::Static(farewell), false).or_log("the farewell");
        ShutdownResponse::CloseNow
    }

    fn on_close(&mut self, uuid: Uuid) {
        log::info!("Connection {uuid} closed.");
    }
}

/// A pure byte echo on one connection.
#[derive(Debug)]
struct RawEcho;

impl Protocol for RawEcho {
    fn on_data(&mut self, uuid: Uuid) {
        support::with_read_buffer(|buf| {
            for _ in 0..READS_PER_CALL {
                match fio_reactor::read(uuid, buf) {
                    Ok(0) | Err(_) => return,
                    Ok(len) => {
                        fio_reactor::write(uuid, &buf[..len]).or_log("raw echo");
                        // A read short of the buffer took everything buffered, so another would
                        // only say so. Had it left bytes, `on_data` runs again anyway: it read.
                        if len < buf.len() {
                            return;
                        }
                    }
                }
            }
        });
    }

    fn on_close(&mut self, uuid: Uuid) {
        log::debug!("Connection {uuid} closed.");
    }
}

/// Attaches `service`'s protocol to a new connection and greets it (facil.io's `on_open`).
fn on_open(uuid: Uuid, service: Service) {
    let peer = fio_reactor::peer_addr(uuid).map_or("an unknown peer".to_owned(), |a| a.to_string());
    if service.raw {
        // Debug only: under load these lines would be system calls counted against the server.
        log::debug!("New Connection {uuid} received from {peer}");
        if let Err(error) = fio_reactor::attach(uuid, RawEcho) {
            log::warn!("attaching connection {uuid} failed: {error}");
        }
        return;
    }
    log::info!("New Connection {uuid} received from {peer}");
    if let Err(error) = fio_reactor::attach(uuid, Echo) {
        log::warn!("attaching connection {uuid} failed: {error}");
        return;
    }
    fio_reactor::write2(uuid, Chunk::Static(b"Echo Service: Welcome\n"), false).or_log("welcome");
    fio_reactor::timeout_set(uuid, service.timeout).or_log("setting the idle timeout");
}

/// Listens on `url` for `reactor` with the echo service; returns the listener's uuid, whose
/// address is `fio_reactor::local_addr(listener)`.
///
/// # Errors
/// As [`Reactor::listen`]: a URL that doesn't parse, or a socket that can't be bound.
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "the program listens with `listen_secured`")
)]
pub(crate) fn listen(reactor: &Reactor, url: &str, service: Service) -> Result<Uuid, Error> {
    listen_secured(reactor, url, service, None)
}

/// [`listen`], every connection secured by `tls` when there is one.
///
/// # Errors
/// As [`listen`].
pub(crate) fn listen_secured(
    reactor: &Reactor,
    url: &str,
    service: Service,
    tls: Option<Arc<dyn fio_reactor::Tls>>,
) -> Result<Uuid, Error> {
    let args = ListenArgs::new(url, move |uuid| on_open(uuid, service));
    reactor.listen(match tls {
        Some(tls) => args.tls(tls),
        None => args,
    })
}

/// The program: listens on `options.url` and runs the process's reactor until SIGINT or
/// SIGTERM.
///
/// # Errors
/// - what [`listen`] reports (for example the port is taken);
/// - what `fio_cluster::start` reports.
pub(crate) fn run(options: &Options) -> Result<(), Error> {
    let service = if options.raw {
        Service::RAW
    } else {
        Service::SPEC
    };
    support::init_logger(LevelFilter::Info);
    let tls = support::tls(options)?;
    let reactor = Reactor::current();
    let listeners = support::listen_all(
        &reactor,
        tls.clone(),
        move |uuid| on_open(uuid, service),
        || listen_secured(&reactor, &options.url, service, tls.clone()),
    )?;
    let address = support::addresses(&listeners, &options.url);
    let mode = if service.raw { "raw echo" } else { "echo" };
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        log::info!(
            "{mode} server listening on {address} ({} engine, pid {})",
            fio_reactor::engine(),
            std::process::id()
        );
    });
    support::start(options)
}

#[cfg_attr(test, allow(dead_code, reason = "the tests call `listen` directly"))]
fn main() -> ExitCode {
    support::main("echo", USAGE, |options| run(&options))
}
