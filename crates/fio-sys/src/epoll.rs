//! [`Epoll`]: an epoll instance with a built-in cross-thread wake-up, and [`EpollRegistration`], a
//! descriptor it owns until it is deleted from it.
//!
//! A wait is one `epoll_wait(2)` (as `epoll_pwait` without a signal mask, straight through
//! `syscall(2)`, skipping libc's cancellation-point bookkeeping): its timeout is the call's own (in milliseconds, rounded up,
//! so a sub-millisecond timeout sleeps instead of spinning), and the wake-up eventfd is
//! registered in the same set, so it costs a `read(2)` only on the waits it ended. Nothing is
//! re-armed per wait.
//!
//! epoll keys its entries by open file description, not by descriptor number: a descriptor
//! closed while still registered stays in the set if another descriptor (a `dup`, or a forked
//! child's copy) keeps its description open, and keeps reporting events under its old key,
//! which by then may name another connection. [`EpollRegistration`] owns its descriptor, so the
//! only way to close it is to drop the registration, which deletes it from the set first.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use crate::event::{eventfd, eventfd_read, eventfd_write};
use crate::flags::flag_set;
use crate::syscall::syscall;

/// The key the wake-up eventfd is registered under; refused for anything else.
const WAKE_KEY: u64 = u64::MAX;

/// Events one wait can return when the caller doesn't choose ([`EventBuffer::default`]).
const DEFAULT_CAPACITY: usize = 1024;

/// The largest [`EventBuffer`]: the kernel refuses `maxevents` above `INT_MAX / 12`, and a
/// reactor gains nothing from more per wait.
const MAX_CAPACITY: usize = 1 << 16;

flag_set! {
    /// What a descriptor is watched for, and how it is reported (`EPOLL*` for `epoll_ctl(2)`).
    ///
    /// Without [`EDGE`](Self::EDGE) a descriptor is level-triggered: every wait reports it
    /// while it is ready. Errors (`EPOLLERR`) and hang-ups (`EPOLLHUP`) are always reported.
    pub struct Interest(u32) {
        /// Bytes (or a connection to accept, or the end of stream) can be read (`EPOLLIN`).
        const READABLE = libc::EPOLLIN;
        /// Bytes can be written, or a non-blocking connect finished (`EPOLLOUT`).
        const WRITABLE = libc::EPOLLOUT;
        /// Exceptional data: TCP urgent data waits (`EPOLLPRI`).
        const PRIORITY = libc::EPOLLPRI;
        /// The peer shut its writing half (`EPOLLRDHUP`).
        const READ_CLOSED = libc::EPOLLRDHUP;
        /// Edge-triggered: report a change of readiness once, not every wait (`EPOLLET`).
        const EDGE = libc::EPOLLET;
        /// Report once, then stay disarmed until [`Epoll::modify`] re-arms
        /// (`EPOLLONESHOT`).
        const ONESHOT = libc::EPOLLONESHOT;
    }
}

/// An epoll set plus the eventfd that [`Waker`]s use to end its waits.
///
/// # Examples
/// ```
/// use std::io::Write;
/// use std::os::fd::OwnedFd;
/// use std::time::Duration;
/// use fio_sys::{Epoll, EventBuffer, Interest};
///
/// let epoll = Epoll::new()?;
/// let (reader, mut writer) = std::os::unix::net::UnixStream::pair()?;
/// reader.set_nonblocking(true)?;
/// let registration = epoll.register(OwnedFd::from(reader), Interest::READABLE, 7)?;
///
/// writer.write_all(b"x")?;
/// let mut events = EventBuffer::with_capacity(16);
/// assert_eq!(epoll.wait(&mut events, Some(Duration::from_secs(10)))?, 1);
/// let event = events.iter().next().expect("one event");
/// assert!(event.key() == 7 && event.readable());
///
/// // Another thread (here, this one) ends a wait without any descriptor being ready.
/// let waker = epoll.waker();
/// std::thread::spawn(move || waker.wake()).join().expect("no panic")?;
/// drop(registration); // deleted from the set, then closed
/// assert_eq!(epoll.wait(&mut events, None)?, 0);
/// assert!(events.woken());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Epoll {
    /// The epoll descriptor, shared with the registrations so each can delete itself.
    fd: Arc<OwnedFd>,
    /// The wake-up eventfd (non-blocking), shared with the wakers.
    wake: Arc<OwnedFd>,
}

