//! UDP over loopback: datagrams with their source address, `sendmsg` to an address, and
//! truncation reporting.

mod util;

use std::io::IoSlice;
use std::os::fd::AsFd;

use fio_sys::{ConnectStatus, PollFlags, RecvFlags, SendFlags, Url};
use util::wait_for;

#[test]
fn datagrams_carry_their_source_address() {
    let server = fio_sys::server_socket(&Url::parse("udp://127.0.0.1:0").unwrap()).unwrap();
    let server_addr = fio_sys::local_addr(server.as_fd()).unwrap();
    let url = Url::parse(&format!("udp://{server_addr}")).unwrap();
    let (client, status) = fio_sys::client_socket(&url).unwrap();
    assert_eq!(status, ConnectStatus::Connected);
    let client_addr = fio_sys::local_addr(client.as_fd()).unwrap();

    fio_sys::send(client.as_fd(), b"question", SendFlags::empty()).unwrap();
    wait_for(server.as_fd(), PollFlags::IN);
    let mut buf = [0u8; 64];
    let (n, source) = fio_sys::recv_from(server.as_fd(), &mut buf, RecvFlags::empty()).unwrap();
    assert_eq!(&buf[..n], b"question");
    assert_eq!(source, client_addr);

    fio_sys::send_to(server.as_fd(), b"answer", &source, SendFlags::empty()).unwrap();
    wait_for(client.as_fd(), PollFlags::IN);
    let n = fio_sys::recv(client.as_fd(), &mut buf, RecvFlags::empty()).unwrap();
    assert_eq!(&buf[..n], b"answer");
}

#[test]
fn sendmsg_to_an_address_and_trunc_reveals_cut_datagrams() {
    let receiver = fio_sys::server_socket(&Url::parse("udp://127.0.0.1:0").unwrap()).unwrap();
    let target = fio_sys::local_addr(receiver.as_fd()).unwrap();
    let sender = fio_sys::server_socket(&Url::parse("udp://127.0.0.1:0").unwrap()).unwrap();
    let parts = [IoSlice::new(b"0123"), IoSlice::new(b"456789")];
    let sent = fio_sys::sendmsg(sender.as_fd(), &parts, Some(&target), SendFlags::empty());
    assert_eq!(sent.unwrap(), 10);

    wait_for(receiver.as_fd(), PollFlags::IN);
    let mut small = [0u8; 4];
    let (n, source) = fio_sys::recv_from(receiver.as_fd(), &mut small, RecvFlags::TRUNC).unwrap();
    assert_eq!(n, 10, "MSG_TRUNC reports the datagram's full length");
    assert_eq!(&small, b"0123");
    assert_eq!(source, fio_sys::local_addr(sender.as_fd()).unwrap());
}
