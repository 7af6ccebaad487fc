//! The server `fio-cluster`'s tests run as a child process: an echo service in a cluster.
//!
//! It prints `LISTENING <port>` (and `MASTER <port>` with `--master-only`) on stdout once
//! bound, logs the cluster to stderr, and with `--events` prints one stdout line per state
//! callback: `EVENT <name> pid=<pid> worker=<0|1> master=<0|1> running=<workers>`.
//!
//! The echo protocol echoes bytes; a read starting with `PID\n` answers the worker's pid
//! instead, and `BIG\n` answers 64 MiB of `x` and closes.
//!
//! Options: `--workers N`, `--threads N`, `--shutdown-delay S` (`on_shutdown`'s answer),
//! `--farewell` (`on_shutdown` writes `FAREWELL\n`),
//! `--exit-at-boot` (every worker exits with 7 in `OnStart`), `--master-only` (a second,
//! master-only listener answering the root's pid), `--connect-master PORT` (a master-only
//! connection to 127.0.0.1:PORT that sends the root's pid), `--activated` (serve the systemd-activated
//! sockets instead of binding), `--events`.

use std::io::Write;
use std::process::ExitCode;

use log::{LevelFilter, Log, Metadata, Record};

use fio_reactor::{
    CallbackEvent, Concurrency, ConnectArgs, ListenArgs, Protocol, ShutdownResponse, StartArgs,
    Uuid,
};

/// Bytes `BIG` answers.
const BIG: usize = 64 << 20;

/// Writes log records to stderr.
#[derive(Debug)]
struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            // One write per line: the root and its workers share stderr.
            let line = format!("[{}] {}\n", record.level(), record.args());
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// The logger.
static LOGGER: Stderr = Stderr;

/// The echo protocol.
#[derive(Debug)]
struct Echo {
    /// What `on_shutdown` answers.
    shutdown: ShutdownResponse,
    /// Whether `on_shutdown` writes `FAREWELL\n` first.
    farewell: bool,
}

impl Protocol for Echo {
    fn on_data(&mut self, uuid: Uuid) {
        let mut buf = [0u8; 4096];
        loop {
            let len = match fio_reactor::read(uuid, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(len) => len,
            };
            let data = &buf[..len];
            if data.starts_with(b"PID\n") {
                let _ = fio_reactor::write(uuid, format!("{}\n", std::process::id()).as_bytes());
            } else if data.starts_with(b"BIG\n") {
                for _ in 0..BIG >> 20 {
                    let _ = fio_reactor::write(uuid, &vec![b'x'; 1 << 20]);
                }
                let _ = fio_reactor::close(uuid);
                return;
            } else {
                let _ = fio_reactor::write(uuid, data);
            }
        }
    }

    fn on_shutdown(&mut self, uuid: Uuid) -> ShutdownResponse {
        if self.farewell {
            let _ = fio_reactor::write(uuid, b"FAREWELL\n");
        }
        self.shutdown
    }
}

/// Answers the root's pid and closes.
#[derive(Debug)]
struct Master;

impl Protocol for Master {}

/// Command line.
#[derive(Debug, Default)]
struct Options {
    workers: i16,
    threads: i16,
    shutdown_delay: u8,
    farewell: bool,
    exit_at_boot: bool,
    master_only: bool,
    connect_master: Option<u16>,
    activated: bool,
    events: bool,
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        workers: 2,
        threads: 1,
        ..Options::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--workers" => options.workers = value()?.parse().map_err(|_| "--workers")?,
            "--threads" => options.threads = value()?.parse().map_err(|_| "--threads")?,
            "--shutdown-delay" => {
                options.shutdown_delay = value()?.parse().map_err(|_| "--shutdown-delay")?;
            }
            "--exit-at-boot" => options.exit_at_boot = true,
            "--farewell" => options.farewell = true,
            "--master-only" => options.master_only = true,
            "--connect-master" => {
                options.connect_master = Some(value()?.parse().map_err(|_| "--connect-master")?);
            }
            "--activated" => options.activated = true,
            "--events" => options.events = true,
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    Ok(options)
}

