//! A TCP echo server using only fio-ring: multishot accept, multishot receive into a shared
//! provided-buffer ring, and sends that resubmit whatever a short send left.
//!
//! Usage: `cargo run -p fio-ring --example ring_echo -- [PORT] [--max-conns N]
//! [--batch-wait MICROS]` (it listens on `0.0.0.0:3000` by default, the spec's default
//! address; port 0 picks a free one; with `--max-conns` the server exits after N connections
//! closed; `--batch-wait` lets each wait collect up to 32 completions for that long, see
//! `RingConfig::batch_wait`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;

use fio_ring::{BufferPool, Completion, Op, PoolConfig, Ring, RingConfig, WriteBuf};

/// One client connection.
struct Conn {
    stream: TcpStream,
    /// Received data waiting to be echoed, oldest first. Only one send is in flight per
    /// connection so a short send can never reorder the stream.
    pending: VecDeque<WriteBuf>,
    sending: bool,
    /// The peer closed (or failed); close once everything queued was sent.
    closing: bool,
    /// Counted in `Server::closed` already.
    counted: bool,
}

type ConnRef = Rc<RefCell<Conn>>;

struct Server {
    group: fio_ring::BufferGroup,
    closed: usize,
    max_conns: Option<usize>,
}

type ServerRef = Rc<RefCell<Server>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut port = 3000u16;
    let mut max_conns = None;
    let mut batch_wait = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--max-conns" => max_conns = Some(args.next().ok_or("--max-conns N")?.parse()?),
            "--batch-wait" => {
                let micros: u64 = args.next().ok_or("--batch-wait MICROS")?.parse()?;
                batch_wait = Some(std::time::Duration::from_micros(micros));
            }
            other => port = other.parse()?,
        }
    }
    let mut config = RingConfig::new(256);
    if let Some(min_wait) = batch_wait {
        config = config.batch_wait(32, min_wait);
    }
    let mut ring = Ring::new(config)?;
    if !ring.features().multishot_recv() || !ring.features().multishot_accept() {
        return Err(format!("this example needs Linux 6.0: {}", ring.features()).into());
    }
    // One provider shared by every connection: 256 buffers of 4 KiB.
    let pool = BufferPool::new(PoolConfig::new(4096).with_max_buffers(1024))?;
    let group = ring.register_buffer_group(pool, 256)?;
    let listener = TcpListener::bind(("0.0.0.0", port))?;
    println!("listening on {}", listener.local_addr()?);

    let server: ServerRef = Rc::new(RefCell::new(Server {
        group,
        closed: 0,
        max_conns,
    }));
    let accept_server = server.clone();
    ring.submit(Op::accept_multishot(&listener), move |ring, done| {
        on_accept(ring, &accept_server, done);
    })?;
    loop {
        ring.wait(None)?;
        let server = server.borrow();
        if server.max_conns.is_some_and(|max| server.closed >= max) {
            println!("served {} connections", server.closed);
            return Ok(());
        }
    }
}

fn on_accept(ring: &mut Ring, server: &ServerRef, mut done: Completion) {
    let Some(fd) = done.take_fd() else {
        eprintln!("accept failed: {:?}", done.result());
        return;
    };
    let conn: ConnRef = Rc::new(RefCell::new(Conn {
        stream: TcpStream::from(fd),
        pending: VecDeque::new(),
        sending: false,
        closing: false,
        counted: false,
    }));
    let group = server.borrow().group;
    let op = Op::recv_multishot(&conn.borrow().stream, group);
    let (recv_conn, recv_server) = (conn.clone(), server.clone());
    if let Err(error) = ring.submit(op, move |ring, done| {
        on_recv(ring, &recv_server, &recv_conn, done);
    }) {
        eprintln!("cannot receive: {error}");
    }
}

fn on_recv(ring: &mut Ring, server: &ServerRef, conn: &ConnRef, mut done: Completion) {
    if let Some(buffer) = done.take_buffer()
        && !buffer.is_empty()
    {
        // Zero-copy hand-off: the received pool buffer itself is sent back.
        conn.borrow_mut().pending.push_back(WriteBuf::from(buffer));
        send_next(ring, server, conn);
    }
    if done.is_final() {
        conn.borrow_mut().closing = true;
        send_next(ring, server, conn);
    }
}

/// Starts the next send if none is in flight, or closes a drained, closing connection.
fn send_next(ring: &mut Ring, server: &ServerRef, conn: &ConnRef) {
    let op = {
        let mut state = conn.borrow_mut();
        if state.sending {
            return;
        }
        match state.pending.pop_front() {
            Some(buf) => {
                state.sending = true;
                Op::send(&state.stream, buf)
            }
            None => {
                if state.closing && !state.counted {
                    // Dropping the last reference (the handlers') closes the socket.
                    state.counted = true;
                    server.borrow_mut().closed += 1;
                }
                return;
            }
        }
    };
    let (send_conn, send_server) = (conn.clone(), server.clone());
    let submitted = ring.submit(op, move |ring, mut done| {
        let mut state = send_conn.borrow_mut();
        state.sending = false;
        match (done.result(), done.take_write_buf()) {
            (Ok(_), Some(rest)) if !rest.is_empty() => state.pending.push_front(rest),
            (Ok(_), _) => {}
            (Err(_), _) => {
                // The peer is gone: drop what is queued and end the receive too.
                state.pending.clear();
                state.closing = true;
                let _ = state.stream.shutdown(std::net::Shutdown::Both);
            }
        }
        drop(state);
        send_next(ring, &send_server, &send_conn);
    });
    if submitted.is_err() {
        let mut state = conn.borrow_mut();
        state.sending = false;
        state.pending.clear();
    }
}
