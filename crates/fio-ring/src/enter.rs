//! The tick's kernel entry: `io_uring_enter(2)` made as cheap as the kernel allows.
//!
//! A reactor thread enters its ring once or more per tick, so what each entry costs beyond its
//! work matters:
//!
//! - The ring's descriptor is registered with the thread's io_uring context
//!   (`IORING_REGISTER_RING_FDS`, Linux 5.18), so an entry names it by index and the kernel
//!   skips the descriptor-table lookup and reference count a multi-threaded process pays on
//!   every entry. The registration belongs to the creating thread, which is the only one that
//!   can use a `Ring` (it is `!Send`), and is dropped with the ring.
//! - A blocking wait does not count as I/O wait (`IORING_ENTER_NO_IOWAIT`, where the kernel
//!   has it): a server waiting for its peers is idle, not stalled on a disk.
//! - A wait that must not block asks for zero completions instead of one within a zero
//!   timeout, which would make the kernel arm (and at once fire) a timer whenever nothing is
//!   ready; and it is skipped altogether when there is nothing to submit and the kernel flags
//!   no deferred completion work.

use std::io;
use std::os::fd::AsRawFd;
use std::ptr;
use std::time::Duration;

use io_uring::types::{SubmitArgs, Timespec};
use io_uring::{EnterFlags, IoUring};

use crate::config::{BatchWait, SetupFlags};
use crate::error::Error;
use crate::ring::Ring;

/// `IORING_REGISTER_RING_FDS` and `IORING_UNREGISTER_RING_FDS` (Linux 5.18).
const REGISTER_RING_FDS: libc::c_uint = 20;
const UNREGISTER_RING_FDS: libc::c_uint = 21;

/// `struct io_uring_rsrc_update`, the argument of the ring-descriptor registrations.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// How a ring's entries name it, and the flags they always carry.
#[derive(Debug)]
pub(crate) struct EnterPath {
    /// The registered index, or the descriptor when registration was refused.
    target: libc::c_int,
    /// `REGISTERED_RING` when `target` is an index.
    flags: u32,
    /// Added to blocking entries: `NO_IOWAIT` where the kernel has it.
    wait_flags: u32,
}

impl EnterPath {
    /// Registers `uring`'s descriptor with the calling thread, falling back to the plain
    /// descriptor when the kernel refuses (older than 5.18, or the thread's 16 slots taken).
    pub(crate) fn new(uring: &IoUring) -> Self {
        let fd = uring.as_raw_fd();
        let wait_flags = if uring.params().is_feature_no_iowait() {
            EnterFlags::NO_IOWAIT.bits()
        } else {
            0
        };
        let mut update = RsrcUpdate {
            // Any free slot.
            offset: u32::MAX,
            resv: 0,
            data: u64::from(fd.unsigned_abs()),
        };
        let arg = ptr::from_mut(&mut update);
        // SAFETY: `arg` points at one live `io_uring_rsrc_update` (the count passed is 1),
        // which the kernel reads and writes the allocated slot back into before returning.
        let registered =
            unsafe { libc::syscall(libc::SYS_io_uring_register, fd, REGISTER_RING_FDS, arg, 1) };
        match (registered, libc::c_int::try_from(update.offset)) {
            (1, Ok(index)) => Self {
                target: index,
                flags: EnterFlags::REGISTERED_RING.bits(),
                wait_flags,
            },
            _ => {
                log::debug!(
                    "io_uring ring descriptor not registered ({}); entering by descriptor",
                    io::Error::last_os_error()
                );
                Self {
                    target: fd,
                    flags: 0,
                    wait_flags,
                }
            }
        }
    }

    /// Whether entries name the ring by a registered index.
    pub(crate) fn is_registered(&self) -> bool {
        self.flags & EnterFlags::REGISTERED_RING.bits() != 0
    }

    /// Gives the registered slot back; entries use the descriptor from now on. Without it
    /// the thread's io_uring context would keep the ring (and its memory) until the thread
    /// exits.
    pub(crate) fn release(&mut self, uring: &IoUring) {
        if !self.is_registered() {
            return;
        }
        let Ok(offset) = u32::try_from(self.target) else {
            return;
        };
        let mut update = RsrcUpdate {
            offset,
            resv: 0,
            data: 0,
        };
        let arg = ptr::from_mut(&mut update);
        let fd = uring.as_raw_fd();
        // SAFETY: as in `new`: `arg` points at one live `io_uring_rsrc_update`.
        let released =
            unsafe { libc::syscall(libc::SYS_io_uring_register, fd, UNREGISTER_RING_FDS, arg, 1) };
        if released != 1 {
            log::warn!(
                "unregistering the io_uring ring descriptor: {}",
                io::Error::last_os_error()
            );
        }
        self.target = fd;
        self.flags = 0;
    }

