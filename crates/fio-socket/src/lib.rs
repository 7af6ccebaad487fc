//! FastSocket for Rust: asynchronous socket send and receive on `fio-ring` and `fio-buffer`.
//!
//! Layer: depends on `fio-ring`, `fio-buffer` and `fio-sys`; used by `fio-reactor`'s io_uring
//! engine. The engine-neutral queues a socket keeps ([`SendQueue`], [`RecvQueue`], [`Chunk`],
//! [`Lent`], [`WaterMarks`]) live in `fio-buffer`, where the reactor's epoll engine uses them
//! without io_uring; they are re-exported here under the same names, so
//! `fio_socket::Chunk` and `fio_buffer::Chunk` are one type:
//!
//! ```
//! let chunk: fio_socket::Chunk = fio_buffer::Chunk::from("same type");
//! assert_eq!(chunk.len(), 9);
//! ```
//!
//! # Model
//!
//! - A [`Socket`] lives on one [`Ring`](fio_ring::Ring) and is driven by its ticks. Every
//!   method that may submit work takes `&mut Ring`; the socket never owns the ring. Its event
//!   handler runs after each completion with the socket's state unborrowed, so it may call
//!   back into the socket ([`c_api`] maps the C API).
//! - **Receive.** Received buffers move, without copying, from the ring's provided-buffer group
//!   into a [`RecvQueue`]. A multishot receive is armed while the queue is at or below the
//!   low-water mark of [`WaterMarks`]; above it, one buffer at a time is received up to the
//!   high-water mark, and nothing above it: buffered bytes never exceed the high mark by more
//!   than one buffer once throttled (a multishot burst below the low mark is bounded by the
//!   group's size). `ENOBUFS` from a dry group is not an end of stream: fio-ring parks the
//!   receive and re-arms it when buffers come back. [`Socket::pause_receive`] stops the
//!   receive whatever the marks say, until resumed.
//! - **Transmit.** Data joins the socket's [`SendQueue`]; at the end of the tick the front
//!   chunks, up to `limit`, are lent to one `sendmsg(2)`. The completion gives them back and
//!   the queue advances by the count sent, so a short send continues from the first unsent
//!   byte, at once. At most one send is in flight per socket.
//! - **Close.** Graceful close drains the queue, shuts the write side down, cancels the
//!   receive and closes the descriptor through the ring once nothing is in flight.
//!
//! # Differences from the C FastSocket
//!
//! - Short sends continue instead of leaving a gap; inbound has backpressure; no null buffer
//!   is ever published (see the README).
//! - One gathered `sendmsg` per flush replaces linked `IO_LINK` batches.
//! - `Mode::AutoCork` sets `MSG_MORE` on every send that leaves data queued behind it (the
//!   C semantics: every send of a batch but the last), through fio-ring's
//!   [`SendFlags`](fio_ring::SendFlags); message mode never corks.
//! - Message mode receives through the ring's `recvmsg`: multishot from the buffer group
//!   (Linux 6.0, group buffers larger than
//!   [`Datagram::MULTISHOT_OVERHEAD`](fio_ring::Datagram::MULTISHOT_OVERHEAD)) under the same
//!   water marks as a stream, else one-shot into inbound-pool buffers, re-armed per
//!   datagram. No extra syscall per datagram, and each keeps its sender.
//! - The creation-time `POLLOUT` poll that notices a non-blocking connect's completion is
//!   left to `fio-reactor`, which connects through the ring.
//!
//! # Examples
//!
//! See [`Socket`], [`SocketStream`] and `examples/readme.rs`.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![doc(test(attr(deny(warnings))))]

pub mod c_api;
mod close;
mod config;
mod error;
mod event;
mod inbound;
mod outbound;
mod socket;
mod stream;

pub use config::{Mode, SocketConfig};
pub use error::Error;
pub use event::{CloseReason, Event};
pub use fio_buffer::{Chunk, Lent, RecvQueue, SendQueue, WaterMarks};
pub use socket::{EventHandler, SharedEventHandler, Socket, SocketStats};
pub use stream::{OwnedSocketStream, SocketStream};
