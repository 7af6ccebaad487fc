//! Client connections: [`connect`], its [`ConnectArgs`], and reconnecting.
//!
//! Every attempt of one `connect` shares a [`Connector`]: the parsed URL and the callbacks.
//! With `auto_reconnect`, a failed attempt or a connection that closed while the reactor runs
//! starts a new attempt [`RECONNECT_DELAY`] later, whose `on_open` gets the new uuid.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use fio_sys::{Host, Transport, Url};

use crate::conn::dispatch::{open_with, record_for, require_protocol};
use crate::conn::state::{Kind, OnFail, OnFinish, OnOpen, caught};
use crate::conn::table;
use crate::conn::tls::{SharedTls, Tls};
use crate::error::Error;
use crate::reactor::{Inner, Reactor, Scope};
use crate::thread::Local;
use crate::timer::Repeat;
use crate::uuid::Uuid;

/// How long a connector with `auto_reconnect` waits before the next attempt (facil.io's
/// `FIO_RECONNECT_DELAY`, 150 ms), so a server that is down isn't bombarded.
pub const RECONNECT_DELAY: Duration = Duration::from_millis(150);

/// What [`connect`] needs (facil.io's `struct fio_connect_args`).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let args = fio_reactor::ConnectArgs::new("tcp://127.0.0.1:9", |_uuid| {})
///     .on_fail(|error| eprintln!("connect failed: {error}"))
///     .on_finish(|| eprintln!("done connecting"))
///     .timeout(Duration::from_secs(5))
///     .auto_reconnect(true);
/// assert_eq!(args.url(), "tcp://127.0.0.1:9");
/// ```
pub struct ConnectArgs {
    url: String,
    on_open: OnOpen,
    on_fail: Option<OnFail>,
    on_finish: Option<OnFinish>,
    timeout: Option<Duration>,
    auto_reconnect: bool,
    tls: Option<SharedTls>,
    master_only: bool,
}

impl ConnectArgs {
    /// Connects to `url` (`tcp://host:port`, `tls://host:port`, `unix:///path`, or the
    /// short forms `fio_sys::Url` accepts); `on_open(uuid)` runs once connected (again after
    /// each reconnect) and must [`attach`](crate::attach) a protocol, or the connection is
    /// closed.
    pub fn new(url: impl Into<String>, on_open: impl Fn(Uuid) + Send + Sync + 'static) -> Self {
        Self {
            url: url.into(),
            on_open: Arc::new(on_open),
            on_fail: None,
            on_finish: None,
            timeout: None,
            auto_reconnect: false,
            tls: None,
            master_only: false,
        }
    }

    /// Runs `on_fail(error)` once if the connect fails (refused, unreachable, timed out, TLS
    /// refused) and won't be retried.
    #[must_use]
    pub fn on_fail(mut self, on_fail: impl FnOnce(io::Error) + Send + 'static) -> Self {
        self.on_fail = Some(Box::new(on_fail));
        self
    }

    /// Runs `on_finish` once when this connect is done for good (facil.io's `.on_finish`):
    /// after a failure or after its connection closed, when no reconnect follows, or when the
    /// reactor stops.
    #[must_use]
    pub fn on_finish(mut self, on_finish: impl FnOnce() + Send + 'static) -> Self {
        self.on_finish = Some(Box::new(on_finish));
        self
    }

    /// Fails an attempt after `timeout` (checked once a second, like idle timeouts).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Reconnects, [`RECONNECT_DELAY`] later, whenever an attempt fails or the connection
    /// closes while the reactor runs (facil.io's `.auto_reconnect`).
    #[must_use]
    pub fn auto_reconnect(mut self, enabled: bool) -> Self {
        self.auto_reconnect = enabled;
        self
    }

