//! The [`Protocol`] trait: a connection's callbacks.

use std::any::Any;

use crate::uuid::Uuid;

/// A connection's callbacks (facil.io's `fio_protocol_s`), attached with
/// [`attach`](crate::attach) or from a listener's or connector's `on_open`.
///
/// Every callback runs on the reactor thread that owns the connection, one at a time: `on_data`
/// never runs concurrently with itself or with any other callback of the same connection
/// (facil.io let `on_ready` and `on_timeout` overlap `on_data`; here they can't). `on_close`
/// runs exactly once, after every other callback has returned. A panic in a callback is caught
/// and logged with the uuid, and closes that connection only (its `on_close` still runs).
/// Callbacks of different connections do run in parallel on different reactor threads: the
/// crate docs' "Threads and callbacks" says which thread owns a connection and what runs where.
///
/// Inside a callback, use the free functions with the uuid: [`read`](crate::read),
/// [`write`](crate::write()), [`close`](crate::close), ... Outside its callbacks, reach a
/// connection's protocol with [`defer_io_task`](crate::defer_io_task) or
/// [`protocol_try_lock`](crate::protocol_try_lock), and get the concrete type back with
/// [`downcast_mut`](#method.downcast_mut).
///
/// # Examples
/// An echo server and one client round trip:
/// ```
/// use std::io::{Read, Write};
/// use fio_reactor::{ListenArgs, Protocol, Reactor, StartArgs, Uuid};
///
/// /// Echoes every byte back.
/// struct Echo;
///
/// impl Protocol for Echo {
///     fn on_data(&mut self, uuid: Uuid) {
///         let mut buf = [0u8; 4096];
///         while let Ok(count @ 1..) = fio_reactor::read(uuid, &mut buf) {
///             let _ = fio_reactor::write(uuid, &buf[..count]);
///         }
///     }
/// }
///
/// let reactor = Reactor::new(StartArgs { threads: 1, signals: false, ..Default::default() });
/// let listener = reactor.listen(ListenArgs::new("tcp://127.0.0.1:0", |uuid| {
///     let _ = fio_reactor::attach(uuid, Echo);
/// }))?;
/// let addr = fio_reactor::local_addr(listener).and_then(|addr| addr.as_inet()).expect("TCP");
/// let stopper = reactor.clone();
/// let client = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
///     let mut stream = std::net::TcpStream::connect(addr)?;
///     stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
///     stream.write_all(b"ping")?;
///     let mut echoed = vec![0u8; 4];
///     let read = stream.read_exact(&mut echoed);
///     stopper.stop();
///     read.map(|()| echoed)
/// });
/// reactor.start()?;
/// assert_eq!(client.join().expect("client thread")?, b"ping");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Protocol: Any + Send {
    /// Bytes arrived (or the peer shut its write side); read them with
    /// [`read`](crate::read). The default reads nothing, so the connection's receive queue
    /// fills to its high-water mark and the peer is slowed by TCP itself.
    ///
    /// While bytes stay buffered and each call reads some, `on_data` is called again on the
    /// next tick. After the peer's end of stream, once the buffered bytes are consumed, the
    /// connection closes gracefully (queued writes are still delivered).
    fn on_data(&mut self, uuid: Uuid) {
        let _ = uuid;
    }

    /// Everything written so far was sent (the send queue drained); also called once when a
    /// connection opens, as facil.io does.
    fn on_ready(&mut self, uuid: Uuid) {
        let _ = uuid;
    }

    /// The reactor is stopping. Return 0 to close now (queued data still gets the 8-second
    /// grace period to drain), 1..=254 to close after that many seconds (it keeps serving
    /// meanwhile), or 255 to stay open until every other connection of the reactor, on any of
    /// its threads, has closed (then it is closed abruptly).
    fn on_shutdown(&mut self, uuid: Uuid) -> u8 {
        let _ = uuid;
        0
    }

    /// The connection closed (by either side, an error, or the reactor stopping). Runs exactly
    /// once, last.
    fn on_close(&mut self, uuid: Uuid) {
        let _ = uuid;
    }

    /// Nothing was read or sent for the connection's timeout (see
    /// [`timeout_set`](crate::timeout_set)). The default closes the connection gracefully, as
    /// facil.io's default `ping` does; call [`ping_eternal`](crate::ping_eternal) instead to
    /// keep it open.
    fn on_timeout(&mut self, uuid: Uuid) {
        let _ = crate::close(uuid);
    }
}

impl dyn Protocol {
    /// Whether the protocol is a `P`.
    ///
    /// # Examples
    /// ```
    /// use fio_reactor::Protocol;
    /// struct Echo;
    /// impl Protocol for Echo {}
    /// let protocol: Box<dyn Protocol> = Box::new(Echo);
    /// assert!(protocol.is::<Echo>());
    /// ```
    pub fn is<P: Protocol>(&self) -> bool {
        (self as &dyn Any).is::<P>()
    }

    /// The protocol as a `P`, if it is one.
    ///
    /// # Examples
    /// ```
    /// use fio_reactor::Protocol;
    /// struct Counter(u32);
    /// impl Protocol for Counter {}
    /// let protocol: Box<dyn Protocol> = Box::new(Counter(7));
    /// assert_eq!(protocol.downcast_ref::<Counter>().map(|counter| counter.0), Some(7));
    /// ```
    pub fn downcast_ref<P: Protocol>(&self) -> Option<&P> {
        (self as &dyn Any).downcast_ref()
    }

    /// The protocol as a mutable `P`, if it is one.
    ///
    /// # Examples
    /// ```
    /// use fio_reactor::Protocol;
    /// struct Counter(u32);
    /// impl Protocol for Counter {}
    /// let mut protocol: Box<dyn Protocol> = Box::new(Counter(7));
    /// if let Some(counter) = protocol.downcast_mut::<Counter>() {
    ///     counter.0 += 1;
    /// }
    /// assert_eq!(protocol.downcast_ref::<Counter>().map(|counter| counter.0), Some(8));
    /// ```
    pub fn downcast_mut<P: Protocol>(&mut self) -> Option<&mut P> {
        (self as &mut dyn Any).downcast_mut()
    }
}

/// The events [`force_event`](crate::force_event) can schedule.
///
/// # Examples
/// ```
/// use fio_reactor::IoEvent;
/// assert_ne!(IoEvent::OnData, IoEvent::OnReady);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoEvent {
    /// Run `on_data` (and resume a suspended connection).
    OnData,
    /// Run `on_ready`.
    OnReady,
    /// Run `on_timeout`.
    OnTimeout,
}

/// A timeout handler that only keeps the connection alive (facil.io's `FIO_PING_ETERNAL`):
/// call it from [`Protocol::on_timeout`].
///
/// # Examples
/// ```
/// use fio_reactor::{Protocol, Uuid};
///
/// struct Forever;
///
/// impl Protocol for Forever {
///     fn on_timeout(&mut self, uuid: Uuid) {
///         fio_reactor::ping_eternal(uuid);
///     }
/// }
///
/// // Attaching to a uuid that isn't open fails (and runs the protocol's on_close).
/// assert!(fio_reactor::attach(Uuid::from_parts(0, 0), Forever).is_err());
/// ```
pub fn ping_eternal(uuid: Uuid) {
    let _ = crate::touch(uuid);
}
