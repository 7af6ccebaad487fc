//! The read/write hook that runs one rustls connection over a fio connection's buffers.
//!
//! Raw records come from [`HookIo::receive`] and decrypted bytes go to the protocol's
//! [`read`](fio_reactor::read); what the protocol writes is encrypted and handed to
//! [`HookIo::send`]. The hook never calls the reactor while it runs (the reactor forbids it):
//! what must happen outside it (an ALPN callback, closing after a fatal alert or the peer's
//! close_notify) is deferred.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fio_reactor::{Chunk, HookIo, RwHook, Uuid};
use rustls::Connection;

use crate::config::AlpnTable;

/// How many record batches one protocol `read` decrypts while it finds no plaintext (a
/// handshake flight, or records that carry none); what is left waits for the next `read`.
const READ_ROUNDS: usize = 64;

/// How many encrypted batches one output drain takes before giving up on a bug.
const WRITE_ROUNDS: usize = 1024;

/// The connection as the session sees it: raw bytes in and out, and a way to run work
/// after the hook returns. [`HookIo`] in the reactor; an in-memory wire in the fuzz target.
pub(crate) trait Wire {
    /// Copies raw received bytes into `buf`; 0 when none are buffered.
    fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Raw bytes received and not yet taken.
    fn received_len(&self) -> usize;
    /// Queues raw bytes for sending.
    fn send(&mut self, chunk: Chunk) -> io::Result<()>;
    /// Runs `task` once the hook has returned (it may call the reactor).
    fn later(&mut self, task: Box<dyn FnOnce() + Send>);
}

impl Wire for HookIo<'_> {
    fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        HookIo::receive(self, buf)
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
}

/// A fio connection's TLS session.
pub(crate) struct TlsHook {
    uuid: Uuid,
    conn: Connection,
    alpn: Arc<AlpnTable>,
    /// Decrypted bytes rustls holds for the protocol.
    plain: usize,
    /// Plaintext the protocol wrote while the handshake ran (rustls holds it until it ends).
    early: bool,
    /// The handshake has ended.
    ready: bool,
    /// A graceful close came during the handshake: close_notify follows once it ends.
    close_pending: bool,
    /// close_notify is queued.
    closed: bool,
    /// A fatal error: the alert is queued and the connection is closing.
    failed: bool,
    /// Set when the handshake ends (the handshake timer reads it).
    handshaken: Option<Arc<AtomicBool>>,
}

impl TlsHook {
    pub(crate) fn new(uuid: Uuid, mut conn: Connection, alpn: Arc<AlpnTable>) -> Self {
        // The reactor's send queue after the hook is the limit (`pending` is the protocol's
        // backpressure), so rustls holds nothing back.
        conn.set_buffer_limit(None);
        Self {
            uuid,
            conn,
            alpn,
            plain: 0,
            early: false,
            ready: false,
            close_pending: false,
            closed: false,
            failed: false,
            handshaken: None,
        }
    }

    /// Sets `flag` when the handshake ends.
    pub(crate) fn report_handshake(&mut self, flag: Arc<AtomicBool>) {
        self.handshaken = Some(flag);
    }

    /// Decrypted bytes ready for the protocol.
    pub(crate) fn plain(&self) -> usize {
        self.plain
    }

    /// Hands every record rustls has ready to the send queue.
    fn send_out(&mut self, io: &mut (impl Wire + ?Sized)) -> io::Result<()> {
        for _ in 0..WRITE_ROUNDS {
            if !self.conn.wants_write() {
                return Ok(());
            }
            let mut out = Vec::new();
            if self.conn.write_tls(&mut out)? == 0 {
                return Ok(());
            }
            io.send(Chunk::Vec(out))?;
        }
        Ok(())
    }

    /// Queues close_notify once.
    fn close_notify(&mut self) {
        if !self.closed {
            self.closed = true;
            self.conn.send_close_notify();
        }
    }

    /// After records were processed: notices the handshake's end (ALPN callback, a close
    /// that waited for it) and sends what rustls produced.
    fn progressed(&mut self, io: &mut (impl Wire + ?Sized)) -> io::Result<()> {
        if !self.ready && !self.conn.is_handshaking() {
            self.ready = true;
            if let Some(flag) = &self.handshaken {
                flag.store(true, Ordering::Release);
            }
            if let Some(callback) = self
                .conn
                .alpn_protocol()
                .and_then(|name| self.alpn.get(name))
            {
                let (callback, uuid) = (Arc::clone(callback), self.uuid);
                io.later(Box::new(move || callback(uuid)));
            }
            if self.close_pending {
                self.close_pending = false;
                self.close_notify();
            }
        }
        self.send_out(io)
    }

