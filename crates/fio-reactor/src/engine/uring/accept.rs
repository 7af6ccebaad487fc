//! Listening sockets on the io_uring engine: one multishot accept per listener (single-shot
//! in cluster workers, see [`arm_accept`]), re-armed when the kernel ends it, paused for a
//! moment when descriptors or memory run out.
//!
//! The listening descriptor stays in the engine until the accept's final completion: the
//! kernel's request names it by number, so closing it earlier could let the request run on a
//! recycled descriptor. Closing a listener therefore cancels the accept (or the back-off
//! timer), and only that operation's final completion closes the descriptor and reports
//! [`EngineEvent::Closed`].

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;

use fio_ring::{AcceptFlags, Completion, Op, OpId, Ring};

use crate::engine::EngineEvent;
use crate::engine::uring::Inbox;
use crate::uuid::Uuid;

/// How long a listener rests before accepting again after the process ran out of descriptors
/// or the kernel out of memory: long enough not to spin on `EMFILE`, short enough that
/// clients barely notice once descriptors are free again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// `EBADF`, which has this number on every Linux architecture; `std` gives it no
/// `ErrorKind`.
const EBADF: i32 = 9;

/// A listening socket and its accept; see the module documentation.
#[derive(Debug)]
pub(super) struct Listener {
    /// Shared with the handler of the operation armed on it.
    state: Rc<RefCell<ListenState>>,
}

/// What a listener's operations need; borrowed by their handlers during the ring's dispatch.
#[derive(Debug)]
struct ListenState {
    uuid: Uuid,
    /// The listening descriptor, until the listener ends.
    fd: Option<OwnedFd>,
    /// The accept or back-off timer in flight; the descriptor outlives it.
    armed: Option<OpId>,
    /// `close` was asked for: accepted streams are dropped and nothing is re-armed.
    closing: bool,
    /// `Closed` was reported.
    ended: bool,
    inbox: Rc<Inbox>,
}

/// What to do after an accept ended with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// A per-connection failure (aborted or refused handshake, interruption): accept on.
    Now,
    /// Out of descriptors or memory, or something unexpected: accept again after a pause.
    Later,
    /// The socket can't accept at all (not listening, not a descriptor): end the listener.
    Never,
}

impl Listener {
    /// Takes over a listening socket and arms its multishot accept.
    ///
    /// # Errors
    /// - the ring's refusal of the accept (unsupported, full in-flight table); the socket is
    ///   closed.
    pub(super) fn start(
        ring: &mut Ring,
        uuid: Uuid,
        fd: OwnedFd,
        inbox: Rc<Inbox>,
    ) -> io::Result<Self> {
        let state = Rc::new(RefCell::new(ListenState {
            uuid,
            fd: Some(fd),
            armed: None,
            closing: false,
            ended: false,
            inbox,
        }));
        arm_accept(&state, &mut state.borrow_mut(), ring)?;
        Ok(Self { state })
    }

    /// Stops accepting: cancels what is armed, whose final completion closes the descriptor
    /// and reports `Closed`; with nothing armed that happens at once.
    pub(super) fn close(&self, ring: &mut Ring) {
        let mut state = self.state.borrow_mut();
        state.closing = true;
        match state.armed {
            Some(id) => {
                if let Err(error) = ring.cancel(id) {
                    // Stale: its final completion already ran and cleared `armed`.
                    log::debug!("listener {}: cancelling the accept: {error}", state.uuid);
                }
            }
            None => state.end(None),
        }
    }
}

impl ListenState {
    /// Hands an accepted stream to the connection layer; the accept made it non-blocking,
    /// as the contract says. Even while closing: an accept that completed before its cancel
    /// took a real client off the queue, and dropping the stream would reset that client.
    fn accepted(&self, stream: OwnedFd) {
        // A multishot accept can't return each peer's address: it is asked for.
        self.inbox.push(EngineEvent::Accepted {
            listener: self.uuid,
            stream,
            peer: None,
        });
    }

    /// Closes the descriptor and reports `Closed` once.
    fn end(&mut self, error: Option<io::Error>) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.fd = None;
        self.inbox.push(EngineEvent::Closed {
            conn: self.uuid,
            error,
        });
    }
}

