//! Heap allocations of the steady-state TLS request path: after a warm-up, N echo requests
//! over one TLS connection, counted on the reactor thread with fio-buffer's
//! [`CountingAllocator`]. The session itself decrypts in the received buffers and encrypts
//! into pooled send buffers, and the protocol's borrowed `write` is encrypted from the
//! borrowed bytes; what is left per request is rustls 0.23's own: each decrypted record
//! moved into a vector before `ReadTraffic` hands it over, and each encrypted record built
//! in a vector before `WriteTraffic::encrypt` copies it into our buffer.

mod util;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use fio_buffer::CountingAllocator;
use fio_reactor::{Protocol, Uuid};
use util::*;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Requests before counting starts: pools, queues and the session reach their steady size.
const WARM_UP: u64 = 2_000;
/// Requests counted.
const MEASURED: u64 = 5_000;
/// Allocations one request may cost: rustls's two vectors (the decrypted request, the
/// encrypted answer). A regression past it fails.
const PER_REQUEST: u64 = 2;

/// The reactor thread's allocation count when the warm-up ended and after the last
/// measured request (`u64::MAX` until then).
struct Marks {
    start: AtomicU64,
    end: AtomicU64,
}

/// Echoes each 4-byte request back.
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
                if self.served == WARM_UP {
                    let now = CountingAllocator::allocations();
                    self.marks.start.store(now, Ordering::SeqCst);
                } else if self.served == WARM_UP + MEASURED {
                    let now = CountingAllocator::allocations();
                    self.marks.end.store(now, Ordering::SeqCst);
                }
            }
        }
    }
}

#[test]
fn a_tls_echo_request_allocates_at_most_two_blocks() {
    let marks = Arc::new(Marks {
        start: AtomicU64::new(u64::MAX),
        end: AtomicU64::new(u64::MAX),
    });
    let reactor = reactor(1);
    let for_open = Arc::clone(&marks);
    let addr = listen_tls(&reactor, server_tls(), move |uuid| {
        let echo = Echo {
            marks: Arc::clone(&for_open),
            served: 0,
        };
        fio_reactor::attach(uuid, echo).unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = rustls_client(addr, "localhost");
        let mut answer = [0u8; 4];
        for _ in 0..WARM_UP + MEASURED {
            stream.write_all(b"ping").expect("send a request");
            stream.flush().expect("send a request");
            stream.read_exact(&mut answer).expect("read the answer");
            assert_eq!(&answer, b"ping");
        }
        stopper.stop();
    });
    CountingAllocator::count_this_thread(true);
    let started = start_bounded(&reactor);
    CountingAllocator::count_this_thread(false);
    client.join().expect("client thread");
    started.expect("reactor runs");
    let (start, end) = (
        marks.start.load(Ordering::SeqCst),
        marks.end.load(Ordering::SeqCst),
    );
    assert!(start != u64::MAX && end != u64::MAX, "every request served");
    let allocations = end - start;
    println!(
        "{allocations} allocations over {MEASURED} TLS echo requests ({:.2} each)",
        allocations as f64 / MEASURED as f64
    );
    assert!(
        allocations <= PER_REQUEST * MEASURED,
        "{allocations} allocations over {MEASURED} requests"
    );
}
