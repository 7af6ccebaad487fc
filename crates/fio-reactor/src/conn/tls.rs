//! The TLS slot of [`listen`](crate::listen) and [`connect`](crate::connect) (facil.io's
//! `fio_tls_s *tls`): a provider that gives each new connection its read/write hook.
//!
//! The reactor knows nothing of TLS itself; `fio-tls` implements [`Tls`] on rustls. The hook
//! is installed before `on_open` runs, so the protocol only ever sees plaintext, and what it
//! writes before the handshake ends waits in the hook. The hook is flushed at the end of the
//! tick it was installed in, written to or not, so a client's hook can send its first flight.

use std::io;
use std::sync::Arc;

use crate::conn::hook::RwHook;
use crate::conn::state::caught;
use crate::thread::Local;
use crate::uuid::Uuid;

/// Makes the read/write hook that secures a new connection (see the module documentation).
///
/// # Examples
/// A provider whose "security" is the plain path, to show the shape:
/// ```
/// use std::io;
/// use std::sync::Arc;
/// use fio_reactor::{DefaultHook, ListenArgs, RwHook, Tls, Uuid};
/// struct Plain;
/// impl Tls for Plain {
///     fn server_hook(&self, _uuid: Uuid) -> io::Result<Box<dyn RwHook>> {
///         Ok(Box::new(DefaultHook))
///     }
///     fn client_hook(&self, _uuid: Uuid, _server_name: &str) -> io::Result<Box<dyn RwHook>> {
///         Ok(Box::new(DefaultHook))
///     }
/// }
/// let args = ListenArgs::new("tls://127.0.0.1:0", |_| {}).tls(Arc::new(Plain));
/// assert!(args.has_tls());
/// ```
pub trait Tls: Send + Sync + 'static {
    /// The hook for `uuid`, just accepted by a listener with this provider.
    ///
    /// # Errors
    /// Any: the connection is closed without `on_open`, and the error logged.
    fn server_hook(&self, uuid: Uuid) -> io::Result<Box<dyn RwHook>>;

    /// The hook for `uuid`, just connected to `server_name` (the URL's host, for SNI and
    /// certificate checks).
    ///
    /// # Errors
    /// Any: the connection is closed, and the connect counts as failed.
    fn client_hook(&self, uuid: Uuid, server_name: &str) -> io::Result<Box<dyn RwHook>>;
}

/// A shared provider, as listen and connect hold it.
pub(crate) type SharedTls = Arc<dyn Tls>;

/// Which side of the handshake a connection is on.
pub(crate) enum Side<'a> {
    /// Accepted by a listener.
    Server,
    /// Connected to this server name.
    Client(&'a str),
}

/// Installs `tls`'s hook on `uuid` (owned here); `Err` (logged) when the provider refused or
/// panicked, and the caller closes the connection.
pub(crate) fn secure(local: &Local, uuid: Uuid, tls: &SharedTls, side: Side<'_>) -> io::Result<()> {
    let mut made = None;
    let returned = caught("tls hook", uuid, || {
        made = Some(match side {
            Side::Server => tls.server_hook(uuid),
            Side::Client(name) => tls.client_hook(uuid, name),
        });
    });
    let hook = match made {
        Some(Ok(hook)) if returned => hook,
        Some(Err(error)) => {
            log::warn!("TLS refused connection {uuid}: {error}");
            return Err(error);
        }
        _ => return Err(io::Error::other("the TLS provider panicked")),
    };
    crate::conn::hook::install(local, uuid, hook);
    // The hook's first flush comes at the end of this tick even if nothing is written: a
    // client's hook sends its hello from there.
    local.conns.borrow_mut().schedule_flush(uuid);
    Ok(())
}
