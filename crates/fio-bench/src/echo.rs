//! The echo baseline: every byte read is written back, in order, as soon as it was read.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::Error;
use crate::args::is_per_connection;

/// The read buffer of every connection, as the benchmark method fixes it.
const READ_BUFFER: usize = 64 * 1024;

/// Echoes every connection `listener` accepts, one task per connection, until `accept` fails.
///
/// Each connection gets `TCP_NODELAY` and a 64 KiB buffer: it reads what is there and writes
/// it all back with one `write_all`. A connection that fails or closes just ends its task.
///
/// # Errors
///
/// - [`Error::Accept`] when `accept` fails for a reason that is not about one connection
///   (aborted or reset connections are skipped).
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
///     let server = tokio::spawn(fio_bench::serve_echo(listener));
///     let mut client = tokio::net::TcpStream::connect(address).await?;
///     client.write_all(b"*1\r\n$4\r\nPING\r\n").await?;
///     let mut reply = [0; 14];
///     client.read_exact(&mut reply).await?;
///     assert_eq!(&reply, b"*1\r\n$4\r\nPING\r\n");
///     server.abort();
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn serve_echo(listener: TcpListener) -> Result<(), Error> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(echo(stream));
            }
            Err(error) if is_per_connection(&error) => {}
            Err(error) => return Err(Error::Accept(error)),
        }
    }
}

/// Echoes one connection until the peer closes it or an error ends it.
async fn echo(mut stream: TcpStream) {
    // Without TCP_NODELAY small replies could wait for the peer's delayed ACK; a failure only
    // costs latency, so the connection is served either way.
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0; READ_BUFFER];
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if stream.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
