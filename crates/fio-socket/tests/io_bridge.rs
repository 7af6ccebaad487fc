//! The `std::io` bridge: `Read`/`Write` over a socket, `WouldBlock` when nothing is buffered,
//! and an owning stream that closes its socket when dropped.

mod util;

use std::io::{ErrorKind, Read, Write};

use fio_socket::SocketConfig;
use util::{Harness, tcp_pair};

#[test]
fn read_and_write_bridge_the_socket() {
    let mut harness = Harness::new(4096, 16);
    let (ours, mut peer) = tcp_pair();
    let socket = harness.open(ours, |_, _, _| {});
    let mut buf = [0u8; 16];
    let error = socket.stream(&mut harness.ring).read(&mut buf).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::WouldBlock);
    assert_eq!(socket.stream(&mut harness.ring).read(&mut []).unwrap(), 0);

    write!(socket.stream(&mut harness.ring), "{} + {} = {}", 2, 2, 4).unwrap();
    harness.run_until(10, |_| socket.queued() == 0);
    let mut reply = [0u8; 9];
    peer.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"2 + 2 = 4");

    peer.write_all(b"abc").unwrap();
    drop(peer);
    harness.run_until(10, |_| socket.is_eof());
    let mut text = String::new();
    socket
        .stream(&mut harness.ring)
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "abc", "read_to_string stops at the end of the stream");
    socket.close(&mut harness.ring).unwrap();
    let error = socket.stream(&mut harness.ring).write(b"x").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BrokenPipe);
    harness.run_until_idle();
}

#[test]
fn writes_would_block_over_the_soft_limit() {
    let mut harness = Harness::new(4096, 16);
    let (ours, _peer) = tcp_pair();
    let config: SocketConfig = harness.config().with_send_soft_limit(10);
    let socket = harness.open_with(config, ours, |_, _, _| {});
    {
        let mut stream = socket.stream(&mut harness.ring);
        assert_eq!(stream.write(b"0123456789").unwrap(), 10);
        let error = stream.write(b"more").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::WouldBlock);
    }
    harness.run_until(10, |_| socket.queued() == 0);
    assert!(socket.is_writable());
    socket.abort(&mut harness.ring).unwrap();
    harness.run_until_idle();
}

#[test]
fn an_owning_stream_closes_its_socket_on_drop() {
    let mut harness = Harness::new(4096, 16);
    let (ours, mut peer) = tcp_pair();
    let socket = harness.open(ours, |_, _, _| {});
    {
        let mut stream = socket.into_stream(&mut harness.ring);
        stream.write_all(b"owned").unwrap();
        assert!(stream.socket().is_open());
    }
    harness.run_until_idle();
    let mut all = String::new();
    peer.read_to_string(&mut all).unwrap();
    assert_eq!(all, "owned");
}
