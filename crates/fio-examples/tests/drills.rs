//! The CI-sized subset of `cargo xtask drills`: the quick half-close, resets with data queued,
//! never-reading client, panic in `on_data` and seccomp fallback drills against the debug
//! `drill_echo` binary, under the engine of the test run (`FIO_ENGINE`, which the server
//! inherits). The drills are xtask's own code (`xtask/src/drills/kit.rs`), included here.

#[path = "../../../xtask/src/drills/kit.rs"]
#[allow(
    dead_code,
    reason = "the full drills run in `cargo xtask drills`, a few here"
)]
mod kit;

use std::path::PathBuf;

use fio_test::Feature;
use kit::{DrillResult, Lab, Launch};

/// The lab: `drill_echo` as both the byte echo and the drill server, quick counts.
fn lab() -> Lab {
    let drill = Launch {
        program: PathBuf::from(env!("CARGO_BIN_EXE_drill_echo")),
        args: vec!["--threads".to_owned(), "1".to_owned()],
    };
    Lab {
        raw_echo: drill.clone(),
        spec_echo: None,
        drill,
        engine: None,
        log_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("drills"),
        quick: true,
    }
}

/// Runs a drill and fails the test unless it passed.
fn passes(drill: fn(&Lab) -> DrillResult) {
    let outcome = drill(&lab()).unwrap_or_else(|error| panic!("the drill failed to run: {error}"));
    eprintln!("{} (bound: {})", outcome.figure, outcome.bound);
    assert!(
        outcome.pass,
        "{} is outside {}",
        outcome.figure, outcome.bound
    );
}

#[test]
fn half_close_echoes_every_byte_before_the_fin() {
    passes(kit::half_close);
}

#[test]
fn resets_with_data_queued_free_everything() {
    passes(kit::resets);
}

#[test]
fn a_client_that_never_reads_costs_bounded_memory() {
    passes(kit::never_reads);
}

#[test]
fn a_panic_in_on_data_closes_only_that_connection() {
    passes(kit::panic_in_on_data);
}

#[test]
fn io_uring_refused_by_seccomp_falls_back_with_the_same_echoes() {
    // The filter binds only the probing thread (and what it starts), never this process.
    let probe = std::thread::spawn(fio_sys::forbid_io_uring).join();
    if let Ok(Err(error)) | Err(error) = probe.map_err(|_| std::io::Error::other("panicked")) {
        fio_test::skip(Feature::Seccomp, &format!("no seccomp filter: {error}"));
        return;
    }
    passes(kit::seccomp);
}

#[test]
fn the_drill_server_runs_the_engine_asked_for() {
    let lab = lab();
    let server = lab
        .start(&lab.drill, &[], "engine")
        .expect("the drill server starts");
    let engine = server.engine().expect("the start-up line names the engine");
    match std::env::var("FIO_ENGINE").as_deref() {
        Ok("epoll" | "poll") => assert_eq!(engine, "epoll"),
        Ok("uring" | "io_uring") if engine != "io_uring" => {
            fio_test::skip(Feature::Uring, &format!("the drill server ran {engine}"));
        }
        _ => {}
    }
}
