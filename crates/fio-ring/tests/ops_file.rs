//! File and pipe operations against real files and pipes.

mod util;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;

use std::os::unix::fs::PermissionsExt;

use fio_ring::{BufferPool, IoBuf, Op, OpKind, OpenFlags, PoolConfig, WriteBuf};
use util::{TempPath, collector, has_final, pattern, ring, run_until};

#[test]
fn nop_completes_with_zero() {
    let mut ring = ring();
    let (done, handler) = collector();
    let id = ring.submit(Op::nop(), handler).unwrap();
    run_until(&mut ring, || has_final(&done));
    let done = done.borrow();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id(), id);
    assert_eq!(done[0].result().unwrap(), 0);
    assert_eq!(done[0].kind(), OpKind::Nop);
    assert!(!ring.is_in_flight(id));
}

#[test]
fn write_then_read_a_file_at_offsets() {
    require!(ring(), OpKind::Write);
    let mut ring = ring();
    let path = TempPath::new("rw");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path.0)
        .unwrap();
    let (written, handler) = collector();
    ring.submit(Op::write(&file, b"hello ".to_vec(), Some(0)), handler)
        .unwrap();
    let (written2, handler) = collector();
    ring.submit(Op::write(&file, "world", Some(6)), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&written) && has_final(&written2));
    let mut first = written.borrow_mut().pop().unwrap();
    assert_eq!(first.result().unwrap(), 6);
    let rest = first.take_write_buf().unwrap();
    assert!(
        rest.is_empty(),
        "the buffer comes back advanced past what was written"
    );
    assert_eq!(rest.into_vec().unwrap(), b"hello ");

    let pool = BufferPool::new(PoolConfig::new(64)).unwrap();
    let (read, handler) = collector();
    ring.submit(Op::read(&file, pool.take().unwrap(), Some(0)), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&read));
    let mut done = read.borrow_mut().pop().unwrap();
    assert_eq!(done.result().unwrap(), 11);
    let buffer = done.take_buffer().unwrap();
    assert_eq!(&buffer[..], b"hello world");
}

#[test]
fn vectored_write_and_read() {
    let mut ring = ring();
    require!(ring, OpKind::Writev);
    let path = TempPath::new("vec");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path.0)
        .unwrap();
    let parts = vec![
        WriteBuf::from("abc"),
        WriteBuf::from(b"defg".to_vec()),
        WriteBuf::from("h"),
    ];
    let (written, handler) = collector();
    ring.submit(Op::writev(&file, parts, Some(0)).unwrap(), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&written));
    let mut done = written.borrow_mut().pop().unwrap();
    assert_eq!(done.result().unwrap(), 8);
    assert!(done.take_write_bufs().iter().all(|buf| buf.is_empty()));

    let bufs = vec![
        IoBuf::from(Vec::with_capacity(2)),
        IoBuf::from(Vec::with_capacity(3)),
        IoBuf::from(Vec::with_capacity(10)),
    ];
    let (read, handler) = collector();
    ring.submit(Op::readv(&file, bufs, Some(0)).unwrap(), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&read));
    let mut done = read.borrow_mut().pop().unwrap();
    assert_eq!(done.result().unwrap(), 8);
    let bufs: Vec<Vec<u8>> = done
        .take_read_bufs()
        .into_iter()
        .map(IoBuf::into_vec)
        .collect();
    assert_eq!(bufs, vec![b"ab".to_vec(), b"cde".to_vec(), b"fgh".to_vec()]);
}

#[test]
fn pipe_read_and_write_use_the_stream_position() {
    let mut ring = ring();
    let (reader, writer) = fio_sys::pipe().unwrap();
    let data = pattern(3000);
    let (written, handler) = collector();
    ring.submit(Op::write(&writer, data.clone(), None), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&written));
    assert_eq!(written.borrow()[0].result().unwrap(), 3000);

    let mut received = Vec::new();
    for _ in 0..10 {
        if received.len() == data.len() {
            break;
        }
        let (read, handler) = collector();
        ring.submit(Op::read(&reader, Vec::with_capacity(1024), None), handler)
            .unwrap();
        run_until(&mut ring, || has_final(&read));
        let buf = read.borrow_mut().pop().unwrap().take_read_buf().unwrap();
        received.extend_from_slice(&buf);
    }
    assert_eq!(received, data);
}

