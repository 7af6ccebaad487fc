//! [`write_notify`]: a write whose caller learns whether it was sent, from any thread.
//!
//! facil.io's `fio_write` (and [`write`](crate::write())) from another thread can only say
//! that the write was routed: the owner may find the connection closed when the write
//! arrives, or the connection may fail before the bytes leave. `write_notify` adds a callback
//! that gets the outcome: `Ok(())` once the connection's send queue drained after the write
//! (the bytes are in the kernel), or the error that kept them from going out.

use std::fmt;
use std::io;

use crate::conn::api::{Route, engine_error, route};
use crate::conn::outbox::{self, Payload};
use crate::conn::state;
use crate::error::Error;
use crate::thread::Local;
use crate::uuid::Uuid;

/// The outcome callback of one [`write_notify`]; runs exactly once. Dropped unrun (the write
/// was lost on a path that didn't report it), it reports [`Error::Unsent`].
pub(crate) struct Notify {
    /// The connection written to.
    uuid: Uuid,
    /// The caller's callback, until it runs.
    on_sent: Option<OnSent>,
}

/// A `write_notify` callback.
type OnSent = Box<dyn FnOnce(Result<(), Error>) + Send>;

impl Notify {
    /// Wraps `on_sent` for a write to `uuid`.
    fn new(uuid: Uuid, on_sent: impl FnOnce(Result<(), Error>) + Send + 'static) -> Self {
        Self {
            uuid,
            on_sent: Some(Box::new(on_sent)),
        }
    }

    /// Reports `result`, catching a panic in the callback.
    pub(crate) fn report(mut self, result: Result<(), Error>) {
        if let Some(on_sent) = self.on_sent.take() {
            crate::conn::state::caught("write_notify callback", self.uuid, || on_sent(result));
        }
    }

    /// Reports that the connection ended before the write was sent, with `cause` if known.
    pub(crate) fn unsent(self, cause: Option<&io::Error>) {
        let uuid = self.uuid;
        let source = cause.map(|cause| io::Error::new(cause.kind(), cause.to_string()));
        self.report(Err(Error::Unsent { uuid, source }));
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        if let Some(on_sent) = self.on_sent.take() {
            let uuid = self.uuid;
            crate::conn::state::caught("write_notify callback", uuid, || {
                on_sent(Err(Error::Unsent { uuid, source: None }));
            });
        }
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify")
            .field("uuid", &self.uuid)
            .field("pending", &self.on_sent.is_some())
            .finish()
    }
}

/// Queues `payload` for `uuid` like [`write2`](crate::write2) (not urgent), from any thread,
/// and reports what became of it: `on_sent` runs exactly once, on the thread that owns the
/// connection, with
/// - `Ok(())` once the connection's send queue (and its read/write hook, if any) drained
///   after this write, so its bytes were handed to the kernel;
/// - [`Error::Unsent`] when the connection closed before that (a peer reset, an I/O error
///   as the `source`, [`force_close`](crate::force_close), a graceful close cut short after
///   its grace period, or the reactor stopping); a graceful [`close`](crate::close) that
///   delivered everything reports `Ok(())`;
/// - [`Error::InvalidUuid`] or [`Error::Closing`] when the write was refused: the uuid was
///   stale (at the call, or by the time the write reached the owner) or the connection was
///   closing. Refused at the call, `on_sent` runs at once on the calling thread.
///
/// [`write`](crate::write()) stays facil.io's `fio_write`; this is the variant for callers
/// that must know (a message broker acknowledging delivery, a retry queue).
///
/// # Examples
/// ```
/// use std::sync::mpsc;
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// let (tx, rx) = mpsc::channel();
/// fio_reactor::write_notify(stale, b"hello".to_vec(), move |result| {
///     let _ = tx.send(result);
/// });
/// assert!(matches!(rx.recv().unwrap(), Err(fio_reactor::Error::InvalidUuid(_))));
/// ```
pub fn write_notify<F>(uuid: Uuid, payload: impl Into<Payload>, on_sent: F)
where
    F: FnOnce(Result<(), Error>) + Send + 'static,
{
    let payload = payload.into();
    let notify = Notify::new(uuid, on_sent);
    match route(uuid) {
        Ok(Route::Here(local)) => write_here(&local, uuid, payload, notify),
        Ok(Route::There(inner, thread)) => inner.post(
            thread,
            Box::new(move || match route(uuid) {
                Ok(Route::Here(local)) => write_here(&local, uuid, payload, notify),
                _ => notify.report(Err(Error::InvalidUuid(uuid))),
            }),
        ),
        Err(error) => notify.report(Err(error)),
    }
}

/// The write on the owning thread; the connection keeps `notify` until its queue drains.
fn write_here(local: &Local, uuid: Uuid, payload: Payload, notify: Notify) {
    if let Err(error) = outbox::write(local, uuid, payload, false) {
        notify.report(Err(engine_error(uuid, error)));
        return;
    }
    let mut conns = local.conns.borrow_mut();
    match conns.map.get_mut(&uuid) {
        Some(conn) => {
            conn.push_notify(notify);
            drop(conns);
            // Reported by the drain.
            state::want_drained(local, uuid);
        }
        None => {
            drop(conns);
            notify.report(Err(Error::InvalidUuid(uuid)));
        }
    }
}