impl Epoll {
    /// Creates an epoll set (close-on-exec) with its wake-up eventfd registered in it.
    ///
    /// # Errors
    /// - `EMFILE`/`ENFILE` when descriptors run out, `ENOMEM`.
    pub fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; the flag is a valid one.
        let raw = unsafe { syscall!(epoll_create1(libc::EPOLL_CLOEXEC)) }?;
        // SAFETY: epoll_create1 returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let wake = eventfd(0, true)?;
        // Level-triggered: it stays ready until the wait that sees it drains it.
        ctl(
            fd.as_fd(),
            libc::EPOLL_CTL_ADD,
            wake.as_fd(),
            Interest::READABLE.bits(),
            WAKE_KEY,
        )?;
        Ok(Self {
            fd: Arc::new(fd),
            wake: Arc::new(wake),
        })
    }

    /// Adds `fd` to the set for `interest`; its events carry `key`. The caller keeps `fd` and
    /// must [`delete`](Self::delete) it before closing it (see the module docs); prefer
    /// [`register`](Self::register), which can't forget.
    ///
    /// # Errors
    /// - `InvalidInput` for the key `u64::MAX` (the wake-up's);
    /// - `EEXIST` when `fd` (or a duplicate of it) is already in the set;
    /// - `EPERM` for a descriptor epoll can't watch (a regular file), `ENOMEM`, `ENOSPC`.
    pub fn add(&self, fd: BorrowedFd<'_>, interest: Interest, key: u64) -> io::Result<()> {
        check_key(key)?;
        ctl(
            self.fd.as_fd(),
            libc::EPOLL_CTL_ADD,
            fd,
            interest.bits(),
            key,
        )
    }

    /// Replaces the interest and key `fd` is registered with; for [`Interest::ONESHOT`] this
    /// re-arms it.
    ///
    /// # Errors
    /// - `InvalidInput` for the key `u64::MAX`; `ENOENT` when `fd` isn't in the set; `ENOMEM`.
    pub fn modify(&self, fd: BorrowedFd<'_>, interest: Interest, key: u64) -> io::Result<()> {
        check_key(key)?;
        ctl(
            self.fd.as_fd(),
            libc::EPOLL_CTL_MOD,
            fd,
            interest.bits(),
            key,
        )
    }

    /// Removes `fd` from the set.
    ///
    /// # Errors
    /// - `ENOENT` when `fd` isn't in the set; `ENOMEM`.
    pub fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        delete(self.fd.as_fd(), fd)
    }

    /// Adds `fd` to the set for `interest` (its events carry `key`) and takes ownership of
    /// it: dropping the [`EpollRegistration`] deletes it from the set, then closes it.
    ///
    /// # Errors
    /// - as [`add`](Self::add); `fd` is closed on error.
    pub fn register(
        &self,
        fd: OwnedFd,
        interest: Interest,
        key: u64,
    ) -> io::Result<EpollRegistration> {
        self.add(fd.as_fd(), interest, key)?;
        Ok(EpollRegistration {
            epoll: Arc::clone(&self.fd),
            fd,
        })
    }

    /// Waits until a registered descriptor is ready, a [`Waker`] wakes the set, or `timeout`
    /// passes (`None`: no limit; rounded up to whole milliseconds, so a short timeout sleeps
    /// instead of returning at once); fills `events` and returns how many descriptor events
    /// it holds. A wake-up is not an event: it shows as [`EventBuffer::woken`], and its eventfd
    /// is drained here, only on the waits it ended. A signal ending the wait early returns
    /// `Ok(0)`.
    ///
    /// # Errors
    /// - `EBADF`/`EINVAL` only if the set was closed under it, which its ownership prevents.
    pub fn wait(&self, events: &mut EventBuffer, timeout: Option<Duration>) -> io::Result<usize> {
        events.len = 0;
        events.woken = false;
        let timeout_ms = timeout.map_or(-1, timeout_millis);
        // The capacity is at most `MAX_CAPACITY`, so it fits.
        let capacity = libc::c_int::try_from(events.slots.len()).unwrap_or(libc::c_int::MAX);
        let slots = events.slots.as_mut_ptr();
        // `epoll_pwait` with no signal mask is `epoll_wait` (which some architectures lack),
        // called directly: see `syscall!(@direct ...)` for why not through libc.
        // SAFETY: `slots` points to `capacity` initialised, writable epoll_events owned by
        // `events`, which the kernel fills and which outlive the call; a null signal mask
        // leaves the thread's mask alone.
        let result = unsafe {
            syscall!(@direct SYS_epoll_pwait(
                libc::c_long::from(self.fd.as_raw_fd()),
                slots,
                libc::c_long::from(capacity),
                libc::c_long::from(timeout_ms),
                ptr::null::<libc::sigset_t>(),
                libc::c_long::from(0_i32),
            ))
        };
        let count = match result {
            // epoll_wait returns at most `capacity` events.
            Ok(count) => usize::try_from(count).unwrap_or(0).min(events.slots.len()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(error) => return Err(error),
        };
        events.len = count;
        let woke = events.slots[..count].iter().position(|slot| {
            let key = slot.u64;
            key == WAKE_KEY
        });
        if let Some(index) = woke {
            // At most one entry is the wake-up: close the gap, keeping the others' order.
            events.slots.copy_within(index + 1..count, index);
            events.len = count - 1;
            events.woken = true;
            // Drained only now that it fired; a wake landing after this read ends the next
            // wait. `WouldBlock`: another waiter on this set drained it first.
            match eventfd_read(self.wake.as_fd()) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        Ok(events.len)
    }

    /// A handle any thread can use to end this set's current or next wait.
    pub fn waker(&self) -> Waker {
        Waker {
            fd: Arc::clone(&self.wake),
        }
    }
}

/// `timeout` in whole milliseconds for `epoll_wait`, rounded up (so a sub-millisecond timeout
/// sleeps instead of spinning) and capped at `c_int::MAX`; computed from the seconds and the
/// sub-second nanoseconds, without the 128-bit division `as_nanos` would need on every wait.
fn timeout_millis(timeout: Duration) -> libc::c_int {
    let fraction = u64::from(timeout.subsec_nanos().div_ceil(1_000_000));
    let ms = timeout
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(fraction);
    libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
}

impl fmt::Debug for Epoll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Epoll")
            .field("fd", &self.fd.as_raw_fd())
            .field("wake", &self.wake.as_raw_fd())
            .finish()
    }
}

