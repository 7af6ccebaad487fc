//! `flush`'s value (facil.io's 1 / 0 / -1), `flush_strong` returning only once the connection
//! drained, and `flush_all` reaching every reactor thread's connections.

mod util;

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use fio_reactor::{Chunk, Error, HookIo, Protocol, RwHook, Uuid};
use util::{IO_TIMEOUT, client, listen_local, reactor, read_to_end, start_bounded};

/// Bytes written before flushing: more than the socket buffers hold.
const BULK: usize = 16 << 20;

/// What the server saw, in order.
type Log = Arc<Mutex<Vec<String>>>;

/// On "go": writes [`BULK`] bytes and checks `flush`; once drained, checks it again.
struct FlushValues {
    log: Log,
    waiting: bool,
}

impl Protocol for FlushValues {
    fn on_data(&mut self, uuid: Uuid) {
        while fio_reactor::read(uuid, &mut [0u8; 16]).unwrap_or(0) > 0 {}
        if self.waiting {
            return;
        }
        fio_reactor::write2(uuid, vec![1u8; BULK], false).unwrap();
        let value = fio_reactor::flush(uuid);
        self.log.lock().unwrap().push(format!("queued: {value:?}"));
        self.waiting = true;
    }

    fn on_ready(&mut self, uuid: Uuid) {
        if self.waiting {
            let value = fio_reactor::flush(uuid);
            self.log.lock().unwrap().push(format!("drained: {value:?}"));
            self.waiting = false;
            fio_reactor::close(uuid).unwrap();
        }
    }

    fn on_close(&mut self, uuid: Uuid) {
        let value = fio_reactor::flush(uuid);
        self.log.lock().unwrap().push(format!("closed: {value:?}"));
        fio_reactor::stop();
    }
}

#[test]
fn flush_says_whether_data_remains_and_errs_once_closed() {
    let reactor = reactor(1);
    let log = Log::default();
    let kept = Arc::clone(&log);
    let (opened, accepted) = mpsc::channel();
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(
            uuid,
            FlushValues {
                log: Arc::clone(&kept),
                waiting: false,
            },
        )
        .unwrap();
        let _ = opened.send(uuid);
    });
    let peer = std::thread::spawn(move || {
        let mut stream = client(addr);
        let uuid = accepted.recv_timeout(IO_TIMEOUT).unwrap();
        // Not the owner: facil.io's -1 too.
        let foreign = fio_reactor::flush(uuid);
        stream.write_all(b"go").unwrap();
        (read_to_end(&mut stream).len(), foreign)
    });
    start_bounded(&reactor).unwrap();
    let (received, foreign) = peer.join().unwrap();
    assert_eq!(received, BULK);
    assert!(
        matches!(foreign, Err(Error::ForeignThread(_))),
        "{foreign:?}"
    );
    let log = log.lock().unwrap().clone();
    assert_eq!(log[0], "queued: Ok(true)", "{log:?}");
    assert_eq!(log[1], "drained: Ok(false)", "{log:?}");
    assert!(log[2].starts_with("closed: Err(InvalidUuid"), "{log:?}");
}

/// On "go": writes bytes and a file, then `flush_strong`s and checks that nothing is left.
struct StrongFlush {
    file: Option<std::fs::File>,
    log: Log,
}

impl Protocol for StrongFlush {
    fn on_data(&mut self, uuid: Uuid) {
        while fio_reactor::read(uuid, &mut [0u8; 16]).unwrap_or(0) > 0 {}
        let Some(file) = self.file.take() else { return };
        fio_reactor::write2(uuid, vec![2u8; BULK], false).unwrap();
        fio_reactor::sendfile(uuid, file, 0, 0).unwrap();
        fio_reactor::write(uuid, b"end").unwrap();
        let strong = fio_reactor::flush_strong(uuid);
        let pending = fio_reactor::pending(uuid);
        let more = fio_reactor::flush(uuid);
        self.log
            .lock()
            .unwrap()
            .push(format!("{strong:?} {pending:?} {more:?}"));
        fio_reactor::close(uuid).unwrap();
    }

    fn on_close(&mut self, _uuid: Uuid) {
        fio_reactor::stop();
    }
}

