//! Message receives on loopback UDP: one-shot `recvmsg` into owned buffers and multishot
//! `recvmsg` from buffer groups, with senders, empty datagrams and a group that runs dry.

mod util;

use std::cell::{Cell, RefCell};
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;

use fio_ring::{BufferPool, Datagram, Op, OpKind, PoolConfig, Ring};
use util::{collector, has_final, ring, run_until};

fn udp() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

fn pool(buffer_size: usize, count: usize) -> BufferPool {
    BufferPool::new(
        PoolConfig::new(buffer_size)
            .with_buffers_per_chunk(count)
            .with_max_buffers(count),
    )
    .unwrap()
}

#[test]
fn recvmsg_reports_data_sender_and_flags() {
    let mut ring = ring();
    require!(ring, OpKind::RecvMsg);
    let receiver = udp();
    let (first, second) = (udp(), udp());
    let to = receiver.local_addr().unwrap();
    first.send_to(b"from the first", to).unwrap();
    second.send_to(b"", to).unwrap();
    first.send_to(b"too long for eight bytes", to).unwrap();

    // A Vec target.
    let (got, handler) = collector();
    ring.submit(Op::recvmsg(&receiver, Vec::with_capacity(64), 64), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&got));
    let mut done = got.borrow_mut().pop().unwrap();
    assert_eq!(done.result().unwrap(), 14);
    assert_eq!(done.source_addr(), Some(first.local_addr().unwrap()));
    assert_eq!(done.msg_flags() & libc::MSG_TRUNC, 0);
    assert_eq!(
        done.take_control(),
        Some(Vec::new()),
        "no ancillary data asked for"
    );
    assert_eq!(&done.take_read_buf().unwrap()[..], b"from the first");

    // An empty datagram still has a sender, and a pooled target comes out as a datagram.
    let pool = pool(8, 2);
    let (got, handler) = collector();
    ring.submit(Op::recvmsg(&receiver, pool.take().unwrap(), 0), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&got));
    let mut done = got.borrow_mut().pop().unwrap();
    assert_eq!(done.result().unwrap(), 0);
    let datagram = done.take_datagram().unwrap();
    assert!(datagram.is_empty());
    assert_eq!(datagram.source(), Some(second.local_addr().unwrap()));

    // Cut to the buffer: MSG_TRUNC.
    let (got, handler) = collector();
    ring.submit(Op::recvmsg(&receiver, pool.take().unwrap(), 0), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&got));
    let mut done = got.borrow_mut().pop().unwrap();
    assert_ne!(done.msg_flags() & libc::MSG_TRUNC, 0);
    let datagram = done.take_datagram().unwrap();
    assert!(datagram.is_truncated());
    assert_eq!(datagram.payload(), b"too long");
    assert_eq!(&datagram.into_buffer()[..], b"too long");
}

#[test]
fn cancelled_recvmsg_gives_its_buffer_back() {
    let mut ring = ring();
    require!(ring, OpKind::RecvMsg);
    let receiver = udp();
    let (got, handler) = collector();
    let id = ring
        .submit(Op::recvmsg(&receiver, Vec::with_capacity(16), 0), handler)
        .unwrap();
    ring.cancel(id).unwrap();
    run_until(&mut ring, || has_final(&got));
    let mut done = got.borrow_mut().pop().unwrap();
    assert_eq!(
        done.result().unwrap_err().raw_os_error(),
        Some(libc::ECANCELED)
    );
    assert_eq!(done.source_addr(), None);
    assert!(done.take_datagram().is_none());
    assert_eq!(done.take_read_buf().unwrap().capacity(), 16);
}

/// Datagrams a multishot handler saw: (sender, payload).
type Seen = Rc<RefCell<Vec<(Option<SocketAddr>, Vec<u8>)>>>;

