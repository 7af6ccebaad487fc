//! A TechEmpower-style plaintext server on fio-reactor: every HTTP/1.1 request gets the same
//! `Hello World!` response, with keep-alive and pipelining.
//!
//! A request is everything up to and including `\r\n\r\n` (the benchmark's requests are GETs
//! without a body). Each `on_data` reads what arrived, counts the requests it completed (a
//! request split across reads is counted when its last byte arrives) and answers them all in
//! one write. A request head over 8 KiB closes the connection. The response is byte for byte
//! the load benchmark's (`fio_bench::HTTP_RESPONSE`).
//!
//! Usage: `cargo run --release -p fio-examples --example http_hello -- [--url URL | --port N]
//! [--threads N] [--workers N] [--raw]`, then `curl http://127.0.0.1:3000/`. Ctrl-C (or
//! SIGTERM) stops it gracefully.

use std::process::ExitCode;
use std::sync::Arc;

use log::LevelFilter;

use fio_reactor::{CallbackEvent, Error, ListenArgs, Protocol, Reactor, Uuid};

use fio_examples::support::{self, LogFailure, Options};

/// What `--help` prints.
const USAGE: &str = "usage: http_hello [--url URL | --port N] [--threads N] [--workers N] [--raw]
                  [--tls | --cert PEM --key PEM]
  --url URL      where to listen (default tcp://0.0.0.0:3000)
  --port N       shorthand for --url tcp://0.0.0.0:N
  --threads N    reactor threads (default 4; negative: a fraction of the cores)
  --workers N    worker processes (default 1; more are forked by fio-cluster)
  --raw          the examples' load-test switch: nothing to leave out here (no timeout, no logs)
  --tls          TLS with a self-signed certificate for localhost (fingerprint logged)
  --cert PEM     TLS with this certificate chain (needs --key)
  --key PEM      the private key of --cert";

/// The response to every request: a copy of `fio_bench::HTTP_RESPONSE`'s bytes (examples
/// can't depend on fio-bench), which every HTTP contender of the load benchmark sends.
pub(crate) const HTTP_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Length: 12\r\n\
Connection: keep-alive\r\n\
\r\n\
Hello World!";

/// The end of a request head.
const TERMINATOR: &[u8; 4] = b"\r\n\r\n";

/// The longest request head accepted; a longer one closes the connection.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// Reads per `on_data` call at most; bytes left buffered bring `on_data` back once
/// the other connections have had their turn.
const READS_PER_CALL: usize = 64;

/// Counts complete requests in a byte stream fed in arbitrary pieces, and the size of the
/// request head in progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Requests {
    /// How many bytes of [`TERMINATOR`] the stream currently ends with (0 to 3).
    matched: usize,
    /// Bytes of the request in progress (since the last terminator).
    head: usize,
}

impl Requests {
    /// Feeds the next bytes and returns how many requests they completed. Once the request in
    /// progress grows past [`MAX_HEAD`] it stops there: see [`too_large`](Self::too_large).
    ///
    /// The scan is the load benchmark's (`fio_bench::RequestCounter`), byte for byte, so fio's
    /// server does the same work per byte as the baselines it is measured against. The head
    /// size is checked once per feed when the bytes can't take any request past the limit
    /// (the usual case: see [`feed_within_limit`](Self::feed_within_limit)), else once per
    /// request ([`feed_exact`](Self::feed_exact)); both count the same.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> usize {
        if self.too_large() {
            return 0;
        }
        if self.head + bytes.len() <= MAX_HEAD + 1
            && let Some(complete) = self.feed_within_limit(bytes)
        {
            return complete;
        }
        self.feed_exact(bytes)
    }

    /// [`feed`](Self::feed) for bytes that can't take any request past [`MAX_HEAD`] (the head
    /// in progress plus all of them is within the limit): the baselines' loop exactly, with no
    /// position kept per byte. Where the request in progress began is found afterwards, as
    /// the end of the last `\r\n\r\n` in `bytes`; `None` (nothing changed) when that can't
    /// be told from the bytes alone, for the exact path to decide: when the terminator the scan
    /// counted last may be an overlapping one two bytes earlier (`\r\n\r\n\r\n`), or may have
    /// begun in an earlier feed.
    fn feed_within_limit(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut complete = 0;
        let mut matched = self.matched;
        for &byte in bytes {
            matched = next_matched(matched, byte);
            if matched == TERMINATOR.len() {
                complete += 1;
                matched = 0;
            }
        }
        if complete > 0 {
            let end = bytes
                .windows(TERMINATOR.len())
                .rposition(|window| window == TERMINATOR)?
                + TERMINATOR.len();
            // The scan counts a terminator ending at `end` unless it stood two bytes into one
            // (after "\r\n"), which needs those two bytes in `bytes` and equal to "\r\n".
            if end < 6 || bytes[end - 6..end - 4] == TERMINATOR[..2] {
                return None;
            }
            self.head = bytes.len() - end;
        } else {
            self.head += bytes.len();
        }
        self.matched = matched;
        Some(complete)
    }

    /// [`feed`](Self::feed) checking each request's head size as its terminator arrives.
    pub(crate) fn feed_exact(&mut self, bytes: &[u8]) -> usize {
        if self.too_large() {
            return 0;
        }
        let mut complete = 0;
        let mut matched = self.matched;
        // Where the request in progress began in `bytes` (0: before them, `self.head` ago).
        let mut start = 0;
        // No index counted beside the walk (it cost as much as the scan's own pointer): a
        // terminator's position comes from what is left of the walk.
        let mut rest = bytes.iter();
        while let Some(&byte) = rest.next() {
            matched = next_matched(matched, byte);
            if matched == TERMINATOR.len() {
                let end = bytes.len() - rest.len();
                // A request counts only if its head stayed within the limit until its last
                // byte, as a per-byte check would have stopped it.
                if self.head + (end - start) > MAX_HEAD + 1 {
                    self.head += end - start;
                    return complete;
                }
                complete += 1;
                matched = 0;
                start = end;
                self.head = 0;
            }
        }
        self.matched = matched;
        self.head += bytes.len() - start;
        complete
    }

    /// Whether the request in progress is longer than [`MAX_HEAD`] bytes.
    pub(crate) fn too_large(&self) -> bool {
        self.head > MAX_HEAD
    }
}