/// Ends an [`Epoll`]'s wait from any thread: `Send + Sync`, cheap to clone.
///
/// A wake that lands while nobody waits is not lost: the next wait returns at once.
#[derive(Clone)]
pub struct Waker {
    /// The set's wake-up eventfd.
    fd: Arc<OwnedFd>,
}

impl Waker {
    /// Makes the set's current wait return, or its next one.
    ///
    /// # Errors
    /// - none in practice: a full counter (`WouldBlock`) already holds a pending wake, and
    ///   counts as success.
    pub fn wake(&self) -> io::Result<()> {
        match eventfd_write(self.fd.as_fd(), 1) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(()),
            result => result,
        }
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker")
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

/// A descriptor registered with an [`Epoll`], owned until it is deleted from it.
///
/// Dropping it deletes the descriptor from the set, then closes it (see the module docs for
/// why the order matters). It keeps the set's descriptor open, so it may outlive the `Epoll`.
pub struct EpollRegistration {
    /// The set the descriptor is registered with.
    epoll: Arc<OwnedFd>,
    /// The descriptor.
    fd: OwnedFd,
}

impl EpollRegistration {
    /// Replaces the interest and key the descriptor is registered with; for
    /// [`Interest::ONESHOT`] this re-arms it.
    ///
    /// # Errors
    /// - `InvalidInput` for the key `u64::MAX`; `ENOMEM`.
    pub fn modify(&self, interest: Interest, key: u64) -> io::Result<()> {
        check_key(key)?;
        ctl(
            self.epoll.as_fd(),
            libc::EPOLL_CTL_MOD,
            self.fd.as_fd(),
            interest.bits(),
            key,
        )
    }
}

impl AsFd for EpollRegistration {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for EpollRegistration {
    fn drop(&mut self) {
        // Failing to delete (ENOMEM) leaves nothing to do but close: the kernel drops the
        // entry once the description's last descriptor closes.
        let _ = delete(self.epoll.as_fd(), self.fd.as_fd());
    }
}

impl fmt::Debug for EpollRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpollRegistration")
            .field("epoll", &self.epoll.as_raw_fd())
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

/// Where [`Epoll::wait`] puts what it found; reused between waits, so waiting never
/// allocates.
pub struct EventBuffer {
    /// The kernel's event records; the first `len` are this wait's.
    slots: Box<[libc::epoll_event]>,
    /// Descriptor events from the last wait.
    len: usize,
    /// The last wait was ended (also) by a [`Waker`].
    woken: bool,
}

impl EventBuffer {
    /// A buffer for up to `capacity` events per wait (at least 1, at most 65536); more ready
    /// descriptors wait for the next call.
    pub fn with_capacity(capacity: usize) -> Self {
        let empty = libc::epoll_event { events: 0, u64: 0 };
        Self {
            slots: vec![empty; capacity.clamp(1, MAX_CAPACITY)].into_boxed_slice(),
            len: 0,
            woken: false,
        }
    }

