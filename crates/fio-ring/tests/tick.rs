//! Ticks: staging beyond the submission queue, end-of-tick callbacks, idle waits.

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use fio_ring::{Op, Ring, RingConfig, SendFlags, TickEndFlush};
use util::run_until;

#[test]
fn more_submissions_than_queue_entries_all_complete() {
    let mut ring = Ring::new(RingConfig::new(4)).unwrap();
    let done = Rc::new(RefCell::new(Vec::new()));
    for n in 0..100 {
        let done = done.clone();
        ring.submit(Op::nop(), move |_, _| done.borrow_mut().push(n))
            .unwrap();
    }
    // Linked pairs must never be split across kernel entries, even from the backlog.
    for _ in 0..10 {
        ring.submit_with_timeout(Op::nop(), Duration::from_secs(60), |_, c| {
            assert_eq!(c.result().unwrap(), 0);
        })
        .unwrap();
    }
    run_until(&mut ring, || done.borrow().len() == 100);
    assert_eq!(
        *done.borrow(),
        (0..100).collect::<Vec<_>>(),
        "in submission order"
    );
    util::run_until_idle(&mut ring);
}

#[test]
fn tick_end_callbacks_run_once_after_the_handlers() {
    let mut ring = util::ring();
    let log = Rc::new(RefCell::new(Vec::new()));
    for n in 0..3 {
        let log = log.clone();
        ring.submit(Op::nop(), move |ring, _| {
            log.borrow_mut().push(format!("handler {n}"));
            if n == 0 {
                let log = log.clone();
                ring.on_tick_end(move |_| log.borrow_mut().push("flush".into()));
            }
        })
        .unwrap();
    }
    run_until(&mut ring, || log.borrow().len() == 4);
    assert_eq!(
        *log.borrow(),
        ["handler 0", "handler 1", "handler 2", "flush"]
    );
    ring.wait(Some(Duration::ZERO)).unwrap();
    assert_eq!(log.borrow().len(), 4, "one-shot");
}

#[test]
fn waiting_with_nothing_in_flight_returns_at_once() {
    let mut ring = util::ring();
    assert_eq!(ring.wait(None).unwrap(), 0);
    assert_eq!(ring.in_flight(), 0);
}

#[test]
fn a_callback_registered_between_ticks_submits_in_that_ticks_entry() {
    let mut ring = util::ring();
    let (done, handler) = util::collector();
    let mut handler = Some(handler);
    // Code running between ticks (a reactor's protocol callbacks) queues its sends this way.
    ring.on_tick_end(move |ring| {
        if let Some(handler) = handler.take() {
            ring.submit(Op::nop(), handler).unwrap();
        }
    });
    // The callback runs before the kernel entry, so its nop completes in this very tick.
    assert_eq!(ring.wait(Some(Duration::ZERO)).unwrap(), 1);
    assert!(util::has_final(&done));
}

#[test]
fn zero_timeout_waits_collect_receives_completed_between_ticks() {
    use std::io::Write;

    use fio_ring::SetupFlags;

    // With the TASKRUN flag the ring enters the kernel only when it says work is pending;
    // without it, every zero-timeout wait enters. Both must see a receive that completed
    // while nobody waited.
    for config in [
        RingConfig::new(8),
        RingConfig::new(8).without(SetupFlags::TASKRUN_FLAG),
    ] {
        let mut ring = Ring::new(config).unwrap();
        let (mut client, server) = util::tcp_pair();
        let (received, handler) = util::collector();
        ring.submit(Op::recv(&server, Vec::with_capacity(16)), handler)
            .unwrap();
        // Arms the receive; nothing has arrived, so nothing completes.
        assert_eq!(ring.wait(Some(Duration::ZERO)).unwrap(), 0);
        client.write_all(b"ping").unwrap();
        for _ in 0..1000 {
            if util::has_final(&received) {
                break;
            }
            ring.wait(Some(Duration::ZERO)).unwrap();
        }
        let mut done = received.borrow_mut().pop().expect("the receive completed");
        assert_eq!(done.result().unwrap(), 4);
        assert_eq!(&done.take_read_buf().unwrap()[..], b"ping");
    }
}

