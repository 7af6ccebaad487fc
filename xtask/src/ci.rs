//! `cargo xtask ci`, `test` and `fuzz`: the checks every submission must pass.
//!
//! No silent skips: before the tests, [`crate::features`] probes what the machine really has
//! and the test runs get the policy that requires it (`FIO_REQUIRE`, `FIO_REQUIRE_URING`), so a
//! test that skips for a feature the machine has fails instead (`fio_test::skip`). Every test
//! run's output is kept, and the log ends with a summary: per run (engine), the tests run,
//! passed, failed and ignored (the sum of cargo's `test result:` lines) and the skips with
//! their reasons (the `FIO-SKIP:` lines).

use std::fmt::Write as _;
use std::fs;
use std::time::Instant;

use crate::command::{TaskResult, cargo, cargo_captured, project_root};
use crate::features::{self, Found};

/// The engines every reactor-level test runs under (`FIO_ENGINE`).
const ENGINES: [&str; 2] = ["uring", "epoll"];

/// Crates whose tests also run under AddressSanitizer: the two that hold kernel-facing
/// `unsafe`, and fio-socket, whose zero-copy sends must keep buffers alive until the kernel's
/// notification.
const ASAN_CRATES: [&str; 3] = ["fio-buffer", "fio-ring", "fio-socket"];

/// The host triple ASan builds for; sanitizers need an explicit `--target`.
const HOST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Everything CI checks, in order of cost so cheap failures come first; the log ends with the
/// test summary, whether the checks passed or not.
pub(crate) fn ci() -> TaskResult {
    let started = Instant::now();
    let mut suite = Suite::probe();
    let result = checks(&mut suite);
    eprintln!("{}", suite.summary());
    match &result {
        Ok(()) => eprintln!("xtask ci: all checks passed in {:.0?}", started.elapsed()),
        Err(error) => eprintln!("xtask ci: FAILED after {:.0?}: {error}", started.elapsed()),
    }
    result
}

/// The steps of [`ci`], stopping at the first that fails.
fn checks(suite: &mut Suite) -> TaskResult {
    step("format", || cargo(&["fmt", "--all", "--", "--check"], &[]))?;
    step("clippy", || {
        cargo(
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )
    })?;
    step("docs", || {
        cargo(
            &["doc", "--workspace", "--no-deps", "--locked"],
            &[("RUSTDOCFLAGS", "-D warnings")],
        )
    })?;
    step("tests", || suite.engines())?;
    step("loom", loom)?;
    step("asan", || suite.asan())?;
    Ok(())
}

/// The README's test command, `cargo test --workspace`, once per engine, under the policy of
/// what this machine has; ends with the summary.
pub(crate) fn test() -> TaskResult {
    let mut suite = Suite::probe();
    let result = suite.engines();
    eprintln!("{}", suite.summary());
    result
}

/// What one captured `cargo test` run reported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    pub(crate) ignored: u64,
    /// `test result:` lines seen (one per test binary and doc-test run).
    pub(crate) binaries: u64,
}

impl Counts {
    /// Sums the `test result: ok. 6 passed; 0 failed; 1 ignored; ...` lines of `lines`.
    pub(crate) fn of<S: AsRef<str>>(lines: &[S]) -> Self {
        let mut counts = Self::default();
        for line in lines {
            let Some((_, rest)) = line.as_ref().split_once("test result: ") else {
                continue;
            };
            counts.binaries += 1;
            for part in rest.split([';', '.']) {
                let mut words = part.split_whitespace();
                let (Some(number), Some(what)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(number) = number.parse::<u64>() else {
                    continue;
                };
                match what {
                    "passed" => counts.passed += number,
                    "failed" => counts.failed += number,
                    "ignored" => counts.ignored += number,
                    _ => {}
                }
            }
        }
        counts
    }
}

/// One summarised test run.
#[derive(Debug)]
struct RunSummary {
    label: String,
    counts: Counts,
    /// The `FIO-SKIP:` lines, without the prefix.
    skips: Vec<String>,
    ok: bool,
}

/// The test runs of one `ci` or `test`: the probed features, the policy, and each run's
/// summary.
#[derive(Debug)]
struct Suite {
    found: Vec<Found>,
    policy: Vec<(&'static str, String)>,
    runs: Vec<RunSummary>,
}

impl Suite {
    /// Probes the machine and prints what it found and the policy it sets.
    fn probe() -> Self {
        let found = features::probe();
        let policy = features::policy(&found);
        let shown: Vec<String> = policy.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!(
            "xtask: features of this machine (a test that skips for a present one fails):\n{}  \
             policy: {}",
            features::describe(&found),
            shown.join(" ")
        );
        Self {
            found,
            policy,
            runs: Vec::new(),
        }
    }

    /// `cargo test --workspace` under each engine; every engine runs even if one fails.
    fn engines(&mut self) -> TaskResult {
        let mut result = Ok(());
        for engine in ENGINES {
            let run = self.run(
                &format!("engine {engine}"),
                &["test", "--workspace", "--locked", "--no-fail-fast"],
                &[("FIO_ENGINE", engine)],
            );
            if result.is_ok() {
                result = run;
            }
        }
        result
    }

