//! Parsers for what the load benchmark reads: `wrk` and `redis-benchmark --csv` reports,
//! `/proc/PID/stat` and `/proc/PID/status`, and `strace -c` summaries.
//!
//! Each takes the text as the tool printed it and returns `None` or an error message when the
//! text is not what the tool prints, so a new tool version fails loudly instead of reporting
//! zeros. The samples in the tests were captured from the real tools (wrk 4.1, redis-benchmark
//! 7.0, strace 6.1, Linux 6.18).

use super::ClientReport;

/// Parses `wrk --latency` output: total requests, requests/s and, if `with_latency`, the 99th
/// percentile (pipelined runs pass false: wrk times a whole pipelined write, not a request).
///
/// Non-2xx responses fail the run: a server that answers wrongly is not being measured.
pub(super) fn parse_wrk(output: &str, with_latency: bool) -> Result<ClientReport, String> {
    let mut requests = None;
    let mut per_second = None;
    let mut p99_ms = None;
    let mut in_distribution = false;
    for line in output.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if line.contains(" requests in ") {
            requests = first.parse::<u64>().ok();
        } else if let Some(rate) = line.strip_prefix("Requests/sec:") {
            per_second = rate.trim().parse::<f64>().ok();
        } else if line.starts_with("Latency Distribution") {
            in_distribution = true;
        } else if in_distribution && first == "99%" {
            p99_ms = words.next().and_then(parse_wrk_duration_ms);
        } else if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            return Err(format!("wrk got {} non-2xx responses", count.trim()));
        }
    }
    let requests = requests.ok_or("no `N requests in` line in wrk's output")?;
    let per_second = per_second.ok_or("no `Requests/sec:` line in wrk's output")?;
    let p99_ms = match (with_latency, p99_ms) {
        (false, _) => None,
        (true, Some(ms)) => Some(ms),
        (true, None) => return Err("no 99% line in wrk's latency distribution".into()),
    };
    Ok(ClientReport {
        requests,
        per_second,
        p99_ms,
    })
}

/// Parses one of wrk's durations (`570.00us`, `1.06ms`, `2.00s`, `1.50m`) into milliseconds.
fn parse_wrk_duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    number.parse::<f64>().ok().map(|value| value * scale)
}

/// Parses `redis-benchmark --csv` output for the `PING_MBULK` test; `requests` is the `-n`
/// the run was given (the CSV does not repeat it).
///
/// The columns are found by their header names, so an older redis-benchmark that prints only
/// `"test","rps"` still gives requests/s, with no p99.
pub(super) fn parse_redis_csv(output: &str, requests: u64) -> Result<ClientReport, String> {
    // Progress lines end in '\r' rather than '\n' on a terminal; split on both.
    let lines: Vec<&str> = output.split(['\n', '\r']).map(str::trim).collect();
    let header: Vec<&str> = lines
        .iter()
        .find(|line| line.starts_with("\"test\""))
        .map(|line| csv_fields(line))
        .unwrap_or_else(|| vec!["test", "rps"]);
    let row = lines
        .iter()
        .find(|line| line.starts_with("\"PING_MBULK\""))
        .map(|line| csv_fields(line))
        .ok_or("no PING_MBULK row in redis-benchmark's CSV output")?;
    let column = |name: &str| {
        let index = header.iter().position(|field| *field == name)?;
        row.get(index)?.parse::<f64>().ok()
    };
    let per_second = column("rps").ok_or("no rps column in redis-benchmark's CSV output")?;
    Ok(ClientReport {
        requests,
        per_second,
        p99_ms: column("p99_latency_ms"),
    })
}

/// The fields of one CSV line whose fields are all quoted and free of commas and quotes.
fn csv_fields(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|field| field.trim().trim_matches('"'))
        .collect()
}

/// `utime + stime` (fields 14 and 15, clock ticks) from `/proc/PID/stat`.
///
/// The second field is the command name in parentheses, which may itself hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub(super) fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name come field 3 (state) onwards: field N is at index N - 3.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// The peak resident set size (`VmHWM`, KiB) from `/proc/PID/status`.
pub(super) fn parse_vm_hwm_kib(status: &str) -> Option<u64> {
    status_field(status, "VmHWM:")?.first()?.parse().ok()
}

/// The current resident set size (`VmRSS`, KiB) from `/proc/PID/status`.
pub(super) fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    status_field(status, "VmRSS:")?.first()?.parse().ok()
}

/// The soft and hard `Max open files` limits from `/proc/PID/limits` (`None` for unlimited).
pub(super) fn parse_open_files_limit(limits: &str) -> Option<(Option<u64>, Option<u64>)> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let mut words = line["Max open files".len()..].split_whitespace();
    let mut limit = || -> Option<Option<u64>> {
        match words.next()? {
            "unlimited" => Some(None),
            number => number.parse().ok().map(Some),
        }
    };
    Some((limit()?, limit()?))
}

/// The effective user id (the second `Uid:` value) from `/proc/self/status`.
pub(crate) fn effective_uid(status: &str) -> Option<u32> {
    status_field(status, "Uid:")?.get(1)?.parse().ok()
}