/// A temporary file of `len` bytes, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(tag: &str, len: usize) -> Self {
        let path = std::env::temp_dir().join(format!("fio-spec-{tag}-{}", std::process::id()));
        std::fs::write(&path, vec![3u8; len]).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn flush_strong_on_the_owner_returns_once_bytes_and_files_are_sent() {
    const FILE: usize = 2 << 20;
    let file = TempFile::new("flush-strong", FILE);
    let reactor = reactor(1);
    let log = Log::default();
    let kept = Arc::clone(&log);
    let path = file.0.clone();
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(
            uuid,
            StrongFlush {
                file: Some(std::fs::File::open(&path).unwrap()),
                log: Arc::clone(&kept),
            },
        )
        .unwrap();
    });
    let peer = std::thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(b"go").unwrap();
        read_to_end(&mut stream)
    });
    start_bounded(&reactor).unwrap();
    let received = peer.join().unwrap();
    assert_eq!(received.len(), BULK + FILE + 3);
    assert!(received.ends_with(b"end"));
    assert_eq!(*log.lock().unwrap(), ["Ok(()) Ok(0) Ok(false)"]);
}

/// Reads and drops what arrives.
struct Sink;

impl Protocol for Sink {
    fn on_data(&mut self, uuid: Uuid) {
        while fio_reactor::read(uuid, &mut [0u8; 1024]).unwrap_or(0) > 0 {}
    }
}

/// A reactor with one accepted connection to a client that `client_side` handles; `drive`
/// runs on a plain thread with the connection's uuid; returns what both return.
fn from_outside<C: Send + 'static, D: Send + 'static>(
    client_side: impl FnOnce(std::net::TcpStream) -> C + Send + 'static,
    drive: impl FnOnce(Uuid) -> D + Send + 'static,
) -> (C, D) {
    let reactor = reactor(2);
    let (opened, accepted) = mpsc::channel();
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::attach(uuid, Sink).unwrap();
        let _ = opened.send(uuid);
    });
    let stopper = reactor.clone();
    let driver = std::thread::spawn(move || {
        let stream = client(addr);
        let uuid = accepted.recv_timeout(IO_TIMEOUT).unwrap();
        let peer = std::thread::spawn(move || client_side(stream));
        let driven = drive(uuid);
        let peer = peer.join().unwrap();
        stopper.stop();
        (peer, driven)
    });
    start_bounded(&reactor).unwrap();
    driver.join().unwrap()
}

/// Reads up to `len` bytes from `stream` (fewer at its end or on an error); returns how many.
fn read_count(stream: &mut std::net::TcpStream, len: usize) -> usize {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0;
    while total < len {
        match io::Read::read(stream, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(count) => total += count,
        }
    }
    total
}

#[test]
fn flush_strong_from_outside_the_reactor_waits_for_the_owner_to_drain() {
    let ((received, _open), (result, took)) = from_outside(
        |mut stream| {
            // The socket is handed back, not dropped: `write2` from outside only posts the
            // write, so the owner may send everything, and this side read it, before the
            // driver calls `flush_strong`. Closing here then would let the server see the end
            // of stream and close the connection first, and `flush_strong` would rightly
            // answer `InvalidUuid`. Kept open until `flush_strong` returned, the connection is
            // still there whichever comes first.
            (read_count(&mut stream, BULK), stream)
        },
        |uuid| {
            fio_reactor::write2(uuid, vec![4u8; BULK], false).unwrap();
            let began = Instant::now();
            (fio_reactor::flush_strong(uuid), began.elapsed())
        },
    );
    assert!(result.is_ok(), "{result:?} after {took:?}");
    assert_eq!(received, BULK);
}

/// Lets the thread owning `uuid` run `ticks` ticks (a task deferred and awaited per tick), so
/// it has handled what its socket reported before; returns whether the connection was still
/// open in the last one.
fn owner_ticks(uuid: Uuid, ticks: usize) -> bool {
    let mut open = false;
    for _ in 0..ticks {
        let (ran, done) = mpsc::channel();
        let queued = fio_reactor::defer_io_task(uuid, move |_, protocol| {
            let _ = ran.send(protocol.is_some());
        });
        open = queued.is_ok() && done.recv_timeout(IO_TIMEOUT).unwrap_or(false);
    }
    open
}

