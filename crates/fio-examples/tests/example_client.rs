//! The `client` example, end to end: it connects through the reactor, sends an HTTP/1.0
//! request and hands back everything the server sent until it closed.

#[path = "../examples/client.rs"]
mod client;
mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;

use util::{reactor, start_bounded};

/// Runs the example's `fetch` of `tcp://{addr}` on a one-thread reactor until it answers.
fn fetch(addr: SocketAddr) -> client::Answer {
    let reactor = reactor(1);
    let stopper = reactor.clone();
    let answer = Arc::new(Mutex::new(None));
    let sink = answer.clone();
    client::fetch(&reactor, &format!("tcp://{addr}"), move |got| {
        *sink.lock().unwrap() = Some(got);
        stopper.stop();
    })
    .expect("connect");
    start_bounded(&reactor).expect("the reactor runs");
    answer.lock().unwrap().take().expect("an answer")
}

#[test]
fn fetches_an_http_answer() {
    // A one-shot blocking server: reads the request head, answers, closes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push(line);
        }
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap();
        head
    });

    let answer = fetch(addr);

    let head = server.join().expect("the server");
    assert_eq!(head[0], "GET / HTTP/1.0\r\n");
    assert_eq!(head[1], format!("Host: {addr}\r\n"));
    assert_eq!(head[2], "Connection: close\r\n");
    assert_eq!(
        answer.expect("no error"),
        b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    );
}

#[test]
fn a_keep_alive_answer_ends_at_its_content_length() {
    // The server answers and keeps the connection open: the client closes after the body.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while line != "\r\n" {
            line.clear();
            reader.read_line(&mut line).unwrap();
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
        // Wait for the client to close (a read of 0) instead of closing first.
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut rest).unwrap();
    });
    let answer = fetch(addr);
    server.join().expect("the server");
    assert!(answer.expect("no error").ends_with(b"\r\n\r\nok"));
}

#[test]
fn a_refused_connection_is_reported() {
    // Bind then drop: nothing listens on that port any more.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let reactor = reactor(1);
    let stopper = reactor.clone();
    let answer = Arc::new(Mutex::new(None));
    let sink = answer.clone();
    let connected = client::fetch(&reactor, &format!("tcp://{addr}"), move |got| {
        *sink.lock().unwrap() = Some(got);
        stopper.stop();
    });
    if connected.is_ok() {
        start_bounded(&reactor).expect("the reactor runs");
        let answer = answer.lock().unwrap().take().expect("an answer");
        assert!(answer.unwrap_err().contains("connecting failed"));
    }
}

#[test]
fn raw_output_is_the_body_alone() {
    let answer = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(client::body(answer), b"hello");
    // No end of head: nothing to cut.
    assert_eq!(client::body(b"hello"), b"hello");
    assert_eq!(client::body(b"HTTP/1.0 204 No Content\r\n\r\n"), b"");
}
