//! Client connections with `connect`: success, refusal, `on_finish`, `auto_reconnect`.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use fio_reactor::{ConnectArgs, Protocol, Uuid};
use util::{Echo, Pinger, listen_local, reactor, start_bounded};

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
                    expected: 4,
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
    let finishes = Arc::new(AtomicUsize::new(0));
    let finished = Arc::clone(&finishes);
    let args = ConnectArgs::new(format!("tcp://127.0.0.1:{port}"), move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    })
    .on_fail(move |error| {
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
        counted.fetch_add(1, Ordering::SeqCst);
    })
    .on_finish(move || {
        finished.fetch_add(1, Ordering::SeqCst);
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
    assert_eq!(
        finishes.load(Ordering::SeqCst),
        1,
        "on_finish follows on_fail"
    );
    assert_eq!(opened.load(Ordering::SeqCst), 0);
}

/// Closes its connection as soon as it is attached.
struct Hangup;

impl Protocol for Hangup {
    fn on_ready(&mut self, uuid: Uuid) {
        let _ = fio_reactor::close(uuid);
    }
}

#[test]
fn auto_reconnect_opens_again_after_each_close_until_the_reactor_stops() {
    let reactor = reactor(1);
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        counted.fetch_add(1, Ordering::SeqCst);
        fio_reactor::attach(
            uuid,
            Echo {
                closes: Arc::new(AtomicUsize::new(0)),
            },
        )
        .unwrap();
    });
    let opens = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&opens);
    let finishes = Arc::new(AtomicUsize::new(0));
    let finished = Arc::clone(&finishes);
    let failures = Arc::new(AtomicUsize::new(0));
    let failed = Arc::clone(&failures);
    let args = ConnectArgs::new(format!("tcp://{addr}"), move |uuid| {
        let mut opens = seen.lock().unwrap();
        opens.push(uuid);
        if opens.len() == 3 {
            fio_reactor::stop();
        }
        // Each connection hangs up at once; the connector dials again.
        fio_reactor::attach(uuid, Hangup).unwrap();
    })
    .auto_reconnect(true)
    .on_fail(move |_| {
        failed.fetch_add(1, Ordering::SeqCst);
    })
    .on_finish(move || {
        finished.fetch_add(1, Ordering::SeqCst);
    });
    reactor.connect(args).unwrap();
    start_bounded(&reactor).unwrap();
    let opens = opens.lock().unwrap();
    assert_eq!(opens.len(), 3);
    assert!(opens[0] != opens[1] && opens[1] != opens[2], "{opens:?}");
    assert!(accepted.load(Ordering::SeqCst) >= 3);
    assert_eq!(finishes.load(Ordering::SeqCst), 1, "once, when it stopped");
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "a reconnecting connector never fails"
    );
}

#[test]
fn a_closed_connection_without_auto_reconnect_finishes_its_connector() {
    let reactor = reactor(1);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(uuid, Hangup).unwrap();
    });
    let opens = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&opens);
    let args = ConnectArgs::new(format!("tcp://{addr}"), move |uuid| {
        seen.fetch_add(1, Ordering::SeqCst);
        fio_reactor::attach(
            uuid,
            Echo {
                closes: Arc::new(AtomicUsize::new(0)),
            },
        )
        .unwrap();
    })
    .on_finish(fio_reactor::stop);
    reactor.connect(args).unwrap();
    start_bounded(&reactor).unwrap();
    assert_eq!(opens.load(Ordering::SeqCst), 1);
}
