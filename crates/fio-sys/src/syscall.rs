//! The one libc choke point: `syscall!` turns a `-1` return into `io::Error::last_os_error()`.

/// Calls a libc function and maps a negative return to the thread's `errno`.
///
/// The caller writes the `unsafe` block (with its `// SAFETY:` comment) around the macro,
/// because only the call site knows why the arguments are valid.
macro_rules! syscall {
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
