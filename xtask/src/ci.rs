//! `cargo xtask ci`, `test` and `fuzz`: the checks every submission must pass.

use std::time::Instant;

use crate::command::{TaskResult, cargo, project_root};

/// The engines every reactor-level test runs under (`FIO_ENGINE`).
const ENGINES: [&str; 2] = ["uring", "epoll"];

/// Crates whose tests also run under AddressSanitizer: the two that hold kernel-facing
/// `unsafe`, and fio-socket, whose zero-copy sends must keep buffers alive until the kernel's
/// notification.
const ASAN_CRATES: [&str; 3] = ["fio-buffer", "fio-ring", "fio-socket"];

/// The host triple ASan builds for; sanitizers need an explicit `--target`.
const HOST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Everything CI checks, in order of cost so cheap failures come first.
pub(crate) fn ci() -> TaskResult {
    let started = Instant::now();
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
    step("tests", test)?;
    step("loom", loom)?;
    step("asan", asan)?;
    eprintln!("xtask ci: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The README's test command, `cargo test --workspace`, once per engine.
pub(crate) fn test() -> TaskResult {
    for engine in ENGINES {
        cargo(
            &["test", "--workspace", "--locked"],
            &[("FIO_ENGINE", engine)],
        )?;
    }
    Ok(())
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

/// The crates with `unsafe` under AddressSanitizer. Stable rustc accepts `-Zsanitizer` with
/// `RUSTC_BOOTSTRAP=1`; no std rebuild is needed for ASan on this target.
fn asan() -> TaskResult {
    let target_dir = project_root().join("target/asan");
    let mut args = vec![
        "test",
        "--locked",
        "--target",
        HOST_TARGET,
        "--lib",
        "--tests",
    ];
    for krate in ASAN_CRATES {
        args.extend(["-p", krate]);
    }
    cargo(
        &args,
        &[
            ("RUSTC_BOOTSTRAP", "1"),
            ("RUSTFLAGS", "-Zsanitizer=address"),
            ("RUSTDOCFLAGS", "-Zsanitizer=address"),
            ("ASAN_OPTIONS", "detect_leaks=1"),
            // The full 256 MiB transfers run in the plain test step; under ASan a smaller
            // stream exercises the same paths in a fraction of the time.
            ("FIO_SOCKET_TRANSFER_MIB", "32"),
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
