//! Listening sockets: [`listen`] and its [`ListenArgs`].

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use fio_sys::{SockAddr, Transport, Url};

use crate::conn::dispatch::{open_with, require_protocol};
use crate::conn::state::{Kind, Listening, OnFinish, OnOpen, caught};
use crate::conn::table::{self, Record};
use crate::conn::tls::{SharedTls, Tls};
use crate::error::Error;
use crate::reactor::{Reactor, Scope};
use crate::thread::Local;
use crate::uuid::Uuid;

/// What [`listen`] needs (facil.io's `struct fio_listen_args`).
///
/// # Examples
/// ```
/// let args = fio_reactor::ListenArgs::new("tcp://127.0.0.1:0", |uuid| {
///     let _ = fio_reactor::close(uuid);
/// })
/// .on_finish(|| println!("listener closed"));
/// assert_eq!(args.url(), "tcp://127.0.0.1:0");
/// ```
pub struct ListenArgs {
    /// Where to listen: `tcp://host:port`, `unix:///path`, or the short forms `fio_sys::Url`
    /// accepts.
    url: String,
    /// Called with each new connection on that connection's owner thread (the reactor threads
    /// take turns; see the crate docs' "Threads and callbacks"); must attach a protocol.
    on_open: OnOpen,
    /// Called once when the listener closes (the reactor stops, or `close(listener)`).
    on_finish: Option<OnFinish>,
    /// Secures every accepted connection.
    tls: Option<SharedTls>,
    /// Listen in the master process only.
    master_only: bool,
    /// A listening socket handed over by the caller (systemd socket activation) instead of one
    /// bound from `url`.
    inherited: Option<OwnedFd>,
}

impl ListenArgs {
    /// Listens on `url`; `on_open(uuid)` runs for every accepted connection, on the thread that
    /// owns it, and must [`attach`](crate::attach) a protocol (or the connection is closed).
    pub fn new(url: impl Into<String>, on_open: impl Fn(Uuid) + Send + Sync + 'static) -> Self {
        Self {
            url: url.into(),
            on_open: Arc::new(on_open),
            on_finish: None,
            tls: None,
            master_only: false,
            inherited: None,
        }
    }

    /// Serves a stream socket that is already bound and listening, such as one handed over by
    /// systemd socket activation (see `fio_sys::listen_fds`), instead of binding a URL; its
    /// `url` is `fd://<descriptor>`. The socket is made non-blocking; in a cluster it is shared
    /// by the workers like any listener opened before `start`.
    ///
    /// # Examples
    /// ```
    /// use std::os::fd::OwnedFd;
    /// let socket = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let args = fio_reactor::ListenArgs::inherited(OwnedFd::from(socket), |_| {});
    /// assert!(args.url().starts_with("fd://"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn inherited(socket: OwnedFd, on_open: impl Fn(Uuid) + Send + Sync + 'static) -> Self {
        let mut args = Self::new(format!("fd://{}", socket.as_raw_fd()), on_open);
        args.inherited = Some(socket);
        args
    }

    /// Secures every accepted connection with `tls` (facil.io's `.tls`): its server hook is
    /// installed before `on_open`. Required for a `tls://` URL.
    #[must_use]
    pub fn tls(mut self, tls: Arc<dyn Tls>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Listens in the master process only (facil.io's `.is_master_only`): with `fio-cluster`,
    /// a listener opened before `start` is served by the root and never by the workers (a
    /// plain listener is served by the workers, never by the root). Ignored by a single
    /// process.
    #[must_use]
    pub fn master_only(mut self, master_only: bool) -> Self {
        self.master_only = master_only;
        self
    }

    /// Whether a TLS provider was given.
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether only the master process listens.
    pub fn is_master_only(&self) -> bool {
        self.master_only
    }

    /// Runs `on_finish` once when the listener closes.
    #[must_use]
    pub fn on_finish(mut self, on_finish: impl FnOnce() + Send + 'static) -> Self {
        self.on_finish = Some(Box::new(on_finish));
        self
    }

    /// The URL to listen on.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Listens on the spec's default URL, `tcp://0.0.0.0:3000` (facil.io's `fio_listen` with
    /// a `NULL` URL): port 3000 on every IPv4 interface.
    ///
    /// # Examples
    /// ```
    /// let args = fio_reactor::ListenArgs::default_url(|_| {});
    /// assert_eq!(args.url(), "tcp://0.0.0.0:3000");
    /// ```
    pub fn default_url(on_open: impl Fn(Uuid) + Send + Sync + 'static) -> Self {
        Self::new(Url::default().to_string(), on_open)
    }
}

impl fmt::Debug for ListenArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenArgs")
            .field("url", &self.url)
            .field("on_finish", &self.on_finish.is_some())
            .field("tls", &self.tls.is_some())
            .field("master_only", &self.master_only)
            .finish_non_exhaustive()
    }
}

