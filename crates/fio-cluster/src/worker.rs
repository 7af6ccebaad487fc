//! A worker process, from the fork to its exit: it never returns into the root's frames.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;

use fio_reactor::cluster as hook;
use fio_reactor::{CallbackEvent, Reactor, StartArgs};
use fio_sys::{PollFlags, SavedAction, Signal};

/// How long a worker whose root died may take to stop before it exits anyway.
const ORPHAN_GRACE: Duration = Duration::from_millis(700);

/// Exit status of a worker that ended because its root died.
const ORPHAN_EXIT: i32 = 3;

/// Exit status of a worker whose reactor failed to start.
const START_FAILED_EXIT: i32 = 1;

/// Runs the worker in the child of a fork and ends the process.
pub(crate) fn run(
    reactor: &Reactor,
    args: StartArgs,
    workers: u16,
    link: UnixStream,
    saved: Vec<SavedAction>,
) -> ! {
    let reactor = reactor.clone();
    hook::enter_worker(&reactor, workers);
    // The root's handlers (stop, restart, child) don't belong here; the worker's reactor
    // claims SIGINT/SIGTERM for itself when it starts.
    crate::root::restore(saved);
    let root = fio_sys::Pid::new(i32::try_from(fio_reactor::master_pid()).unwrap_or(0));
    let orphan = Arc::new(Mutex::new(false));
    if let Err(error) = fio_sys::set_parent_death_signal(Some(Signal::TERM)) {
        log::warn!("worker: PR_SET_PDEATHSIG failed: {error}");
    }
    // The root may have died before the request above took effect.
    if fio_sys::parent_pid() != root {
        parent_crashed(&reactor, &orphan);
        finish(ORPHAN_EXIT);
    }
    reactor.state_callback_force(CallbackEvent::AfterFork);
    reactor.state_callback_force(CallbackEvent::InChild);
    watch_root(&reactor, &link, &orphan);
    match link.try_clone() {
        Ok(mut ready) => hook::when_serving(&reactor, move || {
            if let Err(error) = ready.write_all(&[1]) {
                log::warn!(
                    "worker {}: telling the root it serves failed: {error}",
                    std::process::id()
                );
            }
        }),
        Err(error) => log::warn!("worker: cloning the root link failed: {error}"),
    }
    let code = match hook::run_worker(&reactor, args) {
        Ok(()) => 0,
        Err(error) => {
            log::error!("worker {} failed to start: {error}", std::process::id());
            START_FAILED_EXIT
        }
    };
    if root_gone(&link) {
        parent_crashed(&reactor, &orphan);
    }
    hook::run_at_exit(&reactor);
    let orphaned = *orphan.lock();
    finish(if orphaned { ORPHAN_EXIT } else { code })
}

/// Watches the link on a thread of its own: EOF means the root died.
fn watch_root(reactor: &Reactor, link: &UnixStream, orphan: &Arc<Mutex<bool>>) {
    let link = match link.try_clone() {
        Ok(link) => link,
        Err(error) => {
            log::warn!("worker: cloning the root link failed: {error}");
            return;
        }
    };
    let reactor = reactor.clone();
    let orphan = Arc::clone(orphan);
    let spawned = thread::Builder::new()
        .name("fio-cluster-root".into())
        .spawn(move || {
            loop {
                match fio_sys::poll(link.as_fd(), PollFlags::IN, None) {
                    Ok(_) => break,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        log::warn!("worker: watching the root failed: {error}");
                        return;
                    }
                }
            }
            // The root never writes to this end: readable means closed.
            parent_crashed(&reactor, &orphan);
            thread::sleep(ORPHAN_GRACE);
            log::error!("worker {}: exiting without its root", std::process::id());
            finish(ORPHAN_EXIT);
        });
    if let Err(error) = spawned {
        log::warn!("worker: starting the root watcher failed: {error}");
    }
}

/// Whether the root's end of the link is closed (checked without waiting).
fn root_gone(link: &UnixStream) -> bool {
    fio_sys::poll(link.as_fd(), PollFlags::IN, Some(Duration::ZERO))
        .is_ok_and(|ready| !ready.is_empty())
}

/// The root died: `OnParentCrush` (once), then stop. A second caller waits until the first
/// is done, so the process doesn't exit in the middle of the callbacks.
fn parent_crashed(reactor: &Reactor, orphan: &Mutex<bool>) {
    let mut reported = orphan.lock();
    if *reported {
        return;
    }
    *reported = true;
    log::error!(
        "worker {}: the root process {} died",
        std::process::id(),
        fio_reactor::master_pid()
    );
    reactor.state_callback_force(CallbackEvent::OnParentCrush);
    reactor.stop();
}

/// Ends the worker process with `code`, flushing stdout first.
fn finish(code: i32) -> ! {
    let _ = io::stdout().flush();
    fio_sys::exit_immediately(code)
}
