//! [`Ring`]: submission, the in-flight table and the tick (FastRing's `WaitForFastRing`).

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::mem;
use std::os::fd::RawFd;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use io_uring::types::Timespec;
use io_uring::{IoUring, opcode, squeue};

use crate::buf::KernelBox;
use crate::completion::Completion;
use crate::config::{self, RingConfig, SetupFlags};
use crate::cq::CompletionRing;
use crate::enter::EnterPath;
use crate::error::Error;
use crate::features::{Features, OpKind};
use crate::handle::Shared;
use crate::handler::StoredHandler;
use crate::inflight::{IGNORED_USER_DATA, OpId, Slab};
use crate::ops::{Op, Resources, group_receive_entry, time};
use crate::provider::{self, BufferProvider};

/// A completion handler: called once per completion of its operation, with the ring so that
/// it can submit and cancel operations.
///
/// [`Ring::submit`] takes any such closure; it stores small ones (up to three captured
/// pointers) in the in-flight table without allocating. A boxed handler of this type is
/// accepted too.
pub type Handler = Box<dyn FnMut(&mut Ring, Completion)>;

/// A one-shot callback run at the end of a tick (after every completion was dispatched).
pub type TickEnd = Box<dyn FnOnce(&mut Ring)>;

/// Work that waits in the ring's end-of-tick flush list ([`Ring::flush_at_tick_end`]):
/// typically a socket that queued data this tick and starts its send once the tick's
/// completions were all dispatched, so that what one tick wrote goes out in one operation.
///
/// # Examples
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use fio_ring::{Ring, RingConfig, TickEndFlush};
///
/// /// Counts its flushes.
/// struct Counter(Cell<u32>);
///
/// impl TickEndFlush for Counter {
///     fn flush(self: Rc<Self>, _ring: &mut Ring) {
///         self.0.set(self.0.get() + 1);
///     }
/// }
/// let mut ring = Ring::new(RingConfig::new(8))?;
/// let counter = Rc::new(Counter(Cell::new(0)));
/// ring.flush_at_tick_end(counter.clone());
/// ring.wait(Some(std::time::Duration::ZERO))?;
/// assert_eq!(counter.0.get(), 1);
/// # Ok::<(), fio_ring::Error>(())
/// ```
pub trait TickEndFlush {
    /// Runs once per [`Ring::flush_at_tick_end`], at the end of the tick; it may submit
    /// operations (they reach the kernel in the next kernel entry) and enlist flushes again
    /// (those run in the same end of tick).
    fn flush(self: Rc<Self>, ring: &mut Ring);
}

/// Who receives an operation's completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receiver {
    /// The user's handler, kept in the slot's `handler`.
    User,
    /// The ring's own wake-up read on the [`RingHandle`](crate::RingHandle) eventfd.
    Wake,
    /// Nobody: the completion only frees the slot (link timeouts).
    Silent,
}

/// One in-flight operation: everything the kernel may touch, kept until the final completion.
///
/// `repr(C)`, hot fields first: with the slab's own header in front, everything a plain
/// completion or a multishot receive's next buffer reads (liveness, kind, group, handler, the
/// resources' tag, `rearm`) shares the slot's first cache line.
#[repr(C)]
pub(crate) struct OpSlot {
    pub(crate) kind: OpKind,
    pub(crate) receiver: Receiver,
    /// The final completion needs no more than freeing the slot and calling the handler: a
    /// user op with no buffer group, not a timeout or zero-copy send. Decided at submission
    /// so that dispatch tests one byte.
    pub(crate) plain: bool,
    /// A repeating timeout on a kernel without `IORING_TIMEOUT_MULTISHOT`.
    pub(crate) repeat_manually: bool,
    /// The buffer group a buffer-select op picks from. Here, in what would be padding before
    /// the handler, so that a multishot receive's completion reads only the first line.
    pub(crate) group: Option<u16>,
    /// The user's handler (`Receiver::User` only). Taken out while it runs, so that it can
    /// borrow the ring mutably. Its own field, without an enum around it, so that taking it
    /// out is a plain copy of its words.
    pub(crate) handler: Option<StoredHandler>,
    /// The entry to submit again for the ops the ring re-arms that can't be built again
    /// from the slot (manual repeating timeouts, the wake-up read); see [`Self::rearm_entry`].
    pub(crate) rearm: Option<Box<squeue::Entry>>,
    /// The memory the entry points at; freed only with the slot.
    pub(crate) resources: Resources,
    /// `cancel` was called: never re-arm again.
    pub(crate) cancelled: bool,
    /// Waiting in `Ring::starved` for its buffer group to be refilled; no kernel request.
    pub(crate) starved: bool,
    /// A zero-copy send's byte count, held until the final notification.
    pub(crate) transferred: i32,
    /// A buffer-group receive's descriptor, to build its entry again when it is re-armed
    /// (`-1` for other ops). In what was the slot's padding.
    pub(crate) group_fd: RawFd,
}

