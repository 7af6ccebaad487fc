//! Shared helpers for the fio-ring integration tests: rings, bounded tick loops, loopback
//! socket pairs, temporary files and the `require!` skip (through `fio_test::skip`, so it fails
//! where the run requires io_uring).
#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fio_ring::{Completion, Ring, RingConfig};

/// Skips the rest of a test when the kernel lacks an operation kind or io_uring feature,
/// through [`fio_test::skip`]: one `FIO-SKIP:` line, or a failure where the run requires
/// io_uring (`FIO_REQUIRE=uring` or `FIO_REQUIRE_URING=1`).
#[macro_export]
macro_rules! require {
    ($ring:expr, $kind:expr) => {
        if !$ring.features().supports($kind) {
            fio_test::skip(
                fio_test::Feature::Uring,
                &format!(
                    "{:?} not supported by kernel {:?}",
                    $kind,
                    $ring.features().kernel()
                ),
            );
            return;
        }
    };
    ($ring:expr, $cond:expr, $what:expr) => {
        if !$cond {
            fio_test::skip(
                fio_test::Feature::Uring,
                &format!(
                    "{} not supported by kernel {:?}",
                    $what,
                    $ring.features().kernel()
                ),
            );
            return;
        }
    };
}

/// A ring with room for 64 submissions.
pub fn ring() -> Ring {
    Ring::new(RingConfig::new(64)).expect("io_uring is available on the test machine")
}

/// Ticks `ring` until `done()` holds; fails after 2000 ticks or 10 seconds.
pub fn run_until(ring: &mut Ring, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..2000 {
        if done() {
            return;
        }
        assert!(Instant::now() < deadline, "condition not met within 10 s");
        ring.wait(Some(Duration::from_millis(100))).expect("wait");
    }
    assert!(done(), "condition not met within 2000 ticks");
}

/// Completions collected by a handler.
pub type Collected = Rc<RefCell<Vec<Completion>>>;

/// A handler that stores every completion, and the shared list it stores them in.
pub fn collector() -> (Collected, impl FnMut(&mut Ring, Completion) + 'static) {
    let list: Collected = Rc::default();
    let sink = list.clone();
    (list, move |_: &mut Ring, completion| {
        sink.borrow_mut().push(completion)
    })
}

/// Whether the collected list has a final completion.
pub fn has_final(list: &Collected) -> bool {
    list.borrow().iter().any(Completion::is_final)
}

/// A connected TCP pair on 127.0.0.1.
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// A file path in the temp dir, removed when dropped.
pub struct TempPath(pub PathBuf);

impl TempPath {
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("fio-ring-test-{}-{n}-{name}", std::process::id()));
        Self(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `len` bytes of a recognisable, non-repeating-per-chunk pattern.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Ticks `ring` until nothing is in flight; fails after 2000 ticks or 10 seconds.
pub fn run_until_idle(ring: &mut Ring) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..2000 {
        if ring.in_flight() == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "ring not idle within 10 s");
        ring.wait(Some(Duration::from_millis(100))).expect("wait");
    }
    assert_eq!(ring.in_flight(), 0, "ring not idle within 2000 ticks");
}
