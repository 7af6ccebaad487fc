//! Connection controls: `suspend` and resuming with `force_event`, `ping_eternal` from
//! `on_timeout`, hijacking with `detach`, urgent writes, and the addresses of a connection.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use fio_reactor::{IoEvent, Protocol, Uuid};
use util::{client, listen_local, reactor, read_to_end, run_exchange, start_bounded};

/// What the server saw, in order.
type Log = Arc<Mutex<Vec<String>>>;

/// The first connection: logs what it reads, suspends itself after the first read.
struct Suspender {
    log: Log,
    me: Arc<Mutex<Option<Uuid>>>,
}

impl Protocol for Suspender {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        // The peer's end of stream (`Err(Eof)`) needs nothing here: the reactor closes.
        let Ok(count) = fio_reactor::read(uuid, &mut buf) else {
            return;
        };
        if count == 0 {
            return;
        }
        let text = String::from_utf8_lossy(&buf[..count]).into_owned();
        self.log.lock().unwrap().push(format!("A:{text}"));
        if text == "first" {
            // No write here: a drained send queue resumes a suspended connection too.
            fio_reactor::suspend(uuid).unwrap();
            *self.me.lock().unwrap() = Some(uuid);
        } else {
            fio_reactor::write(uuid, b"resumed").unwrap();
        }
    }
}

/// The second connection: on `go`, resumes the first with `force_event(OnData)`.
struct Resumer {
    log: Log,
    target: Arc<Mutex<Option<Uuid>>>,
}

impl Protocol for Resumer {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        // The peer's end of stream (`Err(Eof)`) needs nothing here: the reactor closes.
        let Ok(count) = fio_reactor::read(uuid, &mut buf) else {
            return;
        };
        let target = *self.target.lock().unwrap();
        match (&buf[..count], target) {
            (b"ready?", Some(_)) => fio_reactor::write(uuid, b"y").unwrap(),
            (b"ready?", None) => fio_reactor::write(uuid, b"n").unwrap(),
            (b"go", Some(target)) => {
                self.log.lock().unwrap().push("B:go".to_owned());
                fio_reactor::force_event(target, IoEvent::OnData).unwrap();
            }
            _ => {}
        }
    }
}

#[test]
fn a_suspended_connection_reads_again_after_force_event() {
    let reactor = reactor(1);
    let log: Log = Arc::default();
    let suspended = Arc::new(Mutex::new(None));
    let opened = Arc::new(AtomicUsize::new(0));
    let (server_log, slot) = (Arc::clone(&log), Arc::clone(&suspended));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let log = Arc::clone(&server_log);
        if opened.fetch_add(1, Ordering::SeqCst) == 0 {
            let me = Arc::clone(&slot);
            fio_reactor::attach(uuid, Suspender { log, me }).unwrap();
        } else {
            let target = Arc::clone(&slot);
            fio_reactor::attach(uuid, Resumer { log, target }).unwrap();
        }
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut first = client(addr);
        first.write_all(b"first").unwrap();
        // The control connection says when the first one has suspended itself.
        let mut control = client(addr);
        let mut ready = false;
        for _ in 0..10_000 {
            control.write_all(b"ready?").unwrap();
            let mut answer = [0u8; 1];
            control.read_exact(&mut answer).unwrap();
            if answer == *b"y" {
                ready = true;
                break;
            }
        }
        assert!(ready, "the first connection never suspended");
        first.write_all(b"second").unwrap();
        control.write_all(b"go").unwrap();
        let mut reply = [0u8; 7];
        first.read_exact(&mut reply).unwrap();
        stopper.stop();
        reply
    });
    start_bounded(&reactor).unwrap();
    assert_eq!(&client.join().unwrap(), b"resumed");
    assert_eq!(*log.lock().unwrap(), ["A:first", "B:go", "A:second"]);
}

/// Keeps itself alive twice with `ping_eternal`, then lets the default close it.
struct Eternal {
    timeouts: Arc<AtomicUsize>,
}

impl Protocol for Eternal {
    fn on_timeout(&mut self, uuid: Uuid) {
        if self.timeouts.fetch_add(1, Ordering::SeqCst) < 2 {
            fio_reactor::ping_eternal(uuid);
            fio_reactor::touch(uuid).unwrap();
        } else {
            fio_reactor::write(uuid, b"bye").unwrap();
            fio_reactor::close(uuid).unwrap();
        }
    }
}

#[test]
fn ping_eternal_keeps_an_idle_connection_open() {
    let reactor = reactor(1);
    let timeouts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&timeouts);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(
            uuid,
            Eternal {
                timeouts: Arc::clone(&counted),
            },
        )
        .unwrap();
        fio_reactor::timeout_set(uuid, Some(Duration::from_secs(1))).unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        let received = read_to_end(&mut stream);
        stopper.stop();
        received
    });
    start_bounded(&reactor).unwrap();
    assert_eq!(client.join().unwrap(), b"bye");
    assert_eq!(timeouts.load(Ordering::SeqCst), 3);
}

