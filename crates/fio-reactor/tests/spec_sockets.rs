//! `fio_socket` and `fio_accept` in the spec's shape: uuids at once, attached later under the
//! same uuid.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fio_reactor::{CallbackEvent, Error, SocketRole, Uuid};
use util::{Echo, IO_TIMEOUT, Pinger, listen_local, reactor, start_bounded};

/// Accepts from `server`, waiting (bounded) while nothing is pending.
fn accept_soon(server: Uuid) -> Uuid {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match fio_reactor::accept_uuid(server) {
            Ok(uuid) => return uuid,
            Err(Error::Socket { source, .. })
                if source.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(error) => panic!("accept_uuid: {error}"),
        }
    }
}

#[test]
fn an_accepted_uuid_is_valid_before_attach_and_keeps_its_uuid_once_attached() {
    let server = fio_reactor::socket_uuid("tcp://127.0.0.1:0", SocketRole::Server).unwrap();
    assert!(fio_reactor::is_valid(server));
    assert_eq!(fio_reactor::fd2uuid(server.fd()), Some(server));
    let addr = fio_reactor::local_addr(server)
        .and_then(|addr| addr.as_inet())
        .unwrap();
    let mut client = util::client(addr);
    let accepted = accept_soon(server);
    assert!(fio_reactor::is_valid(accepted) && !fio_reactor::is_closed(accepted));
    assert_eq!(
        fio_reactor::peer_addr(accepted).and_then(|peer| peer.as_inet()),
        Some(client.local_addr().unwrap())
    );
    // Not a reactor's yet: what needs an owning thread says so.
    assert!(matches!(
        fio_reactor::write(accepted, b"x"),
        Err(Error::InvalidUuid(_))
    ));
    // A listen() listener is no accept_uuid source.
    let reactor = reactor(1);
    let closes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&closes);
    let (listener, _) = listen_local(&reactor, |_| {});
    assert!(matches!(
        fio_reactor::accept_uuid(listener),
        Err(Error::InvalidUuid(_))
    ));
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        fio_reactor::attach(
            accepted,
            Echo {
                closes: Arc::clone(&counted),
            },
        )
        .unwrap();
    });
    let stopper = reactor.clone();
    let talker = std::thread::spawn(move || {
        client.write_all(b"same uuid").unwrap();
        let mut echoed = [0u8; 9];
        client.read_exact(&mut echoed).unwrap();
        let valid_while_attached = fio_reactor::is_valid(accepted);
        stopper.stop();
        (echoed, valid_while_attached)
    });
    start_bounded(&reactor).unwrap();
    let (echoed, valid_while_attached) = talker.join().unwrap();
    assert_eq!(&echoed, b"same uuid");
    assert!(valid_while_attached);
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    assert!(!fio_reactor::is_valid(accepted), "closed with the reactor");
    // The server socket was never attached: close closes it.
    assert!(fio_reactor::is_valid(server));
    fio_reactor::close(server).unwrap();
    assert!(!fio_reactor::is_valid(server));
    assert!(matches!(
        fio_reactor::accept_uuid(server),
        Err(Error::InvalidUuid(_))
    ));
}

#[test]
fn a_client_socket_uuid_attaches_and_talks_to_a_listener() {
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
    let client = fio_reactor::socket_uuid(&format!("tcp://{addr}"), SocketRole::Client).unwrap();
    assert!(fio_reactor::is_valid(client));
    let got = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&got);
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        fio_reactor::attach(
            client,
            Pinger {
                got: Arc::clone(&into),
                expected: 4,
            },
        )
        .unwrap();
        // Queued until the connect completes.
        fio_reactor::write(client, b"ping").unwrap();
    });
    start_bounded(&reactor).unwrap();
    assert_eq!(&*got.lock().unwrap(), b"ping");
    assert!(!fio_reactor::is_valid(client));
}

#[test]
fn closing_an_unattached_uuid_closes_its_socket() {
    let server = fio_reactor::socket_uuid("tcp://127.0.0.1:0", SocketRole::Server).unwrap();
    let addr = fio_reactor::local_addr(server)
        .and_then(|addr| addr.as_inet())
        .unwrap();
    let mut client = util::client(addr);
    let accepted = accept_soon(server);
    fio_reactor::force_close(accepted).unwrap();
    assert!(!fio_reactor::is_valid(accepted));
    let mut buf = [0u8; 1];
    assert_eq!(
        client.read(&mut buf).unwrap_or(0),
        0,
        "the peer sees the close"
    );
    fio_reactor::close(server).unwrap();
    assert!(matches!(
        fio_reactor::close(server),
        Err(Error::InvalidUuid(_))
    ));
}
