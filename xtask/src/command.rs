//! Running cargo and other programs from the workspace root, echoing each command first.

use std::env;
use std::error::Error;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

/// The result type of every task: tasks only report, so a boxed error is enough here.
pub(crate) type TaskResult = Result<(), Box<dyn Error>>;

/// The workspace root: the parent of this crate's directory.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The workspace's target directory: `CARGO_TARGET_DIR` (relative to the root) or `target/`.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => project_root().join(dir),
        _ => project_root().join("target"),
    }
}

/// Runs `cargo <args>` with extra environment variables, failing the task on a non-zero exit.
pub(crate) fn cargo<S: AsRef<OsStr>>(args: &[S], envs: &[(&str, &str)]) -> TaskResult {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Path::new(&cargo), args, envs)
}

/// Runs a program with extra environment variables from the workspace root.
pub(crate) fn run<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
    envs: &[(&str, &str)],
) -> TaskResult {
    let shown_env: String = envs.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    let shown_args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    let name = program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy();
    eprintln!("$ {shown_env}{name} {}", shown_args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(project_root())
        .status()
        .map_err(|e| format!("could not start {name}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{name} {}` failed: {status}", shown_args.join(" ")).into())
    }
}

/// Runs `cargo <args>` like [`cargo`], passing its output through line by line while keeping
/// it: returns the run's result and every line it printed (stdout and stderr).
pub(crate) fn cargo_captured(args: &[&str], envs: &[(&str, &str)]) -> (TaskResult, Vec<String>) {
    let program = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let shown_env: String = envs.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("$ {shown_env}cargo {}", args.join(" "));
    let child = Command::new(&program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(project_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            return (
                Err(format!("could not start cargo: {error}").into()),
                Vec::new(),
            );
        }
    };
    let out = child.stdout.take().map(|pipe| tee(pipe, false));
    let err = child.stderr.take().map(|pipe| tee(pipe, true));
    let status = child.wait();
    let mut lines = Vec::new();
    for handle in [out, err].into_iter().flatten() {
        lines.extend(handle.join().unwrap_or_default());
    }
    let result = match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`cargo {}` failed: {status}", args.join(" ")).into()),
        Err(error) => Err(format!("waiting for cargo: {error}").into()),
    };
    (result, lines)
}

/// Copies a pipe to this process's stdout (or stderr) line by line on a thread, keeping the
/// lines.
fn tee<R: Read + Send + 'static>(pipe: R, to_stderr: bool) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let mut kept = Vec::new();
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let _ = if to_stderr {
                writeln!(std::io::stderr(), "{line}")
            } else {
                writeln!(std::io::stdout(), "{line}")
            };
            kept.push(line);
        }
        kept
    })
}
