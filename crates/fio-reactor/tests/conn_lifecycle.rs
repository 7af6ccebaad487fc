//! Connection lifecycles: stale uuids, panicking callbacks, idle timeouts, shutdown.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use fio_reactor::{Error, Protocol, ShutdownResponse, Uuid};
use util::{Echo, client, listen_local, reactor, read_to_end, start_bounded};

/// Echoes, except that a message starting with `panic` panics in `on_data`.
struct Touchy {
    closes: Arc<AtomicUsize>,
}

impl Protocol for Touchy {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 1024];
        // The peer's end of stream (`Err(Eof)`) needs nothing here: the reactor closes.
        let Ok(count) = fio_reactor::read(uuid, &mut buf) else {
            return;
        };
        assert!(!buf[..count].starts_with(b"panic"), "asked to panic");
        fio_reactor::write(uuid, &buf[..count]).unwrap();
    }

    fn on_close(&mut self, _uuid: Uuid) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_panicking_on_data_closes_only_its_connection() {
    let reactor = reactor(1);
    let closes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&closes);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let _ = fio_reactor::attach(
            uuid,
            Touchy {
                closes: Arc::clone(&counted),
            },
        );
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut calm = client(addr);
        let mut doomed = client(addr);
        doomed.write_all(b"panic now").unwrap();
        let left = read_to_end(&mut doomed);
        calm.write_all(b"still here").unwrap();
        let mut echoed = [0u8; 10];
        calm.read_exact(&mut echoed).unwrap();
        stopper.stop();
        (left, echoed)
    });
    start_bounded(&reactor).unwrap();
    let (left, echoed) = client.join().unwrap();
    assert!(
        left.is_empty(),
        "the panicking connection closed without an answer"
    );
    assert_eq!(&echoed, b"still here");
    assert_eq!(
        closes.load(Ordering::SeqCst),
        2,
        "both closed once (one by the stop)"
    );
}

#[test]
fn a_stale_uuid_errors_and_never_reaches_a_newer_connection() {
    let reactor = reactor(1);
    let first: Arc<Mutex<Option<Uuid>>> = Arc::new(Mutex::new(None));
    let checks: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let closes = Arc::new(AtomicUsize::new(0));
    let (remembered, findings, counted) =
        (Arc::clone(&first), Arc::clone(&checks), Arc::clone(&closes));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let mut first = remembered.lock().unwrap();
        match *first {
            None => *first = Some(uuid),
            Some(stale) => {
                // The first connection is closed by now: its uuid must be dead everywhere,
                // even when the kernel gave this connection the same descriptor.
                let mut findings = findings.lock().unwrap();
                if stale.fd() == uuid.fd() {
                    assert_ne!(stale, uuid);
                    findings.push("reused".into());
                }
                assert!(!fio_reactor::is_valid(stale));
                assert!(fio_reactor::is_closed(stale));
                assert!(matches!(
                    fio_reactor::write(stale, b"stale"),
                    Err(Error::InvalidUuid(_))
                ));
                assert!(matches!(
                    fio_reactor::read(stale, &mut [0u8; 4]),
                    Err(Error::InvalidUuid(_))
                ));
                assert!(matches!(
                    fio_reactor::close(stale),
                    Err(Error::InvalidUuid(_))
                ));
                assert!(matches!(
                    fio_reactor::force_close(stale),
                    Err(Error::InvalidUuid(_))
                ));
                assert!(matches!(
                    fio_reactor::timeout_set(stale, Some(Duration::from_secs(1))),
                    Err(Error::InvalidUuid(_))
                ));
                assert!(
                    fio_reactor::attach(
                        stale,
                        Echo {
                            closes: Arc::new(AtomicUsize::new(0))
                        }
                    )
                    .is_err()
                );
                assert_eq!(fio_reactor::fd2uuid(uuid.fd()), Some(uuid));
                findings.push("checked".into());
            }
        }
        let _ = fio_reactor::attach(
            uuid,
            Echo {
                closes: Arc::clone(&counted),
            },
        );
    });
    let stopper = reactor.clone();
    let probe = Arc::clone(&closes);
    let client = thread::spawn(move || {
        let mut one = client(addr);
        one.write_all(b"one").unwrap();
        let mut echoed = [0u8; 3];
        one.read_exact(&mut echoed).unwrap();
        one.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(read_to_end(&mut one).is_empty());
        drop(one);
        // Bounded wait for the server to run the first connection's on_close.
        let deadline = std::time::Instant::now() + util::IO_TIMEOUT;
        while probe.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
            thread::yield_now();
        }
        let mut two = client(addr);
        two.write_all(b"two").unwrap();
        two.shutdown(std::net::Shutdown::Write).unwrap();
        let answer = read_to_end(&mut two);
        stopper.stop();
        answer
    });
    start_bounded(&reactor).unwrap();
    assert_eq!(
        client.join().unwrap(),
        b"two",
        "the new connection got only its own echo"
    );
    assert!(checks.lock().unwrap().contains(&"checked".to_owned()));
    assert_eq!(closes.load(Ordering::SeqCst), 2);
}

