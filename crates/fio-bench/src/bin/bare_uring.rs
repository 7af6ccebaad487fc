//! The bare io-uring baseline of the load benchmark: `bare_uring echo|http --port N [--threads N]`.
//!
//! One thread drives one ring on the `io-uring` crate itself, with no runtime above it: the
//! floor the benchmark measures fio's layers against. It serves the same two protocols, byte
//! for byte, as the tokio baselines ([`fio_bench::serve_echo`], [`fio_bench::serve_http`]):
//!
//! - the ring is set up `SINGLE_ISSUER | DEFER_TASKRUN`, and the loop makes one
//!   `submit_and_wait(1)` per turn, then handles every completion it found;
//! - one multishot accept on the listener; every accepted socket gets `TCP_NODELAY` and one
//!   multishot receive that picks buffers from a provided-buffer ring;
//! - each received buffer is copied at once into the connection's output buffer (echo: the
//!   bytes; http: one [`fio_bench::HTTP_RESPONSE`] per `\r\n\r\n`-terminated request, counted
//!   by [`fio_bench::RequestCounter`]) and handed back to the buffer ring;
//! - one send is in flight per connection: what arrives meanwhile collects in a second buffer,
//!   sent when the first completes; both buffers are allocated on first use and reused for
//!   the connection's lifetime (an idle connection holds none).
//!
//! It runs until killed (`SIGTERM`'s default action), like the tokio baselines.
//!
//! This file is the only `unsafe` outside fio-sys, fio-buffer and fio-ring (the tidy test in
//! `xtask/tests` lists it with that reason): the `io-uring` crate's `push` and buffer-ring
//! registration are `unsafe` because the kernel reads memory the borrow checker can't follow.

use std::alloc::{Layout, alloc_zeroed};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::{BufRingEntry, Fd};
use io_uring::{IoUring, cqueue, opcode, squeue};

/// Submission queue entries; completions get four times as many.
const RING_ENTRIES: u32 = 4096;
/// Provided buffers: as many as one loop turn can hold before handing them back.
const BUFFERS: u16 = 1024;
/// The size of each provided buffer.
const BUFFER_SIZE: usize = 4096;
/// The provided-buffer group's id.
const GROUP: u16 = 0;
/// How a refused ring setup starts its error message (the tests skip on it).
const UNAVAILABLE: &str = "io_uring unavailable";
/// The listen backlog, as tokio's `TcpListener::bind` asks for.
const BACKLOG: i32 = 1024;

/// The operation a completion belongs to: the top byte of its user data.
const ACCEPT: u64 = 1 << 56;
const RECV: u64 = 2 << 56;
const SEND: u64 = 3 << 56;
const KIND_MASK: u64 = 0xff << 56;

/// What the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every byte back, in order.
    Echo,
    /// One fixed hello response per complete request.
    Http,
}

/// One accepted connection.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// The bytes of the send in flight (or empty), from `sent` on.
    out: Vec<u8>,
    sent: usize,
    /// What arrived while a send was in flight.
    next: Vec<u8>,
    sending: bool,
    /// The multishot receive is still armed.
    receiving: bool,
    counter: fio_bench::RequestCounter,
}

/// The provided-buffer ring and the buffers it hands out.
#[derive(Debug)]
struct Buffers {
    /// Page-aligned ring of `BUFFERS` entries, shared with the kernel; never freed (the
    /// process ends with the ring).
    entries: *mut BufRingEntry,
    /// `BUFFERS * BUFFER_SIZE` bytes, never freed either.
    memory: *mut u8,
    /// The tail we publish; the kernel reads it from the first entry's reserved field.
    tail: u16,
}

impl Buffers {
    fn new() -> io::Result<Self> {
        let ring_layout =
            Layout::from_size_align(usize::from(BUFFERS) * size_of::<BufRingEntry>(), 4096)
                .map_err(io::Error::other)?;
        let memory_layout = Layout::from_size_align(usize::from(BUFFERS) * BUFFER_SIZE, 4096)
            .map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size.
        let entries = unsafe { alloc_zeroed(ring_layout) }.cast::<BufRingEntry>();
        // SAFETY: the layout has a non-zero size.
        let memory = unsafe { alloc_zeroed(memory_layout) };
        if entries.is_null() || memory.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        let mut buffers = Self {
            entries,
            memory,
            tail: 0,
        };
        for bid in 0..BUFFERS {
            buffers.give_back(bid);
        }
        Ok(buffers)
    }

