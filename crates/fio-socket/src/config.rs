//! [`SocketConfig`] and [`Mode`]: what a socket is created over and how it sends.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use fio_buffer::{BufferPool, Chunk, SpareBuffers, WaterMarks};
use fio_ring::{BufferGroup, MAX_IOVECS, SendStorage};

use crate::error::Error;

/// How a socket moves bytes (FastSocket's `FASTSOCKET_MODE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Gathered `sendmsg(2)`, one per flush (`FASTSOCKET_MODE_REGULAR`).
    #[default]
    Regular,
    /// Pooled chunks of at least `min_len` unsent bytes go out with `IORING_OP_SEND_ZC`
    /// (Linux 6.0), the kernel reading them in place; each stays alive until the kernel's
    /// notification says it is done. Smaller chunks are gathered as in `Regular`
    /// (`FASTSOCKET_MODE_ZERO_COPY`).
    ZeroCopy {
        /// The smallest chunk worth pinning; below ~16 KiB copying is cheaper.
        min_len: usize,
    },
    /// As `Regular`, but every send that leaves data queued behind it carries `MSG_MORE`, so
    /// the kernel holds back a partial segment until the last send of the batch, which goes
    /// without it and flushes (`FASTSOCKET_MODE_AUTO_CORK`). Counted in
    /// [`SocketStats::corked_sends`](crate::SocketStats::corked_sends). Message mode never
    /// corks: on a datagram socket `MSG_MORE` would merge messages.
    AutoCork,
    /// `read(2)`/`write(2)` through the ring, for pipes and terminals
    /// (`FASTSOCKET_MODE_FILE_IO`): reads go into buffers of the inbound pool.
    FileIo,
}

impl Mode {
    /// The usual zero-copy threshold: 16 KiB.
    pub const ZERO_COPY_MIN_LEN: usize = 16 * 1024;
}

/// Everything a socket is created over besides the ring, the descriptor and the handler:
/// FastSocket's provider, pools, message header flag, mode and limit.
///
/// # Examples
/// ```
/// use fio_buffer::{BufferPool, PoolConfig};
/// use fio_ring::{Ring, RingConfig};
/// use fio_socket::{Mode, SocketConfig, WaterMarks};
///
/// let mut ring = Ring::new(RingConfig::new(64))?;
/// let pool = BufferPool::new(PoolConfig::new(16 * 1024))?;
/// let group = ring.register_buffer_group(pool.clone(), 64)?;
/// let config = SocketConfig::new(group, pool.clone(), pool)
///     .with_mode(Mode::AutoCork)
///     .with_limit(16)
///     .with_water_marks(WaterMarks::new(1 << 20, 1 << 18).expect("low <= high"));
/// assert_eq!(config.limit(), 16);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SocketConfig {
    /// Storage the sockets built from this configuration (and its clones) share to build
    /// their sends, so an idle socket holds none of it.
    pub(crate) scratch: Rc<SendScratch>,
    pub(crate) group: BufferGroup,
    pub(crate) inbound: BufferPool,
    pub(crate) outbound: BufferPool,
    pub(crate) message: bool,
    pub(crate) mode: Mode,
    pub(crate) limit: usize,
    pub(crate) marks: WaterMarks,
    pub(crate) send_soft_limit: usize,
}

impl SocketConfig {
    /// The default `limit`: 64 chunks per gathered send.
    pub const DEFAULT_LIMIT: usize = 64;
    /// The default send-queue soft limit: 1 MiB.
    pub const DEFAULT_SEND_SOFT_LIMIT: usize = 1 << 20;

    /// A regular stream socket receiving from `group` (a provided-buffer ring registered on
    /// the socket's ring), reading into `inbound` in file and message modes and copying
    /// transmitted data into `outbound`.
    pub fn new(group: BufferGroup, inbound: BufferPool, outbound: BufferPool) -> Self {
        Self {
            scratch: Rc::new(SendScratch::new(outbound.clone())),
            group,
            inbound,
            outbound,
            message: false,
            mode: Mode::Regular,
            limit: Self::DEFAULT_LIMIT,
            marks: WaterMarks::default(),
            send_soft_limit: Self::DEFAULT_SEND_SOFT_LIMIT,
        }
    }

    /// Sets the send mode.
    #[must_use]
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Message mode (FastSocket's `msghdr` argument, for UDP): each transmit is one
    /// datagram, optionally to an address, and each receive one datagram with its sender.
    #[must_use]
    pub fn with_message_mode(mut self, message: bool) -> Self {
        self.message = message;
        self
    }

    /// Sets how many chunks one send gathers (FastSocket's `limit`), 1 to 1024.
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Sets the inbound backpressure marks.
    #[must_use]
    pub fn with_water_marks(mut self, marks: WaterMarks) -> Self {
        self.marks = marks;
        self
    }

    /// Sets the queued-byte count above which [`Socket::is_writable`](crate::Socket) turns
    /// false and the `std::io::Write` bridge returns `WouldBlock`.
    #[must_use]
    pub fn with_send_soft_limit(mut self, bytes: usize) -> Self {
        self.send_soft_limit = bytes;
        self
    }

    /// The send mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Chunks per gathered send.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether message mode is on.
    pub fn is_message_mode(&self) -> bool {
        self.message
    }

    /// The inbound water marks.
    pub fn water_marks(&self) -> WaterMarks {
        self.marks
    }

    /// The pool sends are copied into: a caller that fills one of its buffers itself (an
    /// encrypting layer) queues it with [`Socket::transmit_chunk`](crate::Socket::transmit_chunk)
    /// and no copy.
    pub fn outbound(&self) -> &BufferPool {
        &self.outbound
    }

    /// Refuses combinations the socket cannot honour.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.limit == 0 || self.limit > MAX_IOVECS {
            return Err(Error::InvalidArgument {
                reason: "limit must be between 1 and 1024 chunks",
            });
        }
        if self.message && matches!(self.mode, Mode::FileIo | Mode::ZeroCopy { .. }) {
            return Err(Error::InvalidArgument {
                reason: "message mode works with the regular and auto-cork modes only",
            });
        }
        Ok(())
    }
}

/// Reusable storage for building sends, shared by the sockets of one configuration (one
/// ring, one thread): the chunks lent to the send being built, and the gathered sends'
/// storage (buffers, iovecs, header) that completions give back, and the spare outbound
/// buffers copies are made into.
pub(crate) struct SendScratch {
    pub(crate) chunks: RefCell<Vec<Chunk>>,
    pub(crate) storages: RefCell<Vec<SendStorage>>,
    /// Outbound buffers whose send completed, taken again by the next copy: a copied reply
    /// costs no trip through the (atomic) pool in the steady state.
    pub(crate) spares: RefCell<SpareBuffers>,
}

/// Spare outbound buffers kept per configuration (per thread): enough for a tick's replies
/// on many connections, few enough to leave the pool's memory to the others.
const SPARE_BUFFERS: usize = 64;

impl SendScratch {
    /// Empty storage, keeping spares of `outbound`.
    fn new(outbound: BufferPool) -> Self {
        Self {
            chunks: RefCell::default(),
            storages: RefCell::default(),
            spares: RefCell::new(SpareBuffers::new(outbound, SPARE_BUFFERS)),
        }
    }
}

impl fmt::Debug for SendScratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendScratch")
            .field("storages", &self.storages.borrow().len())
            .field("spares", &self.spares.borrow().len())
            .finish_non_exhaustive()
    }
}
