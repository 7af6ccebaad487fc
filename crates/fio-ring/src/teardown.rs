//! Dropping a [`Ring`] with operations in flight: cancel everything, wait (bounded) for the
//! final completions, and leak, never free, whatever the kernel may still use.

use std::mem;
use std::time::{Duration, Instant};

use io_uring::types::{SubmitArgs, Timespec};
use io_uring::{cqueue, opcode};

use crate::completion::Completion;
use crate::inflight::{IGNORED_USER_DATA, OpId};
use crate::ops::Resources;
use crate::ring::Ring;

/// How long one teardown wait blocks before re-checking the deadline.
const POLL_STEP: Duration = Duration::from_millis(50);

impl Drop for Ring {
    fn drop(&mut self) {
        // Otherwise the thread's io_uring context would keep the ring alive until it exits.
        self.enter_path.release(&self.uring);
        if let Some(shared) = self.handle.take() {
            shared.close();
        }
        self.tick_end.clear();
        self.tick_end_spare.clear();
        self.flushes.clear();
        self.flushes_spare.clear();
        // Entries still in the backlog never reached the kernel: free their slots now.
        for entry in self.take_backlog() {
            drop(self.ops.remove(OpId::from_user_data(entry.get_user_data())));
        }
        // Starved receives (and cancelled ones awaiting their made-up completion) have no
        // kernel request either.
        for id in mem::take(&mut self.starved) {
            drop(self.ops.remove(id));
        }
        for cqe in mem::take(&mut self.synthetic) {
            drop(self.ops.remove(OpId::from_user_data(cqe.user_data)));
        }
        if self.ops.len() > 0 {
            self.cancel_all();
            self.drain_until(Instant::now() + self.config.drop_timeout);
        }
        if self.ops.len() > 0 {
            log::error!(
                "{} io_uring operations still in flight {:?} after drop began; leaking their \
                 memory rather than freeing what the kernel may still use",
                self.ops.len(),
                self.config.drop_timeout,
            );
            for id in self.ops.ids() {
                if let Some(slot) = self.ops.remove(id) {
                    mem::forget(slot.resources);
                }
            }
            mem::forget(mem::take(&mut self.providers));
            return;
        }
        // Nothing in flight: the kernel no longer reads any group, so unregister and free.
        for provider in mem::take(&mut self.providers) {
            match provider.unregister(&self.uring) {
                Ok(()) => drop(provider),
                Err(error) => {
                    log::error!(
                        "unregistering buffer group {}: {error}; leaking it",
                        provider.group().id()
                    );
                    mem::forget(provider);
                }
            }
        }
    }
}

impl Ring {
    /// Marks every operation cancelled (so nothing re-arms) and queues a cancel for each.
    fn cancel_all(&mut self) {
        for id in self.ops.ids() {
            if let Some(slot) = self.ops.get_mut(id) {
                slot.cancelled = true;
            }
            let entry = opcode::AsyncCancel::new(id.user_data())
                .build()
                .user_data(IGNORED_USER_DATA);
            self.stage_entry(entry);
        }
        // Cancels that did not fit are pushed as room appears.
        for entry in self.take_backlog() {
            for _ in 0..16 {
                let mut queue = self.uring.submission();
                // SAFETY: a cancel entry holds no pointers; other backlogged entries' memory
                // belongs to live in-flight slots, as in `Ring::stage`.
                if unsafe { queue.push(&entry) }.is_ok() {
                    break;
                }
                drop(queue);
                if self.uring.submit().is_err() {
                    break;
                }
            }
        }
    }

    /// Enters the kernel until every operation has posted its final completion or
    /// `deadline` passes. Completions are dropped: buffers return to their pools and any
    /// descriptor an accept or open produced is closed.
    fn drain_until(&mut self, deadline: Instant) {
        while self.ops.len() > 0 {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let time = Timespec::from((deadline - now).min(POLL_STEP));
            let args = SubmitArgs::new().timespec(&time);
            if let Err(error) = self.uring.submitter().submit_with_args(1, &args)
                && !matches!(
                    error.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                )
            {
                log::error!("io_uring_enter during ring drop: {error}");
                return;
            }
            let cqes: Vec<_> = self
                .uring
                .completion()
                .map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags()))
                .collect();
            for (user_data, res, flags) in cqes {
                if user_data == IGNORED_USER_DATA {
                    continue;
                }
                let id = OpId::from_user_data(user_data);
                let Some(slot) = self.ops.get(id) else {
                    continue;
                };
                let (kind, group) = (slot.kind, slot.group);
                let selected = match (cqueue::buffer_select(flags), group) {
                    (Some(bid), Some(group)) => self
                        .providers
                        .iter_mut()
                        .find(|provider| provider.group().id() == group)
                        .and_then(|provider| provider.take(bid, res)),
                    _ => None,
                };
                let is_final = !cqueue::more(flags);
                let resources = if is_final {
                    self.ops
                        .remove(id)
                        .map(|slot| slot.resources)
                        .unwrap_or_default()
                } else {
                    Resources::None
                };
                drop(selected);
                drop(Completion::new(id, kind, res, flags, is_final, resources));
            }
        }
    }
}
