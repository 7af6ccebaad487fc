//! The [`Protocol`] trait: a connection's callbacks.

use std::any::{Any, TypeId};
use std::cell::Cell;
use std::time::Duration;

use crate::error::Error;
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
/// use fio_reactor::{Concurrency, ListenArgs, Protocol, Reactor, StartArgs, Uuid};
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
/// let reactor = Reactor::new(StartArgs::new().threads(Concurrency::ONE).signals(false));
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
    /// While bytes stay buffered and each call reads some, `on_data` is called again once the
    /// other connections with data have had their turn (in the same tick while its budget
    /// lasts, before the thread waits for I/O again). After the peer's end of stream, once the buffered bytes are consumed, the
    /// connection closes gracefully (queued writes are still delivered).
    fn on_data(&mut self, uuid: Uuid) {
        let _ = uuid;
    }

    /// Everything written so far was sent (the send queue drained); also called once when a
    /// connection opens, as facil.io does. The default does nothing, and a protocol that keeps
    /// it costs no call per drained send: the reactor notices the default on its first call.
    fn on_ready(&mut self, uuid: Uuid) {
        let _ = uuid;
        // Says which type's default ran, for `default_on_ready_ran`.
        DEFAULT_ON_READY.set(Some(TypeId::of::<Self>()));
    }

    /// The reactor is stopping: say what happens to this connection (see
    /// [`ShutdownResponse`]). The default closes it now; queued data still gets the 8-second
    /// grace period to drain.
    fn on_shutdown(&mut self, uuid: Uuid) -> ShutdownResponse {
        let _ = uuid;
        ShutdownResponse::CloseNow
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

thread_local! {
    /// The type whose default [`Protocol::on_ready`] ran last on this thread, until
    /// [`default_on_ready_ran`] takes it.
    static DEFAULT_ON_READY: Cell<Option<TypeId>> = const { Cell::new(None) };
}

/// Whether the `on_ready` call that just returned on `protocol` was the trait's default (a
/// no-op). Compares types, not just "a default ran": a protocol whose own `on_ready` forwards
/// to another protocol's default is not taken for one; and a type whose default was recorded
/// elsewhere earlier has no `on_ready` of its own, so the answer is right even then.
pub(crate) fn default_on_ready_ran(protocol: &dyn Protocol) -> bool {
    DEFAULT_ON_READY.take() == Some((protocol as &dyn Any).type_id())
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

/// What [`Protocol::on_shutdown`] asks for when the reactor stops (facil.io's `uint8_t`: 0,
/// 1..=254 seconds, or 255).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use fio_reactor::{Error, Protocol, ShutdownDelay, ShutdownResponse, Uuid};
///
/// /// Lets a client finish for up to 5 seconds after the reactor is told to stop.
/// struct Patient;
///
/// impl Protocol for Patient {
///     fn on_shutdown(&mut self, _uuid: Uuid) -> ShutdownResponse {
///         ShutdownResponse::CloseAfter(ShutdownDelay::from_secs(5).expect("1..=254"))
///     }
/// }
///
/// let mut protocol = Patient;
/// let asked = protocol.on_shutdown(Uuid::from_parts(0, 0));
/// assert_eq!(asked, ShutdownResponse::close_after(Duration::from_secs(5))?);
///
/// // Only delays facil.io could express are accepted.
/// assert!(ShutdownResponse::close_after(Duration::from_secs(254)).is_ok());
/// assert!(matches!(
///     ShutdownResponse::close_after(Duration::from_secs(255)),
///     Err(Error::ShutdownDelayOutOfRange(_))
/// ));
/// assert_eq!(ShutdownResponse::default(), ShutdownResponse::CloseNow);
/// # Ok::<(), fio_reactor::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ShutdownResponse {
    /// Close gracefully now; queued data gets the 8-second grace period to drain (C: 0).
    #[default]
    CloseNow,
    /// Keep serving for the delay, then close gracefully with the 8-second grace period
    /// (C: 1..=254 seconds).
    CloseAfter(ShutdownDelay),
    /// Stay open until every other connection of the reactor, on any of its threads, has
    /// closed; then close abruptly (C: 255).
    KeepOpen,
}

impl ShutdownResponse {
    /// facil.io's return value, as a C port has it: 0 is [`CloseNow`](Self::CloseNow),
    /// 1..=254 seconds [`CloseAfter`](Self::CloseAfter), 255 [`KeepOpen`](Self::KeepOpen).
    ///
    /// # Examples
    /// ```
    /// use fio_reactor::{ShutdownDelay, ShutdownResponse};
    /// assert_eq!(ShutdownResponse::from_c(0), ShutdownResponse::CloseNow);
    /// assert_eq!(
    ///     ShutdownResponse::from_c(30),
    ///     ShutdownResponse::CloseAfter(ShutdownDelay::from_secs(30).expect("1..=254")),
    /// );
    /// assert_eq!(ShutdownResponse::from_c(255), ShutdownResponse::KeepOpen);
    /// ```
    pub const fn from_c(code: u8) -> Self {
        match ShutdownDelay::from_secs(code) {
            Some(delay) => Self::CloseAfter(delay),
            None if code == 0 => Self::CloseNow,
            None => Self::KeepOpen,
        }
    }

    /// [`CloseAfter`](Self::CloseAfter) `delay`.
    ///
    /// # Errors
    /// - [`Error::ShutdownDelayOutOfRange`] unless `delay` is above zero and at most
    ///   [`ShutdownDelay::MAX`].
    pub fn close_after(delay: Duration) -> Result<Self, Error> {
        ShutdownDelay::new(delay).map(Self::CloseAfter)
    }
}

/// How long a connection keeps serving after the reactor was told to stop: above zero, at most
/// 254 seconds ([`ShutdownDelay::MAX`], facil.io's largest delay), so every delayed close ends
/// before a [`ShutdownResponse::KeepOpen`] connection gives up waiting.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use fio_reactor::ShutdownDelay;
/// let delay = ShutdownDelay::new(Duration::from_millis(1500))?;
/// assert_eq!(delay.get(), Duration::from_millis(1500));
/// assert_eq!(ShutdownDelay::from_secs(0), None);
/// assert_eq!(ShutdownDelay::from_secs(255), None);
/// assert!(ShutdownDelay::new(Duration::ZERO).is_err());
/// # Ok::<(), fio_reactor::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShutdownDelay(Duration);

impl ShutdownDelay {
    /// The longest delay: 254 seconds (C: 255 meant "linger", not a delay).
    pub const MAX: Duration = Duration::from_secs(254);

    /// A delay of `delay`. Fractions of a second are kept, but delayed closes are checked
    /// once a second (as facil.io's were), so a close can come up to a second after its delay.
    ///
    /// # Errors
    /// - [`Error::ShutdownDelayOutOfRange`] when `delay` is zero (use
    ///   [`ShutdownResponse::CloseNow`]) or above [`MAX`](Self::MAX).
    pub fn new(delay: Duration) -> Result<Self, Error> {
        if delay.is_zero() || delay > Self::MAX {
            return Err(Error::ShutdownDelayOutOfRange(delay));
        }
        Ok(Self(delay))
    }

    /// A delay of `seconds` (1..=254, as facil.io's return value), or `None` outside that.
    pub const fn from_secs(seconds: u8) -> Option<Self> {
        match seconds {
            1..=254 => Some(Self(Duration::from_secs(seconds as u64))),
            _ => None,
        }
    }

    /// The delay.
    pub const fn get(self) -> Duration {
        self.0
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
