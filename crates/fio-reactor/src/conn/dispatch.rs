//! A reactor thread's connection work per tick: engine events into callbacks, queued
//! `on_data` calls, forced events, operations routed from other threads, and the coarse
//! once-a-second timeout sweep.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use fio_sys::SockAddr;

use crate::conn::protocol::IoEvent;
use crate::conn::state::{
    Conn, Kind, OnOpen, caught, close_local, finalize, run_data, run_ready, run_taken_data,
    set_suspended, with_protocol,
};
use crate::conn::table::{self, Record};
use crate::conn::tls::SharedTls;
use crate::conn::{hook, outbox, shutdown, tls};
use crate::defer::run_task;
use crate::engine::{CloseMode, Endpoints, Engine, EngineEvent};
use crate::thread::{Local, ThreadSlot};
use crate::uuid::Uuid;

/// `on_data` calls per dispatch of a wait's events, and per turn of the `on_data` queue,
/// before the thread looks at its timers and engine again.
const DATA_BUDGET: usize = 256;

/// How often idle timeouts are checked (facil.io's review runs once a second too).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Turns a wait's events into callbacks.
///
/// A `Readable` runs its connection's `on_data` right here, in the tick its bytes arrived:
/// the engine's event is the only hand-off between the completion and the callback, and
/// what the callback writes goes out with the engine's next wait. Past [`DATA_BUDGET`] calls
/// in one dispatch, the rest wait in the `on_data` queue for the tick's budgeted turn, so
/// a burst of events can't hold the thread's timers and tasks back without bound.
pub(crate) fn dispatch(local: &Local, events: &mut Vec<EngineEvent>) {
    dispatch_at(local, events, Instant::now());
}

/// [`dispatch`] with the clock already read: `now` is when the wait returned the events.
pub(crate) fn dispatch_at(local: &Local, events: &mut Vec<EngineEvent>, now: Instant) {
    // A lone event, what a wait returns while the server keeps up with its clients, is
    // popped and handed on with no budget to keep (one `on_data` can't exceed it): cheaper
    // than setting up a drain, and with the batch out of line this path needs no frame.
    if events.len() == 1 {
        if let Some(event) = events.pop() {
            handle(local, event, now, None);
        }
        return;
    }
    dispatch_batch(local, events, now);
}

/// [`dispatch_at`] for a wait that returned several events (or none).
#[inline(never)]
fn dispatch_batch(local: &Local, events: &mut Vec<EngineEvent>, now: Instant) {
    let mut budget = DATA_BUDGET;
    for event in events.drain(..) {
        handle(local, event, now, Some(&mut budget));
    }
}

/// Turns one event into its callback (`budget`: the `on_data` calls the batch may still
/// make, `None` for a lone event); inlined into both of `dispatch`'s paths, as a call per
/// event cost a batch more than the drain it spares a lone event.
#[inline(always)]
fn handle(local: &Local, event: EngineEvent, now: Instant, budget: Option<&mut usize>) {
    match event {
        EngineEvent::Accepted {
            listener,
            stream,
            peer,
        } => accepted(local, listener, stream, peer),
        EngineEvent::Readable { conn } => readable(local, conn, now, budget),
        EngineEvent::Drained { conn } => drained(local, conn, now),
        EngineEvent::Connected { conn, result } => connected(local, conn, *result),
        EngineEvent::Closed { conn, error } => finalize(local, conn, error),
    }
}

