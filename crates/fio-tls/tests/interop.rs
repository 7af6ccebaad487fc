//! fio's TLS server against real clients: a rustls client, fio's own client, `openssl
//! s_client` (TLS 1.2 and 1.3) and `curl`; 64 MiB each way byte-exact.

mod util;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread;

use fio_reactor::{ConnectArgs, Uuid};
use util::*;

#[test]
fn a_rustls_client_talks_to_the_server() {
    let reactor = reactor(1);
    let addr = listen_tls(&reactor, server_tls(), echo_on_open);
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = rustls_client(addr, "localhost");
        stream.write_all(b"hello tls").unwrap();
        let mut echoed = [0u8; 9];
        let got = stream.read_exact(&mut echoed).map(|()| echoed);
        // A clean end: the server's close_notify after our bye.
        stream.write_all(b"bye\n").unwrap();
        let mut rest = Vec::new();
        let end = stream.read_to_end(&mut rest);
        stopper.stop();
        (got.unwrap(), end.map(|_| rest))
    });
    start_bounded(&reactor).unwrap();
    let (echoed, end) = client.join().unwrap();
    assert_eq!(&echoed, b"hello tls");
    assert_eq!(end.unwrap(), b"", "the server ended with close_notify");
}

/// A client protocol: writes `ping`, collects what comes back, stops the reactor at 4 bytes.
struct Pinger(Arc<Mutex<Vec<u8>>>);

impl fio_reactor::Protocol for Pinger {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            let mut got = self.0.lock().unwrap();
            got.extend_from_slice(&buf[..count]);
            if got.len() >= 4 {
                fio_reactor::stop();
            }
        }
    }
}

#[test]
fn fio_s_client_talks_to_fio_s_server() {
    let reactor = reactor(1);
    let addr = listen_tls(&reactor, server_tls(), echo_on_open);
    let got = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&got);
    reactor
        .connect(
            ConnectArgs::new(format!("tls://{addr}"), move |uuid| {
                fio_reactor::attach(uuid, Pinger(Arc::clone(&into))).unwrap();
                // Written before the handshake: it waits in the session.
                fio_reactor::write(uuid, b"ping").unwrap();
            })
            .tls(client_tls()),
        )
        .unwrap();
    start_bounded(&reactor).unwrap();
    assert_eq!(&*got.lock().unwrap(), b"ping");
}

/// `openssl s_client` at `version` (`-tls1_2`, `-tls1_3`) sends a line and gets it echoed.
fn openssl_echo(version: &'static str) {
    let reactor = reactor(1);
    let addr = listen_tls(&reactor, server_tls(), echo_on_open);
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let connect = addr.to_string();
        let mut kid = spawn(
            "openssl",
            &[
                "s_client",
                "-connect",
                &connect,
                version,
                "-servername",
                "localhost",
                "-quiet",
            ],
        );
        let mut stdin = kid.0.stdin.take().unwrap();
        let mut stdout = kid.0.stdout.take().unwrap();
        stdin.write_all(b"hello from openssl\n").unwrap();
        stdin.flush().unwrap();
        let echoed = read_until(&mut stdout, b"hello from openssl\n", IO_TIMEOUT);
        // bye closes the connection with close_notify: s_client sees the end and exits.
        stdin.write_all(b"bye\n").unwrap();
        stdin.flush().unwrap();
        let mut rest = Vec::new();
        let _ = stdout.read_to_end(&mut rest);
        let status = kid.0.wait().unwrap();
        let mut stderr = String::new();
        let _ = kid.0.stderr.take().unwrap().read_to_string(&mut stderr);
        stopper.stop();
        (echoed, status, stderr)
    });
    start_bounded(&reactor).unwrap();
    let (echoed, status, stderr) = client.join().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&echoed),
        "hello from openssl\n",
        "stderr: {stderr}"
    );
    assert!(
        status.success(),
        "s_client failed: {status}, stderr: {stderr}"
    );
}

#[test]
fn openssl_s_client_tls13_talks_to_the_server() {
    openssl_echo("-tls1_3");
}

#[test]
fn openssl_s_client_tls12_talks_to_the_server() {
    openssl_echo("-tls1_2");
}

/// Answers every request (up to its blank line) with a small response, keep-alive.
struct Hello(Vec<u8>);

impl fio_reactor::Protocol for Hello {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 4096];
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            self.0.extend_from_slice(&buf[..count]);
        }
        while let Some(end) = self.0.windows(4).position(|w| w == b"\r\n\r\n") {
            self.0.drain(..end + 4);
            let _ = fio_reactor::write(
                uuid,
                b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!",
            );
        }
    }
}

