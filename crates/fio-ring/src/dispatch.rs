//! The dispatch half of a tick: routing completions to handlers, re-arming what the ring
//! keeps alive (repeating timeouts, starved receives), end-of-tick callbacks and buffer-group
//! refills.

use std::mem;

use io_uring::cqueue;

use crate::completion::Completion;
use crate::features::OpKind;
use crate::handler::{CompletionHead, StoredHandler};
use crate::inflight::{IGNORED_USER_DATA, Lookup, OpId};
use crate::ops::Resources;
use crate::ring::{OpSlot, RawCqe, Receiver, Ring};

/// How many times one end of tick drains the flush list (entries enlisted by the previous
/// round's flushes included) before leaving the rest to the next tick.
const FLUSH_ROUNDS: usize = 16;

impl Ring {
    /// Dispatches the ring's own completions, then every completion in the queue at the
    /// start of the dispatch, in order. Each entry is consumed before its handler runs, so
    /// the handler may use the ring freely, and a panicking handler leaves the rest queued.
    pub(crate) fn dispatch(&mut self) -> usize {
        self.dispatching = true;
        let mut handled = 0;
        // One at a time, so a panicking handler leaves the rest queued. Only those queued
        // when the dispatch began run now; a handler's own cancels complete next tick.
        for _ in 0..self.synthetic.len() {
            let cqe = self.synthetic.remove(0);
            handled += usize::from(self.dispatch_one(cqe));
        }
        // Only the entries ready when the dispatch began: the tail is read once. Each leaves
        // the queue before its handler runs.
        let (mut head, tail) = self.cq.bounds();
        while head != tail {
            let cqe = self.cq.pop(head);
            head = head.wrapping_add(1);
            handled += usize::from(self.dispatch_one(cqe));
        }
        self.dispatching = false;
        handled
    }

    /// Routes one completion; returns whether a user handler ran. One slot lookup covers the
    /// two hot cases, as a bare loop's `match user_data` would: the final completion of a
    /// plain operation and more data of a multishot receive.
    #[inline(always)]
    fn dispatch_one(&mut self, cqe: RawCqe) -> bool {
        // `IGNORED_USER_DATA` (an internal cancel's) needs no test of its own: it names a slot
        // past the table's largest, so the lookup below finds nothing.
        let id = OpId::from_user_data(cqe.user_data);
        let more = cqueue::more(cqe.flags);
        // The plain path: the final completion of an operation with no buffer group and
        // nothing the ring re-arms or post-processes, which is what most completions are.
        let Some(found) = self.ops.get_or_vacate(id, |slot| !more && slot.plain) else {
            if cqe.user_data != IGNORED_USER_DATA {
                log::trace!("dropping completion for stale {id} (res {})", cqe.res);
            }
            return false;
        };
        match found {
            // Nothing owned (nops, closes, cancels): the resources are not moved at all. A
            // plain op keeps no entry to re-arm (only manually repeating timeouts do, and they
            // are not plain), so its slot needs no more emptying than the handler.
            Lookup::Vacated(slot) if matches!(slot.resources, Resources::None) => {
                debug_assert!(slot.rearm.is_none(), "a plain op kept an entry to re-arm");
                let kind = slot.kind;
                let handler = slot.handler.take();
                self.finish_bare(id, kind, cqe.res, cqe.flags, handler)
            }
            // Owned resources (a send's source, a read's target): moved out once, to the
            // handler, with no buffer group to select from. Not a zero-copy send (never
            // plain), so the result is the byte count.
            Lookup::Vacated(slot) => {
                debug_assert!(slot.rearm.is_none(), "a plain op kept an entry to re-arm");
                debug_assert!(
                    slot.kind != OpKind::SendZc,
                    "a zero-copy send is never plain"
                );
                let kind = slot.kind;
                let handler = slot.handler.take();
                let mut resources = slot.take_resources();
                apply_transfer(&mut resources, cqe.res);
                let Some(handler) = handler else {
                    drop(resources);
                    return false;
                };
                let head = CompletionHead::new(id, kind, cqe.res, cqe.flags);
                handler.finish(self, head, &mut resources);
                forget_taken(resources);
                true
            }
            // More data of a multishot receive, one per received buffer: nothing to re-arm,
            // starve or finish: take the buffer and run the handler.
            Lookup::Live(slot)
                if more
                    && slot.kind == OpKind::RecvMultishot
                    && slot.receiver == Receiver::User =>
            {
                let group = slot.group;
                let handler = slot.handler.take();
                self.run_handler(
                    id,
                    OpKind::RecvMultishot,
                    cqe.res,
                    cqe.flags,
                    group,
                    handler,
                )
            }
            Lookup::Live(_) => self.dispatch_special(id, cqe),
        }
    }

