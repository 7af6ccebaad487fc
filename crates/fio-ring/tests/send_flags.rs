//! Send flags: `MSG_MORE` and `MSG_WAITALL` on loopback TCP, `MSG_NOSIGNAL` kept underneath.

mod util;

use std::io::Read;
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use fio_ring::{KernelVersion, Op, OpKind, SendFlags, WriteBuf};
use util::{collector, has_final, pattern, ring, run_until, tcp_pair};

#[test]
fn more_is_accepted_and_the_stream_stays_whole() {
    let mut ring = ring();
    require!(ring, OpKind::Send);
    let (client, mut server) = tcp_pair();
    let (corked, handler) = collector();
    ring.submit(
        Op::send_with_flags(&client, "cork", SendFlags::MORE),
        handler,
    )
    .unwrap();
    let (gathered, handler) = collector();
    let parts = vec![WriteBuf::from("ed "), WriteBuf::from(b"and ".to_vec())];
    ring.submit(
        Op::sendmsg_with_flags(&client, parts, None, SendFlags::MORE).unwrap(),
        handler,
    )
    .unwrap();
    let (flushed, handler) = collector();
    ring.submit(Op::send(&client, "flushed"), handler).unwrap();
    run_until(&mut ring, || {
        has_final(&corked) && has_final(&gathered) && has_final(&flushed)
    });
    assert_eq!(corked.borrow()[0].result().unwrap(), 4);
    assert_eq!(gathered.borrow()[0].result().unwrap(), 7);
    assert_eq!(flushed.borrow()[0].result().unwrap(), 7);
    let mut got = [0u8; 18];
    server.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"corked and flushed");
}

#[test]
fn waitall_sends_everything_in_one_completion() {
    let mut ring = ring();
    require!(ring, OpKind::Send);
    require!(
        ring,
        ring.features().kernel() >= KernelVersion::new(5, 18, 0),
        "MSG_WAITALL on sends"
    );
    let (client, mut server) = tcp_pair();
    // Small socket buffers: the 4 MiB cannot fit, so the kernel must wait for the reader.
    fio_sys::set_send_buffer_size(client.as_fd(), 16 * 1024).unwrap();
    fio_sys::set_recv_buffer_size(server.as_fd(), 16 * 1024).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let data = pattern(4 << 20);
    let expected = data.len();
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; expected];
        server.read_exact(&mut got).map(|()| got)
    });
    let (sent, handler) = collector();
    ring.submit(
        Op::send_with_flags(&client, data.clone(), SendFlags::WAITALL),
        handler,
    )
    .unwrap();
    run_until(&mut ring, || has_final(&sent));
    let mut sent = sent.borrow_mut();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].result().unwrap() as usize,
        data.len(),
        "no short send"
    );
    assert!(sent[0].take_write_buf().unwrap().is_empty());
    let got = reader.join().unwrap().unwrap();
    assert!(got == data, "the stream arrived intact");
}

#[test]
fn a_closed_peer_is_epipe_not_sigpipe() {
    let mut ring = ring();
    require!(ring, OpKind::Send);
    let (client, server) = tcp_pair();
    drop(server);
    // The first send may still be accepted before the reset arrives; keep sending until an
    // error shows up. A SIGPIPE would kill the test process instead.
    let mut error = None;
    for _ in 0..50 {
        let (sent, handler) = collector();
        ring.submit(
            Op::send_with_flags(&client, "x", SendFlags::DONTWAIT),
            handler,
        )
        .unwrap();
        run_until(&mut ring, || has_final(&sent));
        if let Err(failure) = sent.borrow()[0].result() {
            error = failure.raw_os_error();
            break;
        }
    }
    assert!(
        matches!(error, Some(libc::EPIPE | libc::ECONNRESET)),
        "{error:?}"
    );
}