    /// The start of buffer `bid`.
    fn buffer(&self, bid: u16) -> *mut u8 {
        self.memory.wrapping_add(usize::from(bid) * BUFFER_SIZE)
    }

    /// Hands buffer `bid` back to the kernel: one entry, then the tail.
    fn give_back(&mut self, bid: u16) {
        let index = usize::from(self.tail & (BUFFERS - 1));
        // SAFETY: `index < BUFFERS`, so the entry lies inside the ring's allocation, and the
        // kernel only reads entries between its head and our tail, which this one is not yet.
        let entry = unsafe { &mut *self.entries.wrapping_add(index) };
        entry.set_addr(self.buffer(bid) as u64);
        entry.set_len(BUFFER_SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: `entries` is the ring's first entry, allocated and zero-initialised.
        let tail = unsafe { BufRingEntry::tail(self.entries) }.cast::<AtomicU16>();
        // SAFETY: the tail is a 2-aligned u16 inside the ring that lives as long as the
        // process; the kernel only reads it, so an atomic view of it is sound.
        let tail = unsafe { &*tail };
        tail.store(self.tail, Ordering::Release);
    }

    /// The `len` received bytes of buffer `bid`.
    fn received(&self, bid: u16, len: usize) -> &[u8] {
        let len = len.min(BUFFER_SIZE);
        // SAFETY: buffer `bid` holds `len <= BUFFER_SIZE` bytes the kernel wrote before it
        // posted the completion, and it is not handed back until this slice is dropped.
        unsafe { std::slice::from_raw_parts(self.buffer(bid), len) }
    }
}

/// The whole server: the ring, the listener, the buffers and the connections by slot.
struct Server {
    ring: IoUring,
    listener: TcpListener,
    buffers: Buffers,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    mode: Mode,
}

impl Server {
    /// Queues one entry, submitting first when the submission queue is full.
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry refers to memory that outlives its operation: the listener
            // and streams are closed only after their last completion, the buffer ring is
            // never freed, and a send's `out` buffer is not touched until its completion.
            let pushed = unsafe { self.ring.submission().push(entry) };
            if pushed.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    fn arm_accept(&mut self) -> io::Result<()> {
        let accept = opcode::AcceptMulti::new(Fd(self.listener.as_raw_fd()))
            .build()
            .user_data(ACCEPT);
        self.push(&accept)
    }

    fn arm_recv(&mut self, slot: usize, fd: RawFd) -> io::Result<()> {
        let recv = opcode::RecvMulti::new(Fd(fd), GROUP)
            .build()
            .user_data(RECV | slot as u64);
        self.push(&recv)
    }

    fn send(&mut self, slot: usize) -> io::Result<()> {
        let Some(conn) = self.conns[slot].as_mut() else {
            return Ok(());
        };
        let rest = &conn.out[conn.sent..];
        let send = opcode::Send::new(
            Fd(conn.stream.as_raw_fd()),
            rest.as_ptr(),
            rest.len() as u32,
        )
        .build()
        .user_data(SEND | slot as u64);
        conn.sending = true;
        self.push(&send)
    }