    /// Routes a completion that needs more than the plain path: more to come, a buffer
    /// group, a timeout or zero-copy send, or one of the ring's own operations.
    #[inline(never)]
    fn dispatch_special(&mut self, id: OpId, cqe: RawCqe) -> bool {
        let Some(slot) = self.ops.get_mut(id) else {
            return false;
        };
        let more = cqueue::more(cqe.flags);
        let mut res = cqe.res;
        let mut is_final = !more;
        let mut rearm = false;
        let mut starve = false;
        let group = slot.group;
        match slot.kind {
            OpKind::Timeout if res == -libc::ETIME => {
                res = 0;
                if slot.repeat_manually {
                    if slot.cancelled {
                        // The cancel raced this expiry and found nothing to cancel: this
                        // completion is the final one the cancel promised.
                        res = -libc::ECANCELED;
                    } else {
                        rearm = true;
                        is_final = false;
                    }
                }
            }
            OpKind::Recv | OpKind::RecvMultishot | OpKind::RecvMsgMultishot
                if slot.group.is_some() && !more && !slot.cancelled =>
            {
                if res == -libc::ENOBUFS {
                    starve = true;
                    is_final = false;
                } else if matches!(slot.kind, OpKind::RecvMultishot | OpKind::RecvMsgMultishot)
                    && res > 0
                {
                    // The kernel ended the multishot with data (e.g. CQ pressure): carry on.
                    rearm = true;
                    is_final = false;
                }
            }
            OpKind::SendZc if more => slot.transferred = res,
            _ => {}
        }
        if slot.receiver == Receiver::Wake {
            self.on_wake(id, res);
            return false;
        }
        if starve {
            slot.starved = true;
            self.starved.push(id);
            self.replenish_due = true;
            // The group ran dry: the next refill lends more buffers (up to its entries).
            if let Some(group) = group
                && let Some(provider) = self.providers.iter_mut().find(|p| p.id() == group)
            {
                provider.note_dry();
            }
            // ENOBUFS carries no buffer, but never strand one that came with it anyway.
            drop(self.select(group, cqe.flags, res));
            return false;
        }
        let rearm_entry = if rearm {
            slot.rearm_entry(id, &self.providers)
        } else {
            None
        };
        let kind = slot.kind;
        let handler = if is_final { None } else { slot.handler.take() };
        if let Some(entry) = rearm_entry {
            self.stage_one(&entry);
        }
        if is_final {
            return self.complete(id, res, cqe.flags, group);
        }
        self.run_handler(id, kind, res, cqe.flags, group, handler)
    }

    /// Runs `handler` (taken out of `id`'s slot) with a completion that is not the final one,
    /// then puts it back.
    #[inline(always)]
    fn run_handler(
        &mut self,
        id: OpId,
        kind: OpKind,
        res: i32,
        flags: u32,
        group: Option<u16>,
        mut handler: Option<StoredHandler>,
    ) -> bool {
        // A buffer picked from a group leaves the provider now, whatever happens next.
        let mut resources = self.select(group, flags, res);
        let Some(stored) = &mut handler else {
            drop(resources);
            return false;
        };
        stored.call_more(
            self,
            CompletionHead::new(id, kind, res, flags),
            &mut resources,
        );
        forget_taken(resources);
        if let Some(slot) = self.ops.get_mut(id) {
            // The handler was taken out of this live slot and nothing puts one back meanwhile
            // (only a vacant slot is given a handler): no old one to drop, or to test for.
            debug_assert!(
                slot.handler.is_none(),
                "slot got a handler while its own ran"
            );
            mem::forget(mem::replace(&mut slot.handler, handler));
        }
        true
    }

    /// Frees `id`'s slot and hands its resources to its handler with the final completion.
    #[inline(always)]
    fn complete(&mut self, id: OpId, res: i32, flags: u32, group: Option<u16>) -> bool {
        let Some(slot) = self.ops.vacate(id) else {
            return false;
        };
        let parts = FinalParts::take(slot, res);
        self.finish(id, res, flags, group, parts)
    }

