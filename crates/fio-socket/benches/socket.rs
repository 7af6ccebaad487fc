//! fio-socket against its practical ceilings on loopback, each measured in the same run.
//!
//! - `bulk`: one connection, 32 MiB per iteration from a fio-socket sender (pooled 64 KiB
//!   shared chunks, `Mode::Regular`) to a blocking std reader thread, against a blocking
//!   `std::net::TcpStream` writer feeding the same reader. The std pair is the ceiling: one
//!   `write(2)` per 64 KiB with no event loop at all.
//! - `echo64`: 64 connections, one round per iteration (64 messages of 64 bytes, each echoed),
//!   from one blocking client thread, against a fio-socket echo server on one ring thread and
//!   a std thread-per-connection echo server (blocking `read`/`write_all`, 64 threads). The
//!   threaded server is the simplest correct std design and, with the client pipelining
//!   across all 64 connections, it uses both cores. (The epoll comparison is the reactor's:
//!   `cargo xtask bench load` runs the same echo on both of its engines.)
//!
//! Ratios (fio-socket time / baseline time, lower is better) go to the terminal and to
//! `$FIO_BENCH_DIR/fio-socket.json`. Run: `cargo bench -p fio-socket --bench socket`.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use fio_buffer::{BufferPool, PoolConfig, SharedBuffer};
use fio_ring::{Ring, RingConfig};
use fio_socket::{Chunk, Event, Socket, SocketConfig};
use fio_test::{Ratio, SameRun};

/// Bytes per bulk iteration.
const BULK: usize = 32 << 20;
/// Bulk chunk size.
const CHUNK: usize = 64 * 1024;
/// Echo connections.
const CONNECTIONS: usize = 64;
/// Echo message size.
const MESSAGE: usize = 64;

fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// A reader thread that drains `stream` to its end and returns the byte count.
fn drain(mut stream: TcpStream) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0;
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return total,
                Ok(count) => total += count,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => panic!("bulk reader: {error}"),
            }
        }
    })
}

/// The fio-socket side of `bulk`: a ring and pools kept across iterations.
struct BulkSender {
    ring: Ring,
    config: SocketConfig,
    payload: SharedBuffer,
}

impl BulkSender {
    fn new() -> Self {
        let mut ring = Ring::new(RingConfig::new(256)).expect("ring");
        let pool = BufferPool::new(PoolConfig::new(CHUNK)).expect("pool");
        let group = ring.register_buffer_group(pool.clone(), 16).expect("group");
        let mut payload = pool.take().expect("buffer");
        payload.extend_from_slice(&[0x5a; CHUNK]);
        Self {
            ring,
            config: SocketConfig::new(group, pool.clone(), pool),
            payload: payload.into_shared(),
        }
    }

    fn transfer(&mut self) -> Duration {
        let (ours, peer) = tcp_pair();
        let start = Instant::now();
        let reader = drain(peer);
        let socket = Socket::new(
            &mut self.ring,
            ours.into(),
            self.config.clone(),
            |_, _, _| {},
        )
        .expect("socket");
        let mut queued = 0;
        while queued < BULK {
            while queued < BULK && socket.queued() < 4 * CHUNK {
                socket
                    .transmit_chunk(&mut self.ring, Chunk::Shared(self.payload.clone()))
                    .expect("open");
                queued += CHUNK;
            }
            self.ring.wait(Some(Duration::from_secs(1))).expect("wait");
        }
        socket.close(&mut self.ring).expect("close");
        while !socket.is_closed() {
            self.ring.wait(Some(Duration::from_secs(1))).expect("wait");
        }
        assert_eq!(reader.join().expect("reader"), BULK);
        start.elapsed()
    }
}

fn std_transfer() -> Duration {
    let (mut ours, peer) = tcp_pair();
    let payload = vec![0x5a; CHUNK];
    let start = Instant::now();
    let reader = drain(peer);
    for _ in 0..BULK / CHUNK {
        ours.write_all(&payload).expect("write");
    }
    drop(ours);
    assert_eq!(reader.join().expect("reader"), BULK);
    start.elapsed()
}

/// An echo server running on its own thread until dropped.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    clients: Vec<TcpStream>,
}