// With the slab's 8-byte header, a slot fits one 128-byte pair of cache lines: the in-flight
// table's memory per operation (one per idle connection) stays 128 bytes.
const _: () = assert!(size_of::<OpSlot>() <= 120);
// The slab's header takes the line's first 8 bytes; `group` must stay in the first line.
const _: () = assert!(std::mem::offset_of!(OpSlot, group) + size_of::<Option<u16>>() <= 56);

/// A completion queue entry copied out of the ring (or made up by the ring itself).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawCqe {
    pub(crate) user_data: u64,
    pub(crate) res: i32,
    pub(crate) flags: u32,
}

/// Entries waiting for room in the submission queue; a linked pair stays together so that the
/// chain is never split across two kernel entries.
enum Staged {
    One(squeue::Entry),
    Linked([squeue::Entry; 2]),
}

impl Staged {
    fn entries(&self) -> &[squeue::Entry] {
        match self {
            Staged::One(entry) => std::slice::from_ref(entry),
            Staged::Linked(pair) => pair,
        }
    }
}

/// A safe, batched io_uring instance: one per reactor thread.
///
/// Operations ([`Op`]) move their buffers and other resources into the ring's in-flight table
/// when submitted; the table gives them back only with the final completion, so the kernel
/// never sees freed memory. [`wait`](Self::wait) is one tick: stage, enter the kernel once,
/// dispatch every completion, run end-of-tick callbacks.
///
/// `Ring` is `!Send` (the kernel is told only this thread submits). Other threads reach it
/// through a [`RingHandle`](crate::RingHandle).
///
/// # Examples
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use fio_ring::{Op, Ring, RingConfig};
///
/// let mut ring = Ring::new(RingConfig::new(32))?;
/// let done = Rc::new(Cell::new(0));
/// for _ in 0..3 {
///     let done = done.clone();
///     ring.submit(Op::nop(), move |_, completion| {
///         assert!(completion.is_final());
///         done.set(done.get() + 1);
///     })?;
/// }
/// for _ in 0..10 {
///     if done.get() == 3 { break; }
///     ring.wait(None)?;
/// }
/// assert_eq!(done.get(), 3);
/// # Ok::<(), fio_ring::Error>(())
/// ```
pub struct Ring {
    pub(crate) uring: IoUring,
    /// The completion queue, read in place by the tick.
    pub(crate) cq: CompletionRing,
    /// Every operation the kernel may still complete, keyed by its `user_data`.
    pub(crate) ops: Slab<OpSlot>,
    /// Entries that did not fit in the submission queue, in order.
    backlog: VecDeque<Staged>,
    /// Completions made up by the ring (a cancelled starved op), dispatched next tick.
    pub(crate) synthetic: Vec<RawCqe>,
    pub(crate) tick_end: Vec<StoredHandler>,
    /// The list `run_tick_end` swaps in while it runs `tick_end`'s callbacks: the two trade
    /// places every tick and keep their capacity, so registering allocates nothing.
    pub(crate) tick_end_spare: Vec<StoredHandler>,
    /// The end-of-tick flush list ([`Ring::flush_at_tick_end`]): one reference-count
    /// increment and one push per entry, no callback stored per entry.
    pub(crate) flushes: Vec<Rc<dyn TickEndFlush>>,
    /// The list `run_flushes` swaps in while it drains `flushes` (as `tick_end_spare`).
    pub(crate) flushes_spare: Vec<Rc<dyn TickEndFlush>>,
    /// Registered buffer groups; few per ring, so a linear search is fastest.
    pub(crate) providers: Vec<BufferProvider>,
    /// Buffer-group receives that ended with `ENOBUFS` and wait for buffers.
    pub(crate) starved: Vec<OpId>,
    /// A buffer group ran dry or is short of its target, or a receive starved, since the
    /// last replenish: the next one has refilling or re-arming to do. Lets a tick skip the
    /// groups with one test.
    pub(crate) replenish_due: bool,
    /// A buffer group staged entries (a received buffer's replacement) that the kernel
    /// does not see yet: the end of the tick publishes its tail.
    pub(crate) publish_due: bool,
    pub(crate) handle: Option<Arc<Shared>>,
    /// The wake-up read of [`handle`](Self::handle) is in flight: set when it is first
    /// armed, cleared when it ends for good.
    pub(crate) wake_read_armed: bool,
    pub(crate) features: Features,
    pub(crate) config: RingConfig,
    /// Set while handlers and tick-end callbacks run, to refuse a re-entrant `wait`.
    pub(crate) dispatching: bool,
    /// Entries were put in the submission queue since the last kernel entry.
    staged: bool,
    /// How `io_uring_enter(2)` names this ring and which flags every entry adds.
    pub(crate) enter_path: EnterPath,
    /// One bit per [`OpKind`] this kernel supports, for a branch-free check on submit.
    supported: u64,
    /// The configured batching wait, where the kernel has it.
    pub(crate) batch_wait: Option<config::BatchWait>,
    /// The kernel posts the completion of every entry a kernel entry submits, even of one
    /// that fails, before it waits (`SUBMIT_ALL`; `MSG_DONTWAIT` sends never wait since Linux
    /// 6.0): what a wait past [`Op::unawaited`] operations relies on.
    pub(crate) can_wait_past_unawaited: bool,
    /// [`Op::unawaited`] operations that complete at submission, staged since the last
    /// kernel entry that collected completions: that entry waits for one completion more.
    pub(crate) unawaited_staged: u32,
    _not_send: PhantomData<*mut ()>,
}

