//! The spec's `connect` and `listen` paths the other tests leave out: a connect `.timeout`
//! that fires, Unix sockets at the reactor level, and `listen` without a URL
//! (`tcp://0.0.0.0:3000`).

mod util;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fio_reactor::{ConnectArgs, ListenArgs};
use fio_sys::{Domain, SockAddr, SockType};
use util::{Echo, Pinger, reactor, start_bounded};

/// A listener on 127.0.0.1 whose accept queue is full, so a further connect's SYN is dropped
/// and the connect hangs; returns the listener (keep it alive), the connections that fill its
/// queue, and its address.
fn full_listener() -> (
    std::os::fd::OwnedFd,
    Vec<std::net::TcpStream>,
    std::net::SocketAddr,
) {
    let fd = fio_sys::socket(Domain::Ipv4, SockType::Stream, false).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    fio_sys::bind(fd.as_fd(), &SockAddr::from(any)).unwrap();
    // Backlog 0: the kernel queues one connection and drops the SYNs of the rest.
    fio_sys::listen(fd.as_fd(), Some(0)).unwrap();
    let addr = fio_sys::local_addr(fd.as_fd()).unwrap().as_inet().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(stream) => fillers.push(stream),
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                return (fd, fillers, addr);
            }
            Err(error) => panic!("filling the accept queue: {error}"),
        }
    }
    panic!("the accept queue of a backlog-0 listener never filled");
}

#[test]
fn a_connect_that_gets_no_answer_fails_with_timed_out_after_its_timeout() {
    let (_listener, _fillers, addr) = full_listener();
    let reactor = reactor(1);
    let opened = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&opened);
    let failure = Arc::new(Mutex::new(None));
    let failed = Arc::clone(&failure);
    let finishes = Arc::new(AtomicUsize::new(0));
    let finished = Arc::clone(&finishes);
    let began = Instant::now();
    let args = ConnectArgs::new(format!("tcp://{addr}"), move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    })
    .timeout(Duration::from_secs(1))
    .on_fail(move |error| {
        *failed.lock().unwrap() = Some((error.kind(), began.elapsed()));
    })
    .on_finish(move || {
        finished.fetch_add(1, Ordering::SeqCst);
        fio_reactor::stop();
    });
    reactor.connect(args).unwrap();
    start_bounded(&reactor).unwrap();
    let (kind, after) = failure.lock().unwrap().expect("on_fail ran");
    assert_eq!(kind, std::io::ErrorKind::TimedOut);
    assert!(after >= Duration::from_secs(1), "failed after {after:?}");
    assert_eq!(opened.load(Ordering::SeqCst), 0);
    assert_eq!(finishes.load(Ordering::SeqCst), 1);
}

/// A fresh directory for Unix sockets, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("fio-spec-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_reactor_listens_and_connects_on_a_unix_socket() {
    let dir = TempDir::new("unix");
    let path = dir.0.join("echo.sock");
    let url = format!("unix://{}", path.display());
    let reactor = reactor(2);
    let closes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&closes);
    let listener = reactor
        .listen(ListenArgs::new(url.clone(), move |uuid| {
            fio_reactor::attach(
                uuid,
                Echo {
                    closes: Arc::clone(&counted),
                },
            )
            .unwrap();
        }))
        .unwrap();
    let local = fio_reactor::local_addr(listener).expect("a Unix listener has an address");
    assert!(local.as_inet().is_none(), "not an inet address: {local:?}");
    // A plain client too: the listener is a real Unix socket on that path.
    let outside = std::thread::spawn({
        let path = path.clone();
        move || {
            // The reactor accepts once it runs; until then the connection waits in the backlog.
            let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
            stream.set_read_timeout(Some(util::IO_TIMEOUT)).unwrap();
            stream.write_all(b"outside").unwrap();
            let mut buf = [0u8; 7];
            stream.read_exact(&mut buf).unwrap();
            buf
        }
    });
    let got = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&got);
    reactor
        .connect(ConnectArgs::new(url, move |uuid| {
            assert!(fio_reactor::peer_addr(uuid).is_some_and(|peer| peer.as_inet().is_none()));
            fio_reactor::attach(
                uuid,
                Pinger {
                    got: Arc::clone(&into),
                    // Never stops the reactor itself: the watcher below does, once both
                    // clients have their echo.
                    expected: usize::MAX,
                },
            )
            .unwrap();
            fio_reactor::write(uuid, b"inside").unwrap();
        }))
        .unwrap();
    let (stopper, seen) = (reactor.clone(), Arc::clone(&got));
    let watcher = std::thread::spawn(move || {
        let outside = outside.join();
        let deadline = Instant::now() + util::IO_TIMEOUT;
        while seen.lock().unwrap().len() < 6 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        stopper.stop();
        outside
    });
    start_bounded(&reactor).unwrap();
    assert_eq!(&watcher.join().unwrap().unwrap(), b"outside");
    assert_eq!(&*got.lock().unwrap(), b"inside");
    assert_eq!(
        closes.load(Ordering::SeqCst),
        2,
        "both server sides closed with the reactor"
    );
    assert!(!fio_reactor::is_valid(listener));
}

#[test]
fn listen_without_a_url_takes_port_3000_on_every_interface() {
    let reactor = reactor(1);
    let closes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&closes);
    let on_open = move |uuid| {
        fio_reactor::attach(
            uuid,
            Echo {
                closes: Arc::clone(&counted),
            },
        )
        .unwrap();
    };
    // Port 3000 is shared with anything else on the machine (another test run, the echo
    // example): wait for it, within bounds, and fail rather than skip if it stays taken.
    let deadline = Instant::now() + Duration::from_secs(30);
    let listener = loop {
        match reactor.listen(ListenArgs::default_url(on_open.clone())) {
            Ok(listener) => break listener,
            Err(fio_reactor::Error::Listen { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(error) => panic!("listen without a URL: {error}"),
        }
    };
    let local = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .unwrap();
    assert_eq!(local, "0.0.0.0:3000".parse().unwrap());
    let stopper = reactor.clone();
    let client = std::thread::spawn(move || {
        let mut stream = util::client("127.0.0.1:3000".parse().unwrap());
        stream.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        let read = stream.read_exact(&mut buf);
        // The echo came back, so the reactor runs: stopping it now can't come too early.
        stopper.stop();
        read.map(|()| buf)
    });
    start_bounded(&reactor).unwrap();
    assert_eq!(&client.join().unwrap().unwrap(), b"hi");
    assert!(!fio_reactor::is_valid(listener));
}