    /// The most events one wait returns.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The descriptor events of the last wait.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last wait found no descriptor ready.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a [`Waker`] ended (or took part in) the last wait.
    pub fn woken(&self) -> bool {
        self.woken
    }

    /// Forgets the last wait's events (a wait does this itself).
    pub fn clear(&mut self) {
        self.len = 0;
        self.woken = false;
    }

    /// The last wait's descriptor event number `index` (in the kernel's order), if there is
    /// one: a caller that handles each event with `&mut` access to what holds this buffer
    /// reads them one at a time instead of copying them out first.
    #[inline]
    pub fn get(&self, index: usize) -> Option<EpollEvent> {
        self.slots[..self.len].get(index).map(EpollEvent::from_slot)
    }

    /// The last wait's descriptor events, in the kernel's order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = EpollEvent> + '_ {
        self.slots[..self.len].iter().map(EpollEvent::from_slot)
    }
}

impl Default for EventBuffer {
    /// A buffer for 1024 events per wait.
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for EventBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBuffer")
            .field("capacity", &self.capacity())
            .field("woken", &self.woken)
            .field("events", &self.iter().collect::<Vec<_>>())
            .finish()
    }
}

/// What one wait reported about one descriptor.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EpollEvent {
    /// The key the descriptor was registered with.
    key: u64,
    /// The kernel's `EPOLL*` bits.
    flags: u32,
}

impl EpollEvent {
    /// The event the kernel wrote into `slot`.
    #[inline]
    fn from_slot(slot: &libc::epoll_event) -> Self {
        Self {
            key: slot.u64,
            flags: slot.events,
        }
    }

    /// The key the descriptor was registered (or last modified) with.
    pub fn key(self) -> u64 {
        self.key
    }

    /// Readable (`EPOLLIN`): bytes, a connection to accept, or the end of stream.
    pub fn readable(self) -> bool {
        self.has(libc::EPOLLIN)
    }

    /// Writable (`EPOLLOUT`), or a non-blocking connect finished.
    pub fn writable(self) -> bool {
        self.has(libc::EPOLLOUT)
    }

    /// Urgent data waits (`EPOLLPRI`, when asked for with [`Interest::PRIORITY`]).
    pub fn priority(self) -> bool {
        self.has(libc::EPOLLPRI)
    }

    /// The peer shut its writing half (`EPOLLRDHUP`, when asked for with
    /// [`Interest::READ_CLOSED`]): after the bytes already queued, a read finds the end.
    pub fn read_closed(self) -> bool {
        self.has(libc::EPOLLRDHUP)
    }

    /// Both directions are shut, or a connect failed (`EPOLLHUP`, always reported).
    pub fn hangup(self) -> bool {
        self.has(libc::EPOLLHUP)
    }

    /// An error is pending; [`take_error`](crate::take_error) reads it (`EPOLLERR`, always
    /// reported).
    pub fn error(self) -> bool {
        self.has(libc::EPOLLERR)
    }

    /// Whether the kernel's bits include `flag`.
    fn has(self, flag: libc::c_int) -> bool {
        // The `EPOLL*` bits are non-negative ints below 2^31 (only `EPOLLET` isn't).
        self.flags & flag.cast_unsigned() != 0
    }
}

impl fmt::Debug for EpollEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpollEvent")
            .field("key", &self.key)
            .field("flags", &Interest::from_bits_retain(self.flags))
            .finish()
    }
}

/// Refuses the wake-up's key.
fn check_key(key: u64) -> io::Result<()> {
    if key == WAKE_KEY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the key u64::MAX is reserved for the epoll wake-up",
        ));
    }
    Ok(())
}

/// `epoll_ctl(2)` with an event record.
fn ctl(
    epoll: BorrowedFd<'_>,
    op: libc::c_int,
    fd: BorrowedFd<'_>,
    flags: u32,
    key: u64,
) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: flags,
        u64: key,
    };
    let event_ptr = ptr::from_mut(&mut event);
    // SAFETY: `event_ptr` points to a live epoll_event, which the kernel copies during the
    // call; both descriptors are borrowed, so open.
    unsafe { syscall!(epoll_ctl(epoll.as_raw_fd(), op, fd.as_raw_fd(), event_ptr)) }?;
    Ok(())
}

/// `epoll_ctl(2)`'s delete, which needs no event record (Linux 2.6.9).
fn delete(epoll: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a null event pointer is allowed for EPOLL_CTL_DEL; both descriptors are
    // borrowed, so open.
    unsafe {
        syscall!(epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd.as_raw_fd(),
            ptr::null_mut()
        ))
    }?;
    Ok(())
}

#[cfg(test)]
#[path = "epoll_tests.rs"]
mod tests;