/// Prints a state event with what the process says about itself.
fn event(name: &str) {
    let line = format!(
        "EVENT {name} pid={} worker={} master={} running={}\n",
        std::process::id(),
        u8::from(fio_reactor::is_worker()),
        u8::from(fio_reactor::is_master()),
        fio_reactor::running_workers(),
    );
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(line.as_bytes());
    let _ = stdout.flush();
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("cluster_server: {message}");
            return ExitCode::from(2);
        }
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
    let (delay, farewell) = (options.shutdown_delay, options.farewell);
    let on_open = move |uuid: Uuid| {
        let _ = fio_reactor::attach(
            uuid,
            Echo {
                shutdown: ShutdownResponse::from_c(delay),
                farewell,
            },
        );
    };
    let ports = if options.activated {
        let sockets = match fio_sys::listen_fds() {
            Ok(sockets) => sockets,
            Err(error) => {
                eprintln!("cluster_server: LISTEN_FDS: {error}");
                return ExitCode::FAILURE;
            }
        };
        if sockets.is_empty() {
            eprintln!("cluster_server: no activated sockets");
            return ExitCode::FAILURE;
        }
        sockets
            .into_iter()
            .map(|socket| fio_reactor::listen(ListenArgs::inherited(socket, on_open)))
            .collect::<Result<Vec<_>, _>>()
    } else {
        fio_reactor::listen(ListenArgs::new("tcp://127.0.0.1:0", on_open)).map(|uuid| vec![uuid])
    };
    let listeners = match ports {
        Ok(listeners) => listeners,
        Err(error) => {
            eprintln!("cluster_server: listen: {error}");
            return ExitCode::FAILURE;
        }
    };
    for listener in listeners {
        let port = fio_reactor::local_addr(listener)
            .and_then(|addr| addr.as_inet())
            .map_or(0, |addr| addr.port());
        println!("LISTENING {port}");
    }
    if options.master_only {
        let master = ListenArgs::new("tcp://127.0.0.1:0", |uuid| {
            let _ = fio_reactor::attach(uuid, Master);
            let _ = fio_reactor::write(uuid, format!("{}\n", std::process::id()).as_bytes());
            let _ = fio_reactor::close(uuid);
        })
        .master_only(true);
        match fio_reactor::listen(master) {
            Ok(uuid) => {
                let port = fio_reactor::local_addr(uuid)
                    .and_then(|addr| addr.as_inet())
                    .map_or(0, |addr| addr.port());
                println!("MASTER {port}");
            }
            Err(error) => {
                eprintln!("cluster_server: master listen: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(port) = options.connect_master {
        let connect = ConnectArgs::new(format!("tcp://127.0.0.1:{port}"), |uuid| {
            let _ = fio_reactor::attach(uuid, Master);
            let _ = fio_reactor::write(uuid, format!("{}\n", std::process::id()).as_bytes());
        })
        .master_only(true);
        if let Err(error) = fio_reactor::connect(connect) {
            eprintln!("cluster_server: master connect: {error}");
            return ExitCode::FAILURE;
        }
    }
    if options.events {
        for (name, which) in [
            ("OnInitialize", CallbackEvent::OnInitialize),
            ("PreStart", CallbackEvent::PreStart),
            ("BeforeFork", CallbackEvent::BeforeFork),
            ("AfterFork", CallbackEvent::AfterFork),
            ("InChild", CallbackEvent::InChild),
            ("InMaster", CallbackEvent::InMaster),
            ("OnStart", CallbackEvent::OnStart),
            ("OnShutdown", CallbackEvent::OnShutdown),
            ("OnFinish", CallbackEvent::OnFinish),
            ("OnParentCrush", CallbackEvent::OnParentCrush),
            ("OnChildCrush", CallbackEvent::OnChildCrush),
            ("AtExit", CallbackEvent::AtExit),
        ] {
            fio_reactor::state_callback_add(which, move || event(name));
        }
    }
    if options.exit_at_boot {
        fio_reactor::state_callback_add(CallbackEvent::OnStart, || {
            fio_sys::exit_immediately(7);
        });
    }
    // The command line takes facil.io's signed counts (0, -n), as the C flags did.
    let args = StartArgs::new()
        .threads(Concurrency::from_c(options.threads))
        .workers(Concurrency::from_c(options.workers));
    match fio_cluster::start(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cluster_server: {error}");
            ExitCode::FAILURE
        }
    }
}
