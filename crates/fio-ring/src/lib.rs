//! FastRing for Rust: a safe, batched io_uring layer with an in-flight table, provided-buffer
//! rings backed by [`fio_buffer`], timers and a cross-thread handle.
//!
//! Layer: depends on `fio-sys`, `fio-buffer` and the `io-uring` crate; used by `fio-socket`
//! and `fio-reactor`'s uring engine, and usable on its own for any io_uring work on files,
//! pipes and sockets.
//!
//! # Model
//!
//! - [`Ring::new`] tries the best setup flags and steps down; if io_uring is unusable it
//!   returns [`Error::Setup`] whose [`SetupRefusal`] tells the caller to fall back.
//! - An [`Op`] owns everything the kernel will touch. [`Ring::submit`] moves it into the
//!   in-flight table together with a handler; the table gives the resources back only with
//!   the operation's final [`Completion`], after `F_MORE` ends, after a zero-copy
//!   notification, after a cancel completed. `user_data` carries the slot and a generation,
//!   so stale completions are ignored and stale [`OpId`]s refused.
//! - [`Ring::wait`] is one tick: run the [`Ring::on_tick_end`] callbacks registered between
//!   ticks, stage, enter the kernel once (or not at all for a zero-timeout wait with nothing
//!   to submit or collect), dispatch, run the callbacks registered meanwhile, publish buffer
//!   groups, re-arm starved receives.
//! - Dropping a ring cancels what is in flight and waits (bounded) for it; memory the kernel
//!   may still use is leaked, never freed.
//!
//! # State in handlers
//!
//! A handler runs inside a later [`Ring::wait`], after `submit` returned, so it is `'static`
//! and owns what it uses: state one operation needs moves into its closure and on into the
//! operation it submits next; state shared by several handlers and the caller is an
//! `Rc<RefCell<_>>` (or `Rc<Cell<_>>`). A ring and its handlers stay on one thread, so no
//! lock is needed, and handlers run only inside `wait`: don't hold a `borrow_mut` across it.
//!
//! # Getting buffers back
//!
//! The names follow one rule across fio: `take_read_buf`/`take_write_buf` give back what *you
//! passed* to the operation, `take_buffer` (here, on `fio-buffer`'s `RecvQueue`) a *pooled*
//! [`Buffer`].
//!
//! - [`Completion::take_read_buf`] returns the *target you passed* to a read or receive (an
//!   [`IoBuf`]: your `Vec<u8>` or pooled [`Buffer`]), grown by the bytes read.
//! - [`Completion::take_buffer`] returns a *pooled* [`Buffer`]: the one the kernel picked from
//!   a buffer group (`recv_group`, multishot receives), or a pooled read target.
//!
//! # Examples
//! ```
//! use std::io::Write;
//! use std::{cell::RefCell, rc::Rc};
//! use fio_ring::{Op, Ring, RingConfig};
//!
//! let (reader, mut writer) = std::io::pipe()?;
//! writer.write_all(b"ping")?;
//! let mut ring = Ring::new(RingConfig::new(8))?;
//! let got = Rc::new(RefCell::new(Vec::new()));
//! let sink = got.clone();
//! ring.submit(Op::read(&reader, Vec::with_capacity(16), None), move |_, mut done| {
//!     *sink.borrow_mut() = done.take_read_buf().map(|buf| buf.into_vec()).unwrap_or_default();
//! })?;
//! while !ring.is_idle() {
//!     ring.wait(None)?; // one tick: submit, enter the kernel once, dispatch
//! }
//! assert_eq!(&got.borrow()[..], b"ping");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![doc(test(attr(deny(warnings))))]

mod buf;
mod completion;
mod config;
mod cq;
mod datagram;
mod dispatch;
mod enter;
mod error;
mod features;
mod fs;
mod handle;
mod handler;
mod inflight;
mod ops;
mod provider;
mod ring;
mod teardown;

pub use buf::{IoBuf, WriteBuf};
pub use completion::Completion;
pub use config::{MAX_ENTRIES, RingConfig, SetupFlags};
pub use datagram::Datagram;
pub use error::{Error, SetupRefusal};
pub use features::{Features, OpKind};
pub use fio_sys::KernelVersion;
pub use fs::{FileStat, OpenFlags};
pub use handle::{Job, RingHandle};
pub use inflight::OpId;
pub use ops::{AcceptFlags, MAX_IOVECS, Op, SendFlags, SendStorage};
pub use provider::{BufferGroup, BufferProvider, MAX_GROUP_ENTRIES};
pub use ring::{Handler, Ring, TickEnd, TickEndFlush};

/// The pool types receive buffers come from, and the send queue whose pins
/// [`Op::send_pinned`] sends from, so users need not depend on `fio-buffer`.
pub use fio_buffer::{
    Buffer, BufferPool, PoolConfig, SendPin, SendQueue, SharedBuffer, SpareBuffers,
};
/// The raw io_uring crate, for [`Ring::push_raw`] entries.
pub use io_uring;
/// The `libc` crate, for the raw `O_*`, `AT_*` and `STATX_*` constants of [`Op::openat`] and
/// [`Op::statx`] and the [`libc::statx`](struct@libc::statx) record of [`Completion::take_statx`]; the typed
/// forms are [`Op::open`], [`Op::stat`] and [`Completion::take_stat`].
pub use libc;
