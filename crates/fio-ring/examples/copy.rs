//! Copies a file through the ring: reads into pooled buffers and writes them out, with
//! several reads and writes in flight at once.
//!
//! Usage: `cargo run -p fio-ring --example ring_copy -- SRC DST`

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io;
use std::rc::Rc;

use fio_ring::{BufferPool, Completion, Op, PoolConfig, Ring, RingConfig, WriteBuf};

/// Bytes per read.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight at once.
const DEPTH: usize = 8;

struct Copy {
    src: File,
    dst: File,
    pool: BufferPool,
    size: u64,
    next_offset: u64,
    in_flight: usize,
    copied: u64,
    error: Option<io::Error>,
}

type State = Rc<RefCell<Copy>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst] = args.as_slice() else {
        return Err("usage: copy SRC DST".into());
    };
    let src = File::open(src)?;
    let size = src.metadata()?.len();
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)?;
    let pool = BufferPool::new(
        PoolConfig::new(CHUNK)
            .with_buffers_per_chunk(DEPTH)
            .with_max_buffers(DEPTH),
    )?;
    let mut ring = Ring::new(RingConfig::new(64))?;
    let state: State = Rc::new(RefCell::new(Copy {
        src,
        dst,
        pool,
        size,
        next_offset: 0,
        in_flight: 0,
        copied: 0,
        error: None,
    }));
    for _ in 0..DEPTH {
        start_read(&mut ring, &state)?;
    }
    while state.borrow().in_flight > 0 {
        if ring.in_flight() == 0 {
            return Err("internal error: chunks pending but nothing in flight".into());
        }
        ring.wait(None)?;
    }
    let state = state.borrow();
    if let Some(error) = &state.error {
        return Err(format!("copy failed: {error}").into());
    }
    println!("copied {} bytes", state.copied);
    Ok(())
}

/// Reads the next chunk, if any is left.
fn start_read(ring: &mut Ring, state: &State) -> Result<(), fio_ring::Error> {
    let (op, offset) = {
        let mut copy = state.borrow_mut();
        if copy.next_offset >= copy.size || copy.error.is_some() {
            return Ok(());
        }
        let buffer = copy.pool.take()?;
        let offset = copy.next_offset;
        copy.next_offset += CHUNK as u64;
        copy.in_flight += 1;
        (Op::read(&copy.src, buffer, Some(offset)), offset)
    };
    let state = state.clone();
    ring.submit(op, move |ring, done| on_read(ring, &state, offset, done))?;
    Ok(())
}

fn on_read(ring: &mut Ring, state: &State, offset: u64, mut done: Completion) {
    let result = done.result();
    let buffer = done.take_buffer();
    match (result, buffer) {
        (Ok(n), Some(buffer)) if n > 0 => {
            // A regular file reads short only when it shrank under us: report it rather
            // than leave a silent gap.
            let expected = CHUNK.min((state.borrow().size - offset) as usize);
            if (n as usize) < expected {
                state.borrow_mut().error = Some(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "source file shrank while copying",
                ));
            }
            start_write(ring, state, offset, WriteBuf::from(buffer));
        }
        (result, buffer) => {
            // Give the buffer back before the next read asks the pool for one.
            drop(buffer);
            if let Err(error) = result {
                state.borrow_mut().error = Some(error);
            }
            finish_chunk(ring, state);
        }
    }
}

/// Writes `buf` at `offset`, resubmitting the rest after a short write.
fn start_write(ring: &mut Ring, state: &State, offset: u64, buf: WriteBuf) {
    let op = Op::write(&state.borrow().dst, buf, Some(offset));
    let handler_state = state.clone();
    let submitted = ring.submit(op, move |ring, mut done| match done.result() {
        Ok(n) => {
            handler_state.borrow_mut().copied += u64::from(n);
            let rest = done
                .take_write_buf()
                .filter(|rest| !rest.is_empty() && n > 0);
            match rest {
                Some(rest) => start_write(ring, &handler_state, offset + u64::from(n), rest),
                // `rest` (and with it the pooled buffer) is gone, so the next read gets it.
                None => finish_chunk(ring, &handler_state),
            }
        }
        Err(error) => {
            handler_state.borrow_mut().error = Some(error);
            finish_chunk(ring, &handler_state);
        }
    });
    if let Err(error) = submitted {
        state.borrow_mut().error = Some(error.into());
        finish_chunk(ring, state);
    }
}

/// One chunk is done (its buffer went back to the pool): start the next read.
fn finish_chunk(ring: &mut Ring, state: &State) {
    state.borrow_mut().in_flight -= 1;
    if let Err(error) = start_read(ring, state) {
        state.borrow_mut().error = Some(error.into());
    }
}
