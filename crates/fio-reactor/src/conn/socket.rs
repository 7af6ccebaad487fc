//! Sockets outside the reactor and the connection capacity: [`socket`], [`accept`],
//! [`set_non_block`] and [`capa`], thin layers over `fio-sys` (facil.io's `fio_socket`,
//! `fio_accept`, `fio_set_non_block`, `fio_capa`).
//!
//! Two shapes of each: [`socket`] and [`accept`] give a plain [`OwnedFd`], which
//! [`attach_fd`](crate::attach_fd) hands to the reactor (giving it a uuid then);
//! [`socket_uuid`] and [`accept_uuid`] are facil.io's shape, a uuid at once for a socket no
//! reactor owns yet, which [`attach`](crate::attach) hands to the reactor under the same
//! uuid. Until then such a uuid is valid ([`is_valid`](crate::is_valid),
//! [`fd2uuid`](crate::fd2uuid), [`peer_addr`](crate::peer_addr)), [`close`](crate::close) closes
//! it, and the connection functions that need an owning thread answer
//! [`Error::InvalidUuid`].

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use fio_sys::{SockAddr, Url};
use parking_lot::Mutex;

use crate::conn::table::{self, Record};
use crate::error::Error;
use crate::uuid::Uuid;

/// Sockets with a uuid that no reactor owns yet (`socket_uuid`, `accept_uuid`).
static UNATTACHED: Mutex<Option<HashMap<Uuid, OwnedFd>>> = Mutex::new(None);

/// How many sockets [`UNATTACHED`] holds, changed under its lock: every `close` asks whether
/// its uuid is one of them, and this answers the usual "none" without taking the lock.
static UNATTACHED_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Gives `fd` a uuid, owned by no reactor until [`attach`](crate::attach).
fn register(fd: OwnedFd) -> Uuid {
    let uuid = table::open(fd.as_raw_fd(), Record::detached(&fd));
    put_unattached(uuid, fd);
    uuid
}

/// Keeps an unattached socket under `uuid`.
pub(crate) fn put_unattached(uuid: Uuid, fd: OwnedFd) {
    let mut sockets = UNATTACHED.lock();
    let sockets = sockets.get_or_insert_with(HashMap::new);
    sockets.insert(uuid, fd);
    UNATTACHED_COUNT.store(sockets.len(), Ordering::Release);
}

/// Takes the unattached socket `uuid` names, if it is one.
pub(crate) fn take_unattached(uuid: Uuid) -> Option<OwnedFd> {
    if UNATTACHED_COUNT.load(Ordering::Acquire) == 0 {
        return None;
    }
    let mut sockets = UNATTACHED.lock();
    let sockets = sockets.as_mut()?;
    let taken = sockets.remove(&uuid);
    UNATTACHED_COUNT.store(sockets.len(), Ordering::Release);
    taken
}

/// Closes the unattached socket `uuid` names; whether it was one.
pub(crate) fn close_unattached(uuid: Uuid) -> bool {
    let Some(fd) = take_unattached(uuid) else {
        return false;
    };
    let env = table::close(uuid);
    crate::conn::env::clean_up(uuid, env);
    drop(fd);
    true
}

/// Whether [`socket`] makes a server or a client socket (facil.io's `FIO_SOCKET_SERVER` and
/// `FIO_SOCKET_CLIENT`; the transport, TCP, UDP or Unix, comes from the URL's scheme).
///
/// # Examples
/// ```
/// assert_ne!(fio_reactor::SocketRole::Server, fio_reactor::SocketRole::Client);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketRole {
    /// Bind, and listen for TCP and Unix sockets.
    Server,
    /// Start connecting.
    Client,
}

