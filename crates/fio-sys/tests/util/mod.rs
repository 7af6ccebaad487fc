//! Helpers shared by the integration tests: temporary directories, bounded readiness waits,
//! loopback connections and an IPv6 probe.
#![allow(dead_code, unreachable_pub)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fio_sys::{PollFlags, RecvFlags, Url};

/// How long any single wait may take before the test fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A directory under `std::env::temp_dir()` with a name unique to this process and call,
/// removed with its contents on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("fio-sys-{}-{unique}-{label}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits until `fd` reports one of `interest`, retrying on `EINTR`, failing after
/// [`DEADLINE`].
pub fn wait_for(fd: BorrowedFd<'_>, interest: PollFlags) -> PollFlags {
    let started = Instant::now();
    for _ in 0..1000 {
        let left = DEADLINE.saturating_sub(started.elapsed());
        match fio_sys::poll(fd, interest, Some(left)) {
            Ok(ready) if !ready.is_empty() => return ready,
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => panic!("poll failed: {error}"),
        }
    }
    panic!("{interest:?} not ready within {DEADLINE:?}");
}

/// Receives exactly `len` bytes from a non-blocking socket, waiting for readiness between
/// reads; stops early at EOF.
pub fn recv_exact(fd: BorrowedFd<'_>, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    let mut filled = 0;
    let started = Instant::now();
    while filled < len {
        assert!(
            started.elapsed() < DEADLINE,
            "received {filled} of {len} bytes"
        );
        match fio_sys::recv(fd, &mut data[filled..], RecvFlags::empty()) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                wait_for(fd, PollFlags::IN);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => panic!("recv failed: {error}"),
        }
    }
    data.truncate(filled);
    data
}

/// A connected pair over a listening server socket made from `url`: (server, client,
/// accepted), with the client's connect completed.
pub fn connected_pair(url: &str) -> (OwnedFd, OwnedFd, OwnedFd) {
    let server = fio_sys::server_socket(&Url::parse(url).unwrap()).unwrap();
    let bound = fio_sys::local_addr(server.as_fd()).unwrap();
    let target = match bound.as_unix_path() {
        Some(path) => Url::unix(path).unwrap(),
        None => format!("tcp://{bound}").parse().unwrap(),
    };
    let (client, _) = fio_sys::client_socket(&target).unwrap();
    wait_for(server.as_fd(), PollFlags::IN);
    let (accepted, _) = fio_sys::accept(server.as_fd()).unwrap();
    wait_for(client.as_fd(), PollFlags::OUT);
    assert!(fio_sys::take_error(client.as_fd()).unwrap().is_none());
    (server, client, accepted)
}

/// Whether this host can bind `[::1]`; reports the skip through `fio_test::skip` (a failure
/// where the run requires IPv6) when it cannot.
pub fn ipv6_loopback_available() -> bool {
    match std::net::TcpListener::bind("[::1]:0") {
        Ok(_) => true,
        Err(error) => {
            fio_test::skip(
                fio_test::Feature::Ipv6,
                &format!("cannot bind [::1]: {error}"),
            );
            false
        }
    }
}
