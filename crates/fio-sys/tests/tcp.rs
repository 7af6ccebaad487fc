//! TCP over loopback: listen, non-blocking connect, accept4 flags, data round trips,
//! sendfile, shutdown, addresses and options.

mod util;

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::time::Instant;

use fio_sys::{ConnectStatus, Domain, PollFlags, RecvFlags, SendFlags, SockAddr, SockType, Url};
use util::{DEADLINE, TempDir, connected_pair, recv_exact, wait_for};

#[test]
fn accepted_sockets_are_nonblocking_and_cloexec() {
    let (server, client, accepted) = connected_pair("tcp://127.0.0.1:0");
    for fd in [server.as_fd(), client.as_fd(), accepted.as_fd()] {
        assert!(fio_sys::is_nonblocking(fd).unwrap());
        assert!(fio_sys::is_cloexec(fd).unwrap());
    }
    assert!(fio_sys::reuse_addr(server.as_fd()).unwrap());
}

#[test]
fn peer_and_local_addresses_match_across_the_connection() {
    let (server, client, accepted) = connected_pair("tcp://127.0.0.1:0");
    let server_addr = fio_sys::local_addr(server.as_fd()).unwrap();
    let client_addr = fio_sys::local_addr(client.as_fd()).unwrap();
    assert_eq!(fio_sys::peer_addr(client.as_fd()).unwrap(), server_addr);
    assert_eq!(fio_sys::local_addr(accepted.as_fd()).unwrap(), server_addr);
    assert_eq!(fio_sys::peer_addr(accepted.as_fd()).unwrap(), client_addr);
    let inet = client_addr.as_inet().unwrap();
    assert_eq!(inet.ip().to_string(), "127.0.0.1");
    assert_ne!(inet.port(), 0);
    let error = fio_sys::peer_addr(server.as_fd()).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::NotConnected);
}

#[test]
fn send_and_recv_round_trip_with_flags() {
    let (_server, client, accepted) = connected_pair("tcp://127.0.0.1:0");
    let sent = fio_sys::send(client.as_fd(), b"hello", SendFlags::NOSIGNAL).unwrap();
    assert_eq!(sent, 5);
    wait_for(accepted.as_fd(), PollFlags::IN);
    let mut peeked = [0u8; 5];
    let n = fio_sys::recv(accepted.as_fd(), &mut peeked, RecvFlags::PEEK).unwrap();
    assert_eq!(&peeked[..n], &b"hello"[..n]);
    assert_eq!(recv_exact(accepted.as_fd(), 5), b"hello");
    let mut empty = [0u8; 8];
    let error = fio_sys::recv(accepted.as_fd(), &mut empty, RecvFlags::DONTWAIT).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn writev_and_sendmsg_gather_buffers_and_readv_scatters() {
    let (_server, client, accepted) = connected_pair("tcp://127.0.0.1:0");
    let parts = [IoSlice::new(b"ab"), IoSlice::new(b""), IoSlice::new(b"cde")];
    assert_eq!(fio_sys::writev(client.as_fd(), &parts).unwrap(), 5);
    let flags = SendFlags::NOSIGNAL | SendFlags::MORE;
    assert_eq!(format!("{flags:?}"), "SendFlags(NOSIGNAL | MORE)");
    let parts = [IoSlice::new(b"fg"), IoSlice::new(b"h")];
    assert_eq!(
        fio_sys::sendmsg(client.as_fd(), &parts, None, flags).unwrap(),
        3
    );
    fio_sys::send(client.as_fd(), b"ij", SendFlags::NOSIGNAL).unwrap();
    assert_eq!(recv_exact(accepted.as_fd(), 8), b"abcdefgh");

    wait_for(accepted.as_fd(), PollFlags::IN);
    let (mut first, mut second) = ([0u8; 1], [0u8; 4]);
    let mut bufs = [IoSliceMut::new(&mut first), IoSliceMut::new(&mut second)];
    let n = fio_sys::readv(accepted.as_fd(), &mut bufs).unwrap();
    assert!(n >= 1);
    assert_eq!(first, *b"i");
    if n == 2 {
        assert_eq!(second[0], b'j');
    }
}

#[test]
fn sendfile_streams_a_file_into_a_socket() {
    let dir = TempDir::new("sendfile");
    let path = dir.join("payload");
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&payload)
        .unwrap();
    let file = std::fs::File::open(&path).unwrap();

    let (_server, client, accepted) = connected_pair("tcp://127.0.0.1:0");
    let (mut offset, mut received) = (100u64, Vec::new());
    let expected = &payload[100..];
    let started = Instant::now();
    // One thread drives both ends: send until the socket is full, then drain the peer.
    while received.len() < expected.len() {
        assert!(started.elapsed() < DEADLINE, "sendfile stalled at {offset}");
        if (offset as usize) < payload.len() {
            match fio_sys::sendfile(client.as_fd(), file.as_fd(), &mut offset, 64 * 1024) {
                Ok(n) => assert!(n > 0),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => panic!("sendfile failed: {error}"),
            }
        }
        let mut chunk = [0u8; 65536];
        match fio_sys::recv(accepted.as_fd(), &mut chunk, RecvFlags::empty()) {
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                if offset as usize == payload.len() {
                    wait_for(accepted.as_fd(), PollFlags::IN);
                }
            }
            Err(error) => panic!("recv failed: {error}"),
        }
    }
    assert_eq!(offset as usize, payload.len());
    assert!(received == expected, "sendfile delivered different bytes");
    assert_eq!(
        fio_sys::sendfile(client.as_fd(), file.as_fd(), &mut offset, 10).unwrap(),
        0,
        "sendfile at end of file sends nothing"
    );
}

