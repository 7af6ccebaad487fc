//! Spec paths of a connection's events: `force_event` for `on_ready` and `on_timeout`, and
//! write progress counting as activity for the idle timeout.

mod util;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fio_reactor::{IoEvent, Protocol, Uuid};
use util::{client, listen_local, reactor, start_bounded};

/// Bytes queued before forcing events: far more than the socket buffers hold, so the send
/// queue can't have drained when the forced events run.
const BULK: usize = 32 << 20;

/// On "go": queues [`BULK`] bytes, then forces `on_ready` and `on_timeout`.
struct Forcer {
    /// `on_ready` calls that ran while bytes were still queued (only a forced one can).
    forced_ready: Arc<AtomicUsize>,
    /// `on_timeout` calls (no timeout is set: only forced ones).
    timeouts: Arc<AtomicUsize>,
}

impl Protocol for Forcer {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 16];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
        fio_reactor::write2(uuid, vec![7u8; BULK], false).unwrap();
        fio_reactor::force_event(uuid, IoEvent::OnReady).unwrap();
        fio_reactor::force_event(uuid, IoEvent::OnTimeout).unwrap();
    }

    fn on_ready(&mut self, uuid: Uuid) {
        if fio_reactor::pending(uuid).unwrap_or(0) > 0 {
            self.forced_ready.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn on_timeout(&mut self, uuid: Uuid) {
        self.timeouts.fetch_add(1, Ordering::SeqCst);
        // Sends what is queued, then closes.
        fio_reactor::close(uuid).unwrap();
    }

    fn on_close(&mut self, _uuid: Uuid) {
        fio_reactor::stop();
    }
}

#[test]
fn force_event_runs_on_ready_and_on_timeout_that_did_not_happen() {
    let reactor = reactor(1);
    let forced_ready = Arc::new(AtomicUsize::new(0));
    let timeouts = Arc::new(AtomicUsize::new(0));
    let (ready, timed) = (Arc::clone(&forced_ready), Arc::clone(&timeouts));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(
            uuid,
            Forcer {
                forced_ready: Arc::clone(&ready),
                timeouts: Arc::clone(&timed),
            },
        )
        .unwrap();
    });
    let reader = std::thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(b"go").unwrap();
        util::read_to_end(&mut stream).len()
    });
    start_bounded(&reactor).unwrap();
    assert_eq!(reader.join().unwrap(), BULK, "everything queued was sent");
    assert_eq!(forced_ready.load(Ordering::SeqCst), 1);
    assert_eq!(timeouts.load(Ordering::SeqCst), 1);
}

/// The download: 64 MiB to a reader that takes seconds for it.
const DOWNLOAD: usize = 64 << 20;

/// Queues [`DOWNLOAD`] bytes at once with a 1-second idle timeout; a timeout cuts it off.
struct Download {
    timeouts: Arc<AtomicUsize>,
}

impl Protocol for Download {
    fn on_data(&mut self, uuid: Uuid) {
        // The reader closes once it has everything: end of stream closes this side.
        let mut buf = [0u8; 64];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
    }

    fn on_timeout(&mut self, uuid: Uuid) {
        self.timeouts.fetch_add(1, Ordering::SeqCst);
        let _ = fio_reactor::force_close(uuid);
    }

    fn on_close(&mut self, _uuid: Uuid) {
        fio_reactor::stop();
    }
}

#[test]
fn a_slow_download_outlives_a_shorter_idle_timeout_while_bytes_move() {
    let reactor = reactor(1);
    let timeouts = Arc::new(AtomicUsize::new(0));
    let timed = Arc::clone(&timeouts);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(
            uuid,
            Download {
                timeouts: Arc::clone(&timed),
            },
        )
        .unwrap();
        fio_reactor::timeout_set(uuid, Some(Duration::from_secs(1))).unwrap();
        // Not closed after the write: a closing connection has no idle timeout, and this test
        // is about one that has.
        fio_reactor::write2(uuid, vec![1u8; DOWNLOAD], false).unwrap();
    });
    let reader = std::thread::spawn(move || {
        let mut stream = client(addr);
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0;
        let started = std::time::Instant::now();
        // Slow but steady: at most 64 KiB every 2 ms (about 32 MiB/s), so the download takes
        // two seconds or more, well past the timeout, while the send queue stays full.
        while total < DOWNLOAD {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(count) => total += count,
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (total, started.elapsed())
    });
    start_bounded(&reactor).unwrap();
    let (total, took) = reader.join().unwrap();
    assert_eq!(total, DOWNLOAD, "the download completed (took {took:?})");
    assert!(
        took > Duration::from_secs(1),
        "slower than the timeout: {took:?}"
    );
    assert_eq!(timeouts.load(Ordering::SeqCst), 0);
}

/// Counts forced `on_timeout` and `on_ready` calls after the first `on_ready` (the one every
/// connection gets when it opens); closes once it has both.
struct Counter {
    /// Told once the opening `on_ready` ran; `None` after.
    opened: Option<std::sync::mpsc::Sender<Uuid>>,
    readies: Arc<AtomicUsize>,
    timeouts: Arc<AtomicUsize>,
}

impl Protocol for Counter {
    fn on_ready(&mut self, uuid: Uuid) {
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(uuid);
            return;
        }
        self.readies.fetch_add(1, Ordering::SeqCst);
        self.close_when_both(uuid);
    }

    fn on_timeout(&mut self, uuid: Uuid) {
        self.timeouts.fetch_add(1, Ordering::SeqCst);
        self.close_when_both(uuid);
    }

    fn on_close(&mut self, _uuid: Uuid) {
        fio_reactor::stop();
    }
}

impl Counter {
    fn close_when_both(&self, uuid: Uuid) {
        if self.readies.load(Ordering::SeqCst) > 0 && self.timeouts.load(Ordering::SeqCst) > 0 {
            fio_reactor::close(uuid).unwrap();
        }
    }
}

#[test]
fn force_event_from_another_thread_reaches_the_owner() {
    let reactor = reactor(2);
    let readies = Arc::new(AtomicUsize::new(0));
    let timeouts = Arc::new(AtomicUsize::new(0));
    let (ready, timed) = (Arc::clone(&readies), Arc::clone(&timeouts));
    let (opened, accepted) = std::sync::mpsc::channel();
    let opened = std::sync::Mutex::new(opened);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(
            uuid,
            Counter {
                opened: Some(opened.lock().unwrap().clone()),
                readies: Arc::clone(&ready),
                timeouts: Arc::clone(&timed),
            },
        )
        .unwrap();
    });
    let peer = std::thread::spawn(move || {
        let mut stream = client(addr);
        // The opening on_ready has run: force both from this plain thread.
        let uuid = accepted.recv_timeout(util::IO_TIMEOUT).unwrap();
        fio_reactor::force_event(uuid, IoEvent::OnTimeout).unwrap();
        fio_reactor::force_event(uuid, IoEvent::OnReady).unwrap();
        util::read_to_end(&mut stream)
    });
    start_bounded(&reactor).unwrap();
    assert!(peer.join().unwrap().is_empty());
    assert_eq!(timeouts.load(Ordering::SeqCst), 1);
    assert_eq!(readies.load(Ordering::SeqCst), 1);
}
