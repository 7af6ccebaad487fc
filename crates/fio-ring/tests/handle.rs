//! Cross-thread handles: queued jobs run on the ring's thread, wakes interrupt a wait.

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fio_ring::{Error, Op};
use util::{ring, run_until};

#[test]
fn jobs_from_other_threads_run_on_the_ring_thread() {
    let mut ring = ring();
    let handle = ring.handle().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let ring_thread = std::thread::current().id();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (handle, ran) = (handle.clone(), ran.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let ran = ran.clone();
                    handle
                        .queue(move |ring| {
                            assert_eq!(std::thread::current().id(), ring_thread);
                            // Jobs may submit work of their own.
                            ring.submit(Op::nop(), |_, _| {}).unwrap();
                            ran.fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    run_until(&mut ring, || ran.load(Ordering::SeqCst) == 100);
    assert_eq!(ring.pending_jobs(), 0);
}

#[test]
fn wake_interrupts_an_unbounded_wait() {
    let mut ring = ring();
    let handle = ring.handle().unwrap();
    let waker = std::thread::spawn(move || handle.wake());
    // Without the wake this wait would block forever: nothing else is in flight.
    ring.wait(None).unwrap();
    waker.join().unwrap().unwrap();
}

#[test]
fn handles_report_a_dropped_ring() {
    let mut ring = ring();
    let handle = ring.handle().unwrap();
    let again = ring.handle().unwrap();
    handle.queue(|_| {}).unwrap();
    drop(ring);
    assert!(matches!(handle.queue(|_| {}), Err(Error::RingClosed)));
    assert!(matches!(again.wake(), Err(Error::RingClosed)));
}

#[test]
fn wait_is_refused_inside_a_handler() {
    let mut ring = ring();
    let saw = Arc::new(AtomicUsize::new(0));
    let seen = saw.clone();
    ring.submit(Op::nop(), move |ring, _| {
        if matches!(ring.wait(Some(Duration::ZERO)), Err(Error::Reentrant)) {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    run_until(&mut ring, || saw.load(Ordering::SeqCst) == 1);
}

#[test]
fn a_panicking_handler_leaves_the_ring_usable() {
    let mut ring = ring();
    ring.submit(Op::nop(), |_, _| panic!("handler failure"))
        .unwrap();
    let (survivor, handler) = util::collector();
    ring.submit(Op::nop(), handler).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ring.wait(Some(Duration::from_secs(1)))
    }));
    assert!(caught.is_err(), "the panic propagates");
    // The second nop's completion stayed queued and is delivered by the next tick.
    run_until(&mut ring, || util::has_final(&survivor));
    assert_eq!(ring.in_flight(), 0);
}

#[test]
fn is_idle_ignores_the_wake_up_read() {
    let mut ring = ring();
    assert!(ring.is_idle());
    let _handle = ring.handle().unwrap();
    assert_eq!(ring.in_flight(), 1);
    assert_eq!(ring.in_flight_user(), 0);
    assert!(ring.is_idle());

    ring.submit(Op::nop(), |_, _| {}).unwrap();
    assert_eq!(ring.in_flight_user(), 1);
    assert!(!ring.is_idle());
    let mut ticks = 0;
    while !ring.is_idle() {
        ring.wait(Some(Duration::from_secs(5))).unwrap();
        ticks += 1;
        assert!(ticks < 100, "the nop never completed");
    }
    assert!(ring.wake_armed());
    assert_eq!(ring.in_flight(), 1);
}
