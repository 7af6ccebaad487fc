//! The send path: queueing, the end-of-tick flush, and send completions.
//!
//! At most one send is in flight per socket. Data queued during a tick is gathered at its end
//! into one `sendmsg(2)` of up to `limit` chunks (`writev(2)` in file mode, one message per
//! send in message mode). The chunks are lent to the operation (see
//! [`SendQueue`](crate::SendQueue)); its completion gives them back and advances the queue by
//! the count the kernel took, so a short send continues from the first unsent byte, at once.
//! The usual send, of a stream's one queued chunk, moves nothing: the operation reads the chunk
//! in place through a pin the completion gives back. It takes a short path of its own, from the
//! end-of-tick flush to the ring, without reading the configuration (the socket notes at
//! creation whether its sends may take it); every other send goes through `build`, out of line.
//! In zero-copy mode a large pooled front chunk goes alone through `SEND_ZC`; the operation
//! keeps its clone of the chunk until the kernel's notification, while the queue moves on.
//! In auto-cork mode every send that leaves data queued behind it carries `MSG_MORE`, so the
//! kernel holds back a partial segment until the batch's last send (C FastSocket's cork).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use fio_buffer::{Chunk, Lent, SendPin, SendQueue};
use fio_ring::{Completion, Op, OpId, OpKind, Ring, SendFlags, TickEndFlush, WriteBuf};

use crate::config::{Mode, SendScratch, SocketConfig};
use crate::error::Error;
use crate::event::Event;
use crate::socket::{Inner, Lifecycle, Shared, State, deliver_pending};

/// Copies `data` into outbound-pool buffers (all or nothing) and queues it. On a stream the
/// copy fills the last queued buffer's spare room first, so a tick's small writes gather in
/// one buffer, and new buffers come from the thread's spares (where sent copies return), so
/// nothing is allocated and the pool is not touched once warm.
///
/// A reply per request comes through here: datagrams take [`transmit_datagram_copy`], out of
/// line, so that the stream copy's frame stays small.
#[inline(never)]
pub(crate) fn transmit_copy(
    shared: &Shared,
    ring: &mut Ring,
    data: &[u8],
    to: Option<SocketAddr>,
) -> Result<(), Error> {
    if to.is_none() {
        let mut inner = shared.borrow_mut();
        if !inner.config.message {
            inner.check_writable()?;
            let inner = &mut *inner;
            let mut spares = inner.config.scratch.spares.borrow_mut();
            inner.send.push_copy_from(data, &mut spares)?;
            drop(spares);
            schedule_flush(shared, inner, ring);
            return Ok(());
        }
    }
    transmit_datagram_copy(shared, ring, data, to)
}

/// [`transmit_copy`] in message mode (or with a destination, which only message mode takes):
/// one datagram of new pooled buffers.
#[inline(never)]
fn transmit_datagram_copy(
    shared: &Shared,
    ring: &mut Ring,
    data: &[u8],
    to: Option<SocketAddr>,
) -> Result<(), Error> {
    let pool = shared.borrow().config.outbound.clone();
    let mut chunks = Vec::with_capacity(data.len().div_ceil(pool.buffer_size().max(1)));
    for piece in data.chunks(pool.buffer_size().max(1)) {
        let mut buffer = pool.take()?;
        buffer.extend_from_slice(piece);
        chunks.push(Chunk::Buffer(buffer));
    }
    transmit_chunks(shared, ring, chunks, to, false)
}

/// Queues one chunk (one datagram in message mode) and schedules the flush.
pub(crate) fn transmit_one(
    shared: &Shared,
    ring: &mut Ring,
    chunk: Chunk,
    urgent: bool,
) -> Result<(), Error> {
    let mut inner = shared.borrow_mut();
    if inner.config.message {
        drop(inner);
        return transmit_chunks(shared, ring, vec![chunk], None, urgent);
    }
    inner.check_writable()?;
    push_stream(&mut inner, chunk, urgent);
    schedule_flush(shared, &mut inner, ring);
    Ok(())
}

/// Appends `chunk` to a stream's queue, or right behind the send in flight when `urgent`.
fn push_stream(inner: &mut Inner, chunk: Chunk, urgent: bool) {
    if urgent {
        inner.send.push_urgent(chunk);
    } else {
        inner.send.push(chunk);
    }
}

