//! The TLS load benchmark: fio's TLS echo server against a tokio-rustls echo server with the
//! same rustls `ServerConfig` (ring, TLS 1.3, one self-signed ECDSA P-256 certificate), in
//! the same run.
//!
//! Scenarios: echo of 64-byte messages over 64 connections at depth 1 and 16 (requests per
//! second), and full handshakes (no resumption) from 16 concurrent clients, each
//! connect + handshake + one 1-byte echo + close (handshakes per second). Every scenario gets a
//! fresh server process pinned to cpu 0 (`taskset`, when there is one) and a load generator
//! (a tokio-rustls client on one thread) pinned to cpu 1. The server's CPU (`utime + stime`
//! from `/proc/PID/stat`) per request and its peak RSS (`VmHWM`) are reported, and the
//! ratios fio / tokio-rustls; so is the load generator's CPU per request, which explains a
//! rate its core limits (the same client doing more work, or waiting longer, per answer). Results go to stdout and to `tls.json` / `tls.md` in
//! `FIO_BENCH_DIR` (default `target/bench`).
//!
//! Each scenario runs in interleaved rounds (fio then tokio, tokio then fio, ...), so a noisy
//! neighbour hits both alike; the report gives the medians and, for each ratio, the median of
//! the per-round ratios with their min-max. `FIO_TLS_BENCH_SECONDS` sets each run's length
//! (default 3), `FIO_TLS_BENCH_ROUNDS` the rounds (default 3).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fio_reactor::{Concurrency, ListenArgs, Protocol, Reactor, StartArgs, Uuid};
use fio_tls::rustls;
use fio_tls::{Identity, Tls, TlsBuilder};

/// Which process this is.
const ROLE: &str = "FIO_TLS_BENCH_ROLE";
/// The certificate and key PEM files (for the servers).
const CERT: &str = "FIO_TLS_BENCH_CERT";
const KEY: &str = "FIO_TLS_BENCH_KEY";

/// Connections of the echo scenarios.
const CONNECTIONS: usize = 64;
/// Concurrent clients of the handshake scenario.
const HANDSHAKERS: usize = 16;
/// The echo message size.
const MESSAGE: usize = 64;

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("fio") => fio_server(),
        Ok("tokio") => tokio_server(),
        Ok("client") => client(),
        _ => orchestrate(),
    }
}

/// The servers' configuration: the same rustls `ServerConfig` for both.
fn server_config() -> Arc<rustls::ServerConfig> {
    let cert = std::env::var(CERT).expect("the certificate path");
    let key = std::env::var(KEY).expect("the key path");
    let identity = Identity::from_pem_files(cert, key).expect("the identity");
    TlsBuilder::new()
        .cert_add(None, identity)
        .build()
        .expect("a server")
        .server_config()
        .expect("a server side")
}

/// Echoes what it reads.
struct Echo;

thread_local! {
    /// One read buffer per reactor thread (tokio's echo allocates one per connection): no
    /// 16 KiB zeroing per `on_data`.
    static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 16384]);
}

impl Protocol for Echo {
    fn on_data(&mut self, uuid: Uuid) {
        BUFFER.with_borrow_mut(|buf| {
            for _ in 0..64 {
                match fio_reactor::read(uuid, buf) {
                    Ok(0) | Err(_) => return,
                    Ok(count) => {
                        let _ = fio_reactor::write(uuid, &buf[..count]);
                    }
                }
            }
        });
    }
}

/// fio's TLS echo server, one reactor thread.
fn fio_server() {
    let tls = Tls::server(server_config());
    let reactor = Reactor::new(StartArgs::new().threads(Concurrency::ONE));
    let listener = reactor
        .listen(
            ListenArgs::new("tcp://127.0.0.1:0", |uuid| {
                let _ = fio_reactor::attach(uuid, Echo);
            })
            .tls(tls),
        )
        .expect("listen");
    let port = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .expect("an address")
        .port();
    println!("PORT {port}");
    std::io::stdout().flush().expect("stdout");
    reactor.start().expect("the reactor");
}

