//! Closing: graceful (drain, shutdown, close) and abortive (drop, cancel, close), both ending
//! with the descriptor closed through the ring once none of the socket's operations is in
//! flight, so the kernel never sees a descriptor number reused under an operation.

use std::net::Shutdown;
use std::rc::Rc;

use fio_ring::{Completion, Op, OpKind, Ring};

use crate::config::Mode;
use crate::error::Error;
use crate::event::{CloseReason, Event};
use crate::socket::{Inner, Lifecycle, Shared, deliver, schedule_delivery};

/// Starts closing (or turns a graceful close into an abortive one).
///
/// # Errors
/// - [`Error::Ring`] when the ring refuses the close; the descriptor is closed directly.
pub(crate) fn close(shared: &Shared, ring: &mut Ring, abort: bool) -> Result<(), Error> {
    let mut inner = shared.borrow_mut();
    let inner = &mut *inner;
    match inner.lifecycle {
        Lifecycle::Open => {
            inner.lifecycle = Lifecycle::Closing {
                aborted: abort,
                shutdown_sent: false,
                close_sent: false,
            };
        }
        Lifecycle::Closing {
            aborted: false,
            shutdown_sent,
            close_sent: false,
        } if abort => {
            inner.lifecycle = Lifecycle::Closing {
                aborted: true,
                shutdown_sent,
                close_sent: false,
            };
        }
        _ => return Ok(()),
    }
    inner.recv.clear();
    if abort {
        inner.send.clear();
        if let Some(id) = inner.sending
            && let Err(error) = ring.cancel(id)
        {
            log::trace!("fd {}: cancelling the send: {error}", inner.raw_fd);
        }
    } else {
        crate::outbound::schedule_flush(shared, inner, ring);
    }
    // Not open any more: this cancels whatever receive is armed.
    let cancelled = crate::inbound::arm(shared, inner, ring);
    let advanced = try_advance(shared, inner, ring);
    schedule_delivery(shared, inner, ring);
    cancelled.and(advanced)
}

/// Moves a closing socket on after one of its operations completed.
///
/// Every completion calls this; an open socket (nearly every call) returns at the inlined
/// check.
#[inline]
pub(crate) fn advance(shared: &Shared, inner: &mut Inner, ring: &mut Ring) {
    if !matches!(
        inner.lifecycle,
        Lifecycle::Closing {
            close_sent: false,
            ..
        }
    ) {
        return;
    }
    advance_closing(shared, inner, ring);
}

/// [`advance`] for a socket that is closing.
#[inline(never)]
fn advance_closing(shared: &Shared, inner: &mut Inner, ring: &mut Ring) {
    if let Err(error) = try_advance(shared, inner, ring) {
        log::warn!("fd {}: closing: {error}", inner.raw_fd);
    }
}

/// The next closing step, if the previous one is done: shutdown once the queue drained, close
/// once nothing is in flight.
fn try_advance(shared: &Shared, inner: &mut Inner, ring: &mut Ring) -> Result<(), Error> {
    let Lifecycle::Closing {
        aborted,
        shutdown_sent,
        close_sent: false,
    } = inner.lifecycle
    else {
        return Ok(());
    };
    let failed = inner.broken.is_some();
    if inner.sending.is_some() || !(inner.send.is_empty() || aborted || failed) {
        return Ok(());
    }
    let stream = !inner.config.message && inner.config.mode != Mode::FileIo;
    // Even after the peer's FIN: the shutdown sends ours from this thread, while a ring
    // close may leave the socket's teardown to a kernel worker (measured: without it the TLS
    // handshake rate fell by a third on a busy machine, with more CPU spent outside).
    if stream && !aborted && !failed && !shutdown_sent {
        let Some(fd) = inner.fd.as_ref() else {
            return Ok(());
        };
        inner.lifecycle = Lifecycle::Closing {
            aborted,
            shutdown_sent: true,
            close_sent: false,
        };
        submit(shared, inner, ring, Op::shutdown(fd, Shutdown::Write))?;
        return Ok(());
    }
    if inner.in_flight > 0 {
        return Ok(());
    }
    inner.lifecycle = Lifecycle::Closing {
        aborted,
        shutdown_sent,
        close_sent: true,
    };
    let Some(fd) = inner.fd.take() else {
        finish(inner);
        return Ok(());
    };
    if let Err(error) = submit(shared, inner, ring, Op::close(fd)) {
        // The refused operation dropped the descriptor, which closed it.
        finish(inner);
        return Err(error);
    }
    Ok(())
}

/// Submits a shutdown or close whose completion moves the close on.
fn submit(shared: &Shared, inner: &mut Inner, ring: &mut Ring, op: Op) -> Result<(), Error> {
    let handler_state = Rc::clone(shared);
    ring.submit(op, move |ring, completion| {
        on_completion(&handler_state, ring, &completion);
    })?;
    inner.in_flight += 1;
    Ok(())
}

fn on_completion(shared: &Shared, ring: &mut Ring, completion: &Completion) {
    {
        let mut inner = shared.borrow_mut();
        let inner = &mut *inner;
        inner.in_flight -= 1;
        if completion.kind() == OpKind::Close {
            if let Err(error) = completion.result() {
                log::debug!("fd {}: close: {error}", inner.raw_fd);
            }
            finish(inner);
        } else if let Err(error) = completion.result() {
            // ENOTCONN when the peer already reset: nothing left to shut down.
            log::debug!("fd {}: shutdown: {error}", inner.raw_fd);
        }
        advance(shared, inner, ring);
    }
    deliver(shared, ring);
}

/// The descriptor is closed: report the last event.
fn finish(inner: &mut Inner) {
    inner.lifecycle = Lifecycle::Closed;
    inner.send.clear();
    inner.recv.clear();
    inner.push_event(Event::Closed {
        reason: CloseReason::Local,
    });
}
