//! Handshake deadlines: each reactor thread keeps the handshakes it serves in one table, with
//! one timer armed for the earliest deadline, instead of a timer per connection.
//!
//! Reactor timers can't be cancelled: a timer per connection stayed in the reactor's heap,
//! with its closure and flag, for the whole timeout after its handshake ended (10 s at
//! thousands of handshakes a second is megabytes of them). Here a handshake that ends leaves
//! the table at once, and the table holds only the handshakes under way.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use fio_reactor::{Repeat, Uuid};

/// The shortest delay a timer is armed with (a reactor timer needs one).
const MIN_DELAY: Duration = Duration::from_millis(1);

/// One thread's handshakes under way and its timer.
#[derive(Default)]
struct Watch {
    /// The deadline of each handshake under way on this thread.
    deadlines: HashMap<Uuid, Instant>,
    /// When the armed timer fires, and its number: a timer whose number is not the armed
    /// one's is stale (a later, earlier deadline replaced it) and does nothing.
    armed: Option<(Instant, u64)>,
    /// The last timer's number.
    last: u64,
}

impl Watch {
    /// Arms for `deadline` unless a timer fires by then: the new timer's number.
    fn arm_for(&mut self, deadline: Instant) -> Option<u64> {
        if self.armed.is_some_and(|(at, _)| at <= deadline) {
            return None;
        }
        self.last += 1;
        self.armed = Some((deadline, self.last));
        Some(self.last)
    }

    /// The timer numbered `number` ended (fired or dropped with its reactor).
    fn disarm(&mut self, number: u64) {
        if self.armed.is_some_and(|(_, armed)| armed == number) {
            self.armed = None;
        }
    }
}

thread_local! {
    static WATCH: RefCell<Watch> = RefCell::default();
}

/// Closes `uuid` (forcibly) unless its handshake ends within `timeout`; call on the thread
/// that serves it.
pub(crate) fn watch(uuid: Uuid, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let number = WATCH.with_borrow_mut(|watch| {
        watch.deadlines.insert(uuid, deadline);
        watch.arm_for(deadline)
    });
    if let Some(number) = number {
        arm(timeout, number);
    }
}

/// `uuid`'s handshake ended, or its connection closed: no deadline any more.
pub(crate) fn forget(uuid: Uuid) {
    // Not during the thread's exit, when the table may be gone already.
    let _ = WATCH.try_with(|watch| {
        if let Ok(mut watch) = watch.try_borrow_mut() {
            watch.deadlines.remove(&uuid);
        }
    });
}

/// Starts timer `number`, firing after `delay`.
fn arm(delay: Duration, number: u64) {
    let armed = fio_reactor::run_every(
        delay.max(MIN_DELAY),
        Repeat::ONCE,
        move || {
            sweep(number);
            false
        },
        // Also when the reactor drops the timer unfired: the next handshake arms anew.
        move || {
            let _ = WATCH.try_with(|watch| watch.borrow_mut().disarm(number));
        },
    );
    if let Err(error) = armed {
        log::debug!("no handshake timer: {error}");
    }
}

/// Timer `number` fired: closes the connections whose handshakes are past their deadlines
/// and arms for the next deadline.
fn sweep(number: u64) {
    let now = Instant::now();
    let (expired, next) = WATCH.with_borrow_mut(|watch| {
        if watch.armed.is_none_or(|(_, armed)| armed != number) {
            return (Vec::new(), None);
        }
        watch.armed = None;
        let mut expired = Vec::new();
        watch.deadlines.retain(|&uuid, &mut deadline| {
            let keep = deadline > now;
            if !keep {
                expired.push(uuid);
            }
            keep
        });
        let next = watch.deadlines.values().min().copied();
        let next = next.and_then(|deadline| Some((deadline, watch.arm_for(deadline)?)));
        (expired, next)
    });
    for uuid in expired {
        log::debug!("the TLS handshake of {uuid} timed out");
        let _ = fio_reactor::force_close(uuid);
    }
    if let Some((deadline, number)) = next {
        arm(deadline.saturating_duration_since(now), number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_earlier_deadline_arms_a_new_timer() {
        let mut watch = Watch::default();
        let now = Instant::now();
        let first = watch.arm_for(now + Duration::from_secs(10));
        assert_eq!(first, Some(1));
        assert_eq!(watch.arm_for(now + Duration::from_secs(11)), None);
        assert_eq!(watch.arm_for(now + Duration::from_secs(5)), Some(2));
        // The replaced timer's end changes nothing; the armed one's disarms.
        watch.disarm(1);
        assert!(watch.armed.is_some());
        watch.disarm(2);
        assert!(watch.armed.is_none());
        assert_eq!(watch.arm_for(now + Duration::from_secs(11)), Some(3));
    }
}