    /// A fatal TLS error: sends the alert rustls queued and closes after it.
    fn fail(&mut self, io: &mut (impl Wire + ?Sized), error: rustls::Error) -> io::Error {
        log::debug!("TLS error on connection {}: {error}", self.uuid);
        self.failed = true;
        let _ = self.send_out(io);
        let uuid = self.uuid;
        io.later(Box::new(move || {
            let _ = fio_reactor::close(uuid);
        }));
        io::Error::new(io::ErrorKind::InvalidData, error)
    }

    /// Takes one batch of received records into rustls, processes them and sends what they
    /// produced; a fatal TLS error goes through [`fail`](Self::fail).
    fn take_records(&mut self, io: &mut (impl Wire + ?Sized)) -> io::Result<()> {
        self.conn.read_tls(&mut Raw(io))?;
        match self.conn.process_new_packets() {
            Ok(state) => self.plain = state.plaintext_bytes_to_read(),
            Err(error) => return Err(self.fail(io, error)),
        }
        self.progressed(io)
    }

    /// The peer sent close_notify: answer it and close once that is sent.
    fn peer_closed(&mut self, io: &mut (impl Wire + ?Sized)) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        self.close_notify();
        self.send_out(io)?;
        let uuid = self.uuid;
        io.later(Box::new(move || {
            let _ = fio_reactor::close(uuid);
        }));
        Ok(())
    }
}

/// [`Wire::receive`] as the reader rustls takes records from.
struct Raw<'h, W: ?Sized>(&'h mut W);

impl<W: Wire + ?Sized> Read for Raw<'_, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.receive(buf)
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
        if self.failed {
            // Whatever follows a fatal alert is dropped unread.
            let mut sink = [0u8; 4096];
            while io.receive(&mut sink)? > 0 {}
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the TLS session failed",
            ));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        for _ in 0..READ_ROUNDS {
            match self.conn.reader().read(buf) {
                Ok(0) => {
                    self.plain = 0;
                    self.peer_closed(io)?;
                    return Ok(0);
                }
                Ok(count) => {
                    self.plain = self.plain.saturating_sub(count);
                    return Ok(count);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
            // Only with bytes ready: a reader returning 0 would tell rustls the stream ended.
            if io.received_len() == 0 {
                return Ok(0);
            }
            self.take_records(io)?;
        }
        Ok(0)
    }

    /// The protocol's write: `data` encrypted into `io`'s send queue (held during the
    /// handshake).
    pub(crate) fn write_to(
        &mut self,
        io: &mut (impl Wire + ?Sized),
        data: &[u8],
    ) -> io::Result<()> {
        if self.failed || self.closed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the TLS session is closed",
            ));
        }
        if self.conn.is_handshaking() {
            self.early = true;
        }
        self.conn.writer().write_all(data)?;
        self.send_out(io)
    }

    /// Sends what rustls holds; drives the handshake; 1 while a close waits for it.
    pub(crate) fn flush_to(&mut self, io: &mut (impl Wire + ?Sized)) -> io::Result<usize> {
        // The handshake also goes on here: a closing connection's protocol reads no more
        // (the reactor flushes its hook when bytes arrive instead), and a file written
        // before the handshake ended waits for it. Plaintext decrypted on the way is
        // `buffered`, and the reactor has the protocol read it.
        if self.conn.is_handshaking() && !self.failed {
            for _ in 0..READ_ROUNDS {
                if !self.conn.is_handshaking() || io.received_len() == 0 {
                    break;
                }
                if let Err(error) = self.take_records(io) {
                    // A fatal alert is not an error for the reactor, which would close at
                    // once and drop it: the graceful close `fail` deferred sends it first.
                    return if self.failed { Ok(0) } else { Err(error) };
                }
            }
        }
        self.send_out(io)?;
        Ok(usize::from(self.close_pending))
    }

    /// A graceful close: close_notify now, or once the handshake ends (`true`: wait).
    pub(crate) fn closing(&mut self, io: &mut (impl Wire + ?Sized)) -> bool {
        if self.failed || self.closed {
            return false;
        }
        if self.conn.is_handshaking() && self.early {
            // What the protocol wrote goes out when the handshake ends, close_notify after.
            self.close_pending = true;
            return true;
        }
        self.close_notify();
        let _ = self.send_out(io);
        false
    }
}

impl RwHook for TlsHook {
    fn read(&mut self, io: &mut HookIo<'_>, buf: &mut [u8]) -> io::Result<usize> {
        self.read_from(io, buf)
    }

    fn write(&mut self, io: &mut HookIo<'_>, data: Chunk) -> io::Result<()> {
        self.write_to(io, data.bytes())
    }

    fn flush(&mut self, io: &mut HookIo<'_>) -> io::Result<usize> {
        self.flush_to(io)
    }

    fn before_close(&mut self, io: &mut HookIo<'_>) -> bool {
        self.closing(io)
    }

    fn buffered(&self) -> usize {
        self.plain
    }
}

impl fmt::Debug for TlsHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsHook")
            .field("uuid", &self.uuid)
            .field("handshaking", &self.conn.is_handshaking())
            .field("plain", &self.plain)
            .field("closed", &self.closed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
