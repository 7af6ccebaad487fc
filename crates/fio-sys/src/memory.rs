//! Page-aligned memory straight from the kernel: an owned anonymous [`Mmap`], unmapped on drop,
//! which can be kept out of forked children (`MADV_DONTFORK`), and [`SharedMap`], a shared
//! mapping of a file's memory that another party (the kernel, for an io_uring ring) writes too.
//!
//! Buffer pools and io_uring provided-buffer rings live in such mappings: the kernel needs
//! page-aligned memory, and a child forked by the cluster must not share (or copy) pages that a
//! ring in the parent is still writing to.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::{self, NonNull};
use std::slice;

use crate::syscall::syscall;

/// The size of a memory page in bytes (`sysconf(_SC_PAGESIZE)`), usually 4096.
///
/// # Examples
/// ```
/// assert!(fio_sys::page_size().is_power_of_two());
/// ```
pub fn page_size() -> usize {
    // SAFETY: sysconf takes no pointers and _SC_PAGESIZE is always supported on Linux.
    match unsafe { syscall!(sysconf(libc::_SC_PAGESIZE)) } {
        Ok(size) => usize::try_from(size).unwrap_or(4096),
        // POSIX requires _SC_PAGESIZE; 4096 is the page size of every Linux target we build.
        Err(_) => 4096,
    }
}

/// A range `mmap` returned, unmapped on drop: what [`Mmap`] and [`SharedMap`] own.
#[derive(Debug)]
struct Mapping {
    /// Start of the mapping, as `mmap` returned it; page-aligned.
    ptr: NonNull<u8>,
    /// Length asked for; `munmap` takes the same value and the kernel rounds it up to pages.
    len: usize,
}

impl Mapping {
    /// `mmap(2)` of `len` readable and writable bytes with `flags`, of `fd` from `offset`
    /// (`-1` and 0 for anonymous memory), at an address the kernel picks.
    fn new(len: usize, flags: libc::c_int, fd: libc::c_int, offset: i64) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map zero bytes",
            ));
        }
        let protection = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a null hint without MAP_FIXED lets the kernel choose fresh addresses, so no
        // existing memory is replaced; a descriptor, if any, is the caller's borrowed one, open
        // for the call.
        let mapping =
            unsafe { syscall!(mmap(ptr::null_mut(), len, protection, flags, fd, offset)) }?;
        let ptr = NonNull::new(mapping.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Self { ptr, len })
    }

    fn advise(&self, advice: libc::c_int) -> io::Result<()> {
        // SAFETY: the range is exactly this mapping, and the advice given here (DONTFORK,
        // DOFORK) changes only how fork treats it, never its contents or its mapping in this
        // process.
        unsafe { syscall!(madvise(self.ptr.as_ptr().cast(), self.len, advice)) }?;
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range is this mapping, created by mmap with this length, and its owners
        // let no borrow of it outlive them.
        let result = unsafe { syscall!(munmap(self.ptr.as_ptr().cast(), self.len)) };
        // munmap of a range we mapped only fails on a bug in this type.
        debug_assert!(result.is_ok(), "munmap failed: {result:?}");
    }
}

/// An anonymous, private, read-write memory mapping, zero-filled and page-aligned, unmapped on
/// drop.
///
/// # Examples
/// ```
/// let mut map = fio_sys::Mmap::anonymous(8192)?;
/// map.dontfork()?;
/// assert!(map.as_slice().iter().all(|&b| b == 0));
/// map.as_mut_slice()[0] = 7;
/// assert_eq!(map.as_slice()[0], 7);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Mmap {
    mapping: Mapping,
}

// SAFETY: Mmap owns its pages exclusively, as Vec<u8> owns its buffer; it hands out `&[u8]`
// only through `&self` and `&mut [u8]` only through `&mut self`, so moving it across threads is
// as safe as moving a Vec.
unsafe impl Send for Mmap {}

