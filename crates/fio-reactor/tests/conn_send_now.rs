//! `HookIo::send_now`: what a hook queued reaches the peer before the tick ends, while the
//! protocol's callback is still running (a TLS handshake flight goes out before the thread
//! serves its other connections).

mod util;

use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use fio_reactor::{Chunk, HookIo, Protocol, RwHook, Uuid};
use util::{client, listen_local, reactor, start_bounded};

/// How long `on_data` waits for the peer to confirm the reply (a bound, not a measurement:
/// without `send_now` the reply would only leave after `on_data` returns).
const ACK_WAIT: Duration = Duration::from_secs(10);

/// Sends every write at once.
struct Immediate;

impl RwHook for Immediate {
    fn write(&mut self, io: &mut HookIo<'_>, data: Chunk) -> io::Result<()> {
        io.send(data)?;
        io.send_now();
        Ok(())
    }
}

/// Answers `ping` with `pong`, then waits (inside `on_data`) for the peer to say it got it.
struct WaitsForPeer {
    acks: Receiver<()>,
    seen: Sender<bool>,
}

impl Protocol for WaitsForPeer {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 16];
        let Ok(count) = fio_reactor::read(uuid, &mut buf) else {
            return;
        };
        if &buf[..count] != b"ping" {
            return;
        }
        fio_reactor::write(uuid, b"pong").unwrap();
        let _ = self.seen.send(self.acks.recv_timeout(ACK_WAIT).is_ok());
    }
}

#[test]
fn send_now_reaches_the_peer_before_the_callback_returns() {
    let reactor = reactor(1);
    let (ack_tx, ack_rx) = mpsc::channel();
    let (seen_tx, seen_rx) = mpsc::channel();
    let parts = Mutex::new(Some((ack_rx, seen_tx)));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let Some((acks, seen)) = parts.lock().unwrap().take() else {
            return;
        };
        fio_reactor::rw_hook_set(uuid, Immediate).unwrap();
        fio_reactor::attach(uuid, WaitsForPeer { acks, seen }).unwrap();
    });
    let stopper = reactor.clone();
    let peer = thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(b"ping").unwrap();
        let mut reply = [0u8; 4];
        let got = stream.read_exact(&mut reply).is_ok() && &reply == b"pong";
        if got {
            let _ = ack_tx.send(());
        }
        let in_time = seen_rx.recv_timeout(ACK_WAIT * 2).unwrap_or(false);
        stopper.stop();
        (got, in_time)
    });
    start_bounded(&reactor).unwrap();
    let (got, in_time) = peer.join().unwrap();
    assert!(got, "the reply arrived");
    assert!(in_time, "the reply arrived while on_data still ran");
}
