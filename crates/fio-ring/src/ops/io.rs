//! File and stream operations: nop, read/write (plain and vectored), fsync, splice, openat,
//! statx and close.

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use io_uring::{opcode, types};

use super::{Op, Resources, raw};
use crate::buf::{IoBuf, KernelBox, WriteBuf, iovec};
use crate::error::Error;
use crate::features::OpKind;

/// The most buffers one vectored operation takes (`IOV_MAX` on Linux).
pub const MAX_IOVECS: usize = 1024;

impl Op {
    /// Does nothing; completes with `Ok(0)`. Useful to measure the ring's own overhead or to
    /// get a callback on the next tick.
    ///
    /// # Examples
    /// ```
    /// use fio_ring::{Op, Ring, RingConfig};
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// ring.submit(Op::nop(), |_, completion| assert_eq!(completion.result().ok(), Some(0)))?;
    /// assert_eq!(ring.wait(None)?, 1);
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    pub fn nop() -> Op {
        Op::new(opcode::Nop::new().build(), Resources::None, OpKind::Nop)
    }

    /// Reads from `fd` into the unfilled part of `buf` (`pread(2)` at `offset`, or the
    /// current position / stream when `offset` is `None`). The completion's
    /// [`take_read_buf`](crate::Completion::take_read_buf) returns `buf` with its length grown
    /// by the bytes read.
    pub fn read(fd: impl AsFd, buf: impl Into<IoBuf>, offset: Option<u64>) -> Op {
        let mut buf = buf.into();
        let (ptr, len) = buf.spare_mut();
        let entry = opcode::Read::new(raw(fd), ptr, len)
            .offset(super::offset(offset))
            .build();
        Op::new(entry, Resources::Read(buf), OpKind::Read)
    }

    /// Writes the unwritten bytes of `buf` to `fd` (`pwrite(2)` at `offset`, or the current
    /// position / stream when `None`). The result is the byte count, which may be short; the
    /// completion gives `buf` back through [`take_write_buf`](crate::Completion::take_write_buf).
    pub fn write(fd: impl AsFd, buf: impl Into<WriteBuf>, offset: Option<u64>) -> Op {
        let buf = buf.into();
        let (ptr, len) = buf.pending();
        let entry = opcode::Write::new(raw(fd), ptr, len)
            .offset(super::offset(offset))
            .build();
        Op::new(entry, Resources::Write(buf), OpKind::Write)
    }