/// Detaches itself on the first read and hands the connection to a plain thread-side owner.
struct Hijacked {
    closes: Arc<AtomicUsize>,
    taken: Arc<Mutex<Option<Uuid>>>,
}

impl Protocol for Hijacked {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
        fio_reactor::detach(uuid).unwrap();
        *self.taken.lock().unwrap() = Some(uuid);
        // From now on no callback of this connection runs, but it stays open and writable.
        fio_reactor::defer(move || {
            fio_reactor::write(uuid, b"hijacked").unwrap();
            fio_reactor::close(uuid).unwrap();
        });
    }

    fn on_close(&mut self, _uuid: Uuid) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_detached_connection_stays_open_without_callbacks() {
    let reactor = reactor(1);
    let closes = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(Mutex::new(None));
    let (counted, slot) = (Arc::clone(&closes), Arc::clone(&taken));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let protocol = Hijacked {
            closes: Arc::clone(&counted),
            taken: Arc::clone(&slot),
        };
        fio_reactor::attach(uuid, protocol).unwrap();
    });
    assert_eq!(run_exchange(&reactor, addr, b"take me"), b"hijacked");
    assert_eq!(
        closes.load(Ordering::SeqCst),
        1,
        "the detached protocol's on_close ran once, at the detach"
    );
    assert!(!fio_reactor::is_valid(taken.lock().unwrap().unwrap()));
}

/// Writes a large chunk, a normal one, then an urgent one, and closes.
struct Urgent;

impl Protocol for Urgent {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
        fio_reactor::write2(uuid, vec![b'.'; 1 << 20], false).unwrap();
        fio_reactor::write2(uuid, &b"normal"[..], false).unwrap();
        fio_reactor::write2(uuid, &b"URGENT"[..], true).unwrap();
        fio_reactor::close(uuid).unwrap();
    }
}

#[test]
fn an_urgent_write_overtakes_the_queue_but_not_the_chunk_being_sent() {
    let reactor = reactor(1);
    let (_listener, addr) = listen_local(&reactor, |uuid| {
        fio_reactor::attach(uuid, Urgent).unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(b"go").unwrap();
        let received = read_to_end(&mut stream);
        stopper.stop();
        received
    });
    start_bounded(&reactor).unwrap();
    let received = client.join().unwrap();
    assert_eq!(received.len(), (1 << 20) + 12);
    let find = |needle: &[u8]| received.windows(6).position(|window| window == needle);
    let (urgent, normal) = (find(b"URGENT").unwrap(), find(b"normal").unwrap());
    assert!(urgent < normal, "urgent at {urgent}, normal at {normal}");
    assert!(
        received[..urgent].iter().all(|&byte| byte == b'.'),
        "nothing is cut in two by the urgent chunk"
    );
}

#[test]
fn a_connection_knows_both_of_its_addresses() {
    let reactor = reactor(1);
    let seen = Arc::new(Mutex::new(None));
    let into = Arc::clone(&seen);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let peer = fio_reactor::peer_addr(uuid).and_then(|addr| addr.as_inet());
        let local = fio_reactor::local_addr(uuid).and_then(|addr| addr.as_inet());
        *into.lock().unwrap() = Some((peer, local));
        fio_reactor::stop();
        fio_reactor::close(uuid).unwrap();
    });
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        let own = stream.local_addr().unwrap();
        let _ = read_to_end(&mut stream);
        own
    });
    start_bounded(&reactor).unwrap();
    let own = client.join().unwrap();
    let (peer, local) = seen.lock().unwrap().unwrap();
    assert_eq!(peer, Some(own));
    assert_eq!(local, Some(addr));
}

#[test]
fn a_connected_client_knows_both_of_its_addresses() {
    let reactor = reactor(1);
    let accepted_peer = Arc::new(Mutex::new(None));
    let into = Arc::clone(&accepted_peer);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        *into.lock().unwrap() = fio_reactor::peer_addr(uuid).and_then(|addr| addr.as_inet());
    });
    let seen = Arc::new(Mutex::new(None));
    let into = Arc::clone(&seen);
    reactor
        .connect(fio_reactor::ConnectArgs::new(
            format!("tcp://{addr}"),
            move |uuid| {
                let peer = fio_reactor::peer_addr(uuid).and_then(|addr| addr.as_inet());
                let local = fio_reactor::local_addr(uuid).and_then(|addr| addr.as_inet());
                *into.lock().unwrap() = Some((peer, local));
                fio_reactor::stop();
            },
        ))
        .unwrap();
    start_bounded(&reactor).unwrap();
    let (peer, local) = seen.lock().unwrap().unwrap();
    assert_eq!(peer, Some(addr), "the client's peer is the listener");
    let accepted = *accepted_peer.lock().unwrap();
    // The listener may not have run its `on_open` before the stop; when it did, the two
    // sides agree.
    assert!(local.is_some());
    if accepted.is_some() {
        assert_eq!(accepted, local);
    }
}
