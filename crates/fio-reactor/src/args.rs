//! Start arguments and the concurrency rules that turn them into thread and worker counts.

use std::num::{NonZeroU16, NonZeroUsize};
use std::thread;

use crate::engine::EngineKind;

/// facil.io caps the detected core count at 8 when both counts are left to match each other.
const CORES_LIMIT: i32 = 8;

/// How many reactor threads, or worker processes, [`StartArgs`] asks for: facil.io's signed
/// `int16_t` counts (positive, zero, or a negative fraction of the cores) as a type.
///
/// [`expected_concurrency`] turns a pair of them into counts; every count is at least 1.
///
/// # Examples
/// ```
/// use std::num::NonZeroU16;
/// use fio_reactor::Concurrency;
/// assert_eq!(Concurrency::exactly(1), Some(Concurrency::ONE));
/// assert_eq!(Concurrency::exactly(0), None);
/// // facil.io's spellings: -2 is half the cores, 0 matches the other count.
/// let half = NonZeroU16::new(2).map(Concurrency::FractionOfCores);
/// assert_eq!(Some(Concurrency::from_c(-2)), half);
/// assert_eq!(Concurrency::from_c(-1), Concurrency::PerCore);
/// assert_eq!(Concurrency::from_c(0), Concurrency::MatchOther);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Concurrency {
    /// Exactly this many (C: a positive value).
    Exactly(NonZeroU16),
    /// One per core (C: `-1`).
    PerCore,
    /// The number of cores divided by this, rounded down, at least one (C: `-n`; `2` is half
    /// the cores).
    FractionOfCores(NonZeroU16),
    /// As many as the other count's number (C: `0`): threads `FractionOfCores(2)` with workers
    /// `MatchOther` is 2 workers of cores/2 threads each. Both `MatchOther` is facil.io's
    /// default of cores × cores (cores capped at 8, one worker fewer above 3 cores).
    MatchOther,
}

impl Concurrency {
    /// One thread, or one process.
    pub const ONE: Self = Self::Exactly(NonZeroU16::MIN);

    /// Exactly `count`, or `None` for zero (there is no such thing as zero threads; facil.io's
    /// `0` is [`MatchOther`](Self::MatchOther)).
    pub const fn exactly(count: u16) -> Option<Self> {
        match NonZeroU16::new(count) {
            Some(count) => Some(Self::Exactly(count)),
            None => None,
        }
    }

    /// facil.io's `int16_t` count, as a C port or a command line has it: a positive value is
    /// [`Exactly`](Self::Exactly), `0` [`MatchOther`](Self::MatchOther), `-1`
    /// [`PerCore`](Self::PerCore), `-n` [`FractionOfCores`](Self::FractionOfCores)`(n)`.
    pub const fn from_c(count: i16) -> Self {
        match NonZeroU16::new(count.unsigned_abs()) {
            None => Self::MatchOther,
            Some(magnitude) if count > 0 => Self::Exactly(magnitude),
            Some(NonZeroU16::MIN) => Self::PerCore,
            Some(divisor) => Self::FractionOfCores(divisor),
        }
    }

    /// The signed form the resolution rules work on (facil.io's), widened so no magnitude
    /// overflows.
    fn signed(self) -> i32 {
        match self {
            Self::Exactly(count) => i32::from(count.get()),
            Self::PerCore => -1,
            Self::FractionOfCores(divisor) => -i32::from(divisor.get()),
            Self::MatchOther => 0,
        }
    }
}

/// What `start` runs: how many threads and worker processes, on which engine, whether it owns
/// the signals (facil.io's `struct fio_start_args`, plus `engine` and `signals`).
///
/// Built with [`StartArgs::new`] and its setters; the fields stay readable. The struct is
/// `#[non_exhaustive]`, so a field added later doesn't break a caller.
///
/// # Examples
/// ```
/// use fio_reactor::{Concurrency, EngineKind, StartArgs};
/// let args = StartArgs::new()
///     .threads(Concurrency::exactly(2).expect("2 > 0"))
///     .engine(EngineKind::Epoll)
///     .signals(false);
/// assert_eq!(args.workers, Concurrency::ONE);
/// assert_eq!(args.engine, Some(EngineKind::Epoll));
/// assert!(!args.signals);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartArgs {
    /// Reactor threads in this process; see [`expected_concurrency`] for how the pair resolves.
    pub threads: Concurrency,
    /// Worker processes; more than one needs `fio-cluster`, which forks them.
    pub workers: Concurrency,
    /// The IO engine; `None` reads `FIO_ENGINE` (`uring`, `epoll` or `poll`) and otherwise
    /// tries io_uring first.
    pub engine: Option<EngineKind>,
    /// Whether `start` takes over SIGINT/SIGTERM (graceful stop) and SIGPIPE (ignored) for the
    /// time it runs. Only one running reactor at a time can own the signals; reactors started
    /// while another owns them run without. Tests that build many reactors turn this off.
    pub signals: bool,
}

