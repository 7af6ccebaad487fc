//! The receive path: arming receives within the water marks and handling their completions.
//!
//! Streams use one multishot receive on the shared buffer group while the receive queue is at
//! or below the low-water mark, and one-shot receives from the same group between the marks:
//! a one-shot receive brings at most one buffer, so the queue never exceeds the high-water
//! mark by more than one buffer once throttled. Above the high-water mark nothing is armed
//! until the application drains the queue. An `ENOBUFS` from a dry group is not an end of
//! stream: the ring parks the receive and re-arms it when buffers come back.
//!
//! File mode re-arms a one-shot `read(2)` into inbound-pool buffers. Message mode receives
//! through the ring's `recvmsg`: a multishot `recvmsg` on the buffer group under the same
//! water marks as a stream (when the kernel has multishot receive and the group's buffers
//! have room for the kernel's per-datagram header), else a one-shot `recvmsg` into an
//! inbound-pool buffer, re-armed after each datagram. Each datagram keeps its sender.

use std::rc::Rc;

use fio_ring::{Completion, Datagram, Op, OpId, OpKind, Ring};

use crate::config::Mode;
use crate::error::Error;
use crate::event::{CloseReason, Event};
use crate::socket::{Inbound, Inner, Lifecycle, Shared, deliver_first, deliver_pending};

/// Brings the inbound side in line with the queue and the socket's state: arms a receive when
/// there is room, switches a multishot to one-shot receives above the low-water mark, and
/// cancels what is armed once the socket stops receiving (closing, ended, broken, or
/// paused by [`Socket::pause_receive`](crate::Socket::pause_receive)).
///
/// # Errors
/// - [`Error::Ring`] when the ring refuses the receive; [`Error::Pool`] when a file-mode read
///   finds no buffer (the receive stays idle until the next call).
///
/// Called after every receive completion and every read, nearly always to find an armed
/// multishot receive with room below the low-water mark: that answer is inlined, the rest
/// is [`arm_changed`].
#[inline]
pub(crate) fn arm(shared: &Shared, inner: &mut Inner, ring: &mut Ring) -> Result<(), Error> {
    if matches!(inner.inbound, Inbound::Multishot(_))
        && is_receiving(inner)
        && inner.recv.is_below_low_water()
    {
        return Ok(());
    }
    arm_changed(shared, inner, ring)
}

/// Whether the socket should have a receive armed (water marks aside).
#[inline]
fn is_receiving(inner: &Inner) -> bool {
    inner.lifecycle == Lifecycle::Open
        && !inner.receive_paused
        && !inner.eof
        && (inner.broken.is_none() || inner.config.message)
}

/// [`arm`] when the inbound side may have to change.
#[inline(never)]
fn arm_changed(shared: &Shared, inner: &mut Inner, ring: &mut Ring) -> Result<(), Error> {
    let receiving = is_receiving(inner);
    match inner.inbound {
        Inbound::Multishot(id) if !receiving || !inner.recv.is_below_low_water() => {
            if receiving {
                inner.stats.receive_throttles += 1;
            }
            cancel(inner, ring, id);
            Ok(())
        }
        Inbound::Oneshot(id) if !receiving => {
            cancel(inner, ring, id);
            Ok(())
        }
        Inbound::Idle if receiving && !inner.recv.is_above_high_water() => {
            submit_receive(shared, inner, ring)
        }
        _ => Ok(()),
    }
}

/// Asks the ring to cancel the armed receive; its final completion ends the cancel.
fn cancel(inner: &mut Inner, ring: &mut Ring, id: OpId) {
    inner.inbound = Inbound::Cancelling(id);
    if let Err(error) = ring.cancel(id) {
        // Stale: the final completion is already on its way to `complete`.
        log::trace!("fd {}: cancelling the receive: {error}", inner.raw_fd);
    }
}

/// Submits the receive that fits the mode and the queue.
fn submit_receive(shared: &Shared, inner: &mut Inner, ring: &mut Ring) -> Result<(), Error> {
    let Some(fd) = inner.fd.as_ref() else {
        return Ok(());
    };
    let (op, multishot) = if inner.config.message {
        let group = inner.config.group;
        let room = group.buffer_len() as usize > Datagram::MULTISHOT_OVERHEAD;
        if inner.multishot && room && inner.recv.is_below_low_water() {
            (Op::recvmsg_multishot(fd, group), true)
        } else {
            let pool = inner.config.inbound.stats();
            if pool.in_use >= pool.max_buffers {
                // Nothing to receive into: wait for the application to give buffers back.
                return Ok(());
            }
            (Op::recvmsg(fd, inner.config.inbound.take()?, 0), false)
        }
    } else if inner.config.mode == Mode::FileIo {
        let buffer = inner.config.inbound.take()?;
        (Op::read(fd, buffer, None), false)
    } else if inner.multishot && inner.recv.is_below_low_water() {
        (Op::recv_multishot(fd, inner.config.group), true)
    } else {
        (Op::recv_from_group(fd, inner.config.group), false)
    };
    let handler_state = Rc::clone(shared);
    let id = ring.submit(op, move |ring, completion| {
        on_completion(&handler_state, ring, completion);
    })?;
    inner.in_flight += 1;
    inner.inbound = if multishot {
        Inbound::Multishot(id)
    } else {
        Inbound::Oneshot(id)
    };
    Ok(())
}

