//! What the running kernel supports: the opcode probe plus the kernel version for the
//! features a probe cannot see (multishot receive, multishot timeouts).

use std::fmt;

use fio_sys::KernelVersion;
use io_uring::{IoUring, Probe, opcode};

use crate::config::SetupFlags;

/// The kinds of operation `fio-ring` builds, for [`Features::supports`] and
/// [`Error::Unsupported`](crate::Error::Unsupported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpKind {
    /// `IORING_OP_NOP`.
    Nop,
    /// `read(2)`/`pread(2)`.
    Read,
    /// `write(2)`/`pwrite(2)`.
    Write,
    /// `preadv(2)`.
    Readv,
    /// `pwritev(2)`.
    Writev,
    /// `send(2)`.
    Send,
    /// `sendmsg(2)`.
    SendMsg,
    /// Zero-copy send (Linux 6.0).
    SendZc,
    /// `recv(2)`, into an owned buffer or one picked from a buffer group.
    Recv,
    /// Multishot receive from a buffer group (Linux 6.0; the probe cannot see it).
    RecvMultishot,
    /// `recvmsg(2)` into an owned buffer, with the sender's address.
    RecvMsg,
    /// Multishot `recvmsg(2)` from a buffer group (Linux 6.0; the probe cannot see it).
    RecvMsgMultishot,
    /// `accept4(2)`.
    Accept,
    /// Multishot accept (Linux 5.19).
    AcceptMultishot,
    /// `connect(2)`.
    Connect,
    /// `close(2)`.
    Close,
    /// `shutdown(2)`.
    Shutdown,
    /// `socket(2)` (Linux 5.19).
    Socket,
    /// One-shot or multishot poll (multishot: Linux 5.13).
    Poll,
    /// One-shot or repeating timeout.
    Timeout,
    /// A timeout linked to another operation.
    LinkTimeout,
    /// Cancellation of another operation.
    Cancel,
    /// `splice(2)`.
    Splice,
    /// `openat(2)`.
    OpenAt,
    /// `statx(2)`.
    Statx,
    /// `fsync(2)`/`fdatasync(2)`.
    Fsync,
    /// An entry pushed through [`Ring::push_raw`](crate::Ring::push_raw); never refused.
    Raw,
}

impl OpKind {
    /// Every kind, for reports and tests.
    pub const ALL: [OpKind; 26] = [
        OpKind::Nop,
        OpKind::Read,
        OpKind::Write,
        OpKind::Readv,
        OpKind::Writev,
        OpKind::Send,
        OpKind::SendMsg,
        OpKind::SendZc,
        OpKind::Recv,
        OpKind::RecvMultishot,
        OpKind::RecvMsg,
        OpKind::RecvMsgMultishot,
        OpKind::Accept,
        OpKind::AcceptMultishot,
        OpKind::Connect,
        OpKind::Close,
        OpKind::Shutdown,
        OpKind::Socket,
        OpKind::Poll,
        OpKind::Timeout,
        OpKind::LinkTimeout,
        OpKind::Cancel,
        OpKind::Splice,
        OpKind::OpenAt,
        OpKind::Statx,
        OpKind::Fsync,
    ];

    /// The io_uring opcode that carries this kind.
    const fn opcode(self) -> u8 {
        match self {
            OpKind::Nop => opcode::Nop::CODE,
            OpKind::Read => opcode::Read::CODE,
            OpKind::Write => opcode::Write::CODE,
            OpKind::Readv => opcode::Readv::CODE,
            OpKind::Writev => opcode::Writev::CODE,
            OpKind::Send => opcode::Send::CODE,
            OpKind::SendMsg => opcode::SendMsg::CODE,
            OpKind::SendZc => opcode::SendZc::CODE,
            OpKind::Recv | OpKind::RecvMultishot => opcode::Recv::CODE,
            OpKind::RecvMsg | OpKind::RecvMsgMultishot => opcode::RecvMsg::CODE,
            OpKind::Accept | OpKind::AcceptMultishot => opcode::Accept::CODE,
            OpKind::Connect => opcode::Connect::CODE,
            OpKind::Close => opcode::Close::CODE,
            OpKind::Shutdown => opcode::Shutdown::CODE,
            OpKind::Socket => opcode::Socket::CODE,
            OpKind::Poll => opcode::PollAdd::CODE,
            OpKind::Timeout => opcode::Timeout::CODE,
            OpKind::LinkTimeout => opcode::LinkTimeout::CODE,
            OpKind::Cancel => opcode::AsyncCancel::CODE,
            OpKind::Splice => opcode::Splice::CODE,
            OpKind::OpenAt => opcode::OpenAt::CODE,
            OpKind::Statx => opcode::Statx::CODE,
            OpKind::Fsync => opcode::Fsync::CODE,
            OpKind::Raw => opcode::Nop::CODE,
        }
    }

