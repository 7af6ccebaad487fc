//! Socket addresses (IPv4, IPv6, Unix) and their C form, `sockaddr_storage` plus a length.
//!
//! [`SockAddr`] is the Rust value the rest of the workspace passes around; [`RawSockAddr`] is the
//! C buffer handed to `bind`, `connect`, `accept4`, `recvfrom` or an io_uring SQE. Converting
//! between them is the only place that reads or writes `sockaddr_*` structures.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::mem::{self, offset_of, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;

use crate::syscall::syscall;

/// The longest Unix socket path, in bytes: `sun_path` holds 108 bytes including the NUL.
pub const UNIX_PATH_MAX: usize = 107;

/// The size of `sun_path`, which also bounds abstract names (which need no NUL).
const SUN_PATH_LEN: usize = UNIX_PATH_MAX + 1;

/// Where `sun_path` starts inside `sockaddr_un`: a Unix address's length counts from here.
const SUN_PATH_OFFSET: usize = offset_of!(libc::sockaddr_un, sun_path);

/// An address family, as `socket(2)` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// IPv4 (`AF_INET`).
    Ipv4,
    /// IPv6 (`AF_INET6`).
    Ipv6,
    /// Unix domain sockets (`AF_UNIX`).
    Unix,
}

impl Domain {
    /// The `AF_*` constant.
    pub const fn as_raw(self) -> libc::c_int {
        match self {
            Self::Ipv4 => libc::AF_INET,
            Self::Ipv6 => libc::AF_INET6,
            Self::Unix => libc::AF_UNIX,
        }
    }
}

/// A socket address: IPv4 or IPv6 with a port, or one of the three kinds of Unix address.
///
/// It displays as `127.0.0.1:80`, `[::1]:80`, `/run/app.sock`, `@abstract-name` (bytes that are
/// not printable ASCII escaped) or `(unnamed)`.
///
/// # Examples
/// ```
/// use fio_sys::SockAddr;
/// let addr = SockAddr::from("[::1]:8080".parse::<std::net::SocketAddr>()?);
/// assert_eq!(addr.to_string(), "[::1]:8080");
/// assert_eq!(SockAddr::unix("/tmp/app.sock").to_string(), "/tmp/app.sock");
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SockAddr {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A Unix socket bound to a filesystem path.
    Unix(PathBuf),
    /// A Unix socket in Linux's abstract namespace; the name excludes the leading NUL.
    UnixAbstract(Vec<u8>),
    /// A Unix socket with no name: a client that never bound, or one end of a socketpair.
    UnixUnnamed,
}

impl SockAddr {
    /// A Unix address for a filesystem path.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self::Unix(path.into())
    }

    /// The family a socket needs to use this address.
    pub fn domain(&self) -> Domain {
        match self {
            Self::Inet(SocketAddr::V4(_)) => Domain::Ipv4,
            Self::Inet(SocketAddr::V6(_)) => Domain::Ipv6,
            Self::Unix(_) | Self::UnixAbstract(_) | Self::UnixUnnamed => Domain::Unix,
        }
    }

    /// The IP address and port, if this is an Internet address.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            Self::Inet(addr) => Some(*addr),
            _ => None,
        }
    }

    /// The filesystem path, if this is a Unix address bound to one.
    pub fn as_unix_path(&self) -> Option<&Path> {
        match self {
            Self::Unix(path) => Some(path),
            _ => None,
        }
    }

    /// Encodes the address as the kernel takes it.
    ///
    /// # Errors
    /// - `InvalidInput` when a Unix path is longer than [`UNIX_PATH_MAX`] bytes, contains a NUL
    ///   byte or is empty, or an abstract name is longer than 108 bytes.
    pub fn to_raw(&self) -> io::Result<RawSockAddr> {
        match self {
            Self::Inet(SocketAddr::V4(addr)) => Ok(encode_v4(addr)),
            Self::Inet(SocketAddr::V6(addr)) => Ok(encode_v6(addr)),
            Self::Unix(path) => encode_unix_path(path),
            Self::UnixAbstract(name) => encode_unix_abstract(name),
            Self::UnixUnnamed => Ok(encode_unix_unnamed()),
        }
    }
}

impl From<SocketAddr> for SockAddr {
    fn from(addr: SocketAddr) -> Self {
        Self::Inet(addr)
    }
}

impl From<SocketAddrV4> for SockAddr {
    fn from(addr: SocketAddrV4) -> Self {
        Self::Inet(addr.into())
    }
}

impl From<SocketAddrV6> for SockAddr {
    fn from(addr: SocketAddrV6) -> Self {
        Self::Inet(addr.into())
    }
}

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet(addr) => addr.fmt(f),
            Self::Unix(path) => path.display().fmt(f),
            Self::UnixAbstract(name) => {
                f.write_str("@")?;
                name.escape_ascii().fmt(f)
            }
            Self::UnixUnnamed => f.write_str("(unnamed)"),
        }
    }
}

