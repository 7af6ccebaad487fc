//! `cargo xtask bench load [--quick] [--rounds N] [--idle N]`: the loopback load benchmark.
//! Every fio server is loaded with `wrk` and `redis-benchmark` next to a tokio baseline and a
//! bare io-uring loop (the floor), in the same run, and reported as ratios to both
//! (`shared/design/benchmarking.md` is the method).
//!
//! # What one run does
//!
//! 1. Checks for `wrk`, `redis-benchmark`, `strace`, `taskset` and `kill`; as root it installs the
//!    missing ones (`apt-get update`, `apt-get install -y ...`), otherwise it fails with the
//!    command to run.
//! 2. Builds every contender in release (`CARGO_TARGET_DIR` is respected).
//! 3. For each round (5 by default, `--rounds N`; 1 with `--quick` and shorter loads), for each
//!    load, for each contender that serves it: starts the server on a free port pinned to
//!    cpu 0, waits until it accepts a connection, reads its `utime + stime` from `/proc/PID/stat`,
//!    runs the load pinned to cpu 1, reads the times and `VmHWM` again, and stops the server
//!    (`SIGTERM`, then `SIGKILL`). The servers a ratio compares run back to back, and their
//!    order rotates by one each round (A B C, B C A, C A B: [`round_order`]), so a noisy
//!    neighbour hits every contender alike and no contender always has the first slot.
//! 4. For each contender and load, counts the server's system calls under `strace -f -c` over a
//!    fixed number of requests, minus an idle start-and-stop of the same server (startup and
//!    shutdown calls are not per request), in 3 interleaved repetitions (1 with `--quick`),
//!    whose median is reported. These runs are never timed: strace slows the server.
//! 5. For each contender, measures user memory per idle connection (`memory`): RSS with N idle
//!    loopback connections open (10,000 by default, `--idle N`, 0 to skip; 1,000 with
//!    `--quick`) minus RSS before, divided by the connections the server accepted, after
//!    raising RLIMIT_NOFILE for this process and the servers it starts.
//! 6. Prints and writes (`target/bench/load.md`, `load.json`) one table per load: median
//!    requests/s, p99, server CPU µs per request, system calls per request and peak RSS, each
//!    with its min–max over the rounds and the median and min–max of its per-round ratios to
//!    the tokio baseline (and, for CPU, to the bare io-uring loop) of that protocol; the
//!    memory table; then whether each fio contender meets the performance target that applies
//!    to it, and the memory target (at most 1 KiB per idle connection; an io_uring server's
//!    peak RSS at 64 connections no more than tokio's). `target/bench/load.svg` draws CPU per request and throughput per server and load
//!    as bars with min–max whiskers (`svg`).
//!
//! # Adding a contender
//!
//! A contender is one [`Contender`] entry in [`CONTENDERS`]: a name, the package that builds it,
//! its command line relative to the release directory (a binary name, or `examples/<name>` for
//! an example; `{port}` is replaced by the port), the protocols it serves, extra environment,
//! and its [`Role`] (which target it is held to). For example, the io_uring echo (fio-reactor's
//! echo server, an example of the fio-examples crate):
//!
//! ```text
//! Contender { name: "uring-echo", package: "fio-examples",
//!     command: "examples/echo --raw --port {port} --threads 1",
//!     serves: &[Protocol::Echo], env: &[("FIO_ENGINE", "uring")], role: Role::Uring },
//! ```
//!
//! A server must listen on `127.0.0.1:{port}` (or every address), run until `SIGTERM`, and
//! answer byte for byte as the baselines do (`fio_bench::HTTP_RESPONSE` for HTTP, a pure byte
//! echo for echo). A target's verdict is per contender name prefix (the part before the first
//! `-`): fio-reactor's `uring-echo` and `uring-http` are judged together on all four loads,
//! under the io_uring target, and `epoll-echo` and `epoll-http` under the epoll target; each
//! runs its example with `FIO_ENGINE` set and one reactor thread. fio-ring's standalone `echo`
//! example (`ring-echo`) is held to the io_uring target on the two echo loads it serves, for
//! information.
//!
//! The references are roles, not targets: [`Role::Baseline`] (tokio, `tokio_echo`/`tokio_http`)
//! and [`Role::Floor`] (`fio-bench`'s `bare_uring echo|http`: one thread, the io-uring crate
//! itself, multishot accept and receive from a provided-buffer ring, `SINGLE_ISSUER |
//! DEFER_TASKRUN`, one `submit_and_wait` per loop turn).
//!
//! Submodules: `parse` reads the tools' outputs (unit-tested on samples captured from the real
//! tools), `process` starts, watches and always stops the processes, `memory` measures idle
//! connections, `report` builds the tables, the JSON and the verdicts, `svg` the plot.