/// Creates a non-blocking, close-on-exec socket for `url` (facil.io's `fio_socket`): a server
/// socket bound (and listening, for TCP and Unix) or a client socket whose connect has
/// started. `tcp://`, `udp://` and `unix://` URLs pick the transport; see `fio_sys::Url` for
/// the forms accepted.
///
/// A client's connect may still be in progress when this returns: wait until the socket is
/// writable (`fio_sys::poll`) and check `fio_sys::take_error` before attaching it, or let
/// [`connect`](crate::connect) do all of that. facil.io's `FIO_SOCKET_NONBLOCK` is always on;
/// `fio_sys::set_blocking` undoes it for sockets used outside the reactor.
///
/// # Errors
/// - [`Error::Url`] when `url` doesn't parse;
/// - [`Error::Listen`] when a server socket can't be created, bound or put to listen;
/// - [`Error::Connect`] when a client's address doesn't resolve or the connect fails at once.
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// use fio_reactor::SocketRole;
/// let server = fio_reactor::socket("tcp://127.0.0.1:0", SocketRole::Server)?;
/// let addr = fio_sys::local_addr(server.as_fd()).ok().and_then(|addr| addr.as_inet()).expect("TCP");
/// let _client = fio_reactor::socket(&format!("tcp://{addr}"), SocketRole::Client)?;
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn socket(url: &str, role: SocketRole) -> Result<OwnedFd, Error> {
    let parsed = Url::parse(url).map_err(Error::Url)?;
    match role {
        SocketRole::Server => fio_sys::server_socket(&parsed).map_err(|source| Error::Listen {
            url: url.to_owned(),
            source,
        }),
        SocketRole::Client => fio_sys::client_socket(&parsed)
            .map(|(fd, _status)| fd)
            .map_err(|source| Error::Connect {
                url: url.to_owned(),
                source,
            }),
    }
}

/// [`socket`] in facil.io's shape (`fio_socket` returns a uuid): the socket gets a uuid at
/// once, owned by no reactor until [`attach`](crate::attach) hands it over under the same
/// uuid. A server socket's uuid is for [`accept_uuid`] ([`listen`](crate::listen) serves
/// connections through the reactor); a client socket's connect may still be in progress, as
/// with [`socket`]. [`close`](crate::close) closes an unattached socket.
///
/// # Errors
/// As [`socket`].
///
/// # Examples
/// ```
/// use fio_reactor::SocketRole;
/// let server = fio_reactor::socket_uuid("tcp://127.0.0.1:0", SocketRole::Server)?;
/// assert!(fio_reactor::is_valid(server));
/// assert!(fio_reactor::local_addr(server).is_some());
/// fio_reactor::close(server)?;
/// assert!(!fio_reactor::is_valid(server));
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn socket_uuid(url: &str, role: SocketRole) -> Result<Uuid, Error> {
    socket(url, role).map(register)
}

/// [`accept`] in facil.io's shape (`fio_accept(srv_uuid)`): accepts one connection from a
/// server socket made by [`socket_uuid`] and returns its uuid, owned by no reactor until
/// [`attach`](crate::attach) (facil.io: "does NOT attach the socket to the IO reactor").
///
/// # Errors
/// - [`Error::InvalidUuid`] when `listener` is not an unattached socket (a
///   [`listen`](crate::listen) listener accepts by itself);
/// - as [`accept`] (`WouldBlock` when no connection is pending).
///
/// # Examples
/// ```
/// let server = fio_reactor::socket_uuid("tcp://127.0.0.1:0", fio_reactor::SocketRole::Server)?;
/// let none = fio_reactor::accept_uuid(server);
/// assert!(matches!(none, Err(fio_reactor::Error::Socket { ref source, .. })
///     if source.kind() == std::io::ErrorKind::WouldBlock));
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn accept_uuid(listener: Uuid) -> Result<Uuid, Error> {
    let accepted = {
        let unattached = UNATTACHED.lock();
        let fd = unattached
            .as_ref()
            .and_then(|sockets| sockets.get(&listener))
            .ok_or(Error::InvalidUuid(listener))?;
        accept(fd.as_fd())
    };
    accepted.map(|(stream, _peer)| register(stream))
}

