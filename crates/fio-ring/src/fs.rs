//! Typed forms for file operations, so a user of fio-ring alone needs no `libc`:
//! [`OpenFlags`] for [`Op::open`](crate::Op::open) and [`FileStat`] from
//! [`Completion::take_stat`](crate::Completion::take_stat).

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::time::{Duration, SystemTime};

/// Flags for [`Op::open`](crate::Op::open): an access mode (`READ`, `WRITE`, `READ_WRITE`)
/// combined with `|` with creation and status flags. `O_CLOEXEC` is always added by the ring.
///
/// # Examples
/// ```
/// use fio_ring::OpenFlags;
/// let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
/// assert!(flags.contains(OpenFlags::CREATE));
/// assert!(!flags.contains(OpenFlags::APPEND));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpenFlags(i32);

impl OpenFlags {
    /// Open for reading only (`O_RDONLY`).
    pub const READ: OpenFlags = OpenFlags(libc::O_RDONLY);
    /// Open for writing only (`O_WRONLY`).
    pub const WRITE: OpenFlags = OpenFlags(libc::O_WRONLY);
    /// Open for reading and writing (`O_RDWR`).
    pub const READ_WRITE: OpenFlags = OpenFlags(libc::O_RDWR);
    /// Create the file if it does not exist (`O_CREAT`); the mode argument applies.
    pub const CREATE: OpenFlags = OpenFlags(libc::O_CREAT);
    /// With `CREATE`: fail with `EEXIST` if the file exists (`O_EXCL`).
    pub const EXCLUSIVE: OpenFlags = OpenFlags(libc::O_EXCL);
    /// Truncate an existing regular file to length 0 (`O_TRUNC`).
    pub const TRUNCATE: OpenFlags = OpenFlags(libc::O_TRUNC);
    /// Every write appends (`O_APPEND`).
    pub const APPEND: OpenFlags = OpenFlags(libc::O_APPEND);
    /// Fail unless the path is a directory (`O_DIRECTORY`).
    pub const DIRECTORY: OpenFlags = OpenFlags(libc::O_DIRECTORY);
    /// Do not follow a symbolic link in the last component (`O_NOFOLLOW`).
    pub const NO_FOLLOW: OpenFlags = OpenFlags(libc::O_NOFOLLOW);

    /// The raw `O_*` bits, as [`Op::openat`](crate::Op::openat) takes them.
    pub const fn bits(self) -> i32 {
        self.0
    }

    /// Whether every bit of `other` is set in `self` (meaningless for `READ`, which is 0).
    pub const fn contains(self, other: OpenFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for OpenFlags {
    type Output = OpenFlags;
    fn bitor(self, rhs: OpenFlags) -> OpenFlags {
        OpenFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for OpenFlags {
    fn bitor_assign(&mut self, rhs: OpenFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for OpenFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpenFlags({:#o})", self.0)
    }
}

/// File metadata from [`Op::stat`](crate::Op::stat) (or any successful
/// [`Op::statx`](crate::Op::statx)), through [`Completion::take_stat`](crate::Completion::take_stat).
/// The full kernel record stays available as [`Completion::take_statx`](crate::Completion::take_statx).
///
/// # Examples
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use fio_ring::{Op, Ring, RingConfig};
///
/// let mut ring = Ring::new(RingConfig::new(8))?;
/// let size = Rc::new(Cell::new(None));
/// let sink = size.clone();
/// ring.submit(Op::stat(None, "Cargo.toml")?, move |_, mut done| {
///     sink.set(done.take_stat().map(|stat| (stat.size, stat.is_file())));
/// })?;
/// while !ring.is_idle() {
///     ring.wait(None)?;
/// }
/// let (len, is_file) = size.get().expect("statx failed");
/// assert!(is_file && len == std::fs::metadata("Cargo.toml")?.len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// Size in bytes.
    pub size: u64,
    /// File type and permission bits (`st_mode`: `0o100644` is a regular file, rw-r--r--).
    pub mode: u32,
    /// Last modification time.
    pub modified: SystemTime,
}

impl FileStat {
    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    /// The permission bits (`mode & 0o7777`).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }

    pub(crate) fn from_statx(statx: &libc::statx) -> FileStat {
        let nanos = Duration::from_nanos(u64::from(statx.stx_mtime.tv_nsec));
        let modified = match u64::try_from(statx.stx_mtime.tv_sec) {
            Ok(secs) => SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + nanos,
            Err(_) => {
                SystemTime::UNIX_EPOCH - Duration::from_secs(statx.stx_mtime.tv_sec.unsigned_abs())
                    + nanos
            }
        };
        FileStat {
            size: statx.stx_size,
            mode: u32::from(statx.stx_mode),
            modified,
        }
    }
}
