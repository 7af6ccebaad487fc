//! Nop round trips through fio-ring against the same loop written directly on the io-uring
//! crate, in the same run: single operations and batches of 32.
//!
//! Besides criterion's report, prints `ratio fio-ring/io-uring single: X` and `batch32: Y`
//! (the median of per-sample ratios, each sample of fio-ring against the raw sample just
//! before it, with quartiles) from an interleaved measurement and writes them to `$FIO_BENCH_DIR/fio-ring-nop.json`
//! (default `<workspace>/target/bench`).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::Criterion;
use fio_ring::{Op, Ring, RingConfig, SetupFlags};
use io_uring::{IoUring, opcode};

const BATCH: usize = 32;

/// A raw ring with the same flags fio-ring settled on, so only the layer is compared.
fn raw_ring(flags: SetupFlags) -> IoUring {
    let mut builder = IoUring::builder();
    builder.dontfork().setup_cqsize(256);
    if flags.contains(SetupFlags::SUBMIT_ALL) {
        builder.setup_submit_all();
    }
    if flags.contains(SetupFlags::COOP_TASKRUN) {
        builder.setup_coop_taskrun();
    }
    if flags.contains(SetupFlags::TASKRUN_FLAG) {
        builder.setup_taskrun_flag();
    }
    if flags.contains(SetupFlags::SINGLE_ISSUER) {
        builder.setup_single_issuer();
    }
    if flags.contains(SetupFlags::DEFER_TASKRUN) {
        builder.setup_defer_taskrun();
    }
    builder.build(64).expect("raw io_uring")
}

fn fio_ring() -> Ring {
    Ring::new(RingConfig::new(64)).expect("fio-ring")
}

/// `count` nops through the raw crate, `batch` per kernel entry.
fn raw_round_trips(ring: &mut IoUring, count: usize, batch: usize) {
    for round in 0..count {
        {
            let mut queue = ring.submission();
            for n in 0..batch {
                // Like any real program, one entry is built per operation, with its own tag.
                let nop = opcode::Nop::new()
                    .build()
                    .user_data((round * batch + n) as u64);
                // SAFETY: a nop entry points at no memory.
                unsafe { queue.push(&nop) }.expect("queue has room");
            }
        }
        ring.submit_and_wait(batch).expect("submit_and_wait");
        let mut seen = 0;
        for cqe in ring.completion() {
            black_box(cqe.result());
            seen += 1;
        }
        assert_eq!(seen, batch);
    }
}

/// `count` nops through fio-ring, `batch` per tick.
fn ring_round_trips(ring: &mut Ring, count: usize, batch: usize) {
    for _ in 0..count {
        for _ in 0..batch {
            ring.submit(Op::nop(), |_, completion| {
                black_box(completion.raw_result());
            })
            .expect("submit");
        }
        let mut seen = 0;
        for _ in 0..batch {
            seen += ring.wait(None).expect("wait");
            if seen == batch {
                break;
            }
        }
        assert_eq!(seen, batch);
    }
}

fn criterion_benches(c: &mut Criterion, flags: SetupFlags) {
    let mut raw = raw_ring(flags);
    let mut ring = fio_ring();
    let mut group = c.benchmark_group("nop");
    group.bench_function("io-uring/single", |b| {
        b.iter(|| raw_round_trips(&mut raw, 1, 1))
    });
    group.bench_function("fio-ring/single", |b| {
        b.iter(|| ring_round_trips(&mut ring, 1, 1))
    });
    group.throughput(criterion::Throughput::Elements(BATCH as u64));
    group.bench_function("io-uring/batch32", |b| {
        b.iter(|| raw_round_trips(&mut raw, 1, BATCH))
    });
    group.bench_function("fio-ring/batch32", |b| {
        b.iter(|| ring_round_trips(&mut ring, 1, BATCH))
    });
    group.finish();
}

/// One interleaved comparison: median times per round and the spread of the ratio.
struct Interleaved {
    raw_ns: f64,
    ours_ns: f64,
    /// Median of the per-sample ratios (each sample of ours against the raw sample just
    /// before it, so that load on the machine shared by both cancels out).
    ratio: f64,
    /// Quartiles of the per-sample ratios.
    ratio_q1: f64,
    ratio_q3: f64,
}