    fn run(&mut self) -> io::Result<()> {
        self.arm_accept()?;
        let mut completions = Vec::with_capacity(RING_ENTRIES as usize);
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.raw_os_error() == Some(16) => {} // EBUSY: CQ overflow
                Err(error) => return Err(error),
            }
            completions.clear();
            completions.extend(
                self.ring
                    .completion()
                    .map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags())),
            );
            for &(data, result, flags) in &completions {
                let slot = (data & !KIND_MASK) as usize;
                match data & KIND_MASK {
                    ACCEPT => self.accepted(result, flags)?,
                    RECV => self.received(slot, result, flags)?,
                    SEND => self.sent(slot, result)?,
                    _ => {}
                }
            }
        }
    }

    fn accepted(&mut self, result: i32, flags: u32) -> io::Result<()> {
        if !cqueue::more(flags) {
            self.arm_accept()?;
        }
        if result < 0 {
            return Ok(());
        }
        // SAFETY: a successful accept completion's result is a new descriptor nothing owns.
        let stream = unsafe { TcpStream::from_raw_fd(result) };
        // As the baselines: a failure only costs latency.
        let _ = stream.set_nodelay(true);
        // The output buffers grow on first use and keep their capacity from then on.
        let conn = Conn {
            stream,
            out: Vec::new(),
            sent: 0,
            next: Vec::new(),
            sending: false,
            receiving: true,
            counter: fio_bench::RequestCounter::default(),
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.conns[slot] = Some(conn);
                slot
            }
            None => {
                self.conns.push(Some(conn));
                self.conns.len() - 1
            }
        };
        self.arm_recv(slot, result)
    }

    fn received(&mut self, slot: usize, result: i32, flags: u32) -> io::Result<()> {
        let more = cqueue::more(flags);
        let mode = self.mode;
        let Some(conn) = self.conns[slot].as_mut() else {
            return Ok(());
        };
        if result > 0 {
            if let Some(bid) = cqueue::buffer_select(flags) {
                let bytes = self.buffers.received(bid, result as usize);
                let target = if conn.sending {
                    &mut conn.next
                } else {
                    &mut conn.out
                };
                match mode {
                    Mode::Echo => target.extend_from_slice(bytes),
                    Mode::Http => {
                        for _ in 0..conn.counter.feed(bytes) {
                            target.extend_from_slice(fio_bench::HTTP_RESPONSE);
                        }
                    }
                }
                self.buffers.give_back(bid);
            }
            let fd = conn.stream.as_raw_fd();
            let start = !conn.sending && !conn.out.is_empty();
            if !more {
                // The multishot receive ended (e.g. out of buffers): arm it again.
                self.arm_recv(slot, fd)?;
            }
            if start {
                self.send(slot)?;
            }
            return Ok(());
        }
        if result == -105 && !more {
            // ENOBUFS: every buffer was taken for a moment; receive again.
            let fd = conn.stream.as_raw_fd();
            return self.arm_recv(slot, fd);
        }
        if !more {
            conn.receiving = false;
            self.close_if_done(slot);
        }
        Ok(())
    }

    fn sent(&mut self, slot: usize, result: i32) -> io::Result<()> {
        let Some(conn) = self.conns[slot].as_mut() else {
            return Ok(());
        };
        conn.sending = false;
        if result < 0 {
            // The peer is gone: end the receive too, so the connection can close.
            conn.out.clear();
            conn.next.clear();
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
            self.close_if_done(slot);
            return Ok(());
        }
        conn.sent += result as usize;
        if conn.sent < conn.out.len() {
            return self.send(slot);
        }
        conn.out.clear();
        conn.sent = 0;
        std::mem::swap(&mut conn.out, &mut conn.next);
        if !conn.out.is_empty() {
            return self.send(slot);
        }
        self.close_if_done(slot);
        Ok(())
    }

    /// Closes and frees the connection once no operation of its is in flight.
    fn close_if_done(&mut self, slot: usize) {
        let done = self.conns[slot]
            .as_ref()
            .is_some_and(|conn| !conn.receiving && !conn.sending);
        if done {
            self.conns[slot] = None;
            self.free.push(slot);
        }
    }
}

/// Sets up the ring, the buffers and the listener, then serves forever.
fn serve(mode: Mode, args: &fio_bench::ServerArgs) -> io::Result<()> {
    if args.threads != 1 {
        eprintln!(
            "--threads {} ignored: the bare loop is single-threaded",
            args.threads
        );
    }
    let ring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(RING_ENTRIES * 4)
        .build(RING_ENTRIES)
        .map_err(|error| io::Error::new(error.kind(), format!("{UNAVAILABLE}: {error}")))?;
    let buffers = Buffers::new()?;
    // SAFETY: the ring of `BUFFERS` entries is page-aligned and lives as long as the process.
    unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(buffers.entries as u64, BUFFERS, GROUP, 0)
    }?;
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))?;
    // SAFETY: listening again on a listening socket only raises its backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    eprintln!("listening on {}", listener.local_addr()?);
    Server {
        ring,
        listener,
        buffers,
        conns: Vec::new(),
        free: Vec::new(),
        mode,
    }
    .run()
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("echo") => Mode::Echo,
        Some("http") => Mode::Http,
        other => {
            eprintln!(
                "bare_uring: usage: bare_uring echo|http --port N [--threads N] (got {other:?})"
            );
            return ExitCode::FAILURE;
        }
    };
    let served = fio_bench::ServerArgs::parse(args)
        .map_err(io::Error::from)
        .and_then(|args| serve(mode, &args));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bare_uring: {error}");
            ExitCode::FAILURE
        }
    }
}