/// Accepts one connection from a listening socket made by [`socket`] (facil.io's
/// `fio_accept`): non-blocking, close-on-exec, and with `TCP_NODELAY` for TCP, as facil.io
/// sets it. It is not attached to the reactor; see [`attach_fd`](crate::attach_fd).
///
/// A [`listen`](crate::listen) listener accepts by itself; this is for sockets the
/// application manages, so it takes the descriptor rather than a uuid.
///
/// # Errors
/// - [`Error::Socket`] with `WouldBlock` when no connection is pending, or `accept4`'s other
///   errors (`EMFILE`, `EINVAL` for a socket that isn't listening).
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// let server = fio_reactor::socket("tcp://127.0.0.1:0", fio_reactor::SocketRole::Server)?;
/// let none = fio_reactor::accept(server.as_fd());
/// assert!(matches!(none, Err(fio_reactor::Error::Socket { ref source, .. })
///     if source.kind() == std::io::ErrorKind::WouldBlock));
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn accept(listener: BorrowedFd<'_>) -> Result<(OwnedFd, SockAddr), Error> {
    let (stream, peer) = fio_sys::accept(listener).map_err(|source| Error::Socket {
        operation: "accept",
        source,
    })?;
    if peer.as_inet().is_some() {
        // Small writes go out at once; failing to set it only costs latency.
        let _ = fio_sys::set_nodelay(stream.as_fd(), true);
    }
    Ok((stream, peer))
}

/// Makes a descriptor non-blocking and close-on-exec (facil.io's `fio_set_non_block`), as
/// [`attach_fd`](crate::attach_fd) needs; `attach_fd` also does it itself.
///
/// # Errors
/// - [`Error::Socket`] when `fcntl` fails (not for a live descriptor in practice).
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| {
///     fio_reactor::Error::Socket { operation: "bind", source }
/// })?;
/// fio_reactor::set_non_block(listener.as_fd())?;
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn set_non_block(fd: BorrowedFd<'_>) -> Result<(), Error> {
    fio_sys::set_nonblocking(fd).map_err(|source| Error::Socket {
        operation: "set_non_block",
        source,
    })
}

/// This machine's host name (facil.io's `fio_local_addr`), as `gethostname(2)` gives it: the
/// fully qualified name where the system is configured with one. facil.io asks the resolver for
/// the canonical name too; that may block on DNS for seconds, which a reactor thread must not,
/// so a caller that wants it resolves the name off the reactor.
///
/// # Errors
/// - [`Error::Socket`] when `gethostname` fails.
///
/// # Examples
/// ```
/// let name = fio_reactor::local_host_name()?;
/// assert!(!name.is_empty());
/// # Ok::<(), fio_reactor::Error>(())
/// ```
pub fn local_host_name() -> Result<String, Error> {
    fio_sys::host_name().map_err(|source| Error::Socket {
        operation: "gethostname",
        source,
    })
}

/// The most connections (open files) this process can hold (facil.io's `fio_capa`): the
/// open-file limit (`RLIMIT_NOFILE`), raised to its hard limit the first time it is asked
/// for, then cached. [`listen`](crate::listen) asks for it, so a server runs with the raised
/// limit. `0` means the limit couldn't be read; `usize::MAX` that there is none.
///
/// # Examples
/// ```
/// assert!(fio_reactor::capa() > 0);
/// assert_eq!(fio_reactor::capa(), fio_reactor::capa());
/// ```
pub fn capa() -> usize {
    static CAPA: OnceLock<usize> = OnceLock::new();
    *CAPA.get_or_init(|| {
        let limit = fio_sys::raise_nofile_limit().or_else(|error| {
            log::warn!("raising the open-file limit failed: {error}");
            fio_sys::nofile_limit().map(|limit| limit.soft)
        });
        match limit {
            Ok(limit) => usize::try_from(limit).unwrap_or(usize::MAX),
            Err(error) => {
                log::warn!("reading the open-file limit failed: {error}");
                0
            }
        }
    })
}
