//! A reactor thread's connections when the reactor stops.
//!
//! Listeners close at once. Every other connection gets `on_shutdown`: 0 closes it gracefully
//! now, 1..=254 after that many seconds, 255 leaves it open until every other connection has
//! closed. Graceful closes drain their send queues within the grace period (8 seconds after
//! the last delayed close begins); whatever is left then is closed abruptly. `on_close` runs
//! for every connection, through the engine's `Closed` reports or, failing those, at the end.

use std::time::{Duration, Instant};

use crate::conn::dispatch::dispatch;
use crate::conn::state::{Kind, close_local, finalize, with_protocol};
use crate::engine::CloseMode;
use crate::thread::Local;
use crate::uuid::Uuid;

/// How long queued data may take to drain once a connection is closing (facil.io's 8 s).
pub(crate) const GRACE: Duration = Duration::from_secs(8);

/// On `on_shutdown`'s 255: stay open until the end.
const LINGER: u8 = 255;

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
        let mut code = 0;
        let ran = with_protocol(local, uuid, "on_shutdown", |protocol| {
            code = protocol.on_shutdown(uuid);
        });
        if !ran || code == 0 {
            close_local(local, uuid, CloseMode::Graceful);
            continue;
        }
        let mut conns = local.conns.borrow_mut();
        if let Some(conn) = conns.map.get_mut(&uuid) {
            if code == LINGER {
                conn.lingers = true;
            } else {
                let at = now + Duration::from_secs(code.into());
                conn.set_close_at(at);
                deadline = deadline.max(at + GRACE);
            }
        }
    }
    local.conns.borrow_mut().shutdown = Some(deadline);
}

/// Moves the shutdown on: delayed closes that are due, lingering connections once they are
/// all that is left, everything past the deadline. Returns whether no connection is left.
pub(crate) fn progress(local: &Local, now: Instant) -> bool {
    let (due, lingering, past) = {
        let conns = local.conns.borrow();
        if conns.map.is_empty() {
            return true;
        }
        let past = conns.shutdown.is_some_and(|deadline| deadline <= now);
        let due: Vec<Uuid> = conns
            .map
            .iter()
            .filter(|(_, conn)| !conn.closing && conn.close_at().is_some_and(|at| at <= now))
            .map(|(&uuid, _)| uuid)
            .collect();
        let only_lingering = conns.map.values().all(|conn| conn.lingers && !conn.closing);
        (due, only_lingering, past)
    };
    for uuid in due {
        close_local(local, uuid, CloseMode::Graceful);
    }
    if lingering || past {
        abort_all(local);
    }
    local.conns.borrow().map.is_empty()
}

/// Closes everything left abruptly, collects the engine's reports, and finalizes whatever the
/// engine didn't report, so every `on_close` runs before the thread ends.
pub(crate) fn finish(local: &Local) {
    abort_all(local);
    let mut events = Vec::new();
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
    let uuids: Vec<Uuid> = local.conns.borrow().map.keys().copied().collect();
    for uuid in uuids {
        close_local(local, uuid, CloseMode::Abort);
    }
}