/// Bytes (or the end of stream) arrived for `uuid`: its `on_data` runs now while `budget`
/// lasts (`None`: a lone event, which always may), else it is queued. A connection already queued (to continue a partly read
/// backlog, or resumed) keeps its place in the queue instead, which is what keeps one
/// flooding connection from running ahead of the others.
///
/// Inlined into the dispatch loop: this runs per request, and what can't run now goes out
/// of line ([`readable_later`]), so the common path saves no registers of its own.
#[inline]
fn readable(local: &Local, uuid: Uuid, now: Instant, budget: Option<&mut usize>) {
    let mut conns = local.conns.borrow_mut();
    let Some(entry) = conns.map.get_mut(&uuid) else {
        return;
    };
    entry.active = now;
    #[cfg(test)]
    tests::READABLE_AT.set(local.waits.get());
    let run_now = budget.as_ref().is_none_or(|budget| **budget > 0)
        && !entry.queued
        && !entry.suspended
        && !entry.closing
        && entry.protocol.is_some();
    if !run_now {
        drop(conns);
        readable_later(local, uuid);
        return;
    }
    // Taken through the entry at hand (never closing, so no flush to queue): no second
    // lookup.
    let taken = entry.take_for_data();
    drop(conns);
    if let Some(budget) = budget {
        *budget -= 1;
    }
    if let Some((protocol, before, plain)) = taken {
        run_taken_data(local, uuid, protocol, before, plain);
    }
}

/// [`readable`] for a connection whose `on_data` can't run now: queued (or already waiting in
/// the queue), a closing connection's hook flushed, an orphan closed.
#[inline(never)]
fn readable_later(local: &Local, uuid: Uuid) {
    let mut conns = local.conns.borrow_mut();
    let Some(entry) = conns.map.get_mut(&uuid) else {
        return;
    };
    let orphan = !entry.has_protocol() && !entry.hijacked && !entry.closing;
    // A closing connection's hook gets what arrived through its flush, since `on_data` no
    // longer runs: it may need it to finish (a TLS handshake).
    let queue_flush = entry.closing && entry.mark_flush_scheduled();
    // Queued through the entry at hand: no third lookup.
    let queue_data = entry.mark_data_queued();
    if queue_flush {
        conns.flush_queue.push(uuid);
    }
    if queue_data {
        conns.ready.push_back(uuid);
    }
    drop(conns);
    // Nobody will ever read: the peer is done and no protocol came.
    if orphan && local.engine.borrow().is_eof(uuid) {
        close_local(local, uuid, CloseMode::Graceful);
    }
}

/// Hands an accepted stream to the thread whose turn it is (this one, or another through its
/// inbox), which opens it and calls the listener's `on_open`; `peer` is its address when the
/// engine's accept returned it.
fn accepted(local: &Local, listener: Uuid, stream: OwnedFd, peer: Option<Box<SockAddr>>) {
    let (on_open, tls, nodelay, bound) = match local.conns.borrow().map.get(&listener) {
        // Even a closing listener's: the kernel accepted the client before the close took
        // effect (an io_uring accept can complete despite its cancel), and closing the
        // stream unserved would reset a client that did nothing wrong.
        Some(Conn {
            kind: Kind::Listener(listening),
            ..
        }) => (
            listening.on_open.clone(),
            listening.tls.clone(),
            !listening.nodelay_inherited,
            listening.accepted_local.clone(),
        ),
        // No listener (its `Closed` was already handled): the stream just closes.
        _ => return,
    };
    let owner = local.inner().next_owner();
    Local::run_on(local.inner(), Some(local), owner, move |local| {
        // Read when it runs: another thread opens it on its next tick.
        let now = Instant::now();
        let known = Endpoints {
            peer: peer.map(|peer| *peer),
            local: bound,
        };
        open_accepted(local, stream, known, &on_open, tls.as_ref(), nodelay, now);
    });
}

/// Opens an accepted stream on this thread, secures it, and calls `on_open`; `known`: its
/// addresses already known (the rest are asked for); `nodelay`: the stream did not inherit
/// `TCP_NODELAY` from its listener, so it is set here.
fn open_accepted(
    local: &Local,
    stream: OwnedFd,
    known: Endpoints,
    on_open: &OnOpen,
    tls: Option<&SharedTls>,
    nodelay: bool,
    now: Instant,
) {
    let record = stream_record(local, &stream, known, nodelay);
    let uuid = table::open(stream.as_raw_fd(), record);
    if open_with(local, uuid, stream, Kind::Stream, false, now).is_err() {
        return;
    }
    if let Some(tls) = tls
        && tls::secure(local, uuid, tls, tls::Side::Server).is_err()
    {
        close_local(local, uuid, CloseMode::Abort);
        return;
    }
    caught("on_open", uuid, || on_open(uuid));
    require_protocol(local, uuid);
    // Accepted after this thread's shutdown began: it gets `on_shutdown` like the others.
    shutdown::admit_late(local, uuid, now);
}

