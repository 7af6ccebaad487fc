//! Ring configuration and the setup ladder that steps down from the best flags.

use std::fmt;
use std::io;
use std::time::Duration;

use fio_sys::KernelVersion;
use io_uring::IoUring;

use crate::error::{Error, SetupRefusal};

/// The kernel's limit on submission queue entries (`IORING_MAX_ENTRIES`).
pub const MAX_ENTRIES: u32 = 32768;

/// A set of `io_uring_setup(2)` flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SetupFlags(u32);

impl SetupFlags {
    /// Only the creating thread submits (`IORING_SETUP_SINGLE_ISSUER`, Linux 6.0).
    pub const SINGLE_ISSUER: Self = Self(1 << 0);
    /// Completion work runs only when the ring thread waits (`IORING_SETUP_DEFER_TASKRUN`,
    /// Linux 6.1): fewer interrupts, better batching.
    pub const DEFER_TASKRUN: Self = Self(1 << 1);
    /// No inter-processor interrupt to run completion work (`IORING_SETUP_COOP_TASKRUN`, 5.19).
    pub const COOP_TASKRUN: Self = Self(1 << 2);
    /// The kernel flags pending completion work in the SQ ring (`IORING_SETUP_TASKRUN_FLAG`,
    /// 5.19), so a non-waiting submit knows to collect it.
    pub const TASKRUN_FLAG: Self = Self(1 << 3);
    /// Keep submitting a batch after one entry fails (`IORING_SETUP_SUBMIT_ALL`, 5.18).
    pub const SUBMIT_ALL: Self = Self(1 << 4);
    /// A completion queue larger than the submission queue (`IORING_SETUP_CQSIZE`, 5.5).
    pub const CQSIZE: Self = Self(1 << 5);

    const NAMES: [(Self, &'static str); 6] = [
        (Self::SINGLE_ISSUER, "single_issuer"),
        (Self::DEFER_TASKRUN, "defer_taskrun"),
        (Self::COOP_TASKRUN, "coop_taskrun"),
        (Self::TASKRUN_FLAG, "taskrun_flag"),
        (Self::SUBMIT_ALL, "submit_all"),
        (Self::CQSIZE, "cqsize"),
    ];

    /// No flags.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Every flag `fio-ring` knows how to use.
    pub const fn all() -> Self {
        Self(0b11_1111)
    }

    /// Whether every flag in `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// `self` without the flags in `other`.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }
}

impl fmt::Debug for SetupFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SetupFlags({self})")
    }
}

impl fmt::Display for SetupFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// How to build a [`Ring`](crate::Ring).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use fio_ring::{Ring, RingConfig, SetupFlags};
/// let config = RingConfig::new(64)
///     .cq_entries(1024)
///     .without(SetupFlags::DEFER_TASKRUN)
///     .drop_timeout(Duration::from_secs(1));
/// let ring = Ring::new(config)?;
/// assert!(!ring.features().setup_flags().contains(SetupFlags::DEFER_TASKRUN));
/// # Ok::<(), fio_ring::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingConfig {
    pub(crate) entries: u32,
    pub(crate) cq_entries: Option<u32>,
    pub(crate) preferred: SetupFlags,
    pub(crate) drop_timeout: Duration,
    pub(crate) assumed_kernel: Option<KernelVersion>,
    pub(crate) batch_wait: Option<BatchWait>,
}

/// A batching wait: see [`RingConfig::batch_wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchWait {
    pub(crate) completions: u32,
    pub(crate) min_wait_usec: u32,
}

impl BatchWait {
    /// The batching wait for `completions` within `min_wait` (rounded down to microseconds,
    /// capped at `u32::MAX` of them); `None` (off) for fewer than 2 or a zero wait.
    pub(crate) fn new(completions: u32, min_wait: Duration) -> Option<Self> {
        let min_wait_usec = u32::try_from(min_wait.as_micros()).unwrap_or(u32::MAX);
        (completions > 1 && min_wait_usec > 0).then_some(Self {
            completions,
            min_wait_usec,
        })
    }
}

