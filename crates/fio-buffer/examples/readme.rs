//! The README example: take a buffer, share one payload between two sends, see the slot reused.

use fio_buffer::{BufferPool, Error, PoolConfig, SizeClasses};

fn main() -> Result<(), Error> {
    let pool = BufferPool::new(PoolConfig::new(16 * 1024))?;
    let mut buffer = pool.take()?;
    buffer.extend_from_slice(b"hello, peers");
    let address = buffer.as_ptr();

    // One payload feeding two sends: the slot goes back when the last handle drops.
    let payload = buffer.into_shared();
    let second_send = payload.clone();
    assert_eq!(&second_send[..], b"hello, peers");
    drop((payload, second_send));

    // The slot just given back is the next one handed out, at the same address.
    assert_eq!(pool.take()?.as_ptr(), address);

    // Size classes serve each request from the smallest pool that fits.
    let classes = SizeClasses::from_sizes([2048, 16 * 1024, 64 * 1024])?;
    assert_eq!(classes.take(3000)?.capacity(), 16 * 1024);
    println!("{:?}", pool.stats());
    Ok(())
}