/// The words after `key` on its line of a `/proc/PID/status` file.
pub(crate) fn status_field<'a>(status: &'a str, key: &str) -> Option<Vec<&'a str>> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    Some(line[key.len()..].split_whitespace().collect())
}

/// The total system calls in a `strace -c` summary: the sum of the `calls` column.
///
/// Rows are summed rather than the `total` line read, because the total line's layout has
/// changed between strace versions (older ones leave its `usecs/call` blank), while every
/// syscall row is `% time, seconds, usecs/call, calls, [errors,] syscall`.
pub(super) fn parse_strace_calls(summary: &str) -> Option<u64> {
    let mut lines = summary
        .lines()
        .skip_while(|line| !line.starts_with("% time"));
    lines.next()?;
    let mut total = 0;
    let mut rows = 0;
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("---") || words.last() == Some(&"total") {
            continue;
        }
        if words.len() < 5 {
            return None;
        }
        total += words[3].parse::<u64>().ok()?;
        rows += 1;
    }
    (rows > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wrk -t1 -c64 -d1s --latency` against tokio_http.
    const WRK: &str = r#"Running 1s test @ http://127.0.0.1:38111/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   701.30us  280.28us   5.27ms   91.59%
    Req/Sec    62.60k     7.13k   74.14k    70.00%
  Latency Distribution
     50%  681.00us
     75%  811.00us
     90%    0.90ms
     99%    1.07ms
  62166 requests in 1.00s, 4.45MB read
Requests/sec:  62044.58
Transfer/sec:      4.44MB
"#;

    /// The same with `-s pipeline.lua`: note the meaningless `99% 0.00us`.
    const WRK_PIPELINED: &str = r#"Running 1s test @ http://127.0.0.1:38111/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   468.16us  244.82us   2.57ms   61.18%
    Req/Sec   849.08k    78.71k    0.96M    60.00%
  Latency Distribution
     50%  510.00us
     75%  728.00us
     90%    1.04ms
     99%    0.00us
  843872 requests in 1.00s, 60.36MB read
Requests/sec: 840808.93
Transfer/sec:     60.14MB
"#;

    /// `redis-benchmark -t ping_mbulk -c 64 -P 16 -n 100000 --csv` against tokio_echo.
    const REDIS_CSV: &str = r#""test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"PING_MBULK","495049.50","1.348","0.304","0.999","4.935","13.823","13.935"
"#;

    /// `/proc/PID/stat` of tokio_echo after a load.
    const STAT: &str = r#"15427 (tokio_echo) S 1 15422 20231 0 -1 4194304 896 0 2 0 0 5 0 0 20 0 1 0 273297 3366912 605 18446744073709551615 94208711223792 94208711600848 140729512188752 0 0 0 0 4102 1088 1 0 0 17 1 0 0 0 0 0 94208711627296 94208711629824 94209286701056 140729512196726 140729512196784 140729512196784 140729512198091 0"#;

    /// Lines of `/proc/PID/status` of the same process.
    const STATUS: &str = "Name:\ttokio_echo\n\
Uid:\t0\t0\t0\t0\n\
Gid:\t0\t0\t0\t0\n\
VmPeak:\t    7256 kB\n\
VmSize:\t    3288 kB\n\
VmHWM:\t    5100 kB\n\
VmRSS:\t    2484 kB";

    /// `strace -f -c -o FILE` of fio-ring's echo example over a redis-P16 load.
    const STRACE: &str = r#"% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ------------------
 98.69    0.166749          25      6603         1 io_uring_enter
  0.76    0.001279          18        70           close
  0.17    0.000293           5        52        48 openat
  0.10    0.000163           3        48        40 newfstatat
  0.09    0.000159           7        22           mmap
  0.03    0.000053          10         5           read
  0.02    0.000037           7         5           mprotect
  0.02    0.000036          36         1           io_uring_setup
  0.02    0.000027           6         4           io_uring_register
  0.01    0.000025          25         1           write
  0.01    0.000019           9         2           munmap
  0.01    0.000015          15         1           socket
  0.01    0.000012           3         4           madvise
  0.01    0.000012          12         1           bind
  0.01    0.000011           2         5           rt_sigaction
  0.01    0.000010           2         4           brk
  0.00    0.000007           3         2           pread64
  0.00    0.000007           3         2           prlimit64
  0.00    0.000006           3         2           sigaltstack
  0.00    0.000005           5         1           listen
  0.00    0.000005           5         1           setsockopt
  0.00    0.000004           4         1           getrandom
  0.00    0.000003           3         1           poll
  0.00    0.000003           3         1           getsockname
  0.00    0.000003           3         1           uname
  0.00    0.000003           3         1           arch_prctl
  0.00    0.000003           3         1           sched_getaffinity
  0.00    0.000003           3         1           set_tid_address
  0.00    0.000002           2         1           gettid
  0.00    0.000002           2         1           set_robust_list
  0.00    0.000002           2         1           rseq
  0.00    0.000000           0         1         1 access
  0.00    0.000000           0         1           execve
------ ----------- ----------- --------- --------- ------------------
100.00    0.168958          24      6848        90 total
"#;

    #[test]
    fn wrk_reports_requests_rate_and_p99() {
        let report = parse_wrk(WRK, true).unwrap();
        assert_eq!(report.requests, 62166);
        assert_eq!(report.per_second, 62044.58);
        assert_eq!(report.p99_ms, Some(1.07));
    }

    #[test]
    fn pipelined_wrk_has_no_p99() {
        let report = parse_wrk(WRK_PIPELINED, false).unwrap();
        assert_eq!(report.requests, 843872);
        assert_eq!(report.per_second, 840808.93);
        assert_eq!(report.p99_ms, None);
    }

    #[test]
    fn wrk_errors_and_foreign_text_fail() {
        // wrk prints this line after the totals when a server answers with an error status.
        let with_errors = WRK.replace(
            "Requests/sec:",
            "  Non-2xx or 3xx responses: 12\nRequests/sec:",
        );
        assert!(
            parse_wrk(&with_errors, true)
                .unwrap_err()
                .contains("non-2xx")
        );
        assert!(parse_wrk("unable to connect to 127.0.0.1:1", true).is_err());
        let no_distribution: Vec<&str> = WRK.lines().filter(|l| !l.contains("99%")).collect();
        let no_distribution = no_distribution.join("\n");
        assert!(parse_wrk(&no_distribution, true).is_err());
    }

    #[test]
    fn wrk_durations_become_milliseconds() {
        assert_eq!(parse_wrk_duration_ms("681.00us"), Some(0.681));
        assert_eq!(parse_wrk_duration_ms("0.90ms"), Some(0.9));
        assert_eq!(parse_wrk_duration_ms("2.00s"), Some(2000.0));
        assert_eq!(parse_wrk_duration_ms("1.50m"), Some(90_000.0));
        assert_eq!(parse_wrk_duration_ms("1.5"), None);
        assert_eq!(parse_wrk_duration_ms("1.5ns"), None);
    }

    #[test]
    fn redis_csv_gives_rate_and_p99_by_column_name() {
        let report = parse_redis_csv(REDIS_CSV, 100_000).unwrap();
        assert_eq!(report.requests, 100_000);
        assert_eq!(report.per_second, 495049.5);
        assert_eq!(report.p99_ms, Some(13.823));
    }

    #[test]
    fn older_redis_csv_has_no_percentiles() {
        let report = parse_redis_csv("\"PING_MBULK\",\"81037.28\"\n", 10).unwrap();
        assert_eq!(report.per_second, 81037.28);
        assert_eq!(report.p99_ms, None);
        // A progress line ending in '\r' before the row does not hide it.
        let progress = format!("PING_MBULK: rps=0.0 (overall: nan) avg_msec=nan\r{REDIS_CSV}");
        assert_eq!(parse_redis_csv(&progress, 1).unwrap().p99_ms, Some(13.823));
        assert!(parse_redis_csv("Could not connect to Redis", 1).is_err());
    }

    #[test]
    fn stat_gives_user_plus_system_ticks() {
        assert_eq!(parse_stat_cpu_ticks(STAT), Some(5));
        // A command name holding spaces and parentheses shifts nothing.
        let tricky = STAT.replace("(tokio_echo)", "(a) b (c))");
        assert_eq!(parse_stat_cpu_ticks(&tricky), Some(5));
        assert_eq!(parse_stat_cpu_ticks("15427 (x) S 1 2"), None);
    }

    #[test]
    fn status_gives_peak_rss_and_effective_uid() {
        assert_eq!(parse_vm_hwm_kib(STATUS), Some(5100));
        assert_eq!(effective_uid(STATUS), Some(0));
        assert_eq!(effective_uid("Uid:\t1000\t1001\t1000\t1000\n"), Some(1001));
        assert_eq!(parse_vm_hwm_kib("Name:\tx\n"), None);
    }

    #[test]
    fn status_gives_current_rss_and_limits_give_open_files() {
        let status = "Name:\tx\nVmHWM:\t  9000 kB\nVmRSS:\t  8123 kB\n";
        assert_eq!(parse_vm_rss_kib(status), Some(8123));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20000                unlimited            files\n";
        assert_eq!(parse_open_files_limit(limits), Some((Some(20000), None)));
        assert_eq!(parse_open_files_limit("Max processes 1 1"), None);
    }

    #[test]
    fn strace_rows_add_up_to_the_total() {
        assert_eq!(parse_strace_calls(STRACE), Some(6848));
        // Older strace leaves the total line's usecs/call blank; rows are summed either way.
        let old_total = STRACE.replace(
            "100.00    0.168958          24      6848        90 total",
            "100.00    0.168958                  6848        90 total",
        );
        assert_eq!(parse_strace_calls(&old_total), Some(6848));
        assert_eq!(parse_strace_calls(""), None);
        assert_eq!(
            parse_strace_calls("strace: exec: No such file or directory\n"),
            None
        );
    }
}