/// The table record of a stream owned by this thread, with its addresses.
pub(crate) fn record_for(local: &Local, stream: &OwnedFd) -> Record {
    stream_record(local, stream, Endpoints::default(), true)
}

/// [`record_for`], asking the kernel only for the addresses `known` lacks (the peer's is
/// recorded now because `getpeername` fails once the peer has reset, and `peer_addr` must
/// still answer in `on_close`), setting `TCP_NODELAY` on a TCP stream only with `nodelay`.
fn stream_record(local: &Local, stream: &OwnedFd, known: Endpoints, nodelay: bool) -> Record {
    let mut record = Record::new(local.inner(), local.index());
    record.peer = known
        .peer
        .or_else(|| fio_sys::peer_addr(stream.as_fd()).ok());
    record.local = known
        .local
        .or_else(|| fio_sys::local_addr(stream.as_fd()).ok());
    if nodelay
        && record
            .peer
            .as_ref()
            .is_some_and(|peer| peer.as_inet().is_some())
    {
        // Small writes go out at once, as facil.io sets it on every TCP connection.
        let _ = fio_sys::set_nodelay(stream.as_fd(), true);
    }
    record
}

/// Registers `fd` (already in the table as `uuid`) with this thread's engine: a listener for
/// [`Kind::Listener`], a datagram socket for [`Kind::Datagram`], else a stream. On failure the table slot is released and the error
/// logged and returned.
pub(crate) fn open_with(
    local: &Local,
    uuid: Uuid,
    fd: OwnedFd,
    kind: Kind,
    connecting: bool,
    now: Instant,
) -> io::Result<()> {
    let (listener, datagram) = (
        matches!(kind, Kind::Listener(_)),
        matches!(kind, Kind::Datagram { .. }),
    );
    local
        .conns
        .borrow_mut()
        .map
        .insert(uuid, Conn::new(kind, now));
    let opened = if listener {
        local.engine.borrow_mut().listen(uuid, fd)
    } else if datagram {
        local.engine.borrow_mut().open_datagram(uuid, fd)
    } else {
        local.engine.borrow_mut().open(uuid, fd, connecting)
    };
    if let Err(error) = opened {
        log::warn!("opening connection {uuid} failed: {error}");
        local.conns.borrow_mut().map.remove(&uuid);
        crate::conn::env::clean_up(uuid, table::close(uuid));
        return Err(error);
    }
    Ok(())
}

/// After an `on_open`: a connection nobody attached to (nor hijacked) is closed.
pub(crate) fn require_protocol(local: &Local, uuid: Uuid) {
    let orphan = local
        .conns
        .borrow()
        .map
        .get(&uuid)
        .is_some_and(|conn| !conn.has_protocol() && !conn.hijacked && !conn.closing);
    if orphan {
        log::debug!("connection {uuid} had no protocol attached by on_open; closing it");
        close_local(local, uuid, CloseMode::Graceful);
    }
}

/// The send queue drained: resume a suspended `on_data`, then `on_ready`.
fn drained(local: &Local, uuid: Uuid, now: Instant) {
    // The common case (no file, not suspended, no hook holding bytes) is decided with this
    // one lookup: this runs after every completed send.
    let (pumped, suspended, hook_held, notify) = match local.conns.borrow_mut().map.get_mut(&uuid) {
        Some(conn) => {
            conn.active = now;
            let waits = (
                conn.outbox.needs_pump(),
                conn.suspended,
                conn.hook_held,
                conn.has_notify(),
            );
            // Nothing waits for this drain and `on_ready` is the default no-op: no one can
            // observe it. The next drains needn't even be reported until something starts
            // waiting (`want_drained` turns reports back on; a hook that comes to hold bytes
            // does, in `hook::flush_one`).
            if waits == (false, false, false, false) && conn.on_ready_is_default {
                if let Ok(mut engine) = local.engine.try_borrow_mut() {
                    engine.report_drained(uuid, false);
                }
                return;
            }
            waits
        }
        None => return,
    };
    if pumped {
        // A file being sent refills the queue; `on_ready` waits until everything went out.
        outbox::pump(local, uuid);
        if outbox::is_waiting(local, uuid) {
            return;
        }
    }
    if local.engine.borrow().pending(uuid) > 0 {
        return;
    }
    // Pumping ran the hook, which may have changed these; otherwise they are as read above.
    if pumped || suspended {
        set_suspended(local, uuid, false);
    }
    if pumped || hook_held {
        hook::drained(local, uuid);
    }
    if notify {
        notify_drained(local, uuid);
    }
    run_ready(local, uuid);
}

