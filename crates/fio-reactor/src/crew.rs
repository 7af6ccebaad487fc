//! A reactor's threads from spawn to join: each builds its own engine on its own OS thread,
//! reports ready, and waits for the go before it enters its loop.
//!
//! Engines are built where they run because an io_uring ring is `!Send`: the kernel ties a
//! `SINGLE_ISSUER`/`DEFER_TASKRUN` ring to the thread that created it. So `start` spawns
//! threads 1.. first, builds thread 0's engine on the calling thread meanwhile, and collects
//! every thread's wake handle. Only when all are ready do the start-up callbacks run and the
//! threads get their go (their [`ThreadSlot`]). If an engine or a spawn fails, the waiting
//! threads are told to leave (their go channel closes), joined, and `start` returns the error
//! before any callback ran.

use std::fmt;
use std::io;
use std::mem;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self as os_thread, JoinHandle};

use crossbeam_deque::{Stealer, Worker};

use crate::defer::Task;
use crate::engine::{self, Backend, Engine, EngineKind, Wake};
use crate::error::Error;
use crate::reactor::Inner;
use crate::thread::{self, ThreadSlot};

/// What a spawned thread reports once its engine is built (or failed to build).
type Ready = (usize, io::Result<Arc<dyn Wake>>);

/// A reactor's threads, engines built, waiting for the go.
pub(crate) struct Crew {
    /// The reactor the threads run.
    inner: Arc<Inner>,
    /// Thread 0's engine, built on the calling thread, which runs thread 0.
    first: Backend,
    /// Thread 0's end of the work-stealing deque.
    first_worker: Worker<Task>,
    /// Every thread's stealer, by index, published when the crew runs.
    stealers: Vec<Stealer<Task>>,
    /// Threads 1.., blocked until they get their go.
    others: Others,
}

/// The spawned threads; dropping them unreleased tells them to leave and joins them.
struct Others(Vec<Member>);

/// One spawned reactor thread.
struct Member {
    /// Joined when the reactor stops (or the start is abandoned).
    handle: JoinHandle<()>,
    /// Sends the thread its slot (the go); dropping it unsent tells the thread to leave.
    go: Sender<Arc<ThreadSlot>>,
    /// The thread's wake handle, once it reported ready.
    waker: Option<Arc<dyn Wake>>,
}

impl Crew {
    /// Spawns threads 1..`threads`, builds every thread's engine of `kind` (thread 0's here),
    /// and waits until all are ready. Nothing of the reactor's is touched yet.
    ///
    /// # Errors
    /// - [`Error::SpawnThread`] when a thread can't be spawned;
    /// - [`Error::Engine`] when a thread's engine can't be built (the lowest such thread).
    pub(crate) fn assemble(
        inner: &Arc<Inner>,
        kind: EngineKind,
        threads: usize,
    ) -> Result<Self, Error> {
        let mut workers: Vec<Worker<Task>> =
            (0..threads.max(1)).map(|_| Worker::new_fifo()).collect();
        let stealers = workers.iter().map(Worker::stealer).collect();
        let rest = workers.split_off(1);
        #[allow(clippy::expect_used)]
        let first_worker = workers.pop().expect("threads.max(1) workers were made");
        let (ready, reports) = mpsc::channel::<Ready>();
        let mut others = Others(Vec::with_capacity(rest.len()));
        for (offset, worker) in rest.into_iter().enumerate() {
            let index = offset + 1;
            let (go, start) = mpsc::channel();
            let shared = Arc::clone(inner);
            let ready = ready.clone();
            let handle = os_thread::Builder::new()
                .name(format!("fio-reactor-{index}"))
                .spawn(move || member(shared, index, kind, worker, &ready, &start))
                .map_err(|source| Error::SpawnThread {
                    thread: index,
                    source,
                })?;
            others.0.push(Member {
                handle,
                go,
                waker: None,
            });
        }
        drop(ready);
        // Built while the other threads build theirs.
        let first = build(kind, 0)?;
        others.collect(&reports, kind)?;
        Ok(Self {
            inner: Arc::clone(inner),
            first,
            first_worker,
            stealers,
            others,
        })
    }

    /// The engine that runs, as its backend reports it.
    pub(crate) fn kind(&self) -> EngineKind {
        self.first.kind()
    }

