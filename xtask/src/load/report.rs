//! The load benchmark's results: per-load tables of medians and same-run ratios to the tokio
//! baseline, as Markdown and JSON, and the verdict on each performance target.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::{CONTENDERS, Contender, Load, Role, Run, Sizes, SyscallCount};

/// Everything measured, keyed by (index in [`CONTENDERS`], load).
#[derive(Debug, Default)]
pub(super) struct Results {
    /// One entry per round; `None` where the run failed.
    pub(super) timed: BTreeMap<(usize, Load), Vec<Option<Run>>>,
    /// The traced run; `None` where it failed.
    pub(super) syscalls: BTreeMap<(usize, Load), Option<SyscallCount>>,
}

/// A median and the median of its per-round ratios to the baseline.
#[derive(Debug, Clone, Copy)]
pub(super) struct Figure {
    value: f64,
    /// None when the baseline has no figure to compare with.
    ratio: Option<f64>,
}

/// One server's row in a load's table.
#[derive(Debug)]
pub(super) struct Row {
    contender: &'static Contender,
    /// Rounds whose run succeeded, out of `rounds`.
    succeeded: usize,
    rounds: usize,
    per_second: Option<Figure>,
    p99_ms: Option<Figure>,
    cpu_us: Option<Figure>,
    syscalls: Option<Figure>,
    rss_mib: Option<Figure>,
}

/// One load's table.
#[derive(Debug)]
pub(super) struct Table {
    load: Load,
    baseline: Option<&'static str>,
    rows: Vec<Row>,
}

impl Results {
    /// How many runs (timed or traced) failed.
    pub(super) fn failures(&self) -> usize {
        let timed = self.timed.values().flatten().filter(|run| run.is_none());
        let traced = self.syscalls.values().filter(|count| count.is_none());
        timed.count() + traced.count()
    }

    /// One table per load that some contender serves.
    pub(super) fn tables(&self) -> Vec<Table> {
        let mut tables = Vec::new();
        for load in Load::ALL {
            let baseline = CONTENDERS.iter().position(|contender| {
                contender.role == Role::Baseline && contender.serves.contains(&load.protocol())
            });
            let base_runs = baseline.and_then(|index| self.timed.get(&(index, load)));
            let base_syscalls = baseline
                .and_then(|index| self.syscalls.get(&(index, load)).copied().flatten())
                .map(|count| count.per_request());
            let mut rows = Vec::new();
            for (index, contender) in CONTENDERS.iter().enumerate() {
                let Some(runs) = self.timed.get(&(index, load)) else {
                    continue;
                };
                let figure = |pick: fn(&Run) -> Option<f64>| figure(runs, base_runs, pick);
                let syscalls = self
                    .syscalls
                    .get(&(index, load))
                    .copied()
                    .flatten()
                    .map(|count| {
                        let value = count.per_request();
                        let ratio = base_syscalls.filter(|&base| base > 0.0).map(|b| value / b);
                        Figure { value, ratio }
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
                    rows,
                });
            }
        }
        tables
    }
}

/// The median of one figure over the rounds, and the median of its ratio to the baseline's
/// figure of the same round.
fn figure(
    runs: &[Option<Run>],
    base_runs: Option<&Vec<Option<Run>>>,
    pick: fn(&Run) -> Option<f64>,
) -> Option<Figure> {
    let values: Vec<f64> = runs.iter().flatten().filter_map(pick).collect();
    let value = median(&values)?;
    let ratios: Vec<f64> = match base_runs {
        Some(base_runs) => runs
            .iter()
            .zip(base_runs)
            .filter_map(|(run, base)| {
                let (run, base) = (pick(run.as_ref()?)?, pick(base.as_ref()?)?);
                (base > 0.0).then(|| run / base)
            })
            .collect(),
        None => Vec::new(),
    };
    Some(Figure {
        value,
        ratio: median(&ratios),
    })
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
pub(super) fn markdown(tables: &[Table], sizes: &Sizes, elapsed: Duration) -> String {
    let mut out = String::from("# Loopback load benchmark\n\n");
    let _ = writeln!(
        out,
        "{} round(s){}, server pinned to cpu 0 and load generator to cpu 1, 64 connections. \
         Figures are medians over the rounds; (x) is the median of the per-round ratios to the \
         tokio baseline of the same run. System calls come from one `strace -f -c` run per \
         server and load, net of an idle start and stop. Took {:.0?}.",
        sizes.rounds,
        if sizes.rounds == 1 { " (--quick)" } else { "" },
        elapsed
    );
    for table in tables {
        let _ = writeln!(
            out,
            "\n## {}: {} (baseline {})\n",
            table.load.name(),
            table.load.title(),
            table.baseline.unwrap_or("missing")
        );
        out.push_str("| server | req/s | p99 | CPU µs/req | syscalls/req | peak RSS MiB |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|\n");
        for row in &table.rows {
            let name = if row.succeeded == row.rounds {
                row.contender.name.to_owned()
            } else {
                format!(
                    "{} ({}/{} runs)",
                    row.contender.name, row.succeeded, row.rounds
                )
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} |",
                cell(row.per_second, |v| format!("{v:.0}")),
                match row.p99_ms {
                    None if table.load == Load::WrkPipelined => "n/a".to_owned(),
                    p99 => cell(p99, |v| format!("{v:.2} ms")),
                },
                cell(row.cpu_us, |v| format!("{v:.2}")),
                cell(row.syscalls, |v| format!("{v:.3}")),
                cell(row.rss_mib, |v| format!("{v:.1}")),
            );
        }
    }
    out
}

