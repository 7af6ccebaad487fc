//! The README example: an echo over loopback through one `Socket`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use fio_buffer::{BufferPool, PoolConfig};
use fio_ring::{Ring, RingConfig};
use fio_socket::{Event, Socket, SocketConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (accepted, _) = listener.accept()?;

    let mut ring = Ring::new(RingConfig::new(64))?;
    let pool = BufferPool::new(PoolConfig::new(16 * 1024))?;
    let group = ring.register_buffer_group(pool.clone(), 64)?;
    let config = SocketConfig::new(group, pool.clone(), pool);
    // Echo every received buffer back without copying it.
    let socket = Socket::new(&mut ring, accepted.into(), config, |ring, socket, event| {
        if let Event::Readable { .. } = event {
            while let Ok(Some(buffer)) = socket.receive_buffer(ring) {
                let _ = socket.transmit_chunk(ring, buffer);
            }
        }
    })?;

    client.write_all(b"hello, ring")?;
    client.set_read_timeout(Some(Duration::from_millis(1)))?;
    let mut reply = Vec::new();
    for _ in 0..1000 {
        ring.wait(Some(Duration::from_millis(10)))?;
        let mut buf = [0u8; 64];
        if let Ok(count) = client.read(&mut buf) {
            reply.extend_from_slice(&buf[..count]);
        }
        if reply.len() == 11 {
            break;
        }
    }
    assert_eq!(reply, b"hello, ring");

    socket.close(&mut ring)?;
    while !ring.is_idle() {
        ring.wait(Some(Duration::from_millis(10)))?;
    }
    println!("echoed {:?}", String::from_utf8_lossy(&reply));
    Ok(())
}