/// A receive completion: queue the data and report it, then re-arm or end. Re-arming waits
/// until the handler has seen the data, so the water marks judge what it left unread.
fn on_completion(shared: &Shared, ring: &mut Ring, mut completion: Completion) {
    let mut inner = shared.borrow_mut();
    let readable = if matches!(
        completion.kind(),
        OpKind::RecvMsg | OpKind::RecvMsgMultishot
    ) {
        on_datagram(&mut inner, &mut completion);
        None
    } else {
        on_data(&mut inner, &mut completion)
    };
    if completion.is_final() {
        inner.in_flight -= 1;
        if matches!(
            inner.inbound,
            Inbound::Multishot(id) | Inbound::Oneshot(id) | Inbound::Cancelling(id)
                if id == completion.id()
        ) {
            inner.inbound = Inbound::Idle;
        }
    }
    if let Some(buffered) = readable {
        // A handler that only takes note of new data hears of it at once, without the event
        // delivery, and within this borrow (it must not reach the socket); not while it runs
        // further up the stack (it then has no handler here).
        let taken = match &inner.handler {
            Some(handler) if !inner.abandoned => handler
                .shared()
                .is_some_and(|handler| handler.on_readable(buffered)),
            None | Some(_) => false,
        };
        // Nothing was queued behind it (a `Readable` only skips an empty queue): no delivery.
        if !taken {
            drop(inner);
            deliver_first(shared, ring, Event::Readable { buffered });
            inner = shared.borrow_mut();
        }
    } else if inner.has_delivery() {
        drop(inner);
        deliver_pending(shared, ring);
        inner = shared.borrow_mut();
    }
    let state = &mut *inner;
    if let Err(error) = arm(shared, state, ring) {
        log::debug!("fd {}: re-arming the receive failed: {error}", state.raw_fd);
        if !matches!(error, Error::Pool(_)) {
            state.fail(error.errno());
        }
    }
    crate::close::advance(shared, state, ring);
    let pending = state.has_delivery();
    drop(inner);
    if pending {
        deliver_pending(shared, ring);
    }
}

/// A receive or read completion: its buffer joins the queue; a final one may end the stream.
/// Returns the bytes buffered when a `Readable` reporting them is to go ahead of the queue
/// (the usual case: nothing was queued before it, so it skips the queue), else queues it.
fn on_data(inner: &mut Inner, completion: &mut Completion) -> Option<usize> {
    let res = completion.raw_result();
    let open = inner.lifecycle == Lifecycle::Open;
    let mut readable = None;
    // Taken only to be queued: a buffer that came too late stays in the completion, which
    // gives it back with itself.
    if res > 0
        && open
        && let Some(buffer) = completion.take_buffer()
    {
        inner.stats.bytes_received += buffer.len() as u64;
        inner.recv.push(buffer);
        let buffered = inner.recv.len();
        if inner.events.is_empty() {
            readable = Some(buffered);
        } else {
            inner.push_event(Event::Readable { buffered });
        }
    }
    if !completion.is_final() || !open {
        return readable;
    }
    match res {
        0 => {
            inner.eof = true;
            inner.report_hangup(CloseReason::Remote);
        }
        1.. => {}
        _ => on_error(inner, -res),
    }
    readable
}

/// A message-mode completion: the datagram joins the queue with its sender; a final error
/// is reported and the receive re-armed.
fn on_datagram(inner: &mut Inner, completion: &mut Completion) {
    let res = completion.raw_result();
    if inner.lifecycle != Lifecycle::Open {
        return;
    }
    if res < 0 {
        on_error(inner, -res);
        return;
    }
    let Some(datagram) = completion.take_datagram() else {
        return;
    };
    let from = datagram.source();
    // The payload moves to the front of its buffer (a memmove, no allocation), so the queue
    // and `receive_datagram` see a plain buffer.
    let buffer = datagram.into_buffer();
    inner.stats.bytes_received += buffer.len() as u64;
    inner.recv.push_datagram(buffer, from);
    let buffered = inner.recv.len();
    inner.push_event(Event::Readable { buffered });
}

/// A receive that ended with `-errno`.
fn on_error(inner: &mut Inner, errno: i32) {
    match errno {
        // Cancelled (backpressure or close), a dry group after a cancel, or a retryable
        // interruption: none of them ends the stream, and `arm` re-arms as needed.
        libc::ECANCELED | libc::ENOBUFS | libc::EAGAIN | libc::EINTR => {}
        // A write-only descriptor (a pipe's write end) in file mode has no inbound side.
        libc::EBADF | libc::EINVAL if inner.config.mode == Mode::FileIo => {
            log::debug!(
                "fd {}: not readable; the inbound side stays idle",
                inner.raw_fd
            );
            inner.eof = true;
        }
        _ if inner.config.message => inner.events.push_back(Event::Error { errno }),
        _ => inner.fail(errno),
    }
}
