//! Bad input on real sockets: garbage, a truncated handshake, an oversized record, a client
//! that stops in the middle of the handshake (while a finished one stays), a wrong server
//! name. Each gets the alert TLS
//! calls for (where it calls for one), only that connection closes, and the server keeps
//! serving: a rustls client is echoed after each.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use fio_tls::TlsBuilder;
use fio_tls::rustls;
use util::*;

/// The TLS record type of an alert.
const ALERT: u8 = 0x15;

/// Reads until the server closes (or [`IO_TIMEOUT`]); returns the bytes and how long it took.
fn until_closed(stream: &mut std::net::TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(count) => out.extend_from_slice(&buf[..count]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(error) => panic!("the server did not close: {error} after {out:?}"),
        }
    }
    (out, started.elapsed())
}

/// A real ClientHello for `localhost`.
fn client_hello() -> Vec<u8> {
    let mut conn = rustls::ClientConnection::new(
        rustls_client_config(),
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

/// The server still echoes for a well-behaved client.
fn still_serves(addr: SocketAddr) {
    let mut stream = rustls_client(addr, "localhost");
    stream.write_all(b"still there?").unwrap();
    let mut echoed = [0u8; 12];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"still there?");
}

/// Runs `client` against an echo server with a 1-second handshake timeout.
fn with_server<T: Send + 'static>(client: impl FnOnce(SocketAddr) -> T + Send + 'static) -> T {
    let tls = TlsBuilder::new()
        .cert_add(Some("localhost"), identity())
        .handshake_timeout(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    serve(tls, client)
}

#[test]
fn garbage_gets_an_alert_and_a_close() {
    let reply = with_server(|addr| {
        let mut stream = tcp(addr);
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let (reply, _) = until_closed(&mut stream);
        still_serves(addr);
        reply
    });
    assert_eq!(reply.first(), Some(&ALERT), "{reply:?}");
}

#[test]
fn an_oversized_record_gets_an_alert_and_a_close() {
    let reply = with_server(|addr| {
        let mut stream = tcp(addr);
        let mut record = vec![0x16, 0x03, 0x03, 0xff, 0xff];
        record.extend_from_slice(&[0x41; 1024]);
        stream.write_all(&record).unwrap();
        let (reply, _) = until_closed(&mut stream);
        still_serves(addr);
        reply
    });
    assert_eq!(reply.first(), Some(&ALERT), "{reply:?}");
}

#[test]
fn a_truncated_handshake_closes_that_connection() {
    let reply = with_server(|addr| {
        let mut stream = tcp(addr);
        let hello = client_hello();
        stream.write_all(&hello[..hello.len() / 2]).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let (reply, _) = until_closed(&mut stream);
        still_serves(addr);
        reply
    });
    assert!(
        reply.is_empty() || reply[0] == ALERT,
        "nothing but an alert: {reply:?}"
    );
}

#[test]
fn a_client_that_stops_mid_handshake_is_timed_out() {
    let waited = with_server(|addr| {
        let mut stream = tcp(addr);
        let hello = client_hello();
        stream.write_all(&hello[..20]).unwrap();
        // ...and nothing more: the 1-second handshake timeout closes it.
        let (_, waited) = until_closed(&mut stream);
        // A silent client too.
        let mut silent = tcp(addr);
        let (_, silent_waited) = until_closed(&mut silent);
        still_serves(addr);
        (waited, silent_waited)
    });
    for waited in [waited.0, waited.1] {
        assert!(
            waited >= Duration::from_millis(500) && waited < Duration::from_secs(10),
            "closed after {waited:?}"
        );
    }
}

#[test]
fn a_finished_handshake_outlives_its_deadline_and_later_ones_still_time_out() {
    let waited = with_server(|addr| {
        let mut finished = rustls_client(addr, "localhost");
        finished.write_all(b"early").unwrap();
        let mut echoed = [0u8; 5];
        finished.read_exact(&mut echoed).unwrap();
        // A stalled handshake started after it: its deadline passes after the first one's
        // would have.
        let mut stalled = tcp(addr);
        stalled.write_all(&client_hello()[..20]).unwrap();
        let (_, waited) = until_closed(&mut stalled);
        // The finished one's deadline is long past: it still talks.
        finished.write_all(b"later").unwrap();
        finished.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"later");
        waited
    });
    assert!(waited < Duration::from_secs(10), "closed after {waited:?}");
}

#[test]
fn a_wrong_server_name_is_refused_with_an_alert() {
    let (error, reply) = with_server(|addr| {
        let mut stream = rustls_client(addr, "wrong.example");
        let error = stream.write_all(b"hi").and_then(|()| {
            let mut buf = [0u8; 2];
            stream.read_exact(&mut buf)
        });
        // The raw view: the server's answer to a ClientHello for an unknown name.
        let mut raw = tcp(addr);
        let mut conn = rustls::ClientConnection::new(
            rustls_client_config(),
            rustls::pki_types::ServerName::try_from("wrong.example").unwrap(),
        )
        .unwrap();
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).unwrap();
        raw.write_all(&hello).unwrap();
        let (reply, _) = until_closed(&mut raw);
        still_serves(addr);
        (error.map_err(|error| error.to_string()), reply)
    });
    let error = error.unwrap_err();
    assert!(error.contains("alert"), "{error}");
    assert_eq!(reply.first(), Some(&ALERT), "{reply:?}");
}