impl Ring {
    /// Creates a ring, trying the best setup flags first and stepping down while the kernel
    /// refuses them, then probes what the kernel supports.
    ///
    /// # Errors
    /// - [`Error::InvalidConfig`] when `config` is out of range.
    /// - [`Error::Setup`] when io_uring cannot be used at all; its
    ///   [`SetupRefusal`](crate::SetupRefusal) says why (seccomp/sysctl, no kernel support,
    ///   memlock, old kernel) so the caller can fall back to another engine.
    /// - [`Error::Io`] when the kernel version cannot be read.
    pub fn new(config: RingConfig) -> Result<Self, Error> {
        let mut kernel = fio_sys::kernel_version()?;
        if let Some(assumed) = config.assumed_kernel {
            kernel = kernel.min(assumed);
        }
        let (uring, setup) = config::build(&config)?;
        let mut features = Features::probe(&uring, setup, kernel);
        features.set_buf_ring(provider::probe_buf_ring(&uring));
        features.set_min_timeout(
            uring.params().is_feature_min_timeout()
                && kernel >= crate::KernelVersion::new(6, 12, 0),
        );
        log::debug!("{features}");
        let supported = features.supported_mask();
        let capacity = uring.params().cq_entries() as usize;
        let cq = CompletionRing::map(&uring).map_err(Error::Io)?;
        let enter_path = EnterPath::new(&uring);
        let batch_wait = config.batch_wait.filter(|_| features.batch_wait());
        let can_wait_past_unawaited = features.setup_flags().contains(SetupFlags::SUBMIT_ALL)
            && kernel >= crate::KernelVersion::new(6, 0, 0);
        Ok(Self {
            uring,
            cq,
            ops: Slab::with_capacity(capacity),
            backlog: VecDeque::new(),
            synthetic: Vec::new(),
            tick_end: Vec::new(),
            tick_end_spare: Vec::new(),
            flushes: Vec::new(),
            flushes_spare: Vec::new(),
            providers: Vec::new(),
            starved: Vec::new(),
            replenish_due: false,
            publish_due: false,
            handle: None,
            wake_read_armed: false,
            features,
            config,
            dispatching: false,
            staged: false,
            enter_path,
            supported,
            batch_wait,
            can_wait_past_unawaited,
            unawaited_staged: 0,
            _not_send: PhantomData,
        })
    }

    /// What this kernel supports.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Changes the batching wait of the following blocking [`wait`](Self::wait)s, as
    /// [`RingConfig::batch_wait`] sets it at creation: up to `min_wait` for `completions` of
    /// them, then the first. `completions` of 0 or 1, or a zero `min_wait`, turn it off, so a
    /// caller can batch only while it knows many operations are about to complete (a lone
    /// one would otherwise wait `min_wait` for nothing). Returns whether batching is on: on
    /// a kernel without a minimum wait time ([`Features::batch_wait`]) it never is.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use fio_ring::{Ring, RingConfig};
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let on = ring.set_batch_wait(16, Duration::from_micros(50));
    /// assert_eq!(on, ring.features().batch_wait());
    /// assert!(!ring.set_batch_wait(0, Duration::from_micros(50)));
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    ///
    /// [`RingConfig::batch_wait`]: crate::RingConfig::batch_wait
    /// [`Features::batch_wait`]: crate::Features::batch_wait
    pub fn set_batch_wait(&mut self, completions: u32, min_wait: Duration) -> bool {
        self.batch_wait =
            config::BatchWait::new(completions, min_wait).filter(|_| self.features.batch_wait());
        self.batch_wait.is_some()
    }