/// The send queue drained: `write_notify` writes queued before are sent, unless a hook still
/// holds bytes.
fn notify_drained(local: &Local, uuid: Uuid) {
    let sent = match local.conns.borrow_mut().map.get_mut(&uuid) {
        Some(conn) if conn.has_notify() && !conn.hook_held => conn.take_notify(),
        _ => return,
    };
    for notify in sent {
        notify.report(Ok(()));
    }
}

/// A connect finished: `on_open` (which must attach) or `on_fail`.
fn connected(local: &Local, uuid: Uuid, result: io::Result<Endpoints>) {
    let kind = {
        let mut conns = local.conns.borrow_mut();
        let Some(conn) = conns.map.get_mut(&uuid) else {
            return;
        };
        std::mem::replace(&mut conn.kind, Kind::Stream)
    };
    let Kind::Connecting { connector, .. } = kind else {
        return;
    };
    let opened = result.and_then(|endpoints| {
        // The attempt registered the socket before the kernel knew its peer.
        table::update(uuid, |record| {
            record.peer = endpoints.peer;
            record.local = endpoints.local;
        });
        connector.opened(local, uuid)
    });
    match opened {
        Ok(()) => {
            if let Some(conn) = local.conns.borrow_mut().map.get_mut(&uuid) {
                conn.connector = Some(connector);
            }
            require_protocol(local, uuid);
        }
        Err(error) => {
            close_local(local, uuid, CloseMode::Abort);
            connector.failed(local, error);
        }
    }
}

/// Runs what other threads routed here, forced events, queued `on_data` calls, the timeout
/// sweep when due, and the read/write hooks' flushes; returns how much work was done.
#[inline]
pub(crate) fn tick(local: &Local, slot: &ThreadSlot, now: Instant) -> usize {
    // A server's tick nearly always finds every source empty: one look at them all, with
    // the work itself (and its register spills) out of line, costs a third of going through.
    if !slot.has_inbox() && !local.inner().has_parked() && local.conns.borrow().quiet(now) {
        return 0;
    }
    tick_work(local, slot, now)
}

/// [`tick`] when some source may hold work.
#[inline(never)]
fn tick_work(local: &Local, slot: &ThreadSlot, now: Instant) -> usize {
    let mut work = 0;
    // Events `flush_strong` gathered inside a callback (rare: one check per tick otherwise).
    if !local.conns.borrow().stashed.is_empty() {
        let mut stashed = std::mem::take(&mut local.conns.borrow_mut().stashed);
        work += stashed.len();
        dispatch(local, &mut stashed);
    }
    // Each source is looked at before it is taken: a busy server's tick nearly always finds
    // them all empty, and taking (and dropping) empty vectors costs more than the look.
    if slot.has_inbox() {
        for task in slot.take_inbox() {
            run_task(task);
            work += 1;
        }
    }
    if local.inner().has_parked() {
        for task in local.inner().take_parked(local.index()) {
            run_task(task);
            work += 1;
        }
    }
    // Looked at first, like the sources above: an empty vector made and dropped each tick
    // cost more than the look.
    if !local.conns.borrow().forced.is_empty() {
        let forced: Vec<_> = local.conns.borrow_mut().forced.drain(..).collect();
        for (uuid, event) in forced {
            work += 1;
            match event {
                IoEvent::OnData => run_data(local, uuid),
                IoEvent::OnReady => run_ready(local, uuid),
                IoEvent::OnTimeout => {
                    with_protocol(local, uuid, "on_timeout", |protocol| {
                        protocol.on_timeout(uuid);
                    });
                }
            }
        }
    }
    for _ in 0..DATA_BUDGET {
        let next = local.conns.borrow_mut().ready.pop_front();
        let Some(uuid) = next else { break };
        run_data(local, uuid);
        work += 1;
    }
    let due = {
        let mut conns = local.conns.borrow_mut();
        if conns.map.is_empty() {
            conns.next_sweep = None;
            false
        } else {
            let next = *conns.next_sweep.get_or_insert_with(|| now + SWEEP_INTERVAL);
            if next <= now {
                conns.next_sweep = Some(now + SWEEP_INTERVAL);
            }
            next <= now
        }
    };
    if due {
        sweep(local, now);
    }
    // Last, so writes made anywhere in the tick reach the send queue before the engine's
    // wait flushes it. Not counted as work: a hook that keeps holding bytes is retried on
    // the next tick that happens anyway (at worst the once-a-second sweep), not in a spin.
    hook::flush_queued(local, now);
    work
}