/// One table cell: the value and its ratio, or `failed` when no run gave the figure.
fn cell(figure: Option<Figure>, show: impl Fn(f64) -> String) -> String {
    match figure {
        None => "failed".to_owned(),
        Some(Figure { value, ratio }) => match ratio {
            Some(ratio) => format!("{} ({ratio:.2}x)", show(value)),
            None => show(value),
        },
    }
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
    for contender in CONTENDERS.iter().filter(|c| c.role != Role::Baseline) {
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
        "targets (same run, medians): io_uring: req/s >= 1.00x tokio, CPU/req <= 0.85x tokio, \
         syscalls/req <= 0.1 plain / 0.02 pipelined; epoll: CPU/req <= 1.00x tokio; on all four loads"
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
            let ratio = |figure: Option<Figure>| figure.and_then(|f| f.ratio);
            let checks = if role == Role::Uring {
                let syscall_limit = if load.pipelined() { 0.02 } else { 0.1 };
                vec![
                    check("req_per_s_ratio", ratio(row.per_second), 1.0, true),
                    check("cpu_per_req_ratio", ratio(row.cpu_us), 0.85, false),
                    check(
                        "syscalls_per_req",
                        row.syscalls.map(|f| f.value),
                        syscall_limit,
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

/// The part of a contender name before its first `-`: `uring-echo` and `uring-http` are one.
fn group_of(name: &str) -> String {
    name.split('-').next().unwrap_or(name).to_owned()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Baseline => "baseline",
        Role::Uring => "io_uring",
        Role::Epoll => "epoll",
    }
}

/// The tables and verdicts as JSON, written to `load.json`.
pub(super) fn json(tables: &[Table], verdicts: &Verdicts, sizes: &Sizes, ticks: u64) -> String {
    let mut out = format!(
        "{{\n  \"rounds\": {},\n  \"clock_ticks_per_s\": {ticks},\n  \"loads\": [",
        sizes.rounds
    );
    for (t, table) in tables.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n    {{\"load\": {}, \"title\": {}, \"baseline\": {}, \"rows\": [",
            if t == 0 { "" } else { "," },
            string(table.load.name()),
            string(table.load.title()),
            table.baseline.map_or("null".to_owned(), string)
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
            "{{\"value\": {}, \"ratio\": {}}}",
            number(Some(figure.value)),
            number(figure.ratio)
        ),
    }
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
        let rate = figure(&runs, Some(&base), |r| Some(r.per_second)).unwrap();
        assert_eq!(rate.value, 205.0);
        assert_eq!(rate.ratio, Some((1.1 + 1.5) / 2.0));
        let p99 = figure(&runs, Some(&base), |r| r.p99_ms).unwrap();
        assert_eq!((p99.value, p99.ratio), (1.0, Some(0.5)));
        assert!(figure(&[None], Some(&base), |r| Some(r.per_second)).is_none());
    }

    #[test]
    fn cells_show_value_and_ratio() {
        let shown = cell(
            Some(Figure {
                value: 7.654,
                ratio: Some(0.8),
            }),
            |v| format!("{v:.2}"),
        );
        assert_eq!(shown, "7.65 (0.80x)");
        assert_eq!(cell(None, |v| v.to_string()), "failed");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(number(Some(f64::NAN)), "null");
    }
}
