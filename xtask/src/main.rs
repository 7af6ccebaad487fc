//! Project automation for the fio workspace, in the cargo-xtask style: `cargo xtask <task>`.
//!
//! It depends on nothing beyond the standard library, calls cargo through `$CARGO`, and runs
//! every command from the workspace root, printing it first so any step can be rerun by hand.

mod bench;
mod ci;
mod command;
mod drills;
mod features;
mod load;

use std::env;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci      everything CI checks: fmt, clippy, docs, tests under both engines, loom, AddressSanitizer
  test    the workspace tests, once with FIO_ENGINE=uring and once with FIO_ENGINE=epoll,
          requiring every feature the machine has (no silent skips), then a summary
  bench   the criterion benches, then the loopback load benchmark (fio vs tokio under wrk and
          redis-benchmark); ratios against same-run baselines land in target/bench/
          `bench load [--quick] [--rounds N] [--idle N]`: only the load benchmark;
          `bench <filter>`: only matching benches
  drills  the robustness drills against the examples on both engines, a table in
          target/drills/drills.md: `drills [--engine uring|epoll] [--quick] [--only WORD]`
  fuzz    run the URL fuzz target for a while (needs cargo-fuzz: cargo install cargo-fuzz)";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::ci(),
        Some("test") => ci::test(),
        Some("bench") => bench::bench(&args[1..]),
        Some("drills") => drills::drills(&args[1..]),
        Some("fuzz") => ci::fuzz(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error}");
            ExitCode::FAILURE
        }
    }
}
