//! Seccomp deny-lists: make chosen system calls fail with `EPERM` on the calling thread.
//!
//! This is how containers forbid io_uring (Docker 25's default profile, containerd 2.0), so
//! tests use it to exercise the engines' fallback on a kernel that otherwise allows io_uring.
//! A seccomp filter can never be removed: it binds the calling thread and every thread and
//! process it creates afterwards, which is why callers install it in a child process or a
//! thread they throw away.
//!
//! The filter is a classic BPF program over `struct seccomp_data` (`nr` at offset 0, `arch`
//! at offset 4): check the architecture, refuse x32 system calls, compare the number against
//! each denied one, allow everything else.

use std::io;

use crate::syscall::syscall;

/// `AUDIT_ARCH_X86_64` (`EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`); libc lacks it.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// Offset of `seccomp_data::nr`, the system call number.
#[cfg(target_arch = "x86_64")]
const NR_OFFSET: u32 = 0;
/// Offset of `seccomp_data::arch`, the `AUDIT_ARCH_*` value of the calling convention.
#[cfg(target_arch = "x86_64")]
const ARCH_OFFSET: u32 = 4;
/// System call numbers at or above this are the x32 ABI's (`__X32_SYSCALL_BIT`).
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// A BPF conditional jump reaches at most 255 instructions ahead.
#[cfg(target_arch = "x86_64")]
const MAX_DENIED: usize = 250;

/// The io_uring system calls, which [`forbid_io_uring`] denies.
pub const IO_URING_SYSCALLS: [libc::c_long; 3] = [
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

/// Makes io_uring unavailable to the calling thread and to every thread and process it creates
/// afterwards: `io_uring_setup`, `io_uring_enter` and `io_uring_register` fail with `EPERM`,
/// as under a container profile that forbids io_uring. See [`deny_syscalls_with_eperm`].
///
/// # Errors
/// As [`deny_syscalls_with_eperm`].
///
/// # Examples
/// On a thread of its own, since the filter can never be removed:
/// ```
/// let refused = std::thread::spawn(|| -> std::io::Result<Option<i32>> {
///     fio_sys::forbid_io_uring()?;
///     // SAFETY: io_uring_setup with no entries and no parameters touches no memory; the
///     // filter answers it before the kernel would even look.
///     let res = unsafe {
///         libc::syscall(libc::SYS_io_uring_setup, 0, std::ptr::null_mut::<libc::c_void>())
///     };
///     assert_eq!(res, -1);
///     Ok(std::io::Error::last_os_error().raw_os_error())
/// });
/// assert_eq!(refused.join().expect("filter thread")?, Some(libc::EPERM));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn forbid_io_uring() -> io::Result<()> {
    deny_syscalls_with_eperm(&IO_URING_SYSCALLS)
}

/// Installs a seccomp filter on the calling thread under which `syscalls` fail with `EPERM`
/// and every other system call runs as before.
///
/// First sets `PR_SET_NO_NEW_PRIVS` (required to install a filter without `CAP_SYS_ADMIN`),
/// then installs the filter with `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)`. Both bind the
/// calling thread and every thread and child process it creates afterwards, for good; other
/// threads that already exist are not affected. System calls made through another calling
/// convention (32-bit or x32) also fail with `EPERM`, because their numbers differ.
///
/// # Errors
/// - `ErrorKind::Unsupported` on architectures other than x86_64 (the filter checks the
///   architecture, and only x86_64's is known here);
/// - `ErrorKind::InvalidInput` when more than 250 system calls are given (BPF jumps are
///   limited to 255 instructions) or a number is negative;
/// - `EINVAL` when the kernel was built without seccomp filters;
/// - `EACCES` in the unlikely case that `PR_SET_NO_NEW_PRIVS` did not take;
/// - `ENOMEM` when the filter can't be allocated.
///
/// # Examples
/// ```
/// let denied = std::thread::spawn(|| -> std::io::Result<Option<i32>> {
///     fio_sys::deny_syscalls_with_eperm(&[libc::SYS_getppid])?;
///     // SAFETY: getppid takes no arguments.
///     assert_eq!(unsafe { libc::syscall(libc::SYS_getppid) }, -1);
///     Ok(std::io::Error::last_os_error().raw_os_error())
/// });
/// assert_eq!(denied.join().expect("filter thread")?, Some(libc::EPERM));
/// // Other threads are untouched.
/// assert!(fio_sys::parent_pid().is_some());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn deny_syscalls_with_eperm(syscalls: &[libc::c_long]) -> io::Result<()> {
    let mut program = program(syscalls)?;
    let filter = libc::sock_fprog {
        len: u16::try_from(program.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter too long"))?,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integers and only sets a flag on this thread.
    unsafe { syscall!(prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) }?;
    let mode = libc::c_ulong::from(libc::SECCOMP_MODE_FILTER);
    let filter: *const libc::sock_fprog = &filter;
    // SAFETY: `filter` points to a sock_fprog whose `filter` points to `program`'s `len`
    // instructions; both live across the call, and the kernel copies the program before it
    // returns.
    unsafe { syscall!(prctl(libc::PR_SET_SECCOMP, mode, filter, 0, 0)) }?;
    Ok(())
}

/// The BPF program denying `syscalls`, for this architecture.
#[cfg(target_arch = "x86_64")]
fn program(syscalls: &[libc::c_long]) -> io::Result<Vec<libc::sock_filter>> {
    if syscalls.len() > MAX_DENIED {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a seccomp deny-list holds at most 250 system calls",
        ));
    }
    let numbers = syscalls
        .iter()
        .map(|&nr| u32::try_from(nr))
        .collect::<Result<Vec<u32>, _>>()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative system call"))?;
    let allow = statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW);
    let deny = statement(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32 & libc::SECCOMP_RET_DATA),
    );
    let mut program = Vec::with_capacity(numbers.len() + 7);
    // Another calling convention numbers its system calls differently: refuse it outright.
    program.push(load(ARCH_OFFSET));
    program.push(jump(libc::BPF_JEQ, AUDIT_ARCH_X86_64, 1, 0));
    program.push(deny);
    program.push(load(NR_OFFSET));
    // Jumps count from the next instruction; the deny is the last one, after the allow.
    let checks = numbers.len() + 1;
    let to_deny = |remaining: usize| u8::try_from(remaining + 1).unwrap_or(u8::MAX);
    program.push(jump(libc::BPF_JGE, X32_SYSCALL_BIT, to_deny(checks - 1), 0));
    for (index, nr) in numbers.into_iter().enumerate() {
        program.push(jump(libc::BPF_JEQ, nr, to_deny(checks - 2 - index), 0));
    }
    program.push(allow);
    program.push(deny);
    Ok(program)
}