impl RingConfig {
    /// A configuration with `entries` submission queue entries (rounded up to a power of two
    /// by the kernel), a completion queue four times larger, every setup flag preferred and a
    /// five-second bound on draining in-flight operations at drop.
    pub fn new(entries: u32) -> Self {
        Self {
            entries,
            cq_entries: None,
            preferred: SetupFlags::all(),
            drop_timeout: Duration::from_secs(5),
            assumed_kernel: None,
            batch_wait: None,
        }
    }

    /// Sets the completion queue size (default: 4 x `entries`).
    pub fn cq_entries(mut self, entries: u32) -> Self {
        self.cq_entries = Some(entries);
        self
    }

    /// Never tries the flags in `flags` (for example to share the ring's submission across
    /// threads, leave out [`SetupFlags::SINGLE_ISSUER`]; `Ring` itself stays `!Send`).
    pub fn without(mut self, flags: SetupFlags) -> Self {
        self.preferred = self.preferred.difference(flags);
        self
    }

    /// Bounds how long dropping a ring waits for in-flight operations to finish; whatever the
    /// kernel still holds after that is leaked, never freed.
    pub fn drop_timeout(mut self, timeout: Duration) -> Self {
        self.drop_timeout = timeout;
        self
    }

    /// Treats the kernel as version `version` (never newer than the real one) for the
    /// features the probe cannot see: multishot receive, accept and timeouts. Lets tests and
    /// cautious deployments exercise the fallbacks (for example the ring's own re-arming of
    /// repeating timeouts) on a newer kernel.
    pub fn assume_kernel(mut self, version: KernelVersion) -> Self {
        self.assumed_kernel = Some(version);
        self
    }

    /// Makes a blocking [`Ring::wait`](crate::Ring::wait) batch completions: it waits up to
    /// `min_wait` for `completions` of them, and after that returns at the first one (or at
    /// its own timeout), so one kernel entry collects several completions under load at the
    /// price of up to `min_wait` of added latency. Without it a blocking wait returns at the
    /// first completion. Opt-in because it changes latency; a wait that must not block is
    /// unaffected.
    ///
    /// Needs the kernel's minimum wait time (`IORING_FEAT_MIN_TIMEOUT`, Linux 6.12); on older
    /// kernels it is ignored ([`Features::batch_wait`](crate::Features::batch_wait) says
    /// whether it is used). `min_wait` is rounded down to microseconds and capped at
    /// `u32::MAX` of them; `completions` of 0 or 1, or a zero `min_wait`, turn it off.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use fio_ring::{Op, Ring, RingConfig};
    /// let mut ring = Ring::new(RingConfig::new(64).batch_wait(32, Duration::from_micros(50)))?;
    /// ring.submit(Op::nop(), |_, _| {})?;
    /// // One nop in flight: the wait returns once the 50 us passed with it completed.
    /// assert_eq!(ring.wait(None)?, 1);
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    pub fn batch_wait(mut self, completions: u32, min_wait: Duration) -> Self {
        self.batch_wait = BatchWait::new(completions, min_wait);
        self
    }

    fn validate(&self) -> Result<u32, Error> {
        if self.entries == 0 || self.entries > MAX_ENTRIES {
            return Err(Error::InvalidConfig {
                reason: "entries must be between 1 and 32768",
            });
        }
        let sq = self.entries.next_power_of_two();
        let cq = self.cq_entries.unwrap_or(sq.saturating_mul(4));
        if cq < sq {
            return Err(Error::InvalidConfig {
                reason: "the completion queue must not be smaller than the submission queue",
            });
        }
        Ok(cq)
    }

    /// The flag sets to try, best first, each limited to the preferred flags.
    fn ladder(&self) -> Vec<SetupFlags> {
        let base = SetupFlags::CQSIZE;
        let submit_all = base.union(SetupFlags::SUBMIT_ALL);
        let coop = submit_all
            .union(SetupFlags::COOP_TASKRUN)
            .union(SetupFlags::TASKRUN_FLAG);
        let single = coop.union(SetupFlags::SINGLE_ISSUER);
        let defer = single.union(SetupFlags::DEFER_TASKRUN);
        let mut rungs: Vec<SetupFlags> = Vec::with_capacity(6);
        for rung in [defer, single, coop, submit_all, base, SetupFlags::empty()] {
            let rung = rung.intersection(self.preferred);
            if !rungs.contains(&rung) {
                rungs.push(rung);
            }
        }
        rungs
    }
}

