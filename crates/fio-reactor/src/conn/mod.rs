//! Connections: uuids, protocols, reading and writing, closing, timeouts.
//!
//! A connection belongs to the reactor thread that opened it (accepted it, connected it, or
//! had it attached); every callback of its protocol runs there. The free functions take a
//! [`Uuid`] and work from any thread: the process-wide table says which thread owns the
//! connection, and a call from another thread is routed to the owner's inbox (and wakes it),
//! so it takes effect on the owner's next tick, in order. [`read`] and [`pending`] answer
//! about the owner's queues and therefore only work on the owner (inside the callbacks).

mod api;
mod connect;
mod dispatch;
mod listen;
mod protocol;
mod shutdown;
mod state;
mod table;

pub use api::{
    attach, attach_fd, close, detach, fd2uuid, force_close, force_event, is_closed, is_valid,
    local_addr, peer_addr, pending, read, suspend, timeout_get, timeout_set, touch, write, write2,
};
pub use connect::{ConnectArgs, connect};
pub use listen::{ListenArgs, listen};
pub use protocol::{IoEvent, Protocol, ping_eternal};

pub(crate) use dispatch::{dispatch, has_work, next_deadline, tick};
pub(crate) use shutdown::{begin as begin_shutdown, finish as finish_shutdown, progress};
pub(crate) use state::Conns;