mod memory;
pub(crate) mod parse;
mod process;
mod report;
mod svg;

use std::collections::BTreeMap;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::command::{TaskResult, cargo, project_root, run, target_dir};
use memory::IdleMemory;
use parse::{effective_uid, parse_redis_csv, parse_strace_calls, parse_wrk};
use process::{Server, free_port, run_bounded};
use report::{Results, json, markdown, memory_verdicts, verdicts};
use svg::svg;

/// A run's outcome: a failed run is reported and the benchmark goes on with the others.
type RunResult<T> = Result<T, Box<dyn Error>>;

/// The wire protocol a server speaks, which decides the loads it can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// A pure byte echo: loaded with `redis-benchmark -t ping_mbulk`.
    Echo,
    /// HTTP/1.1 hello with keep-alive and pipelining: loaded with `wrk`.
    Http,
}

/// What a contender is compared as, and which performance target it is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The tokio baseline of its protocols: every ratio is to it.
    Baseline,
    /// The bare io-uring loop of its protocols (`fio-bench`'s `bare_uring`): the floor, the
    /// second ratio of every figure is to it. Held to no target.
    Floor,
    /// An io_uring server: throughput >= tokio, CPU/request <= tokio's and <= 1.03x the bare
    /// io-uring loop's, system calls per request <= 0.126 / 0.012 / 0.15 / 0.017 (wrk,
    /// wrk-P16, redis-P1, redis-P16), on every one of the four loads.
    Uring,
    /// An epoll server: CPU/request <= tokio's on every one of the four loads.
    Epoll,
}

/// One server under test; see the module doc for how to add one.
#[derive(Debug)]
struct Contender {
    /// Its row name in the tables, e.g. `tokio-echo`.
    name: &'static str,
    /// The package that builds it.
    package: &'static str,
    /// Program (relative to the release directory) and arguments; `{port}` is replaced.
    command: &'static str,
    /// The protocols it serves.
    serves: &'static [Protocol],
    /// Extra environment, e.g. `FIO_ENGINE=uring`.
    env: &'static [(&'static str, &'static str)],
    /// Baseline, or the target it is held to.
    role: Role,
}

/// The package whose examples `echo` and `http_hello` are fio-reactor's servers under test
/// (kept in this one place: the examples may move to another package).
const EXAMPLES_PACKAGE: &str = "fio-examples";

/// The servers, in the order each round runs them.
const CONTENDERS: &[Contender] = &[
    Contender {
        name: "tokio-echo",
        package: "fio-bench",
        command: "tokio_echo --port {port} --threads 1",
        serves: &[Protocol::Echo],
        env: &[],
        role: Role::Baseline,
    },
    Contender {
        name: "tokio-http",
        package: "fio-bench",
        command: "tokio_http --port {port} --threads 1",
        serves: &[Protocol::Http],
        env: &[],
        role: Role::Baseline,
    },
    Contender {
        name: "bare-echo",
        package: "fio-bench",
        command: "bare_uring echo --port {port} --threads 1",
        serves: &[Protocol::Echo],
        env: &[],
        role: Role::Floor,
    },
    Contender {
        name: "bare-http",
        package: "fio-bench",
        command: "bare_uring http --port {port} --threads 1",
        serves: &[Protocol::Http],
        env: &[],
        role: Role::Floor,
    },
    Contender {
        name: "ring-echo",
        package: "fio-ring",
        command: "examples/ring_echo {port}",
        serves: &[Protocol::Echo],
        env: &[],
        role: Role::Uring,
    },
    Contender {
        name: "uring-echo",
        package: EXAMPLES_PACKAGE,
        command: "examples/echo --raw --port {port} --threads 1",
        serves: &[Protocol::Echo],
        env: &[("FIO_ENGINE", "uring")],
        role: Role::Uring,
    },
    Contender {
        name: "epoll-echo",
        package: EXAMPLES_PACKAGE,
        command: "examples/echo --raw --port {port} --threads 1",
        serves: &[Protocol::Echo],
        env: &[("FIO_ENGINE", "epoll")],
        role: Role::Epoll,
    },
    Contender {
        name: "uring-http",
        package: EXAMPLES_PACKAGE,
        command: "examples/http_hello --port {port} --threads 1",
        serves: &[Protocol::Http],
        env: &[("FIO_ENGINE", "uring")],
        role: Role::Uring,
    },
    Contender {
        name: "epoll-http",
        package: EXAMPLES_PACKAGE,
        command: "examples/http_hello --port {port} --threads 1",
        serves: &[Protocol::Http],
        env: &[("FIO_ENGINE", "epoll")],
        role: Role::Epoll,
    },
];