/// Arms an accept on the listener's descriptor; each accepted stream is non-blocking and
/// close-on-exec from the start.
///
/// A multishot accept, except in a cluster worker, whose listening socket is shared with its
/// sibling workers: the kernel wakes the first exclusive waiter on a listening socket, and a
/// multishot accept stays first in its queue for good, so one worker would take every
/// connection. A single-shot accept re-armed after each connection goes to the back of the
/// queue each time, and the workers take turns.
fn arm_accept(
    state: &Rc<RefCell<ListenState>>,
    inner: &mut ListenState,
    ring: &mut Ring,
) -> Result<(), fio_ring::Error> {
    let Some(fd) = inner.fd.as_ref() else {
        return Ok(());
    };
    let handler_state = Rc::clone(state);
    let op = if crate::process::role() == crate::process::Role::Worker {
        Op::accept_with_flags(fd, AcceptFlags::NONBLOCK)
    } else {
        Op::accept_multishot_with_flags(fd, AcceptFlags::NONBLOCK)
    };
    let id = ring.submit(op, move |ring, completion| {
        on_accept(&handler_state, ring, completion);
    })?;
    inner.armed = Some(id);
    Ok(())
}

/// Arms the timer after which a resting listener accepts again.
fn arm_backoff(
    state: &Rc<RefCell<ListenState>>,
    inner: &mut ListenState,
    ring: &mut Ring,
) -> Result<(), fio_ring::Error> {
    let handler_state = Rc::clone(state);
    let id = ring.submit(Op::timeout(ACCEPT_BACKOFF), move |ring, completion| {
        on_backoff(&handler_state, ring, &completion);
    })?;
    inner.armed = Some(id);
    Ok(())
}

/// One accept completion: a stream, or an error; the final one decides what comes next.
fn on_accept(state: &Rc<RefCell<ListenState>>, ring: &mut Ring, mut completion: Completion) {
    let mut inner = state.borrow_mut();
    let inner = &mut *inner;
    let res = completion.raw_result();
    let mut retry = Retry::Now;
    if res >= 0 {
        // An accept that completes despite a cancel still took a client: it is served.
        if let Some(stream) = completion.take_fd() {
            inner.accepted(stream);
        }
    } else if !inner.closing {
        retry = classify(-res);
        let error = io::Error::from_raw_os_error(-res);
        match retry {
            Retry::Now => log::debug!("listener {}: accept: {error}", inner.uuid),
            Retry::Later => log::warn!(
                "listener {}: accept failed ({error}); accepting again in {} ms",
                inner.uuid,
                ACCEPT_BACKOFF.as_millis()
            ),
            Retry::Never => log::error!("listener {}: accept failed: {error}", inner.uuid),
        }
    }
    if !completion.is_final() {
        return;
    }
    inner.armed = None;
    let armed = match retry {
        _ if inner.closing => {
            inner.end(None);
            return;
        }
        Retry::Now => arm_accept(state, inner, ring),
        Retry::Later => arm_backoff(state, inner, ring),
        Retry::Never => {
            inner.end(Some(io::Error::from_raw_os_error(-res)));
            return;
        }
    };
    if let Err(error) = armed {
        log::error!("listener {}: can't accept again: {error}", inner.uuid);
        inner.end(Some(error.into()));
    }
}

/// The back-off timer fired (or was cancelled by a close).
fn on_backoff(state: &Rc<RefCell<ListenState>>, ring: &mut Ring, completion: &Completion) {
    if !completion.is_final() {
        return;
    }
    let mut inner = state.borrow_mut();
    let inner = &mut *inner;
    inner.armed = None;
    if inner.closing {
        inner.end(None);
    } else if let Err(error) = arm_accept(state, inner, ring) {
        log::error!("listener {}: can't accept again: {error}", inner.uuid);
        inner.end(Some(error.into()));
    }
}

/// Sorts an accept error (a positive errno) into what to do next.
fn classify(errno: i32) -> Retry {
    use io::ErrorKind::{
        ConnectionAborted, ConnectionRefused, ConnectionReset, HostUnreachable, Interrupted,
        InvalidInput, NetworkDown, NetworkUnreachable, PermissionDenied, TimedOut, WouldBlock,
    };
    // accept(2): errors of the pending connection (and firewall refusals, EPERM) concern that
    // connection only; EINVAL means the socket isn't listening.
    match io::Error::from_raw_os_error(errno).kind() {
        ConnectionAborted | ConnectionRefused | ConnectionReset | HostUnreachable | Interrupted
        | NetworkDown | NetworkUnreachable | PermissionDenied | TimedOut | WouldBlock => Retry::Now,
        InvalidInput => Retry::Never,
        _ if errno == EBADF => Retry::Never,
        // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unforeseen: retrying at once would
        // fail again at once, every tick.
        _ => Retry::Later,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_sort_by_what_they_concern() {
        // These numbers are the same on every Linux architecture. EMFILE (24) and ENFILE
        // (23) have no `ErrorKind`, so they fall through to a pause.
        assert_eq!(classify(EBADF), Retry::Never);
        assert_eq!(classify(24), Retry::Later);
        assert_eq!(classify(23), Retry::Later);
        assert_eq!(classify(4), Retry::Now);
        assert_eq!(classify(22), Retry::Never);
    }
}
