//! `on_shutdown`'s [`ShutdownResponse`]: `CloseNow` closes at once (facil.io's 0), `CloseAfter`
//! keeps the connection that much longer (1..=254 s), `KeepOpen` keeps it until every other
//! connection of the reactor (on any thread) has closed (255).

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use fio_reactor::{Protocol, ShutdownDelay, ShutdownResponse, Uuid};
use util::{client, listen_local, reactor, start_bounded};

/// The delay the delayed connection asks for, in seconds.
const DELAY: u8 = 2;

/// The client's first byte picks what `on_shutdown` returns: `'0'` → `CloseNow`, `'d'` →
/// `CloseAfter` [`DELAY`], `'l'` → `KeepOpen`. Echoes what follows.
struct Shutter {
    kind: u8,
    response: Option<ShutdownResponse>,
    closes: Arc<AtomicUsize>,
    /// The kinds, in the order their `on_close` ran.
    order: Arc<Mutex<Vec<u8>>>,
}

impl Protocol for Shutter {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        loop {
            let count = match fio_reactor::read(uuid, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(count) => count,
            };
            let mut data = &buf[..count];
            if self.response.is_none() {
                self.kind = data[0];
                self.response = Some(match data[0] {
                    b'd' => ShutdownResponse::CloseAfter(ShutdownDelay::from_secs(DELAY).unwrap()),
                    b'l' => ShutdownResponse::KeepOpen,
                    _ => ShutdownResponse::CloseNow,
                });
                data = &data[1..];
                fio_reactor::write(uuid, b"ok").unwrap();
            }
            if !data.is_empty() {
                let _ = fio_reactor::write(uuid, data);
            }
        }
    }

    fn on_shutdown(&mut self, uuid: Uuid) -> ShutdownResponse {
        let _ = fio_reactor::write(uuid, b"!");
        self.response.unwrap_or_default()
    }

    fn on_close(&mut self, _uuid: Uuid) {
        self.closes.fetch_add(1, Ordering::SeqCst);
        self.order.lock().unwrap().push(self.kind);
    }
}

/// What one client saw.
#[derive(Debug)]
struct Seen {
    /// When its connection ended, after the stop.
    closed_after: Duration,
    /// Whether an echo came back after `on_shutdown` ran (the connection still served).
    echoed_while_delayed: bool,
}

/// Connects one client per kind (in this order, so with two threads they land on different
/// threads), stops the reactor once all are set up, and reports what each client saw, by
/// kind, and the order of the server's `on_close` calls.
fn run(threads: u16, kinds: &'static [u8]) -> (Vec<(u8, Seen)>, Vec<u8>) {
    let reactor = reactor(threads);
    let closes = Arc::new(AtomicUsize::new(0));
    let order = Arc::new(Mutex::new(Vec::new()));
    let (counted, ordered) = (Arc::clone(&closes), Arc::clone(&order));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(
            uuid,
            Shutter {
                kind: 0,
                response: None,
                closes: Arc::clone(&counted),
                order: Arc::clone(&ordered),
            },
        )
        .unwrap();
    });
    let stopper = reactor.clone();
    let driver = thread::spawn(move || {
        let mut streams: Vec<(u8, TcpStream)> = Vec::new();
        for &kind in kinds {
            let mut stream = client(addr);
            stream.write_all(&[kind]).unwrap();
            let mut ok = [0u8; 2];
            stream.read_exact(&mut ok).unwrap();
            assert_eq!(&ok, b"ok");
            streams.push((kind, stream));
        }
        let stopped = Instant::now();
        stopper.stop();
        let (tx, rx) = mpsc::channel();
        let readers: Vec<_> = streams
            .into_iter()
            .map(|(kind, mut stream)| {
                let tx = tx.clone();
                thread::spawn(move || {
                    let mut bang = [0u8; 1];
                    let told = stream.read_exact(&mut bang).is_ok() && bang == *b"!";
                    let mut echoed_while_delayed = false;
                    if told && kind == b'd' {
                        // Still open for DELAY seconds: it serves requests meanwhile.
                        stream.write_all(b"ping").unwrap();
                        let mut pong = [0u8; 4];
                        echoed_while_delayed =
                            stream.read_exact(&mut pong).is_ok() && pong == *b"ping";
                    }
                    let _rest = util::read_to_end(&mut stream);
                    let seen = Seen {
                        closed_after: stopped.elapsed(),
                        echoed_while_delayed,
                    };
                    tx.send((kind, seen)).unwrap();
                })
            })
            .collect();
        drop(tx);
        for reader in readers {
            reader.join().unwrap();
        }
        // In the order the connections ended.
        rx.iter().collect::<Vec<_>>()
    });
    start_bounded(&reactor).unwrap();
    let seen = driver.join().unwrap();
    assert_eq!(
        closes.load(Ordering::SeqCst),
        kinds.len(),
        "every on_close ran"
    );
    let order = order.lock().unwrap().clone();
    (seen, order)
}

/// Where `kind` ended in `seen`, and what its client saw.
fn find(seen: &[(u8, Seen)], kind: u8) -> (usize, &Seen) {
    seen.iter()
        .enumerate()
        .find(|(_, (k, _))| *k == kind)
        .map(|(at, (_, seen))| (at, seen))
        .unwrap_or_else(|| panic!("no client of kind {}", kind as char))
}

fn check((seen, order): (Vec<(u8, Seen)>, Vec<u8>)) {
    let seen = &seen[..];
    let (_, now) = find(seen, b'0');
    let (_, delayed) = find(seen, b'd');
    let (_, linger) = find(seen, b'l');
    // The server's order is exact; the clients' threads may notice two closes a moment apart
    // in either order.
    assert_eq!(
        order, b"0dl",
        "0 closes first, then the delay, then 255: {seen:?}"
    );
    assert!(
        delayed.echoed_while_delayed,
        "the delayed connection served meanwhile"
    );
    // A lower bound from the spec, generous upper bounds for a loaded machine.
    assert!(
        delayed.closed_after >= Duration::from_secs(DELAY.into()),
        "lived {DELAY} more seconds: {seen:?}"
    );
    assert!(
        now.closed_after < Duration::from_secs(DELAY.into()),
        "{seen:?}"
    );
    assert!(
        linger.closed_after >= Duration::from_secs(DELAY.into()),
        "255 outlived the delay: {seen:?}"
    );
    assert!(
        linger.closed_after < Duration::from_secs(30),
        "255 closes once the others are done, not at some far deadline: {seen:?}"
    );
}

#[test]
fn on_shutdown_delays_by_seconds_and_255_waits_for_every_other_connection() {
    check(run(1, b"0dl"));
}

#[test]
fn a_lingering_connection_waits_for_the_other_threads_connections_too() {
    // With two threads the connections alternate threads: the delayed one and the lingering
    // one are owned by different threads, so linger must be judged across the reactor.
    check(run(2, b"dl0"));
}
