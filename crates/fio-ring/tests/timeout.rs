//! Timeouts: one-shot, repeating (multishot or re-armed by the ring), linked, cancelled.

mod util;

use std::time::Duration;

use fio_ring::{Op, OpKind};
use util::{collector, has_final, ring, run_until, run_until_idle, tcp_pair};

#[test]
fn a_one_shot_timeout_fires_as_success() {
    let mut ring = ring();
    let (fired, handler) = collector();
    ring.submit(Op::timeout(Duration::from_millis(1)), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&fired));
    let fired = fired.borrow();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].result().unwrap(), 0, "-ETIME is the normal expiry");
}

#[test]
fn a_repeating_timeout_fires_until_cancelled() {
    let mut ring = ring();
    let (fired, handler) = collector();
    let id = ring
        .submit(Op::timeout_repeating(Duration::from_millis(1)), handler)
        .unwrap();
    run_until(&mut ring, || fired.borrow().len() >= 3);
    assert!(
        fired
            .borrow()
            .iter()
            .all(|c| !c.is_final() && c.result().is_ok())
    );
    assert!(ring.is_in_flight(id));
    ring.cancel(id).unwrap();
    run_until(&mut ring, || has_final(&fired));
    let fired = fired.borrow();
    let last = fired.last().unwrap();
    assert_eq!(
        last.result().unwrap_err().raw_os_error(),
        Some(libc::ECANCELED)
    );
    assert!(
        fired.iter().all(|c| c.id() == id),
        "one id across every expiry"
    );
}

#[test]
fn cancelling_a_one_shot_timeout() {
    let mut ring = ring();
    let (fired, handler) = collector();
    let id = ring
        .submit(Op::timeout(Duration::from_secs(60)), handler)
        .unwrap();
    ring.wait(Some(Duration::ZERO)).unwrap();
    ring.cancel(id).unwrap();
    run_until(&mut ring, || has_final(&fired));
    assert_eq!(
        fired.borrow()[0].result().unwrap_err().raw_os_error(),
        Some(libc::ECANCELED)
    );
}

#[test]
fn a_link_timeout_cancels_a_recv_that_never_completes() {
    let mut ring = ring();
    require!(ring, OpKind::LinkTimeout);
    let (_client, server) = tcp_pair();
    let (received, handler) = collector();
    let id = ring
        .submit_with_timeout(
            Op::recv(&server, Vec::with_capacity(8)),
            Duration::from_millis(5),
            handler,
        )
        .unwrap();
    assert_eq!(ring.in_flight(), 2, "the op and its link timeout");
    run_until(&mut ring, || has_final(&received));
    let mut done = received.borrow_mut().pop().unwrap();
    assert_eq!(done.id(), id);
    assert_eq!(
        done.result().unwrap_err().raw_os_error(),
        Some(libc::ECANCELED)
    );
    assert!(done.take_read_buf().unwrap().is_empty());
    run_until_idle(&mut ring);
}

#[test]
fn a_link_timeout_does_not_disturb_a_fast_op() {
    let mut ring = ring();
    require!(ring, OpKind::LinkTimeout);
    let (done, handler) = collector();
    ring.submit_with_timeout(Op::nop(), Duration::from_secs(60), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&done));
    assert_eq!(done.borrow()[0].result().unwrap(), 0);
    run_until_idle(&mut ring);
}

#[test]
fn repeating_timeouts_are_re_armed_by_the_ring_on_older_kernels() {
    let config = fio_ring::RingConfig::new(16).assume_kernel(fio_ring::KernelVersion::new(6, 1, 0));
    let mut ring = fio_ring::Ring::new(config).unwrap();
    assert!(!ring.features().multishot_timeout());
    let (fired, handler) = collector();
    let id = ring
        .submit(Op::timeout_repeating(Duration::from_millis(1)), handler)
        .unwrap();
    run_until(&mut ring, || fired.borrow().len() >= 3);
    assert!(
        fired
            .borrow()
            .iter()
            .all(|c| !c.is_final() && c.result().is_ok())
    );
    ring.cancel(id).unwrap();
    run_until(&mut ring, || has_final(&fired));
    let fired = fired.borrow();
    assert!(fired.iter().all(|c| c.id() == id));
    assert!(fired.last().unwrap().result().is_err());
    assert_eq!(ring.in_flight(), 0);
}
