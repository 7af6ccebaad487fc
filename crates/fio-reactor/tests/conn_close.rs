//! Closing: graceful close drains, force_close drops, on_ready follows a drained write.

mod util;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use fio_reactor::{Protocol, Uuid};
use util::{client, listen_local, reactor, read_to_end, run_exchange, start_bounded};

/// Bytes a server writes before closing: far more than socket buffers hold, so most of it
/// is still queued when the close is requested.
const BIG: usize = 8 << 20;

/// On its first `on_data`, writes [`BIG`] bytes and closes (gracefully or not).
struct WriteThenClose {
    force: bool,
    closes: Arc<AtomicUsize>,
}

impl Protocol for WriteThenClose {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
        let payload: Vec<u8> = (0..BIG).map(|n| (n % 253) as u8).collect();
        fio_reactor::write2(uuid, payload, false).unwrap();
        assert!(fio_reactor::pending(uuid).unwrap() >= 1);
        if self.force {
            fio_reactor::force_close(uuid).unwrap();
        } else {
            fio_reactor::close(uuid).unwrap();
        }
        assert!(fio_reactor::is_closed(uuid));
        assert!(matches!(
            fio_reactor::write(uuid, b"late"),
            Err(fio_reactor::Error::Closing(_)) | Err(fio_reactor::Error::InvalidUuid(_))
        ));
    }

    fn on_close(&mut self, _uuid: Uuid) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

fn run(force: bool) -> (usize, usize) {
    let reactor = reactor(1);
    let closes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&closes);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let _ = fio_reactor::attach(
            uuid,
            WriteThenClose {
                force,
                closes: Arc::clone(&counted),
            },
        );
    });
    let received = run_exchange(&reactor, addr, b"go");
    assert!(
        received
            .iter()
            .enumerate()
            .all(|(n, &byte)| byte == (n % 253) as u8),
        "whatever arrived is the payload's prefix"
    );
    (received.len(), closes.load(Ordering::SeqCst))
}

#[test]
fn close_delivers_everything_queued() {
    let (received, closes) = run(false);
    assert_eq!(received, BIG);
    assert_eq!(closes, 1);
}

#[test]
fn force_close_drops_what_is_queued() {
    let (received, closes) = run(true);
    assert!(received < BIG, "force_close sent {received} of {BIG} bytes");
    assert_eq!(closes, 1);
}

/// Writes once on open, counts `on_ready` calls, closes on the second (after the write drained).
struct ReadyCounter {
    readies: Arc<AtomicUsize>,
}

impl Protocol for ReadyCounter {
    fn on_ready(&mut self, uuid: Uuid) {
        let count = self.readies.fetch_add(1, Ordering::SeqCst) + 1;
        if count == 1 {
            // facil.io's first on_ready comes with the connection; answer with a write.
            fio_reactor::write2(uuid, &b"hello"[..], false).unwrap();
        } else {
            fio_reactor::close(uuid).unwrap();
        }
    }
}

#[test]
fn on_ready_follows_open_and_each_drained_write() {
    let reactor = reactor(1);
    let readies = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&readies);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let _ = fio_reactor::attach(
            uuid,
            ReadyCounter {
                readies: Arc::clone(&counted),
            },
        );
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let received = read_to_end(&mut client(addr));
        stopper.stop();
        received
    });
    start_bounded(&reactor).unwrap();
    assert_eq!(client.join().unwrap(), b"hello");
    assert_eq!(readies.load(Ordering::SeqCst), 2);
}

/// Keeps the default `on_ready`; on data, writes `a` and closes once that drained, through
/// whatever `on_ready` is attached by then.
struct DefaultReady;

impl Protocol for DefaultReady {}

/// Counts `on_ready` calls, forwarding each to a protocol that keeps the default; closes on
/// the second (the first comes with the connection, the second after its write drained).
struct ForwardsReady {
    inner: DefaultReady,
    readies: Arc<AtomicUsize>,
}

impl Protocol for ForwardsReady {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
        fio_reactor::write(uuid, b"a").unwrap();
    }

    fn on_ready(&mut self, uuid: Uuid) {
        self.inner.on_ready(uuid);
        if self.readies.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
            fio_reactor::close(uuid).unwrap();
        }
    }
}

/// Keeps the default `on_ready`; its first `on_data` attaches a [`ForwardsReady`] (whose
/// first `on_ready` is then the drain of the write made here).
struct SwitchesOnData {
    readies: Arc<AtomicUsize>,
}

impl Protocol for SwitchesOnData {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
        // Counted as if the opening `on_ready` had been the new protocol's.
        self.readies.fetch_add(1, Ordering::SeqCst);
        let next = ForwardsReady {
            inner: DefaultReady,
            readies: Arc::clone(&self.readies),
        };
        fio_reactor::attach(uuid, next).unwrap();
        fio_reactor::write(uuid, b"a").unwrap();
    }
}

/// Serves one client that sends `x` with the protocol `make` returns; returns what the
/// client received and the `on_ready` calls counted.
fn ready_round_trip<P: Protocol>(
    make: impl Fn(Arc<AtomicUsize>) -> P + Send + Sync + 'static,
) -> (Vec<u8>, usize) {
    let reactor = reactor(1);
    let readies = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&readies);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let _ = fio_reactor::attach(uuid, make(Arc::clone(&counted)));
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(b"x").unwrap();
        let received = read_to_end(&mut stream);
        stopper.stop();
        received
    });
    start_bounded(&reactor).unwrap();
    (client.join().unwrap(), readies.load(Ordering::SeqCst))
}

/// The reactor skips a default `on_ready`, but an `on_ready` that forwards to a default is
/// not one: it still follows every drained write.
#[test]
fn on_ready_forwarding_to_a_default_still_follows_each_drain() {
    let (received, readies) = ready_round_trip(|readies| ForwardsReady {
        inner: DefaultReady,
        readies,
    });
    assert_eq!(received, b"a");
    assert_eq!(readies, 2);
}

/// What was learned about a protocol's default `on_ready` doesn't outlive it: the protocol
/// attached in its place gets the next drain.
#[test]
fn on_ready_of_a_replacing_protocol_follows_the_drain() {
    let (received, readies) = ready_round_trip(|readies| SwitchesOnData { readies });
    assert_eq!(received, b"a");
    assert_eq!(readies, 2);
}
