//! The read/write hook: a rustls unbuffered session over a fio connection's buffers.
//!
//! Records are decrypted where the engine received them: the hook takes each received
//! buffer with [`HookIo::receive_buffer`] and hands rustls the undecrypted part of it; a
//! buffer rustls used up goes back with [`HookIo::recycle_buffer`], so the engine receives
//! into it again rather than taking another from its pool. A record that spans two receive
//! buffers is the exception: its start is copied into the hook's record buffer (`carry`) and
//! the rest of it joined from the next buffer, one record at a time. What the protocol
//! writes is encrypted straight into pooled send buffers from [`HookIo::send_buffer`], which
//! go to the send queue as they are, in order (never urgent: a record can't jump ahead of
//! one encrypted before it). A short lent write with nothing
//! waiting before it is encrypted into a small vector of the hook's (`record`) instead and
//! queued as a copy ([`HookIo::send_copy`]), which costs the engine less than a buffer of
//! its own. rustls 0.23 itself still moves each decrypted record into a vector of its own
//! before handing it over (its `ReadTraffic` says in-place decryption is future work), and
//! builds each encrypted record in a vector before copying it into our buffer;
//! [`read`](fio_reactor::read) copies the plaintext into the protocol's buffer.
//!
//! The hook never calls the reactor while it runs (the reactor forbids it): what must happen
//! outside it (an ALPN callback, closing after a fatal alert or the peer's close_notify) is
//! deferred.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::Arc;

use fio_reactor::{Buffer, Chunk, HookIo, RwHook, Uuid};
use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, UnbufferedStatus, WriteTraffic,
};

use crate::config::AlpnTable;

/// How many rustls states one call into the hook walks through before leaving the rest for
/// the next call (a bound against a bug, far above what a 16 MiB write needs).
const STEPS: usize = 1 << 16;

/// Room one record's encryption adds to its plaintext (header, content type, tag, explicit
/// nonce: at most 29 bytes for the suites rustls has), with a margin.
const RECORD_OVERHEAD: usize = 64;

/// The most plaintext one record carries (TLS's limit): a piece never makes two records.
const MAX_FRAGMENT: usize = 16 * 1024;

/// The largest lent write encrypted into the hook's `record` vector and queued as a copy
/// (see [`Flow::encrypt_copied`]): a 16-deep pipeline of 64-byte messages fits.
const COPY_LIMIT: usize = 1024;

/// A TLS record header's length: content type, version, payload length.
const HEADER: usize = 5;

/// How much the record buffer may hold: rustls keeps a handshake message that spans records
/// (at most 64 KiB) in its input until the message is whole.
const CARRY_LIMIT: usize = 80 * 1024;

/// The connection as the session sees it: received buffers in, filled buffers out, and a
/// way to run work after the hook returns. [`HookIo`] in the reactor; an in-memory wire in
/// the fuzz target.
pub(crate) trait Wire {
    /// Takes the front received buffer; `None` when none is buffered.
    fn receive_buffer(&mut self) -> io::Result<Option<Buffer>>;
    /// An empty pooled send buffer.
    fn send_buffer(&mut self) -> io::Result<Buffer>;
    /// Raw bytes received and not yet taken.
    fn received_len(&self) -> usize;
    /// Queues raw bytes for sending.
    fn send(&mut self, chunk: Chunk) -> io::Result<()>;
    /// Runs `task` once the hook has returned (it may call the reactor).
    fn later(&mut self, task: Box<dyn FnOnce() + Send>);
    /// Sends what is queued now rather than at the end of the tick.
    fn send_now(&mut self) {}
    /// Queues a copy of `bytes` for sending.
    fn send_copy(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.send(Chunk::Vec(bytes.to_vec()))
    }
    /// Gives back a received buffer that was decrypted and is no longer needed.
    fn recycle(&mut self, buffer: Buffer) {
        drop(buffer);
    }
}