    /// One `io_uring_enter(2)`: submits `to_submit` entries and, with `GETEVENTS` in
    /// `flags`, waits for `min_complete` completions within `args`' timeout.
    #[inline(always)]
    fn enter(
        &self,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
        args: Option<&SubmitArgs<'_, '_>>,
    ) -> io::Result<usize> {
        let (arg, size) = match args {
            Some(args) => (
                ptr::from_ref(args).cast::<libc::c_void>(),
                size_of::<SubmitArgs<'_, '_>>(),
            ),
            None => (ptr::null(), 0),
        };
        self.enter_raw(to_submit, min_complete, flags, arg, size)
    }

    /// `enter` with a batching wait: `EXT_ARG` with a minimum wait time.
    fn enter_batched(
        &self,
        to_submit: u32,
        flags: u32,
        batch: BatchWait,
        timeout: &Timespec,
    ) -> io::Result<usize> {
        let args = GeteventsArg {
            sigmask: 0,
            sigmask_sz: 0,
            min_wait_usec: batch.min_wait_usec,
            ts: ptr::from_ref(timeout) as u64,
        };
        self.enter_raw(
            to_submit,
            batch.completions,
            flags | EnterFlags::EXT_ARG.bits(),
            ptr::from_ref(&args).cast::<libc::c_void>(),
            size_of::<GeteventsArg>(),
        )
    }

    /// `io_uring_enter(2)` with the extended argument `arg` of `size` bytes (or none).
    #[inline(always)]
    fn enter_raw(
        &self,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
        arg: *const libc::c_void,
        size: usize,
    ) -> io::Result<usize> {
        // SAFETY: the kernel reads only the rings, whose staged entries point at memory owned
        // by live in-flight slots (see `Ring::stage`), and, with `EXT_ARG`, the
        // `io_uring_getevents_arg` behind `arg` (a `GeteventsArg`, or a `SubmitArgs`, a
        // transparent wrapper of it) and the timespec it points to, all borrowed by the
        // callers for the whole call.
        let entered = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                self.target,
                to_submit,
                min_complete,
                flags | self.flags,
                arg,
                size,
            )
        };
        usize::try_from(entered).map_err(|_| io::Error::last_os_error())
    }
}

/// The kernel's `struct io_uring_getevents_arg` with its 6.12 field, `min_wait_usec`, which
/// the io-uring crate's `SubmitArgs` has no setter for.
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

const _: () = assert!(size_of::<GeteventsArg>() == size_of::<SubmitArgs<'_, '_>>());

/// The timeout a batching wait without one is given, see [`Ring::enter`].
const BATCH_WAIT_TIMEOUT: Duration = Duration::from_secs(3600);

impl Ring {
    /// The single kernel entry of a blocking tick: submits what is staged and waits up to
    /// `timeout` (`None`: indefinitely) for one completion, or, with a batching wait, for a
    /// batch of them within its minimum wait time and then for one.
    ///
    /// Inlined into the tick with the two functions below it: left to the compiler, small
    /// changes to `Ring::wait` moved them out of line and back, costing 20-30 instructions
    /// per blocking tick each time.
    #[inline(always)]
    pub(crate) fn enter(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        let staged = self.staged_entries();
        let flags = EnterFlags::GETEVENTS.bits() | self.enter_path.wait_flags;
        if let Some(batch) = self.batch_wait {
            // The kernel ends a wait without a timeout when its minimum wait expires, even
            // with nothing completed; with one, it goes on waiting for the first completion
            // instead. So an indefinite wait gets a long timeout (the tick then simply ends
            // empty-handed, as a timeout does).
            let time = Timespec::from(timeout.unwrap_or(BATCH_WAIT_TIMEOUT));
            let result = self.enter_path.enter_batched(staged, flags, batch, &time);
            return enter_result(result);
        }
        let wanted = self.wait_target();
        let result = match timeout {
            // Without a timeout no extended argument is needed, which spares the kernel a copy.
            None => self.enter_path.enter(staged, wanted, flags, None),
            Some(timeout) => {
                let time = Timespec::from(timeout);
                let args = SubmitArgs::new().timespec(&time);
                let flags = flags | EnterFlags::EXT_ARG.bits();
                self.enter_path.enter(staged, wanted, flags, Some(&args))
            }
        };
        enter_result(result)
    }

