//! How facil.io's C API maps onto this crate (documentation only).
//!
//! Names drop the `fio_` prefix and keep the stem. Every free function acts on the current
//! reactor (the one running the calling callback, else the process's default); the same
//! operation exists as a [`Reactor`](crate::Reactor) method. The table grows as the crate
//! implements more sections of the spec.
//!
//! ## Starting the IO reactor
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `struct fio_start_args` | [`StartArgs`](crate::StartArgs) | adds `engine` and `signals` |
//! | `fio_start(...)` | [`start`](crate::start), [`Reactor::start`](crate::Reactor::start) | returns `Result`; `workers > 1` is [`Error::ClusterRequired`](crate::Error::ClusterRequired) |
//! | `fio_stop` | [`stop`](crate::stop), [`Reactor::stop`](crate::Reactor::stop) | |
//! | `fio_last_tick` | [`last_tick`](crate::last_tick) | a monotonic `Instant`, not a `timespec` |
//! | `fio_engine` | [`engine`](crate::engine()), [`EngineKind`](crate::EngineKind) | adds `"io_uring"`, the default; falls back to `"epoll"` when io_uring is refused |
//! | `fio_expected_concurrency` | [`expected_concurrency`](crate::expected_concurrency) | returns the pair instead of writing through pointers |
//! | `fio_is_running` | [`is_running`](crate::is_running) | a `bool`; the worker count is `expected_concurrency(..).1` |
//! | `fio_is_worker` | [`is_worker`](crate::is_worker) | |
//! | `fio_is_master` | [`is_master`](crate::is_master) | |
//! | `fio_master_pid` | [`master_pid`](crate::master_pid) | recorded at `start`, not at load |
//! | `fio_reap_children` | [`reap_children`](crate::reap_children) | returns `Result` |
//! | `fio_signal_handler_reset` | [`signal_handler_reset`](crate::signal_handler_reset) | also runs when `start` returns |
//!
//! ## Startup / state callbacks
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `callback_type_e` | [`CallbackEvent`](crate::CallbackEvent) | without `ON_PUBSUB_*`, `ON_USR*`, `NEVER` |
//! | `fio_state_callback_add(type, func, arg)` | [`state_callback_add`](crate::state_callback_add) | a closure; returns a [`CallbackId`](crate::CallbackId) |
//! | `fio_state_callback_remove(type, func, arg)` | [`state_callback_remove`](crate::state_callback_remove) | by id; `Err(CallbackNotFound)` instead of `-1` |
//! | `fio_state_callback_force` | [`state_callback_force`](crate::state_callback_force) | |
//! | `fio_state_callback_clear` | [`state_callback_clear`](crate::state_callback_clear) | |
//!
//! ## Event and task scheduling
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `fio_defer(task, udata1, udata2)` | [`defer`](crate::defer) | a `FnOnce` closure; cannot fail |
//! | `fio_defer_io_task` | *not yet* | needs connections (uuids, protocol locks) |
//! | `fio_run_every(ms, reps, task, u1, u2, on_finish)` | [`run_every`](crate::run_every) | a `Duration`; the task returns `true` to go on (C: non-zero stops) |
//! | `fio_defer_perform` | [`defer_perform`](crate::defer_perform) | |
//! | `fio_defer_has_queue` | [`defer_has_queue`](crate::defer_has_queue) | |
//!
//! ## Deliberate differences from facil.io 0.7
//!
//! - Timers use the monotonic clock and don't drift; missed ticks are skipped.
//! - `on_finish` of a timer runs on every path, including argument errors and reactor drop.
//! - Idle threads block in the engine; there is no nanosleep back-off.
//! - The engine is chosen at run time (io_uring first, epoll when the kernel or a seccomp
//!   profile refuses it), not at compile time; each reactor thread builds its own.
//! - Signal handlers are restored when `start` returns; a late signal touches nothing freed.
//! - `AtExit` runs at the end of the free `start` (default reactor) or when a `Reactor` value's
//!   last handle drops, never from a library destructor after `main`.
