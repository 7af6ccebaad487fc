//! Socket operations against loopback TCP and UDP sockets.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;

use fio_ring::{AcceptFlags, Op, OpKind, WriteBuf};
use util::{collector, has_final, pattern, ring, run_until, tcp_pair};

#[test]
fn send_and_recv_on_a_tcp_pair() {
    let mut ring = ring();
    require!(ring, OpKind::Send);
    let (client, server) = tcp_pair();
    let (sent, handler) = collector();
    ring.submit(Op::send(&client, "ping"), handler).unwrap();
    let (received, handler) = collector();
    ring.submit(Op::recv(&server, Vec::with_capacity(64)), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&sent) && has_final(&received));
    assert_eq!(sent.borrow()[0].result().unwrap(), 4);
    let buf = received
        .borrow_mut()
        .pop()
        .unwrap()
        .take_read_buf()
        .unwrap();
    assert_eq!(&buf[..], b"ping");
}

#[test]
fn sendmsg_gathers_buffers_and_addresses_datagrams() {
    let mut ring = ring();
    require!(ring, OpKind::SendMsg);
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let parts = vec![WriteBuf::from("da"), WriteBuf::from(b"ta".to_vec())];
    let (sent, handler) = collector();
    ring.submit(
        Op::sendmsg(&sender, parts, Some(receiver.local_addr().unwrap())).unwrap(),
        handler,
    )
    .unwrap();
    run_until(&mut ring, || has_final(&sent));
    assert_eq!(sent.borrow()[0].result().unwrap(), 4);
    let mut datagram = [0u8; 16];
    let (len, from) = receiver.recv_from(&mut datagram).unwrap();
    assert_eq!(&datagram[..len], b"data");
    assert_eq!(from, sender.local_addr().unwrap());

    // Connected TCP: no address.
    let (client, mut server) = tcp_pair();
    let (sent, handler) = collector();
    let parts = vec![WriteBuf::from("hello "), WriteBuf::from("tcp")];
    ring.submit(Op::sendmsg(&client, parts, None).unwrap(), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&sent));
    let mut got = [0u8; 9];
    server.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello tcp");
}

#[test]
fn send_zc_releases_the_buffer_with_the_notification() {
    let mut ring = ring();
    require!(ring, OpKind::SendZc);
    let (client, mut server) = tcp_pair();
    let data = pattern(20_000);
    let (sent, handler) = collector();
    ring.submit(Op::send_zc(&client, data.clone()), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&sent));
    let mut sent = sent.borrow_mut();
    let last = sent.len() - 1;
    assert!(sent.len() >= 2, "a result then a notification: {sent:?}");
    assert_eq!(sent[0].result().unwrap() as usize, data.len());
    assert!(!sent[0].is_final());
    assert!(sent[last].is_notification());
    let buf = sent[last].take_write_buf().unwrap();
    assert!(
        buf.is_empty(),
        "advanced by the byte count of the first completion"
    );
    let mut got = vec![0u8; data.len()];
    server.read_exact(&mut got).unwrap();
    assert_eq!(got, data);
}

#[test]
fn accept_connect_and_shutdown() {
    let mut ring = ring();
    require!(ring, OpKind::Socket);
    require!(ring, OpKind::Connect);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (accepted, handler) = collector();
    ring.submit(Op::accept(&listener), handler).unwrap();
    let (socket, handler) = collector();
    ring.submit(Op::socket(libc::AF_INET, libc::SOCK_STREAM, 0), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&socket));
    let fd = socket.borrow_mut().pop().unwrap().take_fd().unwrap();

    let (connected, handler) = collector();
    ring.submit(
        Op::connect(fd.as_fd(), listener.local_addr().unwrap()),
        handler,
    )
    .unwrap();
    run_until(&mut ring, || has_final(&connected) && has_final(&accepted));
    assert_eq!(connected.borrow()[0].result().unwrap(), 0);
    let server = TcpStream::from(accepted.borrow_mut().pop().unwrap().take_fd().unwrap());

    let (shut, handler) = collector();
    ring.submit(Op::shutdown(fd.as_fd(), Shutdown::Write), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&shut));
    assert_eq!(shut.borrow()[0].result().unwrap(), 0);
    let mut rest = Vec::new();
    (&server).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the peer sees EOF after shutdown(SHUT_WR)");
}

