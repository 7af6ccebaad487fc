//! Engine-neutral socket queues over pooled buffers: what a connection still has to send
//! ([`SendQueue`] of [`Chunk`]s, lent to one send at a time as a [`Lent`]) and what it
//! received and the application has not read yet ([`RecvQueue`], bounded by [`WaterMarks`]).
//!
//! They live here, under both engines, because they depend only on this crate's buffers:
//! fio-socket drives them from io_uring completions, fio-reactor's epoll engine from
//! `writev(2)` and `recv(2)`. Neither queue does I/O, and neither is shared between threads.

mod recv;
mod send;

pub use recv::{RecvQueue, WaterMarks};
pub use send::{Chunk, Lent, SendPin, SendQueue};
