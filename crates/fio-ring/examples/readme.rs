//! The README example: read from a pipe through the ring.

use std::io::Write;
use std::{cell::RefCell, rc::Rc};

use fio_ring::{Op, Ring, RingConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Falls back cleanly: `Error::Setup` says why io_uring is unusable here.
    let mut ring = Ring::new(RingConfig::new(64))?;
    println!("{}", ring.features());

    let (reader, writer) = fio_sys::pipe()?;
    std::fs::File::from(writer).write_all(b"hello, ring")?;

    // The Vec moves into the ring and comes back, filled, with the final completion.
    let received = Rc::new(RefCell::new(Vec::new()));
    let sink = received.clone();
    ring.submit(
        Op::read(&reader, Vec::with_capacity(64), None),
        move |_ring, mut done| {
            if let Some(buf) = done.take_buf() {
                *sink.borrow_mut() = buf.into_vec();
            }
        },
    )?;
    while ring.in_flight() > 0 {
        ring.wait(None)?; // one tick: submit, enter the kernel once, dispatch
    }
    assert_eq!(&received.borrow()[..], b"hello, ring");
    println!("read {:?}", String::from_utf8_lossy(&received.borrow()));
    Ok(())
}