/// Queues `chunks` (one message in message mode) and schedules the flush.
pub(crate) fn transmit_chunks(
    shared: &Shared,
    ring: &mut Ring,
    chunks: Vec<Chunk>,
    to: Option<SocketAddr>,
    urgent: bool,
) -> Result<(), Error> {
    let mut inner = shared.borrow_mut();
    inner.check_writable()?;
    if inner.config.message {
        if urgent {
            return Err(Error::InvalidArgument {
                reason: "urgent transmits are for stream sockets",
            });
        }
        inner.send.push_message(chunks, to);
    } else {
        if to.is_some() {
            return Err(Error::InvalidArgument {
                reason: "a destination address needs message mode",
            });
        }
        for chunk in chunks {
            push_stream(&mut inner, chunk, urgent);
        }
    }
    schedule_flush(shared, &mut inner, ring);
    Ok(())
}

/// Enlists the socket in the ring's end-of-tick flush list, once per tick, when a send could
/// start: a tick's writes to a socket go out in one send, at the end of the tick, with no
/// callback registered per socket.
#[inline]
pub(crate) fn schedule_flush(shared: &Shared, inner: &mut Inner, ring: &mut Ring) {
    if inner.flush_scheduled || inner.sending.is_some() || inner.send.is_empty() {
        return;
    }
    inner.flush_scheduled = true;
    ring.flush_at_tick_end(Rc::clone(shared) as Rc<dyn TickEndFlush>);
}

impl TickEndFlush for State {
    /// The end-of-tick flush: starts the send of what the tick queued.
    fn flush(self: Rc<Self>, ring: &mut Ring) {
        let pending = {
            let mut inner = self.borrow_mut();
            inner.flush_scheduled = false;
            start(&self, &mut inner, ring);
            crate::close::advance(&self, &mut inner, ring);
            inner.has_delivery()
        };
        if pending {
            deliver_pending(&self, ring);
        }
    }
}

/// Starts the next send when none is in flight and data is queued. Inlined: a send
/// completion nearly always finds nothing more to send, which then costs no call.
#[inline]
pub(crate) fn start(shared: &Shared, inner: &mut Inner, ring: &mut Ring) {
    if inner.sending.is_some() || inner.send.is_empty() || inner.broken.is_some() {
        return;
    }
    start_send(shared, inner, ring);
}

/// [`start`] once a send can start. The usual send (one reply queued on a plain stream) is
/// made here: its chunk is read in place, the configuration is not looked at, and the
/// operation goes to the ring as it is built; any other goes through [`start_built_send`].
#[inline(never)]
fn start_send(shared: &Shared, inner: &mut Inner, ring: &mut Ring) {
    let Some(fd) = inner.fd.as_ref() else {
        return;
    };
    if inner.pinned_sends
        && inner.send.chunks() == 1
        && let Some(pin) = inner.send.lend_pinned()
    {
        let offered = pin.len();
        let op = if inner.report_drained || inner.send_found_no_room {
            Op::send_pinned(fd, pin, SendFlags::empty())
        } else {
            // It empties the queue and nobody waits for the drain: sent without waiting
            // for room, it completes while it is submitted, and the tick's wait needn't
            // return for that completion alone (`Op::unawaited`). Should the socket have
            // no room, the completion says `EAGAIN` and the send goes again, waiting.
            Op::send_pinned(fd, pin, SendFlags::DONTWAIT).unawaited()
        };
        let handler_state = Rc::clone(shared);
        let submitted = ring.submit(op, move |ring, completion| {
            on_completion(&handler_state, ring, completion)
        });
        note_submitted(inner, submitted, Flavour::Plain, offered);
        return;
    }
    start_built_send(shared, inner, ring);
}

/// [`start_send`] for every send but the usual one: [`build`] picks the operation the mode
/// and the queue call for. Out of line, so that the usual send's frame stays small (and each
/// of the two submits its own handler, inlined where it is built).
#[inline(never)]
fn start_built_send(shared: &Shared, inner: &mut Inner, ring: &mut Ring) {
    let Some(fd) = inner.fd.as_ref() else {
        return;
    };
    let (op, flavour, offered) = match build(
        &mut inner.send,
        &inner.config,
        inner.zc_pending as usize,
        fd,
    ) {
        Ok(Some(built)) => built,
        Ok(None) => return,
        Err(error) => {
            inner.fail(error.errno());
            return;
        }
    };
    let handler_state = Rc::clone(shared);
    let submitted = ring.submit(op, move |ring, completion| {
        on_completion(&handler_state, ring, completion);
    });
    note_submitted(inner, submitted, flavour, offered);
}