#[test]
fn fsync_openat_statx_and_close() {
    let mut ring = ring();
    require!(ring, OpKind::OpenAt);
    require!(ring, OpKind::Statx);
    let path = TempPath::new("meta");
    std::fs::write(&path.0, pattern(1234)).unwrap();

    let (opened, handler) = collector();
    ring.submit(Op::openat(None, &path.0, libc::O_RDWR, 0).unwrap(), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&opened));
    let fd = opened.borrow_mut().pop().unwrap().take_fd().unwrap();

    let (synced, handler) = collector();
    ring.submit(Op::fsync(fd.as_fd(), false), handler).unwrap();
    let (stat, handler) = collector();
    ring.submit(
        Op::statx(None, &path.0, 0, libc::STATX_SIZE).unwrap(),
        handler,
    )
    .unwrap();
    run_until(&mut ring, || has_final(&synced) && has_final(&stat));
    assert_eq!(synced.borrow()[0].result().unwrap(), 0);
    let statx = stat.borrow_mut().pop().unwrap().take_statx().unwrap();
    assert_eq!(statx.stx_size, 1234);

    let (closed, handler) = collector();
    ring.submit(Op::close(fd), handler).unwrap();
    run_until(&mut ring, || has_final(&closed));
    assert_eq!(closed.borrow()[0].result().unwrap(), 0);

    assert!(matches!(
        Op::openat(None, "bad\0path", libc::O_RDONLY, 0),
        Err(fio_ring::Error::InvalidArgument { .. })
    ));
}

#[test]
fn openat_missing_file_reports_enoent() {
    let mut ring = ring();
    let (opened, handler) = collector();
    ring.submit(
        Op::openat(None, "/nonexistent/fio-ring", libc::O_RDONLY, 0).unwrap(),
        handler,
    )
    .unwrap();
    run_until(&mut ring, || has_final(&opened));
    let mut done = opened.borrow_mut().pop().unwrap();
    assert_eq!(
        done.result().unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    assert!(done.take_fd().is_none());
}

#[test]
fn splice_moves_a_file_into_a_pipe() {
    let mut ring = ring();
    require!(ring, OpKind::Splice);
    let path = TempPath::new("splice");
    let data = pattern(500);
    std::fs::write(&path.0, &data).unwrap();
    let file = File::open(&path.0).unwrap();
    let (reader, writer) = fio_sys::pipe().unwrap();
    let (spliced, handler) = collector();
    ring.submit(Op::splice(&file, Some(0), &writer, None, 500), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&spliced));
    assert_eq!(spliced.borrow()[0].result().unwrap(), 500);
    drop(writer);
    let mut out = Vec::new();
    File::from(reader).read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
}

#[test]
fn write_to_a_closed_pipe_reports_epipe() {
    let mut ring = ring();
    let (reader, writer) = fio_sys::pipe().unwrap();
    drop(reader);
    let (written, handler) = collector();
    ring.submit(Op::write(&writer, "x", None), handler).unwrap();
    run_until(&mut ring, || has_final(&written));
    let mut done = written.borrow_mut().pop().unwrap();
    assert_eq!(done.result().unwrap_err().raw_os_error(), Some(libc::EPIPE));
    // The source comes back unadvanced after a failure.
    assert_eq!(done.take_write_buf().unwrap().remaining(), 1);
    let mut file = File::from(writer);
    assert!(file.write(b"y").is_err());
}

#[test]
fn typed_open_and_stat() {
    let mut ring = ring();
    require!(ring, OpKind::OpenAt);
    require!(ring, OpKind::Statx);
    let path = TempPath::new("typed");

    let (opened, handler) = collector();
    let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE;
    ring.submit(Op::open(None, &path.0, flags, 0o640).unwrap(), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&opened));
    let fd = opened.borrow_mut().pop().unwrap().take_fd().unwrap();
    File::from(fd).write_all(&pattern(777)).unwrap();

    let (stat, handler) = collector();
    ring.submit(Op::stat(None, &path.0).unwrap(), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&stat));
    let stat = stat.borrow_mut().pop().unwrap().take_stat().unwrap();
    let meta = std::fs::metadata(&path.0).unwrap();
    assert_eq!(stat.size, 777);
    assert!(stat.is_file() && !stat.is_dir());
    assert_eq!(stat.permissions(), meta.permissions().mode() & 0o7777);
    assert_eq!(stat.modified, meta.modified().unwrap());

    // EXCLUSIVE refuses an existing file.
    let (again, handler) = collector();
    ring.submit(Op::open(None, &path.0, flags, 0o640).unwrap(), handler)
        .unwrap();
    run_until(&mut ring, || has_final(&again));
    let error = again.borrow()[0].result().unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
}