    /// Operations in flight, including the ring's own (the wake-up read of a
    /// [`RingHandle`](crate::RingHandle), link timeouts). Once a handle exists this never
    /// drops to 0: wait for your own operations with [`is_idle`](Self::is_idle).
    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }

    /// Operations in flight that the caller submitted: [`in_flight`](Self::in_flight) without
    /// the ring's own wake-up read, which stays armed for as long as a
    /// [`RingHandle`](crate::RingHandle) may wake the ring. Loop on this (or
    /// [`is_idle`](Self::is_idle)), not on `in_flight`, to wait for your operations.
    pub fn in_flight_user(&self) -> usize {
        self.ops.len() - usize::from(self.wake_armed())
    }

    /// Whether none of the caller's operations is in flight (`in_flight_user() == 0`).
    ///
    /// # Examples
    /// ```
    /// use fio_ring::{Op, Ring, RingConfig};
    ///
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let _handle = ring.handle()?; // arms the ring's own wake-up read
    /// ring.submit(Op::nop(), |_, _| {})?;
    /// while !ring.is_idle() {
    ///     ring.wait(None)?;
    /// }
    /// assert_eq!(ring.in_flight(), 1); // the wake-up read is still armed
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    pub fn is_idle(&self) -> bool {
        self.in_flight_user() == 0
    }

    /// Whether the operation `id` is still in flight.
    pub fn is_in_flight(&self, id: OpId) -> bool {
        self.ops.get(id).is_some()
    }

    /// Queues `op`; it reaches the kernel at the next [`wait`](Self::wait). `handler` is
    /// called for each of its completions during a later `wait`.
    ///
    /// # Errors
    /// - [`Error::Unsupported`] when this kernel lacks the operation.
    /// - [`Error::UnknownBufferGroup`] when the op picks from a group not registered here.
    #[inline]
    pub fn submit<F>(&mut self, op: Op, handler: F) -> Result<OpId, Error>
    where
        F: FnMut(&mut Ring, Completion) + 'static,
    {
        let (id, entry, unawaited) = self.prepare(op, StoredHandler::new(handler))?;
        self.stage_one(&entry);
        self.unawaited_staged += u32::from(unawaited);
        Ok(id)
    }

    /// Queues `op` with a deadline: if it has not completed `timeout` after submission it is
    /// cancelled and completes with `ECANCELED` (a linked timeout; both entries reach the
    /// kernel in the same batch).
    ///
    /// # Errors
    /// - as [`submit`](Self::submit), and [`Error::Unsupported`] without link timeouts.
    pub fn submit_with_timeout<F>(
        &mut self,
        op: Op,
        timeout: Duration,
        handler: F,
    ) -> Result<OpId, Error>
    where
        F: FnMut(&mut Ring, Completion) + 'static,
    {
        if !self.features.supports(OpKind::LinkTimeout) {
            return Err(Error::Unsupported {
                op: OpKind::LinkTimeout,
            });
        }
        let (id, entry, unawaited) = self.prepare(op, StoredHandler::new(handler))?;
        let time = KernelBox::new(Timespec::from(timeout));
        let link = time::link_timeout_entry(time.as_ptr());
        let slot = OpSlot::new(OpKind::LinkTimeout, Receiver::Silent, Resources::Time(time));
        let Some(link_id) = self.ops.insert(slot) else {
            // Nothing reached the kernel yet, so the op's memory can be freed right away.
            drop(self.ops.remove(id));
            return Err(table_full());
        };
        let pair = [
            entry.flags(squeue::Flags::IO_LINK),
            link.user_data(link_id.user_data()),
        ];
        self.stage(Staged::Linked(pair));
        self.unawaited_staged += u32::from(unawaited);
        Ok(id)
    }

    /// Queues a raw submission entry; its `user_data` is replaced by the new operation's id.
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when the in-flight table is full.
    ///
    /// # Safety
    /// Everything `entry` points to (buffers, iovecs, addresses, paths, timespecs) must stay
    /// valid, and memory the kernel writes must not be accessed, until `handler` has received
    /// the operation's final completion (one with [`Completion::is_final`]), or for as long as
    /// the ring lives if that never happens.
    pub unsafe fn push_raw<F>(&mut self, entry: squeue::Entry, handler: F) -> Result<OpId, Error>
    where
        F: FnMut(&mut Ring, Completion) + 'static,
    {
        let mut slot = OpSlot::new(OpKind::Raw, Receiver::User, Resources::None);
        slot.handler = Some(StoredHandler::new(handler));
        slot.plain = true;
        let id = self.ops.insert(slot).ok_or_else(table_full)?;
        self.stage(Staged::One(entry.user_data(id.user_data())));
        Ok(id)
    }

    /// Asks the kernel to cancel `id`. The operation's resources stay in the ring until its
    /// final completion arrives (`ECANCELED`, or its real result if it finished first), and
    /// its handler sees that completion as usual. Cancelling twice is harmless.
    ///
    /// # Errors
    /// - [`Error::StaleOp`] when `id` already completed; no other operation is touched.
    pub fn cancel(&mut self, id: OpId) -> Result<(), Error> {
        let slot = self.ops.get_mut(id).ok_or(Error::StaleOp(id))?;
        if slot.cancelled {
            return Ok(());
        }
        slot.cancelled = true;
        if slot.starved {
            // No kernel request exists while starved: complete it ourselves.
            slot.starved = false;
            self.starved.retain(|starved| *starved != id);
            self.synthetic.push(RawCqe {
                user_data: id.user_data(),
                res: -libc::ECANCELED,
                flags: 0,
            });
            return Ok(());
        }
        let entry = opcode::AsyncCancel::new(id.user_data())
            .build()
            .user_data(IGNORED_USER_DATA);
        self.stage_one(&entry);
        Ok(())
    }

    /// Registers a one-shot callback to run at the end of the current tick, after every
    /// completion was dispatched; FastRing's flush handlers, used to coalesce work issued
    /// during a tick. Called outside [`wait`](Self::wait), the callback runs at the start of
    /// the next `wait`, before its kernel entry, so that what it submits (typically the sends
    /// that code running between ticks queued) reaches the kernel in that entry.
    ///
    /// A callback capturing up to two pointers (an `Rc` or two) is stored without a heap
    /// allocation.
    pub fn on_tick_end<F>(&mut self, callback: F)
    where
        F: FnOnce(&mut Ring) + 'static,
    {
        // Stored like a completion handler (in place when small); it is called once, with
        // an empty completion it ignores (`Completion::tick_end`).
        let mut once = Some(callback);
        self.tick_end
            .push(StoredHandler::new(move |ring: &mut Ring, _: Completion| {
                if let Some(callback) = once.take() {
                    callback(ring);
                }
            }));
    }

    /// Enlists `item` in the end-of-tick flush list: its [`TickEndFlush::flush`] runs once
    /// at the end of the current tick, before the [`on_tick_end`](Self::on_tick_end)
    /// callbacks (outside [`wait`](Self::wait), at the start of the next one, before its
    /// kernel entry). Entries enlisted while the list is drained run in the same drain, so
    /// the operations they submit reach the kernel in this tick's entry. The caller keeps
    /// an entry from being enlisted twice if it wants one flush (a flag in its state).
    ///
    /// Cheaper than [`on_tick_end`](Self::on_tick_end) for state that already lives in an
    /// `Rc`: nothing is built or stored per entry but the `Rc` itself.
    #[inline]
    pub fn flush_at_tick_end(&mut self, item: Rc<dyn TickEndFlush>) {
        self.flushes.push(item);
    }

    /// One tick (FastRing's `WaitForFastRing`): runs the end-of-tick callbacks registered
    /// since the last tick, stages queued submissions, enters the kernel once, submitting them
    /// and waiting up to `timeout` (`None`: indefinitely) for at least one completion,
    /// dispatches every completion to its handler, then runs the end-of-tick callbacks,
    /// publishes refilled buffer groups and re-arms starved receives.
    ///
    /// It does not block when completions or callbacks are already pending, and returns at
    /// once with `Ok(0)` when nothing is in flight. With a zero timeout it enters the kernel
    /// only when there is something to submit or deferred completion work to run. Returns
    /// the number of completions delivered to handlers; a timeout or signal is not an error.
    ///
    /// Buffers given back to a group's pool are noticed at tick boundaries. When they are
    /// dropped on another thread while this one may be blocked here, follow with
    /// [`RingHandle::wake`](crate::RingHandle::wake) so starved receives resume promptly.
    ///
    /// # Panics
    /// Propagates a panic raised by a handler or callback. The ring stays usable: the
    /// completions not yet dispatched are delivered by the next `wait`.
    ///
    /// # Errors
    /// - [`Error::Reentrant`] when called from a handler or tick-end callback.
    /// - [`Error::Io`] when `io_uring_enter(2)` fails for another reason than a timeout,
    ///   signal or full completion queue.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<usize, Error> {
        if self.dispatching {
            return Err(Error::Reentrant);
        }
        // Callbacks registered between ticks go first, so that what they submit rides this
        // tick's kernel entry; they may have queued events for the caller, so the tick must
        // not block after them.
        let flushed = !self.tick_end.is_empty() || !self.flushes.is_empty();
        if flushed {
            self.guarded(Self::run_tick_end);
        }
        // Buffers returned since the last tick may let starved receives go again; they must be
        // armed before this tick's kernel entry or it could block with nothing to wake it.
        self.replenish();
        if !self.backlog.is_empty() {
            self.stage_backlog()?;
        }
        let ready = flushed
            || !self.synthetic.is_empty()
            || !self.tick_end.is_empty()
            || !self.flushes.is_empty()
            || !self.cq.is_empty();
        let queued = self.staged;
        if self.ops.len() == 0 && !ready && !queued {
            return Ok(0);
        }
        if ready || timeout == Some(Duration::ZERO) {
            // A poll: the kernel is entered only when it has something to take (staged
            // entries) or to give (deferred completion work, an overflow backlog).
            if queued || self.kernel_holds_completions() {
                self.enter_polling()?;
            }
        } else {
            self.enter(timeout)?;
        }
        self.staged = false;
        self.unawaited_staged = 0;
        Ok(self.guarded(|ring| {
            let handled = ring.dispatch();
            ring.end_tick();
            handled
        }))
    }

    /// Runs the end-of-tick work registered so far now ([`flush_at_tick_end`] entries, then
    /// [`on_tick_end`] callbacks), rather than at the start of the next
    /// [`wait`](Self::wait).
    ///
    /// That wait, finding end-of-tick work, must not block: the work may have reported
    /// something its caller has to see first (a failed send, say), which only the caller
    /// can tell. A caller that can tell calls this first, looks at what the work reported,
    /// and then waits, blocking if it has nothing to do: so a reply submitted at the end of a
    /// tick and the wait for the next request share one kernel entry. Does nothing from a
    /// handler or tick-end callback (the end of the tick runs after them anyway).
    ///
    /// # Examples
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use fio_ring::{Ring, RingConfig};
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// let ran = Rc::new(Cell::new(false));
    /// let seen = Rc::clone(&ran);
    /// ring.on_tick_end(move |_| seen.set(true));
    /// ring.run_tick_end_now();
    /// assert!(ran.get());
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    ///
    /// [`flush_at_tick_end`]: Self::flush_at_tick_end
    /// [`on_tick_end`]: Self::on_tick_end
    pub fn run_tick_end_now(&mut self) {
        if !self.dispatching && (!self.tick_end.is_empty() || !self.flushes.is_empty()) {
            self.guarded(Self::run_tick_end);
        }
    }

    /// Hands what was submitted since the last tick to the kernel now, without waiting and
    /// without dispatching completions (the next [`wait`](Self::wait) does): for work that
    /// should start before the tick ends, such as a reply a peer waits on while this thread
    /// has more to do first. Costs a system call; does nothing when nothing is staged, or
    /// from a handler or tick-end callback (the tick's own kernel entry follows them).
    ///
    /// # Errors
    /// - [`Error::Io`] when `io_uring_enter(2)` fails for another reason than a signal or a
    ///   full completion queue (what stays staged goes with the next `wait`).
    ///
    /// # Examples
    /// ```
    /// use fio_ring::{Op, Ring, RingConfig};
    /// let mut ring = Ring::new(RingConfig::new(8))?;
    /// ring.submit(Op::nop(), |_, _| {})?;
    /// ring.submit_staged()?;
    /// ring.submit_staged()?; // nothing staged any more
    /// assert_eq!(ring.wait(None)?, 1);
    /// # Ok::<(), fio_ring::Error>(())
    /// ```
    pub fn submit_staged(&mut self) -> Result<(), Error> {
        if !self.staged || self.dispatching {
            return Ok(());
        }
        self.stage_backlog()?;
        self.enter_submitting()?;
        self.staged = !self.backlog.is_empty();
        // Those that completed at once wait in the completion queue, which keeps the next
        // wait from blocking: none is left for a wait past them to count.
        self.unawaited_staged = 0;
        Ok(())
    }

    /// Runs `work` (which calls handlers or callbacks), making sure a panic in it propagates
    /// without leaving the ring marked as dispatching, which would refuse every later wait;
    /// completions not yet dispatched stay queued.
    fn guarded<T>(&mut self, work: impl FnOnce(&mut Self) -> T) -> T {
        match panic::catch_unwind(AssertUnwindSafe(|| work(self))) {
            Ok(value) => value,
            Err(payload) => {
                self.dispatching = false;
                panic::resume_unwind(payload)
            }
        }
    }

    /// Validates `op`, moves it into the in-flight table and returns its id, its final entry,
    /// and whether it is an [`Op::unawaited`] one that completes at submission (which the
    /// caller counts once it is staged: an op refused here or later is never waited past).
    /// Inlined, so that [`submit`](Self::submit)'s entry goes from the op to the submission
    /// queue without a copy in between.
    #[inline(always)]
    fn prepare(
        &mut self,
        op: Op,
        handler: StoredHandler,
    ) -> Result<(OpId, squeue::Entry, bool), Error> {
        let Op {
            mut entry,
            resources,
            kind,
            group,
            group_fd,
            repeat,
            unawaited,
            completes_at_submission,
        } = op;
        let id = self.register(
            &mut entry,
            resources,
            kind,
            (group, group_fd),
            repeat,
            handler,
        )?;
        Ok((id, entry, unawaited && completes_at_submission))
    }

    /// Validates an op's parts, moves its resources into the in-flight table and tags `entry`
    /// with the new id.
    #[inline(always)]
    fn register(
        &mut self,
        entry: &mut squeue::Entry,
        mut resources: Resources,
        kind: OpKind,
        (group, group_fd): (Option<u16>, RawFd),
        repeat: bool,
        handler: StoredHandler,
    ) -> Result<OpId, Error> {
        if self.supported & kind.bit() == 0 {
            return Err(Error::Unsupported { op: kind });
        }
        if let Some(group) = group
            && !self.providers.iter().any(|provider| provider.id() == group)
        {
            return Err(Error::UnknownBufferGroup(group));
        }
        let mut repeat_manually = false;
        if repeat && let Resources::Time(time) = &resources {
            if self.features.multishot_timeout() {
                *entry = time::timeout_entry(time.as_ptr(), true);
            } else {
                repeat_manually = true;
            }
        }
        // Fill the vacant slot field by field, in place: cheaper than moving a whole slot.
        let (id, slot) = self.ops.claim().ok_or_else(table_full)?;
        // Only now is the op certain to reach the kernel: a refused one drops its resources,
        // which closes a descriptor it was to close.
        resources.on_submit();
        entry.set_user_data(id.user_data());
        slot.kind = kind;
        slot.receiver = Receiver::User;
        // A vacant slot holds no handler, so there is nothing to drop.
        debug_assert!(slot.handler.is_none(), "slot was not vacant");
        mem::forget(slot.handler.replace(handler));
        slot.plain = group.is_none() && !matches!(kind, OpKind::Timeout | OpKind::SendZc);
        slot.set_resources(kind, resources);
        slot.group = group;
        slot.repeat_manually = repeat_manually;
        slot.cancelled = false;
        slot.starved = false;
        slot.transferred = 0;
        // A buffer-group receive is built again from its descriptor when re-armed
        // (`OpSlot::rearm_entry`): a copy of its entry would cost an allocation per receive.
        slot.group_fd = group_fd;
        if repeat_manually {
            slot.rearm = Some(Box::new(entry.clone()));
        }
        Ok(id)
    }

    /// Whether every staged entry is in the submission queue (none waits behind it).
    pub(crate) fn backlog_is_empty(&self) -> bool {
        self.backlog.is_empty()
    }

    /// Puts one entry in the submission queue, or behind the backlog when it is full.
    pub(crate) fn stage_entry(&mut self, entry: squeue::Entry) {
        self.stage_one(&entry);
    }

    /// Puts one entry in the submission queue, or behind the backlog when it is full.
    #[inline(always)]
    pub(crate) fn stage_one(&mut self, entry: &squeue::Entry) {
        self.staged = true;
        if self.backlog.is_empty() {
            let mut queue = self.uring.submission();
            // SAFETY: as in `stage`: the entry's memory belongs to the live in-flight slot
            // whose id it carries (or it holds no pointers).
            if unsafe { queue.push(entry) }.is_ok() {
                return;
            }
        }
        self.backlog.push_back(Staged::One(entry.clone()));
    }

    #[inline]
    fn stage(&mut self, staged: Staged) {
        self.staged = true;
        if self.backlog.is_empty() {
            let mut queue = self.uring.submission();
            // SAFETY: every pointer in these entries refers to memory owned by the in-flight
            // slot whose id the entry carries as user_data (or the entry holds no pointers,
            // like AsyncCancel). A slot is freed only when its final completion is dispatched,
            // after the kernel is done with the memory, and Drop never frees a slot the kernel
            // may still use. So the memory stays valid for the whole operation.
            if unsafe { queue.push_multiple(staged.entries()) }.is_ok() {
                return;
            }
        }
        self.backlog.push_back(staged);
    }

    /// Moves backlogged entries into the submission queue, submitting when it fills. Out of
    /// line: the backlog is empty unless a tick staged more than the submission queue holds.
    #[inline(never)]
    fn stage_backlog(&mut self) -> Result<(), Error> {
        let mut rounds = 0;
        while let Some(staged) = self.backlog.front() {
            let mut queue = self.uring.submission();
            // SAFETY: as in `stage`: the entries' memory belongs to live in-flight slots.
            let pushed = unsafe { queue.push_multiple(staged.entries()) }.is_ok();
            drop(queue);
            if pushed {
                self.backlog.pop_front();
                self.staged = true;
                continue;
            }
            // The queue is full: hand it to the kernel and keep going. Bounded, so that a
            // kernel refusing work (EBUSY on CQ overflow) cannot spin us.
            rounds += 1;
            if rounds > 16 {
                break;
            }
            match self.uring.submit() {
                Ok(_) => {}
                Err(error)
                    if matches!(
                        error.raw_os_error(),
                        Some(libc::EBUSY | libc::EAGAIN | libc::EINTR)
                    ) =>
                {
                    break;
                }
                Err(error) => return Err(Error::Io(error)),
            }
        }
        Ok(())
    }

    /// Takes the entries never handed to the kernel (used by Drop).
    pub(crate) fn take_backlog(&mut self) -> Vec<squeue::Entry> {
        self.backlog
            .drain(..)
            .flat_map(|staged| staged.entries().to_vec())
            .collect()
    }
}

