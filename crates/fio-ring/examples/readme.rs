//! The README example: read from a pipe through the ring.

use std::io::Write;
use std::{cell::RefCell, rc::Rc};

use fio_ring::{Op, Ring, RingConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Falls back cleanly: `Error::Setup` says why io_uring is unusable here.
    let mut ring = Ring::new(RingConfig::new(64))?;
    println!("{}", ring.features());

    let (reader, mut writer) = std::io::pipe()?;
    writer.write_all(b"hello, ring")?;

    // The Vec moves into the ring and comes back, filled, with the final completion.
    let received = Rc::new(RefCell::new(Vec::new()));
    let sink = received.clone();
    ring.submit(
        Op::read(&reader, Vec::with_capacity(64), None),
        move |_ring, mut done| {
            // `take_read_buf`: the target you passed; `take_buffer`: a pooled buffer group's.
            if let Some(buf) = done.take_read_buf() {
                *sink.borrow_mut() = buf.into_vec();
            }
        },
    )?;
    // `is_idle`, not `in_flight() == 0`: a `RingHandle`'s wake-up read stays in flight.
    while !ring.is_idle() {
        ring.wait(None)?; // one tick: submit, enter the kernel once, dispatch
    }
    assert_eq!(&received.borrow()[..], b"hello, ring");
    println!("read {:?}", String::from_utf8_lossy(&received.borrow()));
    Ok(())
}