    /// This kind's bit in [`Features::supported_mask`].
    #[inline]
    pub(crate) const fn bit(self) -> u64 {
        1 << self as u32
    }

    /// The first kernel with the flag variant this kind needs, where the probe cannot tell.
    const fn minimum_kernel(self) -> Option<KernelVersion> {
        match self {
            OpKind::RecvMultishot | OpKind::RecvMsgMultishot => Some(KernelVersion::new(6, 0, 0)),
            OpKind::AcceptMultishot => Some(KernelVersion::new(5, 19, 0)),
            _ => None,
        }
    }
}

/// What this kernel's io_uring supports, as found when the ring was created.
///
/// # Examples
/// ```
/// use fio_ring::{OpKind, Ring, RingConfig};
/// let ring = Ring::new(RingConfig::new(8))?;
/// let features = ring.features();
/// assert!(features.supports(OpKind::Nop));
/// println!("{features}");
/// # Ok::<(), fio_ring::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Features {
    kernel: KernelVersion,
    setup: SetupFlags,
    /// One bit per opcode the probe reported as supported.
    opcodes: [u64; 4],
    ext_arg: bool,
    nodrop: bool,
    buf_ring: bool,
    min_timeout: bool,
}

impl Features {
    /// Probes `ring`, which was built with `setup`, on a kernel of version `kernel`.
    pub(crate) fn probe(ring: &IoUring, setup: SetupFlags, kernel: KernelVersion) -> Self {
        let mut opcodes = [0u64; 4];
        let mut probe = Probe::new();
        match ring.submitter().register_probe(&mut probe) {
            Ok(()) => {
                for code in 0..=u8::MAX {
                    if probe.is_supported(code) {
                        opcodes[usize::from(code / 64)] |= 1 << (code % 64);
                    }
                }
            }
            // Before 5.6 there is no probe; assume the 5.1 opcode set only.
            Err(error) => log::debug!("io_uring probe unavailable: {error}"),
        }
        let params = ring.params();
        Self {
            kernel,
            setup,
            opcodes,
            ext_arg: params.is_feature_ext_arg(),
            nodrop: params.is_feature_nodrop(),
            buf_ring: false,
            min_timeout: false,
        }
    }

    /// Records whether a test registration of a provided-buffer ring succeeded.
    pub(crate) fn set_buf_ring(&mut self, supported: bool) {
        self.buf_ring = supported;
    }

    pub(crate) fn set_min_timeout(&mut self, supported: bool) {
        self.min_timeout = supported;
    }

    /// Whether a wait can batch completions with a minimum wait time
    /// (`IORING_FEAT_MIN_TIMEOUT`, Linux 6.12), which
    /// [`RingConfig::batch_wait`](crate::RingConfig::batch_wait) needs.
    pub fn batch_wait(&self) -> bool {
        self.min_timeout
    }

    /// The running kernel's version.
    pub fn kernel(&self) -> KernelVersion {
        self.kernel
    }

    /// The setup flags the ring was actually created with.
    pub fn setup_flags(&self) -> SetupFlags {
        self.setup
    }

    /// Whether the kernel reported `opcode` in its probe.
    pub fn supports_opcode(&self, opcode: u8) -> bool {
        self.opcodes[usize::from(opcode / 64)] & (1 << (opcode % 64)) != 0
    }

    /// Whether operations of `kind` can be submitted on this kernel.
    pub fn supports(&self, kind: OpKind) -> bool {
        if kind == OpKind::Raw {
            return true;
        }
        let version_ok = kind
            .minimum_kernel()
            .is_none_or(|minimum| self.kernel >= minimum);
        version_ok && self.supports_opcode(kind.opcode())
    }

    /// One bit per supported [`OpKind`] (see [`OpKind::bit`]).
    pub(crate) fn supported_mask(&self) -> u64 {
        OpKind::ALL
            .into_iter()
            .chain([OpKind::Raw])
            .filter(|kind| self.supports(*kind))
            .fold(0, |mask, kind| mask | kind.bit())
    }

    /// Multishot receive with buffer select (Linux 6.0).
    pub fn multishot_recv(&self) -> bool {
        self.supports(OpKind::RecvMultishot) && self.buf_ring
    }

    /// Multishot accept (Linux 5.19).
    pub fn multishot_accept(&self) -> bool {
        self.supports(OpKind::AcceptMultishot)
    }

