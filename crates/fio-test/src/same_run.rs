//! Same-run totals for criterion routines, and the ratio report written for `cargo xtask bench`.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use std::{env, fs};

use criterion::Criterion;

/// A ratio to report: `label` is printed, `contender` and `baseline` are routine ids.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    /// What the ratio is called in the report, e.g. `"fio-buffer/Vec<u8>"`.
    pub label: &'static str,
    /// The routine whose mean is the numerator.
    pub contender: &'static str,
    /// The routine whose mean is the denominator, measured in the same run.
    pub baseline: &'static str,
}

/// Iterations and time one routine spent over the whole run.
#[derive(Debug, Default, Clone, Copy)]
struct Total {
    iterations: u64,
    elapsed: Duration,
}

/// Totals per criterion routine for one bench binary, and its ratio report.
///
/// Each routine is timed with criterion's `iter_custom`, which also adds its iterations and
/// elapsed time to the routine's total; the mean per iteration over warm-up and measurement
/// (all in this run) gives the ratios.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use fio_test::{Ratio, SameRun};
///
/// let mut criterion = criterion::Criterion::default()
///     .warm_up_time(Duration::from_millis(10))
///     .measurement_time(Duration::from_millis(20))
///     .sample_size(10)
///     .without_plots();
/// let run = SameRun::new("doc-example");
/// run.bench(&mut criterion, "sum", || { std::hint::black_box((0..100u32).sum::<u32>()); });
/// run.bench(&mut criterion, "noop", || {});
/// assert!(run.mean_ns("sum").is_some());
/// let ratios = run.ratios(&[Ratio { label: "sum/noop", contender: "sum", baseline: "noop" }]);
/// assert_eq!(ratios.len(), 1);
/// ```
#[derive(Debug)]
pub struct SameRun {
    /// The bench's name: the JSON file is `<name>.json`.
    name: &'static str,
    /// Totals per routine id, in registration order.
    totals: RefCell<Vec<(String, Total)>>,
}

impl SameRun {
    /// Starts the totals of the bench called `name`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            totals: RefCell::new(Vec::new()),
        }
    }

    /// Registers `id` with criterion, timing `routine` once per iteration.
    pub fn bench(&self, criterion: &mut Criterion, id: &str, mut routine: impl FnMut()) {
        self.bench_custom(criterion, id, |iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                routine();
            }
            start.elapsed()
        });
    }

    /// Registers `id` with criterion; `routine(iterations)` runs that many iterations and
    /// returns the time they took (for routines with per-batch set-up to leave out).
    pub fn bench_custom(
        &self,
        criterion: &mut Criterion,
        id: &str,
        mut routine: impl FnMut(u64) -> Duration,
    ) {
        criterion.bench_function(id, |bencher| {
            bencher.iter_custom(|iterations| {
                let elapsed = routine(iterations);
                self.add(id, iterations, elapsed);
                elapsed
            });
        });
    }

    /// Mean nanoseconds per iteration of `id` over the run so far, if it ran.
    pub fn mean_ns(&self, id: &str) -> Option<f64> {
        let totals = self.totals.borrow();
        let (_, total) = totals.iter().find(|(known, _)| known == id)?;
        (total.iterations > 0).then(|| total.elapsed.as_secs_f64() * 1e9 / total.iterations as f64)
    }

    /// The ratios whose both routines ran, as `(label, contender mean / baseline mean)`.
    pub fn ratios(&self, wanted: &[Ratio]) -> Vec<(&'static str, f64)> {
        wanted
            .iter()
            .filter_map(|ratio| {
                let contender = self.mean_ns(ratio.contender)?;
                let baseline = self.mean_ns(ratio.baseline)?;
                Some((ratio.label, contender / baseline))
            })
            .collect()
    }

    /// Prints the ratios and writes means and ratios to `$FIO_BENCH_DIR/<name>.json`.
    ///
    /// Does nothing unless the binary runs as a benchmark (`--bench` among its arguments):
    /// `cargo test --benches` runs each routine once, which gives nothing to compare.
    pub fn report(&self, wanted: &[Ratio]) {
        if !env::args().any(|argument| argument == "--bench") {
            return;
        }
        let ratios = self.ratios(wanted);
        for (label, ratio) in &ratios {
            println!("ratio {label}: {ratio:.3}");
        }
        let path = bench_dir().join(format!("{}.json", self.name));
        let written = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::write(&path, self.json(&ratios)));
        match written {
            Ok(()) => println!("wrote {}", path.display()),
            Err(error) => eprintln!("could not write {}: {error}", path.display()),
        }
    }

    /// Adds one timed batch to `id`'s total.
    fn add(&self, id: &str, iterations: u64, elapsed: Duration) {
        let mut totals = self.totals.borrow_mut();
        match totals.iter_mut().find(|(known, _)| known == id) {
            Some((_, total)) => {
                total.iterations += iterations;
                total.elapsed += elapsed;
            }
            None => totals.push((
                id.to_owned(),
                Total {
                    iterations,
                    elapsed,
                },
            )),
        }
    }

    /// The JSON summary: the bench name, each routine's mean and each ratio.
    fn json(&self, ratios: &[(&str, f64)]) -> String {
        let means: Vec<(String, f64)> = self
            .totals
            .borrow()
            .iter()
            .filter_map(|(id, _)| Some((id.clone(), self.mean_ns(id)?)))
            .collect();
        let mut json = format!("{{\n  \"bench\": {:?},\n  \"mean_ns\": {{", self.name);
        for (index, (id, mean)) in means.iter().enumerate() {
            let comma = if index == 0 { "" } else { "," };
            let _ = write!(json, "{comma}\n    {id:?}: {mean:.3}");
        }
        json.push_str("\n  },\n  \"ratios\": {");
        for (index, (label, ratio)) in ratios.iter().enumerate() {
            let comma = if index == 0 { "" } else { "," };
            let _ = write!(json, "{comma}\n    {label:?}: {ratio:.4}");
        }
        json.push_str("\n  }\n}\n");
        json
    }
}

/// Where bench summaries go: `$FIO_BENCH_DIR`, else `<workspace>/target/bench`.
fn bench_dir() -> PathBuf {
    env::var_os("FIO_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // This crate sits two levels below the workspace root.
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2);
            workspace.map_or_else(
                || PathBuf::from("target/bench"),
                |root| root.join("target/bench"),
            )
        })
}