#[test]
fn curl_gets_a_page_over_tls_12_and_13() {
    let reactor = reactor(1);
    let addr = listen_tls(&reactor, server_tls(), |uuid| {
        fio_reactor::attach(uuid, Hello(Vec::new())).unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let port = addr.port();
        let resolve = format!("localhost:{port}:127.0.0.1");
        let url = format!("https://localhost:{port}/");
        let mut outputs = Vec::new();
        for versions in [&["--tlsv1.3"][..], &["--tlsv1.2", "--tls-max", "1.2"][..]] {
            let mut args = vec!["--insecure", "--silent", "--show-error", "--max-time", "20"];
            args.extend_from_slice(versions);
            args.extend_from_slice(&["--resolve", &resolve, &url, &url]);
            let output = std::process::Command::new(require("curl"))
                .args(&args)
                .output()
                .unwrap();
            outputs.push(output);
        }
        stopper.stop();
        outputs
    });
    start_bounded(&reactor).unwrap();
    for output in client.join().unwrap() {
        assert!(
            output.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Two requests on one connection.
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "Hello, World!Hello, World!"
        );
    }
}

/// The byte at `index` of the big transfer.
fn pattern(index: usize) -> u8 {
    (index % 251) as u8 ^ (index >> 16) as u8
}

/// Writes [`BIG`] bytes of [`pattern`] as the send queue drains, checks the echo, stops.
struct Pump {
    sent: usize,
    received: usize,
    ok: Arc<Mutex<Option<bool>>>,
}

/// 64 MiB.
const BIG: usize = 64 << 20;

impl Pump {
    fn fill(&mut self, uuid: Uuid) {
        // Little in flight: the peer echoes, and a side whose send queue passes the reactor's
        // 1 MiB soft limit stops reading until it drains. (`pending` alone can't tell: what
        // is written during the handshake waits in the session, not in the send queue.)
        while self.sent < BIG && self.sent - self.received < (512 << 10) {
            let len = (BIG - self.sent).min(64 << 10);
            let chunk: Vec<u8> = (self.sent..self.sent + len).map(pattern).collect();
            if fio_reactor::write2(uuid, chunk, false).is_err() {
                return;
            }
            self.sent += len;
        }
    }
}

impl fio_reactor::Protocol for Pump {
    fn on_ready(&mut self, uuid: Uuid) {
        self.fill(uuid);
    }

    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            let exact = buf[..count]
                .iter()
                .enumerate()
                .all(|(offset, byte)| *byte == pattern(self.received + offset));
            self.received += count;
            if !exact {
                *self.ok.lock().unwrap() = Some(false);
                fio_reactor::stop();
                return;
            }
            if self.received == BIG {
                *self.ok.lock().unwrap() = Some(true);
                fio_reactor::stop();
                return;
            }
        }
        self.fill(uuid);
    }
}

#[test]
fn sixty_four_mib_each_way_arrive_byte_exact() {
    let reactor = reactor(1);
    let addr = listen_tls(&reactor, server_tls(), echo_on_open);
    let ok = Arc::new(Mutex::new(None));
    let verdict = Arc::clone(&ok);
    reactor
        .connect(
            ConnectArgs::new(format!("tls://{addr}"), move |uuid| {
                let pump = Pump {
                    sent: 0,
                    received: 0,
                    ok: Arc::clone(&verdict),
                };
                fio_reactor::attach(uuid, pump).unwrap();
            })
            .tls(client_tls()),
        )
        .unwrap();
    start_bounded(&reactor).unwrap();
    assert_eq!(*ok.lock().unwrap(), Some(true));
}

#[test]
fn a_file_is_sent_through_the_session() {
    let path = std::env::temp_dir().join(format!("fio-tls-sendfile-{}", std::process::id()));
    let content: Vec<u8> = (0..3 << 20).map(pattern).collect();
    std::fs::write(&path, &content).unwrap();
    let reactor = reactor(1);
    let file_path = path.clone();
    let addr = listen_tls(&reactor, server_tls(), move |uuid| {
        fio_reactor::attach(uuid, Echo).unwrap();
        let file = std::fs::File::open(&file_path).unwrap();
        fio_reactor::sendfile(uuid, file, 0, 0).unwrap();
        let _ = fio_reactor::close(uuid);
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = rustls_client(addr, "localhost");
        let mut got = Vec::new();
        let end = stream.read_to_end(&mut got);
        stopper.stop();
        (got, end)
    });
    start_bounded(&reactor).unwrap();
    let (got, end) = client.join().unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(end.is_ok(), "the file ended with close_notify: {end:?}");
    assert_eq!(got.len(), content.len());
    assert!(got == content, "the file arrived byte-exact");
}

