//! Read/write hooks: a XOR "cipher" with length-prefixed records on the wire, on the server
//! and on a reactor client. Data passes through the hook both ways, written bytes wait in the
//! hook until its flush, a graceful close is delayed for a final record, a hook replaces
//! itself from inside, every hook's cleanup (its `Drop`) runs exactly once, and a hook whose
//! writes hold nothing (`wants_flush`) is not flushed for them, nor asked to read when it
//! holds nothing and nothing was received (`drained`), and copies a hook queues
//! ([`HookIo::send_copy`]) keep their place among its chunks.

mod util;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use fio_reactor::{Chunk, ConnectArgs, HookIo, Protocol, RwHook, Uuid};
use util::{client, listen_local, reactor, read_to_end, start_bounded};

/// The key every byte is XORed with.
const KEY: u8 = 0x5a;

/// The plaintext of the record a hook sends before a graceful close.
const FIN: &[u8] = b"FIN";

/// The one raw byte a client sends before its records, for the handshake hook.
const HELLO: u8 = 0x42;

/// What the hooks of one test did.
#[derive(Default)]
struct Stats {
    /// Hooks dropped (their cleanup ran).
    drops: AtomicUsize,
    /// Handshake hooks dropped.
    handshake_drops: AtomicUsize,
    /// Records sent by `flush` (writes only hold bytes).
    flushed_records: AtomicUsize,
    /// Flushes that reported bytes still held.
    stalls: AtomicUsize,
    /// `before_close` calls.
    before_closes: AtomicUsize,
}

/// Encodes `plain` as XOR records of at most 255 bytes.
fn encode(plain: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    for record in plain.chunks(255) {
        wire.push(record.len() as u8);
        wire.extend(record.iter().map(|byte| byte ^ KEY));
    }
    wire
}

/// Decodes whole records from the front of `wire`; returns the plaintext of each record and
/// how many bytes they took.
fn decode(wire: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        let end = at + 1 + usize::from(len);
        if end > wire.len() {
            break;
        }
        records.push(wire[at + 1..end].iter().map(|byte| byte ^ KEY).collect());
        at = end;
    }
    (records, at)
}

/// The XOR hook: holds written bytes until `flush`, decodes whole records on read.
struct Xor {
    /// Encoded bytes waiting for `flush`.
    held: Vec<u8>,
    /// Raw bytes of an incomplete record.
    partial: Vec<u8>,
    /// Decoded bytes the protocol hasn't read yet.
    plain: VecDeque<u8>,
    /// Flushes to answer with "still held" before really flushing.
    stall: usize,
    stats: Arc<Stats>,
}

impl Xor {
    fn new(stats: &Arc<Stats>, stall: usize) -> Self {
        Self {
            held: Vec::new(),
            partial: Vec::new(),
            plain: VecDeque::new(),
            stall,
            stats: Arc::clone(stats),
        }
    }

    /// Decodes the whole records in `partial`.
    fn decode_partial(&mut self) {
        let (records, used) = decode(&self.partial);
        self.partial.drain(..used);
        for record in records {
            self.plain.extend(record);
        }
    }
}

impl RwHook for Xor {
    fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> io::Result<usize> {
        let mut raw = [0u8; 4096];
        loop {
            let count = io.receive(&mut raw)?;
            if count == 0 {
                break;
            }
            self.partial.extend_from_slice(&raw[..count]);
        }
        self.decode_partial();
        let count = buf.len().min(self.plain.len());
        for (slot, byte) in buf.iter_mut().zip(self.plain.drain(..count)) {
            *slot = byte;
        }
        Ok(count)
    }

    fn write(&mut self, _io: &mut HookIo<'_>, data: Chunk) -> io::Result<()> {
        // Held, not sent: only `flush` puts records on the wire.
        self.held.extend_from_slice(&encode(data.bytes()));
        Ok(())
    }

    fn flush(&mut self, io: &mut HookIo<'_>) -> io::Result<usize> {
        if self.held.is_empty() {
            return Ok(0);
        }
        if self.stall > 0 {
            self.stall -= 1;
            self.stats.stalls.fetch_add(1, Ordering::SeqCst);
            return Ok(self.held.len());
        }
        let (records, _) = decode(&self.held);
        self.stats
            .flushed_records
            .fetch_add(records.len(), Ordering::SeqCst);
        io.send(std::mem::take(&mut self.held))?;
        Ok(0)
    }

