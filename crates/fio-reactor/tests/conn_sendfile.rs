//! Sending files: `sendfile` and `write2` with a `FileChunk` deliver the selected bytes in
//! order with the writes around them, then close (or, shared, release) the file.

mod util;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;

use fio_reactor::{FileChunk, Protocol, Uuid};
use util::{client, listen_local, reactor, read_to_end, run_exchange, start_bounded};

/// Larger than the socket buffers and many file pieces, so the file is sent across many ticks.
const FILE_LEN: usize = 3 << 20;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|n| (n % 251) as u8).collect()
}

/// A temporary file holding [`pattern`], removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("fio-{name}-{}", std::process::id()));
        File::create(&path)
            .unwrap()
            .write_all(&pattern(FILE_LEN))
            .unwrap();
        Self(path)
    }

    fn open(&self) -> File {
        File::open(&self.0).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// On its first `on_data`: writes a head, the file's slice, a tail, then closes.
struct SendSlice {
    file: Option<File>,
    offset: u64,
    len: u64,
    pending_seen: Arc<Mutex<Vec<usize>>>,
}

impl Protocol for SendSlice {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
        let Some(file) = self.file.take() else { return };
        fio_reactor::write(uuid, b"head:").unwrap();
        fio_reactor::sendfile(uuid, file, self.offset, self.len).unwrap();
        fio_reactor::write2(uuid, &b":tail"[..], false).unwrap();
        self.pending_seen
            .lock()
            .unwrap()
            .push(fio_reactor::pending(uuid).unwrap());
        fio_reactor::close(uuid).unwrap();
        assert!(fio_reactor::write(uuid, b"late").is_err());
    }
}

fn send_slice(offset: u64, len: u64) -> (Vec<u8>, Vec<usize>) {
    let temp = TempFile::new(&format!("sendfile-{offset}-{len}"));
    let reactor = reactor(1);
    let file = Mutex::new(Some(temp.open()));
    let pending_seen = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&pending_seen);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let _ = fio_reactor::attach(
            uuid,
            SendSlice {
                file: file.lock().unwrap().take(),
                offset,
                len,
                pending_seen: Arc::clone(&seen),
            },
        );
    });
    let received = run_exchange(&reactor, addr, b"go");
    let seen = pending_seen.lock().unwrap().clone();
    (received, seen)
}

fn expected(offset: usize, end: usize) -> Vec<u8> {
    let mut expected = b"head:".to_vec();
    expected.extend_from_slice(&pattern(FILE_LEN)[offset..end]);
    expected.extend_from_slice(b":tail");
    expected
}

#[test]
fn a_file_slice_arrives_between_the_writes_around_it() {
    let (received, pending) = send_slice(1000, 2 << 20);
    assert_eq!(received.len(), expected(1000, 1000 + (2 << 20)).len());
    assert!(received == expected(1000, 1000 + (2 << 20)));
    // The head, a window of file pieces and what waits behind them count as pending.
    assert!(pending.iter().all(|&count| count >= 2), "{pending:?}");
}

#[test]
fn length_zero_sends_to_the_end_of_the_file() {
    let (received, _) = send_slice(FILE_LEN as u64 - 70_000, 0);
    assert!(received == expected(FILE_LEN - 70_000, FILE_LEN));
}

#[test]
fn a_length_past_the_end_stops_at_the_end() {
    let (received, _) = send_slice(5, FILE_LEN as u64 * 2);
    assert!(received == expected(5, FILE_LEN));
}

/// Sends one shared file to every connection, then closes; `abort` force-closes instead,
/// right after queueing.
struct SendShared {
    file: Arc<File>,
    abort: bool,
}

impl Protocol for SendShared {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
        let chunk = FileChunk::shared(Arc::clone(&self.file)).max_len(FILE_LEN as u64);
        fio_reactor::write2(uuid, chunk, false).unwrap();
        if self.abort {
            fio_reactor::force_close(uuid).unwrap();
        } else {
            fio_reactor::close(uuid).unwrap();
        }
    }
}

fn send_shared(abort: bool) -> (Vec<Vec<u8>>, usize) {
    let temp = TempFile::new(&format!("shared-{abort}"));
    let file = Arc::new(temp.open());
    let reactor = reactor(1);
    let shared = Arc::clone(&file);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let _ = fio_reactor::attach(
            uuid,
            SendShared {
                file: Arc::clone(&shared),
                abort,
            },
        );
    });
    let stopper = reactor.clone();
    let clients = thread::spawn(move || {
        let streams: Vec<_> = (0..3).map(|_| client(addr)).collect();
        let received = streams
            .into_iter()
            .map(|mut stream| {
                stream.write_all(b"go").unwrap();
                read_to_end(&mut stream)
            })
            .collect();
        stopper.stop();
        received
    });
    start_bounded(&reactor).unwrap();
    let received = clients.join().unwrap();
    // The listener's on_open closure held one handle; the reactor dropped it with the listener.
    (received, Arc::strong_count(&file))
}

#[test]
fn a_shared_file_goes_to_every_connection_and_stays_open() {
    let (received, handles) = send_shared(false);
    for bytes in &received {
        assert!(*bytes == pattern(FILE_LEN));
    }
    assert_eq!(handles, 1, "every connection released the file");
}

#[test]
fn force_close_releases_a_file_being_sent() {
    let (received, handles) = send_shared(true);
    for bytes in &received {
        assert!(bytes.len() < FILE_LEN);
        assert!(**bytes == pattern(FILE_LEN)[..bytes.len()]);
    }
    assert_eq!(handles, 1, "every connection released the file");
}
