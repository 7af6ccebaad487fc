//! Unit tests of the parser: every accepted form and every error variant.

use super::*;
use crate::addr::UNIX_PATH_MAX;

fn inet(url: &Url) -> (Transport, bool, String, u16) {
    let host = url.host().unwrap().to_string();
    (url.transport(), url.is_tls(), host, url.port().unwrap())
}

#[test]
fn parses_every_form() {
    let tcp = |host: &str, port| (Transport::Tcp, false, host.to_owned(), port);
    assert_eq!(
        inet(&Url::parse("tcp://localhost:80").unwrap()),
        tcp("localhost", 80)
    );
    assert_eq!(
        inet(&Url::parse("TCP://127.0.0.1:0").unwrap()),
        tcp("127.0.0.1", 0)
    );
    assert_eq!(
        inet(&Url::parse("tcp://[::1]:65535").unwrap()),
        tcp("[::1]", 65535)
    );
    assert_eq!(
        inet(&Url::parse("example.org:8080").unwrap()),
        tcp("example.org", 8080)
    );
    assert_eq!(
        inet(&Url::parse("[fe80::1]:1").unwrap()),
        tcp("[fe80::1]", 1)
    );
    assert_eq!(inet(&Url::parse(":3001").unwrap()), tcp("0.0.0.0", 3001));
    assert_eq!(
        inet(&Url::parse("tcp://:3001").unwrap()),
        tcp("0.0.0.0", 3001)
    );
    assert_eq!(inet(&Url::parse("8080").unwrap()), tcp("0.0.0.0", 8080));
    let tls = Url::parse("tls://h:443").unwrap();
    assert_eq!(inet(&tls), (Transport::Tcp, true, "h".to_owned(), 443));
    let udp = Url::parse("udp://10.0.0.1:53").unwrap();
    assert_eq!(
        inet(&udp),
        (Transport::Udp, false, "10.0.0.1".to_owned(), 53)
    );
    let unix = Url::parse("unix:///tmp/a b.sock").unwrap();
    assert_eq!(unix.transport(), Transport::Unix);
    assert_eq!(unix.unix_path(), Some(Path::new("/tmp/a b.sock")));
    assert_eq!(Url::parse("/tmp/x").unwrap().to_string(), "unix:///tmp/x");
}

#[test]
fn default_is_the_specs() {
    assert_eq!(Url::default(), Url::parse("tcp://0.0.0.0:3000").unwrap());
    assert_eq!(Url::default().port(), Some(DEFAULT_PORT));
}

#[test]
fn reports_each_problem() {
    let err = |input: &str| Url::parse(input).unwrap_err();
    assert_eq!(err(""), UrlError::Empty);
    assert_eq!(err("tcp://a\0:1"), UrlError::ContainsNul { offset: 7 });
    assert!(matches!(err("http://a:1"), UrlError::UnknownScheme { scheme } if scheme == "http"));
    assert!(matches!(
        err("unix:/tmp/x"),
        UrlError::MissingSlashes { .. }
    ));
    assert!(matches!(
        err("tcp://"),
        UrlError::MissingAddress { scheme: "tcp", .. }
    ));
    assert!(matches!(
        err("unix://"),
        UrlError::MissingAddress { scheme: "unix", .. }
    ));
    assert!(matches!(err("tcp://host"), UrlError::MissingPort { .. }));
    assert!(matches!(err("host:"), UrlError::MissingPort { .. }));
    assert!(matches!(err("[::1]"), UrlError::MissingPort { .. }));
    assert!(matches!(err("host:http"), UrlError::InvalidPort { port } if port == "http"));
    assert!(matches!(err("host:+80"), UrlError::InvalidPort { .. }));
    assert!(matches!(err("host:65536"), UrlError::PortOutOfRange { .. }));
    assert!(matches!(
        err("99999999999999999999"),
        UrlError::PortOutOfRange { .. }
    ));
    assert!(matches!(err("[::1:80"), UrlError::UnclosedBracket { .. }));
    assert!(matches!(err("[1.2.3.4]:80"), UrlError::InvalidIpv6 { .. }));
    assert!(matches!(err("[::1]x:80"), UrlError::TrailingAfterBracket { rest } if rest == "x:80"));
    assert!(matches!(err("::1:80"), UrlError::UnbracketedIpv6 { .. }));
    assert!(matches!(err("tcp:x:80"), UrlError::MissingSlashes { .. }));
    assert!(matches!(
        err("a:b:80"),
        UrlError::InvalidHostCharacter { character: ':', .. }
    ));
    assert!(matches!(err("256.1.1.1:80"), UrlError::InvalidIpv4 { .. }));
    assert!(matches!(
        err("ho st:80"),
        UrlError::InvalidHostCharacter { character: ' ', .. }
    ));
    assert!(matches!(
        err("user@h:80"),
        UrlError::InvalidHostCharacter { character: '@', .. }
    ));
    let long = format!("{}:1", "a".repeat(254));
    assert!(matches!(err(&long), UrlError::HostTooLong { len: 254, .. }));
    assert!(matches!(err("tcp://h:80/x"), UrlError::UnexpectedPath { path, .. } if path == "/x"));
    assert!(matches!(
        err("unix://rel.sock"),
        UrlError::RelativeUnixPath { .. }
    ));
    let too_long = format!("/{}", "p".repeat(UNIX_PATH_MAX));
    assert!(matches!(
        err(&too_long),
        UrlError::UnixPathTooLong { len: 108, .. }
    ));
    assert!(Url::parse(&too_long[..UNIX_PATH_MAX]).is_ok());
}

#[test]
fn messages_quote_the_offending_part() {
    let message = Url::parse("tcp://host:12x").unwrap_err().to_string();
    assert_eq!(message, "port \"12x\" is not a decimal number");
    let message = Url::parse("ftp://h:1").unwrap_err().to_string();
    assert!(message.contains("\"ftp\""), "{message}");
}

#[test]
fn constructors_validate() {
    assert_eq!(
        Url::tcp("::1", 80).unwrap(),
        Url::parse("tcp://[::1]:80").unwrap()
    );
    assert_eq!(
        Url::tcp("[::1]", 80).unwrap(),
        Url::parse("[::1]:80").unwrap()
    );
    assert_eq!(Url::tls("h", 1).unwrap().to_string(), "tls://h:1");
    assert_eq!(Url::udp("", 9).unwrap().to_string(), "udp://0.0.0.0:9");
    assert!(Url::tcp("bad host", 1).is_err());
    assert!(Url::unix("relative").is_err());
    assert_eq!(Url::unix("/a").unwrap().to_string(), "unix:///a");
    let non_utf8 = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/tmp/\xff");
    assert!(matches!(
        Url::unix(non_utf8),
        Err(UrlError::NonUtf8Path { .. })
    ));
    assert!(Url::parse("tcp:80").is_ok());
    assert!(Url::parse("/a://b").is_ok());
}

#[test]
fn display_round_trips() {
    for input in [
        "tcp://[::ffff:1.2.3.4]:1",
        "udp://a-b_c.d:2",
        "tls://[::]:3",
        "unix:///x",
    ] {
        let url = Url::parse(input).unwrap();
        assert_eq!(url.to_string(), input);
        assert_eq!(Url::parse(&url.to_string()).unwrap(), url);
    }
}