    /// Secures the connection with `tls` (facil.io's `.tls`): its client hook is installed
    /// before `on_open`. Required for a `tls://` URL.
    #[must_use]
    pub fn tls(mut self, tls: Arc<dyn Tls>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Connects from the master process only (facil.io's `.is_master_only`); meaningful with
    /// `fio-cluster`'s workers, ignored by a single process.
    #[must_use]
    pub fn master_only(mut self, master_only: bool) -> Self {
        self.master_only = master_only;
        self
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether a TLS provider was given.
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether only the master process connects.
    pub fn is_master_only(&self) -> bool {
        self.master_only
    }
}

impl fmt::Debug for ConnectArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectArgs")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("auto_reconnect", &self.auto_reconnect)
            .field("tls", &self.tls.is_some())
            .field("master_only", &self.master_only)
            .finish_non_exhaustive()
    }
}

/// What every attempt of one `connect` shares.
pub(crate) struct Connector {
    url: String,
    parsed: Url,
    on_open: OnOpen,
    on_fail: Mutex<Option<OnFail>>,
    on_finish: Mutex<Option<OnFinish>>,
    timeout: Option<Duration>,
    auto_reconnect: bool,
    tls: Option<SharedTls>,
    /// Connect from a cluster's root only.
    master_only: bool,
}

impl Connector {
    /// The connection is up: secure it (a refusal fails the attempt), then `on_open`.
    pub(crate) fn opened(self: &Arc<Self>, local: &Local, uuid: Uuid) -> io::Result<()> {
        if let Some(tls) = &self.tls {
            let name = server_name(&self.parsed);
            crate::conn::tls::secure(local, uuid, tls, crate::conn::tls::Side::Client(&name))?;
        }
        let on_open = &self.on_open;
        caught("on_open", uuid, || on_open(uuid));
        Ok(())
    }

    /// An attempt failed: retry later, or report the failure and finish.
    pub(crate) fn failed(self: &Arc<Self>, local: &Local, error: io::Error) {
        if self.retries(local) {
            log::debug!("connecting to {} failed: {error}; retrying", self.url);
            self.schedule_retry(local.inner());
            return;
        }
        if let Some(on_fail) = self.on_fail.lock().take() {
            caught("on_fail", &self.url, || on_fail(error));
        }
        self.finish();
    }

    /// The connection closed after it was open: reconnect later, or finish.
    pub(crate) fn closed(self: &Arc<Self>, local: &Local) {
        if self.retries(local) {
            self.schedule_retry(local.inner());
        } else {
            self.finish();
        }
    }

    /// Whether a failure or close is followed by another attempt.
    fn retries(&self, local: &Local) -> bool {
        self.auto_reconnect && !local.inner().is_stopping()
    }

    /// Runs `on_finish`, once.
    fn finish(&self) {
        if let Some(on_finish) = self.on_finish.lock().take() {
            caught("on_finish", &self.url, on_finish);
        }
    }