/// Counts `on_timeout` and closes (the default's behaviour, observed).
struct Sleepy {
    timeouts: Arc<AtomicUsize>,
}

impl Protocol for Sleepy {
    fn on_timeout(&mut self, uuid: Uuid) {
        self.timeouts.fetch_add(1, Ordering::SeqCst);
        fio_reactor::close(uuid).unwrap();
    }
}

#[test]
fn an_idle_connection_times_out() {
    let reactor = reactor(1);
    let timeouts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&timeouts);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(
            uuid,
            Sleepy {
                timeouts: Arc::clone(&counted),
            },
        )
        .unwrap();
        // Out of range leaves the timeout as it was.
        for bad in [
            Duration::ZERO,
            Duration::from_millis(1500),
            Duration::from_secs(256),
        ] {
            let refused = fio_reactor::timeout_set(uuid, Some(bad));
            assert!(matches!(refused, Err(Error::TimeoutOutOfRange(d)) if d == bad));
        }
        assert_eq!(fio_reactor::timeout_get(uuid).unwrap(), None);
        fio_reactor::timeout_set(uuid, Some(fio_reactor::TIMEOUT_MAX)).unwrap();
        assert_eq!(
            fio_reactor::timeout_get(uuid).unwrap(),
            Some(fio_reactor::TIMEOUT_MAX)
        );
        fio_reactor::timeout_set(uuid, Some(Duration::from_secs(1))).unwrap();
        assert_eq!(
            fio_reactor::timeout_get(uuid).unwrap(),
            Some(Duration::from_secs(1))
        );
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        // Sends nothing: the server's timeout closes the connection.
        let left = read_to_end(&mut client(addr));
        stopper.stop();
        left
    });
    start_bounded(&reactor).unwrap();
    assert!(client.join().unwrap().is_empty());
    assert_eq!(timeouts.load(Ordering::SeqCst), 1);
}

/// Bytes queued when the reactor stops.
const QUEUED: usize = 4 << 20;

/// Queues [`QUEUED`] bytes on its first `on_data` and stops the reactor.
struct StopWithQueue {
    shutdowns: Arc<AtomicUsize>,
    closes: Arc<AtomicUsize>,
}

impl Protocol for StopWithQueue {
    fn on_data(&mut self, uuid: Uuid) {
        while fio_reactor::read(uuid, &mut [0u8; 64]).unwrap_or(0) > 0 {}
        let payload: Vec<u8> = (0..QUEUED).map(|n| (n % 249) as u8).collect();
        fio_reactor::write2(uuid, payload, false).unwrap();
        fio_reactor::stop();
    }

    fn on_shutdown(&mut self, uuid: Uuid) -> ShutdownResponse {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
        fio_reactor::write(uuid, b"bye").unwrap();
        ShutdownResponse::CloseNow
    }

    fn on_close(&mut self, _uuid: Uuid) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn stop_delivers_queued_data_then_closes() {
    let reactor = reactor(2);
    let shutdowns = Arc::new(AtomicUsize::new(0));
    let closes = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (s, c) = (Arc::clone(&shutdowns), Arc::clone(&closes));
    let done = Arc::clone(&finished);
    let listener = reactor
        .listen(
            fio_reactor::ListenArgs::new("tcp://127.0.0.1:0", move |uuid| {
                fio_reactor::attach(
                    uuid,
                    StopWithQueue {
                        shutdowns: Arc::clone(&s),
                        closes: Arc::clone(&c),
                    },
                )
                .unwrap();
            })
            .on_finish(move || {
                done.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    let addr = fio_reactor::local_addr(listener)
        .and_then(|a| a.as_inet())
        .unwrap();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(b"go").unwrap();
        read_to_end(&mut stream)
    });
    start_bounded(&reactor).unwrap();
    let received = client.join().unwrap();
    assert_eq!(received.len(), QUEUED + 3);
    assert!(received.ends_with(b"bye"));
    assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the listener's on_finish ran"
    );
    assert!(!fio_reactor::is_valid(listener));
}
