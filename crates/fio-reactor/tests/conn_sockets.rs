//! Sockets made outside the reactor (`socket`, `accept`, `set_non_block`) handed to it with
//! `attach_fd`, and the connection capacity.

mod util;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread;
use std::time::Duration;

use fio_reactor::{Error, SocketRole};
use util::{Echo, IO_TIMEOUT, reactor, start_bounded};

#[test]
fn capa_is_the_raised_open_file_limit() {
    let capa = fio_reactor::capa();
    assert!(capa > 0);
    let limit = fio_sys::nofile_limit().unwrap();
    assert_eq!(capa as u64, limit.soft);
    assert_eq!(fio_reactor::capa(), capa, "cached");
}

#[test]
fn bad_urls_are_typed_errors() {
    assert!(matches!(
        fio_reactor::socket("tcp://[::1", SocketRole::Server),
        Err(Error::Url(_))
    ));
}

#[test]
fn an_accepted_socket_attaches_and_echoes() {
    let server = fio_reactor::socket("tcp://127.0.0.1:0", SocketRole::Server).unwrap();
    let addr = fio_sys::local_addr(server.as_fd())
        .unwrap()
        .as_inet()
        .unwrap();
    let nothing = fio_reactor::accept(server.as_fd());
    assert!(matches!(
        nothing,
        Err(Error::Socket { ref source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock
    ));
    let mut client = std::net::TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let ready = fio_sys::poll(
        server.as_fd(),
        fio_sys::PollFlags::IN,
        Some(Duration::from_secs(20)),
    )
    .unwrap();
    assert!(ready.contains(fio_sys::PollFlags::IN));
    let (stream, peer) = fio_reactor::accept(server.as_fd()).unwrap();
    assert_eq!(peer.as_inet(), Some(client.local_addr().unwrap()));
    fio_reactor::set_non_block(stream.as_fd()).unwrap();
    assert!(fio_sys::is_nonblocking(stream.as_fd()).unwrap());

    let reactor = reactor(1);
    let closes = Arc::new(AtomicUsize::new(0));
    let echo = Echo {
        closes: Arc::clone(&closes),
    };
    reactor.state_callback_add(fio_reactor::CallbackEvent::OnStart, {
        let stream = std::sync::Mutex::new(Some(stream));
        let echo = std::sync::Mutex::new(Some(echo));
        move || {
            let (Some(stream), Some(echo)) =
                (stream.lock().unwrap().take(), echo.lock().unwrap().take())
            else {
                return;
            };
            let uuid = fio_reactor::attach_fd(stream, echo).unwrap();
            assert!(fio_reactor::is_valid(uuid));
        }
    });
    let stopper = reactor.clone();
    let talker = thread::spawn(move || {
        client.write_all(b"through attach_fd").unwrap();
        let mut echoed = [0u8; 17];
        client.read_exact(&mut echoed).unwrap();
        stopper.stop();
        echoed
    });
    start_bounded(&reactor).unwrap();
    assert_eq!(&talker.join().unwrap(), b"through attach_fd");
    assert_eq!(closes.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A client socket connects to a server socket.
    let _client = fio_reactor::socket(&format!("tcp://{addr}"), SocketRole::Client).unwrap();
}
