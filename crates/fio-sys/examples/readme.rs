//! A loopback connection through fio-sys: listen, connect, accept, send, receive.

use std::os::fd::AsFd;
use std::time::Duration;

use fio_sys::{PollFlags, RecvFlags, SendFlags, Url};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wait = Some(Duration::from_secs(10));
    // A non-blocking listener on a port the kernel picks, and a client connecting to it.
    let server = fio_sys::server_socket(&Url::parse("tcp://127.0.0.1:0")?)?;
    let bound = fio_sys::local_addr(server.as_fd())?;
    let (client, _status) = fio_sys::client_socket(&format!("tcp://{bound}").parse()?)?;

    fio_sys::poll(server.as_fd(), PollFlags::IN, wait)?;
    let (conn, peer) = fio_sys::accept(server.as_fd())?; // non-blocking and close-on-exec
    println!("accepted {peer} on {bound}");

    fio_sys::poll(client.as_fd(), PollFlags::OUT, wait)?;
    fio_sys::send(client.as_fd(), b"hello", SendFlags::NOSIGNAL)?;
    fio_sys::poll(conn.as_fd(), PollFlags::IN, wait)?;
    let mut buf = [0u8; 16];
    let n = fio_sys::recv(conn.as_fd(), &mut buf, RecvFlags::empty())?;
    assert_eq!(&buf[..n], b"hello");
    Ok(())
}