/// The four loads; every one uses 64 connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Load {
    /// `wrk -t1 -c64 --latency`: one request in flight per connection.
    Wrk,
    /// The same with 16 requests per write (`pipeline.lua`).
    WrkPipelined,
    /// `redis-benchmark -t ping_mbulk -c 64 -P 1`.
    RedisP1,
    /// `redis-benchmark -t ping_mbulk -c 64 -P 16`.
    RedisP16,
}

impl Load {
    const ALL: [Self; 4] = [Self::Wrk, Self::WrkPipelined, Self::RedisP1, Self::RedisP16];

    fn name(self) -> &'static str {
        match self {
            Self::Wrk => "wrk",
            Self::WrkPipelined => "wrk-P16",
            Self::RedisP1 => "redis-P1",
            Self::RedisP16 => "redis-P16",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Wrk => "HTTP, wrk -t1 -c64, one request in flight per connection",
            Self::WrkPipelined => "HTTP, wrk -t1 -c64, 16 pipelined requests per write",
            Self::RedisP1 => "echo, redis-benchmark -t ping_mbulk -c 64 -P 1",
            Self::RedisP16 => "echo, redis-benchmark -t ping_mbulk -c 64 -P 16",
        }
    }

    fn protocol(self) -> Protocol {
        match self {
            Self::Wrk | Self::WrkPipelined => Protocol::Http,
            Self::RedisP1 | Self::RedisP16 => Protocol::Echo,
        }
    }
}

/// How long each load runs: the full benchmark, or `--quick`.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Interleaved timed rounds (`--rounds N`).
    rounds: usize,
    /// Interleaved traced repetitions per contender and load; the median is reported.
    strace_repeats: usize,
    /// Idle connections held open to measure memory per connection (`--idle N`; 0: skip).
    idle_connections: usize,
    /// `wrk -d` of a timed run.
    wrk_seconds: u64,
    /// `redis-benchmark -n` of a timed run, for `-P 1` and `-P 16`.
    redis_requests: [u64; 2],
    /// `wrk -d` of a traced run (requests are counted from wrk's output).
    strace_wrk_seconds: u64,
    /// `redis-benchmark -n` of a traced run, for `-P 1` and `-P 16`.
    strace_redis_requests: [u64; 2],
}

/// About 5 s per load on the 2-core reference machine.
const FULL: Sizes = Sizes {
    rounds: 5,
    strace_repeats: 3,
    idle_connections: 10_000,
    wrk_seconds: 5,
    redis_requests: [350_000, 4_000_000],
    strace_wrk_seconds: 2,
    strace_redis_requests: [40_000, 640_000],
};

/// About 1 s per load.
const QUICK: Sizes = Sizes {
    rounds: 1,
    strace_repeats: 1,
    idle_connections: 1_000,
    wrk_seconds: 1,
    redis_requests: [70_000, 800_000],
    strace_wrk_seconds: 1,
    strace_redis_requests: [20_000, 320_000],
};

/// The tools, each with the Debian package that provides it.
const TOOLS: [(&str, &str); 5] = [
    ("wrk", "wrk"),
    ("redis-benchmark", "redis-tools"),
    ("strace", "strace"),
    ("taskset", "util-linux"),
    ("kill", "procps"),
];

/// The server runs on this cpu, the load generator on the other.
const SERVER_CPU: &str = "0";
const CLIENT_CPU: &str = "1";

/// How long one redis-benchmark run may take (a full one takes about 5 s).
const REDIS_TIMEOUT: Duration = Duration::from_secs(120);

