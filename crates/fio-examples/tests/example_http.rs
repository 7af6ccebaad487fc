//! The `http_hello` example, end to end as a client sees it: one response per request, with
//! keep-alive, pipelining, requests split across writes, and oversized heads refused.

#[path = "../examples/http_hello.rs"]
mod http_hello;
mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use fio_reactor::Reactor;

use http_hello::{HTTP_RESPONSE, MAX_HEAD, Requests};
use util::{reactor, read_to_end, serve};

/// wrk's request, as the load benchmark sends it.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// A one-thread reactor under the run's engine, serving hello on 127.0.0.1:0.
fn server() -> (Reactor, SocketAddr) {
    let reactor = reactor(1);
    let listener = http_hello::listen(&reactor, "tcp://127.0.0.1:0").expect("listen");
    let addr = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .expect("a TCP listener has an inet address");
    (reactor, addr)
}

/// Reads exactly `count` responses' worth of bytes.
fn responses(stream: &mut TcpStream, count: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; HTTP_RESPONSE.len() * count];
    stream.read_exact(&mut bytes).expect("the responses");
    bytes
}

/// Ends our side and returns whatever else the server sends before it closes.
fn the_rest(stream: &mut TcpStream) -> Vec<u8> {
    stream.shutdown(Shutdown::Write).expect("shutdown");
    read_to_end(stream)
}

#[test]
fn the_response_is_the_load_benchmarks() {
    assert_eq!(
        HTTP_RESPONSE,
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\nHello World!"
    );
}

#[test]
fn each_request_gets_one_response_with_keep_alive() {
    let (reactor, addr) = server();
    let (answers, rest) = serve(&reactor, addr, |mut stream| {
        let mut answers = Vec::new();
        for _ in 0..3 {
            stream.write_all(REQUEST).unwrap();
            answers.push(responses(&mut stream, 1));
        }
        (answers, the_rest(&mut stream))
    });
    for answer in answers {
        assert_eq!(answer, HTTP_RESPONSE);
    }
    assert!(
        rest.is_empty(),
        "nothing more than one response per request"
    );
}

#[test]
fn sixteen_pipelined_requests_get_sixteen_responses() {
    let (reactor, addr) = server();
    let (answers, rest) = serve(&reactor, addr, |mut stream| {
        stream.write_all(&REQUEST.repeat(16)).unwrap();
        (responses(&mut stream, 16), the_rest(&mut stream))
    });
    assert_eq!(answers, HTTP_RESPONSE.repeat(16));
    assert!(rest.is_empty(), "exactly sixteen responses");
}

#[test]
fn a_request_split_across_writes_is_answered_once() {
    let (reactor, addr) = server();
    let (answers, rest) = serve(&reactor, addr, |mut stream| {
        // Split inside the terminator, where a naive search would miss it.
        let (first, second) = REQUEST.split_at(REQUEST.len() - 3);
        stream.write_all(first).unwrap();
        stream.flush().unwrap();
        stream.write_all(second).unwrap();
        let mut answers = responses(&mut stream, 1);
        // Byte by byte, a whole request.
        for byte in REQUEST {
            stream.write_all(std::slice::from_ref(byte)).unwrap();
        }
        answers.extend(responses(&mut stream, 1));
        (answers, the_rest(&mut stream))
    });
    assert_eq!(answers, HTTP_RESPONSE.repeat(2));
    assert!(rest.is_empty(), "one response per request");
}

#[test]
fn an_oversized_request_head_closes_the_connection() {
    let (reactor, addr) = server();
    let (answer, rest) = serve(&reactor, addr, |mut stream| {
        stream.write_all(REQUEST).unwrap();
        let answer = responses(&mut stream, 1);
        let mut huge = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
        huge.resize(MAX_HEAD + 100, b'a');
        // The server may close (and reset) before reading all of it; either way it ends.
        let _ = stream.write_all(&huge);
        (answer, read_to_end(&mut stream))
    });
    assert_eq!(answer, HTTP_RESPONSE);
    assert!(rest.is_empty(), "no response to the oversized head");
}

#[test]
fn requests_are_counted_across_pieces() {
    let mut requests = Requests::default();
    assert_eq!(
        requests.feed(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n"),
        1
    );
    assert_eq!(requests.feed(b"\r"), 0);
    assert_eq!(requests.feed(b"\nGET"), 1);
    assert_eq!(requests.feed(b" / HTTP/1.1\r\r\n\r\n"), 1);
    assert!(!requests.too_large());

    let mut oversized = Requests::default();
    assert_eq!(oversized.feed(&[b'a'; MAX_HEAD]), 0);
    assert!(!oversized.too_large(), "exactly the limit is accepted");
    assert_eq!(oversized.feed(b"a\r\n\r\n"), 0);
    assert!(oversized.too_large());
}

/// Feeds `stream` in pieces of the sizes `cuts` gives, to one counter through `feed` and to
/// another through `feed_exact`; they must agree after every piece.
fn feed_both(stream: &[u8], mut cuts: impl FnMut() -> usize) {
    let (mut fast, mut exact) = (Requests::default(), Requests::default());
    let mut rest = stream;
    while !rest.is_empty() {
        let (piece, after) = rest.split_at(cuts().clamp(1, rest.len()));
        assert_eq!(
            fast.feed(piece),
            exact.feed_exact(piece),
            "feeding {piece:?}"
        );
        assert_eq!(fast, exact, "after {piece:?}");
        rest = after;
    }
}

#[test]
fn the_per_feed_limit_check_counts_as_the_per_request_one() {
    // A xorshift generator: the same cases every run, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Terminator chains and near misses in every alignment, then long heads around the limit.
    let alphabet = [b'\r', b'\n', b'G', b' '];
    for _ in 0..2000 {
        let len = usize::try_from(next() % 64).unwrap();
        let stream: Vec<u8> = (0..len)
            .map(|_| alphabet[usize::try_from(next() % 4).unwrap()])
            .collect();
        feed_both(&stream, || usize::try_from(next() % 12).unwrap());
    }
    for head in [
        MAX_HEAD - 10,
        MAX_HEAD - 3,
        MAX_HEAD - 2,
        MAX_HEAD - 1,
        MAX_HEAD,
    ] {
        for tail in [&b"\r\n\r\n"[..], b"\r\n\r\n\r\n", b"\r\n\r\nGET"] {
            let mut stream = b"GET / HTTP/1.1\r\n\r\n".to_vec();
            stream.extend(std::iter::repeat_n(b'a', head));
            stream.extend_from_slice(tail);
            stream.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            for piece in [1, 7, 64, 4096, 9000, stream.len()] {
                feed_both(&stream, || piece);
            }
        }
    }
}