    /// Publishes the threads to the reactor, gives every thread its go, runs thread 0 on the
    /// calling thread until the reactor stops, and joins the others.
    pub(crate) fn run(self) {
        let Self {
            inner,
            first,
            first_worker,
            stealers,
            mut others,
        } = self;
        let members = mem::take(&mut others.0);
        let first_slot = Arc::new(ThreadSlot::new(first.waker()));
        let mut slots = vec![Arc::clone(&first_slot)];
        let mut handles = Vec::with_capacity(members.len());
        let mut starts = Vec::with_capacity(members.len());
        for member in members {
            let Some(waker) = member.waker else {
                // `collect` checked every member reported a waker; treat a gap as a dead thread.
                handles.push(member.handle);
                continue;
            };
            let slot = Arc::new(ThreadSlot::new(waker));
            slots.push(Arc::clone(&slot));
            starts.push((member.go, slot));
            handles.push(member.handle);
        }
        inner.install_threads(slots, stealers);
        for (go, slot) in starts {
            if go.send(slot).is_err() {
                log::error!("a reactor thread ended before it was started");
            }
        }
        thread::run(Arc::clone(&inner), 0, first, first_worker, first_slot);
        for handle in handles {
            if handle.join().is_err() {
                log::error!("a reactor thread ended with a panic");
            }
        }
    }
}

impl fmt::Debug for Crew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crew")
            .field("kind", &self.kind())
            .field("threads", &(self.others.0.len() + 1))
            .finish_non_exhaustive()
    }
}

impl Others {
    /// Waits for every spawned thread's report and keeps their wake handles.
    ///
    /// # Errors
    /// - [`Error::Engine`] for the lowest-numbered thread whose engine failed, or that ended
    ///   without reporting (a panic while building it).
    fn collect(&mut self, reports: &Receiver<Ready>, kind: EngineKind) -> Result<(), Error> {
        let mut failure: Option<(usize, io::Error)> = None;
        for _ in 0..self.0.len() {
            // Every thread sends exactly one report before it can end, so this returns once
            // per thread; an error means every remaining thread ended without one.
            let Ok((index, report)) = reports.recv() else {
                break;
            };
            match report {
                Ok(waker) => {
                    if let Some(member) = self.0.get_mut(index.wrapping_sub(1)) {
                        member.waker = Some(waker);
                    }
                }
                Err(source) => {
                    if failure.as_ref().is_none_or(|(first, _)| index < *first) {
                        failure = Some((index, source));
                    }
                }
            }
        }
        if failure.is_none()
            && let Some(offset) = self.0.iter().position(|member| member.waker.is_none())
        {
            failure = Some((
                offset + 1,
                io::Error::other("the reactor thread ended while building its engine"),
            ));
        }
        match failure {
            Some((thread, source)) => Err(Error::Engine {
                engine: kind.name(),
                thread,
                source,
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Others {
    /// Tells threads that never got their go to leave, and joins them.
    fn drop(&mut self) {
        for member in self.0.drain(..) {
            drop(member.go);
            if member.handle.join().is_err() {
                log::error!("a reactor thread ended with a panic before it started");
            }
        }
    }
}

/// Builds thread `index`'s engine on the calling thread.
fn build(kind: EngineKind, index: usize) -> Result<Backend, Error> {
    engine::create(kind).map_err(|source| Error::Engine {
        engine: kind.name(),
        thread: index,
        source,
    })
}

/// The body of spawned thread `index`: build the engine, report, wait for the go, run.
fn member(
    inner: Arc<Inner>,
    index: usize,
    kind: EngineKind,
    worker: Worker<Task>,
    ready: &Sender<Ready>,
    start: &Receiver<Arc<ThreadSlot>>,
) {
    let engine = match engine::create(kind) {
        Ok(engine) => engine,
        Err(error) => {
            // The starter gives up on the whole start; nothing more to do here.
            let _ = ready.send((index, Err(error)));
            return;
        }
    };
    if ready.send((index, Ok(engine.waker()))).is_err() {
        return;
    }
    // A closed channel means the start was abandoned (another engine failed).
    let Ok(slot) = start.recv() else { return };
    thread::run(inner, index, engine, worker, slot);
}
