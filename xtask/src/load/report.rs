//! The load benchmark's results: per-load tables of medians and same-run ratios to the tokio
//! baseline and to the bare io-uring loop, each with its spread over the rounds, the memory
//! table, as Markdown and JSON, and the verdict on each performance target.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::memory::IdleMemory;
use super::{CONTENDERS, Contender, Load, Protocol, Role, Run, Sizes, SyscallCount};

/// Everything measured, keyed by (index in [`CONTENDERS`], load).
#[derive(Debug, Default)]
pub(super) struct Results {
    /// One entry per round; `None` where the run failed.
    pub(super) timed: BTreeMap<(usize, Load), Vec<Option<Run>>>,
    /// One entry per traced repetition; `None` where it failed.
    pub(super) syscalls: BTreeMap<(usize, Load), Vec<Option<SyscallCount>>>,
    /// The idle-connections run of each contender; `None` where it failed.
    pub(super) idle: BTreeMap<usize, Option<IdleMemory>>,
}

/// A median with the smallest and largest of the values it is the median of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Spread {
    pub(super) mid: f64,
    pub(super) lo: f64,
    pub(super) hi: f64,
}

impl Spread {
    /// The median and range of `values`; None for no values.
    fn of(values: &[f64]) -> Option<Self> {
        Some(Self {
            mid: median(values)?,
            lo: values.iter().copied().fold(f64::INFINITY, f64::min),
            hi: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// One figure of a row: its median over the rounds, and the medians of its per-round ratios
/// to the tokio baseline and to the bare io-uring loop, each with its range.
#[derive(Debug, Clone, Copy)]
pub(super) struct Figure {
    pub(super) value: Spread,
    /// None when the baseline has no figure to compare with.
    pub(super) ratio: Option<Spread>,
    /// The same against the bare io-uring loop (the floor) of the protocol.
    pub(super) floor: Option<Spread>,
}

/// One server's row in a load's table.
#[derive(Debug)]
pub(super) struct Row {
    pub(super) contender: &'static Contender,
    /// Rounds whose run succeeded, out of `rounds`.
    succeeded: usize,
    rounds: usize,
    pub(super) per_second: Option<Figure>,
    p99_ms: Option<Figure>,
    pub(super) cpu_us: Option<Figure>,
    syscalls: Option<Figure>,
    rss_mib: Option<Figure>,
}

/// One load's table.
#[derive(Debug)]
pub(super) struct Table {
    pub(super) load: Load,
    baseline: Option<&'static str>,
    floor: Option<&'static str>,
    pub(super) rows: Vec<Row>,
}

/// One server's memory: per idle connection, and its peak at 64 loaded connections.
#[derive(Debug)]
pub(super) struct MemoryRow {
    contender: &'static Contender,
    idle: Option<IdleMemory>,
    /// The largest over its loads of the median peak RSS (MiB) under 64 connections.
    peak_64_mib: Option<f64>,
}

impl Results {
    /// How many runs (timed or traced) failed.
    pub(super) fn failures(&self) -> usize {
        let timed = self.timed.values().flatten().filter(|run| run.is_none());
        let traced = self
            .syscalls
            .values()
            .flatten()
            .filter(|count| count.is_none());
        let idle = self.idle.values().filter(|idle| idle.is_none());
        timed.count() + traced.count() + idle.count()
    }

    /// The memory table: every contender with an idle run or a timed row.
    pub(super) fn memory(&self, tables: &[Table]) -> Vec<MemoryRow> {
        CONTENDERS
            .iter()
            .enumerate()
            .filter_map(|(index, contender)| {
                let peaks: Vec<f64> = tables
                    .iter()
                    .flat_map(|table| &table.rows)
                    .filter(|row| row.contender.name == contender.name)
                    .filter_map(|row| row.rss_mib.map(|figure| figure.value.mid))
                    .collect();
                let idle = self.idle.get(&index).copied();
                if idle.is_none() && peaks.is_empty() {
                    return None;
                }
                Some(MemoryRow {
                    contender,
                    idle: idle.flatten(),
                    peak_64_mib: peaks.into_iter().reduce(f64::max),
                })
            })
            .collect()
    }

    /// One table per load that some contender serves.
    pub(super) fn tables(&self) -> Vec<Table> {
        let mut tables = Vec::new();
        for load in Load::ALL {
            let reference = |role: Role| {
                CONTENDERS.iter().position(|contender| {
                    contender.role == role && contender.serves.contains(&load.protocol())
                })
            };
            let (baseline, floor) = (reference(Role::Baseline), reference(Role::Floor));
            let base_runs = baseline.and_then(|index| self.timed.get(&(index, load)));
            let floor_runs = floor.and_then(|index| self.timed.get(&(index, load)));
            let syscalls_of = |index: Option<usize>| -> Option<Spread> {
                let counts = self.syscalls.get(&(index?, load))?;
                let values: Vec<f64> = counts.iter().flatten().map(|c| c.per_request()).collect();
                Spread::of(&values)
            };
            let (base_syscalls, floor_syscalls) = (syscalls_of(baseline), syscalls_of(floor));
            let mut rows = Vec::new();
            for (index, contender) in CONTENDERS.iter().enumerate() {
                let Some(runs) = self.timed.get(&(index, load)) else {
                    continue;
                };
                let figure =
                    |pick: fn(&Run) -> Option<f64>| figure(runs, base_runs, floor_runs, pick);
                let syscalls = syscalls_of(Some(index)).map(|value| {
                    // One traced run per repetition, not paired by round: the ratio is of the
                    // medians, its range of the extremes.
                    let versus = |base: Option<Spread>| {
                        let base = base.filter(|base| base.mid > 0.0 && base.lo > 0.0)?;
                        Some(Spread {
                            mid: value.mid / base.mid,
                            lo: value.lo / base.hi,
                            hi: value.hi / base.lo,
                        })
                    };
                    Figure {
                        value,
                        ratio: versus(base_syscalls),
                        floor: versus(floor_syscalls),
                    }
                });
                rows.push(Row {
                    contender,
                    succeeded: runs.iter().flatten().count(),
                    rounds: runs.len(),
                    per_second: figure(|run| Some(run.per_second)),
                    p99_ms: figure(|run| run.p99_ms),
                    cpu_us: figure(|run| Some(run.cpu_us_per_request)),
                    syscalls,
                    rss_mib: figure(|run| Some(run.peak_rss_mib)),
                });
            }
            if !rows.is_empty() {
                tables.push(Table {
                    load,
                    baseline: baseline.map(|index| CONTENDERS[index].name),
                    floor: floor.map(|index| CONTENDERS[index].name),
                    rows,
                });
            }
        }
        tables
    }
}

/// One figure over the rounds, with its ratios to the baseline's and the floor's figure of
/// the same round; None when no round gave the figure.
fn figure(
    runs: &[Option<Run>],
    base_runs: Option<&Vec<Option<Run>>>,
    floor_runs: Option<&Vec<Option<Run>>>,
    pick: fn(&Run) -> Option<f64>,
) -> Option<Figure> {
    let values: Vec<f64> = runs.iter().flatten().filter_map(pick).collect();
    Some(Figure {
        value: Spread::of(&values)?,
        ratio: ratios(runs, base_runs, pick),
        floor: ratios(runs, floor_runs, pick),
    })
}

/// The median and range of one figure's per-round ratios to a reference's figure of the same
/// round (rounds where either run failed are left out).
fn ratios(
    runs: &[Option<Run>],
    reference: Option<&Vec<Option<Run>>>,
    pick: fn(&Run) -> Option<f64>,
) -> Option<Spread> {
    let ratios: Vec<f64> = runs
        .iter()
        .zip(reference?)
        .filter_map(|(run, base)| {
            let (run, base) = (pick(run.as_ref()?)?, pick(base.as_ref()?)?);
            (base > 0.0).then(|| run / base)
        })
        .collect();
    Spread::of(&ratios)
}

/// The median (mean of the middle two for an even count); None for no values.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

/// The tables as Markdown, printed on the terminal and written to `load.md`.
pub(super) fn markdown(
    tables: &[Table],
    memory: &[MemoryRow],
    sizes: &Sizes,
    elapsed: Duration,
) -> String {
    let mut out = String::from("# Loopback load benchmark\n\n");
    let _ = writeln!(
        out,
        "{} interleaved round(s){}, server pinned to cpu 0 and load generator to cpu 1, 64 \
         connections. Figures are medians over the rounds, with (min–max) over the rounds; a \
         ratio `x` is the median of the per-round ratios to the tokio baseline (`vs tokio`) or \
         to the bare io-uring loop (`vs bare`) of the same round, with the range of those \
         ratios. System calls come from {} `strace -f -c` run(s) per server and load, net of an \
         idle start and stop (median, min–max). Took {:.0?}. Plot: `load.svg`.",
        sizes.rounds,
        if sizes.rounds == 1 { " (quick)" } else { "" },
        sizes.strace_repeats,
        elapsed
    );
    for table in tables {
        let _ = writeln!(
            out,
            "\n## {}: {} (baseline {}, floor {})\n",
            table.load.name(),
            table.load.title(),
            table.baseline.unwrap_or("missing"),
            table.floor.unwrap_or("missing")
        );
        out.push_str(
            "| server | req/s (vs tokio) | p99 | CPU µs/req | CPU vs tokio | CPU vs bare | \
             syscalls/req (vs tokio) | peak RSS MiB |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in &table.rows {
            let name = if row.succeeded == row.rounds {
                row.contender.name.to_owned()
            } else {
                format!(
                    "{} ({}/{} runs)",
                    row.contender.name, row.succeeded, row.rounds
                )
            };
            let role = row.contender.role;
            let vs_tokio = |figure: Option<Figure>| match role {
                Role::Baseline => Some("baseline".to_owned()),
                _ => figure.map(|figure| figure.ratio.map_or("n/a".to_owned(), times)),
            };
            let vs_bare = match role {
                Role::Floor => Some("floor".to_owned()),
                _ => row
                    .cpu_us
                    .map(|figure| figure.floor.map_or("n/a".to_owned(), times)),
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} | {} |",
                cell(row.per_second, vs_tokio(row.per_second), |v| format!(
                    "{v:.0}"
                )),
                match row.p99_ms {
                    None if table.load == Load::WrkPipelined => "n/a".to_owned(),
                    p99 => cell(p99, None, |v| format!("{v:.2} ms")),
                },
                cell(row.cpu_us, None, |v| format!("{v:.2}")),
                vs_tokio(row.cpu_us).unwrap_or_else(|| "failed".to_owned()),
                vs_bare.unwrap_or_else(|| "failed".to_owned()),
                cell(row.syscalls, vs_tokio(row.syscalls), |v| format!("{v:.3}")),
                cell(row.rss_mib, None, |v| format!("{v:.1}")),
            );
        }
    }
    let unstable = unstable_cpu(tables);
    if !unstable.is_empty() {
        let _ = writeln!(
            out,
            "\nUnsteady: the per-round CPU/request ratio to tokio spread more than ±{:.0}% of its \
             median for {}; a verdict on these needs more rounds (`--rounds N`) or a quieter \
             machine.",
            UNSTEADY * 100.0,
            unstable.join(", ")
        );
    }
    if !memory.is_empty() {
        out.push_str(
            "\n## Memory\n\nUser memory per idle connection: the server's RSS with N idle \
             loopback connections open (opened from the load side, never sending) minus its RSS \
             before, divided by the connections it accepted. Peak RSS: `VmHWM` under the 64 \
             loaded connections, the largest of its loads' medians.\n\n\
             | server | per idle connection | accepted | RSS before → with them | peak RSS at 64 conns |\n\
             |---|---:|---:|---:|---:|\n",
        );
        for row in memory {
            let (per, accepted, rss) = match row.idle {
                Some(idle) => (
                    idle.bytes_per_connection()
                        .map_or("n/a".to_owned(), |bytes| {
                            format!("{:.2} KiB", bytes / 1024.0)
                        }),
                    format!("{} of {}", idle.accepted, idle.wanted),
                    format!(
                        "{:.1} → {:.1} MiB",
                        idle.rss_before_kib as f64 / 1024.0,
                        idle.rss_after_kib as f64 / 1024.0
                    ),
                ),
                None => ("not measured".to_owned(), "-".to_owned(), "-".to_owned()),
            };
            let peak = row
                .peak_64_mib
                .map_or("-".to_owned(), |mib| format!("{mib:.1} MiB"));
            let _ = writeln!(
                out,
                "| {} | {per} | {accepted} | {rss} | {peak} |",
                row.contender.name
            );
        }
    }
    out
}

/// How far (as a share of the median) a per-round CPU ratio may stray before it is called
/// unsteady.
const UNSTEADY: f64 = 0.10;

/// `server load` for every row whose CPU/request ratio to tokio strays more than [`UNSTEADY`]
/// from its median in some round.
fn unstable_cpu(tables: &[Table]) -> Vec<String> {
    let mut found = Vec::new();
    for table in tables {
        for row in &table.rows {
            let Some(ratio) = row.cpu_us.and_then(|figure| figure.ratio) else {
                continue;
            };
            let stray = (ratio.hi - ratio.mid).max(ratio.mid - ratio.lo);
            if ratio.mid > 0.0 && stray / ratio.mid > UNSTEADY {
                found.push(format!("{} {}", row.contender.name, table.load.name()));
            }
        }
    }
    found
}

/// A ratio with its range: `0.80x (0.75–0.86)`.
fn times(ratio: Spread) -> String {
    let (lo, hi) = (format!("{:.2}", ratio.lo), format!("{:.2}", ratio.hi));
    if lo == hi {
        format!("{:.2}x", ratio.mid)
    } else {
        format!("{:.2}x ({lo}–{hi})", ratio.mid)
    }
}

/// One table cell: the value with its range and, if given, its ratio; `failed` when no run
/// gave the figure.
fn cell(figure: Option<Figure>, ratio: Option<String>, show: impl Fn(f64) -> String) -> String {
    let Some(Figure { value, .. }) = figure else {
        return "failed".to_owned();
    };
    let mut text = show(value.mid);
    let (lo, hi) = (show(value.lo), show(value.hi));
    if lo != hi {
        let _ = write!(text, " ({lo}–{hi})");
    }
    if let Some(ratio) = ratio {
        let _ = write!(text, ", {ratio}");
    }
    text
}

/// One checked target figure.
#[derive(Debug)]
pub(super) struct Check {
    group: String,
    load: Load,
    what: &'static str,
    value: Option<f64>,
    limit: f64,
    /// Whether `value` must be at least (true) or at most (false) `limit`.
    at_least: bool,
}

impl Check {
    fn met(&self) -> bool {
        self.value.is_some_and(|value| {
            if self.at_least {
                value >= self.limit
            } else {
                value <= self.limit
            }
        })
    }
}

/// The verdict on every target: printed lines and the checks behind them.
#[derive(Debug, Default)]
pub(super) struct Verdicts {
    pub(super) lines: Vec<String>,
    checks: Vec<Check>,
    /// (group, role, loads served, met on all four loads).
    overall: Vec<(String, Role, usize, bool)>,
}

/// Checks each fio contender group (contenders whose names share the part before the first
/// `-`) against the target of its role, on each of the four loads.
pub(super) fn verdicts(tables: &[Table]) -> Verdicts {
    let mut verdicts = Verdicts::default();
    let mut groups: Vec<(String, Role)> = Vec::new();
    let held = |role: Role| matches!(role, Role::Uring | Role::Epoll);
    for contender in CONTENDERS.iter().filter(|c| held(c.role)) {
        let group = (group_of(contender.name), contender.role);
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    if groups.is_empty() {
        verdicts
            .lines
            .push("targets: no fio contender to check yet".to_owned());
        return verdicts;
    }
    verdicts.lines.push(
        "targets (same run, medians): io_uring: req/s >= 1.00x tokio, CPU/req <= 1.00x tokio \
         and <= 1.03x the bare io-uring loop, syscalls/req <= 0.126 wrk / 0.012 wrk-P16 / \
         0.15 redis-P1 / 0.017 redis-P16; epoll: CPU/req <= 1.00x tokio; on all four loads"
            .to_owned(),
    );
    for (group, role) in groups {
        let mut served = 0;
        let mut all_met = true;
        for load in Load::ALL {
            let row = tables
                .iter()
                .filter(|table| table.load == load)
                .flat_map(|table| &table.rows)
                .find(|row| row.contender.role == role && group_of(row.contender.name) == group);
            let Some(row) = row else {
                all_met = false;
                verdicts.lines.push(format!(
                    "  {group} [{}] {}: not served",
                    role_name(role),
                    load.name()
                ));
                continue;
            };
            served += 1;
            let check = |what, value, limit, at_least| Check {
                group: group.clone(),
                load,
                what,
                value,
                limit,
                at_least,
            };
            let ratio = |figure: Option<Figure>| figure.and_then(|f| f.ratio).map(|r| r.mid);
            let checks = if role == Role::Uring {
                let floor_ratio = row.cpu_us.and_then(|f| f.floor).map(|r| r.mid);
                vec![
                    check("req_per_s_ratio", ratio(row.per_second), 1.0, true),
                    check("cpu_per_req_ratio", ratio(row.cpu_us), 1.0, false),
                    check("cpu_per_req_floor_ratio", floor_ratio, 1.03, false),
                    check(
                        "syscalls_per_req",
                        row.syscalls.map(|f| f.value.mid),
                        uring_syscall_limit(load),
                        false,
                    ),
                ]
            } else {
                vec![check("cpu_per_req_ratio", ratio(row.cpu_us), 1.0, false)]
            };
            let shown: Vec<String> = checks
                .iter()
                .map(|check| {
                    let value = check
                        .value
                        .map_or("missing".to_owned(), |v| format!("{v:.3}"));
                    let op = if check.at_least { ">=" } else { "<=" };
                    let verdict = if check.met() { "ok" } else { "MISSED" };
                    format!("{} {value} {op} {} {verdict}", check.what, check.limit)
                })
                .collect();
            all_met &= checks.iter().all(Check::met);
            verdicts.lines.push(format!(
                "  {group} [{}] {}: {}",
                role_name(role),
                load.name(),
                shown.join(", ")
            ));
            verdicts.checks.extend(checks);
        }
        let verdict = if all_met { "MET" } else { "NOT MET" };
        verdicts.lines.push(format!(
            "  {group} [{}]: target {verdict} (serves {served} of the 4 loads)",
            role_name(role)
        ));
        verdicts.overall.push((group, role, served, all_met));
    }
    verdicts
}

/// The memory target (issue "fio-reactor fast path"): at most 1 KiB of user memory per idle
/// connection for every fio server, and an io_uring server's peak RSS under 64 loaded
/// connections no more than tokio's for the same protocol. One line per fio server.
pub(super) fn memory_verdicts(memory: &[MemoryRow]) -> Vec<String> {
    let verdict = |met: bool| if met { "ok" } else { "MISSED" };
    let baseline_peak = |protocol: Protocol| {
        memory
            .iter()
            .find(|row| {
                row.contender.role == Role::Baseline && row.contender.serves.contains(&protocol)
            })
            .and_then(|row| row.peak_64_mib)
    };
    let mut lines = vec![
        "memory targets: <= 1 KiB per idle connection (io_uring and epoll); io_uring peak RSS \
         at 64 connections <= tokio's"
            .to_owned(),
    ];
    for row in memory
        .iter()
        .filter(|row| matches!(row.contender.role, Role::Uring | Role::Epoll))
    {
        let idle = match row.idle.as_ref().and_then(IdleMemory::bytes_per_connection) {
            Some(bytes) => format!(
                "{:.2} KiB per idle connection <= 1 {}",
                bytes / 1024.0,
                verdict(bytes <= 1024.0)
            ),
            None => "per idle connection not measured".to_owned(),
        };
        let mut shown = vec![idle];
        if row.contender.role == Role::Uring {
            let tokio = row.contender.serves.first().and_then(|&p| baseline_peak(p));
            shown.push(match (row.peak_64_mib, tokio) {
                (Some(peak), Some(tokio)) => format!(
                    "peak {peak:.1} MiB <= tokio's {tokio:.1} {}",
                    verdict(peak <= tokio)
                ),
                _ => "peak RSS not measured".to_owned(),
            });
        }
        lines.push(format!("  {}: {}", row.contender.name, shown.join(", ")));
    }
    lines
}

/// The io_uring target's system calls per request on `load`: no more than the engine made when
/// the target was set (issue "fio-reactor fast path", under strace), and at most 0.15 at depth
/// 1 on the echo load, where the bare loop itself makes about 0.29.
fn uring_syscall_limit(load: Load) -> f64 {
    match load {
        Load::Wrk => 0.126,
        Load::WrkPipelined => 0.012,
        Load::RedisP1 => 0.15,
        Load::RedisP16 => 0.017,
    }
}

/// The part of a contender name before its first `-`: `uring-echo` and `uring-http` are one.
fn group_of(name: &str) -> String {
    name.split('-').next().unwrap_or(name).to_owned()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Baseline => "baseline",
        Role::Floor => "floor",
        Role::Uring => "io_uring",
        Role::Epoll => "epoll",
    }
}

/// The tables and verdicts as JSON, written to `load.json`.
pub(super) fn json(
    tables: &[Table],
    memory: &[MemoryRow],
    verdicts: &Verdicts,
    sizes: &Sizes,
    ticks: u64,
) -> String {
    let mut out = format!(
        "{{\n  \"rounds\": {},\n  \"strace_repeats\": {},\n  \"clock_ticks_per_s\": {ticks},\n  \
         \"loads\": [",
        sizes.rounds, sizes.strace_repeats
    );
    for (t, table) in tables.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n    {{\"load\": {}, \"title\": {}, \"baseline\": {}, \"floor\": {}, \"rows\": [",
            if t == 0 { "" } else { "," },
            string(table.load.name()),
            string(table.load.title()),
            table.baseline.map_or("null".to_owned(), string),
            table.floor.map_or("null".to_owned(), string)
        );
        for (r, row) in table.rows.iter().enumerate() {
            let _ = write!(
                out,
                "{}\n      {{\"server\": {}, \"runs\": {}, \"rounds\": {}, \"req_per_s\": {}, \
                 \"p99_ms\": {}, \"cpu_us_per_req\": {}, \"syscalls_per_req\": {}, \
                 \"peak_rss_mib\": {}}}",
                if r == 0 { "" } else { "," },
                string(row.contender.name),
                row.succeeded,
                row.rounds,
                figure_json(row.per_second),
                figure_json(row.p99_ms),
                figure_json(row.cpu_us),
                figure_json(row.syscalls),
                figure_json(row.rss_mib),
            );
        }
        out.push_str("\n    ]}");
    }
    out.push_str("\n  ],\n  \"memory\": [");
    for (m, row) in memory.iter().enumerate() {
        let idle = row.idle.map_or("null".to_owned(), |idle| {
            format!(
                "{{\"wanted\": {}, \"opened\": {}, \"accepted\": {}, \"rss_before_kib\": {}, \
                 \"rss_after_kib\": {}, \"bytes_per_connection\": {}}}",
                idle.wanted,
                idle.opened,
                idle.accepted,
                idle.rss_before_kib,
                idle.rss_after_kib,
                number(idle.bytes_per_connection())
            )
        });
        let _ = write!(
            out,
            "{}\n    {{\"server\": {}, \"idle\": {idle}, \"peak_rss_mib_64\": {}}}",
            if m == 0 { "" } else { "," },
            string(row.contender.name),
            number(row.peak_64_mib)
        );
    }
    out.push_str("\n  ],\n  \"target_checks\": [");
    for (c, check) in verdicts.checks.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n    {{\"group\": {}, \"load\": {}, \"check\": {}, \"value\": {}, \"{}\": {}, \
             \"met\": {}}}",
            if c == 0 { "" } else { "," },
            string(&check.group),
            string(check.load.name()),
            string(check.what),
            number(check.value),
            if check.at_least { "min" } else { "max" },
            check.limit,
            check.met()
        );
    }
    out.push_str("\n  ],\n  \"targets\": [");
    for (o, (group, role, served, met)) in verdicts.overall.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n    {{\"group\": {}, \"engine\": {}, \"loads_served\": {served}, \"met\": {met}}}",
            if o == 0 { "" } else { "," },
            string(group),
            string(role_name(*role))
        );
    }
    out.push_str("\n  ]\n}\n");
    out
}

fn figure_json(figure: Option<Figure>) -> String {
    match figure {
        None => "null".to_owned(),
        Some(figure) => format!(
            "{{\"value\": {}, \"ratio\": {}, \"ratio_to_floor\": {}}}",
            spread_json(Some(figure.value)),
            spread_json(figure.ratio),
            spread_json(figure.floor)
        ),
    }
}

/// A median with its range as `{"median", "min", "max"}`, or null.
fn spread_json(spread: Option<Spread>) -> String {
    spread.map_or("null".to_owned(), |spread| {
        format!(
            "{{\"median\": {}, \"min\": {}, \"max\": {}}}",
            number(Some(spread.mid)),
            number(Some(spread.lo)),
            number(Some(spread.hi))
        )
    })
}

/// A JSON number, or null for a missing or non-finite one.
fn number(value: Option<f64>) -> String {
    match value {
        Some(value) if value.is_finite() => format!("{value:.6}"),
        _ => "null".to_owned(),
    }
}

/// A JSON string literal.
fn string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(per_second: f64, p99_ms: Option<f64>) -> Option<Run> {
        Some(Run {
            per_second,
            p99_ms,
            cpu_us_per_request: 1.0,
            peak_rss_mib: 1.0,
        })
    }

    /// A run that took `cpu` µs per request.
    fn cpu_run(cpu: f64) -> Option<Run> {
        Some(Run {
            per_second: 1.0,
            p99_ms: None,
            cpu_us_per_request: cpu,
            peak_rss_mib: 1.0,
        })
    }

    #[test]
    fn medians_of_odd_even_and_empty_sets() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        // Round 2 of the contender failed: its ratio is left out, not paired with round 3.
        let runs = [run(110.0, None), None, run(300.0, Some(1.0))];
        let base = vec![run(100.0, None), run(1000.0, None), run(200.0, Some(2.0))];
        let floor = vec![run(55.0, None), None, run(150.0, None)];
        let rate = figure(&runs, Some(&base), Some(&floor), |r| Some(r.per_second)).unwrap();
        assert_eq!(rate.value.mid, 205.0);
        assert_eq!((rate.value.lo, rate.value.hi), (110.0, 300.0));
        let ratio = rate.ratio.unwrap();
        assert_eq!(ratio.mid, (1.1 + 1.5) / 2.0);
        assert_eq!((ratio.lo, ratio.hi), (1.1, 1.5));
        assert_eq!(rate.floor.unwrap().mid, 2.0);
        let p99 = figure(&runs, Some(&base), None, |r| r.p99_ms).unwrap();
        assert_eq!(p99.value.mid, 1.0);
        assert_eq!(p99.ratio.unwrap().mid, 0.5);
        assert!(p99.floor.is_none());
        assert!(figure(&[None], Some(&base), None, |r| Some(r.per_second)).is_none());
    }

    #[test]
    fn cells_show_value_and_ratio() {
        let spread = |mid, lo, hi| Spread { mid, lo, hi };
        let figure = Figure {
            value: spread(7.654, 7.0, 8.0),
            ratio: Some(spread(0.8, 0.75, 0.86)),
            floor: None,
        };
        let shown = cell(Some(figure), figure.ratio.map(times), |v| format!("{v:.2}"));
        assert_eq!(shown, "7.65 (7.00–8.00), 0.80x (0.75–0.86)");
        assert_eq!(times(spread(1.0, 1.0, 1.0)), "1.00x");
        assert_eq!(cell(None, None, |v| v.to_string()), "failed");
    }

    #[test]
    fn a_wide_cpu_ratio_spread_is_called_unsteady() {
        let mut results = Results::default();
        // tokio-echo, bare-echo and ring-echo, by their places in CONTENDERS.
        let rows = [
            (0, [1.0, 1.0, 1.0]),
            (2, [1.0, 1.05, 0.98]),
            (4, [1.0, 1.5, 1.0]),
        ];
        for (index, runs) in rows {
            assert!(CONTENDERS[index].name.ends_with("-echo"));
            let runs = runs.into_iter().map(cpu_run).collect();
            results.timed.insert((index, Load::RedisP1), runs);
        }
        assert_eq!(unstable_cpu(&results.tables()), ["ring-echo redis-P1"]);
    }

    #[test]
    fn the_uring_target_holds_cpu_to_the_floor_and_syscalls_to_each_load() {
        let mut results = Results::default();
        // tokio-echo, bare-echo and uring-echo, by their places in CONTENDERS: level with
        // tokio, 5% above the floor.
        for (index, runs) in [(0, 1.0), (2, 0.95), (5, 1.0)] {
            assert!(CONTENDERS[index].name.ends_with("-echo"));
            results
                .timed
                .insert((index, Load::RedisP1), vec![cpu_run(runs)]);
        }
        let traced = SyscallCount {
            loaded: 114,
            idle: 100,
            requests: 100,
        };
        results
            .syscalls
            .insert((5, Load::RedisP1), vec![Some(traced)]);
        let verdicts = verdicts(&results.tables());
        let line = verdicts
            .lines
            .iter()
            .find(|line| line.contains("uring [io_uring] redis-P1"))
            .expect("a redis-P1 verdict line");
        assert!(line.contains("cpu_per_req_ratio 1.000 <= 1 ok"), "{line}");
        assert!(
            line.contains("cpu_per_req_floor_ratio 1.053 <= 1.03 MISSED"),
            "{line}"
        );
        assert!(line.contains("syscalls_per_req 0.140 <= 0.15 ok"), "{line}");
    }

    #[test]
    fn memory_verdicts_hold_idle_connections_to_1_kib_and_uring_peaks_to_tokio() {
        let idle = |kib_per_connection: u64| IdleMemory {
            wanted: 100,
            opened: 100,
            accepted: 100,
            rss_before_kib: 1000,
            rss_after_kib: 1000 + kib_per_connection * 100 / 2,
        };
        let row = |name: &str, idle, peak| MemoryRow {
            contender: CONTENDERS.iter().find(|c| c.name == name).unwrap(),
            idle,
            peak_64_mib: peak,
        };
        let memory = [
            row("tokio-echo", Some(idle(1)), Some(5.0)),
            row("uring-echo", Some(idle(1)), Some(4.0)),
            row("epoll-echo", Some(idle(4)), Some(9.0)),
            row("uring-http", None, Some(6.0)),
        ];
        let lines = memory_verdicts(&memory);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(
            lines[1],
            "  uring-echo: 0.50 KiB per idle connection <= 1 ok, peak 4.0 MiB <= tokio's 5.0 ok"
        );
        assert_eq!(
            lines[2],
            "  epoll-echo: 2.00 KiB per idle connection <= 1 MISSED"
        );
        assert!(lines[3].contains("not measured"), "{}", lines[3]);
        assert!(lines[3].contains("peak RSS not measured"), "{}", lines[3]);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(number(Some(f64::NAN)), "null");
    }
}