/// Other architectures: their `AUDIT_ARCH_*` value and syscall table aren't encoded here.
#[cfg(not(target_arch = "x86_64"))]
fn program(_syscalls: &[libc::c_long]) -> io::Result<Vec<libc::sock_filter>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "seccomp deny-lists are only implemented for x86_64",
    ))
}

/// `BPF_STMT`: an instruction without jump targets.
#[cfg(target_arch = "x86_64")]
fn statement(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: u16::try_from(code).unwrap_or(u16::MAX),
        jt: 0,
        jf: 0,
        k,
    }
}

/// Loads the 32-bit word at `offset` of `seccomp_data` into the accumulator.
#[cfg(target_arch = "x86_64")]
fn load(offset: u32) -> libc::sock_filter {
    statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)
}

/// `BPF_JUMP`: compare the accumulator with `k` by `test`, skip `taken` or `not_taken`
/// instructions.
#[cfg(target_arch = "x86_64")]
fn jump(test: u32, k: u32, taken: u8, not_taken: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: u16::try_from(libc::BPF_JMP | test | libc::BPF_K).unwrap_or(u16::MAX),
        jt: taken,
        jf: not_taken,
        k,
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use std::thread;

    use super::*;

    /// Runs `f` on a thread of its own, so the filter it may install dies with it.
    fn on_own_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        thread::spawn(f).join().unwrap()
    }

    /// `io_uring_setup(0, NULL)`'s errno: `EPERM` under the filter, `EINVAL` or `EFAULT`
    /// (never `EPERM`) from a kernel that looks at it.
    fn io_uring_setup_errno() -> Option<i32> {
        // SAFETY: no entries and no parameter block: the kernel touches no memory.
        let res = unsafe {
            libc::syscall(
                libc::SYS_io_uring_setup,
                0,
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        assert_eq!(res, -1);
        io::Error::last_os_error().raw_os_error()
    }

    #[test]
    fn io_uring_is_refused_only_where_forbidden() {
        let inside = on_own_thread(|| {
            forbid_io_uring().unwrap();
            // A thread spawned afterwards inherits the filter.
            let child = on_own_thread(io_uring_setup_errno);
            (
                io_uring_setup_errno(),
                child,
                crate::eventfd(0, true).is_ok(),
            )
        });
        assert_eq!(inside, (Some(libc::EPERM), Some(libc::EPERM), true));
        // This thread never installed the filter.
        assert_ne!(io_uring_setup_errno(), Some(libc::EPERM));
    }

    #[test]
    fn the_program_jumps_to_the_final_deny() {
        let program = program(&[1, 2, 3]).unwrap();
        let last = program.len() - 1;
        // Every conditional jump after the number load lands on the last instruction.
        for (at, instruction) in program.iter().enumerate().skip(4) {
            if instruction.jt > 0 {
                assert_eq!(at + 1 + usize::from(instruction.jt), last, "at {at}");
            }
        }
        assert_eq!(program[last].k & libc::SECCOMP_RET_DATA, libc::EPERM as u32);
        assert_eq!(program[last - 1].k, libc::SECCOMP_RET_ALLOW);
    }

    #[test]
    fn bad_lists_are_refused() {
        let long = vec![1; MAX_DENIED + 1];
        let error = deny_syscalls_with_eperm(&long).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let error = deny_syscalls_with_eperm(&[-1]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
