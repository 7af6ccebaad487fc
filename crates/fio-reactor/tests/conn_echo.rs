//! Echo servers on the connection layer: round trips, half-close, many connections.

mod util;

use std::io::Write;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use util::{Echo, client, listen_local, reactor, read_to_end, start_bounded};

#[test]
fn echo_round_trip_and_on_close_exactly_once() {
    let reactor = reactor(2);
    let closes = Arc::new(AtomicUsize::new(0));
    let opened = Arc::new(AtomicUsize::new(0));
    let (counted, seen) = (Arc::clone(&closes), Arc::clone(&opened));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        seen.fetch_add(1, Ordering::SeqCst);
        fio_reactor::attach(
            uuid,
            Echo {
                closes: Arc::clone(&counted),
            },
        )
        .expect("attach in on_open");
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        for round in 0..10 {
            let message = format!("hello {round}");
            stream.write_all(message.as_bytes()).unwrap();
            let mut echoed = vec![0u8; message.len()];
            std::io::Read::read_exact(&mut stream, &mut echoed).unwrap();
            assert_eq!(echoed, message.as_bytes());
        }
        stream.shutdown(Shutdown::Write).unwrap();
        assert!(
            read_to_end(&mut stream).is_empty(),
            "the server closes after our end"
        );
        stopper.stop();
    });
    start_bounded(&reactor).unwrap();
    client.join().unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    assert_eq!(
        closes.load(Ordering::SeqCst),
        1,
        "on_close runs exactly once"
    );
}

#[test]
fn a_half_closed_peer_still_gets_the_full_echo() {
    let reactor = reactor(1);
    let closes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&closes);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let _ = fio_reactor::attach(
            uuid,
            Echo {
                closes: Arc::clone(&counted),
            },
        );
    });
    let stopper = reactor.clone();
    let payload: Vec<u8> = (0..1_000_000u32).map(|n| (n % 251) as u8).collect();
    let sent = payload.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        let writer = {
            let mut stream = stream.try_clone().unwrap();
            thread::spawn(move || {
                stream.write_all(&sent).unwrap();
                // Write everything, then shut our side at once: facil.io answered this with RST.
                stream.shutdown(Shutdown::Write).unwrap();
            })
        };
        let echoed = read_to_end(&mut stream);
        writer.join().unwrap();
        stopper.stop();
        echoed
    });
    start_bounded(&reactor).unwrap();
    let echoed = client.join().unwrap();
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "the echo is byte-for-byte the payload");
    assert_eq!(closes.load(Ordering::SeqCst), 1);
}

#[test]
fn many_concurrent_connections_echo() {
    // 1,000 in release builds; debug builds are several times slower, so fewer there.
    // Both ends live in this process: 2,000 descriptors, above the usual soft limit of 1,024.
    let capacity = fio_sys::raise_nofile_limit().unwrap_or(1024);
    let connections: usize = if capacity >= 2300 { 1000 } else { 400 };
    let reactor = reactor(2);
    let closes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&closes);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let _ = fio_reactor::attach(
            uuid,
            Echo {
                closes: Arc::clone(&counted),
            },
        );
    });
    let stopper = reactor.clone();
    let clients = thread::spawn(move || {
        // Four client threads, each holding its share of the connections open at once.
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                thread::spawn(move || {
                    let mut streams: Vec<_> = (0..connections / 4).map(|_| client(addr)).collect();
                    for (n, stream) in streams.iter_mut().enumerate() {
                        stream
                            .write_all(format!("{worker}:{n};").as_bytes())
                            .unwrap();
                    }
                    for (n, stream) in streams.iter_mut().enumerate() {
                        let expected = format!("{worker}:{n};");
                        let mut echoed = vec![0u8; expected.len()];
                        std::io::Read::read_exact(stream, &mut echoed).unwrap();
                        assert_eq!(echoed, expected.as_bytes());
                    }
                    streams.len()
                })
            })
            .collect();
        let total: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
        stopper.stop();
        total
    });
    start_bounded(&reactor).unwrap();
    let total = clients.join().unwrap();
    assert_eq!(total, connections / 4 * 4);
    assert_eq!(
        closes.load(Ordering::SeqCst),
        total,
        "every connection closed once"
    );
}

#[test]
fn accepted_connections_spread_over_the_reactor_threads() {
    let reactor = reactor(2);
    let threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let seen = Arc::clone(&threads);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        seen.lock().unwrap().insert(thread::current().id());
        fio_reactor::attach(
            uuid,
            Echo {
                closes: Arc::new(AtomicUsize::new(0)),
            },
        )
        .unwrap();
    });
    let stopper = reactor.clone();
    let clients = thread::spawn(move || {
        let mut streams: Vec<_> = (0..8).map(|_| client(addr)).collect();
        for (index, stream) in streams.iter_mut().enumerate() {
            let message = format!("client {index}");
            stream.write_all(message.as_bytes()).unwrap();
            let mut echoed = vec![0u8; message.len()];
            std::io::Read::read_exact(stream, &mut echoed).unwrap();
            assert_eq!(echoed, message.as_bytes());
        }
        stopper.stop();
    });
    start_bounded(&reactor).unwrap();
    clients.join().unwrap();
    assert_eq!(
        threads.lock().unwrap().len(),
        2,
        "both threads own connections"
    );
}
