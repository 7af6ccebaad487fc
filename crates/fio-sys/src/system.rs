//! Facts about the running system: kernel version.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;

use crate::syscall::syscall;

/// A Linux kernel release, as `uname(2)` reports it (`6.18.44-...` is `6.18.44`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// Major version (`6` in `6.18.44`).
    pub major: u32,
    /// Minor version (`18` in `6.18.44`).
    pub minor: u32,
    /// Patch level (`44` in `6.18.44`); 0 when the release string has none.
    pub patch: u32,
}

impl KernelVersion {
    /// Builds a version from its parts, for comparisons such as `>= KernelVersion::new(6, 0, 0)`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses a release string such as `6.18.44-fc-v669` or `5.15.0`.
    ///
    /// Returns `None` when the string does not start with `major.minor`.
    pub fn parse(release: &str) -> Option<Self> {
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|part| part.parse::<u32>().ok());
        let major = numbers.next()??;
        let minor = numbers.next()??;
        let patch = numbers.next().flatten().unwrap_or(0);
        Some(Self::new(major, minor, patch))
    }
}

/// Returns the running kernel's version, from `uname(2)`.
///
/// # Errors
/// - the `uname` call failed (it does not on Linux), or
/// - the release string is not of the `major.minor[.patch]` form (`ErrorKind::InvalidData`).
///
/// # Examples
/// ```
/// let version = fio_sys::kernel_version()?;
/// assert!(version >= fio_sys::KernelVersion::new(2, 6, 0));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn kernel_version() -> io::Result<KernelVersion> {
    let mut name = MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: `name` points to a writable utsname that lives across the call.
    unsafe { syscall!(uname(name.as_mut_ptr())) }?;
    // SAFETY: uname returned success, so it filled the whole struct.
    let name = unsafe { name.assume_init() };
    // SAFETY: the kernel NUL-terminates `release` within its fixed-size array.
    let release = unsafe { CStr::from_ptr(name.release.as_ptr()) };
    let release = release.to_string_lossy();
    KernelVersion::parse(&release).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unrecognised kernel release {release:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_strings() {
        assert_eq!(
            KernelVersion::parse("6.18.44-fc-v669"),
            Some(KernelVersion::new(6, 18, 44))
        );
        assert_eq!(
            KernelVersion::parse("5.15"),
            Some(KernelVersion::new(5, 15, 0))
        );
        assert_eq!(
            KernelVersion::parse("6.1.0-rc3"),
            Some(KernelVersion::new(6, 1, 0))
        );
        assert_eq!(KernelVersion::parse("garbage"), None);
        assert_eq!(KernelVersion::parse(""), None);
    }

    #[test]
    fn reads_running_kernel() {
        let version = kernel_version().unwrap();
        assert!(version.major >= 3);
    }
}
