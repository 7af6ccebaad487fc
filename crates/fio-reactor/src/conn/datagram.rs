//! UDP connections: a `udp://` listener is one datagram socket that every peer writes to, and
//! a `udp://` connect is a datagram socket connected to one peer.
//!
//! Both are connections like any other: a protocol is attached in `on_open`, `on_data` runs
//! when datagrams wait, and [`read`](crate::read) returns the next datagram's payload (cut to
//! the buffer, as `recv(2)` does). [`read_from`] also says who sent it, and [`write_to`]
//! answers there; on a connected socket [`write`](crate::write()) sends one datagram per
//! write. Datagrams have no end of stream and no half-close.

use std::net::SocketAddr;

use fio_buffer::Chunk;

use crate::conn::api::{Route, engine_error, on_owner, route};
use crate::engine::Engine;
use crate::error::Error;
use crate::uuid::Uuid;

/// Copies the next datagram waiting on the UDP connection `uuid` into `buf` (cut to fit) and
/// returns its length and sender; `Ok(None)` when none waits.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection;
/// - [`Error::ForeignThread`] outside the thread that owns it (read in its callbacks);
/// - [`Error::Connection`] (`Unsupported`) when `uuid` is a stream.
///
/// # Examples
/// ```
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// let mut buf = [0u8; 64];
/// assert!(fio_reactor::read_from(stale, &mut buf).is_err());
/// ```
pub fn read_from(uuid: Uuid, buf: &mut [u8]) -> Result<Option<(usize, SocketAddr)>, Error> {
    let Route::Here(local) = route(uuid)? else {
        return Err(Error::ForeignThread(uuid));
    };
    let received = local.engine.borrow_mut().recv_from(uuid, buf);
    let received = received.map_err(|error| engine_error(uuid, error))?;
    if received.is_some()
        && let Some(conn) = local.conns.borrow_mut().map.get_mut(&uuid)
    {
        // Counts as progress for the `on_data` loop, as `read` does.
        conn.read_total += 1;
    }
    Ok(received)
}

/// Queues `data` as one datagram from the UDP connection `uuid` to `to`; it is sent at the
/// end of the owner's tick.
///
/// # Errors
/// - [`Error::InvalidUuid`] when `uuid` is not an open connection;
/// - [`Error::Closing`] once it is closing;
/// - [`Error::Connection`] (`Unsupported`) when `uuid` is a stream. From another thread the
///   write is routed and these are only logged.
///
/// # Examples
/// ```
/// let stale = fio_reactor::Uuid::from_parts(0, 0);
/// let to = "127.0.0.1:9".parse()?;
/// assert!(fio_reactor::write_to(stale, b"hello".to_vec(), to).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_to(uuid: Uuid, data: impl Into<Chunk>, to: SocketAddr) -> Result<(), Error> {
    let chunk = data.into();
    on_owner(uuid, move |local| {
        let closing = local
            .conns
            .borrow()
            .map
            .get(&uuid)
            .is_some_and(|conn| conn.closing);
        if closing {
            return Err(Error::Closing(uuid));
        }
        let sent = local.engine.borrow_mut().send_to(uuid, chunk, to);
        sent.map_err(|error| engine_error(uuid, error))
    })
}
