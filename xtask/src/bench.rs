//! `cargo xtask bench`: the criterion benches, each measuring its baseline in the same run,
//! then the loopback load benchmark (`crate::load`).
//!
//! Every bench writes its ratios as JSON under `target/bench/` (through `FIO_BENCH_DIR`); this
//! task runs them and prints what they wrote. `cargo xtask bench load [--quick] [--rounds N]
//! [--idle N]` runs only the load benchmark; `cargo xtask bench <filter>` only the criterion
//! benches matching the filter.

use std::fs;

use crate::command::{TaskResult, cargo, project_root};
use crate::load;

/// The criterion benches, and fio-tls's TLS load benchmark against tokio-rustls (its own
/// harness, same-run baseline, same `FIO_BENCH_DIR` output): (package, bench target).
const BENCHES: [(&str, &str); 5] = [
    ("fio-buffer", "pool"),
    ("fio-ring", "nop"),
    ("fio-socket", "socket"),
    ("fio-reactor", "defer"),
    ("fio-tls", "tls_load"),
];

/// Runs every criterion bench and the load benchmark; `load [...]` runs only the load
/// benchmark (its arguments go to `load::load`), and any other first argument only the criterion benches whose package or name
/// contains it.
pub(crate) fn bench(args: &[String]) -> TaskResult {
    if args.first().is_some_and(|arg| arg == "load") {
        return load::load(&args[1..]);
    }
    let filter = args.first().map(String::as_str).unwrap_or("");
    let out_dir = project_root().join("target/bench");
    fs::create_dir_all(&out_dir)?;
    let out_dir_text = out_dir.to_string_lossy().into_owned();
    let mut ran = 0;
    for (package, name) in BENCHES {
        if !package.contains(filter) && !name.contains(filter) {
            continue;
        }
        cargo(
            &["bench", "--locked", "-p", package, "--bench", name],
            &[("FIO_BENCH_DIR", &out_dir_text)],
        )?;
        ran += 1;
    }
    if ran == 0 {
        return Err(format!("no bench matches {filter:?}").into());
    }
    print_summary(&out_dir)?;
    if args.is_empty() {
        load::load(&[])?;
    }
    Ok(())
}

/// Prints every JSON summary the benches left in `dir`.
fn print_summary(dir: &std::path::Path) -> TaskResult {
    let mut files: Vec<_> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        // The load benchmark prints its own tables; its JSON here would be last run's.
        .filter(|path| path.file_stem().is_some_and(|stem| stem != "load"))
        .collect();
    files.sort();
    println!("\n== bench summaries ({})", dir.display());
    for path in files {
        let text = fs::read_to_string(&path)?;
        println!("{}: {}", path.display(), text.trim());
    }
    Ok(())
}