#[test]
fn a_batching_wait_returns_what_completed_and_honours_its_timeout() {
    let config = RingConfig::new(16).batch_wait(8, Duration::from_millis(2));
    let mut ring = Ring::new(config).unwrap();
    println!("batch wait used: {}", ring.features().batch_wait());
    let done = Rc::new(RefCell::new(0));
    // Fewer completions than the batch: the wait still returns them after the minimum wait.
    for _ in 0..3 {
        let done = done.clone();
        ring.submit(Op::nop(), move |_, _| *done.borrow_mut() += 1)
            .unwrap();
    }
    run_until(&mut ring, || *done.borrow() == 3);
    // Nothing completes within the wait's own timeout: it returns empty-handed.
    let fired = Rc::new(RefCell::new(false));
    let flag = fired.clone();
    ring.submit(Op::timeout(Duration::from_secs(30)), move |_, _| {
        *flag.borrow_mut() = true;
    })
    .unwrap();
    assert_eq!(ring.wait(Some(Duration::from_millis(20))).unwrap(), 0);
    assert!(!*fired.borrow());
    // More completions than the batch: all of them are delivered.
    for _ in 0..20 {
        let done = done.clone();
        ring.submit(Op::nop(), move |_, _| *done.borrow_mut() += 1)
            .unwrap();
    }
    run_until(&mut ring, || *done.borrow() == 23);
}

#[test]
fn a_batching_wait_of_one_completion_is_off() {
    let config = RingConfig::new(4).batch_wait(1, Duration::from_millis(5));
    let mut ring = Ring::new(config).unwrap();
    ring.submit(Op::nop(), |_, _| {}).unwrap();
    assert_eq!(ring.wait(None).unwrap(), 1);
}

#[test]
fn an_indefinite_batching_wait_outlasts_its_minimum_wait() {
    // Without a timeout of its own the kernel would end the wait when the minimum wait
    // expires, with nothing completed; the ring gives it one, so the wait delivers the timeout.
    let config = RingConfig::new(4).batch_wait(32, Duration::from_millis(2));
    let mut ring = Ring::new(config).unwrap();
    ring.submit(Op::timeout(Duration::from_millis(40)), |_, fired| {
        assert_eq!(fired.result().unwrap(), 0);
    })
    .unwrap();
    assert_eq!(ring.wait(None).unwrap(), 1);
}

#[test]
fn a_wait_past_an_unawaited_reply_brings_it_and_the_next_completion_in_one_entry() {
    let mut ring = Ring::new(RingConfig::new(16)).unwrap();
    let (reply_out, mut reply_in) = util::tcp_pair();
    let (mut request_out, request_in) = util::tcp_pair();
    let (received, handler) = util::collector();
    ring.submit(Op::recv(&request_in, Vec::with_capacity(16)), handler)
        .unwrap();
    assert_eq!(
        ring.wait(Some(Duration::ZERO)).unwrap(),
        0,
        "armed, nothing yet"
    );
    let sent = Rc::new(RefCell::new(None));
    let result = sent.clone();
    let reply = Op::send_with_flags(&reply_out, b"reply".to_vec(), SendFlags::DONTWAIT);
    ring.submit(reply.unawaited(), move |_, done| {
        *result.borrow_mut() = Some(done.result().unwrap());
    })
    .unwrap();
    // The next request comes while the ring waits: the send completes as it is submitted,
    // and the wait goes on for the receive instead of returning with the send alone.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        std::io::Write::write_all(&mut request_out, b"next").unwrap();
        request_out
    });
    assert_eq!(ring.wait(Some(Duration::from_secs(20))).unwrap(), 2);
    assert_eq!(*sent.borrow(), Some(5));
    assert!(util::has_final(&received));
    let mut reply = [0u8; 5];
    std::io::Read::read_exact(&mut reply_in, &mut reply).unwrap();
    assert_eq!(&reply, b"reply");
    drop(writer.join().unwrap());
}

#[test]
fn only_unawaited_sends_that_cannot_wait_are_looked_past() {
    let mut ring = Ring::new(RingConfig::new(16)).unwrap();
    let (out, _peer) = util::tcp_pair();
    // Unawaited, but free to wait for room: the wait returns for its completion.
    ring.submit(Op::send(&out, b"x".to_vec()).unawaited(), |_, done| {
        assert_eq!(done.result().unwrap(), 1);
    })
    .unwrap();
    assert_eq!(ring.wait(None).unwrap(), 1);
    // DONTWAIT but awaited: the same.
    let awaited = Op::send_with_flags(&out, b"y".to_vec(), SendFlags::DONTWAIT);
    ring.submit(awaited, |_, done| assert_eq!(done.result().unwrap(), 1))
        .unwrap();
    assert_eq!(ring.wait(None).unwrap(), 1);
    // Both: only the wait's own timeout (or another completion) ends it, with the sends.
    for _ in 0..3 {
        let reply = Op::send_with_flags(&out, b"z".to_vec(), SendFlags::DONTWAIT);
        ring.submit(reply.unawaited(), |_, done| {
            assert_eq!(done.result().unwrap(), 1);
        })
        .unwrap();
    }
    assert_eq!(ring.wait(Some(Duration::from_millis(20))).unwrap(), 3);
}

