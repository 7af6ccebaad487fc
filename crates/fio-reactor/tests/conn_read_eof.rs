//! `read` tells "nothing buffered now" (`Ok(0)`) from the peer's end of stream
//! (`Err(Error::Eof)`), with and without a read/write hook.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Mutex};
use std::thread;

use fio_reactor::{Error, Protocol, RwHook, Uuid};
use util::{client, listen_local, reactor, start_bounded};

/// What one `read` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Bytes(Vec<u8>),
    Empty,
    Eof,
    Other(String),
}

type Log = Arc<Mutex<Vec<Outcome>>>;

/// Reads until `Ok(0)` or an error, logging every answer; answers `ok` once it has `hello`.
struct Recorder {
    log: Log,
    answered: bool,
}

impl Protocol for Recorder {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        for _ in 0..64 {
            let outcome = match fio_reactor::read(uuid, &mut buf) {
                Ok(0) => Outcome::Empty,
                Ok(count) => Outcome::Bytes(buf[..count].to_vec()),
                Err(Error::Eof(of)) if of == uuid => Outcome::Eof,
                Err(other) => Outcome::Other(other.to_string()),
            };
            let done = !matches!(outcome, Outcome::Bytes(_));
            self.log.lock().unwrap().push(outcome);
            if done {
                break;
            }
        }
        let received: Vec<u8> = received(&self.log.lock().unwrap());
        if !self.answered && received == b"hello" {
            self.answered = true;
            fio_reactor::write(uuid, b"ok").unwrap();
        }
    }

    fn on_close(&mut self, _uuid: Uuid) {
        fio_reactor::stop();
    }
}

/// Passes bytes through, so `read` goes through a hook's `read`.
struct PassThrough;
impl RwHook for PassThrough {}

/// Every byte the log says was read, in order.
fn received(log: &[Outcome]) -> Vec<u8> {
    log.iter()
        .filter_map(|outcome| match outcome {
            Outcome::Bytes(bytes) => Some(bytes.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

fn run(hooked: bool) -> Vec<Outcome> {
    let reactor = reactor(1);
    let log: Log = Arc::default();
    let shared = Arc::clone(&log);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        if hooked {
            fio_reactor::rw_hook_set(uuid, PassThrough).unwrap();
        }
        let _ = fio_reactor::attach(
            uuid,
            Recorder {
                log: Arc::clone(&shared),
                answered: false,
            },
        );
    });
    let peer = thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(b"hello").unwrap();
        // The server has read everything and found the queue empty before it answers.
        let mut answer = [0u8; 2];
        stream.read_exact(&mut answer).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        (answer, rest)
    });
    start_bounded(&reactor).unwrap();
    let (answer, rest) = peer.join().unwrap();
    assert_eq!(&answer, b"ok");
    assert!(rest.is_empty(), "nothing after the answer: {rest:?}");
    log.lock().unwrap().clone()
}

fn check(log: &[Outcome]) {
    assert_eq!(received(log), b"hello", "{log:?}");
    let first_empty = log.iter().position(|outcome| *outcome == Outcome::Empty);
    let first_eof = log.iter().position(|outcome| *outcome == Outcome::Eof);
    let (Some(empty), Some(eof)) = (first_empty, first_eof) else {
        panic!("both an empty read and the end of stream were seen: {log:?}");
    };
    assert!(
        empty < eof,
        "`Ok(0)` came while the peer was still there: {log:?}"
    );
    assert_eq!(log.last(), Some(&Outcome::Eof), "{log:?}");
    assert!(
        !log.iter()
            .any(|outcome| matches!(outcome, Outcome::Other(_))),
        "{log:?}"
    );
}

#[test]
fn read_reports_nothing_buffered_and_end_of_stream_apart() {
    check(&run(false));
}

#[test]
fn read_through_a_hook_reports_end_of_stream_too() {
    check(&run(true));
}

#[test]
fn eof_is_an_unexpected_eof_io_error() {
    let error: std::io::Error = Error::Eof(Uuid::from_parts(3, 1)).into();
    assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
}