/// A socket address in C form: a `sockaddr_storage` and the length of the part in use.
///
/// Pass [`RawSockAddr::as_ptr`] and [`RawSockAddr::len`] to calls that read an address, and
/// [`RawSockAddr::as_mut_ptr`] and [`RawSockAddr::len_mut`] (starting from
/// [`RawSockAddr::empty`]) to calls that write one, then decode with
/// [`RawSockAddr::to_sock_addr`].
#[derive(Clone, Copy)]
pub struct RawSockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawSockAddr {
    /// A zeroed buffer whose length is the whole storage, ready for the kernel to fill.
    pub fn empty() -> Self {
        Self {
            storage: zeroed_storage(),
            len: socklen(size_of::<libc::sockaddr_storage>()),
        }
    }

    /// A pointer to the address, for calls that read it.
    pub fn as_ptr(&self) -> *const libc::sockaddr {
        ptr::from_ref(&self.storage).cast()
    }

    /// A pointer to the storage, for calls that write an address into it.
    pub fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        ptr::from_mut(&mut self.storage).cast()
    }

    /// The length of the address in bytes.
    pub fn len(&self) -> libc::socklen_t {
        self.len
    }

    /// Whether the length is zero (the kernel wrote no address).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The length, for calls that take it by pointer and write back the address's size.
    pub fn len_mut(&mut self) -> &mut libc::socklen_t {
        &mut self.len
    }

    /// Both pointers an address-writing call needs (`accept4`, `getpeername`, `recvfrom`).
    ///
    /// They come from one exclusive borrow, so both stay valid together until `self` is next
    /// used, which taking them one call at a time would not guarantee.
    pub fn as_mut_parts(&mut self) -> (*mut libc::sockaddr, *mut libc::socklen_t) {
        (
            ptr::from_mut(&mut self.storage).cast(),
            ptr::from_mut(&mut self.len),
        )
    }

    /// The address family (`AF_*`) stored.
    pub fn family(&self) -> libc::sa_family_t {
        self.storage.ss_family
    }

    /// Decodes the address.
    ///
    /// # Errors
    /// - `InvalidData` when the family is not IPv4, IPv6 or Unix (`EAFNOSUPPORT` is the
    ///   cause), or the length is too short for the family or longer than the storage.
    pub fn to_sock_addr(&self) -> io::Result<SockAddr> {
        let len = usize::try_from(self.len).unwrap_or(usize::MAX);
        if len > size_of::<libc::sockaddr_storage>() {
            return Err(invalid_data("socket address longer than sockaddr_storage"));
        }
        match libc::c_int::from(self.storage.ss_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => Ok(self.decode_v4()),
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => Ok(self.decode_v6()),
            libc::AF_UNIX if len >= size_of::<libc::sa_family_t>() => Ok(self.decode_unix(len)),
            libc::AF_INET | libc::AF_INET6 | libc::AF_UNIX => {
                Err(invalid_data("socket address too short for its family"))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                io::Error::from_raw_os_error(libc::EAFNOSUPPORT),
            )),
        }
    }

    fn decode_v4(&self) -> SockAddr {
        // SAFETY: the family is AF_INET and the kernel wrote at least a sockaddr_in; the storage
        // is aligned for any sockaddr type and lives for the read.
        let sin = unsafe { ptr::read(ptr::from_ref(&self.storage).cast::<libc::sockaddr_in>()) };
        let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
        SockAddr::from(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)))
    }

    fn decode_v6(&self) -> SockAddr {
        // SAFETY: the family is AF_INET6 and the kernel wrote at least a sockaddr_in6; the
        // storage is aligned for any sockaddr type and lives for the read.
        let sin6 = unsafe { ptr::read(ptr::from_ref(&self.storage).cast::<libc::sockaddr_in6>()) };
        SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::from(sin6.sin6_addr.s6_addr),
            u16::from_be(sin6.sin6_port),
            sin6.sin6_flowinfo,
            sin6.sin6_scope_id,
        ))
    }

    fn decode_unix(&self, len: usize) -> SockAddr {
        // SAFETY: the family is AF_UNIX, sockaddr_un fits inside sockaddr_storage, and the
        // storage is aligned for any sockaddr type and lives for the read.
        let sun = unsafe { ptr::read(ptr::from_ref(&self.storage).cast::<libc::sockaddr_un>()) };
        let path_len = len.saturating_sub(SUN_PATH_OFFSET).min(SUN_PATH_LEN);
        let bytes: Vec<u8> = sun.sun_path[..path_len]
            .iter()
            .map(|&c| c.to_ne_bytes()[0])
            .collect();
        match bytes.split_first() {
            None => SockAddr::UnixUnnamed,
            Some((0, name)) => SockAddr::UnixAbstract(name.to_vec()),
            Some(_) => {
                // A pathname may or may not carry its NUL inside the length; stop at the first.
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                SockAddr::Unix(PathBuf::from(OsStr::from_bytes(&bytes[..end])))
            }
        }
    }
}

