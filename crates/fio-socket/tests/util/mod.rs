//! Shared helpers for the fio-socket integration tests: a ring with a buffer group and pools,
//! bounded tick loops, loopback pairs, event recorders and a checkable byte pattern.
#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use fio_buffer::{BufferPool, PoolConfig};
use fio_ring::{BufferGroup, Ring, RingConfig};
use fio_socket::{Event, Socket, SocketConfig};

/// A ring with one buffer group, plus the pools a socket is created over.
pub struct Harness {
    pub ring: Ring,
    pub group: BufferGroup,
    /// The group's pool (also used as the inbound pool).
    pub inbound: BufferPool,
    pub outbound: BufferPool,
}

impl Harness {
    /// `entries` group buffers of `buffer_size` bytes; outbound buffers of 64 KiB.
    pub fn new(buffer_size: usize, entries: u16) -> Self {
        Self::with_pools(
            BufferPool::new(PoolConfig::new(buffer_size)).expect("inbound pool"),
            BufferPool::new(PoolConfig::new(64 * 1024)).expect("outbound pool"),
            entries,
        )
    }

    pub fn with_pools(inbound: BufferPool, outbound: BufferPool, entries: u16) -> Self {
        let mut ring = Ring::new(RingConfig::new(256)).expect("io_uring is available here");
        let group = ring
            .register_buffer_group(inbound.clone(), entries)
            .expect("buffer group");
        Self {
            ring,
            group,
            inbound,
            outbound,
        }
    }

    pub fn config(&self) -> SocketConfig {
        SocketConfig::new(self.group, self.inbound.clone(), self.outbound.clone())
    }

    /// Creates a socket over `fd` with the default configuration.
    pub fn open(
        &mut self,
        fd: impl Into<OwnedFd>,
        handler: impl FnMut(&mut Ring, &Socket, Event) + 'static,
    ) -> Socket {
        let config = self.config();
        self.open_with(config, fd, handler)
    }

    /// Creates a socket over `fd` with `config`.
    pub fn open_with(
        &mut self,
        config: SocketConfig,
        fd: impl Into<OwnedFd>,
        handler: impl FnMut(&mut Ring, &Socket, Event) + 'static,
    ) -> Socket {
        Socket::new(&mut self.ring, fd.into(), config, handler).expect("socket creation")
    }

    /// Ticks until `done()` holds; fails after 20 000 ticks or `secs` seconds.
    pub fn run_until(&mut self, secs: u64, mut done: impl FnMut(&mut Ring) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        for _ in 0..20_000 {
            if done(&mut self.ring) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "condition not met within {secs} s"
            );
            self.ring
                .wait(Some(Duration::from_millis(10)))
                .expect("ring wait");
        }
        assert!(
            done(&mut self.ring),
            "condition not met within 20 000 ticks"
        );
    }

    /// Ticks until the ring has nothing in flight.
    pub fn run_until_idle(&mut self) {
        self.run_until(10, |ring| ring.in_flight() == 0);
    }
}

/// A connected TCP pair on 127.0.0.1: (the side for fio-socket, the std peer).
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (ours, _) = listener.accept().expect("accept");
    (ours, peer)
}

/// Events a handler saw.
pub type Events = Rc<RefCell<Vec<Event>>>;

/// A handler that records every event.
pub fn recorder() -> (Events, impl FnMut(&mut Ring, &Socket, Event) + 'static) {
    let events: Events = Rc::default();
    let sink = events.clone();
    (events, move |_: &mut Ring, _: &Socket, event| {
        sink.borrow_mut().push(event)
    })
}

pub fn saw(events: &Events, event: Event) -> bool {
    events.borrow().contains(&event)
}

/// The byte at stream position `index` of the test pattern: never periodic at a power of two,
/// so a lost, duplicated or reordered chunk shows.
pub fn pattern_byte(index: u64) -> u8 {
    (index % 251) as u8
}

/// A block holding the pattern from position 0; any window `[p % 251, ..)` of it matches the
/// pattern at position `p`, so filling and checking are slice copies and compares.
pub struct Pattern {
    block: Vec<u8>,
}

impl Pattern {
    /// Windows up to `max_len` bytes long.
    pub fn new(max_len: usize) -> Self {
        let block = (0..(max_len + 251) as u64).map(pattern_byte).collect();
        Self { block }
    }

    /// The pattern bytes at stream positions `start..start + len`.
    pub fn window(&self, start: u64, len: usize) -> &[u8] {
        let offset = (start % 251) as usize;
        &self.block[offset..offset + len]
    }
}

/// Total bytes for the large transfers: `FIO_SOCKET_TRANSFER_MIB` (256 under `cargo xtask`),
/// the default; a smaller value makes a quick local run.
pub fn transfer_bytes() -> u64 {
    let mib = std::env::var("FIO_SOCKET_TRANSFER_MIB")
        .ok()
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(256);
    mib * 1024 * 1024
}
