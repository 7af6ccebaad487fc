//! An accepted connection's addresses, recorded at accept (the peer's from the accept itself
//! where the engine's gives it): the local one is its own behind a wildcard listener and the
//! listener's name behind a Unix one.

mod util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread;

use fio_reactor::{ListenArgs, Protocol, SockAddr, Uuid};
use util::{IO_TIMEOUT, client, reactor, start_bounded};

/// What a connection reported: its addresses at `on_open`, and its peer's in `on_data`.
#[derive(Default, Debug, Clone)]
struct Seen {
    local: Option<SockAddr>,
    peer: Option<SockAddr>,
    peer_later: Option<SockAddr>,
    closed: bool,
}

type Shared = Arc<Mutex<Seen>>;

/// Reads what comes, records its peer's address meanwhile, and stops the reactor at close.
struct Greeter {
    seen: Shared,
}

impl Protocol for Greeter {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while matches!(fio_reactor::read(uuid, &mut buf), Ok(1..)) {}
        self.seen.lock().unwrap().peer_later = fio_reactor::peer_addr(uuid);
    }

    fn on_close(&mut self, _uuid: Uuid) {
        let mut seen = self.seen.lock().unwrap();
        seen.closed = true;
        fio_reactor::stop();
    }
}

/// Listens on `url` with a [`Greeter`] per connection; returns the listener's address.
fn listen(reactor: &fio_reactor::Reactor, url: &str, seen: &Shared) -> SockAddr {
    let seen = Arc::clone(seen);
    let listener = reactor
        .listen(ListenArgs::new(url, move |uuid| {
            {
                let mut seen = seen.lock().unwrap();
                seen.local = fio_reactor::local_addr(uuid);
                seen.peer = fio_reactor::peer_addr(uuid);
            }
            fio_reactor::write(uuid, b"hello").unwrap();
            fio_reactor::attach(
                uuid,
                Greeter {
                    seen: Arc::clone(&seen),
                },
            )
            .unwrap();
        }))
        .unwrap();
    fio_reactor::local_addr(listener).expect("a listener has an address")
}

#[test]
fn behind_a_wildcard_listener_the_local_address_is_the_streams_own() {
    let reactor = reactor(1);
    let seen = Shared::default();
    let bound = listen(&reactor, "tcp://0.0.0.0:0", &seen);
    let port = bound.as_inet().unwrap().port();
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let peer = thread::spawn(move || {
        let mut stream = client(target);
        let own = stream.local_addr().unwrap();
        let mut greeting = [0u8; 5];
        stream.read_exact(&mut greeting).unwrap();
        stream.write_all(b"hi").unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        // Until the server closes too.
        let _ = stream.read(&mut greeting);
        own
    });
    start_bounded(&reactor).unwrap();
    let own = peer.join().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.closed, "on_close ran");
    assert_eq!(seen.local.and_then(|addr| addr.as_inet()), Some(target));
    assert_eq!(seen.peer.and_then(|addr| addr.as_inet()), Some(own));
    assert_eq!(
        seen.peer_later.and_then(|addr| addr.as_inet()),
        Some(own),
        "the peer's address stays known after the peer's end of stream"
    );
}

#[test]
fn behind_a_unix_listener_the_local_address_is_its_name() {
    let dir = std::env::temp_dir().join(format!("fio-addresses-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("named.sock");
    let reactor = reactor(1);
    let seen = Shared::default();
    let bound = listen(&reactor, &format!("unix://{}", path.display()), &seen);
    let connect_to = path.clone();
    let peer = thread::spawn(move || {
        let mut stream = UnixStream::connect(&connect_to).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut greeting = [0u8; 5];
        stream.read_exact(&mut greeting).unwrap();
        drop(stream);
        greeting
    });
    start_bounded(&reactor).unwrap();
    let greeting = peer.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(&greeting, b"hello");
    assert!(seen.closed, "on_close ran");
    assert_eq!(bound.as_unix_path(), Some(path.as_path()));
    assert_eq!(
        seen.local.as_ref().and_then(SockAddr::as_unix_path),
        Some(path.as_path())
    );
    assert!(matches!(seen.peer, Some(SockAddr::UnixUnnamed)));
}
