//! Unix sockets: server paths replaced only when stale, client connects, and abstract names.

mod util;

use std::io;
use std::os::fd::AsFd;

use fio_sys::{ConnectStatus, Domain, PollFlags, SendFlags, SockAddr, SockType, Url};
use util::{TempDir, recv_exact, wait_for};

#[test]
fn connects_and_reports_unix_addresses() {
    let dir = TempDir::new("unix-connect");
    let path = dir.join("server.sock");
    let url = Url::unix(&path).unwrap();
    let server = fio_sys::server_socket(&url).unwrap();
    let (client, status) = fio_sys::client_socket(&url).unwrap();
    assert_eq!(status, ConnectStatus::Connected);
    wait_for(server.as_fd(), PollFlags::IN);
    let (accepted, peer) = fio_sys::accept(server.as_fd()).unwrap();
    assert_eq!(peer, SockAddr::UnixUnnamed);
    assert_eq!(
        fio_sys::local_addr(accepted.as_fd()).unwrap(),
        SockAddr::unix(&path)
    );
    assert_eq!(
        fio_sys::peer_addr(client.as_fd()).unwrap(),
        SockAddr::unix(&path)
    );
    assert!(fio_sys::is_nonblocking(accepted.as_fd()).unwrap());
    assert!(fio_sys::is_cloexec(accepted.as_fd()).unwrap());
    fio_sys::send(client.as_fd(), b"local", SendFlags::NOSIGNAL).unwrap();
    assert_eq!(recv_exact(accepted.as_fd(), 5), b"local");
}

#[test]
fn server_replaces_a_stale_socket_file() {
    let dir = TempDir::new("unix-stale");
    let path = dir.join("stale.sock");
    let url = Url::unix(&path).unwrap();
    drop(fio_sys::server_socket(&url).unwrap());
    assert!(
        path.exists(),
        "closing a Unix listener leaves its file behind"
    );

    let server = fio_sys::server_socket(&url).unwrap();
    let (client, _) = fio_sys::client_socket(&url).unwrap();
    wait_for(server.as_fd(), PollFlags::IN);
    fio_sys::accept(server.as_fd()).unwrap();
    drop(client);
}

#[test]
fn server_refuses_to_replace_a_regular_file() {
    let dir = TempDir::new("unix-file");
    let path = dir.join("precious.txt");
    std::fs::write(&path, "keep me").unwrap();
    let error = fio_sys::server_socket(&Url::unix(&path).unwrap()).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
    assert!(error.to_string().contains("not a socket"), "{error}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
}

#[test]
fn server_refuses_to_steal_a_live_servers_path() {
    let dir = TempDir::new("unix-live");
    let path = dir.join("live.sock");
    let url = Url::unix(&path).unwrap();
    let live = fio_sys::server_socket(&url).unwrap();
    let error = fio_sys::server_socket(&url).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    // The live server still owns the path: the probe's connection is queued on it, and a new
    // client reaches it too.
    let (client, _) = fio_sys::client_socket(&url).unwrap();
    wait_for(live.as_fd(), PollFlags::IN);
    fio_sys::accept(live.as_fd()).unwrap();
    drop(client);
}

#[test]
fn client_to_a_missing_path_fails() {
    let dir = TempDir::new("unix-missing");
    let url = Url::unix(dir.join("nobody.sock")).unwrap();
    let error = fio_sys::client_socket(&url).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::NotFound);
}

#[test]
fn abstract_names_round_trip_through_the_kernel() {
    let name = format!("fio-sys-test-{}", std::process::id()).into_bytes();
    let addr = SockAddr::UnixAbstract(name);
    let fd = fio_sys::socket(Domain::Unix, SockType::Stream, true).unwrap();
    fio_sys::bind(fd.as_fd(), &addr).unwrap();
    assert_eq!(fio_sys::local_addr(fd.as_fd()).unwrap(), addr);
    let unbound = fio_sys::socket(Domain::Unix, SockType::Stream, true).unwrap();
    assert_eq!(
        fio_sys::local_addr(unbound.as_fd()).unwrap(),
        SockAddr::UnixUnnamed
    );
}