impl Wire for HookIo<'_> {
    fn receive_buffer(&mut self) -> io::Result<Option<Buffer>> {
        HookIo::receive_buffer(self)
    }

    fn recycle(&mut self, buffer: Buffer) {
        HookIo::recycle_buffer(self, buffer);
    }

    fn send_buffer(&mut self) -> io::Result<Buffer> {
        HookIo::send_buffer(self)
    }

    fn received_len(&self) -> usize {
        HookIo::received_len(self)
    }

    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        HookIo::send(self, chunk)
    }

    fn later(&mut self, task: Box<dyn FnOnce() + Send>) {
        fio_reactor::defer(task);
    }

    fn send_now(&mut self) {
        HookIo::send_now(self);
    }

    fn send_copy(&mut self, bytes: &[u8]) -> io::Result<()> {
        HookIo::send_copy(self, bytes)
    }
}

/// A rustls unbuffered session of either side.
pub(crate) enum Session {
    /// Accepted by a listener.
    Server(UnbufferedServerConnection),
    /// Made by `connect`.
    Client(UnbufferedClientConnection),
}

impl Session {
    /// The negotiated ALPN protocol.
    fn alpn_protocol(&self) -> Option<&[u8]> {
        match self {
            Self::Server(conn) => conn.alpn_protocol(),
            Self::Client(conn) => conn.alpn_protocol(),
        }
    }

    /// Whether rustls has records queued to send (after a fatal error: its alert).
    fn wants_write(&self) -> bool {
        match self {
            Self::Server(conn) => conn.wants_write(),
            Self::Client(conn) => conn.wants_write(),
        }
    }

    /// Whether the handshake is still going on.
    fn is_handshaking(&self) -> bool {
        match self {
            Self::Server(conn) => conn.is_handshaking(),
            Self::Client(conn) => conn.is_handshaking(),
        }
    }
}

/// Received ciphertext the session has not consumed yet.
#[derive(Default)]
struct Input {
    /// The received buffer being decrypted in place, and how much of it rustls consumed.
    held: Option<(Buffer, usize)>,
    /// A record (or a handshake message) that spans received buffers, joined by copying.
    /// Kept, with its capacity, for the connection's life once a record needed it.
    carry: Vec<u8>,
}

impl Input {
    /// Undecrypted bytes held.
    fn len(&self) -> usize {
        self.carry.len()
            + self
                .held
                .as_ref()
                .map_or(0, |(buffer, at)| buffer.len() - at)
    }

    /// The bytes to hand rustls next: the record buffer while it holds anything, else the
    /// rest of the received buffer.
    fn next_slice(&mut self) -> &mut [u8] {
        if !self.carry.is_empty() {
            return &mut self.carry;
        }
        match &mut self.held {
            Some((buffer, at)) => &mut buffer[*at..],
            None => &mut [],
        }
    }

    /// rustls consumed `count` bytes of what [`next_slice`](Self::next_slice) gave it; a
    /// received buffer it used up goes back to `wire`.
    fn discard(&mut self, wire: &mut (impl Wire + ?Sized), count: usize) {
        if count == 0 {
            return;
        }
        if !self.carry.is_empty() {
            self.carry.drain(..count.min(self.carry.len()));
        } else if let Some((buffer, at)) = &mut self.held {
            *at = (*at + count).min(buffer.len());
            if *at == buffer.len() {
                self.release(wire);
            }
        }
    }

    /// Gives the received buffer held back to `wire`: everything in it was used.
    fn release(&mut self, wire: &mut (impl Wire + ?Sized)) {
        if let Some((buffer, _)) = self.held.take() {
            wire.recycle(buffer);
        }
    }

    /// rustls needs more bytes than it was given: brings in the next ones. Returns whether
    /// it did (false: nothing more has been received).
    fn refill(&mut self, wire: &mut (impl Wire + ?Sized)) -> io::Result<bool> {
        if self.carry.is_empty() {
            match &self.held {
                // A record's start at the end of a received buffer: it joins the record
                // buffer, and the record's rest comes from the next buffer.
                Some((buffer, at)) if *at < buffer.len() => {
                    self.carry.extend_from_slice(&buffer[*at..]);
                    self.release(wire);
                }
                _ => {
                    self.release(wire);
                    self.held = wire.receive_buffer()?.map(|buffer| (buffer, 0));
                    return Ok(self.held.is_some());
                }
            }
        }
        let need = carry_need(&self.carry);
        if self.carry.len() + need > CARRY_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a TLS record or handshake message larger than the record buffer",
            ));
        }
        if self
            .held
            .as_ref()
            .is_none_or(|(buffer, at)| *at == buffer.len())
        {
            self.release(wire);
            self.held = wire.receive_buffer()?.map(|buffer| (buffer, 0));
        }
        let Some((buffer, at)) = &mut self.held else {
            return Ok(false);
        };
        let take = need.min(buffer.len() - *at);
        self.carry.extend_from_slice(&buffer[*at..*at + take]);
        *at += take;
        if *at == buffer.len() {
            self.release(wire);
        }
        Ok(take > 0)
    }
}

