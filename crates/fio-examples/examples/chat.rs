//! A line chat on fio-reactor: every line a client sends goes to every other client, prefixed
//! with the sender's address, as ONE pooled payload ([`fio_reactor::shared_payload`]) whose
//! clones are queued on each peer (no copy per peer). `/quit` says `Goodbye.` and closes. A
//! `run_every` timer logs a status line (clients, lines relayed) every ten seconds.
//!
//! The room lives in one process: run it with the default `--workers 1`.
//!
//! Usage: `cargo run -p fio-examples --example chat -- [--url URL | --port N] [--threads N]
//! [--raw]`,
//! then in two terminals `nc 127.0.0.1 3000` and type.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use log::LevelFilter;

use fio_reactor::{
    CallbackEvent, Chunk, Error, ListenArgs, Payload, Protocol, Reactor, Repeat, Uuid,
};

use fio_examples::support::{self, LogFailure, Options};

/// What `--help` prints.
const USAGE: &str = "usage: chat [--url URL | --port N] [--threads N] [--raw]
  --url URL      where to listen (default tcp://0.0.0.0:3000)
  --port N       shorthand for --url tcp://0.0.0.0:N
  --threads N    reactor threads (default 4; negative: a fraction of the cores)
  --raw          no status line every ten seconds (for load tests)
Type lines to send them to everyone else; /quit leaves.";

/// The longest line relayed; a longer one is cut into pieces of this size.
const MAX_LINE: usize = 4000;

/// How often the status line is logged.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Everyone connected, shared by the reactor threads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Room {
    members: Arc<Mutex<Vec<Uuid>>>,
    relayed: Arc<AtomicU64>,
}

impl Room {
    fn members(&self) -> std::sync::MutexGuard<'_, Vec<Uuid>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many clients are connected.
    pub(crate) fn len(&self) -> usize {
        self.members().len()
    }

    /// How many lines were relayed so far.
    pub(crate) fn relayed(&self) -> u64 {
        self.relayed.load(Ordering::Relaxed)
    }

    /// Sends `line` to every member but `from`: one pooled copy, one handle per peer.
    fn broadcast(&self, from: Uuid, line: &[u8]) {
        let payload = match fio_reactor::shared_payload(line) {
            Ok(shared) => shared,
            Err(error) => {
                log::warn!("no buffer for a line from {from}: {error}");
                return;
            }
        };
        // Counted before any peer can see it.
        self.relayed.fetch_add(1, Ordering::Relaxed);
        // Copy the list out: writes are queued, but the lock is not held across them.
        let peers: Vec<Uuid> = self.members().clone();
        for peer in peers.into_iter().filter(|&peer| peer != from) {
            fio_reactor::write2(peer, Payload::from(payload.clone()), false)
                .or_log("relaying a line");
        }
    }
}

/// One client: its name and the part of a line received so far.
#[derive(Debug)]
struct Chat {
    room: Room,
    name: String,
    partial: Vec<u8>,
}

impl Chat {
    /// Relays one complete line (without its `\n`); returns false after `/quit`.
    fn line(&mut self, uuid: Uuid, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"/quit" {
            fio_reactor::write2(uuid, Chunk::Static(b"Goodbye.\n"), false).or_log("saying goodbye");
            fio_reactor::close(uuid).or_log("closing after /quit");
            return false;
        }
        let mut message = Vec::with_capacity(self.name.len() + 3 + line.len());
        message.extend_from_slice(self.name.as_bytes());
        message.extend_from_slice(b": ");
        message.extend_from_slice(line);
        message.push(b'\n');
        self.room.broadcast(uuid, &message);
        true
    }
}

impl Protocol for Chat {
    fn on_data(&mut self, uuid: Uuid) {
        support::with_read_buffer(|buf| {
            loop {
                let len = match fio_reactor::read(uuid, buf) {
                    Ok(0) | Err(_) => return,
                    Ok(len) => len,
                };
                self.partial.extend_from_slice(&buf[..len]);
                while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.partial.drain(..=end).collect();
                    if !self.line(uuid, &line[..end]) {
                        return;
                    }
                }
                while self.partial.len() >= MAX_LINE {
                    let piece: Vec<u8> = self.partial.drain(..MAX_LINE).collect();
                    self.line(uuid, &piece);
                }
            }
        });
    }

    fn on_close(&mut self, uuid: Uuid) {
        self.room.members().retain(|&member| member != uuid);
        log::info!("{} left", self.name);
    }
}

/// Welcomes a new client and adds it to `room`.
fn on_open(uuid: Uuid, room: &Room) {
    let name = fio_reactor::peer_addr(uuid).map_or_else(|| uuid.to_string(), |a| a.to_string());
    log::info!("{name} joined");
    let chat = Chat {
        room: room.clone(),
        name,
        partial: Vec::new(),
    };
    if let Err(error) = fio_reactor::attach(uuid, chat) {
        log::warn!("attaching connection {uuid} failed: {error}");
        return;
    }
    room.members().push(uuid);
    fio_reactor::write2(
        uuid,
        Chunk::Static(b"Welcome to the chat. Lines go to everyone else; /quit leaves.\n"),
        false,
    )
    .or_log("welcoming");
}

/// Listens on `url` for `reactor` with a fresh room; returns the listener's uuid and the room.
///
/// # Errors
/// As [`Reactor::listen`]: a URL that doesn't parse, or a socket that can't be bound.
pub(crate) fn listen(reactor: &Reactor, url: &str) -> Result<(Uuid, Room), Error> {
    let room = Room::default();
    let joined = room.clone();
    let listener = reactor.listen(ListenArgs::new(url, move |uuid| on_open(uuid, &joined)))?;
    Ok((listener, room))
}

/// The program: listens on `options.url`, logs a status line every ten seconds, and runs
/// the reactor until SIGINT or SIGTERM.
///
/// # Errors
/// What [`listen`], `run_every` or `fio_cluster::start` report.
fn run(options: &Options) -> Result<(), Error> {
    support::init_logger(LevelFilter::Info);
    let reactor = Reactor::current();
    let (listener, room) = listen(&reactor, &options.url)?;
    let address = support::addresses(&[listener], &options.url);
    if !options.raw {
        reactor.run_every(
            STATUS_EVERY,
            Repeat::Forever,
            move || {
                log::info!(
                    "status: {} clients, {} lines relayed",
                    room.len(),
                    room.relayed()
                );
                true
            },
            || {},
        )?;
    }
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        log::info!(
            "chat listening on {address} ({} engine)",
            fio_reactor::engine()
        );
    });
    support::start(options)
}

#[cfg_attr(test, allow(dead_code, reason = "the tests call `listen` directly"))]
fn main() -> ExitCode {
    support::main("chat", USAGE, |options| run(&options))
}
