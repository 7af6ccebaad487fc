//! Client connections with `connect`: success and refusal.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use fio_reactor::{ConnectArgs, Protocol, Uuid};
use util::{Echo, listen_local, reactor, start_bounded};

/// Sends `ping` when connected, stops the reactor when the echo is back.
struct Pinger {
    got: Arc<Mutex<Vec<u8>>>,
}

impl Protocol for Pinger {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        let count = fio_reactor::read(uuid, &mut buf).unwrap();
        let mut got = self.got.lock().unwrap();
        got.extend_from_slice(&buf[..count]);
        if got.len() >= 4 {
            fio_reactor::stop();
        }
    }
}

#[test]
fn connect_reaches_a_listener_of_the_same_reactor() {
    let reactor = reactor(1);
    let closes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&closes);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(
            uuid,
            Echo {
                closes: Arc::clone(&counted),
            },
        )
        .unwrap();
    });
    let got = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&got);
    let client = reactor
        .connect(ConnectArgs::new(format!("tcp://{addr}"), move |uuid| {
            fio_reactor::attach(
                uuid,
                Pinger {
                    got: Arc::clone(&into),
                },
            )
            .unwrap();
            fio_reactor::write(uuid, b"ping").unwrap();
        }))
        .unwrap();
    start_bounded(&reactor).unwrap();
    assert_eq!(&*got.lock().unwrap(), b"ping");
    assert!(
        !fio_reactor::is_valid(client),
        "closed when the reactor stopped"
    );
    assert_eq!(closes.load(Ordering::SeqCst), 1);
}

#[test]
fn a_refused_connect_calls_on_fail() {
    let reactor = reactor(1);
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let failures = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&failures);
    let opened = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&opened);
    let args = ConnectArgs::new(format!("tcp://127.0.0.1:{port}"), move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    })
    .on_fail(move |error| {
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
        counted.fetch_add(1, Ordering::SeqCst);
        fio_reactor::stop();
    });
    match reactor.connect(args) {
        Ok(_) => start_bounded(&reactor).unwrap(),
        // Some kernels refuse a loopback connect synchronously; that is a refusal too.
        Err(fio_reactor::Error::Connect { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
            return;
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
    assert_eq!(failures.load(Ordering::SeqCst), 1);
    assert_eq!(opened.load(Ordering::SeqCst), 0);
}