#[test]
fn multishot_recvmsg_delivers_datagrams_with_their_senders() {
    let mut ring = ring();
    require!(ring, ring.features().multishot_recv(), "multishot recvmsg");
    let group = ring.register_buffer_group(pool(1024, 8), 8).unwrap();
    let receiver = udp();
    let (first, second) = (udp(), udp());
    let seen: Seen = Rc::default();
    let ended = Rc::new(Cell::new(None));
    let (sink, end) = (seen.clone(), ended.clone());
    let id = ring
        .submit(
            Op::recvmsg_multishot(&receiver, group),
            move |_, mut done| {
                if let Some(source) = done.source_addr() {
                    let datagram = done.take_datagram().unwrap();
                    assert_eq!(datagram.source(), Some(source));
                    assert!(!datagram.is_truncated());
                    let payload = datagram.payload().to_vec();
                    let buffer = datagram.into_buffer();
                    assert_eq!(buffer[..], payload[..], "compacted in place");
                    sink.borrow_mut().push((Some(source), payload));
                }
                if done.is_final() {
                    end.set(Some(done.raw_result()));
                }
            },
        )
        .unwrap();
    let to = receiver.local_addr().unwrap();
    let mut expected = Vec::new();
    for round in 0..5u8 {
        let (sender, payload) = if round % 2 == 0 {
            (&first, vec![round; 100 + usize::from(round)])
        } else {
            (&second, Vec::new())
        };
        sender.send_to(&payload, to).unwrap();
        expected.push((Some(sender.local_addr().unwrap()), payload));
        run_until(&mut ring, || seen.borrow().len() == expected.len());
    }
    assert_eq!(*seen.borrow(), expected, "in order, empty ones included");
    assert!(ring.is_in_flight(id));
    ring.cancel(id).unwrap();
    run_until(&mut ring, || ended.get().is_some());
    assert_eq!(ended.get(), Some(-libc::ECANCELED));
    assert_eq!(ring.buffer_group(group).unwrap().available(), 8);
}

#[test]
fn a_dry_group_starves_multishot_recvmsg_and_it_recovers() {
    let mut ring = ring();
    require!(ring, ring.features().multishot_recv(), "multishot recvmsg");
    // Four buffers for twenty datagrams, all queued in the socket before the receive starts.
    let group = ring.register_buffer_group(pool(256, 4), 4).unwrap();
    let receiver = udp();
    let sender = udp();
    let to = receiver.local_addr().unwrap();
    let expected: Vec<Vec<u8>> = (0..20u8).map(|n| vec![n; usize::from(n) * 3]).collect();
    for payload in &expected {
        sender.send_to(payload, to).unwrap();
    }
    let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    // Datagrams are held past the handler and released at the end of the tick, so the group
    // stays dry until then.
    let held: Rc<RefCell<Vec<Datagram>>> = Rc::default();
    let saw_missing = Rc::new(Cell::new(0usize));
    let ended = Rc::new(Cell::new(None));
    let (sink, hold, missing, end) = (
        seen.clone(),
        held.clone(),
        saw_missing.clone(),
        ended.clone(),
    );
    let id = ring
        .submit(
            Op::recvmsg_multishot(&receiver, group),
            move |ring: &mut Ring, mut done| {
                if let Some(datagram) = done.take_datagram() {
                    assert_eq!(datagram.source(), Some(sender.local_addr().unwrap()));
                    sink.borrow_mut().push(datagram.payload().to_vec());
                    hold.borrow_mut().push(datagram);
                }
                if done.is_final() {
                    end.set(Some(done.raw_result()));
                }
                let (hold, missing) = (hold.clone(), missing.clone());
                ring.on_tick_end(move |ring| {
                    let dry = ring.buffer_group(group).map_or(0, |g| g.missing());
                    missing.set(missing.get().max(dry));
                    hold.borrow_mut().clear();
                });
            },
        )
        .unwrap();
    run_until(&mut ring, || seen.borrow().len() >= expected.len());
    assert_eq!(*seen.borrow(), expected, "every datagram, in order");
    assert_eq!(ended.get(), None, "ENOBUFS never reaches the handler");
    assert_eq!(saw_missing.get(), 4, "the group really ran dry");
    assert!(ring.is_in_flight(id), "one operation across every re-arm");
    ring.cancel(id).unwrap();
    run_until(&mut ring, || ended.get().is_some());
    assert_eq!(ended.get(), Some(-libc::ECANCELED));
}