/// How many more bytes `carry` needs to end on a record boundary past what rustls could use
/// (the next header, or the rest of the record it starts); at least 1.
fn carry_need(carry: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let Some(header) = carry.get(at..at + HEADER) else {
            return at + HEADER - carry.len();
        };
        let end = at + HEADER + usize::from(u16::from_be_bytes([header[3], header[4]]));
        if end > carry.len() {
            return end - carry.len();
        }
        at = end;
    }
}

/// Decrypted bytes the protocol's buffer had no room for.
#[derive(Default)]
struct Plain {
    bytes: Vec<u8>,
    at: usize,
}

impl Plain {
    fn len(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// Copies what fits into `buf`.
    fn take(&mut self, buf: &mut [u8]) -> usize {
        if self.bytes.is_empty() {
            // The common case: everything went straight to the protocol's buffer.
            return 0;
        }
        let count = buf.len().min(self.len());
        buf[..count].copy_from_slice(&self.bytes[self.at..self.at + count]);
        self.at += count;
        if self.at == self.bytes.len() {
            // Keeps the capacity for the next record.
            self.bytes.clear();
            self.at = 0;
        }
        count
    }
}

/// Everything of the session but rustls's own state: what the state handlers work on.
struct Flow {
    /// Decrypted bytes waiting for the protocol.
    plain: Plain,
    /// What the protocol wrote that is not encrypted yet (it waits for the handshake).
    early: VecDeque<Chunk>,
    /// The bytes of `early`.
    early_bytes: usize,
    /// The send buffer being filled.
    out: Option<Buffer>,
    /// One small record, encrypted here and copied to the send queue (see
    /// [`encrypt_copied`](Self::encrypt_copied)); grows to the largest such record.
    record: Vec<u8>,
    /// Filled records, in order, for the send queue. They are sent when the hook returns
    /// from anything but `write` (a lent write is never urgent and sends them at once): a
    /// write may be urgent, and TLS records can't jump the queue.
    sealed: VecDeque<Chunk>,
    /// The handshake has ended.
    ready: bool,
    /// A close asked for close_notify (sent once the handshake has ended).
    close_wanted: bool,
    /// close_notify is encrypted.
    closed: bool,
    /// The peer sent close_notify.
    peer_closed: bool,
    /// A fatal error: the alert is queued and the connection is closing.
    failed: bool,
    /// The last walk ended in `WriteTraffic` with everything written encrypted: rustls has
    /// nothing to do until bytes arrive or the protocol writes, so a flush need not ask it.
    idle: bool,
}

/// What to do after a state was handled.
enum Next {
    /// Ask rustls for its next state.
    Again,
    /// Plaintext was handed over: ask rustls again only if there is more to decrypt.
    Read,
    /// rustls needs more received bytes.
    Input,
    /// Nothing more to do now.
    Stop,
}

impl Flow {
    /// The send buffer being filled, with at least `room` bytes free when a fresh buffer has
    /// that much (the full one is sealed).
    fn out_with_room(
        &mut self,
        wire: &mut (impl Wire + ?Sized),
        room: usize,
    ) -> io::Result<&mut Buffer> {
        if self
            .out
            .as_ref()
            .is_some_and(|out| out.remaining() < room && !out.is_empty())
        {
            self.seal();
        }
        if self.out.is_none() {
            self.out = Some(wire.send_buffer()?);
        }
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("no send buffer"))
    }

    /// Moves the send buffer being filled to the sealed records.
    fn seal(&mut self) {
        if let Some(out) = self.out.take().filter(|out| !out.is_empty()) {
            self.sealed.push_back(Chunk::Buffer(out));
        }
    }