    /// Calls the handler of a freed slot with its final completion: the resources it owned,
    /// or the buffer the completion carries from `group`.
    #[inline(always)]
    fn finish(
        &mut self,
        id: OpId,
        res: i32,
        flags: u32,
        group: Option<u16>,
        parts: FinalParts,
    ) -> bool {
        let FinalParts {
            kind,
            handler,
            mut resources,
            owned,
        } = parts;
        let selected = group.is_some() && cqueue::buffer_select(flags).is_some();
        if selected {
            let picked = self.select(group, flags, res);
            if !matches!(picked, Resources::None) {
                resources = picked;
            }
        }
        if !owned && !selected {
            // Nothing to pass but the scalars.
            mem::forget(resources);
            return self.finish_bare(id, kind, res, flags, handler);
        }
        let Some(handler) = handler else {
            drop(resources);
            return false;
        };
        let head = CompletionHead::new(id, kind, res, flags);
        handler.finish(self, head, &mut resources);
        forget_taken(resources);
        true
    }

    /// Calls the handler of a freed slot that owned nothing with its final completion.
    #[inline(always)]
    fn finish_bare(
        &mut self,
        id: OpId,
        kind: OpKind,
        res: i32,
        flags: u32,
        handler: Option<StoredHandler>,
    ) -> bool {
        let Some(handler) = handler else {
            return false;
        };
        handler.finish_bare(self, CompletionHead::new(id, kind, res, flags));
        true
    }

    /// Takes the buffer a completion carries out of its group, if it carries one, as the
    /// completion's resources (`Resources::None` otherwise): built where it is returned, not
    /// moved from an `Option` into a `Resources` into the completion.
    #[inline]
    fn select(&mut self, group: Option<u16>, flags: u32, res: i32) -> Resources {
        match (cqueue::buffer_select(flags), group) {
            (Some(bid), Some(group)) => self.take_from_group(group, bid, res),
            _ => Resources::None,
        }
    }

    /// Out of line: only buffer-group receives get here, and keeping it apart keeps the
    /// plain completion path small. Not cold: a receiving server takes it on every read.
    #[inline(never)]
    fn take_from_group(&mut self, group: u16, bid: u16, res: i32) -> Resources {
        let Some(provider) = self
            .providers
            .iter_mut()
            .find(|provider| provider.id() == group)
        else {
            return Resources::None;
        };
        let taken = provider.take(bid, res);
        // The usual take stages a fresh buffer in its place, which only the tail's publish
        // at the end of the tick has to show the kernel; a group left short needs a refill.
        self.publish_due = true;
        if provider.is_short() {
            self.replenish_due = true;
        }
        match taken {
            Some(buffer) => Resources::Selected(buffer),
            None => Resources::None,
        }
    }

    /// Runs the end-of-tick callbacks, then refills buffer groups and re-arms starved ops.
    /// Both are tested here, inline: a tick that enlisted nothing and took no buffer does
    /// nothing more.
    #[inline(always)]
    pub(crate) fn end_tick(&mut self) {
        if !self.flushes.is_empty() || !self.tick_end.is_empty() {
            self.run_tick_end();
        }
        self.replenish();
    }

    /// Drains the flush list, then runs the end-of-tick callbacks registered so far (those
    /// they register run next tick), then drains what they enlisted in the flush list.
    #[inline(never)]
    pub(crate) fn run_tick_end(&mut self) {
        self.dispatching = true;
        self.run_flushes();
        if !self.tick_end.is_empty() {
            self.run_tick_end_callbacks();
        }
        self.dispatching = false;
    }

    /// The end-of-tick callbacks registered so far, then the flushes they enlisted. Out of
    /// line: sockets enlist flushes, and callbacks are the rarer kind.
    #[inline(never)]
    fn run_tick_end_callbacks(&mut self) {
        let spare = mem::take(&mut self.tick_end_spare);
        let mut running = mem::replace(&mut self.tick_end, spare);
        for mut callback in running.drain(..) {
            callback.call(self, Completion::tick_end());
        }
        self.tick_end_spare = running;
        self.run_flushes();
    }

    /// Flushes every enlisted entry, and those enlisted meanwhile, for a bounded number of
    /// rounds: entries that keep enlisting each other past that wait for the next tick
    /// (which then does not block).
    #[inline(always)]
    fn run_flushes(&mut self) {
        for _ in 0..FLUSH_ROUNDS {
            match self.flushes.len() {
                0 => return,
                // The usual case (one socket wrote this tick), without trading lists: the
                // entry is taken out before it runs, so what it enlists is the next round.
                1 => {
                    if let Some(item) = self.flushes.pop() {
                        item.flush(self);
                    }
                }
                _ => self.flush_round(),
            }
        }
    }

    /// One round of [`run_flushes`](Self::run_flushes) over several entries: the list trades
    /// places with its spare, so what they enlist waits for the next round.
    #[inline(never)]
    fn flush_round(&mut self) {
        let spare = mem::take(&mut self.flushes_spare);
        let mut running = mem::replace(&mut self.flushes, spare);
        for item in running.drain(..) {
            item.flush(self);
        }
        self.flushes_spare = running;
    }

