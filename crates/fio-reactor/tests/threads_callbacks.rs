//! What the crate docs' "Threads and callbacks" section promises: calls on another connection
//! from inside a callback don't run its callbacks re-entrantly (except the documented
//! `attach`), and a panic while a user lock is held closes one connection while the process
//! serves on (a `std` mutex is poisoned, a `parking_lot` one isn't).

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use fio_reactor::{Error, Protocol, Uuid};
use util::{DEADLINE, client, listen_local, reactor, read_to_end, start_bounded};

type Log = Arc<Mutex<Vec<String>>>;

/// One of three connections; the first (`a`) acts on the other two when it reads `go`.
struct Probe {
    name: &'static str,
    log: Log,
    /// True while `a`'s `on_data` runs.
    inside: Arc<AtomicBool>,
    opened: Arc<Mutex<Vec<Uuid>>>,
}

impl Probe {
    fn note(&self, what: &str) {
        let inside = self.inside.load(Ordering::SeqCst);
        let place = if inside { "inside a" } else { "outside a" };
        self.log.lock().unwrap().push(format!("{what} {place}"));
    }
}

impl Protocol for Probe {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 16];
        let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) else {
            return;
        };
        if self.name != "a" || &buf[..count] != b"go" {
            return;
        }
        let (b, c) = {
            let opened = self.opened.lock().unwrap();
            (opened[1], opened[2])
        };
        self.inside.store(true, Ordering::SeqCst);
        fio_reactor::close(b).unwrap();
        let late = fio_reactor::write(b, b"late");
        assert!(matches!(late, Err(Error::Closing(_))), "{late:?}");
        fio_reactor::attach(
            c,
            Probe {
                name: "c2",
                log: Arc::clone(&self.log),
                inside: Arc::clone(&self.inside),
                opened: Arc::clone(&self.opened),
            },
        )
        .unwrap();
        self.note("a's calls returned");
        self.inside.store(false, Ordering::SeqCst);
        fio_reactor::stop();
    }

    fn on_close(&mut self, _uuid: Uuid) {
        self.note(&format!("{} on_close", self.name));
    }
}

#[test]
fn calls_on_another_connection_run_its_callbacks_later_except_attach() {
    // One thread: the other connections are this thread's, so a synchronous callback could
    // happen; it must not, except for attach's documented on_close of the replaced protocol.
    let reactor = reactor(1);
    let log: Log = Arc::default();
    let inside = Arc::new(AtomicBool::new(false));
    let opened: Arc<Mutex<Vec<Uuid>>> = Arc::default();
    let (opened_tx, opened_rx) = mpsc::channel::<()>();
    let opened_tx = Mutex::new(opened_tx);
    let (shared_log, shared_inside, shared_opened) =
        (Arc::clone(&log), Arc::clone(&inside), Arc::clone(&opened));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let index = {
            let mut opened = shared_opened.lock().unwrap();
            opened.push(uuid);
            opened.len() - 1
        };
        let name = ["a", "b", "c"].get(index).copied().unwrap_or("extra");
        let _ = fio_reactor::attach(
            uuid,
            Probe {
                name,
                log: Arc::clone(&shared_log),
                inside: Arc::clone(&shared_inside),
                opened: Arc::clone(&shared_opened),
            },
        );
        let _ = opened_tx.lock().unwrap().send(());
    });
    let peer = thread::spawn(move || {
        // Connected one after another, so the server sees them as a, b, c.
        let mut streams = Vec::new();
        for _ in 0..3 {
            streams.push(client(addr));
            opened_rx.recv_timeout(DEADLINE).expect("on_open ran");
        }
        streams[0].write_all(b"go").unwrap();
        read_to_end(&mut streams[1])
    });
    start_bounded(&reactor).unwrap();
    assert!(peer.join().unwrap().is_empty());
    let log = log.lock().unwrap().clone();
    let position = |entry: &str| log.iter().position(|logged| logged == entry);
    // attach ran the replaced protocol's on_close before returning, inside a's callback...
    assert!(position("c on_close inside a").is_some(), "{log:?}");
    // ...but close(b) did not run b's on_close: it came after a's callback.
    let returned = position("a's calls returned inside a").expect("a acted");
    let b_closed = position("b on_close outside a").expect("b's on_close ran later");
    assert!(returned < b_closed, "{log:?}");
    assert_eq!(
        log.iter()
            .filter(|entry| entry.starts_with("b on_close"))
            .count(),
        1,
        "{log:?}"
    );
}

/// Locks both mutexes and panics on `panic`; otherwise answers whether the `std` mutex is
/// poisoned and takes the `parking_lot` one.
struct Locker {
    plain: Arc<Mutex<u32>>,
    no_poison: Arc<parking_lot::Mutex<u32>>,
    closes: Arc<AtomicUsize>,
}

impl Protocol for Locker {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 16];
        let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) else {
            return;
        };
        if buf[..count].starts_with(b"panic") {
            let _plain = self.plain.lock().unwrap();
            let _no_poison = self.no_poison.lock();
            panic!("a panic while both locks are held");
        }
        let answer: &[u8] = match self.plain.lock() {
            Ok(_) => b"clean",
            Err(_) => b"poisoned",
        };
        *self.no_poison.lock() += 1; // not poisoned: just released by the unwinding
        fio_reactor::write(uuid, answer).unwrap();
    }

    fn on_close(&mut self, _uuid: Uuid) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_panic_holding_a_lock_closes_one_connection_and_poisons_only_std_mutexes() {
    let reactor = reactor(2);
    let plain = Arc::new(Mutex::new(0));
    let no_poison = Arc::new(parking_lot::Mutex::new(0));
    let closes = Arc::new(AtomicUsize::new(0));
    let (shared_plain, shared_no_poison, counted) = (
        Arc::clone(&plain),
        Arc::clone(&no_poison),
        Arc::clone(&closes),
    );
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let _ = fio_reactor::attach(
            uuid,
            Locker {
                plain: Arc::clone(&shared_plain),
                no_poison: Arc::clone(&shared_no_poison),
                closes: Arc::clone(&counted),
            },
        );
    });
    let stopper = reactor.clone();
    let peer = thread::spawn(move || {
        let mut doomed = client(addr);
        doomed.write_all(b"panic").unwrap();
        let left = read_to_end(&mut doomed);
        let mut next = client(addr);
        next.write_all(b"hi").unwrap();
        let mut answer = [0u8; 8];
        next.read_exact(&mut answer).unwrap();
        stopper.stop();
        (left, answer)
    });
    start_bounded(&reactor).unwrap();
    let (left, answer) = peer.join().unwrap();
    assert!(left.is_empty(), "the panicking connection was closed");
    assert_eq!(&answer, b"poisoned", "the next connection is served");
    assert!(plain.is_poisoned());
    assert_eq!(*no_poison.lock(), 1);
    assert_eq!(closes.load(Ordering::SeqCst), 2, "on_close ran for both");
}
