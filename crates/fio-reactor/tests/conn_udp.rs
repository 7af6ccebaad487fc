//! UDP connections: a `udp://` listener answers each datagram's sender with `write_to`, and
//! a `udp://` connect talks to its one peer with `write` and `read`. Boundaries are kept: one
//! read, one datagram.

mod util;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use fio_reactor::{ConnectArgs, ListenArgs, Protocol, Uuid};
use util::{IO_TIMEOUT, reactor, start_bounded};

/// Answers every datagram with `Echo: ` and its payload, to its sender. A datagram larger
/// than the 8-byte buffer is cut.
struct DatagramEcho {
    closes: Arc<AtomicUsize>,
}

impl Protocol for DatagramEcho {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 8];
        for _ in 0..1024 {
            match fio_reactor::read_from(uuid, &mut buf) {
                Ok(Some((count, from))) => {
                    let mut answer = b"Echo: ".to_vec();
                    answer.extend_from_slice(&buf[..count]);
                    fio_reactor::write_to(uuid, answer, from).unwrap();
                }
                Ok(None) | Err(_) => return,
            }
        }
    }

    fn on_close(&mut self, _uuid: Uuid) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

fn bound_client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    socket
}

#[test]
fn a_udp_listener_answers_each_sender_datagram_by_datagram() {
    let reactor = reactor(1);
    let opens = Arc::new(AtomicUsize::new(0));
    let closes = Arc::new(AtomicUsize::new(0));
    let finishes = Arc::new(AtomicUsize::new(0));
    let (opened, closed, finished) = (
        Arc::clone(&opens),
        Arc::clone(&closes),
        Arc::clone(&finishes),
    );
    let args = ListenArgs::new("udp://127.0.0.1:0", move |uuid| {
        opened.fetch_add(1, Ordering::SeqCst);
        let protocol = DatagramEcho {
            closes: Arc::clone(&closed),
        };
        fio_reactor::attach(uuid, protocol).unwrap();
    })
    .on_finish(move || {
        finished.fetch_add(1, Ordering::SeqCst);
    });
    let listener = reactor.listen(args).unwrap();
    let addr = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .expect("a UDP listener has an inet address");
    let stopper = reactor.clone();
    let clients = thread::spawn(move || {
        let (first, second) = (bound_client(), bound_client());
        let mut answers = Vec::new();
        for (socket, message) in [
            (&first, &b"one"[..]),
            (&second, b"two"),
            (&first, b"a datagram too long"),
        ] {
            socket.send_to(message, addr).unwrap();
            let mut buf = [0u8; 64];
            let (count, from) = socket.recv_from(&mut buf).unwrap();
            assert_eq!(from, addr);
            answers.push(buf[..count].to_vec());
        }
        stopper.stop();
        answers
    });
    start_bounded(&reactor).unwrap();
    let answers = clients.join().unwrap();
    assert_eq!(
        answers,
        [&b"Echo: one"[..], b"Echo: two", b"Echo: a datagr"],
        "each answer went to its sender; the long datagram was cut at 8 bytes"
    );
    assert_eq!(opens.load(Ordering::SeqCst), 1, "one socket, one on_open");
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    assert_eq!(finishes.load(Ordering::SeqCst), 1);
}

/// Sends `ping` when connected; records the answer and stops.
struct UdpPinger {
    got: Arc<Mutex<Vec<u8>>>,
}

impl Protocol for UdpPinger {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        let count = fio_reactor::read(uuid, &mut buf).unwrap();
        if count > 0 {
            self.got.lock().unwrap().extend_from_slice(&buf[..count]);
            fio_reactor::stop();
        }
    }
}

#[test]
fn a_udp_connect_talks_to_its_peer() {
    let server = bound_client();
    let server_addr: SocketAddr = server.local_addr().unwrap();
    let answerer = thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (count, from) = server.recv_from(&mut buf).unwrap();
        server.send_to(b"pong", from).unwrap();
        buf[..count].to_vec()
    });
    let reactor = reactor(1);
    let got = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&got);
    let uuid = reactor
        .connect(ConnectArgs::new(
            format!("udp://{server_addr}"),
            move |uuid| {
                let protocol = UdpPinger {
                    got: Arc::clone(&into),
                };
                fio_reactor::attach(uuid, protocol).unwrap();
                fio_reactor::write(uuid, b"ping").unwrap();
            },
        ))
        .unwrap();
    start_bounded(&reactor).unwrap();
    assert_eq!(answerer.join().unwrap(), b"ping");
    assert_eq!(&*got.lock().unwrap(), b"pong");
    assert!(!fio_reactor::is_valid(uuid));
}

#[test]
fn a_stream_has_no_datagrams() {
    let reactor = reactor(1);
    let result = Arc::new(Mutex::new(None));
    let into = Arc::clone(&result);
    let (_listener, addr) = util::listen_local(&reactor, move |uuid| {
        let mut buf = [0u8; 8];
        let read = fio_reactor::read_from(uuid, &mut buf).map(|_| ());
        let to = "127.0.0.1:9".parse().unwrap();
        let written = fio_reactor::write_to(uuid, &b"x"[..], to);
        *into.lock().unwrap() = Some((read, written));
        fio_reactor::stop();
    });
    let _client = util::client(addr);
    start_bounded(&reactor).unwrap();
    let (read, written) = result.lock().unwrap().take().unwrap();
    assert!(matches!(read, Err(fio_reactor::Error::Connection { .. })));
    assert!(matches!(
        written,
        Err(fio_reactor::Error::Connection { .. })
    ));
}

#[test]
fn a_burst_of_datagrams_is_answered_whole_and_in_order() {
    const BURST: u32 = 100;
    let reactor = reactor(1);
    let closes = Arc::new(AtomicUsize::new(0));
    let closed = Arc::clone(&closes);
    let listener = reactor
        .listen(ListenArgs::new("udp://127.0.0.1:0", move |uuid| {
            let protocol = DatagramEcho {
                closes: Arc::clone(&closed),
            };
            fio_reactor::attach(uuid, protocol).unwrap();
        }))
        .unwrap();
    let addr = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .unwrap();
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let socket = bound_client();
        // More than one receive budget's worth, sent before any answer is read: well within
        // loopback's socket buffers, so none is dropped.
        for sequence in 0..BURST {
            socket.send_to(&sequence.to_be_bytes(), addr).unwrap();
        }
        let mut answers = Vec::new();
        let mut buf = [0u8; 64];
        for _ in 0..BURST {
            let (count, _) = socket.recv_from(&mut buf).unwrap();
            answers.push(buf[..count].to_vec());
        }
        stopper.stop();
        answers
    });
    start_bounded(&reactor).unwrap();
    let answers = client.join().unwrap();
    let expected: Vec<Vec<u8>> = (0..BURST)
        .map(|sequence| [&b"Echo: "[..], &sequence.to_be_bytes()].concat())
        .collect();
    assert_eq!(answers, expected);
}
