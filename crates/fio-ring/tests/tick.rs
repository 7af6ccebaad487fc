//! Ticks: staging beyond the submission queue, end-of-tick callbacks, idle waits.

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use fio_ring::{Op, Ring, RingConfig};
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