#[test]
fn flush_strong_from_outside_on_a_connection_already_drained_returns_ok() {
    // The order the test above can't rule out, forced: the peer has read everything, and the
    // owner has handled whatever its socket reported since, before `flush_strong` is called.
    // A peer that closed after reading (as the test above once did) has had its connection
    // closed by then under epoll, and usually under io_uring (its close takes more ticks).
    let (read_all, all_read) = mpsc::channel();
    let ((received, _open), (open, result)) = from_outside(
        move |mut stream| {
            let received = read_count(&mut stream, BULK);
            let _ = read_all.send(());
            (received, stream)
        },
        move |uuid| {
            fio_reactor::write2(uuid, vec![6u8; BULK], false).unwrap();
            all_read.recv_timeout(IO_TIMEOUT).unwrap();
            (owner_ticks(uuid, 32), fio_reactor::flush_strong(uuid))
        },
    );
    assert_eq!(received, BULK);
    assert!(open, "the peer still holds its socket");
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn flush_strong_reports_a_connection_that_fails_before_it_drains() {
    let (_, result) = from_outside(
        |mut stream| {
            // A little arrives and stays unread; closing then resets the connection.
            let mut first = [0u8; 1];
            let _ = io::Read::read_exact(&mut stream, &mut first);
            std::thread::sleep(Duration::from_millis(50));
        },
        |uuid| {
            fio_reactor::write2(uuid, vec![5u8; 2 * BULK], false).unwrap();
            fio_reactor::flush_strong(uuid)
        },
    );
    assert!(
        matches!(
            result,
            Err(Error::Connection { .. } | Error::InvalidUuid(_))
        ),
        "{result:?}"
    );
}

/// Counts its flushes; holds every write (never hands it on) while `hold` is set.
struct Holding {
    flushes: Arc<AtomicUsize>,
    hold: Arc<AtomicBool>,
    held: Vec<u8>,
}

impl RwHook for Holding {
    fn write(&mut self, io: &mut HookIo<'_>, data: Chunk) -> io::Result<()> {
        self.held.extend_from_slice(data.bytes());
        self.flush(io).map(drop)
    }

    fn flush(&mut self, io: &mut HookIo<'_>) -> io::Result<usize> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        if !self.hold.load(Ordering::SeqCst) && !self.held.is_empty() {
            io.send(std::mem::take(&mut self.held))?;
        }
        Ok(self.held.len())
    }
}

/// A connection and its hook's flush count.
type Counted = (Uuid, Arc<AtomicUsize>);

#[test]
fn flush_all_reaches_the_connections_of_every_thread() {
    let reactor = reactor(2);
    let hold = Arc::new(AtomicBool::new(true));
    let hooks: Arc<Mutex<Vec<Counted>>> = Arc::default();
    let (held, seen) = (Arc::clone(&hold), Arc::clone(&hooks));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let flushes = Arc::new(AtomicUsize::new(0));
        let hook = Holding {
            flushes: Arc::clone(&flushes),
            hold: Arc::clone(&held),
            held: Vec::new(),
        };
        fio_reactor::rw_hook_set(uuid, hook).unwrap();
        fio_reactor::attach(uuid, Sink).unwrap();
        seen.lock().unwrap().push((uuid, flushes));
    });
    let stopper = reactor.clone();
    let driver = std::thread::spawn(move || {
        // Two connections: accepted connections alternate over the two threads.
        let streams = [client(addr), client(addr)];
        let deadline = Instant::now() + IO_TIMEOUT;
        while hooks.lock().unwrap().len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let hooks = hooks.lock().unwrap().clone();
        let counts = || -> Vec<usize> {
            hooks
                .iter()
                .map(|(_, flushes)| flushes.load(Ordering::SeqCst))
                .collect()
        };
        // The second connection's hook holds a write.
        fio_reactor::write(hooks[1].0, b"held").unwrap();
        while counts()[1] == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let before = counts();
        let unsent = stopper.flush_all();
        let after = counts();
        // From a reactor thread (the one holding the write): the other thread's connection,
        // whose hook is flushed by nothing else (it was never written to), is flushed on its
        // next tick.
        let (tx, rx) = mpsc::channel();
        fio_reactor::defer_io_task(hooks[1].0, move |_, _| {
            let _ = tx.send(fio_reactor::flush_all());
        })
        .unwrap();
        let inside = rx.recv_timeout(IO_TIMEOUT).unwrap();
        while counts()[0] <= after[0] && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let later = counts();
        hold.store(false, Ordering::SeqCst);
        stopper.stop();
        drop(streams);
        (before, unsent, after, inside, later)
    });
    start_bounded(&reactor).unwrap();
    let (before, unsent, after, inside, later) = driver.join().unwrap();
    assert_eq!(
        unsent, 1,
        "the held write counts, whichever thread holds it"
    );
    assert!(
        after[0] > before[0] && after[1] > before[1],
        "both threads flushed: {before:?} -> {after:?}"
    );
    assert_eq!(inside, 1, "the calling thread counts its own held write");
    assert!(
        later[0] > after[0],
        "flush_all on one reactor thread reached the other: {after:?} -> {later:?}"
    );
}