    /// Refills every buffer group from its pool, publishes the new tails (one release store
    /// per group) and re-arms the starved receives whose group has buffers again: when
    /// something since the last replenish (a buffer taken, a receive starved, a group left
    /// short) gave it work, which one test tells.
    #[inline(always)]
    pub(crate) fn replenish(&mut self) {
        if self.replenish_due {
            self.replenish_groups();
        } else if self.publish_due {
            self.publish_groups();
        }
    }

    /// Publishes every group's staged entries: the tick took buffers and staged their
    /// replacements at once, so there is nothing to refill.
    #[inline(always)]
    fn publish_groups(&mut self) {
        self.publish_due = false;
        // By index: an iterator's trip count, derived from the slice's byte length, cost a
        // division by the provider's size on every tick.
        for index in 0..self.providers.len() {
            self.providers[index].publish();
        }
    }

    /// Out of line for rings without buffer groups; not cold: a receiving server runs it
    /// every tick.
    #[inline(never)]
    fn replenish_groups(&mut self) {
        self.publish_due = false;
        let mut short = false;
        for provider in &mut self.providers {
            // A group whose taken buffers were all replaced at once only publishes.
            if provider.is_short() {
                provider.refill();
            }
            provider.publish();
            // A pool that ran out leaves the group short: refilling is retried every
            // replenish until it is whole again (buffers come back without telling us).
            short |= provider.is_short();
        }
        if !self.starved.is_empty() {
            self.rearm_starved();
        }
        self.replenish_due = short || !self.starved.is_empty();
    }

    /// Re-arms the starved receives whose group has buffers again.
    #[inline(never)]
    fn rearm_starved(&mut self) {
        for id in mem::take(&mut self.starved) {
            let Some(slot) = self.ops.get_mut(id) else {
                continue;
            };
            let has_buffers = self
                .providers
                .iter()
                .any(|provider| Some(provider.id()) == slot.group && provider.available() > 0);
            if !has_buffers {
                self.starved.push(id);
                continue;
            }
            slot.starved = false;
            if let Some(entry) = slot.rearm_entry(id, &self.providers) {
                self.stage_one(&entry);
            }
        }
    }
}

/// What a freed slot hands to its final completion, emptied out of the slot before anything
/// can claim it again.
struct FinalParts {
    kind: OpKind,
    handler: Option<StoredHandler>,
    /// The op's resources, the transfer count already applied.
    resources: Resources,
    /// Whether `resources` holds anything (`Resources::None` needs no drop).
    owned: bool,
}

impl FinalParts {
    /// Empties a vacated slot back to its vacant state, in place (nothing claims it before
    /// the caller is done with it), rather than moving it out whole.
    #[inline(always)]
    fn take(slot: &mut OpSlot, res: i32) -> Self {
        let kind = slot.kind;
        let handler = slot.handler.take();
        let owned = !matches!(slot.resources, Resources::None);
        let mut resources = if owned {
            slot.take_resources()
        } else {
            Resources::None
        };
        let count = transfer_count(slot, res);
        drop(slot.rearm.take());
        if owned {
            apply_transfer(&mut resources, count);
        }
        Self {
            kind,
            handler,
            resources,
            owned,
        }
    }
}

/// Disposes of resources a handler call took (leaving `Resources::None`) without the drop
/// glue's test and call: nothing is left to drop.
#[inline(always)]
fn forget_taken(resources: Resources) {
    debug_assert!(
        matches!(resources, Resources::None),
        "resources left behind"
    );
    mem::forget(resources);
}

/// The bytes an op moved: its result, or for a zero-copy send the count its first completion
/// reported (the final one is the notification).
#[inline(always)]
fn transfer_count(slot: &OpSlot, res: i32) -> i32 {
    if slot.kind == OpKind::SendZc {
        slot.transferred
    } else {
        res
    }
}

/// Records a successful transfer of `count` bytes in an op's own resources.
#[inline(always)]
fn apply_transfer(resources: &mut Resources, count: i32) {
    let Ok(count) = usize::try_from(count) else {
        return;
    };
    match resources {
        // A send's source, the usual case: advanced here rather than in a call.
        Resources::Write(buf) => buf.advance(count),
        // A send read in place from its queue: the queue's owner consumes the bytes sent,
        // so there is nothing to record, and no call to make on every send.
        Resources::Pinned(_) => {}
        other => other.apply_transfer(count),
    }
}