impl StartArgs {
    /// The defaults: one process ([`Concurrency::ONE`] worker) running one reactor thread per
    /// core ([`Concurrency::PerCore`]), the engine from `FIO_ENGINE` or io_uring first, signals
    /// handled.
    ///
    /// facil.io's default (both counts `0`: cores × cores processes) needs `fio-cluster` to
    /// fork; ask for it with [`Concurrency::MatchOther`] in both.
    pub const fn new() -> Self {
        Self {
            threads: Concurrency::PerCore,
            workers: Concurrency::ONE,
            engine: None,
            signals: true,
        }
    }

    /// Sets how many reactor threads run in each process.
    #[must_use]
    pub const fn threads(mut self, threads: Concurrency) -> Self {
        self.threads = threads;
        self
    }

    /// Sets how many worker processes run (more than one needs `fio-cluster`).
    #[must_use]
    pub const fn workers(mut self, workers: Concurrency) -> Self {
        self.workers = workers;
        self
    }

    /// Picks the IO engine (`None`: `FIO_ENGINE`, else io_uring first).
    #[must_use]
    pub fn engine(mut self, engine: impl Into<Option<EngineKind>>) -> Self {
        self.engine = engine.into();
        self
    }

    /// Sets whether `start` takes over SIGINT, SIGTERM and SIGPIPE while it runs.
    #[must_use]
    pub const fn signals(mut self, signals: bool) -> Self {
        self.signals = signals;
        self
    }
}

impl Default for StartArgs {
    /// [`StartArgs::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// Resolves the thread and worker counts that `start` would use, as `(threads, workers)`,
/// both at least 1.
///
/// The rules are facil.io's (`fio_expected_concurrency`), in [`Concurrency`]'s terms:
/// - [`Exactly`](Concurrency::Exactly) is used as is;
/// - [`PerCore`](Concurrency::PerCore) is the number of cores, and
///   [`FractionOfCores(n)`](Concurrency::FractionOfCores) that divided by `n` (at least 1);
/// - [`MatchOther`](Concurrency::MatchOther) borrows the other value's number as it was given
///   (threads `FractionOfCores(2)`, workers `MatchOther` means 2 workers with cores/2 threads
///   each);
/// - both `MatchOther` means cores × cores (cores capped at 8), with one worker fewer above 3
///   cores to leave a core to the kernel.
///
/// Cores come from [`std::thread::available_parallelism`] (1 if it can't tell).
///
/// # Examples
/// ```
/// use fio_reactor::{Concurrency, expected_concurrency};
/// let four = Concurrency::exactly(4).expect("4 > 0");
/// let three = Concurrency::exactly(3).expect("3 > 0");
/// assert_eq!(expected_concurrency(four, Concurrency::ONE), (4, 1));
/// assert_eq!(expected_concurrency(three, Concurrency::MatchOther), (3, 3));
/// let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u16;
/// assert_eq!(expected_concurrency(Concurrency::PerCore, Concurrency::MatchOther), (cores, 1));
/// ```
pub fn expected_concurrency(threads: Concurrency, workers: Concurrency) -> (u16, u16) {
    resolve(threads.signed(), workers.signed(), detected_cores())
}

/// The core count, clamped to what a `u16` count can express.
fn detected_cores() -> i32 {
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    i32::try_from(cores).map_or(i32::from(u16::MAX), |c| c.min(i32::from(u16::MAX)))
}

/// The rules of [`expected_concurrency`] on facil.io's signed form for a given core count,
/// kept pure for testing.
fn resolve(threads: i32, workers: i32, cores: i32) -> (u16, u16) {
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

/// Keeps a resolved count within `1..=u16::MAX`.
fn clamp_count(count: i32) -> u16 {
    u16::try_from(count.clamp(1, i32::from(u16::MAX))).unwrap_or(u16::MAX)
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
        let most = i32::from(u16::MAX);
        assert_eq!(resolve(-most, 1, 8), (1, 1));
        assert_eq!(resolve(0, -most, 8), (u16::MAX, 1));
        assert_eq!(resolve(most, most, 8), (u16::MAX, u16::MAX));
    }

    #[test]
    fn typed_counts_keep_facils_signed_meaning() {
        for c in [i16::MIN, -3, -2, -1, 0, 1, 7, i16::MAX] {
            assert_eq!(Concurrency::from_c(c).signed(), i32::from(c), "{c}");
        }
        assert_eq!(Concurrency::PerCore.signed(), -1);
        let max = Concurrency::exactly(u16::MAX).map(Concurrency::signed);
        assert_eq!(max, Some(i32::from(u16::MAX)));
    }
}
