//! `cargo xtask drills [--engine uring|epoll] [--quick]`: the robustness drills of issue 13.
//!
//! Builds the examples (`echo`) and the test-only drill server (`drill_echo`, fio-examples) in
//! release, then runs every drill of [`kit::DRILLS`] under `FIO_ENGINE=uring` and then `epoll`
//! (or the one engine asked for), each against a fresh server on a free 127.0.0.1 port: the
//! `echo` example in raw mode where a byte echo fits, the spec echo for slowloris (its 5 s idle
//! timeout), `echo --workers 2` for the killed worker, and `drill_echo` for what an example
//! can't do (a panic in `on_data`, a seccomp filter refusing io_uring, a bulk answer queued at
//! SIGTERM). Every drill is bounded in count and time and its servers are killed on drop.
//!
//! Prints a markdown table (drill, engine, figure, pass/fail, bound), writes it to
//! `target/drills/drills.md` (server logs beside it), and fails if any drill failed. `--quick`
//! runs CI-sized counts (500 concurrent connections instead of 10,000, and so on); `--only
//! WORD` runs only the drills whose name contains `WORD`.
//!
//! A drill that can't run yet would be listed as pending ([`PENDING`]), never as a pass.

pub(crate) mod kit;

use std::fmt::Write as _;
use std::fs;
use std::process::Command;
use std::time::Instant;

use crate::command::{TaskResult, cargo, project_root, target_dir};
use kit::{DRILLS, Lab, Launch, Outcome};

/// The command line.
const USAGE: &str = "drills [--engine uring|epoll] [--quick] [--only WORD]";

/// Drills that can't run yet, with why: listed in the table as pending.
const PENDING: &[(&str, &str)] = &[];

/// Connections the largest drill holds open at once, for RLIMIT_NOFILE.
const MAX_OPEN: u64 = 10_000 + 1_024;

/// Runs the drills; see [`USAGE`].
pub(crate) fn drills(args: &[String]) -> TaskResult {
    let mut engines = vec!["uring", "epoll"];
    let mut quick = false;
    let mut only: Option<String> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => {
                let word = args
                    .next()
                    .ok_or(format!("--only needs a word (usage: {USAGE})"))?;
                only = Some(word.to_lowercase());
            }
            "--engine" => {
                let engine = args.next().map(String::as_str);
                engines = match engine {
                    Some("uring") => vec!["uring"],
                    Some("epoll") => vec!["epoll"],
                    _ => {
                        return Err(
                            format!("--engine takes uring or epoll (usage: {USAGE})").into()
                        );
                    }
                };
            }
            _ => return Err(format!("unknown argument {arg:?} (usage: {USAGE})").into()),
        }
    }
    let started = Instant::now();
    cargo(
        &[
            "build",
            "--release",
            "--locked",
            "-p",
            "fio-examples",
            "--example",
            "echo",
            "--bin",
            "drill_echo",
        ],
        &[],
    )?;
    raise_open_files();
    let release = target_dir().join("release");
    let out_dir = project_root().join("target/drills");
    fs::create_dir_all(&out_dir)?;
    let echo = release.join("examples/echo");
    let threads = ["--threads".to_owned(), "1".to_owned()];
    let mut rows = Vec::new();
    for engine in &engines {
        let lab = Lab {
            raw_echo: Launch {
                program: echo.clone(),
                args: [vec!["--raw".to_owned()], threads.to_vec()].concat(),
            },
            spec_echo: Some(Launch {
                program: echo.clone(),
                args: threads.to_vec(),
            }),
            drill: Launch {
                program: release.join("drill_echo"),
                args: threads.to_vec(),
            },
            engine: Some((*engine).to_owned()),
            log_dir: out_dir.clone(),
            quick,
        };
        let chosen = DRILLS.iter().filter(|(name, _)| {
            only.as_ref()
                .is_none_or(|word| name.to_lowercase().contains(word.as_str()))
        });
        for (name, drill) in chosen {
            let began = Instant::now();
            let outcome = drill(&lab).unwrap_or_else(|error| Outcome {
                figure: format!("ERROR: {error}"),
                pass: false,
                bound: String::new(),
            });
            let verdict = if outcome.pass { "pass" } else { "FAIL" };
            println!(
                "[drills] {engine} {name}: {verdict}: {} ({:.1} s)",
                outcome.figure,
                began.elapsed().as_secs_f64()
            );
            rows.push((*name, *engine, Some(outcome)));
        }
        for (name, _) in PENDING.iter().filter(|_| only.is_none()) {
            rows.push((*name, *engine, None));
        }
    }
    let table = markdown(&rows, quick, started.elapsed().as_secs_f64());
    println!("\n{table}");
    let path = out_dir.join("drills.md");
    fs::write(&path, &table)?;
    println!("written: {}", path.display());
    let failed = rows
        .iter()
        .filter(|(_, _, outcome)| outcome.as_ref().is_some_and(|o| !o.pass))
        .count();
    if failed > 0 {
        return Err(format!("{failed} drills failed").into());
    }
    Ok(())
}

/// The table: one row per drill and engine.
fn markdown(rows: &[(&str, &str, Option<Outcome>)], quick: bool, seconds: f64) -> String {
    let mut text = format!(
        "# cargo xtask drills{}\n\n{} drill runs in {seconds:.0} s; servers: `echo` (raw; spec \
         mode for slowloris; 2 workers for the killed worker) and the test-only `drill_echo`.\n\n\
         | drill | engine | figure | result | bound |\n|---|---|---|---|---|\n",
        if quick { " --quick" } else { "" },
        rows.len()
    );
    for (name, engine, outcome) in rows {
        let (figure, verdict, bound) = match outcome {
            Some(o) => (
                o.figure.as_str(),
                if o.pass { "pass" } else { "**FAIL**" },
                o.bound.as_str(),
            ),
            None => (
                PENDING
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or("", |(_, why)| *why),
                "pending",
                "",
            ),
        };
        let _ = writeln!(
            text,
            "| {name} | {engine} | {figure} | {verdict} | {bound} |"
        );
    }
    text
}

/// Raises this process's RLIMIT_NOFILE (with `prlimit(1)`; xtask has no libc) so it and the
/// servers it starts can hold the 10,000 connections; the hard limit stays unless raising it
/// is allowed.
fn raise_open_files() {
    let pid = std::process::id().to_string();
    let raised = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={MAX_OPEN}:{MAX_OPEN}")])
        .status()
        .is_ok_and(|s| s.success());
    if !raised {
        let _ = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={MAX_OPEN}:")])
            .status();
    }
}