    /// Reads into several buffers in order (`preadv(2)`); each buffer's unfilled part is one
    /// `iovec`. The completion returns them with lengths set through
    /// [`take_read_bufs`](crate::Completion::take_read_bufs).
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when more than [`MAX_IOVECS`] buffers are given.
    pub fn readv(fd: impl AsFd, bufs: Vec<IoBuf>, offset: Option<u64>) -> Result<Op, Error> {
        check_iovec_count(bufs.len())?;
        let mut bufs = bufs;
        let iovecs: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|buf| {
                let (ptr, len) = buf.spare_mut();
                iovec(ptr, len)
            })
            .collect();
        let entry = opcode::Readv::new(raw(fd), iovecs.as_ptr(), iovecs.len() as u32)
            .offset(super::offset(offset))
            .build();
        Ok(Op::new(
            entry,
            Resources::ReadVectored(bufs, iovecs),
            OpKind::Readv,
        ))
    }

    /// Writes several buffers in order (`pwritev(2)`). The completion returns them, unadvanced,
    /// through [`take_write_bufs`](crate::Completion::take_write_bufs).
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when more than [`MAX_IOVECS`] buffers are given.
    pub fn writev(fd: impl AsFd, bufs: Vec<WriteBuf>, offset: Option<u64>) -> Result<Op, Error> {
        check_iovec_count(bufs.len())?;
        let iovecs = write_iovecs(&bufs);
        let entry = opcode::Writev::new(raw(fd), iovecs.as_ptr(), iovecs.len() as u32)
            .offset(super::offset(offset))
            .build();
        Ok(Op::new(
            entry,
            Resources::WriteVectored(bufs, iovecs),
            OpKind::Writev,
        ))
    }

    /// Flushes `fd` to storage (`fsync(2)`, or `fdatasync(2)` when `data_only`).
    pub fn fsync(fd: impl AsFd, data_only: bool) -> Op {
        let flags = if data_only {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        let entry = opcode::Fsync::new(raw(fd)).flags(flags).build();
        Op::new(entry, Resources::None, OpKind::Fsync)
    }

    /// Moves up to `len` bytes from `fd_in` to `fd_out` (`splice(2)`); one side must be a
    /// pipe. Offsets apply to the non-pipe side; `None` means the current position.
    pub fn splice(
        fd_in: impl AsFd,
        off_in: Option<u64>,
        fd_out: impl AsFd,
        off_out: Option<u64>,
        len: u32,
    ) -> Op {
        let splice_offset = |off: Option<u64>| off.map_or(-1, |off| off as i64);
        let entry = opcode::Splice::new(
            raw(fd_in),
            splice_offset(off_in),
            raw(fd_out),
            splice_offset(off_out),
            len,
        )
        .build();
        Op::new(entry, Resources::None, OpKind::Splice)
    }

    /// Opens `path` (`openat(2)`, relative to `dir` or the working directory). `O_CLOEXEC` is
    /// always added. The completion's [`take_fd`](crate::Completion::take_fd) returns the new
    /// descriptor; if nobody takes it, it is closed.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when `path` contains a NUL byte.
    pub fn openat(
        dir: Option<&dyn AsFd>,
        path: impl AsRef<Path>,
        flags: i32,
        mode: u32,
    ) -> Result<Op, Error> {
        let path = c_path(path.as_ref())?;
        let entry = opcode::OpenAt::new(dir_fd(dir), path.as_ptr())
            .flags(flags | libc::O_CLOEXEC)
            .mode(mode)
            .build();
        Ok(Op::new(entry, Resources::Path(path), OpKind::OpenAt))
    }

    /// Opens `path` with typed [`OpenFlags`](crate::OpenFlags) (`openat(2)`, relative to
    /// `dir` or the working directory); `mode` (e.g. `0o644`) applies when a file is created.
    /// Same as [`openat`](Self::openat) with `flags.bits()`.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when `path` contains a NUL byte.
    pub fn open(
        dir: Option<&dyn AsFd>,
        path: impl AsRef<Path>,
        flags: crate::OpenFlags,
        mode: u32,
    ) -> Result<Op, Error> {
        Op::openat(dir, path, flags.bits(), mode)
    }

    /// Reads the basic metadata of `path` (`statx(2)` with `STATX_BASIC_STATS`, following
    /// symbolic links); [`take_stat`](crate::Completion::take_stat) returns it as a
    /// [`FileStat`](crate::FileStat).
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when `path` contains a NUL byte.
    pub fn stat(dir: Option<&dyn AsFd>, path: impl AsRef<Path>) -> Result<Op, Error> {
        Op::statx(dir, path, 0, libc::STATX_BASIC_STATS)
    }

    /// Reads file metadata (`statx(2)`, relative to `dir` or the working directory);
    /// [`take_statx`](crate::Completion::take_statx) returns it. `flags` are `AT_*` flags,
    /// `mask` the `STATX_*` fields wanted (both from the re-exported [`libc`](crate::libc));
    /// [`Op::stat`] is the typed short form.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when `path` contains a NUL byte.
    pub fn statx(
        dir: Option<&dyn AsFd>,
        path: impl AsRef<Path>,
        flags: i32,
        mask: u32,
    ) -> Result<Op, Error> {
        let path = c_path(path.as_ref())?;
        let statx = KernelBox::new(MaybeUninit::<libc::statx>::zeroed());
        let buffer = statx.as_ptr().cast::<types::statx>();
        let entry = opcode::Statx::new(dir_fd(dir), path.as_ptr(), buffer)
            .flags(flags)
            .mask(mask)
            .build();
        Ok(Op::new(entry, Resources::Statx(path, statx), OpKind::Statx))
    }

    /// Closes `fd` in the kernel (`close(2)`); ownership passes to the ring on submit.
    pub fn close(fd: OwnedFd) -> Op {
        let entry = opcode::Close::new(raw(&fd)).build();
        Op::new(entry, Resources::Close(Some(fd)), OpKind::Close)
    }
}

/// The `iovec`s of write sources, each over its unwritten bytes.
pub(super) fn write_iovecs(bufs: &[WriteBuf]) -> Vec<libc::iovec> {
    let mut iovecs = Vec::with_capacity(bufs.len());
    fill_write_iovecs(bufs, &mut iovecs);
    iovecs
}

/// [`write_iovecs`] into `iovecs` (cleared first), reusing its capacity.
pub(super) fn fill_write_iovecs(bufs: &[WriteBuf], iovecs: &mut Vec<libc::iovec>) {
    iovecs.clear();
    iovecs.extend(bufs.iter().map(|buf| {
        let (ptr, len) = buf.pending();
        iovec(ptr, len)
    }));
}

/// Refuses vectors the kernel would reject with `EINVAL`.
pub(super) fn check_iovec_count(count: usize) -> Result<(), Error> {
    if count > MAX_IOVECS {
        return Err(Error::InvalidArgument {
            reason: "more than 1024 buffers in one vectored operation",
        });
    }
    Ok(())
}

fn c_path(path: &Path) -> Result<CString, Error> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidArgument {
        reason: "path contains a NUL byte",
    })
}

fn dir_fd(dir: Option<&dyn AsFd>) -> types::Fd {
    types::Fd(dir.map_or(libc::AT_FDCWD, |dir| dir.as_fd().as_raw_fd()))
}
