//! Safe wrappers over the Linux system calls the fio workspace needs.
//!
//! Layer: the bottom of the workspace. `fio-sys` depends only on `libc` (plus `thiserror` for
//! the URL parser's error); every crate above it (`fio-ring`, `fio-socket`, `fio-reactor`,
//! `fio-cluster`) reaches the operating system through it, so this is the one place outside
//! the ring memory in `fio-ring` and the pools in `fio-buffer` that calls libc directly, and
//! every call goes through one macro, `syscall!`, that maps failures to `errno`.
//!
//! Wrappers are safe wherever their argument types carry the precondition (`BorrowedFd<'_>`,
//! slices, `OwnedFd` out) and return [`std::io::Result`]. Two things cannot be made safe that
//! way and are `unsafe fn`: [`fork_unchecked`] (a child of a multithreaded process is limited
//! to async-signal-safe calls) and [`set_signal_handler`] (the handler must be
//! async-signal-safe). Each has a safe counterpart: [`fork`] checks that the caller is the
//! only thread, and [`catch_signal`] installs an audited handler that records signals.
//!
//! What is here:
//!
//! - sockets: [`socket`], [`bind`], [`listen`], [`connect`], [`accept`],
//!   [`set_nonblocking`], options ([`set_nodelay`], [`set_reuse_port`],
//!   [`set_send_buffer_size`], [`take_error`]...), addresses ([`SockAddr`], [`peer_addr`],
//!   [`local_addr`]), systemd socket activation ([`listen_fds`], [`is_listening`]);
//! - I/O: [`recv`], [`recv_from`], [`send`], [`send_to`], [`sendmsg`], [`writev`], [`readv`],
//!   [`sendfile`], [`shutdown`], [`poll`];
//! - URLs: [`Url`] parses `tcp://`, `udp://`, `tls://`, `unix://` and short forms;
//!   [`server_socket`] and [`client_socket`] turn one into a socket;
//! - readiness: [`Epoll`], an epoll set with a cross-thread [`Waker`], whose
//!   [`EpollRegistration`]s leave the set before their descriptors close;
//! - wake-ups, time and memory: [`eventfd`], [`timerfd`], [`pipe`], [`monotonic_nanos`],
//!   [`Mmap`], [`SharedMap`];
//! - limits: [`raise_nofile_limit`], [`memlock_limit`], [`core_count`], [`host_name`],
//!   [`kernel_version`];
//! - processes and signals: [`fork`], [`waitpid`], [`kill`], [`parent_pid`],
//!   [`set_parent_death_signal`], [`at_exit`], [`catch_signal`], [`ignore_sigpipe`];
//! - seccomp deny-lists for tests: [`forbid_io_uring`], [`deny_syscalls_with_eperm`].
//!
//! Linux only.
//!
//! # Examples
//! ```
//! use std::os::fd::AsFd;
//! use fio_sys::{RecvFlags, SendFlags, Url};
//!
//! let server = fio_sys::server_socket(&Url::parse("tcp://127.0.0.1:0")?)?;
//! let url = Url::parse(&format!("tcp://{}", fio_sys::local_addr(server.as_fd())?))?;
//! let (client, _) = fio_sys::client_socket(&url)?;
//! fio_sys::poll(server.as_fd(), fio_sys::PollFlags::IN, Some(std::time::Duration::from_secs(10)))?;
//! let (conn, _peer) = fio_sys::accept(server.as_fd())?;
//! fio_sys::poll(client.as_fd(), fio_sys::PollFlags::OUT, Some(std::time::Duration::from_secs(10)))?;
//! fio_sys::send(client.as_fd(), b"hi", SendFlags::NOSIGNAL)?;
//! fio_sys::poll(conn.as_fd(), fio_sys::PollFlags::IN, Some(std::time::Duration::from_secs(10)))?;
//! let mut buf = [0u8; 2];
//! assert_eq!(fio_sys::recv(conn.as_fd(), &mut buf, RecvFlags::empty())?, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![doc(test(attr(deny(warnings))))]

mod activation;
mod addr;
mod clock;
mod endpoint;
mod epoll;
mod event;
mod flags;
mod io;
mod limits;
mod memory;
mod process;
mod seccomp;
mod signal;
mod socket;
mod sockopt;
mod syscall;
mod url;

#[doc(hidden)]
pub mod fuzzing;
pub mod system;

pub use activation::listen_fds;
pub use addr::{Domain, RawSockAddr, SockAddr, UNIX_PATH_MAX, local_addr, peer_addr};
pub use clock::monotonic_nanos;
pub use endpoint::{client_socket, resolve, server_socket};
pub use epoll::{Epoll, EpollEvent, EpollRegistration, EventBuffer, Interest, Waker};
pub use event::{eventfd, eventfd_read, eventfd_write, pipe, timerfd, timerfd_read, timerfd_set};
pub use io::{
    PollFlags, RecvFlags, SendFlags, poll, readv, recv, recv_from, send, send_to, sendfile,
    sendmsg, shutdown, writev,
};
pub use limits::{Limit, core_count, host_name, memlock_limit, nofile_limit, raise_nofile_limit};
pub use memory::{Mmap, SharedMap, page_size};
pub use process::{
    Fork, Pid, WaitOptions, at_exit, exit_immediately, fork, fork_unchecked, kill,
    parent_death_signal, parent_pid, set_parent_death_signal, thread_count, waitpid,
};
pub use seccomp::{IO_URING_SYSCALLS, deny_syscalls_with_eperm, forbid_io_uring};
pub use signal::{
    ActionKind, SavedAction, Signal, SignalSet, catch_signal, ignore_signal, ignore_sigpipe,
    reset_signal, set_signal_handler, set_signal_wake_fd, signal_action, take_pending_signals,
};
pub use socket::{
    ConnectStatus, SockType, accept, bind, connect, is_cloexec, is_nonblocking, listen,
    set_blocking, set_nonblocking, socket,
};
pub use sockopt::{
    is_listening, nodelay, recv_buffer_size, reuse_addr, reuse_port, send_buffer_size, set_nodelay,
    set_recv_buffer_size, set_reuse_addr, set_reuse_port, set_send_buffer_size, take_error,
};
pub use system::{KernelVersion, kernel_version};
pub use url::{DEFAULT_PORT, Endpoint, Host, Transport, Url, UrlError};
