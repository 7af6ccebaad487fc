//! The URL grammar: scheme, then a Unix path or `host:port`, each part checked on its own so
//! that an error can name exactly what is wrong.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use super::{Endpoint, HOST_NAME_MAX, Host, Transport, Url, UrlError};
use crate::addr::UNIX_PATH_MAX;

pub(super) fn parse(input: &str) -> Result<Url, UrlError> {
    if input.is_empty() {
        return Err(UrlError::Empty);
    }
    if let Some(offset) = input.find('\0') {
        return Err(UrlError::ContainsNul { offset });
    }
    // A bare path comes first: a path may itself contain "://".
    if input.starts_with('/') {
        return parse_unix_path(input);
    }
    if let Some((scheme, rest)) = input.split_once("://") {
        return parse_with_scheme(scheme, rest);
    }
    // `tcp:80` is the host "tcp" and port 80; `tcp:host:80` or `unix:/path` lost their "//".
    if let Some((scheme, rest)) = input.split_once(':')
        && known_scheme(scheme).is_some()
        && !is_decimal(rest)
    {
        return Err(UrlError::MissingSlashes {
            scheme: scheme.to_owned(),
        });
    }
    if is_decimal(input) {
        let port = parse_port(input)?;
        return Ok(Url::inet(
            Transport::Tcp,
            false,
            Host::Ip(Ipv4Addr::UNSPECIFIED.into()),
            port,
        ));
    }
    parse_authority(input, Transport::Tcp, false)
}

/// Whether `text` is a non-empty run of ASCII digits (a port, perhaps out of range).
fn is_decimal(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// The transport and TLS mark of a scheme, matched without regard to case.
fn known_scheme(scheme: &str) -> Option<(Transport, bool)> {
    let known = [
        ("tcp", Transport::Tcp, false),
        ("tls", Transport::Tcp, true),
        ("udp", Transport::Udp, false),
        ("unix", Transport::Unix, false),
    ];
    known
        .into_iter()
        .find(|(name, _, _)| scheme.eq_ignore_ascii_case(name))
        .map(|(_, transport, tls)| (transport, tls))
}

fn parse_with_scheme(scheme: &str, rest: &str) -> Result<Url, UrlError> {
    let (transport, tls) = known_scheme(scheme).ok_or_else(|| UrlError::UnknownScheme {
        scheme: scheme.to_owned(),
    })?;
    if transport == Transport::Unix {
        if rest.is_empty() {
            return Err(UrlError::MissingAddress {
                scheme: "unix",
                expected: "an absolute path, as in unix:///run/app.sock",
            });
        }
        return parse_unix_path(rest);
    }
    if rest.is_empty() {
        return Err(UrlError::MissingAddress {
            scheme: if tls {
                "tls"
            } else if transport == Transport::Udp {
                "udp"
            } else {
                "tcp"
            },
            expected: "host:port",
        });
    }
    parse_authority(rest, transport, tls)
}

pub(super) fn parse_unix_path(path: &str) -> Result<Url, UrlError> {
    if !path.starts_with('/') {
        return Err(UrlError::RelativeUnixPath {
            path: path.to_owned(),
        });
    }
    if path.len() > UNIX_PATH_MAX {
        return Err(UrlError::UnixPathTooLong {
            path: path.to_owned(),
            len: path.len(),
        });
    }
    Ok(Url {
        transport: Transport::Unix,
        tls: false,
        endpoint: Endpoint::Unix(PathBuf::from(path)),
    })
}

/// Parses `host:port`, `[v6]:port` or `:port`, with nothing after the port.
fn parse_authority(text: &str, transport: Transport, tls: bool) -> Result<Url, UrlError> {
    if let Some(slash) = text.find('/') {
        return Err(UrlError::UnexpectedPath {
            authority: text[..slash].to_owned(),
            path: text[slash..].to_owned(),
        });
    }
    let (host, port) = if let Some(inside) = text.strip_prefix('[') {
        let (address, after) = inside
            .split_once(']')
            .ok_or_else(|| UrlError::UnclosedBracket {
                authority: text.to_owned(),
            })?;
        let host = parse_ipv6(address)?;
        let port = match after.strip_prefix(':') {
            Some(port) => port,
            None if after.is_empty() => {
                return Err(UrlError::MissingPort {
                    authority: text.to_owned(),
                });
            }
            None => {
                return Err(UrlError::TrailingAfterBracket {
                    rest: after.to_owned(),
                });
            }
        };
        (host, port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or_else(|| UrlError::MissingPort {
            authority: text.to_owned(),
        })?;
        if host.contains(':') {
            return Err(
                if host.parse::<Ipv6Addr>().is_ok() || text.parse::<Ipv6Addr>().is_ok() {
                    UrlError::UnbracketedIpv6 {
                        authority: text.to_owned(),
                    }
                } else {
                    UrlError::InvalidHostCharacter {
                        host: host.to_owned(),
                        character: ':',
                    }
                },
            );
        }
        (parse_host(host)?, port)
    };
    if port.is_empty() {
        return Err(UrlError::MissingPort {
            authority: text.to_owned(),
        });
    }
    Ok(Url::inet(transport, tls, host, parse_port(port)?))
}

fn parse_port(port: &str) -> Result<u16, UrlError> {
    if !is_decimal(port) {
        return Err(UrlError::InvalidPort {
            port: port.to_owned(),
        });
    }
    port.parse().map_err(|_| UrlError::PortOutOfRange {
        port: port.to_owned(),
    })
}

fn parse_ipv6(address: &str) -> Result<Host, UrlError> {
    address
        .parse::<Ipv6Addr>()
        .map(|ip| Host::Ip(ip.into()))
        .map_err(|_| UrlError::InvalidIpv6 {
            address: address.to_owned(),
        })
}

/// Parses an unbracketed host; an empty one means every IPv4 interface.
fn parse_host(host: &str) -> Result<Host, UrlError> {
    if host.is_empty() {
        return Ok(Host::Ip(Ipv4Addr::UNSPECIFIED.into()));
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(ip.into()));
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(UrlError::InvalidIpv4 {
            host: host.to_owned(),
        });
    }
    if let Some(character) = host
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(UrlError::InvalidHostCharacter {
            host: host.to_owned(),
            character,
        });
    }
    if host.len() > HOST_NAME_MAX {
        return Err(UrlError::HostTooLong {
            host: host.to_owned(),
            len: host.len(),
        });
    }
    Ok(Host::Name(host.to_owned()))
}

/// Parses a host given on its own (to a constructor), where an IPv6 address needs no brackets.
pub(super) fn parse_loose_host(host: &str) -> Result<Host, UrlError> {
    if let Some(inside) = host.strip_prefix('[') {
        let address = inside
            .strip_suffix(']')
            .ok_or_else(|| UrlError::UnclosedBracket {
                authority: host.to_owned(),
            })?;
        return parse_ipv6(address);
    }
    if host.contains(':') {
        return parse_ipv6(host);
    }
    parse_host(host)
}