#[test]
fn shutdown_write_is_seen_as_eof_by_the_peer() {
    let (_server, client, accepted) = connected_pair("tcp://127.0.0.1:0");
    fio_sys::send(client.as_fd(), b"last", SendFlags::NOSIGNAL).unwrap();
    fio_sys::shutdown(client.as_fd(), Shutdown::Write).unwrap();
    assert_eq!(recv_exact(accepted.as_fd(), 100), b"last");
    let ready = wait_for(accepted.as_fd(), PollFlags::IN | PollFlags::RDHUP);
    assert!(ready.contains(PollFlags::RDHUP), "{ready:?}");
    let mut buf = [0u8; 4];
    assert_eq!(
        fio_sys::recv(accepted.as_fd(), &mut buf, RecvFlags::empty()).unwrap(),
        0
    );
    // The other direction still works.
    fio_sys::send(accepted.as_fd(), b"ok", SendFlags::NOSIGNAL).unwrap();
    assert_eq!(recv_exact(client.as_fd(), 2), b"ok");
}

#[test]
fn refused_connection_is_reported_by_take_error() {
    // A bound socket that never listens holds a port on which connects are refused.
    let holder = fio_sys::socket(Domain::Ipv4, SockType::Stream, true).unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    fio_sys::bind(holder.as_fd(), &SockAddr::from(loopback)).unwrap();
    let target = fio_sys::local_addr(holder.as_fd()).unwrap();

    let client = fio_sys::socket(Domain::Ipv4, SockType::Stream, true).unwrap();
    match fio_sys::connect(client.as_fd(), &target) {
        Ok(ConnectStatus::InProgress) => {
            wait_for(client.as_fd(), PollFlags::OUT);
            let error = fio_sys::take_error(client.as_fd()).unwrap().unwrap();
            assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        }
        Ok(ConnectStatus::Connected) => panic!("connected to a socket that does not listen"),
        Err(error) => assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused),
    }
}

#[test]
fn socket_options_round_trip() {
    let (server, client, _accepted) = connected_pair("tcp://127.0.0.1:0");
    fio_sys::set_nodelay(client.as_fd(), true).unwrap();
    assert!(fio_sys::nodelay(client.as_fd()).unwrap());
    fio_sys::set_nodelay(client.as_fd(), false).unwrap();
    assert!(!fio_sys::nodelay(client.as_fd()).unwrap());
    fio_sys::set_send_buffer_size(client.as_fd(), 64 * 1024).unwrap();
    assert!(fio_sys::send_buffer_size(client.as_fd()).unwrap() >= 64 * 1024);
    fio_sys::set_recv_buffer_size(client.as_fd(), 32 * 1024).unwrap();
    assert!(fio_sys::recv_buffer_size(client.as_fd()).unwrap() >= 32 * 1024);
    assert!(fio_sys::take_error(client.as_fd()).unwrap().is_none());
    // TCP_NODELAY means nothing on a Unix socket.
    let (unix, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    assert!(fio_sys::set_nodelay(unix.as_fd(), true).is_err());
    drop(server);
}

#[test]
fn reuse_port_lets_two_listeners_share_a_port() {
    let first = fio_sys::socket(Domain::Ipv4, SockType::Stream, true).unwrap();
    fio_sys::set_reuse_port(first.as_fd(), true).unwrap();
    assert!(fio_sys::reuse_port(first.as_fd()).unwrap());
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    fio_sys::bind(first.as_fd(), &SockAddr::from(loopback)).unwrap();
    fio_sys::listen(first.as_fd(), Some(16)).unwrap();
    let shared = fio_sys::local_addr(first.as_fd()).unwrap();

    let second = fio_sys::socket(Domain::Ipv4, SockType::Stream, true).unwrap();
    fio_sys::set_reuse_port(second.as_fd(), true).unwrap();
    fio_sys::bind(second.as_fd(), &shared).unwrap();
    fio_sys::listen(second.as_fd(), None).unwrap();

    let third = fio_sys::socket(Domain::Ipv4, SockType::Stream, true).unwrap();
    let error = fio_sys::bind(third.as_fd(), &shared).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
}

#[test]
fn blocking_mode_toggles() {
    let fd = fio_sys::socket(Domain::Ipv4, SockType::Stream, false).unwrap();
    assert!(!fio_sys::is_nonblocking(fd.as_fd()).unwrap());
    assert!(fio_sys::is_cloexec(fd.as_fd()).unwrap());
    fio_sys::set_nonblocking(fd.as_fd()).unwrap();
    assert!(fio_sys::is_nonblocking(fd.as_fd()).unwrap());
    fio_sys::set_blocking(fd.as_fd()).unwrap();
    assert!(!fio_sys::is_nonblocking(fd.as_fd()).unwrap());
    assert!(fio_sys::is_cloexec(fd.as_fd()).unwrap());
}

#[test]
fn accept_on_an_idle_listener_would_block() {
    let server = fio_sys::server_socket(&Url::parse("tcp://127.0.0.1:0").unwrap()).unwrap();
    let error = fio_sys::accept(server.as_fd()).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn ipv6_loopback_round_trip() {
    if !util::ipv6_loopback_available() {
        return;
    }
    let (server, client, accepted) = connected_pair("tcp://[::1]:0");
    let bound = fio_sys::local_addr(server.as_fd()).unwrap();
    assert_eq!(bound.domain(), Domain::Ipv6);
    assert!(bound.to_string().starts_with("[::1]:"), "{bound}");
    assert_eq!(
        fio_sys::peer_addr(accepted.as_fd()).unwrap(),
        fio_sys::local_addr(client.as_fd()).unwrap()
    );
    fio_sys::send(client.as_fd(), b"six", SendFlags::NOSIGNAL).unwrap();
    assert_eq!(recv_exact(accepted.as_fd(), 3), b"six");
}
