//! The listen/connect URL: `tcp://host:port`, `udp://host:port`, `tls://host:port`,
//! `unix:///path`, and the short forms facil.io users write.
//!
//! Accepted forms (the scheme is case-insensitive):
//!
//! | Input                              | Meaning                                      |
//! |------------------------------------|----------------------------------------------|
//! | `tcp://host:port`                  | TCP                                          |
//! | `tls://host:port`                  | TCP, marked as wanting TLS                   |
//! | `udp://host:port`                  | UDP                                          |
//! | `unix:///abs/path`, `/abs/path`    | Unix stream socket                           |
//! | `host:port`, `[v6]:port`           | TCP                                          |
//! | `:port`, `tcp://:port`, `port`     | TCP on `0.0.0.0` (every IPv4 interface)      |
//!
//! A host is an IPv4 address, an IPv6 address in brackets (`[::1]`, no zone id), or a name of
//! letters, digits, `-`, `.` and `_` (at most 253 bytes) that is resolved later. Port 0 is valid
//! (the kernel picks one when binding). The spec's default, `tcp://0.0.0.0:3000`, is
//! [`Url::default`]. Anything else is a [`UrlError`] that quotes the offending part.
//!
//! `Display` prints the canonical form (`tcp://0.0.0.0:3000`, `tcp://[::1]:80`,
//! `unix:///run/app.sock`), and parsing it gives back an equal [`Url`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

mod error;
mod parse;
#[cfg(test)]
mod tests;

pub use error::UrlError;

/// Port of [`Url::default`], the spec's default listening URL (`tcp://0.0.0.0:3000`).
pub const DEFAULT_PORT: u16 = 3000;

/// Longest host name, in bytes (RFC 1035's 253 characters, without the trailing dot).
const HOST_NAME_MAX: usize = 253;

/// Which kind of socket a [`Url`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP (also used by `tls://`).
    Tcp,
    /// UDP.
    Udp,
    /// A Unix stream socket.
    Unix,
}

/// The host part of a TCP or UDP URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A literal IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A name, resolved with `getaddrinfo` when the socket is made.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(IpAddr::V4(ip)) => ip.fmt(f),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// Where a [`Url`] points: a host and port, or a Unix socket path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A TCP or UDP host and port.
    Inet {
        /// The host: an address or a name.
        host: Host,
        /// The port; 0 lets the kernel choose when binding.
        port: u16,
    },
    /// An absolute Unix socket path, at most [`UNIX_PATH_MAX`](crate::UNIX_PATH_MAX) bytes, UTF-8, without NUL.
    Unix(PathBuf),
}

/// A parsed listen/connect URL (see the module documentation for the accepted forms).
///
/// Its fields are private so that every `Url` is valid and displays to a string that parses
/// back to it; build one with [`Url::parse`], `str::parse`, or the constructors.
///
/// # Examples
/// ```
/// use fio_sys::{Transport, Url};
/// let url: Url = "tls://example.com:443".parse()?;
/// assert_eq!((url.transport(), url.is_tls(), url.port()), (Transport::Tcp, true, Some(443)));
/// assert_eq!(Url::parse("[::1]:80")?.to_string(), "tcp://[::1]:80");
/// assert_eq!(Url::parse("/run/app.sock")?.unix_path(), Some(std::path::Path::new("/run/app.sock")));
/// assert_eq!(Url::default().to_string(), "tcp://0.0.0.0:3000");
/// # Ok::<(), fio_sys::UrlError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    transport: Transport,
    tls: bool,
    endpoint: Endpoint,
}