    /// Writes one encoded or encrypted piece with `produce`, which returns the bytes written
    /// or the size it needed. A piece larger than a send buffer (a big handshake record)
    /// gets a vector of its own.
    fn produce(
        &mut self,
        wire: &mut (impl Wire + ?Sized),
        room: usize,
        mut produce: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
    ) -> io::Result<()> {
        let out = self.out_with_room(wire, room)?;
        let len = out.len();
        let needed = match produce(&mut out.as_mut_capacity()[len..]) {
            Ok(count) => {
                out.set_len(len + count);
                return Ok(());
            }
            Err(None) => return Ok(()),
            Err(Some(needed)) => needed,
        };
        if out.capacity() >= needed && len > 0 {
            // A fresh buffer has room.
            self.seal();
            return self.produce(wire, needed, produce);
        }
        let mut own = vec![0u8; needed];
        match produce(&mut own) {
            Ok(count) => {
                own.truncate(count);
                self.seal();
                self.sealed.push_back(Chunk::Vec(own));
                Ok(())
            }
            Err(_) => Err(io::Error::other("rustls asked for more room than it used")),
        }
    }

    /// Encrypts `data` as records into the send buffers.
    fn encrypt<Data>(
        &mut self,
        wire: &mut (impl Wire + ?Sized),
        traffic: &mut WriteTraffic<'_, Data>,
        data: &[u8],
    ) -> io::Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            let out = self.out_with_room(wire, RECORD_OVERHEAD + 1)?;
            let piece = out
                .remaining()
                .saturating_sub(RECORD_OVERHEAD)
                .clamp(1, rest.len().min(MAX_FRAGMENT));
            let (now, later) = rest.split_at(piece);
            self.produce(wire, piece + RECORD_OVERHEAD, |room| {
                traffic.encrypt(now, room).map_err(|error| match error {
                    EncryptError::InsufficientSize(size) => Some(size.required_size),
                    _ => None,
                })
            })?;
            rest = later;
        }
        Ok(())
    }

    /// Encrypts `data`, a small lent write with nothing of the session waiting before it,
    /// as one record into `record`, and queues a copy of it. The engine copies it into the
    /// spare room of its last queued send buffer: cheaper than a pooled send buffer of its
    /// own (taken, queued as a chunk, recycled once sent) for a record this short.
    fn encrypt_copied<Data>(
        &mut self,
        wire: &mut (impl Wire + ?Sized),
        traffic: &mut WriteTraffic<'_, Data>,
        data: &[u8],
    ) -> io::Result<()> {
        let room = data.len() + RECORD_OVERHEAD;
        if self.record.len() < room {
            self.record.resize(room, 0);
        }
        match traffic.encrypt(data, &mut self.record[..room]) {
            Ok(count) => wire.send_copy(&self.record[..count]),
            // More than the margin: the send buffers' path asks for the room it needs.
            Err(EncryptError::InsufficientSize(_)) => self.encrypt(wire, traffic, data),
            Err(error) => Err(io::Error::other(error)),
        }
    }

    /// Handles one state rustls returned. `sink` is the protocol's buffer (plaintext goes
    /// there first, then to `plain`); `copied` counts what went into it. `lent` is a write
    /// the protocol lent, encrypted after `early` and emptied once it is.
    fn handle<Data>(
        &mut self,
        wire: &mut (impl Wire + ?Sized),
        status: UnbufferedStatus<'_, '_, Data>,
        sink: &mut [u8],
        copied: &mut usize,
        lent: &mut &[u8],
    ) -> io::Result<Next> {
        let state = match status.state {
            Ok(state) => state,
            Err(error) => return Err(self.failure(error)),
        };
        match state {
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    let record = match record {
                        Ok(record) => record,
                        Err(error) => return Err(self.failure(error)),
                    };
                    let count = record.payload.len().min(sink.len() - *copied);
                    sink[*copied..*copied + count].copy_from_slice(&record.payload[..count]);
                    *copied += count;
                    if count < record.payload.len() {
                        self.plain.bytes.extend_from_slice(&record.payload[count..]);
                    }
                }
                Ok(Next::Read)
            }
            ConnectionState::EncodeTlsData(mut encode) => {
                self.produce(wire, 0, |room| match encode.encode(room) {
                    Ok(count) => Ok(count),
                    Err(EncodeError::InsufficientSize(size)) => Err(Some(size.required_size)),
                    Err(_) => Err(None),
                })?;
                Ok(Next::Again)
            }
            ConnectionState::TransmitTlsData(transmit) => {
                // Sealed now, sent as the hook returns: rustls may consider it transmitted.
                self.seal();
                transmit.done();
                Ok(Next::Again)
            }
            ConnectionState::BlockedHandshake => Ok(Next::Input),
            ConnectionState::WriteTraffic(mut traffic) => {
                self.ready = true;
                // Settled only once everything below is encrypted (an error leaves it unset).
                self.idle = false;
                while let Some(chunk) = self.early.pop_front() {
                    self.early_bytes -= chunk.len();
                    self.encrypt(wire, &mut traffic, chunk.bytes())?;
                }
                if !lent.is_empty() {
                    if lent.len() <= COPY_LIMIT && self.out.is_none() && self.sealed.is_empty() {
                        self.encrypt_copied(wire, &mut traffic, lent)?;
                    } else {
                        self.encrypt(wire, &mut traffic, lent)?;
                    }
                    *lent = &[];
                }
                if self.close_wanted && !self.closed {
                    self.closed = true;
                    self.produce(wire, RECORD_OVERHEAD, |room| {
                        traffic
                            .queue_close_notify(room)
                            .map_err(|error| match error {
                                EncryptError::InsufficientSize(size) => Some(size.required_size),
                                _ => None,
                            })
                    })?;
                    self.seal();
                }
                self.idle = true;
                Ok(Next::Input)
            }
            ConnectionState::PeerClosed => {
                self.peer_closed = true;
                self.close_wanted = true;
                Ok(Next::Again)
            }
            ConnectionState::ReadEarlyData(_) => {
                Err(self.failure(rustls::Error::General("0-RTT data is not accepted".into())))
            }
            ConnectionState::Closed => Ok(Next::Stop),
            _ => Ok(Next::Stop),
        }
    }

    /// A fatal TLS error: the session is done (its alert follows).
    fn failure(&mut self, error: rustls::Error) -> io::Error {
        self.failed = true;
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

/// A fio connection's TLS session.
pub(crate) struct TlsHook {
    uuid: Uuid,
    session: Session,
    alpn: Arc<AlpnTable>,
    input: Input,
    flow: Flow,
    /// The handshake's end was handled (callbacks run).
    announced: bool,
    /// The close after the peer's close_notify is deferred.
    close_deferred: bool,
    /// The handshake has a deadline (see `deadline`), forgotten when it ends.
    watched: bool,
}

impl TlsHook {
    pub(crate) fn new(uuid: Uuid, session: Session, alpn: Arc<AlpnTable>) -> Self {
        Self {
            uuid,
            session,
            alpn,
            input: Input::default(),
            flow: Flow {
                plain: Plain::default(),
                early: VecDeque::new(),
                early_bytes: 0,
                out: None,
                record: Vec::new(),
                sealed: VecDeque::new(),
                ready: false,
                close_wanted: false,
                closed: false,
                peer_closed: false,
                failed: false,
                idle: false,
            },
            announced: false,
            close_deferred: false,
            watched: false,
        }
    }

    /// The handshake has a deadline, to forget when it ends or the hook goes.
    pub(crate) fn watched(&mut self) {
        self.watched = true;
    }

    /// The handshake's deadline no longer applies.
    fn unwatch(&mut self) {
        if std::mem::take(&mut self.watched) {
            crate::deadline::forget(self.uuid);
        }
    }

    /// Decrypted bytes ready for the protocol.
    pub(crate) fn plain(&self) -> usize {
        self.flow.plain.len()
    }

    /// Walks rustls's states: decrypts the received records held (into `sink`, then the
    /// plaintext store), taking more from `wire` when `feed`; seals handshake records;
    /// encrypts what waits. Stops when rustls needs bytes not received yet, or once `sink`
    /// is full and plaintext is stored (so [`buffered`](RwHook::buffered) has the protocol
    /// come back for it).
    fn pump(
        &mut self,
        wire: &mut (impl Wire + ?Sized),
        feed: bool,
        sink: &mut [u8],
        lent: &mut &[u8],
    ) -> io::Result<usize> {
        let mut copied = 0;
        if self.flow.failed {
            return Ok(0);
        }
        let result = self.steps(wire, feed, sink, &mut copied, lent);
        self.progressed(wire);
        match result {
            Ok(()) => Ok(copied),
            Err(error) => {
                self.fail(wire, &error);
                Err(error)
            }
        }
    }

    /// [`pump`](Self::pump)'s loop.
    fn steps(
        &mut self,
        wire: &mut (impl Wire + ?Sized),
        feed: bool,
        sink: &mut [u8],
        copied: &mut usize,
        lent: &mut &[u8],
    ) -> io::Result<()> {
        let Self {
            session,
            input,
            flow,
            ..
        } = self;
        // Whatever happens next may leave rustls with work (a full sink, the step bound).
        flow.idle = false;
        // A read with nothing held takes the first received buffer before asking rustls: asked
        // with nothing, rustls would only answer `WriteTraffic` (once per request) and the
        // walk would come back for the buffer anyway. rustls holds no part of an earlier
        // input then (everything given to it was discarded), so nothing is skipped.
        if feed && input.len() == 0 && flow.ready {
            input.refill(wire)?;
        }
        for _ in 0..STEPS {
            if feed && *copied == sink.len() && flow.plain.len() > 0 {
                return Ok(());
            }
            // Always what is held, even when not fed: rustls remembers how far it got into
            // the bytes it did not discard, and expects them back.
            let incoming = input.next_slice();
            let (discard, next) = match session {
                Session::Server(conn) => {
                    let status = conn.process_tls_records(incoming);
                    let discard = status.discard;
                    (discard, flow.handle(wire, status, sink, copied, lent))
                }
                Session::Client(conn) => {
                    let status = conn.process_tls_records(incoming);
                    let discard = status.discard;
                    (discard, flow.handle(wire, status, sink, copied, lent))
                }
            };
            input.discard(wire, discard);
            match next? {
                Next::Again => {}
                // Each record costs rustls a call of its own; once the last one received is
                // decrypted after the handshake, a further call would only find nothing to
                // deframe. Anything rustls still has to do waits for the next walk (the
                // session is not `idle`, so the flush makes one).
                Next::Read => {
                    if feed && flow.ready && input.len() == 0 && wire.received_len() == 0 {
                        return Ok(());
                    }
                }
                Next::Input => {
                    if !feed || !input.refill(wire)? {
                        return Ok(());
                    }
                    flow.idle = false;
                }
                Next::Stop => return Ok(()),
            }
        }
        Ok(())
    }

    /// After a pump: notices the handshake's end (the timer's flag, the ALPN callback) and
    /// the peer's close_notify (the connection closes once the answer is out).
    fn progressed(&mut self, wire: &mut (impl Wire + ?Sized)) {
        if self.flow.ready && !self.announced {
            self.announced = true;
            self.unwatch();
            if let Some(callback) = self
                .session
                .alpn_protocol()
                .and_then(|name| self.alpn.get(name))
            {
                let (callback, uuid) = (Arc::clone(callback), self.uuid);
                wire.later(Box::new(move || callback(uuid)));
            }
        }
        if self.flow.peer_closed && !self.close_deferred {
            self.close_deferred = true;
            let uuid = self.uuid;
            wire.later(Box::new(move || {
                let _ = fio_reactor::close(uuid);
            }));
        }
    }

    /// A fatal error: encodes the alert rustls queued and closes after it.
    fn fail(&mut self, wire: &mut (impl Wire + ?Sized), error: &io::Error) {
        log::debug!("TLS error on connection {}: {error}", self.uuid);
        self.flow.failed = true;
        self.flow.early.clear();
        self.flow.early_bytes = 0;
        self.input = Input::default();
        // The alert is rustls's next output. Asked for more once it is out, rustls would go
        // back to the input it failed on.
        for _ in 0..4 {
            if !self.session.wants_write() {
                break;
            }
            let more = match &mut self.session {
                Session::Server(conn) => {
                    alert_step(conn.process_tls_records(&mut []), &mut self.flow, wire)
                }
                Session::Client(conn) => {
                    alert_step(conn.process_tls_records(&mut []), &mut self.flow, wire)
                }
            };
            if !more {
                break;
            }
        }
        self.flow.seal();
        let uuid = self.uuid;
        wire.later(Box::new(move || {
            let _ = fio_reactor::close(uuid);
        }));
    }

    /// Hands the sealed records to the send queue. Handshake records the peer now waits
    /// for (the server's flight) go out at once: making them took the handshake's
    /// public-key work, and the peer can go on with its part while this thread serves the
    /// other connections of its tick.
    fn send_sealed(&mut self, wire: &mut (impl Wire + ?Sized)) -> io::Result<()> {
        let sent = !self.flow.sealed.is_empty();
        while let Some(chunk) = self.flow.sealed.pop_front() {
            wire.send(chunk)?;
        }
        if sent && !self.flow.failed && self.session.is_handshaking() {
            wire.send_now();
        }
        Ok(())
    }
}

/// One step of sending the alert after a fatal error; whether to go on.
fn alert_step<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    flow: &mut Flow,
    wire: &mut (impl Wire + ?Sized),
) -> bool {
    match status.state {
        Ok(ConnectionState::EncodeTlsData(mut encode)) => flow
            .produce(wire, 0, |room| match encode.encode(room) {
                Ok(count) => Ok(count),
                Err(EncodeError::InsufficientSize(size)) => Err(Some(size.required_size)),
                Err(_) => Err(None),
            })
            .is_ok(),
        Ok(ConnectionState::TransmitTlsData(transmit)) => {
            transmit.done();
            false
        }
        _ => false,
    }
}