    fn before_close(&mut self, _io: &mut HookIo<'_>) -> bool {
        self.stats.before_closes.fetch_add(1, Ordering::SeqCst);
        self.held.extend_from_slice(&encode(FIN));
        true
    }

    fn buffered(&self) -> usize {
        self.plain.len()
    }
}

impl Drop for Xor {
    fn drop(&mut self) {
        self.stats.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Expects [`HELLO`] as the first raw byte, then replaces itself with [`Xor`], handing over
/// whatever followed the greeting.
struct Handshake {
    next: Option<Xor>,
    stats: Arc<Stats>,
}

impl RwHook for Handshake {
    fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> io::Result<usize> {
        let mut first = [0u8; 1];
        if io.receive(&mut first)? == 0 {
            return Ok(0);
        }
        if first[0] != HELLO {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no greeting"));
        }
        let Some(mut xor) = self.next.take() else {
            return Err(io::Error::other("greeted twice"));
        };
        let read = xor.read(io, buf);
        io.replace(xor);
        read
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        self.stats.handshake_drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Echoes plaintext; closes gracefully after reading `bye`.
struct Echo;

impl Protocol for Echo {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 7]; // small, so plaintext stays buffered in the hook
        for _ in 0..1024 {
            match fio_reactor::read(uuid, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(count) if &buf[..count] == b"bye" => {
                    fio_reactor::close(uuid).unwrap();
                    return;
                }
                Ok(count) => {
                    fio_reactor::write(uuid, &buf[..count]).unwrap();
                }
            }
        }
    }
}

#[test]
fn bytes_pass_through_the_hook_both_ways_and_the_close_waits_for_its_last_record() {
    let reactor = reactor(1);
    let stats = Arc::new(Stats::default());
    let replaced = Arc::new(Stats::default());
    let (hooks, old) = (Arc::clone(&stats), Arc::clone(&replaced));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        // A first hook, replaced at once: its cleanup runs then.
        fio_reactor::rw_hook_set(uuid, Xor::new(&old, 0)).unwrap();
        let handshake = Handshake {
            next: Some(Xor::new(&hooks, 1)),
            stats: Arc::clone(&hooks),
        };
        fio_reactor::rw_hook_set(uuid, handshake).unwrap();
        fio_reactor::attach(uuid, Echo).unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        let message = b"hello through the xor hook, more than seven bytes";
        let mut wire = vec![HELLO];
        wire.extend(encode(message));
        assert_ne!(&wire[2..], &message[..], "the wire is not the plaintext");
        stream.write_all(&wire).unwrap();
        // Read the echo back record by record until it is all there.
        let mut echoed = Vec::new();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..10_000 {
            if echoed.len() >= message.len() {
                break;
            }
            let count = io::Read::read(&mut stream, &mut buf).unwrap();
            assert!(count > 0, "the server closed before echoing");
            raw.extend_from_slice(&buf[..count]);
            let (records, used) = decode(&raw);
            raw.drain(..used);
            records.into_iter().for_each(|record| echoed.extend(record));
        }
        stream.write_all(&encode(b"bye")).unwrap();
        raw.extend(read_to_end(&mut stream));
        stopper.stop();
        let (records, used) = decode(&raw);
        (echoed, records, used == raw.len(), message.to_vec())
    });
    start_bounded(&reactor).unwrap();
    let (echoed, last_records, whole, message) = client.join().unwrap();
    assert_eq!(echoed, message);
    assert!(whole, "the stream ended on a record boundary");
    assert_eq!(
        last_records,
        vec![FIN.to_vec()],
        "the final record came before EOF"
    );
    assert_eq!(
        replaced.drops.load(Ordering::SeqCst),
        1,
        "the replaced hook"
    );
    assert_eq!(stats.handshake_drops.load(Ordering::SeqCst), 1);
    assert_eq!(stats.drops.load(Ordering::SeqCst), 1, "the xor hook");
    assert_eq!(stats.before_closes.load(Ordering::SeqCst), 1);
    assert_eq!(stats.stalls.load(Ordering::SeqCst), 1, "the stalled flush");
    assert!(stats.flushed_records.load(Ordering::SeqCst) >= 2);
}

/// Sends a greeting through its hook on open, collects the echo, then closes.
struct Greeter {
    received: Arc<Mutex<Vec<u8>>>,
    expected: usize,
}

