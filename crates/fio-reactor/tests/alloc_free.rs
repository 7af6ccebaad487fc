//! The steady-state request path allocates nothing: after a warm-up, N echo requests and N
//! HTTP requests (plain and pipelined) cost zero heap allocations on the reactor thread, on
//! whichever engine the run selects (`FIO_ENGINE`).
//!
//! fio-buffer's [`CountingAllocator`] counts the allocations made on threads that asked to be
//! counted (the reactor thread, which is the test thread calling `start`); the protocol reads
//! the count when the warm-up ends and again after the last measured request.

mod util;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use fio_buffer::CountingAllocator;
use fio_reactor::{Chunk, Protocol, Uuid};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations this thread made while counted.
fn allocations() -> u64 {
    CountingAllocator::allocations()
}

/// Requests before counting starts: pools, queues and tables reach their steady size.
const WARM_UP: u64 = 2_000;
/// Requests counted.
const MEASURED: u64 = 5_000;

/// What the protocol saw: the thread's allocation count when the warm-up ended and when the
/// last measured request was answered (`u64::MAX` until then).
#[derive(Default)]
struct Marks {
    start: AtomicU64,
    end: AtomicU64,
}

impl Marks {
    fn new() -> Arc<Self> {
        let marks = Self::default();
        marks.start.store(u64::MAX, Ordering::SeqCst);
        marks.end.store(u64::MAX, Ordering::SeqCst);
        Arc::new(marks)
    }

    /// Notes the allocation count after request number `served` (1-based).
    fn note(&self, served: u64) {
        if served == WARM_UP {
            self.start.store(allocations(), Ordering::SeqCst);
        } else if served == WARM_UP + MEASURED {
            self.end.store(allocations(), Ordering::SeqCst);
        }
    }

    fn measured(&self) -> u64 {
        let (start, end) = (
            self.start.load(Ordering::SeqCst),
            self.end.load(Ordering::SeqCst),
        );
        assert!(
            start != u64::MAX && end != u64::MAX,
            "the server did not serve every request"
        );
        end - start
    }
}

/// Echoes bytes back; each 4-byte read-and-write counts as one request.
struct Echo {
    marks: Arc<Marks>,
    served: u64,
}

impl Protocol for Echo {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 4096];
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            if fio_reactor::write(uuid, &buf[..count]).is_err() {
                return;
            }
            for _ in 0..count / 4 {
                self.served += 1;
                self.marks.note(self.served);
            }
        }
    }
}

/// The fixed HTTP response.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nHello World!";
/// The request every client sends.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// Answers each `\r\n\r\n`-terminated request with [`RESPONSE`], one static chunk each.
struct Hello {
    marks: Arc<Marks>,
    served: u64,
    matched: usize,
}

impl Protocol for Hello {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 4096];
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            for &byte in &buf[..count] {
                self.matched = match (self.matched, byte) {
                    (0 | 2, b'\r') => self.matched + 1,
                    (1 | 3, b'\n') => self.matched + 1,
                    (_, b'\r') => 1,
                    _ => 0,
                };
                if self.matched == 4 {
                    self.matched = 0;
                    if fio_reactor::write2(uuid, Chunk::Static(RESPONSE), false).is_err() {
                        return;
                    }
                    self.served += 1;
                    self.marks.note(self.served);
                }
            }
        }
    }
}

/// Serves `protocol` to one client that sends `request` `depth` at a time and reads
/// `reply.len() * depth` bytes back, until `WARM_UP + MEASURED` requests were answered;
/// returns the allocations the reactor thread made over the measured requests.
fn allocations_over(
    make: impl Fn(Arc<Marks>) -> Box<dyn FnOnce(Uuid) + Send> + Send + Sync + 'static,
    request: &'static [u8],
    reply: &'static [u8],
    depth: usize,
) -> u64 {
    let marks = Marks::new();
    let reactor = util::reactor(1);
    let for_open = Arc::clone(&marks);
    let (_, addr) = util::listen_local(&reactor, move |uuid| make(Arc::clone(&for_open))(uuid));
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = util::client(addr);
        let batch = request.repeat(depth);
        let mut answer = vec![0u8; reply.len() * depth];
        let total = (WARM_UP + MEASURED) as usize;
        let mut sent = 0;
        while sent < total {
            stream.write_all(&batch).expect("send requests");
            stream.read_exact(&mut answer).expect("read answers");
            assert!(answer.chunks(reply.len()).all(|one| one == reply));
            sent += depth;
        }
        stopper.stop();
    });
    CountingAllocator::count_this_thread(true);
    let started = util::start_bounded(&reactor);
    CountingAllocator::count_this_thread(false);
    client.join().expect("client thread");
    started.expect("reactor runs");
    marks.measured()
}

fn echo(depth: usize) -> u64 {
    allocations_over(
        |marks| {
            Box::new(move |uuid| {
                fio_reactor::attach(uuid, Echo { marks, served: 0 }).expect("attach");
            })
        },
        b"ping",
        b"ping",
        depth,
    )
}

fn hello(depth: usize) -> u64 {
    allocations_over(
        |marks| {
            Box::new(move |uuid| {
                let hello = Hello {
                    marks,
                    served: 0,
                    matched: 0,
                };
                fio_reactor::attach(uuid, hello).expect("attach");
            })
        },
        REQUEST,
        RESPONSE,
        depth,
    )
}

#[test]
fn echo_requests_allocate_nothing() {
    assert_eq!(echo(1), 0, "allocations over {MEASURED} echo requests");
}

#[test]
fn pipelined_echo_requests_allocate_nothing() {
    assert_eq!(
        echo(16),
        0,
        "allocations over {MEASURED} pipelined echo requests"
    );
}

#[test]
fn http_requests_allocate_nothing() {
    assert_eq!(hello(1), 0, "allocations over {MEASURED} HTTP requests");
}

#[test]
fn pipelined_http_requests_allocate_nothing() {
    assert_eq!(
        hello(16),
        0,
        "allocations over {MEASURED} pipelined HTTP requests"
    );
}