/// The tokio-rustls echo server, a current-thread runtime.
fn tokio_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("PORT {}", listener.local_addr().expect("an address").port());
        std::io::stdout().flush().expect("stdout");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = vec![0u8; 16384];
                loop {
                    match stream.read(&mut buf).await {
                        // TLS 1.3 has each side send close_notify before closing its write
                        // side (RFC 8446 6.1), as fio does: the baseline does the same work.
                        Ok(0) => {
                            let _ = stream.shutdown().await;
                            return;
                        }
                        Err(_) => return,
                        Ok(count) => {
                            if stream.write_all(&buf[..count]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}

/// The load generator: `client PORT echo DEPTH SECONDS` or `client PORT handshake SECONDS`.
/// Prints `READY` once its echo connections are up, waits for a line on stdin, runs, and
/// prints `DONE <requests> <milliseconds>`.
fn client() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().expect("a port");
    let handshakes = args[2] == "handshake";
    let depth: usize = if handshakes {
        1
    } else {
        args[3].parse().expect("a depth")
    };
    let seconds: u64 = args.last().unwrap().parse().expect("seconds");
    let mut roots = rustls::RootCertStore::empty();
    let identity =
        Identity::from_pem_files(std::env::var(CERT).unwrap(), std::env::var(KEY).unwrap())
            .unwrap();
    roots.add(identity.chain()[0].clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // Every handshake is a full one.
    config.resumption = rustls::client::Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    runtime.block_on(async move {
        let connect = move |connector: tokio_rustls::TlsConnector,
                            name: rustls::pki_types::ServerName<'static>| async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            tcp.set_nodelay(true).unwrap();
            connector.connect(name, tcp).await.expect("handshake")
        };
        let mut streams = Vec::new();
        if !handshakes {
            for _ in 0..CONNECTIONS {
                streams.push(connect(connector.clone(), name.clone()).await);
            }
        }
        println!("READY");
        std::io::stdout().flush().unwrap();
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).unwrap();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        if handshakes {
            for _ in 0..HANDSHAKERS {
                let (connector, name) = (connector.clone(), name.clone());
                tasks.push(tokio::spawn(async move {
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        let mut stream = connect(connector.clone(), name.clone()).await;
                        stream.write_all(b"x").await.unwrap();
                        let mut byte = [0u8; 1];
                        stream.read_exact(&mut byte).await.unwrap();
                        let _ = stream.shutdown().await;
                        done += 1;
                    }
                    done
                }));
            }
        } else {
            for mut stream in streams {
                tasks.push(tokio::spawn(async move {
                    let batch = vec![b'm'; MESSAGE * depth];
                    let mut back = vec![0u8; MESSAGE * depth];
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        stream.write_all(&batch).await.unwrap();
                        stream.read_exact(&mut back).await.unwrap();
                        done += depth as u64;
                    }
                    done
                }));
            }
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        println!("DONE {total} {}", started.elapsed().as_millis());
    });
}

