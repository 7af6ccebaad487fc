//! The HTTP baseline: every `\r\n\r\n`-terminated request read gets one fixed hello response.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::Error;
use crate::args::is_per_connection;

/// The response to every request, byte for byte: every HTTP contender must send exactly this.
pub const HTTP_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Length: 12\r\n\
Connection: keep-alive\r\n\
\r\n\
Hello World!";

/// The read buffer of every connection.
const READ_BUFFER: usize = 64 * 1024;

/// The end of a request head.
const TERMINATOR: &[u8; 4] = b"\r\n\r\n";

/// Counts the complete requests in a byte stream fed in arbitrary pieces.
///
/// A request is everything up to and including `\r\n\r\n`; the benchmark's requests are GETs
/// without a body. The counter remembers how much of a terminator the last piece ended with,
/// so a request split anywhere across reads is counted once, when its last byte arrives.
///
/// # Examples
///
/// ```
/// use fio_bench::RequestCounter;
///
/// let mut counter = RequestCounter::default();
/// assert_eq!(counter.feed(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n"), 1);
/// assert_eq!(counter.feed(b"\r"), 0);
/// assert_eq!(counter.feed(b"\nGET"), 1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounter {
    /// How many bytes of [`TERMINATOR`] the stream currently ends with (0 to 3).
    matched: usize,
}

impl RequestCounter {
    /// Feeds the next bytes of the stream and returns how many requests they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        let mut complete = 0;
        let mut matched = self.matched;
        for &byte in bytes {
            matched = if byte == TERMINATOR[matched] {
                matched + 1
            } else if byte == b'\r' {
                // A mismatch can only restart the match at a '\r'; no proper prefix of
                // "\r\n\r\n" is also a suffix of a longer matched prefix except "\r".
                1
            } else {
                0
            };
            if matched == TERMINATOR.len() {
                complete += 1;
                matched = 0;
            }
        }
        self.matched = matched;
        complete
    }
}

/// Serves the hello response on every connection `listener` accepts until `accept` fails.
///
/// Each connection gets `TCP_NODELAY` and a 64 KiB buffer. After each read it writes, with one
/// `write_all`, as many [`HTTP_RESPONSE`]s as the read completed requests ([`RequestCounter`]),
/// so pipelined requests are answered in one write. A failing or closed connection just ends.
///
/// # Errors
///
/// - [`Error::Accept`] when `accept` fails for a reason that is not about one connection.
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
/// runtime.block_on(async {
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
///     let address = listener.local_addr()?;
///     let server = tokio::spawn(fio_bench::serve_http(listener));
///     let mut client = tokio::net::TcpStream::connect(address).await?;
///     client.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await?;
///     let mut reply = vec![0; fio_bench::HTTP_RESPONSE.len()];
///     client.read_exact(&mut reply).await?;
///     assert!(reply.ends_with(b"\r\n\r\nHello World!"));
///     server.abort();
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn serve_http(listener: TcpListener) -> Result<(), Error> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(hello(stream));
            }
            Err(error) if is_per_connection(&error) => {}
            Err(error) => return Err(Error::Accept(error)),
        }
    }
}

/// Answers one connection's requests until the peer closes it or an error ends it.
async fn hello(mut stream: TcpStream) {
    // See `echo`: a failure only costs latency.
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0; READ_BUFFER];
    let mut replies = Vec::with_capacity(16 * HTTP_RESPONSE.len());
    let mut counter = RequestCounter::default();
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let complete = counter.feed(&buffer[..read]);
        if complete == 0 {
            continue;
        }
        replies.clear();
        for _ in 0..complete {
            replies.extend_from_slice(HTTP_RESPONSE);
        }
        if stream.write_all(&replies).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split_of_a_pipelined_stream_counts_the_same() {
        let stream = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\n\r\n\r\r\n\r\n";
        let whole = RequestCounter::default().feed(stream);
        assert_eq!(whole, 3);
        for cut in 0..=stream.len() {
            let mut counter = RequestCounter::default();
            let parts = counter.feed(&stream[..cut]) + counter.feed(&stream[cut..]);
            assert_eq!(parts, whole, "split at {cut}");
        }
    }

    #[test]
    fn byte_by_byte_feeding_counts_each_request_once() {
        let mut counter = RequestCounter::default();
        let request = b"GET / HTTP/1.1\r\n\r\n";
        let total: usize = request
            .repeat(16)
            .iter()
            .map(|byte| counter.feed(std::slice::from_ref(byte)))
            .sum();
        assert_eq!(total, 16);
    }

    #[test]
    fn near_misses_are_not_requests() {
        let mut counter = RequestCounter::default();
        assert_eq!(counter.feed(b"\r\n\n\r\n\r\r\n\r"), 0);
        assert_eq!(counter.feed(b"\n"), 1);
    }

    #[test]
    fn the_response_declares_its_body_length() {
        let text = std::str::from_utf8(HTTP_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert_eq!(body, "Hello World!");
    }
}
