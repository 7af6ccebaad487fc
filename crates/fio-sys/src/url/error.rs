//! [`UrlError`]: one variant per way a listen/connect URL can be wrong.

/// Why a URL did not parse. Every message quotes the offending part of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The input was empty.
    #[error(
        "empty URL (expected tcp://host:port, udp://host:port, tls://host:port or unix:///path)"
    )]
    Empty,
    /// The input holds a NUL byte, which no host, port or Unix path may contain.
    #[error("URL contains a NUL byte at offset {offset}")]
    ContainsNul {
        /// Byte offset of the first NUL.
        offset: usize,
    },
    /// The scheme before `://` is not `tcp`, `udp`, `tls` or `unix`.
    #[error("unknown scheme {scheme:?} (expected tcp, udp, tls or unix)")]
    UnknownScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// A known scheme is followed by `:` without `//` (`unix:/path`, `tcp:host:1`).
    #[error("scheme {scheme:?} must be followed by \"://\" (write {scheme}://...)")]
    MissingSlashes {
        /// The scheme as written.
        scheme: String,
    },
    /// Nothing follows the scheme (`tcp://`, `unix://`).
    #[error("{scheme}:// is followed by nothing (expected {expected})")]
    MissingAddress {
        /// The scheme, lower case.
        scheme: &'static str,
        /// What should follow it.
        expected: &'static str,
    },
    /// A host is not followed by `:port`.
    #[error("{authority:?} has no port (expected host:port)")]
    MissingPort {
        /// The `host[:]` text.
        authority: String,
    },
    /// The port is not a decimal number.
    #[error("port {port:?} is not a decimal number")]
    InvalidPort {
        /// The port as written.
        port: String,
    },
    /// The port is a number above 65535.
    #[error("port {port} is out of range (0..=65535)")]
    PortOutOfRange {
        /// The port as written.
        port: String,
    },
    /// An IPv6 address opens `[` but never closes it.
    #[error("{authority:?} opens an IPv6 bracket '[' without closing it")]
    UnclosedBracket {
        /// The text from `[` on.
        authority: String,
    },
    /// The text in brackets (or given as an address) is not an IPv6 address.
    #[error("{address:?} is not an IPv6 address")]
    InvalidIpv6 {
        /// The text inside the brackets.
        address: String,
    },
    /// Something other than `:port` follows `]`.
    #[error("unexpected {rest:?} after the IPv6 address (expected \":port\")")]
    TrailingAfterBracket {
        /// The text after `]`.
        rest: String,
    },
    /// An IPv6 address without brackets: its colons make the port ambiguous.
    #[error("{authority:?} looks like an IPv6 address without brackets (write [address]:port)")]
    UnbracketedIpv6 {
        /// The `host:port` text.
        authority: String,
    },
    /// Digits and dots that do not form an IPv4 address (`256.0.0.1`, `1.2.3`, `01.2.3.4`).
    #[error("{host:?} is not a valid IPv4 address")]
    InvalidIpv4 {
        /// The host as written.
        host: String,
    },
    /// The host holds a character other than letters, digits, `-`, `.` and `_`.
    #[error("host {host:?} contains {character:?}, which a host name may not contain")]
    InvalidHostCharacter {
        /// The host as written.
        host: String,
        /// The first offending character.
        character: char,
    },
    /// The host name is longer than 253 bytes.
    #[error("host name {host:?} is {len} bytes long; at most 253 are allowed")]
    HostTooLong {
        /// The host as written.
        host: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A path follows a `host:port`; only `unix://` takes a path.
    #[error("unexpected path {path:?} after {authority:?} (only unix:// URLs take a path)")]
    UnexpectedPath {
        /// The `host:port` text.
        authority: String,
        /// The text from the first `/` on.
        path: String,
    },
    /// A Unix socket path is not absolute.
    #[error("unix socket path {path:?} is not absolute (write unix:///absolute/path)")]
    RelativeUnixPath {
        /// The path as written.
        path: String,
    },
    /// A Unix socket path does not fit `sun_path`.
    #[error("unix socket path {path:?} is {len} bytes; at most 107 fit in sun_path with its NUL")]
    UnixPathTooLong {
        /// The path as written.
        path: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A path given to [`Url::unix`](super::Url::unix) is not UTF-8, so it could not be displayed and parsed back.
    #[error("unix socket path {path:?} is not valid UTF-8")]
    NonUtf8Path {
        /// The path, with invalid bytes replaced by U+FFFD.
        path: String,
    },
}
