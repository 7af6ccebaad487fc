//! `cargo xtask bench`: the criterion benches, each measuring its baseline in the same run.
//!
//! Every bench writes its ratios as JSON under `target/bench/` (through `FIO_BENCH_DIR`); this
//! task runs them and prints what they wrote. The loopback load benchmark joins this task with
//! the reactor's examples.

use std::fs;

use crate::command::{TaskResult, cargo, project_root};

/// The criterion benches: (package, bench target).
const BENCHES: [(&str, &str); 3] = [
    ("fio-buffer", "pool"),
    ("fio-ring", "nop"),
    ("fio-reactor", "defer"),
];

/// Runs every bench (or those whose package or name contains the first argument).
pub(crate) fn bench(args: &[String]) -> TaskResult {
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
    print_summary(&out_dir)
}

/// Prints every JSON summary the benches left in `dir`.
fn print_summary(dir: &std::path::Path) -> TaskResult {
    let mut files: Vec<_> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    println!("\n== bench summaries ({})", dir.display());
    for path in files {
        let text = fs::read_to_string(&path)?;
        println!("{}: {}", path.display(), text.trim());
    }
    Ok(())
}
