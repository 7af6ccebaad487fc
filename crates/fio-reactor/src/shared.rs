//! [`shared_payload`]: one pooled copy of a message that many connections send.

use std::sync::OnceLock;

use fio_buffer::{SharedBuffer, SizeClasses};

/// The size classes of the process-wide payload pool, smallest first.
pub const SHARED_PAYLOAD_SIZES: [usize; 3] = [512, 4096, 64 * 1024];

fn pool() -> &'static Result<SizeClasses, fio_buffer::Error> {
    static POOL: OnceLock<Result<SizeClasses, fio_buffer::Error>> = OnceLock::new();
    POOL.get_or_init(|| SizeClasses::from_sizes(SHARED_PAYLOAD_SIZES))
}

/// Copies `bytes` once into a buffer from a process-wide pool and returns it as a
/// [`SharedBuffer`]: a reference-counted, read-only payload whose clones cost an atomic
/// increment. To broadcast, make one and [`write2`](crate::write2) a clone to each peer (a
/// `SharedBuffer` converts into a [`Payload`](crate::Payload) as a
/// [`Chunk::Shared`](crate::Chunk::Shared)); the buffer returns to the pool when the last send
/// that uses it has finished. Safe to call from any thread.
///
/// Payloads larger than the largest class (64 KiB, see [`SHARED_PAYLOAD_SIZES`]) are refused:
/// send those as a `Vec<u8>` per peer, or build your own pool with
/// [`BufferPool`](crate::BufferPool).
///
/// # Errors
/// - [`BufferError::TooLarge`](crate::BufferError::TooLarge) when `bytes` exceeds 64 KiB.
/// - [`BufferError::Exhausted`](crate::BufferError::Exhausted) or
///   [`ArenaAlloc`](crate::BufferError::ArenaAlloc) when the pool cannot give a buffer.
///
/// # Examples
/// ```
/// use fio_reactor::{Payload, shared_payload};
///
/// let line = shared_payload(b"alice: hello\n")?;
/// // One copy in memory, one handle per peer: `fio_reactor::write2(peer, line.clone())`.
/// let for_peers: Vec<Payload> = (0..3).map(|_| line.clone().into()).collect();
/// assert_eq!(line.ref_count(), 4);
/// assert!(matches!(&for_peers[0], Payload::Data(fio_reactor::Chunk::Shared(_))));
/// assert_eq!(&line[..], b"alice: hello\n");
/// # Ok::<(), fio_reactor::BufferError>(())
/// ```
pub fn shared_payload(bytes: &[u8]) -> Result<SharedBuffer, fio_buffer::Error> {
    let classes = pool().as_ref().map_err(Clone::clone)?;
    let mut buffer = classes.take(bytes.len())?;
    let copied = buffer.extend_from_slice(bytes);
    debug_assert_eq!(copied, bytes.len());
    Ok(buffer.into_shared())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_returns_to_the_pool() {
        let big = vec![7_u8; 5000];
        let payload = shared_payload(&big).unwrap();
        assert_eq!(&payload[..], &big[..]);
        assert!(payload.capacity() >= 5000);
        assert!(matches!(
            shared_payload(&vec![0; 64 * 1024 + 1]),
            Err(fio_buffer::Error::TooLarge { .. })
        ));
        assert_eq!(shared_payload(b"").unwrap().len(), 0);
    }
}
