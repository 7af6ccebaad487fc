//! Running cargo and other programs from the workspace root, echoing each command first.

use std::env;
use std::error::Error;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The result type of every task: tasks only report, so a boxed error is enough here.
pub(crate) type TaskResult = Result<(), Box<dyn Error>>;

/// The workspace root: the parent of this crate's directory.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
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