/// wrk's script for the pipelined load: 16 GET requests in every write.
const PIPELINE_LUA: &str = "\
-- Written by `cargo xtask bench load`: 16 pipelined GET requests per write.
init = function(args)
  local requests = {}
  for i = 1, 16 do
    requests[i] = wrk.format(nil, \"/\")
  end
  pipelined = table.concat(requests)
end

request = function()
  return pipelined
end
";

/// The load benchmark's command line.
const LOAD_USAGE: &str = "load [--quick] [--rounds N] [--idle N]";

/// Parses `[--quick] [--rounds N] [--idle N]`: `--quick` picks the short sizes, the other two
/// override the rounds and the idle connections of either.
fn parse_sizes(args: &[String]) -> Result<Sizes, String> {
    let mut sizes = FULL;
    let mut rounds = None;
    let mut idle = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (option, inline) = match arg.split_once('=') {
            Some((option, value)) => (option, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let target = match option {
            "--quick" if inline.is_none() => {
                sizes = QUICK;
                continue;
            }
            "--rounds" => &mut rounds,
            "--idle" => &mut idle,
            _ => return Err(format!("unknown argument {arg:?} (usage: {LOAD_USAGE})")),
        };
        let value = match inline {
            Some(value) => value,
            None => args
                .next()
                .cloned()
                .ok_or_else(|| format!("{option} needs a number (usage: {LOAD_USAGE})"))?,
        };
        let number: usize = value
            .parse()
            .map_err(|_| format!("{option} {value:?} is not a number"))?;
        *target = Some(number);
    }
    if let Some(rounds) = rounds {
        if rounds == 0 {
            return Err("--rounds must be at least 1".to_owned());
        }
        sizes.rounds = rounds;
    }
    if let Some(idle) = idle {
        sizes.idle_connections = idle;
    }
    Ok(sizes)
}

/// Runs the load benchmark; see [`LOAD_USAGE`] for `args`.
pub(crate) fn load(args: &[String]) -> TaskResult {
    let sizes = parse_sizes(args)?;
    let started = Instant::now();
    let out_dir = project_root().join("target/bench");
    fs::create_dir_all(&out_dir)?;
    ensure_tools()?;
    if thread::available_parallelism().map_or(1, usize::from) < 2 {
        return Err("the load benchmark pins server and client to cpus 0 and 1: it needs 2".into());
    }
    let bench = Bench {
        release_dir: target_dir().join("release"),
        lua: out_dir.join("pipeline.lua"),
        clock_ticks: clock_ticks(),
        out_dir,
        sizes,
    };
    build(CONTENDERS)?;
    fs::write(&bench.lua, PIPELINE_LUA)?;

    let mut results = Results::default();
    for round in 1..=sizes.rounds {
        for (index, contender, load) in round_order(round) {
            let outcome = bench.timed_run(contender, load);
            let step = format!("round {round}/{}", sizes.rounds);
            record(&mut results.timed, &step, (index, contender, load), outcome);
        }
    }
    for repeat in 1..=sizes.strace_repeats {
        for (index, contender) in CONTENDERS.iter().enumerate() {
            for load in served_loads(contender) {
                let outcome = bench.syscall_run(contender, load);
                let step = format!("syscalls {repeat}/{}", sizes.strace_repeats);
                record(
                    &mut results.syscalls,
                    &step,
                    (index, contender, load),
                    outcome,
                );
            }
        }
    }
    if sizes.idle_connections > 0 {
        let wanted = sizes.idle_connections;
        match memory::raise_open_files(wanted) {
            Ok(note) => println!("[memory] {note}"),
            Err(error) => println!("[memory] cannot raise RLIMIT_NOFILE: {error}"),
        }
        for (index, contender) in CONTENDERS.iter().enumerate() {
            let Some(load) = served_loads(contender).next() else {
                continue;
            };
            let outcome = bench.idle_run(contender, load, wanted);
            let shown = match &outcome {
                Ok(idle) => idle.to_string(),
                Err(error) => format!("FAILED: {error}"),
            };
            println!("[memory] {}: {shown}", contender.name);
            results.idle.insert(index, outcome.ok());
        }
    }

    let tables = results.tables();
    let memory_rows = results.memory(&tables);
    let markdown = markdown(&tables, &memory_rows, &sizes, started.elapsed());
    println!("\n{markdown}");
    let mut verdicts = verdicts(&tables);
    verdicts.lines.extend(memory_verdicts(&memory_rows));
    for line in &verdicts.lines {
        println!("{line}");
    }
    fs::write(bench.out_dir.join("load.md"), &markdown)?;
    fs::write(
        bench.out_dir.join("load.json"),
        json(&tables, &memory_rows, &verdicts, &sizes, bench.clock_ticks),
    )?;
    fs::write(bench.out_dir.join("load.svg"), svg(&tables))?;
    println!(
        "written: {}",
        bench.out_dir.join("load.{md,json,svg}").display()
    );
    let failed = results.failures();
    if failed > 0 {
        return Err(format!("{failed} load runs failed (see the FAILED lines above)").into());
    }
    Ok(())
}

/// Prints one run's outcome under `step` and files it (`None` when it failed) with the
/// contender's and load's earlier ones.
fn record<T: std::fmt::Display>(
    runs: &mut BTreeMap<(usize, Load), Vec<Option<T>>>,
    step: &str,
    (index, contender, load): (usize, &Contender, Load),
    outcome: RunResult<T>,
) {
    let shown = match &outcome {
        Ok(run) => run.to_string(),
        Err(error) => format!("FAILED: {error}"),
    };
    println!("[{step}] {} {}: {shown}", contender.name, load.name());
    runs.entry((index, load)).or_default().push(outcome.ok());
}

/// The timed runs of round `round` (from 1), as (index in [`CONTENDERS`], contender, load):
/// load by load, every contender that serves it back to back, so the runs a ratio compares lie
/// close together in time; and the contenders' order rotated by one each round, so no
/// contender always runs first after a load change (a slot that a machine's rhythm could
/// favour).
fn round_order(round: usize) -> Vec<(usize, &'static Contender, Load)> {
    let count = CONTENDERS.len();
    let mut order = Vec::new();
    for load in Load::ALL {
        for offset in 0..count {
            let index = (offset + round - 1) % count;
            let contender = &CONTENDERS[index];
            if contender.serves.contains(&load.protocol()) {
                order.push((index, contender, load));
            }
        }
    }
    order
}

/// The loads a contender serves, in table order.
fn served_loads(contender: &Contender) -> impl Iterator<Item = Load> + '_ {
    Load::ALL
        .into_iter()
        .filter(|load| contender.serves.contains(&load.protocol()))
}

/// Installs the missing tools as root, or explains how to.
fn ensure_tools() -> TaskResult {
    let missing: Vec<(&str, &str)> = TOOLS
        .into_iter()
        .filter(|(tool, _)| find_in_path(tool).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
    packages.dedup();
    let names: Vec<&str> = missing.iter().map(|(tool, _)| *tool).collect();
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    if effective_uid(&status) != Some(0) {
        return Err(format!(
            "missing tools: {}; install them with: sudo apt-get update && sudo apt-get install -y {}",
            names.join(", "),
            packages.join(" ")
        )
        .into());
    }
    eprintln!("missing tools: {}; installing as root", names.join(", "));
    let apt = Path::new("apt-get");
    let quiet = [("DEBIAN_FRONTEND", "noninteractive")];
    run(apt, &["update"], &quiet)?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&packages);
    run(apt, &install, &quiet)?;
    match TOOLS.iter().find(|(tool, _)| find_in_path(tool).is_none()) {
        Some((tool, package)) => {
            Err(format!("{tool} is still missing after installing {package}").into())
        }
        None => Ok(()),
    }
}

/// The first executable `name` on `PATH`, as `which` finds it.
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Clock ticks per second for `/proc/PID/stat` (`getconf CLK_TCK`, else Linux's 100).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// Builds every contender in release, one cargo call per package.
fn build(contenders: &[Contender]) -> TaskResult {
    let mut by_package: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for contender in contenders {
        let program = contender.command.split_whitespace().next().unwrap_or("");
        let target = match program.strip_prefix("examples/") {
            Some(example) => ["--example".to_owned(), example.to_owned()],
            None => ["--bin".to_owned(), program.to_owned()],
        };
        let args = by_package.entry(contender.package).or_default();
        if !args.windows(2).any(|pair| pair == target) {
            args.extend(target);
        }
    }
    for (package, targets) in by_package {
        let mut args = vec!["build", "--release", "--locked", "-p", package];
        args.extend(targets.iter().map(String::as_str));
        cargo(&args, &[])?;
    }
    Ok(())
}

/// Where and how long the runs go.
#[derive(Debug)]
struct Bench {
    release_dir: PathBuf,
    out_dir: PathBuf,
    lua: PathBuf,
    clock_ticks: u64,
    sizes: Sizes,
}

/// What a timed run measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    per_second: f64,
    /// None where the figure means nothing (pipelined wrk) or the tool did not print it.
    p99_ms: Option<f64>,
    cpu_us_per_request: f64,
    peak_rss_mib: f64,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p99 = self
            .p99_ms
            .map_or("n/a".to_owned(), |ms| format!("{ms:.2} ms"));
        write!(
            f,
            "{:.0} req/s p99 {p99} cpu {:.2} us/req rss {:.1} MiB",
            self.per_second, self.cpu_us_per_request, self.peak_rss_mib
        )
    }
}

