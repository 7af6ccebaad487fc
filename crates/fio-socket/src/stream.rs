//! The `std::io` bridge (FastSocket's `GetFastSocketStream`, an `fopencookie` `FILE*`):
//! [`Read`] and [`Write`] over a socket and its ring.

use std::fmt;
use std::io::{self, Read, Write};

use fio_ring::Ring;

use crate::socket::Socket;

/// `Read`/`Write` over a borrowed socket: reads copy buffered bytes, writes queue a copy.
///
/// `read` returns `WouldBlock` when nothing is buffered and `Ok(0)` at the end of the stream;
/// `write` returns `WouldBlock` while the send queue is over its soft limit and `BrokenPipe`
/// once the socket is closed or failed. Bytes leave at the end of the ring's tick; `flush`
/// does nothing.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use std::net::{TcpListener, TcpStream};
/// use std::time::Duration;
/// use fio_buffer::{BufferPool, PoolConfig};
/// use fio_ring::{Ring, RingConfig};
/// use fio_socket::{Socket, SocketConfig};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut peer = TcpStream::connect(listener.local_addr()?)?;
/// let (stream, _) = listener.accept()?;
/// let mut ring = Ring::new(RingConfig::new(64))?;
/// let pool = BufferPool::new(PoolConfig::new(4096))?;
/// let group = ring.register_buffer_group(pool.clone(), 16)?;
/// let socket = Socket::new(&mut ring, stream.into(), SocketConfig::new(group, pool.clone(), pool), |_, _, _| {})?;
///
/// let mut buf = [0u8; 5];
/// let error = socket.stream(&mut ring).read(&mut buf).expect_err("nothing arrived yet");
/// assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock);
/// peer.write_all(b"hello")?;
/// for _ in 0..1000 {
///     if socket.buffered() == 5 { break; }
///     ring.wait(Some(Duration::from_millis(10)))?;
/// }
/// socket.stream(&mut ring).read_exact(&mut buf)?;
/// assert_eq!(&buf, b"hello");
/// socket.into_stream(&mut ring).write_all(b"bye")?; // dropping it closes the socket
/// for _ in 0..1000 {
///     if ring.in_flight() == 0 { break; }
///     ring.wait(Some(Duration::from_millis(10)))?;
/// }
/// let mut rest = String::new();
/// peer.read_to_string(&mut rest)?;
/// assert_eq!(rest, "bye");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SocketStream<'a> {
    socket: &'a Socket,
    ring: &'a mut Ring,
}

/// `Read`/`Write` over an owned socket, closed gracefully when dropped (FastSocket's
/// `GetFastSocketStream(socket, own = 1)`).
pub struct OwnedSocketStream<'a> {
    socket: Socket,
    ring: &'a mut Ring,
}

impl Socket {
    /// A `Read`/`Write` view of this socket on `ring`.
    pub fn stream<'a>(&'a self, ring: &'a mut Ring) -> SocketStream<'a> {
        SocketStream { socket: self, ring }
    }

    /// A `Read`/`Write` stream that owns this socket and closes it when dropped.
    pub fn into_stream(self, ring: &mut Ring) -> OwnedSocketStream<'_> {
        OwnedSocketStream { socket: self, ring }
    }
}

impl OwnedSocketStream<'_> {
    /// The socket.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }
}

fn read(socket: &Socket, ring: &mut Ring, buf: &mut [u8]) -> io::Result<usize> {
    let count = socket.receive(ring, buf, false)?;
    if count > 0 || buf.is_empty() || socket.is_eof() {
        return Ok(count);
    }
    Err(io::ErrorKind::WouldBlock.into())
}

fn write(socket: &Socket, ring: &mut Ring, buf: &[u8]) -> io::Result<usize> {
    if !socket.is_writable() && socket.is_open() && socket.error().is_none() {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    socket.transmit(ring, buf)?;
    Ok(buf.len())
}

impl Read for SocketStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read(self.socket, self.ring, buf)
    }
}

impl Write for SocketStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write(self.socket, self.ring, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for OwnedSocketStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read(&self.socket, self.ring, buf)
    }
}

impl Write for OwnedSocketStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write(&self.socket, self.ring, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for OwnedSocketStream<'_> {
    fn drop(&mut self) {
        if let Err(error) = self.socket.close(self.ring) {
            log::warn!("closing a socket stream: {error}");
        }
    }
}

impl fmt::Debug for SocketStream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketStream")
            .field("socket", self.socket)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for OwnedSocketStream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSocketStream")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}