/// Counts `on_close` calls; echoes like [`Echo`].
struct Counted(Arc<Mutex<usize>>);

impl fio_reactor::Protocol for Counted {
    fn on_data(&mut self, uuid: Uuid) {
        Echo.on_data(uuid);
    }

    fn on_close(&mut self, _uuid: Uuid) {
        *self.0.lock().unwrap() += 1;
    }
}

#[test]
fn a_peer_s_close_notify_is_answered_and_ends_the_connection() {
    let reactor = reactor(1);
    let closed = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&closed);
    let addr = listen_tls(&reactor, server_tls(), move |uuid| {
        fio_reactor::attach(uuid, Counted(Arc::clone(&counter))).unwrap();
    });
    let stopper = reactor.clone();
    let watched = Arc::clone(&closed);
    let client = thread::spawn(move || {
        let mut stream = rustls_client(addr, "localhost");
        stream.write_all(b"last words").unwrap();
        let mut echoed = [0u8; 10];
        stream.read_exact(&mut echoed).unwrap();
        // close_notify, the TCP stream left open: the server answers and closes.
        stream.conn.send_close_notify();
        stream.flush().unwrap();
        let mut rest = Vec::new();
        let end = stream.read_to_end(&mut rest).map(|_| rest);
        for _ in 0..200 {
            if *watched.lock().unwrap() > 0 {
                break;
            }
            thread::sleep(std::time::Duration::from_millis(10));
        }
        stopper.stop();
        end
    });
    start_bounded(&reactor).unwrap();
    assert_eq!(client.join().unwrap().unwrap(), b"", "a clean end");
    assert_eq!(
        *closed.lock().unwrap(),
        1,
        "the server closed the connection"
    );
}

/// A client protocol that records whether it got any data and when it closed.
struct Watcher(Arc<Mutex<(usize, bool)>>);

impl fio_reactor::Protocol for Watcher {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            self.0.lock().unwrap().0 += count;
        }
    }

    fn on_close(&mut self, _uuid: Uuid) {
        self.0.lock().unwrap().1 = true;
        fio_reactor::stop();
    }
}

#[test]
fn fio_s_client_refuses_a_server_it_does_not_trust() {
    let reactor = reactor(1);
    let stranger = fio_tls::TlsBuilder::new()
        .cert_add(
            None,
            fio_tls::Identity::self_signed(&["localhost"]).unwrap(),
        )
        .build()
        .unwrap();
    let addr = listen_tls(&reactor, stranger, echo_on_open);
    let seen = Arc::new(Mutex::new((0, false)));
    let into = Arc::clone(&seen);
    reactor
        .connect(
            ConnectArgs::new(format!("tls://{addr}"), move |uuid| {
                fio_reactor::attach(uuid, Watcher(Arc::clone(&into))).unwrap();
                fio_reactor::write(uuid, b"secret").unwrap();
            })
            .tls(client_tls()),
        )
        .unwrap();
    start_bounded(&reactor).unwrap();
    let (read, closed) = *seen.lock().unwrap();
    assert!(closed, "the client's connection closed");
    assert_eq!(read, 0, "nothing was read from an untrusted server");
}

/// Answers each read with three writes, the middle one urgent.
struct UrgentInTheMiddle;

impl fio_reactor::Protocol for UrgentInTheMiddle {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while let Ok(1..) = fio_reactor::read(uuid, &mut buf) {
            fio_reactor::write2(uuid, b"first ".to_vec(), false).unwrap();
            fio_reactor::write2(uuid, b"urgent ".to_vec(), true).unwrap();
            fio_reactor::write(uuid, b"last\n").unwrap();
        }
    }
}

#[test]
fn an_urgent_write_keeps_the_records_in_order() {
    let reactor = reactor(1);
    let addr = listen_tls(&reactor, server_tls(), |uuid| {
        fio_reactor::attach(uuid, UrgentInTheMiddle).unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = rustls_client(addr, "localhost");
        let mut got = Vec::new();
        for _ in 0..3 {
            // A broken session ends the exchange; the assertion below says what arrived.
            if stream
                .write_all(b"go")
                .and_then(|()| stream.flush())
                .is_err()
            {
                break;
            }
            let answer = read_until(&mut stream, b"last\n", IO_TIMEOUT);
            let whole = answer.ends_with(b"last\n");
            got.extend(answer);
            if !whole {
                break;
            }
        }
        stopper.stop();
        got
    });
    start_bounded(&reactor).unwrap();
    // A record sent ahead of one encrypted before it would fail the client's decryption.
    assert_eq!(
        String::from_utf8_lossy(&client.join().unwrap()),
        "first urgent last\n".repeat(3)
    );
}
