//! Connections: uuids, protocols, reading and writing, closing, timeouts.
//!
//! A connection belongs to one reactor thread (accepted connections are spread over the
//! threads in turn; a connect or attach belongs to the thread that made it); every callback
//! of its protocol runs there. The free functions take a [`Uuid`] and work from any thread.
//! The crate docs' "Threads and callbacks" is the user-facing account of this.
//!
//! On the owning thread (inside the callbacks, the common case) a call finds the connection
//! in the thread's own table, indexed by the descriptor the uuid carries and checked against
//! the whole uuid: no lock, no hash. `write(&[u8])` there copies straight into the engine's
//! pooled send buffers, and a request's round trip allocates nothing once the pools are warm
//! (`tests/alloc_free.rs`). From another thread the process-wide table (by descriptor, with
//! each descriptor's generation) says which thread owns the connection, and the call is
//! routed to the owner's inbox (and wakes it), so it takes effect on the owner's next tick,
//! in order. [`read`] and [`pending`] answer about the owner's queues and therefore only work
//! on the owner (inside the callbacks).

mod api;
mod connect;
mod datagram;
mod dispatch;
mod env;
mod flush;
mod hook;
mod listen;
mod notify;
mod outbox;
mod protocol;
mod shutdown;
mod socket;
mod state;
mod table;
mod task;
mod tls;

pub use api::{
    TIMEOUT_MAX, attach, attach_fd, close, detach, fd2uuid, force_close, force_event, is_closed,
    is_valid, local_addr, peer_addr, pending, read, sendfile, suspend, timeout_get, timeout_set,
    touch, write, write2,
};
pub use connect::{ConnectArgs, RECONNECT_DELAY, connect};
pub use datagram::{read_from, write_to};
pub use env::{uuid_env_remove, uuid_env_set, uuid_env_set_with, uuid_env_unset};
pub use flush::{flush, flush_all, flush_strong};
pub use hook::{DefaultHook, HookIo, RwHook, rw_hook_set};
pub use listen::{ListenArgs, listen};
pub use notify::write_notify;
pub use outbox::{FileChunk, Payload};
pub use protocol::{IoEvent, Protocol, ShutdownDelay, ShutdownResponse, ping_eternal};
pub use socket::{
    SocketRole, accept, accept_uuid, capa, local_host_name, set_non_block, socket, socket_uuid,
};
pub use task::{ProtocolGuard, defer_io_task, protocol_try_lock};
pub use tls::Tls;

pub(crate) use dispatch::{dispatch_at, has_work, next_deadline, tick};
pub(crate) use shutdown::{begin as begin_shutdown, finish as finish_shutdown, progress};
pub(crate) use state::{Conns, PlainData};
