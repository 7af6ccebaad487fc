//! The fuzz target's entry point (not a public API): the TLS hook's record path on an
//! in-memory wire. `fuzz/fuzz_targets/tls_records.rs` runs it under libFuzzer, and
//! `tests/record_corpus.rs` replays the checked-in corpus (and mutations of it) on stable.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, OnceLock};

use fio_reactor::{Chunk, Uuid};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};

use crate::Identity;
use crate::hook::{TlsHook, Wire};

/// Calls into the session per input at most, so every input ends quickly.
const STEPS: usize = 256;

/// Bytes arrive as the input says; what the session sends is counted and dropped.
struct MemoryWire {
    inbound: VecDeque<u8>,
    /// How many of `inbound`'s bytes have "arrived".
    arrived: usize,
    sent: usize,
}

impl Wire for MemoryWire {
    fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = buf.len().min(self.arrived);
        for (slot, byte) in buf.iter_mut().zip(self.inbound.drain(..count)) {
            *slot = byte;
        }
        self.arrived -= count;
        Ok(count)
    }

    fn received_len(&self) -> usize {
        self.arrived
    }

    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        self.sent += chunk.bytes().len();
        Ok(())
    }

    fn later(&mut self, task: Box<dyn FnOnce() + Send>) {
        // Deferred work calls the reactor, which doesn't run here.
        drop(task);
    }
}

/// The fuzzed server's and client's configurations, made once per process.
fn configs() -> &'static (Arc<ServerConfig>, Arc<ClientConfig>) {
    static CONFIGS: OnceLock<(Arc<ServerConfig>, Arc<ClientConfig>)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let identity = Identity::self_signed(&["localhost"]).expect("a fuzzing identity");
        let client = crate::TlsBuilder::new()
            .trust(identity.chain()[0].clone())
            .alpn_add("http/1.1", |_| {});
        let server = crate::TlsBuilder::new()
            .cert_add(None, identity)
            .alpn_add("http/1.1", |_| {});
        let (server, client) = (
            server.build().expect("a fuzzing server"),
            client.build().expect("a fuzzing client"),
        );
        (
            server.server_config().expect("a server side"),
            client.client_config().expect("a client side"),
        )
    })
}

/// Feeds `data` to a fresh session as received bytes, the way the reactor would: the first
/// byte picks the side (even: server, odd: client) and how the rest arrives (in pieces of
/// 1 to 64 times 97 bytes) and is read (buffers of 1 to 4096 bytes), interleaved with
/// protocol writes, flushes and finally a graceful close. Must never panic.
pub fn fuzz_records(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (server, client) = configs();
    let connection: rustls::Connection = if mode & 1 == 0 {
        match rustls::ServerConnection::new(Arc::clone(server)) {
            Ok(connection) => connection.into(),
            Err(_) => return,
        }
    } else {
        let name = ServerName::try_from("localhost").expect("a valid name");
        match rustls::ClientConnection::new(Arc::clone(client), name) {
            Ok(connection) => connection.into(),
            Err(_) => return,
        }
    };
    let mut hook = TlsHook::new(
        Uuid::from_parts(0, 0),
        connection,
        Arc::new(Default::default()),
    );
    let piece = 97 * (1 + usize::from(mode >> 2) % 64);
    let mut buf = vec![0u8; 1 + (usize::from(mode) * 16) % 4096];
    let mut wire = MemoryWire {
        inbound: rest.iter().copied().collect(),
        arrived: 0,
        sent: 0,
    };
    let _ = hook.flush_to(&mut wire);
    for step in 0..STEPS {
        wire.arrived = (wire.arrived + piece).min(wire.inbound.len());
        match hook.read_from(&mut wire, &mut buf) {
            Ok(count) => debug_assert!(count <= buf.len()),
            Err(_) => break,
        }
        if step % 7 == mode as usize % 7 {
            let _ = hook.write_to(&mut wire, b"written by the protocol");
        }
        let _ = hook.flush_to(&mut wire);
        if wire.inbound.is_empty() && hook.plain() == 0 {
            break;
        }
    }
    let _ = hook.closing(&mut wire);
    let _ = hook.flush_to(&mut wire);
}