impl fmt::Debug for RawSockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("RawSockAddr");
        debug.field("family", &self.storage.ss_family);
        debug.field("len", &self.len);
        if let Ok(addr) = self.to_sock_addr() {
            debug.field("addr", &format_args!("{addr}"));
        }
        debug.finish()
    }
}

/// Returns the address of the peer a socket is connected to (`getpeername(2)`).
///
/// # Errors
/// - `NotConnected` (`ENOTCONN`) when the socket has no peer;
/// - `ENOTSOCK` or `EBADF` when `fd` is not a socket;
/// - `InvalidData` when the peer's family is not IPv4, IPv6 or Unix.
///
/// # Examples
/// ```
/// use std::net::{TcpListener, TcpStream};
/// use std::os::fd::AsFd;
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let stream = TcpStream::connect(listener.local_addr()?)?;
/// let peer = fio_sys::peer_addr(stream.as_fd())?;
/// assert_eq!(peer.as_inet(), Some(listener.local_addr()?));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn peer_addr(fd: BorrowedFd<'_>) -> io::Result<SockAddr> {
    let mut raw = RawSockAddr::empty();
    let (addr, len) = raw.as_mut_parts();
    // SAFETY: `addr` and `len` point into `raw`, which outlives the call; `len` holds the
    // storage's size, so the kernel writes no more than that.
    unsafe { syscall!(getpeername(fd.as_raw_fd(), addr, len)) }?;
    raw.to_sock_addr()
}

/// Returns the address a socket is bound to (`getsockname(2)`), such as the port the kernel
/// chose for a bind to port 0.
///
/// # Errors
/// - `ENOTSOCK` or `EBADF` when `fd` is not a socket;
/// - `InvalidData` when the family is not IPv4, IPv6 or Unix.
///
/// # Examples
/// ```
/// use std::os::fd::AsFd;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let local = fio_sys::local_addr(listener.as_fd())?;
/// assert_eq!(local.as_inet(), Some(listener.local_addr()?));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SockAddr> {
    let mut raw = RawSockAddr::empty();
    let (addr, len) = raw.as_mut_parts();
    // SAFETY: as in `peer_addr`: both pointers point into `raw`, which outlives the call.
    unsafe { syscall!(getsockname(fd.as_raw_fd(), addr, len)) }?;
    raw.to_sock_addr()
}

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain integers and arrays, for which all zero bytes is a
    // valid value (it is how C code initialises it).
    unsafe { mem::zeroed() }
}

fn socklen(len: usize) -> libc::socklen_t {
    // Every length here is at most size_of::<sockaddr_storage>() (128), so it always fits.
    libc::socklen_t::try_from(len).unwrap_or(libc::socklen_t::MAX)
}

fn family(domain: Domain) -> libc::sa_family_t {
    // AF_INET, AF_INET6 and AF_UNIX are 2, 10 and 1: they fit sa_family_t.
    libc::sa_family_t::try_from(domain.as_raw()).unwrap_or(libc::sa_family_t::MAX)
}

/// Copies a fully built `sockaddr_*` into a storage buffer.
fn raw_from<T: Copy>(addr: T, len: usize) -> RawSockAddr {
    const { assert!(size_of::<T>() <= size_of::<libc::sockaddr_storage>()) };
    let mut raw = RawSockAddr {
        storage: zeroed_storage(),
        len: socklen(len),
    };
    // SAFETY: T is one of the sockaddr_* types, no larger than sockaddr_storage (checked at
    // compile time above) and no more aligned, so it fits at the start of the storage.
    unsafe { ptr::write(raw.as_mut_ptr().cast::<T>(), addr) };
    raw
}