/// Whether connection work waits (queued callbacks, routed operations).
pub(crate) fn has_work(local: &Local, slot: &ThreadSlot) -> bool {
    local.conns.borrow().has_work() || slot.has_inbox() || local.inner().has_parked()
}

/// When this thread must look at its connections again even if no event comes.
pub(crate) fn next_deadline(local: &Local) -> Option<Instant> {
    let conns = local.conns.borrow();
    let sweep = if conns.map.is_empty() {
        None
    } else {
        conns.next_sweep
    };
    match (sweep, conns.shutdown) {
        (Some(sweep), Some(grace)) => Some(sweep.min(grace)),
        (sweep, grace) => sweep.or(grace),
    }
}

/// Calls `on_timeout` for connections idle past their timeout, and fails connects past their
/// deadline. Write progress since the last sweep counts as activity.
fn sweep(local: &Local, now: Instant) {
    let mut idle = Vec::new();
    let mut late = Vec::new();
    {
        let engine = local.engine.borrow();
        let mut conns = local.conns.borrow_mut();
        for (&uuid, conn) in conns.map.iter_mut() {
            if let Kind::Connecting {
                deadline: Some(deadline),
                ..
            } = conn.kind
            {
                if deadline <= now {
                    late.push(uuid);
                }
                continue;
            }
            let progress = (engine.sent(uuid), engine.pending(uuid));
            if progress != conn.progress {
                conn.progress = progress;
                conn.active = now;
            }
            let timeout = conn.timeout;
            if timeout > 0
                && !conn.closing
                && now.saturating_duration_since(conn.active) >= Duration::from_secs(timeout.into())
            {
                conn.active = now;
                idle.push(uuid);
            }
        }
    }
    for uuid in late {
        // The engine reports the aborted attempt as closed; `finalize` fails it with this.
        if let Some(conn) = local.conns.borrow_mut().map.get_mut(&uuid) {
            conn.timed_out = true;
        }
        close_local(local, uuid, CloseMode::Abort);
    }
    for uuid in idle {
        with_protocol(local, uuid, "on_timeout", |protocol| {
            protocol.on_timeout(uuid)
        });
    }
}