/// How many bytes of [`TERMINATOR`] the stream ends with after `byte`, given it ended with
/// `matched` before: the scan's one step (the baselines', byte for byte).
#[inline(always)]
fn next_matched(matched: usize, byte: u8) -> usize {
    if byte == TERMINATOR[matched] {
        matched + 1
    } else if byte == b'\r' {
        // Only "\r" can restart a match: no longer prefix of "\r\n\r\n" is a suffix of
        // another.
        1
    } else {
        0
    }
}

/// The hello protocol on one connection.
#[derive(Debug, Default)]
pub(crate) struct Hello {
    requests: Requests,
}

impl Protocol for Hello {
    fn on_data(&mut self, uuid: Uuid) {
        let requests = &mut self.requests;
        let (complete, too_large) = support::with_read_buffer(|buf| {
            let mut complete = 0;
            for _ in 0..READS_PER_CALL {
                // Matched whole, not with an `Err(_)` arm: the result then needs no
                // out-of-line drop per read (8 instructions a request in callgrind).
                let len = match fio_reactor::read(uuid, buf) {
                    Ok(len) if len > 0 => len,
                    _ => break,
                };
                complete += requests.feed(&buf[..len]);
                if requests.too_large() {
                    return (complete, true);
                }
                // A read short of the buffer took everything buffered, so another would only
                // say so. Had it left bytes, `on_data` runs again anyway: it read some.
                if len < buf.len() {
                    break;
                }
            }
            (complete, false)
        });
        respond(uuid, complete);
        if too_large {
            log::warn!("connection {uuid}: a request head over {MAX_HEAD} bytes; closing");
            fio_reactor::close(uuid).or_log("closing after an oversized head");
        }
    }
}

/// Responses answered with one write: a pipelined read's requests need one write, not one
/// each.
const RESPONSES_PER_WRITE: usize = 32;

/// [`HTTP_RESPONSE`] [`RESPONSES_PER_WRITE`] times over, made once.
fn responses() -> &'static [u8] {
    static RESPONSES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    RESPONSES.get_or_init(|| HTTP_RESPONSE.repeat(RESPONSES_PER_WRITE))
}

/// Answers `count` requests on `uuid`.
///
/// The responses are copied into the connection's pooled send buffer, up to
/// [`RESPONSES_PER_WRITE`] per write, where the tick's responses gather into one send: no
/// allocation per request, however deep the pipeline, and one call per read rather than one
/// per request (the baselines copy each response once, as this does).
fn respond(uuid: Uuid, count: usize) {
    let mut left = count;
    while left > 0 {
        let batch = left.min(RESPONSES_PER_WRITE);
        if fio_reactor::write(uuid, &responses()[..batch * HTTP_RESPONSE.len()]).is_err() {
            // Closing or gone: the rest would fail the same way.
            return;
        }
        left -= batch;
    }
}

/// Listens on `url` for `reactor` with the hello protocol; returns the listener's uuid, whose
/// address is `fio_reactor::local_addr(listener)`.
///
/// # Errors
/// As [`Reactor::listen`]: a URL that doesn't parse, or a socket that can't be bound.
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "the program listens with `listen_secured`")
)]
pub(crate) fn listen(reactor: &Reactor, url: &str) -> Result<Uuid, Error> {
    listen_secured(reactor, url, None)
}

/// [`listen`], every connection secured by `tls` when there is one.
///
/// # Errors
/// As [`listen`].
pub(crate) fn listen_secured(
    reactor: &Reactor,
    url: &str,
    tls: Option<Arc<dyn fio_reactor::Tls>>,
) -> Result<Uuid, Error> {
    let args = ListenArgs::new(url, on_open);
    reactor.listen(match tls {
        Some(tls) => args.tls(tls),
        None => args,
    })
}

/// Serves an accepted connection with the hello protocol.
fn on_open(uuid: Uuid) {
    if let Err(error) = fio_reactor::attach(uuid, Hello::default()) {
        log::warn!("attaching connection {uuid} failed: {error}");
    }
}

/// The program: listens on `options.url` and runs the process's reactor until SIGINT or
/// SIGTERM.
///
/// # Errors
/// - what [`listen`] reports (for example the port is taken);
/// - what `fio_cluster::start` reports.
pub(crate) fn run(options: &Options) -> Result<(), Error> {
    support::init_logger(LevelFilter::Info);
    let reactor = Reactor::current();
    let tls = support::tls(options)?;
    let listeners = support::listen_all(&reactor, tls.clone(), on_open, || {
        listen_secured(&reactor, &options.url, tls.clone())
    })?;
    let address = support::addresses(&listeners, &options.url);
    reactor.state_callback_add(CallbackEvent::OnStart, move || {
        log::info!(
            "http_hello listening on {address} ({} engine, pid {})",
            fio_reactor::engine(),
            std::process::id()
        );
    });
    support::start(options)
}

#[cfg_attr(test, allow(dead_code, reason = "the tests call `listen` directly"))]
fn main() -> ExitCode {
    support::main("http_hello", USAGE, |options| run(&options))
}
