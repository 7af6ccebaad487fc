//! Defer throughput and timer cost, each against baselines measured in the same run.
//!
//! - `defer`: `TASKS` tiny tasks through a reactor with 1 and 2 threads, against a plain
//!   crossbeam-channel thread pool of the same size and `tokio::spawn` on a current-thread
//!   runtime. Every iteration includes starting and stopping the threads on each side,
//!   amortised over `TASKS` tasks.
//! - `timers`: `TIMERS` one-shot timers of 1 ms inserted and fired on a one-thread reactor,
//!   against as many `tokio::time::sleep` tasks on a current-thread runtime.
//!
//! Ratios go to the terminal and to `$FIO_BENCH_DIR/fio-reactor-defer.json`.
//! Run: `cargo bench -p fio-reactor --bench defer`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use fio_reactor::{Concurrency, Reactor, StartArgs};
use fio_test::{Ratio, SameRun};

/// Tasks per defer iteration.
const TASKS: usize = 100_000;
/// Timers per timer iteration.
const TIMERS: usize = 10_000;
/// Every timer's delay.
const TIMER_DELAY: Duration = Duration::from_millis(1);

fn reactor(threads: u16) -> Reactor {
    let threads = Concurrency::exactly(threads).expect("at least one thread");
    Reactor::new(StartArgs::new().threads(threads).signals(false))
}

/// Runs `TASKS` counting tasks on a fresh reactor; the last one stops it.
fn reactor_defer(threads: u16) {
    let reactor = reactor(threads);
    let counter = Arc::new(AtomicUsize::new(0));
    for _ in 0..TASKS {
        let counter = Arc::clone(&counter);
        reactor.defer(move || {
            if counter.fetch_add(1, Ordering::Relaxed) + 1 == TASKS {
                fio_reactor::stop();
            }
        });
    }
    reactor.start().expect("reactor runs");
    black_box(counter.load(Ordering::Relaxed));
}

/// Runs `TASKS` counting tasks on `threads` threads fed by one crossbeam channel.
fn channel_pool_defer(threads: usize) {
    let (sender, receiver) = crossbeam_channel::unbounded::<Box<dyn FnOnce() + Send>>();
    let counter = Arc::new(AtomicUsize::new(0));
    for _ in 0..TASKS {
        let counter = Arc::clone(&counter);
        sender
            .send(Box::new(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            }))
            .expect("pool receives");
    }
    drop(sender);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let receiver = receiver.clone();
            thread::spawn(move || receiver.iter().for_each(|task| task()))
        })
        .collect();
    workers
        .into_iter()
        .for_each(|worker| worker.join().expect("pool thread"));
    black_box(counter.load(Ordering::Relaxed));
}

/// A fresh tokio current-thread runtime (tokio's single-threaded executor).
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime builds")
}

/// Runs `TASKS` counting tasks spawned (detached, like `defer`) on a tokio current-thread
/// runtime; the main future yields until all have run, each yield letting the queue drain.
fn tokio_defer() {
    let runtime = tokio_runtime();
    let counter = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        for _ in 0..TASKS {
            let counter = Arc::clone(&counter);
            drop(tokio::spawn(async move {
                counter.fetch_add(1, Ordering::Relaxed);
            }));
        }
        while counter.load(Ordering::Relaxed) < TASKS {
            tokio::task::yield_now().await;
        }
    });
    black_box(counter.load(Ordering::Relaxed));
}

/// Inserts `TIMERS` one-shot timers on a one-thread reactor; the last to fire stops it.
fn reactor_timers() {
    let reactor = reactor(1);
    let fired = Arc::new(AtomicUsize::new(0));
    for _ in 0..TIMERS {
        let fired = Arc::clone(&fired);
        let tick = move || {
            if fired.fetch_add(1, Ordering::Relaxed) + 1 == TIMERS {
                fio_reactor::stop();
            }
            true
        };
        reactor
            .run_every(TIMER_DELAY, fio_reactor::Repeat::ONCE, tick, || {})
            .expect("valid timer");
    }
    reactor.start().expect("reactor runs");
    black_box(fired.load(Ordering::Relaxed));
}

/// Spawns `TIMERS` detached tasks that each sleep once on a tokio current-thread runtime; the
/// main future checks once per delay whether all have fired.
fn tokio_timers() {
    let runtime = tokio_runtime();
    let fired = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        for _ in 0..TIMERS {
            let fired = Arc::clone(&fired);
            drop(tokio::spawn(async move {
                tokio::time::sleep(TIMER_DELAY).await;
                fired.fetch_add(1, Ordering::Relaxed);
            }));
        }
        while fired.load(Ordering::Relaxed) < TIMERS {
            tokio::time::sleep(TIMER_DELAY).await;
        }
    });
    black_box(fired.load(Ordering::Relaxed));
}

/// Times `iterations` calls of `routine`.
fn timed(iterations: u64, mut routine: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iterations {
        routine();
    }
    start.elapsed()
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let run = SameRun::new("fio-reactor-defer");
    run.bench_custom(&mut criterion, "defer/fio-reactor/1", |n| {
        timed(n, || reactor_defer(1))
    });
    run.bench_custom(&mut criterion, "defer/crossbeam-pool/1", |n| {
        timed(n, || channel_pool_defer(1))
    });
    run.bench_custom(&mut criterion, "defer/tokio-current-thread", |n| {
        timed(n, tokio_defer)
    });
    run.bench_custom(&mut criterion, "defer/fio-reactor/2", |n| {
        timed(n, || reactor_defer(2))
    });
    run.bench_custom(&mut criterion, "defer/crossbeam-pool/2", |n| {
        timed(n, || channel_pool_defer(2))
    });
    run.bench_custom(&mut criterion, "timers/fio-reactor", |n| {
        timed(n, reactor_timers)
    });
    run.bench_custom(&mut criterion, "timers/tokio-sleep", |n| {
        timed(n, tokio_timers)
    });
    criterion.final_summary();
    run.report(&[
        Ratio {
            label: "defer 1 thread: fio-reactor/tokio",
            contender: "defer/fio-reactor/1",
            baseline: "defer/tokio-current-thread",
        },
        Ratio {
            label: "defer 1 thread: fio-reactor/crossbeam-pool",
            contender: "defer/fio-reactor/1",
            baseline: "defer/crossbeam-pool/1",
        },
        Ratio {
            label: "defer 2 threads: fio-reactor/crossbeam-pool",
            contender: "defer/fio-reactor/2",
            baseline: "defer/crossbeam-pool/2",
        },
        Ratio {
            label: "defer: fio-reactor 2 threads/tokio",
            contender: "defer/fio-reactor/2",
            baseline: "defer/tokio-current-thread",
        },
        Ratio {
            label: "timers: fio-reactor/tokio",
            contender: "timers/fio-reactor",
            baseline: "timers/tokio-sleep",
        },
    ]);
}