// SAFETY: through `&Mmap` the pages can only be read (or advised, which changes no bytes), so
// sharing references between threads is as safe as sharing `&[u8]`.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len` bytes of zeroed, private, read-write memory.
    ///
    /// # Errors
    /// - `InvalidInput` (`EINVAL`) when `len` is 0;
    /// - `ENOMEM` when the address space or `vm.max_map_count` is exhausted, or overcommit is
    ///   refused.
    pub fn anonymous(len: usize) -> io::Result<Self> {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        Ok(Self {
            mapping: Mapping::new(len, flags, -1, 0)?,
        })
    }

    /// The length in bytes, as asked for.
    pub fn len(&self) -> usize {
        self.mapping.len
    }

    /// Always `false`: a mapping is never empty ([`Mmap::anonymous`] refuses zero bytes).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The start of the mapping, for handing to the kernel (io_uring buffer rings) or to
    /// pointer-level code.
    ///
    /// Writing through it is only sound while no slice from [`Mmap::as_slice`] is alive.
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.mapping.ptr
    }

    /// The mapping as bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes that live as long as `self`, and it is
        // initialised (zero-filled by the kernel, then written only through these slices).
        unsafe { slice::from_raw_parts(self.mapping.ptr.as_ptr(), self.mapping.len) }
    }

    /// The mapping as mutable bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only live view.
        unsafe { slice::from_raw_parts_mut(self.mapping.ptr.as_ptr(), self.mapping.len) }
    }

    /// Keeps the mapping out of children created by `fork` (`MADV_DONTFORK`): in a child the
    /// range is simply unmapped.
    ///
    /// Use it for memory the kernel writes asynchronously (io_uring rings and their buffers),
    /// which would otherwise be copied on write and diverge from what the kernel sees.
    ///
    /// # Errors
    /// - `EINVAL` from a kernel that lacks `MADV_DONTFORK` (before 2.6.16).
    pub fn dontfork(&self) -> io::Result<()> {
        self.mapping.advise(libc::MADV_DONTFORK)
    }

    /// Undoes [`Mmap::dontfork`] (`MADV_DOFORK`).
    ///
    /// # Errors
    /// - `EINVAL` from a kernel that lacks `MADV_DOFORK`.
    pub fn dofork(&self) -> io::Result<()> {
        self.mapping.advise(libc::MADV_DOFORK)
    }
}

/// A shared, read-write, pre-faulted mapping of part of a file's memory (`MAP_SHARED |
/// MAP_POPULATE`), unmapped on drop: for memory another party writes while this process
/// reads it, such as an io_uring ring's completion queue (the ring's descriptor at
/// `IORING_OFF_CQ_RING`).
///
/// It hands out only a raw pointer, never slices: the other party may write any byte at any
/// time, so the owner reads and writes through atomics or volatile accesses, following that
/// memory's own protocol. Neither `Send` nor `Sync`, as the pointer it holds.
///
/// # Examples
/// ```
/// use std::io::Write;
/// let mut file = tempfile_like()?;
/// file.write_all(b"shared")?;
/// let map = fio_sys::SharedMap::map(std::os::fd::AsFd::as_fd(&file), 0, 6)?;
/// // SAFETY (example): nothing else writes the file while the byte is read.
/// assert_eq!(unsafe { map.as_ptr().read() }, b's');
/// # fn tempfile_like() -> std::io::Result<std::fs::File> {
/// #     let path = std::env::temp_dir().join(format!("fio-sys-doc-{}", std::process::id()));
/// #     let file = std::fs::File::options().read(true).write(true).create(true).truncate(true).open(&path)?;
/// #     std::fs::remove_file(&path)?;
/// #     Ok(file)
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SharedMap {
    mapping: Mapping,
}

impl SharedMap {
    /// Maps `len` bytes of `fd`'s memory from `offset` (a multiple of the page size), shared
    /// with every other mapping of it, readable and writable, and faulted in at once.
    ///
    /// # Errors
    /// - `InvalidInput` (`EINVAL`) when `len` is 0 or `offset` is not page-aligned;
    /// - `mmap(2)`'s errors (`EACCES` for a descriptor not open for reading and writing,
    ///   `ENODEV` for one that can't be mapped, `ENOMEM`).
    pub fn map(fd: BorrowedFd<'_>, offset: i64, len: usize) -> io::Result<Self> {
        let flags = libc::MAP_SHARED | libc::MAP_POPULATE;
        Ok(Self {
            mapping: Mapping::new(len, flags, fd.as_raw_fd(), offset)?,
        })
    }

