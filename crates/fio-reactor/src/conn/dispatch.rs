//! A reactor thread's connection work per tick: engine events into callbacks, queued
//! `on_data` calls, forced events, operations routed from other threads, and the coarse
//! once-a-second timeout sweep.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use fio_sys::SockAddr;

use crate::conn::protocol::IoEvent;
use crate::conn::state::{
    Conn, Kind, OnOpen, caught, close_local, finalize, run_data, set_suspended, with_protocol,
};
use crate::conn::table::{self, Record};
use crate::conn::tls::SharedTls;
use crate::conn::{hook, outbox, shutdown, tls};
use crate::defer::run_task;
use crate::engine::{CloseMode, Endpoints, EngineEvent};
use crate::thread::{Local, ThreadSlot};
use crate::uuid::Uuid;

/// `on_data` calls per tick before the thread looks at its timers and engine again.
const DATA_BUDGET: usize = 256;

/// How often idle timeouts are checked (facil.io's review runs once a second too).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Turns a wait's events into callbacks.
pub(crate) fn dispatch(local: &Local, events: &mut Vec<EngineEvent>) {
    let now = Instant::now();
    for event in events.drain(..) {
        match event {
            EngineEvent::Accepted {
                listener,
                stream,
                peer,
            } => accepted(local, listener, stream, peer),
            EngineEvent::Readable { conn } => {
                let mut conns = local.conns.borrow_mut();
                let Some(entry) = conns.map.get_mut(&conn) else {
                    continue;
                };
                entry.active = now;
                let orphan = !entry.has_protocol() && !entry.hijacked && !entry.closing;
                // A closing connection's hook gets what arrived through its flush, since
                // `on_data` no longer runs: it may need it to finish (a TLS handshake).
                let hook_waits = entry.closing && entry.hook.is_some();
                conns.schedule_data(conn);
                if hook_waits {
                    conns.schedule_flush(conn);
                }
                drop(conns);
                // Nobody will ever read: the peer is done and no protocol came.
                if orphan && local.engine.borrow().is_eof(conn) {
                    close_local(local, conn, CloseMode::Graceful);
                }
            }
            EngineEvent::Drained { conn } => drained(local, conn, now),
            EngineEvent::Connected { conn, result } => connected(local, conn, result),
            EngineEvent::Closed { conn, error } => finalize(local, conn, error),
        }
    }
}

/// Hands an accepted stream to the thread whose turn it is (this one, or another through its
/// inbox), which opens it and calls the listener's `on_open`; `peer` is its address when the
/// engine's accept returned it.
fn accepted(local: &Local, listener: Uuid, stream: OwnedFd, peer: Option<SockAddr>) {
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
        let known = Endpoints { peer, local: bound };
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
            (
                conn.outbox.needs_pump(),
                conn.suspended,
                conn.hook_held,
                conn.has_notify(),
            )
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
    with_protocol(local, uuid, "on_ready", |protocol| protocol.on_ready(uuid));
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
pub(crate) fn tick(local: &Local, slot: &ThreadSlot, now: Instant) -> usize {
    let mut work = 0;
    // Events `flush_strong` gathered inside a callback (rare: one check per tick otherwise).
    if !local.conns.borrow().stashed.is_empty() {
        let mut stashed = std::mem::take(&mut local.conns.borrow_mut().stashed);
        work += stashed.len();
        dispatch(local, &mut stashed);
    }
    for task in slot.take_inbox() {
        run_task(task);
        work += 1;
    }
    for task in local.inner().take_parked(local.index()) {
        run_task(task);
        work += 1;
    }
    let forced: Vec<_> = local.conns.borrow_mut().forced.drain(..).collect();
    for (uuid, event) in forced {
        work += 1;
        match event {
            IoEvent::OnData => run_data(local, uuid),
            IoEvent::OnReady => {
                with_protocol(local, uuid, "on_ready", |protocol| protocol.on_ready(uuid));
            }
            IoEvent::OnTimeout => {
                with_protocol(local, uuid, "on_timeout", |protocol| {
                    protocol.on_timeout(uuid);
                });
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
            let next = *conns.next_sweep.get_or_insert(now + SWEEP_INTERVAL);
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
