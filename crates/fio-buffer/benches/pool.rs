//! Take + give-back of a 16 KiB buffer from a warm fio-buffer pool, against allocating and
//! dropping a `Vec<u8>` and a `bytes::BytesMut` of the same capacity, in one run.
//!
//! Each routine is timed with `iter_custom`, which also adds its iterations and elapsed time
//! to per-routine totals. After criterion finishes, the mean per iteration of each routine
//! (total time / total iterations over warm-up and measurement, all in this run) gives the
//! ratios, printed as `ratio fio-buffer/Vec<u8>: 0.42` and written as JSON to
//! `$FIO_BENCH_DIR/fio-buffer-pool.json` (default `<workspace>/target/bench`).
//!
//! Run: `cargo bench -p fio-buffer --bench pool -- --warm-up-time 1 --measurement-time 2`.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use std::{env, fs};

use bytes::BytesMut;
use criterion::Criterion;
use fio_buffer::{BufferPool, PoolConfig};

/// The buffer size every contender allocates.
const SIZE: usize = 16 * 1024;

/// Benchmark ids, which are also the keys of the JSON means.
const FIO: &str = "fio-buffer take+give-back 16KiB";
const VEC: &str = "Vec<u8> with_capacity+drop 16KiB";
const BYTES: &str = "BytesMut with_capacity+drop 16KiB";
const SHARED: &str = "SharedBuffer clone+drop";

/// Iterations and time spent in one routine over the whole run.
#[derive(Debug, Default, Clone, Copy)]
struct Total {
    iterations: u64,
    elapsed: Duration,
}

impl Total {
    /// Mean nanoseconds per iteration, if the routine ran at all.
    fn mean_ns(&self) -> Option<f64> {
        (self.iterations > 0).then(|| self.elapsed.as_secs_f64() * 1e9 / self.iterations as f64)
    }
}

/// Totals per benchmark id, in registration order.
#[derive(Debug, Default)]
struct Totals(RefCell<Vec<(&'static str, Total)>>);

impl Totals {
    /// Registers `id` with criterion, timing `routine` and adding to its total.
    fn bench(&self, criterion: &mut Criterion, id: &'static str, mut routine: impl FnMut()) {
        criterion.bench_function(id, |bencher| {
            bencher.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    routine();
                }
                let elapsed = start.elapsed();
                self.add(id, iterations, elapsed);
                elapsed
            });
        });
    }

    fn add(&self, id: &'static str, iterations: u64, elapsed: Duration) {
        let mut totals = self.0.borrow_mut();
        let index = match totals.iter().position(|(name, _)| *name == id) {
            Some(index) => index,
            None => {
                totals.push((id, Total::default()));
                totals.len() - 1
            }
        };
        let total = &mut totals[index].1;
        total.iterations += iterations;
        total.elapsed += elapsed;
    }

    fn mean_ns(&self, id: &str) -> Option<f64> {
        let totals = self.0.borrow();
        totals
            .iter()
            .find(|(name, _)| *name == id)
            .and_then(|(_, total)| total.mean_ns())
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let totals = Totals::default();

    let pool = BufferPool::new(PoolConfig::new(SIZE)).expect("a 16 KiB pool config is valid");
    // Warm the pool: the first take grows a chunk, every later one reuses a slot.
    drop(pool.take().expect("a fresh pool has room"));
    totals.bench(&mut criterion, FIO, || {
        black_box(
            pool.take()
                .expect("one buffer at a time never exhausts the pool"),
        );
    });
    totals.bench(&mut criterion, VEC, || {
        black_box(Vec::<u8>::with_capacity(SIZE));
    });
    totals.bench(&mut criterion, BYTES, || {
        black_box(BytesMut::with_capacity(SIZE));
    });
    let shared = pool.take().expect("the pool has room").into_shared();
    totals.bench(&mut criterion, SHARED, || {
        black_box(shared.clone());
    });
    criterion.final_summary();

    // `cargo test --benches` runs each routine once without `--bench`: nothing to compare.
    if !env::args().any(|argument| argument == "--bench") {
        return;
    }
    report(&totals);
}

/// Prints the ratios of fio's mean to each baseline's and writes them as JSON.
fn report(totals: &Totals) {
    let ids = [FIO, VEC, BYTES, SHARED];
    let means: Vec<(&str, f64)> = ids
        .iter()
        .filter_map(|id| Some((*id, totals.mean_ns(id)?)))
        .collect();
    let Some(fio) = totals.mean_ns(FIO) else {
        println!("ratio: fio-buffer routine filtered out, nothing to compare");
        return;
    };
    let mut ratios = Vec::new();
    for (label, id) in [("fio-buffer/Vec<u8>", VEC), ("fio-buffer/BytesMut", BYTES)] {
        if let Some(baseline) = totals.mean_ns(id) {
            let ratio = fio / baseline;
            println!("ratio {label}: {ratio:.2}");
            ratios.push((label, ratio));
        }
    }

    let mut json = String::from("{\n  \"bench\": \"fio-buffer-pool\",\n  \"buffer_size\": ");
    let _ = write!(json, "{SIZE},\n  \"mean_ns\": {{");
    for (index, (id, mean)) in means.iter().enumerate() {
        let comma = if index == 0 { "" } else { "," };
        let _ = write!(json, "{comma}\n    \"{id}\": {mean:.3}");
    }
    json.push_str("\n  },\n  \"ratios\": {");
    for (index, (label, ratio)) in ratios.iter().enumerate() {
        let comma = if index == 0 { "" } else { "," };
        let _ = write!(json, "{comma}\n    \"{label}\": {ratio:.4}");
    }
    json.push_str("\n  }\n}\n");

    // The workspace root is two levels above this crate's manifest directory.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2);
    let dir = env::var_os("FIO_BENCH_DIR")
        .map(PathBuf::from)
        .or_else(|| workspace.map(|root| root.join("target").join("bench")));
    let Some(dir) = dir else {
        eprintln!("no FIO_BENCH_DIR and no workspace root: JSON not written");
        return;
    };
    let path = dir.join("fio-buffer-pool.json");
    match fs::create_dir_all(&dir).and_then(|()| fs::write(&path, json)) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(error) => eprintln!("could not write {}: {error}", path.display()),
    }
}