/// The hook's operations on any [`Wire`]: the [`RwHook`] methods below pass [`HookIo`].
impl TlsHook {
    /// The protocol's read: decrypted bytes into `buf`, records taken from `io` as needed.
    pub(crate) fn read_from(
        &mut self,
        io: &mut (impl Wire + ?Sized),
        buf: &mut [u8],
    ) -> io::Result<usize> {
        if self.flow.failed {
            // Whatever follows a fatal alert is dropped unread.
            while io.receive_buffer()?.is_some() {}
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the TLS session failed",
            ));
        }
        let mut copied = self.flow.plain.take(buf);
        if self.flow.plain.len() == 0 && (self.input.len() > 0 || io.received_len() > 0) {
            let pumped = self.pump(io, true, &mut buf[copied..], &mut &[][..]);
            self.send_sealed(io)?;
            copied += pumped?;
        }
        Ok(copied)
    }

    /// The protocol's write: `data` encrypted into pooled send buffers (held until the
    /// handshake ends), queued when the hook next returns from anything but a write.
    pub(crate) fn write_to(
        &mut self,
        io: &mut (impl Wire + ?Sized),
        data: Chunk,
    ) -> io::Result<()> {
        if self.flow.failed || self.flow.closed || self.flow.close_wanted {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the TLS session is closed",
            ));
        }
        if data.is_empty() {
            return Ok(());
        }
        self.flow.early_bytes += data.len();
        self.flow.early.push_back(data);
        if self.flow.ready {
            self.pump(io, false, &mut [], &mut &[][..])?;
        }
        Ok(())
    }

    /// The protocol's lent write: encrypted from `data` itself once the handshake has ended
    /// and nothing waits before it, else copied to wait like [`write_to`](Self::write_to).
    pub(crate) fn write_borrowed_to(
        &mut self,
        io: &mut (impl Wire + ?Sized),
        data: &[u8],
    ) -> io::Result<()> {
        if !self.flow.ready || !self.flow.early.is_empty() {
            return self.write_to(io, Chunk::Vec(data.to_vec()));
        }
        if self.flow.failed || self.flow.closed || self.flow.close_wanted {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the TLS session is closed",
            ));
        }
        let mut lent = data;
        self.pump(io, false, &mut [], &mut lent)?;
        if lent.is_empty() {
            // A lent write is never urgent, so its records go to the send queue now rather
            // than at the end of the tick: once rustls has settled, nothing is left for a
            // flush to do (see `wants_flush`), and the reactor skips that call. The common
            // case, one send buffer and nothing sealed before it, skips the sealed queue.
            if self.flow.sealed.is_empty()
                && let Some(out) = self.flow.out.take()
            {
                return if out.is_empty() {
                    Ok(())
                } else {
                    io.send(Chunk::Buffer(out))
                };
            }
            self.flow.seal();
            self.send_sealed(io)
        } else {
            // rustls had something else to do first (a key update): the rest waits.
            self.write_to(io, Chunk::Vec(lent.to_vec()))
        }
    }

    /// Sends what is sealed; drives the handshake; returns the plaintext bytes still held
    /// (written before the handshake ended).
    pub(crate) fn flush_to(&mut self, io: &mut (impl Wire + ?Sized)) -> io::Result<usize> {
        // The handshake also goes on here: a closing connection's protocol reads no more
        // (the reactor flushes its hook when bytes arrive instead), and a file written
        // before the handshake ended waits for it. Plaintext decrypted on the way is
        // `buffered`, and the reactor has the protocol read it.
        // Once the handshake has ended and rustls settled with nothing waiting, asking it
        // again would only return the same `WriteTraffic` state: a flush is just a send.
        let settled = self.flow.idle && self.flow.early.is_empty();
        if !self.flow.failed && !settled {
            let feed = !self.flow.ready;
            if let Err(error) = self.pump(io, feed, &mut [], &mut &[][..]) {
                self.send_sealed(io)?;
                // A fatal alert is not an error for the reactor, which would close at once
                // and drop it: the graceful close `fail` deferred sends it first.
                return if self.flow.failed { Ok(0) } else { Err(error) };
            }
        }
        self.flow.seal();
        self.send_sealed(io)?;
        Ok(if self.flow.failed {
            0
        } else {
            self.flow.early_bytes
        })
    }

    /// A graceful close: close_notify after what the protocol wrote, now or once the
    /// handshake ends (`true`: wait for it).
    pub(crate) fn closing(&mut self, io: &mut (impl Wire + ?Sized)) -> bool {
        if self.flow.failed || self.flow.closed {
            return false;
        }
        self.flow.close_wanted = true;
        if !self.flow.ready {
            // Nothing written: no handshake to finish for it, and nothing to close.
            return self.flow.early_bytes > 0;
        }
        let _ = self.pump(io, false, &mut [], &mut &[][..]);
        self.flow.seal();
        let _ = self.send_sealed(io);
        false
    }
}