    /// The crates with `unsafe` under AddressSanitizer. Stable rustc accepts `-Zsanitizer`
    /// with `RUSTC_BOOTSTRAP=1`; no std rebuild is needed for ASan on this target.
    fn asan(&mut self) -> TaskResult {
        let target_dir = project_root().join("target/asan");
        let mut args = vec![
            "test",
            "--locked",
            "--no-fail-fast",
            "--target",
            HOST_TARGET,
            "--lib",
            "--tests",
        ];
        for krate in ASAN_CRATES {
            args.extend(["-p", krate]);
        }
        let target_dir = target_dir.to_string_lossy().into_owned();
        self.run(
            "asan",
            &args,
            &[
                ("RUSTC_BOOTSTRAP", "1"),
                ("RUSTFLAGS", "-Zsanitizer=address"),
                ("RUSTDOCFLAGS", "-Zsanitizer=address"),
                ("ASAN_OPTIONS", "detect_leaks=1"),
                // The full 256 MiB transfers run in the plain test step; under ASan a smaller
                // stream exercises the same paths in a fraction of the time.
                ("FIO_SOCKET_TRANSFER_MIB", "32"),
                ("CARGO_TARGET_DIR", &target_dir),
            ],
        )
    }

    /// One captured `cargo` test run under the policy, summarised as `label`.
    fn run(&mut self, label: &str, args: &[&str], envs: &[(&str, &str)]) -> TaskResult {
        let log = project_root().join(format!(
            "target/xtask-skips-{}.log",
            label.replace(' ', "-")
        ));
        let _ = fs::create_dir_all(project_root().join("target"));
        let _ = fs::remove_file(&log);
        let log_text = log.to_string_lossy().into_owned();
        let mut all_envs: Vec<(&str, &str)> = envs.to_vec();
        all_envs.extend(self.policy.iter().map(|(k, v)| (*k, v.as_str())));
        all_envs.push(("FIO_SKIP_LOG", &log_text));
        let (result, lines) = cargo_captured(args, &all_envs);
        // The log file is the reliable source; stderr lines are the fallback (a test binary
        // that ignores FIO_SKIP_LOG still prints them).
        let logged = fs::read_to_string(&log).unwrap_or_default();
        let mut skips: Vec<String> = logged
            .lines()
            .chain(lines.iter().map(String::as_str))
            .filter_map(|line| {
                line.split_once("FIO-SKIP:")
                    .map(|(_, rest)| rest.trim().to_owned())
            })
            .collect();
        skips.sort();
        skips.dedup();
        self.runs.push(RunSummary {
            label: label.to_owned(),
            counts: Counts::of(&lines),
            skips,
            ok: result.is_ok(),
        });
        result
    }

    /// The summary the log ends with.
    fn summary(&self) -> String {
        let mut out = String::from("== xtask: test summary\n");
        let missing: Vec<&str> = self
            .found
            .iter()
            .filter(|feature| !feature.present)
            .map(|feature| feature.name)
            .collect();
        let shown: Vec<String> = self
            .policy
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            out,
            "  policy: {} (missing on this machine: {})",
            shown.join(" "),
            if missing.is_empty() {
                "nothing".to_owned()
            } else {
                missing.join(", ")
            }
        );
        if self.runs.is_empty() {
            out.push_str("  no test run happened\n");
        }
        for run in &self.runs {
            let counts = &run.counts;
            let _ = writeln!(
                out,
                "  {}: {} run, {} passed, {} failed, {} ignored ({} test binaries){}; {} skipped",
                run.label,
                counts.passed + counts.failed,
                counts.passed,
                counts.failed,
                counts.ignored,
                counts.binaries,
                if run.ok { "" } else { ", run FAILED" },
                run.skips.len()
            );
            for skip in &run.skips {
                let _ = writeln!(out, "    skipped: {skip}");
            }
        }
        out
    }
}

/// fio-buffer's atomics under loom, in their own target directory so the cfg does not
/// invalidate the main build.
fn loom() -> TaskResult {
    let target_dir = project_root().join("target/loom");
    cargo(
        &[
            "test",
            "--locked",
            "--release",
            "-p",
            "fio-buffer",
            "--test",
            "loom",
        ],
        &[
            ("RUSTFLAGS", "--cfg fio_loom"),
            ("LOOM_MAX_PREEMPTIONS", "2"),
            ("CARGO_TARGET_DIR", &target_dir.to_string_lossy()),
        ],
    )
}

/// Fuzzes the URL parser for a bounded time (default 60 s). Local only: installing
/// cargo-fuzz would cost CI minutes, and CI replays the corpus in a plain test instead.
pub(crate) fn fuzz(args: &[String]) -> TaskResult {
    let seconds = args.first().map(String::as_str).unwrap_or("60");
    let max_time = format!("-max_total_time={seconds}");
    let root = project_root();
    // libFuzzer grows the first directory; the checked-in corpus only seeds it.
    let work_corpus = root.join("fuzz/corpus/url");
    std::fs::create_dir_all(&work_corpus)?;
    let seeds = root.join("crates/fio-sys/tests/corpus/url");
    cargo(
        &[
            "fuzz",
            "run",
            "--fuzz-dir",
            &root.join("fuzz").to_string_lossy(),
            "url",
            &work_corpus.to_string_lossy(),
            &seeds.to_string_lossy(),
            "--",
            &max_time,
        ],
        &[("RUSTC_BOOTSTRAP", "1")],
    )
}

/// Runs one named step and reports how long it took.
fn step(name: &str, body: impl FnOnce() -> TaskResult) -> TaskResult {
    let started = Instant::now();
    eprintln!("== xtask ci: {name}");
    let result = body();
    eprintln!(
        "== xtask ci: {name} {} in {:.1?}",
        if result.is_ok() { "ok" } else { "FAILED" },
        started.elapsed()
    );
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_add_up() {
        let lines = [
            "running 3 tests",
            "test result: ok. 6 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.00s",
            "FIO-SKIP: x : uring: y",
            "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s",
        ];
        let counts = Counts::of(&lines);
        assert_eq!(
            counts,
            Counts {
                passed: 9,
                failed: 1,
                ignored: 2,
                binaries: 2
            }
        );
        assert_eq!(Counts::of::<&str>(&[]), Counts::default());
    }
}