/// Notes a send the ring took as in flight, or breaks the stream when it refused it.
#[inline(always)]
fn note_submitted(
    inner: &mut Inner,
    submitted: Result<OpId, fio_ring::Error>,
    flavour: Flavour,
    offered: usize,
) {
    match submitted {
        Ok(id) => {
            inner.sending = Some(id);
            inner.offered = offered;
            inner.in_flight += 1;
            match flavour {
                Flavour::Plain => {}
                Flavour::ZeroCopy => {
                    inner.zc_pending += 1;
                    inner.stats.zero_copy_sends += 1;
                }
                Flavour::Corked => inner.stats.corked_sends += 1,
            }
        }
        Err(error) => {
            // The refused op dropped what it was lent: a `Vec` among moved chunks is gone,
            // and a pinned chunk stays parked for good (its pin is gone), so the stream
            // cannot go on intact.
            log::warn!("fd {}: the ring refused a send: {error}", inner.raw_fd);
            inner.send.finish(0, Vec::new());
            inner.fail(Error::from(error).errno());
        }
    }
}

/// What kind of send [`build`] made, for the socket's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Plain,
    ZeroCopy,
    /// Sent with `MSG_MORE` because more data waits behind it (auto-cork mode).
    Corked,
}

/// An operation [`build`] made: what it sends, its kind, and the bytes it offers the kernel.
type Built = (Op, Flavour, usize);

/// Lends the front chunks to the operation that fits the mode, with the bytes it offers (for
/// telling a short send without walking the queue again); `None` when a zero-copy send must
/// wait for notifications first.
///
/// Inlined into [`start`], so the operation is built where it is submitted rather than copied
/// out through the nested results.
#[inline(always)]
fn build(
    send: &mut SendQueue,
    config: &SocketConfig,
    zc_pending: usize,
    fd: &OwnedFd,
) -> Result<Option<Built>, Error> {
    let limit = config.limit;
    if config.message {
        // Never `MSG_MORE` here: on a datagram socket it would merge messages.
        let count = send.front_message_chunks();
        let Some(lent) = send.lend(count) else {
            return Ok(None);
        };
        let to = lent.to;
        let offered = lent_bytes(&lent);
        return Ok(Some((
            Op::sendmsg(fd, write_bufs(lent), to)?,
            Flavour::Plain,
            offered,
        )));
    }
    if config.mode == Mode::FileIo {
        let Some(lent) = send.lend(limit) else {
            return Ok(None);
        };
        let offered = lent_bytes(&lent);
        return Ok(Some((
            Op::writev(fd, write_bufs(lent), None)?,
            Flavour::Plain,
            offered,
        )));
    }
    if let Mode::ZeroCopy { min_len } = config.mode {
        let mut lens = send.pending_lens();
        let large_front = lens.next().is_some_and(|len| len >= min_len);
        // The small chunks in front of the next large one are gathered together.
        let small = 1 + lens.take_while(|len| *len < min_len).count();
        if large_front {
            if zc_pending >= config.limit {
                return Ok(None);
            }
            let Some(lent) = send.lend(1) else {
                return Ok(None);
            };
            let pinned = lent.chunks.iter().all(Chunk::is_pinned);
            let offered = lent_bytes(&lent);
            let mut bufs = write_bufs(lent);
            let Some(buf) = bufs.pop() else {
                return Ok(None);
            };
            return Ok(Some(if pinned {
                (Op::send_zc(fd, buf), Flavour::ZeroCopy, offered)
            } else {
                (Op::send(fd, buf), Flavour::Plain, offered)
            }));
        }
        return lend_stream(send, &config.scratch, fd, small.min(limit), false);
    }
    lend_stream(
        send,
        &config.scratch,
        fd,
        limit,
        config.mode == Mode::AutoCork,
    )
}

