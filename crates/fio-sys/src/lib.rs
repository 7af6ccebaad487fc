//! Safe wrappers over the Linux system calls the fio workspace needs.
//!
//! Layer: the bottom of the workspace. `fio-sys` depends only on `libc`; every crate above it
//! (`fio-ring`, `fio-socket`, `fio-reactor`, `fio-cluster`) reaches the operating system through
//! it, so this is the one place outside the ring memory in `fio-ring` that calls libc directly.
//!
//! Wrappers are safe wherever their argument types carry the precondition (`BorrowedFd<'_>`,
//! slices, `OwnedFd` out) and return [`std::io::Result`].
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![doc(test(attr(deny(warnings))))]

mod event;
mod syscall;

pub mod system;

pub use event::{eventfd, eventfd_read, eventfd_write, pipe};
pub use system::{KernelVersion, kernel_version};