/// Creates the io_uring instance, stepping down the flag ladder while the kernel answers
/// `EINVAL`, and marks the ring memory `MADV_DONTFORK`.
pub(crate) fn build(config: &RingConfig) -> Result<(IoUring, SetupFlags), Error> {
    let cq_entries = config.validate()?;
    let mut last_error = io::Error::from_raw_os_error(libc::EINVAL);
    for flags in config.ladder() {
        let mut builder = IoUring::builder();
        builder.dontfork();
        if flags.contains(SetupFlags::CQSIZE) {
            builder.setup_cqsize(cq_entries);
        }
        if flags.contains(SetupFlags::SUBMIT_ALL) {
            builder.setup_submit_all();
        }
        if flags.contains(SetupFlags::COOP_TASKRUN) {
            builder.setup_coop_taskrun();
        }
        if flags.contains(SetupFlags::TASKRUN_FLAG) {
            builder.setup_taskrun_flag();
        }
        if flags.contains(SetupFlags::SINGLE_ISSUER) {
            builder.setup_single_issuer();
        }
        if flags.contains(SetupFlags::DEFER_TASKRUN) {
            builder.setup_defer_taskrun();
        }
        match builder.build(config.entries) {
            Ok(ring) => {
                if !ring.params().is_feature_ext_arg() {
                    // Waiting with a timeout needs IORING_FEAT_EXT_ARG (5.11); older kernels
                    // are below everything else this crate relies on anyway.
                    return Err(Error::Setup {
                        entries: config.entries,
                        refusal: SetupRefusal::KernelTooOld,
                        source: io::Error::new(
                            io::ErrorKind::Unsupported,
                            "IORING_FEAT_EXT_ARG (Linux 5.11) is missing",
                        ),
                    });
                }
                return Ok((ring, flags));
            }
            Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {
                log::debug!("io_uring_setup refused flags [{flags}]: {error}; stepping down");
                last_error = error;
            }
            Err(error) => {
                return Err(Error::Setup {
                    entries: config.entries,
                    refusal: SetupRefusal::classify(&error),
                    source: error,
                });
            }
        }
    }
    Err(Error::Setup {
        entries: config.entries,
        refusal: SetupRefusal::classify(&last_error),
        source: last_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_steps_down_and_respects_preferences() {
        let ladder = RingConfig::new(8).ladder();
        assert_eq!(ladder.len(), 6);
        assert!(ladder[0].contains(SetupFlags::DEFER_TASKRUN));
        assert!(!ladder[1].contains(SetupFlags::DEFER_TASKRUN));
        assert!(ladder[1].contains(SetupFlags::SINGLE_ISSUER));
        assert_eq!(ladder[5], SetupFlags::empty());

        let ladder = RingConfig::new(8)
            .without(SetupFlags::DEFER_TASKRUN.union(SetupFlags::SINGLE_ISSUER))
            .ladder();
        assert_eq!(ladder.len(), 4, "{ladder:?}");
        assert!(
            ladder
                .iter()
                .all(|f| !f.contains(SetupFlags::SINGLE_ISSUER))
        );
    }

    #[test]
    fn validates_sizes() {
        assert!(matches!(
            RingConfig::new(0).validate(),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            RingConfig::new(MAX_ENTRIES + 1).validate(),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            RingConfig::new(16).cq_entries(8).validate(),
            Err(Error::InvalidConfig { .. })
        ));
        assert_eq!(RingConfig::new(5).validate().unwrap(), 32);
    }

    #[test]
    fn flags_display_by_name() {
        let flags = SetupFlags::SUBMIT_ALL.union(SetupFlags::CQSIZE);
        assert_eq!(flags.to_string(), "submit_all cqsize");
        assert_eq!(format!("{:?}", SetupFlags::empty()), "SetupFlags()");
    }

    #[test]
    fn builds_a_ring_on_this_kernel() {
        let (ring, flags) = build(&RingConfig::new(4)).unwrap();
        assert!(flags.contains(SetupFlags::CQSIZE));
        assert_eq!(ring.params().sq_entries(), 4);
        assert_eq!(ring.params().cq_entries(), 16);
    }
}