/// Lends up to `count` front chunks of a stream to one `send(2)`, or to one gathered
/// `sendmsg(2)` built in the shared scratch storage (no allocation once it is warm).
#[inline(always)]
fn lend_stream(
    send: &mut SendQueue,
    scratch: &SendScratch,
    fd: &OwnedFd,
    count: usize,
    auto_cork: bool,
) -> Result<Option<Built>, Error> {
    // The usual send (one reply queued): the operation reads its chunk in place, so nothing
    // moves out of the queue and back; no list to fill, and no `MSG_MORE` (nothing waits
    // behind it).
    if send.chunks() == 1
        && let Some(pin) = send.lend_pinned()
    {
        let offered = pin.len();
        return Ok(Some((
            Op::send_pinned(fd, pin, SendFlags::empty()),
            Flavour::Plain,
            offered,
        )));
    }
    let mut chunks = scratch.chunks.borrow_mut();
    // Pooled buffers move into the send (no shared handle, no clone): a plain send gives
    // them back with its completion, to be recycled as spares once fully sent.
    let Some((offset, _)) = send.lend_moving_into(count, &mut chunks) else {
        return Ok(None);
    };
    // Auto-cork: chunks left behind this send mean another send follows at once, so let the
    // kernel hold a partial segment for it; the batch's last send goes without and flushes.
    let corked = auto_cork && send.chunks() > chunks.len();
    let (flags, flavour) = if corked {
        (SendFlags::MORE, Flavour::Corked)
    } else {
        (SendFlags::empty(), Flavour::Plain)
    };
    if chunks.len() == 1
        && let Some(chunk) = chunks.pop()
    {
        let mut buf = write_buf(chunk);
        buf.advance(offset);
        let offered = buf.remaining();
        return Ok(Some((
            Op::send_with_flags(fd, buf, flags),
            flavour,
            offered,
        )));
    }
    let offered = offered_bytes(&chunks, offset);
    // Several chunks: one gathered send, whose storage comes back with its completion.
    let mut storage = scratch.storages.borrow_mut().pop().unwrap_or_default();
    let bufs = storage.bufs_mut();
    bufs.clear();
    bufs.extend(chunks.drain(..).map(write_buf));
    if let Some(first) = bufs.first_mut() {
        first.advance(offset);
    }
    Ok(Some((
        Op::sendmsg_stored(fd, storage, flags)?,
        flavour,
        offered,
    )))
}

/// The bytes lent chunks offer the kernel: all of them but those of the first already sent.
fn lent_bytes(lent: &Lent) -> usize {
    offered_bytes(&lent.chunks, lent.offset)
}

/// The bytes of `chunks` but the first `offset`, already sent.
fn offered_bytes(chunks: &[Chunk], offset: usize) -> usize {
    chunks
        .iter()
        .map(Chunk::len)
        .sum::<usize>()
        .saturating_sub(offset)
}

/// The ring's view of one lent chunk.
fn write_buf(chunk: Chunk) -> WriteBuf {
    match chunk {
        Chunk::Buffer(buffer) => WriteBuf::from(buffer),
        Chunk::Shared(shared) => WriteBuf::from(shared),
        Chunk::Vec(vec) => WriteBuf::from(vec),
        Chunk::Static(bytes) => WriteBuf::from(bytes),
    }
}

/// The ring's view of lent chunks, the first one advanced past the bytes already sent.
fn write_bufs(lent: Lent) -> Vec<WriteBuf> {
    let mut bufs: Vec<WriteBuf> = lent.chunks.into_iter().map(write_buf).collect();
    if let Some(first) = bufs.first_mut() {
        first.advance(lent.offset);
    }
    bufs
}

/// A send completion: advance the queue, continue at once if more is queued, report a drain.
fn on_completion(shared: &Shared, ring: &mut Ring, mut completion: Completion) {
    let pending = {
        let mut inner = shared.borrow_mut();
        let inner = &mut *inner;
        if completion.is_final() {
            inner.in_flight -= 1;
            if completion.kind() == OpKind::SendZc {
                inner.zc_pending -= 1;
            }
        }
        if !completion.is_notification() && inner.sending == Some(completion.id()) {
            inner.sending = None;
            on_result(inner, &mut completion);
        }
        start(shared, inner, ring);
        if inner.report_drained
            && inner.sending.is_none()
            && inner.send.is_empty()
            && inner.lifecycle == Lifecycle::Open
            && inner.broken.is_none()
            && !completion.is_notification()
        {
            inner.push_event(Event::Drained);
        }
        crate::close::advance(shared, inner, ring);
        inner.has_delivery()
    };
    if pending {
        deliver_pending(shared, ring);
    }
}