    /// The start of the mapping.
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.mapping.ptr
    }

    /// The length in bytes, as asked for.
    pub fn len(&self) -> usize {
        self.mapping.len
    }

    /// Always `false`: [`SharedMap::map`] refuses zero bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Keeps the mapping out of children created by `fork` (`MADV_DONTFORK`), as
    /// [`Mmap::dontfork`] does.
    ///
    /// # Errors
    /// - `EINVAL` from a kernel that lacks `MADV_DONTFORK`.
    pub fn dontfork(&self) -> io::Result<()> {
        self.mapping.advise(libc::MADV_DONTFORK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{Fork, exit_immediately, fork_unchecked, waitpid};

    #[test]
    fn maps_zeroed_page_aligned_memory() {
        let mut map = Mmap::anonymous(3 * page_size() + 1).unwrap();
        assert_eq!(map.as_ptr().as_ptr() as usize % page_size(), 0);
        assert!(map.as_slice().iter().all(|&b| b == 0));
        let len = map.len();
        map.as_mut_slice()[len - 1] = 0xAB;
        assert_eq!(map.as_slice()[len - 1], 0xAB);
        assert!(!map.is_empty());
    }

    #[test]
    fn a_shared_mapping_sees_and_makes_the_files_changes() {
        use std::io::{Read, Seek, SeekFrom, Write};
        use std::os::fd::AsFd;
        let path = std::env::temp_dir().join(format!("fio-sys-shared-{}", std::process::id()));
        let mut file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file.write_all(&[1u8; 64]).unwrap();
        let map = SharedMap::map(file.as_fd(), 0, 64).unwrap();
        assert_eq!(map.len(), 64);
        assert!(!map.is_empty());
        map.dontfork().unwrap();
        let last = map.as_ptr().as_ptr().wrapping_add(63);
        // SAFETY: byte 63 lies in the 64-byte mapping, and nothing else touches the file now.
        assert_eq!(unsafe { last.read() }, 1);
        // SAFETY: byte 0 lies in the mapping, as above.
        unsafe { map.as_ptr().as_ptr().write(9) };
        let mut first = [0u8; 1];
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_exact(&mut first).unwrap();
        assert_eq!(first, [9]);
        let error = SharedMap::map(file.as_fd(), 1, 64).unwrap_err();
        assert_eq!(
            error.kind(),
            io::ErrorKind::InvalidInput,
            "unaligned offset"
        );
    }

    #[test]
    fn refuses_zero_length() {
        let error = Mmap::anonymous(0).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    /// Forks a child that reports (as its exit code) whether `map`'s first page is mapped:
    /// `mincore` fails with `ENOMEM` on an unmapped range.
    fn mapped_in_child(map: &Mmap) -> bool {
        let addr = map.as_ptr().as_ptr().cast::<libc::c_void>();
        let mut residency = [0u8; 1];
        let residency_ptr = residency.as_mut_ptr();
        // SAFETY: the child calls only mincore and _exit, which are async-signal-safe, so it
        // touches no lock another test thread may have held at the fork.
        match unsafe { fork_unchecked() }.unwrap() {
            Fork::Child => {
                // SAFETY: `residency_ptr` has room for the one page queried.
                let result = unsafe { syscall!(mincore(addr, 1, residency_ptr)) };
                exit_immediately(match result {
                    Ok(_) => 1,
                    Err(_) => 0,
                })
            }
            Fork::Parent { child } => {
                let (_, status) = waitpid(Some(child), Default::default())
                    .unwrap()
                    .expect("blocking waitpid returns a status");
                status.code().expect("child exits normally") == 1
            }
        }
    }

    #[test]
    fn dontfork_hides_the_mapping_from_children() {
        let map = Mmap::anonymous(page_size()).unwrap();
        assert!(mapped_in_child(&map));
        map.dontfork().unwrap();
        assert!(!mapped_in_child(&map));
        map.dofork().unwrap();
        assert!(mapped_in_child(&map));
    }
}