impl Url {
    /// Parses a URL.
    ///
    /// # Errors
    /// One [`UrlError`] variant per problem: empty input, a NUL byte, an unknown scheme, a
    /// missing host or port, a bad port, bad IPv6 brackets, a bad host, a path after a
    /// `host:port`, or a Unix path that is relative or too long.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        parse::parse(input)
    }

    /// Parses a URL if one is given, or returns [`Url::default`] (`tcp://0.0.0.0:3000`), as
    /// `fio_listen` does with a `NULL` URL.
    ///
    /// # Errors
    /// As [`Url::parse`]; an empty string is [`UrlError::Empty`], not the default.
    ///
    /// # Examples
    /// ```
    /// use fio_sys::Url;
    /// assert_eq!(Url::parse_or_default(None)?, Url::default());
    /// assert_eq!(Url::parse_or_default(Some("udp://:53"))?.to_string(), "udp://0.0.0.0:53");
    /// # Ok::<(), fio_sys::UrlError>(())
    /// ```
    pub fn parse_or_default(input: Option<&str>) -> Result<Self, UrlError> {
        input.map_or_else(|| Ok(Self::default()), parse::parse)
    }

    /// A TCP URL. `host` is an IPv4 address, an IPv6 address (bracketed or not) or a name.
    ///
    /// # Errors
    /// - the host errors of [`Url::parse`] ([`UrlError::InvalidHostCharacter`],
    ///   [`UrlError::HostTooLong`], [`UrlError::InvalidIpv4`], [`UrlError::InvalidIpv6`]).
    pub fn tcp(host: &str, port: u16) -> Result<Self, UrlError> {
        Ok(Self::inet(
            Transport::Tcp,
            false,
            parse::parse_loose_host(host)?,
            port,
        ))
    }

    /// A TCP URL marked as wanting TLS (`tls://`).
    ///
    /// # Errors
    /// As [`Url::tcp`].
    pub fn tls(host: &str, port: u16) -> Result<Self, UrlError> {
        Ok(Self::inet(
            Transport::Tcp,
            true,
            parse::parse_loose_host(host)?,
            port,
        ))
    }

    /// A UDP URL.
    ///
    /// # Errors
    /// As [`Url::tcp`].
    pub fn udp(host: &str, port: u16) -> Result<Self, UrlError> {
        Ok(Self::inet(
            Transport::Udp,
            false,
            parse::parse_loose_host(host)?,
            port,
        ))
    }

    /// A Unix socket URL.
    ///
    /// # Errors
    /// - [`UrlError::NonUtf8Path`], [`UrlError::RelativeUnixPath`],
    ///   [`UrlError::UnixPathTooLong`], [`UrlError::ContainsNul`].
    pub fn unix(path: impl AsRef<Path>) -> Result<Self, UrlError> {
        let path = path.as_ref();
        let text = path.to_str().ok_or_else(|| UrlError::NonUtf8Path {
            path: path.to_string_lossy().into_owned(),
        })?;
        if let Some(offset) = text.find('\0') {
            return Err(UrlError::ContainsNul { offset });
        }
        parse::parse_unix_path(text)
    }

    fn inet(transport: Transport, tls: bool, host: Host, port: u16) -> Self {
        Self {
            transport,
            tls,
            endpoint: Endpoint::Inet { host, port },
        }
    }

    /// TCP, UDP or Unix.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Whether the URL asked for TLS (`tls://`); the socket itself is plain TCP.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host and port, or the Unix path.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The host of a TCP or UDP URL.
    pub fn host(&self) -> Option<&Host> {
        match &self.endpoint {
            Endpoint::Inet { host, .. } => Some(host),
            Endpoint::Unix(_) => None,
        }
    }

    /// The port of a TCP or UDP URL.
    pub fn port(&self) -> Option<u16> {
        match self.endpoint {
            Endpoint::Inet { port, .. } => Some(port),
            Endpoint::Unix(_) => None,
        }
    }

    /// The path of a Unix URL.
    pub fn unix_path(&self) -> Option<&Path> {
        match &self.endpoint {
            Endpoint::Unix(path) => Some(path),
            Endpoint::Inet { .. } => None,
        }
    }

    fn scheme(&self) -> &'static str {
        match (self.transport, self.tls) {
            (Transport::Tcp, true) => "tls",
            (Transport::Tcp, false) => "tcp",
            (Transport::Udp, _) => "udp",
            (Transport::Unix, _) => "unix",
        }
    }
}

impl Default for Url {
    /// `tcp://0.0.0.0:3000`, the spec's default for `fio_listen` without a URL.
    fn default() -> Self {
        Self::inet(
            Transport::Tcp,
            false,
            Host::Ip(Ipv4Addr::UNSPECIFIED.into()),
            DEFAULT_PORT,
        )
    }
}

impl FromStr for Url {
    type Err = UrlError;

    fn from_str(input: &str) -> Result<Self, UrlError> {
        parse::parse(input)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Endpoint::Inet { host, port } => write!(f, "{}://{host}:{port}", self.scheme()),
            // Unix paths are UTF-8 by construction, so `display` is lossless here.
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}
