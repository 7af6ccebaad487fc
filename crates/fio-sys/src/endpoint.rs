//! From a [`Url`] to a socket: name resolution, listening server sockets, and non-blocking
//! client sockets. These are what `fio_socket`, `listen` and `connect` are built on.

use std::fs;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::addr::SockAddr;
use crate::socket::{ConnectStatus, SockType, bind, connect, listen, socket};
use crate::sockopt::set_reuse_addr;
use crate::url::{Endpoint, Host, Transport, Url};

/// The addresses a URL names: the literal IP, every address `getaddrinfo` finds for a host
/// name (in its order), or the Unix path.
///
/// Resolving a name blocks the calling thread while `getaddrinfo` runs (it may query DNS);
/// literal addresses and Unix paths never block.
///
/// # Errors
/// - the resolver's error for a name that does not resolve (std turns `getaddrinfo`'s failure
///   into an `io::Error` carrying the resolver's message);
/// - `NotFound` when a name resolves to no address at all.
///
/// # Examples
/// ```
/// let url = fio_sys::Url::parse("tcp://127.0.0.1:8080")?;
/// let addrs = fio_sys::resolve(&url)?;
/// assert_eq!(addrs[0].to_string(), "127.0.0.1:8080");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn resolve(url: &Url) -> io::Result<Vec<SockAddr>> {
    match url.endpoint() {
        Endpoint::Unix(path) => Ok(vec![SockAddr::unix(path)]),
        Endpoint::Inet {
            host: Host::Ip(ip),
            port,
        } => Ok(vec![SockAddr::from(SocketAddr::new(*ip, *port))]),
        Endpoint::Inet {
            host: Host::Name(name),
            port,
        } => {
            let addrs: Vec<SockAddr> = (name.as_str(), *port)
                .to_socket_addrs()?
                .map(SockAddr::from)
                .collect();
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("host {name:?} resolved to no address"),
                ));
            }
            Ok(addrs)
        }
    }
}

/// Creates a non-blocking, close-on-exec server socket for `url`: bound and listening (with
/// the system's backlog) for TCP and Unix, bound for UDP.
///
/// TCP and UDP sockets set `SO_REUSEADDR`, and the first resolved address that binds wins
/// (a host name is resolved first, which blocks; see [`resolve`]). For
/// Unix, an existing socket file at the path is replaced only if it is stale: a file that is
/// not a socket is never removed, and a socket a live server still accepts on is left alone.
/// (A server that appears between that check and the bind loses its path; that race is
/// inherent in Unix socket paths.)
///
/// # Errors
/// - [`resolve`]'s errors;
/// - `AlreadyExists` when the Unix path is a file, directory or anything but a socket;
/// - `AddrInUse` when the address is taken, or a live server owns the Unix path;
/// - `bind`'s errors (`EACCES`, `AddrNotAvailable`) and `socket`'s (`EMFILE`) for the last
///   address tried.
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// let url = fio_sys::Url::parse("tcp://127.0.0.1:0")?;
/// let server = fio_sys::server_socket(&url)?;
/// let bound = fio_sys::local_addr(server.as_fd())?;
/// assert_ne!(bound.as_inet().map(|a| a.port()), Some(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn server_socket(url: &Url) -> io::Result<OwnedFd> {
    if let Endpoint::Unix(path) = url.endpoint() {
        remove_stale_unix_socket(path)?;
        let fd = socket(crate::Domain::Unix, SockType::Stream, true)?;
        bind(fd.as_fd(), &SockAddr::unix(path))?;
        listen(fd.as_fd(), None)?;
        return Ok(fd);
    }
    let kind = sock_type(url);
    first_success(resolve(url)?, |addr| {
        let fd = socket(addr.domain(), kind, true)?;
        set_reuse_addr(fd.as_fd(), true)?;
        bind(fd.as_fd(), addr)?;
        if kind == SockType::Stream {
            listen(fd.as_fd(), None)?;
        }
        Ok(fd)
    })
}

/// Creates a non-blocking, close-on-exec client socket for `url` and starts connecting it.
///
/// The resolved addresses (a host name blocks while it resolves; see [`resolve`]) are tried
/// in order until one connects or reports
/// [`ConnectStatus::InProgress`]; on `InProgress`, wait for the socket to become writable
/// (for example with [`poll`](crate::poll) and [`PollFlags::OUT`](crate::PollFlags::OUT)),
/// then read [`take_error`](crate::take_error). A UDP socket is "connected" at once: it just
/// has a default destination.
///
/// # Errors
/// - [`resolve`]'s errors;
/// - the last address's `connect` error: `ConnectionRefused` (for Unix, nobody listens),
///   `ENOENT` (no Unix socket there), `WouldBlock` (a Unix listener's backlog is full),
///   `ENETUNREACH`;
/// - `socket`'s errors (`EMFILE`).
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// let server = fio_sys::server_socket(&fio_sys::Url::parse("tcp://127.0.0.1:0")?)?;
/// let bound = fio_sys::local_addr(server.as_fd())?;
/// let url = fio_sys::Url::parse(&format!("tcp://{bound}"))?;
/// let (client, status) = fio_sys::client_socket(&url)?;
/// if status == fio_sys::ConnectStatus::InProgress {
///     let ready = fio_sys::poll(client.as_fd(), fio_sys::PollFlags::OUT, Some(std::time::Duration::from_secs(10)))?;
///     assert!(ready.contains(fio_sys::PollFlags::OUT));
///     assert!(fio_sys::take_error(client.as_fd())?.is_none());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn client_socket(url: &Url) -> io::Result<(OwnedFd, ConnectStatus)> {
    let kind = sock_type(url);
    first_success(resolve(url)?, |addr| {
        let fd = socket(addr.domain(), kind, true)?;
        let status = connect(fd.as_fd(), addr)?;
        Ok((fd, status))
    })
}

fn sock_type(url: &Url) -> SockType {
    match url.transport() {
        Transport::Tcp | Transport::Unix => SockType::Stream,
        Transport::Udp => SockType::Datagram,
    }
}

/// Tries `attempt` on each address in order, returning the first success or the last error.
fn first_success<T>(
    addrs: Vec<SockAddr>,
    mut attempt: impl FnMut(&SockAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last_error = None;
    for addr in &addrs {
        match attempt(addr) {
            Ok(value) => return Ok(value),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}

/// Removes a Unix socket file left behind by a server that is gone, and refuses anything else.
fn remove_stale_unix_socket(path: &Path) -> io::Result<()> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ),
        ));
    }
    // A live server accepts (or queues) a connection; only a stale file refuses it.
    let probe = socket(crate::Domain::Unix, SockType::Stream, true)?;
    match connect(probe.as_fd(), &SockAddr::unix(path)) {
        Ok(_) => Err(live_server(path)),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Err(live_server(path)),
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
            match fs::remove_file(path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            }
        }
        Err(error) => Err(error),
    }
}

fn live_server(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("a server is listening on {}", path.display()),
    )
}
