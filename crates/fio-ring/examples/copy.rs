//! Copies a file through the ring, using only fio-ring and std: both files are opened, the
//! source measured (`Op::stat`) and both closed through the ring; the data is read into pooled
//! buffers and written out with several reads and writes in flight at once.
//!
//! Usage: `cargo run -p fio-ring --example ring_copy -- SRC DST`

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use fio_ring::{BufferPool, Completion, Op, OpenFlags, PoolConfig, Ring, RingConfig, WriteBuf};

/// Bytes per read.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight at once.
const DEPTH: usize = 8;

struct Copy {
    src: OwnedFd,
    dst: OwnedFd,
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
    let mut ring = Ring::new(RingConfig::new(64))?;
    let (src_path, dst_path) = (src, dst);
    // Open both files and measure the source in one tick.
    let opened: Rc<RefCell<Opened>> = Rc::default();
    let sink = opened.clone();
    ring.submit(
        Op::open(None, src_path, OpenFlags::READ, 0)?,
        move |_, mut done| {
            sink.borrow_mut().src = Some(done.result().and_then(|_| descriptor(&mut done)));
        },
    )?;
    let sink = opened.clone();
    ring.submit(Op::stat(None, src_path)?, move |_, mut done| {
        let size = done
            .result()
            .map(|_| done.take_stat().map(|stat| stat.size));
        sink.borrow_mut().size = Some(size.and_then(|size| size.ok_or_else(no("size"))));
    })?;
    let sink = opened.clone();
    let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    ring.submit(
        Op::open(None, dst_path, flags, 0o644)?,
        move |_, mut done| {
            sink.borrow_mut().dst = Some(done.result().and_then(|_| descriptor(&mut done)));
        },
    )?;
    while !ring.is_idle() {
        ring.wait(None)?;
    }
    let opened = opened.take();
    let src = opened.src.ok_or("the source's open never completed")??;
    let size = opened.size.ok_or("the stat never completed")??;
    let dst = opened
        .dst
        .ok_or("the destination's open never completed")??;
    let pool = BufferPool::new(
        PoolConfig::new(CHUNK)
            .with_buffers_per_chunk(DEPTH)
            .with_max_buffers(DEPTH),
    )?;
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
    let Ok(copy) = Rc::try_unwrap(state).map(RefCell::into_inner) else {
        return Err("internal error: a handler outlived the copy".into());
    };
    // Close both through the ring; a failed close of the destination can lose data.
    let closed: Rc<RefCell<Vec<io::Result<u32>>>> = Rc::default();
    for fd in [copy.src, copy.dst] {
        let sink = closed.clone();
        ring.submit(Op::close(fd), move |_, done| {
            sink.borrow_mut().push(done.result())
        })?;
    }
    while !ring.is_idle() {
        ring.wait(None)?;
    }
    if let Some(error) = copy.error {
        return Err(format!("copy failed: {error}").into());
    }
    for result in closed.take() {
        result?;
    }
    println!("copied {} bytes", copy.copied);
    Ok(())
}

/// What the opening tick found, each slot filled by its completion.
#[derive(Default)]
struct Opened {
    src: Option<io::Result<OwnedFd>>,
    dst: Option<io::Result<OwnedFd>>,
    size: Option<io::Result<u64>>,
}

/// The descriptor a successful open completion carries.
fn descriptor(done: &mut Completion) -> io::Result<OwnedFd> {
    done.take_fd().ok_or_else(no("descriptor"))
}

/// The error for a successful completion that lacks what it should carry.
fn no(what: &'static str) -> impl FnOnce() -> io::Error {
    move || io::Error::other(format!("the completion carried no {what}"))
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
