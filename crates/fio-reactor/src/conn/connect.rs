//! Client connections: [`connect`] and its [`ConnectArgs`].

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fio_sys::Url;

use crate::conn::dispatch::{open_with, record_for};
use crate::conn::state::{Kind, OnFail, OnOpen, caught};
use crate::conn::table;
use crate::error::Error;
use crate::reactor::Reactor;
use crate::thread::Local;
use crate::uuid::Uuid;

/// What [`connect`] needs (facil.io's `struct fio_connect_args`).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let args = fio_reactor::ConnectArgs::new("tcp://127.0.0.1:9", |_uuid| {})
///     .on_fail(|error| eprintln!("connect failed: {error}"))
///     .timeout(Duration::from_secs(5));
/// assert_eq!(args.url(), "tcp://127.0.0.1:9");
/// ```
pub struct ConnectArgs {
    /// The server: `tcp://host:port` or `unix:///path`.
    url: String,
    /// Called once connected; must attach a protocol.
    on_open: OnOpen,
    /// Called once if the connect fails or times out.
    on_fail: Option<OnFail>,
    /// How long the connect may take.
    timeout: Option<Duration>,
}

impl ConnectArgs {
    /// Connects to `url`; `on_open(uuid)` runs once connected and must
    /// [`attach`](crate::attach) a protocol (or the connection is closed).
    pub fn new(url: impl Into<String>, on_open: impl Fn(Uuid) + Send + Sync + 'static) -> Self {
        Self {
            url: url.into(),
            on_open: Arc::new(on_open),
            on_fail: None,
            timeout: None,
        }
    }

    /// Runs `on_fail(error)` once if the connect fails (refused, unreachable, timed out).
    #[must_use]
    pub fn on_fail(mut self, on_fail: impl FnOnce(io::Error) + Send + 'static) -> Self {
        self.on_fail = Some(Box::new(on_fail));
        self
    }

    /// Fails the connect after `timeout` (checked once a second, like idle timeouts).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Debug for ConnectArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectArgs")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Starts a non-blocking connect on the current reactor (facil.io's `fio_connect`) and
/// returns the connection's uuid; `on_open` or `on_fail` follows. The connection belongs to
/// the calling reactor thread, or to the first thread when called from outside (once it runs).
///
/// # Errors
/// - [`Error::Url`] when the URL doesn't parse;
/// - [`Error::Connect`] when resolving fails or the socket can't be created or connected
///   at once (`on_fail` doesn't run then).
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
            timeout,
        } = args;
        let parsed = Url::parse(&url).map_err(Error::Url)?;
        let (socket, _status) =
            fio_sys::client_socket(&parsed).map_err(|source| Error::Connect { url, source })?;
        let inner = self.inner().clone();
        let here = Local::current(&inner);
        let thread = here.as_ref().map_or(0, |local| local.index());
        let record = match &here {
            Some(local) => record_for(local, &socket),
            None => table::Record::new(&inner, thread),
        };
        let uuid = table::open(socket.as_raw_fd(), record);
        let open = move |local: &Local| {
            let now = Instant::now();
            let kind = Kind::Connecting {
                on_open,
                on_fail: None,
                deadline: timeout.map(|timeout| now + timeout),
            };
            match open_with(local, uuid, socket, kind, true, now) {
                Ok(()) => {
                    if let Some(conn) = local.conns.borrow_mut().map.get_mut(&uuid)
                        && let Kind::Connecting { on_fail: slot, .. } = &mut conn.kind
                    {
                        *slot = on_fail;
                    }
                }
                Err(error) => {
                    if let Some(on_fail) = on_fail {
                        caught("on_fail", uuid, || on_fail(error));
                    }
                }
            }
        };
        match here {
            Some(local) => open(&local),
            None => {
                let owner = inner.clone();
                inner.post(
                    thread,
                    Box::new(move || {
                        if let Some(local) = Local::current(&owner) {
                            open(&local);
                        }
                    }),
                );
            }
        }
        Ok(uuid)
    }
}