/// What the load generator reported.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ClientReport {
    requests: u64,
    per_second: f64,
    p99_ms: Option<f64>,
}

/// A traced run's system calls, net of an idle start and stop of the same server.
#[derive(Debug, Clone, Copy)]
struct SyscallCount {
    loaded: u64,
    idle: u64,
    requests: u64,
}

impl SyscallCount {
    fn per_request(&self) -> f64 {
        self.loaded.saturating_sub(self.idle) as f64 / self.requests.max(1) as f64
    }
}

impl std::fmt::Display for SyscallCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3} syscalls/req ({} calls, {} of them idle start and stop, over {} requests)",
            self.per_request(),
            self.loaded,
            self.idle,
            self.requests
        )
    }
}

impl Bench {
    /// Starts the server, loads it, and measures its CPU time and peak RSS over the load.
    fn timed_run(&self, contender: &Contender, load: Load) -> RunResult<Run> {
        let mut server = self.start(contender, load, None)?;
        let before = server.cpu_ticks()?;
        let report = self.client(load, server.port(), false)?;
        let after = server.cpu_ticks()?;
        let peak_rss_kib = server.peak_rss_kib()?;
        server.stop()?;
        let cpu_seconds = after.saturating_sub(before) as f64 / self.clock_ticks as f64;
        Ok(Run {
            per_second: report.per_second,
            p99_ms: report.p99_ms,
            cpu_us_per_request: cpu_seconds * 1e6 / report.requests.max(1) as f64,
            peak_rss_mib: peak_rss_kib as f64 / 1024.0,
        })
    }