impl Protocol for Greeter {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
            let mut received = self.received.lock().unwrap();
            received.extend_from_slice(&buf[..count]);
            if received.len() >= self.expected {
                let _ = fio_reactor::close(uuid);
            }
        }
    }

    fn on_close(&mut self, _uuid: Uuid) {
        fio_reactor::stop();
    }
}

#[test]
fn a_reactor_client_and_server_talk_through_xor_hooks() {
    let reactor = reactor(2);
    let stats = Arc::new(Stats::default());
    let hooks = Arc::clone(&stats);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::rw_hook_set(uuid, Xor::new(&hooks, 0)).unwrap();
        fio_reactor::attach(uuid, Echo).unwrap();
    });
    let received = Arc::new(Mutex::new(Vec::new()));
    let (hooks, collected) = (Arc::clone(&stats), Arc::clone(&received));
    let message: &'static [u8] = b"a greeting that crosses two hooks";
    reactor
        .connect(ConnectArgs::new(format!("tcp://{addr}"), move |uuid| {
            fio_reactor::rw_hook_set(uuid, Xor::new(&hooks, 0)).unwrap();
            let greeter = Greeter {
                received: Arc::clone(&collected),
                expected: message.len(),
            };
            fio_reactor::attach(uuid, greeter).unwrap();
            fio_reactor::write2(uuid, message, false).unwrap();
            // Held in the hook until flushed; flushing hands it to the send queue, which goes
            // out at the end of this tick: data remains (facil.io's 1).
            assert!(fio_reactor::flush(uuid).unwrap());
        }))
        .unwrap();
    start_bounded(&reactor).unwrap();
    assert_eq!(received.lock().unwrap().as_slice(), message);
    // Both ends' hooks: each dropped once, each closed gracefully once (client first; the
    // server's close follows the client's end of stream).
    assert_eq!(stats.drops.load(Ordering::SeqCst), 2);
    assert!(stats.before_closes.load(Ordering::SeqCst) >= 1);
}

#[test]
fn a_hook_for_a_closed_connection_is_cleaned_up_at_once() {
    let stats = Arc::new(Stats::default());
    let stale = Uuid::from_parts(0, 0);
    assert!(matches!(
        fio_reactor::rw_hook_set(stale, Xor::new(&stats, 0)),
        Err(fio_reactor::Error::InvalidUuid(_))
    ));
    assert_eq!(stats.drops.load(Ordering::SeqCst), 1);
    assert!(fio_reactor::flush(stale).is_err());
}

/// Writes a greeting through a hook that stalls three flushes, then flushes it strongly.
struct StrongFlusher {
    results: Arc<Mutex<Vec<usize>>>,
}

impl Protocol for StrongFlusher {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
        fio_reactor::write(uuid, b"flushed at once").unwrap();
        let unsent_before = fio_reactor::flush_all();
        fio_reactor::flush_strong(uuid).unwrap();
        let unsent_after = fio_reactor::flush_all();
        self.results
            .lock()
            .unwrap()
            .extend([unsent_before, unsent_after]);
        fio_reactor::close(uuid).unwrap();
    }
}

#[test]
fn flush_strong_empties_a_stalling_hook_and_the_send_queue() {
    let reactor = reactor(1);
    let stats = Arc::new(Stats::default());
    let results = Arc::new(Mutex::new(Vec::new()));
    let (hooks, seen) = (Arc::clone(&stats), Arc::clone(&results));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::rw_hook_set(uuid, Xor::new(&hooks, 3)).unwrap();
        fio_reactor::attach(
            uuid,
            StrongFlusher {
                results: Arc::clone(&seen),
            },
        )
        .unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(&encode(b"go")).unwrap();
        let raw = read_to_end(&mut stream);
        stopper.stop();
        raw
    });
    start_bounded(&reactor).unwrap();
    let (records, _) = decode(&client.join().unwrap());
    assert_eq!(records[0], b"flushed at once");
    // flush_all's own flush is the first stall; flush_strong rides out the other two.
    assert_eq!(stats.stalls.load(Ordering::SeqCst), 3);
    let results = results.lock().unwrap().clone();
    assert_eq!(results[0], 1, "the hook held the greeting");
    assert_eq!(
        results[1], 0,
        "flush_strong returned once everything was sent"
    );
    assert_eq!(fio_reactor::flush_all(), 0, "off a reactor thread");
}