/// Times `samples` interleaved samples of `rounds` rounds each.
fn interleaved(
    samples: usize,
    rounds: usize,
    mut raw: impl FnMut(usize),
    mut ours: impl FnMut(usize),
) -> Interleaved {
    let mut raw_times = Vec::with_capacity(samples);
    let mut our_times = Vec::with_capacity(samples);
    let mut ratios = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        raw(rounds);
        let raw_time = start.elapsed();
        let start = Instant::now();
        ours(rounds);
        let our_time = start.elapsed();
        raw_times.push(raw_time);
        our_times.push(our_time);
        ratios.push(our_time.as_secs_f64() / raw_time.as_secs_f64());
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_nanos() as f64 / rounds as f64
    };
    ratios.sort_by(f64::total_cmp);
    Interleaved {
        raw_ns: median(&mut raw_times),
        ours_ns: median(&mut our_times),
        ratio: ratios[ratios.len() / 2],
        ratio_q1: ratios[ratios.len() / 4],
        ratio_q3: ratios[ratios.len() * 3 / 4],
    }
}

fn bench_dir() -> PathBuf {
    std::env::var_os("FIO_BENCH_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench"),
        PathBuf::from,
    )
}

fn report_ratios(flags: SetupFlags, quick: bool) {
    let (samples, rounds) = if quick { (3, 100) } else { (101, 4_000) };
    let mut raw = raw_ring(flags);
    let mut ring = fio_ring();
    // Warm both paths (slab, page faults, caches) before measuring.
    raw_round_trips(&mut raw, 1000, 1);
    ring_round_trips(&mut ring, 1000, 1);
    let single = interleaved(
        samples,
        rounds,
        |n| raw_round_trips(&mut raw, n, 1),
        |n| ring_round_trips(&mut ring, n, 1),
    );
    let batch = interleaved(
        samples,
        rounds / 8,
        |n| raw_round_trips(&mut raw, n, BATCH),
        |n| ring_round_trips(&mut ring, n, BATCH),
    );
    let (raw_single, ring_single) = (single.raw_ns, single.ours_ns);
    let (raw_batch, ring_batch) = (batch.raw_ns, batch.ours_ns);
    println!(
        "nop round trip: io-uring {raw_single:.0} ns, fio-ring {ring_single:.0} ns; \
         batch of 32: io-uring {raw_batch:.0} ns, fio-ring {ring_batch:.0} ns"
    );
    println!(
        "ratio fio-ring/io-uring single: {:.3} (quartiles {:.3}-{:.3})",
        single.ratio, single.ratio_q1, single.ratio_q3
    );
    println!(
        "ratio fio-ring/io-uring batch32: {:.3} (quartiles {:.3}-{:.3})",
        batch.ratio, batch.ratio_q1, batch.ratio_q3
    );
    let (single, batch) = (single.ratio, batch.ratio);
    if quick {
        return;
    }
    let json = format!(
        "{{\n  \"bench\": \"fio-ring-nop\",\n  \"setup_flags\": \"{flags}\",\n  \
         \"io_uring_single_ns\": {raw_single:.1},\n  \"fio_ring_single_ns\": {ring_single:.1},\n  \
         \"io_uring_batch32_ns\": {raw_batch:.1},\n  \"fio_ring_batch32_ns\": {ring_batch:.1},\n  \
         \"ratio_single\": {single:.4},\n  \"ratio_batch32\": {batch:.4}\n}}\n"
    );
    let dir = bench_dir();
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("fio-ring-nop.json"), json));
    match written {
        Ok(()) => println!("wrote {}", dir.join("fio-ring-nop.json").display()),
        Err(error) => eprintln!("cannot write {}: {error}", dir.display()),
    }
}

fn main() {
    let flags = fio_ring().features().setup_flags();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not and wants a smoke run.
    let benching = std::env::args().any(|arg| arg == "--bench");
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion, flags);
    criterion.final_summary();
    report_ratios(flags, !benching);
}