/// Binds and listens on `args.url` for the current reactor (facil.io's `fio_listen`) and
/// returns the listener's uuid; its local address is [`local_addr`](crate::local_addr).
///
/// The socket is bound at once, so the port is known (and errors are reported) before the
/// reactor starts. The listener belongs to the reactor thread that called `listen` (thread 0
/// when called from outside the reactor, once it runs); the connections it accepts are handed
/// to the reactor's threads in turn (round robin), and each one's `on_open` and callbacks run
/// on its owner. See the crate docs' "Threads and callbacks" for what runs where.
///
/// # Errors
/// - [`Error::Url`] when the URL doesn't parse;
/// - [`Error::TlsRequired`] for a `tls://` URL without [`ListenArgs::tls`];
/// - [`Error::Listen`] when the socket can't be created, bound or put to listen.
///
/// # Examples
/// ```
/// use fio_reactor::{Concurrency, ListenArgs, Reactor, StartArgs};
/// let reactor = Reactor::new(StartArgs::new().threads(Concurrency::ONE).signals(false));
/// let listener = reactor.listen(ListenArgs::new("tcp://127.0.0.1:0", |_| {}).on_finish(fio_reactor::stop))?;
/// assert!(fio_reactor::local_addr(listener).is_some());
/// reactor.state_callback_add(fio_reactor::CallbackEvent::OnStart, move || {
///     let _ = fio_reactor::close(listener); // its on_finish stops the reactor
/// });
/// reactor.start()?;
/// assert!(!fio_reactor::is_valid(listener));
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn listen(args: ListenArgs) -> Result<Uuid, Error> {
    Reactor::current().listen(args)
}

impl Reactor {
    /// Listens on `args.url` for this reactor; see [`listen`](crate::listen).
    ///
    /// # Errors
    /// As [`listen`](crate::listen).
    pub fn listen(&self, args: ListenArgs) -> Result<Uuid, Error> {
        let ListenArgs {
            url,
            on_open,
            on_finish,
            tls,
            master_only,
            inherited,
        } = args;
        if let Some(socket) = inherited {
            return self.listen_on(url, socket, on_open, on_finish, tls, master_only, false);
        }
        let parsed = Url::parse(&url).map_err(Error::Url)?;
        if parsed.is_tls() && tls.is_none() {
            return Err(Error::TlsRequired { url });
        }
        if parsed.transport() == Transport::Udp && tls.is_some() {
            return Err(Error::Listen {
                url,
                source: io::Error::new(io::ErrorKind::InvalidInput, "no TLS over UDP"),
            });
        }
        // A server wants every descriptor the process may have (facil.io raised the limit
        // at load time).
        let _ = crate::conn::capa();
        let socket = fio_sys::server_socket(&parsed).map_err(|source| Error::Listen {
            url: url.clone(),
            source,
        })?;
        let datagram = parsed.transport() == Transport::Udp;
        self.listen_on(url, socket, on_open, on_finish, tls, master_only, datagram)
    }

    /// Serves a bound socket: registers it on the owning thread (now, or parked until it runs).
    #[allow(clippy::too_many_arguments)]
    fn listen_on(
        &self,
        url: String,
        socket: OwnedFd,
        on_open: OnOpen,
        on_finish: Option<OnFinish>,
        tls: Option<SharedTls>,
        master_only: bool,
        datagram: bool,
    ) -> Result<Uuid, Error> {
        fio_sys::set_nonblocking(socket.as_fd()).map_err(|source| Error::Listen {
            url: url.clone(),
            source,
        })?;
        // Linux copies `TCP_NODELAY` from a listener to the connections it accepts (the call
        // fails harmlessly on a Unix socket).
        let nodelay_inherited = cfg!(target_os = "linux")
            && !datagram
            && fio_sys::set_nodelay(socket.as_fd(), true).is_ok();
        let inner = self.inner().clone();
        let here = Local::current(&inner);
        let thread = here.as_ref().map_or(0, |local| local.index());
        let mut record = Record::new(&inner, thread);
        record.local = fio_sys::local_addr(socket.as_fd()).ok();
        let accepted_local = record.local.clone().filter(names_one_endpoint);
        let uuid = table::open(socket.as_raw_fd(), record);
        if here.is_none() && !master_only && !datagram {
            // Parked until `start`: in a cluster, the workers' shared accept queue.
            crate::cluster::note_shared_listener(&socket);
        }
        let kind = if datagram {
            Kind::Datagram { on_finish }
        } else {
            Kind::Listener(Box::new(Listening {
                on_open: Arc::clone(&on_open),
                on_finish,
                tls,
                nodelay_inherited,
                accepted_local,
            }))
        };
        let open = move |local: &Local| {
            if let Err(error) = open_with(local, uuid, socket, kind, false, Instant::now()) {
                log::error!("listening on {url} failed: {error}");
            } else if datagram {
                // The one socket every peer writes to is the connection to attach to.
                caught("on_open", uuid, || on_open(uuid));
                require_protocol(local, uuid);
            }
        };
        let scope = Scope::for_master_only(master_only);
        Local::run_on_scoped(&inner, here.as_deref(), thread, scope, open);
        Ok(uuid)
    }
}

/// Whether a listener bound to `addr` gives every stream it accepts `addr` as its local
/// address: one IP (not a wildcard, whose streams each have their own), or a Unix name
/// (Linux gives an accepted Unix stream its listener's name).
fn names_one_endpoint(addr: &SockAddr) -> bool {
    match addr {
        SockAddr::Inet(inet) => !inet.ip().is_unspecified(),
        SockAddr::Unix(_) | SockAddr::UnixAbstract(_) => true,
        SockAddr::UnixUnnamed => false,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    /// `listen` relies on this instead of setting `TCP_NODELAY` on every accepted stream.
    #[cfg(target_os = "linux")]
    #[test]
    fn accepted_streams_inherit_nodelay_from_the_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        fio_sys::set_nodelay(listener.as_fd(), true).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(fio_sys::nodelay(accepted.as_fd()).unwrap());
    }
}