    /// How many completions a blocking wait asks the kernel for: one, plus the staged
    /// [`Op::unawaited`] operations that complete while they are submitted (their
    /// completions are posted before the kernel starts waiting, so the wait ends at the first
    /// other one). Only when every staged entry goes in with this entry (no backlog) and the
    /// kernel posts each one's completion at submission.
    ///
    /// [`Op::unawaited`]: crate::Op::unawaited
    fn wait_target(&self) -> u32 {
        if self.unawaited_staged > 0 && self.can_wait_past_unawaited && self.backlog_is_empty() {
            self.unawaited_staged.saturating_add(1)
        } else {
            1
        }
    }

    /// The kernel entry of a tick that must not block: submits what is staged and collects
    /// what completed, waiting for nothing. `GETEVENTS` is still passed: under
    /// `DEFER_TASKRUN` it is what runs the deferred completion work.
    #[inline(always)]
    pub(crate) fn enter_polling(&mut self) -> Result<(), Error> {
        let staged = self.staged_entries();
        let result = self
            .enter_path
            .enter(staged, 0, EnterFlags::GETEVENTS.bits(), None);
        enter_result(result)
    }

    /// A kernel entry that only submits what is staged (`io_uring_submit`): no wait, and no
    /// completion work run, which the tick's own entry does.
    pub(crate) fn enter_submitting(&mut self) -> Result<(), Error> {
        let staged = self.staged_entries();
        if staged == 0 {
            return Ok(());
        }
        enter_result(self.enter_path.enter(staged, 0, 0, None))
    }

    /// Whether the kernel may hold completions that only a kernel entry makes visible:
    /// deferred completion work (flagged in the SQ ring with `TASKRUN_FLAG`) or an overflow
    /// backlog. Without `TASKRUN_FLAG` nothing says so, and the answer is always yes.
    pub(crate) fn kernel_holds_completions(&mut self) -> bool {
        let flagged = self
            .features
            .setup_flags()
            .contains(SetupFlags::TASKRUN_FLAG);
        let queue = self.uring.submission();
        !flagged || queue.taskrun() || queue.cq_overflow()
    }

    /// Entries in the submission queue, for the entry's `to_submit`.
    fn staged_entries(&mut self) -> u32 {
        u32::try_from(self.uring.submission().len()).unwrap_or(u32::MAX)
    }
}

/// An `io_uring_enter(2)` result as a tick sees it: a timeout, a signal or a CQ overflow
/// backlog the kernel wants drained first end the wait normally.
fn enter_result(result: io::Result<usize>) -> Result<(), Error> {
    match result {
        Ok(_) => Ok(()),
        Err(error) => match error.raw_os_error() {
            Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => Ok(()),
            _ => Err(Error::Io(error)),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{KernelVersion, Op, Ring, RingConfig};

    /// Whether this kernel registers ring descriptors (Linux 5.18).
    fn registers(ring: &Ring) -> bool {
        ring.features().kernel() >= KernelVersion::new(5, 18, 0)
    }

    #[test]
    fn rings_enter_by_registered_index_and_give_it_back() {
        // A thread has 16 registration slots: sixty rings made and dropped one after the
        // other all get one only if each drop gives its slot back.
        for round in 0..60 {
            let mut ring = Ring::new(RingConfig::new(4)).unwrap();
            assert_eq!(
                ring.enter_path.is_registered(),
                registers(&ring),
                "round {round}"
            );
            ring.submit(Op::nop(), |_, completion| assert!(completion.is_final()))
                .unwrap();
            assert_eq!(ring.wait(Some(Duration::from_secs(10))).unwrap(), 1);
        }
    }

    #[test]
    fn more_live_rings_than_slots_enter_by_descriptor() {
        let mut rings: Vec<Ring> = (0..20)
            .map(|_| Ring::new(RingConfig::new(4)).unwrap())
            .collect();
        // The kernel gives a thread 16 slots; the rest enter by descriptor.
        assert!(rings.iter().any(|ring| !ring.enter_path.is_registered()));
        assert_eq!(
            rings
                .iter()
                .filter(|ring| ring.enter_path.is_registered())
                .count(),
            if registers(&rings[0]) { 16 } else { 0 }
        );
        for ring in &mut rings {
            ring.submit(Op::nop(), |_, _| {}).unwrap();
            assert_eq!(ring.wait(None).unwrap(), 1);
        }
    }
}