#[cfg(test)]
mod tests {
    //! The tick a byte takes: read by `on_data` in the tick its arrival is reported, and its
    //! answer sent by the engine's next wait. Ticks are counted by `Local::waits`, not timed.

    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};

    use crate::conn::protocol::Protocol;
    use crate::{Concurrency, EngineKind, ListenArgs, Reactor, StartArgs};

    use super::*;

    thread_local! {
        /// The engine wait whose `Readable` was dispatched last on this thread.
        pub(super) static READABLE_AT: Cell<u64> = const { Cell::new(u64::MAX) };
    }

    /// Round trips of one byte each.
    const ROUNDS: usize = 20;

    /// For each round: the wait that reported the byte, the wait `on_data` ran in, and the
    /// wait whose `on_ready` reported the echo sent.
    type Ticks = Arc<Mutex<Vec<(u64, u64, u64)>>>;

    /// Echoes each byte, noting the ticks of its arrival, `on_data` and `on_ready`.
    struct Probe {
        ticks: Ticks,
        /// The arrival's and `on_data`'s waits of the echo in flight.
        echoing: Option<(u64, u64)>,
    }

    fn waits() -> u64 {
        Local::with_this_thread(|local| local.waits.get()).expect("a reactor thread")
    }

    impl Protocol for Probe {
        fn on_data(&mut self, uuid: Uuid) {
            let mut buf = [0u8; 64];
            let mut echo = Vec::new();
            for _ in 0..8 {
                match crate::read(uuid, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(count) => echo.extend_from_slice(&buf[..count]),
                }
            }
            if !echo.is_empty() {
                self.echoing = Some((READABLE_AT.get(), waits()));
                crate::write(uuid, &echo).expect("write the echo");
            }
        }

        fn on_ready(&mut self, _uuid: Uuid) {
            if let Some((arrived, ran)) = self.echoing.take() {
                self.ticks.lock().unwrap().push((arrived, ran, waits()));
            }
        }
    }

    /// Runs [`ROUNDS`] one-byte round trips on `engine`; returns each round's ticks.
    fn round_trips(engine: EngineKind) -> Vec<(u64, u64, u64)> {
        let reactor = Reactor::new(
            StartArgs::new()
                .threads(Concurrency::ONE)
                .workers(Concurrency::ONE)
                .engine(Some(engine))
                .signals(false),
        );
        let ticks = Ticks::default();
        let shared = Arc::clone(&ticks);
        let listener = reactor
            .listen(ListenArgs::new("tcp://127.0.0.1:0", move |uuid| {
                let probe = Probe {
                    ticks: Arc::clone(&shared),
                    echoing: None,
                };
                crate::attach(uuid, probe).expect("attach in on_open");
            }))
            .unwrap();
        let addr = crate::local_addr(listener)
            .and_then(|addr| addr.as_inet())
            .unwrap();
        let stopper = reactor.clone();
        let client = std::thread::spawn(move || {
            let timeout = Some(std::time::Duration::from_secs(20));
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(timeout).unwrap();
            stream.set_nodelay(true).unwrap();
            for round in 0..ROUNDS {
                let byte = [u8::try_from(round).unwrap()];
                stream.write_all(&byte).unwrap();
                let mut echoed = [0u8; 1];
                stream.read_exact(&mut echoed).unwrap();
                assert_eq!(echoed, byte);
            }
            stopper.stop();
        });
        // The watchdog: a reactor still running after a minute fails the test, not hangs it.
        let watched = reactor.clone();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            let late = finished.recv_timeout(std::time::Duration::from_secs(60))
                == Err(std::sync::mpsc::RecvTimeoutError::Timeout);
            if late {
                watched.stop();
            }
            late
        });
        reactor.start().unwrap();
        drop(done);
        assert!(!watchdog.join().unwrap(), "the reactor ran past its minute");
        client.join().unwrap();
        assert_eq!(reactor.engine(), engine.name());
        ticks.lock().unwrap().clone()
    }

    #[test]
    fn a_byte_reaches_on_data_in_its_tick_and_its_answer_leaves_in_the_next_wait() {
        let mut engines = vec![EngineKind::Epoll];
        // Where io_uring can't run this skips it (or fails, under FIO_REQUIRE_URING=1).
        if crate::engine::conformance::uring_runs_here() {
            engines.push(EngineKind::Uring);
        }
        for engine in engines {
            let ticks = round_trips(engine);
            assert_eq!(ticks.len(), ROUNDS, "{engine}: one echo per round");
            for (arrived, ran, sent) in ticks {
                // The byte's `Readable` went straight to `on_data`: no wait in between.
                assert_eq!(ran, arrived, "{engine}: on_data ran a tick late");
                // The echo was handed to the kernel by the very next wait, whose completion
                // (or flush, on epoll) reported the queue drained.
                assert_eq!(sent, ran + 1, "{engine}: the echo left a tick late");
            }
        }
    }
}
