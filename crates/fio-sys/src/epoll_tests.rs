//! [`Epoll`] on loopback TCP sockets and its own eventfd.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;

use super::*;

/// A wait long enough never to end by itself in a passing test.
const LONG: Option<Duration> = Some(Duration::from_secs(20));

/// A connected loopback pair: the accepted end (non-blocking) and its client.
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    (accepted, client)
}

/// The keys and events of the last wait.
fn events_of(events: &EventBuffer) -> Vec<EpollEvent> {
    events.iter().collect()
}

#[test]
fn a_level_triggered_descriptor_reports_until_drained() {
    let epoll = Epoll::new().unwrap();
    let (accepted, mut client) = pair();
    epoll.add(accepted.as_fd(), Interest::READABLE, 3).unwrap();
    client.write_all(b"ab").unwrap();
    let mut events = EventBuffer::with_capacity(8);
    for _ in 0..2 {
        assert_eq!(epoll.wait(&mut events, LONG).unwrap(), 1);
        let event = events_of(&events)[0];
        assert_eq!(event.key(), 3);
        assert!(event.readable() && !event.writable() && !event.read_closed());
    }
    let mut buf = [0u8; 8];
    assert_eq!((&accepted).read(&mut buf).unwrap(), 2);
    assert_eq!(epoll.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
    epoll.delete(accepted.as_fd()).unwrap();
    client.write_all(b"c").unwrap();
    assert_eq!(epoll.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
}

#[test]
fn an_edge_is_reported_once() {
    let epoll = Epoll::new().unwrap();
    let (accepted, mut client) = pair();
    let interest = Interest::READABLE | Interest::WRITABLE | Interest::EDGE;
    let registration = epoll.register(accepted.into(), interest, 5).unwrap();
    let mut events = EventBuffer::default();
    // A fresh connection is writable: one edge.
    assert_eq!(epoll.wait(&mut events, LONG).unwrap(), 1);
    assert!(events_of(&events)[0].writable());
    assert_eq!(epoll.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
    client.write_all(b"x").unwrap();
    assert_eq!(epoll.wait(&mut events, LONG).unwrap(), 1);
    let event = events_of(&events)[0];
    assert!(event.key() == 5 && event.readable());
    // Not received, yet not reported again: no new edge.
    assert_eq!(epoll.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
    client.write_all(b"y").unwrap();
    assert_eq!(epoll.wait(&mut events, LONG).unwrap(), 1);
    drop(registration);
}

#[test]
fn an_end_of_stream_is_reported_as_read_closed() {
    let epoll = Epoll::new().unwrap();
    let (accepted, mut client) = pair();
    let interest = Interest::READABLE | Interest::READ_CLOSED | Interest::EDGE;
    let _registration = epoll.register(accepted.into(), interest, 1).unwrap();
    // Bytes and the end of stream before anyone looks: one event says both.
    client.write_all(b"bye").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut events = EventBuffer::default();
    let mut seen = Interest::empty();
    for _ in 0..10 {
        epoll.wait(&mut events, LONG).unwrap();
        for event in events.iter() {
            assert!(!event.hangup() && !event.error());
            if event.readable() {
                seen |= Interest::READABLE;
            }
            if event.read_closed() {
                seen |= Interest::READ_CLOSED;
            }
        }
        if seen.contains(Interest::READ_CLOSED) {
            break;
        }
    }
    assert_eq!(seen, Interest::READABLE | Interest::READ_CLOSED);
}

#[test]
fn a_refused_connect_is_an_error_and_a_hang_up() {
    let epoll = Epoll::new().unwrap();
    // A port nobody listens on: bind one, note it, and close it.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let socket = crate::socket(crate::Domain::Ipv4, crate::SockType::Stream, true).unwrap();
    let _ = crate::connect(socket.as_fd(), &crate::SockAddr::from(addr));
    let registration = epoll
        .register(socket, Interest::WRITABLE | Interest::EDGE, 9)
        .unwrap();
    let mut events = EventBuffer::default();
    assert_eq!(epoll.wait(&mut events, LONG).unwrap(), 1);
    let event = events_of(&events)[0];
    assert!(event.key() == 9 && event.error() && event.hangup());
    let error = crate::take_error(registration.as_fd()).unwrap().unwrap();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn urgent_data_is_reported_as_priority() {
    let epoll = Epoll::new().unwrap();
    let (accepted, client) = pair();
    let interest = Interest::READABLE | Interest::PRIORITY | Interest::EDGE;
    let _registration = epoll.register(accepted.into(), interest, 2).unwrap();
    crate::send(client.as_fd(), b"!", crate::SendFlags::OOB).unwrap();
    let mut events = EventBuffer::default();
    // The urgent pointer may come in its own segment after the normal data's edge.
    let mut seen = false;
    for _ in 0..10 {
        if epoll.wait(&mut events, LONG).unwrap() > 0 && events_of(&events)[0].priority() {
            seen = true;
            break;
        }
    }
    assert!(seen, "no EPOLLPRI for urgent data");
}

#[test]
fn oneshot_fires_once_until_modified() {
    let epoll = Epoll::new().unwrap();
    let (accepted, mut client) = pair();
    let registration = epoll
        .register(accepted.into(), Interest::READABLE | Interest::ONESHOT, 3)
        .unwrap();
    client.write_all(b"x").unwrap();
    let mut events = EventBuffer::default();
    assert_eq!(epoll.wait(&mut events, LONG).unwrap(), 1);
    // Disarmed: the unread byte reports nothing until re-armed.
    assert_eq!(epoll.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
    registration
        .modify(Interest::READABLE | Interest::ONESHOT, 4)
        .unwrap();
    assert_eq!(epoll.wait(&mut events, LONG).unwrap(), 1);
    assert_eq!(events_of(&events)[0].key(), 4);
}

#[test]
fn dropping_a_registration_leaves_the_set_before_closing() {
    let epoll = Epoll::new().unwrap();
    let (accepted, mut client) = pair();
    // A duplicate keeps the open file description alive after the registered descriptor
    // closes: without the delete, its events would still arrive under the old key.
    let duplicate = accepted.try_clone().unwrap();
    let registration = epoll
        .register(accepted.into(), Interest::READABLE, 8)
        .unwrap();
    drop(registration);
    client.write_all(b"x").unwrap();
    let mut events = EventBuffer::default();
    assert_eq!(epoll.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
    // The duplicate is not registered, so adding it works.
    epoll
        .add(duplicate.as_fd(), Interest::READABLE, 10)
        .unwrap();
    assert_eq!(epoll.wait(&mut events, LONG).unwrap(), 1);
    assert_eq!(events_of(&events)[0].key(), 10);
}

#[test]
fn a_small_buffer_leaves_the_rest_for_the_next_wait() {
    let epoll = Epoll::new().unwrap();
    let (one, mut one_peer) = pair();
    let (two, mut two_peer) = pair();
    let _one = epoll.register(one.into(), Interest::READABLE, 1).unwrap();
    let _two = epoll
        .register(two.into(), Interest::READABLE | Interest::EDGE, 2)
        .unwrap();
    one_peer.write_all(b"1").unwrap();
    two_peer.write_all(b"2").unwrap();
    let mut events = EventBuffer::with_capacity(0);
    assert_eq!(events.capacity(), 1);
    let mut keys = Vec::new();
    for _ in 0..10 {
        epoll.wait(&mut events, LONG).unwrap();
        keys.extend(events.iter().map(EpollEvent::key));
        if keys.contains(&2) {
            break;
        }
    }
    assert!(
        keys.contains(&1) && keys.contains(&2),
        "keys seen: {keys:?}"
    );
}

#[test]
fn a_wake_before_the_wait_is_not_lost_and_is_drained() {
    let epoll = Epoll::new().unwrap();
    let waker = epoll.waker();
    waker.wake().unwrap();
    waker.clone().wake().unwrap();
    let mut events = EventBuffer::default();
    assert_eq!(epoll.wait(&mut events, LONG).unwrap(), 0);
    assert!(events.woken() && events.is_empty());
    // Both wakes were drained by that wait.
    assert_eq!(epoll.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
    assert!(!events.woken());
}

#[test]
fn another_thread_wakes_a_blocked_wait() {
    let epoll = Epoll::new().unwrap();
    let waker = epoll.waker();
    let other = thread::spawn(move || waker.wake().unwrap());
    let mut events = EventBuffer::default();
    // Bounded: a wait without a limit would hang the test if the wake were lost.
    let mut woken = false;
    for _ in 0..3 {
        epoll.wait(&mut events, LONG).unwrap();
        if events.woken() {
            woken = true;
            break;
        }
    }
    assert!(woken);
    other.join().unwrap();
}

#[test]
fn a_wake_among_events_is_taken_out_of_them() {
    let epoll = Epoll::new().unwrap();
    let (accepted, mut client) = pair();
    let _registration = epoll
        .register(accepted.into(), Interest::READABLE, 6)
        .unwrap();
    client.write_all(b"x").unwrap();
    epoll.waker().wake().unwrap();
    let mut events = EventBuffer::default();
    // Both are ready before the wait, so one wait reports both.
    assert_eq!(epoll.wait(&mut events, LONG).unwrap(), 1);
    assert!(events.woken());
    assert_eq!(events.iter().map(EpollEvent::key).collect::<Vec<_>>(), [6]);
    assert_eq!(events.get(0).map(EpollEvent::key), Some(6));
    assert_eq!(events.get(1), None, "the wake-up is not an event");
    assert!(format!("{events:?}").contains("READABLE"));
    // Level-triggered: the byte is reported again, the drained wake-up is not.
    assert_eq!(epoll.wait(&mut events, LONG).unwrap(), 1);
    assert!(!events.woken());
}

#[test]
fn a_sub_millisecond_timeout_still_returns() {
    let epoll = Epoll::new().unwrap();
    let mut events = EventBuffer::default();
    assert_eq!(
        epoll
            .wait(&mut events, Some(Duration::from_micros(10)))
            .unwrap(),
        0
    );
    assert_eq!(epoll.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
}

#[test]
fn timeouts_round_up_to_whole_milliseconds_and_saturate() {
    let cases = [
        (Duration::ZERO, 0),
        (Duration::from_nanos(1), 1),
        (Duration::from_micros(999), 1),
        (Duration::from_millis(1), 1),
        (Duration::from_micros(1001), 2),
        (Duration::new(2, 1), 2001),
        (Duration::from_millis(430), 430),
        (Duration::from_secs(u64::MAX / 1000 + 1), libc::c_int::MAX),
        (Duration::MAX, libc::c_int::MAX),
    ];
    for (timeout, ms) in cases {
        assert_eq!(timeout_millis(timeout), ms, "{timeout:?}");
    }
}

#[test]
fn the_wake_key_is_refused() {
    let epoll = Epoll::new().unwrap();
    let (accepted, _client) = pair();
    let error = epoll
        .add(accepted.as_fd(), Interest::READABLE, u64::MAX)
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    let registration = epoll
        .register(accepted.into(), Interest::READABLE, 1)
        .unwrap();
    let error = registration
        .modify(Interest::READABLE, u64::MAX)
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert!(format!("{registration:?} {epoll:?}").contains("EpollRegistration"));
}
