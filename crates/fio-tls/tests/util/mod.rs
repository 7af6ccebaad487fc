//! Helpers shared by fio-tls's integration tests: reactors on the run's engine
//! (`FIO_ENGINE`), a bounded start, an echo protocol, a rustls client, and child processes
//! killed on drop.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use fio_reactor::{Concurrency, EngineKind, Error, ListenArgs, Reactor, StartArgs, Uuid};
use fio_tls::rustls;
use fio_tls::{Identity, Tls, TlsBuilder};

/// How long any single reactor run may take before the watchdog stops it.
pub(crate) const DEADLINE: Duration = Duration::from_secs(90);

/// How long a test client waits on one socket call.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The engine this run asks for (`FIO_ENGINE`), or `None` for the default.
pub(crate) fn engine() -> Option<EngineKind> {
    EngineKind::from_env().expect("FIO_ENGINE names a known engine")
}

/// A fresh reactor: `threads` threads, one process, the run's engine, no signals.
pub(crate) fn reactor(threads: u16) -> Reactor {
    let threads = Concurrency::exactly(threads).expect("a test runs at least one thread");
    Reactor::new(
        StartArgs::new()
            .threads(threads)
            .workers(Concurrency::ONE)
            .engine(engine())
            .signals(false),
    )
}

/// Runs `reactor.start()` with a watchdog that stops it (and fails the test) at
/// [`DEADLINE`].
pub(crate) fn start_bounded(reactor: &Reactor) -> Result<(), Error> {
    let (done, finished) = mpsc::channel::<()>();
    let watched = reactor.clone();
    let watchdog = thread::spawn(move || {
        let timed_out = finished.recv_timeout(DEADLINE) == Err(mpsc::RecvTimeoutError::Timeout);
        if timed_out {
            watched.stop();
        }
        timed_out
    });
    let result = reactor.start();
    drop(done);
    let timed_out = watchdog.join().expect("watchdog thread");
    assert!(!timed_out, "the reactor did not stop within {DEADLINE:?}");
    result
}

/// One self-signed identity for `localhost` and 127.0.0.1, shared by the tests of a binary.
pub(crate) fn identity() -> Identity {
    static ONE: OnceLock<(String, String)> = OnceLock::new();
    let (cert, key) = ONE.get_or_init(|| {
        let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        (identity.cert_pem(), identity.key_pem())
    });
    Identity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()
}

/// A server provider with [`identity`].
pub(crate) fn server_tls() -> Arc<Tls> {
    TlsBuilder::new()
        .cert_add(Some("localhost"), identity())
        .build()
        .unwrap()
}

/// A client provider trusting [`identity`].
pub(crate) fn client_tls() -> Arc<Tls> {
    TlsBuilder::new()
        .trust(identity().chain()[0].clone())
        .build()
        .unwrap()
}

/// A rustls client configuration that trusts [`identity`].
pub(crate) fn rustls_client_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(identity().chain()[0].clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// A blocking rustls client stream to `addr`, for `name`.
pub(crate) fn rustls_client(
    addr: SocketAddr,
    name: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let sock = tcp(addr);
    let conn = rustls::ClientConnection::new(
        rustls_client_config(),
        rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap(),
    )
    .unwrap();
    rustls::StreamOwned::new(conn, sock)
}

/// A blocking TCP stream to `addr` with [`IO_TIMEOUT`].
pub(crate) fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Listens on `tls://127.0.0.1:0` with `tls`; returns the address.
pub(crate) fn listen_tls(
    reactor: &Reactor,
    tls: Arc<Tls>,
    on_open: impl Fn(Uuid) + Send + Sync + 'static,
) -> SocketAddr {
    let listener = reactor
        .listen(ListenArgs::new("tls://127.0.0.1:0", on_open).tls(tls))
        .expect("listen");
    fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .expect("an inet listener")
}

/// Runs a reactor serving `tls` with [`Echo`] while `client` runs on a thread; returns what
/// `client` returned.
pub(crate) fn serve<T: Send + 'static>(
    tls: Arc<Tls>,
    client: impl FnOnce(SocketAddr) -> T + Send + 'static,
) -> T {
    let reactor = reactor(1);
    let addr = listen_tls(&reactor, tls, echo_on_open);
    let stopper = reactor.clone();
    let handle = thread::spawn(move || {
        let out = client(addr);
        stopper.stop();
        out
    });
    start_bounded(&reactor).unwrap();
    handle.join().unwrap()
}

/// Echoes every byte back; `bye` alone closes.
pub(crate) struct Echo;

impl fio_reactor::Protocol for Echo {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = vec![0u8; 65536];
        for _ in 0..1024 {
            match fio_reactor::read(uuid, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(count) => {
                    if &buf[..count] == b"bye\n" {
                        let _ = fio_reactor::close(uuid);
                        return;
                    }
                    let _ = fio_reactor::write(uuid, &buf[..count]);
                }
            }
        }
    }
}

/// A listener's `on_open` that attaches [`Echo`].
pub(crate) fn echo_on_open(uuid: Uuid) {
    fio_reactor::attach(uuid, Echo).unwrap();
}

/// A child process killed (and reaped) on drop.
pub(crate) struct Kid(pub(crate) Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program`'s path, or a failure saying it is missing (tests that need it fail, not skip).
pub(crate) fn require(program: &str) -> String {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let path = format!("{dir}/{program}");
        if std::path::Path::new(&path).exists() {
            return path;
        }
    }
    panic!("{program} is not installed: `.ci/run` installs it (apt-get install -y {program})");
}

/// Spawns `program` with `args`, piped stdin/stdout/stderr.
pub(crate) fn spawn(program: &str, args: &[&str]) -> Kid {
    Kid(Command::new(require(program))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn"))
}

/// Reads `stream` until `needle` appears or `deadline` passes; returns what was read.
pub(crate) fn read_until(stream: &mut impl Read, needle: &[u8], deadline: Duration) -> Vec<u8> {
    let end = Instant::now() + deadline;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end && !out.windows(needle.len()).any(|w| w == needle) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(count) => out.extend_from_slice(&buf[..count]),
        }
    }
    out
}

/// Writes all of `data`, mapping errors to a panic with context.
pub(crate) fn send_all(stream: &mut impl Write, data: &[u8]) -> io::Result<()> {
    stream.write_all(data)?;
    stream.flush()
}
