//! Process limits and machine facts: `RLIMIT_NOFILE` (the reactor's capacity),
//! `RLIMIT_MEMLOCK` (io_uring's registered buffers), the core count and the host name.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;

use crate::syscall::syscall;

/// A resource limit's soft (enforced) and hard (ceiling) values; [`Limit::UNLIMITED`] stands
/// for `RLIM_INFINITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// The value the kernel enforces; a process may raise it up to `hard`.
    pub soft: u64,
    /// The ceiling for `soft`; only a privileged process may raise it.
    pub hard: u64,
}

impl Limit {
    /// No limit (`RLIM_INFINITY`).
    pub const UNLIMITED: u64 = u64::MAX;
}

/// The open-file limit (`RLIMIT_NOFILE`): one more than the highest descriptor number the
/// process may open.
///
/// # Errors
/// - none on Linux in practice; `getrlimit` can only fail for an unknown resource.
///
/// # Examples
/// ```
/// let limit = fio_sys::nofile_limit()?;
/// assert!(limit.soft <= limit.hard);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn nofile_limit() -> io::Result<Limit> {
    rlimit(libc::RLIMIT_NOFILE)
}

/// Raises the soft open-file limit to the hard limit and returns the new soft limit, which is
/// what a reactor can size its connection table to (facil.io's `fio_capa`).
///
/// Nothing is changed when the soft limit already equals the hard one.
///
/// # Errors
/// - `EPERM` when the hard limit is above `fs.nr_open` (set by a privileged parent);
/// - as [`nofile_limit`].
///
/// # Examples
/// ```
/// let capacity = fio_sys::raise_nofile_limit()?;
/// assert_eq!(capacity, fio_sys::nofile_limit()?.soft);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn raise_nofile_limit() -> io::Result<u64> {
    let limit = nofile_limit()?;
    if limit.soft >= limit.hard {
        return Ok(limit.soft);
    }
    let raised = libc::rlimit {
        rlim_cur: to_rlim(limit.hard),
        rlim_max: to_rlim(limit.hard),
    };
    // SAFETY: `raised` is a live, initialised rlimit that setrlimit only reads.
    unsafe { syscall!(setrlimit(libc::RLIMIT_NOFILE, &raised)) }?;
    Ok(limit.hard)
}

/// The locked-memory limit (`RLIMIT_MEMLOCK`) in bytes. io_uring charges registered (fixed)
/// buffers against it, and kernels before 5.12 charged the rings themselves.
///
/// # Errors
/// - none on Linux in practice; `getrlimit` can only fail for an unknown resource.
///
/// # Examples
/// ```
/// let memlock = fio_sys::memlock_limit()?;
/// assert!(memlock.soft <= memlock.hard);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn memlock_limit() -> io::Result<Limit> {
    rlimit(libc::RLIMIT_MEMLOCK)
}

/// The number of online CPU cores (`sysconf(_SC_NPROCESSORS_ONLN)`), as facil.io counts them
/// for `threads`/`workers` fractions.
///
/// This ignores CPU affinity and cgroup quotas; `std::thread::available_parallelism` honours
/// them, and may be the better choice for sizing thread pools in containers.
///
/// # Errors
/// - `EINVAL` if the system cannot tell (not on Linux, which always can).
///
/// # Examples
/// ```
/// assert!(fio_sys::core_count()? >= 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn core_count() -> io::Result<usize> {
    // SAFETY: sysconf takes no pointers.
    let count = unsafe { syscall!(sysconf(libc::_SC_NPROCESSORS_ONLN)) }?;
    Ok(usize::try_from(count).unwrap_or(1).max(1))
}

/// The machine's host name (`gethostname(2)`), which `fio_local_addr` reports.
///
/// # Errors
/// - `InvalidData` when the name is not UTF-8.
///
/// # Examples
/// ```
/// let name = fio_sys::host_name()?;
/// assert!(!name.contains('\0'));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn host_name() -> io::Result<String> {
    // HOST_NAME_MAX is 64 on Linux; the extra byte keeps room for the NUL.
    let mut buf = [0 as libc::c_char; 256];
    let (name, len) = (buf.as_mut_ptr(), buf.len() - 1);
    // SAFETY: `name` points to `len` + 1 writable bytes; gethostname writes at most `len`, and
    // the last byte stays NUL, so the result is always terminated.
    unsafe { syscall!(gethostname(name, len)) }?;
    // SAFETY: the buffer ends with a NUL byte that gethostname never overwrites.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    name.to_str()
        .map(str::to_owned)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

/// glibc gives the resource argument its own type; musl uses `int`.
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

fn rlimit(resource: Resource) -> io::Result<Limit> {
    let mut limit = MaybeUninit::<libc::rlimit>::uninit();
    // SAFETY: `limit` points to a writable rlimit that outlives the call.
    unsafe { syscall!(getrlimit(resource, limit.as_mut_ptr())) }?;
    // SAFETY: getrlimit succeeded, so it filled both fields.
    let limit = unsafe { limit.assume_init() };
    Ok(Limit {
        soft: from_rlim(limit.rlim_cur),
        hard: from_rlim(limit.rlim_max),
    })
}

fn from_rlim(value: libc::rlim_t) -> u64 {
    if value == libc::RLIM_INFINITY {
        Limit::UNLIMITED
    } else {
        // rlim_t is u64 on 64-bit targets but u32 on some 32-bit ones.
        #[allow(clippy::useless_conversion)]
        u64::from(value)
    }
}

fn to_rlim(value: u64) -> libc::rlim_t {
    if value == Limit::UNLIMITED {
        libc::RLIM_INFINITY
    } else {
        libc::rlim_t::try_from(value).unwrap_or(libc::RLIM_INFINITY)
    }
}