/// A child process killed on drop.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs this benchmark binary as `role` on `cpu` (pinned with taskset when it exists).
fn spawn_self(role: &str, cpu: usize, args: &[String], env: &[(&str, String)]) -> Kid {
    let exe = std::env::current_exe().expect("the bench binary");
    let taskset = std::path::Path::new("/usr/bin/taskset").exists();
    let mut command = if taskset {
        let mut command = Command::new("/usr/bin/taskset");
        command.arg("-c").arg(cpu.to_string()).arg(&exe);
        command
    } else {
        Command::new(&exe)
    };
    command
        .args(args)
        .env(ROLE, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    Kid(command.spawn().expect("spawn the bench binary"))
}

/// `utime + stime` of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// Peak RSS of `pid` in KiB.
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Clock ticks per second.
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

/// One measurement.
#[derive(Debug, Clone, Copy)]
struct Measure {
    per_second: f64,
    cpu_us_per_request: f64,
    /// The load generator's CPU per request.
    client_cpu_us_per_request: f64,
    rss_kib: u64,
}

impl Measure {
    /// The median of each figure over `rounds` (taken separately).
    fn median(rounds: &[Measure]) -> Measure {
        Measure {
            per_second: Spread::of(&rounds.iter().map(|m| m.per_second).collect::<Vec<_>>()).median,
            cpu_us_per_request: Spread::of(
                &rounds
                    .iter()
                    .map(|m| m.cpu_us_per_request)
                    .collect::<Vec<_>>(),
            )
            .median,
            client_cpu_us_per_request: Spread::of(
                &rounds
                    .iter()
                    .map(|m| m.client_cpu_us_per_request)
                    .collect::<Vec<_>>(),
            )
            .median,
            rss_kib: Spread::of(&rounds.iter().map(|m| m.rss_kib as f64).collect::<Vec<_>>()).median
                as u64,
        }
    }
}

/// A median with the min-max of the values it was taken over.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Spread {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Spread {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }

    fn json(&self) -> String {
        format!(
            "{{\"median\":{:.3},\"min\":{:.3},\"max\":{:.3}}}",
            self.median, self.min, self.max
        )
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2}x ({:.2}-{:.2})", self.median, self.min, self.max)
    }
}

/// A number from the environment, or `default` when unset or unreadable.
fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Reads one line from `out`.
fn line(out: &mut BufReader<ChildStdout>) -> String {
    let mut text = String::new();
    out.read_line(&mut text).expect("a line");
    text
}

/// Runs one scenario against a fresh `server`.
fn run(server: &str, scenario: &[String], env: &[(&str, String)], seconds: u64) -> Measure {
    let mut kid = spawn_self(server, 0, &[], env);
    let mut out = BufReader::new(kid.0.stdout.take().expect("server stdout"));
    let port_line = line(&mut out);
    let port = port_line
        .trim()
        .strip_prefix("PORT ")
        .expect("the server's port")
        .to_owned();
    let pid = kid.0.id();
    let mut args = vec![port];
    args.extend_from_slice(scenario);
    args.push(seconds.to_string());
    let mut client = spawn_self("client", 1, &args, env);
    let mut client_out = BufReader::new(client.0.stdout.take().expect("client stdout"));
    let mut client_in: ChildStdin = client.0.stdin.take().expect("client stdin");
    assert_eq!(line(&mut client_out).trim(), "READY");
    let client_pid = client.0.id();
    let (before, client_before) = (cpu_ticks(pid), cpu_ticks(client_pid));
    writeln!(client_in, "GO").expect("go");
    let done = line(&mut client_out);
    let (after, client_after) = (cpu_ticks(pid), cpu_ticks(client_pid));
    let rss_kib = peak_rss(pid);
    let mut words = done.split_whitespace().skip(1);
    let requests: f64 = words.next().and_then(|w| w.parse().ok()).expect("a count");
    let millis: f64 = words.next().and_then(|w| w.parse().ok()).expect("a time");
    let micros = |ticks: u64| ticks as f64 * 1e6 / clock_ticks() as f64;
    Measure {
        per_second: requests * 1000.0 / millis.max(1.0),
        cpu_us_per_request: micros(after - before) / requests.max(1.0),
        client_cpu_us_per_request: micros(client_after - client_before) / requests.max(1.0),
        rss_kib,
    }
}

