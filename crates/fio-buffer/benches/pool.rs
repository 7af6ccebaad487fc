//! Take + give-back of a 16 KiB buffer from a warm fio-buffer pool, against allocating and
//! dropping a `Vec<u8>` and a `bytes::BytesMut` of the same capacity, in one run.
//!
//! Ratios of the means (fio-test's `SameRun`) are printed as `ratio fio-buffer/Vec<u8>: 0.42`
//! and written to `$FIO_BENCH_DIR/fio-buffer-pool.json` (default `<workspace>/target/bench`).
//!
//! Run: `cargo bench -p fio-buffer --bench pool`.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::Criterion;
use fio_buffer::{BufferPool, PoolConfig};
use fio_test::{Ratio, SameRun};

/// The buffer size every contender allocates.
const SIZE: usize = 16 * 1024;

/// Routine ids, which are also the keys of the JSON means.
const FIO: &str = "fio-buffer take+give-back 16KiB";
const VEC: &str = "Vec<u8> with_capacity+drop 16KiB";
const BYTES: &str = "BytesMut with_capacity+drop 16KiB";
const SHARED: &str = "SharedBuffer clone+drop";

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let run = SameRun::new("fio-buffer-pool");

    let pool = BufferPool::new(PoolConfig::new(SIZE)).expect("a 16 KiB pool config is valid");
    // Warm the pool: the first take grows a chunk, every later one reuses a slot.
    drop(pool.take().expect("a fresh pool has room"));
    run.bench(&mut criterion, FIO, || {
        black_box(
            pool.take()
                .expect("one buffer at a time never exhausts the pool"),
        );
    });
    run.bench(&mut criterion, VEC, || {
        black_box(Vec::<u8>::with_capacity(SIZE));
    });
    run.bench(&mut criterion, BYTES, || {
        black_box(BytesMut::with_capacity(SIZE));
    });
    let shared = pool.take().expect("the pool has room").into_shared();
    run.bench(&mut criterion, SHARED, || {
        black_box(shared.clone());
    });
    criterion.final_summary();
    run.report(&[
        Ratio {
            label: "fio-buffer/Vec<u8>",
            contender: FIO,
            baseline: VEC,
        },
        Ratio {
            label: "fio-buffer/BytesMut",
            contender: FIO,
            baseline: BYTES,
        },
    ]);
}
