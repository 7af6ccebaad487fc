//! The `echo` example, end to end as a client sees it: the spec's protocol (welcome, `Echo: `,
//! `bye`, the timeout prompt, the shutdown message), `--raw` byte echo, and its command line.

#[path = "../examples/echo.rs"]
mod echo;
mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;

use fio_reactor::{Concurrency, Reactor, StartArgs};

use echo::Service;
use fio_examples::support::Options;
use util::{reactor, read_to_end, serve};

/// Lines a client reads at most while waiting for one it expects.
const MAX_LINES: usize = 100;

/// A one-thread reactor under the run's engine, serving `service` on 127.0.0.1:0.
fn server(service: Service) -> (Reactor, SocketAddr) {
    let reactor = reactor(1);
    let listener = echo::listen(&reactor, "tcp://127.0.0.1:0", service).expect("listen");
    let addr = fio_reactor::local_addr(listener)
        .and_then(|addr| addr.as_inet())
        .expect("a TCP listener has an inet address");
    (reactor, addr)
}

/// Reads one `\n`-terminated line.
fn line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a line");
    line
}

/// Reads lines until `expected` (skipping others, such as timeout prompts); returns the lines
/// skipped.
fn wait_for(reader: &mut impl BufRead, expected: &str) -> Vec<String> {
    let mut skipped = Vec::new();
    for _ in 0..MAX_LINES {
        let next = line(reader);
        assert!(!next.is_empty(), "end of stream before {expected:?}");
        if next == expected {
            return skipped;
        }
        skipped.push(next);
    }
    panic!("{expected:?} never came; got {skipped:?}");
}

#[test]
fn welcome_echo_and_bye() {
    let (reactor, addr) = server(Service::SPEC);
    let (welcome, echoed, farewell) = serve(&reactor, addr, |stream| {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let welcome = line(&mut reader);
        writer.write_all(b"hello\n").unwrap();
        let echoed = line(&mut reader);
        writer.write_all(b"ByE now\n").unwrap();
        let mut farewell = Vec::new();
        reader.read_to_end(&mut farewell).unwrap();
        (welcome, echoed, farewell)
    });
    assert_eq!(welcome, "Echo Service: Welcome\n");
    assert_eq!(echoed, "Echo: hello\n");
    // `bye` in any case: the echo, `Goodbye.`, then the server closes.
    assert_eq!(farewell, b"Echo: ByE now\nGoodbye.\n");
}

#[test]
fn an_idle_client_is_asked_and_stays_connected() {
    // The spec's timeout is 5 s; 1 s keeps the test short (the timer is checked once a second).
    let (reactor, addr) = server(Service {
        raw: false,
        timeout: Some(std::time::Duration::from_secs(1)),
    });
    let skipped = serve(&reactor, addr, |stream| {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        assert_eq!(line(&mut reader), "Echo Service: Welcome\n");
        // The client stays silent until the prompt comes (the read blocks for it).
        assert_eq!(line(&mut reader), "Server: Are you there?\n");
        // Still open: the next message is echoed (more prompts may come first).
        writer.write_all(b"still here\n").unwrap();
        wait_for(&mut reader, "Echo: still here\n")
    });
    assert!(
        skipped
            .iter()
            .all(|line| line == "Server: Are you there?\n"),
        "only prompts come between: {skipped:?}"
    );
}

#[test]
fn stopping_the_server_says_goodbye() {
    let (reactor, addr) = server(Service::SPEC);
    let stopper = reactor.clone();
    let (welcome, rest) = serve(&reactor, addr, move |mut stream| {
        let mut welcome = vec![0u8; b"Echo Service: Welcome\n".len()];
        stream.read_exact(&mut welcome).unwrap();
        stopper.stop();
        (welcome, read_to_end(&mut stream))
    });
    assert_eq!(welcome, b"Echo Service: Welcome\n");
    assert_eq!(rest, b"Echo server shutting down\nGoodbye.\n");
}

