//! The README example: a timer that ticks three times, then stops the reactor (Ctrl-C also does).

use std::time::Duration;

use fio_reactor::{CallbackEvent, Concurrency, Error, Repeat, StartArgs};

fn main() -> Result<(), Error> {
    fio_reactor::state_callback_add(CallbackEvent::OnStart, || {
        let mut ticks = 0;
        let tick = move || {
            ticks += 1;
            println!("tick {ticks} on {}", fio_reactor::engine());
            true // keep going; the timer ends after its 3 repetitions
        };
        let three = Repeat::times(3).expect("3 is not zero");
        // on_finish runs once the timer ends, on the reactor thread that ran it.
        let started =
            fio_reactor::run_every(Duration::from_millis(100), three, tick, fio_reactor::stop);
        if let Err(error) = started {
            eprintln!("timer refused: {error}");
        }
    });
    fio_reactor::state_callback_add(CallbackEvent::OnFinish, || println!("finished"));
    // Blocks until fio_reactor::stop(), SIGINT or SIGTERM.
    let two = Concurrency::exactly(2).expect("2 > 0");
    fio_reactor::start(StartArgs::new().threads(two))
}