#[test]
fn multishot_accept_yields_one_descriptor_per_connection() {
    let mut ring = ring();
    require!(ring, OpKind::AcceptMultishot);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (accepted, handler) = collector();
    let id = ring
        .submit(Op::accept_multishot(&listener), handler)
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    run_until(&mut ring, || accepted.borrow().len() >= 3);
    for completion in accepted.borrow_mut().iter_mut() {
        assert!(!completion.is_final());
        assert!(completion.take_fd().is_some());
    }
    ring.cancel(id).unwrap();
    run_until(&mut ring, || has_final(&accepted));
    let accepted = accepted.borrow();
    let last = accepted.last().unwrap();
    assert_eq!(
        last.result().unwrap_err().raw_os_error(),
        Some(libc::ECANCELED)
    );
    drop(clients);
}

#[test]
fn accepted_sockets_are_non_blocking_when_asked() {
    let mut ring = ring();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // One-shot accepts: the default blocks, `NONBLOCK` doesn't; both are close-on-exec.
    for flags in [AcceptFlags::empty(), AcceptFlags::NONBLOCK] {
        let (accepted, handler) = collector();
        ring.submit(Op::accept_with_flags(&listener, flags), handler)
            .unwrap();
        let _client = TcpStream::connect(addr).unwrap();
        run_until(&mut ring, || has_final(&accepted));
        let fd = accepted.borrow_mut().pop().unwrap().take_fd().unwrap();
        assert_eq!(
            fio_sys::is_nonblocking(fd.as_fd()).unwrap(),
            !flags.is_empty()
        );
        assert!(fio_sys::is_cloexec(fd.as_fd()).unwrap());
    }
    require!(ring, OpKind::AcceptMultishot);
    let (accepted, handler) = collector();
    let id = ring
        .submit(
            Op::accept_multishot_with_flags(&listener, AcceptFlags::NONBLOCK),
            handler,
        )
        .unwrap();
    let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    run_until(&mut ring, || accepted.borrow().len() >= 3);
    for completion in accepted.borrow_mut().iter_mut().take(3) {
        let fd = completion.take_fd().unwrap();
        assert!(fio_sys::is_nonblocking(fd.as_fd()).unwrap());
        assert!(fio_sys::is_cloexec(fd.as_fd()).unwrap());
    }
    ring.cancel(id).unwrap();
    run_until(&mut ring, || has_final(&accepted));
    drop(clients);
}

#[test]
fn poll_one_shot_and_multishot() {
    let mut ring = ring();
    require!(ring, OpKind::Poll);
    let (mut client, server) = tcp_pair();
    let (once, handler) = collector();
    ring.submit(Op::poll(&server, libc::POLLIN as u32), handler)
        .unwrap();
    client.write_all(b"x").unwrap();
    run_until(&mut ring, || has_final(&once));
    assert_ne!(once.borrow()[0].result().unwrap() & libc::POLLIN as u32, 0);

    require!(ring, ring.features().multishot_poll(), "multishot poll");
    let (reader, writer) = fio_sys::pipe().unwrap();
    let (many, handler) = collector();
    let id = ring
        .submit(Op::poll_multishot(&reader, libc::POLLIN as u32), handler)
        .unwrap();
    let mut writer = std::fs::File::from(writer);
    let mut reader = std::fs::File::from(reader);
    for round in 1..=3 {
        writer.write_all(b"y").unwrap();
        run_until(&mut ring, || many.borrow().len() >= round);
        let mut byte = [0u8; 1];
        reader.read_exact(&mut byte).unwrap();
    }
    assert!(many.borrow().iter().all(|c| !c.is_final()));
    ring.cancel(id).unwrap();
    run_until(&mut ring, || has_final(&many));
}

#[test]
fn short_sends_come_back_with_the_unsent_rest() {
    let mut ring = ring();
    let (client, mut server) = tcp_pair();
    // Big enough to exceed the socket buffers, so at least one send is short or waits.
    let data = pattern(8 << 20);
    let mut pending = Some(WriteBuf::from(data.clone()));
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; 8 << 20];
        server.read_exact(&mut got).map(|()| got)
    });
    for _ in 0..1000 {
        let Some(buf) = pending.take() else { break };
        let (sent, handler) = collector();
        ring.submit(Op::send(&client, buf), handler).unwrap();
        run_until(&mut ring, || has_final(&sent));
        let rest = sent.borrow_mut().pop().unwrap().take_write_buf().unwrap();
        if !rest.is_empty() {
            pending = Some(rest);
        }
    }
    assert!(pending.is_none());
    assert_eq!(reader.join().unwrap().unwrap(), data);
}