#[test]
fn raw_mode_echoes_a_megabyte_byte_for_byte() {
    let (reactor, addr) = server(Service::RAW);
    let payload: Vec<u8> = (0..1_000_000u32).map(|n| (n % 251) as u8).collect();
    let sent = payload.clone();
    let echoed = serve(&reactor, addr, move |mut stream| {
        let mut writer = stream.try_clone().unwrap();
        let writing = thread::spawn(move || {
            writer.write_all(&sent).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let echoed = read_to_end(&mut stream);
        writing.join().unwrap();
        echoed
    });
    // No welcome, no prefix: exactly the bytes sent, then the close that follows our end.
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "the echo is byte-for-byte the payload");
}

#[test]
fn the_command_line() {
    let parse = |args: &[&str]| Options::parse(args.iter().map(|arg| arg.to_string()));
    let defaults = parse(&[]).unwrap().unwrap();
    assert_eq!(defaults.url, "tcp://0.0.0.0:3000");
    let four = Concurrency::exactly(4).unwrap();
    assert_eq!(
        (defaults.threads, defaults.workers),
        (four, Concurrency::ONE)
    );
    assert!(!defaults.raw);

    // The load benchmark's command line.
    let bench = parse(&["--raw", "--port", "8080", "--threads", "1"])
        .unwrap()
        .unwrap();
    assert_eq!(bench.url, "tcp://0.0.0.0:8080");
    assert_eq!(bench.threads, Concurrency::ONE);
    assert!(bench.raw);
    assert_eq!(
        bench.start_args(),
        StartArgs::new().threads(Concurrency::ONE)
    );

    let url = parse(&["--url=tcp://127.0.0.1:0", "--workers=2", "--threads=-2"])
        .unwrap()
        .unwrap();
    assert_eq!(url.url, "tcp://127.0.0.1:0");
    // facil.io's signed counts: -2 is half the cores.
    let half = Concurrency::FractionOfCores(2.try_into().unwrap());
    let two = Concurrency::exactly(2).unwrap();
    assert_eq!((url.threads, url.workers), (half, two));

    assert_eq!(parse(&["--help"]).unwrap(), None);
    for bad in [
        &["--port"][..],
        &["--port", "65536"],
        &["--threads", "many"],
        &["--verbose"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} is refused");
    }
}

/// The built `echo` example (cargo builds the examples before their tests).
fn example_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    // target/<profile>/deps/example_echo-<hash> -> target/<profile>/examples/echo
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile.join("examples").join("echo")
}

#[test]
fn workers_are_forked_logged_and_stopped_cleanly() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(example_binary())
        .args([
            "--url",
            "tcp://127.0.0.1:0",
            "--workers",
            "2",
            "--threads",
            "1",
            "--raw",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the echo example");
    let root = child.id();
    let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let mut log = Vec::new();
    let mut port = None;
    let mut serving = 0;
    // Bounded by the lines the root and its workers print while starting.
    while port.is_none() || serving < 2 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(address) = line.split("listening on 127.0.0.1:").nth(1) {
            port = address
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok());
        }
        if line.contains("cluster root: worker") && line.ends_with(" serving") {
            serving += 1;
        }
        log.push(line);
        assert!(log.len() < MAX_LINES, "{log:#?}");
    }
    let port = port.unwrap_or_else(|| panic!("no listening line: {log:#?}"));
    let mut stream = util::client(SocketAddr::from(([127, 0, 0, 1], port)));
    stream.write_all(b"hello").unwrap();
    let mut echoed = [0u8; 5];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"hello");
    drop(stream);
    let pid = fio_sys::Pid::new(i32::try_from(root).unwrap()).unwrap();
    fio_sys::kill(pid, fio_sys::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    log.extend(lines.map_while(Result::ok));
    assert!(status.success(), "{status:?}: {log:#?}");
    let started = log
        .iter()
        .filter(|l| l.contains("cluster root: worker") && l.ends_with(" started"));
    assert_eq!(started.count(), 2, "{log:#?}");
    assert!(log.iter().any(|l| l.contains("exited")), "{log:#?}");
}