    /// Multishot timeouts (`IORING_TIMEOUT_MULTISHOT`, Linux 6.4). Without them a repeating
    /// timeout is re-armed by the ring after every expiry.
    pub fn multishot_timeout(&self) -> bool {
        self.kernel >= KernelVersion::new(6, 4, 0) && self.supports(OpKind::Timeout)
    }

    /// Multishot poll (Linux 5.13).
    pub fn multishot_poll(&self) -> bool {
        self.kernel >= KernelVersion::new(5, 13, 0) && self.supports(OpKind::Poll)
    }

    /// Zero-copy send (Linux 6.0).
    pub fn send_zc(&self) -> bool {
        self.supports(OpKind::SendZc)
    }

    /// Provided-buffer rings (`IORING_REGISTER_PBUF_RING`, Linux 5.19): a test registration
    /// succeeded.
    pub fn buf_ring(&self) -> bool {
        self.buf_ring
    }

    /// Wait timeouts passed to `io_uring_enter` (`IORING_FEAT_EXT_ARG`, Linux 5.11).
    pub fn ext_arg(&self) -> bool {
        self.ext_arg
    }

    /// The kernel keeps completions that overflow the completion queue (`IORING_FEAT_NODROP`).
    pub fn nodrop(&self) -> bool {
        self.nodrop
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let supported: Vec<OpKind> = OpKind::ALL
            .into_iter()
            .filter(|kind| self.supports(*kind))
            .collect();
        f.debug_struct("Features")
            .field("kernel", &self.kernel)
            .field("setup", &self.setup)
            .field("supported", &supported)
            .field("ext_arg", &self.ext_arg)
            .field("nodrop", &self.nodrop)
            .field("buf_ring", &self.buf_ring)
            .field("min_timeout", &self.min_timeout)
            .finish()
    }
}

impl fmt::Display for Features {
    /// A one-line summary for logs, e.g.
    /// `io_uring on 6.18.0 [single_issuer defer_taskrun ...] multishot recv/accept/timeout/poll, send_zc, buf_ring`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let KernelVersion {
            major,
            minor,
            patch,
        } = self.kernel;
        write!(f, "io_uring on {major}.{minor}.{patch} [{}]", self.setup)?;
        let extras = [
            ("multishot_recv", self.multishot_recv()),
            ("multishot_accept", self.multishot_accept()),
            ("multishot_timeout", self.multishot_timeout()),
            ("multishot_poll", self.multishot_poll()),
            ("send_zc", self.send_zc()),
            ("buf_ring", self.buf_ring),
            ("batch_wait", self.min_timeout),
        ];
        for (name, on) in extras {
            write!(f, " {}{name}", if on { "+" } else { "-" })?;
        }
        let missing = OpKind::ALL.iter().filter(|k| !self.supports(**k)).count();
        write!(
            f,
            " ({} of {} ops)",
            OpKind::ALL.len() - missing,
            OpKind::ALL.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(kernel: KernelVersion, opcodes: &[u8]) -> Features {
        let mut bits = [0u64; 4];
        for code in opcodes {
            bits[usize::from(code / 64)] |= 1 << (code % 64);
        }
        Features {
            kernel,
            setup: SetupFlags::default(),
            opcodes: bits,
            ext_arg: true,
            nodrop: true,
            buf_ring: true,
            min_timeout: false,
        }
    }

    #[test]
    fn version_gates_what_the_probe_cannot_see() {
        let codes = [
            opcode::Recv::CODE,
            opcode::Accept::CODE,
            opcode::Timeout::CODE,
        ];
        let old = features(KernelVersion::new(5, 19, 0), &codes);
        assert!(old.supports(OpKind::Recv));
        assert!(!old.supports(OpKind::RecvMultishot));
        assert!(!old.multishot_recv());
        assert!(old.multishot_accept());
        assert!(!old.multishot_timeout());
        let new = features(KernelVersion::new(6, 4, 0), &codes);
        assert!(new.multishot_recv());
        assert!(new.multishot_timeout());
        assert!(!new.supports(OpKind::Splice));
    }

    #[test]
    fn summary_names_kernel_and_features() {
        let all: Vec<u8> = OpKind::ALL.iter().map(|kind| kind.opcode()).collect();
        let text = features(KernelVersion::new(6, 18, 2), &all).to_string();
        assert!(text.starts_with("io_uring on 6.18.2"), "{text}");
        assert!(text.contains("+multishot_recv"), "{text}");
        assert!(text.ends_with("(26 of 26 ops)"), "{text}");
    }
}
