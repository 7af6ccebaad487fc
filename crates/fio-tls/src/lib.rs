//! TLS for `fio-reactor` as read/write hooks, on rustls.
//!
//! Layer: above `fio-reactor`.
//!
//! facil.io secures a connection by giving it read/write hooks (its `fio_tls.h`); fio-tls is
//! that provider on rustls with the *ring* crypto provider. A [`Tls`] goes into the `tls`
//! slot of [`ListenArgs`](fio_reactor::ListenArgs::tls) and
//! [`ConnectArgs`](fio_reactor::ConnectArgs::tls) (a `tls://` URL requires one); each new
//! connection then gets a hook that decrypts what the engine received when the protocol
//! calls [`read`](fio_reactor::read) and encrypts what it writes into the send queue. The
//! session is rustls's unbuffered API over the reactor's buffers: records are decrypted in
//! the receive buffers they landed in (a record split across two buffers is joined by one
//! copy into a per-connection record buffer) and encrypted into pooled send buffers. The
//! protocol only ever sees plaintext, and what it writes before the handshake ends waits in
//! the session, counted by [`pending`](fio_reactor::pending) and waited for by
//! [`flush_strong`](fio_reactor::flush_strong) and a graceful close. A graceful [`close`](fio_reactor::close) sends close_notify first; a peer's
//! close_notify is answered and closes the connection; a bad record gets the alert TLS calls
//! for, and closes only that connection.
//!
//! Build a [`Tls`] with [`TlsBuilder`] (certificates per SNI name, ALPN protocols with a
//! callback each, trusted certificates for server and client-certificate checks), from PEM
//! files or a development self-signed certificate ([`Identity`]), or wrap the rustls
//! `ServerConfig`/`ClientConfig` you already have ([`Tls::server`], [`Tls::client`]).
//!
//! # Examples
//! ```
//! use fio_reactor::{ListenArgs, Reactor, StartArgs};
//!
//! let identity = fio_tls::Identity::self_signed(&["localhost"])?;
//! println!("certificate SHA-256 {}", identity.fingerprint());
//! let tls = fio_tls::TlsBuilder::new().cert_add(None, identity).build()?;
//! let reactor = Reactor::new(StartArgs::default());
//! let listener = reactor.listen(ListenArgs::new("tls://127.0.0.1:0", |uuid| {
//!     let _ = fio_reactor::close(uuid);
//! }).tls(tls))?;
//! assert!(fio_reactor::local_addr(listener).is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod config;
mod deadline;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod hook;
mod identity;

pub use config::{AlpnCallback, HANDSHAKE_TIMEOUT, Tls, TlsBuilder};
pub use error::Error;
pub use identity::Identity;
pub use rustls;
