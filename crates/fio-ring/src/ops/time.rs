//! Timeouts: one-shot, repeating, and the entry linked behind an operation to bound it.

use std::time::Duration;

use io_uring::types::{TimeoutFlags, Timespec};
use io_uring::{opcode, squeue};

use super::{Op, Resources};
use crate::buf::KernelBox;
use crate::features::OpKind;

impl Op {
    /// Fires once after `after`. The completion is `Ok(0)` when the timeout expires (the
    /// kernel's `-ETIME` is the normal outcome, not an error) and `ECANCELED` when it was
    /// cancelled first.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use fio_ring::{Op, Ring, RingConfig};
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// ring.submit(Op::timeout(Duration::from_millis(1)), |_, fired| {
    ///     assert_eq!(fired.result().ok(), Some(0));
    /// })?;
    /// assert_eq!(ring.wait(None)?, 1);
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    pub fn timeout(after: Duration) -> Op {
        let time = KernelBox::new(Timespec::from(after));
        let entry = timeout_entry(time.as_ptr(), false);
        Op::new(entry, Resources::Time(time), OpKind::Timeout)
    }

    /// Fires every `interval` until cancelled. Each expiry reaches the handler as a non-final
    /// `Ok(0)` completion; the final one is `ECANCELED`.
    ///
    /// Uses `IORING_TIMEOUT_MULTISHOT` on Linux 6.4 and later; on older kernels the ring
    /// re-arms the timeout itself after each expiry, under the same [`OpId`](crate::OpId).
    pub fn timeout_repeating(interval: Duration) -> Op {
        let mut op = Op::timeout(interval);
        op.repeat = true;
        op
    }
}

/// A relative timeout entry on `time`, counting no completions, multishot when asked.
pub(crate) fn timeout_entry(time: *const Timespec, multishot: bool) -> squeue::Entry {
    let flags = if multishot {
        TimeoutFlags::MULTISHOT
    } else {
        TimeoutFlags::empty()
    };
    opcode::Timeout::new(time).count(0).flags(flags).build()
}

/// A link-timeout entry on `time`, to follow an entry flagged `IO_LINK`.
pub(crate) fn link_timeout_entry(time: *const Timespec) -> squeue::Entry {
    opcode::LinkTimeout::new(time).build()
}
