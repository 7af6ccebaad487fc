//! A reactor thread's connections when the reactor stops.
//!
//! Listeners close at once. Every other connection gets `on_shutdown`: `CloseNow` closes it
//! gracefully now, `CloseAfter` after its delay (at most 254 s), `KeepOpen` leaves it open
//! until every other connection has closed. Graceful closes drain their send queues within
//! the grace period (8 seconds after the last delayed close begins); whatever is left then is
//! closed abruptly. `on_close` runs for every connection, through the engine's `Closed`
//! reports or, failing those, at the end.
//!
//! "Every other connection" is the whole reactor's, not one thread's: each thread counts
//! itself as draining while it has a connection that isn't lingering, and lingering
//! connections are closed (abruptly, as facil.io does) only once every thread has begun its
//! shutdown and none is draining. A thread's own grace deadline never cuts a lingering
//! connection short; the other threads' deadlines bound how long it can wait.

use std::time::{Duration, Instant};

use crate::conn::dispatch::dispatch;
use crate::conn::protocol::{ShutdownDelay, ShutdownResponse};
use crate::conn::state::{Conn, Conns, Kind, close_local, finalize, with_protocol};
use crate::engine::{CloseMode, Engine};
use crate::thread::Local;
use crate::uuid::Uuid;

/// How long queued data may take to drain once a connection is closing (facil.io's 8 s).
pub(crate) const GRACE: Duration = Duration::from_secs(8);

/// The longest a lingering connection waits for the others: no other connection can take
/// longer than the longest delay ([`ShutdownDelay::MAX`]) plus the grace period, so this only
/// matters if a reactor thread never got to its shutdown (it died), which would otherwise hang
/// `start`.
const LINGER_CAP: Duration = ShutdownDelay::MAX.saturating_add(Duration::from_secs(1));

/// Waits for the engine's last `Closed` reports after the abortive closes at the end.
const FINAL_WAITS: usize = 64;

/// Starts the shutdown of this thread's connections.
pub(crate) fn begin(local: &Local, now: Instant) {
    let uuids: Vec<(Uuid, bool)> = local
        .conns
        .borrow()
        .map
        .iter()
        .map(|(&uuid, conn)| (uuid, matches!(conn.kind, Kind::Stream)))
        .collect();
    let mut deadline = now + GRACE;
    for (uuid, is_stream) in uuids {
        if !is_stream {
            close_local(local, uuid, CloseMode::Abort);
            continue;
        }
        if let Some(close_at) = shut_stream(local, uuid, now) {
            deadline = deadline.max(close_at + GRACE);
        }
    }
    let mut conns = local.conns.borrow_mut();
    conns.shutdown = Some(deadline);
    conns.linger_until = Some(now + LINGER_CAP + GRACE);
    conns.draining = is_draining(&conns);
    local.inner().shutdown_begun(conns.draining);
}

/// Asks one stream's protocol how to shut down and applies the answer; returns when a
/// delayed close is due.
fn shut_stream(local: &Local, uuid: Uuid, now: Instant) -> Option<Instant> {
    // Stays `CloseNow` when there is no protocol or `on_shutdown` panicked.
    let mut response = ShutdownResponse::CloseNow;
    with_protocol(local, uuid, "on_shutdown", |protocol| {
        response = protocol.on_shutdown(uuid);
    });
    let mut conns = local.conns.borrow_mut();
    match (response, conns.map.get_mut(&uuid)) {
        (ShutdownResponse::KeepOpen, Some(conn)) => conn.lingers = true,
        (ShutdownResponse::CloseAfter(delay), Some(conn)) => {
            let at = now + delay.get();
            conn.set_close_at(at);
            return Some(at);
        }
        _ => {
            drop(conns);
            close_local(local, uuid, CloseMode::Graceful);
        }
    }
    None
}

/// Shuts down a stream opened after this thread's shutdown began (an accept that completed
/// as its listener closed): it gets `on_shutdown` like the streams that were open then, and
/// a delayed close moves the thread's deadline. Nothing happens before the shutdown.
///
/// A thread that already reported itself drained doesn't count itself as draining again: the
/// late stream is closed within its own delay and grace period all the same.
pub(crate) fn admit_late(local: &Local, uuid: Uuid, now: Instant) {
    if local.conns.borrow().shutdown.is_none() {
        return;
    }
    if let Some(close_at) = shut_stream(local, uuid, now) {
        let mut conns = local.conns.borrow_mut();
        conns.shutdown = conns
            .shutdown
            .map(|deadline| deadline.max(close_at + GRACE));
    }
}

/// Whether `conns` holds a connection that isn't lingering (a closing one is draining, even
/// if it once asked to linger).
fn is_draining(conns: &Conns) -> bool {
    conns.map.values().any(|conn| !conn.lingers || conn.closing)
}

/// Moves the shutdown on: delayed closes that are due, everything but lingering connections
/// past the deadline, lingering connections once they are all that is left in the whole
/// reactor. Returns whether no connection is left on this thread.
pub(crate) fn progress(local: &Local, now: Instant) -> bool {
    let (due, past) = {
        let conns = local.conns.borrow();
        let past = conns.shutdown.is_some_and(|deadline| deadline <= now);
        let due: Vec<Uuid> = conns
            .map
            .iter()
            .filter(|(_, conn)| !conn.closing && conn.close_at().is_some_and(|at| at <= now))
            .map(|(&uuid, _)| uuid)
            .collect();
        (due, past)
    };
    for uuid in due {
        close_local(local, uuid, CloseMode::Graceful);
    }
    if past {
        abort_where(local, |conn| !conn.lingers || conn.closing);
    }
    let drained = {
        let mut conns = local.conns.borrow_mut();
        let drained = conns.draining && !is_draining(&conns);
        if drained {
            conns.draining = false;
        }
        drained
    };
    if drained {
        local.inner().shutdown_drained();
    }
    let (empty, capped) = {
        let conns = local.conns.borrow();
        let capped = conns.linger_until.is_some_and(|cap| cap <= now);
        (conns.map.is_empty(), capped)
    };
    if !empty && (capped || local.inner().only_lingering_left()) {
        abort_all(local);
    }
    local.conns.borrow().map.is_empty()
}

/// Closes everything left abruptly, collects the engine's reports, and finalizes whatever the
/// engine didn't report, so every `on_close` runs before the thread ends.
pub(crate) fn finish(local: &Local) {
    let mut events = std::mem::take(&mut local.conns.borrow_mut().stashed);
    dispatch(local, &mut events);
    abort_all(local);
    for _ in 0..FINAL_WAITS {
        if local.conns.borrow().map.is_empty() {
            break;
        }
        let waited = local
            .engine
            .borrow_mut()
            .wait(Some(Duration::from_millis(1)), &mut events);
        if let Err(error) = waited {
            log::warn!(
                "reactor thread {}: final wait failed: {error}",
                local.index()
            );
            break;
        }
        dispatch(local, &mut events);
    }
    let left: Vec<Uuid> = local.conns.borrow().map.keys().copied().collect();
    for uuid in left {
        finalize(local, uuid, None);
    }
}

/// Closes every connection abruptly.
fn abort_all(local: &Local) {
    abort_where(local, |_| true);
}

/// Closes the connections `which` picks abruptly.
fn abort_where(local: &Local, which: impl Fn(&Conn) -> bool) {
    let uuids: Vec<Uuid> = local
        .conns
        .borrow()
        .map
        .iter()
        .filter(|(_, conn)| which(conn))
        .map(|(&uuid, _)| uuid)
        .collect();
    for uuid in uuids {
        close_local(local, uuid, CloseMode::Abort);
    }
}
