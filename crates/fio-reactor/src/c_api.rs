//! How facil.io's C API maps onto this crate (documentation only).
//!
//! Names drop the `fio_` prefix and keep the stem. Every free function acts on the current
//! reactor (the one running the calling callback, else the process's default; [`stop`](crate::stop)
//! off the reactor stops every running one); the same operation exists as a
//! [`Reactor`](crate::Reactor) method. The table grows as the crate
//! implements more sections of the spec.
//!
//! ## Starting the IO reactor
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `struct fio_start_args` | [`StartArgs`](crate::StartArgs) | a builder (`StartArgs::new().threads(..).workers(..)`), `#[non_exhaustive]` with readable fields; adds `engine` and `signals`; the default is one process of one thread per core (facil.io's `0, 0` is cores × cores processes, which needs fio-cluster) |
//! | `.threads`, `.workers` (`int16_t`) | [`Concurrency`](crate::Concurrency) | C's positive `n` is `Exactly(n)`, `-1` is `PerCore`, `-n` is `FractionOfCores(n)` (cores / n, at least 1), `0` is `MatchOther` (the other count's number; both `0`: cores × cores); [`Concurrency::from_c`](crate::Concurrency::from_c) converts C's value |
//! | `fio_start(...)` | [`start`](crate::start), [`Reactor::start`](crate::Reactor::start) | returns `Result`; `workers > 1` runs the installed [`cluster::ProcessManager`](crate::cluster::ProcessManager) (`fio_cluster::install`, or `fio_cluster::start`), else is [`Error::ClusterRequired`](crate::Error::ClusterRequired) |
//! | `fio_stop` | [`stop`](crate::stop), [`Reactor::stop`](crate::Reactor::stop) | inside a callback: the reactor running it; off the reactor (a plain thread): every running reactor of the process, the one the program built included; `Reactor::stop` on a clone stops just that one |
//! | `fio_last_tick` | [`last_tick`](crate::last_tick) | a monotonic `Instant`, not a `timespec` |
//! | `fio_engine` | [`engine`](crate::engine()), [`EngineKind`](crate::EngineKind) | `"io_uring"` (the default) or `"epoll"` (when io_uring is refused, or asked for with `FIO_ENGINE=epoll` or `poll`); never `"kqueue"` (Linux only) or `"poll"` (no `poll(2)` engine) |
//! | `fio_expected_concurrency` | [`expected_concurrency`](crate::expected_concurrency) | takes two [`Concurrency`](crate::Concurrency) values; returns the pair (`u16`, each at least 1) instead of writing through `int16_t` pointers |
//! | `fio_is_running` | [`is_running`](crate::is_running), [`running_workers`](crate::running_workers) | `is_running` is a `bool`; `running_workers` is the spec's count (0 stopped, 1 single process, the cluster's worker count in its root and workers) |
//! | `fio_is_worker` | [`is_worker`](crate::is_worker) | |
//! | `fio_is_master` | [`is_master`](crate::is_master) | |
//! | `fio_master_pid` | [`master_pid`](crate::master_pid) | recorded at `start`, not at load |
//! | `fio_reap_children` | [`reap_children`](crate::reap_children) | returns `Result`; not for a cluster's root (its signal thread keeps the root from forking; the root reaps its workers itself) |
//! | workers (`fio_start(.workers > 1)`), the fork and crash events | `fio_cluster::start`, [`cluster`](crate::cluster) | the root raises `BeforeFork`, `AfterFork`, `InMaster`, `OnChildCrush`; workers `AfterFork`, `InChild`, `OnStart`, `OnParentCrush` |
//! | `fio_stop` in a worker | [`stop`](crate::stop) | stops that worker; the root forks a replacement |
//! | `fio_signal_handler_reset` | [`signal_handler_reset`](crate::signal_handler_reset) | also runs when `start` returns |
//!
//! ## Startup / state callbacks
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `callback_type_e` | [`CallbackEvent`](crate::CallbackEvent) | every event in facil.io's order; `FIO_CALL_NEVER` (an array size) has no variant |
//! | `FIO_CALL_ON_USR`, `FIO_CALL_ON_USR_REVERSE` | [`CallbackEvent::OnUsr`](crate::CallbackEvent::OnUsr), [`CallbackEvent::OnUsrReverse`](crate::CallbackEvent::OnUsrReverse) | never raised by the reactor; the program forces them; FIFO and LIFO |
//! | `FIO_CALL_ON_PUBSUB_CONNECT`, `FIO_CALL_ON_PUBSUB_ERROR` | [`CallbackEvent::OnPubsubConnect`](crate::CallbackEvent::OnPubsubConnect), [`CallbackEvent::OnPubsubError`](crate::CallbackEvent::OnPubsubError) | reserved for pub/sub engines, which force them; the reactor never does |
//! | `FIO_CALL_ON_IDLE` | [`CallbackEvent::OnIdle`](crate::CallbackEvent::OnIdle) | scheduled as deferred tasks when every thread ran out of work, as the spec says (idle threads may run them concurrently); running them isn't work, so they don't re-trigger themselves |
//! | `FIO_CALL_AT_EXIT` | [`CallbackEvent::AtExit`](crate::CallbackEvent::AtExit) | once: the default reactor's at the end of the free `start`, else at process exit (`atexit`); a `Reactor` value's when its last handle drops |
//! | `fio_state_callback_add(type, func, arg)` | [`state_callback_add`](crate::state_callback_add) | a closure; returns a [`CallbackId`](crate::CallbackId) |
//! | `fio_state_callback_remove(type, func, arg)` | [`state_callback_remove`](crate::state_callback_remove) | by id; `Err(CallbackNotFound)` instead of `-1` |
//! | `fio_state_callback_force` | [`state_callback_force`](crate::state_callback_force) | FIFO up to `OnIdle`, LIFO after it ([`CallbackEvent::runs_newest_first`](crate::CallbackEvent::runs_newest_first)) |
//! | `fio_state_callback_clear` | [`state_callback_clear`](crate::state_callback_clear) | |
//!
//! ## Event and task scheduling
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `fio_defer(task, udata1, udata2)` | [`defer`](crate::defer) | a `FnOnce` closure; cannot fail |
//! | `fio_defer_io_task(uuid, task, udata)` | [`defer_io_task`](crate::defer_io_task) | `FnOnce(Uuid, Option<&mut dyn Protocol>)`; `None` is the spec's NULL-protocol fallback; always queued; stale uuid: fallback at once and `Err(InvalidUuid)` |
//! | `fio_run_every(ms, reps, task, u1, u2, on_finish)` | [`run_every`](crate::run_every), [`Repeat`](crate::Repeat) | a `Duration`; `reps` is a [`Repeat`](crate::Repeat): C's `-1` is `Repeat::Forever`, a positive count `Repeat::Times` (C's 0 and other negatives can't be written); the task returns `true` to go on (C: non-zero stops) |
//! | `fio_defer_perform` | [`defer_perform`](crate::defer_perform) | |
//! | `fio_defer_has_queue` | [`defer_has_queue`](crate::defer_has_queue) | |
//!
//! ## Connection callback (protocol) management
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `fio_protocol_s` | [`Protocol`](crate::Protocol) | a trait; every method has a default; `on_close` runs exactly once, last; `dyn Protocol::downcast_mut` replaces the C cast |
//! | `on_shutdown`'s `uint8_t` return | [`Protocol::on_shutdown`](crate::Protocol::on_shutdown) → [`ShutdownResponse`](crate::ShutdownResponse) | C's 0 is `CloseNow`; 1..=254 seconds is `CloseAfter(`[`ShutdownDelay`](crate::ShutdownDelay)`)`, which keeps the connection that much longer (serving meanwhile; fractions of a second allowed, checked once a second; zero or longer than 254 s is [`Error::ShutdownDelayOutOfRange`](crate::Error::ShutdownDelayOutOfRange)), then the 8-second grace; 255 is `KeepOpen`, kept until every other connection of the reactor, on any thread, has closed, then closed abruptly; [`ShutdownResponse::from_c`](crate::ShutdownResponse::from_c) converts C's code |
//! | `fio_attach(uuid, protocol)` | [`attach`](crate::attach) | `Err(InvalidUuid)` after running the protocol's `on_close`; a [`socket_uuid`](crate::socket_uuid)/[`accept_uuid`](crate::accept_uuid) socket is taken over under its uuid |
//! | `fio_attach(uuid, NULL)` | [`detach`](crate::detach) | the hijack: no callbacks, connection stays open |
//! | `fio_attach_fd(fd, protocol)` | [`attach_fd`](crate::attach_fd) | takes an `OwnedFd`, returns the uuid |
//! | `fio_timeout_set(uuid, uint8_t)` / `fio_timeout_get` | [`timeout_set`](crate::timeout_set), [`timeout_get`](crate::timeout_get), [`TIMEOUT_MAX`](crate::TIMEOUT_MAX) | an `Option<Duration>`: C's 0 (no timeout, the default here; facil.io's listeners set 300 s) is `None`; 1..=255 s is `Some`; anything C's `uint8_t` couldn't hold (under a second, a fraction, over 255 s) is [`Error::TimeoutOutOfRange`](crate::Error::TimeoutOutOfRange), not truncated |
//! | `fio_touch` | [`touch`](crate::touch) | |
//! | `fio_force_event`, `enum fio_io_event` | [`force_event`](crate::force_event), [`IoEvent`](crate::IoEvent) | all three events, on the owner's next tick, from any thread; `OnReady` runs even with bytes queued |
//! | `fio_suspend` | [`suspend`](crate::suspend) | also stops receiving until resumed |
//! | `FIO_PING_ETERNAL` | [`ping_eternal`](crate::ping_eternal) | call it from `on_timeout` |
//! | `fio_protocol_try_lock` / `fio_protocol_unlock` | [`protocol_try_lock`](crate::protocol_try_lock), [`ProtocolGuard`](crate::ProtocolGuard) | unlock is the guard's drop; owning thread only (`Err(ForeignThread)` elsewhere: use `defer_io_task`); `Err(Locked)` is the spec's failed try-lock |
//! | `fio_capa` | [`capa`](crate::capa) | raises `RLIMIT_NOFILE` to its hard limit on first use (and `listen` uses it), then cached |
//!
//! ## Listening and connecting
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `fio_listen(.url, .on_open, .udata, .tls, .on_finish, .is_master_only)` | [`listen`](crate::listen), [`ListenArgs`](crate::ListenArgs), [`Reactor::listen`](crate::Reactor::listen) | binds at once; closures replace `udata`; `.tls` is any [`Tls`](crate::Tls) provider (fio-tls); a `tls://` URL without one is [`Error::TlsRequired`](crate::Error::TlsRequired); `master_only` matters with fio-cluster's workers only (served by the root, never by workers); [`ListenArgs::inherited`](crate::ListenArgs::inherited) serves an already listening socket (systemd's, via `fio_sys::listen_fds`) |
//! | `fio_connect(.url, .on_open, .on_finish, .tls, .udata, .timeout, .auto_reconnect, .is_master_only)` | [`connect`](crate::connect), [`ConnectArgs`](crate::ConnectArgs), [`Reactor::connect`](crate::Reactor::connect) | returns the first attempt's uuid; adds `on_fail(io::Error)`; `on_finish` runs once when no further attempt follows; `timeout` is a `Duration`; `master_only` connects from fio-cluster's root only |
//! | `FIO_RECONNECT_DELAY` | [`RECONNECT_DELAY`](crate::RECONNECT_DELAY) | a `Duration` (150 ms) |
//! | `fio_tls_s` (the slot) | [`Tls`](crate::Tls) | makes each connection's [`RwHook`](crate::RwHook); installed before `on_open` |
//! | `fio_listen(NULL, ...)` | [`ListenArgs::default_url`](crate::ListenArgs::default_url) | `tcp://0.0.0.0:3000` |
//! | `unix://` URLs | [`listen`](crate::listen), [`connect`](crate::connect) | Unix stream sockets, as TCP |
//!
//! ## Reading and writing
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `fio_read` | [`read`](crate::read) | `Ok(0)` only when nothing is buffered now; the peer's end of stream, which `fio_read` also reported as 0, is `Err(`[`Error::Eof`](crate::Error::Eof)`)`; on the owning thread only |
//! | `fio_write` | [`write`](crate::write()) | copies |
//! | — | [`write_notify`](crate::write_notify) | a write (from any thread) whose callback learns the outcome: `Ok` once sent, [`Error::Unsent`](crate::Error::Unsent) when the connection failed or closed first, `InvalidUuid`/`Closing` when refused; facil.io's routed `fio_write` could not tell |
//! | `fio_write2(.data.buf, .len, .offset, .dealloc, .urgent)` | [`write2`](crate::write2), [`Payload`](crate::Payload), [`Chunk`](crate::Chunk) | moves a `Vec`, pooled buffer or `&'static` bytes (slice it for `.offset`/`.len`); dropping it once sent is `.dealloc` (`FIO_DEALLOC_NOOP`: a `&'static` chunk) |
//! | `fio_write2(.copy = 1)` | [`write`](crate::write()) | |
//! | `fio_write2(.data.fd, .is_fd, .offset, .len, .keep_open)` | [`write2`](crate::write2) with a [`FileChunk`](crate::FileChunk) | [`FileChunk::new`](crate::FileChunk::new) closes the file when done, [`FileChunk::shared`](crate::FileChunk::shared) (an `Arc<File>`) is `.keep_open`; read a piece at a time (64 KiB, at most 4 queued), later writes wait behind it |
//! | `fio_sendfile` | [`sendfile`](crate::sendfile) | `len` 0 sends to the end of the file |
//! | `fio_read` / `fio_write` on a UDP socket | [`read`](crate::read), [`write`](crate::write()), [`read_from`](crate::read_from), [`write_to`](crate::write_to) | one call, one datagram; `read_from`/`write_to` add the peer's address, which facil.io's API could not give |
//! | `fio_pending` | [`pending`](crate::pending) | owning thread only; includes the chunks a hook holds ([`RwHook::pending`](crate::RwHook::pending)) |
//! | `fio_flush` | [`flush`](crate::flush()) | `Ok(true)` is 1 (data remains: in the hook, behind a file, or in the send queue), `Ok(false)` is 0, `Err` is -1; flushes the rw hook now, the send queue goes out at the end of the tick; owning thread only (`Err(ForeignThread)`, where facil.io set `EWOULDBLOCK`) |
//! | `fio_flush_strong` | [`flush_strong`](crate::flush_strong) | returns once drained: on the owner it drives the engine (other events wait for the next tick), from outside the reactor it waits for the owner to drain; bounded by the 8-second grace (`Err` with `TimedOut`) instead of spinning forever; from another reactor thread `Err(ForeignThread)` (two threads waiting on each other) |
//! | `fio_flush_all` | [`flush_all`](crate::flush_all), [`Reactor::flush_all`](crate::Reactor::flush_all) | every thread's connections; counts those still unsent: all threads' from outside the reactor (it waits up to a second for them), the calling thread's on a reactor thread (the others flush on their next tick, uncounted, so two threads can't wait on each other) |
//!
//! ## Connection environment (linked objects)
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `fio_uuid_env_set(uuid, .type, .name, .udata, .on_close, .const_name)` | [`uuid_env_set`](crate::uuid_env_set), [`uuid_env_set_with`](crate::uuid_env_set_with) | any `T: Any + Send`; cleanup is its `Drop` or the `on_close(T)` closure; a `&'static str` name is `const_name`; replacing a key cleans the old object up; stale uuid: cleanup at once and `Err(InvalidUuid)` |
//! | `fio_uuid_env_unset` | [`uuid_env_unset::<T>`](crate::uuid_env_unset) | returns the object without cleanup; `Err(InvalidUuid)` for `EBADF`, `Err(EnvNotFound)` for `ENOTCONN` (also for a `T` mismatch) |
//! | `fio_uuid_env_remove` | [`uuid_env_remove`](crate::uuid_env_remove) | runs the cleanup now |
//! | `fio_uuid_link` (0.7 internals) | [`uuid_env_set`](crate::uuid_env_set) | cleanups run when the connection closes, before `on_close` |
//!
//! ## Read / write hooks
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `fio_rw_hook_s` | [`RwHook`](crate::RwHook), [`HookIo`](crate::HookIo) | a trait; `udata` is the hook's own state; `cleanup` is its `Drop`; methods reach raw bytes only through `HookIo` (a reactor call from a hook panics, closing the connection, instead of deadlocking); `write` takes the whole chunk (no `EWOULDBLOCK`); adds `buffered` for decoded bytes held, `pending` for written chunks held (counted by [`pending`](crate::pending)), `wants_flush` (a write that held nothing skips the end-of-tick `flush`) and `write_borrowed` for [`write`](crate::write())'s lent bytes (encode without copying them first); [`HookIo::receive_buffer`](crate::HookIo::receive_buffer) lends received buffers to decode in place and [`HookIo::send_buffer`](crate::HookIo::send_buffer) gives pooled buffers to encode into (no copy after the hook's own); [`HookIo::send_now`](crate::HookIo::send_now) sends what the hook queued before the tick ends (a TLS handshake flight) |
//! | `fio_rw_hook_set(uuid, hooks, udata)` | [`rw_hook_set`](crate::rw_hook_set) | the old hook's `Drop` runs; stale uuid: the new hook is dropped and `Err(InvalidUuid)` |
//! | `fio_rw_hook_replace_unsafe` | [`HookIo::replace_with`](crate::HookIo::replace_with) | only reachable from inside a hook, hence safe; no cleanup: the old hook moves into the closure that makes the new one (keep it, wrap it, or drop it); [`HookIo::replace`](crate::HookIo::replace) is the shorthand that cleans the old hook up |
//! | `FIO_DEFAULT_RW_HOOKS` | [`DefaultHook`](crate::DefaultHook) | every `RwHook` method defaults to the plain path; setting it removes the hook |
//!
//! ## Socket / connection functions
//!
//! | C | Rust | Notes |
//! |---|---|---|
//! | `fio_uuid2fd` | [`Uuid::fd`](crate::Uuid::fd) | |
//! | `fio_fd2uuid` | [`fd2uuid`](crate::fd2uuid) | `None` instead of -1 |
//! | `fio_is_valid` / `fio_is_closed` | [`is_valid`](crate::is_valid), [`is_closed`](crate::is_closed) | |
//! | `fio_close` / `fio_force_close` | [`close`](crate::close), [`force_close`](crate::force_close) | |
//! | `fio_peer_addr` | [`peer_addr`](crate::peer_addr), [`local_addr`](crate::local_addr) | a [`SockAddr`](crate::SockAddr), not text |
//! | `fio_local_addr` | [`local_host_name`](crate::local_host_name) | the host name as a `String`; not resolved to a canonical name (that may block on DNS) |
//! | `fio_socket(address, port, flags)` | [`socket_uuid`](crate::socket_uuid), [`SocketRole`](crate::SocketRole) | the spec's shape: a uuid at once, valid before it is attached, [`attach`](crate::attach) hands it to the reactor under the same uuid, `close` closes it; a URL (its scheme picks TCP/UDP/Unix) and a role; always non-blocking |
//! | `fio_socket` at the descriptor level | [`socket`](crate::socket) | returns an `OwnedFd`; [`attach_fd`](crate::attach_fd) gives it a uuid |
//! | `fio_accept(srv_uuid)` | [`accept_uuid`](crate::accept_uuid) | the spec's shape: takes a `socket_uuid` server's uuid, returns the new connection's uuid, not attached (a `listen` uuid accepts by itself: `Err(InvalidUuid)`); sets `TCP_NODELAY`; `WouldBlock` when none is pending |
//! | `fio_accept` at the descriptor level | [`accept`](crate::accept) | takes the listening socket's `BorrowedFd`, returns an `OwnedFd` and the peer |
//! | `fio_set_non_block` | [`set_non_block`](crate::set_non_block) | also close-on-exec |
//!
//! ## Types and named-argument structs
//!
//! | facil.io | Rust | notes |
//! |---|---|---|
//! | `struct fio_listen_args` | [`ListenArgs`](crate::ListenArgs) | builder; `udata` is whatever the closures capture |
//! | `struct fio_connect_args`, `fio_connect_s` | [`ConnectArgs`](crate::ConnectArgs) | builder |
//! | `fio_write_args_s`, `fio_write2_fn` | [`Payload`](crate::Payload) ([`Chunk`](crate::Chunk) or [`FileChunk`](crate::FileChunk)) and the `urgent` flag of [`write2`](crate::write2) | the release callback is the payload's `Drop` |
//! | `fio_uuid_env_args_s`, `fio_uuid_env_unset_args_s` | the arguments of [`uuid_env_set`](crate::uuid_env_set) / [`uuid_env_unset`](crate::uuid_env_unset) | typed `T` instead of `void *` |
//! | `fio_socket_flags_e` | [`SocketRole`](crate::SocketRole) and the URL's scheme | |
//! | `fio_str_info_s` | `&[u8]` / `String` | |
//! | `fio_flash` (the spec's spelling of `fio_flush`) | [`flush`](crate::flush()) | |
//! | `fio_cluster_connect2remote`, `fio_cluster_listen2remote` | — | pub/sub cluster extensions, named by the spec only as examples; not part of this crate |
//!
//! ## Deliberate differences from facil.io 0.7
//!
//! - Timers use the monotonic clock and don't drift; missed ticks are skipped.
//! - `on_finish` of a timer runs on every path, including argument errors and reactor drop.
//! - Idle threads block in the engine; there is no nanosleep back-off.
//! - The engine is chosen at run time (io_uring first, epoll when the kernel or a seccomp
//!   profile refuses it), not at compile time; each reactor thread builds its own.
//! - Signal handlers are restored when `start` returns; a late signal touches nothing freed.
//! - A stale uuid is an error everywhere (32-bit generations, not an 8-bit counter).
//! - A peer's half-close (RDHUP) is read to the end: `on_data` consumes what was sent, then the
//!   connection closes gracefully, delivering queued writes. facil.io reset it unread.
//! - Receiving stops above a high-water mark of unread bytes per connection (backpressure).
//! - Callbacks of one connection never overlap: `on_ready` and `on_timeout` don't run
//!   concurrently with `on_data`.
//! - Write progress counts as activity, so a long drain doesn't hit the idle timeout (#154).
//! - `fio_protocol_try_lock` works on the owning thread only; other threads use
//!   `defer_io_task`, which is always queued (never runs inside a running callback).
//! - A hook's `before_close` runs on graceful closes only, and a delayed close is bounded by the
//!   8-second grace period; facil.io could wait on a hook's `flush` forever.
//! - `AtExit` runs once: at the end of the free `start` (default reactor), else at process exit
//!   through `atexit(3)` (the default reactor is never dropped), or when a `Reactor` value's
//!   last handle drops. facil.io ran it from a library destructor; at process exit the exiting
//!   thread's thread-locals are gone, so a callback's call to a free function may panic there
//!   (caught and logged).