impl Server {
    fn start(serve: fn(Vec<TcpStream>, Arc<AtomicBool>)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr");
        let clients: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|_| {
                let client = TcpStream::connect(address).expect("connect");
                client.set_nodelay(true).expect("nodelay");
                client
            })
            .collect();
        let accepted: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|_| {
                let (stream, _) = listener.accept().expect("accept");
                stream.set_nodelay(true).expect("nodelay");
                stream
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || serve(accepted, flag));
        Self {
            stop,
            thread: Some(thread),
            clients,
        }
    }

    /// One round: every client sends a message, then every client reads its echo.
    fn rounds(&mut self, rounds: u64) -> Duration {
        let message = [0x42u8; MESSAGE];
        let mut reply = [0u8; MESSAGE];
        let start = Instant::now();
        for _ in 0..rounds {
            for client in &mut self.clients {
                client.write_all(&message).expect("client write");
            }
            for client in &mut self.clients {
                client.read_exact(&mut reply).expect("client read");
            }
        }
        start.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.clients.clear();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }
}

fn fio_echo_server(streams: Vec<TcpStream>, stop: Arc<AtomicBool>) {
    let mut ring = Ring::new(RingConfig::new(256)).expect("ring");
    let pool = BufferPool::new(PoolConfig::new(4096)).expect("pool");
    let group = ring
        .register_buffer_group(pool.clone(), 256)
        .expect("group");
    let config = SocketConfig::new(group, pool.clone(), pool);
    let sockets: Vec<Socket> = streams
        .into_iter()
        .map(|stream| {
            Socket::new(
                &mut ring,
                stream.into(),
                config.clone(),
                |ring, socket, event| {
                    if let Event::Readable { .. } = event {
                        while let Ok(Some(buffer)) = socket.receive_buffer(ring) {
                            if socket.transmit_chunk(ring, buffer).is_err() {
                                return;
                            }
                        }
                    }
                },
            )
            .expect("socket")
        })
        .collect();
    while !stop.load(Ordering::Acquire) {
        ring.wait(Some(Duration::from_millis(10))).expect("wait");
    }
    for socket in &sockets {
        let _ = socket.abort(&mut ring);
    }
    for _ in 0..100 {
        if ring.in_flight() == 0 {
            break;
        }
        ring.wait(Some(Duration::from_millis(10))).expect("wait");
    }
}

fn threaded_echo_server(streams: Vec<TcpStream>, stop: Arc<AtomicBool>) {
    let threads: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(count) => {
                            if stream.write_all(&buf[..count]).is_err() {
                                return;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // Each thread ends when its client hangs up, which `Server::drop` does before joining.
    for thread in threads {
        let _ = thread.join();
    }
    drop(stop);
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .configure_from_args();
    let run = SameRun::new("fio-socket");

    let mut sender = BulkSender::new();
    run.bench_custom(&mut criterion, "bulk/fio-socket", |iterations| {
        (0..iterations).map(|_| sender.transfer()).sum()
    });
    run.bench_custom(&mut criterion, "bulk/std", |iterations| {
        (0..iterations).map(|_| std_transfer()).sum()
    });

    let mut fio = Server::start(fio_echo_server);
    run.bench_custom(&mut criterion, "echo64/fio-socket", |rounds| {
        fio.rounds(rounds)
    });
    drop(fio);
    let mut threaded = Server::start(threaded_echo_server);
    run.bench_custom(&mut criterion, "echo64/std-threads", |rounds| {
        threaded.rounds(rounds)
    });
    drop(threaded);

    run.report(&[
        Ratio {
            label: "bulk fio-socket/std (time per 32 MiB)",
            contender: "bulk/fio-socket",
            baseline: "bulk/std",
        },
        Ratio {
            label: "echo64 fio-socket/std-threads (time per 64 messages)",
            contender: "echo64/fio-socket",
            baseline: "echo64/std-threads",
        },
    ]);
    // Figures only mean something in a real bench run (`cargo test --benches` runs once).
    let benching = std::env::args().any(|argument| argument == "--bench");
    if benching
        && let (Some(fio), Some(threads)) = (
            run.mean_ns("echo64/fio-socket"),
            run.mean_ns("echo64/std-threads"),
        )
    {
        let per_second = |mean_ns: f64| CONNECTIONS as f64 * 1e9 / mean_ns;
        println!(
            "echo64 messages/s: fio-socket {:.0}, std threads {:.0}",
            per_second(fio),
            per_second(threads)
        );
    }
    if benching
        && let (Some(fio), Some(std)) = (run.mean_ns("bulk/fio-socket"), run.mean_ns("bulk/std"))
    {
        let gib_per_second = |mean_ns: f64| BULK as f64 / mean_ns;
        println!(
            "bulk GB/s: fio-socket {:.2}, std {:.2}",
            gib_per_second(fio),
            gib_per_second(std)
        );
    }
    criterion.final_summary();
}