    /// Starts the server, holds `wanted` idle connections to it and measures the resident
    /// memory they added.
    fn idle_run(&self, contender: &Contender, load: Load, wanted: usize) -> RunResult<IdleMemory> {
        let server = self.start(contender, load, None)?;
        let pid = server.server_pid()?;
        let port = server.port();
        let measured = memory::measure_idle(pid, port, wanted);
        server.stop()?;
        measured
    }

    /// Counts the server's system calls under strace: once idle, once over a fixed load.
    fn syscall_run(&self, contender: &Contender, load: Load) -> RunResult<SyscallCount> {
        let stem = format!("strace-{}-{}", contender.name, load.name());
        let idle_file = self.out_dir.join(format!("{stem}-idle.txt"));
        self.start(contender, load, Some(&idle_file))?.stop()?;
        let idle = strace_calls(&idle_file)?;
        let file = self.out_dir.join(format!("{stem}.txt"));
        let server = self.start(contender, load, Some(&file))?;
        let report = self.client(load, server.port(), true)?;
        server.stop()?;
        Ok(SyscallCount {
            loaded: strace_calls(&file)?,
            idle,
            requests: report.requests,
        })
    }

    /// Starts a contender pinned to the server cpu (under strace if `trace` names its output)
    /// and waits until it accepts connections.
    fn start(&self, contender: &Contender, load: Load, trace: Option<&Path>) -> RunResult<Server> {
        let port = free_port()?;
        let command = contender.command.replace("{port}", &port.to_string());
        let mut words = command.split_whitespace();
        let program = self.release_dir.join(words.next().ok_or("empty command")?);
        let log = self
            .out_dir
            .join(format!("server-{}-{}.log", contender.name, load.name()));
        let mut process = Command::new("taskset");
        process.args(["-c", SERVER_CPU]);
        if let Some(trace) = trace {
            process.args(["strace", "-f", "-c", "-o"]).arg(trace);
        }
        process
            .arg(&program)
            .args(words)
            .envs(contender.env.iter().copied())
            .current_dir(project_root());
        Server::start(process, port, trace.is_some(), log)
    }