impl Default for OpSlot {
    /// A vacant slot.
    fn default() -> Self {
        Self {
            kind: OpKind::Nop,
            receiver: Receiver::Silent,
            handler: None,
            plain: false,
            resources: Resources::None,
            rearm: None,
            group: None,
            repeat_manually: false,
            cancelled: false,
            starved: false,
            transferred: 0,
            group_fd: -1,
        }
    }
}

impl OpSlot {
    /// Stores the resources of an op of `kind` in a vacant slot. The slot's previous
    /// resources are known to be `None` (a vacant slot's), so they need no drop.
    ///
    /// Kinds that never own anything skip the copy: the slot already holds `None`, and
    /// copying a value whose tag alone was written stalls store forwarding. The test is on
    /// the kind, not on the value: testing the value made the compiler stage every other
    /// one (a send's source) in a stack copy on its way in, 56 bytes more per submission.
    #[inline(always)]
    fn set_resources(&mut self, kind: OpKind, resources: Resources) {
        debug_assert!(
            matches!(self.resources, Resources::None),
            "slot was not vacant"
        );
        if OWNS_NOTHING & kind.bit() != 0 {
            debug_assert!(
                matches!(resources, Resources::None),
                "an op of {kind:?} owns resources"
            );
            mem::forget(resources);
            return;
        }
        mem::forget(mem::replace(&mut self.resources, resources));
    }

