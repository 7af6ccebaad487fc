//! [`PollRegistration`]: a descriptor registered with a `polling::Poller`, safely.
//!
//! `polling` 3 makes `Poller::add` `unsafe` because the poller must forget a descriptor before
//! the descriptor closes: epoll keys its entries by open file description, so a closed and
//! reused number could otherwise keep receiving another file's events under the old key. The
//! wrapper here owns the descriptor, so the only way to close it is to drop the registration
//! (which deletes it from the poller first) or to take it back with
//! [`into_fd`](PollRegistration::into_fd) (which does the same).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use polling::{Event, PollMode, Poller};

/// A descriptor registered with a [`Poller`], owned until it is deleted from it.
///
/// Dropping it deletes the descriptor from the poller, then closes it.
///
/// # Examples
/// ```
/// use std::io::Write;
/// use std::os::fd::OwnedFd;
/// use std::sync::Arc;
/// use std::time::Duration;
/// use polling::{Event, Events, PollMode, Poller};
///
/// let poller = Arc::new(Poller::new()?);
/// let (reader, mut writer) = std::os::unix::net::UnixStream::pair()?;
/// reader.set_nonblocking(true)?;
/// let registration =
///     fio_sys::PollRegistration::new(&poller, OwnedFd::from(reader), Event::readable(7), PollMode::Level)?;
/// writer.write_all(b"x")?;
/// let mut events = Events::new();
/// poller.wait(&mut events, Some(Duration::from_secs(10)))?;
/// assert_eq!(events.iter().next().map(|event| event.key), Some(7));
/// drop(registration); // deleted from the poller, then closed
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct PollRegistration {
    /// The poller the descriptor is registered with.
    poller: Arc<Poller>,
    /// The descriptor; `None` only between `into_fd` taking it and the drop that follows.
    fd: Option<OwnedFd>,
}

impl PollRegistration {
    /// Registers `fd` with `poller` for `interest` (its key names the descriptor in events) in
    /// `mode`, and takes ownership of it.
    ///
    /// # Errors
    /// - `InvalidInput` when the key is `usize::MAX` (reserved by `polling`);
    /// - `EEXIST` when the descriptor is already registered with this poller (only possible
    ///   through a duplicate that shares its open file description);
    /// - `ENOMEM`/`ENOSPC` when the kernel can't add another watch;
    /// - `Unsupported` when the platform lacks `mode`. The descriptor is closed on error.
    pub fn new(
        poller: &Arc<Poller>,
        fd: OwnedFd,
        interest: Event,
        mode: PollMode,
    ) -> io::Result<Self> {
        // SAFETY: `fd` moves into the returned registration, whose `Drop` (and `into_fd`)
        // deletes it from this poller before the descriptor can close; on error nothing was
        // added, and `fd` closes as this function returns.
        unsafe { poller.add_with_mode(fd.as_raw_fd(), interest, mode) }?;
        Ok(Self {
            poller: Arc::clone(poller),
            fd: Some(fd),
        })
    }

    /// Replaces the interest (and key) the descriptor is registered with; in
    /// [`PollMode::Oneshot`] this re-arms it.
    ///
    /// # Errors
    /// - `InvalidInput` when the key is `usize::MAX`;
    /// - `ENOMEM` from the kernel; `Unsupported` when the platform lacks `mode`.
    pub fn modify(&self, interest: Event, mode: PollMode) -> io::Result<()> {
        self.poller.modify_with_mode(self.as_fd(), interest, mode)
    }

    /// The poller this descriptor is registered with.
    pub fn poller(&self) -> &Arc<Poller> {
        &self.poller
    }

    /// Deletes the descriptor from the poller and hands it back, still open.
    ///
    /// # Errors
    /// - the poller's `delete` error (`ENOENT` is impossible while this registration lives;
    ///   `ENOMEM` is). The descriptor is closed on error.
    pub fn into_fd(mut self) -> io::Result<OwnedFd> {
        let fd = self
            .fd
            .take()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        self.poller.delete(fd.as_fd())?;
        Ok(fd)
    }
}

impl AsFd for PollRegistration {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.fd {
            Some(fd) => fd.as_fd(),
            // `fd` is only `None` inside `into_fd`, which consumes `self`; no borrow can see it.
            None => unreachable_fd(),
        }
    }
}

/// Never reached (see `as_fd`); a `BorrowedFd` of -1 would be unsound, so this diverges.
#[cold]
fn unreachable_fd() -> BorrowedFd<'static> {
    unreachable!("a PollRegistration is borrowed after into_fd took its descriptor")
}

impl Drop for PollRegistration {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // Failing to delete (ENOMEM) leaves nothing to do but close: the kernel drops a
            // closed descriptor's epoll entries once its last reference goes.
            let _ = self.poller.delete(fd.as_fd());
        }
    }
}

impl fmt::Debug for PollRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollRegistration")
            .field("fd", &self.fd.as_ref().map(AsRawFd::as_raw_fd))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use polling::Events;

    use super::*;

    fn pair() -> (OwnedFd, UnixStream) {
        let (reader, writer) = UnixStream::pair().unwrap();
        reader.set_nonblocking(true).unwrap();
        (OwnedFd::from(reader), writer)
    }

    #[test]
    fn oneshot_fires_once_until_modified() {
        let poller = Arc::new(Poller::new().unwrap());
        let (reader, mut writer) = pair();
        let registration =
            PollRegistration::new(&poller, reader, Event::readable(3), PollMode::Oneshot).unwrap();
        writer.write_all(b"x").unwrap();
        let mut events = Events::new();
        poller
            .wait(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(
            events.iter().map(|event| event.key).collect::<Vec<_>>(),
            [3]
        );
        events.clear();
        // Disarmed: the unread byte reports nothing until the interest is re-armed.
        poller.wait(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty());
        registration
            .modify(Event::readable(4), PollMode::Oneshot)
            .unwrap();
        poller
            .wait(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(
            events.iter().map(|event| event.key).collect::<Vec<_>>(),
            [4]
        );
    }

    #[test]
    fn into_fd_leaves_the_poller_and_keeps_the_descriptor_open() {
        let poller = Arc::new(Poller::new().unwrap());
        let (reader, mut writer) = pair();
        let registration =
            PollRegistration::new(&poller, reader, Event::readable(1), PollMode::Level).unwrap();
        let fd = registration.into_fd().unwrap();
        writer.write_all(b"x").unwrap();
        let mut events = Events::new();
        poller.wait(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty(), "no longer registered");
        // Still open: registering it again works.
        let again =
            PollRegistration::new(&poller, fd, Event::readable(2), PollMode::Level).unwrap();
        poller
            .wait(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(
            events.iter().map(|event| event.key).collect::<Vec<_>>(),
            [2]
        );
        assert!(format!("{again:?}").contains("PollRegistration"));
    }

    #[test]
    fn the_reserved_key_is_refused() {
        let poller = Arc::new(Poller::new().unwrap());
        let (reader, _writer) = pair();
        let error = PollRegistration::new(
            &poller,
            reader,
            Event::readable(usize::MAX),
            PollMode::Level,
        )
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