fn orchestrate() {
    let seconds: u64 = env_number("FIO_TLS_BENCH_SECONDS", 3);
    let rounds: usize = env_number("FIO_TLS_BENCH_ROUNDS", 3).max(1);
    let only = std::env::var("FIO_TLS_BENCH_SCENARIO").unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("fio-tls-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let identity = Identity::self_signed(&["localhost"]).expect("an identity");
    std::fs::write(dir.join("cert.pem"), identity.cert_pem()).expect("cert");
    std::fs::write(dir.join("key.pem"), identity.key_pem()).expect("key");
    let env = [
        (CERT, dir.join("cert.pem").to_string_lossy().into_owned()),
        (KEY, dir.join("key.pem").to_string_lossy().into_owned()),
    ];
    let scenarios: [(&str, Vec<String>); 3] = [
        (
            "echo, 64 connections, depth 1",
            vec!["echo".into(), "1".into()],
        ),
        (
            "echo, 64 connections, depth 16",
            vec!["echo".into(), "16".into()],
        ),
        ("full handshakes, 16 clients", vec!["handshake".into()]),
    ];
    let mut report = String::from(
        "| scenario | server | per second | CPU µs / request | client CPU µs / request | peak RSS KiB |\n|---|---|---|---|---|---|\n",
    );
    let mut json = Vec::new();
    for (label, scenario) in scenarios.iter().filter(|(label, _)| label.contains(&only)) {
        let (mut fio, mut tokio) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate who goes first, so drift over the run favours neither.
            if round % 2 == 0 {
                fio.push(run("fio", scenario, &env, seconds));
                tokio.push(run("tokio", scenario, &env, seconds));
            } else {
                tokio.push(run("tokio", scenario, &env, seconds));
                fio.push(run("fio", scenario, &env, seconds));
            }
        }
        let (fio_median, tokio_median) = (Measure::median(&fio), Measure::median(&tokio));
        for (server, measure) in [("fio-tls", fio_median), ("tokio-rustls", tokio_median)] {
            report.push_str(&format!(
                "| {label} | {server} | {:.0} | {:.2} | {:.2} | {} |\n",
                measure.per_second,
                measure.cpu_us_per_request,
                measure.client_cpu_us_per_request,
                measure.rss_kib
            ));
        }
        let ratios = |of: fn(&Measure) -> f64| {
            let per_round: Vec<f64> = fio.iter().zip(&tokio).map(|(f, t)| of(f) / of(t)).collect();
            Spread::of(&per_round)
        };
        let throughput = ratios(|m| m.per_second);
        let cpu = ratios(|m| m.cpu_us_per_request);
        let client_cpu = ratios(|m| m.client_cpu_us_per_request);
        let rss = ratios(|m| m.rss_kib.max(1) as f64);
        report.push_str(&format!(
            "| {label} | fio / tokio, median (min-max) of {rounds} rounds | {throughput} | {cpu} | {client_cpu} | {rss} |\n"
        ));
        json.push(format!(
            "{{\"scenario\":\"{label}\",\"rounds\":{rounds},\"fio_per_second\":{:.0},\"tokio_per_second\":{:.0},\"fio_cpu_us\":{:.3},\"tokio_cpu_us\":{:.3},\"fio_client_cpu_us\":{:.3},\"tokio_client_cpu_us\":{:.3},\"fio_rss_kib\":{},\"tokio_rss_kib\":{},\"per_second_ratio\":{},\"cpu_ratio\":{},\"client_cpu_ratio\":{},\"rss_ratio\":{}}}",
            fio_median.per_second,
            tokio_median.per_second,
            fio_median.cpu_us_per_request,
            tokio_median.cpu_us_per_request,
            fio_median.client_cpu_us_per_request,
            tokio_median.client_cpu_us_per_request,
            fio_median.rss_kib,
            tokio_median.rss_kib,
            throughput.json(),
            cpu.json(),
            client_cpu.json(),
            rss.json()
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "\n== TLS load ({rounds} interleaved rounds of {seconds} s per scenario and server; \
         server on cpu 0, load on cpu 1)\n{report}"
    );
    let out_dir = std::env::var("FIO_BENCH_DIR").map_or_else(
        |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench"),
        std::path::PathBuf::from,
    );
    if std::fs::create_dir_all(&out_dir).is_ok() {
        let _ = std::fs::write(out_dir.join("tls.md"), &report);
        let _ = std::fs::write(out_dir.join("tls.json"), format!("[{}]\n", json.join(",")));
    }
}
