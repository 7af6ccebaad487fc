//! An HTTP/1.0 client on fio-reactor: `connect`s to `--url`, sends `GET / HTTP/1.0`, prints
//! the whole answer (headers and body) to stdout once the server closes (or once the
//! `Content-Length` body is in, for a server that keeps the connection open), and stops.
//!
//! Usage: `cargo run -p fio-examples --example client -- [--url URL | --port N]`, for
//! example against `cargo run -p fio-examples --example http_hello -- --port 3000`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use log::LevelFilter;

use fio_reactor::{Concurrency, ConnectArgs, Error, Protocol, Reactor, Uuid};

use fio_examples::support::{self, LogFailure, Options};

/// What `--help` prints.
const USAGE: &str = "usage: client [--url URL | --port N] [--threads N] [--raw]
  --url URL      the server (default tcp://0.0.0.0:3000, which is this host)
  --port N       shorthand for --url tcp://0.0.0.0:N
  --threads N    reactor threads (default 4; one is plenty)
  --raw          print only the body, without the status line and headers
Sends GET / HTTP/1.0 and prints the answer.";

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer, or why there is none.
pub(crate) type Answer = Result<Vec<u8>, String>;

/// Where the answer goes: called once, when the connection closes or fails.
type OnAnswer = Arc<Mutex<Option<Box<dyn FnOnce(Answer) + Send>>>>;

fn deliver(on_answer: &OnAnswer, answer: Answer) {
    let taken = on_answer
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(on_answer) = taken {
        on_answer(answer);
    }
}

/// The connection's protocol: collects everything the server sends.
struct Client {
    answer: Vec<u8>,
    on_answer: OnAnswer,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("received", &self.answer.len())
            .finish_non_exhaustive()
    }
}

impl Protocol for Client {
    fn on_data(&mut self, uuid: Uuid) {
        support::with_read_buffer(|buf| {
            while let Ok(len @ 1..) = fio_reactor::read(uuid, buf) {
                self.answer.extend_from_slice(&buf[..len]);
            }
        });
        // A server that keeps the connection open (ignoring HTTP/1.0) is done once the
        // `Content-Length` body is in; closing delivers the answer.
        if complete(&self.answer) {
            fio_reactor::close(uuid).or_log("closing after the answer");
        }
    }

    fn on_close(&mut self, _uuid: Uuid) {
        deliver(&self.on_answer, Ok(std::mem::take(&mut self.answer)));
    }
}

/// Whether `answer` holds a whole head and the body its `Content-Length` announces.
fn complete(answer: &[u8]) -> bool {
    let Some(head_end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..head_end]);
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    length.is_some_and(|length| answer.len() >= head_end + 4 + length)
}

/// The `Host` header for `url`: what follows the scheme, up to the first `/`.
fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// Connects to `url` on `reactor`, sends `GET / HTTP/1.0` and calls `on_answer` once with
/// everything received until the server closed (or with why the connection failed).
///
/// # Errors
/// As [`Reactor::connect`]: a URL that doesn't parse, or a socket that can't be created.
pub(crate) fn fetch(
    reactor: &Reactor,
    url: &str,
    on_answer: impl FnOnce(Answer) + Send + 'static,
) -> Result<Uuid, Error> {
    let on_answer: OnAnswer = Arc::new(Mutex::new(Some(Box::new(on_answer))));
    let (opened, failed) = (on_answer.clone(), on_answer);
    let request = format!(
        "GET / HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host(url)
    );
    let args = ConnectArgs::new(url, move |uuid| {
        let client = Client {
            answer: Vec::new(),
            on_answer: opened.clone(),
        };
        if let Err(error) = fio_reactor::attach(uuid, client) {
            deliver(&opened, Err(format!("attaching failed: {error}")));
            return;
        }
        if let Err(error) = fio_reactor::write(uuid, request.as_bytes()) {
            deliver(&opened, Err(format!("sending the request failed: {error}")));
        }
    })
    .on_fail(move |error| deliver(&failed, Err(format!("connecting failed: {error}"))))
    .timeout(CONNECT_TIMEOUT);
    reactor.connect(args)
}

/// The program: fetches `/` from `options.url`, prints the answer, and stops.
///
/// # Errors
/// What [`fetch`] or `fio_cluster::start` report, or a failed connection.
fn run(options: &Options) -> Result<(), Box<dyn std::error::Error>> {
    support::init_logger(LevelFilter::Warn);
    let reactor = Reactor::current();
    let stopper = reactor.clone();
    let outcome: Arc<Mutex<Option<Answer>>> = Arc::default();
    let sink = outcome.clone();
    fetch(&reactor, &options.url, move |answer| {
        *sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(answer);
        stopper.stop();
    })?;
    let options = Options {
        workers: Concurrency::ONE,
        ..options.clone()
    };
    support::start(&options)?;
    let answer = outcome
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match answer {
        Some(Ok(bytes)) => {
            let shown = if options.raw { body(&bytes) } else { &bytes };
            Ok(std::io::stdout().write_all(shown)?)
        }
        Some(Err(message)) => Err(message.into()),
        None => Err("stopped before an answer came".into()),
    }
}

/// What follows the head of an HTTP answer (all of it when there is no head's end).
pub(crate) fn body(answer: &[u8]) -> &[u8] {
    answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map_or(answer, |end| &answer[end + 4..])
}

/// Adapts a boxed error for [`support::main`], which wants a concrete error type.
#[derive(Debug)]
struct Failure(Box<dyn std::error::Error>);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg_attr(test, allow(dead_code, reason = "the tests call `fetch` directly"))]
fn main() -> ExitCode {
    support::main("client", USAGE, |options| run(&options).map_err(Failure))
}
