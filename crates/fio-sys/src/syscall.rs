//! The one libc choke point: `syscall!` turns a `-1` return into `io::Error::last_os_error()`.

/// Calls a libc function and maps its failure value to the thread's `errno`.
///
/// The caller writes the `unsafe` block (with its `// SAFETY:` comment) around the macro,
/// because only the call site knows why the arguments are valid. Three forms exist, because
/// libc reports failure in three ways:
///
/// - `syscall!(f(args))`: a negative return is a failure (almost every call);
/// - `syscall!(mmap(args))`: `MAP_FAILED` is the failure, any other pointer the mapping;
/// - `syscall!(@infallible f(args))`: the call cannot fail (`getpid`, `_exit`,
///   `__errno_location`), so its value is returned as it is;
/// - `syscall!(@direct SYS_name(args))`: the system call itself through `syscall(2)`, not
///   libc's wrapper, for the calls every request makes (`recvfrom`, `sendto`, `sendmsg`,
///   `epoll_pwait`). Those wrappers are thread cancellation points: in a process with more than
///   one thread, glibc brackets each call with two atomic compare-and-swaps on the thread's
///   cancellation state (four per request-reply round trip). fio never cancels threads, and
///   `syscall(2)` is no cancellation point. Arguments must already have the width the kernel
///   reads (`c_long` for integers, or pointers), since they pass through C varargs; a negative
///   return is a failure, as above.
macro_rules! syscall {
    (@direct $number: ident ( $($arg: expr),* $(,)* ) ) => {{
        let res = libc::syscall(libc::$number, $($arg, )*);
        if res < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
    (mmap ( $($arg: expr),* $(,)* ) ) => {{
        let mapping = libc::mmap($($arg, )*);
        if mapping == libc::MAP_FAILED {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(mapping)
        }
    }};
    (@infallible $fn: ident ( $($arg: expr),* $(,)* ) ) => {
        libc::$fn($($arg, )*)
    };
    ($fn: ident ( $($arg: expr),* $(,)* ) ) => {{
        let res = libc::$fn($($arg, )*);
        if res < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

pub(crate) use syscall;
