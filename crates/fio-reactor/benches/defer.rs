//! Defer throughput: `TASKS` tiny tasks through a reactor with 1 and 2 threads, against a plain
//! crossbeam-channel thread pool of the same size measured in the same run.
//!
//! Each iteration includes starting and stopping the threads on both sides, amortised over
//! `TASKS` tasks. A tokio baseline joins once the workspace declares tokio.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fio_reactor::{Reactor, StartArgs};

const TASKS: usize = 100_000;

/// Runs `TASKS` counting tasks on a fresh reactor; the last one stops it.
fn reactor_run(threads: i16) {
    let reactor = Reactor::new(StartArgs {
        threads,
        workers: 1,
        engine: None,
        signals: false,
    });
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
fn channel_pool_run(threads: usize) {
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

fn defer_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("defer");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.sample_size(10);
    for threads in [1_i16, 2] {
        group.bench_function(format!("fio-reactor/{threads}"), |b| {
            b.iter(|| reactor_run(threads));
        });
        group.bench_function(format!("crossbeam-channel pool/{threads}"), |b| {
            b.iter(|| channel_pool_run(usize::from(threads.unsigned_abs())));
        });
    }
    group.finish();
}

criterion_group!(benches, defer_throughput);
criterion_main!(benches);