/// Writes through its hook and closes at once; counts `on_close`.
struct WriteAndClose {
    closes: Arc<AtomicUsize>,
}

impl Protocol for WriteAndClose {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 64];
        while fio_reactor::read(uuid, &mut buf).unwrap_or(0) > 0 {}
        fio_reactor::write(uuid, b"never flushed").unwrap();
        fio_reactor::close(uuid).unwrap();
    }

    fn on_close(&mut self, _uuid: Uuid) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_hook_that_never_flushes_delays_the_close_only_for_the_grace_period() {
    let reactor = reactor(1);
    let stats = Arc::new(Stats::default());
    let closes = Arc::new(AtomicUsize::new(0));
    let (hooks, counted) = (Arc::clone(&stats), Arc::clone(&closes));
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        fio_reactor::rw_hook_set(uuid, Xor::new(&hooks, usize::MAX)).unwrap();
        fio_reactor::attach(
            uuid,
            WriteAndClose {
                closes: Arc::clone(&counted),
            },
        )
        .unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(&encode(b"go")).unwrap();
        let started = std::time::Instant::now();
        // Blocks until the server gives up on the hook (8 s), well inside the read timeout.
        let raw = read_to_end(&mut stream);
        let waited = started.elapsed();
        stopper.stop();
        (raw, waited)
    });
    start_bounded(&reactor).unwrap();
    let (raw, waited) = client.join().unwrap();
    assert!(raw.is_empty(), "the hook held everything: {raw:?}");
    assert!(
        waited < util::IO_TIMEOUT,
        "the close came from the server, not the client's read timeout"
    );
    assert!(
        stats.stalls.load(Ordering::SeqCst) >= 2,
        "the hook was asked again"
    );
    assert_eq!(stats.before_closes.load(Ordering::SeqCst), 1);
    assert_eq!(stats.drops.load(Ordering::SeqCst), 1);
    assert_eq!(closes.load(Ordering::SeqCst), 1);
}

/// A XOR stream "cipher" with no records, decoding in the receive buffers themselves and
/// encoding into pooled send buffers: the zero-copy doors of [`HookIo`].
#[derive(Default)]
struct InPlace {
    /// A received buffer, decoded, and how much of it the protocol has read.
    held: Option<(fio_reactor::Buffer, usize)>,
    /// Send buffers queued.
    sent_buffers: Arc<AtomicUsize>,
    /// `flush` calls: none, as its writes hold nothing (`wants_flush`).
    flushes: Arc<AtomicUsize>,
    /// `read` calls that found nothing to decode: none, as it says when it is `drained`.
    empty_reads: Arc<AtomicUsize>,
}

impl RwHook for InPlace {
    fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> io::Result<usize> {
        if self.held.is_none() {
            let Some(mut buffer) = io.receive_buffer()? else {
                self.empty_reads.fetch_add(1, Ordering::SeqCst);
                return Ok(0);
            };
            buffer.iter_mut().for_each(|byte| *byte ^= KEY);
            self.held = Some((buffer, 0));
        }
        let Some((buffer, at)) = &mut self.held else {
            return Ok(0);
        };
        let count = buf.len().min(buffer.len() - *at);
        buf[..count].copy_from_slice(&buffer[*at..*at + count]);
        *at += count;
        if *at == buffer.len()
            && let Some((emptied, _)) = self.held.take()
        {
            // The engine receives into it again: the echo below stays byte-exact.
            io.recycle_buffer(emptied);
        }
        Ok(count)
    }

