//! The safe `fork`, which needs a single-threaded process: this test binary has no harness,
//! so `main` runs alone on the main thread.

use std::process::ExitCode;

use fio_sys::{Fork, Signal, WaitOptions};

fn main() -> ExitCode {
    assert_eq!(
        fio_sys::thread_count().unwrap(),
        1,
        "harness = false runs one thread"
    );
    match fio_sys::fork().unwrap() {
        Fork::Child => {
            // A single-threaded fork's child may run any code: allocate, format, use std.
            let words: Vec<String> = (1..=3).map(|i| format!("w{i}")).collect();
            let ok = words.join(",") == "w1,w2,w3"
                && fio_sys::set_parent_death_signal(Some(Signal::TERM)).is_ok();
            fio_sys::exit_immediately(if ok { 42 } else { 1 })
        }
        Fork::Parent { child } => {
            let (reaped, status) = fio_sys::waitpid(Some(child), WaitOptions::empty())
                .unwrap()
                .unwrap();
            assert_eq!(reaped, child);
            assert_eq!(status.code(), Some(42), "{status:?}");
            println!("test safe_fork_runs_the_child ... ok");
            ExitCode::SUCCESS
        }
    }
}
