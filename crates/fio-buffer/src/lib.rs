//! FastBuffer pools: fixed-size I/O buffers handed out in O(1) from page-aligned arenas.
//!
//! A [`BufferPool`] holds buffers of one size, allocated in zeroed, page-aligned chunks as
//! demand grows, up to a configured cap ([`PoolConfig`]). Chunks are anonymous mappings, so
//! only the pages buffers were written to are resident. [`BufferPool::take`] pops a free
//! buffer from a lock-free stack; dropping the unique [`Buffer`] handle pushes it back. A
//! [`SharedBuffer`] is a reference-counted, read-only handle for one payload that feeds
//! several sends; its slot returns when the last clone drops. [`SizeClasses`] groups pools of
//! increasing sizes and serves each request from the smallest that fits. At the cap a pool
//! returns [`Error::Exhausted`], never a null or dangling buffer.
//!
//! On top of the pools sit the engine-neutral socket queues both of fio's engines use: a
//! [`SendQueue`] of outgoing [`Chunk`]s (pooled, shared, owned or static bytes), lent to one
//! send at a time and advanced by what the kernel took, and a [`RecvQueue`] of received
//! buffers whose [`WaterMarks`] tell the engine when to stop and resume receiving. They do no
//! I/O themselves: fio-socket feeds them from io_uring, fio-reactor's epoll engine from
//! `writev(2)` and `recv(2)`.
//!
//! # Memory stability
//!
//! fio-ring hands buffer addresses to the kernel, so this crate guarantees: **a buffer's
//! memory never moves and stays valid for as long as any handle to it exists**, even if every
//! [`BufferPool`] handle has been dropped, because each [`Buffer`] and [`SharedBuffer`] keeps
//! its pool's arenas alive. Arenas are never freed or reallocated while the pool's shared
//! state lives; growth only adds chunks.
//!
//! # Threads
//!
//! [`BufferPool`], [`Buffer`] and [`SharedBuffer`] are all `Send + Sync`. A buffer received on
//! one reactor thread may be dropped on another, and a shared payload may feed sends on
//! several threads, so giving back must work from anywhere. Take and give-back are a lock-free
//! Treiber stack with an ABA tag; only growth takes a mutex.
//!
//! # Examples
//!
//! ```
//! use fio_buffer::{BufferPool, PoolConfig};
//!
//! let pool = BufferPool::new(PoolConfig::default())?;
//! let mut buffer = pool.take()?;
//! buffer.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
//! let payload = buffer.into_shared();
//! let for_second_peer = payload.clone();
//! assert_eq!(&payload[..4], b"GET ");
//! drop((payload, for_second_peer));
//! assert_eq!(pool.stats().in_use, 0);
//! # Ok::<(), fio_buffer::Error>(())
//! ```

#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![doc(test(attr(deny(warnings))))]

mod arena;
mod buffer;
mod config;
mod counting;
mod error;
mod free_list;
mod pool;
mod primitive;
mod queue;
mod shared;
mod size_classes;
mod spares;

pub use buffer::Buffer;
pub use config::{ARENA_ALIGN, BUFFER_ALIGN, MAX_BUFFERS_LIMIT, MAX_CHUNKS_LIMIT, PoolConfig};
pub use counting::CountingAllocator;
pub use error::Error;
pub use pool::{BufferPool, PoolStats};
pub use queue::{Chunk, Lent, RecvQueue, SendPin, SendQueue, WaterMarks};
pub use shared::SharedBuffer;
pub use size_classes::SizeClasses;
pub use spares::SpareBuffers;