    fn write(&mut self, io: &mut HookIo<'_>, data: Chunk) -> io::Result<()> {
        let mut rest = data.bytes();
        while !rest.is_empty() {
            let mut out = io.send_buffer()?;
            let start = out.len();
            let count = out.extend_from_slice(rest);
            assert!(count > 0, "a send buffer has room");
            out[start..].iter_mut().for_each(|byte| *byte ^= KEY);
            rest = &rest[count..];
            io.send(out)?;
            self.sent_buffers.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn flush(&mut self, _io: &mut HookIo<'_>) -> io::Result<usize> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(0)
    }

    fn wants_flush(&self) -> bool {
        // Every write went to the send queue at once.
        false
    }

    fn drained(&self) -> bool {
        // A read could only decode what is received from here on.
        self.held.is_none()
    }

    fn buffered(&self) -> usize {
        self.held
            .as_ref()
            .map_or(0, |(buffer, at)| buffer.len() - at)
    }
}

/// Writes `len` patterned bytes XOR-encoded to the server at `addr` while reading its echo
/// back; returns the echo, decoded, and what was sent.
fn xor_echo(addr: SocketAddr, len: u32) -> (Vec<u8>, Vec<u8>) {
    let message: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut stream = client(addr);
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        let wire: Vec<u8> = message.iter().map(|byte| byte ^ KEY).collect();
        thread::spawn(move || stream.write_all(&wire).unwrap())
    };
    let mut echoed = Vec::new();
    let mut buf = [0u8; 8192];
    for _ in 0..100_000 {
        if echoed.len() >= message.len() {
            break;
        }
        let count = io::Read::read(&mut stream, &mut buf).unwrap();
        assert!(count > 0, "the server closed before echoing");
        echoed.extend(buf[..count].iter().map(|byte| byte ^ KEY));
    }
    writer.join().unwrap();
    (echoed, message)
}

#[test]
fn a_hook_decodes_in_the_receive_buffers_and_encodes_into_pooled_send_buffers() {
    let reactor = reactor(1);
    let sent_buffers = Arc::new(AtomicUsize::new(0));
    let flushes = Arc::new(AtomicUsize::new(0));
    let empty_reads = Arc::new(AtomicUsize::new(0));
    let (counter, flush_counter) = (Arc::clone(&sent_buffers), Arc::clone(&flushes));
    let empty_read_counter = Arc::clone(&empty_reads);
    let (_listener, addr) = listen_local(&reactor, move |uuid| {
        let hook = InPlace {
            held: None,
            sent_buffers: Arc::clone(&counter),
            flushes: Arc::clone(&flush_counter),
            empty_reads: Arc::clone(&empty_read_counter),
        };
        fio_reactor::rw_hook_set(uuid, hook).unwrap();
        fio_reactor::attach(uuid, Echo).unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        // Several receive buffers' worth, so buffers are taken one after another.
        let (echoed, message) = xor_echo(addr, 100_000);
        // Every write is echoed: none of them asked for a flush.
        let flushed = flushes.load(Ordering::SeqCst);
        stopper.stop();
        (echoed, message, flushed)
    });
    start_bounded(&reactor).unwrap();
    let (echoed, message, flushed) = client.join().unwrap();
    assert!(echoed == message, "the echo came back byte-exact");
    assert!(sent_buffers.load(Ordering::SeqCst) > 0);
    assert_eq!(
        flushed, 0,
        "a hook whose writes hold nothing is not flushed"
    );
    assert_eq!(
        empty_reads.load(Ordering::SeqCst),
        0,
        "a drained hook is not asked to read when nothing was received"
    );
}

/// XORs in place like [`InPlace`], and sends each lent write as a chunk of its first byte
/// followed by a copy of the rest ([`HookIo::send_copy`]): the two keep their order.
#[derive(Default)]
struct Copying {
    /// The encoded write, reused.
    scratch: Vec<u8>,
}

impl RwHook for Copying {
    fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> io::Result<usize> {
        let count = io.receive(buf)?;
        buf[..count].iter_mut().for_each(|byte| *byte ^= KEY);
        Ok(count)
    }

    fn write_borrowed(&mut self, io: &mut HookIo<'_>, data: &[u8]) -> io::Result<()> {
        self.scratch.clear();
        self.scratch.extend(data.iter().map(|byte| byte ^ KEY));
        let Some((first, rest)) = self.scratch.split_first() else {
            return Ok(());
        };
        io.send(vec![*first])?;
        io.send_copy(rest)
    }

    fn wants_flush(&self) -> bool {
        false
    }
}

#[test]
fn a_hooks_copied_sends_keep_their_place_among_its_chunks() {
    let reactor = reactor(1);
    let (_listener, addr) = listen_local(&reactor, |uuid| {
        fio_reactor::rw_hook_set(uuid, Copying::default()).unwrap();
        fio_reactor::attach(uuid, Echo).unwrap();
    });
    let stopper = reactor.clone();
    let client = thread::spawn(move || {
        let (echoed, message) = xor_echo(addr, 20_000);
        stopper.stop();
        (echoed, message)
    });
    start_bounded(&reactor).unwrap();
    let (echoed, message) = client.join().unwrap();
    assert!(echoed == message, "the echo came back byte-exact, in order");
}
