//! File checksum through the ring, using only fio-ring and std: `Op::open`, `Op::stat`,
//! reads at increasing offsets, `Op::close`. Prints the size and an FNV-1a 64-bit checksum.
//!
//! `cargo run -p fio-ring --example ring_checksum -- FILE`

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use fio_ring::{Completion, Op, OpenFlags, Ring, RingConfig};

const CHUNK: usize = 64 * 1024;

/// What the handlers leave for `main`.
#[derive(Default)]
struct State {
    fd: Option<OwnedFd>,
    size: Option<u64>,
    data: Option<Vec<u8>>,
    error: Option<std::io::Error>,
}

fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn run(ring: &mut Ring, state: &Rc<RefCell<State>>) -> Result<(), Box<dyn std::error::Error>> {
    while !ring.is_idle() {
        ring.wait(None)?;
    }
    match state.borrow_mut().error.take() {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

fn record(state: &Rc<RefCell<State>>, done: &Completion) -> bool {
    if let Err(error) = done.result() {
        state.borrow_mut().error = Some(error);
        return false;
    }
    true
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: ring_checksum FILE")?;
    let mut ring = Ring::new(RingConfig::new(8))?;
    let state = Rc::new(RefCell::new(State::default()));

    // Open and stat in the same tick.
    let sink = state.clone();
    ring.submit(
        Op::open(None, &path, OpenFlags::READ, 0)?,
        move |_, mut done| {
            if record(&sink, &done) {
                sink.borrow_mut().fd = done.take_fd();
            }
        },
    )?;
    let sink = state.clone();
    ring.submit(Op::stat(None, &path)?, move |_, mut done| {
        if record(&sink, &done) {
            sink.borrow_mut().size = done.take_stat().map(|stat| stat.size);
        }
    })?;
    run(&mut ring, &state)?;
    let fd = state
        .borrow_mut()
        .fd
        .take()
        .ok_or("open gave no descriptor")?;
    let size = state.borrow().size.ok_or("stat gave no size")?;

    // Read chunk by chunk at explicit offsets until end of file.
    let (mut hash, mut offset) = (0xcbf2_9ce4_8422_2325_u64, 0_u64);
    loop {
        let sink = state.clone();
        ring.submit(
            Op::read(&fd, Vec::with_capacity(CHUNK), Some(offset)),
            move |_, mut done| {
                if record(&sink, &done) {
                    sink.borrow_mut().data = done.take_read_buf().map(|buf| buf.into_vec());
                }
            },
        )?;
        run(&mut ring, &state)?;
        let data = state.borrow_mut().data.take().unwrap_or_default();
        if data.is_empty() {
            break;
        }
        hash = fnv1a(hash, &data);
        offset += data.len() as u64;
    }

    let sink = state.clone();
    ring.submit(Op::close(fd), move |_, done| {
        record(&sink, &done);
    })?;
    run(&mut ring, &state)?;

    if offset != size {
        eprintln!("note: read {offset} bytes, stat said {size} (file changed?)");
    }
    println!("{path}: {offset} bytes, fnv1a64 {hash:016x}");
    Ok(())
}
