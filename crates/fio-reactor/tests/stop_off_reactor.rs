//! The free `stop` called from a plain thread stops the reactor the program built, not only
//! the process's default one.
//!
//! Its own test binary: an off-reactor `stop` stops every running reactor of the process,
//! which would reach the reactors of tests running alongside.

mod util;

use std::sync::mpsc;
use std::thread;

use fio_reactor::CallbackEvent;
use util::{DEADLINE, reactor, start_bounded};

#[test]
fn stop_from_a_plain_thread_stops_a_built_reactor() {
    let reactor = reactor(2);
    let (started, on_start) = mpsc::sync_channel(1);
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        let _ = started.try_send(());
    });
    let stopper = thread::spawn(move || {
        on_start
            .recv_timeout(DEADLINE)
            .expect("the reactor started");
        // Not a reactor thread: `Reactor::current` here is the default reactor, which isn't
        // running.
        assert!(!fio_reactor::Reactor::current().is_running());
        fio_reactor::stop();
    });
    // `start_bounded` fails the test if the reactor is still running after its deadline.
    start_bounded(&reactor).unwrap();
    stopper.join().unwrap();
    assert!(!reactor.is_running());
    // With nothing running, another `stop` is a no-op.
    fio_reactor::stop();
}