/// Applies a send's result to the queue, with the chunks that moved into it (pooled buffers
/// and `Vec`s; shared and static chunks were clones).
#[inline(always)]
fn on_result(inner: &mut Inner, completion: &mut Completion) {
    let res = completion.raw_result();
    // The usual send read its chunk in place: the pin goes back to the queue.
    if let Some(pin) = completion.take_send_pin() {
        on_pinned(inner, res, pin);
    } else {
        on_moved(inner, res, completion);
    }
}

/// [`on_result`] for a send whose chunks moved into it (or were lent as clones). Out of line,
/// so that the usual completion's frame stays small.
#[inline(never)]
fn on_moved(inner: &mut Inner, res: i32, completion: &mut Completion) {
    if let Some(single) = completion.take_write_buf() {
        on_returned(inner, res, single.into_owned_chunk().into_iter());
    } else if let Some(mut taken) = completion.take_send_storage() {
        // The moved chunks go straight from the storage into their slots (no allocation);
        // the storage then goes back to the shared scratch for the next gathered send.
        let scratch = Rc::clone(&inner.config.scratch);
        on_returned(
            inner,
            res,
            taken
                .bufs_mut()
                .drain(..)
                .filter_map(WriteBuf::into_owned_chunk),
        );
        scratch.storages.borrow_mut().push(taken);
    } else {
        on_returned(inner, res, std::iter::empty());
    }
}

/// [`on_result`] for a send that read its chunk in place ([`SendQueue::lend_pinned`]).
fn on_pinned(inner: &mut Inner, res: i32, pin: SendPin) {
    let sent = usize::try_from(res).unwrap_or(0);
    let offered = pin.len();
    let dropped = inner.broken.is_some() || !inner.send.is_lent();
    let mut spares = inner.config.scratch.spares.borrow_mut();
    // Given back even when the queue was dropped (abort or failure) while the send was in
    // flight: the cleared queue parked the chunk until now.
    let ours = inner.send.finish_pinned(pin, sent, &mut spares);
    drop(spares);
    // Only a send that was not to wait can find no room: the next one waits.
    inner.send_found_no_room = res == -libc::EAGAIN;
    if dropped {
        return;
    }
    if !ours {
        log::error!(
            "fd {}: a send came back with another queue's pin",
            inner.raw_fd
        );
        inner.fail(libc::EIO);
        return;
    }
    count_send(inner, res, offered);
    fail_on_error(inner, res);
}

/// [`on_result`] once the send's moved chunks are back.
fn on_returned(inner: &mut Inner, res: i32, returned: impl Iterator<Item = Chunk>) {
    if inner.broken.is_some() || !inner.send.is_lent() {
        // The queue was dropped (abort or failure) while the send was in flight.
        return;
    }
    if inner.config.message {
        inner.send.finish_message();
        if res < 0 {
            inner.push_event(Event::Error { errno: -res });
        }
        return;
    }
    let sent = usize::try_from(res).unwrap_or(0);
    count_send(inner, res, inner.offered);
    let mut spares = inner.config.scratch.spares.borrow_mut();
    let complete = inner.send.finish_recycling(sent, returned, &mut spares);
    drop(spares);
    if !complete {
        log::error!("fd {}: a send lost its buffers", inner.raw_fd);
        inner.fail(libc::EIO);
        return;
    }
    fail_on_error(inner, res);
}

/// Counts a stream send's result in the socket's stats: the bytes the kernel took of the
/// `offered`, and whether it cut the send short.
#[inline]
fn count_send(inner: &mut Inner, res: i32, offered: usize) {
    if let Ok(sent) = usize::try_from(res) {
        inner.stats.sends += 1;
        inner.stats.bytes_sent += sent as u64;
        if sent < offered {
            inner.stats.short_sends += 1;
        }
    }
}

/// Breaks the stream on a send error; an interrupted or would-block send just goes on.
#[inline]
fn fail_on_error(inner: &mut Inner, res: i32) {
    match -res {
        ..=0 => {}
        libc::EAGAIN | libc::EINTR => {}
        errno => inner.fail(errno),
    }
}
