//! Test-only: the drill server of `cargo xtask drills` and of fio-examples' `drills` test.
//!
//! A pure byte echo like `echo --raw`, with the switches the drills need and the examples must
//! not have:
//! - `--forbid-uring`: installs a seccomp filter refusing io_uring (`fio_sys::forbid_io_uring`)
//!   before the reactor starts, so the engine must fall back to epoll;
//! - `--panic-on WORD`: `on_data` panics when a chunk read contains `WORD` (the reactor must
//!   close only that connection);
//! - `--bulk-on WORD` (with `--bulk-bytes N`, 64 MiB by default): a chunk containing `WORD` is
//!   answered with `N` bytes of [`pattern`] in one write, so that much is queued at once.
//!
//! It also takes the examples' `--url`/`--port`, `--threads` and `--workers`, and logs
//! `drill server listening on ADDRESS (ENGINE engine, pid PID)` once it serves.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::OnceLock;

use log::LevelFilter;

use fio_reactor::{CallbackEvent, ListenArgs, Protocol, Reactor, Uuid};

use fio_examples::support::{self, LogFailure};

/// What `--help` prints.
const USAGE: &str = "usage: drill_echo [--url URL | --port N] [--threads N] [--workers N]
        [--forbid-uring] [--panic-on WORD] [--bulk-on WORD] [--bulk-bytes N]
  test-only: the drill server of `cargo xtask drills` (a raw byte echo)
  --forbid-uring   refuse io_uring with a seccomp filter before starting
  --panic-on WORD  panic in on_data when a chunk contains WORD
  --bulk-on WORD   answer a chunk containing WORD with --bulk-bytes bytes in one write
  --bulk-bytes N   the size of that answer (default 64 MiB)";

/// The drill switches, parsed once in `main`.
#[derive(Debug, Default)]
struct Drill {
    forbid_uring: bool,
    panic_on: Option<Vec<u8>>,
    bulk_on: Option<Vec<u8>>,
    bulk_bytes: usize,
}

/// The process's drill switches (callbacks read them).
static DRILL: OnceLock<Drill> = OnceLock::new();

/// Byte `index` of a bulk answer: a pattern a client can check without holding a copy.
fn pattern(index: usize) -> u8 {
    (index % 251) as u8
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// The byte echo with the drills' triggers.
#[derive(Debug)]
struct DrillEcho;

impl Protocol for DrillEcho {
    fn on_data(&mut self, uuid: Uuid) {
        let drill = DRILL.get_or_init(Drill::default);
        support::with_read_buffer(|buf| {
            for _ in 0..64 {
                let len = match fio_reactor::read(uuid, buf) {
                    Ok(0) | Err(_) => return,
                    Ok(len) => len,
                };
                let chunk = &buf[..len];
                if drill
                    .panic_on
                    .as_deref()
                    .is_some_and(|w| contains(chunk, w))
                {
                    panic!("drill: a chunk asked this on_data to panic");
                }
                if drill.bulk_on.as_deref().is_some_and(|w| contains(chunk, w)) {
                    let bulk: Vec<u8> = (0..drill.bulk_bytes).map(pattern).collect();
                    fio_reactor::write(uuid, &bulk).or_log("bulk answer");
                    continue;
                }
                fio_reactor::write(uuid, chunk).or_log("echo");
            }
        });
    }
}

/// Splits the drill switches off `args`; the rest goes to the examples' parser.
fn parse_drill(args: Vec<String>) -> Result<(Drill, Vec<String>), String> {
    let mut drill = Drill {
        bulk_bytes: 64 << 20,
        ..Drill::default()
    };
    let mut rest = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--forbid-uring" => drill.forbid_uring = true,
            "--panic-on" => drill.panic_on = Some(value("--panic-on")?.into_bytes()),
            "--bulk-on" => drill.bulk_on = Some(value("--bulk-on")?.into_bytes()),
            "--bulk-bytes" => {
                let text = value("--bulk-bytes")?;
                drill.bulk_bytes = text
                    .parse()
                    .map_err(|_| format!("--bulk-bytes takes a size, not {text:?}"))?;
            }
            _ => rest.push(arg),
        }
    }
    Ok((drill, rest))
}

fn main() -> ExitCode {
    let (drill, rest) = match parse_drill(std::env::args().skip(1).collect()) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("drill_echo: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = match support::Options::parse(rest) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("drill_echo: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    support::init_logger(LevelFilter::Info);
    if drill.forbid_uring {
        if let Err(error) = fio_sys::forbid_io_uring() {
            eprintln!("drill_echo: cannot install the seccomp filter: {error}");
            return ExitCode::FAILURE;
        }
        log::info!("io_uring refused by a seccomp filter");
    }
    // `main` runs once, so the cell is still empty: this always stores `drill`.
    DRILL.get_or_init(|| drill);
    let reactor = Reactor::current();
    let on_open = |uuid: Uuid| {
        if let Err(error) = fio_reactor::attach(uuid, DrillEcho) {
            log::warn!("attaching connection {uuid} failed: {error}");
        }
    };
    let listeners = match support::listen_all(&reactor, None, on_open, || {
        reactor.listen(ListenArgs::new(&options.url, on_open))
    }) {
        Ok(listeners) => listeners,
        Err(error) => {
            eprintln!("drill_echo: {}", support::describe(&error));
            return ExitCode::FAILURE;
        }
    };
    let address = support::addresses(&listeners, &options.url);
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        log::info!(
            "drill server listening on {address} ({} engine, pid {})",
            fio_reactor::engine(),
            std::process::id()
        );
    });
    match support::start(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("drill_echo: {}", support::describe(&error));
            ExitCode::FAILURE
        }
    }
}