fn encode_v4(addr: &SocketAddrV4) -> RawSockAddr {
    let sin = libc::sockaddr_in {
        sin_family: family(Domain::Ipv4),
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    raw_from(sin, size_of::<libc::sockaddr_in>())
}

fn encode_v6(addr: &SocketAddrV6) -> RawSockAddr {
    let sin6 = libc::sockaddr_in6 {
        sin6_family: family(Domain::Ipv6),
        sin6_port: addr.port().to_be(),
        sin6_flowinfo: addr.flowinfo(),
        sin6_addr: libc::in6_addr {
            s6_addr: addr.ip().octets(),
        },
        sin6_scope_id: addr.scope_id(),
    };
    raw_from(sin6, size_of::<libc::sockaddr_in6>())
}

fn unix_base(name: &[u8]) -> libc::sockaddr_un {
    let mut sun_path = [0 as libc::c_char; SUN_PATH_LEN];
    for (slot, &byte) in sun_path.iter_mut().zip(name) {
        *slot = libc::c_char::from_ne_bytes([byte]);
    }
    libc::sockaddr_un {
        sun_family: family(Domain::Unix),
        sun_path,
    }
}

fn encode_unix_path(path: &Path) -> io::Result<RawSockAddr> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(invalid_input("empty Unix socket path"));
    }
    if bytes.contains(&0) {
        return Err(invalid_input("Unix socket path contains a NUL byte"));
    }
    if bytes.len() > UNIX_PATH_MAX {
        return Err(invalid_input(
            "Unix socket path longer than 107 bytes (sun_path holds 108 with the NUL)",
        ));
    }
    let sun = unix_base(bytes);
    Ok(raw_from(sun, SUN_PATH_OFFSET + bytes.len() + 1))
}

fn encode_unix_abstract(name: &[u8]) -> io::Result<RawSockAddr> {
    if name.len() >= SUN_PATH_LEN {
        return Err(invalid_input(
            "abstract Unix socket name longer than 107 bytes",
        ));
    }
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.push(0);
    bytes.extend_from_slice(name);
    let sun = unix_base(&bytes);
    Ok(raw_from(sun, SUN_PATH_OFFSET + bytes.len()))
}

fn encode_unix_unnamed() -> RawSockAddr {
    let sun = unix_base(&[]);
    raw_from(sun, size_of::<libc::sa_family_t>())
}

fn invalid_input(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn invalid_data(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(addr: SockAddr) {
        let raw = addr.to_raw().unwrap();
        assert_eq!(raw.to_sock_addr().unwrap(), addr, "{raw:?}");
    }

    #[test]
    fn encodes_and_decodes_every_kind() {
        round_trip(SockAddr::from(
            "127.0.0.1:80".parse::<SocketAddr>().unwrap(),
        ));
        round_trip(SockAddr::from("[::1]:443".parse::<SocketAddr>().unwrap()));
        round_trip(SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::LOCALHOST,
            9,
            0,
            3,
        )));
        round_trip(SockAddr::unix("/tmp/fio.sock"));
        round_trip(SockAddr::unix(format!(
            "/{}",
            "a".repeat(UNIX_PATH_MAX - 1)
        )));
        round_trip(SockAddr::UnixAbstract(b"fio\0test".to_vec()));
        round_trip(SockAddr::UnixAbstract(Vec::new()));
        round_trip(SockAddr::UnixUnnamed);
    }

    #[test]
    fn ports_are_big_endian_on_the_wire() {
        let raw = SockAddr::from("127.0.0.1:258".parse::<SocketAddr>().unwrap())
            .to_raw()
            .unwrap();
        assert_eq!(raw.len() as usize, size_of::<libc::sockaddr_in>());
        assert_eq!(libc::c_int::from(raw.family()), libc::AF_INET);
        // SAFETY: the storage holds a sockaddr_in written by encode_v4.
        let sin = unsafe { ptr::read(raw.as_ptr().cast::<libc::sockaddr_in>()) };
        assert_eq!(sin.sin_port.to_ne_bytes(), [1, 2]);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [127, 0, 0, 1]);
    }

    #[test]
    fn rejects_unencodable_unix_paths() {
        let long = SockAddr::unix(format!("/{}", "a".repeat(UNIX_PATH_MAX)));
        assert_eq!(
            long.to_raw().unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let nul = SockAddr::unix("/tmp/a\0b");
        assert_eq!(
            nul.to_raw().unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(SockAddr::unix("").to_raw().is_err());
        assert!(
            SockAddr::UnixAbstract(vec![b'x'; SUN_PATH_LEN])
                .to_raw()
                .is_err()
        );
    }

    #[test]
    fn rejects_unknown_families_and_short_lengths() {
        let mut raw = RawSockAddr::empty();
        raw.storage.ss_family = libc::AF_PACKET as libc::sa_family_t;
        assert_eq!(
            raw.to_sock_addr().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mut short = SockAddr::from("[::1]:1".parse::<SocketAddr>().unwrap())
            .to_raw()
            .unwrap();
        *short.len_mut() = 8;
        assert!(short.to_sock_addr().is_err());
        *short.len_mut() = 4096;
        assert!(short.to_sock_addr().is_err());
    }

    #[test]
    fn displays_every_kind() {
        assert_eq!(
            SockAddr::UnixAbstract(b"a\x01".to_vec()).to_string(),
            "@a\\x01"
        );
        assert_eq!(SockAddr::UnixUnnamed.to_string(), "(unnamed)");
        assert_eq!(
            SockAddr::from("[::1]:1".parse::<SocketAddr>().unwrap()).to_string(),
            "[::1]:1"
        );
    }
}
