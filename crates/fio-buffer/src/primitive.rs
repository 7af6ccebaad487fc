//! The synchronisation primitives the pool is built on, swapped for loom's under
//! `--cfg fio_loom`.
//!
//! Every atomic, `Arc` and `Mutex` of the crate is reached through this module (as crossbeam
//! does), so the loom tests in `tests/loom.rs` model-check the real free list, growth path and
//! reference counts rather than a copy of them.

#[cfg(not(fio_loom))]
pub(crate) mod sync {
    pub(crate) use std::sync::{Arc, Mutex};

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{
            AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
        };
    }
}

#[cfg(fio_loom)]
pub(crate) mod sync {
    pub(crate) use loom::sync::{Arc, Mutex};

    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{
            AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
        };
    }
}
