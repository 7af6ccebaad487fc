//! The fuzz target's entry point (not a public API): the TLS hook's record path on an
//! in-memory wire. `fuzz/fuzz_targets/tls_records.rs` runs it under libFuzzer, and
//! `tests/record_corpus.rs` replays the checked-in corpus (and mutations of it) on stable.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, OnceLock};

use fio_reactor::{Buffer, BufferPool, Chunk, PoolConfig, Uuid};
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::{ClientConfig, ServerConfig};

use crate::Identity;
use crate::hook::{Session, TlsHook, Wire};

/// Calls into the session per input at most, so every input ends quickly.
const STEPS: usize = 256;

/// Bytes arrive as the input says, into pooled buffers as the engines receive them; what
/// the session sends is counted and dropped.
struct MemoryWire {
    inbound: VecDeque<u8>,
    /// How many of `inbound`'s bytes have "arrived".
    arrived: usize,
    /// The size of the buffers bytes arrive in.
    piece: usize,
    pool: BufferPool,
    sent: usize,
}

impl Wire for MemoryWire {
    fn receive_buffer(&mut self) -> io::Result<Option<Buffer>> {
        let count = self.piece.min(self.arrived);
        if count == 0 {
            return Ok(None);
        }
        let mut buffer = self.pool.take()?;
        let (front, back) = self.inbound.as_slices();
        let first = count.min(front.len());
        buffer.extend_from_slice(&front[..first]);
        buffer.extend_from_slice(&back[..count - first]);
        self.inbound.drain(..count);
        self.arrived -= count;
        Ok(Some(buffer))
    }

    fn send_buffer(&mut self) -> io::Result<Buffer> {
        Ok(self.pool.take()?)
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
    let session = if mode & 1 == 0 {
        match UnbufferedServerConnection::new(Arc::clone(server)) {
            Ok(connection) => Session::Server(connection),
            Err(_) => return,
        }
    } else {
        let name = ServerName::try_from("localhost").expect("a valid name");
        match UnbufferedClientConnection::new(Arc::clone(client), name) {
            Ok(connection) => Session::Client(connection),
            Err(_) => return,
        }
    };
    let mut hook = TlsHook::new(
        Uuid::from_parts(0, 0),
        session,
        Arc::new(Default::default()),
    );
    let piece = 97 * (1 + usize::from(mode >> 2) % 64);
    let mut buf = vec![0u8; 1 + (usize::from(mode) * 16) % 4096];
    let Ok(pool) = BufferPool::new(PoolConfig::new(16 * 1024)) else {
        return;
    };
    let mut wire = MemoryWire {
        inbound: rest.iter().copied().collect(),
        arrived: 0,
        piece,
        pool,
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
            let written = b"written by the protocol";
            let _ = if step % 2 == 0 {
                hook.write_to(&mut wire, Chunk::from(&written[..]))
            } else {
                hook.write_borrowed_to(&mut wire, written)
            };
        }
        let _ = hook.flush_to(&mut wire);
        if wire.inbound.is_empty() && hook.plain() == 0 {
            break;
        }
    }
    let _ = hook.closing(&mut wire);
    let _ = hook.flush_to(&mut wire);
}