    /// The next attempt, [`RECONNECT_DELAY`] from now; a reactor that stops first finishes
    /// the connector instead.
    fn schedule_retry(self: &Arc<Self>, inner: &Arc<Inner>) {
        let reactor = Reactor::from_inner(Arc::clone(inner));
        let attempted = Arc::new(AtomicBool::new(false));
        let (connector, ran) = (Arc::clone(self), Arc::clone(&attempted));
        let retry = move || {
            ran.store(true, Ordering::SeqCst);
            let reactor = Reactor::current();
            if let Err(error) = attempt(&reactor, &connector) {
                match Local::current(reactor.inner()) {
                    Some(local) => connector.failed(&local, error.into()),
                    None => connector.finish(),
                }
            }
            false
        };
        let connector = Arc::clone(self);
        let on_finish = move || {
            if !attempted.load(Ordering::SeqCst) {
                connector.finish();
            }
        };
        if let Err(error) = reactor.run_every(RECONNECT_DELAY, Repeat::ONCE, retry, on_finish) {
            log::warn!("scheduling a reconnect to {} failed: {error}", self.url);
        }
    }
}

/// The host name a TLS client names (SNI), from the URL.
fn server_name(url: &Url) -> String {
    match url.host() {
        Some(Host::Name(name)) => name.clone(),
        Some(Host::Ip(ip)) => ip.to_string(),
        None => String::from("localhost"),
    }
}

/// Starts a non-blocking connect on the current reactor (facil.io's `fio_connect`) and
/// returns the first attempt's uuid; `on_open` or `on_fail` follows. The connection belongs
/// to the calling reactor thread, or to thread 0 when called from outside (once it runs), and
/// its callbacks run there (see the crate docs' "Threads and callbacks").
///
/// # Errors
/// - [`Error::Url`] when the URL doesn't parse;
/// - [`Error::TlsRequired`] for a `tls://` URL without [`ConnectArgs::tls`];
/// - [`Error::Connect`] when resolving fails or the socket can't be created or connected
///   at once (no callback runs then, and no reconnect follows).
///
/// # Examples
/// ```
/// let args = fio_reactor::ConnectArgs::new("tls://127.0.0.1:9", |_| {});
/// assert!(matches!(fio_reactor::connect(args), Err(fio_reactor::Error::TlsRequired { .. })));
/// ```
pub fn connect(args: ConnectArgs) -> Result<Uuid, Error> {
    Reactor::current().connect(args)
}

impl Reactor {
    /// Connects on this reactor; see [`connect`](crate::connect).
    ///
    /// # Errors
    /// As [`connect`](crate::connect).
    pub fn connect(&self, args: ConnectArgs) -> Result<Uuid, Error> {
        let ConnectArgs {
            url,
            on_open,
            on_fail,
            on_finish,
            timeout,
            auto_reconnect,
            tls,
            master_only,
        } = args;
        let parsed = Url::parse(&url).map_err(Error::Url)?;
        if parsed.is_tls() && tls.is_none() {
            return Err(Error::TlsRequired { url });
        }
        if parsed.transport() == Transport::Udp && tls.is_some() {
            return Err(Error::Connect {
                url,
                source: io::Error::new(io::ErrorKind::InvalidInput, "no TLS over UDP"),
            });
        }
        let connector = Arc::new(Connector {
            url,
            parsed,
            on_open,
            on_fail: Mutex::new(on_fail),
            on_finish: Mutex::new(on_finish),
            timeout,
            auto_reconnect,
            tls,
            master_only,
        });
        attempt(self, &connector)
    }
}

/// One attempt: a non-blocking connect registered on the owning thread.
fn attempt(reactor: &Reactor, connector: &Arc<Connector>) -> Result<Uuid, Error> {
    let (socket, _status) =
        fio_sys::client_socket(&connector.parsed).map_err(|source| Error::Connect {
            url: connector.url.clone(),
            source,
        })?;
    let inner = reactor.inner().clone();
    let here = Local::current(&inner);
    let thread = here.as_ref().map_or(0, |local| local.index());
    let record = match &here {
        Some(local) => record_for(local, &socket),
        None => table::Record::new(&inner, thread),
    };
    let uuid = table::open(socket.as_raw_fd(), record);
    let scope = Scope::for_master_only(connector.master_only);
    let connector = Arc::clone(connector);
    let datagram = connector.parsed.transport() == Transport::Udp;
    let open = move |local: &Local| {
        let now = Instant::now();
        if datagram {
            // A datagram socket is connected at once: open it and call `on_open` now.
            let kind = Kind::Datagram { on_finish: None };
            match open_with(local, uuid, socket, kind, false, now) {
                Ok(()) => connected_datagram(local, uuid, &connector),
                Err(error) => connector.failed(local, error),
            }
            return;
        }
        let kind = Kind::Connecting {
            connector: Arc::clone(&connector),
            deadline: connector.timeout.map(|timeout| now + timeout),
        };
        if let Err(error) = open_with(local, uuid, socket, kind, true, now) {
            connector.failed(local, error);
        }
    };
    Local::run_on_scoped(&inner, here.as_deref(), thread, scope, open);
    Ok(uuid)
}

/// A connected datagram socket is open: remember its connector (for reconnecting), then
/// `on_open`, which must attach a protocol.
fn connected_datagram(local: &Local, uuid: Uuid, connector: &Arc<Connector>) {
    if let Some(conn) = local.conns.borrow_mut().map.get_mut(&uuid) {
        conn.connector = Some(Arc::clone(connector));
    }
    if let Err(error) = connector.opened(local, uuid) {
        log::warn!("opening datagram connection {uuid} failed: {error}");
        crate::conn::state::close_local(local, uuid, crate::engine::CloseMode::Abort);
        return;
    }
    require_protocol(local, uuid);
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("url", &self.url)
            .field("auto_reconnect", &self.auto_reconnect)
            .finish_non_exhaustive()
    }
}
