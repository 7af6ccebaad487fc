//! The `chat` example, end to end: a line goes to every other client (not back to its
//! sender), `/quit` says goodbye and closes, and the room forgets who left.

#[path = "../examples/chat.rs"]
mod chat;
mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use util::{reactor, start_bounded};

const WELCOME: &str = "Welcome to the chat. Lines go to everyone else; /quit leaves.\n";

/// Reads one `\n`-terminated line.
fn line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a line");
    line
}

/// A connected client past the welcome, with its address as the room names it.
fn join(addr: std::net::SocketAddr) -> (BufReader<TcpStream>, TcpStream, String) {
    let stream = util::client(addr);
    let name = stream.local_addr().unwrap().to_string();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    assert_eq!(line(&mut reader), WELCOME);
    (reader, stream, name)
}

/// Stops the reactor when dropped, also by a panic.
struct StopOnDrop(fio_reactor::Reactor);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[test]
fn lines_go_to_everyone_else_and_quit_closes() {
    // Two threads: peers may live on different reactor threads.
    let reactor = reactor(2);
    let (listener, room) = chat::listen(&reactor, "tcp://127.0.0.1:0").expect("listen");
    let addr = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .expect("an inet address");
    let stopper = StopOnDrop(reactor.clone());
    let watched = room.clone();
    let clients = thread::spawn(move || {
        // A failed assertion here still stops the reactor, so the test fails at once.
        let _stopper = stopper;
        let (mut reader_a, mut a, name_a) = join(addr);
        let (mut reader_b, mut b, name_b) = join(addr);
        let (mut reader_c, _c, _) = join(addr);

        a.write_all(b"hello\r\n").unwrap();
        let from_a = format!("{name_a}: hello\n");
        assert_eq!(line(&mut reader_b), from_a);
        assert_eq!(line(&mut reader_c), from_a);

        b.write_all(b"hi a\n").unwrap();
        let from_b = format!("{name_b}: hi a\n");
        assert_eq!(line(&mut reader_a), from_b);
        assert_eq!(line(&mut reader_c), from_b);

        // A never got its own line: after `/quit` only the goodbye is left for it.
        a.write_all(b"/quit\n").unwrap();
        let mut rest = String::new();
        reader_a.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "Goodbye.\n");

        // The room forgets A (its close is handled on the server's thread).
        let deadline = Instant::now() + Duration::from_secs(10);
        while watched.len() != 2 {
            assert!(Instant::now() < deadline, "A stayed in the room");
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(watched.relayed(), 2);
    });
    start_bounded(&reactor).expect("the reactor runs");
    clients.join().expect("the clients");
    assert_eq!(room.relayed(), 2);
}