    /// Takes the resources out, leaving the slot's vacant `None`.
    #[inline]
    pub(crate) fn take_resources(&mut self) -> Resources {
        mem::replace(&mut self.resources, Resources::None)
    }

    /// The entry that submits op `id` again: its kept copy, or for a buffer-group receive
    /// the entry built again from the slot (the group's buffer length from `providers`).
    /// `None` for ops that are never re-armed.
    pub(crate) fn rearm_entry(
        &self,
        id: OpId,
        providers: &[BufferProvider],
    ) -> Option<squeue::Entry> {
        if let Some(entry) = &self.rearm {
            return Some((**entry).clone());
        }
        let group = self.group?;
        let buffer_len = providers
            .iter()
            .find(|provider| provider.id() == group)
            .map_or(0, |provider| provider.group().buffer_len());
        let template = match &self.resources {
            Resources::MsgTemplate(template) => template.as_ptr().cast_const(),
            _ => std::ptr::null(),
        };
        let entry = group_receive_entry(self.kind, self.group_fd, group, buffer_len, template)?;
        Some(entry.user_data(id.user_data()))
    }

    pub(crate) fn new(kind: OpKind, receiver: Receiver, resources: Resources) -> Self {
        Self {
            kind,
            receiver,
            handler: None,
            plain: false,
            resources,
            rearm: None,
            group: None,
            repeat_manually: false,
            cancelled: false,
            starved: false,
            transferred: 0,
            group_fd: -1,
        }
    }
}

/// The kinds whose ops never own resources (their constructors pass `Resources::None`), one
/// bit each ([`OpKind::bit`]).
const OWNS_NOTHING: u64 = OpKind::Nop.bit()
    | OpKind::Fsync.bit()
    | OpKind::Splice.bit()
    | OpKind::Accept.bit()
    | OpKind::AcceptMultishot.bit()
    | OpKind::Shutdown.bit()
    | OpKind::Socket.bit()
    | OpKind::Poll.bit();

fn table_full() -> Error {
    Error::InvalidArgument {
        reason: "the in-flight table is full",
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("features", &self.features)
            .field("in_flight", &self.ops.len())
            .field("backlog", &self.backlog.len())
            .field("starved", &self.starved.len())
            .field("providers", &self.providers.len())
            .finish_non_exhaustive()
    }
}
