//! Start arguments and the concurrency rules that turn them into thread and worker counts.

use std::num::NonZeroUsize;
use std::thread;

use crate::engine::EngineKind;

/// facil.io caps the detected core count at 8 when both counts are left at zero.
const CORES_LIMIT: i32 = 8;

/// What `start` runs: how many threads and worker processes, on which engine.
///
/// The fields follow `struct fio_start_args`; see [`expected_concurrency`] for how zero and
/// negative counts are resolved.
///
/// # Examples
/// ```
/// let args = fio_reactor::StartArgs { threads: 2, ..Default::default() };
/// assert_eq!(args.workers, 1);
/// assert!(args.signals);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartArgs {
    /// Reactor threads in this process; negative means a fraction of the cores (`-2` = half).
    pub threads: i16,
    /// Worker processes; anything above 1 needs `fio-cluster`, which forks them.
    pub workers: i16,
    /// The IO engine; `None` reads `FIO_ENGINE` (`uring`, `epoll` or `poll`) and otherwise
    /// tries io_uring first.
    pub engine: Option<EngineKind>,
    /// Whether `start` takes over SIGINT/SIGTERM (graceful stop) and SIGPIPE (ignored) for the
    /// time it runs. Only one running reactor at a time can own the signals; reactors started
    /// while another owns them run without. Tests that build many reactors set this to `false`.
    pub signals: bool,
}

impl Default for StartArgs {
    /// One process with one reactor thread per core (`threads: -1, workers: 1`), the engine from
    /// `FIO_ENGINE` or io_uring first, signals handled.
    ///
    /// facil.io's default of `0, 0` (cores × cores processes) needs `fio-cluster` to fork.
    fn default() -> Self {
        Self {
            threads: -1,
            workers: 1,
            engine: None,
            signals: true,
        }
    }
}

/// Resolves the thread and worker counts that `start` would use, as `(threads, workers)`.
///
/// The rules are facil.io's (`fio_expected_concurrency`):
/// - a positive value is used as is;
/// - a negative value `-n` means the number of cores divided by `n` (at least 1);
/// - a zero borrows the magnitude of the other value as it was given (`threads: -2, workers: 0`
///   means 2 workers with cores/2 threads each);
/// - both zero means cores × cores (cores capped at 8), with one worker fewer above 3 cores to
///   leave a core to the kernel;
/// - both results are at least 1.
///
/// Cores come from [`std::thread::available_parallelism`] (1 if it can't tell).
///
/// # Examples
/// ```
/// use fio_reactor::expected_concurrency;
/// assert_eq!(expected_concurrency(4, 1), (4, 1));
/// assert_eq!(expected_concurrency(3, 0), (3, 3));
/// let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as i16;
/// assert_eq!(expected_concurrency(-1, 0), (cores, 1));
/// ```
pub fn expected_concurrency(threads: i16, workers: i16) -> (i16, i16) {
    resolve(threads, workers, detected_cores())
}

/// The core count, clamped to what an `i16` count can express.
fn detected_cores() -> i32 {
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    i32::try_from(cores).map_or(i32::from(i16::MAX), |c| c.min(i32::from(i16::MAX)))
}

/// The rules of [`expected_concurrency`] for a given core count, kept pure for testing.
fn resolve(threads: i16, workers: i16, cores: i32) -> (i16, i16) {
    let (threads, workers) = (i32::from(threads), i32::from(workers));
    let (threads, workers) = if threads == 0 && workers == 0 {
        let cores = cores.min(CORES_LIMIT);
        let workers = if cores > 3 { cores - 1 } else { cores };
        (cores, workers)
    } else {
        let one = |own: i32, other: i32| match own {
            0 => other.abs(),
            n if n < 0 => cores / n.abs(),
            n => n,
        };
        (one(threads, workers), one(workers, threads))
    };
    (clamp_count(threads), clamp_count(workers))
}

/// Keeps a resolved count within `1..=i16::MAX`.
fn clamp_count(count: i32) -> i16 {
    i16::try_from(count.clamp(1, i32::from(i16::MAX))).unwrap_or(i16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_values_are_kept() {
        assert_eq!(resolve(4, 2, 8), (4, 2));
        assert_eq!(resolve(1, 1, 64), (1, 1));
    }

    #[test]
    fn negative_values_are_fractions_of_the_cores() {
        assert_eq!(resolve(-1, 1, 8), (8, 1));
        assert_eq!(resolve(-2, 1, 8), (4, 1));
        assert_eq!(resolve(-4, -2, 8), (2, 4));
        // A fraction below one core still runs one thread.
        assert_eq!(resolve(-16, 1, 8), (1, 1));
    }

    #[test]
    fn zero_borrows_the_other_magnitude() {
        // The spec's example: threads -2, workers 0 => 2 workers of cores/2 threads.
        assert_eq!(resolve(-2, 0, 8), (4, 2));
        assert_eq!(resolve(0, -2, 8), (2, 4));
        assert_eq!(resolve(3, 0, 8), (3, 3));
        assert_eq!(resolve(0, 5, 8), (5, 5));
    }

    #[test]
    fn both_zero_is_cores_by_cores() {
        assert_eq!(resolve(0, 0, 2), (2, 2));
        assert_eq!(resolve(0, 0, 4), (4, 3));
        assert_eq!(resolve(0, 0, 32), (8, 7));
        assert_eq!(resolve(0, 0, 1), (1, 1));
    }

    #[test]
    fn extremes_do_not_overflow() {
        assert_eq!(resolve(i16::MIN, 1, 8), (1, 1));
        assert_eq!(resolve(0, i16::MIN, 8), (i16::MAX, 1));
        assert_eq!(resolve(i16::MAX, i16::MAX, 8), (i16::MAX, i16::MAX));
    }
}