#[test]
fn an_unawaited_send_to_a_full_socket_completes_at_once_with_eagain() {
    let mut ring = Ring::new(RingConfig::new(16)).unwrap();
    let (out, _peer) = util::tcp_pair();
    fio_sys::set_send_buffer_size(std::os::fd::AsFd::as_fd(&out), 4096).unwrap();
    // Fill the socket (the peer never reads) until a send finds no room.
    let refused = Rc::new(RefCell::new(false));
    for _ in 0..10_000 {
        if *refused.borrow() {
            break;
        }
        let flag = refused.clone();
        let reply = Op::send_with_flags(&out, vec![7u8; 65536], SendFlags::DONTWAIT);
        ring.submit(reply.unawaited(), move |_, done| {
            if done.raw_result() == -fio_ring::libc::EAGAIN {
                *flag.borrow_mut() = true;
            }
        })
        .unwrap();
        // A nop besides, so the wait has its one other completion: it returns at once,
        // and the send's completion with it, whatever the send found.
        ring.submit(Op::nop(), |_, _| {}).unwrap();
        assert_eq!(ring.wait(Some(Duration::from_secs(20))).unwrap(), 2);
    }
    assert!(*refused.borrow(), "the socket never filled");
}

#[test]
fn tick_end_work_run_early_lets_the_next_wait_block() {
    let mut ring = Ring::new(RingConfig::new(8)).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (first, _second) = Flusher::pair(&log);
    ring.flush_at_tick_end(first);
    ring.run_tick_end_now();
    assert_eq!(*log.borrow(), ["flush first", "flush second"]);
    // The nop the first flush submitted is staged: the wait submits it and returns with it.
    assert_eq!(ring.wait(None).unwrap(), 1);
    assert_eq!(*log.borrow(), ["flush first", "flush second", "nop"]);
    // Nothing registered: a no-op.
    ring.run_tick_end_now();
    assert_eq!(log.borrow().len(), 3);
}

/// A flush-list entry that logs its flushes and, while it has `chain` left, enlists a
/// follower from its own flush and submits a nop.
struct Flusher {
    name: &'static str,
    log: Rc<RefCell<Vec<String>>>,
    chain: Option<Rc<Flusher>>,
}

impl Flusher {
    /// `first`, whose flush enlists `second`, and `second`, both logging to `log`.
    fn pair(log: &Rc<RefCell<Vec<String>>>) -> (Rc<Self>, Rc<Self>) {
        let second = Rc::new(Self {
            name: "second",
            log: log.clone(),
            chain: None,
        });
        let first = Rc::new(Self {
            name: "first",
            log: log.clone(),
            chain: Some(second.clone()),
        });
        (first, second)
    }
}

impl TickEndFlush for Flusher {
    fn flush(self: Rc<Self>, ring: &mut Ring) {
        self.log.borrow_mut().push(format!("flush {}", self.name));
        if let Some(next) = &self.chain {
            ring.flush_at_tick_end(next.clone());
            let log = self.log.clone();
            ring.submit(Op::nop(), move |_, _| log.borrow_mut().push("nop".into()))
                .unwrap();
        }
    }
}

#[test]
fn flush_list_entries_run_after_the_handlers_and_their_followers_in_the_same_tick() {
    let mut ring = util::ring();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (first, second) = Flusher::pair(&log);
    let handler_log = log.clone();
    ring.submit(Op::nop(), move |ring, _| {
        handler_log.borrow_mut().push("handler".into());
        ring.flush_at_tick_end(first.clone());
        let log = handler_log.clone();
        ring.on_tick_end(move |_| log.borrow_mut().push("callback".into()));
    })
    .unwrap();
    run_until(&mut ring, || log.borrow().len() >= 4);
    // The follower enlisted during the drain ran in the same end of tick, before the
    // callbacks; the nop it submitted completes in a later tick.
    assert_eq!(
        *log.borrow(),
        ["handler", "flush first", "flush second", "callback"]
    );
    run_until(&mut ring, || log.borrow().len() == 5);
    assert_eq!(log.borrow()[4], "nop");
    ring.wait(Some(Duration::ZERO)).unwrap();
    assert_eq!(log.borrow().len(), 5, "one flush per enlisting");
    assert_eq!(Rc::strong_count(&second), 1, "the list let go of it");
}

#[test]
fn a_flush_enlisted_between_ticks_submits_in_that_ticks_entry_and_a_dropped_ring_drops_its_list() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let (first, second) = Flusher::pair(&log);
    let mut ring = util::ring();
    ring.flush_at_tick_end(first.clone());
    run_until(&mut ring, || log.borrow().len() == 3);
    assert_eq!(*log.borrow(), ["flush first", "flush second", "nop"]);
    // Never drained: dropping the ring releases the entries it holds.
    ring.flush_at_tick_end(second.clone());
    ring.flush_at_tick_end(second.clone());
    assert_eq!(Rc::strong_count(&second), 4);
    drop(ring);
    assert_eq!(Rc::strong_count(&second), 2);
    assert_eq!(log.borrow().len(), 3);
}