impl RwHook for TlsHook {
    fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> io::Result<usize> {
        self.read_from(io, buf)
    }

    fn write(&mut self, io: &mut HookIo<'_>, data: Chunk) -> io::Result<()> {
        self.write_to(io, data)
    }

    fn write_borrowed(&mut self, io: &mut HookIo<'_>, data: &[u8]) -> io::Result<()> {
        self.write_borrowed_to(io, data)
    }

    fn flush(&mut self, io: &mut HookIo<'_>) -> io::Result<usize> {
        self.flush_to(io)
    }

    fn before_close(&mut self, io: &mut HookIo<'_>) -> bool {
        self.closing(io)
    }

    fn buffered(&self) -> usize {
        self.plain()
    }

    fn pending(&self) -> usize {
        self.flow.early.len() + self.flow.sealed.len() + usize::from(self.flow.out.is_some())
    }

    fn drained(&self) -> bool {
        // Nothing decrypted or undecrypted held, and no failure (whose read reports it).
        !self.flow.failed && self.flow.plain.len() == 0 && self.input.len() == 0
    }

    fn wants_flush(&self) -> bool {
        // Records or plaintext held, or rustls not settled (a key update, an alert): the
        // flush sends or finishes them.
        !self.flow.idle || self.pending() > 0
    }
}

impl Drop for TlsHook {
    fn drop(&mut self) {
        self.unwatch();
    }
}

impl fmt::Debug for TlsHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsHook")
            .field("uuid", &self.uuid)
            .field("handshaking", &self.session.is_handshaking())
            .field("plain", &self.flow.plain.len())
            .field("early_bytes", &self.flow.early_bytes)
            .field("closed", &self.flow.closed)
            .field("failed", &self.flow.failed)
            .finish_non_exhaustive()
    }
}