    /// Runs the load generator pinned to the client cpu and parses its report.
    fn client(&self, load: Load, port: u16, traced: bool) -> RunResult<ClientReport> {
        let sizes = &self.sizes;
        let mut command = Command::new("taskset");
        command.args(["-c", CLIENT_CPU]);
        let report = match load {
            Load::Wrk | Load::WrkPipelined => {
                let seconds = if traced {
                    sizes.strace_wrk_seconds
                } else {
                    sizes.wrk_seconds
                };
                command
                    .args(["wrk", "-t1", "-c64", "--latency"])
                    .arg(format!("-d{seconds}s"));
                if load == Load::WrkPipelined {
                    command.arg("-s").arg(&self.lua);
                }
                command.arg(format!("http://127.0.0.1:{port}/"));
                let output = run_bounded(command, Duration::from_secs(seconds + 20))?;
                parse_wrk(&output, load == Load::Wrk)?
            }
            Load::RedisP1 | Load::RedisP16 => {
                let (pipeline, slot) = if load == Load::RedisP1 {
                    ("1", 0)
                } else {
                    ("16", 1)
                };
                let requests = if traced {
                    sizes.strace_redis_requests[slot]
                } else {
                    sizes.redis_requests[slot]
                };
                command
                    .args(["redis-benchmark", "-h", "127.0.0.1", "-t", "ping_mbulk"])
                    .args(["-c", "64", "-P", pipeline, "--csv"])
                    .args(["-p", &port.to_string(), "-n", &requests.to_string()]);
                // Even a slow or traced server finishes well within this; past it the run failed.
                let output = run_bounded(command, REDIS_TIMEOUT)?;
                parse_redis_csv(&output, requests)?
            }
        };
        if report.requests == 0 {
            return Err(format!("{} completed no request", load.name()).into());
        }
        Ok(report)
    }
}

/// The total calls in a `strace -c` summary file.
fn strace_calls(file: &Path) -> RunResult<u64> {
    let summary = fs::read_to_string(file)?;
    parse_strace_calls(&summary)
        .ok_or_else(|| format!("no strace summary in {}", file.display()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(args: &[&str]) -> Result<Sizes, String> {
        parse_sizes(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn a_round_runs_each_contender_once_per_load_it_serves_with_the_order_rotated() {
        let served: usize = CONTENDERS.iter().map(|c| served_loads(c).count()).sum();
        let mut firsts = Vec::new();
        for round in 1..=CONTENDERS.len() {
            let order = round_order(round);
            assert_eq!(order.len(), served);
            let mut pairs: Vec<(usize, Load)> = order
                .iter()
                .map(|&(index, _, load)| (index, load))
                .collect();
            pairs.sort();
            pairs.dedup();
            assert_eq!(pairs.len(), served, "round {round} repeats a run");
            // Load by load: all of a load's runs are adjacent.
            let loads: Vec<Load> = order.iter().map(|&(_, _, load)| load).collect();
            let changes = loads.windows(2).filter(|pair| pair[0] != pair[1]).count();
            assert_eq!(changes + 1, Load::ALL.len());
            firsts.push(order[0].0);
        }
        firsts.sort_unstable();
        firsts.dedup();
        assert!(
            firsts.len() > 1,
            "every round starts with the same contender"
        );
    }

    #[test]
    fn rounds_and_idle_override_either_size() {
        let full = sizes(&[]).unwrap();
        assert_eq!((full.rounds, full.idle_connections), (5, 10_000));
        let quick = sizes(&["--rounds", "2", "--quick", "--idle=300"]).unwrap();
        assert_eq!((quick.rounds, quick.idle_connections), (2, 300));
        assert_eq!(quick.wrk_seconds, QUICK.wrk_seconds);
        assert!(sizes(&["--rounds", "0"]).is_err());
        assert!(sizes(&["--rounds"]).is_err());
        assert!(sizes(&["--idle", "many"]).is_err());
        assert!(sizes(&["--fast"]).is_err());
    }
}
